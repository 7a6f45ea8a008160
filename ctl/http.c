/* ctl/http.c — anvilctl's one way to talk to the server: a blocking libcurl easy request
 * with the token, a JSON body and a JSON answer, and the mapping from "what happened" to
 * anvilctl's exit codes (no answer → 3, 404 → 4, other errors → 1). Knows nothing of what
 * any command means. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctl_buf {
    char *data;
    size_t len;
};

static size_t http_collect(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct ctl_buf *b = user;
    size_t n = size * nmemb;
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void ctl_http_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ctl_http_cleanup(void)
{
    curl_global_cleanup();
}

char *ctl_path(const struct ctl_args *a, const char *queue, const char *rest)
{
    char *p = curl_easy_escape(NULL, a->project, 0);
    char *q = queue ? curl_easy_escape(NULL, queue, 0) : NULL;
    size_t len = strlen(p) + (q ? strlen(q) : 0) + (rest ? strlen(rest) : 0) + 32;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "/3/projects/%s/queues%s%s%s", p, q ? "/" : "", q ? q : "",
                 rest ? rest : "");
    curl_free(p);
    curl_free(q);
    return path;
}

char *ctl_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = strdup(e ? e : "");
    curl_free(e);
    return copy;
}

static struct curl_slist *http_headers(const struct ctl_args *a, bool has_body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (has_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (a->token && a->token[0]) {
        size_t len = strlen(a->token) + 32;
        char *line = malloc(len);
        if (line) {
            snprintf(line, len, "Authorization: OAuth %s", a->token);
            h = curl_slist_append(h, line);
            free(line);
        }
    }
    return h;
}

int ctl_http(const struct ctl_args *a, const char *method, const char *path, json_t *body,
             long timeout_s, long *status, json_t **reply)
{
    char *url = NULL, *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct ctl_buf got = {0};
    *reply = NULL;
    *status = 0;
    size_t base = strlen(a->url);
    while (base > 0 && a->url[base - 1] == '/')
        base--;
    size_t url_len = base + strlen(path) + 1;
    url = malloc(url_len);
    if (!url) {
        free(text);
        fprintf(stderr, "anvilctl: out of memory\n");
        return CTL_ERROR;
    }
    snprintf(url, url_len, "%.*s%s", (int)base, a->url, path);

    CURL *c = curl_easy_init();
    struct curl_slist *headers = http_headers(a, text != NULL);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "anvilctl/" ANVIL_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    if (text)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    CURLcode rc = curl_easy_perform(c);
    int result = CTL_OK;
    if (rc != CURLE_OK) {
        fprintf(stderr, "anvilctl: cannot reach the server at %.*s: %s\n", (int)base, a->url,
                curl_easy_strerror(rc));
        result = CTL_UNREACHABLE;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (got.data)
            *reply = json_loadb(got.data, got.len, 0, NULL);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    free(got.data);
    free(text);
    free(url);
    return result;
}

int ctl_call(const struct ctl_args *a, const char *method, const char *path, json_t *body,
             json_t **reply)
{
    long status = 0;
    long timeout_s = 30 + (a->wait > 0 ? a->wait : 0);
    int rc = ctl_http(a, method, path, body, timeout_s, &status, reply);
    if (rc != CTL_OK)
        return rc;
    if (status >= 200 && status < 300)
        return CTL_OK;
    const char *msg = json_string_value(json_object_get(*reply, "msg"));
    fprintf(stderr, "anvilctl: %s (HTTP %ld)\n", msg ? msg : "unexpected answer", status);
    json_decref(*reply);
    *reply = NULL;
    return status == 404 ? CTL_NOT_FOUND : CTL_ERROR;
}
