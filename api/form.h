/* api/form.h — application/x-www-form-urlencoded text (an SQS query-protocol request's
 * body or query string) as a list of decoded name/value pairs, in the order sent. */
#ifndef ANVIL_FORM_H
#define ANVIL_FORM_H

#include <stdbool.h>
#include <stddef.h>

struct form_pair {
    char *name, *value;   /* decoded and NUL-terminated (owned by the form) */
    size_t name_len, value_len; /* a value may hold NUL bytes: value_len counts them */
};

struct form {
    struct form_pair *pairs;
    size_t n, cap;
};

/* Decodes the %XX escapes of src[0..len) (and, with plus_is_space, each '+' as a space) into
 * out, which has room for len bytes (the text only shrinks; out may be src itself). Returns
 * the decoded length, or SIZE_MAX on a malformed escape. The result may hold NUL bytes (%00):
 * what they mean is the caller's rule. The one percent-decoder of the fronts: paths, queue
 * URLs and forms. */
size_t form_percent_decode(const char *src, size_t len, char *out, bool plus_is_space);

/* Appends the pairs of `text` to f ('+' is a space, %XX a byte; "a" alone is a="").
 * Returns 0, or -1 on a malformed escape or out of memory (f keeps what it had). */
int form_parse(struct form *f, const char *text, size_t len);
/* Appends a pair, copying name (a C string) and value (value_len bytes). 0, or -1 on no memory. */
int form_add(struct form *f, const char *name, const char *value, size_t value_len);
/* The value of the first pair called name, or NULL. */
const char *form_get(const struct form *f, const char *name);
const struct form_pair *form_find(const struct form *f, const char *name);
void form_free(struct form *f);

#endif
