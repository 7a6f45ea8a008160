/* server/pusher.h — sends push queues' requests to their subscribers with libcurl's multi
 * interface, driven by the event loop: curl's sockets live in the pusher's own epoll set
 * (one fd the loop watches), curl's timeout is folded into the loop's sleep. Never a thread,
 * never a blocking call. It is the engine's pusher (eng_set_pusher): the engine says what to
 * send, the pusher reports each answer back, and posts the contract's error message to a
 * queue's error queue when the engine says delivery failed. */
#ifndef ANVIL_PUSHER_H
#define ANVIL_PUSHER_H

#include <stdbool.h>
#include <stdint.h>

#include "../api/metrics.h"
#include "../engine/engine.h"

struct pusher;

struct pusher_options {
    uint32_t timeout_ms;         /* a subscriber's whole answer (contract: 10 s) */
    uint32_t connect_timeout_ms;
    uint32_t max_in_flight;      /* requests out at once */
    uint32_t max_per_subscriber; /* requests out at once to one subscriber */
    const char *self_url;        /* e.g. http://127.0.0.1:8080, for Iron-Subscriber-Message-Url */
};

struct pusher *pusher_open(struct engine *engine, const struct pusher_options *opt, char *err,
                           size_t err_len);
int pusher_fd(const struct pusher *p);
/* Milliseconds until curl wants to be called, -1 for none. */
int64_t pusher_next_timeout_ms(const struct pusher *p);
/* Every loop turn: the I/O curl's sockets are ready for (readable: pusher_fd fired), curl's
 * timeout if it passed, and the answers. Costs no system call when neither is the case. */
void pusher_run(struct pusher *p, bool readable);
/* A watcher of push attempts (the test kit, api/admin.h; none unless test mode is on).
 * before_send sees each request about to go out and may keep it from going out: it returns
 * true with the answer to report in its place in *status (-1: none, as after a connection
 * error; it may set a->error), and the pusher reports that answer to the engine on its next
 * run, never from inside the engine's call. It may set a->sent_at_ms, which after() gets
 * back. after() sees each outcome (an answer, a failure, or the one before_send gave),
 * just before the engine does. */
struct pusher_hooks {
    bool (*before_send)(void *ctx, struct eng_push_attempt *a, int *status);
    void (*after)(void *ctx, const struct eng_push_attempt *a);
    void *ctx;
};

/* Sets the hooks (NULL or zeroed: none). Requests already out are reported only when they
 * went out with hooks set. */
void pusher_set_hooks(struct pusher *p, const struct pusher_hooks *hooks);
/* Every push request's outcome and latency so far (GET /metrics). */
void pusher_tally(const struct pusher *p, struct metrics_push *out);
/* Requests still out (shutdown waits for them a while). */
uint32_t pusher_in_flight(const struct pusher *p);
/* Stops the engine from sending (before eng_close) and drops the hooks; pusher_close
 * after it. */
void pusher_detach(struct pusher *p);
void pusher_close(struct pusher *p);

#endif
