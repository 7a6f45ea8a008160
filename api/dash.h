/* api/dash.h — the dashboard at /ui (docs/operations.md, "Dashboard"): the page's static
 * files, compiled into the binary (api/ui/, embedded by scripts/embed.py), and the two JSON
 * endpoints only the page uses:
 *   GET /ui/api/overview                        the server, its queues, the last minutes
 *   GET /ui/api/projects/{p}/queues/{q}         one queue's last minutes, reserved
 *                                               messages and recent push attempts
 * Everything else the page does (queue settings, peek, post, clear) goes through the v3 API
 * with the same tokens. The static files need no token (they hold no data); the endpoints
 * need one as /stats and the v3 calls do. It keeps the history of the last minutes
 * (api/history.h), read from the engine when the loop calls dash_tick, and the last
 * DASH_PUSH_LOG push attempts, which the pusher's hooks report to dash_note_push. */
#ifndef ANVIL_DASH_H
#define ANVIL_DASH_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

enum {
    DASH_PUSH_LOG = 512,      /* push attempts kept, over every queue */
    DASH_PUSH_SHOWN = 50,     /* shown for one queue, newest first */
    DASH_RESERVED_SHOWN = 100,
    DASH_BODY_PREVIEW = 200,  /* bytes of a reserved message's body shown */
    DASH_RATE_WINDOW_MS = 60000, /* the queue table's in/s and out/s: over the last minute */
};

struct dash;

struct dash *dash_new(void); /* NULL when out of memory */
void dash_free(struct dash *d);

/* When the next reading of the history is due, on the engine's clock (INT64_MIN: now). */
int64_t dash_next_ms(const struct dash *d);
/* Takes a reading of the engine when one is due at now_ms (the engine's time). */
void dash_tick(struct dash *d, struct engine *e, int64_t now_ms);
/* Keeps one push attempt (the pusher's after hook); at_ms is when it was sent. */
void dash_note_push(struct dash *d, const struct eng_push_attempt *a, int64_t at_ms);

/* Answers a request whose first path segment is "ui" (segments percent-decoded). */
void dash_handle(struct api *api, struct api_request *req, char **seg, size_t n);

#endif
