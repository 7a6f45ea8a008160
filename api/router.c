/* api/router.c — method + path → handler. Splits the path into percent-decoded segments,
 * checks names, authenticates against the project, and picks the v3 handler; unknown
 * paths get 404 and known paths with another method 405, always as JSON. Requests for the
 * SQS front (sqs_claims(): "/", "/{account}/{queue}" or X-Amz-Target) go to sqs_handle().
 *   /health                                            GET (no token needed)
 *   /stats                                             GET (any valid token)
 *   /metrics                                           GET (any valid token; api/metrics.c)
 *   /3/projects/{p}/queues                             GET
 *   /3/projects/{p}/queues/{q}                         GET PUT PATCH DELETE
 *   /3/projects/{p}/queues/{q}/messages                POST GET DELETE
 *   /3/projects/{p}/queues/{q}/reservations            POST
 *   /3/projects/{p}/queues/{q}/webhook                 POST
 *   /3/projects/{p}/queues/{q}/subscribers             POST PUT DELETE
 *   /3/projects/{p}/queues/{q}/messages/{id}           GET DELETE
 *   /3/projects/{p}/queues/{q}/messages/{id}/touch     POST
 *   /3/projects/{p}/queues/{q}/messages/{id}/release   POST
 *   /3/projects/{p}/queues/{q}/messages/{id}/subscribers GET
 *   /admin/...                                         the test kit (api/admin.c)
 *   /ui, /ui/...                                       the dashboard (api/dash.c) */
#include "admin.h"
#include "dash.h"
#include "form.h"
#include "handlers.h"
#include "json.h"
#include "metrics.h"
#include "status.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SEGMENTS = 10, MAX_NAME_BYTES = 255 };

/* Decodes %XX in place; false on a malformed escape. An encoded NUL cannot live in a C
 * string: it becomes DEL (0x7f), which no name may contain either, so a name holding it is
 * refused as invalid (400) instead of being cut short. */
static bool percent_decode(char *s)
{
    size_t n = form_percent_decode(s, strlen(s), s, false);
    if (n == SIZE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = (char)0x7f;
    s[n] = '\0';
    return true;
}

/* Well-formed UTF-8 without control characters or '/' (names end up in URLs, logs, JSON). */
bool api_valid_name(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    if (len == 0 || len > MAX_NAME_BYTES)
        return false;
    while (*p) {
        unsigned c = *p;
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '/')
                return false;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        p += extra + 1;
    }
    return true;
}

bool api_valid_utf8(const char *s, size_t len)
{
    /* jansson checks UTF-8 when it builds a string; reuse it rather than keep a second copy */
    json_t *probe = json_stringn(s, len);
    bool ok = probe != NULL;
    json_decref(probe);
    return ok;
}

bool api_header_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static bool method_is(const struct api_request *req, const char *m)
{
    return is(req->method, m);
}

/* ---- limits ---- */

uint32_t api_timeout_min(const struct api *api)
{
    return api->limits.relaxed ? 1 : TIMEOUT_MIN_S;
}

uint32_t api_expiration_min(const struct api *api)
{
    return api->limits.relaxed ? 1 : EXPIRATION_MIN_S;
}

uint32_t api_retries_delay_min(const struct api *api)
{
    return api->limits.relaxed ? 1 : PUSH_RETRIES_DELAY_MIN_S;
}

/* ---- authentication ---- */

static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

const char *api_request_token(struct api_request *req)
{
    const char *auth = req->header(req, "Authorization");
    if (auth) {
        while (*auth == ' ')
            auth++;
        if (strncasecmp(auth, "OAuth ", 6) == 0)
            auth += 6;
        else if (strncasecmp(auth, "Bearer ", 7) == 0)
            auth += 7;
        while (*auth == ' ')
            auth++;
        if (*auth)
            return auth;
    }
    const char *q = req->query(req, "oauth");
    return q && *q ? q : NULL;
}

/* ENG_OK, API_UNAUTHORIZED or API_FORBIDDEN. With no tokens configured (dev mode, which
 * only listens on loopback) every request is let through. A NULL project asks only for a
 * valid token (server-wide reads such as /stats). */
int api_check_token(const struct api *api, const char *token, const char *project)
{
    if (api->n_tokens == 0)
        return ENG_OK;
    if (!token)
        return API_UNAUTHORIZED;
    for (size_t i = 0; i < api->n_tokens; i++) {
        const struct api_token *t = &api->tokens[i];
        if (!same_secret(token, t->token))
            continue;
        if (t->all_projects || !project)
            return ENG_OK;
        for (size_t j = 0; j < t->n_projects; j++)
            if (is(t->projects[j], project))
                return ENG_OK;
        return API_FORBIDDEN;
    }
    return API_UNAUTHORIZED;
}

bool api_token_sees_all(const struct api *api, const char *token)
{
    if (!api->n_tokens)
        return true;
    for (size_t i = 0; token && i < api->n_tokens; i++)
        if (same_secret(token, api->tokens[i].token))
            return api->tokens[i].all_projects;
    return false;
}

static int authorize(const struct api *api, struct api_request *req, const char *project)
{
    return api_check_token(api, api->n_tokens ? api_request_token(req) : NULL, project);
}

/* ---- dispatch ---- */

static void health(struct api *api, struct api_request *req, const struct route *rt)
{
    (void)rt;
    struct eng_stats st;
    eng_stats(api->engine, &st);
    json_t *body = json_pack("{s:s, s:s, s:I, s:I, s:I}", "status", st.storage_ok ? "ok" : "degraded",
                             "storage", st.storage_ok ? "ok" : "failing", "queues",
                             (json_int_t)st.queues, "messages", (json_int_t)st.messages,
                             "commits", (json_int_t)st.commits);
    api_reply_json(req, st.storage_ok ? 200 : 503, body);
}

/* What an operator needs to see of memory and disk (docs/durability.md, "Space"). */
static void stats(struct api *api, struct api_request *req, const struct route *rt)
{
    (void)rt;
    struct eng_stats st;
    eng_stats(api->engine, &st);
    json_t *body = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I}}",
        "projects", (json_int_t)st.projects, "queues", (json_int_t)st.queues, "messages",
        (json_int_t)st.messages, "commits", (json_int_t)st.commits, "commit_failures",
        (json_int_t)st.commit_failures, "storage", st.storage_ok ? "ok" : "failing", "memory",
        "budget_bytes", (json_int_t)st.memory_budget, "index_bytes", (json_int_t)st.index_bytes,
        "body_bytes", (json_int_t)st.body_bytes, "cold_messages", (json_int_t)st.cold_messages,
        "body_reads", (json_int_t)st.body_reads, "disk", "live_body_bytes",
        (json_int_t)st.live_body_bytes, "db_bytes", (json_int_t)st.db_bytes, "db_free_bytes",
        (json_int_t)st.db_free_bytes, "wal_bytes", (json_int_t)st.wal_bytes, "writer",
        "records", (json_int_t)st.commit_records, "records_skipped",
        (json_int_t)st.commit_skipped, "busy_us", (json_int_t)st.commit_total_us,
        "longest_commit_us", (json_int_t)st.commit_max_us);
    api_reply_json(req, 200, body);
}

static void metrics(struct api *api, struct api_request *req, const struct route *rt)
{
    (void)rt;
    metrics_handle(api, req);
}

typedef void (*handler_fn)(struct api *api, struct api_request *req, const struct route *rt);

/* name: the endpoint's name for the test kit's fault rules (api/admin_faults.c) and the
 * request metrics; NULL for /health, /stats and /metrics, which faults leave alone (the
 * metrics name them by their path: route_name). */
struct endpoint {
    const char *method;
    handler_fn fn;
    const char *name;
};

#define ENDPOINTS(name, ...) static const struct endpoint name[] = {__VA_ARGS__, {NULL, NULL, NULL}}
ENDPOINTS(health_eps, {"GET", health, NULL}, {"HEAD", health, NULL});
ENDPOINTS(stats_eps, {"GET", stats, NULL});
ENDPOINTS(metrics_eps, {"GET", metrics, NULL});
ENDPOINTS(queues_eps, {"GET", v3_list_queues, "queue_list"});
ENDPOINTS(queue_eps, {"GET", v3_get_queue, "queue_get"}, {"PUT", v3_put_queue, "queue_put"},
          {"PATCH", v3_patch_queue, "queue_patch"}, {"DELETE", v3_delete_queue, "queue_delete"});
ENDPOINTS(messages_eps, {"POST", v3_post_messages, "post"}, {"GET", v3_peek_messages, "peek"},
          {"DELETE", v3_delete_messages, "delete_many"});
ENDPOINTS(reservations_eps, {"POST", v3_reserve, "reserve"});
ENDPOINTS(webhook_eps, {"POST", v3_webhook, "webhook"});
ENDPOINTS(subscribers_eps, {"POST", v3_subscribers, "subscribers"},
          {"PUT", v3_subscribers, "subscribers"}, {"DELETE", v3_subscribers, "subscribers"});
ENDPOINTS(message_eps, {"GET", v3_get_message, "get"}, {"DELETE", v3_delete_message, "delete"});
ENDPOINTS(touch_eps, {"POST", v3_touch, "touch"});
ENDPOINTS(release_eps, {"POST", v3_release, "release"});
ENDPOINTS(push_statuses_eps, {"GET", v3_push_statuses, "push_statuses"});

/* The i-th endpoint name (each once, in the order of the tables above); NULL past the end. */
const char *api_route_name(size_t i)
{
    static const struct endpoint *const tables[] = {
        queues_eps, queue_eps, messages_eps, reservations_eps, webhook_eps, subscribers_eps,
        message_eps, touch_eps, release_eps, push_statuses_eps};
    const char *last = NULL;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const struct endpoint *ep = tables[t]; ep->method; ep++) {
            if (last && strcmp(last, ep->name) == 0)
                continue; /* one name for several methods (subscribers) */
            if (i-- == 0)
                return ep->name;
            last = ep->name;
        }
    return NULL;
}

/* Which endpoint table a path names, filling in rt; NULL with *status when none does. */
static const struct endpoint *match_path(char **seg, size_t n, struct route *rt, int *status)
{
    *status = API_NOT_FOUND;
    if (n == 1 && is(seg[0], "health"))
        return health_eps;
    if (n == 1 && is(seg[0], "stats")) {
        rt->server_wide = true;
        return stats_eps;
    }
    if (n == 1 && is(seg[0], "metrics")) {
        rt->server_wide = true;
        return metrics_eps;
    }
    if (n < 4 || n > 8 || !is(seg[0], "3") || !is(seg[1], "projects") || !is(seg[3], "queues"))
        return NULL;
    rt->project = seg[2];
    if (n == 4)
        return queues_eps;
    rt->queue = seg[4];
    if (n == 5)
        return queue_eps;
    const char *child = seg[5];
    if (n == 6) {
        if (is(child, "messages"))
            return messages_eps;
        if (is(child, "reservations"))
            return reservations_eps;
        if (is(child, "webhook"))
            return webhook_eps;
        if (is(child, "subscribers"))
            return subscribers_eps;
        return NULL;
    }
    if (!is(child, "messages"))
        return NULL;
    rt->message_id = 0; /* stays 0 when malformed: no message has it (404 after auth) */
    (void)parse_message_id(seg[6], &rt->message_id);
    rt->has_message_id = true;
    if (n == 7)
        return message_eps;
    if (n == 8 && is(seg[7], "touch"))
        return touch_eps;
    if (n == 8 && is(seg[7], "release"))
        return release_eps;
    if (n == 8 && is(seg[7], "subscribers"))
        return push_statuses_eps;
    return NULL;
}

/* Checks names and access; ENG_OK when the handler may run. */
static int admit(const struct api *api, struct api_request *req, const struct route *rt,
                 const char **detail)
{
    if (rt->server_wide)
        return authorize(api, req, NULL);
    if (!rt->project)
        return ENG_OK; /* /health */
    if (!api_valid_name(rt->project)) {
        *detail = "Invalid project id";
        return API_BAD_REQUEST;
    }
    int auth = authorize(api, req, rt->project);
    if (auth != ENG_OK)
        return auth;
    if (rt->queue && !api_valid_name(rt->queue)) {
        *detail = "Invalid queue name: 1 to 255 bytes of UTF-8, without control characters or /";
        return API_BAD_REQUEST;
    }
    return ENG_OK;
}

/* The test kit's fault rules (api/admin_faults.c): true when they answered the request
 * (an injected error) or hold it (added latency: api_handle() runs it again later). */
static bool injected_fault(struct api *api, struct api_request *req, const char *name,
                           const struct route *rt)
{
    if (!api->admin || !name)
        return false;
    const char *msg = NULL;
    int http = admin_fault_check(api->admin, req, name, rt->project, rt->queue, &msg);
    if (http > 0)
        api_reply_msg(req, http, msg);
    return http != 0;
}

/* The request metrics' name of an endpoint (a static string). */
static const char *route_name(const struct endpoint *ep, const struct endpoint *table)
{
    if (ep->name)
        return ep->name;
    return table == health_eps ? "health" : table == stats_eps ? "stats" : "metrics";
}

static void route(struct api *api, struct api_request *req, char **seg, size_t n)
{
    if (n >= 1 && is(seg[0], "admin")) {
        req->route = "admin";
        admin_handle(api, req, seg, n);
        return;
    }
    if (n >= 1 && is(seg[0], "ui")) {
        dash_handle(api, req, seg, n);
        return;
    }
    struct route rt = {0};
    int status;
    const char *detail = NULL;
    const struct endpoint *eps = match_path(seg, n, &rt, &status);
    for (const struct endpoint *ep = eps; ep && ep->method; ep++)
        if (method_is(req, ep->method)) {
            req->route = route_name(ep, eps); /* also when refused: 401s count too */
            break;
        }
    if (eps && (status = admit(api, req, &rt, &detail)) == ENG_OK) {
        for (; eps->method; eps++)
            if (method_is(req, eps->method)) {
                if (rt.has_message_id && rt.message_id == 0)
                    break; /* not a message id: no such message */
                if (!injected_fault(api, req, eps->name, &rt))
                    eps->fn(api, req, &rt);
                return;
            }
        status = eps->method ? ENG_MESSAGE_NOT_FOUND : API_METHOD_NOT_ALLOWED;
    }
    api_reply_error(req, status, detail);
}

void api_handle(struct api *api, struct api_request *req)
{
    req->api = api;
    req->long_poll = false;
    req->reply_type = req->reply_header_name = req->reply_header_value = NULL;
    req->reply_headers = NULL;
    req->reply_id_header = NULL;
    req->on_abandon = NULL;
    req->route = NULL;
    if (sqs_claims(req)) {
        req->route = "sqs";
        sqs_handle(api, req);
        return;
    }
    char *path = strdup(req->path ? req->path : "");
    if (!path) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    /* "/a/b" and "/a/b/" are the same path; "/a//b" is not a path we serve. */
    char *seg[MAX_SEGMENTS];
    size_t n = 0;
    bool ok = path[0] == '/';
    size_t len = strlen(path);
    if (len > 1 && path[len - 1] == '/')
        path[len - 1] = '\0';
    for (char *s = path + 1; ok && *s;) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        ok = n < MAX_SEGMENTS && *s && percent_decode(s);
        if (ok)
            seg[n++] = s;
        s = slash ? slash + 1 : s + strlen(s);
        if (slash && !*s)
            ok = false;
    }
    if (ok)
        route(api, req, seg, n);
    else
        api_reply_error(req, API_NOT_FOUND, NULL);
    free(path);
}

void api_prepare_op(struct api_request *req, eng_done_fn done)
{
    req->op.done = done;
    req->op.ctx = req;
}

bool api_failed(struct api_request *req, const struct eng_result *res)
{
    if (res->status == ENG_OK)
        return false;
    api_reply_error(req, res->status, NULL);
    return true;
}

void api_abandon(struct api *api, struct api_request *req)
{
    if (req->on_abandon)
        req->on_abandon(req);
    else
        eng_cancel(api->engine, &req->op);
}
