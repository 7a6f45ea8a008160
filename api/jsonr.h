/* api/jsonr.h — a validating JSON reader for request bodies. One pass checks the whole text
 * (RFC 8259: grammar, escapes, UTF-8, no raw control characters, depth at most 64) and lays
 * it out as a flat array of tokens in document order; each token knows where its subtree
 * ends, so lookups skip what they do not need. Strings are not copied: a string without
 * escapes is used where it lies in the request, one with escapes is decoded on demand.
 * It replaces a tree of allocated nodes per request on the hot paths (a post of 100
 * messages was most of the event loop's time). */
#ifndef ANVIL_JSONR_H
#define ANVIL_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jr_type { JR_OBJECT = 1, JR_ARRAY, JR_STRING, JR_NUMBER, JR_TRUE, JR_FALSE, JR_NULL };

struct jr_token {
    uint8_t type;
    bool escaped;      /* a string holding backslash escapes */
    uint32_t start;    /* strings: after the opening quote; others: the first byte */
    uint32_t len;      /* strings: up to the closing quote (encoded length) */
    uint32_t end;      /* the index of the first token after this one's subtree */
    uint32_t count;    /* objects: members; arrays: elements */
};

struct jr_doc {
    const char *text;
    size_t len;
    struct jr_token *tok;
    uint32_t n, cap;
    char err[96];
};

/* Parses text. Returns 0, or -1 with d->err saying what and where. An empty (all blank)
 * text is an empty object. jr_free() releases the token array either way. */
int jr_parse(struct jr_doc *d, const char *text, size_t len);
void jr_free(struct jr_doc *d);

/* The value of key in object token obj (the last one when a key repeats), or -1. */
int jr_get(const struct jr_doc *d, int obj, const char *key);
/* Children of an array (elements) or an object (keys; the value follows its key): the first
 * child, then the next sibling of a child, each -1 at the end. */
int jr_child(const struct jr_doc *d, int parent);
int jr_sibling(const struct jr_doc *d, int parent, int child);
bool jr_is(const struct jr_doc *d, int idx, enum jr_type type);
/* An integer, or a number with no fraction (1.0, 1e2); false for anything else. */
bool jr_integer(const struct jr_doc *d, int idx, int64_t *out);
/* The decoded length of a string token. */
size_t jr_string_length(const struct jr_doc *d, int idx);
/* Decodes string token idx into out (jr_string_length(idx) + 1 bytes), NUL-terminated;
 * returns the decoded length (the string may itself hold NUL bytes from \u0000). */
size_t jr_string_copy(const struct jr_doc *d, int idx, char *out);
/* The string's bytes: in place when it has no escapes, else decoded into *scratch (a
 * malloc'd buffer the caller frees; NULL when nothing was allocated). NULL when out of memory. */
const char *jr_string(const struct jr_doc *d, int idx, size_t *len, char **scratch);
bool jr_string_equals(const struct jr_doc *d, int idx, const char *text);

#endif
