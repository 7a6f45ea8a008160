/* engine/core.h — the embedded engine's private data structures, shared by its modules:
 * project.c (projects and queues), message.c (message operations), waiters.c (long poll),
 * embedded.c (lifecycle, clock, timers, journal and commit waits).
 * Everything here runs on the event-loop thread; nothing blocks, nothing reads a clock. */
#ifndef ANVIL_CORE_H
#define ANVIL_CORE_H

#include "backend.h"
#include "hmap.h"
#include "../storage/store.h"

enum msg_state { MSG_READY = 0, MSG_DELAYED, MSG_RESERVED, MSG_PUSHING };

enum timer_kind { TIMER_VISIBILITY = 1, TIMER_EXPIRY, TIMER_WAITER };

struct message {
    struct hnode by_id;          /* engine->messages */
    struct list_node link;       /* the queue's list for its state */
    struct tw_node visibility;  /* delayed: becomes ready; reserved: reservation ends;
                                   pushing: the next send or 202 deadline */
    struct tw_node expiry;
    struct queue *queue;
    struct blob *body;
    uint64_t id;
    uint64_t epoch;              /* the journal epoch that last wrote this message */
    int64_t created_at_ms;
    uint32_t reserved_count;
    uint32_t body_len;           /* also when the body is only in the database */
    uint8_t state;
    bool ready_at_front;         /* a delayed release goes to the front when it is due */
    uint32_t first_reserved_ms;  /* first reserve, ms after created_at (+1); 0: not since start */
    struct push_job *job;        /* pushing: its delivery and push headers (pushing.c) */
    struct blob *attributes;     /* a front's message attributes (eng_post_msg), or NULL */
    uint8_t reservation[RESERVATION_ID_BYTES];
};

struct queue {
    struct hnode by_name;        /* project->queues */
    struct project *project;
    char *name;
    size_t name_len;
    uint32_t key;                /* the storage key of this queue */
    char id[QUEUE_ID_HEX + 1];
    int64_t created_at_ms;
    enum queue_type type;
    uint32_t message_timeout_s;
    uint32_t message_expiration_s;
    char *dead_letter_queue;     /* NULL when none */
    uint32_t dead_letter_max;
    struct push_settings *push;  /* unicast and multicast queues; NULL on pull queues */
    uint64_t total_messages;
    struct list_node ready, delayed, reserved, pushing;
    uint64_t n_ready, n_delayed, n_reserved, n_pushing;
    uint32_t push_turn;          /* unicast: the subscriber the next message starts with */
    struct blob *attributes;     /* a front's settings (eng_queue_config), or NULL */
    struct list_node waiters;    /* long-poll ops, oldest first */
    struct list_node feed_link;  /* on engine->to_feed when it has ready messages and waiters */
    uint64_t epoch;              /* the journal epoch that last changed it */
};

struct project {
    struct hnode by_id;          /* engine->projects */
    char *id;
    size_t id_len;
    struct hmap queues;
    struct queue **sorted;       /* by name, for listing */
    size_t n_sorted, cap_sorted;
};

struct emb {
    struct engine base;          /* first: what engine.h's callers hold */
    int64_t now_ms;
    struct timerwheel wheel;
    struct hmap projects;
    struct hmap messages;
    struct idgen ids;
    uint64_t hash_seed;
    uint32_t next_queue_key;
    uint64_t n_queues;
    struct store *store;         /* NULL with DURABILITY_MEMORY */
    uint64_t journal_count;      /* records appended so far: did an op write? */
    struct list_node commit_wait[2]; /* ops waiting for epoch E, indexed by E & 1 */
    struct list_node completed;  /* ops whose done() runs before the public call returns */
    struct list_node to_feed;    /* queues whose waiters may now be served */
    int depth;                   /* nesting of public calls, to run completions once */
    struct list_node push_new;   /* push jobs of new posts, in post order (pushing.c) */
    struct list_node push_due;   /* push jobs with a send due */
    struct eng_pusher pusher;    /* zero: no pusher attached */
    uint32_t push_in_flight;
    uint16_t push_busy[4096];    /* requests out per subscriber, by hash of queue and name */
    struct list_node push_wait[4096]; /* jobs waiting for that subscriber to have room */
    bool pumping;                /* pushing_pump() runs: a nested call must not re-enter */
    bool shutting_down;          /* long polls answer at once */
    eng_observer_fn observer;    /* the test kit's event stream (inspect.c); NULL: off */
    void *observer_ctx;
    uint64_t events[ENG_EV_COUNT]; /* counted always, observer or not (GET /metrics) */
    uint64_t commits, commit_failures;
    /* memory accounting (see memory.c) */
    uint64_t memory_budget;
    uint64_t index_bytes, body_bytes, live_body_bytes;
    uint64_t cold_messages, body_reads;
    struct {                     /* ids of messages with bodies in memory, oldest first */
        uint64_t *ids;
        size_t head, count, cap;
    } resident;
};

/* The embedded back end's side of engine.h (engine/engine.c calls these). */
struct emb *emb_open(const struct eng_options *opt, char *err, size_t err_len);
void emb_close(struct emb *e);
void emb_set_time(struct emb *e, int64_t now_ms);
int64_t emb_next_deadline(const struct emb *e);
int emb_poll_fd(const struct emb *e);
void emb_on_readable(struct emb *e);
void emb_flush(struct emb *e);
void emb_wake_all_waiters(struct emb *e);
bool emb_idle(const struct emb *e);
void emb_stats(const struct emb *e, struct eng_stats *out);
void emb_cancel(struct emb *e, struct eng_op *op);
void emb_queue_list(struct emb *e, struct eng_op *op, const char *project,
                    const char *prefix, const char *previous, uint32_t per_page);
void emb_queue_get(struct emb *e, struct eng_op *op, const char *project, const char *name);
void emb_queue_put(struct emb *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg);
void emb_queue_patch(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg);
void emb_queue_delete(struct emb *e, struct eng_op *op, const char *project, const char *name);
void emb_subscribers(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n);
void emb_post(struct emb *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n);
void emb_post_existing(struct emb *e, struct eng_op *op, const char *project,
                       const char *name, const struct eng_post_msg *msgs, size_t n);
void emb_reserve(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args);
void emb_peek(struct emb *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n);
void emb_get(struct emb *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id);
void emb_delete(struct emb *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name);
void emb_delete_many(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n);
void emb_clear(struct emb *e, struct eng_op *op, const char *project, const char *name);
void emb_touch(struct emb *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s);
void emb_release(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s);
void emb_change_visibility(struct emb *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s);
void emb_set_pusher(struct emb *e, const struct eng_pusher *pusher);
void emb_push_answer(struct emb *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status);
void emb_push_statuses(struct emb *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id);
void emb_inspect(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 uint32_t n, unsigned states);
int emb_metrics(const struct emb *e, size_t queue_limit, struct eng_metrics *out);

/* inspect.c: the event stream's side. Callers test e->observer first (one branch when no
 * one watches); ev's project, queue, msg_id, reserved_count and at_ms come from m. */
void observe_message(struct emb *e, enum eng_event_type type, const struct message *m,
                     struct eng_event *ev);

/* embedded.c */
void eng_begin(struct emb *e);
void eng_end(struct emb *e);
/* Opens a public call for op: eng_begin() and a fresh result. Returns the journal mark
 * that eng_finish() compares against to tell whether the call wrote anything. */
uint64_t eng_start(struct emb *e, struct eng_op *op);
/* Finishes op: with records written since `journal_mark`, it waits for the building epoch;
 * otherwise for `read_epoch` (the newest state it read). */
void eng_finish(struct emb *e, struct eng_op *op, uint64_t journal_mark, uint64_t read_epoch);
void eng_fail(struct emb *e, struct eng_op *op, enum eng_status st);
/* Appends a journal record (no-op in memory mode); returns the epoch it joined. The op
 * being served then waits for that epoch before it is answered. */
uint64_t eng_journal(struct emb *e, const struct jrec *rec);
/* The same for a record the answer does not acknowledge: reserved_count increments of
 * reserve and touch, whose reservations are not durable anyway. It is committed with the
 * batch it joins, but the op does not wait for that (only for what it read). */
uint64_t eng_journal_lazy(struct emb *e, const struct jrec *rec);
bool eng_can_write(const struct emb *e);

/* project.c */
struct project *project_find(struct emb *e, const char *id);
struct queue *queue_find(struct emb *e, const char *project, const char *name);
/* The queue a change is about to be made to: ENG_QUEUE_NOT_FOUND, ENG_STORAGE_UNAVAILABLE
 * (the journal cannot commit now) or ENG_OK with *out set. */
enum eng_status queue_for_change(struct emb *e, const char *project, const char *name,
                                 struct queue **out);
/* Finds or creates a pull queue with defaults (journalled). NULL when out of memory. */
struct queue *queue_find_or_create(struct emb *e, const char *project, const char *name);
int queue_fill_info(const struct queue *q, struct eng_queue_info *info); /* -1: no memory */
/* A new queue with defaults, not journalled (queue_journal_put). NULL when out of memory. */
struct queue *queue_create(struct emb *e, const char *project, const char *name);
/* Frees a queue with everything in it (its messages' deletes journalled, not the queue's);
 * its waiters get an empty answer; the project goes with its last queue. */
void queue_destroy(struct emb *e, struct queue *q);
/* Applies a checked create or update to q. 0, or -1 out of memory. */
int queue_apply_config(struct queue *q, const struct eng_queue_config *cfg);
void queue_journal_put(struct emb *e, struct queue *q);
void queue_journal_total(struct emb *e, struct queue *q);
void projects_free_all(struct emb *e);
struct store_queue_row *queue_to_row(const struct queue *q);
struct queue *queue_restore(struct emb *e, const struct store_queue_row *row);

/* memory.c */
enum { MESSAGE_INDEX_BYTES = sizeof(struct message) + 32 }; /* allocation and hash slot */
size_t body_cost(size_t body_len);
/* May n new messages whose bodies cost body_costs in all be posted? */
enum eng_status memory_admit(const struct emb *e, size_t n, uint64_t body_costs);
/* Does a body of body_len still fit in memory (at recovery: load it or leave it on disk)? */
bool memory_keeps_body(const struct emb *e, size_t body_len);
/* Counts a new message (m->body set: its body is in memory, NULL: on disk only). */
void memory_track(struct emb *e, struct message *m);
void memory_untrack(struct emb *e, struct message *m);
/* Moves the newest durable bodies out of memory until the budget holds again. */
void memory_rebalance(struct emb *e);
/* A new reference to m's body, read from the database if it is not in memory. */
enum eng_status message_body(struct emb *e, struct message *m, struct blob **out);

/* message.c */
struct message *message_by_id(struct emb *e, uint64_t id);
struct message *message_find(struct emb *e, struct queue *q, uint64_t id);
void message_free(struct emb *e, struct message *m);
void message_unlink(struct emb *e, struct message *m);
/* Reserves up to n ready messages of q into res (dead-lettering as it goes). */
/* Reserves up to n ready messages of q into res (dead-lettering as it goes); *read_epoch
 * becomes the newest epoch among the messages handed out, as they were before this reserve. */
/* timeout_s 0 is the queue's message_timeout unless exact_timeout. */
enum eng_status message_reserve_into(struct emb *e, struct queue *q, uint32_t n,
                                     uint32_t timeout_s, bool exact_timeout, bool delete_msgs,
                                     struct eng_result *res, uint64_t *read_epoch);
void message_on_timer(struct emb *e, struct tw_node *t);
void queue_drop_messages(struct emb *e, struct queue *q);
/* Adds a message with this body (the caller keeps its reference) to q: journalled,
 * counted in total_messages (the caller journals the total). */
enum eng_status message_post(struct emb *e, struct queue *q, struct blob *body,
                             struct blob *push_headers, struct blob *attributes, uint32_t delay_s,
                             uint64_t *id);
/* A new message in the id index (not on a list yet), taking over the body reference;
 * created now. NULL when out of memory (the body reference is then not taken). */
struct message *message_new(struct emb *e, struct queue *q, struct blob *body, size_t body_len,
                            uint64_t id);
/* Puts m on q's list for state st, at the front or the back. */
void message_enter(struct message *m, enum msg_state st, bool front);
/* Places a new message: delayed until visible_at_ms, else ready at the back; on a push
 * queue, on its way to the subscribers. Arms its expiry. -1: out of memory. */
int message_place_new(struct emb *e, struct message *m, int64_t visible_at_ms,
                      int64_t expires_at_ms);
/* Copies m into a result (with its reservation id when asked), reading its body back from
 * the database if it is cold. */
enum eng_status message_fill(struct emb *e, struct eng_message *out, struct message *m,
                             bool with_reservation);
/* Deletes m for good: journal record, then gone from memory. */
void message_delete(struct emb *e, struct message *m);

/* pushing.c */
int pushing_start(struct emb *e, struct message *m, int64_t first_at_ms); /* -1: no memory */
void pushing_free_job(struct message *m);
/* The push_headers a pushing message was posted with (NULL when none, or not pushing). */
struct blob *pushing_headers(const struct message *m);
void pushing_set_headers(struct message *m, struct blob *headers); /* takes a reference */
void pushing_pump(struct emb *e);
void pushing_on_timer(struct emb *e, struct message *m);
enum eng_status pushing_acknowledge(struct emb *e, struct message *m, const char *rid,
                                    const char *subscriber_name);
/* Rebuilds a message from its row; NULL when it expired (journalled away) or, with *rc -1,
 * when memory ran out. The message is not in the id index yet: see message_index(). */
struct message *message_restore(struct emb *e, struct queue *q, const struct store_msg_row *row,
                                int *rc);
int message_index(struct emb *e, struct message *m);

/* fixture.c: the embedded side of eng_wipe, eng_export, eng_import */
void emb_wipe(struct emb *e, struct eng_op *op, const char *project);
void emb_export(struct emb *e, struct eng_op *op, const char *project, struct eng_fixture *out);
void emb_import(struct emb *e, struct eng_op *op, const struct eng_fixture *fx);

/* waiters.c */
void waiters_note_ready(struct emb *e, struct queue *q);
void waiters_feed(struct emb *e);
void waiters_add(struct emb *e, struct queue *q, struct eng_op *op, uint32_t wait_s);
void waiters_on_timer(struct emb *e, struct eng_op *op);
void waiters_finish_all(struct emb *e, struct queue *q);
void waiters_cancel(struct emb *e, struct eng_op *op);

#endif
