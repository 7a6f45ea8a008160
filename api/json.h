/* api/json.h — reading request fields with the checks every handler needs (types, ranges,
 * null as absent) on top of the JSON reader, and writing the v3 objects. The first problem
 * found is kept in the field_reader, so a handler checks once and answers 400 with it.
 * Hot answers (messages, ids) are written straight into a buffer; the queue object, rare,
 * is built with jansson. */
#ifndef ANVIL_JSON_H
#define ANVIL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "jsonr.h"
#include "jsonw.h"

struct field_reader {
    bool failed;
    char err[320];
    char prefix[128]; /* put before field names in errors, e.g. "messages[3]." */
    struct jr_doc doc;
    char **scratch;  /* decoded strings, freed by fr_release() */
    size_t n_scratch;
};

/* Parses a request body (an empty one is an empty object). Returns the root object's token,
 * or -1 with fr->err when the body is not JSON or not an object. Always call fr_release(). */
int fr_parse(struct field_reader *fr, const char *body, size_t len);
void fr_release(struct field_reader *fr);
void fr_fail(struct field_reader *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Field getters. obj is an object token (or -1: nothing is present). Each returns true /
 * a token / text when the field is present (not absent, not null) and valid; a present field
 * of the wrong type or out of range sets fr->failed. */
bool fr_uint(struct field_reader *fr, int obj, const char *key, uint32_t min, uint32_t max,
             uint32_t *out);
/* As fr_uint, but 0 means "not given" (what the Go client sends for unset fields). */
bool fr_uint_or_zero(struct field_reader *fr, int obj, const char *key, uint32_t min,
                     uint32_t max, uint32_t *out);
bool fr_bool(struct field_reader *fr, int obj, const char *key, bool *out);
/* A string as bytes and length (not NUL-terminated; it may hold NUL bytes), valid until
 * fr_release(). */
const char *fr_text(struct field_reader *fr, int obj, const char *key, size_t *len);
/* A string as a C string (a copy, valid until fr_release()). */
const char *fr_cstring(struct field_reader *fr, int obj, const char *key);
int fr_object(struct field_reader *fr, int obj, const char *key);
int fr_array(struct field_reader *fr, int obj, const char *key);
/* A message id: a string of decimal digits or a positive integer. */
bool fr_message_id(const struct field_reader *fr, int idx, uint64_t *out);

bool parse_message_id(const char *text, uint64_t *out);
/* Decimal digits only (no sign, no spaces), at most max; false otherwise. */
bool parse_uint_text(const char *text, uint32_t max, uint32_t *out);

void json_write_message(struct jw *w, const struct eng_message *m);
/* The same without the braces: id, body, reserved_count, reservation_id when reserved. */
void json_write_message_fields(struct jw *w, const struct eng_message *m);
void json_write_messages(struct jw *w, const struct eng_result *res);
json_t *json_queue(const struct eng_queue_info *q, bool with_counts);
json_t *json_push(const struct eng_push_info *p);
void json_write_push_status(struct jw *w, const struct eng_push_status *s);
/* String token idx as a C string (a copy, valid until fr_release()); NULL when it is not a
 * string or holds a NUL byte. */
const char *fr_token_cstring(struct field_reader *fr, int idx);

#endif
