/* api/dash.c — the dashboard (see dash.h): serves the embedded static files, keeps the
 * history and the push log, and answers the page's two JSON endpoints. */
#include "dash.h"

#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "history.h"
#include "jsonw.h"
#include "metrics.h"
#include "status.h"
#include "ui_assets.h"

struct push_entry {
    int64_t at_ms;
    uint64_t msg_id;
    uint32_t try_no;
    int status; /* -1: no answer */
    enum metrics_push_outcome outcome;
    int64_t latency_us;
    char *labels; /* project \0 queue \0 subscriber \0 url \0 error \0 (NULL: empty slot) */
};

struct dash {
    struct history *history;
    struct push_entry log[DASH_PUSH_LOG];
    size_t log_next; /* the slot the next attempt goes to (the oldest once full) */
};

struct dash *dash_new(void)
{
    struct dash *d = calloc(1, sizeof(*d));
    if (d && !(d->history = history_new())) {
        free(d);
        d = NULL;
    }
    return d;
}

void dash_free(struct dash *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < DASH_PUSH_LOG; i++)
        free(d->log[i].labels);
    history_free(d->history);
    free(d);
}

/* ---- the history ---- */

int64_t dash_next_ms(const struct dash *d)
{
    return history_next_ms(d->history);
}

void dash_tick(struct dash *d, struct engine *e, int64_t now_ms)
{
    if (now_ms < history_next_ms(d->history))
        return;
    struct eng_metrics m;
    if (eng_metrics(e, HISTORY_QUEUES, &m) != 0)
        return;
    struct history_reading r = {.at_ms = now_ms,
                                .has_events = m.has_events,
                                .posts = m.events[ENG_EV_POST],
                                .deletes = m.events[ENG_EV_DELETE],
                                .reserves = m.events[ENG_EV_RESERVE],
                                .has_queues = m.has_depths,
                                .n_queues = m.n_queues};
    struct history_queue_reading *qs = calloc(m.n_queues ? m.n_queues : 1, sizeof(*qs));
    if (!qs)
        r.has_queues = false;
    const struct eng_queue_depth *rest = &m.rest;
    r.ready = rest->ready;
    r.delayed = rest->delayed;
    r.reserved = rest->reserved;
    for (size_t i = 0; i < m.n_queues; i++) {
        const struct eng_queue_depth *q = &m.queues[i];
        r.ready += q->ready;
        r.delayed += q->delayed;
        r.reserved += q->reserved;
        if (qs)
            qs[i] = (struct history_queue_reading){
                .project = q->project,
                .queue = q->queue,
                .depth = q->ready + q->delayed + q->reserved + q->pushing,
                .posted = q->posted};
    }
    r.queues = qs;
    history_add(d->history, &r); /* out of memory: the queues missed wait for the next one */
    free(qs);
    eng_metrics_free(&m);
}

/* ---- the push log ---- */

void dash_note_push(struct dash *d, const struct eng_push_attempt *a, int64_t at_ms)
{
    const char *parts[5] = {a->project, a->queue, a->subscriber, a->url,
                            a->status < 0 && a->error ? a->error : ""};
    size_t len = 0;
    for (int i = 0; i < 5; i++)
        len += strlen(parts[i]) + 1;
    char *labels = malloc(len), *at = labels;
    if (!labels)
        return; /* not kept: the log is for looking, nothing depends on it */
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(parts[i]) + 1;
        memcpy(at, parts[i], n);
        at += n;
    }
    struct push_entry *e = &d->log[d->log_next];
    free(e->labels);
    *e = (struct push_entry){.at_ms = at_ms,
                             .msg_id = a->msg_id,
                             .try_no = a->try_no,
                             .status = a->status,
                             .outcome = metrics_push_outcome(a->status, a->timed_out, a->faked),
                             .latency_us = a->latency_us,
                             .labels = labels};
    d->log_next = (d->log_next + 1) % DASH_PUSH_LOG;
}

/* The i-th of an entry's labels (0 project, 1 queue, 2 subscriber, 3 url, 4 error). */
static const char *label(const struct push_entry *e, int i)
{
    const char *at = e->labels;
    while (i-- > 0)
        at += strlen(at) + 1;
    return at;
}

/* ---- JSON pieces ---- */

static void key_str(struct jw *w, const char *name, const char *value, bool first)
{
    jw_key(w, name, first);
    jw_str(w, value, strlen(value));
}

static void key_u64(struct jw *w, const char *name, uint64_t value, bool first)
{
    jw_key(w, name, first);
    jw_u64(w, value);
}

static void write_times(struct jw *w, const struct history *h)
{
    jw_key(w, "t", true);
    jw_lit(w, "[");
    for (size_t i = 0; i < history_len(h); i++) {
        if (i)
            jw_lit(w, ",");
        jw_i64(w, history_time(h, i));
    }
    jw_lit(w, "]");
}

static void write_series(struct jw *w, const struct history *h, const char *name,
                         enum history_series s)
{
    jw_key(w, name, false);
    jw_lit(w, "[");
    for (size_t i = 0; i < history_len(h); i++) {
        double v;
        if (i)
            jw_lit(w, ",");
        if (history_value(h, s, i, &v))
            jw_num(w, v);
        else
            jw_lit(w, "null");
    }
    jw_lit(w, "]");
}

/* One queue's depth at every reading (null where it was not there). */
static void write_depths(struct jw *w, const struct history *h, const struct history_queue *q)
{
    jw_lit(w, "[");
    for (size_t i = 0; i < history_len(h); i++) {
        uint64_t depth;
        if (i)
            jw_lit(w, ",");
        if (history_queue_depth(h, q, i, &depth))
            jw_u64(w, depth);
        else
            jw_lit(w, "null");
    }
    jw_lit(w, "]");
}

static void write_queue_rates(struct jw *w, const struct history *h,
                              const struct history_queue *q, bool want_in)
{
    jw_lit(w, "[");
    for (size_t i = 0; i < history_len(h); i++) {
        double in, out;
        if (i)
            jw_lit(w, ",");
        if (history_queue_rates(h, q, i, &in, &out))
            jw_num(w, want_in ? in : out);
        else
            jw_lit(w, "null");
    }
    jw_lit(w, "]");
}

static const char *backend_name(const struct engine *e)
{
    return eng_clock_settable(e) ? "sqlite" : "postgresql";
}

/* ---- GET /ui/api/overview ---- */

static void write_queue_row(struct jw *w, const struct history *h, const struct eng_queue_depth *q)
{
    jw_lit(w, "{");
    key_str(w, "project", q->project, true);
    key_str(w, "name", q->queue, false);
    key_str(w, "type", queue_type_name(q->type), false);
    key_u64(w, "ready", q->ready, false);
    key_u64(w, "delayed", q->delayed, false);
    key_u64(w, "reserved", q->reserved, false);
    key_u64(w, "pushing", q->pushing, false);
    key_u64(w, "waiters", q->waiters, false);
    key_u64(w, "total_messages", q->posted, false);
    const struct history_queue *hq = history_find(h, q->project, q->queue);
    double in, out;
    bool rates = history_queue_recent(h, hq, DASH_RATE_WINDOW_MS, &in, &out);
    jw_key(w, "in_per_s", false);
    rates ? jw_num(w, in) : jw_lit(w, "null");
    jw_key(w, "out_per_s", false);
    rates ? jw_num(w, out) : jw_lit(w, "null");
    jw_key(w, "depth", false);
    write_depths(w, h, hq);
    jw_lit(w, "}");
}

/* What a token limited to some projects is shown of the server: its queues' counts (of the
 * first HISTORY_QUEUES), not the server's, and no server-wide series. */
struct visible {
    uint64_t projects, queues, messages;
};

static struct visible count_visible(const struct api *api, const char *token,
                                    const struct eng_metrics *m)
{
    struct visible v = {0};
    const char *last_project = NULL;
    for (size_t i = 0; i < m->n_queues; i++) {
        const struct eng_queue_depth *q = &m->queues[i];
        if (api_check_token(api, token, q->project) != ENG_OK)
            continue;
        if (!last_project || strcmp(last_project, q->project) != 0)
            v.projects++; /* queues come by project */
        last_project = q->project;
        v.queues++;
        v.messages += q->ready + q->delayed + q->reserved + q->pushing;
    }
    return v;
}

static void overview(struct api *api, struct api_request *req)
{
    const char *token = api->n_tokens ? api_request_token(req) : NULL;
    int auth = api_check_token(api, token, NULL);
    if (auth != ENG_OK) {
        api_reply_error(req, auth, NULL);
        return;
    }
    struct eng_stats st;
    struct eng_metrics m;
    eng_stats(api->engine, &st);
    if (eng_metrics(api->engine, HISTORY_QUEUES, &m) != 0) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    bool whole = api_token_sees_all(api, token);
    struct visible seen = whole ? (struct visible){st.projects, st.queues, st.messages}
                                : count_visible(api, token, &m);
    const struct history *h = api->dash->history;
    struct jw w = {0};
    jw_lit(&w, "{\"server\":{");
    key_str(&w, "version", ANVIL_VERSION, true);
    key_str(&w, "backend", backend_name(api->engine), false);
    key_str(&w, "auth", api->n_tokens ? "token" : "dev", false);
    key_str(&w, "scope", whole ? "server" : "projects", false);
    jw_key(&w, "test_mode", false);
    jw_lit(&w, api->admin ? "true" : "false");
    key_str(&w, "storage", st.storage_ok ? "ok" : "failing", false);
    jw_key(&w, "now_ms", false);
    jw_i64(&w, eng_now_ms(api->engine));
    if (whole || m.has_depths) {
        key_u64(&w, "projects", seen.projects, false);
        key_u64(&w, "queues", seen.queues, false);
        key_u64(&w, "messages", seen.messages, false);
    } else { /* PostgreSQL: no per-queue depths to count a token's share from */
        jw_lit(&w, ",\"projects\":null,\"queues\":null,\"messages\":null");
    }
    jw_lit(&w, "},");
    key_u64(&w, "interval_ms", HISTORY_INTERVAL_MS, true);
    jw_key(&w, "series", false);
    if (whole) {
        jw_lit(&w, "{");
        write_times(&w, h);
        write_series(&w, h, "posts_per_s", HS_POSTS);
        write_series(&w, h, "deletes_per_s", HS_DELETES);
        write_series(&w, h, "reserves_per_s", HS_RESERVES);
        write_series(&w, h, "ready", HS_READY);
        write_series(&w, h, "delayed", HS_DELAYED);
        write_series(&w, h, "reserved", HS_RESERVED);
        jw_lit(&w, "}");
    } else {
        jw_lit(&w, "null"); /* the server's activity is not one project's to see */
    }
    jw_key(&w, "queues", false);
    if (m.has_depths) {
        jw_lit(&w, "[");
        bool first = true;
        for (size_t i = 0; i < m.n_queues; i++) {
            if (api_check_token(api, token, m.queues[i].project) != ENG_OK)
                continue; /* a token for other projects does not see this one */
            if (!first)
                jw_lit(&w, ",");
            first = false;
            write_queue_row(&w, h, &m.queues[i]);
        }
        jw_lit(&w, "]");
    } else {
        jw_lit(&w, "null");
    }
    key_u64(&w, "more_queues", whole ? m.rest_queues : 0, false);
    jw_lit(&w, "}");
    eng_metrics_free(&m);
    api_reply_text(req, 200, &w);
}

/* ---- GET /ui/api/projects/{p}/queues/{q} ---- */

/* Up to DASH_BODY_PREVIEW bytes of a body, cut between two characters, as valid UTF-8. */
static void write_preview(struct jw *w, const struct blob *body)
{
    char cut[DASH_BODY_PREVIEW + 1], clean[DASH_BODY_PREVIEW + 8]; /* api_utf8_clean keeps room */
    size_t n = body->len < DASH_BODY_PREVIEW ? body->len : DASH_BODY_PREVIEW;
    if (n < body->len)
        while (n > 0 && ((unsigned char)body->data[n] & 0xc0) == 0x80)
            n--; /* not in the middle of a character */
    memcpy(cut, body->data, n);
    cut[n] = '\0';
    api_utf8_clean(cut, clean, sizeof(clean));
    jw_str(w, clean, strlen(clean));
}

static void write_reserved(struct jw *w, const struct eng_result *res)
{
    jw_key(w, "reserved", false);
    jw_lit(w, "[");
    for (size_t i = 0; i < res->n_messages; i++) {
        const struct eng_message *msg = &res->messages[i];
        if (i)
            jw_lit(w, ",");
        jw_lit(w, "{\"id\":");
        jw_id(w, msg->id);
        key_str(w, "reservation_id", msg->has_reservation ? msg->reservation_id : "", false);
        key_u64(w, "reserved_count", msg->reserved_count, false);
        jw_key(w, "reserved_until_ms", false);
        jw_i64(w, msg->due_at_ms);
        key_u64(w, "body_bytes", msg->body ? msg->body->len : 0, false);
        jw_key(w, "body", false);
        if (msg->body)
            write_preview(w, msg->body);
        else
            jw_lit(w, "\"\"");
        jw_lit(w, "}");
    }
    jw_lit(w, "]");
}

static void write_push_attempts(struct jw *w, const struct dash *d, const char *project,
                                const char *queue)
{
    jw_key(w, "push_attempts", false);
    jw_lit(w, "[");
    size_t shown = 0;
    for (size_t k = 1; k <= DASH_PUSH_LOG && shown < DASH_PUSH_SHOWN; k++) {
        const struct push_entry *e = &d->log[(d->log_next + DASH_PUSH_LOG - k) % DASH_PUSH_LOG];
        if (!e->labels)
            break; /* newest first: the rest of the ring was never filled */
        if (strcmp(label(e, 0), project) != 0 || strcmp(label(e, 1), queue) != 0)
            continue;
        if (shown++)
            jw_lit(w, ",");
        jw_lit(w, "{");
        jw_key(w, "at_ms", true);
        jw_i64(w, e->at_ms);
        jw_key(w, "message_id", false);
        jw_id(w, e->msg_id);
        key_str(w, "subscriber", label(e, 2), false);
        key_str(w, "url", label(e, 3), false);
        key_u64(w, "try", e->try_no, false);
        jw_key(w, "status", false);
        jw_i64(w, e->status);
        key_str(w, "result", metrics_push_outcome_name(e->outcome), false);
        key_str(w, "error", label(e, 4), false);
        jw_key(w, "latency_ms", false);
        jw_num(w, (double)e->latency_us / 1000.0);
        jw_lit(w, "}");
    }
    jw_lit(w, "]");
}

/* The request's project and queue names, kept while the engine works (the path segments
 * are gone by then). */
struct queue_view {
    char *project, *queue;
};

static void free_view(struct queue_view *v)
{
    if (v)
        free(v->project); /* the queue's name is in the same block */
    free(v);
}

/* The answer: the queue's last minutes, its reserved messages (inspected: the full peek's
 * result; NULL where the back end has none) and its recent push attempts. */
static void reply_queue_view(struct api_request *req, const struct queue_view *v,
                             const struct eng_result *inspected)
{
    const struct history *h = req->api->dash->history;
    struct jw w = {0};
    jw_lit(&w, "{\"series\":");
    if (history_len(h) && inspected) {
        const struct history_queue *hq = history_find(h, v->project, v->queue);
        jw_lit(&w, "{");
        write_times(&w, h);
        jw_key(&w, "depth", false);
        write_depths(&w, h, hq);
        jw_key(&w, "in_per_s", false);
        write_queue_rates(&w, h, hq, true);
        jw_key(&w, "out_per_s", false);
        write_queue_rates(&w, h, hq, false);
        jw_lit(&w, "}");
    } else {
        jw_lit(&w, "null"); /* PostgreSQL: no per-queue history */
    }
    if (inspected) {
        write_reserved(&w, inspected);
    } else {
        jw_key(&w, "reserved", false);
        jw_lit(&w, "null");
        key_str(&w, "reserved_note",
                "Listing reserved messages needs the embedded (SQLite) back end", false);
    }
    write_push_attempts(&w, req->api->dash, v->project, v->queue);
    jw_lit(&w, "}");
    api_reply_text(req, 200, &w);
}

/* PostgreSQL: the queue's settings, asked only to know it is there (else 404). */
static void on_queue_checked(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    struct queue_view *v = req->front;
    req->front = NULL;
    req->on_abandon = NULL;
    if (!api_failed(req, res))
        reply_queue_view(req, v, NULL);
    free_view(v);
}

static void on_queue_inspected(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    struct queue_view *v = req->front;
    if (res->status == ENG_BACKEND_UNSUPPORTED) { /* no full peek there */
        api_prepare_op(req, on_queue_checked);
        eng_queue_get(req->api->engine, &req->op, v->project, v->queue);
        return;
    }
    req->front = NULL;
    req->on_abandon = NULL;
    if (!api_failed(req, res))
        reply_queue_view(req, v, res);
    free_view(v);
}

static void abandon_queue_view(struct api_request *req)
{
    eng_cancel(req->api->engine, &req->op);
    free_view(req->front);
    req->front = NULL;
}

static void queue_view(struct api *api, struct api_request *req, const char *project,
                       const char *queue)
{
    if (!api_valid_name(project) || !api_valid_name(queue)) {
        api_reply_error(req, API_BAD_REQUEST, "Invalid project or queue name");
        return;
    }
    int auth = api_check_token(api, api->n_tokens ? api_request_token(req) : NULL, project);
    if (auth != ENG_OK) {
        api_reply_error(req, auth, NULL);
        return;
    }
    size_t plen = strlen(project), qlen = strlen(queue);
    struct queue_view *v = malloc(sizeof(*v));
    char *names = malloc(plen + qlen + 2);
    if (!v || !names) {
        free(v);
        free(names);
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    memcpy(names, project, plen + 1);
    memcpy(names + plen + 1, queue, qlen + 1);
    *v = (struct queue_view){.project = names, .queue = names + plen + 1};
    req->front = v;
    req->on_abandon = abandon_queue_view;
    api_prepare_op(req, on_queue_inspected);
    eng_inspect(api->engine, &req->op, project, queue, DASH_RESERVED_SHOWN,
                1u << ENG_MSG_RESERVED);
}

/* ---- static files ---- */

/* The page's own origin only (its scripts, styles, API calls), and no framing. */
static const char content_security_policy[] =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'";

static const char *const asset_headers[] = {
    "Cache-Control", "no-cache", /* revalidate with the ETag: a new build serves new files */
    "X-Content-Type-Options", "nosniff",
    "X-Frame-Options", "DENY",
    "Content-Security-Policy", content_security_policy,
    "Referrer-Policy", "no-referrer",
    NULL};

static bool method_is(const struct api_request *req, const char *m)
{
    return req->method && strcmp(req->method, m) == 0;
}

static void serve_asset(struct api_request *req, const char *name)
{
    const struct ui_asset *a = ui_assets;
    while (a->name && strcmp(a->name, name) != 0)
        a++;
    if (!a->name) {
        api_reply_error(req, API_NOT_FOUND, NULL);
        return;
    }
    if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    req->reply_type = a->content_type;
    req->reply_header_name = "ETag";
    req->reply_header_value = a->etag;
    req->reply_headers = asset_headers;
    const char *seen = req->header(req, "If-None-Match");
    if (seen && strcmp(seen, a->etag) == 0) {
        req->respond(req, 304, NULL, 0);
        return;
    }
    char *body = malloc(a->len ? a->len : 1);
    if (!body) {
        req->reply_type = NULL;
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    memcpy(body, a->data, a->len);
    req->respond(req, 200, body, a->len);
}

void dash_handle(struct api *api, struct api_request *req, char **seg, size_t n)
{
    req->route = "ui";
    if (!api->dash) {
        api_reply_error(req, API_NOT_FOUND, NULL);
        return;
    }
    bool data = n >= 2 && strcmp(seg[1], "api") == 0;
    if (data && !method_is(req, "GET")) {
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (data && n == 3 && strcmp(seg[2], "overview") == 0) {
        overview(api, req);
        return;
    }
    if (data && n == 6 && strcmp(seg[2], "projects") == 0 && strcmp(seg[4], "queues") == 0) {
        queue_view(api, req, seg[3], seg[5]);
        return;
    }
    if (!data && n == 1 && req->path && strcmp(req->path, "/ui") == 0) {
        /* relative links in the page resolve against /ui/ */
        req->reply_header_name = "Location";
        req->reply_header_value = "/ui/";
        api_reply_msg(req, 308, "The dashboard is at /ui/");
        return;
    }
    if (!data && n <= 2) {
        serve_asset(req, n == 1 ? "index.html" : seg[1]);
        return;
    }
    api_reply_error(req, API_NOT_FOUND, NULL);
}
