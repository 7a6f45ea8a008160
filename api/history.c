/* api/history.c — the dashboard's rings of readings (see history.h). The server-wide ring
 * holds HISTORY_POINTS readings; each queue seen keeps its own values in rings of the same
 * size and indexing, marked with the sequence number of the reading that wrote them, so a
 * value counts only while the server-wide slot still holds that reading. Queues are found
 * through a hash map on project + queue name. */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "../engine/hmap.h"

struct point {
    int64_t at_ms;
    uint64_t seq;
    bool has_events, has_levels;
    uint64_t v[HS_COUNT]; /* counters for the rates, levels for the others */
};

struct history_queue {
    struct hnode node;
    char *key; /* project \0 queue \0 */
    size_t project_len;
    uint64_t last_seq; /* the last reading that named it */
    uint64_t seq[HISTORY_POINTS];
    uint64_t depth[HISTORY_POINTS], posted[HISTORY_POINTS];
};

struct history {
    struct point ring[HISTORY_POINTS];
    size_t head, len; /* the oldest slot, and how many are kept */
    uint64_t seq;     /* readings taken so far (the first is 1) */
    struct hmap queues;
};

struct history *history_new(void)
{
    struct history *h = calloc(1, sizeof(*h));
    if (h)
        hmap_init(&h->queues);
    return h;
}

static void free_queue(struct hnode *node, void *ctx)
{
    (void)ctx;
    struct history_queue *q = (struct history_queue *)node;
    free(q->key);
    free(q);
}

void history_free(struct history *h)
{
    if (!h)
        return;
    hmap_foreach(&h->queues, free_queue, NULL);
    hmap_free(&h->queues);
    free(h);
}

static const struct point *point_at(const struct history *h, size_t i)
{
    return &h->ring[(h->head + i) % HISTORY_POINTS];
}

static size_t slot_of(const struct history *h, size_t i)
{
    return (h->head + i) % HISTORY_POINTS;
}

int64_t history_next_ms(const struct history *h)
{
    return h->len ? point_at(h, h->len - 1)->at_ms + HISTORY_INTERVAL_MS : INT64_MIN;
}

size_t history_len(const struct history *h)
{
    return h->len;
}

int64_t history_time(const struct history *h, size_t i)
{
    return i < h->len ? point_at(h, i)->at_ms : 0;
}

/* ---- queues ---- */

struct qkey {
    const char *project, *queue;
    size_t project_len, queue_len;
};

static uint64_t qhash(const struct qkey *k)
{
    return hash_bytes(k->queue, k->queue_len, hash_bytes(k->project, k->project_len, 0x5eed));
}

static bool qeq(const struct hnode *node, const void *key)
{
    const struct history_queue *q = (const struct history_queue *)node;
    const struct qkey *k = key;
    return q->project_len == k->project_len && memcmp(q->key, k->project, k->project_len + 1) == 0 &&
           strcmp(q->key + q->project_len + 1, k->queue) == 0;
}

const struct history_queue *history_find(const struct history *h, const char *project,
                                         const char *queue)
{
    struct qkey k = {project, queue, strlen(project), strlen(queue)};
    return (struct history_queue *)hmap_find(&h->queues, qhash(&k), qeq, &k);
}

static struct history_queue *add_queue(struct history *h, const char *project, const char *queue)
{
    struct qkey k = {project, queue, strlen(project), strlen(queue)};
    uint64_t hash = qhash(&k);
    struct history_queue *q = (struct history_queue *)hmap_find(&h->queues, hash, qeq, &k);
    if (q)
        return q;
    q = calloc(1, sizeof(*q));
    char *key = malloc(k.project_len + k.queue_len + 2);
    if (!q || !key) {
        free(q);
        free(key);
        return NULL;
    }
    memcpy(key, project, k.project_len + 1);
    memcpy(key + k.project_len + 1, queue, k.queue_len + 1);
    q->key = key;
    q->project_len = k.project_len;
    if (hmap_insert(&h->queues, &q->node, hash) != 0) {
        free_queue(&q->node, NULL);
        return NULL;
    }
    return q;
}

struct sweep {
    struct history_queue **stale;
    size_t n, cap;
    uint64_t before; /* last named before this reading: forgotten */
};

static void collect_stale(struct hnode *node, void *ctx)
{
    struct sweep *s = ctx;
    struct history_queue *q = (struct history_queue *)node;
    if (q->last_seq < s->before && s->n < s->cap)
        s->stale[s->n++] = q;
}

/* Forgets the queues no kept reading names (a few at a time: the rest at the next reading). */
static void forget_stale(struct history *h)
{
    if (h->seq <= HISTORY_POINTS)
        return;
    struct history_queue *stale[64];
    struct sweep s = {stale, 0, sizeof(stale) / sizeof(stale[0]), h->seq - HISTORY_POINTS + 1};
    hmap_foreach(&h->queues, collect_stale, &s);
    for (size_t i = 0; i < s.n; i++) {
        hmap_remove(&h->queues, &s.stale[i]->node);
        free_queue(&s.stale[i]->node, NULL);
    }
}

int history_add(struct history *h, const struct history_reading *r)
{
    if (h->len && r->at_ms <= point_at(h, h->len - 1)->at_ms)
        return 0;
    size_t slot;
    if (h->len < HISTORY_POINTS) {
        slot = slot_of(h, h->len);
        h->len++;
    } else {
        slot = h->head;
        h->head = (h->head + 1) % HISTORY_POINTS;
    }
    struct point *p = &h->ring[slot];
    *p = (struct point){.at_ms = r->at_ms, .seq = ++h->seq, .has_events = r->has_events,
                        .has_levels = r->has_queues};
    p->v[HS_POSTS] = r->posts;
    p->v[HS_DELETES] = r->deletes;
    p->v[HS_RESERVES] = r->reserves;
    p->v[HS_READY] = r->ready;
    p->v[HS_DELAYED] = r->delayed;
    p->v[HS_RESERVED] = r->reserved;
    int rc = 0;
    for (size_t i = 0; r->has_queues && i < r->n_queues; i++) {
        const struct history_queue_reading *qr = &r->queues[i];
        struct history_queue *q = add_queue(h, qr->project, qr->queue);
        if (!q) {
            rc = -1;
            continue;
        }
        q->last_seq = p->seq;
        q->seq[slot] = p->seq;
        q->depth[slot] = qr->depth;
        q->posted[slot] = qr->posted;
    }
    forget_stale(h);
    return rc;
}

/* ---- reading ---- */

static double per_second(uint64_t from, uint64_t to, int64_t from_ms, int64_t to_ms)
{
    if (to <= from || to_ms <= from_ms)
        return 0.0; /* counters only grow; a queue deleted and made again starts over */
    return (double)(to - from) * 1000.0 / (double)(to_ms - from_ms);
}

bool history_value(const struct history *h, enum history_series s, size_t i, double *out)
{
    if (i >= h->len || s >= HS_COUNT)
        return false;
    const struct point *p = point_at(h, i);
    if (s >= HS_READY) {
        *out = (double)p->v[s];
        return p->has_levels;
    }
    if (i == 0 || !p->has_events || !point_at(h, i - 1)->has_events)
        return false;
    const struct point *prev = point_at(h, i - 1);
    *out = per_second(prev->v[s], p->v[s], prev->at_ms, p->at_ms);
    return true;
}

static bool queue_has(const struct history *h, const struct history_queue *q, size_t i)
{
    return q && i < h->len && q->seq[slot_of(h, i)] == point_at(h, i)->seq;
}

bool history_queue_depth(const struct history *h, const struct history_queue *q, size_t i,
                         uint64_t *out)
{
    if (!queue_has(h, q, i))
        return false;
    *out = q->depth[slot_of(h, i)];
    return true;
}

/* In and out per second between readings a < b of queue q (both present). */
static void rates_between(const struct history *h, const struct history_queue *q, size_t a,
                          size_t b, double *in, double *out)
{
    size_t sa = slot_of(h, a), sb = slot_of(h, b);
    int64_t ta = point_at(h, a)->at_ms, tb = point_at(h, b)->at_ms;
    *in = per_second(q->posted[sa], q->posted[sb], ta, tb);
    /* what left = what came - how much deeper it got */
    double seconds = (double)(tb - ta) / 1000.0;
    double grew = ((double)q->depth[sb] - (double)q->depth[sa]) / seconds;
    *out = *in - grew > 0.0 ? *in - grew : 0.0;
}

bool history_queue_rates(const struct history *h, const struct history_queue *q, size_t i,
                         double *in, double *out)
{
    if (i == 0 || !queue_has(h, q, i) || !queue_has(h, q, i - 1))
        return false;
    rates_between(h, q, i - 1, i, in, out);
    return true;
}

bool history_queue_recent(const struct history *h, const struct history_queue *q,
                          int64_t window_ms, double *in, double *out)
{
    if (h->len < 2 || !queue_has(h, q, h->len - 1))
        return false;
    size_t last = h->len - 1, first = last;
    int64_t end = point_at(h, last)->at_ms;
    /* the earliest reading within the window, going back only while the queue was there */
    while (first > 0 && queue_has(h, q, first - 1) &&
           (first == last || end - point_at(h, first - 1)->at_ms <= window_ms))
        first--;
    if (first == last)
        return false;
    rates_between(h, q, first, last, in, out);
    return true;
}
