/* tests/unit/test_clock.c — the clock switch of test mode: engine/vclock.c (freeze, advance,
 * unfreeze, never backwards) and the engine running on to an advanced time one deadline at
 * a time (eng_advance_to). Wall time is a number the test passes in; nothing sleeps. */
#include <stdio.h>

#include "check.h"
#include "engine_fixture.h"
#include "../../engine/vclock.h"

static const int64_t T0 = 1700000000000LL;

static void test_running_clock_follows_wall_time(void)
{
    struct vclock c = {0};
    CHECK_EQ(vclock_now(&c, T0), T0);
    CHECK_EQ(vclock_now(&c, T0 + 5), T0 + 5);
}

static void test_frozen_clock_stands_still_until_advanced(void)
{
    struct vclock c = {0};
    vclock_freeze(&c, T0);
    CHECK_EQ(vclock_now(&c, T0 + 60000), T0);
    CHECK_EQ(vclock_advance(&c, T0 + 60000, 600000), T0 + 600000);
    CHECK_EQ(vclock_now(&c, T0 + 70000), T0 + 600000);
    vclock_freeze(&c, T0 + 80000); /* freezing again changes nothing */
    CHECK_EQ(vclock_now(&c, T0 + 90000), T0 + 600000);
}

static void test_unfreeze_after_an_advance_runs_on_from_the_advanced_time(void)
{
    struct vclock c = {0};
    vclock_freeze(&c, T0);
    vclock_advance(&c, T0, 600000);
    vclock_unfreeze(&c, T0 + 1000);
    CHECK_EQ(vclock_now(&c, T0 + 1000), T0 + 600000); /* no jump back to wall time */
    CHECK_EQ(vclock_now(&c, T0 + 3000), T0 + 602000); /* then wall speed */
    CHECK_EQ(c.offset_ms, 599000);
}

static void test_unfreeze_after_a_long_freeze_catches_up_with_wall_time(void)
{
    struct vclock c = {0};
    vclock_freeze(&c, T0);
    vclock_advance(&c, T0, 1000);
    vclock_unfreeze(&c, T0 + 60000);
    CHECK_EQ(vclock_now(&c, T0 + 60000), T0 + 60000);
    CHECK_EQ(c.offset_ms, 0);
}

static void test_advancing_a_running_clock_moves_it_ahead(void)
{
    struct vclock c = {0};
    CHECK_EQ(vclock_advance(&c, T0, 30000), T0 + 30000);
    CHECK_EQ(vclock_now(&c, T0 + 10), T0 + 30010);
    CHECK_EQ(vclock_advance(&c, T0 + 10, -5), T0 + 30010); /* negative: no move */
}

static void test_wall_clock_stepping_back_does_not_move_the_reading_back(void)
{
    struct vclock c = {0};
    CHECK_EQ(vclock_now(&c, T0 + 5000), T0 + 5000);
    CHECK_EQ(vclock_now(&c, T0), T0 + 5000);
    CHECK_EQ(vclock_now(&c, T0 + 6000), T0 + 6000);
}

static size_t reserve_n(struct engine *e, const char *q)
{
    struct call *r = fix_reserve(e, q, 1, 0, 0);
    size_t n = r->n;
    free(r);
    return n;
}

static void test_advance_fires_a_ten_minute_reservation_timeout_exactly(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_timeout = true, .message_timeout_s = 600};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->n, 1);
    free(r);
    eng_advance_to(e, T0 + 599999);
    CHECK_EQ(reserve_n(e, "q"), 0);
    eng_advance_to(e, T0 + 600000);
    r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], id);
    CHECK_EQ(r->counts[0], 2);
    free(r);
    eng_close(e);
}

/* A long poll served by a message that timed out at T0+30 s reserves it from then: its
 * reservation ends at T0+60 s even though one advance went from T0+5 s to T0+59.999 s. */
static void test_advance_runs_each_deadline_at_its_own_time(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *first = fix_reserve(e, "q", 1, 30, 0);
    CHECK_EQ(first->n, 1);
    free(first);
    eng_set_time(e, T0 + 5000);
    struct call *waiter = fix_reserve(e, "q", 1, 30, 30);
    CHECK_EQ(waiter->done_count, 0);
    eng_advance_to(e, T0 + 59999);
    CHECK_EQ(waiter->done_count, 1);
    CHECK_EQ(waiter->n, 1);
    CHECK_EQ(waiter->ids[0], id);
    CHECK_EQ(reserve_n(e, "q"), 0); /* still the waiter's */
    eng_advance_to(e, T0 + 60000);
    CHECK_EQ(reserve_n(e, "q"), 1);
    free(waiter);
    eng_close(e);
}

static void test_advance_ends_long_polls_and_delays_in_order(void)
{
    struct engine *e = fix_open_memory(T0);
    struct call *waiter = fix_reserve(e, "empty", 1, 0, 10);
    uint64_t late = fix_post_id(e, "q", "late", 20);
    eng_advance_to(e, T0 + 10000);
    CHECK_EQ(waiter->done_count, 1);
    CHECK_EQ(waiter->n, 0);
    CHECK_EQ(reserve_n(e, "q"), 0);
    eng_advance_to(e, T0 + 20000);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], late);
    free(r);
    free(waiter);
    eng_close(e);
}

CHECK_MAIN(TEST(test_running_clock_follows_wall_time),
           TEST(test_frozen_clock_stands_still_until_advanced),
           TEST(test_unfreeze_after_an_advance_runs_on_from_the_advanced_time),
           TEST(test_unfreeze_after_a_long_freeze_catches_up_with_wall_time),
           TEST(test_advancing_a_running_clock_moves_it_ahead),
           TEST(test_wall_clock_stepping_back_does_not_move_the_reading_back),
           TEST(test_advance_fires_a_ten_minute_reservation_timeout_exactly),
           TEST(test_advance_runs_each_deadline_at_its_own_time),
           TEST(test_advance_ends_long_polls_and_delays_in_order))
