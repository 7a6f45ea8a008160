/* tests/unit/test_history.c — the dashboard's memory of the last minutes (api/history.c):
 * server-wide rates and levels between readings, each queue's depth and in/out rates, the
 * ring dropping its oldest reading, queues that come, go and come back, and back ends that
 * count nothing. Readings and their times are made up here; nothing sleeps. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "../../api/history.h"

static const int64_t T0 = 1700000000000LL;

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* A reading at T0 + seconds with the given counters and one queue "p"/"q" (unless depth < 0). */
static void add(struct history *h, int seconds, uint64_t posts, uint64_t deletes, long depth,
                uint64_t posted)
{
    struct history_queue_reading q = {"p", "q", depth < 0 ? 0 : (uint64_t)depth, posted};
    struct history_reading r = {.at_ms = T0 + seconds * 1000LL,
                                .has_events = true,
                                .posts = posts,
                                .deletes = deletes,
                                .ready = depth < 0 ? 0 : (uint64_t)depth,
                                .has_queues = true,
                                .queues = &q,
                                .n_queues = depth < 0 ? 0 : 1};
    CHECK_EQ(history_add(h, &r), 0);
}

static void test_the_first_reading_is_due_at_once_the_next_an_interval_later(void)
{
    struct history *h = history_new();
    CHECK(history_next_ms(h) == INT64_MIN);
    add(h, 0, 0, 0, 0, 0);
    CHECK_EQ(history_next_ms(h), T0 + HISTORY_INTERVAL_MS);
    CHECK_EQ(history_len(h), 1);
    history_free(h);
}

static void test_server_rates_are_per_second_between_readings(void)
{
    struct history *h = history_new();
    add(h, 0, 100, 0, 100, 100);
    add(h, 5, 150, 20, 130, 150); /* 50 posts and 20 deletes in 5 s */
    double v = -1;
    CHECK(!history_value(h, HS_POSTS, 0, &v)); /* no rate before the second reading */
    CHECK(history_value(h, HS_POSTS, 1, &v) && near(v, 10.0));
    CHECK(history_value(h, HS_DELETES, 1, &v) && near(v, 4.0));
    CHECK(history_value(h, HS_RESERVES, 1, &v) && near(v, 0.0));
    CHECK(history_value(h, HS_READY, 0, &v) && near(v, 100.0)); /* levels as read */
    CHECK(history_value(h, HS_READY, 1, &v) && near(v, 130.0));
    CHECK(!history_value(h, HS_READY, 2, &v)); /* past the end */
    history_free(h);
}

static void test_queue_out_rate_is_what_came_in_less_what_it_grew(void)
{
    struct history *h = history_new();
    add(h, 0, 0, 0, 10, 10);
    add(h, 10, 0, 0, 15, 40); /* 30 in, depth +5: 25 went out in 10 s */
    const struct history_queue *pq = history_find(h, "p", "q");
    double in = -1, out = -1;
    uint64_t depth = 0;
    CHECK(history_queue_depth(h, pq, 1, &depth));
    CHECK_EQ(depth, 15);
    CHECK(history_queue_rates(h, pq, 1, &in, &out));
    CHECK(near(in, 3.0) && near(out, 2.5));
    CHECK(!history_queue_rates(h, pq, 0, &in, &out));
    CHECK(!history_queue_depth(h, history_find(h, "p", "other"), 1, &depth));
    /* project and name both count */
    CHECK(!history_queue_depth(h, history_find(h, "other", "q"), 1, &depth));
    history_free(h);
}

static void test_a_cleared_queue_counts_its_messages_as_gone_out(void)
{
    struct history *h = history_new();
    add(h, 0, 0, 0, 500, 500);
    add(h, 5, 0, 0, 0, 500); /* nothing came, 500 left */
    double in = -1, out = -1;
    CHECK(history_queue_rates(h, history_find(h, "p", "q"), 1, &in, &out));
    CHECK(near(in, 0.0) && near(out, 100.0));
    history_free(h);
}

static void test_recent_rates_cover_the_window_only(void)
{
    struct history *h = history_new();
    add(h, 0, 0, 0, 0, 0);
    add(h, 5, 0, 0, 0, 1000); /* a burst long ago ... */
    for (int s = 10; s <= 75; s += 5)
        add(h, s, 0, 0, 0, 1000 + (uint64_t)(s - 5) * 2); /* ... then 2 per second */
    const struct history_queue *pq = history_find(h, "p", "q");
    double in = -1, out = -1;
    CHECK(history_queue_recent(h, pq, 60000, &in, &out));
    CHECK(near(in, 2.0));
    CHECK(near(out, 2.0)); /* depth stayed 0: all of it went out */
    CHECK(history_queue_recent(h, pq, 5000, &in, &out) && near(in, 2.0));
    CHECK(!history_queue_recent(h, history_find(h, "p", "gone"), 60000, &in, &out));
    history_free(h);
}

static void test_a_queue_that_came_and_went_has_values_only_while_it_was_there(void)
{
    struct history *h = history_new();
    add(h, 0, 0, 0, -1, 0); /* not there yet */
    add(h, 5, 0, 0, 3, 3);
    add(h, 10, 0, 0, -1, 0); /* deleted */
    add(h, 15, 0, 0, 1, 1);  /* made again */
    const struct history_queue *pq = history_find(h, "p", "q");
    uint64_t depth;
    double in, out;
    CHECK(!history_queue_depth(h, pq, 0, &depth));
    CHECK(history_queue_depth(h, pq, 1, &depth) && depth == 3);
    CHECK(!history_queue_depth(h, pq, 2, &depth));
    CHECK(history_queue_depth(h, pq, 3, &depth) && depth == 1);
    CHECK(!history_queue_rates(h, pq, 3, &in, &out)); /* no reading just before */
    CHECK(!history_queue_recent(h, pq, 60000, &in, &out));
    history_free(h);
}

static void test_the_ring_keeps_the_last_points_and_forgets_old_queues(void)
{
    struct history *h = history_new();
    add(h, 0, 0, 0, 7, 7);
    for (int i = 1; i < HISTORY_POINTS + 10; i++)
        add(h, i * 5, (uint64_t)i, 0, -1, 0); /* the queue is never named again */
    CHECK_EQ(history_len(h), HISTORY_POINTS);
    CHECK_EQ(history_time(h, 0), T0 + 10 * 5000LL); /* the oldest kept: reading 10 */
    CHECK_EQ(history_time(h, HISTORY_POINTS - 1), T0 + (HISTORY_POINTS + 9) * 5000LL);
    CHECK(history_find(h, "p", "q") == NULL); /* forgotten: no kept reading names it */
    double v;
    CHECK(history_value(h, HS_POSTS, 1, &v) && near(v, 0.2)); /* 1 post in 5 s */
    history_free(h);
}

static void test_a_reading_not_after_the_last_is_ignored(void)
{
    struct history *h = history_new();
    add(h, 5, 10, 0, 1, 1);
    add(h, 5, 20, 0, 2, 2);
    add(h, 3, 30, 0, 3, 3);
    CHECK_EQ(history_len(h), 1);
    double v;
    CHECK(history_value(h, HS_READY, 0, &v) && near(v, 1.0));
    history_free(h);
}

static void test_a_back_end_that_counts_nothing_gives_no_values(void)
{
    struct history *h = history_new();
    for (int i = 0; i < 3; i++) {
        struct history_reading r = {.at_ms = T0 + i * 5000LL}; /* PostgreSQL: no events, no depths */
        CHECK_EQ(history_add(h, &r), 0);
    }
    CHECK_EQ(history_len(h), 3);
    double v;
    CHECK(!history_value(h, HS_POSTS, 2, &v));
    CHECK(!history_value(h, HS_READY, 2, &v));
    history_free(h);
}

CHECK_MAIN(TEST(test_the_first_reading_is_due_at_once_the_next_an_interval_later),
           TEST(test_server_rates_are_per_second_between_readings),
           TEST(test_queue_out_rate_is_what_came_in_less_what_it_grew),
           TEST(test_a_cleared_queue_counts_its_messages_as_gone_out),
           TEST(test_recent_rates_cover_the_window_only),
           TEST(test_a_queue_that_came_and_went_has_values_only_while_it_was_there),
           TEST(test_the_ring_keeps_the_last_points_and_forgets_old_queues),
           TEST(test_a_reading_not_after_the_last_is_ignored),
           TEST(test_a_back_end_that_counts_nothing_gives_no_values))
