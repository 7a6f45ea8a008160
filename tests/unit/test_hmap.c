/* tests/unit/test_hmap.c — the intrusive hash map keeps every entry findable while it
 * grows and shrinks a few buckets at a time, and removal is exact. Checked against a
 * plain array over a long random run. */
#include <stdlib.h>

#include "../../engine/hmap.h"
#include "../../engine/list.h"
#include "check.h"

struct item {
    struct hnode node;
    uint64_t key;
    int present;
};

static bool item_eq(const struct hnode *n, const void *key)
{
    return list_entry(n, struct item, node)->key == *(const uint64_t *)key;
}

static struct item *find(struct hmap *m, uint64_t key)
{
    struct hnode *n = hmap_find(m, hash_u64(key), item_eq, &key);
    return n ? list_entry(n, struct item, node) : NULL;
}

static void count_visit(struct hnode *n, void *ctx)
{
    (void)n;
    (*(size_t *)ctx)++;
}

static void test_every_entry_stays_findable_through_growth_and_shrink(void)
{
    enum { N = 100000 };
    struct item *items = calloc(N, sizeof(*items));
    struct hmap m;
    hmap_init(&m);
    for (uint64_t i = 0; i < N; i++) {
        items[i].key = i * 7919 + 1;
        CHECK_EQ(hmap_insert(&m, &items[i].node, hash_u64(items[i].key)), 0);
    }
    CHECK_EQ(m.count, N);
    size_t misses = 0;
    for (uint64_t i = 0; i < N; i++)
        misses += find(&m, items[i].key) != &items[i];
    CHECK_EQ(misses, 0);
    for (uint64_t i = 0; i < N; i += 2)
        hmap_remove(&m, &items[i].node);
    for (uint64_t i = 0; i < N; i++)
        misses += (find(&m, items[i].key) != NULL) != (i % 2 == 1);
    CHECK_EQ(misses, 0);
    for (uint64_t i = 1; i < N; i += 2)
        hmap_remove(&m, &items[i].node);
    CHECK_EQ(m.count, 0);
    size_t visited = 0;
    hmap_foreach(&m, count_visit, &visited);
    CHECK_EQ(visited, 0);
    hmap_free(&m);
    free(items);
}

static void test_random_inserts_and_removes_match_a_model(void)
{
    enum { N = 5000 };
    static struct item items[N];
    struct hmap m;
    uint64_t seed = 3;
    size_t live = 0;
    hmap_init(&m);
    for (int i = 0; i < N; i++)
        items[i].key = (uint64_t)i;
    for (int round = 0; round < 200000; round++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int i = (int)((seed >> 33) % N);
        if (items[i].present) {
            hmap_remove(&m, &items[i].node);
            items[i].present = 0;
            live--;
        } else {
            hmap_insert(&m, &items[i].node, hash_u64(items[i].key));
            items[i].present = 1;
            live++;
        }
        if (round % 997 == 0) {
            size_t wrong = 0;
            for (int k = 0; k < N; k++)
                wrong += (find(&m, items[k].key) != NULL) != (items[k].present == 1);
            CHECK_EQ(wrong, 0);
            size_t visited = 0;
            hmap_foreach(&m, count_visit, &visited);
            CHECK_EQ(visited, live);
        }
    }
    CHECK_EQ(m.count, live);
    hmap_free(&m);
}

CHECK_MAIN(TEST(test_every_entry_stays_findable_through_growth_and_shrink),
           TEST(test_random_inserts_and_removes_match_a_model))
