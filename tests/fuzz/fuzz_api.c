/* tests/fuzz/fuzz_api.c — the v3 API (router, handlers, JSON, engine) driven with
 * requests built from fuzz input, on a memory-mode engine kept across inputs.
 *
 * An input is one or more blocks separated by a line "---". A block is HTTP-like:
 *
 *     +30s                          zero or more clock lines: +N or -N with unit ms
 *     POST /3/projects/p/queues/q/reservations?oauth=x   (default), s, m, h or d
 *     Authorization: OAuth secret   headers, until an empty line
 *
 *     {"n": 2, "wait": 5}           the body: the rest of the block
 *
 * "+N" advances the engine clock (eng_set_time) so delays, reservations, expirations and
 * long polls time out; "-N" sets it back, which the engine must ignore. Clock moves add
 * up to at most 40 days per input. In path, query, header values and body, $ID / $IDn and
 * $RID / $RIDn stand for the message and reservation ids of earlier answers of the same
 * input, so one input can post, reserve, touch, release and delete the same message.
 *
 * Requests with an Authorization header or an oauth parameter go to an api with tokens
 * ("secret": every project; "limited": p1 and p2) and a 64-byte message limit; the others
 * to a dev-mode api (no tokens, 64 KiB limit). Both share the engine.
 *
 * Every request must be answered exactly once with a known status and a JSON object
 * (fuzz_common.c), except a reserve with `wait` that the engine holds. Such long polls
 * are served by later posts or clock moves of the same input; whatever is still held
 * when the next input starts is abandoned with api_abandon() (odd-sized inputs) or timed
 * out by a 31 s clock move (even-sized), and at a reopen eng_close() answers them.
 * The engine is reopened every 1000 inputs (FUZZ_API_REOPEN=n changes that; 1 gives
 * every input a fresh engine, which makes any crash reproducible from its input alone). */
#include "fuzz_common.h"

#include "../../api/dash.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_BLOCKS = 64, MAX_HEADERS = 16, REOPEN_DEFAULT = 1000 };
#define MAX_ADVANCE_MS ((int64_t)26 * 3600 * 1000)
#define LONG_POLL_MAX_MS ((int64_t)31 * 1000)

static char tok_secret[] = "secret", tok_limited[] = "limited";
static char proj_p1[] = "p1", proj_p2[] = "p2";
static char *limited_projects[] = {proj_p1, proj_p2};
static const struct api_token tokens[] = {
    {.token = tok_secret, .all_projects = true},
    {.token = tok_limited, .projects = limited_projects, .n_projects = 2},
};

static struct engine *engine;
static char sqs_akid[] = "AKID", sqs_secret[] = "sqs-secret";
static const struct api_sqs_key sqs_keys[] = {{sqs_akid, sqs_secret, proj_p1}};
static int64_t fuzz_wall_ms(void);
static struct api dev_api = {.limits = {.max_message_size = 65536},
                             .sqs = {.account = "000000000000", .region = "us-east-1",
                                     .wall_ms = fuzz_wall_ms}};
static struct api auth_api = {.tokens = tokens,
                              .n_tokens = sizeof(tokens) / sizeof(tokens[0]),
                              .limits = {.max_message_size = 64},
                              .sqs = {.wall_ms = fuzz_wall_ms, .keys = sqs_keys, .n_keys = 1,
                                      .account = "000000000000",
                                      .region = "us-east-1"}};
static struct dash *dash; /* the dashboard's history and push log, kept across inputs */
static int64_t now_ms, advanced_ms;
static unsigned long inputs_since_open, reopen_every;
static struct fuzz_req *pending; /* long polls the engine may still hold */

/* ---- the clock ---- */

/* The wall clock signature dates are held to: the engine's clock here, so a signed input's
 * X-Amz-Date near FUZZ_EPOCH_MS is in range. */
static int64_t fuzz_wall_ms(void)
{
    return now_ms;
}

static void check_deadline(void)
{
    /* Every timer due by now has fired; the server's loop would spin otherwise. */
    int64_t next = eng_next_deadline(engine);
    FUZZ_CHECK(next > now_ms, "next deadline %lld is not after now %lld", (long long)next,
               (long long)now_ms);
}

static void advance(int64_t ms)
{
    if (ms > MAX_ADVANCE_MS - advanced_ms)
        ms = MAX_ADVANCE_MS - advanced_ms;
    advanced_ms += ms;
    now_ms += ms;
    eng_set_time(engine, now_ms);
    check_deadline();
    dash_tick(dash, engine, now_ms); /* as the server's loop does each turn */
}

/* ---- long polls ---- */

static void hold(struct fuzz_req *r)
{
    r->next = pending;
    pending = r;
}

/* Frees the held requests that have been answered since. */
static void sweep(void)
{
    for (struct fuzz_req **p = &pending; *p;) {
        struct fuzz_req *r = *p;
        if (r->state == FREQ_WAITING) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        freq_free(r);
    }
}

/* Each long poll still held either gets abandoned or times out: none may be left. */
static void settle(bool abandon)
{
    if (abandon) {
        for (struct fuzz_req *r = pending; r; r = r->next)
            if (r->state == FREQ_WAITING)
                freq_abandon(r->api.api, r);
    } else {
        now_ms += LONG_POLL_MAX_MS; /* longer than any wait: every waiter times out */
        eng_set_time(engine, now_ms);
        check_deadline();
    }
    for (struct fuzz_req *r = pending; r; r = r->next)
        FUZZ_CHECK(r->state != FREQ_WAITING, "a long poll outlived its wait (%s %s)", r->method,
                   r->path);
    sweep();
}

static void reopen(void)
{
    if (engine) {
        eng_close(engine); /* answers every waiter */
        for (struct fuzz_req *r = pending; r; r = r->next)
            FUZZ_CHECK(r->state == FREQ_ANSWERED, "eng_close left a long poll unanswered");
        sweep();
    }
    now_ms = FUZZ_EPOCH_MS;
    engine = fuzz_engine_open(now_ms);
    dev_api.engine = auth_api.engine = engine;
    if (!dash) {
        dash = dash_new();
        FUZZ_CHECK(dash != NULL, "out of memory");
    }
    dev_api.dash = auth_api.dash = dash;
    inputs_since_open = 0;
    if (!reopen_every) {
        const char *env = getenv("FUZZ_API_REOPEN");
        long n = env ? strtol(env, NULL, 10) : 0;
        reopen_every = n > 0 ? (unsigned long)n : REOPEN_DEFAULT;
    }
}

/* ---- input ---- */

static size_t line_length(const char *p, size_t len)
{
    const char *nl = memchr(p, '\n', len);
    return nl ? (size_t)(nl - p) : len;
}

/* Skips the line of length n and its newline. */
static void consume(const char **p, size_t *len, size_t n)
{
    size_t step = n < *len ? n + 1 : *len;
    *p += step;
    *len -= step;
}

static size_t chomp(const char *line, size_t n)
{
    return n && line[n - 1] == '\r' ? n - 1 : n;
}

/* "+90s", "-5", "+2d": digits and a unit; returns milliseconds. */
static int64_t parse_delta(const char *s, size_t n)
{
    int64_t v = 0;
    size_t i = 1;
    for (; i < n && i < 14 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    switch (i < n ? s[i] : 0) {
    case 's':
        return v * 1000;
    case 'm':
        return i + 1 < n && s[i + 1] == 's' ? v : v * 60 * 1000;
    case 'h':
        return v * 3600 * 1000;
    case 'd':
        return v * 86400 * 1000;
    default:
        return v;
    }
}

static void run_block(const char *p, size_t len)
{
    /* clock lines */
    while (len && (p[0] == '+' || (p[0] == '-' && len > 1 && p[1] >= '0' && p[1] <= '9'))) {
        size_t n = chomp(p, line_length(p, len));
        int64_t ms = parse_delta(p, n);
        if (p[0] == '+')
            advance(ms);
        else
            eng_set_time(engine, now_ms - (ms ? ms : 1)); /* the engine clock never goes back */
        consume(&p, &len, line_length(p, len));
    }
    if (!len)
        return;

    /* request line: METHOD SP TARGET [SP VERSION] */
    size_t n = chomp(p, line_length(p, len));
    const char *sp = memchr(p, ' ', n);
    size_t method_len = sp ? (size_t)(sp - p) : n;
    const char *target = sp ? sp + 1 : p + n;
    size_t target_len = (size_t)(p + n - target);
    const char *sp2 = memchr(target, ' ', target_len);
    if (sp2)
        target_len = (size_t)(sp2 - target);
    const char *qmark = memchr(target, '?', target_len);
    size_t path_len = qmark ? (size_t)(qmark - target) : target_len;
    const char *query = qmark ? qmark + 1 : NULL;
    size_t query_len = qmark ? target_len - path_len - 1 : 0;
    const char *method = p;
    consume(&p, &len, line_length(p, len));

    /* headers, then the body */
    const char *hdr[MAX_HEADERS][2];
    size_t hdr_len[MAX_HEADERS][2], n_hdr = 0;
    while (len) {
        size_t ln = line_length(p, len), h = chomp(p, ln);
        if (h == 0) {
            consume(&p, &len, ln);
            break;
        }
        const char *colon = memchr(p, ':', h);
        if (colon && n_hdr < MAX_HEADERS) {
            const char *v = colon + 1;
            while (v < p + h && (*v == ' ' || *v == '\t'))
                v++;
            hdr[n_hdr][0] = p;
            hdr_len[n_hdr][0] = (size_t)(colon - p);
            hdr[n_hdr][1] = v;
            hdr_len[n_hdr][1] = (size_t)(p + h - v);
            n_hdr++;
        }
        consume(&p, &len, ln);
    }

    struct fuzz_req *r = freq_new(method, method_len, target, path_len, query, query_len, p, len);
    for (size_t i = 0; i < n_hdr; i++)
        freq_add_header(r, hdr[i][0], hdr_len[i][0], hdr[i][1], hdr_len[i][1]);
    bool authed = freq_header(r, "Authorization") || freq_param(r, "oauth");
    freq_dispatch(authed ? &auth_api : &dev_api, r);
    if (r->state == FREQ_WAITING)
        hold(r);
    else
        freq_free(r);
    sweep();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine || ++inputs_since_open >= reopen_every)
        reopen();
    else if (pending)
        settle(size & 1);
    fuzz_ids_reset();
    advanced_ms = 0;
    advance(1);

    const char *p = (const char *)data, *end = p + size;
    for (int blocks = 0; p < end && blocks < MAX_BLOCKS; blocks++) {
        const char *sep = NULL;
        for (const char *s = p; (s = memchr(s, '\n', (size_t)(end - s))) != NULL; s++)
            if ((size_t)(end - s) >= 5 && memcmp(s, "\n---\n", 5) == 0) {
                sep = s;
                break;
            }
        const char *block_end = sep ? sep : end;
        run_block(p, (size_t)(block_end - p));
        p = sep ? sep + 5 : end;
    }
    return 0;
}
