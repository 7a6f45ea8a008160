/* engine/engine.h — the one interface between the fronts (api/, later SQS and push
 * delivery) and queue state. Every operation is asynchronous: the caller passes a
 * `struct eng_op` it owns, and the engine calls op->done exactly once, either before the
 * call returns or later (after the group commit that makes the change durable, or when a
 * long-poll waiter is served), unless the caller cancels it first with eng_cancel().
 * done() may free the op or start another call with it: the result is no longer in it.
 * Nothing above this header may assume where state lives: the embedded back end keeps it
 * in memory with a SQLite journal; a PostgreSQL back end can implement the same calls.
 * Names (project, queue) are borrowed for the duration of a call only. */
#ifndef ANVIL_ENGINE_H
#define ANVIL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "hist.h"
#include "ids.h"
#include "list.h"
#include "timerwheel.h"

enum eng_status {
    ENG_OK = 0,
    ENG_QUEUE_NOT_FOUND,
    ENG_MESSAGE_NOT_FOUND,
    ENG_RESERVATION_MISMATCH,  /* expired, released, or never this reservation */
    ENG_RESERVATION_REQUIRED,  /* touch/release without a reservation id */
    ENG_TYPE_IMMUTABLE,        /* a queue's type is fixed at creation */
    ENG_PUSH_UNSUPPORTED,      /* no pusher is attached to deliver to subscribers */
    ENG_NOT_PUSH_QUEUE,        /* subscriber calls on a pull queue */
    ENG_PUSH_ON_PULL,          /* a push section (subscribers...) for a pull queue */
    ENG_NO_SUBSCRIBERS,        /* a push queue needs at least one subscriber */
    ENG_DEAD_LETTER_ON_PUSH,   /* dead letters are for pull queues only */
    ENG_ERROR_QUEUE_SELF,      /* a push queue cannot be its own error queue */
    ENG_TOO_MANY_SUBSCRIBERS,
    ENG_PUSH_LOOP,             /* queue subscribers would send messages round in a circle */
    ENG_DEAD_LETTER_SELF,      /* a queue cannot be its own dead-letter queue */
    ENG_DEAD_LETTER_CYCLE,     /* dead-letter queues would form a loop */
    ENG_DEAD_LETTER_NAME,      /* dead_letter given without a queue name to use */
    ENG_NO_MEMORY,
    ENG_MEMORY_BUDGET,         /* the messages' memory budget is spent: consume some first */
    ENG_STORAGE_UNAVAILABLE,   /* the journal cannot commit now: try again */
    ENG_SHUTTING_DOWN,
    ENG_BACKEND_UNSUPPORTED,   /* this back end cannot do that (the test kit's full peek, reset,
                                * snapshots and fixtures on PostgreSQL) */
    ENG_ID_TAKEN,              /* import: a message id is in use outside the projects replaced */
    ENG_ID_REPEATED,           /* import: two messages of a fixture have the same id */
    ENG_NAME_REPEATED,         /* import: a fixture names a project, or a project a queue, twice */
    ENG_FIXTURE_INVALID,       /* import: a project or queue without a name, a message without a body */
    ENG_STATUS_COUNT
};

enum queue_type { QUEUE_PULL = 0, QUEUE_UNICAST, QUEUE_MULTICAST };

enum durability { DURABILITY_FSYNC = 0, DURABILITY_NORMAL, DURABILITY_MEMORY };

/* Defaults and limits of the hosted service (wire contract §2, §3). */
enum {
    QUEUE_DEFAULT_TIMEOUT_S = 60,
    QUEUE_DEFAULT_EXPIRATION_S = 604800,
    DEAD_LETTER_DEFAULT_MAX = 10,
    PUSH_RETRIES_DEFAULT = 3,
    PUSH_RETRIES_MAX = 100,
    PUSH_RETRIES_DELAY_DEFAULT_S = 60,
    PUSH_RETRIES_DELAY_MIN_S = 3,
    PUSH_RETRIES_DELAY_MAX_S = 86400,
    PUSH_SUBSCRIBERS_MAX = 64, /* anvil's limit (the hosted one is not documented) */
};

/* A push subscriber. In a config the strings are the caller's; in a result or in the
 * engine they are owned. */
struct eng_header {
    char *name, *value;
};

struct eng_subscriber {
    char *name;
    char *url;
    struct eng_header *headers;
    uint32_t n_headers;
};

/* The push section of a create or update (wire contract §2): only what has_ marks is set. */
struct eng_push_config {
    bool has_subscribers, has_retries, has_retries_delay, has_error_queue;
    const struct eng_subscriber *subscribers;
    uint32_t n_subscribers;
    uint32_t retries, retries_delay_s;
    const char *error_queue; /* "" removes it */
};

/* What a push queue reports (owned by the result). */
struct eng_push_info {
    struct eng_subscriber *subscribers;
    uint32_t n_subscribers;
    uint32_t retries, retries_delay_s;
    char *error_queue; /* NULL when none */
};

enum eng_subscriber_edit { SUBSCRIBERS_ADD, SUBSCRIBERS_REPLACE, SUBSCRIBERS_REMOVE };

/* A create or update: only the fields whose has_ flag is set are applied. */
struct eng_queue_config {
    bool has_type, has_message_timeout, has_message_expiration;
    bool has_dead_letter_queue, has_dead_letter_max;
    bool has_push; /* a push section was given */
    struct eng_push_config push;
    enum queue_type type;
    uint32_t message_timeout_s;
    uint32_t message_expiration_s;
    const char *dead_letter_queue; /* "" removes the dead-letter setting */
    uint32_t dead_letter_max;
    /* A front's own settings for the queue (the SQS front's attributes such as
     * DelaySeconds), opaque to the engine: stored and handed back whole. Length 0: none. */
    bool has_attributes;
    const void *attributes;
    size_t attributes_len;
};

/* In a result, the strings are owned by the result (freed after done() returns). */
struct eng_queue_info {
    char *project, *name;
    char id[QUEUE_ID_HEX + 1];
    enum queue_type type;
    uint32_t message_timeout_s, message_expiration_s;
    char *dead_letter_queue; /* NULL when none */
    uint32_t dead_letter_max;
    uint64_t total_messages;
    uint64_t ready, delayed, reserved; /* size = ready + delayed + reserved + pushing */
    uint64_t pushing;                  /* push queues: messages not yet delivered */
    int64_t next_visible_at_ms;        /* eng_inspect only: the soonest a delayed or reserved
                                        * message becomes ready (0: none) */
    int64_t created_at_ms;
    struct eng_push_info push; /* unicast and multicast queues */
    struct blob *attributes;   /* a reference owned by the result, or NULL (see config) */
};

struct eng_message {
    uint64_t id;
    struct blob *body; /* a reference owned by the result */
    uint32_t reserved_count;
    bool has_reservation;
    char reservation_id[RESERVATION_ID_HEX + 1];
    int64_t created_at_ms;
    int64_t first_reserved_at_ms; /* 0: unknown (not reserved since this server started) */
    struct blob *attributes; /* a reference owned by the result, or NULL (see eng_post_msg) */
    /* eng_inspect only (the test kit's full peek): */
    uint8_t state;             /* enum eng_msg_state */
    int64_t due_at_ms;         /* delayed: visible at; reserved: the reservation's end;
                                * pushing: the next send or a 202's deadline; 0: none */
    int64_t expires_at_ms;
    struct blob *push_headers; /* name\0value\0 pairs, a reference owned by the result, or NULL */
};

enum eng_msg_state { ENG_MSG_READY = 0, ENG_MSG_DELAYED, ENG_MSG_RESERVED, ENG_MSG_PUSHING };

/* One subscriber's push status for a message (wire contract §4). */
struct eng_push_status {
    char *name, *url;
    int status_code;        /* the last answer; 0 before any; -1 no answer */
    uint32_t tries, retries_remaining;
    int64_t last_try_at_ms; /* 0 before any */
    const char *word;       /* queued, retrying, sending, reserved, deleted, error */
    char reservation_id[RESERVATION_ID_HEX + 1];
};

/* Where an import failed: indexes into the fixture (message: SIZE_MAX when about the queue,
 * queue: SIZE_MAX when about the project). */
struct eng_fixture_where {
    size_t project, queue, message;
    uint64_t id; /* ENG_ID_TAKEN, ENG_ID_REPEATED: the id */
};

struct eng_result {
    enum eng_status status;
    struct eng_push_status *statuses; /* push statuses */
    size_t n_statuses;
    size_t failed_index;         /* delete_many: which entry failed */
    bool has_queue;
    struct eng_queue_info queue; /* queue get/put/patch */
    struct eng_message *messages; /* reserve, peek, get */
    size_t n_messages;
    uint64_t *ids; /* post: new ids in request order */
    size_t n_ids;
    char **names; /* list: queue names in order */
    size_t n_names;
    char reservation_id[RESERVATION_ID_HEX + 1]; /* touch: the new reservation */
    struct eng_fixture_where where; /* import: what a failure is about */
};

struct eng_op;
typedef void (*eng_done_fn)(struct eng_op *op, const struct eng_result *res);

/* Owned by the caller, who must keep it alive until done() runs or eng_cancel() returns.
 * The result passed to done() is valid only during the call. */
struct eng_op {
    eng_done_fn done;
    void *ctx;
    /* private to the engine */
    struct list_node link;   /* long-poll waiter list, or the commit wait list */
    struct tw_node timer;    /* long-poll deadline */
    struct queue *waiting_on;
    uint64_t wait_epoch;
    uint32_t want_n, timeout_s;
    bool delete_on_reserve, exact_timeout;
    bool in_flight;
    struct eng_result res;
};

struct eng_post_msg {
    const char *body;
    size_t body_len;
    uint32_t delay_s;
    char *push_headers;      /* name\0value\0 pairs sent to push subscribers, or NULL */
    size_t push_headers_len;
    /* A front's own message attributes (the SQS front's MessageAttributes), opaque to the
     * engine: stored with the message and handed back with it. NULL: none. */
    const char *attributes;
    size_t attributes_len;
};

struct eng_reserve_args {
    uint32_t n;         /* 1..100 */
    uint32_t timeout_s; /* 0: the queue's message_timeout, unless exact_timeout */
    bool exact_timeout; /* timeout_s as given, 0 too: handed out and visible again at once */
    uint32_t wait_s;    /* 0: answer at once */
    bool delete_msgs;
};

struct eng_delete_item {
    uint64_t id;
    const char *reservation_id; /* NULL or "" when none given */
};

struct eng_options {
    const char *data_dir;        /* ignored with DURABILITY_MEMORY */
    enum durability durability;
    int64_t now_ms;              /* the clock's reading at start */
    uint64_t seed;               /* for reservation and queue ids */
    /* Bytes the messages may take in memory (0: no limit). Past it, new bodies are kept in
     * the database only and read back when needed; when even the per-message index does not
     * fit, posts are refused (ENG_MEMORY_BUDGET). In memory mode every body must fit. */
    uint64_t memory_budget;
    /* NULL: the embedded back end. A postgres:// URL (libpq conninfo): the PostgreSQL back
     * end, whose state is in that database (docs/scale-out.md; a first cut). */
    const char *backend_url;
};

struct eng_stats {
    uint64_t projects, queues, messages;
    uint64_t commits, commit_failures;
    bool storage_ok;
    uint64_t memory_budget;     /* 0: none */
    uint64_t index_bytes;       /* what the messages take in memory without their bodies */
    uint64_t body_bytes;        /* bodies held in memory */
    uint64_t cold_messages;     /* messages whose body is only in the database */
    uint64_t body_reads;        /* bodies read back from the database so far */
    uint64_t live_body_bytes;   /* the bodies of every message in every queue */
    uint64_t db_bytes, db_free_bytes, wal_bytes; /* on disk (0 in memory mode) */
    uint64_t commit_records, commit_skipped, commit_total_us, commit_max_us; /* the writer's work */
};

struct engine;

/* Opens (and recovers) the engine. On failure returns NULL and writes a reason to err. */
struct engine *eng_open(const struct eng_options *opt, char *err, size_t err_len);
/* Finishes every waiter with an empty answer, commits what is pending, frees everything. */
void eng_close(struct engine *e);

/* Event-loop integration: the loop sets the time, watches the fd, and flushes each turn. */
void eng_set_time(struct engine *e, int64_t now_ms); /* fires due timers */
int64_t eng_next_deadline(const struct engine *e);  /* INT64_MAX when nothing is due */
/* The engine's time: the last eng_set_time() (virtual in test mode). Fronts that stamp
 * times of their own (SQS LastModifiedTimestamp) use it rather than a clock. */
int64_t eng_now_ms(const struct engine *e);
/* Moves the time on to target_ms as if that time had passed: every deadline on the way
 * fires at its own time, in order (a virtual clock's advance; see vclock.h). */
void eng_advance_to(struct engine *e, int64_t target_ms);
/* False when the back end keeps time itself (PostgreSQL: the database's now()), so the
 * engine's time cannot be frozen or advanced. */
bool eng_clock_settable(const struct engine *e);
int eng_poll_fd(const struct engine *e);            /* -1 when there is nothing to watch */
void eng_on_readable(struct engine *e);             /* a commit finished */
void eng_flush(struct engine *e);                   /* end of a loop turn: start a commit */
/* Answers every long-poll waiter now (with what is ready, else empty): for shutdown. */
void eng_wake_all_waiters(struct engine *e);
bool eng_idle(const struct engine *e);              /* no commit in flight or pending */
void eng_stats(const struct engine *e, struct eng_stats *out);

/* One finished group commit of the embedded back end's journal (the server logs slow and
 * failed ones). The engine reads no clock: the duration is the storage writer's. */
struct eng_commit {
    uint64_t epoch;
    uint64_t records;
    uint64_t duration_us; /* the whole transaction, fsync included */
    bool ok;              /* false: it failed and will be retried */
    const char *error;    /* !ok: why; borrowed for the call */
};
/* Called on the loop thread, inside eng_on_readable(), once per finished commit; it must not
 * call the engine. NULL turns it off. The PostgreSQL back end has no group commits. */
typedef void (*eng_commit_fn)(void *ctx, const struct eng_commit *c);
void eng_set_commit_observer(struct engine *e, eng_commit_fn fn, void *ctx);

void eng_cancel(struct engine *e, struct eng_op *op);

/* The test kit's storage faults (docs/testing-with-anvil.md): the next n calls that would
 * change state (queue put, patch, delete, subscribers, post, reserve, delete, delete_many,
 * clear, touch, release, change_visibility) answer ENG_STORAGE_UNAVAILABLE at once,
 * before the back end sees them, so nothing changes. Reads, timers and push answers are
 * not counted. n replaces what was left; 0 ends it. Both back ends. */
void eng_fail_next_writes(struct engine *e, uint64_t n);
uint64_t eng_writes_to_fail(const struct engine *e); /* how many are left */

void eng_queue_list(struct engine *e, struct eng_op *op, const char *project,
                    const char *prefix, const char *previous, uint32_t per_page);
void eng_queue_get(struct engine *e, struct eng_op *op, const char *project, const char *name);
/* Creates the queue, or updates it when it exists (PUT). */
void eng_queue_put(struct engine *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg);
/* Updates an existing queue (PATCH). */
void eng_queue_patch(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg);
void eng_queue_delete(struct engine *e, struct eng_op *op, const char *project, const char *name);
/* The subscribers calls of a push queue: add or update by name, replace all, remove by name
 * (only names are read; unknown names are ignored). A push queue keeps at least one. */
void eng_subscribers(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n);

/* Posts messages, creating the queue when it does not exist. */
void eng_post(struct engine *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n);
/* The same, but ENG_QUEUE_NOT_FOUND when the queue does not exist (SQS SendMessage). */
void eng_post_existing(struct engine *e, struct eng_op *op, const char *project,
                       const char *name, const struct eng_post_msg *msgs, size_t n);
void eng_reserve(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args);
void eng_peek(struct engine *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n);
void eng_get(struct engine *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id);
/* On a push queue, reservation_id and subscriber_name acknowledge a subscriber's 202. */
void eng_delete(struct engine *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name);
/* All or nothing: when any entry fails nothing is deleted and failed_index names it. */
void eng_delete_many(struct engine *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n);
void eng_clear(struct engine *e, struct eng_op *op, const char *project, const char *name);
void eng_touch(struct engine *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s);
void eng_release(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s);
/* SQS ChangeMessageVisibility: the reservation now ends timeout_s from now (0: the message
 * is visible again at once), keeping its reservation id and not counting as a reserve. */
void eng_change_visibility(struct engine *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s);

/* Push delivery. The engine decides what is due and keeps each message's delivery state;
 * a pusher (server/pusher.c) sends the requests and reports the answers. Without one,
 * posting to a push queue answers ENG_PUSH_UNSUPPORTED. */
struct eng_push_request {
    uint64_t msg_id;
    uint32_t subscriber, try_no, slot;    /* identify the answer: pass all four back */
    const char *project, *queue;          /* borrowed for the call */
    const struct eng_subscriber *sub;     /* borrowed for the call */
    struct blob *body;                    /* borrowed: the pusher takes its own reference */
    const char *reservation_id;           /* hex */
    struct blob *push_headers;            /* borrowed: the message's name\0value\0 pairs, or NULL */
};

/* A message no subscriber (unicast) or not every subscriber (multicast) took, after its
 * last retry: the pusher posts the contract's error message to error_queue. */
struct eng_push_failure {
    const char *project, *queue, *error_queue;
    uint64_t msg_id;
    struct blob *body;                    /* borrowed */
    const struct eng_push_status *subs;   /* borrowed */
    size_t n_subs;
};

struct eng_pusher {
    void (*send)(void *ctx, const struct eng_push_request *req);
    void (*failed)(void *ctx, const struct eng_push_failure *f);
    void *ctx;
    uint32_t max_in_flight;               /* requests out at once, over all subscribers */
    uint32_t max_per_subscriber;          /* requests out at once to one subscriber */
    uint32_t timeout_ms;                  /* a request's longest time (0: 10 s); the PostgreSQL
                                           * back end's claim on a delivery outlasts it */
};

void eng_set_pusher(struct engine *e, const struct eng_pusher *pusher);

/* One request a pusher made (or was told not to make), as it reports it to whoever watches
 * it (server/pusher.h's hooks: the test kit's push log and failing subscribers). The engine
 * never sees one; it lives here because both sides of that hook (server/ and api/) build on
 * engine.h. The strings are borrowed for the call. */
struct eng_push_attempt {
    const char *project, *queue, *subscriber, *url;
    uint64_t msg_id;
    uint32_t try_no;          /* 1 for a subscriber's first try */
    int64_t sent_at_ms;       /* whatever the watcher set before the request went out */
    int status;               /* the answer: an HTTP status, or -1 when none came */
    const char *error;        /* with -1: why (libcurl's text, or the watcher's) */
    bool timed_out;           /* with -1: push_timeout (or the connect timeout) ran out */
    bool faked;               /* the watcher answered in its place: nothing was sent */
    int64_t latency_us;       /* from sending to the answer (0 when faked) */
};
/* The answer to a request: an HTTP status, or -1 when none came (error, timeout). */
void eng_push_answer(struct engine *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status);
void eng_push_statuses(struct engine *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id);

/* ---- fixtures: a project's whole state (the test kit's reset, snapshots, fixture files) ----
 * A fixture owns everything in it (strings, blob references) and is freed with
 * eng_fixture_free(). An export fills one with absolute times, so an import of it gives back
 * exactly that state; a hand-written one may leave ids and times out (see each field). */

enum eng_fixture_state { FIXTURE_READY = 0, FIXTURE_DELAYED, FIXTURE_RESERVED };

struct eng_fixture_message {
    uint64_t id;                  /* 0: a new id, given in fixture order */
    struct blob *body;            /* a reference owned by the fixture */
    enum eng_fixture_state state; /* push queues: ignored, delivery starts over */
    uint32_t reserved_count;
    bool has_reservation_id;      /* reserved: this id, else a new one */
    uint8_t reservation[RESERVATION_ID_BYTES];
    /* Delayed: when it becomes ready; reserved: when its reservation ends. 0: visible_in_ms
     * from now (reserved with neither: the queue's message_timeout from now). */
    int64_t visible_at_ms, visible_in_ms;
    int64_t created_at_ms;        /* 0: now */
    int64_t expires_at_ms;        /* 0: expires_in_ms from now, else message_expiration after created_at */
    int64_t expires_in_ms;
    int64_t first_reserved_at_ms; /* 0: unknown */
    bool ready_at_front;          /* delayed by a release: goes to the front when it is due */
    struct blob *push_headers;    /* name\0value\0 pairs for push subscribers, or NULL */
    struct blob *attributes;      /* a front's message attributes (eng_post_msg), or NULL */
};

struct eng_fixture_queue {
    /* Settings as a queue reports them (owned). On import the counts and project are not
     * read; id "" is a new one, created_at_ms 0 is now, total_messages 0 the messages'
     * number; dead_letter_queue NULL and push.error_queue NULL are none. */
    struct eng_queue_info info;
    struct eng_fixture_message *messages; /* ready ones in queue order, then the others */
    size_t n_messages;
};

struct eng_fixture_project {
    char *name;
    struct eng_fixture_queue *queues; /* in name order after an export */
    size_t n_queues;
};

struct eng_fixture {
    struct eng_fixture_project *projects;
    size_t n_projects;
};

/* Frees what fx holds (not fx itself) and empties it. */
void eng_fixture_free(struct eng_fixture *fx);
/* Messages in all of fx's projects. */
size_t eng_fixture_messages(const struct eng_fixture *fx);

/* Can this back end wipe, export and import (the embedded one can; PostgreSQL: not yet)? */
bool eng_has_fixtures(const struct engine *e);
/* Deletes every queue of project (NULL: of every project) with all its messages and
 * reservations; long polls on them get an empty answer. Journalled like queue deletes. */
void eng_wipe(struct engine *e, struct eng_op *op, const char *project);
/* Fills *out (owned by the caller, empty, kept alive until done() or eng_cancel()) with
 * project's state: one fixture project, with no queues when the project has none. */
void eng_export(struct engine *e, struct eng_op *op, const char *project, struct eng_fixture *out);
/* Every project fx names is wiped and then holds exactly fx's content; other projects are
 * untouched. All or nothing: the whole fixture is checked first (queue settings by the
 * rules of a create, dead-letter and push loops, message ids), and on failure res.where
 * says which project, queue and message. fx is borrowed for the call only. */
void eng_import(struct engine *e, struct eng_op *op, const struct eng_fixture *fx);
/* The test kit's full peek: up to n messages of the queue in every state (states: a mask of
 * 1 << enum eng_msg_state, 0 for all) in the order a reserve would hand them out (ready
 * ones in queue order, then delayed and reserved ones by the time they become ready, then
 * pushing ones), with the queue's counts in res->queue. Changes nothing (a cold body is
 * read from disk). ENG_BACKEND_UNSUPPORTED on PostgreSQL. */
void eng_inspect(struct engine *e, struct eng_op *op, const char *project, const char *name,
                 uint32_t n, unsigned states);

/* What the embedded engine does, as it does it (the test kit's event stream). */
enum eng_event_type {
    ENG_EV_POST = 0,
    ENG_EV_RESERVE,
    ENG_EV_DELETE,     /* by a client, a reserve with delete, or a finished push delivery */
    ENG_EV_RELEASE,
    ENG_EV_TOUCH,
    ENG_EV_VISIBILITY, /* SQS ChangeMessageVisibility */
    ENG_EV_TIMEOUT,    /* a reservation ran out: ready again, at the front */
    ENG_EV_VISIBLE,    /* a delay ran out: ready */
    ENG_EV_DEAD_LETTER,
    ENG_EV_EXPIRE,
    ENG_EV_CLEAR,      /* a queue's messages all went at once (clear, queue delete) */
    ENG_EV_COUNT
};

/* Strings are borrowed for the observer's call. */
struct eng_event {
    enum eng_event_type type;
    const char *project, *queue;
    uint64_t msg_id;             /* 0: about the queue (clear) */
    uint32_t reserved_count;
    const char *reservation_id;  /* reserve, touch, visibility: the reservation now held;
                                  * timeout, release: the one that ended; NULL: none */
    int64_t at_ms;               /* the engine's time */
    int64_t until_ms;            /* reserve, touch, visibility: the reservation's end;
                                  * post, release: visible at (0: at once) */
    uint32_t delay_s;            /* post, release */
    const char *to_queue;        /* dead_letter: where the message went */
    uint64_t count;              /* clear: messages removed */
};

/* Called at each event, on the loop thread, in the middle of an engine call: it must not call
 * the engine. NULL turns it off (then an event costs one branch). The PostgreSQL back end
 * reports no events. */
typedef void (*eng_observer_fn)(void *ctx, const struct eng_event *ev);
void eng_set_observer(struct engine *e, eng_observer_fn fn, void *ctx);
const char *eng_event_name(enum eng_event_type t);

/* ---- metrics (api/metrics.c's GET /metrics) ---- */

/* One queue's depth. The names are borrowed: valid until the next engine call. */
struct eng_queue_depth {
    const char *project, *queue;
    uint64_t ready, delayed, reserved, pushing;
    uint64_t waiters; /* long polls waiting on it */
    uint64_t posted;  /* named queues only: its total_messages (the dashboard's in-rate) */
    enum queue_type type; /* named queues only */
};

struct eng_metrics {
    bool has_events;                /* false: the back end does not count them (PostgreSQL) */
    uint64_t events[ENG_EV_COUNT];  /* since start: messages each event happened to (clear:
                                     * messages removed, not calls) */
    bool has_depths;                /* false: no per-queue depths (PostgreSQL) */
    struct eng_queue_depth *queues; /* the first queue_limit by project, then name (owned) */
    size_t n_queues;
    struct eng_queue_depth rest;    /* the sum over every other queue (names NULL) */
    size_t rest_queues;             /* how many that is */
    uint64_t waiters;               /* long polls waiting, every queue */
    bool has_commits;               /* the embedded journal's group commits */
    struct hist batch_records, batch_us, commit_us; /* see storage/store.h */
};

/* Fills *out (freed with eng_metrics_free). 0, or -1 when out of memory. The walk over the
 * queues is O(queues + waiters): meant for a scrape every few seconds, not every request. */
int eng_metrics(const struct engine *e, size_t queue_limit, struct eng_metrics *out);
void eng_metrics_free(struct eng_metrics *m);

const char *eng_status_name(enum eng_status st);
const char *queue_type_name(enum queue_type t);

#endif
