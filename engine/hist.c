/* engine/hist.c — the histograms' bucket tables and the one way to count a value. */
#include "hist.h"

static const uint64_t latency_le[] = {100,    250,    500,     1000,    2500,    5000,
                                      10000,  25000,  50000,   100000,  250000,  500000,
                                      1000000, 2500000, 5000000};
static const uint64_t size_le[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

const struct hist_bounds hist_latency_us = {latency_le, sizeof(latency_le) / sizeof(latency_le[0])};
const struct hist_bounds hist_sizes = {size_le, sizeof(size_le) / sizeof(size_le[0])};

void hist_add(struct hist *h, const struct hist_bounds *b, uint64_t v)
{
    size_t i = 0;
    while (i < b->n && v > b->le[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}
