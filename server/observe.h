/* server/observe.h — what only the server knows, for GET /metrics (api/metrics.h's
 * metrics_process callback): the process's memory from /proc/self/statm, the client
 * connections libmicrohttpd holds open, and the pusher's delivery tally. And the pusher's
 * one pair of hooks (server/pusher.h), handed on to whoever watches push attempts: the
 * dashboard's push log always, the test kit's push log and failing subscribers when test
 * mode is on. */
#ifndef ANVIL_OBSERVE_H
#define ANVIL_OBSERVE_H

#include <stdbool.h>

#include "../api/metrics.h"
#include "../engine/engine.h"

struct admin;
struct dash;
struct http;
struct pusher;

/* The callbacks' context; any pointer may be NULL (not started yet, or off). */
struct observe {
    const struct http *http;
    const struct pusher *pusher;
    const struct engine *engine; /* whose time stamps a push attempt */
    struct dash *dash;
    struct admin *admin;
};

/* A metrics_process_fn: ctx is a struct observe. */
void observe_process(void *ctx, struct metrics_process *out);
/* The pusher's hooks (struct pusher_hooks), ctx a struct observe. */
bool observe_push_before_send(void *ctx, struct eng_push_attempt *a, int *status);
void observe_push_after(void *ctx, const struct eng_push_attempt *a);

#endif
