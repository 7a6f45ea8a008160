/* api/form.c — application/x-www-form-urlencoded parsing (see form.h). */
#include "form.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/ids.h"

size_t form_percent_decode(const char *src, size_t len, char *out, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+' && plus_is_space) {
            out[o++] = ' ';
        } else if (src[i] != '%') {
            out[o++] = src[i];
        } else {
            int hi = i + 2 < len ? ids_hex_value(src[i + 1]) : -1;
            int lo = hi < 0 ? -1 : ids_hex_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return SIZE_MAX;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        }
    }
    return o;
}

/* Decodes src[0..len) into a new NUL-terminated string; NULL on a bad escape or no memory. */
static char *decode(const char *src, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = out ? form_percent_decode(src, len, out, true) : SIZE_MAX;
    if (n == SIZE_MAX) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Appends a pair that takes over name and value (both malloc'd); -1 (both freed) on no memory. */
static int push_owned(struct form *f, char *name, size_t name_len, char *value, size_t value_len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct form_pair *grown = realloc(f->pairs, cap * sizeof(*grown));
        if (!grown) {
            free(name);
            free(value);
            return -1;
        }
        f->pairs = grown;
        f->cap = cap;
    }
    f->pairs[f->n++] = (struct form_pair){name, value, name_len, value_len};
    return 0;
}

int form_add(struct form *f, const char *name, const char *value, size_t value_len)
{
    size_t name_len = strlen(name);
    char *n = strndup(name, name_len), *v = malloc(value_len + 1);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    memcpy(v, value, value_len);
    v[value_len] = '\0';
    return push_owned(f, n, name_len, v, value_len);
}

int form_parse(struct form *f, const char *text, size_t len)
{
    size_t start_n = f->n;
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(text + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - text) : len;
        if (end > i) {
            const char *eq = memchr(text + i, '=', end - i);
            size_t name_end = eq ? (size_t)(eq - text) : end;
            size_t value_start = eq ? name_end + 1 : end;
            size_t name_len = 0, value_len = 0;
            char *name = decode(text + i, name_end - i, &name_len);
            char *value = name ? decode(text + value_start, end - value_start, &value_len) : NULL;
            if (!value) {
                free(name);
                goto fail;
            }
            if (push_owned(f, name, name_len, value, value_len) != 0)
                goto fail;
        }
        i = end + 1;
    }
    return 0;
fail:
    while (f->n > start_n) {
        f->n--;
        free(f->pairs[f->n].name);
        free(f->pairs[f->n].value);
    }
    return -1;
}

const struct form_pair *form_find(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->pairs[i].name, name) == 0)
            return &f->pairs[i];
    return NULL;
}

const char *form_get(const struct form *f, const char *name)
{
    const struct form_pair *p = form_find(f, name);
    return p ? p->value : NULL;
}

void form_free(struct form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->pairs[i].name);
        free(f->pairs[i].value);
    }
    free(f->pairs);
    f->pairs = NULL;
    f->n = f->cap = 0;
}
