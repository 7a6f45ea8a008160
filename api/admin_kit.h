/* api/admin_kit.h — what the test kit's parts share (api/admin*.c): the kit's state, its
 * real-time timers, and each part's entry points. admin.c routes; admin_state.c resets,
 * snapshots and fixtures; admin_faults.c injects faults; admin_watch.c shows everything
 * (the full peek, the event stream); admin_push.c is the push sink, the push log and
 * failing push subscribers. */
#ifndef ANVIL_ADMIN_KIT_H
#define ANVIL_ADMIN_KIT_H

#include "admin.h"
#include "../engine/list.h"

/* A one-shot timer on the monotonic clock. */
struct admin_timer {
    struct list_node link; /* the kit's timers, soonest first; unlinked when idle */
    int64_t due_us;
    void (*fire)(struct admin_timer *t);
};

struct admin_state;  /* admin_state.c */
struct admin_faults; /* admin_faults.c */
struct admin_watch;  /* admin_watch.c */
struct admin_push;   /* admin_push.c */

struct admin {
    struct api *api;
    struct admin_options opt;
    struct list_node timers;
    struct admin_state *state;
    struct admin_faults *faults;
    struct admin_watch *watch;
    struct admin_push *push;
};

void admin_timer_init(struct admin_timer *t, void (*fire)(struct admin_timer *t));
/* Starts (or restarts) t to fire after delay_ms. */
void admin_timer_start(struct admin *a, struct admin_timer *t, int64_t delay_ms);
void admin_timer_stop(struct admin_timer *t);

/* Each part: open (NULL when out of memory), close, and its routes. A route function
 * answers and returns true when the path is one of its own, false otherwise (seg[0] is
 * "admin"; the caller checked test mode and the token). */
struct admin_state *admin_state_open(struct admin *a);
void admin_state_close(struct admin_state *s);
bool admin_state_route(struct admin *a, struct api_request *req, char **seg, size_t n);

/* POST /admin/reset's part beyond the queues: every fault rule and storage fault, failing
 * subscribers, sinks and the push log go, and the clock runs again (unfrozen, never back).
 * Snapshots and the event history stay. */
void admin_kit_reset(struct admin *a);
void admin_faults_reset(struct admin_faults *f);
void admin_push_reset(struct admin_push *p);

struct admin_faults *admin_faults_open(struct admin *a);
void admin_faults_close(struct admin_faults *f);
bool admin_faults_route(struct admin *a, struct api_request *req, char **seg, size_t n);

struct admin_watch *admin_watch_open(struct admin *a);
void admin_watch_close(struct admin_watch *w);
bool admin_watch_route(struct admin *a, struct api_request *req, char **seg, size_t n);
/* Sends an event to the event stream's listeners (admin_watch.c): type such as "post" or
 * "push_attempt", the queue it is about, the message (0: none), and more fields as a JSON
 * object (a jansson json_t *, taken; NULL: none). */
void admin_publish(struct admin *a, const char *type, const char *project, const char *queue,
                   uint64_t msg_id, void *fields);

struct admin_push *admin_push_open(struct admin *a);
void admin_push_close(struct admin_push *p);
bool admin_push_route(struct admin *a, struct api_request *req, char **seg, size_t n);

#endif
