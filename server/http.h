/* server/http.h — the HTTP server: libmicrohttpd driven from anvil's own event loop
 * (external epoll, no MHD thread). It turns each request into a `struct api_request`,
 * collects the body, suspends the connection while the engine works (commit waits, long
 * polls), resumes it when the answer is ready, and logs one line per request, with the
 * request id it also sends back in the X-Request-Id header. */
#ifndef ANVIL_HTTP_H
#define ANVIL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../api/api.h"

#define HTTP_REQUEST_ID_HEADER "X-Request-Id"
enum { HTTP_REQUEST_ID_MAX = 64 }; /* longest client-given id kept; longer ones are replaced */

struct http_options {
    int listen_fd;          /* bound and listening; MHD takes it over */
    unsigned connection_limit;
    unsigned idle_timeout_s;
    size_t max_request_size;
    struct api *api;
    int watch_epoll_fd;     /* the loop's epoll set: long polls are watched there for hang-ups */
    unsigned slow_request_ms; /* warn about requests slower than this; 0: never */
};

struct http;

struct http *http_start(const struct http_options *opt, char *err, size_t err_len);
int http_fd(const struct http *h);              /* to watch for readability */
void http_run(struct http *h);                  /* do all I/O that is ready */
int64_t http_next_timeout_ms(struct http *h);   /* -1 when MHD has no deadline */
/* The loop saw a hang-up on a watched long poll (the epoll data pointer it was given). */
void http_on_hangup(struct http *h, void *watch);
void http_stop_accepting(struct http *h);
/* Client connections open now (GET /metrics). */
size_t http_connections(const struct http *h);
void http_set_slow_request_ms(struct http *h, unsigned ms); /* a reload's new threshold */
/* Requests received in full and not yet answered. A request still arriving is not counted:
 * nothing was acknowledged for it, and libmicrohttpd 0.9.75 may not notice that such a
 * client hung up (edge-triggered epoll, a FIN that came with the last bytes) until the
 * idle timeout, which must not hold up a shutdown. */
size_t http_requests_in_progress(const struct http *h);
/* Forgets every request still waiting (their engine calls are abandoned) and stops. */
void http_stop(struct http *h);

#endif
