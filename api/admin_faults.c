/* api/admin_faults.c — the test kit's fault injection (see admin_kit.h). */
#include "admin_kit.h"

#include <stdlib.h>

struct admin_faults {
    struct admin *admin;
};

struct admin_faults *admin_faults_open(struct admin *a)
{
    struct admin_faults *p = calloc(1, sizeof(*p));
    if (p)
        p->admin = a;
    return p;
}

void admin_faults_close(struct admin_faults *p)
{
    free(p);
}

bool admin_faults_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    (void)a;
    (void)req;
    (void)seg;
    (void)n;
    return false;
}
