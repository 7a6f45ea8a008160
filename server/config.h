/* server/config.h — anvil's settings and where they come from: built-in defaults, then
 * the config file (--config or ANVIL_CONFIG), then ANVIL_* environment variables, then
 * command-line flags; a later source wins. One table in config.c drives all four and
 * --help, so a setting cannot exist in one place and be missing in another. */
#ifndef ANVIL_CONFIG_H
#define ANVIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../api/api.h"
#include "log.h"

/* The test kit (/admin/ routes): auto turns it on in dev mode (no tokens) only. */
enum test_mode { TEST_MODE_AUTO = 0, TEST_MODE_ON, TEST_MODE_OFF };

struct config {
    char *host;
    unsigned port;
    char *data_dir;
    enum durability durability;
    enum log_level log_level;
    enum log_format log_format;
    unsigned slow_request_ms; /* warn about requests slower than this; 0: never */
    unsigned slow_commit_ms;  /* warn about group commits slower than this; 0: never */
    uint64_t memory_budget; /* bytes, 0 for none, or CONFIG_MEMORY_AUTO */
    size_t max_message_size;
    size_t max_request_size;
    unsigned connection_limit;
    unsigned idle_timeout_s;
    unsigned shutdown_timeout_s;
    unsigned metrics_queue_limit; /* queues GET /metrics names; the others are summed */
    unsigned push_timeout_s;
    unsigned push_concurrency;
    unsigned push_subscriber_concurrency;
    unsigned push_connect_timeout_s;
    char *push_allow;
    struct api_token *tokens;
    size_t n_tokens;
    struct api_sqs_key *sqs_keys;
    size_t n_sqs_keys;
    char *backend; /* "sqlite" or a postgres:// URL */
    char *sqs_account;
    char *sqs_region;
    char *config_file;
    enum test_mode test_mode;
    bool relaxed_limits; /* limits relaxed: test mode's looser limits (api_limits.relaxed) */
    char *init_file;     /* a fixture loaded at start (test mode), or NULL */
};

enum config_result { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_ERROR = -1 };
#define CONFIG_MEMORY_AUTO UINT64_MAX

/* Fills cfg from every source. CONFIG_EXIT: --help or --version was printed. */
enum config_result config_load(struct config *cfg, int argc, char **argv, char *err, size_t err_len);
/* Defaults plus config-file text only (no environment, no flags): for tests and fuzzing. */
enum config_result config_load_text(struct config *cfg, const char *text, size_t len, char *err,
                                    size_t err_len);
void config_free(struct config *cfg);
void config_usage(FILE *out);
const char *durability_name(enum durability d);
/* Is the test kit on with these settings (test_mode, and auto: no tokens)? */
bool config_test_mode_on(const struct config *cfg);

#endif
