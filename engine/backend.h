/* engine/backend.h — what the back ends behind engine.h share: the head of every engine
 * handle, which says which back end it is. engine/engine.c holds the public calls and passes
 * each to the back end the handle belongs to. One back end today, the embedded one
 * (engine/core.h: in memory, SQLite journal); docs/scale-out.md describes the PostgreSQL
 * back end that will sit beside it. */
#ifndef ANVIL_BACKEND_H
#define ANVIL_BACKEND_H

#include "engine.h"

enum eng_backend { ENG_BACKEND_EMBEDDED = 0, ENG_BACKEND_POSTGRES };

/* The first member of every back end's own engine structure. */
struct engine {
    enum eng_backend backend;
    uint64_t fail_writes; /* the test kit: how many more writing calls to refuse (engine.c) */
    eng_commit_fn on_commit; /* told of each finished group commit; NULL: no one */
    void *on_commit_ctx;
};

/* Results (engine.c): a back end fills op->res and moves it out before calling done(). */
void eng_result_reset(struct eng_result *res);
void eng_result_free(struct eng_result *res);
void eng_push_statuses_free(struct eng_push_status *all, size_t n); /* pushing.c */

/* The PostgreSQL back end (pg.c): engine.h's calls over libpq. */
struct pgb;
struct pgb *pg_open(const struct eng_options *opt, char *err, size_t err_len);
void pg_close(struct pgb *e);
void pg_set_time(struct pgb *e, int64_t now_ms);
int64_t pg_now_ms(const struct pgb *e);
void pg_wipe(struct pgb *e, struct eng_op *op, const char *project); /* NULL: every project */
int64_t pg_next_deadline(const struct pgb *e);
int pg_poll_fd(const struct pgb *e);
void pg_on_readable(struct pgb *e);
void pg_flush(struct pgb *e);
void pg_wake_all_waiters(struct pgb *e);
bool pg_idle(const struct pgb *e);
void pg_stats(const struct pgb *e, struct eng_stats *out);
/* Only the long-poll waiters: the counters and depths live in the database (not yet). */
void pg_metrics(const struct pgb *e, struct eng_metrics *out);
void pg_cancel(struct pgb *e, struct eng_op *op);
void pg_queue_list(struct pgb *e, struct eng_op *op, const char *project,
                    const char *prefix, const char *previous, uint32_t per_page);
void pg_queue_get(struct pgb *e, struct eng_op *op, const char *project, const char *name);
void pg_queue_put(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg);
void pg_queue_patch(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg);
void pg_queue_delete(struct pgb *e, struct eng_op *op, const char *project, const char *name);
void pg_subscribers(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n);
void pg_post(struct pgb *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n);
void pg_post_existing(struct pgb *e, struct eng_op *op, const char *project,
                       const char *name, const struct eng_post_msg *msgs, size_t n);
void pg_reserve(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args);
void pg_peek(struct pgb *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n);
void pg_get(struct pgb *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id);
void pg_delete(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name);
void pg_delete_many(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n);
void pg_clear(struct pgb *e, struct eng_op *op, const char *project, const char *name);
void pg_touch(struct pgb *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s);
void pg_release(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s);
void pg_change_visibility(struct pgb *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s);
void pg_set_pusher(struct pgb *e, const struct eng_pusher *pusher);
void pg_push_answer(struct pgb *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status);
void pg_push_statuses(struct pgb *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id);

#endif
