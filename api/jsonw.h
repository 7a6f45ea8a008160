/* api/jsonw.h — writing the v3 responses that are sent most (messages, ids, {"msg"}) into
 * one growing buffer, with no intermediate tree. Strings are escaped as JSON requires; the
 * text handed in is UTF-8 already (the engine only stores bodies that were checked). */
#ifndef ANVIL_JSONW_H
#define ANVIL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jw {
    char *buf;
    size_t len, cap;
    bool oom;
};

void jw_raw(struct jw *w, const char *text, size_t len);
void jw_lit(struct jw *w, const char *text);          /* jw_raw of a C string */
void jw_str(struct jw *w, const char *text, size_t len); /* a quoted, escaped string */
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
/* A number with up to three decimals, trailing zeros dropped ("2.5", "0"). */
void jw_num(struct jw *w, double v);
void jw_id(struct jw *w, uint64_t id);                /* a message id: a quoted decimal */
/* An object member's name and colon ("name":), after a comma unless it is the first. The
 * name is written as is: a literal of the caller's, needing no escapes. */
void jw_key(struct jw *w, const char *name, bool first);
/* Hands the text over (NUL-terminated, malloc'd) and resets w; NULL when memory ran out. */
char *jw_take(struct jw *w, size_t *len);
void jw_free(struct jw *w);

#endif
