/* bench/loadgen.c — the load generator: N keep-alive connections driven from one epoll
 * loop, each running a workload script over and over, for a fixed time or count. It speaks
 * HTTP/1.1 (anvil, the bare libmicrohttpd ceiling), beanstalkd's protocol and Redis's RESP,
 * so every system is measured by the same code. Prints one line of results and, with
 * --json, appends them as one JSON object to a file.
 *
 *   loadgen --target anvil|ceiling|beanstalkd|redis --port P [--host 127.0.0.1]
 *           --workload get|cycle|longpoll [--connections 16] [--batch 1] [--duration 5]
 *           [--requests N] [--queues 1] [--zipf 0] [--body-bytes 100] [--queue NAME]
 *           [--wait-interval-ms 10] [--server-pid PID] [--label TEXT] [--json FILE]
 *
 * Workloads:
 *   get      one request per turn: GET /health (anvil) or GET / (ceiling)
 *   cycle    post `batch` messages, reserve `batch`, delete them (by ids, one request when
 *            batch > 1); beanstalkd: put/reserve/delete pipelined `batch` at a time;
 *            redis: LPUSH, LMOVE to a processing list, LREM (the reliable-queue pattern)
 *   post     post `batch` messages per request and nothing else (to fill a queue: with
 *            --requests N it stops after N requests)
 *   longpoll every connection but one long-polls (reserve with wait=30); the last posts one
 *            message every --wait-interval-ms stamped with the send time: the wake latency
 *            is measured from that stamp. With --server-pid the server's CPU is reported
 *            (with no poster it is measured after a 1 s settle, once every waiter is parked).
 * Latencies are per request (get, longpoll wake) or per cycle; percentiles come from a
 * log-linear histogram (64 steps per power of two, under 1.6 % error). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum target { T_ANVIL, T_CEILING, T_BEANSTALKD, T_REDIS };
enum workload { W_GET, W_CYCLE, W_LONGPOLL, W_POST };

struct options {
    enum target target;
    enum workload workload;
    const char *host, *label, *json, *queue;
    int port, connections, batch, queues, body_bytes, wait_interval_ms, server_pid;
    double duration_s, zipf;
    long long requests;
};

/* ---- latency histogram ---- */

enum { SUB = 64, OCTAVES = 40 };
struct hist {
    uint64_t count[OCTAVES * SUB];
    uint64_t n, max;
};

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned oct = msb - 5; /* v >= 64: msb >= 6 */
    unsigned idx = oct * SUB + (unsigned)((v >> (msb - 6)) & (SUB - 1));
    return idx < OCTAVES * SUB ? idx : OCTAVES * SUB - 1;
}

static uint64_t bucket_value(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned oct = idx / SUB, sub = idx % SUB, msb = oct + 5;
    return ((uint64_t)(SUB + sub) << (msb - 6));
}

static void hist_add(struct hist *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->n++;
    if (ns > h->max)
        h->max = ns;
}

static double hist_pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)ceil(p * (double)h->n), seen = 0;
    for (unsigned i = 0; i < OCTAVES * SUB; i++) {
        seen += h->count[i];
        if (seen >= want && want)
            return (double)bucket_value(i) / 1000.0;
    }
    return (double)h->max / 1000.0;
}

/* ---- time ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- connections ---- */

enum { ID_MAX = 100, BUF = 128 * 1024 };

struct conn {
    int fd, index;
    char *out;            /* pending request bytes */
    size_t out_len, out_off;
    char *in;             /* response bytes received */
    size_t in_len;
    int step;             /* where in the script */
    int expect;           /* responses still to come for this step */
    uint64_t t_start, t_cycle;
    char ids[ID_MAX][24];
    char rids[ID_MAX][40];
    int n_ids;
    char queue[96];
    char tube[96]; /* beanstalkd: the tube this connection uses and watches */
    bool poster, waiting;
};

struct run {
    struct options o;
    struct conn *conns;
    int epfd;
    uint64_t t_begin, t_end;
    long long done_requests, done_ops, errors, started;
    struct hist lat;
    bool stopping;
    char *body; /* message body text */
    uint64_t next_post_ns;
    double *zipf_cdf;
};

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static int dial(const struct options *o)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    inet_pton(AF_INET, o->host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("cannot connect to %s", o->host);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void out_append(struct conn *c, const char *data, size_t len)
{
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void out_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->out_len, BUF - c->out_len, fmt, ap);
    va_end(ap);
    c->out_len += (size_t)n;
}

static void http_request(struct run *r, struct conn *c, const char *method, const char *path,
                         const char *body, size_t body_len)
{
    (void)r;
    out_printf(c, "%s %s HTTP/1.1\r\nHost: bench\r\nAuthorization: OAuth bench\r\n", method, path);
    if (body)
        out_printf(c, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body_len);
    else
        out_printf(c, "\r\n");
    if (body)
        out_append(c, body, body_len);
    c->expect++;
}

/* ---- choosing queues (W6) ---- */

static void pick_queue(struct run *r, struct conn *c)
{
    int q = 0;
    if (r->o.queues > 1) {
        double u = (double)random() / RAND_MAX;
        if (r->zipf_cdf) {
            int lo = 0, hi = r->o.queues - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (r->zipf_cdf[mid] < u)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            q = lo;
        } else {
            q = (int)(u * r->o.queues) % r->o.queues;
        }
    }
    snprintf(c->queue, sizeof(c->queue), "%s%d", r->o.queue, q);
}

/* ---- scripts: issue the next step ---- */

static char json_buf[BUF];

static void anvil_post(struct run *r, struct conn *c, const char *body_text)
{
    size_t n = 0;
    n += (size_t)snprintf(json_buf + n, BUF - n, "{\"messages\":[");
    for (int i = 0; i < r->o.batch; i++)
        n += (size_t)snprintf(json_buf + n, BUF - n, "%s{\"body\":\"%s\"}", i ? "," : "", body_text);
    n += (size_t)snprintf(json_buf + n, BUF - n, "]}");
    char path[160];
    snprintf(path, sizeof(path), "/3/projects/bench/queues/%s/messages", c->queue);
    http_request(r, c, "POST", path, json_buf, n);
}

static void issue(struct run *r, struct conn *c)
{
    char path[200], body[256];
    const struct options *o = &r->o;
    c->in_len = 0;
    if (o->workload == W_GET) {
        c->t_start = now_ns();
        http_request(r, c, "GET", o->target == T_CEILING ? "/" : "/health", NULL, 0);
        return;
    }
    if (o->workload == W_POST) {
        c->t_start = now_ns();
        anvil_post(r, c, r->body);
        return;
    }
    if (o->workload == W_LONGPOLL) {
        if (c->poster) {
            char stamp[32];
            snprintf(stamp, sizeof(stamp), "%llu", (unsigned long long)now_ns());
            int saved = r->o.batch;
            r->o.batch = 1;
            anvil_post(r, c, stamp);
            r->o.batch = saved;
        } else {
            snprintf(path, sizeof(path), "/3/projects/bench/queues/%s/reservations", c->queue);
            const char *req = "{\"n\":1,\"wait\":30,\"delete\":true}";
            http_request(r, c, "POST", path, req, strlen(req));
            c->waiting = true;
        }
        return;
    }
    /* W_CYCLE */
    if (c->step == 0) {
        pick_queue(r, c);
        c->t_cycle = now_ns();
    }
    switch (o->target) {
    case T_ANVIL:
        if (c->step == 0) {
            anvil_post(r, c, r->body);
        } else if (c->step == 1) {
            snprintf(path, sizeof(path), "/3/projects/bench/queues/%s/reservations", c->queue);
            int n = snprintf(body, sizeof(body), "{\"n\":%d}", o->batch);
            http_request(r, c, "POST", path, body, (size_t)n);
        } else if (c->n_ids == 1) {
            snprintf(path, sizeof(path), "/3/projects/bench/queues/%s/messages/%s", c->queue, c->ids[0]);
            int n = snprintf(body, sizeof(body), "{\"reservation_id\":\"%s\"}", c->rids[0]);
            http_request(r, c, "DELETE", path, body, (size_t)n);
        } else {
            size_t n = (size_t)snprintf(json_buf, BUF, "{\"ids\":[");
            for (int i = 0; i < c->n_ids; i++)
                n += (size_t)snprintf(json_buf + n, BUF - n, "%s{\"id\":\"%s\",\"reservation_id\":\"%s\"}",
                                      i ? "," : "", c->ids[i], c->rids[i]);
            n += (size_t)snprintf(json_buf + n, BUF - n, "]}");
            snprintf(path, sizeof(path), "/3/projects/bench/queues/%s/messages", c->queue);
            http_request(r, c, "DELETE", path, json_buf, n);
        }
        break;
    case T_BEANSTALKD:
        if (c->step == 0) {
            if (strcmp(c->tube, c->queue) != 0) {
                out_printf(c, "use %s\r\nwatch %s\r\n", c->queue, c->queue);
                c->expect += 2;
                snprintf(c->tube, sizeof(c->tube), "%s", c->queue);
            }
            for (int i = 0; i < o->batch; i++) {
                out_printf(c, "put 0 0 60 %zu\r\n%s\r\n", strlen(r->body), r->body);
                c->expect++;
            }
        } else if (c->step == 1) {
            for (int i = 0; i < o->batch; i++) {
                out_printf(c, "reserve-with-timeout 0\r\n");
                c->expect++;
            }
        } else {
            for (int i = 0; i < c->n_ids; i++) {
                out_printf(c, "delete %s\r\n", c->ids[i]);
                c->expect++;
            }
        }
        break;
    case T_REDIS: {
        size_t ql = strlen(c->queue), bl = strlen(r->body);
        if (c->step == 0) {
            out_printf(c, "*%d\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n", o->batch + 2, ql, c->queue);
            for (int i = 0; i < o->batch; i++)
                out_printf(c, "$%zu\r\n%s\r\n", bl, r->body);
            c->expect++;
        } else if (c->step == 1) {
            for (int i = 0; i < o->batch; i++) {
                out_printf(c, "*5\r\n$5\r\nLMOVE\r\n$%zu\r\n%s\r\n$%zu\r\n%s-p\r\n$5\r\nRIGHT\r\n$4\r\nLEFT\r\n",
                           ql, c->queue, ql + 2, c->queue);
                c->expect++;
            }
        } else {
            for (int i = 0; i < c->n_ids; i++) {
                out_printf(c, "*4\r\n$4\r\nLREM\r\n$%zu\r\n%s-p\r\n$1\r\n1\r\n$%zu\r\n%s\r\n", ql + 2,
                           c->queue, bl, r->body);
                c->expect++;
            }
        }
        break;
    }
    case T_CEILING:
        break;
    }
}

/* ---- parsing responses ---- */

/* Length of one complete HTTP response at the start of buf (0 if incomplete), its status. */
static size_t http_complete(const char *buf, size_t len, int *status, const char **body,
                            size_t *body_len)
{
    if (!buf || len < 4) /* nothing read yet (and memmem must not see NULL) */
        return 0;
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *cl = memmem(buf, head, "Content-Length:", 15);
    if (!cl)
        cl = memmem(buf, head, "content-length:", 15);
    size_t n = cl ? strtoul(cl + 15, NULL, 10) : 0;
    if (len < head + n)
        return 0;
    *status = atoi(buf + 9);
    *body = buf + head;
    *body_len = n;
    return head + n;
}

/* Pulls "id":"…" and "reservation_id":"…" pairs out of a reserve answer. */
static int scan_messages(struct conn *c, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    c->n_ids = 0;
    while (c->n_ids < ID_MAX && (p = memmem(p, (size_t)(end - p), "\"id\":\"", 6))) {
        p += 6;
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            break;
        snprintf(c->ids[c->n_ids], sizeof(c->ids[0]), "%.*s", (int)(q - p), p);
        const char *rp = memmem(q, (size_t)(end - q), "\"reservation_id\":\"", 18);
        if (rp) {
            rp += 18;
            const char *rq = memchr(rp, '"', (size_t)(end - rp));
            snprintf(c->rids[c->n_ids], sizeof(c->rids[0]), "%.*s", rq ? (int)(rq - rp) : 0, rp);
        }
        c->n_ids++;
        p = q;
    }
    return c->n_ids;
}

/* One line (\r\n-terminated) or a RESP bulk reply: length consumed, 0 when incomplete. */
static size_t line_complete(const char *buf, size_t len)
{
    const char *nl = memmem(buf, len, "\r\n", 2);
    return nl ? (size_t)(nl - buf) + 2 : 0;
}

/* Consumes complete replies from c->in; returns false on a protocol error. */
static bool consume(struct run *r, struct conn *c)
{
    size_t off = 0;
    while (c->expect > 0 && off < c->in_len) {
        const char *buf = c->in + off;
        size_t len = c->in_len - off, used = 0;
        if (r->o.target == T_ANVIL || r->o.target == T_CEILING) {
            int status;
            const char *body;
            size_t body_len;
            if (!(used = http_complete(buf, len, &status, &body, &body_len)))
                break;
            if (status >= 300)
                return false;
            if (r->o.workload == W_CYCLE && c->step == 1)
                scan_messages(c, body, body_len);
            if (r->o.workload == W_LONGPOLL && !c->poster) {
                const char *b = memmem(body, body_len, "\"body\":\"", 8);
                if (b) {
                    uint64_t sent = strtoull(b + 8, NULL, 10);
                    hist_add(&r->lat, now_ns() - sent);
                    r->done_ops++;
                }
            }
        } else if (r->o.target == T_BEANSTALKD) {
            if (!(used = line_complete(buf, len)))
                break;
            if (strncmp(buf, "RESERVED ", 9) == 0) {
                size_t bytes = strtoul(strchr(buf + 9, ' ') + 1, NULL, 10);
                if (len < used + bytes + 2)
                    break;
                if (c->n_ids < ID_MAX)
                    snprintf(c->ids[c->n_ids++], sizeof(c->ids[0]), "%lu", strtoul(buf + 9, NULL, 10));
                used += bytes + 2;
            } else if (strncmp(buf, "INSERTED", 8) && strncmp(buf, "DELETED", 7) &&
                       strncmp(buf, "USING", 5) && strncmp(buf, "WATCHING", 8) &&
                       strncmp(buf, "TIMED_OUT", 9)) {
                return false;
            }
        } else { /* redis */
            if (!(used = line_complete(buf, len)))
                break;
            if (buf[0] == '$') {
                long n = strtol(buf + 1, NULL, 10);
                if (n >= 0) {
                    if (len < used + (size_t)n + 2)
                        break;
                    used += (size_t)n + 2;
                    c->n_ids++;
                }
            } else if (buf[0] == '-') {
                return false;
            }
        }
        off += used;
        c->expect--;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return true;
}

/* The step's answers are all in: record, move on, issue the next request. */
static void advance(struct run *r, struct conn *c)
{
    uint64_t t = now_ns();
    r->done_requests++;
    const struct options *o = &r->o;
    if (o->workload == W_GET || o->workload == W_POST) {
        hist_add(&r->lat, t - c->t_start);
        r->done_ops += o->workload == W_POST ? o->batch : 1;
    } else if (o->workload == W_LONGPOLL) {
        if (c->poster) {
            r->next_post_ns = t + (uint64_t)o->wait_interval_ms * 1000000u;
            c->waiting = true; /* the timer sends the next post */
            return;
        }
    } else if (c->step == 0) {
        if (o->target == T_BEANSTALKD || o->target == T_REDIS)
            c->n_ids = 0;
        c->step = 1;
    } else if (c->step == 1) {
        if (c->n_ids == 0) {
            c->step = 0; /* nothing reserved (another connection had it): start over */
        } else {
            c->step = 2;
        }
    } else {
        hist_add(&r->lat, t - c->t_cycle);
        r->done_ops += c->n_ids;
        c->step = 0;
    }
    if (r->stopping)
        return;
    if (o->requests && r->started >= o->requests)
        return;
    r->started++;
    issue(r, c);
}

static void flush_out(struct run *r, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            r->errors++;
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
}

static void on_readable(struct run *r, struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_len, BUF - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len < BUF)
                continue;
        }
        if (n == 0) {
            r->errors++;
            close(c->fd);
            c->fd = -1;
            return;
        }
        break;
    }
    if (!consume(r, c)) {
        r->errors++;
        c->in_len = 0;
        c->expect = 0;
        c->step = 0;
    }
    if (c->expect == 0) {
        c->waiting = false;
        advance(r, c);
        flush_out(r, c);
    }
}

/* Creates the queues an anvil run uses (reserve and long polls need them to exist). */
static void create_queues(const struct options *o)
{
    int fd = dial(o);
    fcntl(fd, F_SETFL, 0); /* blocking: one request at a time */
    char req[512], resp[4096];
    for (int q = 0; q < o->queues; q++) {
        int n = snprintf(req, sizeof(req),
                         "PUT /3/projects/bench/queues/%s%d HTTP/1.1\r\nHost: bench\r\n"
                         "Authorization: OAuth bench\r\nContent-Length: 2\r\n\r\n{}",
                         o->queue, q);
        if (write(fd, req, (size_t)n) != n || read(fd, resp, sizeof(resp)) <= 0 ||
            strncmp(resp + 9, "200", 3) != 0)
            die("cannot create queue %s", o->queue);
    }
    close(fd);
}

static double *zipf_table(int n, double s)
{
    double *cdf = malloc((size_t)n * sizeof(double)), sum = 0;
    for (int i = 0; i < n; i++)
        sum += 1.0 / pow(i + 1, s);
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += 1.0 / pow(i + 1, s) / sum;
        cdf[i] = acc;
    }
    return cdf;
}

static double cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --target anvil|ceiling|beanstalkd|redis --port P --workload "
                    "get|cycle|longpoll [--connections N] [--batch B] [--duration S] [--requests N]\n"
                    "               [--queues Q] [--zipf S] [--body-bytes N] [--queue NAME]\n"
                    "               [--wait-interval-ms MS] [--server-pid PID] [--label TEXT] [--json FILE]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.host = "127.0.0.1", .label = "", .queue = "bench", .connections = 16,
                          .batch = 1, .queues = 1, .body_bytes = 100, .duration_s = 5,
                          .wait_interval_ms = 10, .target = T_ANVIL, .workload = W_CYCLE};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--target")) {
            o->target = !strcmp(v, "anvil")        ? T_ANVIL
                        : !strcmp(v, "ceiling")    ? T_CEILING
                        : !strcmp(v, "beanstalkd") ? T_BEANSTALKD
                        : !strcmp(v, "redis")      ? T_REDIS
                                                   : (usage(), T_ANVIL);
        } else if (!strcmp(a, "--workload")) {
            o->workload = !strcmp(v, "get")        ? W_GET
                          : !strcmp(v, "cycle")    ? W_CYCLE
                          : !strcmp(v, "longpoll") ? W_LONGPOLL
                          : !strcmp(v, "post")     ? W_POST
                                                   : (usage(), W_GET);
        } else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--port")) o->port = atoi(v);
        else if (!strcmp(a, "--connections")) o->connections = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--duration")) o->duration_s = atof(v);
        else if (!strcmp(a, "--requests")) o->requests = atoll(v);
        else if (!strcmp(a, "--queues")) o->queues = atoi(v);
        else if (!strcmp(a, "--zipf")) o->zipf = atof(v);
        else if (!strcmp(a, "--body-bytes")) o->body_bytes = atoi(v);
        else if (!strcmp(a, "--queue")) o->queue = v;
        else if (!strcmp(a, "--wait-interval-ms")) o->wait_interval_ms = atoi(v);
        else if (!strcmp(a, "--server-pid")) o->server_pid = atoi(v);
        else if (!strcmp(a, "--label")) o->label = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else usage();
    }
    if (!o->port || o->connections < 1 || o->batch < 1 || o->batch > ID_MAX || o->queues < 1 ||
        (size_t)o->body_bytes * (size_t)o->batch + 8192 > BUF)
        usage();
}

static const char *const target_names[] = {"anvil", "ceiling", "beanstalkd", "redis"};
static const char *const workload_names[] = {"get", "cycle", "longpoll", "post"};

int main(int argc, char **argv)
{
    static struct run r;
    parse(argc, argv, &r.o);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srandom(12345);
    r.body = malloc((size_t)r.o.body_bytes + 1);
    memset(r.body, 'm', (size_t)r.o.body_bytes);
    r.body[r.o.body_bytes] = '\0';
    if (r.o.zipf > 0 && r.o.queues > 1)
        r.zipf_cdf = zipf_table(r.o.queues, r.o.zipf);
    if (r.o.target == T_ANVIL)
        create_queues(&r.o);
    r.epfd = epoll_create1(EPOLL_CLOEXEC);
    r.conns = calloc((size_t)r.o.connections, sizeof(*r.conns));
    uint64_t t_open = now_ns();
    for (int i = 0; i < r.o.connections; i++) { /* all at once: W5 */
        struct conn *c = &r.conns[i];
        c->index = i;
        c->fd = dial(&r.o);
        c->out = malloc(BUF);
        c->in = malloc(BUF);
        snprintf(c->queue, sizeof(c->queue), "%s0", r.o.queue);
        c->poster = r.o.workload == W_LONGPOLL && i == r.o.connections - 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(r.epfd, EPOLL_CTL_ADD, c->fd, &ev);
    }
    double open_ms = (double)(now_ns() - t_open) / 1e6;
    double cpu0 = r.o.server_pid ? cpu_seconds(r.o.server_pid) : 0;
    r.t_begin = now_ns();
    r.t_end = r.t_begin + (uint64_t)(r.o.duration_s * 1e9);
    for (int i = 0; i < r.o.connections; i++) {
        struct conn *c = &r.conns[i];
        if (c->poster) { /* --wait-interval-ms 0: no posts at all (idle waiters) */
            r.next_post_ns = r.o.wait_interval_ms ? r.t_begin + 200000000u : 0;
            c->waiting = true;
            continue;
        }
        r.started++;
        issue(&r, c);
        flush_out(&r, c);
    }
    struct epoll_event evs[256];
    if (r.o.workload == W_LONGPOLL && !r.o.wait_interval_ms && r.o.server_pid) {
        /* idle waiters: let the server take every request in first (each is parsed and
         * parked once), then measure its CPU while nothing happens */
        uint64_t settle_end = now_ns() + 1000000000u;
        while (now_ns() < settle_end) {
            int n = epoll_wait(r.epfd, evs, 256, 10);
            for (int i = 0; i < n; i++) {
                struct conn *c = evs[i].data.ptr;
                if (c->fd >= 0)
                    on_readable(&r, c);
            }
        }
        cpu0 = cpu_seconds(r.o.server_pid);
        r.t_begin = now_ns();
        r.t_end = r.t_begin + (uint64_t)(r.o.duration_s * 1e9);
    }
    for (;;) {
        uint64_t t = now_ns();
        if (!r.stopping && (t >= r.t_end || (r.o.requests && r.done_requests >= r.o.requests)))
            r.stopping = true;
        if (r.stopping)
            break;
        if (r.o.workload == W_LONGPOLL && r.next_post_ns && t >= r.next_post_ns) {
            struct conn *p = &r.conns[r.o.connections - 1];
            r.next_post_ns = 0;
            issue(&r, p);
            flush_out(&r, p);
        }
        int timeout = 10;
        int n = epoll_wait(r.epfd, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0)
                on_readable(&r, c);
        }
    }
    double secs = (double)(now_ns() - r.t_begin) / 1e9;
    double cpu = r.o.server_pid ? (cpu_seconds(r.o.server_pid) - cpu0) / secs * 100.0 : -1;
    double rps = (double)r.done_requests / secs, ops = (double)r.done_ops / secs;
    printf("%-28s %-10s %-8s conns %5d batch %3d  %10.0f req/s %10.0f msg/s  p50 %8.1f us  p99 %8.1f us  "
           "p99.9 %8.1f us  max %8.1f us  errors %lld",
           r.o.label, target_names[r.o.target], workload_names[r.o.workload], r.o.connections,
           r.o.batch, rps, ops, hist_pct(&r.lat, 0.50), hist_pct(&r.lat, 0.99),
           hist_pct(&r.lat, 0.999), (double)r.lat.max / 1000.0, r.errors);
    if (cpu >= 0)
        printf("  server cpu %.1f%%", cpu);
    printf("\n");
    if (r.o.json) {
        FILE *f = fopen(r.o.json, "a");
        if (f) {
            fprintf(f,
                    "{\"label\":\"%s\",\"target\":\"%s\",\"workload\":\"%s\",\"connections\":%d,"
                    "\"batch\":%d,\"queues\":%d,\"seconds\":%.3f,\"requests\":%lld,\"messages\":%lld,"
                    "\"errors\":%lld,\"req_per_s\":%.1f,\"msg_per_s\":%.1f,\"p50_us\":%.1f,"
                    "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"open_ms\":%.1f,"
                    "\"server_cpu_pct\":%.2f}\n",
                    r.o.label, target_names[r.o.target], workload_names[r.o.workload],
                    r.o.connections, r.o.batch, r.o.queues, secs, r.done_requests, r.done_ops,
                    r.errors, rps, ops, hist_pct(&r.lat, 0.50), hist_pct(&r.lat, 0.99),
                    hist_pct(&r.lat, 0.999), (double)r.lat.max / 1000.0, open_ms, cpu);
            fclose(f);
        }
    }
    return r.errors ? 1 : 0;
}
