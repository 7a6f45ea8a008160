/* api/json.c — request field checks and the v3 response objects (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fr_fail(struct field_reader *fr, const char *fmt, ...)
{
    if (fr->failed)
        return; /* keep the first problem */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fr->err, sizeof(fr->err), fmt, ap);
    va_end(ap);
    fr->failed = true;
}

int fr_parse(struct field_reader *fr, const char *body, size_t len)
{
    if (jr_parse(&fr->doc, body, len) != 0) {
        fr_fail(fr, "Invalid JSON in request body: %s", fr->doc.err);
        return -1;
    }
    if (!jr_is(&fr->doc, 0, JR_OBJECT)) {
        fr_fail(fr, "Request body must be a JSON object");
        return -1;
    }
    return 0;
}

void fr_release(struct field_reader *fr)
{
    jr_free(&fr->doc);
    for (size_t i = 0; i < fr->n_scratch; i++)
        free(fr->scratch[i]);
    free(fr->scratch);
    fr->scratch = NULL;
    fr->n_scratch = 0;
}

static char *keep(struct field_reader *fr, char *buf)
{
    char **grown = buf ? realloc(fr->scratch, (fr->n_scratch + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(buf);
        fr_fail(fr, "Server is out of memory");
        return NULL;
    }
    fr->scratch = grown;
    fr->scratch[fr->n_scratch++] = buf;
    return buf;
}

/* The value of key, unless absent or null. */
static int present(const struct field_reader *fr, int obj, const char *key)
{
    int v = obj >= 0 ? jr_get(&fr->doc, obj, key) : -1;
    return v >= 0 && !jr_is(&fr->doc, v, JR_NULL) ? v : -1;
}

static bool read_uint(struct field_reader *fr, int obj, const char *key, uint32_t min,
                      uint32_t max, uint32_t *out, bool zero_absent)
{
    int v = present(fr, obj, key);
    if (v < 0)
        return false;
    int64_t n;
    if (!jr_integer(&fr->doc, v, &n)) {
        fr_fail(fr, "%s%s must be an integer", fr->prefix, key);
        return false;
    }
    if (zero_absent && n == 0)
        return false;
    if (n < (int64_t)min || n > (int64_t)max) {
        fr_fail(fr, "%s%s must be from %" PRIu32 " to %" PRIu32, fr->prefix, key, min, max);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

bool fr_uint(struct field_reader *fr, int obj, const char *key, uint32_t min, uint32_t max,
             uint32_t *out)
{
    return read_uint(fr, obj, key, min, max, out, false);
}

bool fr_uint_or_zero(struct field_reader *fr, int obj, const char *key, uint32_t min,
                     uint32_t max, uint32_t *out)
{
    return read_uint(fr, obj, key, min, max, out, true);
}

bool fr_bool(struct field_reader *fr, int obj, const char *key, bool *out)
{
    int v = present(fr, obj, key);
    int64_t n;
    if (v < 0)
        return false;
    if (jr_is(&fr->doc, v, JR_TRUE) || jr_is(&fr->doc, v, JR_FALSE)) {
        *out = jr_is(&fr->doc, v, JR_TRUE);
        return true;
    }
    if (jr_integer(&fr->doc, v, &n) && (n == 0 || n == 1)) {
        *out = n == 1;
        return true;
    }
    fr_fail(fr, "%s%s must be true or false", fr->prefix, key);
    return false;
}

const char *fr_text(struct field_reader *fr, int obj, const char *key, size_t *len)
{
    int v = present(fr, obj, key);
    if (v < 0)
        return NULL;
    if (!jr_is(&fr->doc, v, JR_STRING)) {
        fr_fail(fr, "%s%s must be a string", fr->prefix, key);
        return NULL;
    }
    char *scratch;
    const char *text = jr_string(&fr->doc, v, len, &scratch);
    if (scratch && !keep(fr, scratch))
        return NULL;
    if (!text)
        fr_fail(fr, "Server is out of memory");
    return text;
}

const char *fr_cstring(struct field_reader *fr, int obj, const char *key)
{
    size_t len;
    const char *text = fr_text(fr, obj, key, &len);
    if (!text)
        return NULL;
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return keep(fr, copy);
}

static int typed(struct field_reader *fr, int obj, const char *key, enum jr_type type,
                 const char *what)
{
    int v = present(fr, obj, key);
    if (v >= 0 && !jr_is(&fr->doc, v, type)) {
        fr_fail(fr, "%s%s must be %s", fr->prefix, key, what);
        return -1;
    }
    return v;
}

int fr_object(struct field_reader *fr, int obj, const char *key)
{
    return typed(fr, obj, key, JR_OBJECT, "an object");
}

int fr_array(struct field_reader *fr, int obj, const char *key)
{
    return typed(fr, obj, key, JR_ARRAY, "an array");
}

bool parse_message_id(const char *text, uint64_t *out)
{
    uint64_t id = 0;
    size_t i = 0;
    for (; text[i]; i++) {
        if (text[i] < '0' || text[i] > '9' || i >= 20)
            return false;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (id > (UINT64_MAX - digit) / 10)
            return false;
        id = id * 10 + digit;
    }
    if (i == 0 || id == 0)
        return false;
    *out = id;
    return true;
}

bool parse_uint_text(const char *text, uint32_t max, uint32_t *out)
{
    uint64_t n = 0;
    if (!*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > max)
            return false;
    }
    *out = (uint32_t)n;
    return true;
}

bool fr_message_id(const struct field_reader *fr, int idx, uint64_t *out)
{
    const struct jr_doc *d = &fr->doc;
    if (jr_is(d, idx, JR_STRING)) {
        char digits[24];
        return jr_string_length(d, idx) < sizeof(digits) && jr_string_copy(d, idx, digits) &&
               strlen(digits) == jr_string_length(d, idx) && parse_message_id(digits, out);
    }
    int64_t n;
    if (jr_is(d, idx, JR_NUMBER) && jr_integer(d, idx, &n) && n > 0) {
        *out = (uint64_t)n;
        return true;
    }
    return false;
}

/* ---- answers ---- */

void json_write_message(struct jw *w, const struct eng_message *m)
{
    jw_lit(w, "{");
    json_write_message_fields(w, m);
    jw_lit(w, "}");
}

void json_write_message_fields(struct jw *w, const struct eng_message *m)
{
    jw_lit(w, "\"id\":");
    jw_id(w, m->id);
    jw_lit(w, ",\"body\":");
    jw_str(w, m->body->data, m->body->len);
    jw_lit(w, ",\"reserved_count\":");
    jw_u64(w, m->reserved_count);
    if (m->has_reservation) {
        jw_lit(w, ",\"reservation_id\":\"");
        jw_lit(w, m->reservation_id);
        jw_lit(w, "\"");
    }
}

void json_write_messages(struct jw *w, const struct eng_result *res)
{
    jw_lit(w, "{\"messages\":[");
    for (size_t i = 0; i < res->n_messages; i++) {
        if (i)
            jw_lit(w, ",");
        json_write_message(w, &res->messages[i]);
    }
    jw_lit(w, "]}");
}

json_t *json_queue(const struct eng_queue_info *q, bool with_counts)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(q->id));
    json_object_set_new(o, "project_id", json_string(q->project));
    json_object_set_new(o, "name", json_string(q->name));
    if (with_counts) {
        json_object_set_new(o, "size", json_integer((json_int_t)q->ready + (json_int_t)q->delayed +
                                                    (json_int_t)q->reserved + (json_int_t)q->pushing));
        json_object_set_new(o, "total_messages", json_integer((json_int_t)q->total_messages));
    }
    json_object_set_new(o, "message_timeout", json_integer(q->message_timeout_s));
    json_object_set_new(o, "message_expiration", json_integer(q->message_expiration_s));
    json_object_set_new(o, "type", json_string(queue_type_name(q->type)));
    if (q->dead_letter_queue)
        json_object_set_new(o, "dead_letter",
                            json_pack("{s:s, s:i}", "queue_name", q->dead_letter_queue,
                                      "max_reservations", (int)q->dead_letter_max));
    if (q->type != QUEUE_PULL)
        json_object_set_new(o, "push", json_push(&q->push));
    return json_pack("{s:o}", "queue", o);
}

/* RFC 3339 UTC with milliseconds. */
static void jw_time(struct jw *w, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[40];
    gmtime_r(&secs, &tm);
    size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, sizeof(text) - n, ".%03dZ", (int)(ms % 1000));
    jw_str(w, text, strlen(text));
}

void json_write_push_status(struct jw *w, const struct eng_push_status *s)
{
    jw_lit(w, "{\"name\":");
    jw_str(w, s->name, strlen(s->name));
    jw_lit(w, ",\"url\":");
    jw_str(w, s->url, strlen(s->url));
    jw_lit(w, ",\"status_code\":");
    if (s->status_code > 0)
        jw_u64(w, (uint64_t)s->status_code);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"status\":");
    jw_str(w, s->word, strlen(s->word));
    jw_lit(w, ",\"tries\":");
    jw_u64(w, s->tries);
    jw_lit(w, ",\"retries_remaining\":");
    jw_u64(w, s->retries_remaining);
    if (s->last_try_at_ms) {
        jw_lit(w, ",\"last_try_at\":");
        jw_time(w, s->last_try_at_ms);
    }
    if (s->reservation_id[0]) {
        jw_lit(w, ",\"reservation_id\":");
        jw_str(w, s->reservation_id, strlen(s->reservation_id));
    }
    jw_lit(w, "}");
}

json_t *json_push(const struct eng_push_info *p)
{
    json_t *subs = json_array();
    for (uint32_t i = 0; subs && i < p->n_subscribers; i++) {
        const struct eng_subscriber *s = &p->subscribers[i];
        json_t *sub = json_pack("{s:s, s:s}", "name", s->name, "url", s->url);
        if (sub && s->n_headers) {
            json_t *headers = json_object();
            for (uint32_t h = 0; headers && h < s->n_headers; h++)
                json_object_set_new(headers, s->headers[h].name, json_string(s->headers[h].value));
            json_object_set_new(sub, "headers", headers);
        }
        json_array_append_new(subs, sub);
    }
    json_t *o = json_pack("{s:o?, s:i, s:i}", "subscribers", subs, "retries", (int)p->retries,
                          "retries_delay", (int)p->retries_delay_s);
    if (o && p->error_queue)
        json_object_set_new(o, "error_queue", json_string(p->error_queue));
    return o;
}

const char *fr_token_cstring(struct field_reader *fr, int idx)
{
    if (idx < 0 || !jr_is(&fr->doc, idx, JR_STRING))
        return NULL;
    size_t len = jr_string_length(&fr->doc, idx);
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    if (jr_string_copy(&fr->doc, idx, copy) != strlen(copy)) { /* holds a NUL byte */
        free(copy);
        return NULL;
    }
    return keep(fr, copy);
}
