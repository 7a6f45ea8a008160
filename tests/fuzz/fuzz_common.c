/* tests/fuzz/fuzz_common.c — requests from fuzz input and the checks on their answers
 * (see fuzz_common.h). */
#include "fuzz_common.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { MAX_IDS = 10, ID_TEXT = 24, RID_TEXT = RESERVATION_ID_HEX + 1 };

void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n==fuzz== %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    FUZZ_CHECK(p != NULL, "out of memory (%zu bytes)", n);
    return p;
}

static char *xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- ids seen in answers, and the placeholders that reuse them ---- */

static struct {
    char ids[MAX_IDS][ID_TEXT];
    char rids[MAX_IDS][RID_TEXT];
    size_t n_ids, n_rids;
} seen;

void fuzz_ids_reset(void)
{
    memset(&seen, 0, sizeof(seen));
}

static void copy_text(char *dst, size_t cap, json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    snprintf(dst, cap, "%s", s);
}

/* Remembers the ids an answer carries: post ("ids"), reserve/peek ("messages"),
 * get ("message"), touch ("reservation_id"). */
static void harvest(json_t *root)
{
    json_t *ids = json_object_get(root, "ids");
    json_t *msgs = json_object_get(root, "messages");
    json_t *msg = json_object_get(root, "message");
    json_t *rid = json_object_get(root, "reservation_id");
    if (json_is_array(ids) && json_array_size(ids)) {
        seen.n_ids = 0;
        for (size_t i = 0; i < json_array_size(ids) && i < MAX_IDS; i++)
            copy_text(seen.ids[seen.n_ids++], ID_TEXT, json_array_get(ids, i));
    } else if (json_is_array(msgs) && json_array_size(msgs)) {
        seen.n_ids = seen.n_rids = 0;
        for (size_t i = 0; i < json_array_size(msgs) && i < MAX_IDS; i++) {
            json_t *m = json_array_get(msgs, i);
            copy_text(seen.ids[seen.n_ids++], ID_TEXT, json_object_get(m, "id"));
            if (json_object_get(m, "reservation_id"))
                copy_text(seen.rids[seen.n_rids++], RID_TEXT, json_object_get(m, "reservation_id"));
        }
    } else if (json_is_object(msg)) {
        seen.n_ids = 0;
        copy_text(seen.ids[seen.n_ids++], ID_TEXT, json_object_get(msg, "id"));
    }
    if (json_is_string(rid)) {
        copy_text(seen.rids[0], RID_TEXT, rid);
        if (!seen.n_rids)
            seen.n_rids = 1;
    }
}

struct growbuf {
    char *data;
    size_t len, cap;
};

static void gb_put(struct growbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        FUZZ_CHECK(grown != NULL, "out of memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

char *fuzz_subst(const char *s, size_t len, size_t *out_len)
{
    struct growbuf b = {0};
    gb_put(&b, "", 0);
    for (size_t i = 0; i < len;) {
        const char *rest = s + i;
        size_t left = len - i;
        bool rid = left >= 4 && memcmp(rest, "$RID", 4) == 0;
        bool id = !rid && left >= 3 && memcmp(rest, "$ID", 3) == 0;
        if (!rid && !id) {
            const char *dollar = memchr(rest + 1, '$', left - 1);
            size_t n = dollar ? (size_t)(dollar - rest) : left;
            gb_put(&b, rest, n);
            i += n;
            continue;
        }
        size_t used = rid ? 4 : 3, index = 0;
        if (left > used && rest[used] >= '0' && rest[used] <= '9')
            index = (size_t)(rest[used++] - '0');
        const char *value = rid ? (index < seen.n_rids ? seen.rids[index] : "")
                                : (index < seen.n_ids ? seen.ids[index] : "1");
        gb_put(&b, value, strlen(value));
        i += used;
    }
    *out_len = b.len;
    return b.data;
}

/* ---- requests ---- */

static void kv_add(struct fuzz_kv **list, size_t *n, char *name, char *value)
{
    struct fuzz_kv *grown = realloc(*list, (*n + 1) * sizeof(*grown));
    FUZZ_CHECK(grown != NULL, "out of memory");
    grown[*n].name = name;
    grown[*n].value = value;
    *list = grown;
    (*n)++;
}

/* %XX and '+' decoding, as libmicrohttpd does for query arguments. */

/* One hex digit; false for anything else. */
static bool hex_value(char c, unsigned *out)
{
    if (c >= '0' && c <= '9')
        *out = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
        *out = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
        *out = (unsigned)(c - 'A' + 10);
    else
        return false;
    return true;
}

static void unescape(char *s)
{
    char *out = s;
    for (char *in = s; *in; in++) {
        unsigned hi, lo;
        if (*in == '+') {
            *out++ = ' ';
        } else if (*in == '%' && hex_value(in[1], &hi) && hex_value(in[2], &lo)) {
            *out++ = (char)(hi << 4 | lo);
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

static void parse_query(struct fuzz_req *r, const char *q, size_t len)
{
    for (size_t i = 0; i <= len;) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t n = amp ? (size_t)(amp - (q + i)) : len - i;
        if (n) {
            const char *eq = memchr(q + i, '=', n);
            size_t name_len = eq ? (size_t)(eq - (q + i)) : n;
            char *name = xstrndup(q + i, name_len);
            char *value = eq ? xstrndup(eq + 1, n - name_len - 1) : xstrndup("", 0);
            unescape(name);
            unescape(value);
            kv_add(&r->params, &r->n_params, name, value);
        }
        i += n + 1;
    }
}

const char *freq_header(const struct fuzz_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

const char *freq_param(const struct fuzz_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

static void check_live(struct api_request *areq, const char *what)
{
    struct fuzz_req *r = (struct fuzz_req *)areq;
    FUZZ_CHECK(r->state == FREQ_WAITING, "%s called outside api_handle on a request in state %d",
               what, (int)r->state);
}

static const char *lookup_header(struct api_request *areq, const char *name)
{
    check_live(areq, "header()");
    FUZZ_CHECK(name != NULL, "header(NULL)");
    return freq_header((struct fuzz_req *)areq, name);
}

static const char *lookup_query(struct api_request *areq, const char *name)
{
    check_live(areq, "query()");
    FUZZ_CHECK(name != NULL, "query(NULL)");
    return freq_param((struct fuzz_req *)areq, name);
}

static bool known_status(int status)
{
    static const int ok[] = {200, 201, 304, 308, 400, 401, 403, 404, 405, 413};
    /* (the SQS front answers with these too: its errors are 400, 403 and 404; 304 and 308
     * are the dashboard's: a file not changed, /ui → /ui/) */
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (ok[i] == status)
            return true;
    return false;
}

/* FUZZ_TRACE=1 prints every request and answer (to see what a corpus input does). */
static bool tracing(void)
{
    static int on = -1;
    if (on < 0)
        on = getenv("FUZZ_TRACE") != NULL;
    return on;
}

static void respond(struct api_request *areq, int status, char *body, size_t len)
{
    struct fuzz_req *r = (struct fuzz_req *)areq;
    check_live(areq, "respond()");
    if (tracing())
        fprintf(stderr, "  %s %s -> %d %.*s\n", r->method, r->path, status, body ? (int)len : 0,
                body ? body : "");
    r->state = FREQ_ANSWERED;
    r->http_status = status;
    /* Memory mode cannot fail for want of storage, and nothing here runs out of memory:
     * a 5xx is a status the mapping did not expect (500) or a bug. */
    FUZZ_CHECK(known_status(status), "unexpected HTTP status %d for %s %s: %.*s", status,
               r->method, r->path, body ? (int)len : 0, body ? body : "");
    if (areq->reply_headers) { /* one of the dashboard's files (api/dash.c), not JSON */
        FUZZ_CHECK(status == 200 ? body != NULL && len > 0 : status == 304 && !body,
                   "dashboard file %s answered %d with %zu bytes", r->path, status, len);
        free(body);
        return;
    }
    FUZZ_CHECK(status != 304, "304 for %s %s", r->method, r->path);
    FUZZ_CHECK(body != NULL, "no body for %s %s", r->method, r->path);
    FUZZ_CHECK(strlen(body) == len, "body length %zu, strlen %zu", len, strlen(body));
    if (areq->reply_type && strcmp(areq->reply_type, "text/xml") == 0) {
        /* the SQS query protocol: an XML document, an ErrorResponse with a Code on errors */
        static const char head[] = "<?xml version=\"1.0\"?><";
        FUZZ_CHECK(strncmp(body, head, sizeof(head) - 1) == 0 && body[len - 1] == '>',
                   "SQS answer is not an XML document: %s", body);
        FUZZ_CHECK(status < 400 || (strstr(body, "<ErrorResponse") && strstr(body, "<Code>")),
                   "SQS error without ErrorResponse/Code: %s", body);
        free(body);
        return;
    }
    json_error_t err;
    json_t *root = json_loads(body, JSON_ALLOW_NUL, &err); /* "\u0000" is valid JSON */
    FUZZ_CHECK(root != NULL, "answer is not JSON (%s): %s", err.text, body);
    FUZZ_CHECK(json_is_object(root), "answer is not a JSON object: %s", body);
    if (areq->reply_type) { /* the SQS JSON protocol: errors carry __type */
        FUZZ_CHECK(status < 400 || json_is_string(json_object_get(root, "__type")),
                   "SQS error without __type: %s", body);
    } else if (status >= 400) {
        json_t *msg = json_object_get(root, "msg");
        FUZZ_CHECK(json_is_string(msg) && json_string_length(msg) > 0, "error without msg: %s",
                   body);
    } else {
        harvest(root);
    }
    json_decref(root);
    free(body);
}

struct fuzz_req *freq_new(const char *method, size_t method_len, const char *path, size_t path_len,
                          const char *query, size_t query_len, const char *body, size_t body_len)
{
    struct fuzz_req *r = calloc(1, sizeof(*r)); /* api.op zeroed: "not linked" for eng_cancel */
    FUZZ_CHECK(r != NULL, "out of memory");
    /* the HTTP server keeps at most 15 bytes of a method */
    r->method = xstrndup(method, method_len < 15 ? method_len : 15);
    size_t n;
    r->path = fuzz_subst(path, path_len, &n);
    if (query) {
        size_t qn;
        char *q = fuzz_subst(query, query_len, &qn);
        parse_query(r, q, qn);
        r->query = q; /* kept raw too: the SQS front reads the query string as sent */
    }
    /* The body is exactly body_len bytes, like the server's: reading past it is a bug. */
    char *b = fuzz_subst(body, body_len, &n);
    r->body_len = n;
    r->body = xmalloc(n);
    memcpy(r->body, b, n);
    free(b);
    r->api.method = r->method;
    r->api.path = r->path;
    r->api.query_string = r->query;
    r->api.body = r->body_len ? r->body : "";
    r->api.body_len = r->body_len;
    r->api.header = lookup_header;
    r->api.query = lookup_query;
    r->api.respond = respond;
    return r;
}

void freq_add_header(struct fuzz_req *r, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    size_t n;
    kv_add(&r->headers, &r->n_headers, xstrndup(name, name_len), fuzz_subst(value, value_len, &n));
}

void freq_dispatch(struct api *api, struct fuzz_req *r)
{
    FUZZ_CHECK(r->state == FREQ_NEW, "request dispatched twice");
    r->state = FREQ_WAITING;
    if (tracing())
        fprintf(stderr, "%s %s (%zu params, %zu headers, %zu body bytes)\n", r->method, r->path,
                r->n_params, r->n_headers, r->body_len);
    api_handle(api, &r->api);
    if (tracing() && r->state == FREQ_WAITING)
        fprintf(stderr, "  (held: long poll)\n");
    /* In memory mode every engine call completes before it returns; only a reserve with
     * `wait` that found nothing may still be waiting. */
    FUZZ_CHECK(r->state != FREQ_WAITING || r->api.long_poll,
               "%s %s returned without an answer and is not a long poll", r->method, r->path);
}

void freq_abandon(struct api *api, struct fuzz_req *r)
{
    FUZZ_CHECK(r->state == FREQ_WAITING, "abandoning a request in state %d", (int)r->state);
    api_abandon(api, &r->api);
    r->state = FREQ_ABANDONED;
    if (tracing())
        fprintf(stderr, "  %s %s abandoned\n", r->method, r->path);
}

void freq_free(struct fuzz_req *r)
{
    if (!r)
        return;
    FUZZ_CHECK(r->state != FREQ_WAITING, "freeing a request the engine may still hold");
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    for (size_t i = 0; i < r->n_params; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    free(r->headers);
    free(r->params);
    free(r->method);
    free(r->path);
    free(r->query);
    free(r->body);
    /* poison what the engine might wrongly still use (ASan catches it as use-after-free) */
    memset(r, 0xa5, sizeof(*r));
    free(r);
}

struct engine *fuzz_engine_open(int64_t now_ms)
{
    char err[256] = "";
    struct eng_options opt = {
        .data_dir = NULL, .durability = DURABILITY_MEMORY, .now_ms = now_ms, .seed = 0x5eed};
    struct engine *e = eng_open(&opt, err, sizeof(err));
    FUZZ_CHECK(e != NULL, "eng_open: %s", err);
    return e;
}
