/* ctl/main.c — anvilctl, anvil's command-line client: reads the settings (flags beat
 * ANVIL_* variables beat the config file), finds the command, checks its arguments, prints
 * --help for the program and every command, and runs it. The commands themselves live in
 * queues.c, messages.c and server.c, the settings' sources in settings.c; exit codes are
 * listed in ctl.h. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"


static const struct {
    const struct ctl_command *list;
    const size_t *count;
} command_groups[] = {
    {ctl_queue_commands, &ctl_queue_command_count},
    {ctl_message_commands, &ctl_message_command_count},
    {ctl_server_commands, &ctl_server_command_count},
};

static const char *program_help =
    "usage: anvilctl [global options] COMMAND [arguments] [options]\n"
    "\n"
    "anvilctl talks to an anvil server over its IronMQ v3 API (and /health, /stats).\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  --url URL         the server (ANVIL_URL, config `url`; default http://127.0.0.1:8080)\n"
    "  --project, -p ID  the project (ANVIL_PROJECT, config `project`; default \"default\")\n"
    "  --token TOKEN     sent as `Authorization: OAuth TOKEN` (ANVIL_TOKEN, config `token`;\n"
    "                    default none, which a dev-mode server accepts)\n"
    "  --config FILE     settings file (ANVILCTL_CONFIG; default\n"
    "                    ~/.config/anvil/anvilctl.conf if it exists): `key = value` lines,\n"
    "                    keys url, project, token, data_dir; `#` starts a comment\n"
    "  --json            print JSON (the server's answer) instead of tables\n"
    "  --help, -h        this help, or a command's (`anvilctl COMMAND --help`)\n"
    "  --version         print anvilctl's version\n"
    "Flags beat ANVIL_* environment variables, which beat the config file. Use `--` before\n"
    "message bodies that start with `-`.\n"
    "\n"
    "Exit codes:\n"
    "  0  done (health: healthy)\n"
    "  1  the server answered an error, e.g. 400, 403, 503 (health: degraded)\n"
    "  2  bad usage: unknown command or option, missing or extra arguments, bad settings\n"
    "  3  the server cannot be reached (refused, timed out, bad address)\n"
    "  4  not found: the server answered 404 (no such queue or message)\n"
    "\n"
    "Commands:\n";

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("anvilctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CTL_USAGE;
}

static void print_program_help(FILE *out)
{
    fputs(program_help, out);
    for (size_t g = 0; g < sizeof(command_groups) / sizeof(command_groups[0]); g++)
        for (size_t i = 0; i < *command_groups[g].count; i++) {
            const struct ctl_command *c = &command_groups[g].list[i];
            fprintf(out, "  %-20s %s\n", c->name, c->summary);
        }
    fputs("\nRun `anvilctl COMMAND --help` for a command's arguments and options.\n", out);
}

static void print_command_help(const struct ctl_command *c)
{
    printf("usage: anvilctl %s%s%s\n\n%s.\n\n%s", c->name, c->usage[0] ? " " : "", c->usage,
           c->summary, c->help);
    printf("\nGlobal options (--url, --project, --token, --config, --json) and exit codes:\n"
           "see `anvilctl --help`.\n");
}

/* The command whose name is words[0] or "words[0] words[1]"; *used says how many words. */
static const struct ctl_command *find_command(char **words, int n, int *used)
{
    for (size_t g = 0; g < sizeof(command_groups) / sizeof(command_groups[0]); g++)
        for (size_t i = 0; i < *command_groups[g].count; i++) {
            const struct ctl_command *c = &command_groups[g].list[i];
            size_t len = strlen(words[0]);
            if (strcmp(c->name, words[0]) == 0) {
                *used = 1;
                return c;
            }
            if (n >= 2 && strncmp(c->name, words[0], len) == 0 && c->name[len] == ' ' &&
                strcmp(c->name + len + 1, words[1]) == 0) {
                *used = 2;
                return c;
            }
        }
    return NULL;
}

/* Lists the sub-commands of a group ("queues") for `anvilctl queues`. */
static bool is_group(const char *word)
{
    return strcmp(word, "queues") == 0 || strcmp(word, "subscribers") == 0;
}

static void print_group_help(FILE *out, const char *group)
{
    fprintf(out, "usage: anvilctl %s SUBCOMMAND ...\n\nSubcommands:\n", group);
    size_t len = strlen(group);
    for (size_t i = 0; i < ctl_queue_command_count; i++) {
        const struct ctl_command *c = &ctl_queue_commands[i];
        if (strncmp(c->name, group, len) == 0 && c->name[len] == ' ')
            fprintf(out, "  %-20s %s\n", c->name, c->summary);
    }
}

enum {
    OPT_URL = 1000, OPT_PROJECT, OPT_TOKEN, OPT_CONFIG, OPT_JSON, OPT_VERSION, OPT_DATA_DIR,
    OPT_TYPE, OPT_MESSAGE_TIMEOUT, OPT_MESSAGE_EXPIRATION, OPT_DEAD_LETTER_QUEUE,
    OPT_DEAD_LETTER_MAX, OPT_PUSH_SUBSCRIBER, OPT_RETRIES, OPT_RETRIES_DELAY, OPT_ERROR_QUEUE,
    OPT_TIMEOUT, OPT_WAIT, OPT_DELETE, OPT_RESERVATION_ID, OPT_DELAY, OPT_PREFIX,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"project", required_argument, NULL, 'p'},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"type", required_argument, NULL, OPT_TYPE},
    {"message-timeout", required_argument, NULL, OPT_MESSAGE_TIMEOUT},
    {"message-expiration", required_argument, NULL, OPT_MESSAGE_EXPIRATION},
    {"dead-letter-queue", required_argument, NULL, OPT_DEAD_LETTER_QUEUE},
    {"dead-letter-max", required_argument, NULL, OPT_DEAD_LETTER_MAX},
    {"push-subscriber", required_argument, NULL, OPT_PUSH_SUBSCRIBER},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"retries-delay", required_argument, NULL, OPT_RETRIES_DELAY},
    {"error-queue", required_argument, NULL, OPT_ERROR_QUEUE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"delete", no_argument, NULL, OPT_DELETE},
    {"reservation-id", required_argument, NULL, OPT_RESERVATION_ID},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {NULL, 0, NULL, 0},
};

/* A whole non-negative decimal number, or a usage error naming the option. */
static int parse_count(const char *name, const char *text, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return ctl_usage_error("--%s: \"%s\" is not a whole number of 0 or more", name, text);
    *out = v;
    return CTL_OK;
}

/* Applies one command option; numbers go through parse_count. */
static int take_option(struct ctl_args *a, int opt, const char *arg)
{
    static const struct {
        int opt;
        unsigned long long bit;
        size_t offset;
        const char *name;
    } numbers[] = {
        {OPT_MESSAGE_TIMEOUT, CTL_OPT_MESSAGE_TIMEOUT, offsetof(struct ctl_args, message_timeout), "message-timeout"},
        {OPT_MESSAGE_EXPIRATION, CTL_OPT_MESSAGE_EXPIRATION, offsetof(struct ctl_args, message_expiration), "message-expiration"},
        {OPT_DEAD_LETTER_MAX, CTL_OPT_DEAD_LETTER_MAX, offsetof(struct ctl_args, dead_letter_max), "dead-letter-max"},
        {OPT_RETRIES, CTL_OPT_RETRIES, offsetof(struct ctl_args, retries), "retries"},
        {OPT_RETRIES_DELAY, CTL_OPT_RETRIES_DELAY, offsetof(struct ctl_args, retries_delay), "retries-delay"},
        {'n', CTL_OPT_N, offsetof(struct ctl_args, n), "n"},
        {OPT_TIMEOUT, CTL_OPT_TIMEOUT, offsetof(struct ctl_args, timeout), "timeout"},
        {OPT_WAIT, CTL_OPT_WAIT, offsetof(struct ctl_args, wait), "wait"},
        {OPT_DELAY, CTL_OPT_DELAY, offsetof(struct ctl_args, delay), "delay"},
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (numbers[i].opt == opt) {
            a->given |= numbers[i].bit;
            return parse_count(numbers[i].name, arg,
                               (long long *)(void *)((char *)a + numbers[i].offset));
        }
    switch (opt) {
    case OPT_TYPE: a->given |= CTL_OPT_TYPE; a->type = arg; break;
    case OPT_DEAD_LETTER_QUEUE: a->given |= CTL_OPT_DEAD_LETTER_QUEUE; a->dead_letter_queue = arg; break;
    case OPT_ERROR_QUEUE: a->given |= CTL_OPT_ERROR_QUEUE; a->error_queue = arg; break;
    case OPT_RESERVATION_ID: a->given |= CTL_OPT_RESERVATION_ID; a->reservation_id = arg; break;
    case OPT_PREFIX: a->given |= CTL_OPT_PREFIX; a->prefix = arg; break;
    case OPT_DELETE: a->given |= CTL_OPT_DELETE; a->delete_ = true; break;
    case OPT_DATA_DIR: a->given |= CTL_OPT_DATA_DIR; a->data_dir = arg; break;
    case OPT_PUSH_SUBSCRIBER:
        a->given |= CTL_OPT_PUSH_SUBSCRIBER;
        if (a->n_subscribers == CTL_MAX_SUBSCRIBERS)
            return ctl_usage_error("--push-subscriber: at most %d", CTL_MAX_SUBSCRIBERS);
        a->subscribers[a->n_subscribers++] = (char *)arg;
        break;
    default:
        return CTL_USAGE; /* getopt printed why */
    }
    return CTL_OK;
}

static int parse_flags(struct ctl_args *a, int argc, char **argv, bool *version)
{
    int opt;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "p:hn:", long_options, NULL)) != -1) {
        int rc = CTL_OK;
        switch (opt) {
        case OPT_URL: a->url = optarg; break;
        case 'p': a->project = optarg; break;
        case OPT_TOKEN: a->token = optarg; break;
        case OPT_CONFIG: a->config = optarg; break;
        case OPT_JSON: a->json = true; break;
        case 'h': a->help = true; break;
        case OPT_VERSION: *version = true; break;
        default: rc = take_option(a, opt, optarg); break;
        }
        if (rc != CTL_OK)
            return rc;
    }
    a->words = argv + optind;
    a->n_words = argc - optind;
    return CTL_OK;
}

/* ---- the command ---- */

static int usage_of(const struct ctl_command *c, int rc)
{
    fprintf(stderr, "usage: anvilctl %s%s%s\nRun `anvilctl %s --help` for more.\n", c->name,
            c->usage[0] ? " " : "", c->usage, c->name);
    return rc;
}

/* Checks the options and word count of command c; prints its usage when they are wrong. */
static int check_command(const struct ctl_command *c, struct ctl_args *a)
{
    static const char *const names[] = {
        "--type", "--message-timeout", "--message-expiration", "--dead-letter-queue",
        "--dead-letter-max", "--push-subscriber", "--retries", "--retries-delay",
        "--error-queue", "-n", "--timeout", "--wait", "--delete", "--reservation-id",
        "--delay", "--prefix", "--data-dir",
    };
    unsigned long long stray = a->given & ~c->options;
    for (size_t i = 0; stray && i < sizeof(names) / sizeof(names[0]); i++)
        if (stray & (1ull << i))
            return usage_of(c, ctl_usage_error("%s: %s does not apply", c->name, names[i]));
    if (a->n_words < c->min_words)
        return usage_of(c, ctl_usage_error("%s: missing arguments", c->name));
    if (c->max_words >= 0 && a->n_words > c->max_words)
        return usage_of(c, ctl_usage_error("%s: too many arguments", c->name));
    return CTL_OK;
}

/* `anvilctl help [COMMAND...]`. */
static int run_help(char **words, int n)
{
    int used = 0;
    if (n == 0) {
        print_program_help(stdout);
        return CTL_OK;
    }
    const struct ctl_command *c = find_command(words, n, &used);
    if (c) {
        print_command_help(c);
        return CTL_OK;
    }
    if (is_group(words[0])) {
        print_group_help(stdout, words[0]);
        return CTL_OK;
    }
    return ctl_usage_error("no command \"%s\"; see `anvilctl --help`", words[0]);
}

static int run(struct ctl_args *a, struct ctl_file *fs)
{
    int used = 0;
    if (a->n_words == 0) {
        if (a->help) {
            print_program_help(stdout);
            return CTL_OK;
        }
        print_program_help(stderr);
        return CTL_USAGE;
    }
    if (strcmp(a->words[0], "help") == 0)
        return run_help(a->words + 1, a->n_words - 1);
    const struct ctl_command *c = find_command(a->words, a->n_words, &used);
    if (!c && is_group(a->words[0])) {
        if (a->help && a->n_words == 1) {
            print_group_help(stdout, a->words[0]);
            return CTL_OK;
        }
        print_group_help(stderr, a->words[0]);
        return a->n_words == 1 ? ctl_usage_error("%s: which subcommand?", a->words[0])
                               : ctl_usage_error("%s: no subcommand \"%s\"", a->words[0],
                                                 a->words[1]);
    }
    if (!c)
        return ctl_usage_error("no command \"%s\"; see `anvilctl --help`", a->words[0]);
    if (a->help) {
        print_command_help(c);
        return CTL_OK;
    }
    a->words += used;
    a->n_words -= used;
    int rc = check_command(c, a);
    if (rc == CTL_OK)
        rc = ctl_settings_load(a, fs);
    return rc == CTL_OK ? c->run(a) : rc;
}

int main(int argc, char **argv)
{
    struct ctl_args a = {
        .message_timeout = -1, .message_expiration = -1, .dead_letter_max = -1,
        .retries = -1, .retries_delay = -1, .n = -1, .timeout = -1, .wait = -1, .delay = -1,
    };
    struct ctl_file fs = {0};
    bool version = false;
    argv[0] = "anvilctl"; /* getopt's messages name the program */
    int rc = parse_flags(&a, argc, argv, &version);
    if (rc != CTL_OK) {
        fputs("Run `anvilctl --help` for usage.\n", stderr);
        return rc;
    }
    if (version) {
        printf("anvilctl %s\n", ANVIL_VERSION);
        return CTL_OK;
    }
    ctl_http_init();
    rc = run(&a, &fs);
    fflush(stdout);
    ctl_http_cleanup();
    ctl_settings_free(&fs);
    return rc;
}
