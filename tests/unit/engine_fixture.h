/* tests/unit/engine_fixture.h — drives the engine the way the fronts do, but in plain
 * calls: each helper starts one operation with a `struct call` as its op and keeps a copy
 * of what done() delivered (status, ids, messages, reservation id). The clock is a number
 * the test sets with eng_set_time(); nothing here sleeps. */
#ifndef ANVIL_ENGINE_FIXTURE_H
#define ANVIL_ENGINE_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "../../engine/engine.h"

enum { FIX_MAX = 128 };

/* With a journal, answers come after a commit: tests over a real database set this to a
 * function that runs commits to completion, and the helpers that read a result call it. */
static void (*fix_settle)(struct engine *e);

static inline void fix_wait(struct engine *e)
{
    if (fix_settle)
        fix_settle(e);
}

struct call {
    struct eng_op op;
    int done_count;
    enum eng_status status;
    size_t n;
    uint64_t ids[FIX_MAX];
    char bodies[FIX_MAX][64];
    uint32_t counts[FIX_MAX];
    char rids[FIX_MAX][RESERVATION_ID_HEX + 1];
    char names[FIX_MAX][64];
    size_t n_names;
    char reservation_id[RESERVATION_ID_HEX + 1];
    size_t failed_index;
    struct eng_queue_info queue; /* strings not kept */
    char dead_letter[64];
};

static inline void fix_done(struct eng_op *op, const struct eng_result *res)
{
    struct call *c = (struct call *)op;
    c->done_count++;
    c->status = res->status;
    c->failed_index = res->failed_index;
    c->n = 0;
    for (size_t i = 0; i < res->n_ids && c->n < FIX_MAX; i++)
        c->ids[c->n++] = res->ids[i];
    for (size_t i = 0; i < res->n_messages && i < FIX_MAX; i++) {
        const struct eng_message *m = &res->messages[i];
        c->ids[i] = m->id;
        snprintf(c->bodies[i], sizeof(c->bodies[i]), "%.*s", (int)m->body->len, m->body->data);
        c->counts[i] = m->reserved_count;
        snprintf(c->rids[i], sizeof(c->rids[i]), "%s", m->has_reservation ? m->reservation_id : "");
        c->n = i + 1;
    }
    c->n_names = 0;
    for (size_t i = 0; i < res->n_names && i < FIX_MAX; i++)
        snprintf(c->names[c->n_names++], sizeof(c->names[0]), "%s", res->names[i]);
    memcpy(c->reservation_id, res->reservation_id, sizeof(c->reservation_id));
    c->queue = res->queue;
    c->queue.project = c->queue.name = NULL;
    c->queue.dead_letter_queue = NULL;
    snprintf(c->dead_letter, sizeof(c->dead_letter), "%s",
             res->queue.dead_letter_queue ? res->queue.dead_letter_queue : "");
}

static inline struct call *fix_call(void)
{
    struct call *c = calloc(1, sizeof(*c));
    c->op.done = fix_done;
    c->op.ctx = c;
    c->status = ENG_STATUS_COUNT; /* "not answered" */
    return c;
}

static inline struct engine *fix_open_memory(int64_t now_ms)
{
    char err[256];
    struct eng_options opt = {.durability = DURABILITY_MEMORY, .now_ms = now_ms, .seed = 1};
    return eng_open(&opt, err, sizeof(err));
}

static inline struct call *fix_post(struct engine *e, const char *q, const char *body, uint32_t delay_s)
{
    struct call *c = fix_call();
    struct eng_post_msg m = {.body = body, .body_len = strlen(body), .delay_s = delay_s};
    eng_post(e, &c->op, "p", q, &m, 1);
    return c;
}

static inline uint64_t fix_post_id(struct engine *e, const char *q, const char *body, uint32_t delay_s)
{
    struct call *c = fix_post(e, q, body, delay_s);
    fix_wait(e);
    uint64_t id = c->status == ENG_OK && c->n == 1 ? c->ids[0] : 0;
    free(c);
    return id;
}

static inline struct call *fix_reserve(struct engine *e, const char *q, uint32_t n, uint32_t timeout_s,
                                uint32_t wait_s)
{
    struct call *c = fix_call();
    struct eng_reserve_args a = {.n = n, .timeout_s = timeout_s, .wait_s = wait_s};
    eng_reserve(e, &c->op, "p", q, &a);
    return c;
}

static inline struct call *fix_peek(struct engine *e, const char *q, uint32_t n)
{
    struct call *c = fix_call();
    eng_peek(e, &c->op, "p", q, n);
    return c;
}

static inline size_t fix_peek_n(struct engine *e, const char *q, uint32_t n)
{
    struct call *c = fix_peek(e, q, n);
    fix_wait(e);
    size_t got = c->n;
    free(c);
    return got;
}

static inline struct call *fix_info(struct engine *e, const char *q)
{
    struct call *c = fix_call();
    eng_queue_get(e, &c->op, "p", q);
    return c;
}

static inline enum eng_status fix_status_free(struct engine *e, struct call *c)
{
    fix_wait(e);
    enum eng_status st = c->status;
    free(c);
    return st;
}

static inline enum eng_status fix_delete(struct engine *e, const char *q, uint64_t id, const char *rid)
{
    struct call *c = fix_call();
    eng_delete(e, &c->op, "p", q, id, rid, NULL);
    return fix_status_free(e, c);
}

static inline enum eng_status fix_release(struct engine *e, const char *q, uint64_t id, const char *rid,
                                   uint32_t delay_s)
{
    struct call *c = fix_call();
    eng_release(e, &c->op, "p", q, id, rid, delay_s);
    return fix_status_free(e, c);
}

static inline struct call *fix_touch(struct engine *e, const char *q, uint64_t id, const char *rid,
                              uint32_t timeout_s)
{
    struct call *c = fix_call();
    eng_touch(e, &c->op, "p", q, id, rid, timeout_s);
    return c;
}

static inline enum eng_status fix_put(struct engine *e, const char *q, const struct eng_queue_config *cfg)
{
    struct call *c = fix_call();
    eng_queue_put(e, &c->op, "p", q, cfg);
    return fix_status_free(e, c);
}

static inline uint64_t fix_size(struct engine *e, const char *q)
{
    struct call *c = fix_info(e, q);
    fix_wait(e);
    uint64_t size = c->status == ENG_OK ? c->queue.ready + c->queue.delayed + c->queue.reserved +
                                              c->queue.pushing
                                        : (uint64_t)-1;
    free(c);
    return size;
}

#endif
