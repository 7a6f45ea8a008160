/* server/log.c — leveled logging to stderr, as text or JSON lines (see log.h).
 * Each line is built in one buffer and written with one write(), so lines never interleave.
 * JSON strings are escaped here (control characters, quotes, backslashes) and bytes that are
 * not valid UTF-8 (a path may hold anything) become U+FFFD, so every line parses; a value
 * too long for the line is cut at a character boundary, never mid-escape.
 * Level and format are atomics: SIGHUP changes them on the loop thread, and a line written
 * by another thread must still read whole values. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    LINE_MAX_BYTES = 8192,
    LINE_RESERVE = 4,        /* room always kept for the closing "}\n" */
    MSG_MAX_BYTES = 4096,    /* one message, escaped */
    PATH_MAX_BYTES = 2048,   /* a request's path, escaped */
    SHORT_MAX_BYTES = 160,   /* ids, methods, addresses, keys */
    FIELD_MAX_BYTES = 320,   /* a log_event() string (8 fields at most) */
};

static _Atomic int current_level = LOG_INFO;
static _Atomic int current_format = LOG_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

void log_set_format(enum log_format format)
{
    atomic_store_explicit(&current_format, (int)format, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

static bool json_format(void)
{
    return atomic_load_explicit(&current_format, memory_order_relaxed) == LOG_JSON;
}

const char *log_level_name(enum log_level level)
{
    return level <= LOG_DEBUG ? level_names[level] : "?";
}

const char *log_format_name(enum log_format format)
{
    return format == LOG_JSON ? "json" : "text";
}

bool log_parse_level(const char *text, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    if (strcmp(text, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

bool log_parse_format(const char *text, enum log_format *out)
{
    if (strcmp(text, "text") == 0)
        *out = LOG_TEXT;
    else if (strcmp(text, "json") == 0)
        *out = LOG_JSON;
    else
        return false;
    return true;
}

/* ---- building a line ---- */

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static size_t room(const struct line *l)
{
    return sizeof(l->buf) - LINE_RESERVE - l->len;
}

static void put(struct line *l, const char *s, size_t n)
{
    if (n > room(l))
        n = room(l);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room(l) + 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n > room(l) ? room(l) : (size_t)n;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1Fu;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0Fu;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    return overlong || surrogate || cp > 0x10FFFF ? 0 : len;
}

/* A JSON string: s escaped and quoted, at most max bytes of escaped text. */
static void put_json_string(struct line *l, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t left = strlen((const char *)p);
    if (room(l) < 2)
        return; /* cannot happen with the limits above: the caller's fields fit */
    size_t limit = room(l) - 1 < max ? room(l) - 1 : max; /* -1: the closing quote */
    size_t start = l->len;
    l->buf[l->len++] = '"';
    while (left) {
        char esc[8];
        const char *out = esc;
        size_t n = 0, used = 1;
        unsigned char c = *p;
        if (c == '"' || c == '\\')
            esc[0] = '\\', esc[1] = (char)c, n = 2;
        else if (c == '\n')
            out = "\\n", n = 2;
        else if (c == '\t')
            out = "\\t", n = 2;
        else if (c == '\r')
            out = "\\r", n = 2;
        else if (c < 0x20 || c == 0x7F)
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        else if ((used = utf8_len(p, left)) == 0)
            out = "\\ufffd", n = 6, used = 1;
        else
            out = (const char *)p, n = used;
        if (l->len - start + n > limit)
            break;
        memcpy(l->buf + l->len, out, n);
        l->len += n;
        p += used;
        left -= used;
    }
    l->buf[l->len++] = '"';
}

/* A text value: as is, with control characters (which would break the line) as '?'. */
static void put_text(struct line *l, const char *s, size_t max)
{
    size_t start = l->len;
    for (const char *p = s ? s : "-"; *p && room(l) && l->len - start < max; p++)
        l->buf[l->len++] = (unsigned char)*p < 0x20 || *p == 0x7F ? '?' : *p;
}

static void begin(struct line *l, enum log_level level, bool json)
{
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    l->len = 0;
    if (json)
        putf(l, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, log_level_name(level));
    else
        putf(l, "%s %-5s ", when, log_level_name(level));
}

static void finish(struct line *l, bool json)
{
    if (json)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    if (write(STDERR_FILENO, l->buf, l->len) < 0) {
        /* nowhere left to report it */
    }
}

/* ---- the calls ---- */

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    bool json = json_format();
    char text[MSG_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    struct line l;
    begin(&l, level, json);
    if (json)
        put_json_string(&l, text, MSG_MAX_BYTES);
    else
        put_text(&l, text, MSG_MAX_BYTES);
    finish(&l, json);
}

static void request_json(struct line *l, const struct log_request *r)
{
    put_json_string(l, r->slow_ms ? "slow request" : "request", SHORT_MAX_BYTES);
    puts_(l, ",\"request_id\":");
    put_json_string(l, r->request_id, SHORT_MAX_BYTES);
    puts_(l, ",\"method\":");
    put_json_string(l, r->method ? r->method : "-", SHORT_MAX_BYTES);
    puts_(l, ",\"path\":");
    put_json_string(l, r->path, PATH_MAX_BYTES);
    if (r->status)
        putf(l, ",\"status\":%d", r->status);
    else
        puts_(l, ",\"aborted\":true");
    putf(l, ",\"duration_ms\":%.3f", r->duration_ms >= 0 ? r->duration_ms : 0.0);
    if (r->bytes >= 0)
        putf(l, ",\"bytes\":%lld", r->bytes);
    if (r->remote) {
        puts_(l, ",\"remote\":");
        put_json_string(l, r->remote, SHORT_MAX_BYTES);
    }
    if (r->slow_ms)
        putf(l, ",\"threshold_ms\":%u", r->slow_ms);
}

static void request_text(struct line *l, const struct log_request *r)
{
    if (r->slow_ms)
        puts_(l, "slow request ");
    put_text(l, r->method, SHORT_MAX_BYTES);
    puts_(l, " ");
    put_text(l, r->path, PATH_MAX_BYTES);
    if (r->status)
        putf(l, " %d", r->status);
    else
        puts_(l, " aborted");
    putf(l, " %.3fms id=", r->duration_ms);
    put_text(l, r->request_id, SHORT_MAX_BYTES);
    if (r->bytes >= 0)
        putf(l, " bytes=%lld", r->bytes);
    if (r->remote) {
        puts_(l, " remote=");
        put_text(l, r->remote, SHORT_MAX_BYTES);
    }
    if (r->slow_ms)
        putf(l, " threshold=%ums", r->slow_ms);
}

void log_request(enum log_level level, const struct log_request *r)
{
    if (!log_enabled(level))
        return;
    bool json = json_format();
    struct line l;
    begin(&l, level, json);
    if (json)
        request_json(&l, r);
    else
        request_text(&l, r);
    finish(&l, json);
}

/* One key and value: ,"key":value in JSON, key=value in text. */
static void put_field(struct line *l, const struct log_field *f, bool json)
{
    void (*put_string)(struct line *, const char *, size_t) = json ? put_json_string : put_text;
    puts_(l, json ? "," : " ");
    put_string(l, f->key, SHORT_MAX_BYTES);
    puts_(l, json ? ":" : "=");
    if (f->kind == LF_STR)
        put_string(l, f->str, FIELD_MAX_BYTES);
    else if (f->kind == LF_INT)
        putf(l, "%lld", f->num);
    else
        putf(l, "%.3f", f->ms);
}

void log_event(enum log_level level, const char *msg, const struct log_field *fields, size_t n)
{
    if (!log_enabled(level))
        return;
    bool json = json_format();
    struct line l;
    begin(&l, level, json);
    if (json)
        put_json_string(&l, msg, SHORT_MAX_BYTES);
    else
        put_text(&l, msg, SHORT_MAX_BYTES);
    for (size_t i = 0; i < n && i < 8; i++) /* 8 fields at most keep the line in bounds */
        put_field(&l, &fields[i], json);
    finish(&l, json);
}
