/* engine/message.c — messages and every operation on them: post, reserve (with dead
 * letters), peek, get, delete (one or many), clear, touch, release, and the two timers each
 * message carries (visibility: a delay or a reservation ending; expiry). Every message is
 * on exactly one of its queue's three lists (ready, delayed, reserved), so no operation
 * scans a queue: work per call depends on what it returns, not on queue depth.
 * IronMQ v3 puts timed-out and released messages at the front of the queue. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static bool id_eq(const struct hnode *node, const void *key)
{
    return list_entry(node, struct message, by_id)->id == *(const uint64_t *)key;
}

struct message *message_by_id(struct emb *e, uint64_t id)
{
    struct hnode *n = hmap_find(&e->messages, hash_u64(id), id_eq, &id);
    return n ? list_entry(n, struct message, by_id) : NULL;
}

struct message *message_find(struct emb *e, struct queue *q, uint64_t id)
{
    struct message *m = message_by_id(e, id);
    return m && m->queue == q ? m : NULL;
}

static struct list_node *list_for(struct queue *q, enum msg_state st)
{
    switch (st) {
    case MSG_READY:
        return &q->ready;
    case MSG_DELAYED:
        return &q->delayed;
    case MSG_RESERVED:
        return &q->reserved;
    default:
        return &q->pushing;
    }
}

static uint64_t *count_for(struct queue *q, enum msg_state st)
{
    switch (st) {
    case MSG_READY:
        return &q->n_ready;
    case MSG_DELAYED:
        return &q->n_delayed;
    case MSG_RESERVED:
        return &q->n_reserved;
    default:
        return &q->n_pushing;
    }
}

static void leave_list(struct message *m)
{
    list_remove(&m->link);
    (*count_for(m->queue, m->state))--;
}

void message_enter(struct message *m, enum msg_state st, bool front)
{
    m->state = (uint8_t)st;
    if (front)
        list_push_front(list_for(m->queue, st), &m->link);
    else
        list_push_back(list_for(m->queue, st), &m->link);
    (*count_for(m->queue, st))++;
}

static void move_to(struct message *m, enum msg_state st, bool front)
{
    leave_list(m);
    message_enter(m, st, front);
}

static bool reservation_matches(const struct message *m, const char *rid)
{
    uint8_t given[RESERVATION_ID_BYTES];
    return m->state == MSG_RESERVED && rid &&
           ids_unhex(rid, strlen(rid), given, sizeof(given)) &&
           memcmp(given, m->reservation, sizeof(given)) == 0;
}

static bool has_text(const char *s)
{
    return s && s[0];
}

void message_unlink(struct emb *e, struct message *m)
{
    memory_untrack(e, m);
    leave_list(m);
    tw_cancel(&e->wheel, &m->visibility);
    tw_cancel(&e->wheel, &m->expiry);
    hmap_remove(&e->messages, &m->by_id);
}

void message_free(struct emb *e, struct message *m)
{
    (void)e;
    pushing_free_job(m);
    blob_unref(m->body);
    blob_unref(m->attributes);
    free(m);
}

static void journal_delete(struct emb *e, struct message *m)
{
    struct jrec rec = {.type = JR_MSG_DELETE, .msg_id = m->id, .queue_key = m->queue->key};
    m->queue->epoch = eng_journal(e, &rec);
}

/* reserved_count and visible_at. A release with a delay waits for it; reserve and touch
 * (lazy) do not: their reservations are not durable, the count follows with its batch.
 * A lazy update leaves m->epoch alone: what must be durable before anyone is told about m
 * (its post, a move, a delayed release) is unchanged by it. */
static void journal_update(struct emb *e, struct message *m, int64_t visible_at_ms, bool lazy)
{
    struct jrec rec = {.type = JR_MSG_UPDATE,
                       .msg_id = m->id,
                       .queue_key = m->queue->key,
                       .count = m->reserved_count,
                       .visible_at_ms = visible_at_ms};
    if (lazy)
        eng_journal_lazy(e, &rec);
    else
        m->epoch = eng_journal(e, &rec);
}

static void destroy(struct emb *e, struct message *m)
{
    message_unlink(e, m);
    message_free(e, m);
}

static struct message *message_alloc_unindexed(struct emb *e, struct queue *q,
                                               struct blob *body, size_t body_len, uint64_t id)
{
    struct message *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->id = id;
    m->queue = q;
    m->body = body;
    m->body_len = (uint32_t)body_len;
    m->created_at_ms = e->now_ms;
    list_init(&m->link);
    tw_node_init(&m->visibility, TIMER_VISIBILITY);
    tw_node_init(&m->expiry, TIMER_EXPIRY);
    return m;
}

int message_index(struct emb *e, struct message *m)
{
    return hmap_insert(&e->messages, &m->by_id, hash_u64(m->id));
}

struct message *message_new(struct emb *e, struct queue *q, struct blob *body, size_t body_len,
                            uint64_t id)
{
    struct message *m = message_alloc_unindexed(e, q, body, body_len, id);
    if (m && message_index(e, m) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

/* Places a new or recovered message: delayed until visible_at_ms, else at the back; on a
 * push queue, on its way to the subscribers from visible_at_ms. -1: out of memory. */
int message_place_new(struct emb *e, struct message *m, int64_t visible_at_ms,
                      int64_t expires_at_ms)
{
    if (m->queue->type != QUEUE_PULL) {
        if (pushing_start(e, m, visible_at_ms > e->now_ms ? visible_at_ms : e->now_ms) != 0)
            return -1;
        tw_insert(&e->wheel, &m->expiry, expires_at_ms);
        message_enter(m, MSG_PUSHING, false);
        return 0;
    }
    tw_insert(&e->wheel, &m->expiry, expires_at_ms);
    if (visible_at_ms > e->now_ms) {
        message_enter(m, MSG_DELAYED, false);
        tw_insert(&e->wheel, &m->visibility, visible_at_ms);
    } else {
        message_enter(m, MSG_READY, false);
        waiters_note_ready(e, m->queue);
    }
    return 0;
}

enum eng_status message_post(struct emb *e, struct queue *q, struct blob *body,
                             struct blob *push_headers, struct blob *attributes, uint32_t delay_s,
                             uint64_t *id)
{
    struct message *m = message_new(e, q, blob_ref(body), body->len,
                                      ids_next_message(&e->ids, e->now_ms));
    if (!m) {
        blob_unref(body);
        return ENG_NO_MEMORY;
    }
    m->attributes = blob_ref(attributes);

    memory_track(e, m);
    int64_t visible_at = delay_s ? e->now_ms + (int64_t)delay_s * 1000 : 0;
    int64_t expires_at = e->now_ms + (int64_t)q->message_expiration_s * 1000;
    if (message_place_new(e, m, visible_at, expires_at) != 0) {
        memory_untrack(e, m);
        hmap_remove(&e->messages, &m->by_id);
        message_free(e, m);
        return ENG_NO_MEMORY;
    }
    if (!m->job)
        push_headers = NULL; /* only push subscribers ever see them */
    else if (push_headers)
        pushing_set_headers(m, blob_ref(push_headers));
    struct jrec rec = {.type = JR_MSG_PUT,
                       .msg_id = m->id,
                       .queue_key = q->key,
                       .body = e->store ? blob_ref(body) : NULL,
                       .push_headers = e->store && push_headers ? blob_ref(push_headers) : NULL,
                       .attributes = e->store && attributes ? blob_ref(attributes) : NULL,
                       .created_at_ms = m->created_at_ms,
                       .visible_at_ms = visible_at,
                       .expires_at_ms = expires_at};
    m->epoch = eng_journal(e, &rec);
    q->total_messages++;
    *id = m->id;
    e->events[ENG_EV_POST]++;
    if (e->observer)
        observe_message(e, ENG_EV_POST, m,
                        &(struct eng_event){.delay_s = delay_s, .until_ms = visible_at});
    return ENG_OK;
}

static void post(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_post_msg *msgs, size_t n, bool create)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = NULL;
    enum eng_status st = ENG_OK;
    uint64_t body_costs = 0;
    for (size_t i = 0; i < n; i++)
        body_costs += body_cost(msgs[i].body_len);
    if (!eng_can_write(e))
        st = ENG_STORAGE_UNAVAILABLE;
    else if ((st = memory_admit(e, n, body_costs)) != ENG_OK)
        ;
    else if (!create && !queue_find(e, project, name))
        st = ENG_QUEUE_NOT_FOUND;
    else if (!(q = queue_find_or_create(e, project, name)) ||
             !(op->res.ids = calloc(n ? n : 1, sizeof(uint64_t))))
        st = ENG_NO_MEMORY;
    else if (q->type != QUEUE_PULL && !e->pusher.send)
        st = ENG_PUSH_UNSUPPORTED; /* nothing would deliver it: refuse rather than keep it */
    for (size_t i = 0; st == ENG_OK && i < n; i++) {
        struct blob *body = blob_new(msgs[i].body, msgs[i].body_len);
        struct blob *headers = msgs[i].push_headers
                                   ? blob_new(msgs[i].push_headers, msgs[i].push_headers_len)
                                   : NULL;
        struct blob *attributes = msgs[i].attributes
                                      ? blob_new(msgs[i].attributes, msgs[i].attributes_len)
                                      : NULL;
        uint64_t id = 0;
        st = body && (headers || !msgs[i].push_headers) && (attributes || !msgs[i].attributes)
                 ? message_post(e, q, body, headers, attributes, msgs[i].delay_s, &id)
                 : ENG_NO_MEMORY;
        blob_unref(body);
        blob_unref(headers);
        blob_unref(attributes);
        if (st == ENG_OK)
            op->res.ids[op->res.n_ids++] = id;
    }
    if (q && op->res.n_ids)
        queue_journal_total(e, q);
    if (st == ENG_OK)
        eng_finish(e, op, mark, 0);
    else
        eng_fail(e, op, st);
    eng_end(e);
}

void emb_post(struct emb *e, struct eng_op *op, const char *project, const char *name,
              const struct eng_post_msg *msgs, size_t n)
{
    post(e, op, project, name, msgs, n, true);
}

void emb_post_existing(struct emb *e, struct eng_op *op, const char *project,
                       const char *name, const struct eng_post_msg *msgs, size_t n)
{
    post(e, op, project, name, msgs, n, false);
}

/* ---- reserving and dead letters ---- */

/* Moves m from its queue to the dead-letter queue, which is created when missing; its
 * expiration restarts with that queue's. Returns false when that could not be done. */
static bool dead_letter(struct emb *e, struct message *m)
{
    struct queue *from = m->queue;
    struct queue *to = queue_find_or_create(e, from->project->id, from->dead_letter_queue);
    if (!to || to == from || to->type != QUEUE_PULL)
        return false;
    e->events[ENG_EV_DEAD_LETTER]++;
    if (e->observer)
        observe_message(e, ENG_EV_DEAD_LETTER, m, &(struct eng_event){.to_queue = to->name});
    leave_list(m);
    m->queue = to;
    message_enter(m, MSG_READY, false);
    int64_t expires_at = e->now_ms + (int64_t)to->message_expiration_s * 1000;
    tw_insert(&e->wheel, &m->expiry, expires_at);
    struct jrec rec = {.type = JR_MSG_MOVE,
                       .msg_id = m->id,
                       .queue_key = to->key,
                       .expires_at_ms = expires_at};
    m->epoch = eng_journal(e, &rec);
    from->epoch = m->epoch;
    to->total_messages++;
    queue_journal_total(e, to);
    waiters_note_ready(e, to);
    return true;
}

/* Ends m's reservation now: ready again, at the front (a release without delay). */
static void make_visible(struct emb *e, struct message *m)
{
    memset(m->reservation, 0, sizeof(m->reservation));
    tw_cancel(&e->wheel, &m->visibility);
    move_to(m, MSG_READY, true);
    waiters_note_ready(e, m->queue);
}

enum eng_status message_fill(struct emb *e, struct eng_message *out, struct message *m,
                                    bool with_reservation)
{
    enum eng_status st = message_body(e, m, &out->body);
    if (st != ENG_OK)
        return st;
    out->id = m->id;
    out->reserved_count = m->reserved_count;
    out->created_at_ms = m->created_at_ms;
    out->first_reserved_at_ms = m->first_reserved_ms ? m->created_at_ms + m->first_reserved_ms - 1 : 0;
    out->attributes = blob_ref(m->attributes);
    out->has_reservation = with_reservation;
    if (with_reservation)
        ids_hex(m->reservation, RESERVATION_ID_BYTES, out->reservation_id);
    return ENG_OK;
}

enum eng_status message_reserve_into(struct emb *e, struct queue *q, uint32_t n,
                                     uint32_t timeout_s, bool exact_timeout, bool delete_msgs,
                                     struct eng_result *res, uint64_t *read_epoch)
{
    if (!res->messages && !(res->messages = calloc(n ? n : 1, sizeof(*res->messages))))
        return ENG_NO_MEMORY;
    uint32_t secs = timeout_s || exact_timeout ? timeout_s : q->message_timeout_s;
    int64_t timeout_ms = (int64_t)secs * 1000;
    /* The analyzer cannot see that destroy() and move_to() unlink m from q->ready, so it
     * takes the next pass's first entry for the message just freed. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    while (res->n_messages < n && q->n_ready) {
        struct message *m = list_entry(q->ready.next, struct message, link);
        if (q->dead_letter_queue && m->reserved_count >= q->dead_letter_max && dead_letter(e, m))
            continue;
        struct eng_message *out = &res->messages[res->n_messages];
        if (m->epoch > *read_epoch)
            *read_epoch = m->epoch; /* its post (or move) must be durable before we tell */
        m->reserved_count++;
        if (!m->first_reserved_ms) {
            int64_t after = e->now_ms - m->created_at_ms + 1;
            m->first_reserved_ms = after < 1 ? 1 : after > UINT32_MAX ? UINT32_MAX : (uint32_t)after;
        }
        ids_new_reservation(&e->ids, m->reservation);
        enum eng_status st = message_fill(e, out, m, true);
        if (st != ENG_OK) { /* a cold body could not be read: hand out what we have */
            m->reserved_count--;
            return res->n_messages ? ENG_OK : st;
        }
        res->n_messages++;
        e->events[ENG_EV_RESERVE]++;
        if (e->observer)
            observe_message(e, ENG_EV_RESERVE, m,
                            &(struct eng_event){.reservation_id = out->reservation_id,
                                                .until_ms = e->now_ms + timeout_ms});
        if (delete_msgs) {
            message_delete(e, m);
            continue;
        }
        move_to(m, MSG_RESERVED, false);
        tw_insert(&e->wheel, &m->visibility, e->now_ms + timeout_ms);
        journal_update(e, m, 0, true);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    if (timeout_ms == 0 && !delete_msgs) /* visible again at once: back to the front, in order */
        for (size_t i = res->n_messages; i-- > 0;) {
            struct message *m = message_find(e, q, res->messages[i].id);
            if (m && m->state == MSG_RESERVED)
                make_visible(e, m);
        }
    return ENG_OK;
}

void emb_reserve(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 const struct eng_reserve_args *args)
{
    uint64_t mark = eng_start(e, op), newest = 0;
    struct queue *q;
    enum eng_status st = queue_for_change(e, project, name, &q);
    if (st == ENG_OK)
        st = message_reserve_into(e, q, args->n, args->timeout_s, args->exact_timeout,
                                  args->delete_msgs, &op->res, &newest);
    if (st != ENG_OK) {
        eng_fail(e, op, st);
    } else if (op->res.n_messages == 0 && args->wait_s > 0 && !e->shutting_down) {
        op->want_n = args->n;
        op->timeout_s = args->timeout_s;
        op->exact_timeout = args->exact_timeout;
        op->delete_on_reserve = args->delete_msgs;
        waiters_add(e, q, op, args->wait_s);
    } else {
        eng_finish(e, op, mark, newest);
    }
    eng_end(e);
}

/* ---- reading ---- */

void emb_peek(struct emb *e, struct eng_op *op, const char *project, const char *name,
              uint32_t n)
{
    uint64_t mark = eng_start(e, op), newest = 0;
    struct queue *q = queue_find(e, project, name);
    if (!q) {
        eng_fail(e, op, ENG_QUEUE_NOT_FOUND);
        eng_end(e);
        return;
    }
    size_t want = q->n_ready < n ? (size_t)q->n_ready : n;
    if (want && !(op->res.messages = calloc(want, sizeof(*op->res.messages)))) {
        eng_fail(e, op, ENG_NO_MEMORY);
        eng_end(e);
        return;
    }
    struct list_node *pos = q->ready.next;
    enum eng_status st = ENG_OK;
    for (size_t i = 0; st == ENG_OK && i < want; i++, pos = pos->next) {
        struct message *m = list_entry(pos, struct message, link);
        if ((st = message_fill(e, &op->res.messages[op->res.n_messages], m, false)) == ENG_OK)
            op->res.n_messages++;
        if (m->epoch > newest)
            newest = m->epoch;
    }
    if (st == ENG_OK)
        eng_finish(e, op, mark, newest);
    else
        eng_fail(e, op, st);
    eng_end(e);
}

void emb_get(struct emb *e, struct eng_op *op, const char *project, const char *name,
             uint64_t id)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    struct message *m = q ? message_find(e, q, id) : NULL;
    enum eng_status st;
    if (!q)
        eng_fail(e, op, ENG_QUEUE_NOT_FOUND);
    else if (!m)
        eng_fail(e, op, ENG_MESSAGE_NOT_FOUND);
    else if (!(op->res.messages = calloc(1, sizeof(*op->res.messages))))
        eng_fail(e, op, ENG_NO_MEMORY);
    else if ((st = message_fill(e, &op->res.messages[0], m, false)) != ENG_OK)
        eng_fail(e, op, st);
    else {
        op->res.n_messages = 1;
        eng_finish(e, op, mark, m->epoch);
    }
    eng_end(e);
}

/* ---- deleting ---- */

/* A reserved message needs its current reservation; an unreserved one is deleted by id
 * alone, but a reservation id given for it has expired (v3 answers 403 to both). */
static enum eng_status check_delete(struct message *m, const char *rid)
{
    if (m->state == MSG_PUSHING) /* by id alone it is withdrawn; a 202's delete is one at a time */
        return has_text(rid) ? ENG_RESERVATION_MISMATCH : ENG_OK;
    if (m->state == MSG_RESERVED)
        return reservation_matches(m, rid) ? ENG_OK : ENG_RESERVATION_MISMATCH;
    return has_text(rid) ? ENG_RESERVATION_MISMATCH : ENG_OK;
}

void message_delete(struct emb *e, struct message *m)
{
    e->events[ENG_EV_DELETE]++;
    if (e->observer)
        observe_message(e, ENG_EV_DELETE, m, &(struct eng_event){.count = 1});
    journal_delete(e, m);
    destroy(e, m);
}

void emb_delete(struct emb *e, struct eng_op *op, const char *project, const char *name,
                uint64_t id, const char *reservation_id, const char *subscriber_name)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    struct message *m = q ? message_find(e, q, id) : NULL;
    bool acknowledging = m && m->state == MSG_PUSHING && has_text(reservation_id);
    enum eng_status st = !q             ? ENG_QUEUE_NOT_FOUND
                         : !m           ? ENG_MESSAGE_NOT_FOUND
                         : acknowledging ? ENG_OK
                                         : check_delete(m, reservation_id);
    if (st == ENG_OK && !eng_can_write(e))
        st = ENG_STORAGE_UNAVAILABLE;
    if (st == ENG_OK && acknowledging)
        st = pushing_acknowledge(e, m, reservation_id, subscriber_name);
    else if (st == ENG_OK)
        message_delete(e, m);
    if (st == ENG_OK) {
        eng_finish(e, op, mark, 0);
    } else {
        eng_fail(e, op, st);
    }
    eng_end(e);
}

void emb_delete_many(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_delete_item *items, size_t n)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    enum eng_status st = q ? ENG_OK : ENG_QUEUE_NOT_FOUND;
    for (size_t i = 0; st == ENG_OK && i < n; i++) {
        struct message *m = message_find(e, q, items[i].id);
        st = m ? check_delete(m, items[i].reservation_id) : ENG_MESSAGE_NOT_FOUND;
        if (st != ENG_OK)
            op->res.failed_index = i;
    }
    if (st == ENG_OK && !eng_can_write(e))
        st = ENG_STORAGE_UNAVAILABLE;
    if (st != ENG_OK) {
        size_t failed = op->res.failed_index;
        eng_fail(e, op, st);
        op->res.failed_index = failed;
        eng_end(e);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct message *m = message_find(e, q, items[i].id); /* gone if listed twice */
        if (m)
            message_delete(e, m);
    }
    eng_finish(e, op, mark, 0);
    eng_end(e);
}

/* Deletes every message of q, each with its own journal record: the messages table has
 * no index by queue (it would cost every post and delete a second B-tree), and the engine
 * knows exactly which rows are q's. */
void queue_drop_messages(struct emb *e, struct queue *q)
{
    e->events[ENG_EV_CLEAR] += q->n_ready + q->n_delayed + q->n_reserved + q->n_pushing;
    if (e->observer && q->n_ready + q->n_delayed + q->n_reserved + q->n_pushing)
        observe_message(e, ENG_EV_CLEAR, NULL,
                        &(struct eng_event){.project = q->project->id, .queue = q->name,
                                            .count = q->n_ready + q->n_delayed +
                                                     q->n_reserved + q->n_pushing});
    struct list_node *lists[] = {&q->ready, &q->delayed, &q->reserved, &q->pushing};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        struct list_node *pos, *next;
        list_for_each_safe(pos, next, lists[i]) {
            struct message *m = list_entry(pos, struct message, link);
            journal_delete(e, m);
            destroy(e, m);
        }
    }
}

void emb_clear(struct emb *e, struct eng_op *op, const char *project, const char *name)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q;
    enum eng_status st = queue_for_change(e, project, name, &q);
    if (st != ENG_OK) {
        eng_fail(e, op, st);
    } else {
        queue_drop_messages(e, q);
        eng_finish(e, op, mark, 0);
    }
    eng_end(e);
}

/* ---- touch and release ---- */

static enum eng_status find_reserved(struct emb *e, const char *project, const char *name,
                                     uint64_t id, const char *rid, struct message **out)
{
    struct queue *q = queue_find(e, project, name);
    struct message *m = q ? message_find(e, q, id) : NULL;
    if (!q)
        return ENG_QUEUE_NOT_FOUND;
    if (!m)
        return ENG_MESSAGE_NOT_FOUND;
    if (!has_text(rid))
        return ENG_RESERVATION_REQUIRED;
    if (!reservation_matches(m, rid))
        return ENG_RESERVATION_MISMATCH;
    if (!eng_can_write(e))
        return ENG_STORAGE_UNAVAILABLE;
    *out = m;
    return ENG_OK;
}

void emb_touch(struct emb *e, struct eng_op *op, const char *project, const char *name,
               uint64_t id, const char *reservation_id, uint32_t timeout_s)
{
    uint64_t mark = eng_start(e, op);
    struct message *m = NULL;
    enum eng_status st = find_reserved(e, project, name, id, reservation_id, &m);
    if (st == ENG_OK) {
        /* A touch is a new reservation: new id, new deadline, and it counts (contract §3). */
        uint32_t secs = timeout_s ? timeout_s : m->queue->message_timeout_s;
        uint64_t read_epoch = m->epoch;
        m->reserved_count++;
        ids_new_reservation(&e->ids, m->reservation);
        tw_insert(&e->wheel, &m->visibility, e->now_ms + (int64_t)secs * 1000);
        ids_hex(m->reservation, RESERVATION_ID_BYTES, op->res.reservation_id);
        journal_update(e, m, 0, true);
        e->events[ENG_EV_TOUCH]++;
        if (e->observer)
            observe_message(e, ENG_EV_TOUCH, m,
                            &(struct eng_event){.until_ms = e->now_ms + (int64_t)secs * 1000});
        eng_finish(e, op, mark, read_epoch);
    } else {
        eng_fail(e, op, st);
    }
    eng_end(e);
}

void emb_release(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 uint64_t id, const char *reservation_id, uint32_t delay_s)
{
    uint64_t mark = eng_start(e, op);
    struct message *m = NULL;
    enum eng_status st = find_reserved(e, project, name, id, reservation_id, &m);
    if (st == ENG_OK)
        e->events[ENG_EV_RELEASE]++;
    if (st == ENG_OK && e->observer) /* before the reservation it ends is forgotten */
        observe_message(e, ENG_EV_RELEASE, m,
                        &(struct eng_event){.delay_s = delay_s,
                                            .until_ms = delay_s ? e->now_ms + (int64_t)delay_s * 1000 : 0});
    if (st != ENG_OK) {
        eng_fail(e, op, st);
    } else if (delay_s) {
        int64_t visible_at = e->now_ms + (int64_t)delay_s * 1000;
        memset(m->reservation, 0, sizeof(m->reservation));
        move_to(m, MSG_DELAYED, false);
        m->ready_at_front = true;
        tw_insert(&e->wheel, &m->visibility, visible_at);
        journal_update(e, m, visible_at, false);
        eng_finish(e, op, mark, m->epoch);
    } else {
        make_visible(e, m);
        eng_finish(e, op, mark, m->epoch);
    }
    eng_end(e);
}

void emb_change_visibility(struct emb *e, struct eng_op *op, const char *project,
                           const char *name, uint64_t id, const char *reservation_id,
                           uint32_t timeout_s)
{
    uint64_t mark = eng_start(e, op);
    struct message *m = NULL;
    enum eng_status st = find_reserved(e, project, name, id, reservation_id, &m);
    if (st == ENG_OK) {
        /* Unlike a touch, the reservation keeps its id (the receipt handle stays valid)
         * and it is not a new receive. Nothing durable changes: reservations are not. */
        e->events[ENG_EV_VISIBILITY]++;
        if (e->observer)
            observe_message(e, ENG_EV_VISIBILITY, m,
                            &(struct eng_event){.until_ms = e->now_ms + (int64_t)timeout_s * 1000});
        if (timeout_s)
            tw_insert(&e->wheel, &m->visibility, e->now_ms + (int64_t)timeout_s * 1000);
        else
            make_visible(e, m);
        eng_finish(e, op, mark, m->epoch);
    } else {
        eng_fail(e, op, st);
    }
    eng_end(e);
}

/* ---- timers and recovery ---- */

void message_on_timer(struct emb *e, struct tw_node *t)
{
    if (t->tag == TIMER_EXPIRY) {
        struct message *m = list_entry(t, struct message, expiry);
        e->events[ENG_EV_EXPIRE]++;
        if (e->observer)
            observe_message(e, ENG_EV_EXPIRE, m, &(struct eng_event){.count = 1});
        journal_delete(e, m);
        destroy(e, m);
        return;
    }
    struct message *m = list_entry(t, struct message, visibility);
    if (m->state == MSG_PUSHING) {
        pushing_on_timer(e, m);
        return;
    }
    bool front = m->state == MSG_RESERVED || m->ready_at_front;
    e->events[m->state == MSG_RESERVED ? ENG_EV_TIMEOUT : ENG_EV_VISIBLE]++;
    if (e->observer) /* before the reservation that ran out is forgotten */
        observe_message(e, m->state == MSG_RESERVED ? ENG_EV_TIMEOUT : ENG_EV_VISIBLE, m,
                        &(struct eng_event){.at_ms = e->now_ms});
    m->ready_at_front = false;
    memset(m->reservation, 0, sizeof(m->reservation));
    move_to(m, MSG_READY, front);
    waiters_note_ready(e, m->queue);
}

/* name\0value\0 pairs, whole: anything else read back from disk is dropped. */
static bool pairs_well_formed(const void *data, size_t len)
{
    const char *p = data;
    size_t nuls = 0;
    for (size_t i = 0; p && i < len; i++)
        nuls += p[i] == '\0';
    return p && len && p[len - 1] == '\0' && nuls % 2 == 0;
}

struct message *message_restore(struct emb *e, struct queue *q, const struct store_msg_row *row,
                                int *rc)
{
    *rc = 0;
    if (!q || row->expires_at_ms <= e->now_ms) {
        struct jrec rec = {.type = JR_MSG_DELETE, .msg_id = row->id};
        eng_journal(e, &rec);
        return NULL;
    }
    /* Past the memory budget, bodies stay in the database until needed. */
    bool keep_body = memory_keeps_body(e, row->body_len);
    struct blob *body = keep_body ? blob_new(row->body, row->body_len) : NULL;
    struct message *m =
        body || !keep_body ? message_alloc_unindexed(e, q, body, row->body_len, row->id) : NULL;
    if (!m) {
        blob_unref(body);
        *rc = -1;
        return NULL;
    }
    memory_track(e, m);
    m->created_at_ms = row->created_at_ms;
    m->reserved_count = row->reserved_count;
    struct blob *headers = NULL;
    if ((row->attributes_len &&
         !(m->attributes = blob_new(row->attributes, row->attributes_len))) ||
        message_place_new(e, m, row->visible_at_ms, row->expires_at_ms) != 0 ||
        (m->job && pairs_well_formed(row->push_headers, row->push_headers_len) &&
         !(headers = blob_new(row->push_headers, row->push_headers_len)))) {
        memory_untrack(e, m);
        message_free(e, m);
        *rc = -1;
        return NULL;
    }
    if (headers)
        pushing_set_headers(m, headers);
    return m;
}
