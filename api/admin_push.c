/* api/admin_push.c — the test kit's push sink, push log and failing push subscribers (see
 * admin_kit.h), so push-queue tests need no web server of their own.
 *   any    /admin/sinks/{name}[/...]          recorded, then answered as the sink is told
 *   GET    /admin/sinks                        the sinks, with counts
 *   DELETE /admin/sinks                        every sink gone
 *   DELETE /admin/sinks/{name}                 that sink gone (its requests and its answers)
 *   GET    /admin/sinks/{name}/requests        ?after=SEQ: what it received, oldest first
 *   GET|PUT /admin/sinks/{name}/config         how it answers: status, delay_ms, body,
 *                                              and for the next count requests (or one
 *                                              per entry of statuses) something else
 *   GET|DELETE /admin/push-log                 every push attempt (?project=&queue=
 *                                              &message_id=&subscriber=&after=SEQ)
 *   POST|GET|DELETE /admin/faults/subscribers  subscribers marked as failing
 *   DELETE /admin/faults/subscribers/{id}      one rule gone
 * The push log and the failing subscribers see anvil's pusher through its hooks
 * (admin_push_before_send, admin_push_after: server/main.c wires them). A rule's answer is
 * given by the pusher on its next run, so retries, error queues and push statuses go
 * exactly as with a real subscriber answering that.
 * Memory is bounded: 64 sinks, each keeping its last 1,000 requests and at most 8 MiB of
 * their bodies (a body beyond 1 MiB is cut there), the last 10,000 push attempts, 64
 * failing-subscriber rules. */
#include "admin_kit.h"
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SINKS_MAX = 64,
    SINK_KEEP = 1000,                   /* requests kept per sink */
    SINK_BODY_MAX = 1024 * 1024,        /* bytes of one recorded body */
    SINK_BYTES_MAX = 8 * 1024 * 1024,   /* bytes of recorded bodies per sink */
    SINK_DELAY_MAX_MS = 300000,
    SINK_ANSWER_MAX = 64 * 1024,        /* bytes of a configured answer body */
    SINK_STATUSES_MAX = 100,
    SINK_COUNT_MAX = 1000000,
    PUSH_LOG_MAX = 10000,
    FAILING_MAX = 64,
};

/* ---- the state ---- */

/* How a sink answers one request. */
struct sink_answer {
    int status;
    uint32_t delay_ms;
    char *body; /* NULL: {"msg": "Recorded", ...} */
    size_t body_len;
};

struct kept_request {
    json_t *json;
    size_t bytes; /* of its body */
};

struct sink {
    struct list_node link;
    char *name;
    struct sink_answer standing; /* every request, unless a plan says otherwise */
    struct sink_answer planned;  /* the next plan_left requests */
    uint32_t plan_left;
    int *statuses;               /* planned with a sequence: one status per request */
    uint32_t n_statuses;
    struct kept_request *kept;   /* ring: request seq lives at (seq - 1) % SINK_KEEP */
    uint64_t received;           /* seq of the latest request */
    uint64_t first_kept;         /* seq of the oldest still kept (received + 1: none) */
    size_t bytes;
};

/* An answer that waits (delay_ms) on a real-time timer. */
struct sink_reply {
    struct admin_timer timer;
    struct list_node link;
    struct api_request *req;
    int status;
    char *body;
    size_t body_len;
    const char *type;
};

struct log_entry {
    uint64_t seq;
    char *strings; /* project, queue, subscriber, url, error: NUL-terminated, in a row */
    uint64_t msg_id;
    uint32_t try_no;
    int status;
    bool timed_out, faked;
    int64_t sent_at_ms, answered_at_ms, latency_us;
};

struct failing {
    struct list_node link;
    uint64_t id;
    char *url, *name, *project, *queue; /* NULL: any */
    int status;                         /* 0: no answer */
    bool limited;
    uint32_t left;
    uint64_t matched;
};

struct admin_push {
    struct admin *admin;
    struct list_node sinks;
    size_t n_sinks;
    struct list_node replies;
    struct log_entry *log; /* ring of PUSH_LOG_MAX, allocated at the first attempt */
    uint64_t log_seq, log_first;
    struct list_node failing;
    size_t n_failing;
    uint64_t failing_ids;
};

static int64_t engine_now(struct admin *a)
{
    return vclock_now(a->opt.clock, a->opt.wall_ms());
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Text as a JSON string; bytes that are not UTF-8 become '?'. */
static json_t *text_json(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j || !s)
        return j;
    char *clean = malloc(len + 1);
    if (!clean)
        return NULL;
    api_utf8_clean(s, clean, len + 1); /* stops at a NUL byte: fine for headers */
    j = json_string(clean);
    free(clean);
    return j;
}

static char *base64(const unsigned char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; out && i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? abc[v & 63] : '=';
    }
    if (out)
        *o = '\0';
    return out;
}

/* A query parameter that must be a whole number (absent: false). */
static bool query_u64(struct api_request *req, const char *name, uint64_t *out, bool *bad)
{
    const char *text = req->query ? req->query(req, name) : NULL;
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno || text[0] < '0' || text[0] > '9') {
        *bad = true;
        return false;
    }
    *out = v;
    return true;
}

/* Refuses the fields of obj not in `known` (NULL-terminated): a typo is a 400, not a rule
 * that silently matches everything. */
static void only_known(struct field_reader *fr, int obj, const char *const *known,
                       const char *hint)
{
    for (int k = jr_child(&fr->doc, obj); k >= 0 && !fr->failed;
         k = jr_sibling(&fr->doc, obj, k)) {
        bool ok = false;
        for (const char *const *name = known; *name && !ok; name++)
            ok = jr_string_equals(&fr->doc, k, *name);
        if (!ok) {
            const char *key = fr_token_cstring(fr, k);
            fr_fail(fr, "unknown field %s: %s", key ? key : "(not text)", hint);
        }
    }
}

/* ---- sinks: configuration ---- */

static void answer_free(struct sink_answer *ans)
{
    free(ans->body);
    *ans = (struct sink_answer){.status = 200};
}

static struct sink *sink_find(struct admin_push *p, const char *name)
{
    struct list_node *pos;
    for (pos = p->sinks.next; pos != &p->sinks; pos = pos->next) {
        struct sink *s = list_entry(pos, struct sink, link);
        if (is(s->name, name))
            return s;
    }
    return NULL;
}

static void sink_forget_requests(struct sink *s)
{
    for (uint64_t seq = s->first_kept; seq <= s->received; seq++) {
        struct kept_request *k = &s->kept[(seq - 1) % SINK_KEEP];
        json_decref(k->json);
        *k = (struct kept_request){0};
    }
    s->first_kept = s->received + 1;
    s->bytes = 0;
}

static void sink_free(struct admin_push *p, struct sink *s);

static void sinks_clear(struct admin_push *p)
{
    struct list_node *pos, *next;
    list_for_each_safe(pos, next, &p->sinks) {
        sink_free(p, list_entry(pos, struct sink, link));
    }
}

static void sink_free(struct admin_push *p, struct sink *s)
{
    list_remove(&s->link);
    p->n_sinks--;
    sink_forget_requests(s);
    answer_free(&s->standing);
    answer_free(&s->planned);
    free(s->statuses);
    free(s->kept);
    free(s->name);
    free(s);
}

/* The sink called name, made when missing; NULL when out of memory or SINKS_MAX are in use. */
static struct sink *sink_get(struct admin_push *p, const char *name)
{
    struct sink *s = sink_find(p, name);
    if (s || p->n_sinks >= SINKS_MAX)
        return s;
    if (!(s = calloc(1, sizeof(*s))) || !(s->name = strdup(name)) ||
        !(s->kept = calloc(SINK_KEEP, sizeof(*s->kept)))) {
        if (s)
            free(s->name);
        free(s);
        return NULL;
    }
    s->standing.status = s->planned.status = 200;
    s->first_kept = 1;
    list_push_back(&p->sinks, &s->link);
    p->n_sinks++;
    return s;
}

static json_t *answer_json(const struct sink_answer *ans)
{
    json_t *o = json_pack("{s:i, s:I}", "status", ans->status, "delay_ms", (json_int_t)ans->delay_ms);
    if (o && ans->body)
        json_object_set_new(o, "body", text_json(ans->body, ans->body_len));
    return o;
}

static json_t *config_json(const struct sink *s)
{
    json_t *o = answer_json(&s->standing);
    if (!o || !s->plan_left)
        return o;
    json_t *plan = answer_json(&s->planned);
    if (plan && s->n_statuses) {
        json_t *left = json_array();
        for (uint32_t i = s->n_statuses - s->plan_left; left && i < s->n_statuses; i++)
            json_array_append_new(left, json_integer(s->statuses[i]));
        json_object_del(plan, "status");
        json_object_set_new(plan, "statuses", left);
    } else if (plan) {
        json_object_set_new(plan, "count", json_integer(s->plan_left));
    }
    json_object_set_new(o, "next", plan);
    return o;
}

struct config_input {
    struct sink_answer ans;
    uint32_t count;
    bool has_count, has_statuses;
    int statuses[SINK_STATUSES_MAX];
    uint32_t n_statuses;
};

static void read_statuses(struct field_reader *fr, int list, struct config_input *in)
{
    size_t n = fr->doc.tok[list].count;
    if (n < 1 || n > SINK_STATUSES_MAX) {
        fr_fail(fr, "statuses must hold 1 to %d HTTP statuses", SINK_STATUSES_MAX);
        return;
    }
    for (int v = jr_child(&fr->doc, list); v >= 0; v = jr_sibling(&fr->doc, list, v)) {
        int64_t code;
        if (!jr_integer(&fr->doc, v, &code) || code < 200 || code > 599) {
            fr_fail(fr, "statuses[%u] must be an HTTP status from 200 to 599", in->n_statuses);
            return;
        }
        in->statuses[in->n_statuses++] = (int)code;
    }
}

static bool read_config(struct field_reader *fr, const struct api_request *req,
                        struct config_input *in)
{
    static const char *const known[] = {"status", "delay_ms", "body", "count", "statuses", NULL};
    int root = fr_parse(fr, req->body, req->body_len);
    if (root < 0)
        return false;
    only_known(fr, root, known, "give status, delay_ms, body, count or statuses");
    uint32_t status = 200;
    bool has_status = fr_uint(fr, root, "status", 200, 599, &status);
    in->ans.status = (int)status;
    fr_uint(fr, root, "delay_ms", 0, SINK_DELAY_MAX_MS, &in->ans.delay_ms);
    size_t len = 0;
    const char *body = fr_text(fr, root, "body", &len);
    if (body && len > SINK_ANSWER_MAX)
        fr_fail(fr, "body holds at most %d bytes", SINK_ANSWER_MAX);
    in->has_count = fr_uint(fr, root, "count", 1, SINK_COUNT_MAX, &in->count);
    int list = fr_array(fr, root, "statuses");
    if (list >= 0 && !fr->failed) {
        in->has_statuses = true;
        read_statuses(fr, list, in);
    }
    if (!fr->failed && in->has_statuses && (in->has_count || has_status))
        fr_fail(fr, "statuses says the status of each of the next requests: give it without "
                    "status or count");
    if (fr->failed)
        return false;
    if (body && !(in->ans.body = malloc(len ? len : 1))) {
        fr_fail(fr, "Server is out of memory");
        return false;
    }
    if (body) {
        memcpy(in->ans.body, body, len);
        in->ans.body_len = len;
    }
    return true;
}

/* PUT: without count or statuses, the sink's standing answer (and any plan is dropped);
 * with them, a plan for the next requests, after which the standing answer applies again. */
static void sink_configure(struct admin_push *p, struct api_request *req, const char *name)
{
    struct field_reader fr = {0};
    struct config_input in = {0};
    if (!read_config(&fr, req, &in)) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
        fr_release(&fr);
        return;
    }
    fr_release(&fr);
    int *statuses = NULL;
    struct sink *s = sink_get(p, name);
    if (!s || (in.has_statuses && !(statuses = malloc(in.n_statuses * sizeof(int))))) {
        answer_free(&in.ans);
        if (s)
            api_reply_error(req, ENG_NO_MEMORY, NULL);
        else
            api_reply_msg(req, 400, "The test kit keeps at most 64 sinks: DELETE /admin/sinks "
                                    "removes them");
        return;
    }
    answer_free(&s->planned);
    free(s->statuses);
    s->statuses = NULL;
    s->n_statuses = s->plan_left = 0;
    if (in.has_statuses) {
        memcpy(statuses, in.statuses, in.n_statuses * sizeof(int));
        s->statuses = statuses;
        s->n_statuses = s->plan_left = in.n_statuses;
        s->planned = in.ans;
    } else if (in.has_count) {
        s->plan_left = in.count;
        s->planned = in.ans;
    } else {
        answer_free(&s->standing);
        s->standing = in.ans;
    }
    api_reply_json(req, 200, config_json(s));
}

/* ---- sinks: what they receive ---- */

static void add_header(void *ctx, const char *name, const char *value)
{
    json_t *headers = ctx;
    json_t *old = json_object_get(headers, name);
    if (json_is_string(old)) { /* a repeated header: one value, as HTTP allows */
        size_t len = json_string_length(old) + strlen(value) + 3;
        char *both = malloc(len);
        if (!both)
            return;
        snprintf(both, len, "%s, %s", json_string_value(old), value);
        json_object_set_new(headers, name, text_json(both, strlen(both)));
        free(both);
        return;
    }
    json_object_set_new(headers, name, text_json(value, strlen(value)));
}

static json_t *request_json(struct admin *a, struct api_request *req, uint64_t seq,
                            const struct sink_answer *ans)
{
    json_t *headers = json_object();
    if (headers && req->each_header)
        req->each_header(req, add_header, headers);
    size_t keep = req->body_len > SINK_BODY_MAX ? SINK_BODY_MAX : req->body_len;
    json_t *o = json_pack("{s:I, s:I, s:s, s:o, s:o, s:o, s:I, s:b, s:i, s:I}", "seq",
                          (json_int_t)seq, "at_ms", (json_int_t)engine_now(a), "method",
                          req->method, "path", text_json(req->path, strlen(req->path)), "query",
                          req->query_string ? text_json(req->query_string, strlen(req->query_string))
                                            : json_null(),
                          "headers", headers, "body_bytes", (json_int_t)req->body_len,
                          "truncated", req->body_len > keep, "status", ans->status, "delay_ms",
                          (json_int_t)ans->delay_ms);
    if (!o)
        return NULL;
    json_t *body = json_stringn(req->body, keep);
    if (body) {
        json_object_set_new(o, "body", body);
    } else { /* not UTF-8: as base64 */
        char *b64 = base64((const unsigned char *)req->body, keep);
        json_object_set_new(o, "body", json_null());
        json_object_set_new(o, "body_base64", b64 ? json_string(b64) : json_null());
        free(b64);
    }
    return o;
}

static void sink_keep(struct sink *s, json_t *request, size_t bytes)
{
    if (s->received - s->first_kept + 1 >= SINK_KEEP) /* full: the oldest goes */
        s->first_kept++;
    while (s->first_kept <= s->received && s->bytes + bytes > SINK_BYTES_MAX) {
        struct kept_request *old = &s->kept[(s->first_kept - 1) % SINK_KEEP];
        s->bytes -= old->bytes;
        json_decref(old->json);
        old->json = NULL;
        s->first_kept++;
    }
    struct kept_request *slot = &s->kept[s->received % SINK_KEEP];
    if (slot->json) { /* the oldest, overwritten */
        s->bytes -= slot->bytes;
        json_decref(slot->json);
    }
    s->received++;
    slot->json = request;
    slot->bytes = bytes;
    s->bytes += bytes;
}

/* The answer for the sink's next request (strings borrowed from the sink). */
static struct sink_answer next_answer(struct sink *s)
{
    if (!s->plan_left)
        return s->standing;
    struct sink_answer ans = s->planned;
    if (s->n_statuses)
        ans.status = s->statuses[s->n_statuses - s->plan_left];
    s->plan_left--;
    return ans;
}

static void reply_free(struct sink_reply *r)
{
    admin_timer_stop(&r->timer);
    list_remove(&r->link);
    free(r->body);
    free(r);
}

static void reply_send(struct api_request *req, int status, char *body, size_t len,
                       const char *type)
{
    req->reply_type = type;
    if (status == 204 || status == 304) { /* no body allowed */
        free(body);
        body = NULL;
        len = 0;
    }
    req->respond(req, status, body, len);
}

static void reply_due(struct admin_timer *t)
{
    struct sink_reply *r = list_entry(t, struct sink_reply, timer);
    struct api_request *req = r->req;
    req->on_abandon = NULL;
    req->front = NULL;
    char *body = r->body;
    size_t len = r->body_len;
    int status = r->status;
    const char *type = r->type;
    r->body = NULL;
    reply_free(r);
    reply_send(req, status, body, len, type);
}

/* The client hung up (the pusher's push_timeout): nothing to send. The server may say so
 * twice (the hang-up, then the connection's end). */
static void reply_abandoned(struct api_request *req)
{
    struct sink_reply *r = req->front;
    req->front = NULL;
    if (r)
        reply_free(r);
}

static char *answer_body(const struct sink *s, const struct sink_answer *ans, uint64_t seq,
                         size_t *len, const char **type)
{
    char *body;
    if (ans->body) {
        json_error_t jerr;
        json_t *probe = json_loadb(ans->body, ans->body_len, JSON_DECODE_ANY, &jerr);
        *type = probe ? "application/json" : "text/plain; charset=utf-8";
        json_decref(probe);
        body = malloc(ans->body_len ? ans->body_len : 1);
        if (body)
            memcpy(body, ans->body, ans->body_len);
        *len = body ? ans->body_len : 0;
        return body;
    }
    json_t *o = json_pack("{s:s, s:s, s:I}", "msg", "Recorded", "sink", s->name, "seq",
                          (json_int_t)seq);
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *type = NULL;
    *len = body ? strlen(body) : 0;
    return body;
}

static void sink_record(struct admin_push *p, struct api_request *req, const char *name)
{
    struct sink *s = sink_get(p, name);
    if (!s) {
        api_reply_msg(req, 503, "The test kit keeps at most 64 sinks: DELETE /admin/sinks "
                                "removes them");
        return;
    }
    struct sink_answer ans = next_answer(s);
    json_t *request = request_json(p->admin, req, s->received + 1, &ans);
    if (!request) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    size_t body_len = 0;
    const char *type = NULL;
    char *body = answer_body(s, &ans, s->received + 1, &body_len, &type);
    sink_keep(s, request, req->body_len > SINK_BODY_MAX ? SINK_BODY_MAX : req->body_len);
    if (!ans.delay_ms) {
        reply_send(req, ans.status, body, body_len, type);
        return;
    }
    struct sink_reply *r = calloc(1, sizeof(*r));
    if (!r) {
        free(body);
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    *r = (struct sink_reply){.req = req, .status = ans.status, .body = body,
                             .body_len = body_len, .type = type};
    admin_timer_init(&r->timer, reply_due);
    list_push_back(&p->replies, &r->link);
    req->front = r;
    req->on_abandon = reply_abandoned;
    req->long_poll = true; /* so the server notices a client that gives up waiting */
    admin_timer_start(p->admin, &r->timer, ans.delay_ms);
}

static void sink_requests(struct admin_push *p, struct api_request *req, const char *name)
{
    uint64_t after = 0;
    bool bad = false;
    query_u64(req, "after", &after, &bad);
    if (bad) {
        api_reply_error(req, API_BAD_REQUEST, "after must be a request's seq (a whole number)");
        return;
    }
    json_t *list = json_array();
    struct sink *s = sink_find(p, name);
    for (uint64_t seq = s ? s->first_kept : 1; s && list && seq <= s->received; seq++)
        if (seq > after)
            json_array_append(list, s->kept[(seq - 1) % SINK_KEEP].json);
    api_reply_json(req, 200, list ? json_pack("{s:o}", "requests", list) : NULL);
}

static void sinks_list(struct admin_push *p, struct api_request *req)
{
    json_t *list = json_array();
    struct list_node *pos;
    for (pos = p->sinks.next; list && pos != &p->sinks; pos = pos->next) {
        struct sink *s = list_entry(pos, struct sink, link);
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:o}", "name", s->name,
                                              "received", (json_int_t)s->received, "kept",
                                              (json_int_t)(s->received + 1 - s->first_kept),
                                              "config", config_json(s)));
    }
    api_reply_json(req, 200, list ? json_pack("{s:o}", "sinks", list) : NULL);
}

static void sinks_route(struct admin_push *p, struct api_request *req, char **seg, size_t n)
{
    const char *m = req->method;
    if (n == 2) {
        if (is(m, "GET")) {
            sinks_list(p, req);
        } else if (is(m, "DELETE")) {
            sinks_clear(p);
            api_reply_msg(req, 200, "Deleted");
        } else {
            api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        }
        return;
    }
    const char *name = seg[2];
    if (!api_valid_name(name)) {
        api_reply_error(req, API_BAD_REQUEST,
                        "Invalid sink name: 1 to 255 bytes of UTF-8, without control characters");
        return;
    }
    if (n == 3 && is(m, "DELETE")) {
        struct sink *s = sink_find(p, name);
        if (s)
            sink_free(p, s);
        api_reply_msg(req, 200, "Deleted");
    } else if (n == 4 && is(seg[3], "config") && (is(m, "GET") || is(m, "PUT"))) {
        struct sink *s = is(m, "GET") ? sink_find(p, name) : NULL;
        if (is(m, "PUT"))
            sink_configure(p, req, name);
        else if (s)
            api_reply_json(req, 200, config_json(s));
        else /* a sink nobody set up or used answers 200 at once */
            api_reply_json(req, 200, json_pack("{s:i, s:i}", "status", 200, "delay_ms", 0));
    } else if (n == 4 && is(seg[3], "requests") && is(m, "GET")) {
        sink_requests(p, req, name);
    } else {
        sink_record(p, req, name);
    }
}

/* ---- the push log ---- */

static const char *log_string(const struct log_entry *e, int which)
{
    const char *s = e->strings;
    for (int i = 0; i < which; i++)
        s += strlen(s) + 1;
    return s;
}

static const char *result_word(int status, bool timed_out)
{
    if (status < 0)
        return timed_out ? "timeout" : "error";
    if (status == 202)
        return "reserved";
    return status >= 200 && status < 300 ? "delivered" : "failed";
}

static json_t *log_json(const struct log_entry *e)
{
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)e->msg_id);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:b, s:I, s:I, s:I}",
                          "seq", (json_int_t)e->seq, "project", log_string(e, 0), "queue",
                          log_string(e, 1), "message_id", id, "subscriber", log_string(e, 2),
                          "url", log_string(e, 3), "try_no", (json_int_t)e->try_no, "status",
                          e->status, "result", result_word(e->status, e->timed_out), "faked",
                          e->faked, "latency_ms", (json_int_t)((e->latency_us + 500) / 1000),
                          "at_ms",
                          (json_int_t)e->sent_at_ms, "answered_at_ms",
                          (json_int_t)e->answered_at_ms);
    if (o)
        json_object_set_new(o, "latency_us", json_integer(e->latency_us));
    if (o && e->status < 0)
        json_object_set_new(o, "error", text_json(log_string(e, 4), strlen(log_string(e, 4))));
    return o;
}

static char *join_strings(const char *const *parts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *out = malloc(len), *at = out;
    for (size_t i = 0; out && i < n; i++) {
        size_t l = strlen(parts[i]) + 1;
        memcpy(at, parts[i], l);
        at += l;
    }
    return out;
}

static void log_clear(struct admin_push *p)
{
    for (uint64_t seq = p->log_first; p->log && seq <= p->log_seq; seq++) {
        struct log_entry *e = &p->log[(seq - 1) % PUSH_LOG_MAX];
        free(e->strings);
        e->strings = NULL;
    }
    p->log_first = p->log_seq + 1;
}

static void log_add(struct admin_push *p, const struct eng_push_attempt *at, int64_t now)
{
    if (!p->log && !(p->log = calloc(PUSH_LOG_MAX, sizeof(*p->log))))
        return;
    const char *parts[5] = {at->project, at->queue, at->subscriber, at->url,
                            at->error ? at->error : ""};
    char *strings = join_strings(parts, 5);
    if (!strings)
        return;
    struct log_entry *e = &p->log[p->log_seq % PUSH_LOG_MAX];
    if (e->strings) /* the oldest, overwritten */
        p->log_first++;
    free(e->strings);
    *e = (struct log_entry){.seq = ++p->log_seq, .strings = strings, .msg_id = at->msg_id,
                            .try_no = at->try_no, .status = at->status,
                            .timed_out = at->timed_out, .faked = at->faked,
                            .sent_at_ms = at->sent_at_ms, .answered_at_ms = now,
                            .latency_us = at->latency_us};
}

static bool log_matches(const struct log_entry *e, struct api_request *req, uint64_t msg_id,
                        bool by_id)
{
    const char *names[3] = {"project", "queue", "subscriber"};
    const int which[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++) {
        const char *want = req->query ? req->query(req, names[i]) : NULL;
        if (want && !is(want, log_string(e, which[i])))
            return false;
    }
    return !by_id || e->msg_id == msg_id;
}

static void log_list(struct admin_push *p, struct api_request *req)
{
    uint64_t after = 0, msg_id = 0;
    bool bad = false;
    query_u64(req, "after", &after, &bad);
    bool by_id = query_u64(req, "message_id", &msg_id, &bad);
    if (bad) {
        api_reply_error(req, API_BAD_REQUEST,
                        "after and message_id must be whole numbers (an attempt's seq, a message id)");
        return;
    }
    json_t *list = json_array();
    for (uint64_t seq = p->log_first; p->log && list && seq <= p->log_seq; seq++) {
        const struct log_entry *e = &p->log[(seq - 1) % PUSH_LOG_MAX];
        if (seq > after && log_matches(e, req, msg_id, by_id))
            json_array_append_new(list, log_json(e));
    }
    api_reply_json(req, 200, list ? json_pack("{s:o}", "attempts", list) : NULL);
}

/* ---- failing subscribers ---- */

static void failing_destroy(struct failing *f)
{
    if (!f)
        return;
    free(f->url);
    free(f->name);
    free(f->project);
    free(f->queue);
    free(f);
}

static void failing_free(struct admin_push *p, struct failing *f)
{
    list_remove(&f->link);
    p->n_failing--;
    failing_destroy(f);
}

static void failing_clear(struct admin_push *p)
{
    struct list_node *pos, *next;
    list_for_each_safe(pos, next, &p->failing) {
        failing_free(p, list_entry(pos, struct failing, link));
    }
}

static bool failing_matches(const struct failing *f, const struct eng_push_attempt *at)
{
    return (!f->url || strncmp(at->url, f->url, strlen(f->url)) == 0) &&
           (!f->name || is(at->subscriber, f->name)) &&
           (!f->project || is(at->project, f->project)) && (!f->queue || is(at->queue, f->queue));
}

static json_t *failing_json(const struct failing *f)
{
    json_t *o = json_pack("{s:I, s:i, s:I}", "id", (json_int_t)f->id, "status", f->status,
                          "matched", (json_int_t)f->matched);
    const char *keys[4] = {"url", "name", "project", "queue"};
    const char *vals[4] = {f->url, f->name, f->project, f->queue};
    for (int i = 0; o && i < 4; i++)
        if (vals[i])
            json_object_set_new(o, keys[i], json_string(vals[i]));
    if (o && f->limited)
        json_object_set_new(o, "count", json_integer(f->left));
    return o;
}

/* A match field: a non-empty string, copied (NULL when absent). */
static char *match_field(struct field_reader *fr, int root, const char *key, bool *oom)
{
    size_t len = 0;
    const char *text = fr_text(fr, root, key, &len);
    if (!text)
        return NULL;
    if (!len || memchr(text, '\0', len)) {
        fr_fail(fr, "%s must be a non-empty string without NUL bytes", key);
        return NULL;
    }
    char *copy = strndup(text, len);
    *oom |= !copy;
    return copy;
}

static void failing_add(struct admin_push *p, struct api_request *req)
{
    static const char *const known[] = {"url", "name", "project", "queue", "status", "count",
                                        NULL};
    struct field_reader fr = {0};
    struct failing *f = calloc(1, sizeof(*f));
    bool oom = !f;
    int root = f ? fr_parse(&fr, req->body, req->body_len) : -1;
    if (root >= 0) {
        only_known(&fr, root, known, "give url, name, project, queue, status or count");
        f->url = match_field(&fr, root, "url", &oom);
        f->name = match_field(&fr, root, "name", &oom);
        f->project = match_field(&fr, root, "project", &oom);
        f->queue = match_field(&fr, root, "queue", &oom);
        uint32_t status = 500;
        fr_uint(&fr, root, "status", 0, 599, &status);
        if (!fr.failed && status != 0 && status < 200)
            fr_fail(&fr, "status must be 0 (no answer, as after a connection error) or an HTTP "
                         "status from 200 to 599");
        f->status = (int)status;
        f->limited = fr_uint(&fr, root, "count", 1, SINK_COUNT_MAX, &f->left);
    }
    if (!fr.failed && !oom && p->n_failing >= FAILING_MAX)
        fr_fail(&fr, "at most %d failing-subscriber rules: DELETE /admin/faults/subscribers "
                     "removes them", FAILING_MAX);
    if (fr.failed || oom) {
        if (oom)
            api_reply_error(req, ENG_NO_MEMORY, NULL);
        else
            api_reply_error(req, API_BAD_REQUEST, fr.err);
        fr_release(&fr);
        failing_destroy(f);
        return;
    }
    fr_release(&fr);
    f->id = ++p->failing_ids;
    list_push_back(&p->failing, &f->link);
    p->n_failing++;
    api_reply_json(req, 200, failing_json(f));
}

static void failing_list(struct admin_push *p, struct api_request *req)
{
    json_t *list = json_array();
    struct list_node *pos;
    for (pos = p->failing.next; list && pos != &p->failing; pos = pos->next)
        json_array_append_new(list, failing_json(list_entry(pos, struct failing, link)));
    api_reply_json(req, 200, list ? json_pack("{s:o}", "subscribers", list) : NULL);
}

static void failing_route(struct admin_push *p, struct api_request *req, char **seg, size_t n)
{
    const char *m = req->method;
    if (n == 3 && is(m, "POST")) {
        failing_add(p, req);
    } else if (n == 3 && is(m, "GET")) {
        failing_list(p, req);
    } else if (n == 3 && is(m, "DELETE")) {
        failing_clear(p);
        api_reply_msg(req, 200, "Deleted");
    } else if (n == 4 && is(m, "DELETE")) {
        uint32_t id = 0;
        struct failing *found = NULL;
        struct list_node *pos;
        if (parse_uint_text(seg[3], UINT32_MAX, &id))
            for (pos = p->failing.next; !found && pos != &p->failing; pos = pos->next)
                if (list_entry(pos, struct failing, link)->id == id)
                    found = list_entry(pos, struct failing, link);
        if (found)
            failing_free(p, found);
        if (found)
            api_reply_msg(req, 200, "Deleted");
        else
            api_reply_msg(req, 404, "No failing-subscriber rule with that id");
    } else {
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
    }
}

/* ---- the pusher's hooks ---- */

bool admin_push_before_send(void *kit, struct eng_push_attempt *at, int *status)
{
    struct admin *a = kit;
    struct admin_push *p = a->push;
    at->sent_at_ms = engine_now(a);
    struct list_node *pos;
    for (pos = p->failing.next; pos != &p->failing; pos = pos->next) {
        struct failing *f = list_entry(pos, struct failing, link);
        if (!failing_matches(f, at))
            continue;
        f->matched++;
        *status = f->status ? f->status : -1;
        if (!f->status)
            at->error = "no answer: a failing subscriber (POST /admin/faults/subscribers)";
        if (f->limited && --f->left == 0)
            failing_free(p, f);
        return true;
    }
    return false;
}

void admin_push_after(void *kit, const struct eng_push_attempt *at)
{
    struct admin *a = kit;
    int64_t now = engine_now(a);
    log_add(a->push, at, now);
    json_t *fields = json_pack("{s:s, s:s, s:I, s:i, s:s, s:b, s:I, s:I}", "subscriber",
                               at->subscriber, "url", at->url, "try_no", (json_int_t)at->try_no,
                               "status", at->status, "result",
                               result_word(at->status, at->timed_out), "faked", at->faked,
                               "latency_us", (json_int_t)at->latency_us, "at_ms",
                               (json_int_t)at->sent_at_ms);
    if (fields && at->status < 0)
        json_object_set_new(fields, "error", text_json(at->error, strlen(at->error)));
    admin_publish(a, "push_attempt", at->project, at->queue, at->msg_id, fields);
}

/* ---- lifecycle and routes ---- */

void admin_push_reset(struct admin_push *p)
{
    sinks_clear(p); /* answers still waiting to be sent keep their own copies */
    failing_clear(p);
    log_clear(p);
}

struct admin_push *admin_push_open(struct admin *a)
{
    struct admin_push *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->admin = a;
    list_init(&p->sinks);
    list_init(&p->replies);
    list_init(&p->failing);
    p->log_first = 1;
    return p;
}

void admin_push_close(struct admin_push *p)
{
    if (!p)
        return;
    struct list_node *pos, *next;
    list_for_each_safe(pos, next, &p->replies) { /* none once the server stopped */
        struct sink_reply *r = list_entry(pos, struct sink_reply, link);
        r->req->front = NULL;
        reply_free(r);
    }
    sinks_clear(p);
    failing_clear(p);
    log_clear(p);
    free(p->log);
    free(p);
}

bool admin_push_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    struct admin_push *p = a->push;
    if (n >= 2 && is(seg[1], "sinks")) {
        sinks_route(p, req, seg, n);
        return true;
    }
    if (n == 2 && is(seg[1], "push-log")) {
        if (is(req->method, "GET")) {
            log_list(p, req);
        } else if (is(req->method, "DELETE")) {
            log_clear(p);
            api_reply_msg(req, 200, "Deleted");
        } else {
            api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        }
        return true;
    }
    if ((n == 3 || n == 4) && is(seg[1], "faults") && is(seg[2], "subscribers")) {
        failing_route(p, req, seg, n);
        return true;
    }
    return false;
}
