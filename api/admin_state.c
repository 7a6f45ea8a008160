/* api/admin_state.c — the test kit's reset, snapshots and fixtures (see admin_kit.h). */
#include "admin_kit.h"

#include <stdio.h>
#include <stdlib.h>

struct admin_state {
    struct admin *admin;
};

struct admin_state *admin_state_open(struct admin *a)
{
    struct admin_state *p = calloc(1, sizeof(*p));
    if (p)
        p->admin = a;
    return p;
}

void admin_state_close(struct admin_state *p)
{
    free(p);
}

int admin_load_file(struct admin *a, const char *path, char *err, size_t err_len)
{
    (void)a;
    snprintf(err, err_len, "cannot load %s: fixtures are not implemented yet", path);
    return -1;
}

bool admin_state_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    (void)a;
    (void)req;
    (void)seg;
    (void)n;
    return false;
}
