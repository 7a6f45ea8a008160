/* bench/ceiling.c — the ceiling: a bare libmicrohttpd server that answers every request
 * with a fixed small JSON body, driven exactly as anvil drives it (external epoll, one
 * thread, MHD_run per turn). Whatever anvil does beyond this costs throughput; the
 * benchmark reports anvil's numbers as a fraction of this one's.
 *   ceiling --port P [--internal-thread]
 * (prints "ceiling ready http://127.0.0.1:P" when listening). --internal-thread lets
 * libmicrohttpd run its own epoll thread instead, the mode anvil avoids: W5 compares the
 * two with hundreds of connections opened at once. */
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static const char body[] = "{\"messages\":[{\"id\":\"1882867481159139328\",\"body\":\"hello\","
                           "\"reserved_count\":1,\"reservation_id\":\"1d19c938b5df43644b08b3cde120a768\"}]}";
static struct MHD_Response *response;
static volatile sig_atomic_t stop;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    if (!*state) { /* the first call for a request: its headers */
        *state = conn;
        return MHD_YES;
    }
    if (*data_size) { /* a request body: read and ignore it */
        *data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, response);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    unsigned port = argc > 2 && strcmp(argv[1], "--port") == 0 ? (unsigned)atoi(argv[2]) : 8081;
    bool internal = argc > 3 && strcmp(argv[3], "--internal-thread") == 0;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    response = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    unsigned flags = internal ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_EPOLL;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request,
                                            NULL, MHD_OPTION_CONNECTION_LIMIT, 20000u,
                                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on port %u\n", port);
        return 1;
    }
    if (internal) {
        printf("ceiling ready http://127.0.0.1:%u (internal thread)\n", port);
        fflush(stdout);
        while (!stop)
            pause();
        MHD_stop_daemon(d);
        MHD_destroy_response(response);
        return 0;
    }
    int mhd_fd = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, mhd_fd, &ev);
    printf("ceiling ready http://127.0.0.1:%u\n", port);
    fflush(stdout);
    while (!stop) {
        MHD_UNSIGNED_LONG_LONG ms = 1000;
        int timeout = MHD_get_timeout(d, &ms) == MHD_YES && ms < 1000 ? (int)ms : 1000;
        epoll_wait(ep, &ev, 1, timeout);
        MHD_run(d);
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(response);
    return 0;
}
