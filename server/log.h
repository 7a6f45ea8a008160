/* server/log.h — one line per event on stderr, as text for people or as JSON for log
 * shippers (log_format): time (RFC 3339, UTC, milliseconds), level, message; request lines
 * carry the request's fields. Request lines are written at `info`, slow-request warnings at
 * `warn`; stdout is kept for the machine-readable ready line. Level and format may change
 * while the server runs (SIGHUP). */
#ifndef ANVIL_LOG_H
#define ANVIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_TEXT = 0, LOG_JSON };

void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_level_name(enum log_level level);
const char *log_format_name(enum log_format format);
/* Parses "error", "warn", "info" or "debug"; false for anything else. */
bool log_parse_level(const char *text, enum log_level *out);
/* Parses "text" or "json"; false for anything else. */
bool log_parse_format(const char *text, enum log_format *out);

/* An event with fields of its own (a slow commit): text `msg key=value ...`, json
 * {"ts","level","msg", key: value...}. Keys are plain words; strings are borrowed. */
enum log_field_kind { LF_STR = 0, LF_INT, LF_MS };
struct log_field {
    const char *key;
    enum log_field_kind kind;
    const char *str;  /* LF_STR */
    long long num;    /* LF_INT */
    double ms;        /* LF_MS: printed with 3 decimals */
};
void log_event(enum log_level level, const char *msg, const struct log_field *fields, size_t n);

/* One HTTP request, as it ended. Strings are borrowed for the call. */
struct log_request {
    const char *request_id;
    const char *method;      /* NULL: the request line never arrived in full */
    const char *path;        /* as sent, without the query string (which may hold a token) */
    const char *remote;      /* the client's address, NULL when unknown */
    int status;              /* 0: aborted before an answer was sent */
    double duration_ms;      /* from the request's first byte to its answer's last */
    long long bytes;         /* the answer's body; negative: unknown (a stream) */
    unsigned slow_ms;        /* >0: this is a slow-request warning over this threshold */
};

/* text: `GET /path 200 0.412ms id=... bytes=... remote=...` (warnings start "slow request");
 * json: {"ts","level","msg":"request"|"slow request","request_id","method","path","status",
 * "duration_ms","bytes"?,"remote"?,"threshold_ms"?} (an aborted request: "aborted":true,
 * no status). */
void log_request(enum log_level level, const struct log_request *r);

#endif
