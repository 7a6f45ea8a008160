/* api/sqs_messages.c — SQS message actions: SendMessage(Batch), ReceiveMessage,
 * DeleteMessage(Batch), ChangeMessageVisibility(Batch). A message's MessageId is its IronMQ
 * id; its ReceiptHandle is "<id>-<reservation id>", so a message is the same message in
 * both APIs: reserved through one, deleted through the other. */
#include "sqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "json.h"
#include "status.h"

/* ---- receipt handles ---- */

static void write_handle(char *out, size_t len, uint64_t id, const char *reservation_id)
{
    snprintf(out, len, "%llu-%s", (unsigned long long)id, reservation_id);
}

static bool parse_handle(const char *h, uint64_t *id, char rid[RESERVATION_ID_HEX + 1])
{
    const char *dash = h ? strrchr(h, '-') : NULL;
    char digits[24];
    if (!dash || dash == h || (size_t)(dash - h) >= sizeof(digits) ||
        strlen(dash + 1) != RESERVATION_ID_HEX)
        return false;
    for (const char *p = dash + 1; *p; p++)
        if (ids_hex_value(*p) < 0)
            return false;
    memcpy(digits, h, (size_t)(dash - h));
    digits[dash - h] = '\0';
    if (!parse_message_id(digits, id))
        return false;
    memcpy(rid, dash + 1, RESERVATION_ID_HEX + 1);
    return true;
}

/* ---- batches: entry ids ---- */

struct entry {
    const char *id;
    enum sqs_error error;    /* SQS_OK, or why this entry failed */
    char message[320];
    /* SendMessageBatch */
    const char *body;
    size_t body_len;
    uint32_t delay_s;
    bool has_delay;
    struct sqs_attrs attrs;
    uint64_t msg_id;
    /* Delete / ChangeMessageVisibility */
    uint64_t handle_id;
    char rid[RESERVATION_ID_HEX + 1];
    uint32_t timeout_s;
};

struct batch {
    size_t n;
    struct entry e[SQS_BATCH_MAX];
    struct sqs_attrs single_attrs;
};

static void batch_free(void *p)
{
    struct batch *b = p;
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        sqs_attrs_free(&b->e[i].attrs);
    free(b);
}

static bool valid_entry_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SQS_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

/* Reads `kind`.N.Id of a batch into a new c->state; NULL when answered with an error. */
static struct batch *read_batch(struct sqs_call *c, const char *kind)
{
    struct batch *b = sqs_state(c, sizeof(*b), batch_free, true);
    if (!b)
        return NULL;
    for (size_t i = 1;; i++) {
        const char *id = sqs_paramf(c, "%s.%zu.Id", kind, i);
        if (!id)
            break;
        if (b->n == SQS_BATCH_MAX) {
            sqs_fail(c, SQS_TOO_MANY_ENTRIES, NULL);
            return NULL;
        }
        if (!valid_entry_id(id)) {
            sqs_fail(c, SQS_INVALID_BATCH_ENTRY_ID, NULL);
            return NULL;
        }
        for (size_t k = 0; k < b->n; k++)
            if (strcmp(b->e[k].id, id) == 0) {
                sqs_fail(c, SQS_BATCH_IDS_NOT_DISTINCT, "Id %s repeated.", id);
                return NULL;
            }
        b->e[b->n++].id = id;
    }
    if (b->n == 0) {
        sqs_fail(c, SQS_EMPTY_BATCH, NULL);
        return NULL;
    }
    return b;
}

static const char *const error_codes[SQS_ERROR_COUNT] = {
    [SQS_INVALID_PARAMETER_VALUE] = "InvalidParameterValue",
    [SQS_MISSING_PARAMETER] = "MissingParameter",
    [SQS_RECEIPT_HANDLE_INVALID] = "ReceiptHandleIsInvalid",
    [SQS_MESSAGE_NOT_INFLIGHT] = "AWS.SimpleQueueService.MessageNotInflight",
    [SQS_INVALID_MESSAGE_CONTENTS] = "InvalidMessageContents",
    [SQS_SERVICE_UNAVAILABLE] = "ServiceUnavailable",
};

static void entry_fail(struct entry *e, enum sqs_error err, const char *message)
{
    e->error = err;
    snprintf(e->message, sizeof(e->message), "%s", message);
}

/* The Failed list of a batch answer. */
static void write_failed(struct sqs_call *c, const struct batch *b)
{
    bool any = false;
    for (size_t i = 0; i < b->n; i++) {
        const struct entry *e = &b->e[i];
        if (e->error == SQS_OK)
            continue;
        if (!any)
            so_list_begin(c, "Failed");
        any = true;
        so_item_begin(c, "BatchResultErrorEntry");
        so_text(c, "Id", e->id);
        so_bool(c, "SenderFault", e->error != SQS_SERVICE_UNAVAILABLE);
        so_text(c, "Code", error_codes[e->error] ? error_codes[e->error] : "InvalidParameterValue");
        so_text(c, "Message", e->message);
        so_item_end(c, "BatchResultErrorEntry");
    }
    if (any)
        so_list_end(c);
    else if (c->protocol == SQS_JSON) { /* the JSON shape has both lists, even empty */
        so_list_begin(c, "Failed");
        so_list_end(c);
    }
}

/* ---- SendMessage, SendMessageBatch ---- */

/* Reads one message (prefix "" or "SendMessageBatchRequestEntry.N.") into e; false with
 * e->error set when it is not valid. */
static bool read_message(struct sqs_call *c, const char *prefix, struct entry *e)
{
    char err[300];
    const struct form_pair *body = NULL;
    char name[96];
    snprintf(name, sizeof(name), "%sMessageBody", prefix);
    body = form_find(&c->params, name);
    if (!body) {
        entry_fail(e, SQS_MISSING_PARAMETER, "The request must contain the parameter MessageBody.");
        return false;
    }
    if (body->value_len == 0) {
        entry_fail(e, SQS_INVALID_PARAMETER_VALUE, "The message body must be at least one character.");
        return false;
    }
    if (!sqs_valid_body(body->value, body->value_len)) {
        entry_fail(e, SQS_INVALID_MESSAGE_CONTENTS,
                   "Invalid binary character in the message body: only #x9 | #xA | #xD | #x20 to"
                   " #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF are allowed.");
        return false;
    }
    e->body = body->value;
    e->body_len = body->value_len;
    const char *delay = sqs_paramf(c, "%sDelaySeconds", prefix);
    if (delay) {
        char *end = NULL;
        unsigned long v = delay[0] >= '0' && delay[0] <= '9' ? strtoul(delay, &end, 10) : 0;
        if (!end || *end || v > SQS_DELAY_MAX_S) {
            entry_fail(e, SQS_INVALID_PARAMETER_VALUE,
                       "Value for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.");
            return false;
        }
        e->has_delay = true;
        e->delay_s = (uint32_t)v;
    }
    if (!sqs_attrs_read(c, prefix, &e->attrs, err, sizeof(err))) {
        entry_fail(e, SQS_INVALID_PARAMETER_VALUE, err);
        return false;
    }
    return true;
}

static void write_sent(struct sqs_call *c, const struct entry *e, bool batch)
{
    char md5[DG_MD5_HEX], id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)e->msg_id);
    if (batch)
        so_text(c, "Id", e->id);
    so_text(c, "MessageId", id);
    dg_md5_hex(e->body, e->body_len, md5);
    so_text(c, "MD5OfMessageBody", md5);
    if (sqs_attrs_md5(c, e->attrs.data, e->attrs.len, NULL, md5))
        so_text(c, "MD5OfMessageAttributes", md5);
}

static void on_sent(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct batch *b = c->state;
    if (sqs_failed(c, res))
        return;
    bool batch = strcmp(c->action, "SendMessageBatch") == 0;
    size_t k = 0;
    for (size_t i = 0; i < b->n && k < res->n_ids; i++)
        if (b->e[i].error == SQS_OK)
            b->e[i].msg_id = res->ids[k++];
    so_begin(c, true);
    if (!batch) {
        write_sent(c, &b->e[0], false);
    } else {
        so_list_begin(c, "Successful");
        for (size_t i = 0; i < b->n; i++)
            if (b->e[i].error == SQS_OK) {
                so_item_begin(c, "SendMessageBatchResultEntry");
                write_sent(c, &b->e[i], true);
                so_item_end(c, "SendMessageBatchResultEntry");
            }
        so_list_end(c);
        write_failed(c, b);
    }
    so_end(c);
    sqs_reply(c);
}

/* The queue is known to exist: its DelaySeconds and MaximumMessageSize apply. */
static void on_send_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct batch *b = c->state;
    if (sqs_failed(c, res))
        return;
    uint32_t max_size = sqs_queue_number(&res->queue, "MaximumMessageSize");
    uint32_t delay = sqs_queue_number(&res->queue, "DelaySeconds");
    bool batch = strcmp(c->action, "SendMessageBatch") == 0;
    struct eng_post_msg msgs[SQS_BATCH_MAX];
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->e[i];
        if (e->error != SQS_OK)
            continue;
        if (e->body_len + e->attrs.size > max_size) {
            char text[160];
            snprintf(text, sizeof(text), "One or more parameters are invalid. Reason: Message must be"
                     " shorter than %u bytes.", max_size);
            if (!batch) {
                sqs_fail(c, SQS_INVALID_PARAMETER_VALUE, "%s", text);
                return;
            }
            entry_fail(e, SQS_INVALID_PARAMETER_VALUE, text);
            continue;
        }
        msgs[n++] = (struct eng_post_msg){.body = e->body,
                                          .body_len = e->body_len,
                                          .delay_s = e->has_delay ? e->delay_s : delay,
                                          .attributes = e->attrs.data,
                                          .attributes_len = e->attrs.len};
    }
    if (n == 0) { /* every entry failed: nothing to post */
        struct eng_result none = {.status = ENG_OK};
        on_sent(&c->ops[1], &none);
        return;
    }
    eng_post_existing(c->api->engine, &c->ops[1], c->project, c->queue, msgs, n);
}

static void start_send(struct sqs_call *c)
{
    if (sqs_ops(c, 2, on_send_looked_up)) {
        c->ops[1].done = on_sent;
        eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
    }
}

void sqs_send_message(struct sqs_call *c)
{
    struct batch *b = sqs_state(c, sizeof(*b), batch_free, true);
    if (!b)
        return;
    b->n = 1;
    if (!read_message(c, "", &b->e[0])) {
        sqs_fail(c, b->e[0].error, "%s", b->e[0].message);
        return;
    }
    start_send(c);
}

void sqs_send_message_batch(struct sqs_call *c)
{
    struct batch *b = read_batch(c, "SendMessageBatchRequestEntry");
    if (!b)
        return;
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "SendMessageBatchRequestEntry.%zu.", i + 1);
        if (read_message(c, prefix, &b->e[i]))
            total += b->e[i].body_len + b->e[i].attrs.size;
    }
    if (total > SQS_MESSAGE_SIZE_MAX) {
        sqs_fail(c, SQS_BATCH_TOO_LONG, "Batch requested results in a total message size of %zu"
                 " bytes; the limit is 262144.", total);
        return;
    }
    start_send(c);
}

/* ---- ReceiveMessage ---- */

struct receive {
    struct eng_reserve_args args;
    bool has_wait;
};

/* Is name among the values of list.N (or "All"/".*", or a "prefix.*" that matches)? */
static bool listed(const struct sqs_call *c, const char *list, const char *name, bool prefixes)
{
    for (size_t i = 0;; i++) {
        const char *v = i ? sqs_paramf(c, "%s.%zu", list, i) : sqs_param(c, list);
        if (!v && i)
            return false;
        if (!v)
            continue;
        if (strcmp(v, "All") == 0 || strcmp(v, name) == 0 || (prefixes && strcmp(v, ".*") == 0))
            return true;
        size_t n = strlen(v);
        if (prefixes && n > 2 && strcmp(v + n - 2, ".*") == 0 && strncmp(v, name, n - 1) == 0)
            return true;
    }
}

static bool attr_wanted(const struct sqs_call *c, const char *name)
{
    return listed(c, "MessageAttributeName", name, true);
}

static bool system_wanted(const struct sqs_call *c, const char *name)
{
    return listed(c, "AttributeName", name, false) || listed(c, "MessageSystemAttributeName", name, false);
}

static void write_message(struct sqs_call *c, const struct eng_message *m)
{
    char id[24], handle[64], md5[DG_MD5_HEX], num[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)m->id);
    write_handle(handle, sizeof(handle), m->id, m->reservation_id);
    so_item_begin(c, "Message");
    so_text(c, "MessageId", id);
    so_text(c, "ReceiptHandle", handle);
    dg_md5_hex(m->body->data, m->body->len, md5);
    so_text(c, "MD5OfBody", md5);
    so_string(c, "Body", m->body->data, m->body->len);
    static const char *const system[] = {"SenderId", "SentTimestamp", "ApproximateReceiveCount",
                                         "ApproximateFirstReceiveTimestamp"};
    bool any = false;
    for (size_t k = 0; k < sizeof(system) / sizeof(system[0]); k++) {
        if (!system_wanted(c, system[k]) || (k == 3 && !m->first_reserved_at_ms))
            continue;
        if (!any)
            so_map_begin(c, "Attributes");
        any = true;
        if (k == 0)
            snprintf(num, sizeof(num), "%.23s", c->project);
        else if (k == 1)
            snprintf(num, sizeof(num), "%lld", (long long)m->created_at_ms);
        else if (k == 2)
            snprintf(num, sizeof(num), "%u", m->reserved_count);
        else
            snprintf(num, sizeof(num), "%lld", (long long)m->first_reserved_at_ms);
        so_map_text(c, "Attribute", system[k], k == 0 ? c->project : num);
    }
    if (any)
        so_map_end(c);
    const char *attrs = m->attributes ? m->attributes->data : NULL;
    size_t attrs_len = m->attributes ? m->attributes->len : 0;
    if (sqs_attrs_md5(c, attrs, attrs_len, attr_wanted, md5)) {
        so_text(c, "MD5OfMessageAttributes", md5);
        sqs_attrs_write(c, attrs, attrs_len, attr_wanted);
    }
    so_item_end(c, "Message");
}

static void on_received(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    so_begin(c, true);
    if (res->n_messages) {
        so_list_begin(c, "Messages");
        for (size_t i = 0; i < res->n_messages; i++)
            write_message(c, &res->messages[i]);
        so_list_end(c);
    }
    so_end(c);
    sqs_reply(c);
}

static void on_receive_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct receive *r = c->state;
    if (sqs_failed(c, res))
        return;
    r->args.wait_s = sqs_queue_number(&res->queue, "ReceiveMessageWaitTimeSeconds");
    eng_reserve(c->api->engine, &c->ops[1], c->project, c->queue, &r->args);
}

void sqs_receive_message(struct sqs_call *c)
{
    struct receive *r = sqs_state(c, sizeof(*r), free, true);
    if (!r)
        return;
    /* a failed sqs_uint() has answered and freed c (and r): check before touching them */
    bool bad = false, exact, has_wait;
    uint32_t n = 1, timeout_s = 0, wait_s = 0;
    (void)sqs_uint(c, "MaxNumberOfMessages", sqs_param(c, "MaxNumberOfMessages"), 1, SQS_BATCH_MAX,
                   &n, &bad);
    if (bad)
        return;
    exact = sqs_uint(c, "VisibilityTimeout", sqs_param(c, "VisibilityTimeout"), 0,
                     SQS_VISIBILITY_MAX_S, &timeout_s, &bad);
    if (bad)
        return;
    has_wait = sqs_uint(c, "WaitTimeSeconds", sqs_param(c, "WaitTimeSeconds"), 0, SQS_WAIT_MAX_S,
                        &wait_s, &bad);
    if (bad)
        return;
    r->args = (struct eng_reserve_args){.n = n, .timeout_s = timeout_s, .exact_timeout = exact,
                                        .wait_s = wait_s};
    r->has_wait = has_wait;
    if (!sqs_ops(c, 2, on_receive_looked_up))
        return;
    c->ops[1].done = on_received;
    c->req->long_poll = !r->has_wait || r->args.wait_s > 0;
    if (r->has_wait)
        eng_reserve(c->api->engine, &c->ops[1], c->project, c->queue, &r->args);
    else
        eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
}

/* ---- DeleteMessage, ChangeMessageVisibility and their batches ---- */

/* What a delete or visibility change of one entry came to. */
static void settle_entry(struct sqs_call *c, struct entry *e, enum eng_status st, bool deleting)
{
    switch (st) {
    case ENG_OK:
        break;
    case ENG_MESSAGE_NOT_FOUND:
    case ENG_RESERVATION_MISMATCH:
        /* SQS: deleting with a stale handle succeeds without deleting (the message is
         * gone, or was received again and has a newer handle) */
        if (!deleting)
            entry_fail(e, st == ENG_RESERVATION_MISMATCH ? SQS_MESSAGE_NOT_INFLIGHT
                                                          : SQS_INVALID_PARAMETER_VALUE,
                       st == ENG_RESERVATION_MISMATCH
                           ? "Message is not in flight: its visibility timeout ended, or it was"
                             " received again with a newer receipt handle."
                           : "Value for parameter ReceiptHandle is invalid. Reason: Message does not"
                             " exist or is not available for visibility timeout change.");
        break;
    default:
        entry_fail(e, sqs_engine_error(st), api_status_text((int)st));
    }
    (void)c;
}

static void on_entry_done(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct batch *b = c->state;
    size_t i = (size_t)(op - c->ops);
    bool deleting = strncmp(c->action, "Delete", 6) == 0;
    bool batch = strstr(c->action, "Batch") != NULL;
    if (res->status == ENG_QUEUE_NOT_FOUND) {
        b->e[i].error = SQS_NON_EXISTENT_QUEUE;
    } else {
        settle_entry(c, &b->e[i], res->status, deleting);
    }
    if (--c->pending > 0)
        return;
    for (size_t k = 0; k < b->n; k++)
        if (b->e[k].error == SQS_NON_EXISTENT_QUEUE) {
            sqs_fail(c, SQS_NON_EXISTENT_QUEUE, NULL);
            return;
        }
    if (!batch) {
        if (b->e[0].error != SQS_OK) {
            sqs_fail(c, b->e[0].error, "%s", b->e[0].message);
            return;
        }
        so_begin(c, false);
        so_end(c);
        sqs_reply(c);
        return;
    }
    const char *item = deleting ? "DeleteMessageBatchResultEntry" : "ChangeMessageVisibilityBatchResultEntry";
    so_begin(c, true);
    so_list_begin(c, "Successful");
    for (size_t k = 0; k < b->n; k++)
        if (b->e[k].error == SQS_OK) {
            so_item_begin(c, item);
            so_text(c, "Id", b->e[k].id);
            so_item_end(c, item);
        }
    so_list_end(c);
    write_failed(c, b);
    so_end(c);
    sqs_reply(c);
}

/* Reads entry i's handle (and timeout when changing visibility); false and e->error set. */
static bool read_handle_entry(struct sqs_call *c, const char *prefix, struct entry *e, bool timeout)
{
    char name[96];
    snprintf(name, sizeof(name), "%sReceiptHandle", prefix);
    const char *handle = sqs_param(c, name);
    if (!handle) {
        entry_fail(e, SQS_MISSING_PARAMETER, "The request must contain the parameter ReceiptHandle.");
        return false;
    }
    if (!parse_handle(handle, &e->handle_id, e->rid)) {
        entry_fail(e, SQS_RECEIPT_HANDLE_INVALID, "The input receipt handle is invalid.");
        return false;
    }
    if (!timeout)
        return true;
    snprintf(name, sizeof(name), "%sVisibilityTimeout", prefix);
    const char *v = sqs_param(c, name);
    char *end = NULL;
    unsigned long t = v && v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;
    if (!v) {
        entry_fail(e, SQS_MISSING_PARAMETER, "The request must contain the parameter VisibilityTimeout.");
        return false;
    }
    if (!end || *end || t > SQS_VISIBILITY_MAX_S) {
        entry_fail(e, SQS_INVALID_PARAMETER_VALUE,
                   "Value for parameter VisibilityTimeout is invalid. Reason: must be between 0 and 43200.");
        return false;
    }
    e->timeout_s = (uint32_t)t;
    return true;
}

/* Starts one engine call per valid entry; entries already failed count as done. */
static void start_entries(struct sqs_call *c, struct batch *b, bool deleting)
{
    if (!sqs_ops(c, b->n, on_entry_done))
        return;
    size_t started = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->e[i].error != SQS_OK)
            c->pending--;
    if (c->pending == 0) { /* nothing to do: answer through the same path */
        c->pending = 1;
        struct eng_result none = {.status = ENG_OK};
        on_entry_done(&c->ops[0], &none);
        return;
    }
    size_t todo = c->pending;
    for (size_t i = 0; started < todo && i < b->n; i++) {
        struct entry *e = &b->e[i];
        if (e->error != SQS_OK)
            continue;
        started++;
        /* the last call may answer (and free c) at once: read nothing of c after it */
        if (deleting)
            eng_delete(c->api->engine, &c->ops[i], c->project, c->queue, e->handle_id, e->rid, NULL);
        else
            eng_change_visibility(c->api->engine, &c->ops[i], c->project, c->queue, e->handle_id,
                                  e->rid, e->timeout_s);
    }
}

static void handle_batch(struct sqs_call *c, const char *kind, bool deleting)
{
    struct batch *b = read_batch(c, kind);
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        char prefix[80];
        snprintf(prefix, sizeof(prefix), "%s.%zu.", kind, i + 1);
        (void)read_handle_entry(c, prefix, &b->e[i], !deleting);
    }
    start_entries(c, b, deleting);
}

static void handle_one(struct sqs_call *c, bool deleting)
{
    struct batch *b = sqs_state(c, sizeof(*b), batch_free, true);
    if (!b)
        return;
    b->n = 1;
    b->e[0].id = "";
    if (!read_handle_entry(c, "", &b->e[0], !deleting)) {
        sqs_fail(c, b->e[0].error, "%s", b->e[0].message);
        return;
    }
    start_entries(c, b, deleting);
}

void sqs_delete_message(struct sqs_call *c)
{
    handle_one(c, true);
}

void sqs_delete_message_batch(struct sqs_call *c)
{
    handle_batch(c, "DeleteMessageBatchRequestEntry", true);
}

void sqs_change_visibility(struct sqs_call *c)
{
    handle_one(c, false);
}

void sqs_change_visibility_batch(struct sqs_call *c)
{
    handle_batch(c, "ChangeMessageVisibilityBatchRequestEntry", false);
}
