/* tests/unit/test_pushing.c — the engine's push delivery with the injected clock and a
 * recording pusher (the test stands where server/pusher.c stands: it records each request
 * the engine asks for and answers it as a subscriber would). Unicast order and rounds,
 * retries on the timer wheel to the millisecond, the concurrency bound, 202 then delete
 * or then the deadline, the error report, and messages leaving the queue when done. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine_fixture.h"

static const int64_t T0 = 1700000000000LL;

struct sent {
    uint64_t msg_id;
    uint32_t sub, try_no, slot;
    char rid[RESERVATION_ID_HEX + 1];
    char body[32];
};

static struct {
    struct sent sent[64];
    size_t n;
    int failures;
    char failed_subs[128];
} rec;

static void record_send(void *ctx, const struct eng_push_request *r)
{
    (void)ctx;
    struct sent *s = &rec.sent[rec.n++];
    s->msg_id = r->msg_id;
    s->sub = r->subscriber;
    s->try_no = r->try_no;
    s->slot = r->slot;
    snprintf(s->rid, sizeof(s->rid), "%s", r->reservation_id);
    snprintf(s->body, sizeof(s->body), "%.*s", (int)r->body->len, (const char *)r->body->data);
}

static void record_failure(void *ctx, const struct eng_push_failure *f)
{
    (void)ctx;
    rec.failures++;
    size_t used = 0;
    rec.failed_subs[0] = '\0';
    for (size_t i = 0; i < f->n_subs && used < sizeof(rec.failed_subs); i++)
        if (strcmp(f->subs[i].word, "error") == 0)
            used += (size_t)snprintf(rec.failed_subs + used, sizeof(rec.failed_subs) - used, "%s ",
                                     f->subs[i].name);
}

static struct engine *open_with_pusher(uint32_t max_in_flight)
{
    memset(&rec, 0, sizeof(rec));
    struct engine *e = fix_open_memory(T0);
    struct eng_pusher p = {.send = record_send, .failed = record_failure, .max_in_flight = max_in_flight,
                           .max_per_subscriber = 2};
    eng_set_pusher(e, &p);
    return e;
}

static void make_push_queue(struct engine *e, const char *q, enum queue_type type, uint32_t n_subs,
                            uint32_t retries, const char *error_queue)
{
    static struct eng_subscriber subs[3] = {{.name = "s0", .url = "http://127.0.0.1:9/0"},
                                            {.name = "s1", .url = "http://127.0.0.1:9/1"},
                                            {.name = "s2", .url = "http://127.0.0.1:9/2"}};
    struct eng_queue_config cfg = {
        .has_type = true, .type = type, .has_push = true,
        .push = {.has_subscribers = true, .subscribers = subs, .n_subscribers = n_subs,
                 .has_retries = true, .retries = retries, .has_retries_delay = true,
                 .retries_delay_s = 3, .has_error_queue = error_queue != NULL,
                 .error_queue = error_queue}};
    CHECK_EQ(fix_put(e, q, &cfg), ENG_OK);
}

static void answer(struct engine *e, size_t i, int status)
{
    eng_push_answer(e, rec.sent[i].msg_id, rec.sent[i].sub, rec.sent[i].try_no, rec.sent[i].slot,
                    status);
}

static void test_unicast_goes_round_the_subscribers_then_waits_the_delay(void)
{
    struct engine *e = open_with_pusher(8);
    make_push_queue(e, "u", QUEUE_UNICAST, 2, 1, "errors");
    uint64_t id = fix_post_id(e, "u", "hello", 0);
    CHECK_EQ(rec.n, 1); /* sent at once (memory mode: nothing to wait for) */
    CHECK_EQ(rec.sent[0].msg_id, id);
    CHECK_STR(rec.sent[0].body, "hello");
    CHECK_EQ(fix_size(e, "u"), 1);
    answer(e, 0, 500);
    CHECK_EQ(rec.n, 2); /* the next subscriber at once */
    CHECK(rec.sent[1].sub != rec.sent[0].sub);
    answer(e, 1, -1);
    CHECK_EQ(rec.n, 2); /* the round failed: wait retries_delay */
    eng_set_time(e, T0 + 2999);
    CHECK_EQ(rec.n, 2);
    eng_set_time(e, T0 + 3000);
    CHECK_EQ(rec.n, 3);
    CHECK(strcmp(rec.sent[2].rid, rec.sent[0].rid) != 0); /* a new reservation per try */
    answer(e, 2, 503);
    CHECK_EQ(rec.n, 4);
    answer(e, 3, 503); /* out of rounds */
    CHECK_EQ(rec.failures, 1);
    CHECK_STR(rec.failed_subs, "s0 s1 ");
    CHECK_EQ(fix_size(e, "u"), 0); /* done with: deleted */
    eng_close(e);
}

static void test_multicast_each_subscriber_on_its_own_and_a_stale_answer_is_ignored(void)
{
    struct engine *e = open_with_pusher(8);
    make_push_queue(e, "m", QUEUE_MULTICAST, 3, 2, NULL);
    fix_post_id(e, "m", "all", 0);
    CHECK_EQ(rec.n, 3);
    answer(e, 0, 200);
    answer(e, 1, 200);
    answer(e, 1, 200); /* a duplicate answer changes nothing */
    answer(e, 2, 404);
    CHECK_EQ(fix_size(e, "m"), 1);
    eng_set_time(e, T0 + 3000);
    CHECK_EQ(rec.n, 4); /* only the one that failed */
    CHECK_EQ(rec.sent[3].sub, 2);
    answer(e, 3, 204);
    CHECK_EQ(fix_size(e, "m"), 0);
    CHECK_EQ(rec.failures, 0);
    eng_close(e);
}

static void test_requests_out_at_once_are_bounded(void)
{
    struct engine *e = open_with_pusher(2);
    make_push_queue(e, "m", QUEUE_MULTICAST, 3, 0, NULL);
    fix_post_id(e, "m", "a", 0);
    fix_post_id(e, "m", "b", 0);
    CHECK_EQ(rec.n, 2);
    answer(e, 0, 200);
    CHECK_EQ(rec.n, 3); /* one left, one more may go */
    answer(e, 1, 200);
    answer(e, 2, 200);
    CHECK_EQ(rec.n, 5);
    eng_close(e);
}

static void test_one_subscriber_cannot_take_every_slot(void)
{
    struct engine *e = open_with_pusher(8); /* 2 per subscriber */
    make_push_queue(e, "slow", QUEUE_MULTICAST, 1, 0, NULL);
    make_push_queue(e, "fast", QUEUE_MULTICAST, 1, 0, NULL);
    for (int i = 0; i < 4; i++)
        fix_post_id(e, "slow", "s", 0);
    CHECK_EQ(rec.n, 2); /* the slow subscriber has its two */
    fix_post_id(e, "fast", "f", 0);
    CHECK_EQ(rec.n, 3); /* another subscriber still gets its turn */
    answer(e, 0, 200);
    CHECK_EQ(rec.n, 4); /* a slot of the slow one came free: its next message goes */
    eng_close(e);
}

static void test_202_waits_for_the_delete_or_for_the_delay(void)
{
    struct engine *e = open_with_pusher(8);
    make_push_queue(e, "w", QUEUE_UNICAST, 1, 1, NULL);
    uint64_t a = fix_post_id(e, "w", "acked", 0);
    answer(e, 0, 202);
    CHECK_EQ(fix_delete(e, "w", a, "0123456789abcdef0123456789abcdef"), ENG_RESERVATION_MISMATCH);
    struct call *c = fix_call();
    eng_delete(e, &c->op, "p", "w", a, rec.sent[0].rid, "someone-else");
    CHECK_EQ(c->status, ENG_RESERVATION_MISMATCH);
    free(c);
    c = fix_call();
    eng_delete(e, &c->op, "p", "w", a, rec.sent[0].rid, "s0");
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    CHECK_EQ(fix_size(e, "w"), 0);
    fix_post_id(e, "w", "forgotten", 0);
    CHECK_EQ(rec.n, 2);
    answer(e, 1, 202);
    eng_set_time(e, T0 + 2999);
    CHECK_EQ(rec.n, 2);
    eng_set_time(e, T0 + 3000); /* the 202 ran out: a failure, retried after the delay */
    CHECK_EQ(rec.n, 2);
    eng_set_time(e, T0 + 6000);
    CHECK_EQ(rec.n, 3);
    eng_close(e);
}

static void test_a_delayed_post_is_pushed_when_its_delay_ends(void)
{
    struct engine *e = open_with_pusher(8);
    make_push_queue(e, "d", QUEUE_MULTICAST, 1, 0, NULL);
    fix_post_id(e, "d", "later", 10);
    CHECK_EQ(rec.n, 0);
    eng_set_time(e, T0 + 9999);
    CHECK_EQ(rec.n, 0);
    eng_set_time(e, T0 + 10000);
    CHECK_EQ(rec.n, 1);
    eng_close(e);
}

CHECK_MAIN(TEST(test_unicast_goes_round_the_subscribers_then_waits_the_delay),
           TEST(test_multicast_each_subscriber_on_its_own_and_a_stale_answer_is_ignored),
           TEST(test_requests_out_at_once_are_bounded),
           TEST(test_one_subscriber_cannot_take_every_slot),
           TEST(test_202_waits_for_the_delete_or_for_the_delay),
           TEST(test_a_delayed_post_is_pushed_when_its_delay_ends))
