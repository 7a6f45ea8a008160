/* engine/timerwheel.c — hierarchical timing wheel (see timerwheel.h).
 * Four levels of 256 slots with a 1 ms tick: level L holds timers due within 256^(L+1) ms.
 * A timer moves down one level each time its slot is cascaded, so it is touched at most
 * TW_LEVELS times in its life. A bitmap per level marks slots that may hold timers, which
 * lets advance() and next_deadline() jump over empty stretches instead of ticking each ms. */
#include "timerwheel.h"

static unsigned slot_of(int64_t t, int level)
{
    return (unsigned)(((uint64_t)t >> (level * TW_SLOT_BITS)) & (TW_SLOTS - 1));
}

static void mark_busy(struct timerwheel *tw, int level, unsigned slot)
{
    tw->maybe_busy[level][slot / 64] |= 1ULL << (slot % 64);
}

static void mark_idle(struct timerwheel *tw, int level, unsigned slot)
{
    tw->maybe_busy[level][slot / 64] &= ~(1ULL << (slot % 64));
}

/* Distance (0..255) from `start` to the first busy slot of `level`, circularly; -1 if none. */
static int busy_distance(const struct timerwheel *tw, int level, unsigned start)
{
    for (unsigned k = 0; k < TW_SLOTS;) {
        unsigned slot = (start + k) % TW_SLOTS;
        uint64_t word = tw->maybe_busy[level][slot / 64] >> (slot % 64);
        if (word)
            return (int)(k + (unsigned)__builtin_ctzll(word));
        k += 64 - slot % 64;
    }
    return -1;
}

void tw_init(struct timerwheel *tw, int64_t now_ms)
{
    tw->now_ms = now_ms;
    tw->count = 0;
    for (int l = 0; l < TW_LEVELS; l++) {
        for (int s = 0; s < TW_SLOTS; s++)
            list_init(&tw->slots[l][s]);
        for (int w = 0; w < TW_SLOTS / 64; w++)
            tw->maybe_busy[l][w] = 0;
    }
    list_init(&tw->overflow);
}

void tw_node_init(struct tw_node *node, uint32_t tag)
{
    list_init(&node->link);
    node->expires_ms = 0;
    node->tag = tag;
}

/* Puts a node (already counted, not linked) into the slot its deadline belongs to. */
static void place(struct timerwheel *tw, struct tw_node *node)
{
    int64_t due = node->expires_ms < tw->now_ms ? tw->now_ms : node->expires_ms;
    uint64_t delta = (uint64_t)(due - tw->now_ms);
    for (int level = 0; level < TW_LEVELS; level++) {
        if (delta < (1ULL << ((level + 1) * TW_SLOT_BITS))) {
            unsigned slot = slot_of(due, level);
            list_push_back(&tw->slots[level][slot], &node->link);
            mark_busy(tw, level, slot);
            return;
        }
    }
    list_push_back(&tw->overflow, &node->link);
}

void tw_insert(struct timerwheel *tw, struct tw_node *node, int64_t expires_ms)
{
    if (tw_pending(node))
        list_remove(&node->link);
    else
        tw->count++;
    node->expires_ms = expires_ms;
    place(tw, node);
}

void tw_cancel(struct timerwheel *tw, struct tw_node *node)
{
    if (!tw_pending(node))
        return;
    list_remove(&node->link);
    tw->count--;
}

static void replace_all(struct timerwheel *tw, struct list_node *head)
{
    struct list_node moving;
    list_init(&moving);
    list_splice_back(&moving, head);
    while (!list_empty(&moving)) {
        struct list_node *link = moving.next;
        list_remove(link);
        place(tw, list_entry(link, struct tw_node, link));
    }
}

/* At a level-0 wrap, brings the now-current slot of each higher level one level down. */
static void cascade(struct timerwheel *tw, int64_t t)
{
    for (int level = 1; level < TW_LEVELS; level++) {
        unsigned slot = slot_of(t, level);
        replace_all(tw, &tw->slots[level][slot]);
        mark_idle(tw, level, slot);
        if (slot != 0)
            return;
    }
    replace_all(tw, &tw->overflow);
}

/* The next tick after t that needs a visit: a busy level-0 slot in this lap, else the wrap. */
static int64_t next_visit(const struct timerwheel *tw, int64_t t)
{
    unsigned idx = slot_of(t, 0);
    for (unsigned slot = idx + 1; slot < TW_SLOTS; slot++) {
        uint64_t word = tw->maybe_busy[0][slot / 64] >> (slot % 64);
        if (word)
            return t - idx + slot + __builtin_ctzll(word);
        slot |= 63;
    }
    return (t | (TW_SLOTS - 1)) + 1;
}

size_t tw_advance(struct timerwheel *tw, int64_t now_ms, tw_fire_fn fire, void *ctx)
{
    size_t fired = 0;
    while (tw->now_ms <= now_ms) {
        if (tw->count == 0) {
            tw->now_ms = now_ms + 1;
            break;
        }
        int64_t t = tw->now_ms;
        if (slot_of(t, 0) == 0)
            cascade(tw, t);
        struct list_node *head = &tw->slots[0][slot_of(t, 0)];
        while (!list_empty(head)) {
            struct list_node *link = head->next;
            list_remove(link);
            tw->count--;
            fire(list_entry(link, struct tw_node, link), ctx);
            fired++;
        }
        mark_idle(tw, 0, slot_of(t, 0));
        int64_t next = next_visit(tw, t);
        tw->now_ms = next <= now_ms ? next : now_ms + 1;
    }
    return fired;
}

int64_t tw_next_deadline(const struct timerwheel *tw)
{
    if (tw->count == 0)
        return INT64_MAX;
    int64_t t = tw->now_ms;
    int d = busy_distance(tw, 0, slot_of(t, 0));
    if (d >= 0)
        return t + d;
    /* Level 0 is empty: nothing fires before the next cascade of a busy higher slot. */
    int64_t best = INT64_MAX;
    for (int level = 1; level < TW_LEVELS; level++) {
        unsigned shift = (unsigned)level * TW_SLOT_BITS;
        /* At a boundary not yet processed, the current slot still waits for its cascade. */
        unsigned first = ((uint64_t)t & ((1ULL << shift) - 1)) == 0 ? 0 : 1;
        int k = busy_distance(tw, level, (slot_of(t, level) + first) % TW_SLOTS);
        if (k >= 0) {
            int64_t start = (int64_t)((((uint64_t)t >> shift) + first + (uint64_t)k) << shift);
            if (start < best)
                best = start;
        }
    }
    if (best == INT64_MAX && !list_empty(&tw->overflow))
        best = (int64_t)((((uint64_t)t >> (TW_LEVELS * TW_SLOT_BITS)) + 1)
                         << (TW_LEVELS * TW_SLOT_BITS));
    return best == INT64_MAX ? t : best; /* t: be safe if the bitmaps say nothing */
}
