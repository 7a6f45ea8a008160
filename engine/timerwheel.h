/* engine/timerwheel.h — hierarchical timing wheel for every deadline in the engine
 * (reservation timeouts, delays, expirations, long-poll waits).
 * O(1) insert and cancel; nodes live inside their owners, so no allocation per timer.
 * Knows nothing of messages or queues: it only calls back with the node that expired.
 * Time is whatever the caller passes in (milliseconds); the wheel never reads a clock. */
#ifndef ANVIL_TIMERWHEEL_H
#define ANVIL_TIMERWHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

enum { TW_LEVELS = 4, TW_SLOT_BITS = 8, TW_SLOTS = 1 << TW_SLOT_BITS };

struct tw_node {
    struct list_node link; /* unlinked (self-pointing) when not scheduled */
    int64_t expires_ms;
    uint32_t tag;          /* the owner's: tells the fire callback what kind of timer this is */
};

struct timerwheel {
    int64_t now_ms; /* the next tick to process: every timer before it has fired */
    size_t count;
    struct list_node slots[TW_LEVELS][TW_SLOTS];
    uint64_t maybe_busy[TW_LEVELS][TW_SLOTS / 64]; /* bit set: slot may hold timers */
    struct list_node overflow; /* beyond the top level (about 49 days) */
};

typedef void (*tw_fire_fn)(struct tw_node *node, void *ctx);

void tw_init(struct timerwheel *tw, int64_t now_ms);
void tw_node_init(struct tw_node *node, uint32_t tag);
/* Schedules (or reschedules) node at expires_ms; a time in the past fires on the next advance. */
void tw_insert(struct timerwheel *tw, struct tw_node *node, int64_t expires_ms);
void tw_cancel(struct timerwheel *tw, struct tw_node *node);
static inline bool tw_pending(const struct tw_node *node) { return list_linked(&node->link); }
/* Fires, in deadline order (per millisecond), every timer with expires_ms <= now_ms.
 * Callbacks may insert and cancel timers, including ones that fire in this same call.
 * Returns the number of timers fired. */
size_t tw_advance(struct timerwheel *tw, int64_t now_ms, tw_fire_fn fire, void *ctx);
/* A time at or before the earliest pending deadline (INT64_MAX when none): the caller
 * may sleep until then; waking earlier is harmless. */
int64_t tw_next_deadline(const struct timerwheel *tw);

#endif
