/* server/config.c — settings from defaults, file, environment and flags (see config.h).
 * The file format is `key = value` per line, `#` starts a comment; keys may use - or _.
 * `token` may repeat; the tokens of the strongest source that names any replace the rest. */
#include "config.h"
#include "../api/handlers.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum source { SRC_FILE = 0, SRC_ENV, SRC_FLAG, SRC_COUNT };

struct token_list {
    struct api_token *items;
    size_t n;
};

struct sqs_key_list {
    struct api_sqs_key *items;
    size_t n;
};

struct loader {
    struct config *cfg;
    struct token_list tokens[SRC_COUNT];
    struct sqs_key_list sqs_keys[SRC_COUNT];
    enum source source;
    char *err;
    size_t err_len;
};

struct setting {
    const char *key; /* file key; the flag is --key with '_' as '-' */
    const char *env;
    const char *arg;
    const char *def;
    const char *help;
    int (*apply)(struct loader *ld, const struct setting *s, const char *value);
    size_t offset; /* of the field in struct config, for the generic setters */
};

static int fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

static void *field(struct loader *ld, const struct setting *s)
{
    return (char *)ld->cfg + s->offset;
}

static int set_string(struct loader *ld, const struct setting *s, const char *value)
{
    char **slot = field(ld, s);
    char *copy = strdup(value);
    if (!copy)
        return fail(ld, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

/* Decimal digits with an optional k/K, m/M or g/G (powers of 1024) suffix, at most max. No
 * sign, no spaces (strtoull would skip blanks and accept a minus), no overflow. */
static int parse_number(const char *value, unsigned long long max, unsigned long long *out)
{
    unsigned long long n = 0, unit = 1;
    const char *p = value;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (max - (unsigned long long)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (unsigned long long)(*p - '0');
    }
    if (*p == 'k' || *p == 'K')
        unit = 1024, p++;
    else if (*p == 'm' || *p == 'M')
        unit = 1024ULL * 1024, p++;
    else if (*p == 'g' || *p == 'G')
        unit = 1024ULL * 1024 * 1024, p++;
    if (*p || n > max / unit)
        return -1;
    *out = n * unit;
    return 0;
}

static int set_unsigned(struct loader *ld, const struct setting *s, const char *value)
{
    unsigned long long n;
    unsigned long long max = strcmp(s->key, "port") == 0 ? 65535 : UINT_MAX;
    if (parse_number(value, max, &n) != 0)
        return fail(ld, "%s: \"%s\" is not a number from 0 to %llu", s->key, value, max);
    *(unsigned *)field(ld, s) = (unsigned)n;
    return 0;
}

static int set_size(struct loader *ld, const struct setting *s, const char *value)
{
    unsigned long long n;
    if (parse_number(value, (unsigned long long)1 << 40, &n) != 0 || n == 0)
        return fail(ld, "%s: \"%s\" is not a size in bytes (suffix k, m or g allowed)", s->key, value);
    *(size_t *)field(ld, s) = (size_t)n;
    return 0;
}

/* "auto" (half of the machine's memory, decided at start), 0 (no limit) or a size. */
static int set_memory_budget(struct loader *ld, const struct setting *s, const char *value)
{
    unsigned long long n;
    if (strcmp(value, "auto") == 0) {
        ld->cfg->memory_budget = CONFIG_MEMORY_AUTO;
        return 0;
    }
    if (parse_number(value, (unsigned long long)1 << 50, &n) != 0)
        return fail(ld, "%s: \"%s\" is not auto, 0 or a size in bytes (suffix k, m or g)",
                    s->key, value);
    ld->cfg->memory_budget = n;
    return 0;
}

static int set_durability(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    if (strcmp(value, "fsync") == 0)
        ld->cfg->durability = DURABILITY_FSYNC;
    else if (strcmp(value, "normal") == 0)
        ld->cfg->durability = DURABILITY_NORMAL;
    else if (strcmp(value, "memory") == 0)
        ld->cfg->durability = DURABILITY_MEMORY;
    else
        return fail(ld, "durability: \"%s\" is not one of fsync, normal, memory", value);
    return 0;
}

static int set_test_mode(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    if (strcmp(value, "auto") == 0)
        ld->cfg->test_mode = TEST_MODE_AUTO;
    else if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
        ld->cfg->test_mode = TEST_MODE_ON;
    else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
        ld->cfg->test_mode = TEST_MODE_OFF;
    else
        return fail(ld, "test_mode: \"%s\" is not one of auto, on, off", value);
    return 0;
}

static int set_limits(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    if (strcmp(value, "strict") == 0)
        ld->cfg->relaxed_limits = false;
    else if (strcmp(value, "relaxed") == 0)
        ld->cfg->relaxed_limits = true;
    else
        return fail(ld, "limits: \"%s\" is not strict or relaxed", value);
    return 0;
}

static int set_log_level(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    if (!log_parse_level(value, &ld->cfg->log_level))
        return fail(ld, "log_level: \"%s\" is not one of error, warn, info, debug", value);
    return 0;
}

static int set_log_format(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    if (!log_parse_format(value, &ld->cfg->log_format))
        return fail(ld, "log_format: \"%s\" is not text or json", value);
    return 0;
}

static void free_token(struct api_token *t)
{
    free(t->token);
    for (size_t i = 0; i < t->n_projects; i++)
        free(t->projects[i]);
    free(t->projects);
}

static void free_tokens(struct api_token *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free_token(&items[i]);
    free(items);
}

/* "TOKEN" or "TOKEN:*" grant every project; "TOKEN:p1,p2" only those. */
static int parse_token(struct loader *ld, const char *spec, struct api_token *t)
{
    memset(t, 0, sizeof(*t));
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0)
        return fail(ld, "token: \"%s\" has an empty token", spec);
    for (size_t i = 0; i < len; i++)
        if (spec[i] == ' ' || spec[i] == '\t' || spec[i] == ',' || spec[i] == ';')
            return fail(ld, "token: \"%s\": a token cannot contain spaces, ',' or ';'", spec);
    if (!(t->token = strndup(spec, len)))
        return fail(ld, "out of memory");
    const char *list = colon ? colon + 1 : "*";
    if (strcmp(list, "*") == 0 || *list == '\0') {
        t->all_projects = true;
        return 0;
    }
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n) {
            char **grown = realloc(t->projects, (t->n_projects + 1) * sizeof(*grown));
            if (!grown || !(grown[t->n_projects] = strndup(p, n))) {
                if (grown)
                    t->projects = grown;
                free_token(t);
                return fail(ld, "out of memory");
            }
            t->projects = grown;
            t->n_projects++;
        }
        p = comma ? comma + 1 : p + n;
    }
    if (t->n_projects == 0) {
        free_token(t);
        return fail(ld, "token: \"%s\" names no project", spec);
    }
    return 0;
}

static int add_token(struct loader *ld, const char *spec)
{
    struct token_list *list = &ld->tokens[ld->source];
    struct api_token t;
    if (parse_token(ld, spec, &t) != 0)
        return -1;
    struct api_token *grown = realloc(list->items, (list->n + 1) * sizeof(*grown));
    if (!grown) {
        free_token(&t);
        return fail(ld, "out of memory");
    }
    list->items = grown;
    list->items[list->n++] = t;
    return 0;
}

/* A repeatable setting: one item per file line or flag; the environment holds them all in
 * one variable, separated by spaces or ';'. */
static int add_each(struct loader *ld, const char *value, int (*add)(struct loader *, const char *))
{
    if (ld->source != SRC_ENV)
        return add(ld, value);
    char *copy = strdup(value);
    if (!copy)
        return fail(ld, "out of memory");
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(copy, " \t;\n", &save); tok && rc == 0;
         tok = strtok_r(NULL, " \t;\n", &save))
        rc = add(ld, tok);
    free(copy);
    return rc;
}

static int set_tokens(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    return add_each(ld, value, add_token);
}

static void free_sqs_keys(struct api_sqs_key *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].access_key);
        free(items[i].secret);
        free(items[i].project);
    }
    free(items);
}

/* "ACCESS_KEY:SECRET:PROJECT": requests signed with the key act in the project. */
static int add_sqs_key(struct loader *ld, const char *spec)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == spec || c2 == c1 + 1 || !c2[1] || !api_valid_name(c2 + 1) ||
        strpbrk(spec, " \t;"))
        return fail(ld, "sqs_key: \"%s\" is not ACCESS_KEY:SECRET:PROJECT (no spaces or ';';"
                        " the access key without ':')", spec);
    struct sqs_key_list *list = &ld->sqs_keys[ld->source];
    struct api_sqs_key *grown = realloc(list->items, (list->n + 1) * sizeof(*grown));
    if (!grown)
        return fail(ld, "out of memory");
    list->items = grown;
    struct api_sqs_key *k = &list->items[list->n];
    k->access_key = strndup(spec, (size_t)(c1 - spec));
    k->secret = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    k->project = strdup(c2 + 1);
    list->n++;
    if (!k->access_key || !k->secret || !k->project)
        return fail(ld, "out of memory");
    return 0;
}

static int set_sqs_keys(struct loader *ld, const struct setting *s, const char *value)
{
    (void)s;
    return add_each(ld, value, add_sqs_key);
}

#define AT(field) offsetof(struct config, field)
static const struct setting settings[] = {
    {"host", "ANVIL_HOST", "ADDR", "127.0.0.1",
     "address to listen on; anything but loopback requires tokens", set_string, AT(host)},
    {"port", "ANVIL_PORT", "PORT", "8080", "TCP port (0 picks a free one)", set_unsigned, AT(port)},
    {"data_dir", "ANVIL_DATA_DIR", "DIR", "./anvil-data",
     "directory of the database (created if missing)", set_string, AT(data_dir)},
    {"durability", "ANVIL_DURABILITY", "MODE", "fsync",
     "fsync (flush every group commit), normal (safe against a process crash), memory (nothing on disk)",
     set_durability, 0},
    {"log_level", "ANVIL_LOG_LEVEL", "LEVEL", "info",
     "error, warn, info (one line per request) or debug; SIGHUP reloads it", set_log_level, 0},
    {"log_format", "ANVIL_LOG_FORMAT", "text|json", "text",
     "text (for people) or json (one JSON object per line, for log shippers); SIGHUP reloads it",
     set_log_format, 0},
    {"slow_request_ms", "ANVIL_SLOW_REQUEST_MS", "MS", "1000",
     "log a warning for a request that took longer (long polls and streams excepted); 0: off",
     set_unsigned, AT(slow_request_ms)},
    {"slow_commit_ms", "ANVIL_SLOW_COMMIT_MS", "MS", "200",
     "log a warning for a group commit (fsync included) that took longer; 0: off",
     set_unsigned, AT(slow_commit_ms)},
    {"memory_budget", "ANVIL_MEMORY_BUDGET", "BYTES", "auto",
     "memory for messages; past it bodies stay on disk until needed (auto: half the RAM, 0: no limit)",
     set_memory_budget, 0},
    {"max_message_size", "ANVIL_MAX_MESSAGE_SIZE", "BYTES", "65536",
     "largest message body accepted", set_size, AT(max_message_size)},
    {"max_request_size", "ANVIL_MAX_REQUEST_SIZE", "BYTES", "16m",
     "largest request body accepted", set_size, AT(max_request_size)},
    {"connection_limit", "ANVIL_CONNECTION_LIMIT", "N", "10000",
     "most client connections open at once", set_unsigned, AT(connection_limit)},
    {"idle_timeout", "ANVIL_IDLE_TIMEOUT", "SECONDS", "120",
     "close a connection idle this long", set_unsigned, AT(idle_timeout_s)},
    {"shutdown_timeout", "ANVIL_SHUTDOWN_TIMEOUT", "SECONDS", "10",
     "on SIGTERM, how long to let requests in progress finish", set_unsigned,
     AT(shutdown_timeout_s)},
    {"metrics_queue_limit", "ANVIL_METRICS_QUEUE_LIMIT", "N", "100",
     "GET /metrics labels the depth of this many queues (by project, then name); the rest are summed",
     set_unsigned, AT(metrics_queue_limit)},
    {"push_timeout", "ANVIL_PUSH_TIMEOUT", "SECONDS", "10",
     "how long a push subscriber may take to answer (connecting included) before a retry",
     set_unsigned, AT(push_timeout_s)},
    {"push_concurrency", "ANVIL_PUSH_CONCURRENCY", "N", "64",
     "push requests out at once, over all subscribers; more wait their turn", set_unsigned,
     AT(push_concurrency)},
    {"push_subscriber_concurrency", "ANVIL_PUSH_SUBSCRIBER_CONCURRENCY", "N", "8",
     "push requests out at once to one subscriber (a slow one cannot take every slot)",
     set_unsigned, AT(push_subscriber_concurrency)},
    {"push_connect_timeout", "ANVIL_PUSH_CONNECT_TIMEOUT", "SECONDS", "5",
     "how long connecting to a push subscriber may take (within push_timeout)", set_unsigned,
     AT(push_connect_timeout_s)},
    {"push_allow", "ANVIL_PUSH_ALLOW", "HOSTS", "",
     "hosts push subscribers may be at: names, *.domain patterns, separated by commas; "
     "empty: any (subscribers pointing back at their own queue are always refused)",
     set_string, AT(push_allow)},
    {"token", "ANVIL_TOKENS", "TOKEN[:P1,P2]", "",
     "an API token and the projects it may use (all when none listed); repeatable. "
     "With no token at all, anvil is a dev server: loopback only, any token accepted",
     set_tokens, 0},
    {"sqs_key", "ANVIL_SQS_KEYS", "KEY:SECRET:PROJECT", "",
     "an access key the SQS API accepts, its secret (signatures are checked) and the project "
     "it acts in; repeatable. With none, the SQS API takes any key in dev mode, and the "
     "PROJECT:TOKEN access key (any secret) wherever a token is valid",
     set_sqs_keys, 0},
    {"backend", "ANVIL_BACKEND", "sqlite|URL", "sqlite",
     "where state lives: sqlite (the embedded back end, in data_dir) or a postgres:// URL "
     "(first cut: pull queues; docs/scale-out.md)",
     set_string, AT(backend)},
    {"sqs_account", "ANVIL_SQS_ACCOUNT", "PROJECT", "000000000000",
     "the project of SQS requests whose key and queue URL name none (dev mode)",
     set_string, AT(sqs_account)},
    {"sqs_region", "ANVIL_SQS_REGION", "REGION", "us-east-1", "the region in SQS queue ARNs",
     set_string, AT(sqs_region)},
    {"test_mode", "ANVIL_TEST_MODE", "auto|on|off", "auto",
     "the test kit under /admin/ (virtual clock, reset, snapshots, faults, push sink; "
     "docs/testing-with-anvil.md); auto: on in dev mode (no tokens) only; --test-mode alone: on",
     set_test_mode, 0},
    {"limits", "ANVIL_LIMITS", "strict|relaxed", "strict",
     "strict: the hosted service's limits; relaxed (for tests): timeouts and expirations from "
     "1 s, bodies up to max_request_size",
     set_limits, 0},
    {"init", "ANVIL_INIT", "FILE", "",
     "a fixture (JSON: projects, queues, messages) loaded at start; needs test mode",
     set_string, AT(init_file)},
};
enum { N_SETTINGS = sizeof(settings) / sizeof(settings[0]) };

static const struct setting *find_setting(const char *key, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *k = settings[i].key;
        if (strlen(k) != len)
            continue;
        bool same = true;
        for (size_t j = 0; j < len && same; j++)
            same = k[j] == key[j] || (k[j] == '_' && key[j] == '-');
        if (same)
            return &settings[i];
    }
    return NULL;
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: anvil [options]\n\n"
                 "An IronMQ v3 compatible message queue server.\n\n"
                 "  -c, --config FILE           read settings from FILE (env ANVIL_CONFIG)\n"
                 "  -h, --help                  show this help\n"
                 "      --version               show the version\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s %s", s->key, s->arg);
        for (char *p = flag; *p && *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "      %-26s %s\n", flag, s->help);
        fprintf(out, "      %-26s env %s%s%s\n", "", s->env, s->def[0] ? ", default " : "",
                s->def);
    }
    fprintf(out, "\nPrecedence: flags, then environment, then the config file, then defaults.\n");
}

bool config_test_mode_on(const struct config *cfg)
{
    return cfg->test_mode == TEST_MODE_ON || (cfg->test_mode == TEST_MODE_AUTO && cfg->n_tokens == 0);
}

const char *durability_name(enum durability d)
{
    return d == DURABILITY_MEMORY ? "memory" : d == DURABILITY_NORMAL ? "normal" : "fsync";
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    if (end - s >= 2 && s[0] == '"' && end[-1] == '"') {
        end[-1] = '\0';
        s++;
    }
    return s;
}

/* Parses config-file text; `name` labels errors ("anvil.conf:12: ..."). */
static int parse_text(struct loader *ld, const char *text, size_t len, const char *name)
{
    int lineno = 0, rc = 0;
    ld->source = SRC_FILE;
    for (size_t pos = 0; rc == 0 && pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char line[4096];
        lineno++;
        if (line_len >= sizeof(line))
            return fail(ld, "%s:%d: line too long", name, lineno);
        memcpy(line, text + pos, line_len);
        line[line_len] = '\0';
        pos += line_len + (nl ? 1 : 0);
        if (strlen(line) != line_len)
            return fail(ld, "%s:%d: NUL byte in line", name, lineno);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *body = trim(line);
        if (!*body)
            continue;
        char *eq = strchr(body, '=');
        if (!eq)
            return fail(ld, "%s:%d: expected key = value", name, lineno);
        *eq = '\0';
        char *key = trim(body), *value = trim(eq + 1);
        const struct setting *s = find_setting(key, strlen(key));
        if (!s)
            return fail(ld, "%s:%d: unknown setting \"%s\"", name, lineno, key);
        if (s->apply(ld, s, value) != 0) {
            char reason[512];
            snprintf(reason, sizeof(reason), "%s", ld->err);
            rc = fail(ld, "%s:%d: %s", name, lineno, reason);
        }
    }
    return rc;
}

static int load_file(struct loader *ld, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(ld, "cannot read config file %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + got > (size_t)1 << 20) {
            fclose(f);
            free(text);
            return fail(ld, "config file %s is larger than 1 MiB", path);
        }
        if (len + got > cap) {
            cap = (len + got) * 2;
            char *grown = realloc(text, cap);
            if (!grown) {
                fclose(f);
                free(text);
                return fail(ld, "out of memory");
            }
            text = grown;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    fclose(f);
    int rc = parse_text(ld, text ? text : "", len, path);
    free(text);
    return rc;
}

static int load_env(struct loader *ld)
{
    ld->source = SRC_ENV;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *value = getenv(settings[i].env);
        if (value && settings[i].apply(ld, &settings[i], value) != 0) {
            char reason[512];
            snprintf(reason, sizeof(reason), "%s", ld->err);
            return fail(ld, "%s: %s", settings[i].env, reason);
        }
    }
    return 0;
}

/* Splits "--key=value" / "--key value"; returns the number of argv slots used, 0 on error. */
static int flag_value(struct loader *ld, int argc, char **argv, int i, const char **name,
                      size_t *name_len, const char **value)
{
    const char *arg = argv[i] + 2;
    const char *eq = strchr(arg, '=');
    *name = arg;
    *name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (eq) {
        *value = eq + 1;
        return 1;
    }
    /* --test-mode alone turns it on */
    if (strcmp(arg, "test-mode") == 0 && (i + 1 >= argc || !argv[i + 1] || strncmp(argv[i + 1], "--", 2) == 0)) {
        *value = "on";
        return 1;
    }
    if (i + 1 >= argc) {
        fail(ld, "--%s needs a value", arg);
        return 0;
    }
    *value = argv[i + 1];
    return 2;
}

static int load_flags(struct loader *ld, int argc, char **argv)
{
    ld->source = SRC_FLAG;
    for (int i = 1; i < argc;) {
        const char *arg = argv[i], *name, *value;
        size_t name_len;
        if (!arg)
            break;
        if (strcmp(arg, "-c") == 0) {
            i += 2; /* the config file was read already */
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return fail(ld, "unexpected argument \"%s\" (see --help)", arg);
        int used = flag_value(ld, argc, argv, i, &name, &name_len, &value);
        if (!used)
            return -1;
        if (name_len == 6 && strncmp(name, "config", 6) == 0) {
            i += used;
            continue;
        }
        const struct setting *s = find_setting(name, name_len);
        if (!s)
            return fail(ld, "unknown option --%.*s (see --help)", (int)name_len, name);
        if (s->apply(ld, s, value) != 0)
            return -1;
        i += used;
    }
    return 0;
}

static int set_defaults(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].def[0] && settings[i].apply(ld, &settings[i], settings[i].def) != 0)
            return -1;
    return 0;
}

static int check(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    if (cfg->max_message_size > cfg->max_request_size)
        return fail(ld, "max_message_size (%zu) is larger than max_request_size (%zu)",
                    cfg->max_message_size, cfg->max_request_size);
    if (cfg->connection_limit == 0)
        return fail(ld, "connection_limit must be at least 1");
    if (!cfg->data_dir[0] && cfg->durability != DURABILITY_MEMORY)
        return fail(ld, "data_dir is empty");
    if (strcmp(cfg->backend, "sqlite") != 0 && strncmp(cfg->backend, "postgres://", 11) != 0 &&
        strncmp(cfg->backend, "postgresql://", 13) != 0)
        return fail(ld, "backend: \"%s\" is not sqlite or a postgres:// URL", cfg->backend);
    if (!api_valid_name(cfg->sqs_account))
        return fail(ld, "sqs_account: \"%s\" is not a project name", cfg->sqs_account);
    if (!cfg->sqs_region[0] || strspn(cfg->sqs_region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                                   strlen(cfg->sqs_region))
        return fail(ld, "sqs_region: \"%s\" must be lowercase letters, digits and '-'", cfg->sqs_region);
    return 0;
}

enum config_result config_load(struct config *cfg, int argc, char **argv, char *err, size_t err_len)
{
    struct loader ld = {.cfg = cfg, .err = err, .err_len = err_len};
    const char *file = getenv("ANVIL_CONFIG");
    enum config_result result = CONFIG_ERROR;
    memset(cfg, 0, sizeof(*cfg)); /* config_free() must be safe on every path out */

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            config_usage(stdout);
            return CONFIG_EXIT;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("anvil %s\n", ANVIL_VERSION);
            return CONFIG_EXIT;
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    if (set_defaults(&ld) != 0)
        goto out;
    if (file && *file) {
        if (load_file(&ld, file) != 0)
            goto out;
        cfg->config_file = strdup(file);
    }
    if (load_env(&ld) != 0 || load_flags(&ld, argc, argv) != 0 || check(&ld) != 0)
        goto out;
    for (int src = SRC_COUNT - 1; src >= 0; src--) {
        if (ld.tokens[src].n) {
            cfg->tokens = ld.tokens[src].items;
            cfg->n_tokens = ld.tokens[src].n;
            ld.tokens[src] = (struct token_list){0};
            break;
        }
    }
    for (int src = SRC_COUNT - 1; src >= 0; src--) {
        if (ld.sqs_keys[src].n) {
            cfg->sqs_keys = ld.sqs_keys[src].items;
            cfg->n_sqs_keys = ld.sqs_keys[src].n;
            ld.sqs_keys[src] = (struct sqs_key_list){0};
            break;
        }
    }
    if (cfg->init_file && cfg->init_file[0] && !config_test_mode_on(cfg)) {
        fail(&ld, "init: a fixture needs test mode (--test-mode, or dev mode without tokens)");
        goto out;
    }
    result = CONFIG_OK;
out:
    for (int src = 0; src < SRC_COUNT; src++) {
        free_tokens(ld.tokens[src].items, ld.tokens[src].n);
        free_sqs_keys(ld.sqs_keys[src].items, ld.sqs_keys[src].n);
    }
    return result;
}

enum config_result config_load_text(struct config *cfg, const char *text, size_t len, char *err,
                                    size_t err_len)
{
    struct loader ld = {.cfg = cfg, .err = err, .err_len = err_len};
    enum config_result result = CONFIG_ERROR;
    if (set_defaults(&ld) == 0 && parse_text(&ld, text, len, "config") == 0 && check(&ld) == 0) {
        cfg->tokens = ld.tokens[SRC_FILE].items;
        cfg->n_tokens = ld.tokens[SRC_FILE].n;
        ld.tokens[SRC_FILE] = (struct token_list){0};
        cfg->sqs_keys = ld.sqs_keys[SRC_FILE].items;
        cfg->n_sqs_keys = ld.sqs_keys[SRC_FILE].n;
        ld.sqs_keys[SRC_FILE] = (struct sqs_key_list){0};
        result = CONFIG_OK;
    }
    free_tokens(ld.tokens[SRC_FILE].items, ld.tokens[SRC_FILE].n);
    free_sqs_keys(ld.sqs_keys[SRC_FILE].items, ld.sqs_keys[SRC_FILE].n);
    return result;
}

void config_free(struct config *cfg)
{
    free(cfg->host);
    free(cfg->data_dir);
    free(cfg->config_file);
    free(cfg->push_allow);
    free_tokens(cfg->tokens, cfg->n_tokens);
    free_sqs_keys(cfg->sqs_keys, cfg->n_sqs_keys);
    free(cfg->sqs_account);
    free(cfg->backend);
    free(cfg->sqs_region);
    free(cfg->init_file);
    memset(cfg, 0, sizeof(*cfg));
}
