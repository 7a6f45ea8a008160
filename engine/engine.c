/* engine/engine.c — engine.h's calls, each passed to the back end the engine
 * belongs to (see backend.h). Only the embedded back end exists so far, so
 * every call goes there; the PostgreSQL back end (docs/scale-out.md) will be
 * chosen here by eng_options. */
#include "core.h"

static struct emb *emb(struct engine *e)
{
    return (struct emb *)e; /* struct emb begins with its struct engine */
}

static const struct emb *cemb(const struct engine *e)
{
    return (const struct emb *)e;
}

struct engine *eng_open(const struct eng_options *opt, char *err, size_t err_len)
{
    struct emb *e = emb_open(opt, err, err_len);
    return e ? &e->base : NULL;
}

void eng_close(struct engine *e)
{
    if (e)
        emb_close(emb(e));
}

void eng_set_time(struct engine *e, int64_t now_ms)
{
    emb_set_time(emb(e), now_ms);
}

int64_t eng_next_deadline(const struct engine *e)
{
    return emb_next_deadline(cemb(e));
}

int eng_poll_fd(const struct engine *e)
{
    return emb_poll_fd(cemb(e));
}

void eng_on_readable(struct engine *e)
{
    emb_on_readable(emb(e));
}

void eng_flush(struct engine *e)
{
    emb_flush(emb(e));
}

void eng_wake_all_waiters(struct engine *e)
{
    emb_wake_all_waiters(emb(e));
}

bool eng_idle(const struct engine *e)
{
    return emb_idle(cemb(e));
}

void eng_stats(const struct engine *e, struct eng_stats *out)
{
    emb_stats(cemb(e), out);
}

void eng_cancel(struct engine *e, struct eng_op *op)
{
    emb_cancel(emb(e), op);
}

void eng_queue_list(struct engine *e, struct eng_op *op, const char *project, const char *prefix,
                    const char *previous, uint32_t per_page)
{
    emb_queue_list(emb(e), op, project, prefix, previous, per_page);
}

void eng_queue_get(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    emb_queue_get(emb(e), op, project, name);
}

void eng_queue_put(struct engine *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg)
{
    emb_queue_put(emb(e), op, project, name, cfg);
}

void eng_queue_patch(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg)
{
    emb_queue_patch(emb(e), op, project, name, cfg);
}

void eng_queue_delete(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    emb_queue_delete(emb(e), op, project, name);
}

void eng_subscribers(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n)
{
    emb_subscribers(emb(e), op, project, name, edit, subs, n);
}

void eng_post(struct engine *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n)
{
    emb_post(emb(e), op, project, name, msgs, n);
}

void eng_post_existing(struct engine *e, struct eng_op *op, const char *project, const char *name,
                       const struct eng_post_msg *msgs, size_t n)
{
    emb_post_existing(emb(e), op, project, name, msgs, n);
}

void eng_reserve(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args)
{
    emb_reserve(emb(e), op, project, name, args);
}

void eng_peek(struct engine *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n)
{
    emb_peek(emb(e), op, project, name, n);
}

void eng_get(struct engine *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id)
{
    emb_get(emb(e), op, project, name, id);
}

void eng_delete(struct engine *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name)
{
    emb_delete(emb(e), op, project, name, id, reservation_id, subscriber_name);
}

void eng_delete_many(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n)
{
    emb_delete_many(emb(e), op, project, name, items, n);
}

void eng_clear(struct engine *e, struct eng_op *op, const char *project, const char *name)
{
    emb_clear(emb(e), op, project, name);
}

void eng_touch(struct engine *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s)
{
    emb_touch(emb(e), op, project, name, id, reservation_id, timeout_s);
}

void eng_release(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s)
{
    emb_release(emb(e), op, project, name, id, reservation_id, delay_s);
}

void eng_change_visibility(struct engine *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s)
{
    emb_change_visibility(emb(e), op, project, name, id, reservation_id, timeout_s);
}

void eng_set_pusher(struct engine *e, const struct eng_pusher *pusher)
{
    emb_set_pusher(emb(e), pusher);
}

void eng_push_answer(struct engine *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status)
{
    emb_push_answer(emb(e), msg_id, subscriber, try_no, slot, status);
}

void eng_push_statuses(struct engine *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id)
{
    emb_push_statuses(emb(e), op, project, name, id);
}
