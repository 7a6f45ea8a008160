/* engine/pg.c — the PostgreSQL back end (first cut; docs/scale-out.md): engine.h's calls as
 * SQL statements on a small pool of libpq connections driven by the event loop. State lives
 * in PostgreSQL only, so any number of anvil nodes can serve the same queues:
 *   - a message is a row; "visible" is visible_at <= now(), compared in each statement, so
 *     no node owns a timer; reserve is one UPDATE ... FOR UPDATE SKIP LOCKED;
 *   - each call is one statement (one round trip, one commit), answered when it completes:
 *     acknowledged means committed;
 *   - long polls: a post NOTIFYs "project/queue"; every node LISTENs on one connection and
 *     retries the reserve of its waiters on that queue; a waiter whose queue has messages
 *     becoming visible later (delays, reservations ending) retries at that time.
 * Not yet in this back end: push queues, dead letters, queue counts without COUNT(*),
 * pipelining several calls per round trip. The connection pool's sockets sit in one epoll
 * fd that the loop watches (eng_poll_fd). */
#include "backend.h"
#include "timerwheel.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { PG_CONNS = 16, PG_SCHEMA_VERSION = 1, MAX_PARAMS = 3 * 100 + 8 };

struct pg_job;
typedef void (*job_fn)(struct pgb *b, struct pg_job *j, PGresult *res);

struct pg_wait;

struct pg_job {
    struct list_node link;    /* pending */
    struct eng_op *op;        /* NULL: cancelled, the result is dropped */
    struct pg_wait *wait;     /* a long poll's retry */
    job_fn on_result;
    char *sql;                /* owned when sql_owned */
    bool sql_owned;
    int n;
    char *values[MAX_PARAMS]; /* owned copies */
    int lengths[MAX_PARAMS], formats[MAX_PARAMS];
    char project[256], queue[256];
    uint32_t want;            /* post: messages; reserve: n */
    struct eng_reserve_args args;
    const struct eng_queue_config *cfg_unused;
    int step;                 /* for calls of two statements */
    struct pg_job *next;      /* run after this one succeeds (a queue change after its check) */
    bool needs_dead_letter;   /* the check: a max without a queue needs one already set */
    bool again, retried;      /* on_result asks for the same statement once more */
    int key;                  /* prepared-statement key; 0: run unprepared */
};

/* Prepared statements: each statement text has a key (its index among the fixed ones, or
 * kind and size for the statements made per batch size); a connection prepares a key the
 * first time it runs it, and runs it by name from then on. */
enum { KEY_POST = 100, KEY_POST_EXISTING = 300, KEY_DELETE_MANY = 500, KEYS = 700 };

struct pg_conn {
    PGconn *c;
    struct pg_job *job;
    PGresult *last;
    bool want_write;
    bool prepared[KEYS];
};

/* A long poll: kept here until it is answered or its wait ends. */
struct pg_wait {
    struct list_node link;
    struct tw_node deadline, retry;
    struct eng_op *op;
    char project[256], queue[256];
    struct eng_reserve_args args;
    bool querying, dirty, expired;
    bool asked; /* a reserve has answered: the queue existed when the wait began */
};

struct pgb {
    struct engine base;
    struct pg_conn conns[PG_CONNS];
    PGconn *listener;
    int epfd;
    struct list_node pending, waits;
    struct timerwheel wheel;
    int64_t now_ms;
    uint64_t commits, commit_failures;
    struct tw_node listener_retry; /* the LISTEN connection is down: when to try again */
    bool shutting_down, broken;
};

enum { TIMER_DEADLINE = 1, TIMER_RETRY, TIMER_LISTENER };

/* ---- the schema ---- */

static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE anvil_queues ("
    "  id bigserial PRIMARY KEY,"
    "  project text NOT NULL,"
    "  name text NOT NULL,"
    "  qid text NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  type smallint NOT NULL DEFAULT 0,"
    "  message_timeout int NOT NULL DEFAULT 60,"
    "  message_expiration int NOT NULL DEFAULT 604800,"
    "  dead_letter_queue text,"
    "  dead_letter_max int NOT NULL DEFAULT 0,"
    "  total_messages bigint NOT NULL DEFAULT 0,"
    "  attributes bytea,"
    "  UNIQUE (project, name));"
    "CREATE TABLE anvil_messages ("
    "  id bigint PRIMARY KEY,"
    "  queue bigint NOT NULL REFERENCES anvil_queues ON DELETE CASCADE,"
    "  body bytea NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  visible_at timestamptz NOT NULL DEFAULT now(),"
    "  expires_at timestamptz NOT NULL,"
    "  reservation uuid,"
    "  reserved_count int NOT NULL DEFAULT 0,"
    "  attributes bytea);"
    "CREATE INDEX anvil_messages_ready ON anvil_messages (queue, visible_at, id);"
    "CREATE SEQUENCE anvil_message_ids;"
    /* total_messages in 16 rows per queue, so concurrent posts do not queue up behind one */
    "CREATE TABLE anvil_queue_totals ("
    "  queue bigint NOT NULL REFERENCES anvil_queues ON DELETE CASCADE,"
    "  shard smallint NOT NULL,"
    "  n bigint NOT NULL,"
    "  PRIMARY KEY (queue, shard));",
};

static int migrate(PGconn *c, char *err, size_t err_len)
{
    static const char *const setup[] = {
        "SELECT pg_advisory_lock(7236584)", /* one node migrates at a time */
        "CREATE TABLE IF NOT EXISTS anvil_meta (key text PRIMARY KEY, value bigint NOT NULL)",
        "INSERT INTO anvil_meta VALUES ('schema_version', 0) ON CONFLICT DO NOTHING"};
    int rc = -1;
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++) {
        PGresult *r = PQexec(c, setup[i]);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(c));
        PQclear(r);
        if (!ok)
            return -1;
    }
    PGresult *r = PQexec(c, "SELECT value FROM anvil_meta WHERE key = 'schema_version'");
    long version = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                       ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    if (version < 0 || version > PG_SCHEMA_VERSION) {
        snprintf(err, err_len, "the database's anvil schema is version %ld; this anvil knows up to %d:"
                 " use a newer anvil", version, PG_SCHEMA_VERSION);
        goto unlock;
    }
    for (long v = version; v < PG_SCHEMA_VERSION; v++) {
        char bump[96];
        snprintf(bump, sizeof(bump), "UPDATE anvil_meta SET value = %ld WHERE key = 'schema_version'", v + 1);
        const char *steps[] = {"BEGIN", migrations[v], bump, "COMMIT"};
        for (size_t i = 0; i < 4; i++) {
            r = PQexec(c, steps[i]);
            bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) {
                snprintf(err, err_len, "PostgreSQL: migration to schema %ld failed: %s", v + 1,
                         PQerrorMessage(c));
                PQclear(PQexec(c, "ROLLBACK"));
                goto unlock;
            }
        }
    }
    rc = 0;
unlock:
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(7236584)"));
    return rc;
}

/* ---- jobs and connections ---- */

static void job_free(struct pg_job *j)
{
    if (j->next)
        job_free(j->next);
    for (int i = 0; i < j->n; i++)
        free(j->values[i]);
    if (j->sql_owned)
        free(j->sql);
    free(j);
}

static struct pg_job *job_new(const char *sql, job_fn fn, struct eng_op *op)
{
    struct pg_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    list_init(&j->link);
    j->sql = (char *)sql;
    j->on_result = fn;
    j->op = op;
    return j;
}

/* Adds a parameter (NULL: SQL NULL); binary ones are passed as raw bytes. */
static void param(struct pg_job *j, const char *v, size_t len, bool binary)
{
    if (j->n >= MAX_PARAMS)
        return;
    char *copy = NULL;
    if (v && (copy = malloc(len + 1))) {
        memcpy(copy, v, len);
        copy[len] = '\0';
    }
    j->values[j->n] = copy;
    j->lengths[j->n] = (int)len;
    j->formats[j->n] = binary ? 1 : 0;
    j->n++;
}

static void param_text(struct pg_job *j, const char *v)
{
    param(j, v, v ? strlen(v) : 0, false);
}

static void param_u64(struct pg_job *j, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    param_text(j, t);
}

static void watch(struct pgb *b, struct pg_conn *pc)
{
    struct epoll_event ev = {.events = EPOLLIN | (pc->want_write ? EPOLLOUT : 0u), .data.ptr = pc};
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, PQsocket(pc->c), &ev);
}

static int statement_key(const char *sql);

/* Runs j on pc: by name once prepared on this connection. False on connection trouble. */
static bool send_job(struct pg_conn *pc, struct pg_job *j)
{
    int key = j->key ? j->key : statement_key(j->sql);
    char name[16];
    snprintf(name, sizeof(name), "a%d", key);
    if (key > 0 && key < KEYS && !pc->prepared[key]) {
        PGresult *r = PQprepare(pc->c, name, j->sql, 0, NULL); /* once per statement and connection */
        pc->prepared[key] = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (key > 0 && key < KEYS && pc->prepared[key])
        return PQsendQueryPrepared(pc->c, name, j->n, (const char *const *)j->values, j->lengths,
                                   j->formats, 0);
    return PQsendQueryParams(pc->c, j->sql, j->n, NULL, (const char *const *)j->values, j->lengths,
                             j->formats, 0);
}

static void conn_lost(struct pgb *b, struct pg_conn *pc);

static void pump(struct pgb *b)
{
    for (int i = 0; i < PG_CONNS && !list_empty(&b->pending); i++) {
        struct pg_conn *pc = &b->conns[i];
        if (pc->job)
            continue;
        if (PQstatus(pc->c) != CONNECTION_OK) /* the server went away: connect again */
            conn_lost(b, pc);
        struct pg_job *j = list_entry(b->pending.next, struct pg_job, link);
        list_remove(&j->link);
        pc->job = j;
        if (!send_job(pc, j)) {
            pc->job = NULL;
            j->on_result(b, j, NULL); /* connection trouble: the call fails with 503 */
            job_free(j);
            continue;
        }
        pc->want_write = PQflush(pc->c) == 1;
        watch(b, pc);
    }
}

static void submit(struct pgb *b, struct pg_job *j)
{
    list_push_back(&b->pending, &j->link);
    pump(b);
}

/* Answers op with res (moved out first: done() may free or restart op). */
static void answer(struct eng_op *op, struct eng_result *res)
{
    struct eng_result r = *res;
    eng_result_reset(res);
    op->in_flight = false;
    op->done(op, &r);
    eng_result_free(&r);
}

static void answer_status(struct eng_op *op, enum eng_status st)
{
    struct eng_result r = {.status = st};
    answer(op, &r);
}

/* A call's job with the queue as its first two parameters; NULL (op answered) when memory
 * ran out. */
static struct pg_job *call_job(struct eng_op *op, const char *sql, job_fn fn, int step,
                               const char *project, const char *name)
{
    struct pg_job *j = job_new(sql, fn, op);
    if (!j) {
        answer_status(op, ENG_NO_MEMORY);
        return NULL;
    }
    j->step = step;
    param_text(j, project);
    param_text(j, name);
    return j;
}

static void start(struct pgb *b, struct pg_job *j)
{
    j->op->in_flight = true;
    submit(b, j);
}

/* ENG_OK when res is a successful result; else the status the call fails with. */
static enum eng_status result_status(PGresult *res)
{
    if (!res)
        return ENG_STORAGE_UNAVAILABLE;
    ExecStatusType s = PQresultStatus(res);
    return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK ? ENG_OK : ENG_STORAGE_UNAVAILABLE;
}

static int64_t col_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A bytea column (text format) as a blob; NULL when the column is NULL or memory ran out. */
static struct blob *col_blob(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
    struct blob *bl = raw ? blob_new(raw, len) : NULL;
    PQfreemem(raw);
    return bl;
}

/* ---- queues ---- */

#define QUEUE_COLUMNS                                                                          \
    "q.qid, (extract(epoch FROM q.created_at) * 1000)::bigint, q.type, q.message_timeout,"    \
    " q.message_expiration, q.dead_letter_queue, q.dead_letter_max,"                         \
    " q.total_messages + coalesce((SELECT sum(n) FROM anvil_queue_totals t WHERE t.queue = q.id), 0),"\
    " q.attributes, q.project, q.name,"                                                        \
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND m.expires_at > now()"   \
    "   AND m.visible_at <= now()),"                                                          \
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND m.expires_at > now()"   \
    "   AND m.visible_at > now() AND m.reservation IS NULL),"                                 \
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND m.expires_at > now()"   \
    "   AND m.visible_at > now() AND m.reservation IS NOT NULL)"

static const char sql_queue_get[] =
    "SELECT " QUEUE_COLUMNS " FROM anvil_queues q WHERE q.project = $1 AND q.name = $2";

static void fill_queue(struct eng_queue_info *info, PGresult *r)
{
    snprintf(info->id, sizeof(info->id), "%s", PQgetvalue(r, 0, 0));
    info->created_at_ms = col_i64(r, 0, 1);
    info->type = (enum queue_type)col_i64(r, 0, 2);
    info->message_timeout_s = (uint32_t)col_i64(r, 0, 3);
    info->message_expiration_s = (uint32_t)col_i64(r, 0, 4);
    info->dead_letter_queue = PQgetisnull(r, 0, 5) ? NULL : strdup(PQgetvalue(r, 0, 5));
    info->dead_letter_max = (uint32_t)col_i64(r, 0, 6);
    info->total_messages = (uint64_t)col_i64(r, 0, 7);
    info->attributes = col_blob(r, 0, 8);
    info->project = strdup(PQgetvalue(r, 0, 9));
    info->name = strdup(PQgetvalue(r, 0, 10));
    info->ready = (uint64_t)col_i64(r, 0, 11);
    info->delayed = (uint64_t)col_i64(r, 0, 12);
    info->reserved = (uint64_t)col_i64(r, 0, 13);
}

static void on_queue(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = result_status(res)};
    if (r.status == ENG_OK && PQntuples(res) == 0)
        r.status = ENG_QUEUE_NOT_FOUND;
    if (r.status == ENG_OK) {
        r.has_queue = true;
        fill_queue(&r.queue, res);
        if (!r.queue.project || !r.queue.name)
            r.status = ENG_NO_MEMORY;
    }
    answer(j->op, &r);
}

static void queue_get(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    struct pg_job *j = call_job(op, sql_queue_get, on_queue, 0, project, name);
    if (!j)
        return;
    start(b, j);
}

void pg_queue_get(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    queue_get(b, op, project, name);
}

/* PUT creates or updates; PATCH updates. $3 type, $4 timeout, $5 expiration, $6 dead-letter
 * queue ('' removes), $7 its max, $8 attributes (a given NULL keeps them), $9 "attributes
 * given". Then the queue is read back by the same op. */
/* What an update of an existing queue q sets (shared by PUT and PATCH). */
#define QUEUE_SET                                                                              \
    "  message_timeout = coalesce($4::int, q.message_timeout),"                                \
    "  message_expiration = coalesce($5::int, q.message_expiration),"                          \
    "  dead_letter_queue = CASE WHEN $6::text IS NULL THEN q.dead_letter_queue"                \
    "   ELSE nullif($6::text, '') END,"                                                        \
    "  dead_letter_max = CASE WHEN (CASE WHEN $6::text IS NULL THEN q.dead_letter_queue"       \
    "   ELSE nullif($6::text, '') END) IS NULL THEN 0"                                         \
    "   WHEN $7::int IS NOT NULL THEN $7::int WHEN q.dead_letter_queue IS NULL THEN 10"       \
    "   ELSE q.dead_letter_max END,"                                                           \
    "  attributes = CASE WHEN $9::text = 't' THEN $8::bytea ELSE q.attributes END"

static const char sql_queue_put[] =
    "INSERT INTO anvil_queues AS q (project, name, qid, type, message_timeout, message_expiration,"
    "  dead_letter_queue, dead_letter_max, attributes)"
    " VALUES ($1, $2, substr(md5(random()::text || clock_timestamp()::text), 1, 24),"
    "  coalesce($3::smallint, 0), coalesce($4::int, 60), coalesce($5::int, 604800), nullif($6, ''),"
    "  CASE WHEN nullif($6, '') IS NULL THEN 0 ELSE coalesce($7::int, 10) END, $8)"
    " ON CONFLICT (project, name) DO UPDATE SET"
    QUEUE_SET
    " WHERE q.type = coalesce($3::smallint, q.type)"
    " RETURNING q.id";
static const char sql_queue_patch[] =
    "WITH u AS (UPDATE anvil_queues q SET"
    QUEUE_SET
    " WHERE q.project = $1 AND q.name = $2 AND q.type = coalesce($3::smallint, q.type) RETURNING q.id)"
    " SELECT (SELECT count(*) FROM u), (SELECT type FROM anvil_queues WHERE project = $1 AND name = $2)";

static void on_queue_changed(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    enum eng_status st = result_status(res);
    if (st == ENG_OK && j->step == 0 && PQntuples(res) == 0) /* PUT: the type differs */
        st = ENG_TYPE_IMMUTABLE;
    if (st == ENG_OK && j->step == 1) { /* PATCH: (updated, existing type) */
        if (PQgetisnull(res, 0, 1))
            st = ENG_QUEUE_NOT_FOUND;
        else if (col_i64(res, 0, 0) == 0)
            st = ENG_TYPE_IMMUTABLE;
    }
    if (st != ENG_OK) {
        answer_status(j->op, st);
        return;
    }
    queue_get(b, j->op, j->project, j->queue);
}

/* Before a dead-letter setting: $3 the new dead-letter queue ('' none). Answers (does the
 * chain of dead-letter queues from it lead back to $2, the queue's current one). */
static const char sql_dead_letter_check[] =
    "WITH RECURSIVE chain(name, depth) AS ("
    "  SELECT $3::text, 1 WHERE $3::text <> ''"
    "  UNION ALL SELECT q.dead_letter_queue, c.depth + 1 FROM chain c"
    "  JOIN anvil_queues q ON q.project = $1 AND q.name = c.name"
    "  WHERE q.dead_letter_queue IS NOT NULL AND c.depth < 1000)"
    " SELECT coalesce((SELECT bool_or(name = $2) FROM chain), false),"
    "  (SELECT dead_letter_queue FROM anvil_queues WHERE project = $1 AND name = $2)";

static void on_dead_letter_checked(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    enum eng_status st = result_status(res);
    if (st == ENG_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        st = ENG_DEAD_LETTER_CYCLE;
    else if (st == ENG_OK && j->needs_dead_letter && PQgetisnull(res, 0, 1))
        st = ENG_DEAD_LETTER_NAME;
    if (st != ENG_OK) {
        answer_status(j->op, st);
        return;
    }
    struct pg_job *next = j->next;
    j->next = NULL;
    submit(b, next);
}

static void queue_change(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                         const struct eng_queue_config *cfg, bool patch)
{
    if ((cfg->has_type && cfg->type != QUEUE_PULL) || cfg->has_push) {
        answer_status(op, ENG_PUSH_UNSUPPORTED); /* not yet in this back end */
        return;
    }
    if (cfg->has_dead_letter_queue && strcmp(cfg->dead_letter_queue, name) == 0) {
        answer_status(op, ENG_DEAD_LETTER_SELF);
        return;
    }
    struct pg_job *j = job_new(patch ? sql_queue_patch : sql_queue_put, on_queue_changed, op);
    if (!j) {
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    char num[24];
    j->step = patch ? 1 : 0;
    snprintf(j->project, sizeof(j->project), "%s", project);
    snprintf(j->queue, sizeof(j->queue), "%s", name);
    param_text(j, project);
    param_text(j, name);
    param_text(j, cfg->has_type ? "0" : NULL);
    snprintf(num, sizeof(num), "%u", cfg->message_timeout_s);
    param_text(j, cfg->has_message_timeout ? num : NULL);
    snprintf(num, sizeof(num), "%u", cfg->message_expiration_s);
    param_text(j, cfg->has_message_expiration ? num : NULL);
    param_text(j, cfg->has_dead_letter_queue ? cfg->dead_letter_queue : NULL);
    snprintf(num, sizeof(num), "%u", cfg->dead_letter_max);
    param_text(j, cfg->has_dead_letter_max ? num : NULL);
    param(j, cfg->has_attributes && cfg->attributes_len ? cfg->attributes : NULL,
          cfg->attributes_len, true);
    param_text(j, cfg->has_attributes ? "t" : "f");
    op->in_flight = true;
    if (!cfg->has_dead_letter_queue && !cfg->has_dead_letter_max) {
        submit(b, j);
        return;
    }
    struct pg_job *check = job_new(sql_dead_letter_check, on_dead_letter_checked, op);
    if (!check) {
        job_free(j);
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    check->next = j;
    check->needs_dead_letter = cfg->has_dead_letter_max && !cfg->has_dead_letter_queue;
    param_text(check, project);
    param_text(check, name);
    param_text(check, cfg->has_dead_letter_queue ? cfg->dead_letter_queue : "");
    submit(b, check);
}

void pg_queue_put(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                  const struct eng_queue_config *cfg)
{
    queue_change(b, op, project, name, cfg, false);
}

void pg_queue_patch(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                    const struct eng_queue_config *cfg)
{
    queue_change(b, op, project, name, cfg, true);
}

static void on_count(struct pgb *b, struct pg_job *j, PGresult *res);

static const char sql_queue_delete[] =
    "DELETE FROM anvil_queues WHERE project = $1 AND name = $2"
    " RETURNING id, pg_notify('anvil', $1 || '/' || $2)";

void pg_queue_delete(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    /* step 1: no row means the queue was not there */
    struct pg_job *j = call_job(op, sql_queue_delete, on_count, 1, project, name);
    if (j)
        start(b, j);
}

static const char sql_queue_list[] =
    "SELECT name FROM anvil_queues WHERE project = $1 AND starts_with(name, $2) AND name > $3"
    " ORDER BY name COLLATE \"C\" LIMIT $4";

static void on_list(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = result_status(res)};
    int n = r.status == ENG_OK ? PQntuples(res) : 0;
    if (n && !(r.names = calloc((size_t)n, sizeof(char *))))
        r.status = ENG_NO_MEMORY;
    for (int i = 0; r.names && i < n; i++)
        if ((r.names[r.n_names] = strdup(PQgetvalue(res, i, 0))))
            r.n_names++;
    answer(j->op, &r);
}

void pg_queue_list(struct pgb *b, struct eng_op *op, const char *project, const char *prefix,
                   const char *previous, uint32_t per_page)
{
    struct pg_job *j = job_new(sql_queue_list, on_list, op);
    if (!j) {
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    param_text(j, project);
    param_text(j, prefix ? prefix : "");
    param_text(j, previous ? previous : "");
    param_u64(j, per_page);
    start(b, j);
}

static const char sql_queue_exists[] =
    "SELECT 0, (SELECT count(*) FROM anvil_queues WHERE project = $1 AND name = $2)";

/* Every queue of this back end is a pull queue (push queues are not in it yet). */
void pg_subscribers(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                    enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n)
{
    (void)edit, (void)subs, (void)n;
    struct pg_job *j = call_job(op, sql_queue_exists, on_count, 5, project, name);
    if (!j)
        return;
    start(b, j);
}

/* ---- messages ---- */

/* Calls answered by counts. step 1: a row per thing done, none = the queue is not there;
 * 3: (changed, queue exists); 5: the same, and an existing queue is not a push queue;
 * 2 and 4: (changed, queue exists, message exists), nothing
 * changed = the reservation did not match; 2 hands back the new reservation id (4th). */
static void on_count(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    enum eng_status st = result_status(res);
    if (st == ENG_OK && j->step == 1 && PQntuples(res) == 0)
        st = ENG_QUEUE_NOT_FOUND;
    if (st == ENG_OK && (j->step == 3 || j->step == 5) && col_i64(res, 0, 1) == 0)
        st = ENG_QUEUE_NOT_FOUND; /* (changed, queue exists) */
    else if (st == ENG_OK && j->step == 5)
        st = ENG_NOT_PUSH_QUEUE;
    if (st == ENG_OK && (j->step == 2 || j->step == 4)) { /* (changed, queue, message) */
        if (col_i64(res, 0, 1) == 0)
            st = ENG_QUEUE_NOT_FOUND;
        else if (col_i64(res, 0, 2) == 0)
            st = ENG_MESSAGE_NOT_FOUND;
        else if (col_i64(res, 0, 0) == 0)
            st = ENG_RESERVATION_MISMATCH;
    }
    struct eng_result r = {.status = st};
    if (st == ENG_OK && j->step == 2 && PQnfields(res) > 3 && !PQgetisnull(res, 0, 3))
        snprintf(r.reservation_id, sizeof(r.reservation_id), "%s", PQgetvalue(res, 0, 3));
    answer(j->op, &r);
}

static void on_posted(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = result_status(res)};
    int n = r.status == ENG_OK ? PQntuples(res) : 0;
    if (r.status == ENG_OK && n == 0 && j->step == 1 && !j->retried) {
        /* a post making the queue met another making it at the same time: that one's row
         * was not in this statement's snapshot. Now it is committed: once more. */
        j->again = j->retried = true;
        return;
    }
    if (r.status == ENG_OK && n == 0)
        r.status = ENG_QUEUE_NOT_FOUND; /* post_existing to a queue that is not there */
    if (n && !(r.ids = calloc((size_t)n, sizeof(uint64_t))))
        r.status = ENG_NO_MEMORY;
    for (int i = 0; r.ids && i < n; i++)
        r.ids[r.n_ids++] = (uint64_t)col_i64(res, i, 0);
    /* nextval() ran in the order of the request's messages */
    for (size_t i = 1; i < r.n_ids; i++)
        for (size_t k = i; k > 0 && r.ids[k - 1] > r.ids[k]; k--) {
            uint64_t t = r.ids[k];
            r.ids[k] = r.ids[k - 1];
            r.ids[k - 1] = t;
        }
    answer(j->op, &r);
}

/* The statement for n messages: $1 project, $2 name, $3 n, then (body, delay, attributes)
 * per message. The queue is created (create) or must exist; the post NOTIFYs its queue. */
static char *post_sql(size_t n, bool create)
{
    size_t cap = 1200 + n * 64;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    /* the queue: made when missing (without locking an existing one's row) */
    int o = snprintf(s, cap, "%s",
                     create ? "WITH made AS (INSERT INTO anvil_queues (project, name, qid)"
                              " VALUES ($1, $2, substr(md5(random()::text || clock_timestamp()::text), 1, 24))"
                              " ON CONFLICT (project, name) DO NOTHING RETURNING id, message_expiration),"
                              " q AS (SELECT id, message_expiration FROM made UNION ALL"
                              " SELECT id, message_expiration FROM anvil_queues WHERE project = $1 AND name = $2),"
                            : "WITH q AS (SELECT id, message_expiration FROM anvil_queues"
                              " WHERE project = $1 AND name = $2),");
    o += snprintf(s + o, cap - (size_t)o,
                  " total AS (INSERT INTO anvil_queue_totals (queue, shard, n)"
                  " SELECT id, floor(random() * 16)::smallint, $3::bigint FROM q"
                  " ON CONFLICT (queue, shard) DO UPDATE SET n = anvil_queue_totals.n + EXCLUDED.n),");
    o += snprintf(s + o, cap - (size_t)o, " v(body, delay, attributes) AS (VALUES ");
    for (size_t i = 0; i < n; i++)
        o += snprintf(s + o, cap - (size_t)o, "%s($%zu::bytea, $%zu::int, $%zu::bytea)", i ? ", " : "",
                      4 + 3 * i, 5 + 3 * i, 6 + 3 * i);
    snprintf(s + o, cap - (size_t)o,
             ") INSERT INTO anvil_messages (id, queue, body, visible_at, expires_at, attributes)"
             " SELECT nextval('anvil_message_ids'), q.id, v.body,"
             "  CASE WHEN v.delay > 0 THEN now() + make_interval(secs => v.delay) ELSE now() END,"
             "  now() + make_interval(secs => q.message_expiration), v.attributes FROM q, v"
             " RETURNING id, pg_notify('anvil', $1 || '/' || $2)");
    return s;
}

static void post(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                 const struct eng_post_msg *msgs, size_t n, bool create)
{
    struct pg_job *j = n && n <= 100 ? job_new(NULL, on_posted, op) : NULL;
    if (j && !(j->sql = post_sql(n, create))) {
        job_free(j);
        j = NULL;
    }
    if (!j) {
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    j->sql_owned = true;
    j->step = create ? 1 : 0;
    j->key = (create ? KEY_POST : KEY_POST_EXISTING) + (int)n;
    param_text(j, project);
    param_text(j, name);
    param_u64(j, n);
    for (size_t i = 0; i < n; i++) {
        char delay[16];
        snprintf(delay, sizeof(delay), "%u", msgs[i].delay_s);
        param(j, msgs[i].body, msgs[i].body_len, true);
        param_text(j, delay);
        param(j, msgs[i].attributes, msgs[i].attributes_len, true);
    }
    start(b, j);
}

void pg_post(struct pgb *b, struct eng_op *op, const char *project, const char *name,
             const struct eng_post_msg *msgs, size_t n)
{
    post(b, op, project, name, msgs, n, true);
}

void pg_post_existing(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                      const struct eng_post_msg *msgs, size_t n)
{
    post(b, op, project, name, msgs, n, false);
}

/* Reserve: $1 project, $2 name, $3 n, $4 timeout (-1: the queue's), $5 delete ('t').
 * One row per message, or one row of NULLs; every row says whether the queue exists and
 * when its next message becomes visible (for a waiting long poll). */
static const char sql_reserve[] =
    "WITH q AS (SELECT id, message_timeout, dead_letter_queue, dead_letter_max FROM anvil_queues"
    "  WHERE project = $1 AND name = $2),"
    /* dead letters: ready messages at the front reserved max times move to the dead-letter
     * queue (created when missing) instead of being handed out */
    " front AS (SELECT m.id, m.reserved_count FROM anvil_messages m JOIN q ON m.queue = q.id"
    "  WHERE q.dead_letter_queue IS NOT NULL AND m.visible_at <= now() AND m.expires_at > now()"
    "  ORDER BY m.visible_at, m.id LIMIT 100 FOR UPDATE OF m SKIP LOCKED),"
    " dying AS (SELECT front.id FROM front, q WHERE front.reserved_count >= q.dead_letter_max),"
    " dlq AS (INSERT INTO anvil_queues AS d (project, name, qid)"
    "  SELECT $1, q.dead_letter_queue, substr(md5(random()::text || clock_timestamp()::text), 1, 24)"
    "  FROM q WHERE EXISTS (SELECT 1 FROM dying)"
    "  ON CONFLICT (project, name) DO UPDATE SET total_messages = d.total_messages"
    "  RETURNING d.id, d.message_expiration, d.type),"
    " moved AS (UPDATE anvil_messages m SET queue = dlq.id, reservation = NULL, visible_at = now(),"
    "  expires_at = now() + make_interval(secs => dlq.message_expiration)"
    "  FROM dlq WHERE dlq.type = 0 AND m.id IN (SELECT id FROM dying)"
    "  RETURNING pg_notify('anvil', $1 || '/' || (SELECT dead_letter_queue FROM q))),"
    " pick AS (SELECT m.id FROM anvil_messages m JOIN q ON m.queue = q.id"
    "  WHERE m.visible_at <= now() AND m.expires_at > now()"
    "  AND (q.dead_letter_queue IS NULL OR m.reserved_count < q.dead_letter_max)"
    "  ORDER BY m.visible_at, m.id LIMIT $3 FOR UPDATE OF m SKIP LOCKED),"
    " upd AS (UPDATE anvil_messages m SET reservation = gen_random_uuid(),"
    "  reserved_count = m.reserved_count + 1,"
    "  visible_at = now() + make_interval(secs => CASE WHEN $4::int >= 0 THEN $4::int ELSE q.message_timeout END)"
    "  FROM q WHERE m.id IN (SELECT id FROM pick) AND $5 <> 't'"
    "  RETURNING m.id, m.body, replace(m.reservation::text, '-', '') AS rid, m.reserved_count,"
    "   (extract(epoch FROM m.created_at) * 1000)::bigint AS created, m.attributes),"
    " del AS (DELETE FROM anvil_messages m WHERE m.id IN (SELECT id FROM pick) AND $5 = 't'"
    "  RETURNING m.id, m.body, replace(gen_random_uuid()::text, '-', '') AS rid, m.reserved_count + 1,"
    "   (extract(epoch FROM m.created_at) * 1000)::bigint, m.attributes),"
    " got AS (SELECT * FROM upd UNION ALL SELECT * FROM del)"
    " SELECT got.*, (SELECT count(*) FROM q),"
    "  (SELECT (extract(epoch FROM min(m.visible_at)) * 1000)::bigint FROM anvil_messages m, q"
    "   WHERE m.queue = q.id AND m.visible_at > now() AND m.expires_at > now())"
    " FROM (SELECT 1) one LEFT JOIN got ON true";

static void wait_answer(struct pgb *b, struct pg_wait *w, struct eng_result *r);
static void wait_retry_at(struct pgb *b, struct pg_wait *w, int64_t at_ms);
static void wake_oldest(struct pgb *b, const char *project, const char *queue);

static void on_reserved(struct pgb *b, struct pg_job *j, PGresult *res)
{
    struct eng_result r = {.status = result_status(res)};
    int rows = r.status == ENG_OK ? PQntuples(res) : 0;
    bool found = rows && col_i64(res, 0, 6) > 0;
    int64_t next_visible = rows ? col_i64(res, 0, 7) : 0;
    if (r.status == ENG_OK && !found)
        r.status = ENG_QUEUE_NOT_FOUND;
    int n = rows && !PQgetisnull(res, 0, 0) ? rows : 0;
    if (n && !(r.messages = calloc((size_t)n, sizeof(*r.messages))))
        r.status = ENG_NO_MEMORY;
    for (int i = 0; r.messages && i < n; i++) {
        struct eng_message *m = &r.messages[r.n_messages];
        m->id = (uint64_t)col_i64(res, i, 0);
        if (!(m->body = col_blob(res, i, 1)))
            m->body = blob_new("", 0);
        m->has_reservation = !PQgetisnull(res, i, 2);
        if (m->has_reservation)
            snprintf(m->reservation_id, sizeof(m->reservation_id), "%s", PQgetvalue(res, i, 2));
        m->reserved_count = (uint32_t)col_i64(res, i, 3);
        m->created_at_ms = col_i64(res, i, 4);
        m->attributes = col_blob(res, i, 5);
        if (m->body)
            r.n_messages++;
    }
    for (size_t i = 1; i < r.n_messages; i++) /* the order reserved: by id */
        for (size_t k = i; k > 0 && r.messages[k - 1].id > r.messages[k].id; k--) {
            struct eng_message t = r.messages[k];
            r.messages[k] = r.messages[k - 1];
            r.messages[k - 1] = t;
        }
    struct pg_wait *w = j->wait;
    bool gone = false;
    if (w && r.status == ENG_QUEUE_NOT_FOUND && w->asked) { /* deleted while it waited: */
        r.status = ENG_OK;                                 /* an empty answer */
        gone = true;
    }
    if (w && r.status == ENG_STORAGE_UNAVAILABLE && w->asked && !w->expired && !b->shutting_down) {
        /* the connection went away under it (a restart, a failover): the wait goes on */
        w->querying = false;
        eng_result_free(&r);
        wait_retry_at(b, w, b->now_ms + 100);
        return;
    }
    if (w) {
        w->querying = false;
        w->asked = true;
        if (r.status == ENG_OK && r.n_messages == 0 && !w->expired && !b->shutting_down && !gone) {
            if (w->dirty) { /* a post came while we looked: look again */
                w->dirty = false;
                eng_result_free(&r);
                wait_retry_at(b, w, 0);
                return;
            }
            if (next_visible)
                wait_retry_at(b, w, next_visible + 1);
            eng_result_free(&r);
            return;
        }
        bool served = r.n_messages > 0;
        char project[256], queue[256];
        memcpy(project, w->project, sizeof(project));
        memcpy(queue, w->queue, sizeof(queue));
        wait_answer(b, w, &r);
        if (served) /* there may be more: the next waiter of this queue looks */
            wake_oldest(b, project, queue);
        return;
    }
    if (j->op)
        answer(j->op, &r);
    else
        eng_result_free(&r); /* cancelled: what it reserved becomes visible at its timeout */
}

static struct pg_job *reserve_job(const char *project, const char *name,
                                  const struct eng_reserve_args *a, struct eng_op *op)
{
    struct pg_job *j = job_new(sql_reserve, on_reserved, op);
    if (!j)
        return NULL;
    char t[16];
    param_text(j, project);
    param_text(j, name);
    param_u64(j, a->n ? a->n : 1);
    snprintf(t, sizeof(t), "%d", a->timeout_s || a->exact_timeout ? (int)a->timeout_s : -1);
    param_text(j, t);
    param_text(j, a->delete_msgs ? "t" : "f");
    return j;
}

/* ---- long polls ---- */

static void wait_free(struct pgb *b, struct pg_wait *w)
{
    tw_cancel(&b->wheel, &w->deadline);
    tw_cancel(&b->wheel, &w->retry);
    list_remove(&w->link);
    free(w);
}

static void wait_answer(struct pgb *b, struct pg_wait *w, struct eng_result *r)
{
    struct eng_op *op = w->op;
    wait_free(b, w);
    if (op)
        answer(op, r);
    else
        eng_result_free(r);
}

static void wait_query(struct pgb *b, struct pg_wait *w)
{
    struct pg_job *j = reserve_job(w->project, w->queue, &w->args, NULL);
    if (!j) {
        struct eng_result r = {.status = ENG_NO_MEMORY};
        wait_answer(b, w, &r);
        return;
    }
    j->wait = w;
    w->querying = true;
    submit(b, j);
}

static void wait_retry_at(struct pgb *b, struct pg_wait *w, int64_t at_ms)
{
    if (at_ms <= b->now_ms) {
        tw_cancel(&b->wheel, &w->retry);
        wait_query(b, w);
    } else {
        tw_insert(&b->wheel, &w->retry, at_ms);
    }
}

static void listener_reconnect(struct pgb *b);

static void on_timer(struct tw_node *node, void *ctx)
{
    struct pgb *b = ctx;
    if (node->tag == TIMER_LISTENER) {
        listener_reconnect(b);
        return;
    }
    struct pg_wait *w = node->tag == TIMER_DEADLINE ? list_entry(node, struct pg_wait, deadline)
                                                    : list_entry(node, struct pg_wait, retry);
    if (node->tag == TIMER_RETRY) {
        if (!w->querying)
            wait_query(b, w);
        return;
    }
    if (w->querying) { /* answered with what that reserve finds */
        w->expired = true;
        return;
    }
    struct eng_result r = {.status = ENG_OK};
    wait_answer(b, w, &r);
}

static bool waits_on(const struct pg_wait *w, const char *project, const char *queue)
{
    return strcmp(w->project, project) == 0 && strcmp(w->queue, queue) == 0;
}

/* The oldest waiter of project/queue looks again (oldest first: a post goes to the waiter
 * that waited longest; one that is served passes the turn on to the next). */
static void wake_oldest(struct pgb *b, const char *project, const char *queue)
{
    struct list_node *pos;
    for (pos = b->waits.next; pos != &b->waits; pos = pos->next) {
        struct pg_wait *w = list_entry(pos, struct pg_wait, link);
        if (!waits_on(w, project, queue))
            continue;
        if (w->querying)
            w->dirty = true;
        else
            wait_query(b, w);
        return;
    }
}

/* A NOTIFY "project/queue". */
static void on_notify(struct pgb *b, const char *payload)
{
    const char *slash = strchr(payload, '/');
    char project[256];
    if (!slash || (size_t)(slash - payload) >= sizeof(project))
        return;
    memcpy(project, payload, (size_t)(slash - payload));
    project[slash - payload] = '\0';
    wake_oldest(b, project, slash + 1);
}

void pg_reserve(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                const struct eng_reserve_args *args)
{
    op->in_flight = true;
    if (args->wait_s == 0 || b->shutting_down) {
        struct pg_job *j = reserve_job(project, name, args, op);
        if (!j) {
            answer_status(op, ENG_NO_MEMORY);
            return;
        }
        submit(b, j);
        return;
    }
    struct pg_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    w->op = op;
    w->args = *args;
    snprintf(w->project, sizeof(w->project), "%s", project);
    snprintf(w->queue, sizeof(w->queue), "%s", name);
    tw_node_init(&w->deadline, TIMER_DEADLINE);
    tw_node_init(&w->retry, TIMER_RETRY);
    list_push_back(&b->waits, &w->link);
    tw_insert(&b->wheel, &w->deadline, b->now_ms + (int64_t)args->wait_s * 1000);
    wait_query(b, w);
}

/* ---- reading, deleting, reservations ---- */

/* Peek ($4 NULL) or get by id ($4): rows shaped like a reserve's, without reservations. */
static const char sql_read[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " got AS (SELECT m.id, m.body, NULL::text AS rid, m.reserved_count,"
    "  (extract(epoch FROM m.created_at) * 1000)::bigint AS created, m.attributes"
    "  FROM anvil_messages m, q WHERE m.queue = q.id AND m.expires_at > now()"
    "  AND ($4::bigint IS NOT NULL OR m.visible_at <= now()) AND ($4::bigint IS NULL OR m.id = $4::bigint)"
    "  ORDER BY m.visible_at, m.id LIMIT $3)"
    " SELECT got.*, (SELECT count(*) FROM q), NULL::bigint FROM (SELECT 1) one LEFT JOIN got ON true";

static void on_read(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    struct eng_op *op = j->op;
    j->op = NULL;
    if (j->step == 1 && result_status(res) == ENG_OK && PQntuples(res) >= 1 &&
        PQgetisnull(res, 0, 0) && col_i64(res, 0, 6) > 0) {
        answer_status(op, ENG_MESSAGE_NOT_FOUND); /* get: the queue is there, the message not */
        return;
    }
    j->op = op;
    on_reserved(b, j, res);
}

static void read_messages(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                          uint32_t n, const uint64_t *id)
{
    struct pg_job *j = call_job(op, sql_read, on_read, id ? 1 : 0, project, name);
    if (!j)
        return;
    param_u64(j, n);
    if (id)
        param_u64(j, *id);
    else
        param_text(j, NULL);
    start(b, j);
}

void pg_peek(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint32_t n)
{
    read_messages(b, op, project, name, n, NULL);
}

void pg_get(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint64_t id)
{
    read_messages(b, op, project, name, 1, &id);
}

/* What a reservation id must look like to reach SQL (else it matches nothing). */
static const char *reservation_param(const char *rid)
{
    static const char none[] = "00000000000000000000000000000000";
    if (!rid || strlen(rid) != RESERVATION_ID_HEX)
        return none;
    for (const char *p = rid; *p; p++)
        if (ids_hex_value(*p) < 0)
            return none;
    return rid;
}

/* $1 project, $2 name, $3 id, $4 reservation (NULL: none given). A message is reserved while
 * it has a reservation whose time has not run out; then only that reservation deletes it,
 * otherwise only a delete without one. Answers (deleted, queue exists, message exists). */
static const char sql_delete[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " m AS (SELECT m.id, m.reservation IS NOT NULL AND m.visible_at > now() AS reserved, m.reservation"
    "  FROM anvil_messages m, q WHERE m.id = $3 AND m.queue = q.id AND m.expires_at > now()),"
    " d AS (DELETE FROM anvil_messages x USING m WHERE x.id = m.id AND CASE WHEN m.reserved"
    "  THEN m.reservation = $4::uuid ELSE $4::uuid IS NULL END RETURNING 1)"
    " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q), (SELECT count(*) FROM m)";

void pg_delete(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint64_t id,
               const char *reservation_id, const char *subscriber_name)
{
    (void)subscriber_name; /* push queues are not in this back end yet */
    struct pg_job *j = call_job(op, sql_delete, on_count, 2, project, name);
    if (!j)
        return;
    param_u64(j, id);
    param_text(j, reservation_id && reservation_id[0] ? reservation_param(reservation_id) : NULL);
    start(b, j);
}

/* A reservation's change: $1 project, $2 name, $3 id, $4 reservation, $5 seconds.
 * touch: a new reservation id, counted; visibility: the same id, $5 = 0 makes it visible now
 * (at the front); release: no reservation, visible after $5 (0: now, at the front). */
static const char sql_touch[] =
    "WITH q AS (SELECT id, message_timeout FROM anvil_queues WHERE project = $1 AND name = $2),"
    " m AS (SELECT m.id FROM anvil_messages m, q WHERE m.id = $3 AND m.queue = q.id AND m.expires_at > now()),"
    " u AS (UPDATE anvil_messages x SET reservation = gen_random_uuid(), reserved_count = x.reserved_count + 1,"
    "  visible_at = now() + make_interval(secs => CASE WHEN $5::int > 0 THEN $5::int ELSE (SELECT message_timeout FROM q) END)"
    "  FROM m WHERE x.id = m.id AND x.reservation = $4::uuid AND x.visible_at > now()"
    "  RETURNING replace(x.reservation::text, '-', '') AS rid)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM q), (SELECT count(*) FROM m), (SELECT rid FROM u)";
static const char sql_visibility[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " m AS (SELECT m.id FROM anvil_messages m, q WHERE m.id = $3 AND m.queue = q.id AND m.expires_at > now()),"
    " u AS (UPDATE anvil_messages x SET"
    "  reservation = CASE WHEN $5::int > 0 THEN x.reservation END,"
    "  visible_at = CASE WHEN $5::int > 0 THEN now() + make_interval(secs => $5::int) ELSE '-infinity' END"
    "  FROM m WHERE x.id = m.id AND x.reservation = $4::uuid AND x.visible_at > now() RETURNING 1)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM q), (SELECT count(*) FROM m),"
    "  CASE WHEN (SELECT count(*) FROM u) > 0 AND $5::int = 0 THEN pg_notify('anvil', $1 || '/' || $2)::text END";
static const char sql_release[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " m AS (SELECT m.id FROM anvil_messages m, q WHERE m.id = $3 AND m.queue = q.id AND m.expires_at > now()),"
    " u AS (UPDATE anvil_messages x SET reservation = NULL,"
    "  visible_at = CASE WHEN $5::int > 0 THEN now() + make_interval(secs => $5::int) ELSE '-infinity' END"
    "  FROM m WHERE x.id = m.id AND x.reservation = $4::uuid AND x.visible_at > now() RETURNING 1)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM q), (SELECT count(*) FROM m),"
    "  CASE WHEN (SELECT count(*) FROM u) > 0 AND $5::int = 0 THEN pg_notify('anvil', $1 || '/' || $2)::text END";

static void reservation_call(struct pgb *b, struct eng_op *op, const char *sql, const char *project,
                             const char *name, uint64_t id, const char *rid, uint32_t secs)
{
    if (!rid || !rid[0]) {
        answer_status(op, ENG_RESERVATION_REQUIRED);
        return;
    }
    /* step 4: like 2, without handing back a reservation id */
    struct pg_job *j = call_job(op, sql, on_count, sql == sql_touch ? 2 : 4, project, name);
    if (!j)
        return;
    char t[16];
    snprintf(t, sizeof(t), "%u", secs);
    param_u64(j, id);
    param_text(j, reservation_param(rid));
    param_text(j, t);
    start(b, j);
}

void pg_touch(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint64_t id,
              const char *reservation_id, uint32_t timeout_s)
{
    reservation_call(b, op, sql_touch, project, name, id, reservation_id, timeout_s);
}

void pg_release(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint64_t id,
                const char *reservation_id, uint32_t delay_s)
{
    reservation_call(b, op, sql_release, project, name, id, reservation_id, delay_s);
}

void pg_change_visibility(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                          uint64_t id, const char *reservation_id, uint32_t timeout_s)
{
    reservation_call(b, op, sql_visibility, project, name, id, reservation_id, timeout_s);
}

/* All or nothing: (deleted, queue exists, first failing entry (1-based) or NULL, it is missing). */
static char *delete_many_sql(size_t n)
{
    size_t cap = 1400 + n * 48;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int o = snprintf(s, cap, "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
                             " w(id, rid, ord) AS (VALUES ");
    for (size_t i = 0; i < n; i++)
        o += snprintf(s + o, cap - (size_t)o, "%s($%zu::bigint, $%zu::uuid, %zu)", i ? ", " : "",
                      3 + 2 * i, 4 + 2 * i, i + 1);
    snprintf(s + o, cap - (size_t)o,
             "), c AS (SELECT w.ord, m.id AS mid, CASE WHEN m.reservation IS NOT NULL AND m.visible_at > now()"
             "   THEN coalesce(m.reservation = w.rid, false) ELSE w.rid IS NULL END AS ok"
             "  FROM w LEFT JOIN anvil_messages m ON m.id = w.id AND m.queue = (SELECT id FROM q)"
             "   AND m.expires_at > now()),"
             " bad AS (SELECT min(ord) AS ord FROM c WHERE mid IS NULL OR NOT ok),"
             " d AS (DELETE FROM anvil_messages x USING c WHERE x.id = c.mid"
             "  AND (SELECT ord FROM bad) IS NULL AND (SELECT count(*) FROM q) > 0 RETURNING 1)"
             " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q), (SELECT ord FROM bad),"
             "  (SELECT mid IS NULL FROM c WHERE ord = (SELECT ord FROM bad))");
    return s;
}

static void on_deleted_many(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = result_status(res)};
    if (r.status == ENG_OK && col_i64(res, 0, 1) == 0) {
        r.status = ENG_QUEUE_NOT_FOUND;
    } else if (r.status == ENG_OK && !PQgetisnull(res, 0, 2)) {
        r.failed_index = (size_t)col_i64(res, 0, 2) - 1;
        r.status = strcmp(PQgetvalue(res, 0, 3), "t") == 0 ? ENG_MESSAGE_NOT_FOUND
                                                          : ENG_RESERVATION_MISMATCH;
    }
    answer(j->op, &r);
}

void pg_delete_many(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                    const struct eng_delete_item *items, size_t n)
{
    struct pg_job *j = n && n <= 100 ? job_new(NULL, on_deleted_many, op) : NULL;
    if (j && !(j->sql = delete_many_sql(n))) {
        job_free(j);
        j = NULL;
    }
    if (!j) {
        answer_status(op, ENG_NO_MEMORY);
        return;
    }
    j->sql_owned = true;
    j->key = KEY_DELETE_MANY + (int)n;
    param_text(j, project);
    param_text(j, name);
    for (size_t i = 0; i < n; i++) {
        param_u64(j, items[i].id);
        const char *rid = items[i].reservation_id;
        param_text(j, rid && rid[0] ? reservation_param(rid) : NULL);
    }
    start(b, j);
}

static const char sql_clear[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " d AS (DELETE FROM anvil_messages m USING q WHERE m.queue = q.id RETURNING 1)"
    " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q), 1";

void pg_clear(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    struct pg_job *j = call_job(op, sql_clear, on_count, 3, project, name);
    if (!j)
        return;
    start(b, j);
}

/* The fixed statements' keys (1...). */
static int statement_key(const char *sql)
{
    static const char *const fixed[] = {sql_queue_get, sql_queue_put, sql_queue_patch,
                                        sql_dead_letter_check, sql_queue_delete, sql_queue_list,
                                        sql_queue_exists, sql_reserve, sql_read, sql_delete,
                                        sql_touch, sql_visibility, sql_release, sql_clear};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (sql == fixed[i])
            return (int)i + 1;
    return 0;
}

/* ---- push queues: not in this back end yet ---- */

void pg_set_pusher(struct pgb *b, const struct eng_pusher *pusher)
{
    (void)b, (void)pusher;
}

void pg_push_answer(struct pgb *b, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                    uint32_t slot, int status)
{
    (void)b, (void)msg_id, (void)subscriber, (void)try_no, (void)slot, (void)status;
}

void pg_push_statuses(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                      uint64_t id)
{
    (void)b, (void)project, (void)name, (void)id;
    answer_status(op, ENG_NOT_PUSH_QUEUE);
}

/* ---- the loop's side ---- */

static void finish_job(struct pgb *b, struct pg_conn *pc)
{
    struct pg_job *j = pc->job;
    pc->job = NULL;
    PGresult *res = pc->last;
    pc->last = NULL;
    if (result_status(res) == ENG_OK)
        b->commits++;
    else
        b->commit_failures++;
    j->on_result(b, j, res);
    PQclear(res);
    if (j->again) {
        j->again = false;
        submit(b, j);
        return;
    }
    job_free(j);
}

/* A connection that failed: its call fails (503), then it reconnects (libpq's multi-host
 * conninfo finds the primary after a failover). */
static void conn_lost(struct pgb *b, struct pg_conn *pc)
{
    if (pc->job) {
        PQclear(pc->last);
        pc->last = NULL;
        finish_job(b, pc);
    }
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, PQsocket(pc->c), NULL);
    PQreset(pc->c); /* blocks up to connect_timeout: a failover's window */
    memset(pc->prepared, 0, sizeof(pc->prepared)); /* a new session has none */
    PQsetnonblocking(pc->c, 1);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = pc};
    b->broken = PQstatus(pc->c) != CONNECTION_OK ||
                epoll_ctl(b->epfd, EPOLL_CTL_ADD, PQsocket(pc->c), &ev) != 0;
}

static void conn_readable(struct pgb *b, struct pg_conn *pc, uint32_t events)
{
    if ((events & EPOLLOUT) && pc->want_write) {
        pc->want_write = PQflush(pc->c) == 1;
        watch(b, pc);
    }
    if (!PQconsumeInput(pc->c) || PQstatus(pc->c) != CONNECTION_OK) {
        conn_lost(b, pc);
        return;
    }
    while (pc->job && !PQisBusy(pc->c)) {
        PGresult *r = PQgetResult(pc->c);
        if (!r) {
            finish_job(b, pc);
            break;
        }
        PQclear(pc->last);
        pc->last = r;
    }
}

/* The LISTEN connection went away: connect again (libpq's multi-host URL finds the new
 * primary), or try again in 100 ms while the server is still down. Notifications were lost
 * meanwhile, so once it is back every waiter looks again. */
static void listener_reconnect(struct pgb *b)
{
    if (PQsocket(b->listener) >= 0)
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, PQsocket(b->listener), NULL);
    PQreset(b->listener);
    PGresult *r = PQstatus(b->listener) == CONNECTION_OK ? PQexec(b->listener, "LISTEN anvil") : NULL;
    bool listening = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = b};
    if (!listening || PQsetnonblocking(b->listener, 1) != 0 ||
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, PQsocket(b->listener), &ev) != 0) {
        tw_insert(&b->wheel, &b->listener_retry, b->now_ms + 100);
        return;
    }
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->waits) {
        struct pg_wait *w = list_entry(pos, struct pg_wait, link);
        if (w->querying)
            w->dirty = true;
        else
            wait_query(b, w);
    }
}

static void listener_readable(struct pgb *b)
{
    if (!PQconsumeInput(b->listener) || PQstatus(b->listener) != CONNECTION_OK) {
        listener_reconnect(b);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(b->listener))) {
        on_notify(b, n->extra);
        PQfreemem(n);
    }
}

void pg_on_readable(struct pgb *b)
{
    struct epoll_event evs[PG_CONNS + 1];
    int n = epoll_wait(b->epfd, evs, PG_CONNS + 1, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == b)
            listener_readable(b);
        else
            conn_readable(b, evs[i].data.ptr, evs[i].events);
    }
    pump(b);
}

void pg_set_time(struct pgb *b, int64_t now_ms)
{
    if (now_ms < b->now_ms)
        return;
    b->now_ms = now_ms;
    tw_advance(&b->wheel, now_ms, on_timer, b);
}

int64_t pg_next_deadline(const struct pgb *b)
{
    return tw_next_deadline(&b->wheel);
}

int pg_poll_fd(const struct pgb *b)
{
    return b->epfd;
}

void pg_flush(struct pgb *b)
{
    pump(b);
}

bool pg_idle(const struct pgb *b)
{
    for (int i = 0; i < PG_CONNS; i++)
        if (b->conns[i].job)
            return false;
    return list_empty(&b->pending);
}

void pg_stats(const struct pgb *b, struct eng_stats *out)
{
    memset(out, 0, sizeof(*out)); /* counts would need queries: not kept by this back end yet */
    out->commits = b->commits;
    out->commit_failures = b->commit_failures;
    out->storage_ok = !b->broken && PQstatus(b->conns[0].c) == CONNECTION_OK;
}

void pg_cancel(struct pgb *b, struct eng_op *op)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->pending) {
        struct pg_job *j = list_entry(pos, struct pg_job, link);
        if (j->op == op) {
            list_remove(&j->link);
            job_free(j);
        }
    }
    for (int i = 0; i < PG_CONNS; i++)
        if (b->conns[i].job && b->conns[i].job->op == op)
            b->conns[i].job->op = NULL; /* its answer is dropped */
    list_for_each_safe(pos, tmp, &b->waits) {
        struct pg_wait *w = list_entry(pos, struct pg_wait, link);
        if (w->op != op)
            continue;
        if (w->querying)
            w->op = NULL, w->expired = true; /* the query's answer is dropped */
        else
            wait_free(b, w);
    }
    op->in_flight = false;
}

void pg_wake_all_waiters(struct pgb *b)
{
    b->shutting_down = true;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->waits) {
        struct pg_wait *w = list_entry(pos, struct pg_wait, link);
        if (w->querying) {
            w->expired = true;
            continue;
        }
        struct eng_result r = {.status = ENG_OK};
        wait_answer(b, w, &r);
    }
}

static PGconn *connect_to(const char *url, char *err, size_t err_len)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, err_len, "PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

void pg_close(struct pgb *b)
{
    pg_wake_all_waiters(b);
    for (int i = 0; i < PG_CONNS; i++) { /* what is in flight completes; then goodbye */
        struct pg_conn *pc = &b->conns[i];
        if (!pc->c)
            continue;
        if (pc->job) {
            PQsetnonblocking(pc->c, 0);
            PGresult *r;
            while ((r = PQgetResult(pc->c))) {
                PQclear(pc->last);
                pc->last = r;
            }
            finish_job(b, pc);
        }
        PQfinish(pc->c);
    }
    while (!list_empty(&b->pending)) {
        struct pg_job *j = list_entry(b->pending.next, struct pg_job, link);
        list_remove(&j->link);
        if (j->op)
            answer_status(j->op, ENG_SHUTTING_DOWN);
        job_free(j);
    }
    while (!list_empty(&b->waits)) {
        struct pg_wait *w = list_entry(b->waits.next, struct pg_wait, link);
        struct eng_result r = {.status = ENG_OK};
        wait_answer(b, w, &r);
    }
    if (b->listener)
        PQfinish(b->listener);
    if (b->epfd >= 0)
        close(b->epfd);
    free(b);
}

struct pgb *pg_open(const struct eng_options *opt, char *err, size_t err_len)
{
    struct pgb *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    b->base.backend = ENG_BACKEND_POSTGRES;
    b->now_ms = opt->now_ms;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    list_init(&b->pending);
    list_init(&b->waits);
    tw_init(&b->wheel, opt->now_ms);
    tw_node_init(&b->listener_retry, TIMER_LISTENER);
    if (b->epfd < 0 || !(b->listener = connect_to(opt->backend_url, err, err_len)) ||
        migrate(b->listener, err, err_len) != 0)
        goto fail;
    PGresult *r = PQexec(b->listener, "LISTEN anvil");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = b};
    if (!ok || PQsetnonblocking(b->listener, 1) != 0 ||
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, PQsocket(b->listener), &ev) != 0) {
        snprintf(err, err_len, "PostgreSQL: LISTEN failed: %s", PQerrorMessage(b->listener));
        goto fail;
    }
    for (int i = 0; i < PG_CONNS; i++) {
        struct pg_conn *pc = &b->conns[i];
        if (!(pc->c = connect_to(opt->backend_url, err, err_len)))
            goto fail;
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = pc};
        if (PQsetnonblocking(pc->c, 1) != 0 ||
            epoll_ctl(b->epfd, EPOLL_CTL_ADD, PQsocket(pc->c), &cev) != 0) {
            snprintf(err, err_len, "PostgreSQL: cannot watch the connection");
            goto fail;
        }
    }
    return b;
fail:
    pg_close(b);
    return NULL;
}
