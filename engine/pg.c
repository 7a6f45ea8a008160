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
 * Push delivery is pg_push.c's. Not yet in this back end: queue counts without COUNT(*),
 * pipelining several calls per round trip. The connection pool's sockets sit in one epoll
 * fd that the loop watches (eng_poll_fd). */
#include "pg_internal.h"
#include "push.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
    /* 2: push queues. A queue's settings are packed (push.c's push_pack) with its ironmq:///
     * targets beside them for the loop check; a push message has visible_at = infinity (no
     * reserve or peek sees it) and a row in anvil_pushes: when it is next due, the claim of
     * the node delivering it (owner, until due_at), its packed delivery state, the
     * subscribers' acknowledged 202s (bits), the reservations they may acknowledge and the
 * subscribers still pending (so that the last acknowledgement deletes the message at once). */
    "ALTER TABLE anvil_queues ADD COLUMN push bytea, ADD COLUMN push_targets text[],"
    "  ADD COLUMN push_n smallint;"
    "CREATE TABLE anvil_pushes ("
    "  message bigint PRIMARY KEY REFERENCES anvil_messages ON DELETE CASCADE,"
    "  due_at timestamptz NOT NULL,"
    "  owner text,"
    "  subs smallint NOT NULL,"       /* the queue's subscriber count at the post */
    "  pending bigint NOT NULL,"      /* bits: subscribers that have not got it (yet) */
    "  state text,"
    "  headers bytea,"
    "  acked bigint NOT NULL DEFAULT 0,"
    "  rids text[],"
    "  rnames text[]);"
    "CREATE INDEX anvil_pushes_due ON anvil_pushes (due_at);",
    /* 3: queue sizes without COUNT(*): every statement that adds or removes messages adds
     * its count to one of the queue's rows of anvil_queue_totals, the one of its connection
     * (backend pid mod 64: concurrent statements seldom wait for one row); expired messages
     * are swept by an index on expires_at. */
    /* no foreign keys on the hot tables: their checks ran once per row (a FOR KEY SHARE of
     * the queue's row per message posted — MultiXacts on one row under concurrency — and a
     * cascade probe per message deleted); the statements that delete remove what belongs
     * to the rows they delete (PG_COUNT_GONE, PG_UNPUSH) */
    "ALTER TABLE anvil_messages DROP CONSTRAINT anvil_messages_queue_fkey;"
    "ALTER TABLE anvil_queue_totals DROP CONSTRAINT anvil_queue_totals_queue_fkey;"
    "ALTER TABLE anvil_pushes DROP CONSTRAINT anvil_pushes_message_fkey;"
    "ALTER TABLE anvil_queue_totals ADD COLUMN size bigint NOT NULL DEFAULT 0;"
    "INSERT INTO anvil_queue_totals AS t (queue, shard, n, size)"
    "  SELECT queue, 0, 0, count(*) FROM anvil_messages GROUP BY queue"
    "  ON CONFLICT (queue, shard) DO UPDATE SET size = t.size + EXCLUDED.size;"
    /* only the sweep and the count of expired messages use it: the statements that walk a
     * queue write their expiry test as (expires_at > now()) IS TRUE, which it cannot serve,
     * so they keep to anvil_messages_ready even when the statistics are stale */
    "CREATE INDEX anvil_messages_expiry ON anvil_messages (expires_at);"
    /* a queue's table is all updates and deletes: vacuum it by a fixed number of dead rows,
     * not a share of the table, and without pauses (dead index entries at the front of a
     * queue slow every reserve until they are gone) */
    "ALTER TABLE anvil_messages SET (autovacuum_vacuum_scale_factor = 0,"
    "  autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);"
    "ALTER TABLE anvil_queue_totals SET (autovacuum_vacuum_scale_factor = 0,"
    "  autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);"
    "ALTER TABLE anvil_pushes SET (autovacuum_vacuum_scale_factor = 0,"
    "  autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);",
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

void pg_job_free(struct pg_job *j)
{
    pg_change_free(j->change);
    free(j->parts);
    for (int i = 0; i < j->n; i++)
        free(j->values[i]);
    if (j->sql_owned)
        free(j->sql);
    free(j);
}

struct pg_job *pg_job_new(const char *sql, job_fn fn, struct eng_op *op)
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
void pg_param(struct pg_job *j, const char *v, size_t len, bool binary)
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

void pg_param_text(struct pg_job *j, const char *v)
{
    pg_param(j, v, v ? strlen(v) : 0, false);
}

void pg_param_u64(struct pg_job *j, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    pg_param_text(j, t);
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

/* No connection can take a statement (all reconnecting): the calls waiting fail now (503)
 * rather than hang while the server is away. */
static void fail_pending(struct pgb *b)
{
    struct list_node failed;
    list_init(&failed);
    while (!list_empty(&b->pending)) {
        struct list_node *n = b->pending.next;
        list_remove(n);
        list_push_back(&failed, n);
    }
    while (!list_empty(&failed)) {
        struct pg_job *j = list_entry(failed.next, struct pg_job, link);
        list_remove(&j->link);
        j->on_result(b, j, NULL);
        pg_job_free(j); /* a retry the callback wants comes as a new job, or by a timer */
    }
}

static void on_posted(struct pgb *b, struct pg_job *j, PGresult *res);
static char *post_sql(size_t n, bool create);

static size_t post_count(const struct pg_job *j)
{
    return j->n > 3 ? (size_t)(j->n - 3) / 4 : 0;
}

/* Group commit: posts to the same queue that wait for a connection go as one statement
 * (their messages in the order the calls came, up to 100), so they share a round trip
 * and a commit; each call is answered with its own ids. */
static struct pg_job *group_posts(struct pgb *b, struct pg_job *first)
{
    struct pg_job *all[101]; /* the first, then those that join it */
    size_t k = 1, total = post_count(first);
    all[0] = first;
    struct list_node *pos;
    for (pos = b->pending.next; pos != &b->pending && k < 101; pos = pos->next) {
        struct pg_job *j = list_entry(pos, struct pg_job, link);
        if (j != first && j->on_result == on_posted && j->op && !j->parts &&
            j->step == first->step && total + post_count(j) <= 100 &&
            strcmp(j->project, first->project) == 0 && strcmp(j->queue, first->queue) == 0) {
            all[k++] = j;
            total += post_count(j);
        }
    }
    if (k == 1)
        return first;
    struct pg_job *g = pg_job_new(NULL, on_posted, NULL);
    struct pg_part *parts = calloc(k, sizeof(*parts));
    if (g)
        g->sql = post_sql(total, first->step == 1);
    if (!g || !parts || !g->sql) {
        free(parts);
        if (g)
            pg_job_free(g);
        return first;
    }
    g->sql_owned = true;
    g->step = first->step;
    g->key = (first->step == 1 ? KEY_POST : KEY_POST_EXISTING) + (int)total;
    memcpy(g->project, first->project, sizeof(g->project));
    memcpy(g->queue, first->queue, sizeof(g->queue));
    pg_param_text(g, first->values[0]);
    pg_param_text(g, first->values[1]);
    pg_param_u64(g, total);
    for (size_t i = 0; i < k; i++) {
        for (int p = 3; p < all[i]->n; p++)
            pg_param(g, all[i]->values[p], (size_t)all[i]->lengths[p], all[i]->formats[p] == 1);
        parts[i] = (struct pg_part){.op = all[i]->op, .n = (uint32_t)post_count(all[i])};
    }
    for (size_t i = 0; i < k; i++) { /* their calls are the group's parts now */
        if (i > 0)
            list_remove(&all[i]->link);
        pg_job_free(all[i]);
    }
    g->parts = parts;
    g->n_parts = k;
    b->posts_grouped += k - 1;
    return g;
}

static void pump(struct pgb *b)
{
    bool usable = false;
    for (int i = 0; i < PG_CONNS && !list_empty(&b->pending); i++) {
        struct pg_conn *pc = &b->conns[i];
        if (pc->resetting || pc->down)
            continue;
        if (PQstatus(pc->c) != CONNECTION_OK) { /* the server went away: connect again */
            conn_lost(b, pc);
            continue;
        }
        usable = true;
        if (pc->job)
            continue;
        struct pg_job *j = list_entry(b->pending.next, struct pg_job, link);
        list_remove(&j->link);
        if (j->on_result == on_posted && j->op && !j->parts)
            j = group_posts(b, j);
        pc->job = j;
        if (!send_job(pc, j)) {
            pc->job = NULL;
            j->on_result(b, j, NULL); /* connection trouble: the call fails with 503 */
            pg_job_free(j);
            continue;
        }
        pc->want_write = PQflush(pc->c) == 1;
        watch(b, pc);
    }
    /* calls still waiting after every connection was looked at, none of them up: fail them */
    if (!usable && !list_empty(&b->pending) && !b->push.closing)
        fail_pending(b);
}

void pg_submit(struct pgb *b, struct pg_job *j)
{
    list_push_back(&b->pending, &j->link);
    pump(b);
}

/* Answers op with res (moved out first: done() may free or restart op). */
void pg_answer(struct eng_op *op, struct eng_result *res)
{
    struct eng_result r = *res;
    eng_result_reset(res);
    op->in_flight = false;
    op->done(op, &r);
    eng_result_free(&r);
}

void pg_answer_status(struct eng_op *op, enum eng_status st)
{
    struct eng_result r = {.status = st};
    pg_answer(op, &r);
}

/* A call's job with the queue as its first two parameters; NULL (op answered) when memory
 * ran out. */
struct pg_job *pg_call_job(struct eng_op *op, const char *sql, job_fn fn, int step,
                               const char *project, const char *name)
{
    struct pg_job *j = pg_job_new(sql, fn, op);
    if (!j) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return NULL;
    }
    j->step = step;
    pg_param_text(j, project);
    pg_param_text(j, name);
    return j;
}

void pg_start(struct pgb *b, struct pg_job *j)
{
    j->op->in_flight = true;
    pg_submit(b, j);
}

/* ENG_OK when res is a successful result; else the status the call fails with. */
enum eng_status pg_result_status(PGresult *res)
{
    if (!res)
        return ENG_STORAGE_UNAVAILABLE;
    ExecStatusType s = PQresultStatus(res);
    return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK ? ENG_OK : ENG_STORAGE_UNAVAILABLE;
}

int64_t pg_col_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A bytea column (text format) as a blob; NULL when the column is NULL or memory ran out. */
struct blob *pg_col_blob(PGresult *r, int row, int col)
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
    " (SELECT coalesce(sum(size), 0) FROM anvil_queue_totals t WHERE t.queue = q.id)"        \
    "  - (SELECT count(*) FROM anvil_messages m WHERE m.expires_at <= now() AND m.queue = q.id),"\
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND (m.expires_at > now()) IS TRUE"   \
    "   AND m.visible_at > now() AND m.visible_at < 'infinity' AND m.reservation IS NULL),"   \
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND (m.expires_at > now()) IS TRUE"   \
    "   AND m.visible_at > now() AND m.reservation IS NOT NULL),"                             \
    " (SELECT count(*) FROM anvil_messages m WHERE m.queue = q.id AND (m.expires_at > now()) IS TRUE"   \
    "   AND m.visible_at = 'infinity'), q.push"

static const char sql_queue_get[] =
    "SELECT " QUEUE_COLUMNS " FROM anvil_queues q WHERE q.project = $1 AND q.name = $2";

static void fill_queue(struct eng_queue_info *info, PGresult *r)
{
    snprintf(info->id, sizeof(info->id), "%s", PQgetvalue(r, 0, 0));
    info->created_at_ms = pg_col_i64(r, 0, 1);
    info->type = (enum queue_type)pg_col_i64(r, 0, 2);
    info->message_timeout_s = (uint32_t)pg_col_i64(r, 0, 3);
    info->message_expiration_s = (uint32_t)pg_col_i64(r, 0, 4);
    info->dead_letter_queue = PQgetisnull(r, 0, 5) ? NULL : strdup(PQgetvalue(r, 0, 5));
    info->dead_letter_max = (uint32_t)pg_col_i64(r, 0, 6);
    info->total_messages = (uint64_t)pg_col_i64(r, 0, 7);
    info->attributes = pg_col_blob(r, 0, 8);
    info->project = strdup(PQgetvalue(r, 0, 9));
    info->name = strdup(PQgetvalue(r, 0, 10));
    /* the size is counted as messages come and go (less those expired but not swept yet,
     * by the expiry index); what is not ready is counted by the index (visible_at > now()):
     * work that grows with what is in flight, not with the depth of the queue */
    int64_t size = pg_col_i64(r, 0, 11);
    info->delayed = (uint64_t)pg_col_i64(r, 0, 12);
    info->reserved = (uint64_t)pg_col_i64(r, 0, 13);
    info->pushing = (uint64_t)pg_col_i64(r, 0, 14);
    int64_t ready = size - (int64_t)(info->delayed + info->reserved + info->pushing);
    info->ready = ready > 0 ? (uint64_t)ready : 0;
    struct blob *packed = info->type != QUEUE_PULL ? pg_col_blob(r, 0, 15) : NULL;
    struct push_settings *ps = NULL;
    if (packed && push_unpack((const char *)packed->data, packed->len, &ps) == 0) {
        if (push_fill_info(ps, &info->push) != 0)
            push_info_free(&info->push);
        push_settings_free(ps);
    }
    blob_unref(packed);
}

static void on_queue(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = pg_result_status(res)};
    if (r.status == ENG_OK && PQntuples(res) == 0)
        r.status = ENG_QUEUE_NOT_FOUND;
    if (r.status == ENG_OK) {
        r.has_queue = true;
        fill_queue(&r.queue, res);
        if (!r.queue.project || !r.queue.name)
            r.status = ENG_NO_MEMORY;
    }
    pg_answer(j->op, &r);
}

static void queue_get(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    struct pg_job *j = pg_call_job(op, sql_queue_get, on_queue, 0, project, name);
    if (!j)
        return;
    pg_start(b, j);
}

void pg_queue_get(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    queue_get(b, op, project, name);
}

/* ---- queue settings: read, decide, compare-and-set ----
 * A create or update (and a subscribers call) reads the queue's type, push settings and
 * dead-letter queue together with the loop checks, decides in C with the embedded back
 * end's rules (push.c), then writes only if the push settings are still those it read; if
 * another node changed them meanwhile, it reads again. */

/* What a change needs across its statements: the caller's config is copied at the call. */
struct pg_change {
    struct eng_queue_config cfg;  /* its pointers point at the copies below */
    char *dead_letter_queue, *error_queue;
    struct push_settings *given;  /* the subscribers given (a push section, or the call's) */
    void *attributes;
    bool patch, subscribers_call;
    enum eng_subscriber_edit edit;
    struct blob *read_push;       /* the push column as read: the write's condition */
    int tries;
};

void pg_change_free(struct pg_change *c)
{
    if (!c)
        return;
    free(c->dead_letter_queue);
    free(c->error_queue);
    push_settings_free(c->given);
    free(c->attributes);
    blob_unref(c->read_push);
    free(c);
}

/* The subscribers given to a call (a removal gives names only: no URL is kept then). */
static struct push_settings *subscribers_copy(const struct eng_subscriber *subs, size_t n)
{
    struct eng_subscriber *named = calloc(n ? n : 1, sizeof(*named));
    if (!named)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        named[i] = subs[i];
        named[i].name = subs[i].name ? subs[i].name : "";
        named[i].url = subs[i].url ? subs[i].url : "";
        if (!subs[i].headers)
            named[i].n_headers = 0;
    }
    struct eng_push_config pc = {.has_subscribers = true, .subscribers = named,
                                 .n_subscribers = (uint32_t)n};
    struct push_settings *ps = NULL;
    if (push_apply(&ps, &pc) != 0)
        ps = NULL;
    free(named);
    return ps;
}

static struct pg_change *change_new(const struct eng_queue_config *cfg)
{
    struct pg_change *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = *cfg;
    bool ok = true;
    if (cfg->has_dead_letter_queue)
        ok &= (c->cfg.dead_letter_queue = c->dead_letter_queue = strdup(cfg->dead_letter_queue)) != NULL;
    if (cfg->push.has_error_queue)
        ok &= (c->cfg.push.error_queue = c->error_queue = strdup(cfg->push.error_queue)) != NULL;
    if (cfg->push.has_subscribers) {
        ok &= (c->given = subscribers_copy(cfg->push.subscribers, cfg->push.n_subscribers)) != NULL;
        c->cfg.push.subscribers = c->given ? c->given->subscribers : NULL;
    }
    c->cfg.attributes = NULL;
    if (cfg->has_attributes && cfg->attributes_len) {
        ok &= (c->attributes = malloc(cfg->attributes_len)) != NULL;
        if (c->attributes)
            memcpy(c->attributes, cfg->attributes, cfg->attributes_len);
        c->cfg.attributes = c->attributes;
    }
    if (!ok) {
        pg_change_free(c);
        return NULL;
    }
    return c;
}

/* A text[] literal of n strings (NULL entries: NULL); NULL when out of memory. */
char *pg_text_array(const char *const *items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += (items[i] ? strlen(items[i]) * 2 + 3 : 4) + 1;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        if (!items[i]) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        *o++ = '"';
        for (const char *ch = items[i]; *ch; ch++) {
            if (*ch == '"' || *ch == '\\')
                *o++ = '\\';
            *o++ = *ch;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

/* The ironmq:///name subscribers' queue names, as a text[] literal. */
static char *targets_of(const struct eng_subscriber *subs, size_t n)
{
    const char **names = calloc(n ? n : 1, sizeof(*names));
    size_t k = 0;
    for (size_t i = 0; names && i < n; i++)
        if (strncmp(subs[i].url, "ironmq:///", 10) == 0)
            names[k++] = subs[i].url + 10;
    char *out = names ? pg_text_array(names, k) : NULL;
    free(names);
    return out;
}

/* $1 project, $2 name, $3 a new dead-letter queue ('' none), $4 new ironmq:/// targets.
 * One row: type, push, dead-letter queue (NULLs when the queue is not there), whether the
 * dead-letter chain from $3 reaches $2, whether the push targets from $4 lead back to $2. */
static const char sql_change_read[] =
    "WITH RECURSIVE chain(name) AS (SELECT $3::text WHERE $3::text <> ''"
    "  UNION SELECT q.dead_letter_queue FROM chain c JOIN anvil_queues q"
    "  ON q.project = $1 AND q.name = c.name WHERE q.dead_letter_queue IS NOT NULL),"
    " walk(name) AS (SELECT unnest($4::text[])"
    "  UNION SELECT unnest(q.push_targets) FROM walk w JOIN anvil_queues q"
    "  ON q.project = $1 AND q.name = w.name),"
    " cur AS (SELECT type, push, dead_letter_queue FROM anvil_queues WHERE project = $1 AND name = $2)"
    " SELECT (SELECT type FROM cur), (SELECT push FROM cur), (SELECT dead_letter_queue FROM cur),"
    "  coalesce((SELECT bool_or(name = $2) FROM chain), false),"
    "  coalesce((SELECT bool_or(name = $2) FROM walk), false)";

/* What an update of an existing queue q sets: $4 timeout, $5 expiration, $6 dead-letter
 * queue ('' removes), $7 its max, $8 attributes (a given NULL keeps them), $9 "attributes
 * given", $10 push settings, $11 push targets. */
#define QUEUE_SET                                                                              \
    "  message_timeout = coalesce($4::int, q.message_timeout),"                                \
    "  message_expiration = coalesce($5::int, q.message_expiration),"                          \
    "  dead_letter_queue = CASE WHEN $6::text IS NULL THEN q.dead_letter_queue"                \
    "   ELSE nullif($6::text, '') END,"                                                        \
    "  dead_letter_max = CASE WHEN (CASE WHEN $6::text IS NULL THEN q.dead_letter_queue"       \
    "   ELSE nullif($6::text, '') END) IS NULL THEN 0"                                         \
    "   WHEN $7::int IS NOT NULL THEN $7::int WHEN q.dead_letter_queue IS NULL THEN 10"       \
    "   ELSE q.dead_letter_max END,"                                                           \
    "  attributes = CASE WHEN $9::text = 't' THEN $8::bytea ELSE q.attributes END,"           \
    "  push = $10::bytea, push_targets = $11::text[], push_n = $13::smallint"

/* ... and $3 its type, $12 the push settings read (the write's condition). */
static const char sql_queue_update[] =
    "UPDATE anvil_queues q SET" QUEUE_SET
    " WHERE q.project = $1 AND q.name = $2 AND q.type = $3::smallint"
    " AND q.push IS NOT DISTINCT FROM $12::bytea RETURNING q.id";
/* (without $12, and $13 as $12) */
static const char sql_queue_insert[] =
    "INSERT INTO anvil_queues AS q (project, name, qid, type, message_timeout, message_expiration,"
    "  dead_letter_queue, dead_letter_max, attributes, push, push_targets, push_n)"
    " VALUES ($1, $2, substr(md5(random()::text || clock_timestamp()::text), 1, 24),"
    "  $3::smallint, coalesce($4::int, 60), coalesce($5::int, 604800), nullif($6::text, ''),"
    "  CASE WHEN nullif($6::text, '') IS NULL THEN 0 ELSE coalesce($7::int, 10) END,"
    "  CASE WHEN $9::text = 't' THEN $8::bytea END, $10::bytea, $11::text[], $12::smallint)"
    " ON CONFLICT (project, name) DO NOTHING RETURNING q.id";
/* A subscribers call: $3 push settings, $4 targets, $5 the settings read, $6 their count. */
static const char sql_subscribers_update[] =
    "UPDATE anvil_queues SET push = $3::bytea, push_targets = $4::text[], push_n = $6::smallint"
    " WHERE project = $1 AND name = $2 AND push IS NOT DISTINCT FROM $5::bytea RETURNING id";

static void change_read(struct pgb *b, struct pg_job *from, struct eng_op *op,
                        const char *project, const char *name, struct pg_change *c);

static void on_change_written(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    enum eng_status st = pg_result_status(res);
    if (st == ENG_OK && PQntuples(res) == 0) { /* changed meanwhile by another call: again */
        struct pg_change *c = j->change;
        j->change = NULL;
        if (++c->tries < 8) {
            change_read(b, j, j->op, j->project, j->queue, c);
            return;
        }
        pg_change_free(c);
        st = ENG_STORAGE_UNAVAILABLE;
    }
    if (st != ENG_OK || j->change->subscribers_call)
        pg_answer_status(j->op, st);
    else
        queue_get(b, j->op, j->project, j->queue);
}

static void param_num(struct pg_job *j, bool given, uint32_t v)
{
    char t[16];
    snprintf(t, sizeof(t), "%u", v);
    pg_param_text(j, given ? t : NULL);
}

/* Decides a create or update from what was read; answers op or starts the write. */
static enum eng_status change_decide(struct pg_change *c, PGresult *res, const char *name,
                                     struct push_settings **after, enum queue_type *type)
{
    const struct eng_queue_config *cfg = &c->cfg;
    bool exists = !PQgetisnull(res, 0, 0);
    bool dl_cycle = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    bool push_loop = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    struct push_settings *cur = NULL;
    struct blob *packed = exists ? pg_col_blob(res, 0, 1) : NULL;
    if (packed && push_unpack((const char *)packed->data, packed->len, &cur) != 0)
        cur = NULL;
    blob_unref(packed);
    *after = NULL;
    enum eng_status st = ENG_OK;
    if (!exists && c->subscribers_call)
        st = ENG_QUEUE_NOT_FOUND;
    else if (c->subscribers_call && (pg_col_i64(res, 0, 0) == QUEUE_PULL || !cur))
        st = ENG_NOT_PUSH_QUEUE;
    else if (c->subscribers_call && c->edit != SUBSCRIBERS_REMOVE && push_loop)
        st = ENG_PUSH_LOOP;
    else if (c->subscribers_call)
        st = push_edit(cur, c->edit, c->given->subscribers, c->given->n_subscribers);
    if (c->subscribers_call) {
        *type = QUEUE_MULTICAST;
        if (st == ENG_OK)
            *after = cur;
        else
            push_settings_free(cur);
        return st;
    }
    *type = exists ? (enum queue_type)pg_col_i64(res, 0, 0)
            : cfg->has_type ? cfg->type : cfg->has_push ? QUEUE_MULTICAST : QUEUE_PULL;
    bool removing = cfg->has_dead_letter_queue && cfg->dead_letter_queue[0] == '\0';
    if (!exists && c->patch)
        st = ENG_QUEUE_NOT_FOUND;
    else if (exists && cfg->has_type && cfg->type != *type)
        st = ENG_TYPE_IMMUTABLE;
    else if ((st = push_check(cur, name, *type, cfg)) != ENG_OK)
        ;
    else if (cfg->push.has_subscribers && push_loop)
        st = ENG_PUSH_LOOP;
    else if (cfg->has_dead_letter_max && !cfg->has_dead_letter_queue && PQgetisnull(res, 0, 2))
        st = ENG_DEAD_LETTER_NAME;
    else if (cfg->has_dead_letter_queue && !removing && strcmp(cfg->dead_letter_queue, name) == 0)
        st = ENG_DEAD_LETTER_SELF;
    else if (cfg->has_dead_letter_queue && !removing && dl_cycle)
        st = ENG_DEAD_LETTER_CYCLE;
    else if (*type != QUEUE_PULL && (cfg->has_push || !cur) && push_apply(&cur, &cfg->push) != 0)
        st = ENG_NO_MEMORY;
    if (st == ENG_OK && *type != QUEUE_PULL)
        *after = cur;
    else
        push_settings_free(cur);
    return st;
}

static void on_change_read(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    struct pg_change *c = j->change;
    struct push_settings *after = NULL;
    enum queue_type type = QUEUE_PULL;
    enum eng_status st = pg_result_status(res);
    if (st == ENG_OK)
        st = change_decide(c, res, j->queue, &after, &type);
    char *packed = NULL, *targets = NULL;
    size_t packed_len = 0;
    if (st == ENG_OK && after &&
        (push_pack(after, &packed, &packed_len) != 0 ||
         !(targets = targets_of(after->subscribers, after->n_subscribers))))
        st = ENG_NO_MEMORY;
    bool exists = st == ENG_OK && !PQgetisnull(res, 0, 0);
    uint32_t n_after = after ? after->n_subscribers : 0;
    push_settings_free(after);
    if (st != ENG_OK) {
        free(packed);
        free(targets);
        pg_answer_status(j->op, st);
        return;
    }
    const char *sql = c->subscribers_call ? sql_subscribers_update
                      : exists            ? sql_queue_update
                                          : sql_queue_insert;
    struct pg_job *w = pg_call_job(j->op, sql, on_change_written, 0, j->project, j->queue);
    if (!w) { /* answered */
        free(packed);
        free(targets);
        return;
    }
    snprintf(w->project, sizeof(w->project), "%s", j->project);
    snprintf(w->queue, sizeof(w->queue), "%s", j->queue);
    c->read_push = exists ? pg_col_blob(res, 0, 1) : NULL;
    if (!c->subscribers_call) {
        const struct eng_queue_config *cfg = &c->cfg;
        param_num(w, true, (uint32_t)type);
        param_num(w, cfg->has_message_timeout, cfg->message_timeout_s);
        param_num(w, cfg->has_message_expiration, cfg->message_expiration_s);
        pg_param_text(w, cfg->has_dead_letter_queue ? cfg->dead_letter_queue : NULL);
        param_num(w, cfg->has_dead_letter_max, cfg->dead_letter_max);
        pg_param(w, cfg->has_attributes && cfg->attributes_len ? cfg->attributes : NULL,
                 cfg->attributes_len, true);
        pg_param_text(w, cfg->has_attributes ? "t" : "f");
    }
    pg_param(w, packed, packed_len, true);
    pg_param_text(w, targets);
    if (exists)
        pg_param(w, c->read_push ? (const char *)c->read_push->data : NULL,
                 c->read_push ? c->read_push->len : 0, true);
    param_num(w, n_after > 0, n_after);
    free(packed);
    free(targets);
    w->change = c;
    j->change = NULL;
    pg_submit(b, w);
}

/* Reads the queue for change c (owned from here on); `from` is the job it came from, or NULL. */
static void change_read(struct pgb *b, struct pg_job *from, struct eng_op *op,
                        const char *project, const char *name, struct pg_change *c)
{
    (void)from;
    const struct eng_subscriber *subs = c->given ? c->given->subscribers : NULL;
    size_t n = c->given ? c->given->n_subscribers : 0;
    char *targets = targets_of(subs, n);
    struct pg_job *j = targets ? pg_call_job(op, sql_change_read, on_change_read, 0, project, name)
                               : NULL;
    if (!j) {
        if (!targets)
            pg_answer_status(op, ENG_NO_MEMORY);
        free(targets);
        pg_change_free(c);
        return;
    }
    snprintf(j->project, sizeof(j->project), "%s", project);
    snprintf(j->queue, sizeof(j->queue), "%s", name);
    const struct eng_queue_config *cfg = &c->cfg;
    pg_param_text(j, cfg->has_dead_letter_queue ? cfg->dead_letter_queue : "");
    pg_param_text(j, targets);
    free(targets);
    j->change = c;
    op->in_flight = true;
    pg_submit(b, j);
}

static void queue_change(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                         const struct eng_queue_config *cfg, bool patch)
{
    struct pg_change *c = change_new(cfg);
    if (!c) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    c->patch = patch;
    change_read(b, NULL, op, project, name, c);
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

void pg_subscribers(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                    enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n)
{
    struct pg_change *c = calloc(1, sizeof(*c));
    if (!c || !(c->given = subscribers_copy(subs, n))) {
        pg_change_free(c);
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    c->subscribers_call = true;
    c->edit = edit;
    change_read(b, NULL, op, project, name, c);
}

static void on_count(struct pgb *b, struct pg_job *j, PGresult *res);

static const char sql_queue_delete[] =
    "WITH q AS (DELETE FROM anvil_queues WHERE project = $1 AND name = $2 RETURNING id),"
    " gone AS (DELETE FROM anvil_messages WHERE queue IN (SELECT id FROM q) RETURNING id),"
    PG_UNPUSH ","
    " t AS (DELETE FROM anvil_queue_totals WHERE queue IN (SELECT id FROM q))"
    " SELECT id, pg_notify('anvil', $1 || '/' || $2) FROM q";

void pg_queue_delete(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    /* step 1: no row means the queue was not there */
    struct pg_job *j = pg_call_job(op, sql_queue_delete, on_count, 1, project, name);
    if (j)
        pg_start(b, j);
}

/* The test kit's reset: every queue of a project ('' for all projects) with its messages;
 * waiters on every node hear of each queue as of a queue delete. */
static const char sql_wipe[] =
    "WITH q AS (DELETE FROM anvil_queues WHERE $1 = '' OR project = $1"
    " RETURNING id, project, name),"
    " gone AS (DELETE FROM anvil_messages WHERE queue IN (SELECT id FROM q) RETURNING id),"
    PG_UNPUSH ","
    " t AS (DELETE FROM anvil_queue_totals WHERE queue IN (SELECT id FROM q))"
    " SELECT pg_notify('anvil', project || '/' || name) FROM q";

static void on_wiped(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (j->op)
        pg_answer_status(j->op, pg_result_status(res));
}

void pg_wipe(struct pgb *b, struct eng_op *op, const char *project)
{
    struct pg_job *j = pg_job_new(sql_wipe, on_wiped, op);
    if (!j) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    pg_param_text(j, project ? project : "");
    pg_start(b, j);
}

static const char sql_queue_list[] =
    "SELECT name FROM anvil_queues WHERE project = $1 AND starts_with(name, $2) AND name > $3"
    " ORDER BY name COLLATE \"C\" LIMIT $4";

static void on_list(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = pg_result_status(res)};
    int n = r.status == ENG_OK ? PQntuples(res) : 0;
    if (n && !(r.names = calloc((size_t)n, sizeof(char *))))
        r.status = ENG_NO_MEMORY;
    for (int i = 0; r.names && i < n; i++)
        if ((r.names[r.n_names] = strdup(PQgetvalue(res, i, 0))))
            r.n_names++;
    pg_answer(j->op, &r);
}

void pg_queue_list(struct pgb *b, struct eng_op *op, const char *project, const char *prefix,
                   const char *previous, uint32_t per_page)
{
    struct pg_job *j = pg_job_new(sql_queue_list, on_list, op);
    if (!j) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    pg_param_text(j, project);
    pg_param_text(j, prefix ? prefix : "");
    pg_param_text(j, previous ? previous : "");
    pg_param_u64(j, per_page);
    pg_start(b, j);
}

/* ---- messages ---- */

/* Calls answered by counts. step 1: a row per thing done, none = the queue is not there;
 * 3: (changed, queue exists);
 * 2 and 4: (changed, queue exists, message exists), nothing
 * changed = the reservation did not match; 2 hands back the new reservation id (4th). */
static void on_count(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    enum eng_status st = pg_result_status(res);
    if (st == ENG_OK && j->step == 1 && PQntuples(res) == 0)
        st = ENG_QUEUE_NOT_FOUND;
    if (st == ENG_OK && j->step == 3 && pg_col_i64(res, 0, 1) == 0)
        st = ENG_QUEUE_NOT_FOUND; /* (changed, queue exists) */
    if (st == ENG_OK && (j->step == 2 || j->step == 4)) { /* (changed, queue, message) */
        if (pg_col_i64(res, 0, 1) == 0)
            st = ENG_QUEUE_NOT_FOUND;
        else if (pg_col_i64(res, 0, 2) == 0)
            st = ENG_MESSAGE_NOT_FOUND;
        else if (pg_col_i64(res, 0, 0) == 0)
            st = ENG_RESERVATION_MISMATCH;
    }
    struct eng_result r = {.status = st};
    if (st == ENG_OK && j->step == 2 && PQnfields(res) > 3 && !PQgetisnull(res, 0, 3))
        snprintf(r.reservation_id, sizeof(r.reservation_id), "%s", PQgetvalue(res, 0, 3));
    pg_answer(j->op, &r);
}

/* ---- waking waiters after a post ----
 * A post to a pull queue NOTIFYs "project/queue" after its commit, from a statement of its
 * own: NOTIFY takes one lock per database from a transaction's pre-commit to its end, WAL
 * flush included, so NOTIFY inside every post made posts commit one at a time. A separate
 * statement without writes holds it only briefly, and the posts of a loop turn share one
 * (each queue named once). If a node dies between a post's commit and its NOTIFY, waiters
 * on other nodes sleep until their wait ends. Push queues keep NOTIFY in the transaction:
 * a lost due time there would leave a delivery waiting. */
static const char sql_notify[] = "SELECT pg_notify('anvil', x) FROM unnest($1::text[]) AS x";

static void notes_send(struct pgb *b);

static void on_notes_sent(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)j, (void)res;
    b->notifying = false;
    notes_send(b);
}

static void notes_send(struct pgb *b)
{
    if (b->notifying || b->n_notes == 0 || b->push.closing) /* closing: no new statements */
        return;
    char *array = pg_text_array((const char *const *)b->notes, b->n_notes);
    struct pg_job *j = array ? pg_job_new(sql_notify, on_notes_sent, NULL) : NULL;
    for (size_t i = 0; i < b->n_notes; i++)
        free(b->notes[i]);
    b->n_notes = 0;
    if (j) {
        pg_param_text(j, array);
        b->notifying = true;
        pg_submit(b, j);
    } /* else out of memory: waiters find the messages when their wait ends */
    free(array);
}

static void note_post(struct pgb *b, const char *project, const char *queue)
{
    char payload[520];
    snprintf(payload, sizeof(payload), "%s/%s", project, queue);
    for (size_t i = 0; i < b->n_notes; i++)
        if (strcmp(b->notes[i], payload) == 0)
            return;
    if (b->n_notes == b->cap_notes) {
        size_t cap = b->cap_notes ? b->cap_notes * 2 : 16;
        char **grown = realloc(b->notes, cap * sizeof(*grown));
        if (!grown)
            return;
        b->notes = grown;
        b->cap_notes = cap;
    }
    if ((b->notes[b->n_notes] = strdup(payload)))
        b->n_notes++;
    notes_send(b);
}

static void on_posted(struct pgb *b, struct pg_job *j, PGresult *res)
{
    struct eng_result r = {.status = pg_result_status(res)};
    int n = r.status == ENG_OK ? PQntuples(res) : 0;
    if (n && strcmp(PQgetvalue(res, 0, 2), "0") == 0)
        note_post(b, j->project, j->queue); /* committed, even if the caller went away */
    if (!j->op && !j->parts)
        return;
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
        r.ids[r.n_ids++] = (uint64_t)pg_col_i64(res, i, 0);
    /* nextval() ran in the order of the request's messages */
    for (size_t i = 1; i < r.n_ids; i++)
        for (size_t k = i; k > 0 && r.ids[k - 1] > r.ids[k]; k--) {
            uint64_t t = r.ids[k];
            r.ids[k] = r.ids[k - 1];
            r.ids[k - 1] = t;
        }
    if (j->parts) { /* a group: each call its own ids, in the order of the calls */
        size_t at = 0;
        for (size_t p = 0; p < j->n_parts; p++) {
            struct eng_result pr = {.status = r.status};
            uint32_t want = j->parts[p].n;
            if (pr.status == ENG_OK && at + want > r.n_ids)
                pr.status = ENG_STORAGE_UNAVAILABLE;
            if (pr.status == ENG_OK && !(pr.ids = calloc(want ? want : 1, sizeof(uint64_t))))
                pr.status = ENG_NO_MEMORY;
            for (uint32_t i = 0; pr.ids && i < want; i++)
                pr.ids[pr.n_ids++] = r.ids[at + i];
            at += want;
            if (j->parts[p].op)
                pg_answer(j->parts[p].op, &pr);
            else
                eng_result_free(&pr);
        }
        eng_result_free(&r);
        return;
    }
    pg_answer(j->op, &r);
}

/* The statement for n messages: $1 project, $2 name, $3 n, then (body, delay, attributes,
 * push headers) per message. The queue is created (create) or must exist; the post
 * NOTIFYs its queue's waiters, or on a push queue the nodes that deliver (with the time
 * the messages are due). A push queue's messages are never visible to reserves: each has
 * a row in anvil_pushes instead (pg_push.c). */
static char *post_sql(size_t n, bool create)
{
    size_t cap = 2000 + n * 96;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    /* the queue: made when missing (without locking an existing one's row) */
    int o = snprintf(s, cap, "%s",
                     create ? "WITH found AS (SELECT id, message_expiration, type, push_n FROM anvil_queues"
                              " WHERE project = $1 AND name = $2),"
                              " made AS (INSERT INTO anvil_queues (project, name, qid)"
                              " SELECT $1, $2, substr(md5(random()::text || clock_timestamp()::text), 1, 24)"
                              " WHERE NOT EXISTS (SELECT 1 FROM found)"
                              " ON CONFLICT (project, name) DO NOTHING RETURNING id, message_expiration, type, push_n),"
                              " q AS (SELECT * FROM found UNION ALL SELECT * FROM made),"
                            : "WITH q AS (SELECT id, message_expiration, type, push_n FROM anvil_queues"
                              " WHERE project = $1 AND name = $2),");
    o += snprintf(s + o, cap - (size_t)o, " v(body, delay, attributes, headers) AS (VALUES ");
    for (size_t i = 0; i < n; i++)
        o += snprintf(s + o, cap - (size_t)o, "%s($%zu::bytea, $%zu::int, $%zu::bytea, $%zu::bytea)",
                      i ? ", " : "", 4 + 4 * i, 5 + 4 * i, 6 + 4 * i, 7 + 4 * i);
    snprintf(s + o, cap - (size_t)o,
             "), m AS MATERIALIZED (SELECT nextval('anvil_message_ids') AS id, q.id AS queue, q.type, q.push_n,"
             "  v.body, v.attributes, v.headers, q.message_expiration,"
             "  CASE WHEN v.delay > 0 THEN now() + make_interval(secs => v.delay) ELSE now() END AS due"
             "  FROM q, v),"
             " ins AS (INSERT INTO anvil_messages (id, queue, body, visible_at, expires_at, attributes)"
             "  SELECT id, queue, body, CASE WHEN type = 0 THEN due ELSE 'infinity' END,"
             "  now() + make_interval(secs => message_expiration), attributes FROM m RETURNING id),"
             /* the queue's size and total (deletes are counted by the trigger) */
             " counted AS (INSERT INTO anvil_queue_totals AS t (queue, shard, n, size)"
             "  SELECT id, mod(pg_backend_pid(), 64)::smallint, $3::int, $3::int FROM q"
             "  ON CONFLICT (queue, shard) DO UPDATE SET n = t.n + EXCLUDED.n, size = t.size + EXCLUDED.size),"
             " pushes AS (INSERT INTO anvil_pushes (message, due_at, headers, subs, pending)"
             "  SELECT id, due, headers, coalesce(push_n, 0),"
             "  CASE WHEN push_n >= 64 THEN -1 ELSE (1::bigint << coalesce(push_n, 0)) - 1 END"
             "  FROM m WHERE type <> 0)"
             " SELECT m.id, CASE WHEN m.type <> 0"
             "  THEN pg_notify('anvil_push', (extract(epoch FROM m.due) * 1000)::bigint::text) END, m.type"
             " FROM m JOIN ins ON ins.id = m.id");
    return s;
}

static void post(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                 const struct eng_post_msg *msgs, size_t n, bool create)
{
    struct pg_job *j = n && n <= 100 ? pg_job_new(NULL, on_posted, op) : NULL;
    if (j && !(j->sql = post_sql(n, create))) {
        pg_job_free(j);
        j = NULL;
    }
    if (!j) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    j->sql_owned = true;
    j->step = create ? 1 : 0;
    j->key = (create ? KEY_POST : KEY_POST_EXISTING) + (int)n;
    b->posts++;
    snprintf(j->project, sizeof(j->project), "%s", project);
    snprintf(j->queue, sizeof(j->queue), "%s", name);
    pg_param_text(j, project);
    pg_param_text(j, name);
    pg_param_u64(j, n);
    for (size_t i = 0; i < n; i++) {
        char delay[16];
        snprintf(delay, sizeof(delay), "%u", msgs[i].delay_s);
        pg_param(j, msgs[i].body, msgs[i].body_len, true);
        pg_param_text(j, delay);
        pg_param(j, msgs[i].attributes, msgs[i].attributes_len, true);
        pg_param(j, msgs[i].push_headers, msgs[i].push_headers_len, true);
    }
    pg_start(b, j);
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

/* Reserve: $1 project, $2 name, $3 n, $4 timeout (-1: the queue's), $5 delete ('t'), $6 a
 * long poll ('t').
 * One row per message, or one row of NULLs; every row says whether the queue exists and
 * when its next message becomes visible (for a waiting long poll). */
static const char sql_reserve[] =
    "WITH q AS (SELECT id, message_timeout, dead_letter_queue, dead_letter_max,"
    "  CASE WHEN dead_letter_queue IS NULL THEN 2147483647 ELSE dead_letter_max END AS max_reserved"
    "  FROM anvil_queues WHERE project = $1 AND name = $2),"
    /* dead letters: ready messages at the front reserved max times move to the dead-letter
     * queue (created when missing) instead of being handed out */
    " front AS (SELECT m.id, m.reserved_count FROM anvil_messages m WHERE m.queue = (SELECT id FROM q)"
    "  AND (SELECT dead_letter_queue FROM q) IS NOT NULL AND m.visible_at <= now()"
    "  AND (m.expires_at > now()) IS TRUE"
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
    /* the moved ones leave this queue's size and join the dead-letter queue's (and its total) */
    " moved_n AS (SELECT count(*) AS k FROM moved),"
    " recount AS (INSERT INTO anvil_queue_totals AS t (queue, shard, n, size)"
    "  SELECT q.id, mod(pg_backend_pid(), 64)::smallint, 0, -moved_n.k FROM q, moved_n WHERE moved_n.k > 0"
    "  UNION ALL SELECT dlq.id, mod(pg_backend_pid(), 64)::smallint, moved_n.k, moved_n.k"
    "  FROM dlq, moved_n WHERE moved_n.k > 0"
    "  ON CONFLICT (queue, shard) DO UPDATE SET n = t.n + EXCLUDED.n, size = t.size + EXCLUDED.size),"
    " pick AS (SELECT m.id FROM anvil_messages m WHERE m.queue = (SELECT id FROM q)"
    "  AND m.visible_at <= now() AND (m.expires_at > now()) IS TRUE"
    "  AND m.reserved_count < (SELECT max_reserved FROM q)"
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
    " got AS (SELECT * FROM upd UNION ALL SELECT * FROM del),"
    " gone AS (SELECT del.id, q.id AS queue FROM del, q)," PG_COUNT_GONE
    /* for a long poll that found nothing: when the next message becomes visible (a walk of
     * the index from now on, over what is reserved: only when it is needed) */
    " SELECT got.*, (SELECT count(*) FROM q),"
    "  CASE WHEN $6::bool AND NOT EXISTS (SELECT 1 FROM got) THEN"
    "  (SELECT (extract(epoch FROM min(m.visible_at)) * 1000)::bigint FROM anvil_messages m"
    "   WHERE m.queue = (SELECT id FROM q) AND m.visible_at > now() AND m.visible_at < 'infinity'"
    "   AND (m.expires_at > now()) IS TRUE) END"
    " FROM (SELECT 1) one LEFT JOIN got ON true";

static void wait_answer(struct pgb *b, struct pg_wait *w, struct eng_result *r);
static void wait_retry_at(struct pgb *b, struct pg_wait *w, int64_t at_ms);
static void wake_oldest(struct pgb *b, const char *project, const char *queue);

static void on_reserved(struct pgb *b, struct pg_job *j, PGresult *res)
{
    struct eng_result r = {.status = pg_result_status(res)};
    int rows = r.status == ENG_OK ? PQntuples(res) : 0;
    bool found = rows && pg_col_i64(res, 0, 6) > 0;
    int64_t next_visible = rows ? pg_col_i64(res, 0, 7) : 0;
    if (r.status == ENG_OK && !found)
        r.status = ENG_QUEUE_NOT_FOUND;
    int n = rows && !PQgetisnull(res, 0, 0) ? rows : 0;
    if (n && !(r.messages = calloc((size_t)n, sizeof(*r.messages))))
        r.status = ENG_NO_MEMORY;
    for (int i = 0; r.messages && i < n; i++) {
        struct eng_message *m = &r.messages[r.n_messages];
        m->id = (uint64_t)pg_col_i64(res, i, 0);
        if (!(m->body = pg_col_blob(res, i, 1)))
            m->body = blob_new("", 0);
        m->has_reservation = !PQgetisnull(res, i, 2);
        if (m->has_reservation)
            snprintf(m->reservation_id, sizeof(m->reservation_id), "%s", PQgetvalue(res, i, 2));
        m->reserved_count = (uint32_t)pg_col_i64(res, i, 3);
        m->created_at_ms = pg_col_i64(res, i, 4);
        m->attributes = pg_col_blob(res, i, 5);
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
        pg_answer(j->op, &r);
    else
        eng_result_free(&r); /* cancelled: what it reserved becomes visible at its timeout */
}

static struct pg_job *reserve_job(const char *project, const char *name,
                                  const struct eng_reserve_args *a, struct eng_op *op, bool waiting)
{
    struct pg_job *j = pg_job_new(sql_reserve, on_reserved, op);
    if (!j)
        return NULL;
    char t[16];
    pg_param_text(j, project);
    pg_param_text(j, name);
    pg_param_u64(j, a->n ? a->n : 1);
    snprintf(t, sizeof(t), "%d", a->timeout_s || a->exact_timeout ? (int)a->timeout_s : -1);
    pg_param_text(j, t);
    pg_param_text(j, a->delete_msgs ? "t" : "f");
    pg_param_text(j, waiting ? "t" : "f");
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
        pg_answer(op, r);
    else
        eng_result_free(r);
}

static void wait_query(struct pgb *b, struct pg_wait *w)
{
    struct pg_job *j = reserve_job(w->project, w->queue, &w->args, NULL, true);
    if (!j) {
        struct eng_result r = {.status = ENG_NO_MEMORY};
        wait_answer(b, w, &r);
        return;
    }
    j->wait = w;
    w->querying = true;
    pg_submit(b, j);
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
static void sweep(struct pgb *b);
static void reset_start(struct pgb *b, PGconn *c, int conn);

static void on_timer(struct tw_node *node, void *ctx)
{
    struct pgb *b = ctx;
    if (node->tag == TIMER_LISTENER) {
        listener_reconnect(b);
        return;
    }
    if (node->tag == TIMER_PUSH) {
        pgp_on_timer(b);
        return;
    }
    if (node->tag == TIMER_SWEEP) {
        sweep(b);
        return;
    }
    if (node->tag == TIMER_CONN) {
        struct pg_conn *pc = list_entry(node, struct pg_conn, retry);
        if (pc->down && !pc->resetting) {
            pc->resetting = true;
            reset_start(b, pc->c, (int)(pc - b->conns));
        }
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
        struct pg_job *j = reserve_job(project, name, args, op, false);
        if (!j) {
            pg_answer_status(op, ENG_NO_MEMORY);
            return;
        }
        pg_submit(b, j);
        return;
    }
    struct pg_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        pg_answer_status(op, ENG_NO_MEMORY);
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
/* Peek: the first $3 ready messages; get: message $3. Rows shaped like a reserve's, without
 * reservations (the queue is an InitPlan, so the index on (queue, visible_at, id) gives the
 * order and the scan stops at the limit). */
static const char sql_peek[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " got AS (SELECT m.id, m.body, NULL::text AS rid, m.reserved_count,"
    "  (extract(epoch FROM m.created_at) * 1000)::bigint AS created, m.attributes"
    "  FROM anvil_messages m WHERE m.queue = (SELECT id FROM q) AND m.visible_at <= now()"
    "  AND (m.expires_at > now()) IS TRUE ORDER BY m.visible_at, m.id LIMIT $3)"
    " SELECT got.*, (SELECT count(*) FROM q), NULL::bigint FROM (SELECT 1) one LEFT JOIN got ON true";
static const char sql_get[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " got AS (SELECT m.id, m.body, NULL::text AS rid, m.reserved_count,"
    "  (extract(epoch FROM m.created_at) * 1000)::bigint AS created, m.attributes"
    "  FROM anvil_messages m WHERE m.id = $3 AND m.queue = (SELECT id FROM q) AND m.expires_at > now())"
    " SELECT got.*, (SELECT count(*) FROM q), NULL::bigint FROM (SELECT 1) one LEFT JOIN got ON true";

static void on_read(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    struct eng_op *op = j->op;
    j->op = NULL;
    if (j->step == 1 && pg_result_status(res) == ENG_OK && PQntuples(res) >= 1 &&
        PQgetisnull(res, 0, 0) && pg_col_i64(res, 0, 6) > 0) {
        pg_answer_status(op, ENG_MESSAGE_NOT_FOUND); /* get: the queue is there, the message not */
        return;
    }
    j->op = op;
    on_reserved(b, j, res);
}

static void read_messages(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                          uint32_t n, const uint64_t *id)
{
    struct pg_job *j = pg_call_job(op, id ? sql_get : sql_peek, on_read, id ? 1 : 0, project, name);
    if (!j)
        return;
    pg_param_u64(j, id ? *id : n);
    pg_start(b, j);
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

/* $1 project, $2 name, $3 id, $4 reservation (NULL: none given), $5 subscriber name ('' any).
 * A message is reserved while it has a reservation whose time has not run out; then only
 * that reservation deletes it, otherwise only a delete without one. A push message with a
 * reservation: a subscriber acknowledges its 202 (a bit in its anvil_pushes row; the node
 * delivering it, or the next claim, finishes). Answers (done, queue exists, message exists). */
static const char sql_delete[] =
    "WITH q AS (SELECT id, type FROM anvil_queues WHERE project = $1 AND name = $2),"
    " m AS (SELECT m.id, m.reservation IS NOT NULL AND m.visible_at > now() AS reserved,"
    "  m.visible_at = 'infinity' AS pushing, m.reservation, q.type"
    "  FROM anvil_messages m, q WHERE m.id = $3 AND m.queue = q.id AND m.expires_at > now()),"
    " d AS (DELETE FROM anvil_messages x USING m WHERE x.id = m.id"
    "  AND NOT (m.pushing AND $4::text IS NOT NULL) AND CASE WHEN m.reserved"
    "  THEN m.reservation = $4::text::uuid ELSE $4::text IS NULL END RETURNING x.id, x.queue),"
    /* the subscriber: by the reservations written after 202s, or by a request of the claim
     * that holds it now (its reservation ids begin with the claim's token, then the index) */
    " ack AS (SELECT p.message, m.type, p.pending, p.rnames, coalesce(array_position(p.rids, $4::text) - 1,"
    "   CASE WHEN p.owner IS NOT NULL AND left(p.owner, 16) = left($4::text, 16)"
    "   AND substr($4::text, 17, 2) ~ '^[0-9a-f]{2}$'"
    "   THEN ('x' || substr($4::text, 17, 2))::bit(8)::int END) AS i"
    "  FROM anvil_pushes p, m WHERE p.message = m.id AND m.pushing AND $4::text IS NOT NULL"
    "  FOR UPDATE OF p),"
    " a AS (SELECT * FROM ack WHERE i IS NOT NULL AND i < 64 AND ($5::text = ''"
    "  OR rnames IS NULL OR rnames[i + 1] IS NULL OR rnames[i + 1] = $5::text)),"
    /* the last subscriber that had not got it: the message is done with */
    " fin AS (DELETE FROM anvil_messages x USING a WHERE x.id = a.message"
    "  AND (a.type = 1 OR a.pending & ~(1::bigint << a.i) = 0) RETURNING x.id, x.queue),"
    " gone AS (SELECT * FROM d UNION ALL SELECT * FROM fin)," PG_COUNT_GONE "," PG_UNPUSH ","
    " u AS (UPDATE anvil_pushes p SET acked = p.acked | (1::bigint << a.i),"
    "  due_at = CASE WHEN p.owner IS NULL THEN now() ELSE p.due_at END FROM a"
    "  WHERE p.message = a.message AND NOT (a.type = 1 OR a.pending & ~(1::bigint << a.i) = 0)"
    "  RETURNING pg_notify('anvil_push', (extract(epoch FROM p.due_at) * 1000)::bigint::text))"
    " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM fin) + (SELECT count(*) FROM u),"
    "  (SELECT count(*) FROM q), (SELECT count(*) FROM m)";

void pg_delete(struct pgb *b, struct eng_op *op, const char *project, const char *name, uint64_t id,
               const char *reservation_id, const char *subscriber_name)
{
    struct pg_job *j = pg_call_job(op, sql_delete, on_count, 2, project, name);
    if (!j)
        return;
    pg_param_u64(j, id);
    pg_param_text(j, reservation_id && reservation_id[0] ? reservation_param(reservation_id) : NULL);
    pg_param_text(j, subscriber_name ? subscriber_name : "");
    pg_start(b, j);
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
        pg_answer_status(op, ENG_RESERVATION_REQUIRED);
        return;
    }
    /* step 4: like 2, without handing back a reservation id */
    struct pg_job *j = pg_call_job(op, sql, on_count, sql == sql_touch ? 2 : 4, project, name);
    if (!j)
        return;
    char t[16];
    snprintf(t, sizeof(t), "%u", secs);
    pg_param_u64(j, id);
    pg_param_text(j, reservation_param(rid));
    pg_param_text(j, t);
    pg_start(b, j);
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
             "  AND (SELECT ord FROM bad) IS NULL AND (SELECT count(*) FROM q) > 0"
             "  RETURNING x.id, x.queue), gone AS (SELECT * FROM d),"
             PG_COUNT_GONE "," PG_UNPUSH
             " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q), (SELECT ord FROM bad),"
             "  (SELECT mid IS NULL FROM c WHERE ord = (SELECT ord FROM bad))");
    return s;
}

static void on_deleted_many(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)b;
    if (!j->op)
        return;
    struct eng_result r = {.status = pg_result_status(res)};
    if (r.status == ENG_OK && pg_col_i64(res, 0, 1) == 0) {
        r.status = ENG_QUEUE_NOT_FOUND;
    } else if (r.status == ENG_OK && !PQgetisnull(res, 0, 2)) {
        r.failed_index = (size_t)pg_col_i64(res, 0, 2) - 1;
        r.status = strcmp(PQgetvalue(res, 0, 3), "t") == 0 ? ENG_MESSAGE_NOT_FOUND
                                                          : ENG_RESERVATION_MISMATCH;
    }
    pg_answer(j->op, &r);
}

void pg_delete_many(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                    const struct eng_delete_item *items, size_t n)
{
    struct pg_job *j = n && n <= 100 ? pg_job_new(NULL, on_deleted_many, op) : NULL;
    if (j && !(j->sql = delete_many_sql(n))) {
        pg_job_free(j);
        j = NULL;
    }
    if (!j) {
        pg_answer_status(op, ENG_NO_MEMORY);
        return;
    }
    j->sql_owned = true;
    j->key = KEY_DELETE_MANY + (int)n;
    pg_param_text(j, project);
    pg_param_text(j, name);
    for (size_t i = 0; i < n; i++) {
        pg_param_u64(j, items[i].id);
        const char *rid = items[i].reservation_id;
        pg_param_text(j, rid && rid[0] ? reservation_param(rid) : NULL);
    }
    pg_start(b, j);
}

static const char sql_clear[] =
    "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2),"
    " d AS (DELETE FROM anvil_messages m USING q WHERE m.queue = q.id RETURNING m.id, m.queue),"
    " gone AS (SELECT * FROM d)," PG_COUNT_GONE "," PG_UNPUSH
    " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q), 1";

void pg_clear(struct pgb *b, struct eng_op *op, const char *project, const char *name)
{
    struct pg_job *j = pg_call_job(op, sql_clear, on_count, 3, project, name);
    if (!j)
        return;
    pg_start(b, j);
}

/* ---- expired messages ----
 * Every node sweeps once a second: up to 1,000 expired messages at a time by the expiry
 * index (SKIP LOCKED, so nodes sweeping together take different rows), again at once when
 * there were that many. Every fifth sweep also counts projects, queues and messages for
 * /stats. Expired messages are invisible to every call before they are swept. */
static const char sql_sweep[] =
    "WITH d AS (DELETE FROM anvil_messages WHERE id IN (SELECT id FROM anvil_messages"
    "  WHERE expires_at <= now() ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
    "  RETURNING id, queue), gone AS (SELECT * FROM d)," PG_COUNT_GONE "," PG_UNPUSH
    " SELECT (SELECT count(*) FROM d),"
    "  CASE WHEN $1::bool THEN (SELECT count(DISTINCT project) FROM anvil_queues) END,"
    "  CASE WHEN $1::bool THEN (SELECT count(*) FROM anvil_queues) END,"
    "  CASE WHEN $1::bool THEN (SELECT coalesce(sum(size), 0) FROM anvil_queue_totals) END";

static void on_swept(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)j;
    int64_t next = b->now_ms + 1000;
    if (pg_result_status(res) == ENG_OK && PQntuples(res) == 1) {
        if (pg_col_i64(res, 0, 0) >= 1000)
            next = b->now_ms; /* more to sweep */
        if (!PQgetisnull(res, 0, 1)) {
            b->projects = (uint64_t)pg_col_i64(res, 0, 1);
            b->queues = (uint64_t)pg_col_i64(res, 0, 2);
            b->messages = (uint64_t)pg_col_i64(res, 0, 3);
        }
    }
    if (!b->shutting_down)
        tw_insert(&b->wheel, &b->sweep, next);
}

static void sweep(struct pgb *b)
{
    struct pg_job *j = b->shutting_down ? NULL : pg_job_new(sql_sweep, on_swept, NULL);
    if (!j) {
        if (!b->shutting_down)
            tw_insert(&b->wheel, &b->sweep, b->now_ms + 1000);
        return;
    }
    pg_param_text(j, b->sweeps++ % 5 == 0 ? "t" : "f");
    pg_submit(b, j);
}

/* The fixed statements' keys (1...). */
static int statement_key(const char *sql)
{
    static const char *const fixed[] = {sql_queue_get, sql_change_read, sql_queue_update,
                                        sql_queue_insert, sql_subscribers_update, sql_queue_delete,
                                        sql_queue_list, sql_reserve, sql_peek, sql_get, sql_delete,
                                        sql_touch, sql_visibility, sql_release, sql_clear,
                                        sql_sweep, sql_notify};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (sql == fixed[i])
            return (int)i + 1;
    return pgp_statement_key(sql);
}

/* ---- the loop's side ---- */

static void finish_job(struct pgb *b, struct pg_conn *pc)
{
    struct pg_job *j = pc->job;
    pc->job = NULL;
    PGresult *res = pc->last;
    pc->last = NULL;
    if (pg_result_status(res) == ENG_OK)
        b->commits++;
    else
        b->commit_failures++;
    j->on_result(b, j, res);
    PQclear(res);
    if (j->again) {
        j->again = false;
        pg_submit(b, j);
        return;
    }
    pg_job_free(j);
}

/* A connection that failed: its call fails (503), then it reconnects (libpq's multi-host
 * conninfo finds the primary after a failover). */
static void *reset_main(void *arg)
{
    struct pg_reset *r = arg;
    struct pgb *b = r->b;
    PQreset(r->c);
    pthread_mutex_lock(&b->reset_lock);
    r->next = b->resets_done;
    b->resets_done = r;
    pthread_mutex_unlock(&b->reset_lock);
    uint64_t one = 1;
    ssize_t w = write(b->reset_efd, &one, sizeof(one));
    (void)w; /* the counter only grows: a failed write means it is already readable */
    return NULL;
}

/* Reconnects c on a worker thread; the loop gets it back in resets_finished(). */
static void reset_start(struct pgb *b, PGconn *c, int conn)
{
    if (PQsocket(c) >= 0)
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, PQsocket(c), NULL);
    struct pg_reset *r = calloc(1, sizeof(*r));
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (r && pthread_attr_init(&attr) == 0) {
        *r = (struct pg_reset){.b = b, .c = c, .conn = conn};
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, reset_main, r) == 0;
        pthread_attr_destroy(&attr);
    }
    if (started) {
        b->resets_out++;
        return;
    }
    free(r); /* no thread: try again soon */
    if (conn < 0) {
        tw_insert(&b->wheel, &b->listener_retry, b->now_ms + 100);
    } else {
        b->conns[conn].down = true;
        tw_insert(&b->wheel, &b->conns[conn].retry, b->now_ms + 100);
    }
}

static void listener_connected(struct pgb *b);

/* Reconnects the workers finished: back into the loop, or again in 100 ms. */
static void resets_finished(struct pgb *b)
{
    uint64_t n;
    ssize_t rd = read(b->reset_efd, &n, sizeof(n));
    (void)rd;
    pthread_mutex_lock(&b->reset_lock);
    struct pg_reset *done = b->resets_done;
    b->resets_done = NULL;
    pthread_mutex_unlock(&b->reset_lock);
    while (done) {
        struct pg_reset *r = done;
        done = r->next;
        b->resets_out--;
        bool ok = PQstatus(r->c) == CONNECTION_OK && PQsetnonblocking(r->c, 1) == 0;
        if (r->conn < 0) {
            b->listener_resetting = false;
            if (ok && !b->push.closing)
                listener_connected(b);
            else if (!b->push.closing)
                tw_insert(&b->wheel, &b->listener_retry, b->now_ms + 100);
        } else {
            struct pg_conn *pc = &b->conns[r->conn];
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = pc};
            pc->resetting = false;
            memset(pc->prepared, 0, sizeof(pc->prepared)); /* a new session has none */
            ok = ok && epoll_ctl(b->epfd, EPOLL_CTL_ADD, PQsocket(pc->c), &ev) == 0;
            pc->down = !ok;
            b->broken = !ok;
            if (!ok && !b->push.closing)
                tw_insert(&b->wheel, &pc->retry, b->now_ms + 100);
        }
        free(r);
    }
    if (!b->push.closing)
        pump(b);
}

/* A connection that failed: its call fails (503), then it reconnects on a worker thread
 * (libpq's multi-host conninfo finds the primary after a failover) while the loop goes on;
 * calls wait for the other connections meanwhile, and fail at once if none is left. */
static void conn_lost(struct pgb *b, struct pg_conn *pc)
{
    if (pc->job) {
        PQclear(pc->last);
        pc->last = NULL;
        finish_job(b, pc);
    }
    if (pc->resetting)
        return;
    pc->resetting = true;
    pc->down = false;
    b->broken = true;
    reset_start(b, pc->c, (int)(pc - b->conns));
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

/* The LISTEN connection went away: connect again on a worker thread (libpq's multi-host URL
 * finds the new primary), or try again in 100 ms while the server is still down. */
static void listener_reconnect(struct pgb *b)
{
    if (b->listener_resetting || b->push.closing)
        return;
    b->listener_resetting = true;
    reset_start(b, b->listener, -1);
}

/* The LISTEN connection is back: LISTEN again (one short round trip on a fresh connection),
 * then every waiter looks again, for notifications were lost meanwhile. */
static void listener_connected(struct pgb *b)
{
    PQsetnonblocking(b->listener, 0);
    PGresult *r = PQexec(b->listener, "LISTEN anvil; LISTEN anvil_push");
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
    pgp_claim(b); /* and deliveries due meanwhile */
}

static void listener_readable(struct pgb *b)
{
    if (!PQconsumeInput(b->listener) || PQstatus(b->listener) != CONNECTION_OK) {
        listener_reconnect(b);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(b->listener))) {
        if (strcmp(n->relname, "anvil_push") == 0)
            pgp_on_notify(b, n->extra);
        else
            on_notify(b, n->extra);
        PQfreemem(n);
    }
}

void pg_on_readable(struct pgb *b)
{
    struct epoll_event evs[PG_CONNS + 2];
    int n = epoll_wait(b->epfd, evs, PG_CONNS + 2, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == b)
            listener_readable(b);
        else if (evs[i].data.ptr == &b->reset_efd)
            resets_finished(b);
        else
            conn_readable(b, evs[i].data.ptr, evs[i].events);
    }
    pump(b);
}

int64_t pg_now_ms(const struct pgb *b)
{
    return b->now_ms;
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
    memset(out, 0, sizeof(*out));
    out->projects = b->projects; /* as of the last count (every 5 s, by the sweep) */
    out->queues = b->queues;
    out->messages = b->messages;
    out->commits = b->commits;
    out->commit_failures = b->commit_failures;
    out->commit_records = b->posts; /* "records": post calls; "skipped": those that shared */
    out->commit_skipped = b->posts_grouped; /* another's statement and commit (group commit) */
    out->storage_ok = !b->broken && PQstatus(b->conns[0].c) == CONNECTION_OK;
}

void pg_metrics(const struct pgb *b, struct eng_metrics *out)
{
    for (const struct list_node *w = b->waits.next; w != &b->waits; w = w->next)
        out->waiters++;
}

void pg_cancel(struct pgb *b, struct eng_op *op)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->pending) {
        struct pg_job *j = list_entry(pos, struct pg_job, link);
        if (j->op == op) {
            list_remove(&j->link);
            pg_job_free(j);
        }
    }
    for (int i = 0; i < PG_CONNS; i++) {
        struct pg_job *j = b->conns[i].job;
        if (j && j->op == op)
            j->op = NULL; /* its answer is dropped */
        for (size_t p = 0; j && p < j->n_parts; p++)
            if (j->parts[p].op == op)
                j->parts[p].op = NULL;
    }
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
    pgp_close(b);
    tw_cancel(&b->wheel, &b->sweep);
    while (b->resets_out > 0) { /* a reconnect in flight owns its connection: wait for it */
        struct pollfd pfd = {.fd = b->reset_efd, .events = POLLIN};
        poll(&pfd, 1, 100);
        resets_finished(b);
    }
    for (int i = 0; i < PG_CONNS; i++)
        tw_cancel(&b->wheel, &b->conns[i].retry);
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
            pg_answer_status(j->op, ENG_SHUTTING_DOWN);
        pg_job_free(j);
    }
    while (!list_empty(&b->waits)) {
        struct pg_wait *w = list_entry(b->waits.next, struct pg_wait, link);
        struct eng_result r = {.status = ENG_OK};
        wait_answer(b, w, &r);
    }
    pgp_free_all(b);
    for (size_t i = 0; i < b->n_notes; i++)
        free(b->notes[i]);
    free(b->notes);
    if (b->listener)
        PQfinish(b->listener);
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->reset_efd >= 0)
        close(b->reset_efd);
    pthread_mutex_destroy(&b->reset_lock);
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
    b->reset_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&b->reset_lock, NULL);
    for (int i = 0; i < PG_CONNS; i++)
        tw_node_init(&b->conns[i].retry, TIMER_CONN);
    list_init(&b->pending);
    list_init(&b->waits);
    tw_init(&b->wheel, opt->now_ms);
    tw_node_init(&b->listener_retry, TIMER_LISTENER);
    pgp_init(b);
    tw_node_init(&b->sweep, TIMER_SWEEP);
    struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &b->reset_efd};
    if (b->epfd < 0 || b->reset_efd < 0 || epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->reset_efd, &rev) != 0 ||
        !(b->listener = connect_to(opt->backend_url, err, err_len)) ||
        migrate(b->listener, err, err_len) != 0)
        goto fail;
    PGresult *r = PQexec(b->listener, "LISTEN anvil; LISTEN anvil_push");
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
    sweep(b); /* counts /stats at once, then once a second */
    return b;
fail:
    pg_close(b);
    return NULL;
}
