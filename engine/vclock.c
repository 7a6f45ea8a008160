/* engine/vclock.c — the clock switch (see vclock.h). */
#include "vclock.h"

static int64_t clamp(struct vclock *c, int64_t t)
{
    if (t < c->last_ms)
        t = c->last_ms;
    c->last_ms = t;
    return t;
}

int64_t vclock_now(struct vclock *c, int64_t wall_ms)
{
    return clamp(c, c->frozen ? c->frozen_ms : wall_ms + c->offset_ms);
}

void vclock_freeze(struct vclock *c, int64_t wall_ms)
{
    if (c->frozen)
        return;
    c->frozen_ms = vclock_now(c, wall_ms);
    c->frozen = true;
}

int64_t vclock_advance(struct vclock *c, int64_t wall_ms, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (c->frozen)
        c->frozen_ms = vclock_now(c, wall_ms) + ms;
    else
        c->offset_ms = vclock_now(c, wall_ms) + ms - wall_ms;
    return vclock_now(c, wall_ms);
}

void vclock_unfreeze(struct vclock *c, int64_t wall_ms)
{
    if (!c->frozen)
        return;
    int64_t at = vclock_now(c, wall_ms);
    c->frozen = false;
    c->offset_ms = at > wall_ms ? at - wall_ms : 0;
}
