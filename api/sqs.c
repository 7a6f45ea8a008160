/* api/sqs.c — the SQS front's entry (see sqs.h): decides the protocol, gathers the
 * parameters (a JSON request is flattened into the query protocol's names), finds the
 * account and checks who is asking (AWS signatures, or the project:token access key of
 * hosted IronMQ), picks the action, and owns the one table of SQS errors and the request's
 * state from start to answer. */
#include "sqs.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "handlers.h"
#include "sigv.h"
#include "status.h"

#define XMLNS "http://queue.amazonaws.com/doc/2012-11-05/"

/* ---- the errors: HTTP status, query-protocol code, JSON-protocol type, text ---- */

static const struct {
    int http;
    const char *code;      /* query protocol <Code>, and the x-amzn-query-error header */
    const char *type;      /* JSON protocol __type after "com.amazonaws.sqs#" */
    const char *header;    /* x-amzn-query-error: "<code>;Sender" */
    const char *text;
} sqs_errors[SQS_ERROR_COUNT] = {
#define E(id, http, code, type, text) [id] = {http, code, type, code ";Sender", text}
    E(SQS_NON_EXISTENT_QUEUE, 400, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
      "The specified queue does not exist."),
    E(SQS_QUEUE_EXISTS, 400, "QueueAlreadyExists", "QueueNameExists",
      "A queue already exists with the same name and a different value for an attribute."),
    E(SQS_INVALID_PARAMETER_VALUE, 400, "InvalidParameterValue", "InvalidParameterValue",
      "A parameter has an invalid value."),
    E(SQS_MISSING_PARAMETER, 400, "MissingParameter", "MissingParameter",
      "A required parameter is missing."),
    E(SQS_INVALID_ATTRIBUTE_NAME, 400, "InvalidAttributeName", "InvalidAttributeName",
      "Unknown attribute."),
    E(SQS_INVALID_ATTRIBUTE_VALUE, 400, "InvalidAttributeValue", "InvalidAttributeValue",
      "An attribute has an invalid value."),
    E(SQS_RECEIPT_HANDLE_INVALID, 400, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
      "The receipt handle is not valid."),
    E(SQS_MESSAGE_NOT_INFLIGHT, 400, "AWS.SimpleQueueService.MessageNotInflight",
      "MessageNotInflight", "The message is not in flight."),
    E(SQS_EMPTY_BATCH, 400, "AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest",
      "There should be at least one entry in the request."),
    E(SQS_TOO_MANY_ENTRIES, 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
      "TooManyEntriesInBatchRequest", "Maximum number of entries per request is 10."),
    E(SQS_BATCH_IDS_NOT_DISTINCT, 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
      "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id."),
    E(SQS_INVALID_BATCH_ENTRY_ID, 400, "AWS.SimpleQueueService.InvalidBatchEntryId",
      "InvalidBatchEntryId",
      "A batch entry id can only contain alphanumeric characters, hyphens and underscores, and be up to 80 long."),
    E(SQS_BATCH_TOO_LONG, 400, "AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong",
      "The messages of a batch can be at most 262144 bytes together."),
    E(SQS_INVALID_MESSAGE_CONTENTS, 400, "InvalidMessageContents", "InvalidMessageContents",
      "The message contains characters outside the allowed set."),
    E(SQS_INVALID_ACTION, 400, "InvalidAction", "InvalidAction",
      "The action is not valid for this endpoint."),
    E(SQS_MISSING_ACTION, 400, "MissingAction", "MissingAction",
      "The request must contain the parameter Action."),
    E(SQS_UNSUPPORTED_OPERATION, 400, "AWS.SimpleQueueService.UnsupportedOperation",
      "UnsupportedOperation", "This operation is not supported by anvil."),
    E(SQS_MALFORMED_REQUEST, 400, "MalformedQueryString", "SerializationException",
      "The request could not be read."),
    E(SQS_INVALID_ADDRESS, 404, "InvalidAddress", "InvalidAddress",
      "The address is not valid for this endpoint."),
    E(SQS_MISSING_AUTHENTICATION, 403, "MissingAuthenticationToken", "MissingAuthenticationToken",
      "Request is missing Authentication Token"),
    E(SQS_INVALID_CLIENT_TOKEN, 403, "InvalidClientTokenId", "InvalidClientTokenId",
      "The security token included in the request is invalid."),
    E(SQS_SIGNATURE_MISMATCH, 403, "SignatureDoesNotMatch", "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. Check"
      " your AWS Secret Access Key and signing method."),
    E(SQS_INCOMPLETE_SIGNATURE, 400, "IncompleteSignature", "IncompleteSignature",
      "The request signature does not conform to AWS standards."),
    E(SQS_REQUEST_EXPIRED, 400, "RequestExpired", "RequestExpired",
      "The request is more than 15 minutes away from the server's time."),
    E(SQS_ACCESS_DENIED, 403, "AccessDenied", "AccessDenied",
      "Access to the resource is denied: the key belongs to another account."),
    E(SQS_SERVICE_UNAVAILABLE, 503, "ServiceUnavailable", "ServiceUnavailable",
      "The request has failed due to a temporary failure of the server."),
    E(SQS_INTERNAL_FAILURE, 500, "InternalFailure", "InternalFailure",
      "The request processing has failed because of an unknown error."),
#undef E
};

enum sqs_error sqs_engine_error(enum eng_status st)
{
    switch (st) {
    case ENG_OK:
        return SQS_OK;
    case ENG_QUEUE_NOT_FOUND:
        return SQS_NON_EXISTENT_QUEUE;
    case ENG_MESSAGE_NOT_FOUND:
    case ENG_RESERVATION_MISMATCH:
    case ENG_RESERVATION_REQUIRED:
        return SQS_RECEIPT_HANDLE_INVALID;
    case ENG_NO_MEMORY:
    case ENG_MEMORY_BUDGET:
    case ENG_STORAGE_UNAVAILABLE:
    case ENG_SHUTTING_DOWN:
        return SQS_SERVICE_UNAVAILABLE;
    default: /* a queue setting the engine refuses (dead-letter loops, push settings...) */
        return SQS_INVALID_PARAMETER_VALUE;
    }
}

/* ---- the call's life ---- */

static void call_free(struct sqs_call *c)
{
    if (c->free_state)
        c->free_state(c->state);
    form_free(&c->params);
    free(c->ops);
    free(c->project);
    free(c->queue);
    jw_free(&c->out.w);
    free(c);
}

static void on_abandon(struct api_request *req)
{
    struct sqs_call *c = req->front;
    for (size_t i = 0; i < c->n_ops; i++)
        eng_cancel(c->api->engine, &c->ops[i]);
    req->front = NULL;
    call_free(c);
}

static void send_answer(struct sqs_call *c, int http)
{
    struct api_request *req = c->req;
    req->reply_type = c->protocol == SQS_JSON ? "application/x-amz-json-1.0" : "text/xml";
    req->reply_id_header = "x-amzn-RequestId";
    snprintf(req->reply_id, sizeof(req->reply_id), "%s", c->request_id);
    req->on_abandon = NULL;
    req->front = NULL;
    size_t len = 0;
    char *text = jw_take(&c->out.w, &len);
    if (!text) {
        static const char oom[] = "";
        text = strdup(oom);
        http = 503;
    }
    call_free(c);
    req->respond(req, http, text, text ? len : 0);
}

void sqs_reply(struct sqs_call *c)
{
    send_answer(c, 200);
}

void sqs_fail(struct sqs_call *c, enum sqs_error err, const char *detail_fmt, ...)
{
    char detail[512], clean[520];
    const char *text = sqs_errors[err].text;
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(detail, sizeof(detail), detail_fmt, ap);
        va_end(ap);
        api_utf8_clean(detail, clean, sizeof(clean)); /* details quote client input */
        text = clean;
    }
    struct jw *w = &c->out.w;
    jw_free(w);
    memset(w, 0, sizeof(*w));
    bool receiver = sqs_errors[err].http >= 500;
    if (c->protocol == SQS_JSON) {
        char type[96];
        snprintf(type, sizeof(type), "com.amazonaws.sqs#%s", sqs_errors[err].type);
        jw_lit(w, "{\"__type\":");
        jw_str(w, type, strlen(type));
        jw_lit(w, ",\"message\":");
        jw_str(w, text, strlen(text));
        jw_lit(w, "}");
        c->req->reply_header_name = "x-amzn-query-error";
        c->req->reply_header_value = sqs_errors[err].header;
    } else {
        jw_lit(w, "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" XMLNS "\"><Error><Type>");
        jw_lit(w, receiver ? "Receiver" : "Sender");
        jw_lit(w, "</Type><Code>");
        jw_lit(w, sqs_errors[err].code);
        jw_lit(w, "</Code><Message>");
        so_xml_escape(w, text, strlen(text));
        jw_lit(w, "</Message><Detail/></Error><RequestId>");
        jw_lit(w, c->request_id);
        jw_lit(w, "</RequestId></ErrorResponse>");
    }
    send_answer(c, sqs_errors[err].http);
}

bool sqs_fail_engine(struct sqs_call *c, enum eng_status st)
{
    enum sqs_error err = sqs_engine_error(st);
    if (err == SQS_NON_EXISTENT_QUEUE || err == SQS_SERVICE_UNAVAILABLE)
        sqs_fail(c, err, NULL);
    else
        sqs_fail(c, err, "%s", api_status_text((int)st));
    return true;
}

bool sqs_failed(struct sqs_call *c, const struct eng_result *res)
{
    return res->status != ENG_OK && sqs_fail_engine(c, res->status);
}

void sqs_on_empty_answer(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    so_begin(c, false);
    so_end(c);
    sqs_reply(c);
}

bool sqs_ops(struct sqs_call *c, size_t n, eng_done_fn done)
{
    free(c->ops);
    c->ops = calloc(n ? n : 1, sizeof(*c->ops));
    c->n_ops = c->ops ? n : 0;
    c->pending = c->n_ops;
    if (!c->ops) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        c->ops[i].done = done;
        c->ops[i].ctx = c;
    }
    return true;
}

/* ---- parameters ---- */

void *sqs_state(struct sqs_call *c, size_t size, void (*free_fn)(void *), bool need_queue)
{
    if (need_queue && !sqs_need_queue(c))
        return NULL;
    void *state = calloc(1, size);
    if (!state) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return NULL;
    }
    c->state = state;
    c->free_state = free_fn;
    return state;
}

const char *sqs_param(const struct sqs_call *c, const char *name)
{
    return form_get(&c->params, name);
}

const char *sqs_paramf(const struct sqs_call *c, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    return form_get(&c->params, name);
}

bool sqs_uint(struct sqs_call *c, const char *name, const char *value, uint32_t min, uint32_t max,
              uint32_t *out, bool *bad)
{
    if (!value)
        return false;
    char *end = NULL;
    unsigned long long v = 0;
    bool digits = value[0] >= '0' && value[0] <= '9';
    if (digits)
        v = strtoull(value, &end, 10);
    if (!digits || *end || v < min || v > max) {
        *bad = true;
        sqs_fail(c, SQS_INVALID_PARAMETER_VALUE,
                 "Value %.64s for parameter %s is invalid. Reason: must be between %u and %u.",
                 value, name, min, max);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* The query protocol's name for a JSON member holding a map or a list (botocore's model:
 * flattened, with these location names), or NULL for a scalar member. */
static const char *flat_name(const char *action, const char *member, bool *is_map, const char **key)
{
    static const struct {
        const char *member, *flat, *key;
        bool map;
    } names[] = {
        {"Attributes", "Attribute", "Name", true},
        {"MessageAttributes", "MessageAttribute", "Name", true},
        {"MessageSystemAttributes", "MessageSystemAttribute", "Name", true},
        {"Tags", "Tag", "Key", true},
        {"tags", "Tag", "Key", true}, /* CreateQueue's own spelling */
        {"AttributeNames", "AttributeName", NULL, false},
        {"MessageAttributeNames", "MessageAttributeName", NULL, false},
        {"MessageSystemAttributeNames", "MessageSystemAttributeName", NULL, false},
        {"TagKeys", "TagKey", NULL, false},
    };
    if (strcmp(member, "Entries") == 0) {
        *is_map = false;
        *key = NULL;
        if (strcmp(action, "SendMessageBatch") == 0)
            return "SendMessageBatchRequestEntry";
        if (strcmp(action, "DeleteMessageBatch") == 0)
            return "DeleteMessageBatchRequestEntry";
        if (strcmp(action, "ChangeMessageVisibilityBatch") == 0)
            return "ChangeMessageVisibilityBatchRequestEntry";
        return "Entry";
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(member, names[i].member) == 0) {
            *is_map = names[i].map;
            *key = names[i].key;
            return names[i].flat;
        }
    return NULL;
}

enum { FLAT_MAX_DEPTH = 6, FLAT_MAX_PARAMS = 4096 };

static int flatten_value(struct form *f, const char *action, const char *name, json_t *v, int depth);

/* The members of a JSON object, each under prefix + member (with lists and maps renamed). */
static int flatten_object(struct form *f, const char *action, const char *prefix, json_t *obj,
                          int depth)
{
    const char *member;
    json_t *v;
    json_object_foreach (obj, member, v) {
        char name[512];
        bool is_map = false;
        const char *key = NULL;
        const char *flat = flat_name(action, member, &is_map, &key);
        if (flat && is_map && json_is_object(v)) {
            size_t i = 0;
            const char *k;
            json_t *item;
            json_object_foreach (v, k, item) {
                i++;
                snprintf(name, sizeof(name), "%s%s.%zu.%s", prefix, flat, i, key);
                if (form_add(f, name, k, strlen(k)) != 0)
                    return -1;
                snprintf(name, sizeof(name), "%s%s.%zu.Value", prefix, flat, i);
                if (flatten_value(f, action, name, item, depth + 1) != 0)
                    return -1;
            }
        } else if (json_is_array(v)) { /* lists: Member.N, or the query protocol's name */
            size_t i;
            json_t *item;
            json_array_foreach (v, i, item) {
                snprintf(name, sizeof(name), "%s%s.%zu", prefix, flat ? flat : member, i + 1);
                if (flatten_value(f, action, name, item, depth + 1) != 0)
                    return -1;
            }
        } else {
            snprintf(name, sizeof(name), "%s%s", prefix, member);
            if (flatten_value(f, action, name, v, depth + 1) != 0)
                return -1;
        }
    }
    return 0;
}

static int flatten_value(struct form *f, const char *action, const char *name, json_t *v, int depth)
{
    char text[32];
    if (depth > FLAT_MAX_DEPTH || f->n > FLAT_MAX_PARAMS)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        char prefix[520];
        snprintf(prefix, sizeof(prefix), "%s.", name);
        return flatten_object(f, action, prefix, v, depth);
    }
    case JSON_STRING:
        return form_add(f, name, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return form_add(f, name, text, strlen(text));
    case JSON_TRUE:
    case JSON_FALSE:
        return form_add(f, name, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
    case JSON_NULL:
        return 0;
    default: /* reals and lists where a scalar belongs: nothing SQS takes */
        return -1;
    }
}

/* ---- who is asking, and where ---- */

static const char *lookup_header(void *ctx, const char *name)
{
    struct api_request *req = ctx;
    return req->header(req, name);
}

/* Decodes %XX of s[0..len) into out (size out_len); false when malformed, too long or
 * holding a NUL. */
static bool decode_segment(const char *s, size_t len, char *out, size_t out_len)
{
    char decoded[3 * 256]; /* each byte of a name that fits out takes at most 3 */
    if (len > sizeof(decoded))
        return false;
    size_t n = form_percent_decode(s, len, decoded, false);
    if (n == SIZE_MAX || n >= out_len || memchr(decoded, '\0', n))
        return false;
    memcpy(out, decoded, n);
    out[n] = '\0';
    return true;
}

/* "/account/queue" (or a whole queue URL): its two names. False when it is not that shape. */
static bool split_queue_path(const char *url, char account[256], char queue[256])
{
    const char *path = url;
    const char *scheme = strstr(url, "://");
    if (scheme)
        path = strchr(scheme + 3, '/');
    if (!path || path[0] != '/')
        return false;
    path++;
    const char *slash = strchr(path, '/');
    if (!slash)
        return false;
    const char *end = slash + 1 + strcspn(slash + 1, "/?");
    if (*end == '/' && end[1] == '\0')
        ; /* a trailing slash */
    else if (*end && *end != '?')
        return false;
    return decode_segment(path, (size_t)(slash - path), account, 256) &&
           decode_segment(slash + 1, (size_t)(end - slash - 1), queue, 256) &&
           api_valid_name(account) && api_valid_name(queue);
}

static enum sqs_error sig_error(enum sig_status st)
{
    switch (st) {
    case SIG_MISSING:
        return SQS_MISSING_AUTHENTICATION;
    case SIG_INCOMPLETE:
        return SQS_INCOMPLETE_SIGNATURE;
    case SIG_EXPIRED:
        return SQS_REQUEST_EXPIRED;
    case SIG_MISMATCH:
        return SQS_SIGNATURE_MISMATCH;
    default:
        return SQS_OK;
    }
}

/* Sets c->project from the credentials (and url_account, the account the request names, or
 * NULL). Dev mode (no v3 token and no SQS key configured) accepts any key or none. */
static enum sqs_error authenticate(struct sqs_call *c, const char *url_account)
{
    const struct api *api = c->api;
    struct api_request *req = c->req;
    struct sig_input in = {.method = req->method,
                           .path = req->path,
                           .query = req->query_string ? req->query_string : "",
                           .body = req->body,
                           .body_len = req->body_len,
                           .header = lookup_header,
                           .header_ctx = req,
                           .params = c->protocol == SQS_QUERY ? &c->params : NULL,
                           .now_s = api->sqs.wall_ms ? api->sqs.wall_ms() / 1000 : 0};
    struct sig_claim claim;
    enum sig_status st = sig_read(&in, &claim);
    bool dev = api->n_tokens == 0 && api->sqs.n_keys == 0;
    const char *project = NULL;
    char from_key[256];
    if (st != SIG_OK && !dev)
        return sig_error(st);
    const char *colon = st == SIG_OK ? strchr(claim.access_key, ':') : NULL;
    if (colon) {
        /* hosted IronMQ's form: the access key is project:token, any secret */
        snprintf(from_key, sizeof(from_key), "%.*s", (int)(colon - claim.access_key), claim.access_key);
        if (!api_valid_name(from_key) || api_check_token(api, colon + 1, from_key) != ENG_OK)
            return SQS_INVALID_CLIENT_TOKEN;
        project = from_key;
    } else if (!dev) {
        const struct api_sqs_key *key = NULL;
        for (size_t i = 0; i < api->sqs.n_keys && !key; i++)
            if (strcmp(api->sqs.keys[i].access_key, claim.access_key) == 0)
                key = &api->sqs.keys[i];
        if (!key)
            return SQS_INVALID_CLIENT_TOKEN;
        if ((st = sig_check(&in, &claim, key->secret)) != SIG_OK)
            return sig_error(st);
        project = key->project;
    }
    if (project && url_account && strcmp(project, url_account) != 0)
        return SQS_ACCESS_DENIED;
    if (!project)
        project = url_account ? url_account : api->sqs.account;
    return (c->project = strdup(project)) ? SQS_OK : SQS_SERVICE_UNAVAILABLE;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    sqs_action_fn fn;
} actions[] = {
    {"CreateQueue", sqs_create_queue},
    {"GetQueueUrl", sqs_get_queue_url},
    {"ListQueues", sqs_list_queues},
    {"GetQueueAttributes", sqs_get_queue_attributes},
    {"SetQueueAttributes", sqs_set_queue_attributes},
    {"DeleteQueue", sqs_delete_queue},
    {"PurgeQueue", sqs_purge_queue},
    {"ListDeadLetterSourceQueues", sqs_list_dead_letter_sources},
    {"ListQueueTags", sqs_list_queue_tags},
    {"TagQueue", sqs_tag_queue},
    {"UntagQueue", sqs_untag_queue},
    {"SendMessage", sqs_send_message},
    {"SendMessageBatch", sqs_send_message_batch},
    {"ReceiveMessage", sqs_receive_message},
    {"DeleteMessage", sqs_delete_message},
    {"DeleteMessageBatch", sqs_delete_message_batch},
    {"ChangeMessageVisibility", sqs_change_visibility},
    {"ChangeMessageVisibilityBatch", sqs_change_visibility_batch},
};

/* SQS actions anvil knows of but does not offer (docs/api.md says why). */
static const char *const unsupported[] = {"AddPermission", "RemovePermission",
                                          "StartMessageMoveTask", "CancelMessageMoveTask",
                                          "ListMessageMoveTasks"};

bool sqs_claims(struct api_request *req)
{
    const char *target = req->header(req, "X-Amz-Target");
    if (target && strncmp(target, "AmazonSQS.", 10) == 0)
        return true;
    /* the query protocol: "/" or "/account/queue" (two segments: no v3 path has them), with
     * an Action in the query string or a form body; the test kit's /admin/load and
     * /admin/reset are two segments too, and curl -d sends its body as a form */
    const char *p = req->path ? req->path : "";
    bool shape = p[0] == '\0' || strcmp(p, "/") == 0;
    if (!shape && p[0] == '/' && strncmp(p, "/3/", 3) != 0 && strncmp(p, "/admin/", 7) != 0) {
        const char *slash = strchr(p + 1, '/');
        shape = slash && slash > p + 1 && slash[1] && !strchr(slash + 1, '/');
    }
    if (!shape)
        return false;
    const char *q = req->query_string;
    const char *type = req->header(req, "Content-Type");
    return (q && (strncmp(q, "Action=", 7) == 0 || strstr(q, "&Action="))) ||
           (type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0);
}

const char *sqs_need_queue(struct sqs_call *c)
{
    if (c->queue)
        return c->queue;
    sqs_fail(c, SQS_MISSING_PARAMETER, "The request must contain the parameter QueueUrl.");
    return NULL; /* c is gone */
}

void sqs_queue_url(const struct sqs_call *c, struct jw *w, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    jw_lit(w, "http://");
    jw_lit(w, c->host);
    const char *parts[2] = {c->project, name};
    for (int k = 0; k < 2; k++) {
        jw_lit(w, "/");
        for (const unsigned char *s = (const unsigned char *)parts[k]; *s; s++) {
            if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                strchr("-_.~", *s)) {
                char ch = (char)*s;
                jw_raw(w, &ch, 1);
            } else {
                char esc[3] = {'%', hex[*s >> 4], hex[*s & 15]};
                jw_raw(w, esc, 3);
            }
        }
    }
}

void sqs_url_item(struct sqs_call *c, const char *name)
{
    struct jw url = {0};
    sqs_queue_url(c, &url, name);
    size_t len = 0;
    char *text = jw_take(&url, &len);
    so_item_text(c, "QueueUrl", text ? text : "");
    free(text);
}

/* The Host the client used, for queue URLs: host[:port] characters only. */
static void set_host(struct sqs_call *c)
{
    const char *host = c->req->header(c->req, "Host");
    size_t n = host ? strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:[]") : 0;
    if (!host || n == 0 || host[n] || n >= sizeof(c->host))
        host = "localhost";
    snprintf(c->host, sizeof(c->host), "%s", host);
}

static bool read_params(struct sqs_call *c)
{
    struct api_request *req = c->req;
    const char *q = req->query_string;
    if (q && form_parse(&c->params, q, strlen(q)) != 0)
        return false;
    if (c->protocol == SQS_JSON) {
        if (req->body_len == 0)
            return true;
        json_error_t jerr;
        json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        bool ok = json_is_object(root) && flatten_object(&c->params, c->action, "", root, 0) == 0;
        json_decref(root);
        return ok;
    }
    /* the query protocol: the form body (any content type but JSON) */
    return req->body_len == 0 || form_parse(&c->params, req->body, req->body_len) == 0;
}

bool sqs_action_known(const char *name)
{
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(name, actions[i].name) == 0)
            return true;
    return false;
}

/* The SQS error an injected HTTP status stands for (the SQS table decides the answer's
 * status): a 403 on a receipt handle is the SQS form of "Reservation timed out". */
static enum sqs_error fault_error(int http, const char *action)
{
    bool on_handle = strncmp(action, "DeleteMessage", 13) == 0 ||
                     strncmp(action, "ChangeMessageVisibility", 23) == 0;
    switch (http) {
    case 503:
        return SQS_SERVICE_UNAVAILABLE;
    case 404:
        return SQS_NON_EXISTENT_QUEUE;
    case 403:
        return on_handle ? SQS_RECEIPT_HANDLE_INVALID : SQS_ACCESS_DENIED;
    case 401:
        return SQS_INVALID_CLIENT_TOKEN;
    default:
        return http >= 500 ? SQS_INTERNAL_FAILURE : SQS_INVALID_PARAMETER_VALUE;
    }
}

/* The test kit's fault rules (api/admin_faults.c), as "sqs:<Action>": true when they
 * answered the call (an injected error) or hold the request (added latency: api_handle()
 * runs it again from the start later, so this call is freed now). */
static bool injected_fault(struct sqs_call *c)
{
    if (!c->api->admin)
        return false;
    char route[80];
    snprintf(route, sizeof(route), "sqs:%.70s", c->action);
    const char *queue = c->queue ? c->queue : sqs_param(c, "QueueName");
    const char *msg;
    int http = admin_fault_check(c->api->admin, c->req, route, c->project, queue, &msg);
    if (http < 0)
        call_free(c); /* the kit owns req->front and req->on_abandon now */
    else if (http > 0)
        sqs_fail(c, fault_error(http, c->action), NULL);
    return http != 0;
}

void sqs_handle(struct api *api, struct api_request *req)
{
    struct sqs_call *c = calloc(1, sizeof(*c));
    if (!c) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    c->api = api;
    c->req = req;
    uint64_t n = ++api->sqs.requests;
    snprintf(c->request_id, sizeof(c->request_id), "%08x-%04x-4%03x-a%03x-%012llx",
             (unsigned)(n * 2654435761u), (unsigned)(n >> 32) & 0xffff, (unsigned)(n >> 48) & 0xfff,
             (unsigned)(n & 0xfff), (unsigned long long)(n & 0xffffffffffffULL));
    req->front = c;
    req->on_abandon = on_abandon;
    const char *target = req->header(req, "X-Amz-Target");
    if (target && strncmp(target, "AmazonSQS.", 10) == 0) {
        c->protocol = SQS_JSON;
        c->action = target + 10;
    }
    c->out.protocol = c->protocol;
    set_host(c);
    if (!read_params(c)) {
        sqs_fail(c, SQS_MALFORMED_REQUEST, NULL);
        return;
    }
    if (c->protocol == SQS_QUERY)
        c->action = sqs_param(c, "Action");
    if (!c->action || !c->action[0]) {
        sqs_fail(c, SQS_MISSING_ACTION, NULL);
        return;
    }
    /* the queue: QueueUrl, else the path */
    char account[256], queue[256];
    const char *url = sqs_param(c, "QueueUrl");
    bool named = false;
    if (url) {
        if (!split_queue_path(url, account, queue)) {
            sqs_fail(c, SQS_INVALID_ADDRESS, "The address %.200s is not valid for this endpoint.", url);
            return;
        }
        named = true;
    } else if (req->path && strcmp(req->path, "/") != 0 && req->path[0]) {
        named = split_queue_path(req->path, account, queue);
        if (!named) {
            sqs_fail(c, SQS_INVALID_ADDRESS, "The address %.200s is not valid for this endpoint.", req->path);
            return;
        }
    }
    const char *owner = sqs_param(c, "QueueOwnerAWSAccountId");
    const char *url_account = named ? account : owner && api_valid_name(owner) ? owner : NULL;
    enum sqs_error auth = authenticate(c, url_account);
    if (auth != SQS_OK) {
        sqs_fail(c, auth, NULL);
        return;
    }
    if (named && !(c->queue = strdup(queue))) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(c->action, actions[i].name) == 0) {
            if (!injected_fault(c))
                actions[i].fn(c);
            return;
        }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (strcmp(c->action, unsupported[i]) == 0) {
            sqs_fail(c, SQS_UNSUPPORTED_OPERATION, "%s is not supported by anvil.", c->action);
            return;
        }
    sqs_fail(c, SQS_INVALID_ACTION, "The action %.100s is not valid for this endpoint.", c->action);
}
