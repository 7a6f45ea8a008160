/* api/history.h — the dashboard's memory of the last minutes. Every HISTORY_INTERVAL_MS the
 * server hands it a reading (the engine's event counters, the server's depth, and each named
 * queue's depth and posted total); it keeps the last HISTORY_POINTS readings in rings and
 * answers "how deep, how fast" for the whole server and for each queue it has seen. Rates
 * are per second between two readings. Pure: it reads no clock (times come with the
 * readings, on the engine's clock, so a test can drive it with the virtual clock) and never
 * calls the engine. */
#ifndef ANVIL_HISTORY_H
#define ANVIL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HISTORY_POINTS = 120,       /* ten minutes at ... */
    HISTORY_INTERVAL_MS = 5000, /* ... one reading each 5 s */
    HISTORY_QUEUES = 200,       /* queues followed: the first ones by project, then name */
};

struct history_queue_reading {
    const char *project, *queue; /* borrowed for the call */
    uint64_t depth;              /* ready + delayed + reserved + pushing */
    uint64_t posted;             /* messages ever put on it (total_messages) */
};

struct history_reading {
    int64_t at_ms;
    bool has_events; /* false: the back end counts no events (PostgreSQL): no server rates */
    uint64_t posts, deletes, reserves; /* since start */
    uint64_t ready, delayed, reserved;
    bool has_queues; /* false: no depths at all (PostgreSQL): neither the levels nor queues */
    const struct history_queue_reading *queues;
    size_t n_queues;
};

/* The server-wide series a rate or level is read from. */
enum history_series {
    HS_POSTS = 0, /* rates */
    HS_DELETES,
    HS_RESERVES,
    HS_READY,     /* levels */
    HS_DELAYED,
    HS_RESERVED,
    HS_COUNT
};

struct history;

struct history *history_new(void); /* NULL when out of memory */
void history_free(struct history *h);

/* When the next reading is due (INT64_MIN before the first: at once). */
int64_t history_next_ms(const struct history *h);
/* Keeps a reading (the oldest goes once HISTORY_POINTS are kept). A reading whose time is
 * not after the last one's is ignored. Queues not seen for HISTORY_POINTS readings are
 * forgotten. -1 when memory ran out (the server-wide part is kept all the same). */
int history_add(struct history *h, const struct history_reading *r);

/* Readings kept, and reading i's time (0: the oldest). */
size_t history_len(const struct history *h);
int64_t history_time(const struct history *h, size_t i);
/* Server-wide: a level at reading i, or a rate per second from reading i-1 to i. False when
 * there is none (a rate at i = 0, no events or no depths in the reading). */
bool history_value(const struct history *h, enum history_series s, size_t i, double *out);
/* A queue the history follows (valid until the next history_add), found once and then read
 * point by point; NULL when no kept reading names it. */
struct history_queue;
const struct history_queue *history_find(const struct history *h, const char *project,
                                         const char *queue);
/* One queue at reading i: its depth, and its in and out rates per second from reading i-1
 * (out = in - the depth's change: deleted, expired, moved on). False when the queue was not
 * there (or, for rates, not at i-1); q may be NULL (never there). */
bool history_queue_depth(const struct history *h, const struct history_queue *q, size_t i,
                         uint64_t *out);
bool history_queue_rates(const struct history *h, const struct history_queue *q, size_t i,
                         double *in, double *out);
/* A queue's in and out rates per second over the last window_ms (at least one interval):
 * what the queue table shows. False when the queue has fewer than two readings. */
bool history_queue_recent(const struct history *h, const struct history_queue *q,
                          int64_t window_ms, double *in, double *out);

#endif
