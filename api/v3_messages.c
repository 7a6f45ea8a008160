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


/* Parses the body, answering 400 itself when it is not a JSON object. */
static json_t *body_object(struct api_request *req)
{
    struct field_reader fr = {0};
    json_t *root = json_parse_object(&fr, req->body, req->body_len);
    if (!root)
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    return root;
}

static void reply_messages(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_json(req, 200, json_messages(res));
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
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < res->n_ids; i++)
        json_array_append_new(ids, json_id_string(res->ids[i]));
    api_reply_json(req, 201,
                   ids ? json_pack("{s:o, s:s}", "ids", ids, "msg", "Messages put on queue.") : NULL);
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
static void check_push_headers(struct field_reader *fr, json_t *msg)
{
    json_t *headers = fr_object(fr, msg, "push_headers");
    if (!headers)
        return;
    if (json_object_size(headers) > PUSH_HEADERS_MAX)
        fr_fail(fr, "%spush_headers: at most %d headers", fr->prefix, PUSH_HEADERS_MAX);
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value) {
        size_t name_len = strlen(name);
        if (name_len == 0 || name_len > PUSH_HEADER_NAME_MAX || reserved_push_header(name))
            fr_fail(fr, "%spush_headers: \"%.64s\" is not an allowed header name", fr->prefix, name);
        if (!json_is_string(value) || json_string_length(value) == 0 ||
            json_string_length(value) > PUSH_HEADER_VALUE_MAX)
            fr_fail(fr, "%spush_headers: the value of \"%.64s\" must be a string of 1 to %d bytes",
                    fr->prefix, name, PUSH_HEADER_VALUE_MAX);
    }
}

/* Reads one message of a post; returns an api status (ENG_OK when fine). */
static int read_post_message(struct field_reader *fr, const struct api_limits *lim, json_t *m,
                             size_t i, struct eng_post_msg *out)
{
    snprintf(fr->prefix, sizeof(fr->prefix), "messages[%zu].", i);
    if (!json_is_object(m)) {
        fr_fail(fr, "messages[%zu] must be an object", i);
        return API_BAD_REQUEST;
    }
    out->body = fr_string(fr, m, "body", &out->body_len);
    if (!fr->failed && (!out->body || out->body_len == 0))
        fr_fail(fr, "messages[%zu].body must be a non-empty string", i);
    (void)fr_uint(fr, m, "delay", 0, DELAY_MAX_S, &out->delay_s);
    check_push_headers(fr, m);
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
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    struct eng_post_msg *msgs = NULL;
    int status = API_BAD_REQUEST;
    json_t *list = fr_array(&fr, root, "messages");
    size_t n = list ? json_array_size(list) : 0;
    if (!fr.failed && !list)
        fr_fail(&fr, "messages is required: {\"messages\": [{\"body\": \"...\"}]}");
    else if (!fr.failed && (n == 0 || n > MAX_PER_CALL))
        fr_fail(&fr, "messages must hold from 1 to %d messages", MAX_PER_CALL);
    else if (!fr.failed && !(msgs = calloc(n, sizeof(*msgs))))
        status = ENG_NO_MEMORY;
    for (size_t i = 0; msgs && i < n; i++)
        if ((status = read_post_message(&fr, &api->limits, json_array_get(list, i), i, &msgs[i])) !=
            ENG_OK)
            break;
    if (msgs && status == ENG_OK) {
        api_prepare_op(req, on_posted);
        eng_post(api->engine, &req->op, rt->project, rt->queue, msgs, n);
    } else {
        api_reply_error(req, status, fr.failed ? fr.err : NULL);
    }
    free(msgs);
    json_decref(root);
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
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    struct eng_reserve_args args = {.n = 1};
    (void)fr_uint(&fr, root, "n", 1, MAX_PER_CALL, &args.n);
    (void)fr_uint_or_zero(&fr, root, "timeout", TIMEOUT_MIN_S, TIMEOUT_MAX_S, &args.timeout_s);
    (void)fr_uint(&fr, root, "wait", 0, WAIT_MAX_S, &args.wait_s);
    (void)fr_bool(&fr, root, "delete", &args.delete_msgs);
    json_decref(root);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
        return;
    }
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
    json_t *m = json_message(&res->messages[0]);
    api_reply_json(req, 200, m ? json_pack("{s:o}", "message", m) : NULL);
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
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    const char *rid = fr_string(&fr, root, "reservation_id", NULL);
    (void)fr_string(&fr, root, "subscriber_name", NULL); /* for push queues */
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else {
        api_prepare_op(req, on_deleted);
        eng_delete(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid);
    }
    json_decref(root);
}

/* An entry of "ids": {"id": "...", "reservation_id"?: "..."}, or a bare id. */
static void read_delete_item(struct field_reader *fr, json_t *entry, size_t i,
                             struct eng_delete_item *out)
{
    snprintf(fr->prefix, sizeof(fr->prefix), "ids[%zu].", i);
    json_t *id = json_is_object(entry) ? json_object_get(entry, "id") : entry;
    if (!id || !json_message_id(id, &out->id)) {
        fr_fail(fr, "ids[%zu].id must be a message id", i);
        return;
    }
    if (json_is_object(entry))
        out->reservation_id = fr_string(fr, entry, "reservation_id", NULL);
}

void v3_delete_messages(struct api *api, struct api_request *req, const struct route *rt)
{
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    json_t *ids = fr_array(&fr, root, "ids");
    size_t n = ids ? json_array_size(ids) : 0;
    struct eng_delete_item *items = NULL;
    if (!fr.failed && !ids) { /* no ids: clear the queue (wire contract §3) */
        api_prepare_op(req, on_cleared);
        eng_clear(api->engine, &req->op, rt->project, rt->queue);
        json_decref(root);
        return;
    }
    if (!fr.failed && (n == 0 || n > MAX_PER_CALL))
        fr_fail(&fr, "ids must hold from 1 to %d entries (send {} to clear the queue)", MAX_PER_CALL);
    if (!fr.failed && !(items = calloc(n ? n : 1, sizeof(*items)))) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        json_decref(root);
        return;
    }
    for (size_t i = 0; !fr.failed && i < n; i++)
        read_delete_item(&fr, json_array_get(ids, i), i, &items[i]);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else {
        api_prepare_op(req, on_deleted);
        eng_delete_many(api->engine, &req->op, rt->project, rt->queue, items, n);
    }
    free(items);
    json_decref(root);
}

/* ---- touch, release ---- */

static void on_touched(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_json(req, 200,
                       json_pack("{s:s, s:s}", "reservation_id", res->reservation_id, "msg", "Touched"));
}

static void on_released(struct eng_op *op, const struct eng_result *res)
{
    reply_msg(op->ctx, res, "Released");
}

void v3_touch(struct api *api, struct api_request *req, const struct route *rt)
{
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    uint32_t timeout_s = 0;
    const char *rid = fr_string(&fr, root, "reservation_id", NULL);
    (void)fr_uint_or_zero(&fr, root, "timeout", TIMEOUT_MIN_S, TIMEOUT_MAX_S, &timeout_s);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else {
        api_prepare_op(req, on_touched);
        eng_touch(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid, timeout_s);
    }
    json_decref(root);
}

void v3_release(struct api *api, struct api_request *req, const struct route *rt)
{
    json_t *root = body_object(req);
    if (!root)
        return;
    struct field_reader fr = {0};
    uint32_t delay_s = 0;
    const char *rid = fr_string(&fr, root, "reservation_id", NULL);
    (void)fr_uint(&fr, root, "delay", 0, DELAY_MAX_S, &delay_s);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else {
        api_prepare_op(req, on_released);
        eng_release(api->engine, &req->op, rt->project, rt->queue, rt->message_id, rid, delay_s);
    }
    json_decref(root);
}

/* ---- push statuses ---- */

static void on_push_statuses(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_error(req, ENG_NOT_PUSH_QUEUE, NULL); /* only push queues have statuses */
}

void v3_push_statuses(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_push_statuses);
    eng_get(api->engine, &req->op, rt->project, rt->queue, rt->message_id);
}
