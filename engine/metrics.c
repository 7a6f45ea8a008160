/* engine/metrics.c — the embedded engine's numbers for GET /metrics (api/metrics.c): the
 * operation counters kept in struct emb (one increment per event, in message.c), every
 * queue's depth and long-poll waiters, and the journal's group-commit histograms.
 * The walk visits projects by id and each project's queues by name, so "the first N
 * queues" names the same queues from one scrape to the next while they exist. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

struct project_list {
    const struct project **items;
    size_t n;
};

static void collect_project(struct hnode *node, void *ctx)
{
    struct project_list *pl = ctx;
    pl->items[pl->n++] = list_entry(node, struct project, by_id);
}

static int by_project_id(const void *a, const void *b)
{
    const struct project *pa = *(const struct project *const *)a;
    const struct project *pb = *(const struct project *const *)b;
    return strcmp(pa->id, pb->id);
}

static uint64_t count_waiters(const struct queue *q)
{
    uint64_t n = 0;
    for (const struct list_node *w = q->waiters.next; w != &q->waiters; w = w->next)
        n++;
    return n;
}

static void add_depth(struct eng_queue_depth *d, const struct queue *q, uint64_t waiters)
{
    d->ready += q->n_ready;
    d->delayed += q->n_delayed;
    d->reserved += q->n_reserved;
    d->pushing += q->n_pushing;
    d->waiters += waiters;
}

static void walk_queues(const struct project *p, size_t limit, struct eng_metrics *out)
{
    for (size_t i = 0; i < p->n_sorted; i++) {
        const struct queue *q = p->sorted[i];
        uint64_t waiters = count_waiters(q);
        out->waiters += waiters;
        if (out->n_queues < limit) {
            struct eng_queue_depth *d = &out->queues[out->n_queues++];
            *d = (struct eng_queue_depth){.project = p->id, .queue = q->name,
                                          .posted = q->total_messages, .type = q->type};
            add_depth(d, q, waiters);
        } else {
            add_depth(&out->rest, q, waiters);
            out->rest_queues++;
        }
    }
}

int emb_metrics(const struct emb *e, size_t queue_limit, struct eng_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->has_events = out->has_depths = true;
    memcpy(out->events, e->events, sizeof(out->events));
    size_t cap = queue_limit < e->n_queues ? queue_limit : (size_t)e->n_queues;
    struct project_list pl = {malloc((e->projects.count ? e->projects.count : 1) * sizeof(*pl.items)), 0};
    out->queues = calloc(cap ? cap : 1, sizeof(*out->queues));
    if (!pl.items || !out->queues) {
        free(pl.items);
        eng_metrics_free(out);
        return -1;
    }
    hmap_foreach(&e->projects, collect_project, &pl);
    qsort(pl.items, pl.n, sizeof(*pl.items), by_project_id);
    for (size_t i = 0; i < pl.n; i++)
        walk_queues(pl.items[i], cap, out);
    free(pl.items);
    if (e->store) {
        struct store_commits c;
        store_commits(e->store, &c);
        out->has_commits = true;
        out->batch_records = c.batch_records;
        out->batch_us = c.batch_us;
        out->commit_us = c.commit_us;
    }
    return 0;
}
