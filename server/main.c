/* server/main.c — the anvil binary: read the settings, open (and recover) the engine,
 * listen, announce readiness, run the loop, shut down cleanly. Start-up problems end the
 * process with a one-line reason and exit status 1 (2 for bad settings), never a crash.
 * Once accepting requests it prints one line on stdout for scripts and test harnesses:
 *   anvil ready http://127.0.0.1:8080
 * Two subcommands work on a data directory instead of serving it:
 *   anvil backup FILE [--data-dir DIR]    consistent copy, also while anvil runs
 *   anvil restore FILE [--data-dir DIR]   put a backup in place; anvil must be stopped */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../api/admin.h"
#include "../api/api.h"
#include "../api/dash.h"
#include "../api/metrics.h"
#include "../storage/backup.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "observe.h"
#include "pusher.h"
#include "reload.h"

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* Binds and listens; writes the address for the ready line into url. */
static int open_listener(const struct config *cfg, char *url, size_t url_len, char *err,
                         size_t err_len)
{
    char port[16];
    snprintf(port, sizeof(port), "%u", cfg->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve host \"%s\": %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (cfg->n_tokens == 0 && !is_loopback(ai->ai_addr)) {
            snprintf(err, err_len,
                     "refusing to listen on %s without tokens: with no token configured anvil is "
                     "a dev server and listens on loopback only (set --token or ANVIL_TOKENS, or "
                     "use --host 127.0.0.1)",
                     cfg->host);
            fd = -2;
            break;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        snprintf(err, err_len, "cannot listen on %s port %s: %s", cfg->host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } bound;
    socklen_t len = sizeof(bound);
    char host[INET6_ADDRSTRLEN] = "?";
    memset(&bound, 0, sizeof(bound));
    if (getsockname(fd, &bound.sa, &len) != 0) {
        snprintf(err, err_len, "getsockname: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bound.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &bound.in6.sin6_addr, host, sizeof(host));
        snprintf(url, url_len, "http://[%s]:%u", host, (unsigned)ntohs(bound.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &bound.in.sin_addr, host, sizeof(host));
        snprintf(url, url_len, "http://%s:%u", host, (unsigned)ntohs(bound.in.sin_port));
    }
    return fd;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The memory budget for messages: as configured, or half of the machine's memory. */
static uint64_t memory_budget(const struct config *cfg)
{
    if (cfg->memory_budget != CONFIG_MEMORY_AUTO)
        return cfg->memory_budget;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 2 : 0;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
    return seed;
}

/* `anvil backup|restore FILE [settings]`: the settings say where the data directory is. */
static int data_tool(int argc, char **argv)
{
    struct config cfg = {0};
    struct store_summary sum = {0};
    char err[1024] = "";
    bool backup = strcmp(argv[1], "backup") == 0;
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "usage: anvil %s FILE [--data-dir DIR | --config FILE]\n", argv[1]);
        return 2;
    }
    const char *file = argv[2];
    argv[2] = argv[0]; /* settings parsing sees: anvil [options] */
    enum config_result cr = config_load(&cfg, argc - 2, argv + 2, err, sizeof(err));
    int rc = cr == CONFIG_EXIT ? 0 : 2;
    if (cr == CONFIG_OK) {
        rc = backup ? store_backup(cfg.data_dir, file, &sum, err, sizeof(err))
                    : store_restore(cfg.data_dir, file, &sum, err, sizeof(err));
        rc = rc == 0 ? 0 : 1;
    }
    if (rc == 0 && cr == CONFIG_OK)
        printf("%s %s %s %s: %lld queues, %lld messages (schema %lld)\n",
               backup ? "backed up" : "restored", cfg.data_dir, backup ? "to" : "from", file,
               (long long)sum.queues, (long long)sum.messages, (long long)sum.schema_version);
    else if (rc != 0)
        fprintf(stderr, "anvil %s: %s\n", argv[1], err);
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg = {0};
    char err[1024] = "";
    signal(SIGPIPE, SIG_IGN);
    /* A full disk can also be a file size limit: then a write must fail (and be answered
     * with 503), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc >= 2 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0))
        return data_tool(argc, argv);
    switch (config_load(&cfg, argc, argv, err, sizeof(err))) {
    case CONFIG_EXIT:
        config_free(&cfg);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "anvil: %s\n", err);
        config_free(&cfg);
        return 2;
    case CONFIG_OK:
        break;
    }
    reload_apply_logging(&cfg);
    raise_fd_limit();

    int status = 1;
    struct engine *engine = NULL;
    struct http *http = NULL;
    struct pusher *pusher = NULL;
    struct metrics *metrics = NULL;
    struct dash *dash = NULL;
    struct observe observed = {0};
    struct loop loop;
    char url[128] = "";
    int listen_fd = -1;
    int64_t started_us = clock_mono_us();

    if (loop_init(&loop, err, sizeof(err)) != 0)
        goto out;
    loop.shutdown_timeout_s = cfg.shutdown_timeout_s;
    loop.slow_commit_ms = cfg.slow_commit_ms;
    if ((listen_fd = open_listener(&cfg, url, sizeof(url), err, sizeof(err))) < 0)
        goto out;
    struct eng_options eopt = {.backend_url = strcmp(cfg.backend, "sqlite") ? cfg.backend : NULL,
                               .data_dir = cfg.data_dir,
                               .durability = cfg.durability,
                               .now_ms = clock_wall_ms(),
                               .seed = random_seed(),
                               .memory_budget = memory_budget(&cfg)};
    if (!(engine = eng_open(&eopt, err, sizeof(err))))
        goto out;
    struct api api = {.engine = engine,
                      .sqs = {.wall_ms = clock_wall_ms,
                              .keys = cfg.sqs_keys,
                              .n_keys = cfg.n_sqs_keys,
                              .account = cfg.sqs_account,
                              .region = cfg.sqs_region},
                      .tokens = cfg.tokens,
                      .n_tokens = cfg.n_tokens,
                      .limits = {.max_message_size = cfg.relaxed_limits ? cfg.max_request_size
                                                                        : cfg.max_message_size,
                                 .relaxed = cfg.relaxed_limits},
                      .push = {.push_allow = cfg.push_allow,
                               .self_port = strrchr(url, ':') ? (unsigned)strtoul(strrchr(url, ':') + 1, NULL, 10) : 0}};
    if (!(api.metrics = metrics = metrics_new(cfg.metrics_queue_limit, observe_process, &observed))) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    if (!(api.dash = loop.dash = dash = dash_new())) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    loop.clock = (struct vclock){0};
    if (config_test_mode_on(&cfg)) {
        struct admin_options aopt = {.clock = &loop.clock, .wall_ms = clock_wall_ms,
                                     .mono_us = clock_mono_us};
        if (!(api.admin = loop.admin = admin_open(&api, &aopt))) {
            snprintf(err, sizeof(err), "out of memory");
            goto out;
        }
    }
    struct http_options hopt = {.listen_fd = listen_fd,
                                .connection_limit = cfg.connection_limit,
                                .idle_timeout_s = cfg.idle_timeout_s,
                                .max_request_size = cfg.max_request_size,
                                .api = &api,
                                .watch_epoll_fd = loop.epoll_fd,
                                .slow_request_ms = cfg.slow_request_ms};
    if (!(http = http_start(&hopt, err, sizeof(err))))
        goto out;
    listen_fd = -1; /* MHD owns it now */
    observed.http = http;
    if (loop_attach(&loop, http, engine, err, sizeof(err)) != 0)
        goto out;
    /* SIGHUP reads the same command line, environment and config file again */
    struct reload reload = {.argc = argc, .argv = argv, .cfg = &cfg, .api = &api,
                            .http = http, .loop = &loop};
    loop.on_reload = reload_settings;
    loop.reload_ctx = &reload;
    unsigned push_timeout_s = cfg.push_timeout_s ? cfg.push_timeout_s : 10;
    unsigned connect_s = cfg.push_connect_timeout_s ? cfg.push_connect_timeout_s : 5;
    struct pusher_options popt = {
        .timeout_ms = push_timeout_s * 1000u,
        .connect_timeout_ms = (connect_s < push_timeout_s ? connect_s : push_timeout_s) * 1000u,
        .max_in_flight = cfg.push_concurrency ? cfg.push_concurrency : 1,
        .max_per_subscriber = cfg.push_subscriber_concurrency ? cfg.push_subscriber_concurrency : 1,
        .self_url = url};
    if (!(pusher = pusher_open(engine, &popt, err, sizeof(err))) ||
        loop_attach_pusher(&loop, pusher, err, sizeof(err)) != 0)
        goto out;
    observed.pusher = pusher;
    observed.engine = engine;
    observed.dash = dash;
    observed.admin = api.admin; /* the test kit's push log and failing subscribers */
    pusher_set_hooks(pusher, &(struct pusher_hooks){.before_send = observe_push_before_send,
                                                    .after = observe_push_after,
                                                    .ctx = &observed});

    if (cfg.init_file && cfg.init_file[0] &&
        admin_load_file(api.admin, cfg.init_file, err, sizeof(err)) != 0)
        goto out;

    struct eng_stats st;
    eng_stats(engine, &st);
    log_msg(LOG_INFO, "anvil %s listening on %s", ANVIL_VERSION, url);
    if (eopt.backend_url) /* the URL may hold a password: not logged */
        log_msg(LOG_INFO, "backend PostgreSQL: state lives in the database (data_dir and durability unused)");
    else if (cfg.durability == DURABILITY_MEMORY)
        log_msg(LOG_INFO, "durability memory: nothing is written to disk");
    else
        log_msg(LOG_INFO, "data directory %s, durability %s, recovered %llu queues and %llu messages",
                cfg.data_dir, durability_name(cfg.durability), (unsigned long long)st.queues,
                (unsigned long long)st.messages);
    if (st.memory_budget)
        log_msg(LOG_INFO, "memory budget for messages %.1f MiB (%.1f MiB in use, %llu bodies on disk only)",
                (double)st.memory_budget / 1048576.0,
                (double)(st.index_bytes + st.body_bytes) / 1048576.0,
                (unsigned long long)st.cold_messages);
    if (api.admin)
        log_msg(LOG_INFO, "test mode: the test kit answers under /admin/ (docs/testing-with-anvil.md)");
    if (cfg.relaxed_limits)
        log_msg(LOG_INFO, "limits relaxed: timeouts from 1 s, bodies up to %zu bytes",
                cfg.max_request_size);
    if (cfg.n_tokens)
        log_msg(LOG_INFO, "%zu token(s) configured: requests need a valid token", cfg.n_tokens);
    else
        log_msg(LOG_INFO, "dev mode: no tokens configured, any token is accepted (loopback only)");
    log_msg(LOG_INFO, "ready in %.1f ms", (double)(clock_mono_us() - started_us) / 1000.0);
    printf("anvil ready %s\n", url);
    fflush(stdout);
    notify_systemd("READY=1");

    loop_run(&loop);
    status = 0;
out:
    if (status != 0 && cfg.log_format == LOG_JSON) /* a log shipper reads every line */
        log_msg(LOG_ERROR, "%s", err);
    else if (status != 0)
        fprintf(stderr, "anvil: %s\n", err);
    http_stop(http);
    pusher_detach(pusher); /* undelivered pushes start over at the next start */
    if (listen_fd >= 0)
        close(listen_fd);
    admin_close(loop.admin); /* before the engine: the kit may hold calls of its own */
    eng_close(engine);
    pusher_close(pusher);
    metrics_free(metrics);
    dash_free(dash);
    loop_close(&loop);
    if (status == 0)
        log_msg(LOG_INFO, "stopped");
    config_free(&cfg);
    return status;
}
