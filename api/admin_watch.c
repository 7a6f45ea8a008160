/* api/admin_watch.c — the test kit's seeing everything: the full peek, the event stream, the push log and the push sink (see admin_kit.h). */
#include "admin_kit.h"

#include <jansson.h>
#include <stdlib.h>

struct admin_watch {
    struct admin *admin;
};

struct admin_watch *admin_watch_open(struct admin *a)
{
    struct admin_watch *p = calloc(1, sizeof(*p));
    if (p)
        p->admin = a;
    return p;
}

void admin_watch_close(struct admin_watch *p)
{
    free(p);
}

void admin_publish(struct admin *a, const char *type, const char *project, const char *queue,
                   uint64_t msg_id, void *fields)
{
    (void)a;
    (void)type;
    (void)project;
    (void)queue;
    (void)msg_id;
    json_decref(fields);
}

bool admin_watch_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    (void)a;
    (void)req;
    (void)seg;
    (void)n;
    return false;
}
