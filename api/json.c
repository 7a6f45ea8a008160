/* api/json.c — request field checks and the v3 response objects (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

json_t *json_parse_object(struct field_reader *fr, const char *body, size_t len)
{
    size_t start = 0;
    while (start < len && (body[start] == ' ' || body[start] == '\t' || body[start] == '\r' ||
                           body[start] == '\n'))
        start++;
    if (start == len)
        return json_object();
    json_error_t error;
    json_t *root = json_loadb(body + start, len - start, JSON_ALLOW_NUL, &error);
    if (!root) {
        fr_fail(fr, "Invalid JSON in request body: %s (at position %d)", error.text, error.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fr_fail(fr, "Request body must be a JSON object");
        return NULL;
    }
    return root;
}

static json_t *present(json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

/* An integer, or a real with no fraction (some clients encode every number as a double). */
static bool as_integer(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9.0e18 && d <= 9.0e18 && floor(d) == d) {
            *out = (int64_t)d;
            return true;
        }
    }
    return false;
}

static bool read_uint(struct field_reader *fr, json_t *obj, const char *key, uint32_t min,
                      uint32_t max, uint32_t *out, bool zero_absent)
{
    json_t *v = present(obj, key);
    if (!v)
        return false;
    int64_t n;
    if (!as_integer(v, &n)) {
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

bool fr_uint(struct field_reader *fr, json_t *obj, const char *key, uint32_t min, uint32_t max,
             uint32_t *out)
{
    return read_uint(fr, obj, key, min, max, out, false);
}

bool fr_uint_or_zero(struct field_reader *fr, json_t *obj, const char *key, uint32_t min,
                     uint32_t max, uint32_t *out)
{
    return read_uint(fr, obj, key, min, max, out, true);
}

bool fr_bool(struct field_reader *fr, json_t *obj, const char *key, bool *out)
{
    json_t *v = present(obj, key);
    int64_t n;
    if (!v)
        return false;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (as_integer(v, &n) && (n == 0 || n == 1)) {
        *out = n == 1;
        return true;
    }
    fr_fail(fr, "%s%s must be true or false", fr->prefix, key);
    return false;
}

const char *fr_string(struct field_reader *fr, json_t *obj, const char *key, size_t *len)
{
    json_t *v = present(obj, key);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        fr_fail(fr, "%s%s must be a string", fr->prefix, key);
        return NULL;
    }
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

json_t *fr_object(struct field_reader *fr, json_t *obj, const char *key)
{
    json_t *v = present(obj, key);
    if (v && !json_is_object(v)) {
        fr_fail(fr, "%s%s must be an object", fr->prefix, key);
        return NULL;
    }
    return v;
}

json_t *fr_array(struct field_reader *fr, json_t *obj, const char *key)
{
    json_t *v = present(obj, key);
    if (v && !json_is_array(v)) {
        fr_fail(fr, "%s%s must be an array", fr->prefix, key);
        return NULL;
    }
    return v;
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

bool json_message_id(json_t *value, uint64_t *out)
{
    if (json_is_string(value))
        return strlen(json_string_value(value)) == json_string_length(value) &&
               parse_message_id(json_string_value(value), out);
    if (json_is_integer(value) && json_integer_value(value) > 0) {
        *out = (uint64_t)json_integer_value(value);
        return true;
    }
    return false;
}

json_t *json_id_string(uint64_t id)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, id);
    return json_string(text);
}

json_t *json_message(const struct eng_message *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_id_string(m->id));
    json_object_set_new(o, "body", json_stringn_nocheck(m->body->data, m->body->len));
    json_object_set_new(o, "reserved_count", json_integer(m->reserved_count));
    if (m->has_reservation)
        json_object_set_new(o, "reservation_id", json_string(m->reservation_id));
    return o;
}

json_t *json_messages(const struct eng_result *res)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < res->n_messages; i++)
        if (json_array_append_new(list, json_message(&res->messages[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    return list ? json_pack("{s:o}", "messages", list) : NULL;
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
        json_object_set_new(o, "size", json_integer((json_int_t)q->ready + (json_int_t)q->delayed + (json_int_t)q->reserved));
        json_object_set_new(o, "total_messages", json_integer((json_int_t)q->total_messages));
    }
    json_object_set_new(o, "message_timeout", json_integer(q->message_timeout_s));
    json_object_set_new(o, "message_expiration", json_integer(q->message_expiration_s));
    json_object_set_new(o, "type", json_string(queue_type_name(q->type)));
    if (q->dead_letter_queue)
        json_object_set_new(o, "dead_letter",
                            json_pack("{s:s, s:i}", "queue_name", q->dead_letter_queue,
                                      "max_reservations", (int)q->dead_letter_max));
    return json_pack("{s:o}", "queue", o);
}
