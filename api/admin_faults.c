/* api/admin_faults.c — the test kit's fault injection (see admin_kit.h and
 * docs/testing-with-anvil.md): rules that make chosen requests fail with a chosen status or
 * wait longer, and the engine's storage faults (the next N writes fail).
 *   POST   /admin/faults            add a rule: {"route", "project"?, "queue"?, "status"?,
 *                                   "msg"?, "rate"?, "count"?, "skip"?, "latency_ms"?, "seed"?}
 *   GET    /admin/faults            the rules with their counters, the seed, storage faults
 *   DELETE /admin/faults            remove every rule and the storage faults
 *   GET    /admin/faults/{id}       one rule
 *   DELETE /admin/faults/{id}       remove it
 *   POST   /admin/faults/seed       {"seed": n}: rules added from now on draw from it
 *   GET    /admin/faults/commits    {"fail_next": n}
 *   POST   /admin/faults/commits    {"count": n}: the next n engine writes fail (503)
 * /admin/faults/subscribers belongs to the push part (admin_push.c).
 * The fronts ask admin_fault_check() once a request is admitted and before its handler
 * runs. Rules are tried in the order they were added: every rule that fires adds its
 * latency, and the first that fires with a status gives the answer (later rules with a
 * status are not tried). A held request (added latency) waits on a real-time timer and
 * then goes through api_handle() again, which meets the decision made at first. */
#include "admin_kit.h"
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    FAULT_LATENCY_MAX_MS = 60000,
    FAULT_RULES_MAX = 1000,
    FAULT_MSG_MAX = 200,
};

struct fault_rule {
    struct list_node link; /* admin_faults.rules, in the order they were added */
    uint64_t id;
    char *route;            /* an endpoint's name, "sqs:<Action>", "sqs:*" or "*" */
    char *project, *queue;  /* NULL: any */
    int status;             /* 0: latency only */
    char *msg;              /* NULL: the status's usual text */
    double rate;            /* 0..1 */
    uint64_t count;         /* 0: no limit on hits */
    uint64_t skip;          /* matching requests to let through first */
    uint32_t latency_ms;
    uint64_t seed, rng;     /* the rule's own stream of draws */
    uint64_t matched, skipped, hits;
};

/* A request waiting out its added latency. */
struct fault_hold {
    struct list_node link; /* admin_faults.holds */
    struct admin_timer timer;
    struct admin_faults *faults;
    struct api_request *req;
    int status;            /* the decision: 0 handle it, else answer this */
    char msg[FAULT_MSG_MAX];
};

struct admin_faults {
    struct admin *admin;
    struct list_node rules, holds;
    size_t n_rules;
    uint64_t next_id;
    uint64_t seed, seed_state; /* rules without a seed of their own take the next draw */
    /* The request going through api_handle() again after its latency, and its decision. */
    struct api_request *resuming;
    int resume_status;
    char resume_msg[FAULT_MSG_MAX];
    char msg[FAULT_MSG_MAX]; /* the text of the answer admin_fault_check() just decided */
};

/* ---- draws ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A number in [0, 1). */
static double draw_unit(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

/* ---- rules ---- */

static void rule_free(struct fault_rule *r)
{
    if (!r)
        return;
    free(r->route);
    free(r->project);
    free(r->queue);
    free(r->msg);
    free(r);
}

static void rules_clear(struct admin_faults *f)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &f->rules)
        rule_free(list_entry(pos, struct fault_rule, link));
    list_init(&f->rules);
    f->n_rules = 0;
}

static struct fault_rule *rule_find(struct admin_faults *f, const char *id_text)
{
    uint64_t id;
    if (!parse_message_id(id_text, &id))
        return NULL;
    for (struct list_node *pos = f->rules.next; pos != &f->rules; pos = pos->next) {
        struct fault_rule *r = list_entry(pos, struct fault_rule, link);
        if (r->id == id)
            return r;
    }
    return NULL;
}

static bool route_matches(const char *pattern, const char *route)
{
    if (strcmp(pattern, "*") == 0)
        return true;
    if (strcmp(pattern, "sqs:*") == 0)
        return strncmp(route, "sqs:", 4) == 0;
    return strcmp(pattern, route) == 0;
}

static bool rule_matches(const struct fault_rule *r, const char *route, const char *project,
                         const char *queue)
{
    return route_matches(r->route, route) &&
           (!r->project || (project && strcmp(r->project, project) == 0)) &&
           (!r->queue || (queue && strcmp(r->queue, queue) == 0));
}

/* Counts a matching request and says whether the rule fires on it. */
static bool rule_fires(struct fault_rule *r)
{
    r->matched++;
    if (r->skipped < r->skip) {
        r->skipped++;
        return false;
    }
    if (r->count && r->hits >= r->count)
        return false; /* spent */
    if (r->rate < 1 && draw_unit(&r->rng) >= r->rate)
        return false;
    r->hits++;
    return true;
}

static json_t *rule_json(const struct fault_rule *r)
{
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
    json_t *o = json_pack("{s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "id", id, "route",
                          r->route, "rate", r->rate, "skip", (json_int_t)r->skip, "latency_ms",
                          (json_int_t)r->latency_ms, "seed", (json_int_t)r->seed, "matched",
                          (json_int_t)r->matched, "skipped", (json_int_t)r->skipped, "hits",
                          (json_int_t)r->hits, "spent", r->count && r->hits >= r->count);
    if (!o)
        return NULL;
    if (r->project)
        json_object_set_new(o, "project", json_string(r->project));
    if (r->queue)
        json_object_set_new(o, "queue", json_string(r->queue));
    if (r->status)
        json_object_set_new(o, "status", json_integer(r->status));
    if (r->msg)
        json_object_set_new(o, "msg", json_string(r->msg));
    if (r->count)
        json_object_set_new(o, "count", json_integer((json_int_t)r->count));
    return o;
}

/* ---- reading a rule ---- */

static bool known_route(const char *name)
{
    if (strcmp(name, "*") == 0 || strcmp(name, "sqs:*") == 0)
        return true;
    if (strncmp(name, "sqs:", 4) == 0)
        return sqs_action_known(name + 4);
    for (size_t i = 0; api_route_name(i); i++)
        if (strcmp(api_route_name(i), name) == 0)
            return true;
    return false;
}

/* The error for an unknown route: every name there is. */
static void unknown_route(char *err, size_t err_len, const char *name)
{
    size_t o = (size_t)snprintf(err, err_len, "route \"%.60s\" is not one of: *", name);
    for (size_t i = 0; api_route_name(i) && o < err_len; i++)
        o += (size_t)snprintf(err + o, err_len - o, ", %s", api_route_name(i));
    if (o < err_len)
        snprintf(err + o, err_len - o, ", sqs:* or sqs:<Action> (SendMessage, ReceiveMessage...)");
}

/* A whole number in [min, max] (a JSON integer, or a float with no fraction). */
static bool read_whole(json_t *v, double min, double max, uint64_t *out)
{
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!(d >= min && d <= max) || d != (double)(uint64_t)d)
        return false;
    *out = json_is_integer(v) ? (uint64_t)json_integer_value(v) : (uint64_t)d;
    return true;
}

static bool read_name(json_t *v, char **out)
{
    if (!json_is_string(v) || !api_valid_name(json_string_value(v)))
        return false;
    *out = strdup(json_string_value(v));
    return *out != NULL;
}

/* One field of a rule; false with err set when it is not valid. */
static bool read_field(struct fault_rule *r, const char *key, json_t *v, bool *has_seed,
                       char *err, size_t err_len)
{
    uint64_t n = 0;
    const char *what = NULL;
    if (strcmp(key, "route") == 0) {
        if (!json_is_string(v))
            what = "route must be a string: an endpoint's name, sqs:<Action> or *";
        else if (!known_route(json_string_value(v)))
            unknown_route(err, err_len, json_string_value(v));
        else if (!(r->route = strdup(json_string_value(v))))
            what = "out of memory";
    } else if (strcmp(key, "project") == 0 || strcmp(key, "queue") == 0) {
        if (!read_name(v, strcmp(key, "project") == 0 ? &r->project : &r->queue))
            snprintf(err, err_len, "%s must be a %s name (a string of 1 to 255 bytes)", key, key);
    } else if (strcmp(key, "status") == 0) {
        if (!read_whole(v, 400, 599, &n))
            what = "status must be an HTTP error status from 400 to 599";
        r->status = (int)n;
    } else if (strcmp(key, "msg") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) >= FAULT_MSG_MAX || !(r->msg = strdup(json_string_value(v))))
            what = "msg must be a string of 1 to 199 bytes";
    } else if (strcmp(key, "rate") == 0) {
        if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
            what = "rate must be a number from 0 to 1: the share of matching requests to fail";
        r->rate = json_number_value(v);
    } else if (strcmp(key, "count") == 0) {
        if (!read_whole(v, 1, 1e15, &r->count))
            what = "count must be a whole number from 1: how many requests the rule hits";
    } else if (strcmp(key, "skip") == 0) {
        if (!read_whole(v, 0, 1e15, &r->skip))
            what = "skip must be a whole number from 0: matching requests to let through first";
    } else if (strcmp(key, "latency_ms") == 0) {
        if (!read_whole(v, 0, FAULT_LATENCY_MAX_MS, &n))
            what = "latency_ms must be a whole number from 0 to 60000";
        r->latency_ms = (uint32_t)n;
    } else if (strcmp(key, "seed") == 0) {
        if (!read_whole(v, 0, 9007199254740991.0, &r->seed))
            what = "seed must be a whole number from 0 to 2^53-1";
        *has_seed = true;
    } else {
        snprintf(err, err_len,
                 "unknown field \"%.60s\" (a rule has route, project, queue, status, msg, rate, "
                 "count, skip, latency_ms, seed)", key);
    }
    if (what)
        snprintf(err, err_len, "%s", what);
    return !err[0];
}

/* A rule from a request body, or NULL with err set. */
static struct fault_rule *rule_read(struct admin_faults *f, const char *body, size_t len,
                                    char *err, size_t err_len)
{
    err[0] = '\0';
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    struct fault_rule *r = calloc(1, sizeof(*r));
    if (!root || !json_is_object(root)) {
        snprintf(err, err_len, "the body must be a JSON object: a fault rule");
        goto fail;
    }
    if (!r) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    r->rate = 1;
    bool has_seed = false;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!json_is_null(v) && !read_field(r, key, v, &has_seed, err, err_len))
            goto fail;
    }
    if (!r->route)
        snprintf(err, err_len, "route is required: an endpoint's name (post, reserve, delete...), "
                               "sqs:<Action> or *");
    else if (!r->status && !r->latency_ms)
        snprintf(err, err_len, "give status (400-599), latency_ms, or both: what the rule does");
    if (err[0])
        goto fail;
    if (!has_seed)
        r->seed = splitmix64(&f->seed_state) >> 11; /* fits a JSON number exactly */
    r->rng = r->seed;
    json_decref(root);
    return r;
fail:
    json_decref(root);
    rule_free(r);
    return NULL;
}

/* ---- the routes ---- */

static json_t *commits_json(struct admin_faults *f)
{
    return json_pack("{s:I}", "fail_next", (json_int_t)eng_writes_to_fail(f->admin->api->engine));
}

static void add_rule(struct admin_faults *f, struct api_request *req)
{
    char err[600];
    if (f->n_rules >= FAULT_RULES_MAX) {
        api_reply_error(req, API_BAD_REQUEST, "at most 1000 fault rules: DELETE /admin/faults first");
        return;
    }
    struct fault_rule *r = rule_read(f, req->body, req->body_len, err, sizeof(err));
    if (!r) {
        api_reply_error(req, API_BAD_REQUEST, err);
        return;
    }
    r->id = ++f->next_id;
    list_push_back(&f->rules, &r->link);
    f->n_rules++;
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
    api_reply_json(req, 201, json_pack("{s:s, s:I}", "id", id, "seed", (json_int_t)r->seed));
}

static void list_rules(struct admin_faults *f, struct api_request *req)
{
    json_t *rules = json_array();
    for (struct list_node *pos = f->rules.next; rules && pos != &f->rules; pos = pos->next)
        json_array_append_new(rules, rule_json(list_entry(pos, struct fault_rule, link)));
    api_reply_json(req, 200, json_pack("{s:o, s:I, s:o}", "rules", rules, "seed",
                                       (json_int_t)f->seed, "commits", commits_json(f)));
}

void admin_faults_reset(struct admin_faults *f)
{
    rules_clear(f);
    eng_fail_next_writes(f->admin->api->engine, 0);
}

static void remove_all(struct admin_faults *f, struct api_request *req)
{
    size_t n = f->n_rules;
    admin_faults_reset(f);
    api_reply_json(req, 200, json_pack("{s:s, s:I}", "msg", "Deleted", "removed", (json_int_t)n));
}

static void one_rule(struct admin_faults *f, struct api_request *req, const char *id, bool get)
{
    struct fault_rule *r = rule_find(f, id);
    if (!r) {
        api_reply_error(req, API_NOT_FOUND, "Fault rule not found");
    } else if (get) {
        api_reply_json(req, 200, rule_json(r));
    } else {
        list_remove(&r->link);
        f->n_rules--;
        rule_free(r);
        api_reply_json(req, 200, json_pack("{s:s}", "msg", "Deleted"));
    }
}

/* {"<key>": whole number in [0, max]} from the body; false after answering 400. */
static bool read_number_body(struct api_request *req, const char *key, double max, uint64_t *out,
                             const char *what)
{
    json_t *root = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *v = json_is_object(root) ? json_object_get(root, key) : NULL;
    bool ok = v && read_whole(v, 0, max, out) && json_object_size(root) == 1;
    json_decref(root);
    if (!ok)
        api_reply_error(req, API_BAD_REQUEST, what);
    return ok;
}

static void set_seed(struct admin_faults *f, struct api_request *req)
{
    uint64_t seed;
    if (!read_number_body(req, "seed", 9007199254740991.0, &seed,
                          "give {\"seed\": n}, a whole number from 0 to 2^53-1"))
        return;
    f->seed = f->seed_state = seed;
    api_reply_json(req, 200, json_pack("{s:I}", "seed", (json_int_t)seed));
}

static void fail_commits(struct admin_faults *f, struct api_request *req)
{
    uint64_t n;
    if (!read_number_body(req, "count", 1e15, &n,
                          "give {\"count\": n}: how many of the next writes fail (0: none)"))
        return;
    eng_fail_next_writes(f->admin->api->engine, n);
    api_reply_json(req, 200, commits_json(f));
}

static bool method(const struct api_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

bool admin_faults_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    struct admin_faults *f = a->faults;
    if (n < 2 || strcmp(seg[1], "faults") != 0 || n > 3 ||
        (n == 3 && strcmp(seg[2], "subscribers") == 0))
        return false;
    bool get = method(req, "GET"), post = method(req, "POST"), del = method(req, "DELETE");
    if (n == 2 && post)
        add_rule(f, req);
    else if (n == 2 && get)
        list_rules(f, req);
    else if (n == 2 && del)
        remove_all(f, req);
    else if (n == 3 && strcmp(seg[2], "seed") == 0 && post)
        set_seed(f, req);
    else if (n == 3 && strcmp(seg[2], "commits") == 0 && post)
        fail_commits(f, req);
    else if (n == 3 && strcmp(seg[2], "commits") == 0 && get)
        api_reply_json(req, 200, commits_json(f));
    else if (n == 3 && strcmp(seg[2], "seed") != 0 && strcmp(seg[2], "commits") != 0 && (get || del))
        one_rule(f, req, seg[2], get);
    else
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
    return true;
}

/* ---- the check ---- */

static bool message_route(const char *route)
{
    return strcmp(route, "get") == 0 || strcmp(route, "delete") == 0 ||
           strcmp(route, "touch") == 0 || strcmp(route, "release") == 0 ||
           strcmp(route, "push_statuses") == 0;
}

/* The text of an injected answer: the rule's, else what the hosted service says for it. */
static void fault_text(struct admin_faults *f, const struct fault_rule *r, const char *route)
{
    const char *text;
    if (r->msg)
        text = r->msg;
    else if (r->status == 403)
        text = api_status_text(ENG_RESERVATION_MISMATCH);
    else if (r->status == 404)
        text = api_status_text(message_route(route) ? ENG_MESSAGE_NOT_FOUND : ENG_QUEUE_NOT_FOUND);
    else if (r->status == 401)
        text = api_status_text(API_UNAUTHORIZED);
    else if (r->status == 503)
        text = "Service unavailable (a fault injected by anvil's test kit)";
    else if (r->status == 500)
        text = "Internal error (a fault injected by anvil's test kit)";
    else
        text = "A fault injected by anvil's test kit";
    snprintf(f->msg, sizeof(f->msg), "%s", text);
}

static void hold_free(struct fault_hold *h)
{
    admin_timer_stop(&h->timer);
    list_remove(&h->link);
    free(h);
}

/* The client hung up while its request waited: forget it (nothing was started yet). The
 * server may say so twice (when it sees the hang-up, and when the connection ends). */
static void hold_abandon(struct api_request *req)
{
    struct fault_hold *h = req->front;
    req->front = NULL;
    if (h)
        hold_free(h);
}

/* The latency is over: the request goes through again, to meet the decision made at first. */
static void hold_fire(struct admin_timer *t)
{
    struct fault_hold *h = list_entry(t, struct fault_hold, timer);
    struct admin_faults *f = h->faults;
    struct api_request *req = h->req;
    f->resuming = req;
    f->resume_status = h->status;
    memcpy(f->resume_msg, h->msg, sizeof(f->resume_msg));
    req->front = NULL;
    hold_free(h);
    api_handle(f->admin->api, req);
    f->resuming = NULL; /* in case the request was answered before it reached the check */
}

/* Holds req for latency_ms; false when out of memory (the latency is then left out). */
static bool hold(struct admin_faults *f, struct api_request *req, uint64_t latency_ms, int status)
{
    struct fault_hold *h = calloc(1, sizeof(*h));
    if (!h)
        return false;
    h->faults = f;
    h->req = req;
    h->status = status;
    memcpy(h->msg, f->msg, sizeof(h->msg));
    list_push_back(&f->holds, &h->link);
    admin_timer_init(&h->timer, hold_fire);
    admin_timer_start(f->admin, &h->timer, (int64_t)latency_ms);
    req->front = h;
    req->on_abandon = hold_abandon;
    req->long_poll = true; /* the server watches for the client hanging up meanwhile */
    return true;
}

int admin_fault_check(struct admin *a, struct api_request *req, const char *route,
                      const char *project, const char *queue, const char **msg)
{
    struct admin_faults *f = a->faults;
    *msg = f->msg;
    if (f->resuming == req) {
        f->resuming = NULL;
        *msg = f->resume_msg;
        return f->resume_status;
    }
    int status = 0;
    uint64_t latency_ms = 0;
    for (struct list_node *pos = f->rules.next; pos != &f->rules; pos = pos->next) {
        struct fault_rule *r = list_entry(pos, struct fault_rule, link);
        if ((status && r->status) || !rule_matches(r, route, project, queue) || !rule_fires(r))
            continue;
        latency_ms += r->latency_ms;
        if (r->status) {
            status = r->status;
            fault_text(f, r, route);
        }
    }
    if (latency_ms && hold(f, req, latency_ms, status))
        return -1;
    return status;
}

/* ---- lifecycle ---- */

struct admin_faults *admin_faults_open(struct admin *a)
{
    struct admin_faults *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->admin = a;
    list_init(&f->rules);
    list_init(&f->holds);
    return f;
}

/* Requests still held were abandoned by the server before this (http_stop); any left are
 * forgotten with their timers. */
void admin_faults_close(struct admin_faults *f)
{
    if (!f)
        return;
    rules_clear(f);
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &f->holds) {
        struct fault_hold *h = list_entry(pos, struct fault_hold, link);
        h->req->front = NULL;
        h->req->on_abandon = NULL;
        admin_timer_stop(&h->timer);
        free(h);
    }
    free(f);
}
