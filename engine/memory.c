/* engine/memory.c — the messages' memory budget. Every message costs its index entry
 * (struct message, its allocation, its hash slot) and, while its body is held in memory,
 * the body. The index must fit: posts that would not fit are refused. Bodies fill what is
 * left; past the budget, the bodies of the newest messages leave memory as soon as their
 * posts are durable ("cold" messages) and are read back from the database when a reserve,
 * peek or get needs them. Queues are consumed from the front, so the bodies kept are the
 * ones needed first and short queues never touch the disk. In memory mode there is no
 * database to fall back on: bodies must fit as well. */
#include "core.h"

#include <stdlib.h>

size_t body_cost(size_t body_len)
{
    /* header, bytes, NUL, allocator, and the id in the resident ring */
    return sizeof(struct blob) + body_len + 1 + 16 + sizeof(uint64_t);
}

enum eng_status memory_admit(const struct emb *e, size_t n, uint64_t body_costs)
{
    if (!e->memory_budget)
        return ENG_OK;
    uint64_t need = e->index_bytes + (uint64_t)n * MESSAGE_INDEX_BYTES;
    if (!e->store)
        need += e->body_bytes + body_costs;
    return need <= e->memory_budget ? ENG_OK : ENG_MEMORY_BUDGET;
}

bool memory_keeps_body(const struct emb *e, size_t body_len)
{
    return !e->memory_budget || !e->store ||
           e->index_bytes + e->body_bytes + body_cost(body_len) <= e->memory_budget;
}

/* The ids of messages whose bodies are in memory, oldest first (a deque in a ring). */
static int resident_push(struct emb *e, uint64_t id)
{
    if (e->resident.count == e->resident.cap) {
        size_t cap = e->resident.cap ? e->resident.cap * 2 : 1024;
        uint64_t *ids = malloc(cap * sizeof(*ids));
        if (!ids)
            return -1;
        for (size_t i = 0; i < e->resident.count; i++)
            ids[i] = e->resident.ids[(e->resident.head + i) % e->resident.cap];
        free(e->resident.ids);
        e->resident.ids = ids;
        e->resident.head = 0;
        e->resident.cap = cap;
    }
    e->resident.ids[(e->resident.head + e->resident.count++) % e->resident.cap] = id;
    return 0;
}

static uint64_t resident_newest(const struct emb *e)
{
    return e->resident.ids[(e->resident.head + e->resident.count - 1) % e->resident.cap];
}

/* A message's attributes stay in memory with its index entry. */
static uint64_t attributes_cost(const struct message *m)
{
    return m->attributes ? sizeof(struct blob) + m->attributes->len + 1 : 0;
}

void memory_track(struct emb *e, struct message *m)
{
    e->index_bytes += MESSAGE_INDEX_BYTES + attributes_cost(m);
    e->live_body_bytes += m->body_len;
    if (m->body && resident_push(e, m->id) == 0) {
        e->body_bytes += body_cost(m->body->len);
    } else {
        blob_unref(m->body); /* no room even to remember it: keep it on disk only */
        m->body = NULL;
        e->cold_messages++;
    }
}

void memory_untrack(struct emb *e, struct message *m)
{
    e->index_bytes -= MESSAGE_INDEX_BYTES + attributes_cost(m);
    e->live_body_bytes -= m->body_len;
    if (m->body)
        e->body_bytes -= body_cost(m->body->len);
    else
        e->cold_messages--;
    /* its id stays in the resident ring until it is reached: lookups skip it */
}

void memory_rebalance(struct emb *e)
{
    if (!e->store || !e->memory_budget)
        return;
    uint64_t durable = store_durable_epoch(e->store);
    while (e->resident.count && e->index_bytes + e->body_bytes > e->memory_budget) {
        struct message *m = message_by_id(e, resident_newest(e));
        if (m && m->body && m->epoch > durable)
            break; /* not on disk yet: after the next commit */
        if (m && m->body) {
            e->body_bytes -= body_cost(m->body->len);
            blob_unref(m->body);
            m->body = NULL;
            e->cold_messages++;
        }
        e->resident.count--;
    }
    /* ids of messages gone since drift to the front: drop them there as well */
    while (e->resident.count) {
        struct message *m = message_by_id(e, e->resident.ids[e->resident.head]);
        if (m && m->body)
            break;
        e->resident.head = (e->resident.head + 1) % e->resident.cap;
        e->resident.count--;
    }
}

enum eng_status message_body(struct emb *e, struct message *m, struct blob **out)
{
    if (m->body) {
        *out = blob_ref(m->body);
        return ENG_OK;
    }
    if (!e->store || store_read_body(e->store, m->id, out) != 0)
        return ENG_STORAGE_UNAVAILABLE;
    e->body_reads++;
    return ENG_OK;
}
