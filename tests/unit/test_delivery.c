/* tests/unit/test_delivery.c — the push delivery state machine (wire contract §4) driven
 * with an injected clock: multicast retries each subscriber on its own, unicast moves to
 * the next subscriber at once and waits retries_delay between rounds, 202 holds until a
 * delete or until retries_delay runs out, and the error queue is wanted exactly when some
 * subscriber never got the message. */
#include "../../engine/delivery.h"
#include "check.h"

#include <stdlib.h>

enum { T0 = 1000000, DELAY = 60 };

/* Sends to every subscriber that is due at now; returns how many. */
static uint32_t send_due(struct delivery *d, int64_t now, uint32_t *which)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->subs[i].state == DS_DUE && d->subs[i].due_ms <= now) {
            delivery_sending(d, i, now);
            if (which)
                *which = i;
            n++;
        }
    return n;
}

static void test_multicast_delivers_to_each_and_retries_each_on_its_own(void)
{
    struct delivery d;
    CHECK_EQ(delivery_init(&d, QUEUE_MULTICAST, 3, 2, 0, T0), 0);
    CHECK_EQ(send_due(&d, T0, NULL), 3);
    delivery_answer(&d, 0, 200, T0 + 5, DELAY);
    delivery_answer(&d, 1, 500, T0 + 5, DELAY);
    delivery_answer(&d, 2, -1, T0 + 5, DELAY); /* no answer */
    CHECK(!delivery_finished(&d));
    CHECK_EQ(d.subs[0].state, DS_DELIVERED);
    CHECK_EQ(d.subs[1].state, DS_DUE);
    CHECK_EQ(d.subs[1].retries_remaining, 1);
    CHECK_EQ(d.subs[1].status_code, 500);
    CHECK_EQ(delivery_tick(&d, T0 + 5, DELAY), T0 + 5 + DELAY * 1000);
    CHECK_EQ(send_due(&d, T0 + 5 + DELAY * 1000 - 1, NULL), 0); /* not before the delay */
    CHECK_EQ(send_due(&d, T0 + 5 + DELAY * 1000, NULL), 2);     /* never the delivered one */
    CHECK_EQ(d.subs[0].tries, 1);
    delivery_answer(&d, 1, 200, T0 + 61000, DELAY);
    delivery_answer(&d, 2, 503, T0 + 61000, DELAY);
    CHECK_EQ(send_due(&d, T0 + 121000, NULL), 1);
    delivery_answer(&d, 2, 503, T0 + 121000, DELAY); /* third try: out of retries */
    CHECK_EQ(d.subs[2].state, DS_FAILED);
    CHECK_EQ(d.subs[2].tries, 3);
    CHECK_EQ(d.subs[2].retries_remaining, 0);
    CHECK(delivery_finished(&d));
    CHECK(delivery_failed(&d));
    CHECK_STR(delivery_status_word(&d.subs[0]), "deleted");
    CHECK_STR(delivery_status_word(&d.subs[2]), "error");
    delivery_free(&d);
}

static void test_unicast_tries_the_next_at_once_and_waits_between_rounds(void)
{
    struct delivery d;
    uint32_t who = 99;
    CHECK_EQ(delivery_init(&d, QUEUE_UNICAST, 3, 1, 1, T0), 0); /* starts with subscriber 1 */
    CHECK_EQ(send_due(&d, T0, &who), 1);
    CHECK_EQ(who, 1);
    delivery_answer(&d, 1, 500, T0 + 1, DELAY);
    CHECK_EQ(send_due(&d, T0 + 1, &who), 1); /* the next one at once */
    CHECK_EQ(who, 2);
    delivery_answer(&d, 2, -1, T0 + 2, DELAY);
    CHECK_EQ(send_due(&d, T0 + 2, &who), 1);
    CHECK_EQ(who, 0);
    delivery_answer(&d, 0, 404, T0 + 3, DELAY); /* the round is over: wait */
    CHECK_EQ(send_due(&d, T0 + 3, NULL), 0);
    CHECK_EQ(delivery_tick(&d, T0 + 3, DELAY), T0 + 3 + DELAY * 1000);
    CHECK_EQ(d.subs[0].retries_remaining, 0);
    CHECK_EQ(send_due(&d, T0 + 3 + DELAY * 1000, &who), 1);
    CHECK_EQ(who, 1);
    delivery_answer(&d, 1, 200, T0 + 61004, DELAY);
    CHECK(delivery_finished(&d));
    CHECK(!delivery_failed(&d));
    delivery_free(&d);
}

static void test_unicast_out_of_rounds_fails_every_subscriber(void)
{
    struct delivery d;
    uint32_t who = 0;
    CHECK_EQ(delivery_init(&d, QUEUE_UNICAST, 2, 0, 0, T0), 0);
    CHECK_EQ(send_due(&d, T0, &who), 1);
    delivery_answer(&d, who, 500, T0, DELAY);
    CHECK_EQ(send_due(&d, T0, &who), 1);
    delivery_answer(&d, who, 500, T0, DELAY);
    CHECK(delivery_finished(&d));
    CHECK(delivery_failed(&d));
    CHECK_EQ(delivery_tick(&d, T0, DELAY), INT64_MAX);
    delivery_free(&d);
}

static void test_202_holds_until_delete_or_until_the_delay_runs_out(void)
{
    struct delivery d;
    CHECK_EQ(delivery_init(&d, QUEUE_MULTICAST, 2, 1, 0, T0), 0);
    CHECK_EQ(send_due(&d, T0, NULL), 2);
    delivery_answer(&d, 0, 202, T0 + 1, DELAY);
    delivery_answer(&d, 1, 202, T0 + 1, DELAY);
    CHECK_STR(delivery_status_word(&d.subs[0]), "reserved");
    CHECK(delivery_acknowledge(&d, 0)); /* subscriber 0 deletes it */
    CHECK(!delivery_acknowledge(&d, 0));
    CHECK_EQ(delivery_tick(&d, T0 + 1 + DELAY * 1000 - 1, DELAY), T0 + 1 + DELAY * 1000);
    CHECK_EQ(d.subs[1].state, DS_RESERVED);
    delivery_tick(&d, T0 + 1 + DELAY * 1000, DELAY); /* 1's reservation ran out: retried */
    CHECK_EQ(d.subs[1].state, DS_DUE);
    CHECK_EQ(d.subs[1].retries_remaining, 0);
    CHECK_EQ(d.subs[0].state, DS_DELIVERED);
    CHECK_EQ(send_due(&d, T0 + 1 + 2 * DELAY * 1000, NULL), 1);
    delivery_answer(&d, 1, 200, T0 + 2 * DELAY * 1000 + 2, DELAY);
    CHECK(delivery_finished(&d) && !delivery_failed(&d));
    delivery_free(&d);
}

static void test_a_delete_while_sending_wins_over_the_late_answer(void)
{
    struct delivery d;
    CHECK_EQ(delivery_init(&d, QUEUE_UNICAST, 1, 3, 0, T0), 0);
    CHECK_EQ(send_due(&d, T0, NULL), 1);
    CHECK(delivery_acknowledge(&d, 0));
    delivery_answer(&d, 0, 500, T0 + 10, DELAY);
    CHECK_EQ(d.subs[0].state, DS_DELIVERED);
    CHECK(delivery_finished(&d));
    delivery_free(&d);
}

/* The packed form carries every field and each subscriber's last reservation id; a
 * request that was out when it was written is due again at once when read; damaged text
 * is refused. */
static void test_the_packed_form_reads_back_and_a_request_out_is_due_again(void)
{
    struct delivery d;
    CHECK_EQ(delivery_init(&d, QUEUE_MULTICAST, 3, 2, 0, T0), 0);
    CHECK_EQ(send_due(&d, T0, NULL), 3);
    delivery_answer(&d, 0, 200, T0 + 5, DELAY);
    delivery_answer(&d, 1, 500, T0 + 5, DELAY);
    delivery_rid *rids = calloc(3, sizeof(*rids));
    memcpy(rids[0], "0123456789abcdef0123456789abcdef", sizeof(rids[0]));
    memcpy(rids[2], "fedcba9876543210fedcba9876543210", sizeof(rids[2]));
    char *text = delivery_pack(&d, (const delivery_rid *)rids);
    struct delivery back;
    delivery_rid *back_rids = NULL;
    CHECK_EQ(delivery_unpack(&back, &back_rids, text, T0 + 100), 0);
    CHECK_EQ(back.type, QUEUE_MULTICAST);
    CHECK_EQ(back.n, 3);
    CHECK_EQ(back.subs[0].state, DS_DELIVERED);
    CHECK_EQ(back.subs[0].status_code, 200);
    CHECK_EQ(back.subs[1].state, DS_DUE);
    CHECK_EQ(back.subs[1].due_ms, T0 + 5 + DELAY * 1000);
    CHECK_EQ(back.subs[1].retries_remaining, 1);
    CHECK_EQ(back.subs[1].tries, 1);
    CHECK_EQ(back.subs[1].last_try_ms, T0);
    CHECK_EQ(back.subs[2].state, DS_DUE); /* was sending: due again when read */
    CHECK_EQ(back.subs[2].due_ms, T0 + 100);
    CHECK_STR(back_rids[0], rids[0]);
    CHECK_STR(back_rids[1], "");
    CHECK_STR(back_rids[2], rids[2]);
    delivery_free(&back);
    free(back_rids);
    size_t len = strlen(text);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation is refused */
        char *part = strndup(text, cut);
        CHECK_EQ(delivery_unpack(&back, &back_rids, part, T0), -1);
        CHECK(back_rids == NULL);
        free(part);
    }
    const char *bad[] = {"d1 9 1 0 0 0\n0 0 0 0 0 0 -\n", "d1 2 0 0 0 0\n",
                         "d1 2 1 0 0 0\n0 0 0 0 0 0 short\n", "d1 2 1 0 0 0\n7 0 0 0 0 0 -\n",
                         "d1 2 1 0 0 0\n0 0 0 0 0 0 -\nextra"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(delivery_unpack(&back, &back_rids, bad[i], T0), -1);
    free(text);
    free(rids);
    delivery_free(&d);
}

CHECK_MAIN(TEST(test_multicast_delivers_to_each_and_retries_each_on_its_own),
           TEST(test_unicast_tries_the_next_at_once_and_waits_between_rounds),
           TEST(test_unicast_out_of_rounds_fails_every_subscriber),
           TEST(test_202_holds_until_delete_or_until_the_delay_runs_out),
           TEST(test_a_delete_while_sending_wins_over_the_late_answer),
           TEST(test_the_packed_form_reads_back_and_a_request_out_is_due_again))
