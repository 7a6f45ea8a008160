/* engine/project.c — projects and their queues: lookup, creation (explicit or on first
 * post), configuration with its rules (fixed type, dead-letter targets without loops),
 * sorted listing with prefix and `previous` paging, and deletion. A project exists while
 * it has queues; queues of different projects never see each other. */
#include "core.h"
#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct name_key {
    const char *s;
    size_t len;
};

static bool project_eq(const struct hnode *node, const void *key)
{
    const struct project *p = list_entry(node, struct project, by_id);
    const struct name_key *k = key;
    return p->id_len == k->len && memcmp(p->id, k->s, k->len) == 0;
}

static bool queue_eq(const struct hnode *node, const void *key)
{
    const struct queue *q = list_entry(node, struct queue, by_name);
    const struct name_key *k = key;
    return q->name_len == k->len && memcmp(q->name, k->s, k->len) == 0;
}

struct project *project_find(struct emb *e, const char *id)
{
    struct name_key k = {id, strlen(id)};
    struct hnode *n = hmap_find(&e->projects, hash_bytes(k.s, k.len, e->hash_seed), project_eq, &k);
    return n ? list_entry(n, struct project, by_id) : NULL;
}

static struct queue *queue_in(struct emb *e, struct project *p, const char *name)
{
    struct name_key k = {name, strlen(name)};
    struct hnode *n = hmap_find(&p->queues, hash_bytes(k.s, k.len, e->hash_seed), queue_eq, &k);
    return n ? list_entry(n, struct queue, by_name) : NULL;
}

struct queue *queue_find(struct emb *e, const char *project, const char *name)
{
    struct project *p = project_find(e, project);
    return p ? queue_in(e, p, name) : NULL;
}

static void project_free(struct project *p)
{
    hmap_free(&p->queues);
    free(p->sorted);
    free(p->id);
    free(p);
}

enum eng_status queue_for_change(struct emb *e, const char *project, const char *name,
                                 struct queue **out)
{
    *out = queue_find(e, project, name);
    if (!*out)
        return ENG_QUEUE_NOT_FOUND;
    return eng_can_write(e) ? ENG_OK : ENG_STORAGE_UNAVAILABLE;
}

static struct project *project_get_or_create(struct emb *e, const char *id)
{
    struct project *p = project_find(e, id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return NULL;
    }
    p->id_len = strlen(id);
    hmap_init(&p->queues);
    if (hmap_insert(&e->projects, &p->by_id, hash_bytes(p->id, p->id_len, e->hash_seed)) != 0) {
        project_free(p);
        return NULL;
    }
    return p;
}

/* Index of the first queue whose name is >= name (or > name when strictly is set). */
static size_t sorted_bound(const struct project *p, const char *name, bool strictly)
{
    size_t lo = 0, hi = p->n_sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->sorted[mid]->name, name);
        if (c < 0 || (strictly && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int sorted_insert(struct project *p, struct queue *q)
{
    if (p->n_sorted == p->cap_sorted) {
        size_t cap = p->cap_sorted ? p->cap_sorted * 2 : 8;
        struct queue **grown = realloc(p->sorted, cap * sizeof(*grown));
        if (!grown)
            return -1;
        p->sorted = grown;
        p->cap_sorted = cap;
    }
    size_t at = sorted_bound(p, q->name, false);
    memmove(&p->sorted[at + 1], &p->sorted[at], (p->n_sorted - at) * sizeof(*p->sorted));
    p->sorted[at] = q;
    p->n_sorted++;
    return 0;
}

static void sorted_remove(struct project *p, struct queue *q)
{
    size_t at = sorted_bound(p, q->name, false);
    if (at < p->n_sorted && p->sorted[at] == q) {
        memmove(&p->sorted[at], &p->sorted[at + 1], (p->n_sorted - at - 1) * sizeof(*p->sorted));
        p->n_sorted--;
    }
}

static void queue_free(struct queue *q)
{
    free(q->name);
    free(q->dead_letter_queue);
    push_settings_free(q->push);
    blob_unref(q->attributes);
    free(q);
}

static struct queue *queue_alloc(struct emb *e, struct project *p, const char *name)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (!q || !(q->name = strdup(name))) {
        free(q);
        return NULL;
    }
    q->name_len = strlen(name);
    q->project = p;
    q->type = QUEUE_PULL;
    q->message_timeout_s = QUEUE_DEFAULT_TIMEOUT_S;
    q->message_expiration_s = QUEUE_DEFAULT_EXPIRATION_S;
    list_init(&q->ready);
    list_init(&q->delayed);
    list_init(&q->reserved);
    list_init(&q->pushing);
    list_init(&q->waiters);
    list_init(&q->feed_link);
    if (hmap_insert(&p->queues, &q->by_name, hash_bytes(q->name, q->name_len, e->hash_seed)) != 0) {
        queue_free(q);
        return NULL;
    }
    if (sorted_insert(p, q) != 0) {
        hmap_remove(&p->queues, &q->by_name);
        queue_free(q);
        return NULL;
    }
    e->n_queues++;
    return q;
}

struct store_queue_row *queue_to_row(const struct queue *q)
{
    struct store_queue_row *row = calloc(1, sizeof(*row));
    if (!row)
        return NULL;
    row->key = q->key;
    row->project = strdup(q->project->id);
    row->name = strdup(q->name);
    row->dead_letter_queue = q->dead_letter_queue ? strdup(q->dead_letter_queue) : NULL;
    if (!row->project || !row->name || (q->dead_letter_queue && !row->dead_letter_queue)) {
        store_free_row(row);
        return NULL;
    }
    memcpy(row->id, q->id, sizeof(row->id));
    row->created_at_ms = q->created_at_ms;
    row->type = (int)q->type;
    row->message_timeout_s = q->message_timeout_s;
    row->message_expiration_s = q->message_expiration_s;
    row->dead_letter_max = q->dead_letter_max;
    row->total_messages = q->total_messages;
    if (q->attributes && !(row->attributes = malloc(q->attributes->len))) {
        store_free_row(row);
        return NULL;
    }
    if (q->attributes) {
        memcpy(row->attributes, q->attributes->data, q->attributes->len);
        row->attributes_len = q->attributes->len;
    }
    if (push_to_row(q->push, row) != 0) {
        store_free_row(row);
        return NULL;
    }
    return row;
}

void queue_journal_put(struct emb *e, struct queue *q)
{
    struct jrec rec = {.type = JR_QUEUE_PUT, .queue_key = q->key, .row = queue_to_row(q)};
    if (!rec.row && e->store) {
        e->commit_failures++;
        return;
    }
    q->epoch = eng_journal(e, &rec);
}

void queue_journal_total(struct emb *e, struct queue *q)
{
    struct jrec rec = {.type = JR_QUEUE_TOTAL, .queue_key = q->key, .count = q->total_messages};
    q->epoch = eng_journal(e, &rec);
}

struct queue *queue_create(struct emb *e, const char *project, const char *name)
{
    struct project *p = project_get_or_create(e, project);
    if (!p)
        return NULL;
    struct queue *q = queue_alloc(e, p, name);
    if (!q) {
        if (p->n_sorted == 0) {
            hmap_remove(&e->projects, &p->by_id);
            project_free(p);
        }
        return NULL;
    }
    q->key = e->next_queue_key++;
    q->created_at_ms = e->now_ms;
    uint8_t raw[QUEUE_ID_HEX / 2];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)ids_random(&e->ids);
    ids_hex(raw, sizeof(raw), q->id);
    return q;
}

struct queue *queue_find_or_create(struct emb *e, const char *project, const char *name)
{
    struct queue *q = queue_find(e, project, name);
    if (q)
        return q;
    q = queue_create(e, project, name);
    if (q)
        queue_journal_put(e, q);
    return q;
}

struct queue *queue_restore(struct emb *e, const struct store_queue_row *row)
{
    struct queue *q = queue_create(e, row->project, row->name);
    if (!q)
        return NULL;
    e->next_queue_key--; /* queue_create took a key; the row brings its own */
    q->key = row->key;
    if (row->key >= e->next_queue_key)
        e->next_queue_key = row->key + 1;
    memcpy(q->id, row->id, sizeof(q->id));
    q->created_at_ms = row->created_at_ms;
    q->type = (enum queue_type)row->type;
    q->message_timeout_s = row->message_timeout_s;
    q->message_expiration_s = row->message_expiration_s;
    q->dead_letter_max = row->dead_letter_max;
    q->total_messages = row->total_messages;
    if (row->dead_letter_queue && !(q->dead_letter_queue = strdup(row->dead_letter_queue)))
        return NULL;
    if (q->type != QUEUE_PULL && push_from_row(&q->push, row) != 0)
        return NULL;
    if (row->attributes_len && !(q->attributes = blob_new(row->attributes, row->attributes_len)))
        return NULL;
    return q;
}

int queue_fill_info(const struct queue *q, struct eng_queue_info *info)
{
    info->project = strdup(q->project->id);
    info->name = strdup(q->name);
    info->dead_letter_queue = q->dead_letter_queue ? strdup(q->dead_letter_queue) : NULL;
    memcpy(info->id, q->id, sizeof(info->id));
    info->type = q->type;
    info->message_timeout_s = q->message_timeout_s;
    info->message_expiration_s = q->message_expiration_s;
    info->dead_letter_max = q->dead_letter_max;
    info->total_messages = q->total_messages;
    info->ready = q->n_ready;
    info->delayed = q->n_delayed;
    info->reserved = q->n_reserved;
    info->pushing = q->n_pushing;
    info->created_at_ms = q->created_at_ms;
    info->attributes = blob_ref(q->attributes);
    if (!info->project || !info->name || (q->dead_letter_queue && !info->dead_letter_queue))
        return -1;
    return push_fill_info(q->push, &info->push);
}

/* Frees a queue with everything in it; its waiters get an empty answer. Not journalled. */
void queue_destroy(struct emb *e, struct queue *q)
{
    struct project *p = q->project;
    waiters_finish_all(e, q);
    queue_drop_messages(e, q);
    if (list_linked(&q->feed_link))
        list_remove(&q->feed_link);
    sorted_remove(p, q);
    hmap_remove(&p->queues, &q->by_name);
    e->n_queues--;
    queue_free(q);
    if (p->n_sorted == 0) {
        hmap_remove(&e->projects, &p->by_id);
        project_free(p);
    }
}

static void free_queue_node(struct hnode *node, void *ctx)
{
    (void)ctx;
    queue_free(list_entry(node, struct queue, by_name));
}

static void free_project_node(struct hnode *node, void *ctx)
{
    (void)ctx;
    struct project *p = list_entry(node, struct project, by_id);
    hmap_foreach(&p->queues, free_queue_node, NULL);
    project_free(p);
}

void projects_free_all(struct emb *e)
{
    hmap_foreach(&e->projects, free_project_node, NULL);
}

/* ---- configuration ---- */

/* Would pointing `name` at `target` close a loop of dead-letter queues? */
static bool dead_letter_loops(struct emb *e, struct project *p, const char *name,
                              const char *target)
{
    const char *next = target;
    for (uint64_t hops = 0; next && hops <= e->n_queues; hops++) {
        if (strcmp(next, name) == 0)
            return true;
        struct queue *q = p ? queue_in(e, p, next) : NULL;
        next = q ? q->dead_letter_queue : NULL;
    }
    return false;
}

/* The type a queue has after cfg: fixed once created; a create with a push section and no
 * type makes a multicast queue (wire contract §2). */
static enum queue_type type_after(const struct queue *q, const struct eng_queue_config *cfg)
{
    if (q)
        return q->type;
    if (cfg->has_type)
        return cfg->type;
    return cfg->has_push ? QUEUE_MULTICAST : QUEUE_PULL;
}

/* Would these subscribers make messages go round in a circle of queues (ironmq:///q
 * subscribers leading back to `name`)? A walk over push queues' queue subscribers. */
static bool push_loops(struct emb *e, struct project *p, const char *name,
                       const struct eng_subscriber *subs, uint32_t n, uint64_t depth)
{
    if (depth > e->n_queues + 1)
        return true; /* longer than any path without a cycle: there is one further on */
    for (uint32_t i = 0; i < n; i++) {
        if (strncmp(subs[i].url, "ironmq:///", 10) != 0)
            continue;
        const char *target = subs[i].url + 10;
        if (strcmp(target, name) == 0)
            return true;
        struct queue *t = p ? queue_in(e, p, target) : NULL;
        if (t && t->push &&
            push_loops(e, p, name, t->push->subscribers, t->push->n_subscribers, depth + 1))
            return true;
    }
    return false;
}

static enum eng_status check_config(struct emb *e, const char *project, const char *name,
                                    const struct queue *q, const struct eng_queue_config *cfg)
{
    if (q && cfg->has_type && cfg->type != q->type)
        return ENG_TYPE_IMMUTABLE;
    enum eng_status st = push_check(q ? q->push : NULL, name, type_after(q, cfg), cfg);
    if (st != ENG_OK)
        return st;
    if (cfg->push.has_subscribers &&
        push_loops(e, project_find(e, project), name, cfg->push.subscribers, cfg->push.n_subscribers, 0))
        return ENG_PUSH_LOOP;
    bool removing = cfg->has_dead_letter_queue && cfg->dead_letter_queue[0] == '\0';
    if (cfg->has_dead_letter_max && !cfg->has_dead_letter_queue && !(q && q->dead_letter_queue))
        return ENG_DEAD_LETTER_NAME;
    if (cfg->has_dead_letter_queue && !removing) {
        if (strcmp(cfg->dead_letter_queue, name) == 0)
            return ENG_DEAD_LETTER_SELF;
        if (dead_letter_loops(e, project_find(e, project), name, cfg->dead_letter_queue))
            return ENG_DEAD_LETTER_CYCLE;
    }
    return ENG_OK;
}

int queue_apply_config(struct queue *q, const struct eng_queue_config *cfg)
{
    if (q->type != QUEUE_PULL && (cfg->has_push || !q->push) && push_apply(&q->push, &cfg->push) != 0)
        return -1;
    if (cfg->has_message_timeout)
        q->message_timeout_s = cfg->message_timeout_s;
    if (cfg->has_message_expiration)
        q->message_expiration_s = cfg->message_expiration_s;
    if (cfg->has_dead_letter_queue) {
        char *name = NULL;
        if (cfg->dead_letter_queue[0] && !(name = strdup(cfg->dead_letter_queue)))
            return -1;
        if (name && !q->dead_letter_queue)
            q->dead_letter_max = DEAD_LETTER_DEFAULT_MAX;
        free(q->dead_letter_queue);
        q->dead_letter_queue = name;
        if (!name)
            q->dead_letter_max = 0;
    }
    if (cfg->has_dead_letter_max && q->dead_letter_queue)
        q->dead_letter_max = cfg->dead_letter_max;
    if (cfg->has_attributes) {
        struct blob *attributes = NULL;
        if (cfg->attributes_len && !(attributes = blob_new(cfg->attributes, cfg->attributes_len)))
            return -1;
        blob_unref(q->attributes);
        q->attributes = attributes;
    }
    return 0;
}

static void put_or_patch(struct emb *e, struct eng_op *op, const char *project, const char *name,
                         const struct eng_queue_config *cfg, bool must_exist)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    enum eng_status st = ENG_OK;
    if (!q && must_exist)
        st = ENG_QUEUE_NOT_FOUND;
    else if (!eng_can_write(e))
        st = ENG_STORAGE_UNAVAILABLE;
    else
        st = check_config(e, project, name, q, cfg);
    enum queue_type type = type_after(q, cfg);
    if (st == ENG_OK && !q && (q = queue_create(e, project, name)))
        q->type = type;
    if (st == ENG_OK && !q)
        st = ENG_NO_MEMORY;
    if (st == ENG_OK && queue_apply_config(q, cfg) != 0)
        st = ENG_NO_MEMORY;
    if (st == ENG_OK) {
        queue_journal_put(e, q);
        op->res.has_queue = true;
        if (queue_fill_info(q, &op->res.queue) != 0)
            st = ENG_NO_MEMORY;
    }
    if (st == ENG_OK)
        eng_finish(e, op, mark, q->epoch);
    else
        eng_fail(e, op, st);
    eng_end(e);
}

void emb_queue_put(struct emb *e, struct eng_op *op, const char *project, const char *name,
                   const struct eng_queue_config *cfg)
{
    put_or_patch(e, op, project, name, cfg, false);
}

void emb_queue_patch(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     const struct eng_queue_config *cfg)
{
    put_or_patch(e, op, project, name, cfg, true);
}

void emb_subscribers(struct emb *e, struct eng_op *op, const char *project, const char *name,
                     enum eng_subscriber_edit edit, const struct eng_subscriber *subs, size_t n)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    enum eng_status st = ENG_OK;
    if (!q)
        st = ENG_QUEUE_NOT_FOUND;
    else if (q->type == QUEUE_PULL || !q->push)
        st = ENG_NOT_PUSH_QUEUE;
    else if (!eng_can_write(e))
        st = ENG_STORAGE_UNAVAILABLE;
    else if (edit != SUBSCRIBERS_REMOVE && push_loops(e, q->project, name, subs, (uint32_t)n, 0))
        st = ENG_PUSH_LOOP;
    else
        st = push_edit(q->push, edit, subs, n);
    if (st == ENG_OK) {
        queue_journal_put(e, q);
        eng_finish(e, op, mark, q->epoch);
    } else {
        eng_fail(e, op, st);
    }
    eng_end(e);
}

void emb_queue_get(struct emb *e, struct eng_op *op, const char *project, const char *name)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q = queue_find(e, project, name);
    if (!q)
        eng_fail(e, op, ENG_QUEUE_NOT_FOUND);
    else if ((op->res.has_queue = true, queue_fill_info(q, &op->res.queue)) != 0)
        eng_fail(e, op, ENG_NO_MEMORY);
    else
        eng_finish(e, op, mark, q->epoch);
    eng_end(e);
}

void emb_queue_delete(struct emb *e, struct eng_op *op, const char *project, const char *name)
{
    uint64_t mark = eng_start(e, op);
    struct queue *q;
    enum eng_status st = queue_for_change(e, project, name, &q);
    if (st != ENG_OK) {
        eng_fail(e, op, st);
    } else {
        struct jrec rec = {.type = JR_QUEUE_DELETE, .queue_key = q->key};
        eng_journal(e, &rec);
        queue_destroy(e, q);
        eng_finish(e, op, mark, 0);
    }
    eng_end(e);
}

void emb_queue_list(struct emb *e, struct eng_op *op, const char *project, const char *prefix,
                    const char *previous, uint32_t per_page)
{
    uint64_t mark = eng_start(e, op), newest = 0;
    struct project *p = project_find(e, project);
    size_t at = 0, prefix_len = prefix ? strlen(prefix) : 0;
    if (p && prefix_len)
        at = sorted_bound(p, prefix, false);
    if (p && previous && previous[0]) {
        size_t after = sorted_bound(p, previous, true);
        if (after > at)
            at = after;
    }
    size_t avail = p ? p->n_sorted - at : 0;
    size_t want = avail < per_page ? avail : per_page;
    if (want && !(op->res.names = calloc(want, sizeof(char *)))) {
        eng_fail(e, op, ENG_NO_MEMORY);
        eng_end(e);
        return;
    }
    for (size_t i = 0; i < want; i++) {
        const struct queue *q = p->sorted[at + i];
        if (prefix_len && strncmp(q->name, prefix, prefix_len) != 0)
            break;
        if (!(op->res.names[i] = strdup(q->name))) {
            eng_fail(e, op, ENG_NO_MEMORY);
            eng_end(e);
            return;
        }
        op->res.n_names++;
        if (q->epoch > newest)
            newest = q->epoch;
    }
    eng_finish(e, op, mark, newest);
    eng_end(e);
}
