/* api/metrics.h — GET /metrics in the Prometheus text format (0.0.4), and the request
 * counters behind it. The engine's numbers come from eng_stats and eng_metrics; what only
 * the server knows (process memory, connections, push deliveries) comes through a callback
 * the server sets, so this module reads no clock and no /proc: durations are passed in. */
#ifndef ANVIL_METRICS_H
#define ANVIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/hist.h"

struct api;
struct api_request;
struct metrics;

/* What a push request came to (anvil_push_deliveries_total's outcome label). */
enum metrics_push_outcome {
    METRICS_PUSH_SUCCESS = 0, /* 2xx other than 202: delivered */
    METRICS_PUSH_ACCEPTED,    /* 202: the subscriber deletes it later */
    METRICS_PUSH_REFUSED,     /* any other HTTP status: retried */
    METRICS_PUSH_ERROR,       /* no answer (connection refused, reset...): retried */
    METRICS_PUSH_TIMEOUT,     /* no answer within push_timeout: retried */
    METRICS_PUSH_FAKED,       /* the test kit answered in the subscriber's place */
    METRICS_PUSH_OUTCOMES
};

struct metrics_push {
    uint64_t outcomes[METRICS_PUSH_OUTCOMES];
    struct hist latency_us; /* answered requests only (hist_latency_us) */
};

/* What a push request's answer comes to (status as eng_push_attempt has it, -1: none), and
 * the outcome's name ("success", "accepted", "refused", "error", "timeout", "faked"). */
enum metrics_push_outcome metrics_push_outcome(int status, bool timed_out, bool faked);
const char *metrics_push_outcome_name(enum metrics_push_outcome o);
/* Counts one push request's outcome: status as eng_push_attempt has it (-1: none). */
void metrics_push_note(struct metrics_push *mp, int status, bool timed_out, bool faked,
                       uint64_t latency_us);

/* What the server fills in at each scrape; has_ false: not known (not rendered). */
struct metrics_process {
    bool has_memory;
    uint64_t resident_bytes, virtual_bytes;
    bool has_connections;
    uint64_t connections;
    bool has_push;
    struct metrics_push push;
};
typedef void (*metrics_process_fn)(void *ctx, struct metrics_process *out);

/* queue_limit: queues whose depth is labelled with their names (the rest are summed).
 * fn may be NULL. NULL when out of memory. */
struct metrics *metrics_new(size_t queue_limit, metrics_process_fn fn, void *ctx);
void metrics_free(struct metrics *m);
/* One answered request: route is the endpoint name the router set (NULL: "other"),
 * latency from its arrival to its answer being sent. m may be NULL. */
void metrics_note_request(struct metrics *m, const char *route, int status, uint64_t latency_us);
/* GET /metrics (authorised by the router). */
void metrics_handle(struct api *api, struct api_request *req);

#endif
