/* engine/engine.c — engine.h's calls, each passed to the back end the engine
 * belongs to (see backend.h): the embedded one, or the PostgreSQL one
 * (docs/scale-out.md) when eng_options names a database. Calls that change state
 * pass the test kit's storage faults first (eng_fail_next_writes). */
#include "core.h"
#include "push.h"

#include <stdlib.h>
#include <string.h>

/* ---- what every back end uses ---- */

void eng_result_reset(struct eng_result *res)
{
    memset(res, 0, sizeof(*res));
}

void eng_result_free(struct eng_result *res)
{
    for (size_t i = 0; i < res->n_messages; i++) {
        blob_unref(res->messages[i].body);
        blob_unref(res->messages[i].attributes);
        blob_unref(res->messages[i].push_headers);
    }
    free(res->messages);
    free(res->ids);
    for (size_t i = 0; i < res->n_names; i++)
        free(res->names[i]);
    free(res->names);
    free(res->queue.project);
    free(res->queue.name);
    free(res->queue.dead_letter_queue);
    eng_push_statuses_free(res->statuses, res->n_statuses);
    push_info_free(&res->queue.push);
    blob_unref(res->queue.attributes);
    eng_result_reset(res);
}

/* ---- the calls ---- */

void eng_fail_next_writes(struct engine *e, uint64_t n)
{
    e->fail_writes = n;
}

uint64_t eng_writes_to_fail(const struct engine *e)
{
    return e->fail_writes;
}

/* True when the test kit said this write must fail: op is answered ENG_STORAGE_UNAVAILABLE
 * (before the call returns, as a back end may) and the back end never sees the call. */
static bool write_refused(struct engine *e, struct eng_op *op)
{
    if (e->fail_writes == 0)
        return false;
    e->fail_writes--;
    struct eng_result res = {.status = ENG_STORAGE_UNAVAILABLE};
    op->in_flight = false;
    op->done(op, &res);
    return true;
}

static struct emb *emb(struct engine *e)
{
    return (struct emb *)e; /* struct emb begins with its struct engine */
}

static const struct emb *cemb(const struct engine *e)
{
    return (const struct emb *)e;
}

static bool on_pg(const struct engine *e)
{
    return e->backend == ENG_BACKEND_POSTGRES;
}

static struct pgb *pgb(struct engine *e)
{
    return (struct pgb *)e; /* struct pgb begins with its struct engine */
}

static const struct pgb *cpgb(const struct engine *e)
{
    return (const struct pgb *)e;
}

struct engine *eng_open(const struct eng_options *opt, char *err, size_t err_len)
{
    if (opt->backend_url) {
        struct pgb *b = pg_open(opt, err, err_len);
        return (struct engine *)b;
    }
    struct emb *e = emb_open(opt, err, err_len);
    return e ? &e->base : NULL;
}

void eng_close(struct engine *e)
{
    if (e && on_pg(e))
        pg_close(pgb(e));
    else if (e)
        emb_close(emb(e));
}

void eng_set_time(struct engine *e, int64_t now_ms)
{
    if (on_pg(e))
        pg_set_time(pgb(e), now_ms);
    else
        emb_set_time(emb(e), now_ms);
}

/* One deadline at a time, so every timer fires with the engine's time at its own deadline
 * and in order: a retry scheduled by a timer that fired is itself due within the jump. */
void eng_advance_to(struct engine *e, int64_t target_ms)
{
    if (on_pg(e)) {
        pg_set_time(pgb(e), target_ms);
        return;
    }
    struct emb *m = emb(e);
    for (;;) {
        int64_t due = tw_next_deadline(&m->wheel);
        if (due > target_ms)
            break;
        emb_set_time(m, due > m->now_ms ? due : m->now_ms + 1);
    }
    emb_set_time(m, target_ms);
}

int64_t eng_now_ms(const struct engine *e)
{
    return on_pg(e) ? pg_now_ms(cpgb(e)) : cemb(e)->now_ms;
}

bool eng_clock_settable(const struct engine *e)
{
    return !on_pg(e);
}

int64_t eng_next_deadline(const struct engine *e)
{
    if (on_pg(e))
        return pg_next_deadline(cpgb(e));
    return emb_next_deadline(cemb(e));
}

int eng_poll_fd(const struct engine *e)
{
    if (on_pg(e))
        return pg_poll_fd(cpgb(e));
    return emb_poll_fd(cemb(e));
}

void eng_on_readable(struct engine *e)
{
    if (on_pg(e))
        pg_on_readable(pgb(e));
    else
        emb_on_readable(emb(e));
}

void eng_flush(struct engine *e)
{
    if (on_pg(e))
        pg_flush(pgb(e));
    else
        emb_flush(emb(e));
}

void eng_wake_all_waiters(struct engine *e)
{
    if (on_pg(e))
        pg_wake_all_waiters(pgb(e));
    else
        emb_wake_all_waiters(emb(e));
}

bool eng_idle(const struct engine *e)
{
    if (on_pg(e))
        return pg_idle(cpgb(e));
    return emb_idle(cemb(e));
}

void eng_stats(const struct engine *e, struct eng_stats *out)
{
    memset(out, 0, sizeof(*out)); /* what a back end does not have reads 0 */
    if (on_pg(e))
        pg_stats(cpgb(e), out);
    else
        emb_stats(cemb(e), out);
}

int eng_metrics(const struct engine *e, size_t queue_limit, struct eng_metrics *out)
{
    memset(out, 0, sizeof(*out));
    if (on_pg(e)) {
        pg_metrics(cpgb(e), out);
        return 0;
    }
    return emb_metrics(cemb(e), queue_limit, out);
}

void eng_metrics_free(struct eng_metrics *m)
{
    free(m->queues);
    m->queues = NULL;
    m->n_queues = 0;
}

void eng_cancel(struct engine *e, struct eng_op *op)
{
    if (on_pg(e))
        pg_cancel(pgb(e), op);
    else
        emb_cancel(emb(e), op);
}

void eng_queue_list(struct engine *e, struct eng_op *op, const char *project, const char *prefix,
                    const char *previous, uint32_t per_page)
{
    if (on_pg(e))
        pg_queue_list(pgb(e), op, project, prefix, previous, per_page);
    else
        emb_queue_list(emb(e), op, project, prefix, previous, per_page);
}

void eng_queue_get(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    if (on_pg(e))
        pg_queue_get(pgb(e), op, project, name);
    else
        emb_queue_get(emb(e), op, project, name);
}

void eng_queue_put(struct engine *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_queue_put(pgb(e), op, project, name, cfg);
    else
        emb_queue_put(emb(e), op, project, name, cfg);
}

void eng_queue_patch(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_queue_patch(pgb(e), op, project, name, cfg);
    else
        emb_queue_patch(emb(e), op, project, name, cfg);
}

void eng_queue_delete(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_queue_delete(pgb(e), op, project, name);
    else
        emb_queue_delete(emb(e), op, project, name);
}

void eng_subscribers(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_subscribers(pgb(e), op, project, name, edit, subs, n);
    else
        emb_subscribers(emb(e), op, project, name, edit, subs, n);
}

void eng_post(struct engine *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_post(pgb(e), op, project, name, msgs, n);
    else
        emb_post(emb(e), op, project, name, msgs, n);
}

void eng_post_existing(struct engine *e, struct eng_op *op, const char *project, const char *name,
                       const struct eng_post_msg *msgs, size_t n)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_post_existing(pgb(e), op, project, name, msgs, n);
    else
        emb_post_existing(emb(e), op, project, name, msgs, n);
}

void eng_reserve(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_reserve(pgb(e), op, project, name, args);
    else
        emb_reserve(emb(e), op, project, name, args);
}

void eng_peek(struct engine *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n)
{
    if (on_pg(e))
        pg_peek(pgb(e), op, project, name, n);
    else
        emb_peek(emb(e), op, project, name, n);
}

void eng_get(struct engine *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id)
{
    if (on_pg(e))
        pg_get(pgb(e), op, project, name, id);
    else
        emb_get(emb(e), op, project, name, id);
}

void eng_delete(struct engine *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_delete(pgb(e), op, project, name, id, reservation_id, subscriber_name);
    else
        emb_delete(emb(e), op, project, name, id, reservation_id, subscriber_name);
}

void eng_delete_many(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_delete_many(pgb(e), op, project, name, items, n);
    else
        emb_delete_many(emb(e), op, project, name, items, n);
}

void eng_clear(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_clear(pgb(e), op, project, name);
    else
        emb_clear(emb(e), op, project, name);
}

void eng_touch(struct engine *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_touch(pgb(e), op, project, name, id, reservation_id, timeout_s);
    else
        emb_touch(emb(e), op, project, name, id, reservation_id, timeout_s);
}

void eng_release(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_release(pgb(e), op, project, name, id, reservation_id, delay_s);
    else
        emb_release(emb(e), op, project, name, id, reservation_id, delay_s);
}

void eng_change_visibility(struct engine *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s)
{
    if (write_refused(e, op))
        return;
    if (on_pg(e))
        pg_change_visibility(pgb(e), op, project, name, id, reservation_id, timeout_s);
    else
        emb_change_visibility(emb(e), op, project, name, id, reservation_id, timeout_s);
}

void eng_set_pusher(struct engine *e, const struct eng_pusher *pusher)
{
    if (on_pg(e))
        pg_set_pusher(pgb(e), pusher);
    else
        emb_set_pusher(emb(e), pusher);
}

void eng_push_answer(struct engine *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status)
{
    if (on_pg(e))
        pg_push_answer(pgb(e), msg_id, subscriber, try_no, slot, status);
    else
        emb_push_answer(emb(e), msg_id, subscriber, try_no, slot, status);
}

void eng_push_statuses(struct engine *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id)
{
    if (on_pg(e))
        pg_push_statuses(pgb(e), op, project, name, id);
    else
        emb_push_statuses(emb(e), op, project, name, id);
}

/* ---- fixtures (the test kit): the embedded back end only, so far ---- */

bool eng_has_fixtures(const struct engine *e)
{
    return !on_pg(e);
}

/* The answer of a call this back end does not have. */
static void unsupported(struct eng_op *op)
{
    struct eng_result res;
    eng_result_reset(&res);
    res.status = ENG_BACKEND_UNSUPPORTED;
    op->in_flight = false;
    op->done(op, &res);
}

void eng_wipe(struct engine *e, struct eng_op *op, const char *project)
{
    if (on_pg(e))
        pg_wipe(pgb(e), op, project);
    else
        emb_wipe(emb(e), op, project);
}

void eng_export(struct engine *e, struct eng_op *op, const char *project, struct eng_fixture *out)
{
    if (on_pg(e))
        unsupported(op);
    else
        emb_export(emb(e), op, project, out);
}

void eng_import(struct engine *e, struct eng_op *op, const struct eng_fixture *fx)
{
    if (on_pg(e))
        unsupported(op);
    else
        emb_import(emb(e), op, fx);
}

/* ---- the test kit's view ---- */

void eng_inspect(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 uint32_t n, unsigned states)
{
    if (!on_pg(e)) {
        emb_inspect(emb(e), op, project, name, n, states);
        return;
    }
    /* The PostgreSQL back end's messages are rows other nodes change too; the kit's full
     * peek is for the embedded back end (docs/testing-with-anvil.md). */
    struct eng_result res = {.status = ENG_BACKEND_UNSUPPORTED};
    op->done(op, &res);
}

void eng_set_commit_observer(struct engine *e, eng_commit_fn fn, void *ctx)
{
    e->on_commit = fn;
    e->on_commit_ctx = ctx;
}

void eng_set_observer(struct engine *e, eng_observer_fn fn, void *ctx)
{
    if (on_pg(e))
        return; /* no events: its changes are SQL statements, several nodes' at once */
    emb(e)->observer = fn;
    emb(e)->observer_ctx = ctx;
}
