/* api/admin_fixture.h — the test kit's fixture format: a JSON document naming projects,
 * their queues (with the settings GET /3/.../queues/{q} shows) and their messages, read
 * into a struct eng_fixture (engine.h) and written from one. The format is described in
 * docs/testing-with-anvil.md; admin_state.c loads, exports and snapshots with it. */
#ifndef ANVIL_ADMIN_FIXTURE_H
#define ANVIL_ADMIN_FIXTURE_H

#include <stddef.h>

#include "api.h"

enum {
    FIXTURE_MESSAGES_MAX = 100000, /* messages in one fixture document */
    FIXTURE_FILE_MAX = 256 << 20,  /* bytes of a fixture file (--init) */
};

/* Reads a fixture document into fx (empty; the caller frees it with eng_fixture_free(),
 * also on failure), checking every field by the rules of the v3 calls that would make the
 * same state. 0, or -1 with a one-line reason that names the bad field in err. */
int fixture_read(const struct api *api, const char *text, size_t len, struct eng_fixture *fx,
                 char *err, size_t err_len);

/* fx as a fixture document: a new jansson json_t *, or NULL when out of memory. */
void *fixture_json(const struct eng_fixture *fx);

/* Where an import failed, as the path of the field: "projects.p.queues.q.messages[3]". */
void fixture_where_text(const struct eng_fixture *fx, const struct eng_fixture_where *w,
                        char *out, size_t len);

#endif
