/* server/pusher.c — push requests through libcurl's multi interface (see pusher.h).
 * libcurl is used because a correct HTTP/1.1 client with TLS, redirects refused, timeouts
 * and connection reuse is far more than this project should write; its multi-socket API
 * lets the event loop own every wait. */
#include "pusher.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../api/metrics.h"
#include "../engine/list.h"
#include "clock.h"
#include "log.h"

struct pusher {
    struct engine *engine;
    CURLM *multi;
    int epoll_fd;
    int64_t timeout_at_ms; /* -1: curl wants no timeout */
    uint32_t in_flight;
    struct list_node transfers; /* every transfer out, for the close */
    struct list_node posted;    /* error-queue posts answered: freed at the next run */
    struct list_node faked;     /* requests the hooks answered: reported at the next run */
    struct pusher_hooks hooks;
    struct metrics_push tally;  /* every outcome, for GET /metrics */
    /* Requests that could not even start (out of memory): answered -1 at the next run,
     * never from inside the engine's call that asked for them. */
    struct unsent { uint64_t msg_id; uint32_t subscriber, try_no, slot; } unsent[256];
    uint32_t n_unsent;
    struct pusher_options opt;
    char *self_url;
};

struct transfer {
    struct list_node link;
    struct pusher *p;
    CURL *easy;
    struct curl_slist *headers;
    struct blob *body;
    uint64_t msg_id;
    uint32_t subscriber, try_no, slot;
    char error[CURL_ERROR_SIZE];
    /* With hooks: what they are told (labels holds project, queue, subscriber name and
     * url, each NUL-terminated), and the answer they gave for a request kept back. */
    char *labels;
    int64_t sent_at_ms, sent_us;
    int fake_status;
    const char *fake_error;
};

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy, (void)socketp;
    struct pusher *p = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = fd};
    if (epoll_ctl(p->epoll_fd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct pusher *p = userp;
    p->timeout_at_ms = timeout_ms < 0 ? -1 : clock_mono_us() / 1000 + timeout_ms;
    return 0;
}

static size_t discard(char *data, size_t size, size_t n, void *userp)
{
    (void)data, (void)userp;
    return size * n;
}

static void add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (!line)
        return;
    snprintf(line, len, value[0] ? "%s: %s" : "%s:", name, value); /* "Name:" removes it */
    struct curl_slist *grown = curl_slist_append(*list, line);
    free(line);
    if (grown)
        *list = grown;
}

static bool sub_sets(const struct eng_subscriber *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_headers; i++)
        if (strcasecmp(s->headers[i].name, name) == 0)
            return true;
    return false;
}

/* Does the message's own push_headers (name\0value\0 pairs) set header `name`? */
static bool msg_sets(const struct blob *h, const char *name)
{
    for (size_t at = 0; h && at < h->len;) {
        const char *n = (const char *)h->data + at;
        const char *v = n + strlen(n) + 1;
        if (strcasecmp(n, name) == 0)
            return true;
        at = (size_t)(v + strlen(v) + 1 - (const char *)h->data);
    }
    return false;
}

static void transfer_free(struct transfer *t)
{
    if (list_linked(&t->link))
        list_remove(&t->link);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    blob_unref(t->body);
    free(t->labels);
    free(t);
}

/* ---- the hooks ---- */

static char *labels_of(const struct eng_push_request *req)
{
    const char *parts[4] = {req->project, req->queue, req->sub->name, req->sub->url};
    size_t len = 0;
    for (int i = 0; i < 4; i++)
        len += strlen(parts[i]) + 1;
    char *labels = malloc(len), *at = labels;
    for (int i = 0; labels && i < 4; i++) {
        size_t n = strlen(parts[i]) + 1;
        memcpy(at, parts[i], n);
        at += n;
    }
    return labels;
}

static struct eng_push_attempt attempt_of(const struct transfer *t)
{
    struct eng_push_attempt a = {.msg_id = t->msg_id, .try_no = t->try_no,
                                 .sent_at_ms = t->sent_at_ms, .status = -1, .error = ""};
    const char **parts[4] = {&a.project, &a.queue, &a.subscriber, &a.url};
    const char *at = t->labels;
    for (int i = 0; i < 4; i++) {
        *parts[i] = at;
        at += strlen(at) + 1;
    }
    return a;
}

/* Shows the hooks a request about to go out; true when they keep it back (it then waits
 * on the faked list for the next run). */
static bool kept_back(struct pusher *p, struct transfer *t, const struct eng_push_request *req)
{
    if ((!p->hooks.before_send && !p->hooks.after) || !(t->labels = labels_of(req)))
        return false;
    struct eng_push_attempt a = attempt_of(t);
    int status = -1;
    bool keep = p->hooks.before_send && p->hooks.before_send(p->hooks.ctx, &a, &status);
    t->sent_at_ms = a.sent_at_ms;
    t->sent_us = clock_mono_us();
    if (!keep)
        return false;
    t->fake_status = status;
    t->fake_error = a.error; /* the watcher's static text */
    list_push_back(&p->faked, &t->link);
    p->in_flight++;
    return true;
}

static void tell_hooks(struct pusher *p, const struct transfer *t, int status, const char *error,
                       bool timed_out, bool faked)
{
    if (!p->hooks.after || !t->labels)
        return;
    struct eng_push_attempt a = attempt_of(t);
    a.status = status;
    a.error = error ? error : "";
    a.timed_out = timed_out;
    a.faked = faked;
    a.latency_us = faked ? 0 : clock_mono_us() - t->sent_us;
    p->hooks.after(p->hooks.ctx, &a);
}

/* Answers, on each run, the requests the hooks kept back (those kept back while
 * answering wait for the next run). */
static void answer_faked(struct pusher *p)
{
    struct list_node now;
    list_init(&now);
    if (list_empty(&p->faked))
        return;
    now.next = p->faked.next; /* take the whole list */
    now.prev = p->faked.prev;
    now.next->prev = &now;
    now.prev->next = &now;
    list_init(&p->faked);
    while (!list_empty(&now)) {
        struct transfer *t = list_entry(now.next, struct transfer, link);
        list_remove(&t->link);
        p->in_flight--;
        tell_hooks(p, t, t->fake_status, t->fake_error, false, true);
        metrics_push_note(&p->tally, t->fake_status, false, true, 0);
        uint64_t id = t->msg_id;
        uint32_t sub = t->subscriber, try_no = t->try_no, slot = t->slot;
        int status = t->fake_status;
        transfer_free(t);
        eng_push_answer(p->engine, id, sub, try_no, slot, status);
    }
}

void pusher_set_hooks(struct pusher *p, const struct pusher_hooks *hooks)
{
    p->hooks = hooks ? *hooks : (struct pusher_hooks){0};
}

/* The request for one subscriber: the body as posted, the contract's headers (User-Agent
 * and Content-Type unless the subscriber sets its own), then the subscriber's. */
static void unsent(struct pusher *p, const struct eng_push_request *req)
{
    if (p->n_unsent < sizeof(p->unsent) / sizeof(p->unsent[0]))
        p->unsent[p->n_unsent++] =
            (struct unsent){req->msg_id, req->subscriber, req->try_no, req->slot};
    else /* the message's delivery starts over at the next start */
        log_msg(LOG_ERROR, "push: out of memory, message %llu waits for a restart",
                (unsigned long long)req->msg_id);
}

static void send_request(void *ctx, const struct eng_push_request *req)
{
    struct pusher *p = ctx;
    struct transfer *t = calloc(1, sizeof(*t));
    if (!t) {
        unsent(p, req);
        return;
    }
    t->p = p;
    list_init(&t->link);
    t->msg_id = req->msg_id;
    t->subscriber = req->subscriber;
    t->try_no = req->try_no;
    t->slot = req->slot;
    if (kept_back(p, t, req))
        return;
    if (!(t->easy = curl_easy_init())) {
        transfer_free(t);
        unsent(p, req);
        return;
    }
    t->body = blob_ref(req->body);
    char id[24], url[4096];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)req->msg_id);
    const struct eng_subscriber *s = req->sub;
    const struct blob *mh = req->push_headers;
    if (!sub_sets(s, "User-Agent") && !msg_sets(mh, "User-Agent"))
        add_header(&t->headers, "User-Agent", "IronMQ Pusherd");
    if (!sub_sets(s, "Content-Type") && !msg_sets(mh, "Content-Type"))
        add_header(&t->headers, "Content-Type", "text/plain; encoding=utf-8");
    for (uint32_t i = 0; i < s->n_headers; i++)
        if (!msg_sets(mh, s->headers[i].name)) /* the message's own win */
            add_header(&t->headers, s->headers[i].name, s->headers[i].value);
    for (size_t at = 0; mh && at < mh->len;) {
        const char *n = (const char *)mh->data + at;
        const char *v = n + strlen(n) + 1;
        add_header(&t->headers, n, v);
        at = (size_t)(v + strlen(v) + 1 - (const char *)mh->data);
    }
    add_header(&t->headers, "Iron-Message-Id", id);
    add_header(&t->headers, "Iron-Reservation-Id", req->reservation_id);
    add_header(&t->headers, "Iron-Subscriber-Name", s->name);
    char *name = curl_easy_escape(t->easy, s->name, 0);
    snprintf(url, sizeof(url), "%s/3/projects/%s/queues/%s/messages/%s?reservation_id=%s&subscriber_name=%s",
             p->self_url, req->project, req->queue, id, req->reservation_id, name ? name : "");
    curl_free(name);
    add_header(&t->headers, "Iron-Subscriber-Message-Url", url);
    add_header(&t->headers, "Expect", ""); /* no 100-continue round trip */
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body ? (const char *)t->body->data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(t->body ? t->body->len : 0));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->opt.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->opt.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    t->sent_us = clock_mono_us();
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) {
        transfer_free(t);
        unsent(p, req);
        return;
    }
    list_push_back(&p->transfers, &t->link);
    p->in_flight++;
}

/* A post to an error queue; the engine owns op until done() has returned. */
struct error_post {
    struct eng_op op;
    struct list_node link;
    struct pusher *p;
    char *text;
};

static void on_posted(struct eng_op *op, const struct eng_result *res)
{
    struct error_post *ep = op->ctx;
    if (res->status != ENG_OK)
        log_msg(LOG_WARN, "push: could not post to the error queue: %s", eng_status_name(res->status));
    list_push_back(&ep->p->posted, &ep->link);
}

static void free_posted(struct pusher *p)
{
    struct list_node *pos, *next;
    list_for_each_safe(pos, next, &p->posted) {
        struct error_post *ep = list_entry(pos, struct error_post, link);
        free(ep->text);
        free(ep);
    }
    list_init(&p->posted);
}

/* The contract's error message: {"source_msg_id", "body", "subscribers": [{"name", "url",
 * "code", "msg"}]}, posted to the queue's error queue. */
static void on_failed(void *ctx, const struct eng_push_failure *f)
{
    struct pusher *p = ctx;
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)f->msg_id);
    json_t *subs = json_array();
    for (size_t i = 0; subs && i < f->n_subs; i++) {
        const struct eng_push_status *s = &f->subs[i];
        if (strcmp(s->word, "error") != 0)
            continue; /* only the subscribers that never got it */
        char why[64];
        if (s->status_code > 0)
            snprintf(why, sizeof(why), "answered %d", s->status_code);
        else
            snprintf(why, sizeof(why), "no answer (connection failed or timed out)");
        json_array_append_new(subs, json_pack("{s:s, s:s, s:i, s:s}", "name", s->name, "url",
                                              s->url, "code", s->status_code > 0 ? s->status_code : 0,
                                              "msg", why));
    }
    json_t *o = json_pack("{s:s, s:s%, s:o, s:{}}", "source_msg_id", id, "body",
                          f->body ? (const char *)f->body->data : "", f->body ? f->body->len : 0,
                          "subscribers", subs, "headers");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct error_post *ep = calloc(1, sizeof(*ep));
    if (!text || !ep) {
        log_msg(LOG_WARN, "push: out of memory building the error message for %s", id);
        free(text);
        free(ep);
        return;
    }
    ep->p = p;
    ep->text = text;
    list_init(&ep->link);
    ep->op.done = on_posted;
    ep->op.ctx = ep;
    struct eng_post_msg m = {.body = text, .body_len = strlen(text)};
    eng_post(p->engine, &ep->op, f->project, f->error_queue, &m, 1);
}

static void reap(struct pusher *p)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(p->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        long code = -1;
        const char *why = NULL;
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        } else {
            why = t->error[0] ? t->error : curl_easy_strerror(msg->data.result);
            log_msg(LOG_INFO, "push of message %llu to subscriber %u: %s",
                    (unsigned long long)t->msg_id, t->subscriber, why);
        }
        curl_multi_remove_handle(p->multi, msg->easy_handle);
        p->in_flight--;
        tell_hooks(p, t, (int)code, why, msg->data.result == CURLE_OPERATION_TIMEDOUT, false);
        metrics_push_note(&p->tally, (int)code, msg->data.result == CURLE_OPERATION_TIMEDOUT,
                          false, (uint64_t)(clock_mono_us() - t->sent_us));
        uint64_t id = t->msg_id;
        uint32_t sub = t->subscriber, try_no = t->try_no, slot = t->slot;
        transfer_free(t);
        eng_push_answer(p->engine, id, sub, try_no, slot, (int)code);
    }
}

void pusher_run(struct pusher *p, bool readable)
{
    struct epoll_event evs[64];
    int running, n;
    while (readable && (n = epoll_wait(p->epoll_fd, evs, 64, 0)) > 0)
        for (int i = 0; i < n; i++) {
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(p->multi, evs[i].data.fd, flags, &running);
        }
    if (p->timeout_at_ms >= 0 && clock_mono_us() / 1000 >= p->timeout_at_ms) {
        p->timeout_at_ms = -1;
        curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    reap(p);
    answer_faked(p);
    free_posted(p);
    uint32_t n_unsent = p->n_unsent;
    p->n_unsent = 0;
    for (uint32_t i = 0; i < n_unsent; i++)
        eng_push_answer(p->engine, p->unsent[i].msg_id, p->unsent[i].subscriber,
                        p->unsent[i].try_no, p->unsent[i].slot, -1);
}

int64_t pusher_next_timeout_ms(const struct pusher *p)
{
    if (!list_empty(&p->faked) || p->n_unsent)
        return 0; /* answers to report at the next run */
    if (p->timeout_at_ms < 0)
        return -1;
    int64_t left = p->timeout_at_ms - clock_mono_us() / 1000;
    return left > 0 ? left : 0;
}

int pusher_fd(const struct pusher *p)
{
    return p->epoll_fd;
}

uint32_t pusher_in_flight(const struct pusher *p)
{
    return p->in_flight;
}

struct pusher *pusher_open(struct engine *engine, const struct pusher_options *opt, char *err,
                           size_t err_len)
{
    struct pusher *p = calloc(1, sizeof(*p));
    if (!p || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_len, "cannot start libcurl");
        free(p);
        return NULL;
    }
    p->engine = engine;
    p->opt = *opt;
    p->timeout_at_ms = -1;
    list_init(&p->transfers);
    list_init(&p->posted);
    list_init(&p->faked);
    p->self_url = strdup(opt->self_url ? opt->self_url : "");
    p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    p->multi = curl_multi_init();
    if (!p->self_url || p->epoll_fd < 0 || !p->multi) {
        snprintf(err, err_len, "cannot set up push delivery");
        pusher_close(p);
        return NULL;
    }
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    struct eng_pusher ep = {.send = send_request, .failed = on_failed, .ctx = p,
                            .max_in_flight = opt->max_in_flight,
                            .max_per_subscriber = opt->max_per_subscriber,
                            .timeout_ms = opt->timeout_ms};
    eng_set_pusher(engine, &ep);
    return p;
}

void pusher_tally(const struct pusher *p, struct metrics_push *out)
{
    *out = p->tally;
}

void pusher_detach(struct pusher *p)
{
    if (!p)
        return;
    struct eng_pusher none = {0};
    eng_set_pusher(p->engine, &none); /* nothing is sent any more */
    p->hooks = (struct pusher_hooks){0};
}

void pusher_close(struct pusher *p)
{
    if (!p)
        return;
    while (!list_empty(&p->transfers)) {
        struct transfer *t = list_entry(p->transfers.next, struct transfer, link);
        curl_multi_remove_handle(p->multi, t->easy);
        transfer_free(t);
    }
    while (!list_empty(&p->faked))
        transfer_free(list_entry(p->faked.next, struct transfer, link));
    if (p->multi)
        curl_multi_cleanup(p->multi);
    free_posted(p);
    if (p->epoll_fd >= 0)
        close(p->epoll_fd);
    free(p->self_url);
    free(p);
    curl_global_cleanup();
}
