/* api/admin_kit.h — what the test kit's parts share (api/admin*.c): the kit's state, its
 * real-time timers, and each part's entry points. admin.c routes; admin_state.c resets,
 * snapshots and fixtures; admin_faults.c injects faults; admin_watch.c shows everything
 * (peek, events, push log, push sink). */
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

struct admin {
    struct api *api;
    struct admin_options opt;
    struct list_node timers;
    struct admin_state *state;
    struct admin_faults *faults;
    struct admin_watch *watch;
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

struct admin_faults *admin_faults_open(struct admin *a);
void admin_faults_close(struct admin_faults *f);
bool admin_faults_route(struct admin *a, struct api_request *req, char **seg, size_t n);

struct admin_watch *admin_watch_open(struct admin *a);
void admin_watch_close(struct admin_watch *w);
bool admin_watch_route(struct admin *a, struct api_request *req, char **seg, size_t n);

#endif
