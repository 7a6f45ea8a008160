/* server/reload.c — SIGHUP (see reload.h). The settings are read from the same sources as
 * at start (the config file, ANVIL_* variables, the flags) with the same checks; a setting
 * that does not pass keeps everything as it was, with an error in the log. The loop calls
 * this between events, so nothing else runs meanwhile and no connection is touched.
 * The old token and SQS key arrays are freed at once: nothing keeps a pointer into them
 * past a request's authorization (api/router.c checks synchronously; api/sqs.c copies the
 * project it acts in), and an authorization never spans a loop turn.
 * A reload may not switch between dev mode (no tokens: any token works, loopback only) and
 * tokens: the listener and the test kit were chosen by that at start. Settings that only
 * take effect at start are named in a warning when they changed, and left as they were. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

void reload_apply_logging(const struct config *cfg)
{
    log_set_level(cfg->log_level);
    log_set_format(cfg->log_format);
}

static void add_name(char *list, size_t len, const char *name)
{
    size_t used = strlen(list);
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Warns about changed settings a reload does not apply. */
static void note_restart_only(const struct config *now, const struct config *next)
{
    char names[512] = "";
#define TEXT(field, key)                                                                          \
    if (!same_text(now->field, next->field))                                                     \
    add_name(names, sizeof(names), key)
#define VALUE(field, key)                                                                         \
    if (now->field != next->field)                                                               \
    add_name(names, sizeof(names), key)
    TEXT(host, "host");
    VALUE(port, "port");
    TEXT(data_dir, "data_dir");
    VALUE(durability, "durability");
    TEXT(backend, "backend");
    VALUE(memory_budget, "memory_budget");
    VALUE(max_message_size, "max_message_size");
    VALUE(max_request_size, "max_request_size");
    VALUE(connection_limit, "connection_limit");
    VALUE(idle_timeout_s, "idle_timeout");
    VALUE(shutdown_timeout_s, "shutdown_timeout");
    VALUE(push_timeout_s, "push_timeout");
    VALUE(push_concurrency, "push_concurrency");
    VALUE(push_subscriber_concurrency, "push_subscriber_concurrency");
    VALUE(push_connect_timeout_s, "push_connect_timeout");
    TEXT(push_allow, "push_allow");
    TEXT(sqs_account, "sqs_account");
    TEXT(sqs_region, "sqs_region");
    VALUE(test_mode, "test_mode");
    VALUE(relaxed_limits, "limits");
    TEXT(init_file, "init");
#undef TEXT
#undef VALUE
    if (names[0])
        log_msg(LOG_WARN, "SIGHUP: these settings changed but only take effect at a restart: %s",
                names);
}

/* Moves next's credentials into cur (and the api), and cur's old ones into next, which the
 * caller frees. */
static void swap_credentials(struct config *cur, struct config *next, struct api *api)
{
    struct api_token *tokens = cur->tokens;
    size_t n_tokens = cur->n_tokens;
    struct api_sqs_key *keys = cur->sqs_keys;
    size_t n_keys = cur->n_sqs_keys;
    cur->tokens = next->tokens;
    cur->n_tokens = next->n_tokens;
    cur->sqs_keys = next->sqs_keys;
    cur->n_sqs_keys = next->n_sqs_keys;
    next->tokens = tokens;
    next->n_tokens = n_tokens;
    next->sqs_keys = keys;
    next->n_sqs_keys = n_keys;
    api->tokens = cur->tokens;
    api->n_tokens = cur->n_tokens;
    api->sqs.keys = cur->sqs_keys;
    api->sqs.n_keys = cur->n_sqs_keys;
}

void reload_settings(void *ctx)
{
    struct reload *r = ctx;
    struct config *cur = r->cfg;
    struct config next;
    char err[1024] = "";
    if (config_load(&next, r->argc, r->argv, err, sizeof(err)) != CONFIG_OK) {
        log_msg(LOG_ERROR, "SIGHUP: settings not reloaded, those in force stay: %s", err);
        goto out;
    }
    if ((next.n_tokens == 0) != (cur->n_tokens == 0)) {
        log_msg(LOG_ERROR, "SIGHUP: settings not reloaded, those in force stay: %s",
                next.n_tokens ? "a dev server (started without tokens) cannot take tokens on "
                                "reload; restart it"
                              : "the new settings have no token, which would make this a dev "
                                "server (any token accepted); restart to do that");
        goto out;
    }
    note_restart_only(cur, &next);
    swap_credentials(cur, &next, r->api);
    cur->log_level = next.log_level;
    cur->log_format = next.log_format;
    cur->slow_request_ms = next.slow_request_ms;
    cur->slow_commit_ms = next.slow_commit_ms;
    reload_apply_logging(cur);
    http_set_slow_request_ms(r->http, cur->slow_request_ms);
    r->loop->slow_commit_ms = cur->slow_commit_ms;
    log_msg(LOG_INFO,
            "SIGHUP: settings reloaded: log_level %s, log_format %s, slow_request_ms %u, "
            "slow_commit_ms %u, %zu token(s), %zu SQS key(s)",
            log_level_name(cur->log_level), log_format_name(cur->log_format),
            cur->slow_request_ms, cur->slow_commit_ms, cur->n_tokens, cur->n_sqs_keys);
out:
    config_free(&next); /* after a reload: the credentials that were in force */
}
