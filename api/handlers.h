/* api/handlers.h — the v3 endpoint handlers. Each reads its input (path, query, JSON
 * body), checks it, starts one engine call, and answers from that call's result:
 * parse → validate → engine → encode → reply. */
#ifndef ANVIL_HANDLERS_H
#define ANVIL_HANDLERS_H

#include "api.h"

/* The hosted service's limits (wire contract §2, §3). */
enum {
    MAX_PER_CALL = 100,       /* messages per post, reserve, peek, batch delete */
    DELAY_MAX_S = 604800,
    TIMEOUT_MIN_S = 30,       /* reservation timeouts and message_timeout */
    TIMEOUT_MAX_S = 86400,
    WAIT_MAX_S = 30,
    EXPIRATION_MIN_S = 60,
    EXPIRATION_MAX_S = 2592000,
    DEAD_LETTER_MAX_MIN = 1,
    DEAD_LETTER_MAX_MAX = 1000,
    PER_PAGE_DEFAULT = 30,
    PER_PAGE_MAX = 100,
    PUSH_HEADERS_MAX = 5,
    PUSH_HEADER_NAME_MAX = 64,
    PUSH_HEADER_VALUE_MAX = 1024,
};

/* The lowest timeouts accepted: the hosted service's (above), or 1 s with the relaxed
 * limits of test mode (api_limits.relaxed). */
uint32_t api_timeout_min(const struct api *api);            /* reserve, touch, message_timeout */
uint32_t api_expiration_min(const struct api *api);         /* message_expiration */
uint32_t api_retries_delay_min(const struct api *api);      /* push.retries_delay */

/* The decoded path: borrowed strings valid while the handler runs. */
struct route {
    const char *project;
    const char *queue;
    uint64_t message_id;
    bool has_message_id;
    bool server_wide; /* not about one project: needs any valid token */
};

bool api_valid_utf8(const char *s, size_t len);
/* ENG_OK when token may use project (any project when NULL); API_UNAUTHORIZED when it is
 * no token of ours, API_FORBIDDEN when it is not for this project. Dev mode: always ENG_OK. */
int api_check_token(const struct api *api, const char *token, const char *project);
/* True when token may use every project (dev mode: any token, or none). */
bool api_token_sees_all(const struct api *api, const char *token);

/* The name of the i-th v3 endpoint ("queue_list", "post", "reserve"...; NULL past the end),
 * as the test kit's fault rules name them (api/admin_faults.c). */
const char *api_route_name(size_t i);

/* sqs.c: the SQS front */
bool sqs_claims(struct api_request *req);
/* True when name is an SQS action the front offers ("SendMessage"...). */
bool sqs_action_known(const char *name);
void sqs_handle(struct api *api, struct api_request *req);
/* A queue or project name: 1 to 255 bytes of UTF-8 without control characters or '/'. */
bool api_valid_name(const char *s);
/* An HTTP header name: 1 to max bytes of RFC 9110 token characters. */
bool api_header_name(const char *s, size_t max);
/* Prepares req->op to deliver its result to done. */
void api_prepare_op(struct api_request *req, eng_done_fn done);
/* When the engine call failed, answers with its status and returns true. */
bool api_failed(struct api_request *req, const struct eng_result *res);

/* v3_queues.c */
void v3_list_queues(struct api *api, struct api_request *req, const struct route *rt);
void v3_get_queue(struct api *api, struct api_request *req, const struct route *rt);
void v3_put_queue(struct api *api, struct api_request *req, const struct route *rt);
void v3_patch_queue(struct api *api, struct api_request *req, const struct route *rt);
void v3_delete_queue(struct api *api, struct api_request *req, const struct route *rt);
void v3_subscribers(struct api *api, struct api_request *req, const struct route *rt);
struct field_reader;
/* Reads a queue's settings (the fields of a create: type, message_timeout, message_expiration,
 * push, dead_letter) from object q into cfg (zeroed by the caller), by the rules of a create;
 * problems go to fr. Strings live until fr_release(); *subs (NULL when none) is the caller's,
 * freed with v3_free_subscribers(subs, cfg->push.n_subscribers). The test kit's fixtures
 * use it too. */
void v3_read_queue_settings(struct field_reader *fr, int q, struct eng_queue_config *cfg,
                            struct eng_subscriber **subs, const struct api *api,
                            const struct route *rt);
void v3_free_subscribers(struct eng_subscriber *subs, size_t n);

/* v3_messages.c */
void v3_post_messages(struct api *api, struct api_request *req, const struct route *rt);
/* Checks a message's push_headers (object token msg's field) and encodes them as
 * name\0value\0 pairs into *out (malloc'd, the caller frees; NULL when there are none). */
void v3_read_push_headers(struct field_reader *fr, int msg, char **out, size_t *out_len);
void v3_webhook(struct api *api, struct api_request *req, const struct route *rt);
void v3_reserve(struct api *api, struct api_request *req, const struct route *rt);
void v3_peek_messages(struct api *api, struct api_request *req, const struct route *rt);
void v3_get_message(struct api *api, struct api_request *req, const struct route *rt);
void v3_delete_message(struct api *api, struct api_request *req, const struct route *rt);
void v3_delete_messages(struct api *api, struct api_request *req, const struct route *rt);
void v3_touch(struct api *api, struct api_request *req, const struct route *rt);
void v3_release(struct api *api, struct api_request *req, const struct route *rt);
void v3_push_statuses(struct api *api, struct api_request *req, const struct route *rt);

#endif
