/* engine/delivery.c — the delivery state of one pushed message (see delivery.h). */
#include "delivery.h"
#include "backend.h"

#include <stdio.h>
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

struct eng_push_status *delivery_statuses(const struct delivery *d,
                                          const struct eng_subscriber *subs, uint32_t n_subs,
                                          delivery_rid_fn rid, const void *ctx)
{
    struct eng_push_status *all = calloc(d->n, sizeof(*all));
    for (uint32_t i = 0; all && i < d->n; i++) {
        const struct delivery_sub *s = &d->subs[i];
        struct eng_push_status *out = &all[i];
        const struct eng_subscriber *sub = subs && i < n_subs ? &subs[i] : NULL;
        out->name = strdup(sub ? sub->name : "");
        out->url = strdup(sub ? sub->url : "");
        out->status_code = s->status_code;
        out->tries = s->tries;
        out->retries_remaining = s->retries_remaining;
        out->last_try_at_ms = s->last_try_ms;
        out->word = delivery_status_word(s);
        if (s->tries)
            rid(ctx, i, out->reservation_id);
        if (!out->name || !out->url) {
            eng_push_statuses_free(all, i + 1);
            return NULL;
        }
    }
    return all;
}

/* ---- the packed form ----
 * "d1 TYPE N CURRENT TRIED_THIS_ROUND RETRIES_REMAINING\n", then per subscriber
 * "STATE STATUS TRIES RETRIES_REMAINING LAST_TRY_MS DUE_MS RID\n" (RID "-" before any). */

char *delivery_pack(const struct delivery *d, const delivery_rid *rids)
{
    size_t cap = 64 + (size_t)d->n * (80 + RESERVATION_ID_HEX);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = (size_t)snprintf(out, cap, "d1 %d %u %u %u %u\n", (int)d->type, d->n, d->current,
                                d->tried_this_round, d->retries_remaining);
    for (uint32_t i = 0; i < d->n; i++) {
        const struct delivery_sub *s = &d->subs[i];
        o += (size_t)snprintf(out + o, cap - o, "%d %d %u %u %lld %lld %s\n", (int)s->state,
                              s->status_code, s->tries, s->retries_remaining,
                              (long long)s->last_try_ms, (long long)s->due_ms,
                              rids[i][0] ? rids[i] : "-");
    }
    return out;
}

static bool read_line(const char **p, char *line, size_t cap)
{
    const char *nl = strchr(*p, '\n');
    size_t len = nl ? (size_t)(nl - *p) : 0;
    if (!nl || len >= cap)
        return false;
    memcpy(line, *p, len);
    line[len] = '\0';
    *p = nl + 1;
    return true;
}

/* Reads n decimal fields separated by single spaces from *p; false unless each is a whole
 * number within [min, max]. *p is left after the last one. */
static bool read_numbers(const char **p, long long *out, int n, long long min, long long max)
{
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        if (i && *(*p)++ != ' ')
            return false;
        if (**p == ' ' || **p == '\0')
            return false;
        out[i] = strtoll(*p, &end, 10);
        if (end == *p || out[i] < min || out[i] > max)
            return false;
        *p = end;
    }
    return true;
}

static int unpack_fail(struct delivery *d, delivery_rid **rids)
{
    delivery_free(d);
    free(*rids);
    *rids = NULL;
    return -1;
}

int delivery_unpack(struct delivery *d, delivery_rid **rids, const char *text, int64_t now_ms)
{
    char line[160];
    long long h[5];
    const char *p = text, *f = line;
    memset(d, 0, sizeof(*d));
    *rids = NULL;
    if (!read_line(&p, line, sizeof(line)) || strncmp(line, "d1 ", 3) != 0 ||
        !(f = line + 3, read_numbers(&f, h, 5, 0, UINT32_MAX)) || *f ||
        (h[0] != QUEUE_UNICAST && h[0] != QUEUE_MULTICAST) || h[1] == 0 ||
        h[1] > PUSH_SUBSCRIBERS_MAX || h[2] >= h[1] || h[3] > h[1] || h[4] > PUSH_RETRIES_MAX)
        return -1;
    uint32_t n = (uint32_t)h[1];
    if (delivery_init(d, (enum queue_type)h[0], n, (uint32_t)h[4], (uint32_t)h[2], now_ms) != 0 ||
        !(*rids = calloc(n, sizeof(**rids))))
        return unpack_fail(d, rids);
    d->tried_this_round = (uint32_t)h[3];
    for (uint32_t i = 0; i < n; i++) {
        struct delivery_sub *s = &d->subs[i];
        long long v[6];
        f = line;
        if (!read_line(&p, line, sizeof(line)) || !read_numbers(&f, v, 6, INT64_MIN / 2, INT64_MAX / 2) ||
            v[0] < DS_IDLE || v[0] > DS_FAILED || v[1] < -1 || v[1] > 999 || v[2] < 0 ||
            v[2] > UINT32_MAX || v[3] < 0 || v[3] > PUSH_RETRIES_MAX || *f++ != ' ')
            return unpack_fail(d, rids);
        bool none = strcmp(f, "-") == 0;
        if (!none && strlen(f) != RESERVATION_ID_HEX)
            return unpack_fail(d, rids);
        s->state = v[0] == DS_SENDING ? DS_DUE : (enum delivery_state)v[0];
        s->status_code = (int)v[1];
        s->tries = (uint32_t)v[2];
        s->retries_remaining = (uint32_t)v[3];
        s->last_try_ms = v[4];
        s->due_ms = v[0] == DS_SENDING ? now_ms : v[5];
        if (!none)
            memcpy((*rids)[i], f, RESERVATION_ID_HEX + 1);
    }
    return *p ? unpack_fail(d, rids) : 0;
}
