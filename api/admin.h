/* api/admin.h — the test kit: routes under /admin/ that let a test suite drive anvil
 * (docs/testing-with-anvil.md): the virtual clock, reset and snapshots, fault injection,
 * a peek that sees everything, an event stream, the push log and a built-in push sink.
 * Off unless test mode is on (--test-mode, or by default in dev mode): then struct api's
 * admin is NULL and every /admin/ route answers 403. */
#ifndef ANVIL_ADMIN_H
#define ANVIL_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "../engine/vclock.h"
#include "api.h"

struct admin;

struct admin_options {
    struct vclock *clock;      /* the server's clock switch (the engine's time) */
    int64_t (*wall_ms)(void);  /* the wall clock (only server/ reads clocks) */
    int64_t (*mono_us)(void);  /* a monotonic clock, for added latency and measurements */
};

/* NULL when out of memory. */
struct admin *admin_open(struct api *api, const struct admin_options *opt);
void admin_close(struct admin *a);

/* Loads a fixture file (--init) before the server takes requests, running the engine's
 * calls to completion. Returns 0, or -1 with a reason in err. */
int admin_load_file(struct admin *a, const char *path, char *err, size_t err_len);

/* Answers a request whose first path segment is "admin" (segments percent-decoded). */
void admin_handle(struct api *api, struct api_request *req, char **seg, size_t n);

/* Fault injection (admin_faults.c), asked by a front once it has admitted a request and
 * before its handler runs: route is the endpoint's name ("post", "reserve"..., or
 * "sqs:SendMessage" on the SQS front), project and queue those the request names (NULL:
 * none). Returns 0: handle the request; an HTTP status (400-599): answer with it instead,
 * *msg its text (valid until the next call); -1: the kit holds the request (added latency)
 * and will pass it to api_handle() again when the time is up, where this call returns the
 * decision made now. */
int admin_fault_check(struct admin *a, struct api_request *req, const char *route,
                      const char *project, const char *queue, const char **msg);

/* Real-time timers of the kit (added latency, a push sink's slow answers; they run on wall
 * time even while the engine's clock is frozen): milliseconds until the next is due (-1:
 * none), and running those that are due. The loop calls both every turn. */
int64_t admin_next_timeout_ms(struct admin *a);
void admin_run_timers(struct admin *a);
/* A graceful stop began: every timer fires now (requests held for added latency go on, a
 * push sink's delayed answers are sent), so the kit holds up no stop. a may be NULL. */
void admin_run_all_timers(struct admin *a);

/* The push log and failing push subscribers (admin_push.c) watch anvil's pusher through
 * these two, which server/main.c hands to it as its hooks (server/pusher.h) with the kit
 * as ctx: before_send records when a request goes out and keeps back those a
 * failing-subscriber rule matches (true, with the rule's answer in *status); after logs
 * each outcome. */
bool admin_push_before_send(void *kit, struct eng_push_attempt *at, int *status);
void admin_push_after(void *kit, const struct eng_push_attempt *at);

#endif
