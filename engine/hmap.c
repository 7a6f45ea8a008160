/* engine/hmap.c — intrusive hash map (see hmap.h).
 * Load factor kept between 1/8 and 1; a resize allocates the new table and then moves
 * REHASH_STEP buckets on every insert or remove until the old table is empty. */
#include "hmap.h"

#include <stdlib.h>

enum { MIN_BUCKETS = 16, REHASH_STEP = 4 };

void hmap_init(struct hmap *map)
{
    map->tab[0] = map->tab[1] = NULL;
    map->mask[0] = map->mask[1] = 0;
    map->rehash_next = 0;
    map->count = 0;
}

void hmap_free(struct hmap *map)
{
    free(map->tab[0]);
    free(map->tab[1]);
    hmap_init(map);
}

static void bucket_push(struct hnode **bucket, struct hnode *node)
{
    node->next = *bucket;
    if (*bucket)
        (*bucket)->pprev = &node->next;
    *bucket = node;
    node->pprev = bucket;
}

static bool is_rehashing(const struct hmap *map)
{
    return map->tab[1] != NULL;
}

static void rehash_step(struct hmap *map, size_t buckets)
{
    while (buckets-- > 0 && map->rehash_next <= map->mask[0]) {
        struct hnode *node = map->tab[0][map->rehash_next];
        while (node) {
            struct hnode *next = node->next;
            bucket_push(&map->tab[1][node->hash & map->mask[1]], node);
            node = next;
        }
        map->tab[0][map->rehash_next++] = NULL;
    }
    if (map->rehash_next > map->mask[0]) {
        free(map->tab[0]);
        map->tab[0] = map->tab[1];
        map->mask[0] = map->mask[1];
        map->tab[1] = NULL;
        map->mask[1] = 0;
        map->rehash_next = 0;
    }
}

static int start_resize(struct hmap *map, size_t buckets)
{
    struct hnode **tab = calloc(buckets, sizeof(*tab));
    if (!tab)
        return -1;
    if (!map->tab[0]) {
        map->tab[0] = tab;
        map->mask[0] = buckets - 1;
        return 0;
    }
    map->tab[1] = tab;
    map->mask[1] = buckets - 1;
    map->rehash_next = 0;
    return 0;
}

static size_t buckets_of(const struct hmap *map)
{
    return map->tab[0] ? map->mask[0] + 1 : 0;
}

int hmap_insert(struct hmap *map, struct hnode *node, uint64_t hash)
{
    if (is_rehashing(map))
        rehash_step(map, REHASH_STEP);
    else if (!map->tab[0])
        (void)start_resize(map, MIN_BUCKETS);
    else if (map->count + 1 > buckets_of(map))
        (void)start_resize(map, buckets_of(map) * 2); /* on failure: a fuller table, still correct */
    if (!map->tab[0])
        return -1; /* nothing to insert into at all */

    node->hash = hash;
    struct hnode **bucket = is_rehashing(map) ? &map->tab[1][hash & map->mask[1]]
                                              : &map->tab[0][hash & map->mask[0]];
    bucket_push(bucket, node);
    map->count++;
    return 0;
}

void hmap_prefetch(const struct hmap *map, uint64_t hash)
{
    if (map->tab[0] && !map->tab[1])
        __builtin_prefetch(&map->tab[0][hash & map->mask[0]], 1);
}

void hmap_reserve(struct hmap *map, size_t n)
{
    if (map->tab[0])
        return;
    size_t buckets = MIN_BUCKETS;
    while (buckets < n)
        buckets *= 2;
    (void)start_resize(map, buckets); /* on failure the map grows as usual */
}

struct hnode *hmap_find(const struct hmap *map, uint64_t hash, hmap_eq_fn eq, const void *key)
{
    for (int t = 0; t < 2; t++) {
        if (!map->tab[t])
            break;
        for (struct hnode *n = map->tab[t][hash & map->mask[t]]; n; n = n->next)
            if (n->hash == hash && eq(n, key))
                return n;
    }
    return NULL;
}

void hmap_remove(struct hmap *map, struct hnode *node)
{
    *node->pprev = node->next;
    if (node->next)
        node->next->pprev = node->pprev;
    node->next = NULL;
    node->pprev = NULL;
    map->count--;
    if (is_rehashing(map))
        rehash_step(map, REHASH_STEP);
    else if (buckets_of(map) > MIN_BUCKETS && map->count < buckets_of(map) / 8)
        (void)start_resize(map, buckets_of(map) / 4); /* failure just keeps the big table */
}

void hmap_foreach(const struct hmap *map, hmap_visit_fn visit, void *ctx)
{
    for (int t = 0; t < 2; t++) {
        if (!map->tab[t])
            break;
        for (size_t b = 0; b <= map->mask[t]; b++) {
            struct hnode *n = map->tab[t][b];
            while (n) {
                struct hnode *next = n->next;
                visit(n, ctx);
                n = next;
            }
        }
    }
}

/* The finalizer of splitmix64: a cheap bijective mixer, good enough for sequential ids. */
uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* FNV-1a over the bytes, seeded per process and finished with the mixer above, so bucket
 * placement of user-chosen names is not predictable from outside. */
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return hash_u64(h);
}
