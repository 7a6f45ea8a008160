/* engine/inspect.c — seeing everything, for the test kit (api/admin_watch.c): the full peek
 * (every message of a queue in every state, with its deadlines, changing nothing) and the
 * event observer that reports each operation as the embedded engine makes it.
 * The peek scans the queue's delayed and reserved lists (neither is kept in time order);
 * it keeps only the n soonest in a bounded heap, so its memory follows n, not the queue. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* ---- the event observer ---- */

static const char *const event_names[ENG_EV_COUNT] = {
    [ENG_EV_POST] = "post",
    [ENG_EV_RESERVE] = "reserve",
    [ENG_EV_DELETE] = "delete",
    [ENG_EV_RELEASE] = "release",
    [ENG_EV_TOUCH] = "touch",
    [ENG_EV_VISIBILITY] = "visibility",
    [ENG_EV_TIMEOUT] = "timeout",
    [ENG_EV_VISIBLE] = "visible",
    [ENG_EV_DEAD_LETTER] = "dead_letter",
    [ENG_EV_EXPIRE] = "expire",
    [ENG_EV_CLEAR] = "clear",
};

const char *eng_event_name(enum eng_event_type t)
{
    return t < ENG_EV_COUNT ? event_names[t] : "unknown";
}

static bool has_reservation(const struct message *m)
{
    static const uint8_t none[RESERVATION_ID_BYTES];
    return memcmp(m->reservation, none, sizeof(none)) != 0;
}

void observe_message(struct emb *e, enum eng_event_type type, const struct message *m,
                     struct eng_event *ev)
{
    char rid[RESERVATION_ID_HEX + 1];
    ev->type = type;
    ev->at_ms = e->now_ms;
    if (m) {
        ev->project = m->queue->project->id;
        ev->queue = m->queue->name;
        ev->msg_id = m->id;
        ev->reserved_count = m->reserved_count;
        if (!ev->reservation_id && has_reservation(m)) {
            ids_hex(m->reservation, RESERVATION_ID_BYTES, rid);
            ev->reservation_id = rid;
        }
    }
    e->observer(e->observer_ctx, ev);
}

/* ---- the full peek ---- */

/* A delayed or reserved message and when it becomes ready. */
struct timed {
    int64_t due_ms;
    struct message *m;
};

/* Later first: the heap's top is the one to drop when a sooner message comes. */
static bool later(const struct timed *a, const struct timed *b)
{
    return a->due_ms > b->due_ms || (a->due_ms == b->due_ms && a->m->id > b->m->id);
}

static void sift_down(struct timed *h, size_t n, size_t i)
{
    for (;;) {
        size_t top = i, l = 2 * i + 1, r = l + 1;
        if (l < n && later(&h[l], &h[top]))
            top = l;
        if (r < n && later(&h[r], &h[top]))
            top = r;
        if (top == i)
            return;
        struct timed t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void sift_up(struct timed *h, size_t i)
{
    while (i > 0 && later(&h[i], &h[(i - 1) / 2])) {
        struct timed t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

struct soonest {
    struct timed *heap;
    size_t n, cap;
    int64_t next_ms; /* the soonest of all, kept or not (0: none) */
};

static void soonest_offer(struct soonest *s, struct message *m, bool keep)
{
    struct timed t = {.due_ms = tw_pending(&m->visibility) ? m->visibility.expires_ms : 0,
                      .m = m};
    if (t.due_ms && (!s->next_ms || t.due_ms < s->next_ms))
        s->next_ms = t.due_ms;
    if (!keep || !s->cap)
        return;
    if (s->n < s->cap) {
        s->heap[s->n] = t;
        sift_up(s->heap, s->n++);
    } else if (later(&s->heap[0], &t)) {
        s->heap[0] = t;
        sift_down(s->heap, s->n, 0);
    }
}

static int by_time(const void *a, const void *b)
{
    return later(a, b) ? 1 : later(b, a) ? -1 : 0;
}

static enum eng_status add_message(struct emb *e, struct eng_result *res, struct message *m,
                                   uint64_t *newest)
{
    struct eng_message *out = &res->messages[res->n_messages];
    enum eng_status st = message_fill(e, out, m, m->state == MSG_RESERVED && has_reservation(m));
    if (st != ENG_OK)
        return st;
    out->state = m->state;
    out->due_at_ms = tw_pending(&m->visibility) ? m->visibility.expires_ms : 0;
    out->expires_at_ms = tw_pending(&m->expiry) ? m->expiry.expires_ms : 0;
    out->push_headers = blob_ref(pushing_headers(m));
    if (m->epoch > *newest)
        *newest = m->epoch;
    res->n_messages++;
    return ENG_OK;
}

static enum eng_status add_list(struct emb *e, struct eng_result *res, struct list_node *list,
                                size_t want, uint64_t *newest)
{
    enum eng_status st = ENG_OK;
    struct list_node *pos;
    for (pos = list->next; st == ENG_OK && pos != list && res->n_messages < want; pos = pos->next)
        st = add_message(e, res, list_entry(pos, struct message, link), newest);
    return st;
}

static bool wants(unsigned states, enum msg_state st)
{
    return states == 0 || (states & (1u << st)) != 0;
}

/* Ready, then delayed and reserved by time, then pushing: up to want in res. */
static enum eng_status inspect_queue(struct emb *e, struct queue *q, size_t want,
                                     unsigned states, struct eng_result *res, uint64_t *newest)
{
    enum eng_status st = ENG_OK;
    if (wants(states, MSG_READY))
        st = add_list(e, res, &q->ready, want, newest);
    size_t room = want - res->n_messages;
    struct soonest s = {.cap = room};
    if (room && !(s.heap = calloc(room, sizeof(*s.heap))))
        return ENG_NO_MEMORY;
    struct list_node *lists[] = {&q->delayed, &q->reserved};
    bool keep[] = {wants(states, MSG_DELAYED), wants(states, MSG_RESERVED)};
    for (size_t i = 0; i < 2; i++) {
        for (struct list_node *pos = lists[i]->next; pos != lists[i]; pos = pos->next)
            soonest_offer(&s, list_entry(pos, struct message, link), keep[i]);
    }
    res->queue.next_visible_at_ms = s.next_ms;
    if (s.n)
        qsort(s.heap, s.n, sizeof(*s.heap), by_time);
    for (size_t i = 0; st == ENG_OK && i < s.n; i++)
        st = add_message(e, res, s.heap[i].m, newest);
    free(s.heap);
    if (st == ENG_OK && wants(states, MSG_PUSHING))
        st = add_list(e, res, &q->pushing, want, newest);
    return st;
}

void emb_inspect(struct emb *e, struct eng_op *op, const char *project, const char *name,
                 uint32_t n, unsigned states)
{
    uint64_t mark = eng_start(e, op), newest = 0;
    struct queue *q = queue_find(e, project, name);
    enum eng_status st = ENG_OK;
    size_t total = q ? (size_t)(q->n_ready + q->n_delayed + q->n_reserved + q->n_pushing) : 0;
    size_t want = total < n ? total : n;
    if (!q)
        st = ENG_QUEUE_NOT_FOUND;
    else if (queue_fill_info(q, &op->res.queue) != 0 ||
             (want && !(op->res.messages = calloc(want, sizeof(*op->res.messages)))))
        st = ENG_NO_MEMORY;
    else
        op->res.has_queue = true;
    if (st == ENG_OK)
        st = inspect_queue(e, q, want, states, &op->res, &newest);
    if (st == ENG_OK)
        eng_finish(e, op, mark, newest);
    else
        eng_fail(e, op, st);
    eng_end(e);
}
