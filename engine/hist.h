/* engine/hist.h — a fixed-bucket histogram, the shape Prometheus exports: how many values
 * fell at or under each bound, their count and their sum. The bounds are shared tables
 * (hist_latency_us, hist_sizes), so a histogram is plain counters that can be copied
 * across threads under whatever lock guards its owner. Knows nothing of clocks or text. */
#ifndef ANVIL_HIST_H
#define ANVIL_HIST_H

#include <stddef.h>
#include <stdint.h>

enum { HIST_MAX_BUCKETS = 16 }; /* bounds plus the +Inf bucket */

struct hist_bounds {
    const uint64_t *le; /* ascending */
    size_t n;           /* < HIST_MAX_BUCKETS */
};

struct hist {
    uint64_t count, sum;
    uint64_t bucket[HIST_MAX_BUCKETS]; /* bucket[i]: values <= le[i] and > le[i-1]; [n]: the rest */
};

/* Latencies in microseconds: 100 us to 5 s. */
extern const struct hist_bounds hist_latency_us;
/* Sizes (a group commit's records): 1 to 5000. */
extern const struct hist_bounds hist_sizes;

void hist_add(struct hist *h, const struct hist_bounds *b, uint64_t v);

#endif
