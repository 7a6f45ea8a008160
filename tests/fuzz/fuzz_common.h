/* tests/fuzz/fuzz_common.h — what the fuzz targets that drive api_handle() share: a
 * request object built from fuzz input (method, path, query, headers, body), the
 * exactly-once check on req->respond(), validation of every answer (a known HTTP status
 * and a JSON object body), and the "$ID"/"$RID" placeholders that let one input reuse the
 * message and reservation ids an earlier request of the same input was handed. */
#ifndef ANVIL_FUZZ_COMMON_H
#define ANVIL_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../api/api.h"

/* The fuzz target entry point (libFuzzer, or replay.c's main). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints what went wrong and aborts: the fuzzer records the input as a crash. */
_Noreturn void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define FUZZ_CHECK(cond, ...)                                    \
    do {                                                         \
        if (!(cond))                                             \
            fuzz_fail(__FILE__, __LINE__, "CHECK(" #cond ") failed: " __VA_ARGS__); \
    } while (0)

enum fuzz_req_state {
    FREQ_NEW = 0,   /* built, not handed to the api yet */
    FREQ_WAITING,   /* in api_handle(), or a long poll the engine holds */
    FREQ_ANSWERED,  /* respond() ran, once */
    FREQ_ABANDONED, /* api_abandon() ran: respond() must never run */
};

struct fuzz_kv {
    char *name, *value;
};

struct fuzz_req {
    struct api_request api; /* first, so the api's pointer is ours */
    enum fuzz_req_state state;
    int http_status;
    char *method, *path, *body; /* body: exactly body_len bytes, no NUL after it */
    char *query;                /* the query string as sent, or NULL */
    size_t body_len;
    struct fuzz_kv *headers, *params;
    size_t n_headers, n_params;
    struct fuzz_req *next; /* the owner's list of long polls still held */
};

/* Builds a request; path and query are as sent (query without '?', NULL when none).
 * "$ID", "$IDn", "$RID", "$RIDn" in path, query and body are replaced (fuzz_subst). */
struct fuzz_req *freq_new(const char *method, size_t method_len, const char *path, size_t path_len,
                          const char *query, size_t query_len, const char *body, size_t body_len);
void freq_add_header(struct fuzz_req *r, const char *name, size_t name_len, const char *value,
                     size_t value_len);
/* Calls api_handle(); aborts unless the request was answered once, or is a long poll. */
void freq_dispatch(struct api *api, struct fuzz_req *r);
/* api_abandon() a long poll still waiting; respond() must not run for it afterwards. */
void freq_abandon(struct api *api, struct fuzz_req *r);
/* Frees a request that is not waiting (answered, abandoned or never dispatched). */
void freq_free(struct fuzz_req *r);
const char *freq_header(const struct fuzz_req *r, const char *name);
const char *freq_param(const struct fuzz_req *r, const char *name);

/* The ids the last answers carried, for the placeholders. */
void fuzz_ids_reset(void);
/* Copies s (len bytes), replacing placeholders; the copy has a NUL at *out_len. */
char *fuzz_subst(const char *s, size_t len, size_t *out_len);

/* A memory-mode engine at a fixed start time and seed; aborts when it cannot open. */
struct engine *fuzz_engine_open(int64_t now_ms);

/* The engine clock at open: a realistic wall-clock time, so message ids look real. */
#define FUZZ_EPOCH_MS ((int64_t)1700000000000LL)

#endif
