/* api/admin_watch.c — the test kit's seeing everything (see admin_kit.h):
 *   GET /admin/projects/{p}/queues/{q}/messages  the full peek: every message in every state
 *       ?n=1..1000 (100) ?state=ready,delayed,reserved,pushing   with its deadlines
 *   GET /admin/events   Server-Sent Events, one per operation (engine events from
 *       eng_set_observer, push attempts from admin_publish); ?project= ?queue= ?types=a,b
 *       ?after=SEQ (or Last-Event-ID) replays what the history holds after SEQ
 *   GET /admin/events?format=json&after=SEQ   the history as JSON, for clients without SSE
 * Events are numbered (seq, the SSE id). The engine reports events only while someone
 * listens or the history records (from the first request to /admin/events on): otherwise
 * each operation costs the engine one branch. A listener whose client reads too slowly
 * loses events, not the connection: past WATCH_BUFFER_MAX bytes queued, events are
 * counted instead of sent, and an event "dropped" with that count comes before the next
 * one that fits. Times are the engine's (the virtual clock when frozen). */
#include "admin_kit.h"
#include "handlers.h"
#include "json.h"
#include "jsonw.h"
#include "status.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    WATCH_LISTENERS_MAX = 64,
    WATCH_BUFFER_MAX = 1 << 20,   /* bytes queued for one listener before events drop */
    WATCH_HISTORY = 1024,         /* events kept for ?after= and format=json */
    WATCH_KEEPALIVE_MS = 15000,   /* a comment line, so proxies and clients see it alive */
    PEEK_DEFAULT = 100,
    PEEK_MAX = 1000,
};

struct listener {
    struct list_node link;
    struct admin_watch *w;
    struct api_stream *stream;
    char *project, *queue; /* filters (NULL: any) */
    char *types;           /* ",post,reserve," (NULL: any) */
    uint64_t dropped;      /* events not sent since the buffer was full */
};

/* One event as published: its text (JSON) and what the filters look at. */
struct watch_event {
    uint64_t seq;
    char *type, *project, *queue, *json;
};

struct admin_watch {
    struct admin *admin;
    struct list_node listeners;
    size_t n_listeners;
    struct admin_timer keepalive;
    uint64_t seq;                         /* events published so far */
    bool recording;                       /* the history keeps events */
    struct watch_event history[WATCH_HISTORY]; /* a ring: seq % WATCH_HISTORY */
};

static void event_clear(struct watch_event *ev)
{
    free(ev->type);
    free(ev->project);
    free(ev->queue);
    free(ev->json);
    memset(ev, 0, sizeof(*ev));
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* ---- sending to listeners ---- */

static bool matches(const struct listener *l, const struct watch_event *ev)
{
    if (l->project && (!ev->project || strcmp(l->project, ev->project) != 0))
        return false;
    if (l->queue && (!ev->queue || strcmp(l->queue, ev->queue) != 0))
        return false;
    if (l->types) {
        size_t n = strlen(ev->type);
        for (const char *p = strstr(l->types, ev->type); p; p = strstr(p + 1, ev->type))
            if (p[-1] == ',' && p[n] == ',')
                return true;
        return false;
    }
    return true;
}

/* Writes one SSE event unless the listener is too far behind (then counts it). */
static void send_text(struct listener *l, const char *type, uint64_t seq, const char *json)
{
    char head[96];
    int n = seq ? snprintf(head, sizeof(head), "id: %" PRIu64 "\nevent: %s\ndata: ", seq, type)
                : snprintf(head, sizeof(head), "event: %s\ndata: ", type);
    size_t len = (size_t)n + strlen(json) + 2;
    struct api_stream *s = l->stream;
    if (n < 0 || (size_t)n >= sizeof(head) || s->queued(s) + len > WATCH_BUFFER_MAX) {
        l->dropped++;
        return;
    }
    (void)(s->write(s, head, (size_t)n) && s->write(s, json, strlen(json)) &&
           s->write(s, "\n\n", 2));
}

static void send_event(struct listener *l, const struct watch_event *ev)
{
    if (!matches(l, ev))
        return;
    if (l->dropped) { /* say what was lost before the next event that fits */
        char note[64];
        uint64_t lost = l->dropped;
        snprintf(note, sizeof(note), "{\"count\":%" PRIu64 "}", lost);
        l->dropped = 0;
        send_text(l, "dropped", 0, note);
        if (l->dropped) { /* still no room: this one is lost too */
            l->dropped = lost + 1;
            return;
        }
    }
    send_text(l, ev->type, ev->seq, ev->json);
}

/* Numbers the event, keeps it in the history when recording, sends it to every listener.
 * Takes ev's strings. */
static void dispatch(struct admin_watch *w, struct watch_event *ev)
{
    ev->seq = ++w->seq;
    struct list_node *pos;
    for (pos = w->listeners.next; pos != &w->listeners; pos = pos->next)
        send_event(list_entry(pos, struct listener, link), ev);
    if (!w->recording) {
        event_clear(ev);
        return;
    }
    struct watch_event *slot = &w->history[ev->seq % WATCH_HISTORY];
    event_clear(slot);
    *slot = *ev;
}

static int64_t engine_now(struct admin *a)
{
    return vclock_now(a->opt.clock, a->opt.wall_ms());
}

/* Completes obj with seq, type, project, queue, id and at_ms, and dispatches it. */
static void publish_json(struct admin_watch *w, const char *type, const char *project,
                         const char *queue, uint64_t msg_id, int64_t at_ms, json_t *obj)
{
    if (!obj)
        return;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, msg_id);
    json_object_set_new(obj, "seq", json_integer((json_int_t)w->seq + 1));
    json_object_set_new(obj, "type", json_string(type));
    if (project)
        json_object_set_new(obj, "project", json_string(project));
    if (queue)
        json_object_set_new(obj, "queue", json_string(queue));
    if (msg_id)
        json_object_set_new(obj, "id", json_string(id));
    json_object_set_new(obj, "at_ms", json_integer((json_int_t)at_ms));
    struct watch_event ev = {.type = strdup(type), .project = dup_or_null(project),
                             .queue = dup_or_null(queue),
                             .json = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)};
    json_decref(obj);
    if (!ev.type || !ev.json) {
        event_clear(&ev);
        return;
    }
    dispatch(w, &ev);
}

void admin_publish(struct admin *a, const char *type, const char *project, const char *queue,
                   uint64_t msg_id, void *fields)
{
    json_t *obj = fields ? fields : json_object();
    if (!a || !a->watch || !type || (!a->watch->n_listeners && !a->watch->recording)) {
        json_decref(obj);
        return;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    publish_json(a->watch, type, project, queue, msg_id, engine_now(a), obj);
}

/* ---- the engine's events ---- */

static void on_engine_event(void *ctx, const struct eng_event *ev)
{
    struct admin_watch *w = ctx;
    json_t *o = json_object();
    if (!o)
        return;
    if (ev->msg_id)
        json_object_set_new(o, "reserved_count", json_integer(ev->reserved_count));
    if (ev->reservation_id)
        json_object_set_new(o, "reservation_id", json_string(ev->reservation_id));
    switch (ev->type) {
    case ENG_EV_RESERVE:
    case ENG_EV_TOUCH:
    case ENG_EV_VISIBILITY:
        json_object_set_new(o, "reserved_until_ms", json_integer((json_int_t)ev->until_ms));
        break;
    case ENG_EV_POST:
    case ENG_EV_RELEASE:
        json_object_set_new(o, "delay", json_integer(ev->delay_s));
        if (ev->until_ms)
            json_object_set_new(o, "visible_at_ms", json_integer((json_int_t)ev->until_ms));
        break;
    case ENG_EV_DEAD_LETTER:
        json_object_set_new(o, "to_queue", json_string(ev->to_queue ? ev->to_queue : ""));
        break;
    case ENG_EV_CLEAR:
        json_object_set_new(o, "count", json_integer((json_int_t)ev->count));
        break;
    default:
        break;
    }
    publish_json(w, eng_event_name(ev->type), ev->project, ev->queue, ev->msg_id, ev->at_ms, o);
}

/* The engine reports events only while someone can see them. */
static void observe_update(struct admin_watch *w)
{
    struct engine *e = w->admin->api->engine;
    if (w->n_listeners || w->recording)
        eng_set_observer(e, on_engine_event, w);
    else
        eng_set_observer(e, NULL, NULL);
}

/* ---- listeners ---- */

static void listener_free(struct listener *l)
{
    list_remove(&l->link);
    l->w->n_listeners--;
    if (!l->w->n_listeners)
        admin_timer_stop(&l->w->keepalive);
    free(l->project);
    free(l->queue);
    free(l->types);
    free(l);
}

static void on_gone(struct api_stream *s)
{
    struct listener *l = s->ctx;
    struct admin_watch *w = l->w;
    listener_free(l);
    observe_update(w);
}

static void keepalive(struct admin_timer *t)
{
    struct admin_watch *w = list_entry(t, struct admin_watch, keepalive);
    struct list_node *pos;
    for (pos = w->listeners.next; pos != &w->listeners; pos = pos->next) {
        struct api_stream *s = list_entry(pos, struct listener, link)->stream;
        if (s->queued(s) == 0)
            s->write(s, ": keep-alive\n\n", 14);
    }
    if (w->n_listeners)
        admin_timer_start(w->admin, &w->keepalive, WATCH_KEEPALIVE_MS);
}

/* ",a,b," from "a,b": lower-case letters and '_' only. NULL in *out: any type. */
static bool parse_types(const char *text, char **out)
{
    *out = NULL;
    if (!text || !text[0])
        return true;
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= 'a' && text[i] <= 'z') || text[i] == '_' || text[i] == ','))
            return false;
    char *t = malloc(len + 3);
    if (!t)
        return false;
    snprintf(t, len + 3, ",%s,", text);
    *out = t;
    return true;
}

static bool parse_seq(const char *text, uint64_t *out)
{
    *out = 0;
    if (!text || !text[0])
        return true;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || text[0] == '-')
        return false;
    *out = v;
    return true;
}

/* Each event the history still holds after seq `after`, oldest first. */
static void replay(struct admin_watch *w, uint64_t after, struct listener *l)
{
    uint64_t first = w->seq > WATCH_HISTORY ? w->seq - WATCH_HISTORY + 1 : 1;
    for (uint64_t seq = after + 1 > first ? after + 1 : first; seq <= w->seq; seq++) {
        const struct watch_event *ev = &w->history[seq % WATCH_HISTORY];
        if (ev->seq == seq) /* else published before the history recorded */
            send_event(l, ev);
    }
}

static void events_json(struct admin_watch *w, struct api_request *req, uint64_t after,
                        const struct listener *filter)
{
    json_t *list = json_array();
    uint64_t first = w->seq > WATCH_HISTORY ? w->seq - WATCH_HISTORY + 1 : 1;
    for (uint64_t seq = after + 1 > first ? after + 1 : first; list && seq <= w->seq; seq++) {
        const struct watch_event *ev = &w->history[seq % WATCH_HISTORY];
        if (ev->seq == seq && matches(filter, ev))
            json_array_append_new(list, json_loads(ev->json, 0, NULL));
    }
    api_reply_json(req, 200, json_pack("{s:o, s:I, s:b}", "events", list ? list : json_array(),
                                       "last_seq", (json_int_t)w->seq, "recording", 1));
}

static void events(struct admin_watch *w, struct api_request *req)
{
    struct listener f = {.w = w};
    uint64_t after = 0;
    const char *last_id = req->header(req, "Last-Event-ID");
    const char *format = req->query(req, "format");
    bool json_form = format && strcmp(format, "json") == 0;
    if (format && !json_form && strcmp(format, "sse") != 0) {
        api_reply_error(req, API_BAD_REQUEST, "format must be sse (the default) or json");
        return;
    }
    if (!parse_types(req->query(req, "types"), &f.types) ||
        !parse_seq(req->query(req, "after") ? req->query(req, "after") : last_id, &after)) {
        free(f.types);
        api_reply_error(req, API_BAD_REQUEST,
                        "types is a comma-separated list of event types (post,reserve,...) and "
                        "after an event's seq");
        return;
    }
    f.project = dup_or_null(req->query(req, "project"));
    f.queue = dup_or_null(req->query(req, "queue"));
    w->recording = true; /* from the first request on, the history keeps events */
    observe_update(w);
    if (json_form) {
        events_json(w, req, after, &f);
    } else if (w->n_listeners >= WATCH_LISTENERS_MAX) {
        api_reply_error(req, API_TOO_MANY_LISTENERS, NULL);
    } else {
        struct listener *l = calloc(1, sizeof(*l));
        struct api_stream *s = l && req->stream ? req->stream(req, 200, "text/event-stream") : NULL;
        if (!s) {
            free(l);
            api_reply_error(req, ENG_NO_MEMORY, NULL);
        } else {
            *l = f;
            f.project = f.queue = f.types = NULL; /* the listener has them now */
            l->stream = s;
            s->ctx = l;
            s->on_gone = on_gone;
            list_push_back(&w->listeners, &l->link);
            if (w->n_listeners++ == 0)
                admin_timer_start(w->admin, &w->keepalive, WATCH_KEEPALIVE_MS);
            s->write(s, ": anvil events\nretry: 1000\n\n", 28);
            if (after)
                replay(w, after, l);
        }
    }
    free(f.project);
    free(f.queue);
    free(f.types);
}

/* ---- the full peek ---- */

static const char *const state_names[] = {
    [ENG_MSG_READY] = "ready", [ENG_MSG_DELAYED] = "delayed",
    [ENG_MSG_RESERVED] = "reserved", [ENG_MSG_PUSHING] = "pushing"};

static bool parse_states(const char *text, unsigned *out)
{
    *out = 0;
    if (!text || !text[0])
        return true;
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool known = false;
        for (unsigned i = 0; i < 4; i++)
            if (strlen(state_names[i]) == n && strncmp(p, state_names[i], n) == 0) {
                *out |= 1u << i;
                known = true;
            }
        if (!known || (p[n] == ',' && !p[n + 1]))
            return false;
        p += n + (p[n] == ',');
    }
    return true;
}

static void jw_key_i64(struct jw *w, const char *key, int64_t v)
{
    jw_key(w, key, false);
    jw_u64(w, v > 0 ? (uint64_t)v : 0);
}

static void write_push_headers(struct jw *w, const struct blob *h)
{
    jw_lit(w, ",\"push_headers\":{");
    const char *p = h->data, *end = h->data + h->len;
    for (bool first = true; p < end; first = false) {
        size_t nl = strnlen(p, (size_t)(end - p));
        const char *v = p + nl + 1;
        if (v >= end)
            break;
        size_t vl = strnlen(v, (size_t)(end - v));
        if (!first)
            jw_lit(w, ",");
        jw_str(w, p, nl);
        jw_lit(w, ":");
        jw_str(w, v, vl);
        p = v + vl + 1;
    }
    jw_lit(w, "}");
}

static void write_inspected(struct jw *w, const struct eng_message *m)
{
    jw_lit(w, "{");
    json_write_message_fields(w, m); /* what a v3 peek shows, then the kit's view */
    jw_lit(w, ",\"state\":\"");
    jw_lit(w, m->state < 4 ? state_names[m->state] : "unknown");
    jw_lit(w, "\"");
    if (m->due_at_ms)
        jw_key_i64(w, m->state == ENG_MSG_RESERVED  ? "reserved_until_ms"
                      : m->state == ENG_MSG_PUSHING ? "next_push_at_ms"
                                                    : "visible_at_ms",
                   m->due_at_ms);
    jw_key_i64(w, "created_at_ms", m->created_at_ms);
    if (m->first_reserved_at_ms)
        jw_key_i64(w, "first_reserved_at_ms", m->first_reserved_at_ms);
    jw_key_i64(w, "expires_at_ms", m->expires_at_ms);
    if (m->push_headers)
        write_push_headers(w, m->push_headers);
    jw_lit(w, "}");
}

static void on_inspected(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    const struct eng_queue_info *q = &res->queue;
    struct jw w = {0};
    jw_lit(&w, "{\"queue\":{\"project\":");
    jw_str(&w, q->project, strlen(q->project));
    jw_lit(&w, ",\"name\":");
    jw_str(&w, q->name, strlen(q->name));
    jw_lit(&w, ",\"type\":\"");
    jw_lit(&w, queue_type_name(q->type));
    jw_lit(&w, "\",\"size\":");
    jw_u64(&w, q->ready + q->delayed + q->reserved + q->pushing);
    jw_lit(&w, ",\"ready\":");
    jw_u64(&w, q->ready);
    jw_lit(&w, ",\"delayed\":");
    jw_u64(&w, q->delayed);
    jw_lit(&w, ",\"reserved\":");
    jw_u64(&w, q->reserved);
    jw_lit(&w, ",\"pushing\":");
    jw_u64(&w, q->pushing);
    jw_lit(&w, ",\"total_messages\":");
    jw_u64(&w, q->total_messages);
    if (q->next_visible_at_ms)
        jw_key_i64(&w, "next_visible_at_ms", q->next_visible_at_ms);
    else
        jw_lit(&w, ",\"next_visible_at_ms\":null");
    jw_key_i64(&w, "now_ms", engine_now(req->api->admin));
    jw_lit(&w, "},\"messages\":[");
    for (size_t i = 0; i < res->n_messages; i++) {
        if (i)
            jw_lit(&w, ",");
        write_inspected(&w, &res->messages[i]);
    }
    jw_lit(&w, "]}");
    api_reply_text(req, 200, &w);
}

static void peek_all(struct admin *a, struct api_request *req, const char *project,
                     const char *queue)
{
    const char *text = req->query(req, "n");
    uint32_t n = PEEK_DEFAULT;
    unsigned states;
    if (text && *text && (!parse_uint_text(text, PEEK_MAX, &n) || n == 0)) {
        api_reply_error(req, API_BAD_REQUEST, "n must be an integer from 1 to 1000");
        return;
    }
    if (!parse_states(req->query(req, "state"), &states)) {
        api_reply_error(req, API_BAD_REQUEST,
                        "state is a comma-separated list of ready, delayed, reserved, pushing");
        return;
    }
    api_prepare_op(req, on_inspected);
    eng_inspect(a->api->engine, &req->op, project, queue, n, states);
}

/* ---- lifecycle and routes ---- */

struct admin_watch *admin_watch_open(struct admin *a)
{
    struct admin_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->admin = a;
    list_init(&w->listeners);
    admin_timer_init(&w->keepalive, keepalive);
    return w;
}

void admin_watch_close(struct admin_watch *w)
{
    if (!w)
        return;
    eng_set_observer(w->admin->api->engine, NULL, NULL);
    /* The server is normally gone first (each listener left with on_gone). The analyzer
     * cannot see that listener_free() unlinks l, so it takes the next pass's l for this one. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    while (!list_empty(&w->listeners)) {
        struct listener *l = list_entry(w->listeners.next, struct listener, link);
        l->stream->close(l->stream);
        listener_free(l);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    admin_timer_stop(&w->keepalive);
    for (size_t i = 0; i < WATCH_HISTORY; i++)
        event_clear(&w->history[i]);
    free(w);
}

bool admin_watch_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    bool is_events = n == 2 && strcmp(seg[1], "events") == 0;
    bool is_peek = n == 6 && strcmp(seg[1], "projects") == 0 && strcmp(seg[3], "queues") == 0 &&
                   strcmp(seg[5], "messages") == 0;
    if (!is_events && !is_peek)
        return false;
    if (strcmp(req->method, "GET") != 0)
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
    else if (is_events)
        events(a->watch, req);
    else
        peek_all(a, req, seg[2], seg[4]);
    return true;
}
