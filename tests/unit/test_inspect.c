/* tests/unit/test_inspect.c — the test kit's view of the engine, with an injected clock
 * (memory mode): the observer reports each operation as it happens, with the engine's
 * time and the right fields, in order; the full peek shows every state in reserve order
 * with its deadlines and changes nothing. */
#include <stdio.h>

#include "check.h"
#include "engine_fixture.h"

static const int64_t T0 = 1700000000000LL;

struct seen {
    size_t n;
    enum eng_event_type type[64];
    uint64_t msg_id[64];
    uint32_t count[64];
    int64_t at[64], until[64];
    uint32_t delay[64];
    char rid[64][RESERVATION_ID_HEX + 1];
    char queue[64][32], to[64][32];
    uint64_t cleared[64];
};

static void on_event(void *ctx, const struct eng_event *ev)
{
    struct seen *s = ctx;
    if (s->n >= 64)
        return;
    size_t i = s->n++;
    s->type[i] = ev->type;
    s->msg_id[i] = ev->msg_id;
    s->count[i] = ev->reserved_count;
    s->at[i] = ev->at_ms;
    s->until[i] = ev->until_ms;
    s->delay[i] = ev->delay_s;
    s->cleared[i] = ev->count;
    snprintf(s->rid[i], sizeof(s->rid[i]), "%s", ev->reservation_id ? ev->reservation_id : "");
    snprintf(s->queue[i], sizeof(s->queue[i]), "%s", ev->queue);
    snprintf(s->to[i], sizeof(s->to[i]), "%s", ev->to_queue ? ev->to_queue : "");
}

static void test_observer_reports_each_operation_in_order_with_engine_time(void)
{
    struct engine *e = fix_open_memory(T0);
    struct seen s = {0};
    eng_set_observer(e, on_event, &s);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *r = fix_reserve(e, "q", 1, 30, 0);
    char rid[RESERVATION_ID_HEX + 1];
    memcpy(rid, r->rids[0], sizeof(rid));
    free(r);
    eng_set_time(e, T0 + 1000);
    r = fix_touch(e, "q", id, rid, 60);
    char touched[RESERVATION_ID_HEX + 1];
    memcpy(touched, r->reservation_id, sizeof(touched));
    free(r);
    eng_set_time(e, T0 + 61000); /* the touched reservation runs out */
    r = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(fix_release(e, "q", id, r->rids[0], 5), ENG_OK);
    free(r);
    eng_set_time(e, T0 + 66000);
    r = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(fix_delete(e, "q", id, r->rids[0]), ENG_OK);
    free(r);

    enum eng_event_type want[] = {ENG_EV_POST,   ENG_EV_RESERVE, ENG_EV_TOUCH,
                                  ENG_EV_TIMEOUT, ENG_EV_RESERVE, ENG_EV_RELEASE,
                                  ENG_EV_VISIBLE, ENG_EV_RESERVE, ENG_EV_DELETE};
    CHECK_EQ(s.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < s.n && i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_EQ(s.type[i], want[i]);
        CHECK_EQ(s.msg_id[i], id);
        CHECK_STR(s.queue[i], "q");
    }
    CHECK_EQ(s.at[0], T0);
    CHECK_EQ(s.count[1], 1);
    CHECK_STR(s.rid[1], rid);
    CHECK_EQ(s.until[1], T0 + 30000);
    CHECK_STR(s.rid[2], touched);
    CHECK_EQ(s.count[2], 2);
    CHECK_EQ(s.until[2], T0 + 61000);
    CHECK_EQ(s.at[3], T0 + 61000); /* the timeout fires at its own deadline */
    CHECK_STR(s.rid[3], touched);  /* the reservation that ran out */
    CHECK_EQ(s.count[4], 3);
    CHECK_EQ(s.delay[5], 5);
    CHECK_EQ(s.until[5], T0 + 66000);
    CHECK_EQ(s.at[6], T0 + 66000);
    CHECK_EQ(s.count[8], 4);

    eng_set_observer(e, NULL, NULL);
    fix_post_id(e, "q", "unseen", 0);
    CHECK_EQ(s.n, sizeof(want) / sizeof(want[0]));
    eng_close(e);
}

static void test_observer_reports_dead_letters_expiry_and_clear(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 1,
                                   .has_message_expiration = true, .message_expiration_s = 100};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    struct seen s = {0};
    eng_set_observer(e, on_event, &s);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    eng_set_time(e, T0 + 30000);
    struct call *r = fix_reserve(e, "q", 1, 30, 0); /* reserved once: dead-lettered instead */
    CHECK_EQ(r->n, 0);
    free(r);
    fix_post_id(e, "q", "a", 0);
    fix_post_id(e, "q", "b", 0);
    struct call *c = fix_call();
    eng_clear(e, &c->op, "p", "q");
    CHECK_EQ(fix_status_free(e, c), ENG_OK);
    struct eng_queue_config short_life = {.has_message_expiration = true,
                                          .message_expiration_s = 60};
    CHECK_EQ(fix_put(e, "x", &short_life), ENG_OK);
    uint64_t x = fix_post_id(e, "x", "x", 0);
    eng_set_time(e, T0 + 90000);

    size_t i = 0;
    CHECK_EQ(s.type[i++], ENG_EV_POST);
    CHECK_EQ(s.type[i++], ENG_EV_RESERVE);
    CHECK_EQ(s.type[i++], ENG_EV_TIMEOUT);
    CHECK_EQ(s.type[i], ENG_EV_DEAD_LETTER);
    CHECK_EQ(s.msg_id[i], id);
    CHECK_STR(s.queue[i], "q");
    CHECK_STR(s.to[i], "dlq");
    CHECK_EQ(s.count[i], 1);
    i++;
    CHECK_EQ(s.type[i++], ENG_EV_POST);
    CHECK_EQ(s.type[i++], ENG_EV_POST);
    CHECK_EQ(s.type[i], ENG_EV_CLEAR);
    CHECK_EQ(s.cleared[i], 2);
    CHECK_EQ(s.msg_id[i], 0);
    i++;
    CHECK_EQ(s.type[i++], ENG_EV_POST);
    CHECK_EQ(s.type[i], ENG_EV_EXPIRE);
    CHECK_EQ(s.msg_id[i], x);
    CHECK_EQ(s.at[i], T0 + 30000 + 60000);
    CHECK_EQ(s.n, i + 1);
    eng_close(e);
}

struct view {
    struct eng_op op;
    enum eng_status status;
    size_t n;
    uint64_t ids[16];
    uint8_t state[16];
    uint32_t count[16];
    int64_t due[16], expires[16];
    bool has_rid[16];
    struct eng_queue_info q;
};

static void on_view(struct eng_op *op, const struct eng_result *res)
{
    struct view *v = (struct view *)op;
    v->status = res->status;
    v->n = res->n_messages;
    for (size_t i = 0; i < res->n_messages && i < 16; i++) {
        v->ids[i] = res->messages[i].id;
        v->state[i] = res->messages[i].state;
        v->count[i] = res->messages[i].reserved_count;
        v->due[i] = res->messages[i].due_at_ms;
        v->expires[i] = res->messages[i].expires_at_ms;
        v->has_rid[i] = res->messages[i].has_reservation;
    }
    v->q = res->queue;
    v->q.project = v->q.name = v->q.dead_letter_queue = NULL;
}

static void inspect(struct engine *e, struct view *v, uint32_t n, unsigned states)
{
    memset(v, 0, sizeof(*v));
    v->op.done = on_view;
    eng_inspect(e, &v->op, "p", "q", n, states);
}

static void test_full_peek_shows_every_state_in_reserve_order_and_changes_nothing(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t held = fix_post_id(e, "q", "held", 0);
    free(fix_reserve(e, "q", 1, 40, 0));
    uint64_t later = fix_post_id(e, "q", "later", 100);
    uint64_t sooner = fix_post_id(e, "q", "sooner", 10);
    uint64_t ready = fix_post_id(e, "q", "ready", 0);
    struct view v;
    inspect(e, &v, 100, 0);
    CHECK_EQ(v.status, ENG_OK);
    CHECK_EQ(v.n, 4);
    uint64_t order[] = {ready, sooner, held, later};
    uint8_t states[] = {ENG_MSG_READY, ENG_MSG_DELAYED, ENG_MSG_RESERVED, ENG_MSG_DELAYED};
    int64_t due[] = {0, T0 + 10000, T0 + 40000, T0 + 100000};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(v.ids[i], order[i]);
        CHECK_EQ(v.state[i], states[i]);
        CHECK_EQ(v.due[i], due[i]);
        CHECK_EQ(v.expires[i], T0 + 604800000LL);
        CHECK_EQ(v.has_rid[i], states[i] == ENG_MSG_RESERVED);
    }
    CHECK_EQ(v.count[2], 1);
    CHECK_EQ(v.q.ready, 1);
    CHECK_EQ(v.q.delayed, 2);
    CHECK_EQ(v.q.reserved, 1);
    CHECK_EQ(v.q.next_visible_at_ms, T0 + 10000);

    inspect(e, &v, 2, 0); /* the n soonest */
    CHECK_EQ(v.n, 2);
    CHECK_EQ(v.ids[1], sooner);
    inspect(e, &v, 100, 1u << ENG_MSG_RESERVED);
    CHECK_EQ(v.n, 1);
    CHECK_EQ(v.ids[0], held);

    struct call *r = fix_reserve(e, "q", 1, 30, 0); /* nothing was counted by the peeks */
    CHECK_EQ(r->ids[0], ready);
    CHECK_EQ(r->counts[0], 1);
    free(r);
    memset(&v, 0, sizeof(v));
    v.op.done = on_view;
    eng_inspect(e, &v.op, "p", "none", 10, 0);
    CHECK_EQ(v.status, ENG_QUEUE_NOT_FOUND);
    eng_close(e);
}

CHECK_MAIN(TEST(test_observer_reports_each_operation_in_order_with_engine_time),
           TEST(test_observer_reports_dead_letters_expiry_and_clear),
           TEST(test_full_peek_shows_every_state_in_reserve_order_and_changes_nothing))
