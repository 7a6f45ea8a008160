/* ctl/ctl.h — anvilctl's shared pieces: the settings every command reads (where the server
 * is, which project, which token, how to print), the HTTP call that turns an answer into an
 * exit code, the table printer, and the command table. main.c owns argument parsing and
 * help; commands.c and queues.c own what each command does. */
#ifndef ANVIL_CTL_H
#define ANVIL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes scripts can rely on (documented in --help and docs/man/anvilctl.1.md). */
enum ctl_exit {
    CTL_OK = 0,          /* done; health: healthy */
    CTL_ERROR = 1,       /* the server answered an error (4xx other than 404, 5xx); health: degraded */
    CTL_USAGE = 2,       /* bad command line or settings */
    CTL_UNREACHABLE = 3, /* no answer from the server (refused, timeout, bad address) */
    CTL_NOT_FOUND = 4,   /* the server answered 404: no such queue or message */
};

#define CTL_MAX_SUBSCRIBERS 64

/* Everything the command line, ANVIL_* variables and the config file decided. Strings point
 * into argv, the environment or struct ctl_file (settings.c). */
struct ctl_args {
    const char *url, *project, *token, *data_dir, *config;
    bool json, help;
    /* command options; NULL or -1 means "not given" */
    const char *type, *dead_letter_queue, *error_queue, *reservation_id, *prefix;
    long long message_timeout, message_expiration, dead_letter_max, retries, retries_delay;
    long long n, timeout, wait, delay;
    bool delete_;
    char *subscribers[CTL_MAX_SUBSCRIBERS];
    size_t n_subscribers;
    unsigned long long given; /* bit per command option seen (CTL_OPT_*), to refuse strays */
    /* positional words after the command (and sub-command) */
    char **words;
    int n_words;
};

/* ---- settings.c ---- */

/* The config file's values (copies, freed by ctl_settings_free). */
struct ctl_file {
    char *url, *project, *token, *data_dir;
};
/* Fills a's url, project, token and data_dir from flags (already in a), ANVIL_* variables,
 * the config file or the defaults; CTL_USAGE (message printed) on bad settings. */
int ctl_settings_load(struct ctl_args *a, struct ctl_file *fs);
void ctl_settings_free(struct ctl_file *fs);

/* ---- http.c ---- */

/* One request to the server: path is relative to the URL ("/health", or a project path
 * built with ctl_path). body may be NULL; it is not taken. On an answer, *status is its HTTP
 * status and *reply its JSON (a new reference, or NULL if not JSON). Returns CTL_OK when
 * the server answered at all, CTL_UNREACHABLE (message printed) when it did not. */
int ctl_http(const struct ctl_args *a, const char *method, const char *path, json_t *body,
             long timeout_s, long *status, json_t **reply);
/* ctl_http plus the usual reading of the answer: 2xx → CTL_OK with *reply; else prints the
 * server's msg and returns CTL_NOT_FOUND (404) or CTL_ERROR. *reply is NULL unless CTL_OK. */
int ctl_call(const struct ctl_args *a, const char *method, const char *path, json_t *body,
             json_t **reply);
/* "/3/projects/<project>/queues[/<queue>][<rest>]" with both names percent-encoded; the
 * caller frees it. queue may be NULL. */
char *ctl_path(const struct ctl_args *a, const char *queue, const char *rest);
/* s percent-encoded for a URL path or query; the caller frees it. */
char *ctl_escape(const char *s);
void ctl_http_init(void);
void ctl_http_cleanup(void);

/* ---- table.c ---- */

struct ctl_table;
struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers);
/* Adds a row of n_cols cells (copied; NULL prints as "-"). */
void ctl_table_row(struct ctl_table *t, const char *const *cells);
/* Prints the table with aligned columns (the last one unpadded) and frees it. */
void ctl_table_print(struct ctl_table *t);
/* A JSON value as one short line for a table cell; the caller frees it. */
char *ctl_cell(const json_t *v, size_t max_len);
/* Prints an object as FIELD VALUE rows, nested objects as dotted names. */
void ctl_print_fields(const json_t *obj);
/* Prints a JSON value (indented) on stdout, for --json. */
void ctl_print_json(const json_t *v);

/* ---- commands ---- */

struct ctl_command {
    const char *name;    /* "post", or "queues create" */
    const char *usage;   /* arguments after the name */
    const char *summary; /* one line */
    const char *help;    /* the rest of --help: what it does, its options */
    unsigned long long options; /* CTL_OPT_* bits it accepts */
    int min_words, max_words;   /* positional words; max -1 = any */
    int (*run)(struct ctl_args *a);
};

/* Command options (global ones are always accepted). */
enum {
    CTL_OPT_TYPE = 1ull << 0,
    CTL_OPT_MESSAGE_TIMEOUT = 1ull << 1,
    CTL_OPT_MESSAGE_EXPIRATION = 1ull << 2,
    CTL_OPT_DEAD_LETTER_QUEUE = 1ull << 3,
    CTL_OPT_DEAD_LETTER_MAX = 1ull << 4,
    CTL_OPT_PUSH_SUBSCRIBER = 1ull << 5,
    CTL_OPT_RETRIES = 1ull << 6,
    CTL_OPT_RETRIES_DELAY = 1ull << 7,
    CTL_OPT_ERROR_QUEUE = 1ull << 8,
    CTL_OPT_N = 1ull << 9,
    CTL_OPT_TIMEOUT = 1ull << 10,
    CTL_OPT_WAIT = 1ull << 11,
    CTL_OPT_DELETE = 1ull << 12,
    CTL_OPT_RESERVATION_ID = 1ull << 13,
    CTL_OPT_DELAY = 1ull << 14,
    CTL_OPT_PREFIX = 1ull << 15,
    CTL_OPT_DATA_DIR = 1ull << 16,
};
#define CTL_OPT_QUEUE_SETTINGS                                                              \
    (CTL_OPT_TYPE | CTL_OPT_MESSAGE_TIMEOUT | CTL_OPT_MESSAGE_EXPIRATION |                    \
     CTL_OPT_DEAD_LETTER_QUEUE | CTL_OPT_DEAD_LETTER_MAX | CTL_OPT_PUSH_SUBSCRIBER |          \
     CTL_OPT_RETRIES | CTL_OPT_RETRIES_DELAY | CTL_OPT_ERROR_QUEUE)

extern const struct ctl_command ctl_queue_commands[];
extern const size_t ctl_queue_command_count;
extern const struct ctl_command ctl_message_commands[];
extern const size_t ctl_message_command_count;
extern const struct ctl_command ctl_server_commands[];
extern const size_t ctl_server_command_count;

/* Prints "anvilctl: <message>" on stderr and returns CTL_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The bash completion script (main.c). */
extern const char ctl_bash_completion[];

#endif
