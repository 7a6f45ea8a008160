/* engine/pg_internal.h — what the PostgreSQL back end's files share (pg.c: connections,
 * statements, pull queues and long polls; pg_push.c: push delivery): the back end's
 * structure, its jobs (one statement each, run on a free connection of the pool) and the
 * helpers that build parameters and read results. Not an interface for anything else. */
#ifndef ANVIL_PG_INTERNAL_H
#define ANVIL_PG_INTERNAL_H

#include "backend.h"
#include "timerwheel.h"

#include <libpq-fe.h>
#include <pthread.h>

enum { PG_CONNS = 16, PG_SCHEMA_VERSION = 3, MAX_PARAMS = 4 * 100 + 8 };

struct pgb;
struct pg_job;
typedef void (*job_fn)(struct pgb *b, struct pg_job *j, PGresult *res);

struct pg_wait;
struct pg_change;

/* One call of a group sharing a statement: its op and how many messages are its own. */
struct pg_part {
    struct eng_op *op;        /* NULL: cancelled */
    uint32_t n;
};

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
    struct pg_change *change; /* a queue settings change (owned) */
    int step;                 /* for calls of several statements */
    bool again, retried;      /* on_result asks for the same statement once more */
    int key;                  /* prepared-statement key; 0: run unprepared */
    void *ctx;                /* the caller's, for jobs without an op */
    struct pg_part *parts;    /* posts grouped into this statement (op NULL then) */
    size_t n_parts;
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
    bool resetting;           /* a worker thread is reconnecting it: the loop keeps off */
    bool down;                /* the last reconnect failed: again when `retry` fires */
    struct tw_node retry;
    bool prepared[KEYS];
};

/* A reconnect done on a worker thread (PQreset blocks up to connect_timeout per host, and
 * libpq's multi-host failover only happens in its blocking connect): handed back to the
 * loop through an eventfd. conn < 0: the LISTEN connection. */
struct pg_reset {
    struct pgb *b;
    PGconn *c;
    int conn;
    struct pg_reset *next;
};

/* Push delivery on this node (pg_push.c). */
struct pgp {
    struct eng_pusher pusher;      /* .send NULL: this node delivers nothing */
    struct list_node claimed;      /* pgp_msg: the messages this node holds a claim on */
    struct list_node waiting;      /* pgp_msg: claimed, with sends due that the pusher had no room for */
    uint32_t in_flight;            /* requests out */
    uint32_t busy[4096];           /* requests out per subscriber slot */
    uint32_t n_claimed;
    uint32_t turns[1024];          /* unicast: the next subscriber, per queue (hashed) */
    bool claiming;                 /* a claim statement is out */
    bool again;                    /* something became due while it was out: claim once more */
    struct tw_node timer;          /* the next due time seen in the table */
    int64_t timer_at;              /* when it fires (INT64_MAX: not set) */
    bool closing;                  /* the back end closes: answers change nothing now */
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
    uint64_t posts, posts_grouped; /* post calls; those that shared another's statement */
    struct tw_node listener_retry; /* the LISTEN connection is down: when to try again */
    bool listener_resetting;
    int reset_efd;                 /* a worker finished a reconnect (in epfd) */
    pthread_mutex_t reset_lock;    /* guards resets_done */
    struct pg_reset *resets_done;
    int resets_out;                /* workers running */
    struct pgp push;
    char **notes;                  /* "project/queue" of posts to NOTIFY (after their commit) */
    size_t n_notes, cap_notes;
    bool notifying;                /* a NOTIFY statement is out */
    struct tw_node sweep;          /* the next sweep of expired messages */
    uint32_t sweeps;
    uint64_t projects, queues, messages; /* /stats: as of the last count (every 5 s) */
    bool shutting_down, broken;
};

enum { TIMER_DEADLINE = 1, TIMER_RETRY, TIMER_LISTENER, TIMER_PUSH, TIMER_SWEEP, TIMER_CONN };

/* A CTE named `counted` that takes the messages a CTE `gone` deleted (it returns their
 * queue) off their queues' sizes, in the row of this connection; queues deleted meanwhile
 * get no row. Every statement that deletes messages carries it (the post counts what it
 * adds); PG_UNPUSH removes the push rows of deleted push messages (`gone` returns id too). */
#define PG_COUNT_GONE                                                                         \
    " counted AS (INSERT INTO anvil_queue_totals AS t (queue, shard, n, size)"                \
    "  SELECT g.queue, mod(pg_backend_pid(), 64)::smallint, 0, -count(*) FROM gone g"          \
    "  WHERE EXISTS (SELECT 1 FROM anvil_queues x WHERE x.id = g.queue) GROUP BY g.queue"    \
    "  ON CONFLICT (queue, shard) DO UPDATE SET size = t.size + EXCLUDED.size)"
#define PG_UNPUSH                                                                             \
    " unpushed AS (DELETE FROM anvil_pushes WHERE message IN (SELECT id FROM gone))"

/* jobs */
struct pg_job *pg_job_new(const char *sql, job_fn fn, struct eng_op *op);
void pg_job_free(struct pg_job *j);
void pg_param(struct pg_job *j, const char *v, size_t len, bool binary); /* v NULL: SQL NULL */
void pg_param_text(struct pg_job *j, const char *v);
void pg_param_u64(struct pg_job *j, uint64_t v);
void pg_submit(struct pgb *b, struct pg_job *j);
/* A call's job with the queue as its first two parameters; NULL (op answered) when memory
 * ran out. pg_start marks the op in flight and submits. */
struct pg_job *pg_call_job(struct eng_op *op, const char *sql, job_fn fn, int step,
                           const char *project, const char *name);
void pg_start(struct pgb *b, struct pg_job *j);

void pg_change_free(struct pg_change *c);
char *pg_text_array(const char *const *items, size_t n); /* a text[] literal; NULL entries: NULL */

/* answers and results */
void pg_answer(struct eng_op *op, struct eng_result *res);
void pg_answer_status(struct eng_op *op, enum eng_status st);
enum eng_status pg_result_status(PGresult *res);
int64_t pg_col_i64(PGresult *r, int row, int col);
struct blob *pg_col_blob(PGresult *r, int row, int col);

/* pg_push.c */
void pgp_init(struct pgb *b);
void pgp_close(struct pgb *b);           /* first in pg_close: deliver nothing more */
void pgp_free_all(struct pgb *b);        /* last in pg_close */
void pgp_claim(struct pgb *b);           /* something may be due: look for it */
void pgp_on_timer(struct pgb *b);
void pgp_on_notify(struct pgb *b, const char *payload); /* "anvil_push": a due time (ms) */
int pgp_statement_key(const char *sql); /* its fixed statements' keys, or 0 */

#endif
