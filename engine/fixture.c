/* engine/fixture.c — a project's whole state in and out of the embedded engine, for the
 * test kit (api/admin_state.c): wiping projects, exporting one as a fixture (struct
 * eng_fixture, engine.h) and importing a fixture in place of the projects it names.
 * An import checks the whole fixture before it changes anything, so a bad one leaves the
 * engine as it was; then it wipes those projects and builds their queues and messages,
 * journalled like posts, so a restart brings back what was loaded and nothing that was
 * wiped. Times are the engine's own (a virtual clock in tests); the id generator is moved
 * past every id loaded, so later posts never collide with them. */
#include "core.h"
#include "push.h"

#include <stdlib.h>
#include <string.h>

/* ---- the fixture itself ---- */

static void queue_info_free(struct eng_queue_info *info)
{
    free(info->project);
    free(info->name);
    free(info->dead_letter_queue);
    push_info_free(&info->push);
    blob_unref(info->attributes);
    memset(info, 0, sizeof(*info));
}

static void fixture_queue_free(struct eng_fixture_queue *fq)
{
    queue_info_free(&fq->info);
    for (size_t i = 0; i < fq->n_messages; i++) {
        blob_unref(fq->messages[i].body);
        blob_unref(fq->messages[i].push_headers);
        blob_unref(fq->messages[i].attributes);
    }
    free(fq->messages);
    memset(fq, 0, sizeof(*fq));
}

void eng_fixture_free(struct eng_fixture *fx)
{
    for (size_t p = 0; p < fx->n_projects; p++) {
        struct eng_fixture_project *fp = &fx->projects[p];
        for (size_t q = 0; q < fp->n_queues; q++)
            fixture_queue_free(&fp->queues[q]);
        free(fp->queues);
        free(fp->name);
    }
    free(fx->projects);
    memset(fx, 0, sizeof(*fx));
}

size_t eng_fixture_messages(const struct eng_fixture *fx)
{
    size_t n = 0;
    for (size_t p = 0; p < fx->n_projects; p++)
        for (size_t q = 0; q < fx->projects[p].n_queues; q++)
            n += fx->projects[p].queues[q].n_messages;
    return n;
}

/* ---- wipe ---- */

/* Deletes the project's queues one by one, journalled like a queue delete; the project
 * goes with its last queue. id must not be the project's own string. */
static void wipe_project(struct emb *e, const char *id)
{
    struct project *p;
    while ((p = project_find(e, id)) != NULL) {
        struct queue *q = p->sorted[p->n_sorted - 1];
        struct jrec rec = {.type = JR_QUEUE_DELETE, .queue_key = q->key};
        eng_journal(e, &rec);
        queue_destroy(e, q);
    }
}

struct id_list {
    char **ids;
    size_t n;
    bool failed;
};

static void collect_project(struct hnode *node, void *ctx)
{
    struct id_list *l = ctx;
    char *copy = strdup(list_entry(node, struct project, by_id)->id);
    if (!copy)
        l->failed = true;
    else
        l->ids[l->n++] = copy;
}

static enum eng_status wipe_all(struct emb *e)
{
    struct id_list l = {.ids = calloc(e->projects.count + 1, sizeof(char *))};
    if (!l.ids)
        return ENG_NO_MEMORY;
    hmap_foreach(&e->projects, collect_project, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (!l.failed)
            wipe_project(e, l.ids[i]);
        free(l.ids[i]);
    }
    free(l.ids);
    return l.failed ? ENG_NO_MEMORY : ENG_OK;
}

void emb_wipe(struct emb *e, struct eng_op *op, const char *project)
{
    uint64_t mark = eng_start(e, op);
    enum eng_status st = eng_can_write(e) ? ENG_OK : ENG_STORAGE_UNAVAILABLE;
    if (st == ENG_OK && project)
        wipe_project(e, project);
    else if (st == ENG_OK)
        st = wipe_all(e);
    if (st == ENG_OK)
        eng_finish(e, op, mark, 0);
    else
        eng_fail(e, op, st);
    eng_end(e);
}

/* ---- export ---- */

static int64_t deadline_of(const struct emb *e, const struct tw_node *t)
{
    return tw_pending(t) ? t->expires_ms : e->now_ms;
}

static enum eng_status export_message(struct emb *e, struct message *m,
                                      struct eng_fixture_message *out)
{
    enum eng_status st = message_body(e, m, &out->body);
    if (st != ENG_OK)
        return st;
    out->id = m->id;
    out->reserved_count = m->reserved_count;
    out->created_at_ms = m->created_at_ms;
    out->expires_at_ms = deadline_of(e, &m->expiry);
    if (m->first_reserved_ms)
        out->first_reserved_at_ms = m->created_at_ms + m->first_reserved_ms - 1;
    out->push_headers = blob_ref(pushing_headers(m));
    out->attributes = blob_ref(m->attributes);
    if (m->state == MSG_DELAYED) {
        out->state = FIXTURE_DELAYED;
        out->visible_at_ms = deadline_of(e, &m->visibility);
        out->ready_at_front = m->ready_at_front;
    } else if (m->state == MSG_RESERVED) {
        out->state = FIXTURE_RESERVED;
        out->visible_at_ms = deadline_of(e, &m->visibility);
        out->has_reservation_id = true;
        memcpy(out->reservation, m->reservation, sizeof(out->reservation));
    } else {
        out->state = FIXTURE_READY; /* pushing: its delivery starts over when imported */
    }
    return ENG_OK;
}

/* The queue's messages: ready ones in queue order first, then delayed, reserved, pushing. */
static enum eng_status export_queue(struct emb *e, struct queue *q, struct eng_fixture_queue *out,
                                    uint64_t *newest)
{
    if (queue_fill_info(q, &out->info) != 0)
        return ENG_NO_MEMORY;
    if (q->epoch > *newest)
        *newest = q->epoch;
    size_t n = (size_t)(q->n_ready + q->n_delayed + q->n_reserved + q->n_pushing);
    if (n && !(out->messages = calloc(n, sizeof(*out->messages))))
        return ENG_NO_MEMORY;
    struct list_node *lists[] = {&q->ready, &q->delayed, &q->reserved, &q->pushing};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        struct list_node *pos;
        for (pos = lists[i]->next; pos != lists[i]; pos = pos->next) {
            struct message *m = list_entry(pos, struct message, link);
            enum eng_status st = export_message(e, m, &out->messages[out->n_messages]);
            if (st != ENG_OK)
                return st;
            out->n_messages++;
            if (m->epoch > *newest)
                *newest = m->epoch;
        }
    }
    return ENG_OK;
}

static enum eng_status export_project(struct emb *e, const char *project, struct eng_fixture *out,
                                      uint64_t *newest)
{
    struct project *p = project_find(e, project);
    if (!(out->projects = calloc(1, sizeof(*out->projects))))
        return ENG_NO_MEMORY;
    out->n_projects = 1;
    struct eng_fixture_project *fp = &out->projects[0];
    if (!(fp->name = strdup(project)))
        return ENG_NO_MEMORY;
    if (!p)
        return ENG_OK;
    if (!(fp->queues = calloc(p->n_sorted, sizeof(*fp->queues))))
        return ENG_NO_MEMORY;
    for (size_t i = 0; i < p->n_sorted; i++) {
        enum eng_status st = export_queue(e, p->sorted[i], &fp->queues[i], newest);
        fp->n_queues = i + 1;
        if (st != ENG_OK)
            return st;
    }
    return ENG_OK;
}

void emb_export(struct emb *e, struct eng_op *op, const char *project, struct eng_fixture *out)
{
    uint64_t mark = eng_start(e, op), newest = 0;
    eng_fixture_free(out);
    enum eng_status st = export_project(e, project, out, &newest);
    if (st == ENG_OK) {
        eng_finish(e, op, mark, newest);
    } else {
        eng_fixture_free(out);
        eng_fail(e, op, st);
    }
    eng_end(e);
}

/* ---- import: checks ---- */

/* A create's settings from a fixture queue (strings borrowed from it). */
static void config_of(const struct eng_queue_info *in, struct eng_queue_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->has_type = true;
    cfg->type = in->type;
    cfg->has_message_timeout = in->message_timeout_s != 0;
    cfg->message_timeout_s = in->message_timeout_s;
    cfg->has_message_expiration = in->message_expiration_s != 0;
    cfg->message_expiration_s = in->message_expiration_s;
    if (in->dead_letter_queue && in->dead_letter_queue[0]) {
        cfg->has_dead_letter_queue = cfg->has_dead_letter_max = true;
        cfg->dead_letter_queue = in->dead_letter_queue;
        cfg->dead_letter_max = in->dead_letter_max ? in->dead_letter_max : DEAD_LETTER_DEFAULT_MAX;
    }
    const struct eng_push_info *p = &in->push;
    cfg->has_push = in->type != QUEUE_PULL || p->n_subscribers || p->error_queue;
    struct eng_push_config *pc = &cfg->push;
    pc->has_subscribers = true;
    pc->subscribers = p->subscribers;
    pc->n_subscribers = p->n_subscribers;
    pc->has_retries = pc->has_retries_delay = true;
    pc->retries = p->retries;
    pc->retries_delay_s = p->retries_delay_s ? p->retries_delay_s : PUSH_RETRIES_DELAY_DEFAULT_S;
    pc->has_error_queue = p->error_queue != NULL;
    pc->error_queue = p->error_queue;
    cfg->has_attributes = in->attributes != NULL;
    cfg->attributes = in->attributes ? in->attributes->data : NULL;
    cfg->attributes_len = in->attributes ? in->attributes->len : 0;
}

/* The fixture project's queues sorted by name, for lookups by name. */
static int by_name(const void *a, const void *b)
{
    const struct eng_fixture_queue *x = *(const struct eng_fixture_queue *const *)a;
    const struct eng_fixture_queue *y = *(const struct eng_fixture_queue *const *)b;
    return strcmp(x->info.name, y->info.name);
}

struct names {
    const struct eng_fixture_queue **sorted;
    size_t n;
};

static const struct eng_fixture_queue *names_find(const struct names *nm, const char *name)
{
    size_t lo = 0, hi = nm->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(nm->sorted[mid]->info.name, name);
        if (c == 0)
            return nm->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Does following dead-letter queues from fq come back to it? */
static bool dead_letters_loop(const struct names *nm, const struct eng_fixture_queue *fq)
{
    const char *next = fq->info.dead_letter_queue;
    for (size_t hops = 0; next && next[0] && hops <= nm->n; hops++) {
        if (strcmp(next, fq->info.name) == 0)
            return true;
        const struct eng_fixture_queue *t = names_find(nm, next);
        next = t ? t->info.dead_letter_queue : NULL;
    }
    return false;
}

/* Would queue subscribers (ironmq:///NAME) of `from` send messages round back to `name`? */
static bool pushes_loop(const struct names *nm, const char *name,
                        const struct eng_fixture_queue *from, size_t depth)
{
    if (depth > nm->n + 1)
        return true; /* longer than any path without a cycle */
    const struct eng_push_info *p = &from->info.push;
    for (uint32_t i = 0; i < p->n_subscribers; i++) {
        const char *url = p->subscribers[i].url;
        if (!url || strncmp(url, "ironmq:///", 10) != 0)
            continue;
        if (strcmp(url + 10, name) == 0)
            return true;
        const struct eng_fixture_queue *t = names_find(nm, url + 10);
        if (t && t->info.type != QUEUE_PULL && pushes_loop(nm, name, t, depth + 1))
            return true;
    }
    return false;
}

static enum eng_status check_queue(const struct emb *e, const struct names *nm,
                                   const struct eng_fixture_queue *fq)
{
    const struct eng_queue_info *in = &fq->info;
    struct eng_queue_config cfg;
    config_of(in, &cfg);
    enum eng_status st = push_check(NULL, in->name, in->type, &cfg);
    if (st != ENG_OK)
        return st;
    if (in->type != QUEUE_PULL && pushes_loop(nm, in->name, fq, 0))
        return ENG_PUSH_LOOP;
    if (cfg.has_dead_letter_queue && strcmp(in->dead_letter_queue, in->name) == 0)
        return ENG_DEAD_LETTER_SELF;
    if (dead_letters_loop(nm, fq))
        return ENG_DEAD_LETTER_CYCLE;
    if (in->type != QUEUE_PULL && fq->n_messages && !e->pusher.send)
        return ENG_PUSH_UNSUPPORTED;
    for (size_t m = 0; m < fq->n_messages; m++)
        if (!fq->messages[m].body)
            return ENG_FIXTURE_INVALID;
    return ENG_OK;
}

static enum eng_status check_project(const struct emb *e, const struct eng_fixture_project *fp,
                                     struct eng_fixture_where *where)
{
    struct names nm = {.sorted = calloc(fp->n_queues + 1, sizeof(*nm.sorted)), .n = fp->n_queues};
    if (!nm.sorted)
        return ENG_NO_MEMORY;
    enum eng_status st = ENG_OK;
    for (size_t q = 0; st == ENG_OK && q < fp->n_queues; q++)
        if (!fp->queues[q].info.name || !fp->queues[q].info.name[0]) {
            where->queue = q;
            st = ENG_FIXTURE_INVALID;
        } else {
            nm.sorted[q] = &fp->queues[q];
        }
    if (st == ENG_OK)
        qsort(nm.sorted, nm.n, sizeof(*nm.sorted), by_name);
    for (size_t i = 1; st == ENG_OK && i < nm.n; i++)
        if (strcmp(nm.sorted[i - 1]->info.name, nm.sorted[i]->info.name) == 0) {
            where->queue = (size_t)(nm.sorted[i] - fp->queues);
            st = ENG_NAME_REPEATED;
        }
    for (size_t q = 0; st == ENG_OK && q < fp->n_queues; q++)
        if ((st = check_queue(e, &nm, &fp->queues[q])) != ENG_OK)
            where->queue = q;
    free(nm.sorted);
    return st;
}

/* A message id of the fixture and where it is. */
struct given_id {
    uint64_t id;
    size_t project, queue, message;
};

static int by_id(const void *a, const void *b)
{
    const struct given_id *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool project_named(const struct eng_fixture *fx, const char *name)
{
    for (size_t p = 0; p < fx->n_projects; p++)
        if (strcmp(fx->projects[p].name, name) == 0)
            return true;
    return false;
}

/* Ids given twice, or in use by a message of a project the import leaves alone. */
static enum eng_status check_ids(struct emb *e, const struct eng_fixture *fx,
                                 struct eng_fixture_where *where, uint64_t *max_id)
{
    size_t n = eng_fixture_messages(fx), k = 0;
    struct given_id *ids = calloc(n + 1, sizeof(*ids));
    if (!ids)
        return ENG_NO_MEMORY;
    for (size_t p = 0; p < fx->n_projects; p++)
        for (size_t q = 0; q < fx->projects[p].n_queues; q++)
            for (size_t m = 0; m < fx->projects[p].queues[q].n_messages; m++)
                if (fx->projects[p].queues[q].messages[m].id)
                    ids[k++] = (struct given_id){fx->projects[p].queues[q].messages[m].id, p, q, m};
    qsort(ids, k, sizeof(*ids), by_id);
    enum eng_status st = ENG_OK;
    for (size_t i = 0; st == ENG_OK && i < k; i++) {
        const struct message *m = message_by_id(e, ids[i].id);
        if (i && ids[i].id == ids[i - 1].id)
            st = ENG_ID_REPEATED;
        else if (m && !project_named(fx, m->queue->project->id))
            st = ENG_ID_TAKEN;
        if (st != ENG_OK)
            *where = (struct eng_fixture_where){ids[i].project, ids[i].queue, ids[i].message, ids[i].id};
    }
    *max_id = k ? ids[k - 1].id : 0;
    free(ids);
    return st;
}

static enum eng_status check_fixture(struct emb *e, const struct eng_fixture *fx,
                                     struct eng_fixture_where *where, uint64_t *max_id)
{
    *where = (struct eng_fixture_where){SIZE_MAX, SIZE_MAX, SIZE_MAX, 0};
    uint64_t body_costs = 0;
    for (size_t p = 0; p < fx->n_projects; p++) {
        where->project = p;
        const struct eng_fixture_project *fp = &fx->projects[p];
        if (!fp->name || !fp->name[0])
            return ENG_FIXTURE_INVALID;
        for (size_t o = 0; o < p; o++)
            if (strcmp(fx->projects[o].name, fp->name) == 0)
                return ENG_NAME_REPEATED;
        enum eng_status st = check_project(e, fp, where);
        if (st != ENG_OK)
            return st;
        for (size_t q = 0; q < fp->n_queues; q++)
            for (size_t m = 0; m < fp->queues[q].n_messages; m++)
                body_costs += body_cost(fp->queues[q].messages[m].body->len);
    }
    *where = (struct eng_fixture_where){SIZE_MAX, SIZE_MAX, SIZE_MAX, 0};
    enum eng_status st = check_ids(e, fx, where, max_id);
    if (st != ENG_OK)
        return st;
    /* Counted as if nothing were wiped first: a fixture that fits only after the wipe is
     * refused, which is the safe side of an all-or-nothing call. */
    return memory_admit(e, eng_fixture_messages(fx), body_costs);
}

/* ---- import: building ---- */

static int64_t visible_at(const struct emb *e, const struct queue *q,
                          const struct eng_fixture_message *fm)
{
    if (fm->visible_at_ms)
        return fm->visible_at_ms;
    if (fm->visible_in_ms)
        return e->now_ms + fm->visible_in_ms;
    if (fm->state == FIXTURE_RESERVED)
        return e->now_ms + (int64_t)q->message_timeout_s * 1000;
    return 0;
}

/* Puts m where fm says. A reservation or delay that has already ended leaves the message
 * ready, at the front when that is where its timer would have put it. -1: out of memory. */
static int place(struct emb *e, struct message *m, const struct eng_fixture_message *fm,
                 int64_t visible, int64_t expires)
{
    bool reserved = fm->state == FIXTURE_RESERVED, delayed = fm->state == FIXTURE_DELAYED;
    if (m->queue->type != QUEUE_PULL)
        return message_place_new(e, m, delayed ? visible : 0, expires);
    if ((reserved || delayed) && visible > e->now_ms) {
        tw_insert(&e->wheel, &m->expiry, expires);
        tw_insert(&e->wheel, &m->visibility, visible);
        message_enter(m, reserved ? MSG_RESERVED : MSG_DELAYED, false);
        m->ready_at_front = delayed && fm->ready_at_front;
        if (reserved && fm->has_reservation_id)
            memcpy(m->reservation, fm->reservation, sizeof(m->reservation));
        else if (reserved)
            ids_new_reservation(&e->ids, m->reservation);
        return 0;
    }
    if (reserved || (delayed && fm->ready_at_front)) {
        tw_insert(&e->wheel, &m->expiry, expires);
        message_enter(m, MSG_READY, true);
        waiters_note_ready(e, m->queue);
        return 0;
    }
    return message_place_new(e, m, 0, expires);
}

static void journal_message(struct emb *e, struct message *m, const struct eng_fixture_message *fm,
                            int64_t visible, int64_t expires)
{
    /* Reservations are not durable: a reserved message comes back ready after a restart. */
    bool delayed = m->state == MSG_DELAYED || (m->state == MSG_PUSHING && visible > e->now_ms);
    struct blob *headers = pushing_headers(m);
    struct jrec rec = {.type = JR_MSG_PUT,
                       .msg_id = m->id,
                       .queue_key = m->queue->key,
                       .count = m->reserved_count,
                       .body = e->store ? blob_ref(fm->body) : NULL,
                       .push_headers = e->store ? blob_ref(headers) : NULL,
                       .attributes = e->store ? blob_ref(m->attributes) : NULL,
                       .created_at_ms = m->created_at_ms,
                       .visible_at_ms = delayed ? visible : 0,
                       .expires_at_ms = expires};
    m->epoch = eng_journal(e, &rec);
}

static enum eng_status build_message(struct emb *e, struct queue *q,
                                     const struct eng_fixture_message *fm)
{
    int64_t now = e->now_ms;
    int64_t created = fm->created_at_ms ? fm->created_at_ms : now;
    int64_t expires = fm->expires_at_ms   ? fm->expires_at_ms
                      : fm->expires_in_ms ? now + fm->expires_in_ms
                                          : created + (int64_t)q->message_expiration_s * 1000;
    if (expires <= now)
        return ENG_OK; /* it would have expired by now: there is nothing to load */
    uint64_t id = fm->id ? fm->id : ids_next_message(&e->ids, now);
    struct message *m = message_new(e, q, blob_ref(fm->body), fm->body->len, id);
    if (!m) {
        blob_unref(fm->body);
        return ENG_NO_MEMORY;
    }
    m->created_at_ms = created;
    m->reserved_count = fm->reserved_count;
    m->attributes = blob_ref(fm->attributes);
    if (fm->first_reserved_at_ms) {
        int64_t after = fm->first_reserved_at_ms - created + 1;
        m->first_reserved_ms = after < 1 ? 1 : after > UINT32_MAX ? UINT32_MAX : (uint32_t)after;
    }
    memory_track(e, m);
    int64_t visible = visible_at(e, q, fm);
    if (place(e, m, fm, visible, expires) != 0) {
        memory_untrack(e, m);
        hmap_remove(&e->messages, &m->by_id);
        message_free(e, m);
        return ENG_NO_MEMORY;
    }
    if (m->job && fm->push_headers)
        pushing_set_headers(m, blob_ref(fm->push_headers));
    journal_message(e, m, fm, visible, expires);
    return ENG_OK;
}

static enum eng_status build_queue(struct emb *e, const char *project,
                                   const struct eng_fixture_queue *fq)
{
    const struct eng_queue_info *in = &fq->info;
    struct queue *q = queue_create(e, project, in->name);
    if (!q)
        return ENG_NO_MEMORY;
    struct eng_queue_config cfg;
    config_of(in, &cfg);
    q->type = in->type;
    if (queue_apply_config(q, &cfg) != 0)
        return ENG_NO_MEMORY;
    if (in->id[0])
        memcpy(q->id, in->id, sizeof(q->id));
    if (in->created_at_ms)
        q->created_at_ms = in->created_at_ms;
    q->total_messages = in->total_messages ? in->total_messages : fq->n_messages;
    queue_journal_put(e, q);
    for (size_t i = 0; i < fq->n_messages; i++) {
        enum eng_status st = build_message(e, q, &fq->messages[i]);
        if (st != ENG_OK)
            return st;
    }
    return ENG_OK;
}

void emb_import(struct emb *e, struct eng_op *op, const struct eng_fixture *fx)
{
    uint64_t mark = eng_start(e, op), max_id = 0;
    struct eng_fixture_where where;
    enum eng_status st = eng_can_write(e) ? check_fixture(e, fx, &where, &max_id)
                                          : ENG_STORAGE_UNAVAILABLE;
    if (st == ENG_OK) {
        for (size_t p = 0; p < fx->n_projects; p++)
            wipe_project(e, fx->projects[p].name);
        if (max_id > e->ids.last_message_id)
            e->ids.last_message_id = max_id; /* new ids go on from the highest one loaded */
    }
    /* Past the checks only memory can run out; what was built until then stays. */
    for (size_t p = 0; st == ENG_OK && p < fx->n_projects; p++)
        for (size_t q = 0; st == ENG_OK && q < fx->projects[p].n_queues; q++)
            if ((st = build_queue(e, fx->projects[p].name, &fx->projects[p].queues[q])) != ENG_OK)
                where = (struct eng_fixture_where){p, q, SIZE_MAX, 0};
    if (st == ENG_OK) {
        eng_finish(e, op, mark, 0);
    } else {
        eng_fail(e, op, st);
        op->res.where = where;
    }
    eng_end(e);
}
