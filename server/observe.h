/* server/observe.h — what only the server knows, for GET /metrics (api/metrics.h's
 * metrics_process callback): the process's memory from /proc/self/statm, the client
 * connections libmicrohttpd holds open, and the pusher's delivery tally. */
#ifndef ANVIL_OBSERVE_H
#define ANVIL_OBSERVE_H

#include "../api/metrics.h"

struct http;
struct pusher;

/* The callback's context; either pointer may be NULL (not started yet). */
struct observe {
    const struct http *http;
    const struct pusher *pusher;
};

/* A metrics_process_fn: ctx is a struct observe. */
void observe_process(void *ctx, struct metrics_process *out);

#endif
