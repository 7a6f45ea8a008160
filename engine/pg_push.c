/* engine/pg_push.c — push delivery on the PostgreSQL back end. A push message is a row of
 * anvil_messages that no reserve sees (visible_at = infinity) with a row of anvil_pushes:
 * when it is next due, its packed delivery state (delivery.c) and the claim of the node
 * delivering it. Any node may deliver any message, and only one does at a time:
 *   - claim: one statement takes the due rows (FOR UPDATE SKIP LOCKED) and marks them
 *     owned by this claim until a lease runs out (the push timeout and some);
 *   - the node sends through its pusher and keeps the state in memory while requests are
 *     out; when none is, it writes the state back and lets the claim go, with the next due
 *     time (a retry, a 202's deadline) — or deletes the message when delivery is over,
 *     after posting the error message when some subscriber never got it;
 *   - a node that dies holding a claim loses nothing: the row is due again when the lease
 *     runs out and another node takes it (the requests that were out are sent again:
 *     at-least-once, as the wire contract allows);
 *   - a subscriber's delete after its 202 (any node) sets a bit in the row; the holder, or
 *     the next claim, applies it.
 * Every due time written NOTIFYs "anvil_push" with it, so each node's timer knows the
 * earliest one without polling. */
#include "delivery.h"
#include "hmap.h"
#include "pg_internal.h"
#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* A message this node has claimed. */
struct pgp_msg {
    struct list_node link;      /* push.claimed */
    struct list_node wait_link; /* push.waiting, while sends wait for room */
    uint64_t id;
    char owner[RESERVATION_ID_HEX + 1];
    char project[256], queue[256];
    uint64_t queue_hash;        /* of project and queue: unicast turns, subscriber slots */
    enum queue_type type;
    struct push_settings *ps;   /* the queue's settings when claimed */
    struct blob *body, *headers;
    struct delivery d;
    delivery_rid *rids;
    uint64_t applied;           /* acknowledgement bits read with the claim */
    uint32_t out;               /* requests out (HTTP, or posts to ironmq:/// queues) */
};

/* A post to an ironmq:/// subscriber's queue. */
static void random_hex(char out[RESERVATION_ID_HEX + 1]);

struct pgp_post {
    struct eng_op op;
    struct pgb *b;
    struct pgp_msg *m;
    uint32_t sub, try_no;
};

/* A request's reservation id: the claim's token (16 hex), the subscriber's index (2 hex),
 * then random: a delete by the subscriber finds the claim and the subscriber by it. */
static void request_rid(const struct pgp_msg *m, uint32_t i, char out[RESERVATION_ID_HEX + 1])
{
    char random[RESERVATION_ID_HEX + 1];
    random_hex(random);
    snprintf(out, RESERVATION_ID_HEX + 1, "%.16s%02x%.14s", m->owner, i & 0xffu, random);
}

/* Random hex from the kernel; should it ever fail, a splitmix64 sequence seeded from the
 * clock keeps ids distinct (they are claim tokens and reservation ids, not secrets). */
static void random_hex(char out[RESERVATION_ID_HEX + 1])
{
    static uint64_t fallback;
    uint8_t raw[RESERVATION_ID_BYTES];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        for (size_t i = 0; i < sizeof(raw); i += 8) {
            uint64_t z = (fallback += 0x9e3779b97f4a7c15ull + (uint64_t)time(NULL));
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            memcpy(raw + i, &z, 8);
        }
    ids_hex(raw, sizeof(raw), out);
}

static uint32_t delay_of(const struct pgp_msg *m)
{
    return m->ps ? m->ps->retries_delay_s : PUSH_RETRIES_DELAY_DEFAULT_S;
}

static uint32_t lease_s(const struct pgb *b)
{
    uint32_t timeout_ms = b->push.pusher.timeout_ms ? b->push.pusher.timeout_ms : 10000;
    return timeout_ms / 1000 + 2;
}

static void msg_free(struct pgb *b, struct pgp_msg *m)
{
    list_remove(&m->link);
    if (list_linked(&m->wait_link))
        list_remove(&m->wait_link);
    b->push.n_claimed--;
    push_settings_free(m->ps);
    blob_unref(m->body);
    blob_unref(m->headers);
    delivery_free(&m->d);
    free(m->rids);
    free(m);
}

/* The node's timer: at `at_ms` unless it is set earlier already. */
static void timer_at(struct pgb *b, int64_t at_ms)
{
    if (list_linked(&b->push.timer.link) && b->push.timer_at <= at_ms)
        return;
    tw_cancel(&b->wheel, &b->push.timer);
    b->push.timer_at = at_ms;
    tw_insert(&b->wheel, &b->push.timer, at_ms);
}

/* ---- writing the state back, finishing ---- */

/* $1 message, $2 owner, $3 state, $4 reservations that may be acknowledged (text[]), $5
 * their subscribers' names, $6 acknowledgements applied, $7 next due (ms), $8 the
 * subscribers that have not got it. */
static const char sql_write_back[] =
    "WITH u AS (UPDATE anvil_pushes SET state = $3, rids = $4::text[], rnames = $5::text[],"
    "  pending = $8::bigint,"
    "  acked = acked & ~$6::bigint, owner = NULL,"
    "  due_at = CASE WHEN acked & ~$6::bigint <> 0 THEN now() ELSE to_timestamp($7::bigint / 1000.0) END"
    "  WHERE message = $1 AND owner = $2 RETURNING due_at)"
    " SELECT pg_notify('anvil_push', (extract(epoch FROM due_at) * 1000)::bigint::text) FROM u";

static const char sql_finish[] =
    "WITH gone AS (DELETE FROM anvil_messages m USING anvil_pushes p"
    "  WHERE m.id = $1 AND p.message = m.id AND p.owner = $2 RETURNING m.id, m.queue),"
    PG_COUNT_GONE "," PG_UNPUSH " SELECT count(*) FROM gone";

static void on_written(struct pgb *b, struct pg_job *j, PGresult *res)
{
    (void)j, (void)res;
    pgp_claim(b); /* room for more */
}

/* A text[] literal of n strings (NULL entries: NULL). */

static void write_back(struct pgb *b, struct pgp_msg *m, int64_t next_ms)
{
    const char *rids[PUSH_SUBSCRIBERS_MAX], *names[PUSH_SUBSCRIBERS_MAX];
    uint32_t n = m->d.n < PUSH_SUBSCRIBERS_MAX ? m->d.n : PUSH_SUBSCRIBERS_MAX;
    for (uint32_t i = 0; i < n; i++) {
        rids[i] = m->d.subs[i].state == DS_RESERVED ? m->rids[i] : NULL;
        names[i] = m->ps && i < m->ps->n_subscribers ? m->ps->subscribers[i].name : "";
    }
    char *state = delivery_pack(&m->d, (const delivery_rid *)m->rids), *r = pg_text_array(rids, n), *nm = pg_text_array(names, n);
    struct pg_job *j = state && r && nm ? pg_job_new(sql_write_back, on_written, NULL) : NULL;
    if (j) {
        char num[24];
        pg_param_u64(j, m->id);
        pg_param_text(j, m->owner);
        pg_param_text(j, state);
        pg_param_text(j, r);
        pg_param_text(j, nm);
        pg_param_u64(j, m->applied);
        snprintf(num, sizeof(num), "%lld", (long long)(next_ms == INT64_MAX ? b->now_ms : next_ms));
        pg_param_text(j, num);
        uint64_t pending = 0;
        for (uint32_t i = 0; i < n; i++)
            if (m->d.subs[i].state != DS_DELIVERED)
                pending |= 1ull << i;
        snprintf(num, sizeof(num), "%lld", (long long)pending);
        pg_param_text(j, num);
        pg_submit(b, j);
    } /* else out of memory: the claim runs out and another turn delivers it */
    free(state);
    free(r);
    free(nm);
    msg_free(b, m);
}

static void msg_rid(const void *ctx, uint32_t i, char out[RESERVATION_ID_HEX + 1])
{
    const struct pgp_msg *m = ctx;
    memcpy(out, m->rids[i], RESERVATION_ID_HEX + 1);
}

static struct eng_push_status *statuses_of(const struct pgp_msg *m)
{
    return delivery_statuses(&m->d, m->ps ? m->ps->subscribers : NULL,
                             m->ps ? m->ps->n_subscribers : 0, msg_rid, m);
}

/* Delivery is over: the error message (when wanted), then the delete. */
static void finish(struct pgb *b, struct pgp_msg *m, bool expired)
{
    struct pgp *p = &b->push;
    if (!expired && delivery_failed(&m->d) && m->ps && m->ps->error_queue && p->pusher.failed) {
        struct eng_push_status *subs = statuses_of(m);
        if (subs) {
            struct eng_push_failure f = {.project = m->project, .queue = m->queue,
                                         .error_queue = m->ps->error_queue, .msg_id = m->id,
                                         .body = m->body, .subs = subs, .n_subs = m->d.n};
            p->pusher.failed(p->pusher.ctx, &f);
        }
        eng_push_statuses_free(subs, m->d.n);
    }
    struct pg_job *j = pg_job_new(sql_finish, on_written, NULL);
    if (j) {
        pg_param_u64(j, m->id);
        pg_param_text(j, m->owner);
        pg_submit(b, j);
    }
    msg_free(b, m);
}

/* ---- sending ---- */

/* The counter of requests out to subscriber `name` of m's queue (names whose hashes meet
 * share one bound). */
static uint32_t busy_slot(const struct pgp_msg *m, const char *name)
{
    return (uint32_t)(hash_bytes(name, strlen(name), m->queue_hash) & 4095u);
}

static void after_answer(struct pgb *b, struct pgp_msg *m);

static void on_queue_posted(struct eng_op *op, const struct eng_result *res)
{
    struct pgp_post *pp = op->ctx;
    struct pgb *b = pp->b;
    struct pgp_msg *m = pp->m;
    int status = res->status == ENG_OK ? 200 : 503;
    uint32_t sub = pp->sub, try_no = pp->try_no;
    free(pp);
    if (b->push.closing)
        return;
    if (m->d.subs[sub].state == DS_SENDING && m->d.subs[sub].tries == try_no)
        delivery_answer(&m->d, sub, status, b->now_ms, delay_of(m));
    m->out--;
    after_answer(b, m);
}

/* A subscriber `ironmq:///name`: the message is posted to that queue of the project. */
static void post_to_queue(struct pgb *b, struct pgp_msg *m, uint32_t i, const char *name)
{
    struct pgp_post *pp = calloc(1, sizeof(*pp));
    delivery_sending(&m->d, i, b->now_ms);
    if (!pp) {
        delivery_answer(&m->d, i, 503, b->now_ms, delay_of(m));
        return;
    }
    pp->b = b;
    pp->m = m;
    pp->sub = i;
    pp->try_no = m->d.subs[i].tries;
    pp->op.done = on_queue_posted;
    pp->op.ctx = pp;
    m->out++;
    struct eng_post_msg msg = {.body = (const char *)m->body->data, .body_len = m->body->len,
                               .push_headers = m->headers ? (char *)m->headers->data : NULL,
                               .push_headers_len = m->headers ? m->headers->len : 0};
    pg_post(b, &pp->op, m->project, name, &msg, 1);
}

/* Sends what is due now; false when something due must wait for room. */
static bool send_due(struct pgb *b, struct pgp_msg *m)
{
    struct pgp *p = &b->push;
    bool all = true;
    for (uint32_t i = 0; i < m->d.n; i++) {
        struct delivery_sub *s = &m->d.subs[i];
        if (s->state != DS_DUE || s->due_ms > b->now_ms)
            continue;
        if (!m->ps || i >= m->ps->n_subscribers) { /* removed since the post: nothing to do */
            delivery_sending(&m->d, i, b->now_ms);
            delivery_answer(&m->d, i, 200, b->now_ms, delay_of(m));
            continue;
        }
        const struct eng_subscriber *sub = &m->ps->subscribers[i];
        if (strncmp(sub->url, "ironmq:///", 10) == 0) {
            request_rid(m, i, m->rids[i]);
            post_to_queue(b, m, i, sub->url + 10);
            continue;
        }
        uint32_t slot = busy_slot(m, sub->name);
        if (p->in_flight >= p->pusher.max_in_flight || p->busy[slot] >= p->pusher.max_per_subscriber) {
            all = false;
            continue;
        }
        request_rid(m, i, m->rids[i]);
        delivery_sending(&m->d, i, b->now_ms);
        struct eng_push_request req = {.msg_id = m->id, .subscriber = i, .try_no = s->tries,
                                       .slot = slot, .project = m->project, .queue = m->queue,
                                       .sub = sub, .body = m->body, .reservation_id = m->rids[i],
                                       .push_headers = m->headers};
        p->in_flight++;
        p->busy[slot]++;
        m->out++;
        p->pusher.send(p->pusher.ctx, &req);
    }
    return all;
}

/* What to do with a claimed message now: finish it, send what is due, or let it go until
 * its next due time. */
static void advance(struct pgb *b, struct pgp_msg *m)
{
    if (b->push.closing)
        return;
    int64_t next = delivery_tick(&m->d, b->now_ms, delay_of(m));
    if (delivery_finished(&m->d)) {
        if (m->out == 0)
            finish(b, m, false);
        return;
    }
    if (next <= b->now_ms && !send_due(b, m)) {
        if (!list_linked(&m->wait_link))
            list_push_back(&b->push.waiting, &m->wait_link);
        return;
    }
    if (list_linked(&m->wait_link))
        list_remove(&m->wait_link);
    if (m->out > 0)
        return; /* answers to come */
    next = delivery_tick(&m->d, b->now_ms, delay_of(m));
    if (delivery_finished(&m->d))
        finish(b, m, false);
    else
        write_back(b, m, next);
}

static void after_answer(struct pgb *b, struct pgp_msg *m)
{
    if (m->out == 0)
        advance(b, m);
}

/* Room freed: messages waiting for it go on, in the order they began waiting. */
static void pump_waiting(struct pgb *b)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &b->push.waiting) {
        struct pgp_msg *m = list_entry(pos, struct pgp_msg, wait_link);
        list_remove(&m->wait_link);
        advance(b, m);
        if (b->push.in_flight >= b->push.pusher.max_in_flight)
            break;
    }
}

/* ---- claiming ---- */

/* $1 how many, $2 the claim's owner token, $3 the lease (s). Rows of the claimed messages
 * (or one of NULLs), each with the earliest due time of the others. */
static const char sql_claim[] =
    "WITH c AS (SELECT message FROM anvil_pushes WHERE due_at <= now()"
    "  ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
    " u AS (UPDATE anvil_pushes p SET owner = $2, due_at = now() + make_interval(secs => $3::int)"
    "  FROM c WHERE p.message = c.message RETURNING p.message, p.state, p.acked, p.headers, p.due_at, p.subs),"
    " got AS (SELECT u.message, u.state, u.acked, u.headers, m.body, q.project, q.name, q.type,"
    "  q.push, m.expires_at <= now() AS expired,"
    "  pg_notify('anvil_push', (extract(epoch FROM u.due_at) * 1000)::bigint::text), u.subs"
    "  FROM u JOIN anvil_messages m ON m.id = u.message JOIN anvil_queues q ON q.id = m.queue)"
    " SELECT got.*, (SELECT (extract(epoch FROM min(due_at)) * 1000)::bigint FROM anvil_pushes"
    "  WHERE message NOT IN (SELECT message FROM c))"
    " FROM (SELECT 1) one LEFT JOIN got ON true";

/* Unicast takes subscribers in turn: each node keeps a turn per queue (queues whose
 * hashes meet share one), so one node alone goes round exactly as the embedded back end. */
static uint32_t next_turn(struct pgb *b, const struct pgp_msg *m)
{
    return b->push.turns[m->queue_hash % (sizeof(b->push.turns) / sizeof(b->push.turns[0]))]++;
}

/* A claimed row as a message to deliver; NULL when it cannot be read (out of memory, or
 * a state this anvil does not know: left for the lease to run out). */
static struct pgp_msg *msg_from_row(struct pgb *b, PGresult *res, int row, const char *owner)
{
    struct pgp_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    list_init(&m->link);
    list_init(&m->wait_link);
    list_push_back(&b->push.claimed, &m->link);
    b->push.n_claimed++;
    m->id = (uint64_t)pg_col_i64(res, row, 0);
    memcpy(m->owner, owner, sizeof(m->owner));
    snprintf(m->project, sizeof(m->project), "%s", PQgetvalue(res, row, 5));
    snprintf(m->queue, sizeof(m->queue), "%s", PQgetvalue(res, row, 6));
    m->queue_hash = hash_bytes(m->queue, strlen(m->queue),
                               hash_bytes(m->project, strlen(m->project) + 1, 0));
    m->type = (enum queue_type)pg_col_i64(res, row, 7);
    m->applied = (uint64_t)pg_col_i64(res, row, 2);
    m->headers = pg_col_blob(res, row, 3);
    m->body = pg_col_blob(res, row, 4);
    struct blob *packed = pg_col_blob(res, row, 8);
    bool ok = m->body && packed && push_unpack((const char *)packed->data, packed->len, &m->ps) == 0 &&
              m->ps->n_subscribers > 0 && m->type != QUEUE_PULL;
    blob_unref(packed);
    /* the subscribers when it was posted (those added since do not get it; removed ones
     * are skipped) */
    uint32_t n = (uint32_t)pg_col_i64(res, row, 11);
    if (ok && (n == 0 || n > PUSH_SUBSCRIBERS_MAX))
        n = m->ps->n_subscribers;
    if (ok && PQgetisnull(res, row, 1)) /* not started: unicast starts with the next in turn */
        ok = delivery_init(&m->d, m->type, n, m->ps->retries, next_turn(b, m), b->now_ms) == 0 &&
             (m->rids = calloc(n, sizeof(*m->rids)));
    else if (ok)
        ok = delivery_unpack(&m->d, &m->rids, PQgetvalue(res, row, 1), b->now_ms) == 0;
    if (!ok) {
        msg_free(b, m);
        return NULL;
    }
    for (uint32_t i = 0; i < m->d.n && i < 64; i++) /* subscribers' deletes after a 202 */
        if (m->applied & (1ull << i))
            delivery_acknowledge(&m->d, i);
    return m;
}

static void on_claimed(struct pgb *b, struct pg_job *j, PGresult *res)
{
    struct pgp *p = &b->push;
    p->claiming = false;
    if (p->closing)
        return;
    if (pg_result_status(res) != ENG_OK) { /* storage trouble: once more in 100 ms */
        timer_at(b, b->now_ms + 100);
        return;
    }
    int rows = PQntuples(res);
    int got = 0;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 0))
            continue;
        got++;
        struct pgp_msg *m = msg_from_row(b, res, i, j->project);
        if (m && strcmp(PQgetvalue(res, i, 9), "t") == 0)
            finish(b, m, true); /* expired before it was delivered */
        else if (m)
            advance(b, m);
    }
    if (rows && !PQgetisnull(res, 0, 12)) {
        int64_t next = pg_col_i64(res, 0, 12);
        /* due already but not taken: held by another statement just now, or past the limit */
        if (next <= b->now_ms)
            next = got ? b->now_ms : b->now_ms + 50;
        timer_at(b, next);
    }
    if (p->again) {
        p->again = false;
        pgp_claim(b);
    }
}

void pgp_claim(struct pgb *b)
{
    struct pgp *p = &b->push;
    if (!p->pusher.send || p->closing || b->shutting_down)
        return;
    if (p->claiming) {
        p->again = true;
        return;
    }
    uint32_t max = p->pusher.max_in_flight;
    if (p->n_claimed >= max)
        return; /* an answer or a finish claims again */
    uint32_t n = max - p->n_claimed < 100 ? max - p->n_claimed : 100;
    struct pg_job *j = pg_job_new(sql_claim, on_claimed, NULL);
    if (!j) {
        timer_at(b, b->now_ms + 100);
        return;
    }
    random_hex(j->project); /* the claim's owner token */
    char lease[16];
    snprintf(lease, sizeof(lease), "%u", lease_s(b));
    pg_param_u64(j, n);
    pg_param_text(j, j->project);
    pg_param_text(j, lease);
    p->claiming = true;
    pg_submit(b, j);
}

void pgp_on_timer(struct pgb *b)
{
    b->push.timer_at = INT64_MAX;
    pgp_claim(b);
}

void pgp_on_notify(struct pgb *b, const char *payload)
{
    char *end = NULL;
    long long at = strtoll(payload, &end, 10);
    if (!end || *end || end == payload)
        return;
    if (at <= b->now_ms)
        pgp_claim(b);
    else
        timer_at(b, at);
}

/* ---- the engine's calls ---- */

void pg_set_pusher(struct pgb *b, const struct eng_pusher *pusher)
{
    struct pgp *p = &b->push;
    p->pusher = *pusher;
    if (!p->pusher.max_in_flight)
        p->pusher.max_in_flight = 1;
    if (!p->pusher.max_per_subscriber)
        p->pusher.max_per_subscriber = p->pusher.max_in_flight;
    pgp_claim(b); /* what waited while no node delivered */
}

static struct pgp_msg *claimed_by_id(struct pgb *b, uint64_t id)
{
    struct list_node *pos;
    for (pos = b->push.claimed.next; pos != &b->push.claimed; pos = pos->next) {
        struct pgp_msg *m = list_entry(pos, struct pgp_msg, link);
        if (m->id == id)
            return m;
    }
    return NULL;
}

void pg_push_answer(struct pgb *b, uint64_t msg_id, uint32_t subscriber, uint32_t try_no,
                    uint32_t slot, int status)
{
    struct pgp *p = &b->push;
    if (p->in_flight)
        p->in_flight--;
    if (slot < 4096 && p->busy[slot])
        p->busy[slot]--;
    if (p->closing)
        return;
    struct pgp_msg *m = claimed_by_id(b, msg_id);
    if (m && subscriber < m->d.n && m->d.subs[subscriber].state == DS_SENDING &&
        m->d.subs[subscriber].tries == try_no) {
        delivery_answer(&m->d, subscriber, status, b->now_ms, delay_of(m));
        m->out--;
        after_answer(b, m);
    }
    pump_waiting(b);
    pgp_claim(b);
}

/* Statuses of a message that this node does not hold: $1 project, $2 name, $3 id. One row
 * (type, push, state, message exists) when the queue exists. */
static const char sql_statuses[] =
    "SELECT q.type, q.push, p.state, m.id IS NOT NULL FROM anvil_queues q"
    " LEFT JOIN anvil_messages m ON m.queue = q.id AND m.id = $3 AND m.expires_at > now()"
    " LEFT JOIN anvil_pushes p ON p.message = m.id"
    " WHERE q.project = $1 AND q.name = $2";

static void answer_statuses(struct eng_op *op, const struct pgp_msg *m)
{
    struct eng_result r = {.status = ENG_OK};
    if (!(r.statuses = statuses_of(m)))
        r.status = ENG_NO_MEMORY;
    else
        r.n_statuses = m->d.n;
    pg_answer(op, &r);
}

static void on_statuses(struct pgb *b, struct pg_job *j, PGresult *res)
{
    if (!j->op)
        return;
    enum eng_status st = pg_result_status(res);
    if (st == ENG_OK && PQntuples(res) == 0)
        st = ENG_QUEUE_NOT_FOUND;
    else if (st == ENG_OK && pg_col_i64(res, 0, 0) == QUEUE_PULL)
        st = strcmp(PQgetvalue(res, 0, 3), "t") == 0 ? ENG_NOT_PUSH_QUEUE : ENG_MESSAGE_NOT_FOUND;
    else if (st == ENG_OK && (strcmp(PQgetvalue(res, 0, 3), "t") != 0 || PQgetisnull(res, 0, 1)))
        st = ENG_MESSAGE_NOT_FOUND;
    if (st != ENG_OK) {
        pg_answer_status(j->op, st);
        return;
    }
    struct pgp_msg m = {.type = (enum queue_type)pg_col_i64(res, 0, 0)};
    struct blob *packed = pg_col_blob(res, 0, 1);
    bool ok = packed && push_unpack((const char *)packed->data, packed->len, &m.ps) == 0 &&
              m.ps->n_subscribers > 0;
    blob_unref(packed);
    if (ok && PQgetisnull(res, 0, 2))
        ok = delivery_init(&m.d, m.type, m.ps->n_subscribers, m.ps->retries, 0, b->now_ms) == 0 &&
             (m.rids = calloc(m.ps->n_subscribers, sizeof(*m.rids)));
    else if (ok)
        ok = delivery_unpack(&m.d, &m.rids, PQgetvalue(res, 0, 2), b->now_ms) == 0;
    if (ok)
        answer_statuses(j->op, &m);
    else
        pg_answer_status(j->op, ENG_NO_MEMORY);
    push_settings_free(m.ps);
    delivery_free(&m.d);
    free(m.rids);
}

void pg_push_statuses(struct pgb *b, struct eng_op *op, const char *project, const char *name,
                      uint64_t id)
{
    struct pgp_msg *m = claimed_by_id(b, id);
    if (m && strcmp(m->project, project) == 0 && strcmp(m->queue, name) == 0) {
        op->in_flight = false;
        answer_statuses(op, m); /* this node holds it: what it knows is the newest */
        return;
    }
    struct pg_job *j = pg_call_job(op, sql_statuses, on_statuses, 0, project, name);
    if (!j)
        return;
    pg_param_u64(j, id);
    pg_start(b, j);
}

/* ---- the back end's life ---- */

void pgp_init(struct pgb *b)
{
    list_init(&b->push.claimed);
    list_init(&b->push.waiting);
    tw_node_init(&b->push.timer, TIMER_PUSH);
    b->push.timer_at = INT64_MAX;
}

void pgp_close(struct pgb *b)
{
    b->push.closing = true;
    tw_cancel(&b->wheel, &b->push.timer);
}

void pgp_free_all(struct pgb *b)
{
    struct list_node *pos, *tmp; /* their claims run out: another node goes on */
    list_for_each_safe(pos, tmp, &b->push.claimed)
        msg_free(b, list_entry(pos, struct pgp_msg, link));
}

int pgp_statement_key(const char *sql)
{
    static const char *const fixed[] = {sql_write_back, sql_finish, sql_claim, sql_statuses};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (sql == fixed[i])
            return 50 + (int)i;
    return 0;
}
