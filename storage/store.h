/* storage/store.h — the durable journal behind the embedded engine.
 * The engine appends change records to the batch being built; at the end of each loop
 * turn store_kick() hands that batch to a writer thread, which applies it to SQLite in
 * one transaction (group commit) while the loop builds the next. Completion is signalled
 * through an eventfd that the loop watches. Batches are numbered (epochs) and commit in
 * order, so "epoch E is durable" means every record appended before E closed is on disk.
 * Also: schema creation and migration, single-instance lock, and start-up recovery. */
#ifndef ANVIL_STORE_H
#define ANVIL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/blob.h"
#include "../engine/hist.h"

enum store_durability { STORE_FSYNC = 0, STORE_NORMAL };

enum jrec_type {
    JR_QUEUE_PUT = 1, /* insert or replace a queue row (row) */
    JR_QUEUE_DELETE,  /* delete a queue row (queue_key); its messages have their own records */
    JR_QUEUE_TOTAL,   /* total_messages of a queue (queue_key, count) */
    JR_MSG_PUT,       /* new message (msg_id, queue_key, body, created/visible/expires, count) */
    JR_MSG_UPDATE,    /* reserved_count and visible_at (msg_id, count, visible_at_ms) */
    JR_MSG_MOVE,      /* dead-lettered: new queue and expiry (msg_id, queue_key, expires_at_ms) */
    JR_MSG_DELETE,    /* (msg_id) */
};

/* A push subscriber as stored: headers are name\0value\0 pairs. */
struct store_subscriber {
    char *name, *url;
    char *headers;
    size_t headers_len;
};

struct store_queue_row {
    uint32_t key;
    char *project;
    char *name;
    char id[25];
    int64_t created_at_ms;
    int type;
    uint32_t message_timeout_s;
    uint32_t message_expiration_s;
    char *dead_letter_queue; /* NULL when none */
    uint32_t dead_letter_max;
    uint64_t total_messages;
    uint32_t push_retries, push_retries_delay_s; /* push queues */
    char *error_queue;                           /* NULL when none */
    struct store_subscriber *subscribers;        /* owned by the row */
    uint32_t n_subscribers;
    void *attributes;                            /* a front's own settings, or NULL */
    size_t attributes_len;
};

struct store_msg_row {
    uint64_t id;
    uint32_t queue_key;
    const void *body;
    size_t body_len;
    int64_t created_at_ms, visible_at_ms, expires_at_ms;
    uint32_t reserved_count;
    const void *push_headers; /* name\0value\0 pairs, push_headers_len bytes; NULL when none */
    size_t push_headers_len;
    const void *attributes;   /* a front's own message attributes; NULL when none */
    size_t attributes_len;
};

struct jrec {
    uint8_t type;
    uint32_t queue_key;
    uint64_t msg_id;
    uint64_t count;
    int64_t created_at_ms, visible_at_ms, expires_at_ms;
    struct blob *body;           /* JR_MSG_PUT: a reference the store releases */
    struct blob *push_headers;   /* JR_MSG_PUT: the same, or NULL */
    struct blob *attributes;     /* JR_MSG_PUT: the same, or NULL */
    struct store_queue_row *row; /* JR_QUEUE_PUT: owned by the store once appended */
};

struct store;

/* Commits so far: how many, how many records, how long (for /stats and the benchmark). */
struct store_commits {
    uint64_t count, records, skipped, total_us, max_us; /* skipped: records a later one made moot */
    struct hist batch_records; /* records per batch (hist_sizes) */
    struct hist batch_us;      /* a batch's whole transaction (hist_latency_us) */
    struct hist commit_us;     /* its COMMIT alone: where the WAL is fsynced (hist_latency_us) */
};

/* Space on disk, refreshed by the writer after each commit. */
struct store_space {
    uint64_t db_bytes;   /* the database file, pages in use and free */
    uint64_t free_bytes; /* free pages inside it (reused first; returned to the OS gradually) */
    uint64_t wal_bytes;  /* the write-ahead log */
};

struct store_load_cb {
    void *ctx;
    void (*expect)(void *ctx, uint64_t messages); /* how many message rows follow */
    int (*queue)(void *ctx, const struct store_queue_row *row);
    int (*message)(void *ctx, const struct store_msg_row *row);
};

/* Opens (creating or migrating) <dir>/anvil.db and takes the directory's lock.
 * NULL with a reason in err on failure. */
struct store *store_open(const char *dir, enum store_durability dur, char *err, size_t err_len);
/* Calls back for every queue, then every message in id order. Returns 0, or -1 with err. */
int store_load(struct store *s, const struct store_load_cb *cb, uint64_t *last_message_id,
               char *err, size_t err_len);
/* Commits everything pending, stops the writer, closes the database, drops the lock. */
void store_close(struct store *s);

/* Appends to the batch being built; takes over rec->body's reference and rec->row. */
int store_append(struct store *s, const struct jrec *rec);
uint64_t store_building_epoch(const struct store *s); /* the epoch new records join */
uint64_t store_durable_epoch(const struct store *s);  /* every epoch <= this is committed */
/* The first commit still to come that makes epoch durable: a failed batch waiting for its
 * retry, the batch being committed, or the one being built (epoch > durable epoch). */
uint64_t store_commit_for(const struct store *s, uint64_t epoch);
bool store_writable(const struct store *s);           /* false after a failed commit, until one succeeds */
bool store_idle(const struct store *s);               /* nothing in flight and nothing pending */
int store_event_fd(const struct store *s);
/* Starts committing the building batch if the writer is free and there is something to commit. */
void store_kick(struct store *s, int64_t now_ms);
/* After the event fd fired: reports a finished batch. Returns true and sets *epoch, *ok when
 * one finished. A failed batch's records are kept and retried after a back-off. */
bool store_reap(struct store *s, uint64_t *epoch, bool *ok);
/* The same, with what the batch was: its size, how long the writer took, and why it failed.
 * The store logs nothing: its caller reports failures (the server's log). */
struct store_reaped {
    uint64_t epoch, records, duration_us;
    bool ok;
    char error[256]; /* !ok: SQLite's reason */
};
bool store_reap_batch(struct store *s, struct store_reaped *out);
/* The earliest time store_kick() has work to retry (INT64_MAX when none). */
int64_t store_next_retry(const struct store *s);
void store_free_row(struct store_queue_row *row);
/* Reads a committed message's body (loop thread; its own read-only connection). */
int store_read_body(struct store *s, uint64_t id, struct blob **out);
void store_space(struct store *s, struct store_space *out);
void store_commits(struct store *s, struct store_commits *out);

#endif
