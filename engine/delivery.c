/* engine/delivery.c — the delivery state of one pushed message (see delivery.h). */
#include "delivery.h"

#include <stdlib.h>
#include <string.h>

int delivery_init(struct delivery *d, enum queue_type type, uint32_t n, uint32_t retries,
                  uint32_t first, int64_t now_ms)
{
    memset(d, 0, sizeof(*d));
    if (n == 0 || !(d->subs = calloc(n, sizeof(*d->subs))))
        return -1;
    d->type = type;
    d->n = n;
    d->retries_remaining = retries;
    d->current = first % n;
    for (uint32_t i = 0; i < n; i++) {
        d->subs[i].retries_remaining = retries;
        bool now = type == QUEUE_MULTICAST || i == d->current;
        d->subs[i].state = now ? DS_DUE : DS_IDLE;
        d->subs[i].due_ms = now ? now_ms : 0;
    }
    return 0;
}

void delivery_free(struct delivery *d)
{
    free(d->subs);
    memset(d, 0, sizeof(*d));
}

void delivery_sending(struct delivery *d, uint32_t i, int64_t now_ms)
{
    struct delivery_sub *s = &d->subs[i];
    s->state = DS_SENDING;
    s->tries++;
    s->last_try_ms = now_ms;
}

static void fail_multicast(struct delivery_sub *s, int64_t now_ms, uint32_t delay_s)
{
    if (s->retries_remaining == 0) {
        s->state = DS_FAILED;
        return;
    }
    s->retries_remaining--;
    s->state = DS_DUE;
    s->due_ms = now_ms + (int64_t)delay_s * 1000;
}

/* Unicast: the next subscriber at once; after a whole round, the next round after the
 * delay while rounds remain; else every subscriber has failed. */
static void fail_unicast(struct delivery *d, uint32_t i, int64_t now_ms, uint32_t delay_s)
{
    d->subs[i].state = DS_IDLE;
    d->tried_this_round++;
    uint32_t next = (i + 1) % d->n;
    d->current = next;
    if (d->tried_this_round < d->n) {
        d->subs[next].state = DS_DUE;
        d->subs[next].due_ms = now_ms;
        return;
    }
    if (d->retries_remaining == 0) {
        for (uint32_t k = 0; k < d->n; k++)
            d->subs[k].state = DS_FAILED;
        return;
    }
    d->retries_remaining--;
    d->tried_this_round = 0;
    for (uint32_t k = 0; k < d->n; k++)
        d->subs[k].retries_remaining = d->retries_remaining;
    d->subs[next].state = DS_DUE;
    d->subs[next].due_ms = now_ms + (int64_t)delay_s * 1000;
}

static void fail(struct delivery *d, uint32_t i, int64_t now_ms, uint32_t delay_s)
{
    if (d->type == QUEUE_UNICAST)
        fail_unicast(d, i, now_ms, delay_s);
    else
        fail_multicast(&d->subs[i], now_ms, delay_s);
}

void delivery_answer(struct delivery *d, uint32_t i, int status, int64_t now_ms, uint32_t delay_s)
{
    struct delivery_sub *s = &d->subs[i];
    if (s->state != DS_SENDING)
        return; /* acknowledged meanwhile: the answer changes nothing */
    s->status_code = status;
    if (status == 202) {
        s->state = DS_RESERVED;
        s->due_ms = now_ms + (int64_t)delay_s * 1000;
    } else if (status >= 200 && status < 300) {
        s->state = DS_DELIVERED;
    } else {
        fail(d, i, now_ms, delay_s);
    }
}

bool delivery_acknowledge(struct delivery *d, uint32_t i)
{
    struct delivery_sub *s = &d->subs[i];
    if (s->state != DS_RESERVED && s->state != DS_SENDING)
        return false;
    s->state = DS_DELIVERED;
    return true;
}

int64_t delivery_tick(struct delivery *d, int64_t now_ms, uint32_t delay_s)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (d->subs[i].state == DS_RESERVED && d->subs[i].due_ms <= now_ms)
            fail(d, i, now_ms, delay_s);
    int64_t next = INT64_MAX;
    for (uint32_t i = 0; i < d->n; i++) {
        const struct delivery_sub *s = &d->subs[i];
        if ((s->state == DS_DUE || s->state == DS_RESERVED) && s->due_ms < next)
            next = s->due_ms;
    }
    return next;
}

bool delivery_finished(const struct delivery *d)
{
    uint32_t done = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        if (d->type == QUEUE_UNICAST && d->subs[i].state == DS_DELIVERED)
            return true;
        done += d->subs[i].state == DS_DELIVERED || d->subs[i].state == DS_FAILED;
    }
    return done == d->n;
}

bool delivery_failed(const struct delivery *d)
{
    if (!delivery_finished(d))
        return false;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->subs[i].state == DS_FAILED)
            return true;
    return false;
}

const char *delivery_status_word(const struct delivery_sub *s)
{
    switch (s->state) {
    case DS_IDLE:
    case DS_DUE:
        return s->tries ? "retrying" : "queued";
    case DS_SENDING:
        return "sending";
    case DS_RESERVED:
        return "reserved";
    case DS_DELIVERED:
        return "deleted";
    case DS_FAILED:
        return "error";
    }
    return "unknown";
}
