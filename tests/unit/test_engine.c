/* tests/unit/test_engine.c — the queue engine's behaviour with an injected clock (memory
 * mode, so every answer is immediate): ordering, reservations that end exactly at their
 * deadline, delays, expiration, touch, release, delete rules, dead letters, long-poll
 * waiters, queue configuration and listing. Each test names the behaviour it proves. */
#include <stdio.h>

#include "check.h"
#include "engine_fixture.h"

static const int64_t T0 = 1700000000000LL;

static void test_reserve_returns_oldest_first_with_count_and_reservation(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    CHECK(a && b && a < b);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->status, ENG_OK);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], a);
    CHECK_STR(r->bodies[0], "a");
    CHECK_EQ(r->counts[0], 1);
    CHECK_EQ(strlen(r->rids[0]), RESERVATION_ID_HEX);
    free(r);
    r = fix_reserve(e, "q", 5, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], b);
    free(r);
    r = fix_reserve(e, "q", 5, 0, 0);
    CHECK_EQ(r->status, ENG_OK);
    CHECK_EQ(r->n, 0);
    free(r);
    eng_close(e);
}

static void test_reservation_ends_exactly_at_its_timeout(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *r = fix_reserve(e, "q", 1, 30, 0);
    char old_rid[RESERVATION_ID_HEX + 1];
    memcpy(old_rid, r->rids[0], sizeof(old_rid));
    free(r);
    eng_set_time(e, T0 + 29999);
    r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->n, 0); /* still reserved one millisecond before */
    free(r);
    eng_set_time(e, T0 + 30000);
    r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], id);
    CHECK_EQ(r->counts[0], 2);
    CHECK(strcmp(r->rids[0], old_rid) != 0);
    CHECK_EQ(fix_delete(e, "q", id, old_rid), ENG_RESERVATION_MISMATCH);
    CHECK_EQ(fix_delete(e, "q", id, r->rids[0]), ENG_OK);
    free(r);
    eng_close(e);
}

static void test_reservation_defaults_to_the_queue_timeout(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_timeout = true, .message_timeout_s = 45};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 0, 0));
    eng_set_time(e, T0 + 44999);
    CHECK_EQ(fix_peek_n(e, "q", 1), 0);
    eng_set_time(e, T0 + 45000);
    CHECK_EQ(fix_peek_n(e, "q", 1), 1);
    eng_close(e);
}

static void test_timed_out_message_goes_back_to_the_front(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    uint64_t b = fix_post_id(e, "q", "b", 0);
    eng_set_time(e, T0 + 30000);
    struct call *r = fix_reserve(e, "q", 2, 0, 0);
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->ids[0], a);
    CHECK_EQ(r->ids[1], b);
    free(r);
    eng_close(e);
}

static void test_released_message_goes_to_the_front(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "a", 0);
    uint64_t b = fix_post_id(e, "q", "b", 0);
    fix_post_id(e, "q", "c", 0);
    struct call *r = fix_reserve(e, "q", 2, 0, 0); /* a, b */
    CHECK_EQ(fix_release(e, "q", b, r->rids[1], 0), ENG_OK);
    free(r);
    r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->ids[0], b); /* before c, which was waiting longer */
    free(r);
    eng_close(e);
}

static void test_release_with_delay_hides_the_message_until_then(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0);
    uint64_t b = fix_post_id(e, "q", "b", 0);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(fix_release(e, "q", a, r->rids[0], 10), ENG_OK);
    free(r);
    CHECK_EQ(fix_size(e, "q"), 2);
    eng_set_time(e, T0 + 9999);
    r = fix_peek(e, "q", 5);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], b);
    free(r);
    eng_set_time(e, T0 + 10000);
    r = fix_peek(e, "q", 5);
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->ids[0], a); /* released messages go to the front */
    free(r);
    eng_close(e);
}

static void test_delayed_post_becomes_ready_at_the_back_when_due(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t late = fix_post_id(e, "q", "late", 5);
    uint64_t now = fix_post_id(e, "q", "now", 0);
    struct call *info = fix_info(e, "q");
    CHECK_EQ(info->queue.delayed, 1);
    CHECK_EQ(info->queue.ready, 1);
    free(info);
    eng_set_time(e, T0 + 4999);
    struct call *r = fix_peek(e, "q", 5);
    CHECK_EQ(r->n, 1);
    free(r);
    eng_set_time(e, T0 + 5000);
    r = fix_peek(e, "q", 5);
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->ids[0], now);
    CHECK_EQ(r->ids[1], late);
    free(r);
    eng_close(e);
}

static void test_messages_expire_in_any_state(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_expiration = true, .message_expiration_s = 100};
    fix_put(e, "q", &cfg);
    fix_post_id(e, "q", "ready", 0);
    fix_post_id(e, "q", "reserved", 0);
    fix_post_id(e, "q", "delayed", 500);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    free(r);
    r = fix_reserve(e, "q", 1, 86400, 0); /* "reserved" held far past expiry */
    uint64_t held = r->ids[0];
    char rid[RESERVATION_ID_HEX + 1];
    memcpy(rid, r->rids[0], sizeof(rid));
    free(r);
    eng_set_time(e, T0 + 99999);
    CHECK_EQ(fix_size(e, "q"), 3);
    eng_set_time(e, T0 + 100000);
    CHECK_EQ(fix_size(e, "q"), 0);
    CHECK_EQ(fix_delete(e, "q", held, rid), ENG_MESSAGE_NOT_FOUND);
    eng_close(e);
}

static void test_touch_returns_new_reservation_and_invalidates_old(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *r = fix_reserve(e, "q", 1, 30, 0);
    eng_set_time(e, T0 + 20000);
    struct call *t = fix_touch(e, "q", id, r->rids[0], 60);
    CHECK_EQ(t->status, ENG_OK);
    CHECK(strcmp(t->reservation_id, r->rids[0]) != 0);
    /* the old reservation's deadline (T0 + 30 s) no longer applies */
    eng_set_time(e, T0 + 79999);
    CHECK_EQ(fix_peek_n(e, "q", 1), 0);
    CHECK_EQ(fix_delete(e, "q", id, r->rids[0]), ENG_RESERVATION_MISMATCH);
    struct call *again = fix_touch(e, "q", id, r->rids[0], 0);
    CHECK_EQ(again->status, ENG_RESERVATION_MISMATCH);
    free(again);
    struct call *g = fix_call();
    eng_get(e, &g->op, "p", "q", id);
    CHECK_EQ(g->counts[0], 2); /* a touch counts as a reservation */
    free(g);
    CHECK_EQ(fix_delete(e, "q", id, t->reservation_id), ENG_OK);
    free(r);
    free(t);
    eng_close(e);
}

static void test_touch_and_release_need_a_reservation(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *t = fix_touch(e, "q", id, NULL, 0);
    CHECK_EQ(t->status, ENG_RESERVATION_REQUIRED);
    free(t);
    t = fix_touch(e, "q", id, "0123456789abcdef0123456789abcdef", 0);
    CHECK_EQ(t->status, ENG_RESERVATION_MISMATCH); /* not reserved at all */
    free(t);
    CHECK_EQ(fix_release(e, "q", id, "", 0), ENG_RESERVATION_REQUIRED);
    CHECK_EQ(fix_release(e, "q", id, "not-hex", 0), ENG_RESERVATION_MISMATCH);
    CHECK_EQ(fix_release(e, "q", id + 1000, "x", 0), ENG_MESSAGE_NOT_FOUND);
    eng_close(e);
}

static void test_delete_rules_follow_the_reservation(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    CHECK_EQ(fix_delete(e, "q", a, "0123456789abcdef0123456789abcdef"), ENG_RESERVATION_MISMATCH);
    CHECK_EQ(fix_delete(e, "q", a, ""), ENG_OK); /* unreserved: by id alone */
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->ids[0], b);
    CHECK_EQ(fix_delete(e, "q", b, NULL), ENG_RESERVATION_MISMATCH);
    CHECK_EQ(fix_delete(e, "q", b, "ffffffffffffffffffffffffffffffff"), ENG_RESERVATION_MISMATCH);
    CHECK_EQ(fix_delete(e, "q", b, r->rids[0]), ENG_OK);
    CHECK_EQ(fix_delete(e, "q", b, r->rids[0]), ENG_MESSAGE_NOT_FOUND);
    CHECK_EQ(fix_delete(e, "nope", b, NULL), ENG_QUEUE_NOT_FOUND);
    free(r);
    eng_close(e);
}

static void test_message_of_another_queue_is_not_found(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q1", "a", 0);
    fix_post_id(e, "q2", "b", 0);
    CHECK_EQ(fix_delete(e, "q2", a, NULL), ENG_MESSAGE_NOT_FOUND);
    struct call *g = fix_call();
    eng_get(e, &g->op, "p", "q2", a);
    CHECK_EQ(g->status, ENG_MESSAGE_NOT_FOUND);
    free(g);
    eng_close(e);
}

static void test_delete_many_is_all_or_nothing(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    struct eng_delete_item items[3] = {{.id = a}, {.id = b}, {.id = b + 12345}};
    struct call *c = fix_call();
    eng_delete_many(e, &c->op, "p", "q", items, 3);
    CHECK_EQ(c->status, ENG_MESSAGE_NOT_FOUND);
    CHECK_EQ(c->failed_index, 2);
    free(c);
    CHECK_EQ(fix_size(e, "q"), 2);
    items[2].id = a; /* listed twice: deleted once, no harm */
    c = fix_call();
    eng_delete_many(e, &c->op, "p", "q", items, 3);
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_close(e);
}

static void test_clear_removes_ready_delayed_and_reserved(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "a", 0);
    fix_post_id(e, "q", "b", 0);
    fix_post_id(e, "q", "c", 60);
    free(fix_reserve(e, "q", 1, 0, 0));
    CHECK_EQ(fix_size(e, "q"), 3);
    struct call *c = fix_call();
    eng_clear(e, &c->op, "p", "q");
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_set_time(e, T0 + 120000); /* no timer of a cleared message may fire */
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_close(e);
}

static void test_peek_and_get_change_nothing(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0);
    struct call *p = fix_peek(e, "q", 10);
    CHECK_EQ(p->n, 1);
    CHECK_EQ(p->counts[0], 0);
    CHECK_STR(p->rids[0], "");
    free(p);
    struct call *g = fix_call();
    eng_get(e, &g->op, "p", "q", a);
    CHECK_EQ(g->status, ENG_OK);
    CHECK_STR(g->bodies[0], "a");
    free(g);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->counts[0], 1);
    free(r);
    eng_close(e);
}

static void test_reserve_with_delete_removes_the_messages(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "a", 0);
    fix_post_id(e, "q", "b", 0);
    struct call *c = fix_call();
    struct eng_reserve_args args = {.n = 5, .delete_msgs = true};
    eng_reserve(e, &c->op, "p", "q", &args);
    CHECK_EQ(c->n, 2);
    free(c);
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_close(e);
}

static void test_dead_letter_moves_message_after_max_reservations(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 2};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    uint64_t id = fix_post_id(e, "q", "poison", 0);
    for (int i = 1; i <= 2; i++) {
        struct call *r = fix_reserve(e, "q", 1, 30, 0);
        CHECK_EQ(r->n, 1);
        CHECK_EQ(r->counts[0], i);
        free(r);
        eng_set_time(e, T0 + 30000LL * i);
    }
    struct call *r = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(r->n, 0); /* moved, not returned */
    free(r);
    CHECK_EQ(fix_size(e, "q"), 0);
    r = fix_reserve(e, "dlq", 1, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], id);
    CHECK_STR(r->bodies[0], "poison");
    CHECK_EQ(r->counts[0], 3);
    free(r);
    struct call *info = fix_info(e, "dlq");
    CHECK_EQ(info->queue.total_messages, 1);
    free(info);
    eng_close(e);
}

static void test_dead_letter_restarts_expiration_with_the_target_queue(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config dlq = {.has_message_expiration = true, .message_expiration_s = 1000};
    struct eng_queue_config src = {.has_message_expiration = true, .message_expiration_s = 100,
                                   .has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 1};
    fix_put(e, "dlq", &dlq);
    fix_put(e, "q", &src);
    fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    eng_set_time(e, T0 + 30000);
    free(fix_reserve(e, "q", 1, 30, 0)); /* moves it at T0 + 30 s */
    eng_set_time(e, T0 + 200000);        /* past the first queue's expiration */
    CHECK_EQ(fix_size(e, "dlq"), 1);
    eng_set_time(e, T0 + 30000 + 1000000);
    CHECK_EQ(fix_size(e, "dlq"), 0);
    eng_close(e);
}

static void test_dead_letter_to_itself_or_in_a_loop_is_refused(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_dead_letter_queue = true, .dead_letter_queue = "a"};
    CHECK_EQ(fix_put(e, "a", &cfg), ENG_DEAD_LETTER_SELF);
    cfg.dead_letter_queue = "b";
    CHECK_EQ(fix_put(e, "a", &cfg), ENG_OK);
    cfg.dead_letter_queue = "c";
    CHECK_EQ(fix_put(e, "b", &cfg), ENG_OK);
    cfg.dead_letter_queue = "a";
    CHECK_EQ(fix_put(e, "c", &cfg), ENG_DEAD_LETTER_CYCLE);
    struct eng_queue_config max_only = {.has_dead_letter_max = true, .dead_letter_max = 3};
    CHECK_EQ(fix_put(e, "d", &max_only), ENG_DEAD_LETTER_NAME);
    CHECK_EQ(fix_put(e, "a", &max_only), ENG_OK); /* a has a dead-letter queue already */
    struct eng_queue_config remove = {.has_dead_letter_queue = true, .dead_letter_queue = ""};
    CHECK_EQ(fix_put(e, "a", &remove), ENG_OK);
    struct call *info = fix_info(e, "a");
    CHECK_STR(info->dead_letter, "");
    free(info);
    eng_close(e);
}

static void test_queue_type_is_fixed_and_posts_to_push_queues_are_refused(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config push = {.has_push = true};
    CHECK_EQ(fix_put(e, "q", &push), ENG_NO_SUBSCRIBERS);
    struct eng_subscriber s = {.name = "s", .url = "http://127.0.0.1:9/"};
    push.push = (struct eng_push_config){.has_subscribers = true, .subscribers = &s, .n_subscribers = 1};
    CHECK_EQ(fix_put(e, "pq", &push), ENG_OK);
    struct call *info = fix_info(e, "pq");
    CHECK_EQ(info->queue.type, QUEUE_MULTICAST);
    free(info);
    struct call *posted = fix_post(e, "pq", "x", 0); /* nothing would deliver it yet */
    CHECK_EQ(posted->status, ENG_PUSH_UNSUPPORTED);
    free(posted);
    CHECK_EQ(fix_size(e, "pq"), 0);
    CHECK_EQ(fix_put(e, "pq", &(struct eng_queue_config){.has_type = true, .type = QUEUE_PULL}),
             ENG_TYPE_IMMUTABLE);
    struct eng_queue_config pull = {.has_type = true, .type = QUEUE_PULL};
    CHECK_EQ(fix_put(e, "q", &pull), ENG_OK);
    struct eng_queue_config uni = {.has_type = true, .type = QUEUE_UNICAST};
    CHECK_EQ(fix_put(e, "q", &uni), ENG_TYPE_IMMUTABLE);
    struct call *c = fix_call();
    struct eng_queue_config nothing = {0};
    eng_queue_patch(e, &c->op, "p", "missing", &nothing);
    CHECK_EQ(c->status, ENG_QUEUE_NOT_FOUND);
    free(c);
    eng_close(e);
}

static void test_put_updates_an_existing_queue(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_timeout = true, .message_timeout_s = 120};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    fix_post_id(e, "q", "m", 0);
    struct eng_queue_config cfg2 = {.has_message_expiration = true, .message_expiration_s = 3600};
    CHECK_EQ(fix_put(e, "q", &cfg2), ENG_OK);
    struct call *info = fix_info(e, "q");
    CHECK_EQ(info->queue.message_timeout_s, 120);
    CHECK_EQ(info->queue.message_expiration_s, 3600);
    CHECK_EQ(info->queue.ready, 1);
    CHECK_EQ(info->queue.total_messages, 1);
    free(info);
    eng_close(e);
}

static void test_list_pages_by_previous_and_filters_by_prefix(void)
{
    struct engine *e = fix_open_memory(T0);
    const char *names[] = {"cats", "apple", "car", "dog", "cart", "b"};
    for (size_t i = 0; i < 6; i++)
        fix_post_id(e, names[i], "x", 0);
    struct call *c = fix_call();
    eng_queue_list(e, &c->op, "p", NULL, NULL, 3);
    CHECK_EQ(c->n_names, 3);
    CHECK_STR(c->names[0], "apple");
    CHECK_STR(c->names[1], "b");
    CHECK_STR(c->names[2], "car");
    free(c);
    c = fix_call();
    eng_queue_list(e, &c->op, "p", NULL, "car", 10);
    CHECK_EQ(c->n_names, 3);
    CHECK_STR(c->names[0], "cart");
    free(c);
    c = fix_call();
    eng_queue_list(e, &c->op, "p", "ca", "cap", 10); /* previous need not exist */
    CHECK_EQ(c->n_names, 3);
    CHECK_STR(c->names[0], "car");
    CHECK_STR(c->names[2], "cats");
    free(c);
    c = fix_call();
    eng_queue_list(e, &c->op, "other", NULL, NULL, 10);
    CHECK_EQ(c->status, ENG_OK);
    CHECK_EQ(c->n_names, 0);
    free(c);
    eng_close(e);
}

static void test_projects_do_not_share_queues(void)
{
    struct engine *e = fix_open_memory(T0);
    struct call *c = fix_call();
    struct eng_post_msg m = {.body = "x", .body_len = 1};
    eng_post(e, &c->op, "p1", "q", &m, 1);
    free(c);
    c = fix_call();
    eng_queue_get(e, &c->op, "p2", "q");
    CHECK_EQ(c->status, ENG_QUEUE_NOT_FOUND);
    free(c);
    eng_close(e);
}

static void test_deleted_queue_is_gone_with_its_messages(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "a", 30);
    free(fix_reserve(e, "q", 1, 0, 0));
    fix_post_id(e, "q", "b", 0);
    struct call *c = fix_call();
    eng_queue_delete(e, &c->op, "p", "q");
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    CHECK_EQ(fix_size(e, "q"), (uint64_t)-1);
    eng_set_time(e, T0 + 100000);
    struct eng_stats st;
    eng_stats(e, &st);
    CHECK_EQ(st.messages, 0);
    CHECK_EQ(st.queues, 0);
    eng_close(e);
}

/* ---- long polling ---- */

static void test_waiter_is_served_by_the_next_post(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "first", 0);
    free(fix_reserve(e, "q", 1, 0, 0));
    struct call *w = fix_reserve(e, "q", 3, 0, 10);
    CHECK_EQ(w->done_count, 0);
    uint64_t id = fix_post_id(e, "q", "hello", 0);
    CHECK_EQ(w->done_count, 1);
    CHECK_EQ(w->n, 1);
    CHECK_EQ(w->ids[0], id);
    CHECK_EQ(w->counts[0], 1);
    free(w);
    eng_close(e);
}

static void test_oldest_waiter_is_served_first(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_put(e, "q", &(struct eng_queue_config){0});
    struct call *w1 = fix_reserve(e, "q", 1, 0, 10);
    struct call *w2 = fix_reserve(e, "q", 1, 0, 10);
    fix_post_id(e, "q", "one", 0);
    CHECK_EQ(w1->done_count, 1);
    CHECK_EQ(w2->done_count, 0);
    fix_post_id(e, "q", "two", 0);
    CHECK_EQ(w2->done_count, 1);
    CHECK_STR(w2->bodies[0], "two");
    free(w1);
    free(w2);
    eng_close(e);
}

static void test_waiter_gets_empty_answer_when_wait_ends(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_put(e, "q", &(struct eng_queue_config){0});
    struct call *w = fix_reserve(e, "q", 1, 0, 2);
    eng_set_time(e, T0 + 1999);
    CHECK_EQ(w->done_count, 0);
    eng_set_time(e, T0 + 2000);
    CHECK_EQ(w->done_count, 1);
    CHECK_EQ(w->status, ENG_OK);
    CHECK_EQ(w->n, 0);
    fix_post_id(e, "q", "late", 0); /* must not be handed to the finished waiter */
    CHECK_EQ(w->done_count, 1);
    CHECK_EQ(fix_size(e, "q"), 1);
    free(w);
    eng_close(e);
}

static void test_waiter_is_served_by_a_timed_out_or_delayed_message(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    fix_post_id(e, "q", "later", 20);
    struct call *w = fix_reserve(e, "q", 1, 0, 30);
    eng_set_time(e, T0 + 20000);
    CHECK_EQ(w->done_count, 1);
    CHECK_STR(w->bodies[0], "later");
    struct call *w2 = fix_reserve(e, "q", 1, 0, 30);
    eng_set_time(e, T0 + 30000);
    CHECK_EQ(w2->done_count, 1);
    CHECK_STR(w2->bodies[0], "m");
    CHECK_EQ(w2->counts[0], 2);
    free(w);
    free(w2);
    eng_close(e);
}

static void test_cancelled_waiter_is_never_answered(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_put(e, "q", &(struct eng_queue_config){0});
    struct call *w = fix_reserve(e, "q", 1, 0, 10);
    eng_cancel(e, &w->op);
    fix_post_id(e, "q", "m", 0);
    eng_set_time(e, T0 + 20000);
    CHECK_EQ(w->done_count, 0);
    CHECK_EQ(fix_size(e, "q"), 1);
    struct call *p = fix_peek(e, "q", 1);
    CHECK_EQ(p->n, 1); /* nobody reserved it */
    free(p);
    free(w);
    eng_close(e);
}

static void test_waiters_get_empty_answers_when_queue_deleted_or_shutting_down(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_put(e, "q", &(struct eng_queue_config){0});
    fix_put(e, "r", &(struct eng_queue_config){0});
    struct call *w1 = fix_reserve(e, "q", 1, 0, 10);
    struct call *w2 = fix_reserve(e, "r", 1, 0, 10);
    struct call *c = fix_call();
    eng_queue_delete(e, &c->op, "p", "q");
    free(c);
    CHECK_EQ(w1->done_count, 1);
    CHECK_EQ(w1->n, 0);
    eng_wake_all_waiters(e);
    CHECK_EQ(w2->done_count, 1);
    struct call *w3 = fix_reserve(e, "r", 1, 0, 10); /* after shutdown began: answers at once */
    CHECK_EQ(w3->done_count, 1);
    free(w1);
    free(w2);
    free(w3);
    eng_close(e);
}

static void test_waiter_is_not_handed_dead_lettered_messages(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 1};
    fix_put(e, "q", &cfg);
    fix_put(e, "dlq", &(struct eng_queue_config){0});
    fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    struct call *w = fix_reserve(e, "q", 1, 0, 60);
    struct call *d = fix_reserve(e, "dlq", 1, 0, 60);
    eng_set_time(e, T0 + 30000); /* times out, comes back, the waiter's reserve moves it */
    CHECK_EQ(w->done_count, 0);
    CHECK_EQ(d->done_count, 1);
    CHECK_STR(d->bodies[0], "m");
    eng_cancel(e, &w->op); /* still waiting: the engine must forget it before it is freed */
    free(w);
    free(d);
    eng_close(e);
}

static size_t message_count(struct engine *e)
{
    struct eng_stats st;
    eng_stats(e, &st);
    return (size_t)st.messages;
}

static void post_many(struct engine *e, const char *q, size_t n)
{
    static struct eng_post_msg batch[100];
    for (size_t i = 0; i < 100; i++)
        batch[i] = (struct eng_post_msg){.body = "x", .body_len = 1};
    for (size_t done = 0; done < n; done += 100) {
        struct call *c = fix_call();
        eng_post(e, &c->op, "p", q, batch, 100);
        free(c);
    }
}

static void test_expiration_at_scale_fires_exactly_on_time(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_expiration = true, .message_expiration_s = 60};
    fix_put(e, "a", &cfg);
    fix_put(e, "b", &cfg);
    post_many(e, "a", 100000);
    eng_set_time(e, T0 + 10000);
    post_many(e, "b", 100000);
    free(fix_reserve(e, "b", 100, 86400, 0)); /* expiry also ends reserved messages */
    eng_set_time(e, T0 + 59999);
    CHECK_EQ(message_count(e), 200000);
    eng_set_time(e, T0 + 60000);
    CHECK_EQ(message_count(e), 100000);
    CHECK_EQ(fix_size(e, "a"), 0);
    eng_set_time(e, T0 + 69999);
    CHECK_EQ(fix_size(e, "b"), 100000);
    eng_set_time(e, T0 + 70000);
    CHECK_EQ(message_count(e), 0);
    eng_close(e);
}

static void test_message_ids_increase(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t id = fix_post_id(e, "q", "x", 0);
        CHECK(id > last);
        last = id;
    }
    eng_close(e);
}

/* ---- what the SQS front needs of the engine ---- */

/* ReceiveMessage with VisibilityTimeout=0: handed out, and visible again at once. */
static void test_reserve_with_an_exact_zero_timeout_leaves_the_message_visible(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t id = fix_post_id(e, "q", "a", 0);
    struct call *c = fix_call();
    struct eng_reserve_args a = {.n = 1, .timeout_s = 0, .exact_timeout = true};
    eng_reserve(e, &c->op, "p", "q", &a);
    CHECK_EQ(c->n, 1);
    CHECK_EQ(c->ids[0], id);
    struct call *again = fix_reserve(e, "q", 1, 0, 0); /* the same millisecond */
    CHECK_EQ(again->n, 1);
    CHECK_EQ(again->counts[0], 2);
    CHECK(strcmp(again->rids[0], c->rids[0]) != 0);
    free(c);
    free(again);
    eng_close(e);
}

/* ChangeMessageVisibility: a new deadline, the same reservation id, no new receive. */
static void test_change_visibility_keeps_the_reservation_and_moves_its_end(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "a", 0);
    struct call *r = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(r->n, 1);
    struct call *v = fix_call();
    eng_set_time(e, T0 + 20000);
    eng_change_visibility(e, &v->op, "p", "q", r->ids[0], r->rids[0], 60);
    CHECK_EQ(v->status, ENG_OK);
    eng_set_time(e, T0 + 79999); /* 20 s + 60 s - 1 ms: still reserved */
    CHECK_EQ(fix_peek_n(e, "q", 1), 0);
    eng_set_time(e, T0 + 80000);
    struct call *r2 = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(r2->n, 1);
    CHECK_EQ(r2->counts[0], 2); /* one receive before, this one: the change did not count */
    /* the old reservation ended: changing it again is refused, and 0 makes r2's visible */
    struct call *stale = fix_call();
    eng_change_visibility(e, &stale->op, "p", "q", r->ids[0], r->rids[0], 10);
    CHECK_EQ(stale->status, ENG_RESERVATION_MISMATCH);
    struct call *zero = fix_call();
    eng_change_visibility(e, &zero->op, "p", "q", r2->ids[0], r2->rids[0], 0);
    CHECK_EQ(zero->status, ENG_OK);
    CHECK_EQ(fix_peek_n(e, "q", 1), 1); /* at once */
    /* and the receipt still deletes while it lasts */
    struct call *r3 = fix_reserve(e, "q", 1, 30, 0);
    struct call *keep = fix_call();
    eng_change_visibility(e, &keep->op, "p", "q", r3->ids[0], r3->rids[0], 100);
    CHECK_EQ(fix_delete(e, "q", r3->ids[0], r3->rids[0]), ENG_OK);
    free(r);
    free(v);
    free(r2);
    free(stale);
    free(zero);
    free(r3);
    free(keep);
    eng_close(e);
}

static void attrs_done(struct eng_op *op, const struct eng_result *res)
{
    struct call *c = (struct call *)op;
    fix_done(op, res);
    /* keep the first message's attributes and sent time where the fixture has room */
    memset(c->dead_letter, 0, sizeof(c->dead_letter));
    if (res->n_messages && res->messages[0].attributes &&
        res->messages[0].attributes->len < sizeof(c->dead_letter))
        memcpy(c->dead_letter, res->messages[0].attributes->data, res->messages[0].attributes->len);
    if (res->has_queue && res->queue.attributes && res->queue.attributes->len < sizeof(c->names[0]))
        memcpy(c->names[0], res->queue.attributes->data, res->queue.attributes->len);
    if (res->n_messages)
        c->failed_index = (size_t)res->messages[0].created_at_ms;
}

/* A front's message attributes come back with the message, untouched; posts that must
 * not create queues do not; a queue's front attributes are kept and replaced whole. */
static void test_front_attributes_and_posts_to_existing_queues(void)
{
    struct engine *e = fix_open_memory(T0);
    struct call *p = fix_call();
    struct eng_post_msg m = {.body = "b", .body_len = 1, .attributes = "k\0String\0v", .attributes_len = 11};
    eng_post_existing(e, &p->op, "p", "q", &m, 1);
    CHECK_EQ(p->status, ENG_QUEUE_NOT_FOUND);
    CHECK_EQ(fix_peek_n(e, "q", 1), 0);
    struct call *missing = fix_info(e, "q");
    CHECK_EQ(missing->status, ENG_QUEUE_NOT_FOUND); /* nothing was created */
    fix_post_id(e, "q", "first", 0);
    struct call *p2 = fix_call();
    eng_set_time(e, T0 + 5);
    eng_post_existing(e, &p2->op, "p", "q", &m, 1);
    CHECK_EQ(p2->status, ENG_OK);
    struct call *r = fix_call();
    r->op.done = attrs_done;
    struct eng_reserve_args a = {.n = 1};
    eng_reserve(e, &r->op, "p", "q", &a); /* "first": no attributes */
    CHECK_EQ(r->dead_letter[0], '\0');
    eng_reserve(e, &r->op, "p", "q", &a);
    CHECK_EQ(r->n, 1);
    CHECK(memcmp(r->dead_letter, "k\0String\0v", 11) == 0);
    CHECK_EQ(r->failed_index, (size_t)(T0 + 5));
    struct eng_queue_config cfg = {.has_attributes = true, .attributes = "a\0b", .attributes_len = 4};
    struct call *put = fix_call();
    put->op.done = attrs_done;
    eng_queue_patch(e, &put->op, "p", "q", &cfg);
    CHECK_EQ(put->status, ENG_OK);
    CHECK(memcmp(put->names[0], "a\0b", 4) == 0);
    cfg.attributes = "c\0d";
    eng_queue_patch(e, &put->op, "p", "q", &cfg); /* replaced whole */
    CHECK(memcmp(put->names[0], "c\0d", 4) == 0);
    free(p);
    free(missing);
    free(p2);
    free(r);
    free(put);
    eng_close(e);
}

CHECK_MAIN(TEST(test_reserve_returns_oldest_first_with_count_and_reservation),
           TEST(test_reservation_ends_exactly_at_its_timeout),
           TEST(test_reservation_defaults_to_the_queue_timeout),
           TEST(test_timed_out_message_goes_back_to_the_front),
           TEST(test_released_message_goes_to_the_front),
           TEST(test_release_with_delay_hides_the_message_until_then),
           TEST(test_delayed_post_becomes_ready_at_the_back_when_due),
           TEST(test_messages_expire_in_any_state),
           TEST(test_touch_returns_new_reservation_and_invalidates_old),
           TEST(test_touch_and_release_need_a_reservation),
           TEST(test_delete_rules_follow_the_reservation),
           TEST(test_message_of_another_queue_is_not_found),
           TEST(test_delete_many_is_all_or_nothing),
           TEST(test_clear_removes_ready_delayed_and_reserved),
           TEST(test_peek_and_get_change_nothing),
           TEST(test_reserve_with_delete_removes_the_messages),
           TEST(test_dead_letter_moves_message_after_max_reservations),
           TEST(test_dead_letter_restarts_expiration_with_the_target_queue),
           TEST(test_dead_letter_to_itself_or_in_a_loop_is_refused),
           TEST(test_queue_type_is_fixed_and_posts_to_push_queues_are_refused),
           TEST(test_put_updates_an_existing_queue),
           TEST(test_list_pages_by_previous_and_filters_by_prefix),
           TEST(test_projects_do_not_share_queues),
           TEST(test_deleted_queue_is_gone_with_its_messages),
           TEST(test_waiter_is_served_by_the_next_post),
           TEST(test_oldest_waiter_is_served_first),
           TEST(test_waiter_gets_empty_answer_when_wait_ends),
           TEST(test_waiter_is_served_by_a_timed_out_or_delayed_message),
           TEST(test_cancelled_waiter_is_never_answered),
           TEST(test_waiters_get_empty_answers_when_queue_deleted_or_shutting_down),
           TEST(test_waiter_is_not_handed_dead_lettered_messages),
           TEST(test_expiration_at_scale_fires_exactly_on_time),
           TEST(test_message_ids_increase),
           TEST(test_reserve_with_an_exact_zero_timeout_leaves_the_message_visible),
           TEST(test_change_visibility_keeps_the_reservation_and_moves_its_end),
           TEST(test_front_attributes_and_posts_to_existing_queues))
