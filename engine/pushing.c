/* engine/pushing.c — delivering the messages of push queues. A message posted to a push
 * queue is stored like any other (so a crash cannot lose it) but kept on the queue's
 * `pushing` list with a job: its delivery state (delivery.c) and a place in the engine's
 * list of jobs with something due. Nothing is sent before the message's post is durable.
 * The pusher attached by the server sends each request and reports the answer; retries
 * and 202 reservations run out on the message's visibility timer. When the delivery is
 * finished the message is deleted, after the pusher has posted the error message if some
 * subscriber never got it. Delivery state is not stored: after a restart every pushing
 * message starts over (at-least-once, as the contract allows). */
#include "core.h"
#include "delivery.h"
#include "push.h"

#include <stdlib.h>
#include <string.h>

struct push_job {
    struct delivery d;
    struct blob *push_headers; /* posted with the message, or NULL */
    struct list_node due_link; /* on push_new until durable, then push_due or push_wait */
    struct message *m;
    uint8_t reservations[][RESERVATION_ID_BYTES]; /* one per subscriber */
};

static uint32_t delay_of(const struct queue *q)
{
    return q->push ? q->push->retries_delay_s : PUSH_RETRIES_DELAY_DEFAULT_S;
}

void pushing_free_job(struct message *m)
{
    struct push_job *job = m->job;
    if (!job)
        return;
    if (list_linked(&job->due_link))
        list_remove(&job->due_link);
    blob_unref(job->push_headers);
    delivery_free(&job->d);
    free(job);
    m->job = NULL;
}

struct blob *pushing_headers(const struct message *m)
{
    return m->job ? m->job->push_headers : NULL;
}

void pushing_set_headers(struct message *m, struct blob *headers)
{
    blob_unref(m->job->push_headers);
    m->job->push_headers = headers;
}

/* Arms the visibility timer for the next due time and queues the job if a send is due now. */
static void schedule(struct emb *e, struct push_job *job)
{
    struct message *m = job->m;
    int64_t next = delivery_tick(&job->d, e->now_ms, delay_of(m->queue));
    tw_cancel(&e->wheel, &m->visibility);
    if (next != INT64_MAX && next > e->now_ms)
        tw_insert(&e->wheel, &m->visibility, next);
    if (next <= e->now_ms && !list_linked(&job->due_link))
        list_push_back(&e->push_due, &job->due_link);
}

int pushing_start(struct emb *e, struct message *m, int64_t first_at_ms)
{
    struct queue *q = m->queue;
    uint32_t n = q->push ? q->push->n_subscribers : 0;
    struct push_job *job = calloc(1, sizeof(*job) + (size_t)n * RESERVATION_ID_BYTES);
    if (!job || n == 0 ||
        delivery_init(&job->d, q->type, n, q->push->retries, q->push_turn++, first_at_ms) != 0) {
        free(job);
        return -1;
    }
    job->m = m;
    list_init(&job->due_link);
    m->job = job;
    if (first_at_ms > e->now_ms)
        tw_insert(&e->wheel, &m->visibility, first_at_ms);
    else
        list_push_back(&e->push_new, &job->due_link);
    return 0;
}

static void job_rid(const void *ctx, uint32_t i, char out[RESERVATION_ID_HEX + 1])
{
    const struct push_job *job = ctx;
    ids_hex(job->reservations[i], RESERVATION_ID_BYTES, out);
}

static struct eng_push_status *statuses_of(const struct push_job *job, const struct queue *q)
{
    return delivery_statuses(&job->d, q->push ? q->push->subscribers : NULL,
                             q->push ? q->push->n_subscribers : 0, job_rid, job);
}

void eng_push_statuses_free(struct eng_push_status *all, size_t n)
{
    for (size_t i = 0; all && i < n; i++) {
        free(all[i].name);
        free(all[i].url);
    }
    free(all);
}

/* Delivery is over: the error message (when wanted and possible), then the delete. */
static void finish(struct emb *e, struct message *m)
{
    struct push_job *job = m->job;
    struct queue *q = m->queue;
    if (delivery_failed(&job->d) && q->push && q->push->error_queue && e->pusher.failed) {
        struct blob *body = NULL;
        struct eng_push_status *subs = statuses_of(job, q);
        if (subs && message_body(e, m, &body) == ENG_OK) {
            struct eng_push_failure f = {.project = q->project->id, .queue = q->name,
                                         .error_queue = q->push->error_queue, .msg_id = m->id,
                                         .body = body, .subs = subs, .n_subs = job->d.n};
            e->pusher.failed(e->pusher.ctx, &f);
        }
        blob_unref(body);
        eng_push_statuses_free(subs, job->d.n);
    }
    message_delete(e, m);
}

static void after_change(struct emb *e, struct message *m)
{
    if (delivery_finished(&m->job->d))
        finish(e, m);
    else
        schedule(e, m->job);
}

/* A subscriber `ironmq:///name` is a queue of the same project: the message is posted to
 * it (created as a pull queue if missing) and counts as delivered; 503 when it cannot be
 * now (memory budget, storage), retried like any failure. Loops are refused when the
 * subscribers are set (push.c). */
static int post_to_queue(struct emb *e, struct message *m, const char *name)
{
    struct blob *body = NULL;
    struct queue *to = queue_find_or_create(e, m->queue->project->id, name);
    enum eng_status st = !to ? ENG_NO_MEMORY : !eng_can_write(e) ? ENG_STORAGE_UNAVAILABLE
                                                                 : memory_admit(e, 1, body_cost(m->body_len));
    if (st == ENG_OK && to->type != QUEUE_PULL && !e->pusher.send)
        st = ENG_PUSH_UNSUPPORTED;
    if (st == ENG_OK)
        st = message_body(e, m, &body);
    uint64_t id;
    if (st == ENG_OK && (st = message_post(e, to, body, pushing_headers(m), m->attributes, 0, &id)) == ENG_OK)
        queue_journal_total(e, to);
    blob_unref(body);
    return st == ENG_OK ? 200 : 503;
}

/* The counter of requests out to subscriber `name` of q (shared by the rare names whose
 * hashes meet: they then share one bound). */
static uint32_t busy_slot(const struct queue *q, const char *name)
{
    uint64_t h = hash_u64(q->key);
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    return (uint32_t)(h & 4095u);
}

/* Sends what is due for job; false when the pusher is full (the job stays queued).
 * *waiting_slot is set when a subscriber is at its own bound: the job waits for it. */
static bool send_due(struct emb *e, struct push_job *job, int *waiting_slot)
{
    struct message *m = job->m;
    struct queue *q = m->queue;
    for (uint32_t i = 0; i < job->d.n; i++) {
        struct delivery_sub *s = &job->d.subs[i];
        if (s->state != DS_DUE || s->due_ms > e->now_ms)
            continue;
        if (i >= q->push->n_subscribers) { /* removed since the post: nothing to deliver */
            delivery_sending(&job->d, i, e->now_ms);
            delivery_answer(&job->d, i, 200, e->now_ms, delay_of(q));
            continue;
        }
        const char *url = q->push->subscribers[i].url;
        if (strncmp(url, "ironmq:///", 10) == 0) {
            delivery_sending(&job->d, i, e->now_ms);
            delivery_answer(&job->d, i, post_to_queue(e, m, url + 10), e->now_ms, delay_of(q));
            continue;
        }
        if (e->push_in_flight >= e->pusher.max_in_flight)
            return false;
        uint32_t slot = busy_slot(q, q->push->subscribers[i].name);
        if (e->push_busy[slot] >= e->pusher.max_per_subscriber) {
            if (*waiting_slot < 0)
                *waiting_slot = (int)slot;
            continue;
        }
        struct blob *body = NULL;
        if (message_body(e, m, &body) != ENG_OK)
            return false; /* a cold body could not be read now: try again on the next turn */
        ids_new_reservation(&e->ids, job->reservations[i]);
        char rid[RESERVATION_ID_HEX + 1];
        ids_hex(job->reservations[i], RESERVATION_ID_BYTES, rid);
        delivery_sending(&job->d, i, e->now_ms);
        struct eng_push_request req = {.msg_id = m->id, .subscriber = i, .try_no = s->tries,
                                       .slot = slot,
                                       .project = q->project->id, .queue = q->name,
                                       .sub = &q->push->subscribers[i], .body = body,
                                       .reservation_id = rid, .push_headers = pushing_headers(m)};
        e->push_in_flight++;
        e->push_busy[slot]++;
        e->pusher.send(e->pusher.ctx, &req);
        blob_unref(body);
    }
    return true;
}

void pushing_pump(struct emb *e)
{
    if (!e->pusher.send || e->pumping)
        return;
    e->pumping = true;
    /* New jobs join in post order, so their epochs only grow: the durable ones are a prefix
     * (and the pump does not rescan the rest on every call while a commit runs). */
    while (!list_empty(&e->push_new)) {
        struct push_job *job = list_entry(e->push_new.next, struct push_job, due_link);
        if (e->store && job->m->epoch > store_durable_epoch(e->store))
            break;
        list_remove(&job->due_link);
        list_push_back(&e->push_due, &job->due_link);
    }
    struct list_node *pos, *next;
    list_for_each_safe(pos, next, &e->push_due) {
        struct push_job *job = list_entry(pos, struct push_job, due_link);
        if (e->store && job->m->epoch > store_durable_epoch(e->store))
            continue; /* a delayed post whose commit is late: the commit's completion pumps */
        list_remove(&job->due_link);
        int waiting_slot = -1;
        if (!send_due(e, job, &waiting_slot)) {
            list_push_front(&e->push_due, &job->due_link);
            break;
        }
        if (delivery_finished(&job->d))
            finish(e, job->m);
        else if (waiting_slot >= 0) /* in line for that subscriber, in order */
            list_push_back(&e->push_wait[waiting_slot], &job->due_link);
        else
            schedule(e, job);
    }
    e->pumping = false;
}

void pushing_on_timer(struct emb *e, struct message *m)
{
    after_change(e, m);
}

void emb_set_pusher(struct emb *e, const struct eng_pusher *pusher)
{
    eng_begin(e);
    e->pusher = *pusher;
    if (!e->pusher.max_in_flight)
        e->pusher.max_in_flight = 1;
    if (!e->pusher.max_per_subscriber)
        e->pusher.max_per_subscriber = e->pusher.max_in_flight;
    eng_end(e); /* messages recovered at start begin their delivery now */
}

void emb_push_answer(struct emb *e, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                     uint32_t slot, int status)
{
    eng_begin(e);
    if (e->push_in_flight)
        e->push_in_flight--;
    if (slot < 4096 && e->push_busy[slot])
        e->push_busy[slot]--;
    if (slot < 4096 && !list_empty(&e->push_wait[slot])) { /* the first in line may go */
        struct list_node *n = e->push_wait[slot].next;
        list_remove(n);
        list_push_back(&e->push_due, n);
    }
    struct message *m = message_by_id(e, msg_id);
    struct push_job *job = m ? m->job : NULL;
    if (job && subscriber < job->d.n && job->d.subs[subscriber].state == DS_SENDING &&
        job->d.subs[subscriber].tries == try_no) {
        delivery_answer(&job->d, subscriber, status, e->now_ms, delay_of(m->queue));
        after_change(e, m);
    }
    eng_end(e);
}

enum eng_status pushing_acknowledge(struct emb *e, struct message *m, const char *rid,
                                    const char *subscriber_name)
{
    struct push_job *job = m->job;
    uint8_t given[RESERVATION_ID_BYTES];
    if (!rid || !ids_unhex(rid, strlen(rid), given, sizeof(given)))
        return ENG_RESERVATION_MISMATCH;
    for (uint32_t i = 0; i < job->d.n; i++) {
        bool named = !subscriber_name || !subscriber_name[0] ||
                     (i < m->queue->push->n_subscribers &&
                      strcmp(m->queue->push->subscribers[i].name, subscriber_name) == 0);
        if (named && job->d.subs[i].tries &&
            memcmp(job->reservations[i], given, sizeof(given)) == 0) {
            if (!delivery_acknowledge(&job->d, i))
                return ENG_RESERVATION_MISMATCH;
            after_change(e, m);
            return ENG_OK;
        }
    }
    return ENG_RESERVATION_MISMATCH;
}

void emb_push_statuses(struct emb *e, struct eng_op *op, const char *project, const char *name,
                       uint64_t id)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    struct message *m = q ? message_find(e, q, id) : NULL;
    if (!q)
        eng_fail(e, op, ENG_QUEUE_NOT_FOUND);
    else if (q->type == QUEUE_PULL)
        eng_fail(e, op, m ? ENG_NOT_PUSH_QUEUE : ENG_MESSAGE_NOT_FOUND);
    else if (!m || !m->job)
        eng_fail(e, op, ENG_MESSAGE_NOT_FOUND);
    else if (!(op->res.statuses = statuses_of(m->job, q)))
        eng_fail(e, op, ENG_NO_MEMORY);
    else {
        op->res.n_statuses = m->job->d.n;
        eng_finish(e, op, mark, m->epoch);
    }
    eng_end(e);
}
