/* tests/fuzz/fuzz_packed.c — the PostgreSQL back end's packed columns, read back by
 * push_unpack() (a push queue's settings, engine/push.c) and delivery_unpack() (a pushed
 * message's delivery state, engine/delivery.c). The first byte chooses: 'p' the settings,
 * anything else the delivery state (the rest as text, up to a NUL). Besides memory errors
 * and undefined behaviour: whatever reads back must pack to a form that reads back to the
 * same packed form (nothing is lost or invented between the two), and a delivery read back
 * keeps its promises (1..64 subscribers, no request left out, the current one in range). */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "../../engine/delivery.h"
#include "../../engine/push.h"

static void settings(const uint8_t *data, size_t size)
{
    struct push_settings *ps = NULL, *again = NULL;
    if (push_unpack((const char *)data, size, &ps) != 0)
        return;
    char *packed = NULL, *repacked = NULL;
    size_t len = 0, relen = 0;
    FUZZ_CHECK(push_pack(ps, &packed, &len) == 0, "pack");
    FUZZ_CHECK(push_unpack(packed, len, &again) == 0, "a packed form did not read back");
    FUZZ_CHECK(push_pack(again, &repacked, &relen) == 0, "repack");
    FUZZ_CHECK(len == relen && memcmp(packed, repacked, len) == 0, "packing is not stable");
    FUZZ_CHECK(ps->n_subscribers <= PUSH_SUBSCRIBERS_MAX, "%u subscribers", ps->n_subscribers);
    free(packed);
    free(repacked);
    push_settings_free(ps);
    push_settings_free(again);
}

static void delivery(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    struct delivery d, again;
    delivery_rid *rids = NULL, *again_rids = NULL;
    if (!text || delivery_unpack(&d, &rids, text, 1000) != 0) {
        FUZZ_CHECK(rids == NULL, "a refused form left reservation ids");
        free(text);
        return;
    }
    FUZZ_CHECK(d.n >= 1 && d.n <= PUSH_SUBSCRIBERS_MAX && d.current < d.n, "n %u current %u",
               d.n, d.current);
    for (uint32_t i = 0; i < d.n; i++)
        FUZZ_CHECK(d.subs[i].state != DS_SENDING, "a request is out after reading");
    char *packed = delivery_pack(&d, (const delivery_rid *)rids);
    FUZZ_CHECK(packed && delivery_unpack(&again, &again_rids, packed, 1000) == 0,
               "a packed form did not read back");
    char *repacked = delivery_pack(&again, (const delivery_rid *)again_rids);
    FUZZ_CHECK(repacked && strcmp(packed, repacked) == 0, "packing is not stable");
    free(packed);
    free(repacked);
    delivery_free(&d);
    delivery_free(&again);
    free(rids);
    free(again_rids);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] == 'p')
        settings(data + 1, size - 1);
    else
        delivery(data + 1, size - 1);
    return 0;
}
