/* api/status.c — the one place that decides an HTTP status: engine and front statuses
 * to (HTTP code, message). Texts in quotes are the hosted service's own (wire contract §1);
 * the others are ours, written to tell the client what to change. */
#include "status.h"
#include "jsonw.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int http;
    const char *msg;
} status_map[API_STATUS_END] = {
    [ENG_OK] = {200, "OK"},
    [ENG_QUEUE_NOT_FOUND] = {404, "Queue not found"},
    [ENG_MESSAGE_NOT_FOUND] = {404, "Message not found"},
    [ENG_RESERVATION_MISMATCH] = {403, "Reservation timed out"},
    [ENG_RESERVATION_REQUIRED] = {400, "reservation_id is required"},
    [ENG_TYPE_IMMUTABLE] = {400, "A queue's type cannot be changed"},
    [ENG_PUSH_UNSUPPORTED] = {400, "This server does not deliver to push queue subscribers yet: messages cannot be posted to a push queue"},
    [ENG_NOT_PUSH_QUEUE] = {400, "Queue is not a push queue"},
    [ENG_PUSH_ON_PULL] = {400, "push settings need a push queue: set type to unicast or multicast"},
    [ENG_NO_SUBSCRIBERS] = {400, "A push queue needs at least one subscriber"},
    [ENG_DEAD_LETTER_ON_PUSH] = {400, "dead_letter is for pull queues only"},
    [ENG_ERROR_QUEUE_SELF] = {400, "push.error_queue cannot be the queue itself"},
    [ENG_TOO_MANY_SUBSCRIBERS] = {400, "A push queue has at most 64 subscribers"},
    [ENG_PUSH_LOOP] = {400, "These subscribers would push messages round in a circle back to this queue"},
    [ENG_DEAD_LETTER_SELF] = {400, "dead_letter.queue_name cannot be the queue itself"},
    [ENG_DEAD_LETTER_CYCLE] = {400, "dead_letter.queue_name would make dead-letter queues form a loop"},
    [ENG_DEAD_LETTER_NAME] = {400, "dead_letter.queue_name is required"},
    [ENG_NO_MEMORY] = {503, "Server is out of memory, try again later"},
    [ENG_MEMORY_BUDGET] = {503, "The server's memory budget for messages is spent: consume some messages, or raise memory_budget"},
    [ENG_STORAGE_UNAVAILABLE] = {503, "Storage is unavailable, try again later"},
    [ENG_SHUTTING_DOWN] = {503, "Server is shutting down, try again later"},
    [ENG_ID_TAKEN] = {400, "A message id of the fixture belongs to a message of a project the fixture does not replace"},
    [ENG_ID_REPEATED] = {400, "Two messages of the fixture have the same id"},
    [ENG_NAME_REPEATED] = {400, "The fixture names the same project or queue twice"},
    [ENG_FIXTURE_INVALID] = {400, "The fixture has a project or queue without a name, or a message without a body"},
    [ENG_BACKEND_UNSUPPORTED] = {400, "The PostgreSQL back end cannot do this: the test kit's full peek, snapshots and fixtures need the embedded back end"},
    [API_BAD_REQUEST] = {400, "Bad request"},
    [API_UNAUTHORIZED] = {401, "Unauthorized"},
    [API_FORBIDDEN] = {403, "Forbidden: this token has no access to the project"},
    [API_NOT_FOUND] = {404, "Not found"},
    [API_METHOD_NOT_ALLOWED] = {405, "Method not allowed"},
    [API_TOO_LARGE] = {413, "Request body too large"},
    [API_TOO_MANY_LISTENERS] = {429, "The event stream has 64 listeners already: close one first"},
    [API_TEST_MODE_OFF] = {403, "Test mode is off: the /admin/ routes are for test suites; start anvil with --test-mode (or ANVIL_TEST_MODE=on) to use them"},
};

int api_http_status(int status)
{
    if (status < 0 || status >= API_STATUS_END || !status_map[status].http)
        return 500;
    return status_map[status].http;
}

const char *api_status_text(int status)
{
    if (status < 0 || status >= API_STATUS_END || !status_map[status].msg)
        return "Internal error";
    return status_map[status].msg;
}

static void reply_object(struct api_request *req, int http, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        static const char oom[] = "{\"msg\":\"Server is out of memory, try again later\"}";
        text = strdup(oom);
        http = 503;
    }
    req->respond(req, http, text, text ? strlen(text) : 0);
}

/* Copies text, replacing every byte that is not part of well-formed UTF-8 with '?': error
 * details quote client input (and jansson's parse errors may cut a character in two), and
 * JSON can only carry valid text. */
void api_utf8_clean(const char *text, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; text[i] && o + 5 < out_len;) {
        const unsigned char *p = (const unsigned char *)text + i;
        size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
                 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
        json_t *probe = n ? json_stringn((const char *)p, n) : NULL;
        for (size_t k = 1; probe && k < n; k++)
            if (!p[k]) { /* cut short by the end of the text */
                json_decref(probe);
                probe = NULL;
            }
        if (probe) {
            memcpy(out + o, p, n);
            o += n;
            i += n;
            json_decref(probe);
        } else {
            out[o++] = '?';
            i++;
        }
    }
    out[o] = '\0';
}

void api_reply_text(struct api_request *req, int http, struct jw *w)
{
    size_t len = 0;
    char *text = jw_take(w, &len);
    if (!text) {
        static const char oom[] = "{\"msg\":\"Server is out of memory, try again later\"}";
        text = strdup(oom);
        len = text ? sizeof(oom) - 1 : 0;
        http = 503;
    }
    req->respond(req, http, text, len);
}

void api_reply_msg(struct api_request *req, int http, const char *text)
{
    struct jw w = {0};
    jw_lit(&w, "{\"msg\":");
    jw_str(&w, text, strlen(text));
    jw_lit(&w, "}");
    api_reply_text(req, http, &w);
}

void api_reply_error(struct api_request *req, int status, const char *detail)
{
    char clean[512];
    const char *text = detail;
    if (!text)
        text = status >= 0 && status < API_STATUS_END && status_map[status].msg
                   ? status_map[status].msg
                   : "Internal error";
    api_utf8_clean(text, clean, sizeof(clean));
    api_reply_msg(req, api_http_status(status), clean);
}

void api_reply_json(struct api_request *req, int http, void *obj)
{
    reply_object(req, http, obj);
}

