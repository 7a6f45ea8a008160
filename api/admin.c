/* api/admin.c — the test kit's front door (see admin.h): test mode and token checks, the
 * kit's real-time timers, the routes of its own (status and the virtual clock), and the
 * hand-off to its parts (admin_state.c, admin_push.c, admin_faults.c, admin_watch.c).
 *   GET  /admin                       test mode, limits, back end, clock
 *   GET  /admin/clock                 the engine's clock
 *   POST /admin/clock/freeze          stop it
 *   POST /admin/clock/advance         {"ms": N} or {"seconds": N}: as if that time passed
 *   POST /admin/clock/unfreeze        run on from where it stands */
#include "admin_kit.h"
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

/* ---- real-time timers ---- */

void admin_timer_init(struct admin_timer *t, void (*fire)(struct admin_timer *t))
{
    list_init(&t->link);
    t->fire = fire;
    t->due_us = 0;
}

void admin_timer_start(struct admin *a, struct admin_timer *t, int64_t delay_ms)
{
    admin_timer_stop(t);
    t->due_us = a->opt.mono_us() + (delay_ms > 0 ? delay_ms : 0) * 1000;
    struct list_node *pos = a->timers.prev; /* most timers go last: search from the end */
    while (pos != &a->timers && list_entry(pos, struct admin_timer, link)->due_us > t->due_us)
        pos = pos->prev;
    list_push_front(pos, &t->link); /* after pos */
}

void admin_timer_stop(struct admin_timer *t)
{
    if (list_linked(&t->link))
        list_remove(&t->link);
}

int64_t admin_next_timeout_ms(struct admin *a)
{
    if (!a || list_empty(&a->timers))
        return -1;
    int64_t left = list_entry(a->timers.next, struct admin_timer, link)->due_us - a->opt.mono_us();
    return left <= 0 ? 0 : (left + 999) / 1000;
}

void admin_run_timers(struct admin *a)
{
    if (!a)
        return;
    int64_t now = a->opt.mono_us();
    while (!list_empty(&a->timers)) {
        struct admin_timer *t = list_entry(a->timers.next, struct admin_timer, link);
        if (t->due_us > now)
            break;
        list_remove(&t->link);
        t->fire(t);
    }
}

void admin_run_all_timers(struct admin *a)
{
    if (!a)
        return;
    struct list_node due;
    list_init(&due);
    while (!list_empty(&a->timers)) { /* those set again while firing wait for their time */
        struct list_node *n = a->timers.next;
        list_remove(n);
        list_push_back(&due, n);
    }
    while (!list_empty(&due)) {
        struct admin_timer *t = list_entry(due.next, struct admin_timer, link);
        list_remove(&t->link);
        t->fire(t);
    }
}

/* ---- lifecycle ---- */

struct admin *admin_open(struct api *api, const struct admin_options *opt)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->api = api;
    a->opt = *opt;
    list_init(&a->timers);
    if (!(a->state = admin_state_open(a)) || !(a->faults = admin_faults_open(a)) ||
        !(a->watch = admin_watch_open(a)) || !(a->push = admin_push_open(a))) {
        admin_close(a);
        return NULL;
    }
    return a;
}

void admin_close(struct admin *a)
{
    if (!a)
        return;
    admin_push_close(a->push);
    admin_watch_close(a->watch);
    admin_faults_close(a->faults);
    admin_state_close(a->state);
    free(a);
}

void admin_kit_reset(struct admin *a)
{
    admin_faults_reset(a->faults);
    admin_push_reset(a->push);
    if (eng_clock_settable(a->api->engine)) {
        vclock_unfreeze(a->opt.clock, a->opt.wall_ms());
        eng_advance_to(a->api->engine, vclock_now(a->opt.clock, a->opt.wall_ms()));
    }
}

/* ---- the clock ---- */

static json_t *clock_json(struct admin *a)
{
    struct vclock *c = a->opt.clock;
    int64_t wall = a->opt.wall_ms();
    int64_t now = vclock_now(c, wall);
    return json_pack("{s:s, s:I, s:I}", "mode", c->frozen ? "frozen" : "wall", "now_ms",
                     (json_int_t)now, "offset_ms", (json_int_t)(now - wall));
}

/* The engine runs on to the clock's new reading, firing what fell due on the way. */
static void sync_engine(struct admin *a)
{
    eng_advance_to(a->api->engine, vclock_now(a->opt.clock, a->opt.wall_ms()));
}

static void clock_change(struct admin *a, struct api_request *req, const char *what)
{
    if (!eng_clock_settable(a->api->engine)) {
        api_reply_error(req, API_BAD_REQUEST,
                        "The PostgreSQL back end keeps time in the database (now()): its clock "
                        "cannot be frozen or advanced; use the embedded back end for that");
        return;
    }
    struct vclock *c = a->opt.clock;
    if (strcmp(what, "freeze") == 0) {
        vclock_freeze(c, a->opt.wall_ms());
    } else if (strcmp(what, "unfreeze") == 0) {
        vclock_unfreeze(c, a->opt.wall_ms());
    } else {
        struct field_reader fr = {0};
        int root = fr_parse(&fr, req->body, req->body_len);
        uint32_t ms = 0, seconds = 0;
        bool has_ms = root >= 0 && fr_uint(&fr, root, "ms", 0, UINT32_MAX, &ms);
        bool has_s = root >= 0 && fr_uint(&fr, root, "seconds", 0, 30 * 86400, &seconds);
        if (!fr.failed && has_ms == has_s)
            fr_fail(&fr, "give one of ms or seconds: how far to advance the clock");
        if (fr.failed || root < 0) {
            api_reply_error(req, API_BAD_REQUEST, fr.err);
            fr_release(&fr);
            return;
        }
        fr_release(&fr);
        vclock_advance(c, a->opt.wall_ms(), has_ms ? (int64_t)ms : (int64_t)seconds * 1000);
    }
    sync_engine(a);
    api_reply_json(req, 200, clock_json(a));
}

static void status(struct admin *a, struct api_request *req)
{
    json_t *body = json_pack("{s:b, s:s, s:s, s:o}", "test_mode", 1, "limits",
                             a->api->limits.relaxed ? "relaxed" : "strict", "backend",
                             eng_clock_settable(a->api->engine) ? "embedded" : "postgres",
                             "clock", clock_json(a));
    api_reply_json(req, 200, body);
}

/* ---- routing ---- */

static bool own_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (n == 1 || (n == 2 && strcmp(seg[1], "clock") == 0)) {
        if (!get)
            api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        else if (n == 1)
            status(a, req);
        else
            api_reply_json(req, 200, clock_json(a));
        return true;
    }
    if (n == 3 && strcmp(seg[1], "clock") == 0 &&
        (strcmp(seg[2], "freeze") == 0 || strcmp(seg[2], "advance") == 0 ||
         strcmp(seg[2], "unfreeze") == 0)) {
        if (!post)
            api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
        else
            clock_change(a, req, seg[2]);
        return true;
    }
    return false;
}

void admin_handle(struct api *api, struct api_request *req, char **seg, size_t n)
{
    struct admin *a = api->admin;
    if (!a) {
        api_reply_error(req, API_TEST_MODE_OFF, NULL);
        return;
    }
    /* The push sink takes requests from anvil's own pusher, which carries no token. */
    bool is_sink = n >= 2 && strcmp(seg[1], "sinks") == 0;
    int auth = is_sink ? ENG_OK : api_check_token(api, api_request_token(req), NULL);
    if (auth != ENG_OK) {
        api_reply_error(req, auth, NULL);
        return;
    }
    if (own_route(a, req, seg, n) || admin_state_route(a, req, seg, n) ||
        admin_push_route(a, req, seg, n) || admin_faults_route(a, req, seg, n) ||
        admin_watch_route(a, req, seg, n))
        return;
    api_reply_error(req, API_NOT_FOUND, NULL);
}
