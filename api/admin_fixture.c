/* api/admin_fixture.c — the test kit's fixture format (see admin_fixture.h): reading a JSON
 * fixture into a struct eng_fixture with the v3 rules (queue settings go through the same
 * reader as PUT /queues/{q}, push headers through the post's), and writing one back out.
 *   {"projects": {"P": {"queues": {"Q": {<queue settings>, "messages": [{"body": ...}]}}}}}
 * Errors name the field by its path ("projects.P.queues.Q: messages[2].delay must be ...").
 * Unknown fields are refused, so a typo in a hand-written fixture does not pass silently. */
#include "admin_fixture.h"
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t MS_MAX = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */

/* ---- small readers ---- */

/* Refuses any member of obj whose name is not in allowed (NULL-terminated). */
static void only_fields(struct field_reader *fr, int obj, const char *const *allowed)
{
    const struct jr_doc *d = &fr->doc;
    for (int k = jr_child(d, obj); k >= 0 && !fr->failed; k = jr_sibling(d, obj, k)) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = jr_string_equals(d, k, allowed[i]);
        if (known)
            continue;
        char name[64] = "(a long name)";
        if (jr_string_length(d, k) < sizeof(name))
            jr_string_copy(d, k, name);
        fr_fail(fr, "%s%s is not a fixture field (known: %s", fr->prefix, name, allowed[0]);
        for (size_t i = 1; allowed[i]; i++) {
            size_t used = strlen(fr->err);
            snprintf(fr->err + used, sizeof(fr->err) - used, ", %s", allowed[i]);
        }
        size_t used = strlen(fr->err);
        snprintf(fr->err + used, sizeof(fr->err) - used, ")");
    }
}

/* A present, non-null member, or -1. */
static int member(const struct field_reader *fr, int obj, const char *key)
{
    int v = jr_get(&fr->doc, obj, key);
    return v >= 0 && !jr_is(&fr->doc, v, JR_NULL) ? v : -1;
}

/* An absolute time in ms since 1970. */
static bool read_ms(struct field_reader *fr, int obj, const char *key, int64_t *out)
{
    int v = member(fr, obj, key);
    int64_t n;
    if (v < 0)
        return false;
    if (!jr_integer(&fr->doc, v, &n) || n <= 0 || n > MS_MAX) {
        fr_fail(fr, "%s%s must be a time in milliseconds since 1970 (a positive integer)",
                fr->prefix, key);
        return false;
    }
    *out = n;
    return true;
}

/* An opaque attribute string of a front (the SQS front's), base64 in the document. */
static struct blob *read_base64(struct field_reader *fr, int obj, const char *key)
{
    size_t len = 0;
    const char *text = fr_text(fr, obj, key, &len);
    if (!text)
        return NULL;
    unsigned char *raw = len % 4 == 0 && len <= INT32_MAX ? malloc(len / 4 * 3 + 1) : NULL;
    int n = raw ? EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len) : -1;
    for (size_t i = len; n > 0 && i > 0 && text[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding as bytes */
    struct blob *b = n > 0 ? blob_new(raw, (size_t)n) : NULL;
    free(raw);
    if (!b)
        fr_fail(fr, "%s%s must be base64 (as an export writes it), not empty", fr->prefix, key);
    return b;
}

static struct blob *copy_text(struct field_reader *fr, const char *text, size_t len)
{
    struct blob *b = blob_new(text, len);
    if (!b)
        fr_fail(fr, "Server is out of memory");
    return b;
}

/* Appends ": <what went wrong>" to a location, in place of fr's error. */
static void locate(struct field_reader *fr, const char *where)
{
    if (!fr->failed || !where[0])
        return;
    char text[sizeof(fr->err) + 200];
    snprintf(text, sizeof(text), "%.180s: %s", where, fr->err);
    size_t n = strlen(text) < sizeof(fr->err) ? strlen(text) : sizeof(fr->err) - 1;
    memcpy(fr->err, text, n); /* cut short: a long error keeps its start, which says where */
    fr->err[n] = '\0';
}

/* ---- messages ---- */

static const char *const message_fields[] = {
    "body", "id", "state", "delay", "reserved_for", "reservation_id", "reserved_count",
    "visible_at_ms", "created_at_ms", "expires_at_ms", "expires_in", "first_reserved_at_ms",
    "ready_at_front", "push_headers", "sqs_attributes", NULL};

/* The state a message is in: given, else what its fields imply. */
static void read_state(struct field_reader *fr, int m, bool delayed, bool reserving,
                       bool has_visible, enum eng_fixture_state *out)
{
    const char *state = fr_cstring(fr, m, "state");
    *out = reserving ? FIXTURE_RESERVED : delayed ? FIXTURE_DELAYED : FIXTURE_READY;
    if (!state) {
        if (has_visible && *out == FIXTURE_READY)
            fr_fail(fr, "%svisible_at_ms needs a state: delayed or reserved", fr->prefix);
        return;
    }
    if (strcmp(state, "ready") == 0)
        *out = FIXTURE_READY;
    else if (strcmp(state, "delayed") == 0)
        *out = FIXTURE_DELAYED;
    else if (strcmp(state, "reserved") == 0)
        *out = FIXTURE_RESERVED;
    else
        fr_fail(fr, "%sstate must be ready, delayed or reserved", fr->prefix);
}

/* The message the prefix names ("messages[3]"), for errors about it rather than a field. */
static const char *subject(const struct field_reader *fr, char *buf, size_t len)
{
    snprintf(buf, len, "%s", fr->prefix);
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '.')
        buf[n - 1] = '\0';
    return buf;
}

/* state, delay, reserved_for, reservation_id, visible_at_ms: one consistent story. */
static void read_visibility(struct field_reader *fr, int m, struct eng_fixture_message *out)
{
    char who[sizeof(fr->prefix)];
    uint32_t delay = 0, reserved_for = 0;
    bool has_delay = fr_uint(fr, m, "delay", 0, DELAY_MAX_S, &delay) && delay > 0;
    bool has_for = fr_uint(fr, m, "reserved_for", 1, TIMEOUT_MAX_S, &reserved_for);
    size_t rid_len = 0;
    const char *rid = fr_text(fr, m, "reservation_id", &rid_len);
    bool has_visible = read_ms(fr, m, "visible_at_ms", &out->visible_at_ms);
    read_state(fr, m, has_delay, has_for || rid, has_visible, &out->state);
    if (fr->failed)
        return;
    if (out->state == FIXTURE_READY && (has_delay || has_for || rid || has_visible))
        fr_fail(fr, "%s: a ready message has no delay, reserved_for, reservation_id or visible_at_ms",
                subject(fr, who, sizeof(who)));
    else if (out->state == FIXTURE_DELAYED && (has_for || rid))
        fr_fail(fr, "%s: a delayed message has no reserved_for or reservation_id",
                subject(fr, who, sizeof(who)));
    else if (out->state == FIXTURE_DELAYED && has_delay == has_visible)
        fr_fail(fr, "%s: a delayed message needs one of delay (seconds from now) or visible_at_ms",
                subject(fr, who, sizeof(who)));
    else if (out->state == FIXTURE_RESERVED && has_delay)
        fr_fail(fr, "%s: a reserved message has no delay: reserved_for says how long it stays"
                    " reserved", subject(fr, who, sizeof(who)));
    else if (out->state == FIXTURE_RESERVED && has_for && has_visible)
        fr_fail(fr, "%s: give one of reserved_for or visible_at_ms, not both",
                subject(fr, who, sizeof(who)));
    else if (rid && !(out->has_reservation_id = ids_unhex(rid, rid_len, out->reservation,
                                                           sizeof(out->reservation))))
        fr_fail(fr, "%sreservation_id must be %d hex digits", fr->prefix, RESERVATION_ID_HEX);
    out->visible_in_ms = (int64_t)(out->state == FIXTURE_DELAYED ? delay : reserved_for) * 1000;
}

static void read_times(struct field_reader *fr, int m, struct eng_fixture_message *out)
{
    uint32_t expires_in = 0;
    bool has_in = fr_uint(fr, m, "expires_in", 1, EXPIRATION_MAX_S, &expires_in);
    bool has_at = read_ms(fr, m, "expires_at_ms", &out->expires_at_ms);
    if (has_in && has_at)
        fr_fail(fr, "%sexpires_in: give one of expires_in or expires_at_ms, not both", fr->prefix);
    out->expires_in_ms = (int64_t)expires_in * 1000;
    read_ms(fr, m, "created_at_ms", &out->created_at_ms);
    read_ms(fr, m, "first_reserved_at_ms", &out->first_reserved_at_ms);
    fr_bool(fr, m, "ready_at_front", &out->ready_at_front);
}

static void read_message(struct field_reader *fr, const struct api *api, int m, size_t i,
                         struct eng_fixture_message *out)
{
    if (!jr_is(&fr->doc, m, JR_OBJECT)) {
        fr_fail(fr, "messages[%zu] must be an object {\"body\": \"...\"}", i);
        return;
    }
    only_fields(fr, m, message_fields);
    size_t len = 0;
    const char *body = fr_text(fr, m, "body", &len);
    if (!fr->failed && (!body || len == 0))
        fr_fail(fr, "%sbody is required: a non-empty string", fr->prefix);
    else if (!fr->failed && len > api->limits.max_message_size)
        fr_fail(fr, "%sbody is %zu bytes, more than the limit of %zu", fr->prefix, len,
                api->limits.max_message_size);
    if (!fr->failed)
        out->body = copy_text(fr, body, len);
    int id = member(fr, m, "id");
    if (id >= 0 && !fr_message_id(fr, id, &out->id))
        fr_fail(fr, "%sid must be a message id: a string of digits such as \"123\"", fr->prefix);
    read_visibility(fr, m, out);
    out->reserved_count = out->state == FIXTURE_RESERVED;
    fr_uint(fr, m, "reserved_count", 0, UINT32_MAX, &out->reserved_count);
    read_times(fr, m, out);
    char *headers = NULL;
    size_t headers_len = 0;
    v3_read_push_headers(fr, m, &headers, &headers_len);
    if (headers && !fr->failed)
        out->push_headers = copy_text(fr, headers, headers_len);
    free(headers);
    if (member(fr, m, "sqs_attributes") >= 0 && !fr->failed)
        out->attributes = read_base64(fr, m, "sqs_attributes");
}

static void read_messages(struct field_reader *fr, const struct api *api, int q,
                          struct eng_fixture_queue *out, size_t *total)
{
    int list = fr_array(fr, q, "messages");
    if (list < 0)
        return;
    size_t n = fr->doc.tok[list].count;
    if (n > FIXTURE_MESSAGES_MAX - *total) {
        fr_fail(fr, "a fixture holds at most %d messages", FIXTURE_MESSAGES_MAX);
        return;
    }
    *total += n;
    if (n && !(out->messages = calloc(n, sizeof(*out->messages)))) {
        fr_fail(fr, "Server is out of memory");
        return;
    }
    size_t i = 0;
    for (int m = jr_child(&fr->doc, list); m >= 0 && !fr->failed;
         m = jr_sibling(&fr->doc, list, m), i++) {
        snprintf(fr->prefix, sizeof(fr->prefix), "messages[%zu].", i);
        read_message(fr, api, m, i, &out->messages[i]);
        out->n_messages = i + 1;
    }
    fr->prefix[0] = '\0';
}

/* ---- queues ---- */

static const char *const queue_fields[] = {
    "type", "message_timeout", "message_expiration", "push", "dead_letter", "messages", "id",
    "created_at_ms", "total_messages", "sqs_attributes", "name", "project_id", "size", NULL};

static char *dup_or_fail(struct field_reader *fr, const char *s)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        fr_fail(fr, "Server is out of memory");
    return copy;
}

static void copy_subscribers(struct field_reader *fr, const struct eng_push_config *pc,
                             struct eng_push_info *out)
{
    if (!pc->n_subscribers)
        return;
    if (!(out->subscribers = calloc(pc->n_subscribers, sizeof(*out->subscribers)))) {
        fr_fail(fr, "Server is out of memory");
        return;
    }
    out->n_subscribers = pc->n_subscribers;
    for (uint32_t i = 0; i < pc->n_subscribers && !fr->failed; i++) {
        const struct eng_subscriber *from = &pc->subscribers[i];
        struct eng_subscriber *to = &out->subscribers[i];
        to->name = dup_or_fail(fr, from->name);
        to->url = dup_or_fail(fr, from->url);
        if (from->n_headers && !(to->headers = calloc(from->n_headers, sizeof(*to->headers)))) {
            fr_fail(fr, "Server is out of memory");
            return;
        }
        for (uint32_t h = 0; h < from->n_headers && !fr->failed; h++) {
            to->headers[h].name = dup_or_fail(fr, from->headers[h].name);
            to->headers[h].value = dup_or_fail(fr, from->headers[h].value);
            to->n_headers = h + 1;
        }
    }
}

/* The settings as a queue would report them after a create with cfg. */
static void settings_from_config(struct field_reader *fr, const struct eng_queue_config *cfg,
                                 struct eng_queue_info *out)
{
    out->type = cfg->has_type ? cfg->type : cfg->has_push ? QUEUE_MULTICAST : QUEUE_PULL;
    if (out->type == QUEUE_PULL && cfg->has_push) {
        fr_fail(fr, "%s", api_status_text(ENG_PUSH_ON_PULL));
        return;
    }
    if (cfg->has_dead_letter_max && !cfg->has_dead_letter_queue) {
        fr_fail(fr, "%s", api_status_text(ENG_DEAD_LETTER_NAME));
        return;
    }
    out->message_timeout_s = cfg->has_message_timeout ? cfg->message_timeout_s : QUEUE_DEFAULT_TIMEOUT_S;
    out->message_expiration_s =
        cfg->has_message_expiration ? cfg->message_expiration_s : QUEUE_DEFAULT_EXPIRATION_S;
    if (cfg->has_dead_letter_queue && cfg->dead_letter_queue[0]) {
        out->dead_letter_queue = dup_or_fail(fr, cfg->dead_letter_queue);
        out->dead_letter_max = cfg->has_dead_letter_max ? cfg->dead_letter_max : DEAD_LETTER_DEFAULT_MAX;
    }
    const struct eng_push_config *pc = &cfg->push;
    out->push.retries = pc->has_retries ? pc->retries : PUSH_RETRIES_DEFAULT;
    out->push.retries_delay_s = pc->has_retries_delay ? pc->retries_delay_s : PUSH_RETRIES_DELAY_DEFAULT_S;
    if (pc->has_error_queue && pc->error_queue[0])
        out->push.error_queue = dup_or_fail(fr, pc->error_queue);
    copy_subscribers(fr, pc, &out->push);
}

/* id, created_at_ms, total_messages and sqs_attributes: what an export adds to the settings. */
static void read_queue_extras(struct field_reader *fr, int q, struct eng_queue_info *out)
{
    size_t len = 0;
    const char *id = fr_text(fr, q, "id", &len);
    uint8_t raw[QUEUE_ID_HEX / 2];
    if (id && !ids_unhex(id, len, raw, sizeof(raw)))
        fr_fail(fr, "id must be a queue id: %d hex digits", QUEUE_ID_HEX);
    else if (id)
        ids_hex(raw, sizeof(raw), out->id);
    read_ms(fr, q, "created_at_ms", &out->created_at_ms);
    int total = member(fr, q, "total_messages");
    int64_t n = 0;
    if (total >= 0 && (!jr_integer(&fr->doc, total, &n) || n < 0))
        fr_fail(fr, "total_messages must be an integer of 0 or more");
    out->total_messages = (uint64_t)n;
    if (member(fr, q, "sqs_attributes") >= 0 && !fr->failed)
        out->attributes = read_base64(fr, q, "sqs_attributes");
}

static void read_queue(struct field_reader *fr, const struct api *api, const char *project,
                       const char *name, int q, struct eng_fixture_queue *out, size_t *total)
{
    if (!jr_is(&fr->doc, q, JR_OBJECT)) {
        fr_fail(fr, "must be an object of queue settings and \"messages\"");
        return;
    }
    only_fields(fr, q, queue_fields);
    struct eng_queue_config cfg;
    struct eng_subscriber *subs = NULL;
    struct route rt = {.project = project, .queue = name};
    memset(&cfg, 0, sizeof(cfg));
    if (!fr->failed)
        v3_read_queue_settings(fr, q, &cfg, &subs, api, &rt);
    if (!fr->failed && !(out->info.name = strdup(name)))
        fr_fail(fr, "Server is out of memory");
    if (!fr->failed)
        settings_from_config(fr, &cfg, &out->info);
    v3_free_subscribers(subs, cfg.push.n_subscribers);
    if (!fr->failed)
        read_queue_extras(fr, q, &out->info);
    if (!fr->failed)
        read_messages(fr, api, q, out, total);
}

/* ---- projects ---- */

static const char *const root_fields[] = {"projects", NULL};
static const char *const project_fields[] = {"queues", NULL};

/* The name of member k of an object (a valid project or queue name), or NULL (fr failed). */
static const char *member_name(struct field_reader *fr, int k, const char *what)
{
    const char *name = fr_token_cstring(fr, k);
    if (!fr->failed && (!name || !api_valid_name(name)))
        fr_fail(fr, "%s \"%.40s\" is not a valid name: 1 to 255 bytes of UTF-8 without control"
                    " characters or /", what, name ? name : "");
    return fr->failed ? NULL : name;
}

static void read_project(struct field_reader *fr, const struct api *api, const char *name, int p,
                         struct eng_fixture_project *out, size_t *total)
{
    char where[sizeof(fr->prefix)];
    snprintf(where, sizeof(where), "projects.%.40s", name);
    if (!(out->name = strdup(name))) {
        fr_fail(fr, "Server is out of memory");
        return;
    }
    if (!jr_is(&fr->doc, p, JR_OBJECT))
        fr_fail(fr, "must be an object {\"queues\": {...}}");
    else
        only_fields(fr, p, project_fields);
    int queues = fr->failed ? -1 : fr_object(fr, p, "queues");
    locate(fr, where);
    size_t n = queues >= 0 ? fr->doc.tok[queues].count : 0;
    if (n && !(out->queues = calloc(n, sizeof(*out->queues)))) {
        fr_fail(fr, "Server is out of memory");
        return;
    }
    for (int k = queues >= 0 && out->queues ? jr_child(&fr->doc, queues) : -1; k >= 0 && !fr->failed;
         k = jr_sibling(&fr->doc, queues, k)) {
        const char *queue = member_name(fr, k, "queue");
        locate(fr, where);
        if (!queue)
            break;
        char qwhere[sizeof(fr->prefix) + 64];
        snprintf(qwhere, sizeof(qwhere), "%s.queues.%.40s", where, queue);
        read_queue(fr, api, name, queue, (int)fr->doc.tok[k].end, &out->queues[out->n_queues++],
                   total);
        locate(fr, qwhere);
    }
}

/* A JSON error's byte offset also as a line and column, for hand-written files. */
static void at_line_column(const char *text, size_t len, size_t offset, char *err, size_t err_len)
{
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < len; i++, column++)
        if (text[i] == '\n') {
            line++;
            column = 0;
        }
    size_t used = strlen(err);
    snprintf(err + used, err_len - used, " (line %zu, column %zu)", line, column);
}

int fixture_read(const struct api *api, const char *text, size_t len, struct eng_fixture *fx,
                 char *err, size_t err_len)
{
    struct field_reader fr = {0};
    size_t total = 0;
    if (fr_parse(&fr, text, len) == 0) {
        only_fields(&fr, 0, root_fields);
        int projects = fr.failed ? -1 : fr_object(&fr, 0, "projects");
        if (!fr.failed && projects < 0)
            fr_fail(&fr, "projects is required: {\"projects\": {\"PROJECT\": {\"queues\": {...}}}}");
        size_t n = projects >= 0 ? fr.doc.tok[projects].count : 0;
        if (n && !(fx->projects = calloc(n, sizeof(*fx->projects))))
            fr_fail(&fr, "Server is out of memory");
        for (int k = projects >= 0 && fx->projects ? jr_child(&fr.doc, projects) : -1;
             k >= 0 && !fr.failed; k = jr_sibling(&fr.doc, projects, k)) {
            const char *name = member_name(&fr, k, "project");
            if (name)
                read_project(&fr, api, name, (int)fr.doc.tok[k].end,
                             &fx->projects[fx->n_projects++], &total);
        }
    }
    const char *at = strstr(fr.err, " at byte ");
    if (at && strncmp(fr.err, "Invalid JSON", 12) == 0)
        at_line_column(text, len, (size_t)strtoull(at + 9, NULL, 10), fr.err, sizeof(fr.err));
    snprintf(err, err_len, "%s", fr.err);
    bool failed = fr.failed;
    fr_release(&fr);
    return failed ? -1 : 0;
}

/* ---- writing ---- */

static json_t *base64_json(const struct blob *b)
{
    if (b->len > INT32_MAX / 2)
        return NULL;
    char *text = malloc((size_t)b->len / 3 * 4 + 8);
    if (!text)
        return NULL;
    EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)b->data, (int)b->len);
    json_t *s = json_string(text);
    free(text);
    return s;
}

/* name\0value\0 pairs as {"name": "value"}. */
static json_t *headers_json(const struct blob *b)
{
    json_t *o = json_object();
    for (size_t at = 0; o && at < b->len;) {
        const char *name = b->data + at;
        const char *value = name + strlen(name) + 1;
        if ((size_t)(value - b->data) >= b->len)
            break;
        json_object_set_new(o, name, json_string(value));
        at = (size_t)(value - b->data) + strlen(value) + 1;
    }
    return o;
}

static const char *state_name(enum eng_fixture_state st)
{
    return st == FIXTURE_DELAYED ? "delayed" : st == FIXTURE_RESERVED ? "reserved" : "ready";
}

static json_t *message_json(const struct eng_fixture_message *m)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, m->id);
    json_t *o = json_pack("{s:s, s:s%, s:s, s:I, s:I, s:I}", "id", id, "body", m->body->data,
                          (size_t)m->body->len, "state", state_name(m->state), "reserved_count",
                          (json_int_t)m->reserved_count, "created_at_ms",
                          (json_int_t)m->created_at_ms, "expires_at_ms", (json_int_t)m->expires_at_ms);
    if (!o)
        return NULL;
    if (m->state != FIXTURE_READY)
        json_object_set_new(o, "visible_at_ms", json_integer(m->visible_at_ms));
    if (m->has_reservation_id) {
        char rid[RESERVATION_ID_HEX + 1];
        ids_hex(m->reservation, RESERVATION_ID_BYTES, rid);
        json_object_set_new(o, "reservation_id", json_string(rid));
    }
    if (m->first_reserved_at_ms)
        json_object_set_new(o, "first_reserved_at_ms", json_integer(m->first_reserved_at_ms));
    if (m->ready_at_front)
        json_object_set_new(o, "ready_at_front", json_true());
    if (m->push_headers)
        json_object_set_new(o, "push_headers", headers_json(m->push_headers));
    if (m->attributes)
        json_object_set_new(o, "sqs_attributes", base64_json(m->attributes));
    return o;
}

/* The queue's settings as GET /3/.../queues/{q} shows them, with what restores it exactly. */
static json_t *queue_json(const struct eng_fixture_queue *fq)
{
    json_t *wrapped = json_queue(&fq->info, false);
    json_t *o = wrapped ? json_incref(json_object_get(wrapped, "queue")) : NULL;
    json_decref(wrapped);
    json_t *messages = json_array();
    if (!o || !messages) {
        json_decref(o);
        json_decref(messages);
        return NULL;
    }
    json_object_del(o, "project_id");
    json_object_del(o, "name");
    json_object_set_new(o, "created_at_ms", json_integer(fq->info.created_at_ms));
    json_object_set_new(o, "total_messages", json_integer((json_int_t)fq->info.total_messages));
    if (fq->info.attributes)
        json_object_set_new(o, "sqs_attributes", base64_json(fq->info.attributes));
    for (size_t i = 0; i < fq->n_messages; i++) {
        json_t *m = message_json(&fq->messages[i]);
        if (!m || json_array_append_new(messages, m) != 0) {
            json_decref(messages);
            json_decref(o);
            return NULL;
        }
    }
    json_object_set_new(o, "messages", messages);
    return o;
}

void *fixture_json(const struct eng_fixture *fx)
{
    json_t *projects = json_object();
    for (size_t p = 0; projects && p < fx->n_projects; p++) {
        const struct eng_fixture_project *fp = &fx->projects[p];
        json_t *queues = json_object();
        for (size_t q = 0; queues && q < fp->n_queues; q++) {
            json_t *one = queue_json(&fp->queues[q]);
            if (!one || json_object_set_new(queues, fp->queues[q].info.name, one) != 0) {
                json_decref(queues);
                queues = NULL;
            }
        }
        if (!queues || json_object_set_new(projects, fp->name, json_pack("{s:o}", "queues", queues))) {
            json_decref(projects);
            projects = NULL;
        }
    }
    return projects ? json_pack("{s:o}", "projects", projects) : NULL;
}

void fixture_where_text(const struct eng_fixture *fx, const struct eng_fixture_where *w,
                        char *out, size_t len)
{
    out[0] = '\0';
    if (w->project >= fx->n_projects)
        return;
    const struct eng_fixture_project *fp = &fx->projects[w->project];
    int n = snprintf(out, len, "projects.%.40s", fp->name ? fp->name : "");
    if (w->queue >= fp->n_queues || n < 0 || (size_t)n >= len)
        return;
    const struct eng_fixture_queue *fq = &fp->queues[w->queue];
    int more = snprintf(out + n, len - (size_t)n, ".queues.%.40s",
                        fq->info.name ? fq->info.name : "");
    size_t used = (size_t)n + (size_t)(more < 0 ? 0 : more);
    if (more < 0 || used >= len || w->message >= fq->n_messages)
        return;
    snprintf(out + used, len - used, ".messages[%zu]", w->message);
}
