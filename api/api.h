/* api/api.h — the fronts: the IronMQ v3 API (routing, authentication, JSON in and out, and
 * the one table that turns a status into an HTTP code and a {"msg": ...} body) and the SQS
 * API on the same port (api/sqs*.c: query and JSON protocols, AWS signatures).
 * It sees requests through `struct api_request`, which the HTTP server fills in, and
 * answers through req->respond(); it never touches sockets, and reaches queue state only
 * through engine.h. That also lets the fuzz targets drive it without a server. */
#ifndef ANVIL_API_H
#define ANVIL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"

struct dash;

struct api_token {
    char *token;
    char **projects; /* NULL with all_projects */
    size_t n_projects;
    bool all_projects;
};

struct api_limits {
    size_t max_message_size; /* bytes of one message body */
    /* Test mode's relaxed limits (docs/testing-with-anvil.md): reservation timeouts and
     * message_timeout from 1 s, message_expiration from 1 s. Strict (false): the hosted
     * service's limits. */
    bool relaxed;
};

/* What push subscribers may be: push_allow lists the hosts a subscriber URL may name
 * ("host", "*.domain" or "*"; empty: any); self_port is this server's port, so a
 * subscriber pointing back at its own queue is refused. */
struct api_push_rules {
    const char *push_allow;
    unsigned self_port;
};

/* An SQS access key: requests signed with it act on its project. */
struct api_sqs_key {
    char *access_key, *secret, *project;
};

struct api_sqs {
    const struct api_sqs_key *keys; /* none: dev mode for keys other than project:token */
    size_t n_keys;
    const char *account;            /* the project of dev-mode requests that name none */
    const char *region;             /* in queue ARNs */
    /* The wall clock (Unix ms) that signature dates are held to (AWS's 15-minute rule): real
     * time even when a test freezes the engine's. Set by the server (only server/ reads
     * clocks); NULL: 0, so every signed date is out of range. */
    int64_t (*wall_ms)(void);
    uint64_t requests;              /* answered so far: request ids */
};

struct api {
    struct engine *engine;
    struct api_sqs sqs;
    const struct api_token *tokens; /* none configured: dev mode, any token is accepted */
    size_t n_tokens;
    struct api_limits limits;
    struct api_push_rules push;
    struct admin *admin; /* the test kit (api/admin.h); NULL: test mode is off */
    struct metrics *metrics; /* GET /metrics' request counters (api/metrics.h); NULL: none */
    struct dash *dash;       /* the dashboard's history and push log (api/dash.h); NULL: /ui off */
};

/* A streamed answer (the test kit's event stream): the server sends the status and headers
 * at once, then whatever the front writes, as it writes it, until either side ends it.
 * The server owns it; the front holds it from req->stream() until it calls close() or
 * the server calls on_gone(), and never after. */
struct api_stream {
    /* set by the server */
    /* Queues len bytes to send; false when memory ran out or the client is gone. */
    bool (*write)(struct api_stream *s, const char *data, size_t len);
    size_t (*queued)(const struct api_stream *s); /* bytes written and not yet sent */
    void (*close)(struct api_stream *s);          /* ends it once what was written is sent */
    /* set by the front */
    /* The client went away or the server is stopping: s is gone after this call. */
    void (*on_gone)(struct api_stream *s);
    void *ctx;
};

struct api_request;
typedef const char *(*api_lookup_fn)(struct api_request *req, const char *name);
/* Sends status and body (malloc'd JSON, ownership passes to the callee). */
typedef void (*api_respond_fn)(struct api_request *req, int status, char *body, size_t len);
/* Calls fn for every request header, in the order received (the test kit's push sink
 * records them all). */
typedef void (*api_header_fn)(void *ctx, const char *name, const char *value);
typedef void (*api_each_header_fn)(struct api_request *req, api_header_fn fn, void *ctx);

struct api_request {
    const char *method;
    const char *path; /* as received: percent-encoded, without the query string */
    const char *body;
    size_t body_len;
    api_lookup_fn header;
    api_lookup_fn query;
    api_respond_fn respond;
    /* Instead of respond(): starts a streamed answer with this status and Content-Type.
     * NULL when out of memory (then respond() as usual). The member is NULL where there is
     * no server to stream from (the fuzz targets). A stream does not hold up a shutdown. */
    struct api_stream *(*stream)(struct api_request *req, int status, const char *content_type);
    api_each_header_fn each_header; /* NULL: the server cannot list them */
    const char *query_string; /* as received, without '?'; NULL when none */
    /* Set by the front before it responds: the answer's Content-Type (NULL: JSON) and one
     * extra header (both NULL: none). Static strings or the front's until respond(). */
    const char *reply_type;
    const char *reply_header_name, *reply_header_value;
    /* and more: name, value, name, value..., NULL (static; NULL: none) */
    const char *const *reply_headers;
    /* and a request id header, whose value the request holds (NULL name: none) */
    const char *reply_id_header;
    char reply_id[48];
    /* A front that waits on engine calls of its own (not req->op) cancels them here. */
    void (*on_abandon)(struct api_request *req);
    void *front;              /* that front's state for this request */
    struct api *api;
    /* The endpoint the router matched (api_route_name's names, or health, stats, metrics,
     * admin, ui, sqs), for the request metrics; NULL: none matched. A static string. */
    const char *route;
    bool long_poll;   /* set when the answer may wait for messages (reserve with wait) */
    struct eng_op op; /* the engine call this request is waiting for, if any */
};

/* The token a request carries (Authorization: OAuth|Bearer, or ?oauth=), NULL when none. */
const char *api_request_token(struct api_request *req);
/* Handles one request; req->respond() is called once, now or after the engine answers. */
void api_handle(struct api *api, struct api_request *req);
/* The client went away: forget the pending engine call (no answer will be sent). */
void api_abandon(struct api *api, struct api_request *req);

#endif
