/* api/admin_state.c — the test kit's reset, snapshots and fixtures (see admin_kit.h):
 *   POST   /admin/reset                                   wipe every project, and the
 *                                                         kit's rules, sinks, log; unfreeze
 *   POST   /admin/projects/{p}/reset                      wipe one project
 *   GET    /admin/projects/{p}/export                     the project as a fixture document
 *   GET    /admin/projects/{p}/snapshots                  the project's snapshots
 *   PUT    /admin/projects/{p}/snapshots/{name}           take one (kept in memory here)
 *   GET    /admin/projects/{p}/snapshots/{name}           its fixture document
 *   DELETE /admin/projects/{p}/snapshots/{name}           forget it
 *   POST   /admin/projects/{p}/snapshots/{name}/restore   the project becomes that state again
 *   POST   /admin/load                                    load a fixture document (the body)
 * and admin_load_file() for --init FILE. The engine does the work (eng_wipe, eng_export,
 * eng_import); the document format is admin_fixture.c's. A snapshot is an eng_fixture: its
 * bodies are references to the same blobs the messages hold, so taking one copies no body.
 * The embedded back end only: on PostgreSQL these routes answer 400 (ENG_BACKEND_UNSUPPORTED). */
#include "admin_fixture.h"
#include "admin_kit.h"
#include "handlers.h"
#include "status.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SNAPSHOTS_MAX = 1000,         /* kept at once, over all projects */
    INIT_COMMIT_WAIT_MS = 60000,  /* --init in fsync mode: how long the commit may take */
};

struct snapshot {
    struct list_node link;        /* admin_state.snapshots, oldest first */
    char *project, *name;
    struct eng_fixture fx;
    size_t n_queues, n_messages;
};

struct admin_state {
    struct admin *admin;
    struct list_node snapshots;
    size_t n_snapshots;
};

/* ---- snapshots ---- */

static void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    eng_fixture_free(&s->fx);
    free(s->project);
    free(s->name);
    free(s);
}

static struct snapshot *snapshot_find(struct admin_state *st, const char *project, const char *name)
{
    struct list_node *pos;
    for (pos = st->snapshots.next; pos != &st->snapshots; pos = pos->next) {
        struct snapshot *s = list_entry(pos, struct snapshot, link);
        if (strcmp(s->project, project) == 0 && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static void snapshot_drop(struct admin_state *st, struct snapshot *s)
{
    list_remove(&s->link);
    st->n_snapshots--;
    snapshot_free(s);
}

struct admin_state *admin_state_open(struct admin *a)
{
    struct admin_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->admin = a;
    list_init(&st->snapshots);
    return st;
}

void admin_state_close(struct admin_state *st)
{
    if (!st)
        return;
    struct list_node *pos = st->snapshots.next;
    while (pos != &st->snapshots) {
        struct list_node *next = pos->next;
        snapshot_free(list_entry(pos, struct snapshot, link));
        pos = next;
    }
    free(st);
}

/* ---- one request's engine call ---- */

enum call_kind { CALL_RESET, CALL_EXPORT, CALL_SNAPSHOT, CALL_RESTORE, CALL_LOAD };

/* A request waiting for the engine. Freed once it is answered and the engine call that
 * answered it has returned (done() may run before the call returns). */
struct state_call {
    struct admin_state *st;
    struct api_request *req;
    enum call_kind kind;
    struct eng_fixture fx;                 /* export, snapshot: filled by the engine; load: read */
    const struct eng_fixture *importing;   /* while eng_import runs: for an error's location */
    char *project, *name;                  /* NULL: all projects (reset) */
    size_t n_projects, n_queues, n_messages;
    bool in_engine, answered;
};

static void call_free(struct state_call *c)
{
    eng_fixture_free(&c->fx);
    free(c->project);
    free(c->name);
    free(c);
}

static void on_abandon(struct api_request *req)
{
    struct state_call *c = req->front;
    eng_cancel(req->api->engine, &req->op);
    req->front = NULL;
    req->on_abandon = NULL;
    call_free(c); /* never during its engine call: the client goes away on the loop's turn */
}

static void summarize(struct state_call *c, const struct eng_fixture *fx)
{
    c->n_projects = fx->n_projects;
    c->n_queues = 0;
    for (size_t p = 0; p < fx->n_projects; p++)
        c->n_queues += fx->projects[p].n_queues;
    c->n_messages = eng_fixture_messages(fx);
}

static json_t *summary_json(const struct state_call *c, const char *msg)
{
    json_t *o = json_pack("{s:s, s:I, s:I}", "msg", msg, "queues", (json_int_t)c->n_queues,
                          "messages", (json_int_t)c->n_messages);
    if (o && c->project)
        json_object_set_new(o, "project", json_string(c->project));
    if (o && c->name)
        json_object_set_new(o, "snapshot", json_string(c->name));
    if (o && c->kind == CALL_LOAD)
        json_object_set_new(o, "projects", json_integer((json_int_t)c->n_projects));
    return o;
}

/* A failed import says where in the fixture, and which id when that was the problem. */
static void reply_failure(struct state_call *c, const struct eng_result *res)
{
    char where[400] = "";
    if (c->importing)
        fixture_where_text(c->importing, &res->where, where, sizeof(where));
    if (!where[0]) {
        api_reply_error(c->req, res->status, NULL);
        return;
    }
    char detail[600];
    if (res->status == ENG_ID_TAKEN || res->status == ENG_ID_REPEATED)
        snprintf(detail, sizeof(detail), "%s: id %llu: %s", where, (unsigned long long)res->where.id,
                 api_status_text(res->status));
    else
        snprintf(detail, sizeof(detail), "%s: %s", where, api_status_text(res->status));
    api_reply_error(c->req, res->status, detail);
}

/* The export became a snapshot: it replaces one of the same name. */
static void keep_snapshot(struct state_call *c)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (!s || !(s->project = strdup(c->project)) || !(s->name = strdup(c->name))) {
        snapshot_free(s);
        api_reply_error(c->req, ENG_NO_MEMORY, NULL);
        return;
    }
    struct snapshot *old = snapshot_find(c->st, c->project, c->name);
    if (old)
        snapshot_drop(c->st, old);
    s->fx = c->fx;
    memset(&c->fx, 0, sizeof(c->fx));
    s->n_queues = c->n_queues;
    s->n_messages = c->n_messages;
    list_push_back(&c->st->snapshots, &s->link);
    c->st->n_snapshots++;
    api_reply_json(c->req, 200, summary_json(c, "Snapshot taken"));
}

static void call_done(struct eng_op *op, const struct eng_result *res)
{
    struct state_call *c = op->ctx;
    struct api_request *req = c->req;
    req->front = NULL;
    req->on_abandon = NULL;
    if (res->status != ENG_OK) {
        reply_failure(c, res);
    } else if (c->kind == CALL_RESET) {
        json_t *o = json_pack("{s:s}", "msg", "Reset");
        if (o && c->project)
            json_object_set_new(o, "project", json_string(c->project));
        api_reply_json(req, 200, o);
    } else if (c->kind == CALL_EXPORT) {
        api_reply_json(req, 200, fixture_json(&c->fx));
    } else if (c->kind == CALL_SNAPSHOT) {
        summarize(c, &c->fx);
        keep_snapshot(c);
    } else {
        api_reply_json(req, 200, summary_json(c, c->kind == CALL_LOAD ? "Loaded" : "Restored"));
    }
    c->answered = true;
    if (!c->in_engine)
        call_free(c);
}

static struct state_call *call_new(struct admin *a, struct api_request *req, enum call_kind kind,
                                   const char *project, const char *name)
{
    struct state_call *c = calloc(1, sizeof(*c));
    if (!c || (project && !(c->project = strdup(project))) || (name && !(c->name = strdup(name)))) {
        if (c)
            call_free(c);
        api_reply_error(req, ENG_NO_MEMORY, NULL);
        return NULL;
    }
    c->st = a->state;
    c->req = req;
    c->kind = kind;
    req->op.done = call_done;
    req->op.ctx = c;
    req->front = c;
    req->on_abandon = on_abandon;
    return c;
}

/* Runs the engine call for c; c is freed here if done() answered during the call. */
static void call_run(struct state_call *c, const struct eng_fixture *import)
{
    struct engine *e = c->req->api->engine;
    c->in_engine = true;
    if (import) {
        c->importing = import;
        eng_import(e, &c->req->op, import);
    } else if (c->kind == CALL_RESET) {
        eng_wipe(e, &c->req->op, c->project);
    } else {
        eng_export(e, &c->req->op, c->project, &c->fx);
    }
    c->in_engine = false;
    c->importing = NULL; /* a failure is answered before eng_import returns */
    if (c->answered)
        call_free(c);
    else if (c->kind == CALL_LOAD)
        eng_fixture_free(&c->fx); /* the engine borrowed it for the call only */
}

/* ---- the routes ---- */

static void reset(struct admin *a, struct api_request *req, const char *project)
{
    if (!project)
        admin_kit_reset(a);
    struct state_call *c = call_new(a, req, CALL_RESET, project, NULL);
    if (c)
        call_run(c, NULL);
}

static void export_project(struct admin *a, struct api_request *req, const char *project,
                           const char *snapshot)
{
    if (snapshot && !snapshot_find(a->state, project, snapshot) &&
        a->state->n_snapshots >= SNAPSHOTS_MAX) {
        api_reply_error(req, API_BAD_REQUEST,
                        "At most 1000 snapshots are kept: delete some first");
        return;
    }
    struct state_call *c =
        call_new(a, req, snapshot ? CALL_SNAPSHOT : CALL_EXPORT, project, snapshot);
    if (c)
        call_run(c, NULL);
}

static void load(struct admin *a, struct api_request *req)
{
    char err[400];
    struct state_call *c = call_new(a, req, CALL_LOAD, NULL, NULL);
    if (!c)
        return;
    if (fixture_read(a->api, req->body, req->body_len, &c->fx, err, sizeof(err)) != 0) {
        req->front = NULL;
        req->on_abandon = NULL;
        api_reply_error(req, API_BAD_REQUEST, err);
        call_free(c);
        return;
    }
    summarize(c, &c->fx);
    call_run(c, &c->fx);
}

static void restore(struct admin *a, struct api_request *req, const char *project,
                    const char *name)
{
    struct snapshot *s = snapshot_find(a->state, project, name);
    if (!s) {
        api_reply_error(req, API_NOT_FOUND, "Snapshot not found");
        return;
    }
    struct state_call *c = call_new(a, req, CALL_RESTORE, project, name);
    if (!c)
        return;
    summarize(c, &s->fx);
    call_run(c, &s->fx);
}

static void list_snapshots(struct admin *a, struct api_request *req, const char *project)
{
    json_t *list = json_array();
    struct list_node *pos;
    for (pos = a->state->snapshots.next; list && pos != &a->state->snapshots; pos = pos->next) {
        struct snapshot *s = list_entry(pos, struct snapshot, link);
        if (strcmp(s->project, project) == 0)
            json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "name", s->name, "queues",
                                                  (json_int_t)s->n_queues, "messages",
                                                  (json_int_t)s->n_messages));
    }
    api_reply_json(req, 200, list ? json_pack("{s:o}", "snapshots", list) : NULL);
}

static void one_snapshot(struct admin *a, struct api_request *req, const char *project,
                         const char *name)
{
    bool get = strcmp(req->method, "GET") == 0, del = strcmp(req->method, "DELETE") == 0;
    struct snapshot *s = snapshot_find(a->state, project, name);
    if (strcmp(req->method, "PUT") == 0)
        export_project(a, req, project, name);
    else if (!get && !del)
        api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
    else if (!s)
        api_reply_error(req, API_NOT_FOUND, "Snapshot not found");
    else if (get)
        api_reply_json(req, 200, fixture_json(&s->fx));
    else {
        snapshot_drop(a->state, s);
        api_reply_msg(req, 200, "Deleted");
    }
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Answers 405 unless the request has this method. */
static bool method(struct api_request *req, const char *want)
{
    if (is(req->method, want))
        return true;
    api_reply_error(req, API_METHOD_NOT_ALLOWED, NULL);
    return false;
}

/* /admin/projects/{p}/... */
static void project_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    const char *p = seg[2];
    const char *want = n == 4 ? (is(seg[3], "reset") ? "POST" : "GET") : n == 6 ? "POST" : NULL;
    if (!api_valid_name(p))
        api_reply_error(req, API_BAD_REQUEST, "Invalid project id");
    else if (n >= 5 && !api_valid_name(seg[4]))
        api_reply_error(req, API_BAD_REQUEST, "Invalid snapshot name: 1 to 255 bytes of UTF-8, "
                                              "without control characters or /");
    else if (want && !method(req, want))
        return;
    else if (n == 5)
        one_snapshot(a, req, p, seg[4]);
    else if (n == 6)
        restore(a, req, p, seg[4]);
    else if (is(seg[3], "reset"))
        reset(a, req, p);
    else if (is(seg[3], "export"))
        export_project(a, req, p, NULL);
    else
        list_snapshots(a, req, p);
}

static bool own_path(char **seg, size_t n)
{
    if (n == 2)
        return is(seg[1], "reset") || is(seg[1], "load");
    if (n < 4 || n > 6 || !is(seg[1], "projects"))
        return false;
    if (n == 4)
        return is(seg[3], "reset") || is(seg[3], "export") || is(seg[3], "snapshots");
    return is(seg[3], "snapshots") && (n == 5 || is(seg[5], "restore"));
}

bool admin_state_route(struct admin *a, struct api_request *req, char **seg, size_t n)
{
    if (!own_path(seg, n))
        return false;
    bool is_reset = (n == 2 || n == 4) && is(seg[n - 1], "reset");
    if (!eng_has_fixtures(a->api->engine) && !is_reset) /* PostgreSQL: resets only */
        api_reply_error(req, ENG_BACKEND_UNSUPPORTED, NULL);
    else if (n == 4 || n == 5 || n == 6)
        project_route(a, req, seg, n);
    else if (method(req, "POST") && is(seg[1], "reset"))
        reset(a, req, NULL);
    else if (is(req->method, "POST"))
        load(a, req);
    return true;
}

/* ---- --init FILE ---- */

static char *read_file(const char *path, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t used = 0, cap = 0;
    if (!f) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (used == cap) {
            cap = cap ? cap * 2 : 65536;
            char *grown = cap <= (size_t)FIXTURE_FILE_MAX + 1 ? realloc(text, cap) : NULL;
            if (!grown) {
                snprintf(err, err_len, "%s: %s", path,
                         cap > (size_t)FIXTURE_FILE_MAX + 1 ? "a fixture file has at most 256 MiB"
                                                            : "out of memory");
                goto fail;
            }
            text = grown;
        }
        size_t got = fread(text + used, 1, cap - used, f);
        used += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = used;
    return text;
fail:
    free(text);
    fclose(f);
    return NULL;
}

struct sync_call {
    struct eng_op op;
    bool done;
    enum eng_status status;
    struct eng_fixture_where where;
};

static void sync_done(struct eng_op *op, const struct eng_result *res)
{
    struct sync_call *sc = op->ctx;
    sc->done = true;
    sc->status = res->status;
    sc->where = res->where;
}

/* Before the loop runs, nobody else commits: start the commit and wait for it here. */
static void settle(struct engine *e, struct sync_call *sc)
{
    for (int waited_ms = 0; !sc->done && waited_ms < INIT_COMMIT_WAIT_MS; waited_ms += 100) {
        eng_flush(e);
        struct pollfd pfd = {.fd = eng_poll_fd(e), .events = POLLIN};
        if (pfd.fd < 0)
            break;
        if (poll(&pfd, 1, 100) > 0)
            eng_on_readable(e);
    }
}

static int import_now(struct engine *e, const struct eng_fixture *fx, const char *path, char *err,
                      size_t err_len)
{
    struct sync_call sc = {.op = {.done = sync_done}};
    sc.op.ctx = &sc;
    eng_import(e, &sc.op, fx);
    settle(e, &sc);
    if (!sc.done) {
        eng_cancel(e, &sc.op);
        snprintf(err, err_len, "%s: the fixture could not be committed to storage", path);
        return -1;
    }
    if (sc.status == ENG_OK)
        return 0;
    char where[400];
    fixture_where_text(fx, &sc.where, where, sizeof(where));
    if (sc.status == ENG_ID_TAKEN || sc.status == ENG_ID_REPEATED)
        snprintf(err, err_len, "%s: %s: id %llu: %s", path, where, (unsigned long long)sc.where.id,
                 api_status_text(sc.status));
    else
        snprintf(err, err_len, "%s: %s%s%s", path, where, where[0] ? ": " : "",
                 api_status_text(sc.status));
    return -1;
}

int admin_load_file(struct admin *a, const char *path, char *err, size_t err_len)
{
    if (!a) {
        snprintf(err, err_len, "init %s: a fixture needs test mode (--test-mode)", path);
        return -1;
    }
    size_t len = 0;
    char *text = read_file(path, &len, err, err_len);
    if (!text)
        return -1;
    struct eng_fixture fx = {0};
    char why[400];
    int rc = fixture_read(a->api, text, len, &fx, why, sizeof(why));
    if (rc != 0)
        snprintf(err, err_len, "%s: %s", path, why);
    else
        rc = import_now(a->api->engine, &fx, path, err, err_len);
    eng_fixture_free(&fx);
    free(text);
    return rc;
}
