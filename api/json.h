/* api/json.h — reading request JSON with the checks every handler needs (types, ranges,
 * null as absent) and writing the v3 objects (messages, queues). The first problem found
 * is kept in a field_reader so a handler checks once and answers 400 with that text. */
#ifndef ANVIL_JSON_H
#define ANVIL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"

struct field_reader {
    bool failed;
    char err[200];
    char prefix[40]; /* put before field names in errors, e.g. "messages[3]." */
};

/* Parses a request body; an empty body is an empty object. NULL (with fr->err) when the
 * body is not JSON or not an object. Returns a new reference. */
json_t *json_parse_object(struct field_reader *fr, const char *body, size_t len);
void fr_fail(struct field_reader *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each getter returns true when the field is present (not absent, not null) and valid;
 * a present field of the wrong type or out of range sets fr->failed. */
bool fr_uint(struct field_reader *fr, json_t *obj, const char *key, uint32_t min, uint32_t max,
             uint32_t *out);
/* As fr_uint, but 0 means "not given" (what the Go client sends for unset fields). */
bool fr_uint_or_zero(struct field_reader *fr, json_t *obj, const char *key, uint32_t min,
                     uint32_t max, uint32_t *out);
bool fr_bool(struct field_reader *fr, json_t *obj, const char *key, bool *out);
/* Borrowed from obj; NULL when absent or null. */
const char *fr_string(struct field_reader *fr, json_t *obj, const char *key, size_t *len);
json_t *fr_object(struct field_reader *fr, json_t *obj, const char *key);
json_t *fr_array(struct field_reader *fr, json_t *obj, const char *key);
/* A message id: a string of decimal digits or a non-negative integer. */
bool json_message_id(json_t *value, uint64_t *out);
bool parse_message_id(const char *text, uint64_t *out);
/* Decimal digits only (no sign, no spaces), at most max; false otherwise. */
bool parse_uint_text(const char *text, uint32_t max, uint32_t *out);

json_t *json_id_string(uint64_t id);
json_t *json_message(const struct eng_message *m);
json_t *json_messages(const struct eng_result *res);
json_t *json_queue(const struct eng_queue_info *q, bool with_counts);

#endif
