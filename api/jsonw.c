/* api/jsonw.c — the response writer (see jsonw.h). */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool room(struct jw *w, size_t extra)
{
    if (w->oom)
        return false;
    if (w->len + extra + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + extra + 1)
        cap *= 2;
    char *grown = realloc(w->buf, cap);
    if (!grown) {
        w->oom = true;
        return false;
    }
    w->buf = grown;
    w->cap = cap;
    return true;
}

void jw_raw(struct jw *w, const char *text, size_t len)
{
    if (!room(w, len))
        return;
    memcpy(w->buf + w->len, text, len);
    w->len += len;
}

void jw_lit(struct jw *w, const char *text)
{
    jw_raw(w, text, strlen(text));
}

void jw_str(struct jw *w, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!room(w, len * 6 + 2)) /* the worst case: every byte a \u00XX */
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

void jw_u64(struct jw *w, uint64_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_raw(w, digits + sizeof(digits) - n, n);
}

void jw_i64(struct jw *w, int64_t v)
{
    if (v < 0)
        jw_raw(w, "-", 1);
    jw_u64(w, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

void jw_num(struct jw *w, double v)
{
    char text[40];
    if (!isfinite(v))
        v = 0.0; /* JSON has no NaN or infinity */
    int n = snprintf(text, sizeof(text), "%.3f", v);
    if (n <= 0 || (size_t)n >= sizeof(text)) {
        jw_raw(w, "0", 1);
        return;
    }
    while (n > 1 && text[n - 1] == '0')
        n--;
    if (text[n - 1] == '.')
        n--;
    if (n == 2 && text[0] == '-' && text[1] == '0')
        jw_raw(w, "0", 1);
    else
        jw_raw(w, text, (size_t)n);
}

void jw_id(struct jw *w, uint64_t id)
{
    jw_raw(w, "\"", 1);
    jw_u64(w, id);
    jw_raw(w, "\"", 1);
}

void jw_key(struct jw *w, const char *name, bool first)
{
    jw_lit(w, first ? "\"" : ",\"");
    jw_lit(w, name);
    jw_lit(w, "\":");
}

char *jw_take(struct jw *w, size_t *len)
{
    if (w->oom || !room(w, 0)) {
        jw_free(w);
        return NULL;
    }
    w->buf[w->len] = '\0';
    char *text = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return text;
}

void jw_free(struct jw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->oom = false;
}
