/* server/observe.c — the process facts behind GET /metrics, and the pusher's hooks handed
 * on to the dashboard and the test kit (see observe.h). Runs on the loop thread: at each
 * scrape one small read of /proc, no allocation. */
#include "observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../api/admin.h"
#include "../api/dash.h"
#include "http.h"
#include "pusher.h"

/* /proc/self/statm: sizes in pages, virtual first, resident second. */
static void read_memory(struct metrics_process *out)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return;
    char line[128];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *end;
    unsigned long long virt_pages = ok ? strtoull(line, &end, 10) : 0;
    ok = ok && end != line;
    char *rest = ok ? end : line;
    unsigned long long resident_pages = ok ? strtoull(rest, &end, 10) : 0;
    ok = ok && end != rest;
    long page = sysconf(_SC_PAGESIZE);
    if (!ok || page <= 0)
        return;
    out->has_memory = true;
    out->virtual_bytes = virt_pages * (uint64_t)page;
    out->resident_bytes = resident_pages * (uint64_t)page;
}

void observe_process(void *ctx, struct metrics_process *out)
{
    const struct observe *o = ctx;
    read_memory(out);
    if (o->http) {
        out->has_connections = true;
        out->connections = http_connections(o->http);
    }
    if (o->pusher) {
        out->has_push = true;
        pusher_tally(o->pusher, &out->push);
    }
}

bool observe_push_before_send(void *ctx, struct eng_push_attempt *a, int *status)
{
    struct observe *o = ctx;
    if (o->admin) /* the kit stamps it with its clock's reading and may keep it back */
        return admin_push_before_send(o->admin, a, status);
    if (o->engine)
        a->sent_at_ms = eng_now_ms(o->engine);
    return false;
}

void observe_push_after(void *ctx, const struct eng_push_attempt *a)
{
    struct observe *o = ctx;
    if (o->dash)
        dash_note_push(o->dash, a, a->sent_at_ms);
    if (o->admin)
        admin_push_after(o->admin, a);
}
