/* api/metrics.c — GET /metrics: renders the engine's counters and depths, the request
 * counters kept here, and the server's process facts in the Prometheus text format.
 * Cardinality is bounded by construction: routes are the router's fixed endpoint names
 * plus health, stats, metrics, admin, ui, sqs and other; each route keeps at most
 * STATUS_SLOTS distinct statuses (later ones count as status="other"); queue depths are
 * labelled for the first queue_limit queues only, and the rest summed. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "status.h"

enum { STATUS_SLOTS = 8, MAX_ROUTES = 48 };

struct status_slot {
    int status; /* 0: "other" (the last slot once the others are taken) */
    struct hist latency_us;
};

struct route_stats {
    const char *name;
    struct status_slot slots[STATUS_SLOTS];
    size_t n_slots;
};

struct metrics {
    size_t queue_limit;
    metrics_process_fn process;
    void *process_ctx;
    struct route_stats routes[MAX_ROUTES];
    size_t n_routes;
};

/* "other" last: route_of() falls back to it */
static const char *const extra_routes[] = {"health", "stats", "metrics", "admin", "ui", "sqs", "other"};
enum { N_EXTRA_ROUTES = sizeof(extra_routes) / sizeof(extra_routes[0]) };

struct metrics *metrics_new(size_t queue_limit, metrics_process_fn fn, void *ctx)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->queue_limit = queue_limit;
    m->process = fn;
    m->process_ctx = ctx;
    const char *name;
    for (size_t i = 0; (name = api_route_name(i)) && m->n_routes < MAX_ROUTES - N_EXTRA_ROUTES; i++)
        m->routes[m->n_routes++].name = name;
    for (size_t i = 0; i < N_EXTRA_ROUTES; i++)
        m->routes[m->n_routes++].name = extra_routes[i];
    return m;
}

void metrics_free(struct metrics *m)
{
    free(m);
}

static struct route_stats *route_of(struct metrics *m, const char *route)
{
    for (size_t i = 0; route && i < m->n_routes; i++)
        if (strcmp(m->routes[i].name, route) == 0)
            return &m->routes[i];
    return &m->routes[m->n_routes - 1]; /* "other" */
}

static struct status_slot *slot_of(struct route_stats *r, int status)
{
    for (size_t i = 0; i < r->n_slots; i++)
        if (r->slots[i].status == status)
            return &r->slots[i];
    if (r->n_slots < STATUS_SLOTS - 1) {
        r->slots[r->n_slots].status = status;
        return &r->slots[r->n_slots++];
    }
    if (r->n_slots == STATUS_SLOTS - 1)
        r->slots[r->n_slots++].status = 0;
    return &r->slots[STATUS_SLOTS - 1];
}

void metrics_note_request(struct metrics *m, const char *route, int status, uint64_t latency_us)
{
    if (!m)
        return;
    hist_add(&slot_of(route_of(m, route), status)->latency_us, &hist_latency_us, latency_us);
}

enum metrics_push_outcome metrics_push_outcome(int status, bool timed_out, bool faked)
{
    if (faked)
        return METRICS_PUSH_FAKED;
    if (status < 0)
        return timed_out ? METRICS_PUSH_TIMEOUT : METRICS_PUSH_ERROR;
    if (status == 202)
        return METRICS_PUSH_ACCEPTED;
    return status >= 200 && status < 300 ? METRICS_PUSH_SUCCESS : METRICS_PUSH_REFUSED;
}

static const char *const push_outcomes[METRICS_PUSH_OUTCOMES] = {
    [METRICS_PUSH_SUCCESS] = "success", [METRICS_PUSH_ACCEPTED] = "accepted",
    [METRICS_PUSH_REFUSED] = "refused", [METRICS_PUSH_ERROR] = "error",
    [METRICS_PUSH_TIMEOUT] = "timeout", [METRICS_PUSH_FAKED] = "faked"};

const char *metrics_push_outcome_name(enum metrics_push_outcome o)
{
    return o < METRICS_PUSH_OUTCOMES ? push_outcomes[o] : "unknown";
}

void metrics_push_note(struct metrics_push *mp, int status, bool timed_out, bool faked,
                       uint64_t latency_us)
{
    mp->outcomes[metrics_push_outcome(status, timed_out, faked)]++;
    if (!faked && status >= 0)
        hist_add(&mp->latency_us, &hist_latency_us, latency_us);
}

/* ---- the text ---- */

struct text {
    char *buf;
    size_t len, cap;
    bool failed; /* out of memory: the scrape answers 500 */
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
    for (int round = 0; round < 2 && !t->failed; round++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 16384;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

/* A label value: backslash, double quote and newline escaped (the format's three). */
static void text_label(struct text *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            text_add(t, "\\\\");
        else if (*v == '"')
            text_add(t, "\\\"");
        else if (*v == '\n')
            text_add(t, "\\n");
        else
            text_add(t, "%c", *v);
    }
}

static void text_family(struct text *t, const char *name, const char *type, const char *help)
{
    text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void text_value(struct text *t, const char *name, uint64_t v)
{
    text_add(t, "%s %llu\n", name, (unsigned long long)v);
}

static void text_gauge(struct text *t, const char *name, const char *help, uint64_t v)
{
    text_family(t, name, "gauge", help);
    text_value(t, name, v);
}

static void text_counter(struct text *t, const char *name, const char *help, uint64_t v)
{
    text_family(t, name, "counter", help);
    text_value(t, name, v);
}

/* The sample lines of one histogram; labels: "" or `a="b",c="d"`.
 * scale: what one unit of the recorded values is in the exported unit (1e-6: us to s). */
static void text_hist(struct text *t, const char *name, const char *labels, const struct hist *h,
                      const struct hist_bounds *b, double scale)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < b->n; i++) {
        cumulative += h->bucket[i];
        text_add(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                 (double)b->le[i] * scale, (unsigned long long)cumulative);
    }
    text_add(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
             (unsigned long long)h->count);
    if (labels[0]) {
        text_add(t, "%s_sum{%s} %.6f\n", name, labels, (double)h->sum * scale);
        text_add(t, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
    } else {
        text_add(t, "%s_sum %.6f\n", name, (double)h->sum * scale);
        text_add(t, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

static void render_engine_stats(struct text *t, const struct eng_stats *st)
{
    text_gauge(t, "anvil_projects", "Projects with at least one queue.", st->projects);
    text_gauge(t, "anvil_queues", "Queues.", st->queues);
    text_gauge(t, "anvil_messages", "Messages in every queue, in every state.", st->messages);
    text_gauge(t, "anvil_storage_ok", "1 when the journal (or database) commits, 0 when it fails.",
               st->storage_ok ? 1 : 0);
    text_counter(t, "anvil_commits_total", "Group commits (PostgreSQL: transactions).", st->commits);
    text_counter(t, "anvil_commit_failures_total", "Group commits that failed (and were retried).",
                 st->commit_failures);
    text_gauge(t, "anvil_memory_budget_bytes", "The messages' memory budget (0: none).",
               st->memory_budget);
    text_gauge(t, "anvil_message_index_bytes", "Memory the messages take without their bodies.",
               st->index_bytes);
    text_gauge(t, "anvil_message_body_bytes", "Message bodies held in memory.", st->body_bytes);
    text_gauge(t, "anvil_cold_messages", "Messages whose body is only on disk.", st->cold_messages);
    text_gauge(t, "anvil_db_bytes", "The database file (pages in use and free; 0 in memory mode).",
               st->db_bytes);
    text_gauge(t, "anvil_db_free_bytes", "Free pages inside the database file, in bytes.",
               st->db_free_bytes);
    text_gauge(t, "anvil_wal_bytes", "The write-ahead log.", st->wal_bytes);
}

static const char *const depth_states[] = {"ready", "delayed", "reserved", "pushing"};

static uint64_t depth_of(const struct eng_queue_depth *d, size_t state)
{
    const uint64_t v[] = {d->ready, d->delayed, d->reserved, d->pushing};
    return v[state];
}

static void render_depths(struct text *t, const struct eng_metrics *em, size_t limit)
{
    text_gauge(t, "anvil_longpoll_waiters", "Reserve calls waiting for messages (long polls).",
               em->waiters);
    if (!em->has_depths)
        return;
    char help[160];
    snprintf(help, sizeof(help),
             "Messages of a queue by state (the first %zu queues by project, then name: "
             "metrics_queue_limit).", limit);
    text_family(t, "anvil_queue_messages", "gauge", help);
    for (size_t i = 0; i < em->n_queues; i++)
        for (size_t s = 0; s < 4; s++) {
            text_add(t, "anvil_queue_messages{project=\"");
            text_label(t, em->queues[i].project);
            text_add(t, "\",queue=\"");
            text_label(t, em->queues[i].queue);
            text_add(t, "\",state=\"%s\"} %llu\n", depth_states[s],
                     (unsigned long long)depth_of(&em->queues[i], s));
        }
    text_gauge(t, "anvil_other_queues", "Queues past metrics_queue_limit (not labelled).",
               em->rest_queues);
    text_family(t, "anvil_other_queues_messages", "gauge",
                "Messages of the queues past metrics_queue_limit, summed, by state.");
    for (size_t s = 0; s < 4; s++)
        text_add(t, "anvil_other_queues_messages{state=\"%s\"} %llu\n", depth_states[s],
                 (unsigned long long)depth_of(&em->rest, s));
}

static void render_events(struct text *t, const struct eng_metrics *em)
{
    if (!em->has_events)
        return;
    text_family(t, "anvil_message_events_total", "counter",
                "Messages each operation happened to since start (event: post, reserve, delete, "
                "release, touch, visibility, timeout, visible, dead_letter, expire, clear).");
    for (size_t i = 0; i < ENG_EV_COUNT; i++)
        text_add(t, "anvil_message_events_total{event=\"%s\"} %llu\n",
                 eng_event_name((enum eng_event_type)i), (unsigned long long)em->events[i]);
}

static void render_commits(struct text *t, const struct eng_metrics *em)
{
    if (!em->has_commits)
        return;
    text_family(t, "anvil_commit_batch_records", "histogram", "Journal records per group commit.");
    text_hist(t, "anvil_commit_batch_records", "", &em->batch_records, &hist_sizes, 1.0);
    text_family(t, "anvil_commit_batch_duration_seconds", "histogram",
                "A group commit's whole transaction (writing its records and the commit).");
    text_hist(t, "anvil_commit_batch_duration_seconds", "", &em->batch_us, &hist_latency_us, 1e-6);
    text_family(t, "anvil_commit_fsync_duration_seconds", "histogram",
                "A group commit's COMMIT alone: where the write-ahead log is written and fsynced.");
    text_hist(t, "anvil_commit_fsync_duration_seconds", "", &em->commit_us, &hist_latency_us, 1e-6);
}

static void status_label(char *out, size_t len, const struct status_slot *s)
{
    if (s->status)
        snprintf(out, len, "%d", s->status);
    else
        snprintf(out, len, "other");
}

static void render_requests(struct text *t, const struct metrics *m)
{
    char labels[128], status[16];
    text_family(t, "anvil_http_requests_total", "counter",
                "Requests answered, by route (endpoint name) and HTTP status.");
    for (size_t r = 0; r < m->n_routes; r++)
        for (size_t i = 0; i < m->routes[r].n_slots; i++) {
            status_label(status, sizeof(status), &m->routes[r].slots[i]);
            text_add(t, "anvil_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                     m->routes[r].name, status,
                     (unsigned long long)m->routes[r].slots[i].latency_us.count);
        }
    text_family(t, "anvil_http_request_duration_seconds", "histogram",
                "From a request's arrival to its answer sent, by route and status "
                "(long polls include their wait).");
    for (size_t r = 0; r < m->n_routes; r++)
        for (size_t i = 0; i < m->routes[r].n_slots; i++) {
            status_label(status, sizeof(status), &m->routes[r].slots[i]);
            snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%s\"", m->routes[r].name,
                     status);
            text_hist(t, "anvil_http_request_duration_seconds", labels,
                      &m->routes[r].slots[i].latency_us, &hist_latency_us, 1e-6);
        }
}

static void render_process(struct text *t, const struct metrics_process *p)
{
    if (p->has_memory) {
        text_gauge(t, "anvil_process_resident_memory_bytes", "Resident memory of the process.",
                   p->resident_bytes);
        text_gauge(t, "anvil_process_virtual_memory_bytes", "Virtual memory of the process.",
                   p->virtual_bytes);
    }
    if (p->has_connections)
        text_gauge(t, "anvil_http_connections", "Client connections open.", p->connections);
    if (!p->has_push)
        return;
    text_family(t, "anvil_push_deliveries_total", "counter",
                "Push requests to subscribers by outcome (success, accepted: 202, refused: "
                "another status, error, timeout, faked: the test kit answered).");
    for (size_t i = 0; i < METRICS_PUSH_OUTCOMES; i++)
        text_add(t, "anvil_push_deliveries_total{outcome=\"%s\"} %llu\n", push_outcomes[i],
                 (unsigned long long)p->push.outcomes[i]);
    text_family(t, "anvil_push_delivery_duration_seconds", "histogram",
                "From sending a push request to its answer (answered requests only).");
    text_hist(t, "anvil_push_delivery_duration_seconds", "", &p->push.latency_us,
              &hist_latency_us, 1e-6);
}

void metrics_handle(struct api *api, struct api_request *req)
{
    struct metrics *m = api->metrics;
    struct eng_stats st;
    struct eng_metrics em;
    struct metrics_process proc = {0};
    struct text t = {0};
    size_t limit = m ? m->queue_limit : 0;
    if (eng_metrics(api->engine, limit, &em) != 0) {
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    eng_stats(api->engine, &st);
    if (m && m->process)
        m->process(m->process_ctx, &proc);
    text_family(&t, "anvil_build_info", "gauge", "The running anvil's version (always 1).");
    text_add(&t, "anvil_build_info{version=\"%s\"} 1\n", ANVIL_VERSION);
    render_engine_stats(&t, &st);
    render_depths(&t, &em, limit);
    render_events(&t, &em);
    render_commits(&t, &em);
    if (m)
        render_requests(&t, m);
    render_process(&t, &proc);
    eng_metrics_free(&em);
    if (t.failed) {
        free(t.buf);
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return;
    }
    req->reply_type = "text/plain; version=0.0.4; charset=utf-8";
    req->respond(req, 200, t.buf, t.len);
}
