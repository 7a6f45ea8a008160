/* storage/store.c — the SQLite journal (see store.h): one database file in WAL mode,
 * a writer thread that commits one batch of records per transaction, the eventfd that
 * tells the loop a batch is done, and the retry of a failed batch after a back-off: a
 * failed batch is committed again, on its own and before any later batch, so batches
 * always reach the disk in order.
 * Threads: the loop owns `building`; the writer owns `inflight` from hand-over until it
 * sets `finished`; both fields are exchanged under `mu`. */
#include "store.h"
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    RETRY_BACKOFF_MS = 250,
    VACUUM_MIN_FREE_PAGES = 1024, /* give free pages back once there are this many ... */
    VACUUM_FREE_SHARE = 4,        /* ... and they are over a quarter of the file */
    VACUUM_STEP_PAGES = 2048,     /* at most this many per commit, to keep commits short */
};

struct batch {
    struct jrec *recs;
    size_t n, cap;
    uint64_t epoch;
    bool ok;
    uint64_t took_us; /* the writer's transaction, for store_reap_batch() */
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_QUEUE_PUT,
    ST_QUEUE_DELETE,
    ST_SUBSCRIBERS_CLEAR,
    ST_SUBSCRIBER_PUT,
    ST_QUEUE_TOTAL,
    ST_MSG_PUT,
    ST_MSG_UPDATE,
    ST_MSG_MOVE,
    ST_MSG_DELETE,
    ST_LAST_ID,
    ST_PAGE_COUNT,
    ST_FREE_COUNT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_QUEUE_PUT] = ("INSERT OR REPLACE INTO queues(key, project, name, id, created_at, type,"
                      " message_timeout, message_expiration, dead_letter_queue, dead_letter_max,"
                      " total_messages, push_retries, push_retries_delay, error_queue, attributes)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
    [ST_SUBSCRIBERS_CLEAR] = "DELETE FROM subscribers WHERE queue = ?1",
    [ST_SUBSCRIBER_PUT] = ("INSERT INTO subscribers(queue, position, name, url, headers)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)"),
    [ST_QUEUE_DELETE] = "DELETE FROM queues WHERE key = ?1",
    [ST_QUEUE_TOTAL] = "UPDATE queues SET total_messages = ?2 WHERE key = ?1",
    [ST_MSG_PUT] = ("INSERT OR REPLACE INTO messages(id, queue, body, created_at, visible_at,"
                    " expires_at, reserved_count, push_headers, attributes)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
    [ST_MSG_UPDATE] = "UPDATE messages SET reserved_count = ?2, visible_at = ?3 WHERE id = ?1",
    [ST_MSG_MOVE] = "UPDATE messages SET queue = ?2, expires_at = ?3, visible_at = 0 WHERE id = ?1",
    [ST_MSG_DELETE] = "DELETE FROM messages WHERE id = ?1",
    /* never lowered: a fixture may load messages with ids below ones already handed out */
    [ST_LAST_ID] = ("INSERT INTO meta(key, value) VALUES ('last_message_id', ?1)"
                    " ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"),
    [ST_PAGE_COUNT] = "PRAGMA page_count",
    [ST_FREE_COUNT] = "PRAGMA freelist_count",
};

struct store {
    sqlite3 *db;                /* the writer's (and, before it starts, recovery's) */
    sqlite3_stmt *stmt[ST_COUNT];
    sqlite3 *reader;            /* the loop's, read-only: bodies of cold messages */
    sqlite3_stmt *read_body;
    int lock_fd;
    int event_fd;
    pthread_t writer;
    bool writer_started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;              /* under mu */
    struct batch *inflight; /* under mu: handed to the writer, NULL when none */
    bool finished;          /* under mu: the writer is done with inflight */
    struct batch building;  /* loop thread only */
    uint64_t durable_epoch;
    bool writable;
    struct batch *retry;    /* loop thread: a failed batch waiting to be committed again */
    int64_t retry_at_ms;
    char last_error[256];
    char wal_path[4100];
    uint64_t page_size;
    struct store_space space; /* under mu */
    struct store_commits commits; /* under mu */
    uint64_t space_tended_us;     /* writer thread: when tend_space() last ran */
};

/* ---- records ---- */

void store_free_row(struct store_queue_row *row)
{
    if (!row)
        return;
    free(row->project);
    free(row->name);
    free(row->dead_letter_queue);
    free(row->error_queue);
    free(row->attributes);
    for (uint32_t i = 0; i < row->n_subscribers; i++) {
        free(row->subscribers[i].name);
        free(row->subscribers[i].url);
        free(row->subscribers[i].headers);
    }
    free(row->subscribers);
    free(row);
}

static void release_records(struct jrec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        blob_unref(recs[i].body);
        blob_unref(recs[i].push_headers);
        blob_unref(recs[i].attributes);
        store_free_row(recs[i].row);
    }
}

static int batch_reserve(struct batch *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra)
        cap *= 2;
    struct jrec *grown = realloc(b->recs, cap * sizeof(*grown));
    if (!grown)
        return -1;
    b->recs = grown;
    b->cap = cap;
    return 0;
}

int store_append(struct store *s, const struct jrec *rec)
{
    if (batch_reserve(&s->building, 1) != 0) {
        release_records((struct jrec *)rec, 1);
        return -1;
    }
    s->building.recs[s->building.n++] = *rec;
    return 0;
}

/* ---- applying a batch (writer thread) ---- */

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* A queue's subscribers are replaced whole with its row. */
static int put_subscribers(struct store *s, const struct store_queue_row *q)
{
    sqlite3_stmt *st = s->stmt[ST_SUBSCRIBERS_CLEAR];
    sqlite3_bind_int64(st, 1, q->key);
    int rc = step_reset(st);
    for (uint32_t i = 0; rc == SQLITE_OK && i < q->n_subscribers; i++) {
        const struct store_subscriber *sub = &q->subscribers[i];
        st = s->stmt[ST_SUBSCRIBER_PUT];
        sqlite3_bind_int64(st, 1, q->key);
        sqlite3_bind_int64(st, 2, i);
        sqlite3_bind_text(st, 3, sub->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, sub->url, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, sub->headers ? sub->headers : "", (int)sub->headers_len,
                          SQLITE_STATIC);
        rc = step_reset(st);
    }
    return rc;
}

static int apply_record(struct store *s, const struct jrec *r)
{
    sqlite3_stmt *st;
    switch (r->type) {
    case JR_QUEUE_PUT: {
        const struct store_queue_row *q = r->row;
        st = s->stmt[ST_QUEUE_PUT];
        sqlite3_bind_int64(st, 1, q->key);
        sqlite3_bind_text(st, 2, q->project, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, q->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, q->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, q->created_at_ms);
        sqlite3_bind_int(st, 6, q->type);
        sqlite3_bind_int64(st, 7, q->message_timeout_s);
        sqlite3_bind_int64(st, 8, q->message_expiration_s);
        if (q->dead_letter_queue)
            sqlite3_bind_text(st, 9, q->dead_letter_queue, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 9);
        sqlite3_bind_int64(st, 10, q->dead_letter_max);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)q->total_messages);
        sqlite3_bind_int64(st, 12, q->push_retries ? q->push_retries : 3);
        sqlite3_bind_int64(st, 13, q->push_retries_delay_s ? q->push_retries_delay_s : 60);
        if (q->error_queue)
            sqlite3_bind_text(st, 14, q->error_queue, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 14);
        if (q->attributes)
            sqlite3_bind_blob(st, 15, q->attributes, (int)q->attributes_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 15);
        int rc = step_reset(st);
        if (rc == SQLITE_OK)
            rc = put_subscribers(s, q);
        return rc;
    }
    case JR_QUEUE_DELETE: {
        st = s->stmt[ST_SUBSCRIBERS_CLEAR];
        sqlite3_bind_int64(st, 1, r->queue_key);
        int rc = step_reset(st);
        if (rc != SQLITE_OK)
            return rc;
        st = s->stmt[ST_QUEUE_DELETE];
        sqlite3_bind_int64(st, 1, r->queue_key);
        return step_reset(st);
    }
    case JR_QUEUE_TOTAL:
        st = s->stmt[ST_QUEUE_TOTAL];
        sqlite3_bind_int64(st, 1, r->queue_key);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r->count);
        return step_reset(st);
    case JR_MSG_PUT:
        st = s->stmt[ST_MSG_PUT];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->msg_id);
        sqlite3_bind_int64(st, 2, r->queue_key);
        sqlite3_bind_blob(st, 3, r->body ? r->body->data : "", r->body ? (int)r->body->len : 0,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, r->created_at_ms);
        sqlite3_bind_int64(st, 5, r->visible_at_ms);
        sqlite3_bind_int64(st, 6, r->expires_at_ms);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)r->count);
        if (r->push_headers)
            sqlite3_bind_blob(st, 8, r->push_headers->data, (int)r->push_headers->len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        if (r->attributes)
            sqlite3_bind_blob(st, 9, r->attributes->data, (int)r->attributes->len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 9);
        return step_reset(st);
    case JR_MSG_UPDATE:
        st = s->stmt[ST_MSG_UPDATE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->msg_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)r->count);
        sqlite3_bind_int64(st, 3, r->visible_at_ms);
        return step_reset(st);
    case JR_MSG_MOVE:
        st = s->stmt[ST_MSG_MOVE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->msg_id);
        sqlite3_bind_int64(st, 2, r->queue_key);
        sqlite3_bind_int64(st, 3, r->expires_at_ms);
        return step_reset(st);
    case JR_MSG_DELETE:
        st = s->stmt[ST_MSG_DELETE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->msg_id);
        return step_reset(st);
    default:
        return SQLITE_MISUSE;
    }
}

/* Records that a later record of the same batch makes pointless, so the transaction need
 * not write them: a message's post or update when the message is deleted later in the
 * batch, an update superseded by a later update, a move of a message deleted later, a
 * queue's total when a later total follows. The delete itself is kept (a row of that id
 * may be on disk already). The batch commits as one transaction, so its outcome is the
 * same; about a third of the statements go when consumers keep up (a reserve's count and
 * the delete that follows usually share a batch). Writer thread; skip[i] set for each. */
struct seen {
    uint64_t key; /* message id, or a queue key with the top bit set; 0 = empty */
    uint8_t flags;
};
enum { SEEN_DELETED = 1, SEEN_UPDATED = 2, SEEN_TOTAL = 4 };

static struct seen *seen_slot(struct seen *t, size_t mask, uint64_t key)
{
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & mask;
    while (t[i].key && t[i].key != key)
        i = (i + 1) & mask;
    t[i].key = key;
    return &t[i];
}

static size_t plan_batch(const struct batch *b, uint8_t *skip, struct seen *t, size_t mask)
{
    size_t skipped = 0;
    for (size_t i = b->n; i-- > 0;) {
        const struct jrec *r = &b->recs[i];
        skip[i] = 0;
        if (r->type == JR_QUEUE_TOTAL) {
            struct seen *q = seen_slot(t, mask, (uint64_t)r->queue_key | 1ull << 63);
            skip[i] = (q->flags & SEEN_TOTAL) != 0;
            q->flags |= SEEN_TOTAL;
        } else if (r->type == JR_MSG_PUT || r->type == JR_MSG_UPDATE || r->type == JR_MSG_MOVE ||
                   r->type == JR_MSG_DELETE) {
            struct seen *m = seen_slot(t, mask, r->msg_id);
            if (r->type == JR_MSG_DELETE) {
                m->flags |= SEEN_DELETED;
            } else if (m->flags & SEEN_DELETED) {
                skip[i] = 1;
            } else if (r->type == JR_MSG_UPDATE) {
                skip[i] = (m->flags & SEEN_UPDATED) != 0;
                m->flags |= SEEN_UPDATED;
            } else if (r->type == JR_MSG_PUT) {
                m->flags = 0; /* records before a put (a reused id) stand on their own */
            }
        }
        skipped += skip[i];
    }
    return skipped;
}

static uint64_t mono_us(void);

/* *commit_us: how long the COMMIT statement took (0 when it was not reached). */
static bool apply_batch(struct store *s, const struct batch *b, size_t *skipped,
                        uint64_t *commit_us)
{
    uint64_t last_id = 0;
    size_t cap = 16;
    while (cap < 2 * b->n)
        cap *= 2;
    uint8_t *skip = malloc(b->n ? b->n : 1);
    struct seen *table = calloc(cap, sizeof(*table));
    *skipped = 0;
    if (skip && table)
        *skipped = plan_batch(b, skip, table, cap - 1);
    else if (skip)
        memset(skip, 0, b->n); /* out of memory: write every record */
    free(table);
    int rc = skip ? step_reset(s->stmt[ST_BEGIN]) : SQLITE_NOMEM;
    for (size_t i = 0; rc == SQLITE_OK && i < b->n; i++) {
        if (!skip[i])
            rc = apply_record(s, &b->recs[i]);
        if (b->recs[i].type == JR_MSG_PUT && b->recs[i].msg_id > last_id)
            last_id = b->recs[i].msg_id;
    }
    if (rc == SQLITE_OK && last_id) {
        sqlite3_bind_int64(s->stmt[ST_LAST_ID], 1, (sqlite3_int64)last_id);
        rc = step_reset(s->stmt[ST_LAST_ID]);
    }
    *commit_us = 0;
    if (rc == SQLITE_OK) {
        uint64_t t0 = mono_us();
        rc = step_reset(s->stmt[ST_COMMIT]);
        *commit_us = mono_us() - t0;
    }
    free(skip);
    if (rc != SQLITE_OK) {
        snprintf(s->last_error, sizeof(s->last_error), "%s",
                 rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db))
            step_reset(s->stmt[ST_ROLLBACK]);
        return false;
    }
    return true;
}

static int64_t query_one(sqlite3_stmt *st)
{
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}

/* After a commit (writer thread): hand a slice of free pages back to the file system when
 * deletions left many (auto_vacuum is incremental), and note the space in use. */
static void tend_space(struct store *s)
{
    int64_t pages = query_one(s->stmt[ST_PAGE_COUNT]), free_pages = query_one(s->stmt[ST_FREE_COUNT]);
    if (free_pages >= VACUUM_MIN_FREE_PAGES && free_pages * VACUUM_FREE_SHARE > pages) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", VACUUM_STEP_PAGES);
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK) {
            pages = query_one(s->stmt[ST_PAGE_COUNT]);
            free_pages = query_one(s->stmt[ST_FREE_COUNT]);
        }
    }
    struct stat st;
    uint64_t wal = stat(s->wal_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    pthread_mutex_lock(&s->mu);
    s->space.db_bytes = (uint64_t)pages * s->page_size;
    s->space.free_bytes = (uint64_t)free_pages * s->page_size;
    s->space.wal_bytes = wal;
    pthread_mutex_unlock(&s->mu);
}

void store_commits(struct store *s, struct store_commits *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->commits;
    pthread_mutex_unlock(&s->mu);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void store_space(struct store *s, struct store_space *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->space;
    pthread_mutex_unlock(&s->mu);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !(s->inflight && !s->finished))
            pthread_cond_wait(&s->cv, &s->mu);
        if (!(s->inflight && !s->finished))
            break; /* stop, and nothing left to commit */
        struct batch *b = s->inflight;
        pthread_mutex_unlock(&s->mu);
        uint64_t t0 = mono_us();
        size_t skipped = 0;
        uint64_t commit_us = 0;
        b->ok = apply_batch(s, b, &skipped, &commit_us);
        uint64_t took = mono_us() - t0;
        /* The space figures and the vacuum step need not follow every commit: ten times a
         * second is plenty, and keeps two PRAGMAs and a stat() off the hot path. */
        if (b->ok && t0 - s->space_tended_us >= 100000) {
            tend_space(s);
            s->space_tended_us = t0;
        }
        pthread_mutex_lock(&s->mu);
        s->commits.count++;
        s->commits.records += b->n;
        s->commits.skipped += skipped;
        s->commits.total_us += took;
        if (took > s->commits.max_us)
            s->commits.max_us = took;
        hist_add(&s->commits.batch_records, &hist_sizes, b->n);
        hist_add(&s->commits.batch_us, &hist_latency_us, took);
        if (b->ok)
            hist_add(&s->commits.commit_us, &hist_latency_us, commit_us);
        s->finished = true;
        b->took_us = took;
        uint64_t one = 1;
        if (write(s->event_fd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow in practice; the loop polls finished anyway */
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- loop side ---- */

uint64_t store_building_epoch(const struct store *s)
{
    return s->building.epoch;
}

uint64_t store_durable_epoch(const struct store *s)
{
    return s->durable_epoch;
}

uint64_t store_commit_for(const struct store *s, uint64_t epoch)
{
    /* inflight and retry are only assigned and cleared by the loop thread: safe to read */
    if (s->retry && epoch <= s->retry->epoch)
        return s->retry->epoch;
    if (s->inflight && epoch <= s->inflight->epoch)
        return s->inflight->epoch;
    return s->building.epoch;
}

bool store_writable(const struct store *s)
{
    return s->writable;
}

bool store_idle(const struct store *s)
{
    return !s->inflight && !s->retry && s->building.n == 0;
}

int store_event_fd(const struct store *s)
{
    return s->event_fd;
}

int64_t store_next_retry(const struct store *s)
{
    return s->retry && !s->inflight && s->retry_at_ms ? s->retry_at_ms : INT64_MAX;
}

void store_kick(struct store *s, int64_t now_ms)
{
    struct batch *b;
    if (s->inflight)
        return;
    if (s->retry) {
        if (s->retry_at_ms == 0)
            s->retry_at_ms = now_ms + RETRY_BACKOFF_MS;
        if (now_ms < s->retry_at_ms)
            return;
        b = s->retry;
        s->retry = NULL;
    } else {
        if (s->building.n == 0 || !(b = malloc(sizeof(*b))))
            return; /* nothing to do, or try again next turn */
        *b = s->building;
        s->building = (struct batch){.epoch = b->epoch + 1};
    }
    pthread_mutex_lock(&s->mu);
    s->inflight = b;
    s->finished = false;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool store_reap_batch(struct store *s, struct store_reaped *out)
{
    uint64_t counter;
    if (read(s->event_fd, &counter, sizeof(counter)) < 0 && errno != EAGAIN) {
        /* nothing to do: `finished` below is the truth */
    }
    pthread_mutex_lock(&s->mu);
    struct batch *b = s->inflight && s->finished ? s->inflight : NULL;
    if (b)
        s->inflight = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!b)
        return false;
    out->epoch = b->epoch;
    out->ok = b->ok;
    out->records = b->n;
    out->duration_us = b->took_us;
    out->error[0] = '\0';
    if (b->ok) {
        s->durable_epoch = b->epoch;
        s->writable = true;
        release_records(b->recs, b->n);
        free(b->recs);
        free(b);
    } else {
        /* the writer is idle until the next store_kick(): last_error holds still */
        snprintf(out->error, sizeof(out->error), "%s", s->last_error);
        s->writable = false;
        s->retry = b;
        s->retry_at_ms = 0;
    }
    return true;
}

bool store_reap(struct store *s, uint64_t *epoch, bool *ok)
{
    struct store_reaped r;
    if (!store_reap_batch(s, &r))
        return false;
    *epoch = r.epoch;
    *ok = r.ok;
    return true;
}

int store_read_body(struct store *s, uint64_t id, struct blob **out)
{
    sqlite3_stmt *st = s->read_body;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? blob_new(sqlite3_column_blob(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0))
                            : NULL;
    sqlite3_reset(st);
    return *out ? 0 : -1;
}

/* ---- open, load, close ---- */

static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, err_len, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}


static int migrate(sqlite3 *db, char *err, size_t err_len)
{
    int64_t version = 0;
    if (schema_query_int(db, "PRAGMA user_version", &version) != 0) {
        snprintf(err, err_len, "cannot read the database: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (version > SCHEMA_VERSION) {
        snprintf(err, err_len,
                 "the database has schema version %lld, newer than this anvil knows (%d): "
                 "use a newer anvil",
                 (long long)version, SCHEMA_VERSION);
        return -1;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)v + 1);
        if (exec_sql(db, "BEGIN IMMEDIATE", err, err_len) != 0)
            return -1;
        if (exec_sql(db, schema_migrations[v], err, err_len) != 0 ||
            exec_sql(db, sql, err, err_len) != 0) {
            exec_sql(db, "ROLLBACK", err + strlen(err), 0);
            return -1;
        }
        if (exec_sql(db, "COMMIT", err, err_len) != 0)
            return -1;
    }
    return 0;
}

static int take_lock(struct store *s, const char *dir, char *err, size_t err_len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/anvil.lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->lock_fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, err_len, "data directory %s is in use by another anvil process", dir);
        return -1;
    }
    return 0;
}

struct store *store_open(const char *dir, enum store_durability dur, char *err, size_t err_len)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    s->event_fd = -1;
    s->writable = true;
    s->building.epoch = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    char path[4096];
    if (make_dirs(dir) != 0) {
        snprintf(err, err_len, "cannot create data directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (take_lock(s, dir, err, err_len) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/anvil.db", dir);
    /* NOMUTEX: each connection is used by one thread at a time (this one, the writer's
     * later; the reader by the loop), so SQLite's per-call locking would be pure cost. */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_len, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 1000); /* then the commit fails (503) and is retried */
    const char *sync = dur == STORE_FSYNC ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    /* auto_vacuum only takes effect on a database without tables: set it before the first
     * migration; it lets deletions give space back (incremental_vacuum after commits). The
     * WAL is cut back to 64 MiB after each checkpoint. */
    if (exec_sql(s->db, "PRAGMA auto_vacuum = INCREMENTAL", err, err_len) != 0 ||
        exec_sql(s->db, "PRAGMA journal_mode = WAL", err, err_len) != 0 ||
        exec_sql(s->db, sync, err, err_len) != 0 ||
        exec_sql(s->db, "PRAGMA journal_size_limit = 67108864", err, err_len) != 0 ||
        exec_sql(s->db, "PRAGMA cache_size = -32768", err, err_len) != 0) {
        char reason[256];
        snprintf(reason, sizeof(reason), "%s", err);
        snprintf(err, err_len, "cannot use %s: %s", path, reason);
        goto fail;
    }
    if (migrate(s->db, err, err_len) != 0)
        goto fail;
    int64_t page_size = 4096;
    schema_query_int(s->db, "PRAGMA page_size", &page_size);
    s->page_size = (uint64_t)page_size;
    snprintf(s->wal_path, sizeof(s->wal_path), "%s-wal", path);
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, err_len, "cannot prepare statement: %s", sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    if (sqlite3_open_v2(path, &s->reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(s->reader, "SELECT body FROM messages WHERE id = ?1", -1,
                           SQLITE_PREPARE_PERSISTENT, &s->read_body, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "cannot open %s for reading: %s", path,
                 s->reader ? sqlite3_errmsg(s->reader) : "out of memory");
        goto fail;
    }
    s->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->event_fd < 0) {
        snprintf(err, err_len, "eventfd: %s", strerror(errno));
        goto fail;
    }
    tend_space(s);
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        snprintf(err, err_len, "cannot start the writer thread");
        goto fail;
    }
    s->writer_started = true;
    return s;
fail:
    store_close(s);
    return NULL;
}

/* Reads a queue's subscribers into row (strings copied: the caller frees them). */
static int load_subscribers(struct store *s, struct store_queue_row *row)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name, url, headers FROM subscribers WHERE queue = ?1"
                                  " ORDER BY position", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, row->key);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_subscriber *grown =
            realloc(row->subscribers, (row->n_subscribers + 1) * sizeof(*grown));
        if (!grown)
            break;
        row->subscribers = grown;
        struct store_subscriber *sub = &grown[row->n_subscribers++];
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        const void *headers = sqlite3_column_blob(st, 2);
        sub->name = strdup((const char *)sqlite3_column_text(st, 0));
        sub->url = strdup((const char *)sqlite3_column_text(st, 1));
        sub->headers = malloc(len ? len : 1);
        sub->headers_len = len;
        if (!sub->name || !sub->url || !sub->headers)
            break;
        if (len)
            memcpy(sub->headers, headers, len);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void free_loaded_subscribers(struct store_queue_row *row)
{
    for (uint32_t i = 0; i < row->n_subscribers; i++) {
        free(row->subscribers[i].name);
        free(row->subscribers[i].url);
        free(row->subscribers[i].headers);
    }
    free(row->subscribers);
    row->subscribers = NULL;
    row->n_subscribers = 0;
}

int store_load(struct store *s, const struct store_load_cb *cb, uint64_t *last_message_id,
               char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_OK;
    int64_t meta_last = 0;
    if (schema_query_int(s->db, "SELECT value FROM meta WHERE key = 'last_message_id'", &meta_last) != 0)
        goto sql_fail;
    *last_message_id = (uint64_t)meta_last;

    const char *queues_sql =
        "SELECT key, project, name, id, created_at, type, message_timeout, message_expiration,"
        " dead_letter_queue, dead_letter_max, total_messages, push_retries, push_retries_delay,"
        " error_queue, attributes FROM queues ORDER BY key";
    if (sqlite3_prepare_v2(s->db, queues_sql, -1, &st, NULL) != SQLITE_OK)
        goto sql_fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_queue_row row = {
            .key = (uint32_t)sqlite3_column_int64(st, 0),
            .project = (char *)sqlite3_column_text(st, 1),
            .name = (char *)sqlite3_column_text(st, 2),
            .created_at_ms = sqlite3_column_int64(st, 4),
            .type = sqlite3_column_int(st, 5),
            .message_timeout_s = (uint32_t)sqlite3_column_int64(st, 6),
            .message_expiration_s = (uint32_t)sqlite3_column_int64(st, 7),
            .dead_letter_queue = (char *)sqlite3_column_text(st, 8),
            .dead_letter_max = (uint32_t)sqlite3_column_int64(st, 9),
            .total_messages = (uint64_t)sqlite3_column_int64(st, 10),
            .push_retries = (uint32_t)sqlite3_column_int64(st, 11),
            .push_retries_delay_s = (uint32_t)sqlite3_column_int64(st, 12),
            .error_queue = (char *)sqlite3_column_text(st, 13),
            .attributes = (void *)sqlite3_column_blob(st, 14),
            .attributes_len = (size_t)sqlite3_column_bytes(st, 14),
        };
        const char *id = (const char *)sqlite3_column_text(st, 3);
        snprintf(row.id, sizeof(row.id), "%s", id ? id : "");
        int loaded = load_subscribers(s, &row);
        int taken = loaded == 0 && row.project && row.name ? cb->queue(cb->ctx, &row) : -1;
        free_loaded_subscribers(&row);
        if (taken != 0) {
            snprintf(err, err_len, "cannot restore queue %lld", (long long)row.key);
            goto fail;
        }
    }
    if (rc != SQLITE_DONE)
        goto sql_fail;
    sqlite3_finalize(st);

    int64_t count = 0;
    if (schema_query_int(s->db, "SELECT count(*) FROM messages", &count) != 0)
        goto sql_fail;
    if (cb->expect)
        cb->expect(cb->ctx, (uint64_t)count);
    const char *msgs_sql = "SELECT id, queue, body, created_at, visible_at, expires_at,"
                           " reserved_count, push_headers, attributes FROM messages ORDER BY id";
    if (sqlite3_prepare_v2(s->db, msgs_sql, -1, &st, NULL) != SQLITE_OK)
        goto sql_fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_msg_row row = {
            .id = (uint64_t)sqlite3_column_int64(st, 0),
            .queue_key = (uint32_t)sqlite3_column_int64(st, 1),
            .body = sqlite3_column_blob(st, 2),
            .body_len = (size_t)sqlite3_column_bytes(st, 2),
            .created_at_ms = sqlite3_column_int64(st, 3),
            .visible_at_ms = sqlite3_column_int64(st, 4),
            .expires_at_ms = sqlite3_column_int64(st, 5),
            .reserved_count = (uint32_t)sqlite3_column_int64(st, 6),
            .push_headers = sqlite3_column_blob(st, 7),
            .push_headers_len = (size_t)sqlite3_column_bytes(st, 7),
            .attributes = sqlite3_column_blob(st, 8),
            .attributes_len = (size_t)sqlite3_column_bytes(st, 8),
        };
        if (row.id > *last_message_id)
            *last_message_id = row.id;
        if (cb->message(cb->ctx, &row) != 0) {
            snprintf(err, err_len, "out of memory restoring message %llu",
                     (unsigned long long)row.id);
            goto fail;
        }
    }
    if (rc != SQLITE_DONE)
        goto sql_fail;
    sqlite3_finalize(st);
    return 0;
sql_fail:
    snprintf(err, err_len, "cannot read the database: %s", sqlite3_errmsg(s->db));
fail:
    sqlite3_finalize(st);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
        uint64_t epoch;
        bool ok;
        (void)store_reap(s, &epoch, &ok);
        /* What was never committed is tried once more here, in order. */
        size_t skipped;
        uint64_t commit_us;
        bool retried = !s->retry || apply_batch(s, s->retry, &skipped, &commit_us);
        if (!retried || (s->building.n && !apply_batch(s, &s->building, &skipped, &commit_us)))
            fprintf(stderr, "anvil: final commit failed: %s\n", s->last_error);
    }
    if (s->retry) {
        release_records(s->retry->recs, s->retry->n);
        free(s->retry->recs);
        free(s->retry);
    }
    release_records(s->building.recs, s->building.n);
    free(s->building.recs);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_finalize(s->read_body);
    if (s->reader)
        sqlite3_close(s->reader);
    if (s->db)
        sqlite3_close(s->db);
    if (s->event_fd >= 0)
        close(s->event_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
