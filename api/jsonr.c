/* api/jsonr.c — the validating JSON reader (see jsonr.h). Recursive descent over the text,
 * tokens appended to one growing array; errors say what was wrong and at which byte. */
#include "jsonr.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64 };

struct parser {
    struct jr_doc *d;
    const char *p, *end;
    int depth;
};

static int fail(struct parser *ps, const char *what)
{
    if (!ps->d->err[0])
        snprintf(ps->d->err, sizeof(ps->d->err), "%s at byte %zu", what,
                 (size_t)(ps->p - ps->d->text));
    return -1;
}

static void skip_blank(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int add(struct parser *ps, enum jr_type type, const char *start)
{
    struct jr_doc *d = ps->d;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        struct jr_token *grown = realloc(d->tok, cap * sizeof(*grown));
        if (!grown)
            return fail(ps, "out of memory");
        d->tok = grown;
        d->cap = cap;
    }
    struct jr_token *t = &d->tok[d->n];
    memset(t, 0, sizeof(*t));
    t->type = (uint8_t)type;
    t->start = (uint32_t)(start - d->text);
    t->end = d->n + 1;
    return (int)d->n++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

static int parse_string(struct parser *ps)
{
    const char *open = ps->p++; /* the quote */
    int idx = add(ps, JR_STRING, ps->p);
    if (idx < 0)
        return -1;
    bool escaped = false;
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            struct jr_token *t = &ps->d->tok[idx];
            t->len = (uint32_t)(ps->p - (open + 1));
            t->escaped = escaped;
            ps->p++;
            return idx;
        }
        if (c < 0x20)
            return fail(ps, "control character in a string");
        if (c == '\\') {
            escaped = true;
            if (ps->end - ps->p < 2)
                break;
            char e = ps->p[1];
            if (strchr("\"\\/bfnrt", e) && e) {
                ps->p += 2;
                continue;
            }
            if (e != 'u' || ps->end - ps->p < 6)
                return fail(ps, "invalid escape");
            int u = hex4(ps->p + 2);
            if (u < 0)
                return fail(ps, "invalid \\u escape");
            ps->p += 6;
            if (u >= 0xdc00 && u <= 0xdfff)
                return fail(ps, "lone low surrogate");
            if (u >= 0xd800 && u <= 0xdbff) {
                int low = ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' ? hex4(ps->p + 2) : -1;
                if (low < 0xdc00 || low > 0xdfff)
                    return fail(ps, "high surrogate without its low half");
                ps->p += 6;
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
        if (!n)
            return fail(ps, "invalid UTF-8");
        ps->p += n;
    }
    return fail(ps, "unterminated string");
}

static int parse_number(struct parser *ps)
{
    const char *start = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail(ps, "invalid number");
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    int idx = add(ps, JR_NUMBER, start);
    if (idx >= 0)
        ps->d->tok[idx].len = (uint32_t)(ps->p - start);
    return idx;
}

static int parse_literal(struct parser *ps, const char *word, enum jr_type type)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "invalid literal");
    int idx = add(ps, type, ps->p);
    ps->p += n;
    return idx;
}

static int parse_value(struct parser *ps);

static int parse_container(struct parser *ps, bool object)
{
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, "nested too deep");
    int idx = add(ps, object ? JR_OBJECT : JR_ARRAY, ps->p);
    if (idx < 0)
        return -1;
    char close = object ? '}' : ']';
    ps->p++;
    skip_blank(ps);
    uint32_t count = 0;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            skip_blank(ps);
            if (object) {
                if (ps->p >= ps->end || *ps->p != '"')
                    return fail(ps, "expected a string key");
                if (parse_string(ps) < 0)
                    return -1;
                skip_blank(ps);
                if (ps->p >= ps->end || *ps->p != ':')
                    return fail(ps, "expected ':'");
                ps->p++;
            }
            if (parse_value(ps) < 0)
                return -1;
            count++;
            skip_blank(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                break;
            }
            return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    ps->depth--;
    ps->d->tok[idx].count = count;
    ps->d->tok[idx].end = ps->d->n;
    return idx;
}

static int parse_value(struct parser *ps)
{
    skip_blank(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of text");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"':
        return parse_string(ps);
    case 't':
        return parse_literal(ps, "true", JR_TRUE);
    case 'f':
        return parse_literal(ps, "false", JR_FALSE);
    case 'n':
        return parse_literal(ps, "null", JR_NULL);
    default:
        return parse_number(ps);
    }
}

int jr_parse(struct jr_doc *d, const char *text, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->text = text;
    d->len = len;
    struct parser ps = {.d = d, .p = text, .end = text + len};
    if (len > UINT32_MAX)
        return fail(&ps, "text too long");
    skip_blank(&ps);
    if (ps.p == ps.end) { /* nothing at all: an empty object */
        static const char empty[] = "{}";
        struct parser e = {.d = d, .p = empty, .end = empty + 2};
        d->text = empty;
        d->len = 2;
        return parse_value(&e) < 0 ? -1 : 0;
    }
    if (parse_value(&ps) < 0)
        return -1;
    skip_blank(&ps);
    if (ps.p != ps.end)
        return fail(&ps, "text after the value");
    return 0;
}

void jr_free(struct jr_doc *d)
{
    free(d->tok);
    d->tok = NULL;
    d->n = d->cap = 0;
}

bool jr_is(const struct jr_doc *d, int idx, enum jr_type type)
{
    return idx >= 0 && (uint32_t)idx < d->n && d->tok[idx].type == type;
}

int jr_child(const struct jr_doc *d, int parent)
{
    if (!jr_is(d, parent, JR_OBJECT) && !jr_is(d, parent, JR_ARRAY))
        return -1;
    return d->tok[parent].count ? parent + 1 : -1;
}

int jr_sibling(const struct jr_doc *d, int parent, int child)
{
    uint32_t next = d->tok[child].end;
    if (d->tok[parent].type == JR_OBJECT) /* a key: skip its value too */
        next = d->tok[next].end;
    return next < d->tok[parent].end ? (int)next : -1;
}

bool jr_string_equals(const struct jr_doc *d, int idx, const char *text)
{
    if (!jr_is(d, idx, JR_STRING))
        return false;
    const struct jr_token *t = &d->tok[idx];
    size_t n = strlen(text);
    if (!t->escaped)
        return t->len == n && memcmp(d->text + t->start, text, n) == 0;
    if (jr_string_length(d, idx) != n)
        return false;
    char *copy = malloc(n + 1);
    bool same = copy && jr_string_copy(d, idx, copy) == n && memcmp(copy, text, n) == 0;
    free(copy);
    return same;
}

int jr_get(const struct jr_doc *d, int obj, const char *key)
{
    int found = -1;
    for (int k = jr_child(d, obj); k >= 0; k = jr_sibling(d, obj, k))
        if (jr_string_equals(d, k, key))
            found = (int)d->tok[k].end; /* the value after the key; the last one wins */
    return found;
}

bool jr_integer(const struct jr_doc *d, int idx, int64_t *out)
{
    if (!jr_is(d, idx, JR_NUMBER))
        return false;
    const struct jr_token *t = &d->tok[idx];
    char buf[64];
    if (t->len >= sizeof(buf))
        return false;
    memcpy(buf, d->text + t->start, t->len);
    buf[t->len] = '\0';
    if (!strpbrk(buf, ".eE")) {
        char *endp;
        errno = 0;
        long long v = strtoll(buf, &endp, 10);
        if (errno || *endp)
            return false;
        *out = v;
        return true;
    }
    double v = strtod(buf, NULL); /* some clients write every number as a double */
    if (!(v >= -9.0e18 && v <= 9.0e18) || floor(v) != v)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Decodes the escapes of a string token; writes to out when it is not NULL. */
static size_t decode(const struct jr_doc *d, int idx, char *out)
{
    const struct jr_token *t = &d->tok[idx];
    const char *p = d->text + t->start, *end = p + t->len;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            if (out)
                out[n] = *p;
            n++, p++;
            continue;
        }
        char e = p[1];
        uint32_t cp;
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            cp = (uint32_t)(unsigned char)to[strchr(from, e) - from];
            p += 2;
        } else {
            cp = (uint32_t)hex4(p + 2);
            p += 6;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* validated: a low half follows */
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)hex4(p + 2) - 0xdc00);
                p += 6;
            }
        }
        char enc[4];
        size_t k;
        if (cp < 0x80) {
            enc[0] = (char)cp, k = 1;
        } else if (cp < 0x800) {
            enc[0] = (char)(0xc0 | cp >> 6), enc[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
        } else if (cp < 0x10000) {
            enc[0] = (char)(0xe0 | cp >> 12), enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
            enc[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
        } else {
            enc[0] = (char)(0xf0 | cp >> 18), enc[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
            enc[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), enc[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
        }
        if (out)
            memcpy(out + n, enc, k);
        n += k;
    }
    if (out)
        out[n] = '\0';
    return n;
}

size_t jr_string_length(const struct jr_doc *d, int idx)
{
    const struct jr_token *t = &d->tok[idx];
    return t->escaped ? decode(d, idx, NULL) : t->len;
}

size_t jr_string_copy(const struct jr_doc *d, int idx, char *out)
{
    const struct jr_token *t = &d->tok[idx];
    if (t->escaped)
        return decode(d, idx, out);
    memcpy(out, d->text + t->start, t->len);
    out[t->len] = '\0';
    return t->len;
}

const char *jr_string(const struct jr_doc *d, int idx, size_t *len, char **scratch)
{
    const struct jr_token *t = &d->tok[idx];
    *scratch = NULL;
    if (!t->escaped) {
        *len = t->len;
        return d->text + t->start;
    }
    size_t n = decode(d, idx, NULL);
    if (!(*scratch = malloc(n + 1)))
        return NULL;
    *len = decode(d, idx, *scratch);
    return *scratch;
}
