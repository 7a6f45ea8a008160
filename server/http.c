/* server/http.c — libmicrohttpd glue (see http.h).
 * A request's life: MHD's URI callback allocates `struct http_req` and keeps the path as
 * sent (MHD would percent-decode it, and a decoded "/" would change the route); the access
 * handler collects the body, then hands the request to api_handle(). An answer given at
 * once is queued at once; otherwise the connection is suspended until req->respond()
 * resumes it. Long polls are also watched for EPOLLRDHUP, so a client that gives up does
 * not keep a waiter (and the messages it would be handed) until the wait ends.
 * Streamed answers (api_stream: the test kit's event stream) are chunked responses whose
 * content reader hands MHD what the front wrote and, when there is nothing, suspends the
 * connection until the next write resumes it; they are watched for hang-ups the same way,
 * and are not counted as requests in progress (a shutdown does not wait for them).
 * Every request gets an id: the client's X-Request-Id when it is a sensible one (1 to 64
 * letters, digits and -_.:/+=@), else 16 hex digits from a counter with a random start. It
 * goes back in the X-Request-Id header of every answer this server sends (errors and SQS
 * included) and into the request's log line; a request slower than slow_request_ms (long
 * polls and streams excepted: waiting is their job) also gets a warning line. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "../api/metrics.h"
#include "../api/status.h"
#include "../engine/list.h"
#include "clock.h"
#include "log.h"

struct http_stream;

struct http_req {
    struct api_request api; /* first, so the api's pointer is ours */
    struct http_stream *stream; /* a streamed answer, until its response is freed */
    struct http *http;
    struct MHD_Connection *conn;
    struct list_node suspended_link;
    char *path;
    char *query;
    char method[16];
    char *body;
    size_t body_len, body_cap;
    bool started, too_large, dispatched, has_response, suspended, watching, hung_up;
    bool streaming; /* answered with a stream: no longer counted in progress */
    int status;
    char *response;
    size_t response_len;
    int fd;
    int64_t start_us;
    long long bytes; /* the answer's body; -1: not sent, or a stream */
    char request_id[HTTP_REQUEST_ID_MAX + 1];
};

struct http {
    struct MHD_Daemon *daemon;
    struct api *api;
    size_t max_request_size;
    int watch_epoll_fd;
    size_t in_progress; /* handed to the api and not finished: what shutdown waits for */
    bool resumed;       /* a connection was resumed since MHD_run last looked */
    struct list_node suspended;
    uint64_t next_id;   /* the next request id of our own */
    unsigned slow_request_ms;
};

/* ---- request ids ---- */

static bool valid_request_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > HTTP_REQUEST_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-_.:/+=@", *p)))
            return false;
    return true;
}

/* The client's X-Request-Id when valid (NULL: do not look), else one of ours. */
static void assign_request_id(struct http_req *r, const char *given)
{
    if (given && valid_request_id(given))
        snprintf(r->request_id, sizeof(r->request_id), "%s", given);
    else
        snprintf(r->request_id, sizeof(r->request_id), "%016llx",
                 (unsigned long long)r->http->next_id++);
}

/* ---- hang-up watches ---- */

static void watch(struct http_req *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info || r->http->watch_epoll_fd < 0)
        return;
    r->fd = info->connect_fd;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = r};
    r->watching = epoll_ctl(r->http->watch_epoll_fd, EPOLL_CTL_ADD, r->fd, &ev) == 0;
}

static void unwatch(struct http_req *r)
{
    if (!r->watching)
        return;
    epoll_ctl(r->http->watch_epoll_fd, EPOLL_CTL_DEL, r->fd, NULL);
    r->watching = false;
}

/* The connection waits for the front (an engine call, a long poll, a stream with nothing
 * to send), off MHD's books. */
static void park(struct http_req *r)
{
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    list_push_back(&r->http->suspended, &r->suspended_link);
}

static void unpark(struct http_req *r)
{
    if (!r->suspended)
        return;
    r->suspended = false;
    list_remove(&r->suspended_link);
    MHD_resume_connection(r->conn);
    r->http->resumed = true;
}

static void resume(struct http_req *r)
{
    unwatch(r);
    unpark(r);
}

/* ---- streamed answers ---- */

/* Owned by the MHD response (freed with it); the front holds s->api in between. */
struct http_stream {
    struct api_stream api;  /* first, so the front's pointer is ours */
    struct http_req *req;   /* NULL once the request is over */
    char *buf;              /* written, not yet handed to MHD: buf[sent..len) */
    size_t len, sent, cap;
    bool closing;           /* the front closed it: end once buf is sent */
    bool gone;              /* the client hung up or the server stops: end at once */
    bool told;              /* the front let go (closed) or was told (on_gone) */
};


/* The request is over (or its response freed): the front hears of it once. */
static void stream_detach(struct http_stream *s)
{
    if (s->req)
        s->req->stream = NULL;
    s->req = NULL;
    if (!s->told) {
        s->told = true;
        if (s->api.on_gone)
            s->api.on_gone(&s->api);
    }
}

static bool stream_write(struct api_stream *as, const char *data, size_t len)
{
    struct http_stream *s = (struct http_stream *)as;
    if (s->gone || !s->req)
        return false;
    if (s->sent) { /* what MHD took is dropped before the buffer grows */
        memmove(s->buf, s->buf + s->sent, s->len - s->sent);
        s->len -= s->sent;
        s->sent = 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return false;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    unpark(s->req);
    return true;
}

static size_t stream_queued(const struct api_stream *as)
{
    const struct http_stream *s = (const struct http_stream *)as;
    return s->len - s->sent;
}

static void stream_close(struct api_stream *as)
{
    struct http_stream *s = (struct http_stream *)as;
    s->closing = true;
    s->told = true;
    if (s->req)
        unpark(s->req);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_stream *s = cls;
    (void)pos;
    if (s->gone || !s->req)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = s->len - s->sent < max ? s->len - s->sent : max;
    if (n) {
        memcpy(buf, s->buf + s->sent, n);
        s->sent += n;
        if (s->sent == s->len)
            s->sent = s->len = 0;
        return (ssize_t)n;
    }
    if (s->closing)
        return MHD_CONTENT_READER_END_OF_STREAM;
    park(s->req); /* libmicrohttpd's pattern: suspend, then return 0; a write resumes */
    return 0;
}

static void stream_free(void *cls)
{
    struct http_stream *s = cls;
    stream_detach(s);
    free(s->buf);
    free(s);
}

/* The client hung up (or the server stops): the reader ends the response with an error. */
static void stream_end(struct http_req *r)
{
    unwatch(r);
    if (r->stream)
        r->stream->gone = true;
    unpark(r);
}

static struct api_stream *stream_open(struct api_request *areq, int status,
                                      const char *content_type)
{
    struct http_req *r = (struct http_req *)areq;
    struct http_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->api.write = stream_write;
    s->api.queued = stream_queued;
    s->api.close = stream_close;
    s->req = r;
    r->stream = s;
    r->streaming = true;
    r->http->in_progress--; /* a stream does not hold up a shutdown */
    r->status = status;
    r->api.reply_type = content_type;
    r->has_response = true;
    resume(r); /* opened after the request was suspended: on_request sends it */
    return &s->api;
}

static enum MHD_Result send_stream(struct http_req *r)
{
    struct http_stream *s = r->stream;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s); /* tells the front */
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->api.reply_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, HTTP_REQUEST_ID_HEADER, r->request_id);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        watch(r);
    return ret;
}

/* ---- what the api sees ---- */

static const char *lookup_header(struct api_request *areq, const char *name)
{
    struct http_req *r = (struct http_req *)areq;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *lookup_query(struct api_request *areq, const char *name)
{
    struct http_req *r = (struct http_req *)areq;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct header_visit {
    api_header_fn fn;
    void *ctx;
};

static enum MHD_Result visit_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                    const char *value)
{
    (void)kind;
    struct header_visit *v = cls;
    v->fn(v->ctx, name, value ? value : "");
    return MHD_YES;
}

static void each_header(struct api_request *areq, api_header_fn fn, void *ctx)
{
    struct http_req *r = (struct http_req *)areq;
    struct header_visit v = {fn, ctx};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, visit_header, &v);
}

static void respond(struct api_request *areq, int status, char *body, size_t len)
{
    struct http_req *r = (struct http_req *)areq;
    free(r->response);
    r->status = status;
    r->response = body;
    r->response_len = body ? len : 0;
    r->has_response = true;
    resume(r);
}

/* ---- MHD callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http *h = cls;
    struct http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    size_t len = strcspn(uri, "?");
    r->path = strndup(uri, len);
    r->query = uri[len] ? strdup(uri + len + 1) : NULL;
    r->http = h;
    r->conn = conn;
    r->fd = -1;
    r->start_us = clock_mono_us();
    r->bytes = -1;
    list_init(&r->suspended_link);
    r->api.header = lookup_header;
    r->api.query = lookup_query;
    r->api.respond = respond;
    r->api.stream = stream_open;
    r->api.each_header = each_header;
    return r;
}

static enum MHD_Result send_response(struct http_req *r)
{
    if (r->stream)
        return send_stream(r);
    struct MHD_Response *resp =
        r->response ? MHD_create_response_from_buffer(r->response_len, r->response,
                                                      MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->bytes = (long long)r->response_len;
    r->response = NULL; /* MHD frees it with the response */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->api.reply_type ? r->api.reply_type : "application/json");
    if (r->api.reply_header_name && r->api.reply_header_value)
        MHD_add_response_header(resp, r->api.reply_header_name, r->api.reply_header_value);
    for (const char *const *h = r->api.reply_headers; h && h[0] && h[1]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    if (r->api.reply_id_header)
        MHD_add_response_header(resp, r->api.reply_id_header, r->api.reply_id);
    MHD_add_response_header(resp, HTTP_REQUEST_ID_HEADER, r->request_id);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void reject_too_large(struct http_req *r)
{
    char detail[96];
    snprintf(detail, sizeof(detail), "Request body too large (limit %zu bytes)",
             r->http->max_request_size);
    api_reply_error(&r->api, API_TOO_LARGE, detail);
}

static void collect_body(struct http_req *r, const char *data, size_t size)
{
    if (r->too_large)
        return;
    if (r->body_len + size > r->http->max_request_size) {
        r->too_large = true;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return;
    }
    if (r->body_len + size > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + size)
            cap *= 2;
        if (cap > r->http->max_request_size)
            cap = r->http->max_request_size;
        char *grown = realloc(r->body, cap);
        if (!grown) {
            r->too_large = true;
            return;
        }
        r->body = grown;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, size);
    r->body_len += size;
}

static void start(struct http_req *r, const char *method)
{
    r->started = true;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->api.method = r->method;
    r->api.path = r->path;
    r->api.query_string = r->query;
    assign_request_id(r, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     HTTP_REQUEST_ID_HEADER));
    const char *length = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        unsigned long long n = strtoull(length, NULL, 10);
        if (n > r->http->max_request_size)
            r->too_large = true;
        else if (n > 0 && (r->body = malloc((size_t)n)))
            r->body_cap = (size_t)n;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http *h = cls;
    (void)url;
    (void)conn; /* the same as r->conn */
    (void)version;
    struct http_req *r = *con_cls;
    if (!r || !r->path)
        return MHD_NO; /* out of memory when the request began */
    if (r->hung_up)
        return MHD_NO;
    if (!r->started) {
        start(r, method);
        if (r->too_large) { /* refuse before reading a byte of it */
            reject_too_large(r);
            return send_response(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        collect_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->has_response)
        return send_response(r);
    if (r->dispatched)
        return MHD_YES;
    r->dispatched = true;
    h->in_progress++;
    if (r->too_large) {
        reject_too_large(r);
        return send_response(r);
    }
    r->api.body = r->body ? r->body : "";
    r->api.body_len = r->body_len;
    api_handle(h->api, &r->api);
    if (r->has_response)
        return send_response(r);
    park(r);
    if (r->api.long_poll)
        watch(r);
    return MHD_YES;
}

static void client_address(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)len);
}

/* The request's line, and a warning when it was slow. A long poll (or a request held like
 * one) and a stream are meant to take their time: they are never "slow". */
static void log_completed(struct http *h, struct http_req *r, enum MHD_RequestTerminationCode toe)
{
    double ms = (double)(clock_mono_us() - r->start_us) / 1000.0;
    bool slow = h->slow_request_ms && ms > (double)h->slow_request_ms && !r->api.long_poll &&
                !r->streaming;
    if (!log_enabled(LOG_INFO) && !(slow && log_enabled(LOG_WARN)))
        return;
    if (!r->request_id[0])
        assign_request_id(r, NULL);
    char remote[INET6_ADDRSTRLEN];
    client_address(r->conn, remote, sizeof(remote));
    struct log_request line = {
        .request_id = r->request_id,
        .method = r->started ? r->method : NULL,
        .path = r->path,
        .remote = remote[0] ? remote : NULL,
        .status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->status ? r->status : 0,
        .duration_ms = ms,
        .bytes = r->bytes,
    };
    log_request(LOG_INFO, &line);
    if (slow) {
        line.slow_ms = h->slow_request_ms;
        log_request(LOG_WARN, &line);
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    (void)conn;
    struct http_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    if (r->dispatched && !r->has_response && !r->hung_up) /* hung up: abandoned already */
        api_abandon(h->api, &r->api);
    unwatch(r);
    if (list_linked(&r->suspended_link))
        list_remove(&r->suspended_link);
    if (r->stream)
        stream_detach(r->stream);
    if (r->status) /* answered (a stream: when it ended) */
        metrics_note_request(h->api->metrics, r->api.route, r->status,
                             (uint64_t)(clock_mono_us() - r->start_us));
    log_completed(h, r, toe);
    if (r->dispatched && !r->streaming)
        h->in_progress--;
    free(r->response);
    free(r->body);
    free(r->path);
    free(r->query);
    free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t len = strlen(text);
    while (len && text[len - 1] == '\n')
        text[--len] = '\0';
    /* Closing a long poll or an event stream whose client hung up is how we free it, not a
     * fault. */
    bool routine = strstr(text, "Application reported internal error") != NULL ||
                   strstr(text, "application error generating response") != NULL;
    log_msg(routine ? LOG_DEBUG : LOG_WARN, "http: %s", text);
}

/* ---- lifecycle ---- */

struct http *http_start(const struct http_options *opt, char *err, size_t err_len)
{
    struct http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->api = opt->api;
    h->max_request_size = opt->max_request_size;
    h->watch_epoll_fd = opt->watch_epoll_fd;
    h->slow_request_ms = opt->slow_request_ms;
    /* a random start: ids from two runs (or two nodes) do not collide in one log store */
    if (getrandom(&h->next_id, sizeof(h->next_id), GRND_NONBLOCK) != (ssize_t)sizeof(h->next_id))
        h->next_id = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 40);
    list_init(&h->suspended);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_LISTEN_SOCKET, opt->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, opt->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        opt->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, err_len, "libmicrohttpd could not start");
        free(h);
        return NULL;
    }
    return h;
}

int http_fd(const struct http *h)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

/* A connection resumed while MHD_run works (a post handing a message to a long poll) is
 * only picked up by the next MHD_run: run again at once rather than at the next event. */
void http_run(struct http *h)
{
    do {
        h->resumed = false;
        MHD_run(h->daemon);
    } while (h->resumed);
}

int64_t http_next_timeout_ms(struct http *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->daemon, &ms) != MHD_YES)
        return -1;
    return ms > INT64_MAX ? INT64_MAX : (int64_t)ms;
}

void http_on_hangup(struct http *h, void *watched)
{
    struct http_req *r = watched;
    if (r->stream) {
        stream_end(r);
        return;
    }
    if (r->has_response)
        return;
    api_abandon(h->api, &r->api);
    r->hung_up = true; /* the access handler closes it when MHD calls back */
    resume(r);
}

void http_stop_accepting(struct http *h)
{
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

size_t http_connections(const struct http *h)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void http_set_slow_request_ms(struct http *h, unsigned ms)
{
    h->slow_request_ms = ms;
}

size_t http_requests_in_progress(const struct http *h)
{
    return h->in_progress;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    while (!list_empty(&h->suspended)) {
        struct http_req *r = list_entry(h->suspended.next, struct http_req, suspended_link);
        if (r->stream) {
            stream_end(r);
            continue;
        }
        api_abandon(h->api, &r->api);
        r->hung_up = true;
        resume(r);
    }
    MHD_stop_daemon(h->daemon);
    free(h);
}
