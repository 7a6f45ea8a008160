/* engine/waiters.c — long polling. A reserve with `wait` that finds nothing parks its op
 * on the queue's waiter list (oldest first) with a deadline in the timer wheel. Whatever
 * makes messages ready (post, a delay ending, a reservation timing out, a release, a dead
 * letter arriving) marks the queue; before the public call returns, marked queues serve
 * their oldest waiters first. A deadline that passes answers with an empty list. */
#include "core.h"

void waiters_add(struct emb *e, struct queue *q, struct eng_op *op, uint32_t wait_s)
{
    op->waiting_on = q;
    op->in_flight = true;
    list_push_back(&q->waiters, &op->link);
    tw_node_init(&op->timer, TIMER_WAITER);
    tw_insert(&e->wheel, &op->timer, e->now_ms + (int64_t)wait_s * 1000);
}

void waiters_cancel(struct emb *e, struct eng_op *op)
{
    tw_cancel(&e->wheel, &op->timer);
    list_remove(&op->link);
    op->waiting_on = NULL;
}

void waiters_note_ready(struct emb *e, struct queue *q)
{
    if (q->n_ready && !list_empty(&q->waiters) && !list_linked(&q->feed_link))
        list_push_back(&e->to_feed, &q->feed_link);
}

/* Serves the oldest waiter of q; false when nothing could be handed to it. */
static bool serve_one(struct emb *e, struct queue *q)
{
    struct eng_op *op = list_entry(q->waiters.next, struct eng_op, link);
    uint64_t mark = e->journal_count, newest = 0;
    if (!eng_can_write(e)) {
        waiters_cancel(e, op);
        eng_fail(e, op, ENG_STORAGE_UNAVAILABLE);
        return true;
    }
    enum eng_status st = message_reserve_into(e, q, op->want_n, op->timeout_s, op->exact_timeout,
                                              op->delete_on_reserve, &op->res, &newest);
    if (st != ENG_OK) {
        waiters_cancel(e, op);
        eng_fail(e, op, st);
        return true;
    }
    if (op->res.n_messages == 0)
        return false; /* everything ready was dead-lettered: keep waiting */
    waiters_cancel(e, op);
    eng_finish(e, op, mark, newest);
    return true;
}

void waiters_feed(struct emb *e)
{
    while (!list_empty(&e->to_feed)) {
        struct list_node *link = e->to_feed.next;
        list_remove(link);
        struct queue *q = list_entry(link, struct queue, feed_link);
        while (q->n_ready && !list_empty(&q->waiters))
            if (!serve_one(e, q))
                break;
    }
}

void waiters_on_timer(struct emb *e, struct eng_op *op)
{
    uint64_t mark = e->journal_count;
    list_remove(&op->link);
    op->waiting_on = NULL;
    eng_finish(e, op, mark, 0);
}

void waiters_finish_all(struct emb *e, struct queue *q)
{
    while (!list_empty(&q->waiters)) {
        struct eng_op *op = list_entry(q->waiters.next, struct eng_op, link);
        uint64_t mark = e->journal_count;
        waiters_cancel(e, op);
        eng_finish(e, op, mark, 0);
    }
}
