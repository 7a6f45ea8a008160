/* engine/embedded.c — the embedded back end's lifecycle and plumbing: opening and
 * recovering from the journal, the clock and the timer wheel, and the rule that holds
 * every answer back until the state it reports is durable:
 *   an op that wrote journal records waits for the epoch they joined; an op that only
 *   read waits for the newest epoch among the things it read; in memory mode nothing waits.
 * Completed ops are queued and their done() callbacks run when the outermost public call
 * returns, so callbacks always see a consistent engine and may call it again. */
#include "core.h"
#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[ENG_STATUS_COUNT] = {
    [ENG_OK] = "ok",
    [ENG_QUEUE_NOT_FOUND] = "queue not found",
    [ENG_MESSAGE_NOT_FOUND] = "message not found",
    [ENG_RESERVATION_MISMATCH] = "reservation mismatch",
    [ENG_RESERVATION_REQUIRED] = "reservation required",
    [ENG_TYPE_IMMUTABLE] = "type immutable",
    [ENG_PUSH_UNSUPPORTED] = "push unsupported",
    [ENG_NOT_PUSH_QUEUE] = "not a push queue",
    [ENG_DEAD_LETTER_SELF] = "dead letter self",
    [ENG_DEAD_LETTER_CYCLE] = "dead letter cycle",
    [ENG_DEAD_LETTER_NAME] = "dead letter name",
    [ENG_NO_MEMORY] = "no memory",
    [ENG_MEMORY_BUDGET] = "memory budget",
    [ENG_STORAGE_UNAVAILABLE] = "storage unavailable",
    [ENG_SHUTTING_DOWN] = "shutting down",
    [ENG_ID_TAKEN] = "id taken",
    [ENG_ID_REPEATED] = "id repeated",
    [ENG_NAME_REPEATED] = "name repeated",
    [ENG_FIXTURE_INVALID] = "fixture invalid",
    [ENG_BACKEND_UNSUPPORTED] = "backend unsupported",
};

const char *eng_status_name(enum eng_status st)
{
    return st < ENG_STATUS_COUNT ? status_names[st] : "unknown";
}

const char *queue_type_name(enum queue_type t)
{
    switch (t) {
    case QUEUE_UNICAST:
        return "unicast";
    case QUEUE_MULTICAST:
        return "multicast";
    case QUEUE_PULL:
        break;
    }
    return "pull";
}

/* ---- completion ---- */

static void run_completions(struct emb *e)
{
    while (!list_empty(&e->completed)) {
        struct list_node *link = e->completed.next;
        list_remove(link);
        struct eng_op *op = list_entry(link, struct eng_op, link);
        op->in_flight = false;
        /* The result moves out of op first: done() may free op, or start it again. */
        struct eng_result res = op->res;
        eng_result_reset(&op->res);
        op->done(op, &res);
        eng_result_free(&res);
    }
}

void eng_begin(struct emb *e)
{
    e->depth++;
}

uint64_t eng_start(struct emb *e, struct eng_op *op)
{
    eng_begin(e);
    eng_result_reset(&op->res);
    return e->journal_count;
}

void eng_end(struct emb *e)
{
    if (--e->depth > 0)
        return;
    waiters_feed(e);
    pushing_pump(e);
    run_completions(e);
}

void eng_fail(struct emb *e, struct eng_op *op, enum eng_status st)
{
    eng_result_free(&op->res);
    op->res.status = st;
    list_push_back(&e->completed, &op->link);
}

void eng_finish(struct emb *e, struct eng_op *op, uint64_t journal_mark, uint64_t read_epoch)
{
    op->res.status = ENG_OK;
    if (!e->store) {
        list_push_back(&e->completed, &op->link);
        return;
    }
    uint64_t building = store_building_epoch(e->store);
    uint64_t wait = e->journal_count != journal_mark ? building : read_epoch;
    if (wait <= store_durable_epoch(e->store)) {
        list_push_back(&e->completed, &op->link);
        return;
    }
    /* At most two commits are ahead (a failed batch or the one in flight, then the one being
     * built), so two lists, by parity, hold every waiting op. */
    uint64_t target = store_commit_for(e->store, wait);
    op->wait_epoch = target;
    list_push_back(&e->commit_wait[target & 1], &op->link);
}

static uint64_t journal(struct emb *e, const struct jrec *rec, bool acknowledged)
{
    if (!e->store) {
        blob_unref(rec->body);
        store_free_row(rec->row);
        return 0;
    }
    if (acknowledged)
        e->journal_count++;
    if (store_append(e->store, rec) != 0)
        e->commit_failures++; /* out of memory: the record is lost, the commit will say so */
    return store_building_epoch(e->store);
}

uint64_t eng_journal(struct emb *e, const struct jrec *rec)
{
    return journal(e, rec, true);
}

uint64_t eng_journal_lazy(struct emb *e, const struct jrec *rec)
{
    return journal(e, rec, false);
}

bool eng_can_write(const struct emb *e)
{
    return !e->store || store_writable(e->store);
}

/* ---- timers ---- */

static void on_timer(struct tw_node *node, void *ctx)
{
    struct emb *e = ctx;
    if (node->tag == TIMER_WAITER)
        waiters_on_timer(e, list_entry(node, struct eng_op, timer));
    else
        message_on_timer(e, node);
}

void emb_set_time(struct emb *e, int64_t now_ms)
{
    if (now_ms < e->now_ms)
        return; /* the engine's clock never runs backwards */
    eng_begin(e);
    e->now_ms = now_ms;
    tw_advance(&e->wheel, now_ms, on_timer, e);
    eng_end(e);
}

int64_t emb_next_deadline(const struct emb *e)
{
    int64_t t = tw_next_deadline(&e->wheel);
    if (e->store) {
        int64_t r = store_next_retry(e->store);
        if (r < t)
            t = r;
    }
    return t;
}

/* ---- journal and commits ---- */

int emb_poll_fd(const struct emb *e)
{
    return e->store ? store_event_fd(e->store) : -1;
}

void emb_on_readable(struct emb *e)
{
    if (!e->store)
        return;
    eng_begin(e);
    struct store_reaped r;
    while (store_reap_batch(e->store, &r)) {
        uint64_t epoch = r.epoch;
        bool ok = r.ok;
        if (e->base.on_commit)
            e->base.on_commit(e->base.on_commit_ctx,
                              &(struct eng_commit){.epoch = r.epoch, .records = r.records,
                                                   .duration_us = r.duration_us, .ok = r.ok,
                                                   .error = r.error});
        if (ok)
            e->commits++;
        else
            e->commit_failures++;
        struct list_node *list = &e->commit_wait[epoch & 1];
        struct list_node *pos, *tmp;
        list_for_each_safe(pos, tmp, list) {
            struct eng_op *op = list_entry(pos, struct eng_op, link);
            if (op->wait_epoch != epoch)
                continue;
            list_remove(pos);
            if (ok)
                list_push_back(&e->completed, &op->link);
            else
                eng_fail(e, op, ENG_STORAGE_UNAVAILABLE);
        }
    }
    memory_rebalance(e);
    eng_end(e);
}

void emb_flush(struct emb *e)
{
    if (e->store)
        store_kick(e->store, e->now_ms);
}

bool emb_idle(const struct emb *e)
{
    return !e->store || store_idle(e->store);
}

void emb_cancel(struct emb *e, struct eng_op *op)
{
    if (op->waiting_on)
        waiters_cancel(e, op);
    else if (list_linked(&op->link))
        list_remove(&op->link);
    op->in_flight = false;
    eng_result_free(&op->res);
}

void emb_stats(const struct emb *e, struct eng_stats *out)
{
    out->projects = e->projects.count;
    out->queues = e->n_queues;
    out->messages = e->messages.count;
    out->commits = e->commits;
    out->commit_failures = e->commit_failures;
    out->storage_ok = eng_can_write(e);
    out->memory_budget = e->memory_budget;
    out->index_bytes = e->index_bytes;
    out->body_bytes = e->body_bytes;
    out->cold_messages = e->cold_messages;
    out->body_reads = e->body_reads;
    out->live_body_bytes = e->live_body_bytes;
    out->db_bytes = out->db_free_bytes = out->wal_bytes = 0;
    if (e->store) {
        struct store_space sp;
        store_space(e->store, &sp);
        out->db_bytes = sp.db_bytes;
        out->db_free_bytes = sp.free_bytes;
        out->wal_bytes = sp.wal_bytes;
        struct store_commits c;
        store_commits(e->store, &c);
        out->commit_records = c.records;
        out->commit_skipped = c.skipped;
        out->commit_total_us = c.total_us;
        out->commit_max_us = c.max_us;
    }
}

static void wake_queue(struct hnode *node, void *ctx)
{
    waiters_finish_all(ctx, list_entry(node, struct queue, by_name));
}

static void wake_project(struct hnode *node, void *ctx)
{
    hmap_foreach(&list_entry(node, struct project, by_id)->queues, wake_queue, ctx);
}

void emb_wake_all_waiters(struct emb *e)
{
    eng_begin(e);
    e->shutting_down = true;
    hmap_foreach(&e->projects, wake_project, e);
    eng_end(e);
}

/* ---- open and close ---- */

/* Recovery: queues arrive first, so messages can find theirs by storage key. Messages go
 * into the id index a few rows late, their buckets prefetched meanwhile: with millions of
 * rows the index is far larger than the caches, and this hides most of each miss. */
enum { INDEX_LAG = 16 };

struct load_ctx {
    struct emb *e;
    struct queue **by_key;
    size_t n_keys;
    struct message *lagging[INDEX_LAG];
    size_t n_lagging;
    int rc;
};

static void index_lagging(struct load_ctx *lc, size_t keep)
{
    while (lc->n_lagging > keep) {
        struct message *m = lc->lagging[0];
        memmove(lc->lagging, lc->lagging + 1, (lc->n_lagging - 1) * sizeof(lc->lagging[0]));
        lc->n_lagging--;
        if (message_index(lc->e, m) != 0)
            lc->rc = -1;
    }
}

static int load_queue(void *ctx, const struct store_queue_row *row)
{
    struct load_ctx *lc = ctx;
    struct queue *q = queue_restore(lc->e, row);
    if (!q)
        return -1;
    if (row->key >= lc->n_keys) {
        size_t n = (size_t)row->key * 2 + 16;
        struct queue **grown = realloc(lc->by_key, n * sizeof(*grown));
        if (!grown)
            return -1;
        memset(grown + lc->n_keys, 0, (n - lc->n_keys) * sizeof(*grown));
        lc->by_key = grown;
        lc->n_keys = n;
    }
    lc->by_key[row->key] = q;
    return 0;
}

static void load_expect(void *ctx, uint64_t messages)
{
    struct load_ctx *lc = ctx;
    hmap_reserve(&lc->e->messages, (size_t)messages);
}

static int load_message(void *ctx, const struct store_msg_row *row)
{
    struct load_ctx *lc = ctx;
    struct queue *q = row->queue_key < lc->n_keys ? lc->by_key[row->queue_key] : NULL;
    int rc;
    struct message *m = message_restore(lc->e, q, row, &rc);
    if (m) {
        index_lagging(lc, INDEX_LAG - 1);
        hmap_prefetch(&lc->e->messages, hash_u64(m->id));
        lc->lagging[lc->n_lagging++] = m;
    }
    return rc ? rc : lc->rc;
}

struct emb *emb_open(const struct eng_options *opt, char *err, size_t err_len)
{
    struct emb *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    e->base.backend = ENG_BACKEND_EMBEDDED;
    e->now_ms = opt->now_ms;
    tw_init(&e->wheel, opt->now_ms);
    hmap_init(&e->projects);
    hmap_init(&e->messages);
    e->hash_seed = hash_u64(opt->seed ^ 0x616e76696cULL);
    ids_init(&e->ids, 0, opt->seed);
    e->next_queue_key = 1;
    e->memory_budget = opt->memory_budget;
    list_init(&e->commit_wait[0]);
    list_init(&e->commit_wait[1]);
    list_init(&e->completed);
    list_init(&e->to_feed);
    list_init(&e->push_new);
    list_init(&e->push_due);
    for (size_t i = 0; i < sizeof(e->push_wait) / sizeof(e->push_wait[0]); i++)
        list_init(&e->push_wait[i]);

    if (opt->durability == DURABILITY_MEMORY)
        return e;

    enum store_durability dur = opt->durability == DURABILITY_NORMAL ? STORE_NORMAL : STORE_FSYNC;
    e->store = store_open(opt->data_dir, dur, err, err_len);
    if (!e->store)
        goto fail;
    struct load_ctx lc = {.e = e};
    struct store_load_cb cb = {
        .ctx = &lc, .expect = load_expect, .queue = load_queue, .message = load_message};
    uint64_t last_id = 0;
    eng_begin(e);
    int rc = store_load(e->store, &cb, &last_id, err, err_len);
    index_lagging(&lc, 0);
    if (rc == 0 && lc.rc != 0) {
        snprintf(err, err_len, "out of memory indexing the recovered messages");
        rc = -1;
    }
    eng_end(e);
    free(lc.by_key);
    if (rc != 0)
        goto fail;
    if (last_id > e->ids.last_message_id)
        e->ids.last_message_id = last_id;
    memory_rebalance(e); /* later messages' index entries may have pushed earlier bodies out */
    return e;
fail:
    emb_close(e);
    return NULL;
}

static void free_message(struct hnode *node, void *ctx)
{
    message_free(ctx, list_entry(node, struct message, by_id));
}

void emb_close(struct emb *e)
{
    if (!e)
        return;
    emb_wake_all_waiters(e);
    if (e->store)
        store_close(e->store);
    e->store = NULL;
    /* Anyone still waiting for a commit was answered by store_close's final commit;
     * drop the bookkeeping (their owners are being torn down with us). */
    for (int i = 0; i < 2; i++)
        while (!list_empty(&e->commit_wait[i]))
            list_remove(e->commit_wait[i].next);
    hmap_foreach(&e->messages, free_message, e);
    hmap_free(&e->messages);
    free(e->resident.ids);
    projects_free_all(e);
    hmap_free(&e->projects);
    free(e);
}
