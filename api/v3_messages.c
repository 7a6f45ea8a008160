/* api/v3_messages.c — message endpoints: post (and webhook post), reserve, peek, get,
 * delete one, delete many or clear, touch, release, push statuses. Limits are the hosted
 * service's (wire contract §3): at most 100 messages per call, delays up to 7 days,
 * reservations from 30 s to 24 h, long polls up to 30 s, bodies up to the configured size. */
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Parses the body into fr; false (400 answered, fr released) when it is not a JSON object. */
static bool body_object(struct api_request *req, struct field_reader *fr)
{
    if (fr_parse(fr, req->body, req->body_len) == 0)
        return true;
    api_reply_error(req, API_BAD_REQUEST, fr->err);
    fr_release(fr);
    return false;
}

/* Answers 400 with what fr found, and releases it; true when it did. */
static bool bad_input(struct api_request *req, struct field_reader *fr)
{
    if (!fr->failed)
        return false;
    api_reply_error(req, API_BAD_REQUEST, fr->err);
    fr_release(fr);
    return true;
}

static void reply_messages(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    struct jw w = {0};
    json_write_messages(&w, res);
    api_reply_text(req, 200, &w);
}

static void reply_msg(struct api_request *req, const struct eng_result *res, const char *text)
{
    if (!api_failed(req, res))
        api_reply_msg(req, 200, text);
}

/* ---- post ---- */

static void on_posted(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    struct jw w = {0};
    jw_lit(&w, "{\"ids\":[");
    for (size_t i = 0; i < res->n_ids; i++) {
        if (i)
            jw_lit(&w, ",");
        jw_id(&w, res->ids[i]);
    }
    jw_lit(&w, "],\"msg\":\"Messages put on queue.\"}");
    api_reply_text(req, 201, &w);
}

static bool reserved_push_header(const char *name)
{
    static const char *const reserved[] = {"Content-Type", "User-Agent", "Iron-Message-Id",
                                           "Iron-Reservation-Id", "Iron-Subscriber-Name",
                                           "Iron-Subscriber-Message-Url"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* Push headers only matter to push queues, but their limits hold on every post. */
/* Checks a message's push_headers and encodes them as name\0value\0 pairs into *out
 * (malloc'd, the caller frees; NULL when there are none). */
void v3_read_push_headers(struct field_reader *fr, int msg, char **out, size_t *out_len)
{
    const struct jr_doc *d = &fr->doc;
    int headers = fr_object(fr, msg, "push_headers");
    if (headers < 0)
        return;
    if (d->tok[headers].count > PUSH_HEADERS_MAX)
        fr_fail(fr, "%spush_headers: at most %d headers", fr->prefix, PUSH_HEADERS_MAX);
    char *buf = fr->failed ? NULL
                           : malloc((size_t)PUSH_HEADERS_MAX * (PUSH_HEADER_NAME_MAX + PUSH_HEADER_VALUE_MAX + 2));
    size_t used = 0;
    for (int k = jr_child(d, headers); k >= 0 && !fr->failed; k = jr_sibling(d, headers, k)) {
        char name[PUSH_HEADER_NAME_MAX + 1] = "", value[PUSH_HEADER_VALUE_MAX + 1] = "";
        size_t name_len = jr_string_length(d, k);
        if (name_len <= PUSH_HEADER_NAME_MAX)
            jr_string_copy(d, k, name);
        if (name_len == 0 || name_len > PUSH_HEADER_NAME_MAX || strlen(name) != name_len ||
            reserved_push_header(name) || !api_header_name(name, PUSH_HEADER_NAME_MAX))
            fr_fail(fr, "%spush_headers: a header name must be 1 to %d token characters and not a"
                        " reserved one", fr->prefix, PUSH_HEADER_NAME_MAX);
        int v = (int)d->tok[k].end;
        size_t value_len = jr_is(d, v, JR_STRING) ? jr_string_length(d, v) : 0;
        if (value_len && value_len <= PUSH_HEADER_VALUE_MAX)
            jr_string_copy(d, v, value);
        if (!fr->failed && (value_len == 0 || value_len > PUSH_HEADER_VALUE_MAX ||
                            strlen(value) != value_len || strpbrk(value, "\r\n")))
            fr_fail(fr, "%spush_headers: the value of \"%s\" must be a string of 1 to %d bytes on"
                        " one line", fr->prefix, name, PUSH_HEADER_VALUE_MAX);
        if (!fr->failed && buf) {
            memcpy(buf + used, name, name_len + 1);
            memcpy(buf + used + name_len + 1, value, value_len + 1);
            used += name_len + value_len + 2;
        }
    }
    if (fr->failed || !used) {
        free(buf);
        return;
    }
    *out = buf;
    *out_len = used;
}

/* Reads one message of a post; returns an api status (ENG_OK when fine). */
static int read_post_message(struct field_reader *fr, const struct api_limits *lim, int m,
                             size_t i, struct eng_post_msg *out)
{
    snprintf(fr->prefix, sizeof(fr->prefix), "messages[%zu].", i);
    if (!jr_is(&fr->doc, m, JR_OBJECT)) {
        fr_fail(fr, "messages[%zu] must be an object", i);
        return API_BAD_REQUEST;
    }
    out->body = fr_text(fr, m, "body", &out->body_len);
    if (!fr->failed && (!out->body || out->body_len == 0))
        fr_fail(fr, "messages[%zu].body must be a non-empty string", i);
    (void)fr_uint(fr, m, "delay", 0, DELAY_MAX_S, &out->delay_s);
    v3_read_push_headers(fr, m, &out->push_headers, &out->push_headers_len);
    if (fr->failed)
        return API_BAD_REQUEST;
    if (out->body_len > lim->max_message_size) {
        fr_fail(fr, "messages[%zu].body is %zu bytes, more than the limit of %zu", i,
                out->body_len, lim->max_message_size);
        return API_TOO_LARGE;
    }
    return ENG_OK;
}

void v3_post_messages(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    struct eng_post_msg *msgs = NULL;
    int status = API_BAD_REQUEST;
    int list = fr_array(&fr, 0, "messages");
    size_t n = list >= 0 ? fr.doc.tok[list].count : 0;
    if (!fr.failed && list < 0)
        fr_fail(&fr, "messages is required: {\"messages\": [{\"body\": \"...\"}]}");
    else if (!fr.failed && (n == 0 || n > MAX_PER_CALL))
        fr_fail(&fr, "messages must hold from 1 to %d messages", MAX_PER_CALL);
    else if (!fr.failed && !(msgs = calloc(n, sizeof(*msgs))))
        status = ENG_NO_MEMORY;
    size_t i = 0;
    for (int m = list >= 0 ? jr_child(&fr.doc, list) : -1; msgs && m >= 0;
         m = jr_sibling(&fr.doc, list, m), i++)
        if ((status = read_post_message(&fr, &api->limits, m, i, &msgs[i])) != ENG_OK)
            break;
    if (msgs && status == ENG_OK) {
        api_prepare_op(req, on_posted);
        eng_post(api->engine, &req->op, rt->project, rt->queue, msgs, n);
    } else {
        api_reply_error(req, status, fr.failed ? fr.err : NULL);
    }
    for (size_t k = 0; msgs && k < n; k++)
        free(msgs[k].push_headers);
    free(msgs);
    fr_release(&fr);
}

/* The body, whatever it is, becomes one message (wire contract §3). */
void v3_webhook(struct api *api, struct api_request *req, const struct route *rt)
{
    char detail[120];
    if (req->body_len == 0) {
        api_reply_error(req, API_BAD_REQUEST, "The request body is the message: it cannot be empty");
        return;
    }
    if (req->body_len > api->limits.max_message_size) {
        snprintf(detail, sizeof(detail), "Message body is %zu bytes, more than the limit of %zu",
                 req->body_len, api->limits.max_message_size);
        api_reply_error(req, API_TOO_LARGE, detail);
        return;
    }
    if (!api_valid_utf8(req->body, req->body_len)) {
        api_reply_error(req, API_BAD_REQUEST, "Message body must be UTF-8 text");
        return;
    }
    struct eng_post_msg msg = {.body = req->body, .body_len = req->body_len};
    api_prepare_op(req, on_posted);
    eng_post(api->engine, &req->op, rt->project, rt->queue, &msg, 1);
}

/* ---- reserve, peek, get ---- */

void v3_reserve(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    struct eng_reserve_args args = {.n = 1};
    (void)fr_uint(&fr, 0, "n", 1, MAX_PER_CALL, &args.n);
    (void)fr_uint_or_zero(&fr, 0, "timeout", api_timeout_min(api), TIMEOUT_MAX_S,
                          &args.timeout_s);
    (void)fr_uint(&fr, 0, "wait", 0, WAIT_MAX_S, &args.wait_s);
    (void)fr_bool(&fr, 0, "delete", &args.delete_msgs);
    if (bad_input(req, &fr))
        return;
    fr_release(&fr);
    req->long_poll = args.wait_s > 0;
    api_prepare_op(req, reply_messages);
    eng_reserve(api->engine, &req->op, rt->project, rt->queue, &args);
}

void v3_peek_messages(struct api *api, struct api_request *req, const struct route *rt)
{
    const char *text = req->query(req, "n");
    uint32_t n = 1;
    if (text && *text && (!parse_uint_text(text, MAX_PER_CALL, &n) || n == 0)) {
        api_reply_error(req, API_BAD_REQUEST, "n must be an integer from 1 to 100");
        return;
    }
    api_prepare_op(req, reply_messages);
    eng_peek(api->engine, &req->op, rt->project, rt->queue, n);
}

static void on_message(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    struct jw w = {0};
    jw_lit(&w, "{\"message\":");
    json_write_message(&w, &res->messages[0]);
    jw_lit(&w, "}");
    api_reply_text(req, 200, &w);
}

void v3_get_message(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_message);
    eng_get(api->engine, &req->op, rt->project, rt->queue, rt->message_id);
}

/* ---- delete, clear ---- */

static void on_deleted(struct eng_op *op, const struct eng_result *res)
{
    reply_msg(op->ctx, res, "Deleted");
}

static void on_cleared(struct eng_op *op, const struct eng_result *res)
{
    reply_msg(op->ctx, res, "Cleared");
}

void v3_delete_message(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    const char *rid = fr_cstring(&fr, 0, "reservation_id");
    const char *subscriber = fr_cstring(&fr, 0, "subscriber_name"); /* push queues */
    if (bad_input(req, &fr))
        return;
    /* The Iron-Subscriber-Message-Url a push subscriber is given carries both in its query. */
    if (!rid)
        rid = req->query(req, "reservation_id");
    if (!subscriber)
        subscriber = req->query(req, "subscriber_name");
    api_prepare_op(req, on_deleted);
    eng_delete(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid, subscriber);
    fr_release(&fr);
}

/* An entry of "ids": {"id": "...", "reservation_id"?: "..."}, or a bare id. */
static void read_delete_item(struct field_reader *fr, int entry, size_t i,
                             struct eng_delete_item *out)
{
    snprintf(fr->prefix, sizeof(fr->prefix), "ids[%zu].", i);
    bool object = jr_is(&fr->doc, entry, JR_OBJECT);
    int id = object ? jr_get(&fr->doc, entry, "id") : entry;
    if (id < 0 || !fr_message_id(fr, id, &out->id)) {
        fr_fail(fr, "ids[%zu].id must be a message id", i);
        return;
    }
    if (object)
        out->reservation_id = fr_cstring(fr, entry, "reservation_id");
}

void v3_delete_messages(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    int ids = fr_array(&fr, 0, "ids");
    size_t n = ids >= 0 ? fr.doc.tok[ids].count : 0;
    struct eng_delete_item *items = NULL;
    if (!fr.failed && ids < 0) { /* no ids: clear the queue (wire contract §3) */
        fr_release(&fr);
        api_prepare_op(req, on_cleared);
        eng_clear(api->engine, &req->op, rt->project, rt->queue);
        return;
    }
    if (!fr.failed && (n == 0 || n > MAX_PER_CALL))
        fr_fail(&fr, "ids must hold from 1 to %d entries (send {} to clear the queue)", MAX_PER_CALL);
    if (!fr.failed && !(items = calloc(n ? n : 1, sizeof(*items)))) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        fr_release(&fr);
        return;
    }
    size_t i = 0;
    for (int e = ids >= 0 ? jr_child(&fr.doc, ids) : -1; !fr.failed && e >= 0;
         e = jr_sibling(&fr.doc, ids, e), i++)
        read_delete_item(&fr, e, i, &items[i]);
    if (!bad_input(req, &fr)) {
        api_prepare_op(req, on_deleted);
        eng_delete_many(api->engine, &req->op, rt->project, rt->queue, items, n);
        fr_release(&fr);
    }
    free(items);
}

/* ---- touch, release ---- */

static void on_touched(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    struct jw w = {0};
    jw_lit(&w, "{\"reservation_id\":\"");
    jw_lit(&w, res->reservation_id);
    jw_lit(&w, "\",\"msg\":\"Touched\"}");
    api_reply_text(req, 200, &w);
}

static void on_released(struct eng_op *op, const struct eng_result *res)
{
    reply_msg(op->ctx, res, "Released");
}

void v3_touch(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    uint32_t timeout_s = 0;
    const char *rid = fr_cstring(&fr, 0, "reservation_id");
    (void)fr_uint_or_zero(&fr, 0, "timeout", api_timeout_min(api), TIMEOUT_MAX_S, &timeout_s);
    if (bad_input(req, &fr))
        return;
    api_prepare_op(req, on_touched);
    eng_touch(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid, timeout_s);
    fr_release(&fr);
}

void v3_release(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    if (!body_object(req, &fr))
        return;
    uint32_t delay_s = 0;
    const char *rid = fr_cstring(&fr, 0, "reservation_id");
    (void)fr_uint(&fr, 0, "delay", 0, DELAY_MAX_S, &delay_s);
    if (bad_input(req, &fr))
        return;
    api_prepare_op(req, on_released);
    eng_release(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid, delay_s);
    fr_release(&fr);
}

/* ---- push statuses ---- */

static void on_push_statuses(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    struct jw w = {0};
    jw_lit(&w, "{\"subscribers\":[");
    for (size_t i = 0; i < res->n_statuses; i++) {
        if (i)
            jw_lit(&w, ",");
        json_write_push_status(&w, &res->statuses[i]);
    }
    jw_lit(&w, "]}");
    api_reply_text(req, 200, &w);
}

void v3_push_statuses(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_push_statuses);
    eng_push_statuses(api->engine, &req->op, rt->project, rt->queue, rt->message_id);
}
