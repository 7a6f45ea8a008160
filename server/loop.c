/* server/loop.c — the event loop (see loop.h). SIGHUP calls on_reload between two events:
 * no request is in the middle of a call, and no connection is touched. Shutdown: the first
 * SIGINT or SIGTERM stops accepting connections and answers every long poll at once; the
 * loop keeps turning until no request is in progress and the last commit is done, or
 * shutdown_timeout passes. A second signal stops at once (the engine still commits what it
 * has when it closes). */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

enum { TAG_HTTP = 1, TAG_ENGINE = 2, TAG_SIGNAL = 3, TAG_PUSH = 4, MAX_EVENTS = 128 };

int loop_init(struct loop *l, char *err, size_t err_len)
{
    memset(l, 0, sizeof(*l));
    l->signal_fd = -1;
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epoll_fd < 0) {
        snprintf(err, err_len, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (l->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        snprintf(err, err_len, "signalfd: %s", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_SIGNAL};
    if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->signal_fd, &ev) != 0) {
        snprintf(err, err_len, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int add_fd(struct loop *l, int fd, uint64_t tag, char *err, size_t err_len)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (fd >= 0 && epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        snprintf(err, err_len, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* A failed commit is retried by the engine; a slow one is only reported. The writer thread
 * measured it; we are on the loop thread here, so logging is as safe as anywhere. */
static void on_commit(void *ctx, const struct eng_commit *c)
{
    const struct loop *l = ctx;
    double ms = (double)c->duration_us / 1000.0;
    if (!c->ok) {
        log_msg(LOG_ERROR, "commit of batch %llu (%llu records) failed: %s (retrying)",
                (unsigned long long)c->epoch, (unsigned long long)c->records, c->error);
        return;
    }
    if (!l->slow_commit_ms || c->duration_us <= (uint64_t)l->slow_commit_ms * 1000u)
        return;
    const struct log_field fields[] = {
        {.key = "batch", .kind = LF_INT, .num = (long long)c->epoch},
        {.key = "records", .kind = LF_INT, .num = (long long)c->records},
        {.key = "duration_ms", .kind = LF_MS, .ms = ms},
        {.key = "threshold_ms", .kind = LF_INT, .num = l->slow_commit_ms},
    };
    log_event(LOG_WARN, "slow commit", fields, sizeof(fields) / sizeof(fields[0]));
}

int loop_attach(struct loop *l, struct http *http, struct engine *engine, char *err, size_t err_len)
{
    l->http = http;
    l->engine = engine;
    if (http_fd(http) < 0) {
        snprintf(err, err_len, "libmicrohttpd has no epoll fd");
        return -1;
    }
    if (add_fd(l, http_fd(http), TAG_HTTP, err, err_len) != 0)
        return -1;
    eng_set_commit_observer(engine, on_commit, l);
    return add_fd(l, eng_poll_fd(engine), TAG_ENGINE, err, err_len);
}

int loop_attach_pusher(struct loop *l, struct pusher *p, char *err, size_t err_len)
{
    l->pusher = p;
    return add_fd(l, pusher_fd(p), TAG_PUSH, err, err_len);
}

static void begin_stop(struct loop *l)
{
    if (l->stopping) {
        log_msg(LOG_WARN, "second signal: stopping now");
        l->stop_deadline_us = 0;
        return;
    }
    log_msg(LOG_INFO, "stopping: no new connections, answering long polls, finishing requests");
    notify_systemd("STOPPING=1");
    l->stopping = true;
    l->stop_deadline_us = clock_mono_us() + (int64_t)l->shutdown_timeout_s * 1000000;
    http_stop_accepting(l->http);
    eng_wake_all_waiters(l->engine);
    admin_run_all_timers(l->admin); /* the test kit's delays end now */
}

static void on_signal(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP && l->on_reload) {
            notify_systemd("RELOADING=1");
            l->on_reload(l->reload_ctx);
            notify_systemd("READY=1");
        }
        else if (si.ssi_signo == SIGHUP)
            log_msg(LOG_INFO, "SIGHUP: nothing to reload");
        else
            begin_stop(l);
    }
}

/* Milliseconds to sleep: until the engine's next deadline or MHD's, whichever is first. */
static int wait_ms(struct loop *l)
{
    int64_t now = vclock_now(&l->clock, clock_wall_ms());
    int64_t wait = -1;
    int64_t deadline = eng_next_deadline(l->engine);
    if (deadline != INT64_MAX && !l->clock.frozen) /* frozen: nothing falls due by waiting */
        wait = deadline > now ? deadline - now : 0;
    int64_t mhd = http_next_timeout_ms(l->http);
    if (mhd >= 0 && (wait < 0 || mhd < wait))
        wait = mhd;
    int64_t push = l->pusher ? pusher_next_timeout_ms(l->pusher) : -1;
    if (push >= 0 && (wait < 0 || push < wait))
        wait = push;
    int64_t reading = l->dash ? dash_next_ms(l->dash) : INT64_MAX;
    if (reading != INT64_MAX && !l->clock.frozen) {
        int64_t in = reading > now ? reading - now : 0;
        if (wait < 0 || in < wait)
            wait = in;
    }
    int64_t kit = admin_next_timeout_ms(l->admin);
    if (kit >= 0 && (wait < 0 || kit < wait))
        wait = kit;
    if (l->stopping && (wait < 0 || wait > 100))
        wait = 100;
    return wait > 60000 ? 60000 : (int)wait;
}

static bool drained(const struct loop *l)
{
    if (clock_mono_us() >= l->stop_deadline_us) {
        if (http_requests_in_progress(l->http))
            log_msg(LOG_WARN, "shutdown timeout: %zu requests still in progress",
                    http_requests_in_progress(l->http));
        return true;
    }
    return http_requests_in_progress(l->http) == 0 && eng_idle(l->engine);
}

void loop_run(struct loop *l)
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(l->epoll_fd, events, MAX_EVENTS, wait_ms(l));
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "epoll_wait: %s", strerror(errno));
            return;
        }
        eng_set_time(l->engine, vclock_now(&l->clock, clock_wall_ms()));
        bool push_ready = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_ENGINE)
                eng_on_readable(l->engine);
            else if (tag == TAG_SIGNAL)
                on_signal(l);
            else if (tag == TAG_PUSH)
                push_ready = true; /* pusher_run() below looks at every curl socket */
            else if (tag != TAG_HTTP)
                http_on_hangup(l->http, events[i].data.ptr);
        }
        if (l->pusher)
            pusher_run(l->pusher, push_ready);
        admin_run_timers(l->admin);
        if (l->dash)
            dash_tick(l->dash, l->engine, eng_now_ms(l->engine));
        http_run(l->http);
        eng_flush(l->engine);
        if (l->stopping && drained(l))
            return;
    }
}

void loop_close(struct loop *l)
{
    if (l->signal_fd >= 0)
        close(l->signal_fd);
    if (l->epoll_fd >= 0)
        close(l->epoll_fd);
    l->signal_fd = l->epoll_fd = -1;
}
