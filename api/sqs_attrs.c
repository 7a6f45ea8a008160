/* api/sqs_attrs.c — SQS message attributes: reading and checking them from a request,
 * their stored form (name\0type\0value\0 per attribute, opaque to the engine), writing them
 * in an answer, and MD5OfMessageAttributes as SQS computes it (clients check it); and the
 * characters an SQS message body may hold. */
#include "sqs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

enum { ATTR_NAME_MAX = 256, ATTR_TYPE_MAX = 256 };

/* Decodes one UTF-8 character at s (len bytes left); its length, or 0 when malformed. */
static size_t utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (!n || n > len)
        return 0;
    uint32_t v = n == 1 ? s[0] : n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return n;
}

bool sqs_valid_body(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_char(p + i, len - i, &cp);
        if (!n)
            return false;
        bool ok = cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
                  (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
        if (!ok)
            return false;
        i += n;
    }
    return true;
}

static bool valid_attr_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ATTR_NAME_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    if (strncasecmp(s, "AWS.", 4) == 0 || strncasecmp(s, "Amazon.", 7) == 0)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* "String", "Number" or "Binary", optionally followed by ".custom". */
static bool type_is(const char *type, const char *base)
{
    size_t n = strlen(base);
    return strncmp(type, base, n) == 0 && (type[n] == '\0' || (type[n] == '.' && type[n + 1]));
}

static bool valid_number(const char *s)
{
    char *end = NULL;
    (void)strtod(s, &end);
    return *s && end && *end == '\0';
}

static int append(struct sqs_attrs *a, const char *s, size_t len)
{
    char *grown = realloc(a->data, a->len + len + 1);
    if (!grown)
        return -1;
    a->data = grown;
    memcpy(a->data + a->len, s, len);
    a->data[a->len + len] = '\0';
    a->len += len + 1;
    return 0;
}

void sqs_attrs_free(struct sqs_attrs *a)
{
    free(a->data);
    memset(a, 0, sizeof(*a));
}

/* Is there already an attribute called name in a? */
static bool has_attr(const struct sqs_attrs *a, const char *name)
{
    for (size_t off = 0; off < a->len;) {
        const char *n = a->data + off, *t = n + strlen(n) + 1, *v = t + strlen(t) + 1;
        if (strcmp(n, name) == 0)
            return true;
        off = (size_t)(v + strlen(v) + 1 - a->data);
    }
    return false;
}

bool sqs_attrs_read(const struct sqs_call *c, const char *prefix, struct sqs_attrs *out,
                    char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 1;; i++) {
        const char *name = sqs_paramf(c, "%sMessageAttribute.%zu.Name", prefix, i);
        if (!name)
            return true;
        const char *type = sqs_paramf(c, "%sMessageAttribute.%zu.Value.DataType", prefix, i);
        const char *text = sqs_paramf(c, "%sMessageAttribute.%zu.Value.StringValue", prefix, i);
        const char *bin = sqs_paramf(c, "%sMessageAttribute.%zu.Value.BinaryValue", prefix, i);
        const char *problem = NULL;
        size_t value_size = 0;
        if (i > SQS_ATTRIBUTES_MAX)
            problem = "a message can have at most 10 message attributes";
        else if (!valid_attr_name(name))
            problem = "the name must be 1 to 256 characters of A-Z a-z 0-9 _ - . without a leading,"
                      " trailing or doubled '.', and not start with AWS. or Amazon.";
        else if (has_attr(out, name))
            problem = "the name is repeated";
        else if (!type || !type[0] || strlen(type) > ATTR_TYPE_MAX || !sqs_valid_body(type, strlen(type)) ||
                 !(type_is(type, "String") || type_is(type, "Number") || type_is(type, "Binary")))
            problem = "DataType must be String, Number or Binary, optionally with a .suffix";
        else if (type_is(type, "Binary")) {
            size_t raw = 0;
            unsigned char *buf = bin ? malloc(strlen(bin) / 4 * 3 + 1) : NULL;
            if (!bin || !bin[0] || !buf || !dg_base64_decode(bin, strlen(bin), buf, &raw) || raw == 0)
                problem = "a Binary attribute needs a non-empty base64 BinaryValue";
            free(buf);
            value_size = raw;
        } else if (!text || !text[0] || !sqs_valid_body(text, strlen(text))) {
            problem = "a String or Number attribute needs a non-empty StringValue of valid characters";
        } else if (type_is(type, "Number") && !valid_number(text)) {
            problem = "a Number attribute's StringValue must be a number";
        } else {
            value_size = strlen(text);
        }
        const char *value = problem ? NULL : type_is(type, "Binary") ? bin : text;
        if (value && (append(out, name, strlen(name)) != 0 || append(out, type, strlen(type)) != 0 ||
                         append(out, value, strlen(value)) != 0))
            problem = "the server is out of memory";
        if (problem) {
            sqs_attrs_free(out);
            snprintf(err, err_len, "Message attribute %zu (%.64s) is invalid: %s.", i, name, problem);
            return false;
        }
        out->n++;
        out->size += strlen(name) + strlen(type) + value_size;
    }
}

struct attr_ref {
    const char *name, *type, *value;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct attr_ref *)a)->name, ((const struct attr_ref *)b)->name);
}

/* The selected attributes of the stored form, sorted by name; *n of them (at most 64). */
static size_t select_attrs(const struct sqs_call *c, const char *data, size_t len,
                           sqs_attr_filter want, struct attr_ref out[64])
{
    size_t n = 0;
    for (size_t off = 0; off < len && n < 64;) {
        struct attr_ref r;
        r.name = data + off;
        size_t rest = len - off;
        size_t nl = strnlen(r.name, rest);
        if (nl + 1 >= rest)
            break;
        r.type = r.name + nl + 1;
        size_t tl = strnlen(r.type, rest - nl - 1);
        if (nl + tl + 2 >= rest)
            break;
        r.value = r.type + tl + 1;
        size_t vl = strnlen(r.value, rest - nl - tl - 2);
        if (nl + tl + vl + 3 > rest)
            break;
        off += nl + tl + vl + 3;
        if (!want || want(c, r.name))
            out[n++] = r;
    }
    qsort(out, n, sizeof(out[0]), by_name);
    return n;
}

static void md5_field(struct dg_md5 *m, const void *data, size_t len)
{
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
    dg_md5_add(m, be, 4);
    dg_md5_add(m, data, len);
}

bool sqs_attrs_md5(const struct sqs_call *c, const char *data, size_t len, sqs_attr_filter want,
                   char out[33])
{
    struct attr_ref refs[64];
    size_t n = data ? select_attrs(c, data, len, want, refs) : 0;
    if (!n)
        return false;
    struct dg_md5 *m = dg_md5_new();
    for (size_t i = 0; i < n; i++) {
        md5_field(m, refs[i].name, strlen(refs[i].name));
        md5_field(m, refs[i].type, strlen(refs[i].type));
        bool binary = type_is(refs[i].type, "Binary");
        unsigned char transport = binary ? 2 : 1;
        dg_md5_add(m, &transport, 1);
        if (!binary) {
            md5_field(m, refs[i].value, strlen(refs[i].value));
            continue;
        }
        size_t vl = strlen(refs[i].value), raw = 0;
        unsigned char *buf = malloc(vl / 4 * 3 + 1);
        if (buf && dg_base64_decode(refs[i].value, vl, buf, &raw))
            md5_field(m, buf, raw);
        free(buf);
    }
    dg_md5_finish(m, out);
    return true;
}

void sqs_attrs_write(struct sqs_call *c, const char *data, size_t len, sqs_attr_filter want)
{
    struct attr_ref refs[64];
    size_t n = data ? select_attrs(c, data, len, want, refs) : 0;
    if (!n)
        return;
    so_map_begin(c, "MessageAttributes");
    for (size_t i = 0; i < n; i++) {
        so_map_object_begin(c, "MessageAttribute", refs[i].name);
        so_text(c, type_is(refs[i].type, "Binary") ? "BinaryValue" : "StringValue", refs[i].value);
        so_text(c, "DataType", refs[i].type);
        so_map_object_end(c, "MessageAttribute");
    }
    so_map_end(c);
}
