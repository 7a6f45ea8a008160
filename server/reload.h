/* server/reload.h — SIGHUP: read the settings again and apply those that can change while
 * connections stay open (log_level, log_format, slow_request_ms, slow_commit_ms, token,
 * sqs_key). See reload.c. */
#ifndef ANVIL_RELOAD_H
#define ANVIL_RELOAD_H

#include "../api/api.h"
#include "config.h"
#include "http.h"
#include "loop.h"

struct reload {
    int argc;           /* anvil's own command line: the flags are read again too */
    char **argv;
    struct config *cfg; /* the settings in force (main's); the reloadable ones are replaced */
    struct api *api;    /* its tokens and SQS keys point into cfg */
    struct http *http;
    struct loop *loop;
};

/* Applies the logging settings of cfg (at start, and after each reload). */
void reload_apply_logging(const struct config *cfg);
/* The loop's on_reload: ctx is a struct reload. Logs what it did, or why it changed nothing. */
void reload_settings(void *ctx);

#endif
