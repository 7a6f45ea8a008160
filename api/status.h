/* api/status.h — every outcome a request can have, engine statuses first, then the
 * front's own (bad input, auth, routing). status.c holds the only table that maps them
 * to an HTTP status and the wire text. */
#ifndef ANVIL_STATUS_H
#define ANVIL_STATUS_H

#include "api.h"

enum api_status {
    API_BAD_REQUEST = ENG_STATUS_COUNT, /* detail text says what was wrong */
    API_UNAUTHORIZED,
    API_FORBIDDEN,
    API_NOT_FOUND,
    API_METHOD_NOT_ALLOWED,
    API_TOO_LARGE,
    API_TEST_MODE_OFF, /* an /admin/ route while test mode is off */
    API_TOO_MANY_LISTENERS, /* the test kit's event stream has all the listeners it takes */
    API_STATUS_END
};

int api_http_status(int status);
/* Copies text into out, each byte that is not part of well-formed UTF-8 replaced by '?'
 * (error details quote client input, and JSON and XML carry only valid text). */
void api_utf8_clean(const char *text, char *out, size_t out_len);
/* The table's text for a status ("Queue not found", ...). */
const char *api_status_text(int status);
/* Answers with the status's HTTP code and {"msg": detail or the table's text}. */
void api_reply_error(struct api_request *req, int status, const char *detail);
/* Answers 200/201 with a JSON object; takes ownership of obj (a jansson json_t *). */
void api_reply_json(struct api_request *req, int http, void *obj);
/* Answers {"msg": text} with the given HTTP code. */
void api_reply_msg(struct api_request *req, int http, const char *text);
struct jw;
/* Answers with the text written into w (which it empties). */
void api_reply_text(struct api_request *req, int http, struct jw *w);

#endif
