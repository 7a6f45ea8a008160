/* tests/unit/test_timerwheel.c — the timer wheel against its promises: every timer fires
 * exactly at its deadline (never early, never late), in deadline order, across all levels
 * and the overflow list; cancel and reschedule work; callbacks may schedule more timers;
 * next_deadline never lets a sleeper miss a timer. A randomized run checks all of it
 * against a brute-force model. Time is whatever the test says it is. */
#include <stdlib.h>

#include "../../engine/timerwheel.h"
#include "check.h"

struct fired {
    int64_t at[4096];
    int64_t deadline[4096];
    struct tw_node *node[4096];
    size_t n;
    int64_t now; /* the time the test advanced to */
};

static void record(struct tw_node *node, void *ctx)
{
    struct fired *f = ctx;
    if (f->n < 4096) {
        f->at[f->n] = f->now;
        f->deadline[f->n] = node->expires_ms;
        f->node[f->n] = node;
    }
    f->n++;
}

/* Advances one millisecond at a time so the firing time of each timer is observable. */
static void step_to(struct timerwheel *tw, struct fired *f, int64_t until)
{
    for (int64_t t = tw->now_ms; t <= until; t++) {
        f->now = t;
        tw_advance(tw, t, record, f);
    }
}

static void test_timer_fires_exactly_at_its_deadline(void)
{
    struct timerwheel tw;
    struct fired f = {0};
    struct tw_node n;
    tw_init(&tw, 1000);
    tw_node_init(&n, 0);
    tw_insert(&tw, &n, 1500);
    step_to(&tw, &f, 1499);
    CHECK_EQ(f.n, 0);
    step_to(&tw, &f, 1500);
    CHECK_EQ(f.n, 1);
    CHECK_EQ(f.at[0], 1500);
    CHECK(!tw_pending(&n));
    CHECK_EQ(tw.count, 0);
}

static void test_timers_on_every_level_fire_on_time(void)
{
    /* 10 ms (level 0), 1 s (1), 5 min (2), 2 days (3), 60 days (overflow) */
    static const int64_t offsets[] = {10, 1000, 300000, 172800000, 5184000000LL};
    struct timerwheel tw;
    struct tw_node nodes[5];
    int64_t start = 1700000000123LL;
    tw_init(&tw, start);
    for (int i = 0; i < 5; i++) {
        tw_node_init(&nodes[i], (uint32_t)i);
        tw_insert(&tw, &nodes[i], start + offsets[i]);
    }
    for (int i = 0; i < 5; i++) {
        struct fired f = {0};
        int64_t due = start + offsets[i];
        f.now = due - 1;
        tw_advance(&tw, due - 1, record, &f); /* jump close, then one step */
        CHECK_EQ(f.n, 0);
        f.now = due;
        tw_advance(&tw, due, record, &f);
        CHECK_EQ(f.n, 1);
        CHECK(f.n == 1 && f.node[0] == &nodes[i]);
    }
    CHECK_EQ(tw.count, 0);
}

static void test_one_big_advance_fires_everything_in_deadline_order(void)
{
    struct timerwheel tw;
    static struct tw_node nodes[1000];
    struct fired f = {0};
    uint64_t seed = 42;
    tw_init(&tw, 0);
    for (int i = 0; i < 1000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        tw_node_init(&nodes[i], 0);
        tw_insert(&tw, &nodes[i], (int64_t)((seed >> 33) % 100000000)); /* up to ~28 h */
    }
    f.now = 100000000;
    tw_advance(&tw, 100000000, record, &f);
    CHECK_EQ(f.n, 1000);
    for (size_t i = 1; i < f.n && i < 1000; i++)
        CHECK(f.deadline[i - 1] <= f.deadline[i]);
}

static void test_cancelled_timer_never_fires(void)
{
    struct timerwheel tw;
    struct fired f = {0};
    struct tw_node a, b;
    tw_init(&tw, 0);
    tw_node_init(&a, 0);
    tw_node_init(&b, 0);
    tw_insert(&tw, &a, 100);
    tw_insert(&tw, &b, 100000);
    tw_cancel(&tw, &a);
    tw_cancel(&tw, &b);
    tw_cancel(&tw, &b); /* cancelling twice is harmless */
    step_to(&tw, &f, 300);
    f.now = 200000;
    tw_advance(&tw, 200000, record, &f);
    CHECK_EQ(f.n, 0);
    CHECK_EQ(tw.count, 0);
}

static void test_reinsert_moves_the_deadline(void)
{
    struct timerwheel tw;
    struct fired f = {0};
    struct tw_node n;
    tw_init(&tw, 0);
    tw_node_init(&n, 0);
    tw_insert(&tw, &n, 50);
    tw_insert(&tw, &n, 70000); /* later: was level 0, now level 2 */
    CHECK_EQ(tw.count, 1);
    step_to(&tw, &f, 69999);
    CHECK_EQ(f.n, 0);
    step_to(&tw, &f, 70000);
    CHECK_EQ(f.n, 1);
    tw_insert(&tw, &n, 90000);
    tw_insert(&tw, &n, 70010); /* earlier again */
    step_to(&tw, &f, 70010);
    CHECK_EQ(f.n, 2);
    CHECK_EQ(f.at[1], 70010);
}

static void test_past_deadline_fires_on_the_next_advance(void)
{
    struct timerwheel tw;
    struct fired f = {0};
    struct tw_node n;
    tw_init(&tw, 5000);
    tw_node_init(&n, 0);
    tw_insert(&tw, &n, 10);
    f.now = 5000;
    tw_advance(&tw, 5000, record, &f);
    CHECK_EQ(f.n, 1);
}

struct chain {
    struct timerwheel *tw;
    struct tw_node extra, victim;
    int fired_extra, fired_victim, fired_first;
};

static void chain_fire(struct tw_node *node, void *ctx)
{
    struct chain *c = ctx;
    if (node == &c->extra) {
        c->fired_extra++;
    } else if (node == &c->victim) {
        c->fired_victim++;
    } else {
        c->fired_first++;
        tw_insert(c->tw, &c->extra, node->expires_ms); /* due now: fires in this advance */
        tw_cancel(c->tw, &c->victim);                  /* same slot: must not fire */
    }
}

static void test_callbacks_may_schedule_and_cancel_timers(void)
{
    struct timerwheel tw;
    struct tw_node first;
    struct chain c = {.tw = &tw};
    tw_init(&tw, 0);
    tw_node_init(&first, 0);
    tw_node_init(&c.extra, 0);
    tw_node_init(&c.victim, 0);
    tw_insert(&tw, &first, 20);
    tw_insert(&tw, &c.victim, 20);
    tw_advance(&tw, 20, chain_fire, &c);
    CHECK_EQ(c.fired_first, 1);
    CHECK_EQ(c.fired_extra, 1);
    CHECK_EQ(c.fired_victim, 0);
    CHECK_EQ(tw.count, 0);
}

static void test_next_deadline_never_passes_a_pending_timer(void)
{
    struct timerwheel tw;
    struct tw_node n[4];
    int64_t due[4] = {300, 70000, 20000000, 3000000000LL};
    tw_init(&tw, 0);
    CHECK(tw_next_deadline(&tw) == INT64_MAX);
    for (int i = 0; i < 4; i++) {
        tw_node_init(&n[i], 0);
        tw_insert(&tw, &n[i], due[i]);
    }
    /* A sleeper that always wakes at next_deadline reaches each timer exactly on time. */
    struct fired f = {0};
    int wakeups = 0;
    while (tw.count && wakeups < 100000) {
        int64_t next = tw_next_deadline(&tw);
        CHECK(next >= tw.now_ms);
        CHECK(next <= due[f.n < 4 ? f.n : 3]);
        f.now = next;
        tw_advance(&tw, next, record, &f);
        wakeups++;
    }
    CHECK_EQ(f.n, 4);
    for (size_t i = 0; i < 4 && i < f.n; i++)
        CHECK_EQ(f.at[i], due[i]);
    CHECK(wakeups < 2000); /* jumps over empty stretches instead of ticking */
}

/* Random inserts, cancels and advances against a list of (deadline, live) pairs. */
static void test_randomized_against_a_model(void)
{
    enum { N = 2000 };
    static struct tw_node nodes[N];
    static int64_t model[N]; /* deadline, or -1 when not scheduled */
    struct timerwheel tw;
    struct fired f = {0};
    uint64_t seed = 7;
    int64_t now = 123456;
    tw_init(&tw, now);
    for (int i = 0; i < N; i++) {
        tw_node_init(&nodes[i], (uint32_t)i);
        model[i] = -1;
    }
    for (int round = 0; round < 20000; round++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = seed >> 16;
        int i = (int)(r % N);
        switch ((r >> 20) % 4) {
        case 0:
        case 1: {
            static const int64_t spans[] = {300, 70000, 20000000, 5000000000LL};
            int64_t d = now + (int64_t)((r >> 24) % (uint64_t)spans[(r >> 40) % 4]);
            tw_insert(&tw, &nodes[i], d);
            model[i] = d;
            break;
        }
        case 2:
            tw_cancel(&tw, &nodes[i]);
            model[i] = -1;
            break;
        default: {
            now += (int64_t)((r >> 24) % 100000);
            f.n = 0;
            f.now = now;
            tw_advance(&tw, now, record, &f);
            size_t due = 0;
            for (int k = 0; k < N; k++)
                if (model[k] >= 0 && model[k] <= now)
                    due++;
            CHECK_EQ(f.n, due);
            for (size_t k = 0; k < f.n && k < 4096; k++) {
                int idx = (int)(f.node[k] - nodes);
                CHECK(model[idx] >= 0 && model[idx] <= now);
                model[idx] = -1;
            }
        }
        }
    }
    size_t live = 0;
    for (int k = 0; k < N; k++)
        live += model[k] >= 0;
    CHECK_EQ(tw.count, live);
}

CHECK_MAIN(TEST(test_timer_fires_exactly_at_its_deadline),
           TEST(test_timers_on_every_level_fire_on_time),
           TEST(test_one_big_advance_fires_everything_in_deadline_order),
           TEST(test_cancelled_timer_never_fires), TEST(test_reinsert_moves_the_deadline),
           TEST(test_past_deadline_fires_on_the_next_advance),
           TEST(test_callbacks_may_schedule_and_cancel_timers),
           TEST(test_next_deadline_never_passes_a_pending_timer),
           TEST(test_randomized_against_a_model))
