/* engine/hmap.h — intrusive chained hash map with incremental rehashing.
 * Nodes live inside their owners (no allocation per entry); growing and shrinking
 * move a few buckets per insert/remove (as Redis's dict does), so no single call
 * pays for rehashing millions of entries. The map never frees nodes. */
#ifndef ANVIL_HMAP_H
#define ANVIL_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hnode {
    struct hnode *next;
    struct hnode **pprev; /* the pointer that points at this node: O(1) removal */
    uint64_t hash;
};

struct hmap {
    struct hnode **tab[2];
    size_t mask[2];      /* bucket count - 1; tab[1] is used only while rehashing */
    size_t rehash_next;  /* next bucket of tab[0] to move, when tab[1] != NULL */
    size_t count;
};

typedef bool (*hmap_eq_fn)(const struct hnode *node, const void *key);
typedef void (*hmap_visit_fn)(struct hnode *node, void *ctx);

void hmap_init(struct hmap *map);
/* Frees the bucket arrays only; the caller owns (and frees) the nodes. */
void hmap_free(struct hmap *map);
/* Returns 0, or -1 (node not inserted) when not even the first bucket array could be had. */
int hmap_insert(struct hmap *map, struct hnode *node, uint64_t hash);
struct hnode *hmap_find(const struct hmap *map, uint64_t hash, hmap_eq_fn eq, const void *key);
void hmap_remove(struct hmap *map, struct hnode *node);
/* Starts loading the bucket a hash falls in, ahead of an insert (a hint, nothing more). */
void hmap_prefetch(const struct hmap *map, uint64_t hash);
/* Sizes an empty map for n entries at once (recovery knows how many are coming). */
void hmap_reserve(struct hmap *map, size_t n);
/* Visits every node; the visitor must not insert into or remove from the map. */
void hmap_foreach(const struct hmap *map, hmap_visit_fn visit, void *ctx);

uint64_t hash_u64(uint64_t x);
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
