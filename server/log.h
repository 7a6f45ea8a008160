/* server/log.h — one line per event on stderr: time, level, text. Request lines are
 * written at `info`; stdout is kept for the machine-readable ready line. */
#ifndef ANVIL_LOG_H
#define ANVIL_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_level_name(enum log_level level);
/* Parses "error", "warn", "info" or "debug"; false for anything else. */
bool log_parse_level(const char *text, enum log_level *out);

#endif
