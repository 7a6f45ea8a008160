/* engine/delivery.h — the delivery state of one pushed message: for each subscriber, what
 * was tried, what it answered and what comes next, following the wire contract §4.
 *   multicast: every subscriber, each retried on its own; a delivered one never again.
 *   unicast:   one subscriber at a time; on a failure the next one at once; when every one
 *              failed in a round, the next round after retries_delay.
 *   200 → delivered. 202 → reserved for that subscriber until it deletes the message, or
 *   until retries_delay passes (then it counts as a failure). Anything else, a connection
 *   error or a timeout → a failure: retried after retries_delay while retries remain.
 * Pure bookkeeping: no I/O, time passed in. The push engine asks what is due, sends, and
 * reports outcomes; it posts to the error queue when delivery_failed() says so. */
#ifndef ANVIL_DELIVERY_H
#define ANVIL_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

enum delivery_state {
    DS_IDLE,      /* not tried yet in this round (unicast: not its turn) */
    DS_DUE,       /* to be sent at due_ms */
    DS_SENDING,   /* a request is out */
    DS_RESERVED,  /* answered 202: waiting for its delete until due_ms */
    DS_DELIVERED, /* answered 200, or deleted after a 202 */
    DS_FAILED,    /* out of retries */
};

struct delivery_sub {
    enum delivery_state state;
    int status_code;            /* the last answer; 0 before any, -1 no answer (error, timeout) */
    uint32_t tries;
    uint32_t retries_remaining;
    int64_t last_try_ms;        /* 0 before any */
    int64_t due_ms;             /* DS_DUE: when to send; DS_RESERVED: when the 202 runs out */
};

struct delivery {
    enum queue_type type;
    uint32_t n;
    struct delivery_sub *subs;
    uint32_t current;           /* unicast: the subscriber whose turn it is */
    uint32_t tried_this_round;  /* unicast: failures in the current round */
    uint32_t retries_remaining; /* unicast: rounds left after this one */
};

/* Sets d up for n subscribers; unicast starts with subscriber `first`. -1 out of memory. */
int delivery_init(struct delivery *d, enum queue_type type, uint32_t n, uint32_t retries,
                  uint32_t first, int64_t now_ms);
void delivery_free(struct delivery *d);
/* Marks subscriber i as being sent to (it must be DS_DUE). */
void delivery_sending(struct delivery *d, uint32_t i, int64_t now_ms);
/* The answer of subscriber i: an HTTP status, or -1 for no answer. */
void delivery_answer(struct delivery *d, uint32_t i, int status, int64_t now_ms, uint32_t delay_s);
/* Subscriber i deleted the message after its 202: delivered. False if it held no reservation. */
bool delivery_acknowledge(struct delivery *d, uint32_t i);
/* Time passed: a 202 that ran out counts as a failure. Returns the earliest due_ms left
 * (INT64_MAX when nothing waits). */
int64_t delivery_tick(struct delivery *d, int64_t now_ms, uint32_t delay_s);
bool delivery_finished(const struct delivery *d); /* nothing left to do */
bool delivery_failed(const struct delivery *d);   /* finished and some subscriber never got it */
/* The word push statuses show: queued, retrying, sending, reserved, deleted, error. */
const char *delivery_status_word(const struct delivery_sub *s);

/* Each subscriber's push status (wire contract §4), for the n of d: subs[i] its settings
 * (i >= n_subs: removed since the post, shown with empty name and URL), rid(ctx, i, out) its
 * last reservation id in hex. NULL when memory ran out; free with eng_push_statuses_free. */
typedef void (*delivery_rid_fn)(const void *ctx, uint32_t i, char out[RESERVATION_ID_HEX + 1]);
struct eng_push_status *delivery_statuses(const struct delivery *d,
                                          const struct eng_subscriber *subs, uint32_t n_subs,
                                          delivery_rid_fn rid, const void *ctx);

/* A subscriber's last reservation id (hex, "" before any). */
typedef char delivery_rid[RESERVATION_ID_HEX + 1];
/* The stored text form of d with each subscriber's last reservation id (the PostgreSQL back
 * end keeps it in a column): malloc'd, NULL when memory ran out. */
char *delivery_pack(const struct delivery *d, const delivery_rid *rids);
/* Reads a packed form into d and *rids (d->n entries, malloc'd; free both with
 * delivery_free and free). A request that was out counts as due again at now_ms. -1 when
 * malformed or out of memory. */
int delivery_unpack(struct delivery *d, delivery_rid **rids, const char *text, int64_t now_ms);

#endif
