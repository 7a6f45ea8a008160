/* server/loop.h — the event loop: one thread, one epoll set holding libmicrohttpd's epoll
 * fd, the engine's commit fd, a signalfd and the hang-up watches of long polls. It logs
 * failed and slow group commits, and hands SIGHUP to on_reload. Each turn:
 * wait (until the earliest of MHD's and the engine's deadlines), give the engine the time,
 * handle what woke us, take the dashboard's reading when one is due, let MHD do its I/O,
 * then start the next group commit.
 * The engine's time is the loop's vclock: wall time, unless a test froze or advanced it. */
#ifndef ANVIL_LOOP_H
#define ANVIL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "../api/admin.h"
#include "../api/dash.h"
#include "../engine/engine.h"
#include "../engine/vclock.h"
#include "http.h"
#include "pusher.h"

struct loop {
    int epoll_fd;
    int signal_fd;
    struct http *http;
    struct engine *engine;
    struct pusher *pusher;
    struct vclock clock;  /* the engine's time: wall time, or virtual in test mode */
    struct admin *admin;  /* the test kit's real-time timers; NULL when test mode is off */
    struct dash *dash;    /* the dashboard's history, read from the engine every few seconds */
    unsigned shutdown_timeout_s;
    unsigned slow_commit_ms;   /* warn about group commits slower than this; 0: never */
    /* SIGHUP: re-read the settings (server/reload.c); NULL: nothing to reload */
    void (*on_reload)(void *ctx);
    void *reload_ctx;
    bool stopping;
    int64_t stop_deadline_us;
};

/* Creates the epoll set and the signalfd (SIGINT, SIGTERM, SIGHUP are blocked). */
int loop_init(struct loop *l, char *err, size_t err_len);
/* Adds the http server's and the engine's fds; call once both exist. */
int loop_attach(struct loop *l, struct http *http, struct engine *engine, char *err, size_t err_len);
/* Runs until SIGINT/SIGTERM and a graceful drain (or a second signal). */
/* Adds the pusher's fd; its timeout joins the loop's sleep. */
int loop_attach_pusher(struct loop *l, struct pusher *p, char *err, size_t err_len);
void loop_run(struct loop *l);
void loop_close(struct loop *l);

#endif
