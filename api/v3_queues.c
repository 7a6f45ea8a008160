/* api/v3_queues.c — queue endpoints: list, get, create (PUT), update (PATCH), delete, and
 * the subscriber calls (which only push queues accept). Request fields follow the wire
 * contract §2; clients that send zero for an unset number (Go) or put the options at the
 * root instead of under "queue" are accepted, unknown fields are ignored. */
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>


static void on_list(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (api_failed(req, res))
        return;
    json_t *list = json_array();
    for (size_t i = 0; list && i < res->n_names; i++)
        json_array_append_new(list, json_pack("{s:s}", "name", res->names[i]));
    api_reply_json(req, 200, list ? json_pack("{s:o}", "queues", list) : NULL);
}

static bool parse_per_page(const char *text, uint32_t *out)
{
    uint32_t n = 0;
    if (text && *text && !parse_uint_text(text, PER_PAGE_MAX, &n))
        return false;
    *out = n ? n : PER_PAGE_DEFAULT;
    return true;
}

void v3_list_queues(struct api *api, struct api_request *req, const struct route *rt)
{
    uint32_t per_page;
    if (!parse_per_page(req->query(req, "per_page"), &per_page)) {
        api_reply_error(req, API_BAD_REQUEST, "per_page must be an integer from 1 to 100");
        return;
    }
    api_prepare_op(req, on_list);
    eng_queue_list(api->engine, &req->op, rt->project, req->query(req, "prefix"),
                   req->query(req, "previous"), per_page);
}

static void on_queue_with_counts(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_json(req, 200, json_queue(&res->queue, true));
}

/* Create answers like Get Queue without size and total_messages (wire contract §2). */
static void on_queue_created(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_json(req, 200, json_queue(&res->queue, false));
}

void v3_get_queue(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_queue_with_counts);
    eng_queue_get(api->engine, &req->op, rt->project, rt->queue);
}

static void parse_type(struct field_reader *fr, int q, struct eng_queue_config *cfg)
{
    const char *type = fr_cstring(fr, q, "type");
    if (!type)
        return;
    cfg->has_type = true;
    if (strcmp(type, "pull") == 0)
        cfg->type = QUEUE_PULL;
    else if (strcmp(type, "unicast") == 0)
        cfg->type = QUEUE_UNICAST;
    else if (strcmp(type, "multicast") == 0)
        cfg->type = QUEUE_MULTICAST;
    else
        fr_fail(fr, "type must be pull, unicast or multicast");
}

static void parse_dead_letter(struct field_reader *fr, int q, struct eng_queue_config *cfg)
{
    int dl = fr_object(fr, q, "dead_letter");
    if (dl < 0)
        return;
    size_t len = 0;
    const char *text = fr_text(fr, dl, "queue_name", &len);
    const char *name = text ? fr_cstring(fr, dl, "queue_name") : NULL;
    if (name) {
        if (len && (strlen(name) != len || !api_valid_name(name)))
            fr_fail(fr, "dead_letter.queue_name must be a valid queue name");
        cfg->has_dead_letter_queue = true;
        cfg->dead_letter_queue = name;
    }
    cfg->has_dead_letter_max = fr_uint(fr, dl, "max_reservations", DEAD_LETTER_MAX_MIN,
                                       DEAD_LETTER_MAX_MAX, &cfg->dead_letter_max);
}

/* ---- push settings (wire contract §2, §4) ---- */

enum {
    SUBSCRIBER_NAME_MAX = 128,
    SUBSCRIBER_URL_MAX = 2048,
    SUBSCRIBER_HEADERS_MAX = 32,
    HEADER_NAME_MAX = 64,
    HEADER_VALUE_MAX = 1024,
};

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0 && s[strlen(prefix)] != '\0';
}

static bool url_allowed(const char *url)
{
    if (strlen(url) > SUBSCRIBER_URL_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return has_prefix(url, "http://") || has_prefix(url, "https://") || has_prefix(url, "ironmq://");
}

static bool header_value_ok(const char *s)
{
    if (strlen(s) > HEADER_VALUE_MAX)
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

static bool header_named(const struct eng_subscriber *s, const char *name)
{
    for (uint32_t h = 0; h < s->n_headers; h++)
        if (strcasecmp(s->headers[h].name, name) == 0)
            return true;
    return false;
}

static void read_headers(struct field_reader *fr, int obj, size_t i, struct eng_subscriber *out)
{
    int headers = fr_object(fr, obj, "headers");
    if (headers < 0)
        return;
    uint32_t count = fr->doc.tok[headers].count;
    if (count > SUBSCRIBER_HEADERS_MAX) {
        fr_fail(fr, "subscribers[%zu].headers holds at most %d headers", i, SUBSCRIBER_HEADERS_MAX);
        return;
    }
    if (count == 0)
        return;
    if (!(out->headers = calloc(count, sizeof(*out->headers)))) {
        fr_fail(fr, "Server is out of memory");
        return;
    }
    for (int k = jr_child(&fr->doc, headers); k >= 0 && !fr->failed && out->n_headers < count;
         k = jr_sibling(&fr->doc, headers, k)) {
        const char *name = fr_token_cstring(fr, k), *value = fr_token_cstring(fr, k + 1);
        if (!name || !api_header_name(name, HEADER_NAME_MAX))
            fr_fail(fr, "subscribers[%zu].headers: a header name must be 1 to %d token characters",
                    i, HEADER_NAME_MAX);
        else if (!value || !header_value_ok(value))
            fr_fail(fr, "subscribers[%zu].headers.%s must be a string of at most %d bytes, one line",
                    i, name, HEADER_VALUE_MAX);
        else if (header_named(out, name))
            fr_fail(fr, "subscribers[%zu].headers names %s twice", i, name);
        else
            out->headers[out->n_headers++] = (struct eng_header){(char *)name, (char *)value};
    }
}

/* The host of an http(s) URL (lower case, brackets kept for IPv6) and its port. */
static bool url_host_port(const char *url, char *host, size_t host_len, unsigned *port,
                          const char **path)
{
    bool tls = strncmp(url, "https://", 8) == 0;
    const char *p = url + (tls ? 8 : 7), *end = p;
    if (*p == '[')
        end = strchr(p, ']') ? strchr(p, ']') + 1 : p + strlen(p);
    while (*end && *end != ':' && *end != '/' && *end != '?')
        end++;
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= host_len)
        return false;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] | 0x20 : p[i]);
    host[n] = '\0';
    *port = tls ? 443 : 80;
    if (*end == ':')
        *port = (unsigned)strtoul(end + 1, NULL, 10);
    *path = strchr(end, '/') ? strchr(end, '/') : "/";
    return true;
}

static bool host_allowed(const char *allow, const char *host)
{
    if (!allow || !allow[0])
        return true;
    size_t host_len = strlen(host);
    for (const char *p = allow; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, " ,");
        if (n == 1 && *p == '*')
            return true;
        if (n > 1 && p[0] == '*' && p[1] == '.' && host_len > n - 1 &&
            strncasecmp(host + host_len - (n - 1), p + 1, n - 1) == 0)
            return true;
        if (n && n == host_len && strncasecmp(host, p, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/* Does url lead back to queue `queue` of `project` on this server (a loop)? */
static bool url_is_self(const struct api_push_rules *rules, const char *url, const char *project,
                        const char *queue)
{
    char host[256];
    unsigned port;
    const char *path;
    if (!url_host_port(url, host, sizeof(host), &port, &path) || port != rules->self_port)
        return false;
    static const char *const local[] = {"127.0.0.1", "localhost", "[::1]", "0.0.0.0", "[::]"};
    bool here = false;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        here |= strcmp(host, local[i]) == 0;
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "/3/projects/%s/queues/%s/", project, queue);
    return here && strncmp(path, prefix, strlen(prefix)) == 0;
}

/* Checks where subscriber i's url may send to: 400 text in fr when it may not. */
static void check_target(struct field_reader *fr, const struct api_push_rules *rules, size_t i,
                         const char *url, const char *project, const char *queue)
{
    if (strncmp(url, "ironmq:///", 10) == 0) {
        if (!api_valid_name(url + 10))
            fr_fail(fr, "subscribers[%zu].url: ironmq:///NAME needs a valid queue name", i);
        return;
    }
    if (strncmp(url, "ironmq://", 9) == 0)
        return; /* another server's queue: accepted, not delivered to (docs/api.md) */
    char host[256];
    unsigned port;
    const char *path;
    if (!url_host_port(url, host, sizeof(host), &port, &path))
        fr_fail(fr, "subscribers[%zu].url has no host", i);
    else if (!host_allowed(rules->push_allow, host))
        fr_fail(fr, "subscribers[%zu].url: host %s is not allowed (push_allow)", i, host);
    else if (url_is_self(rules, url, project, queue))
        fr_fail(fr, "subscribers[%zu].url points back at this queue", i);
}

void v3_free_subscribers(struct eng_subscriber *subs, size_t n)
{
    for (size_t i = 0; subs && i < n; i++)
        free(subs[i].headers);
    free(subs);
}

/* Reads a "subscribers" array: names (unique) always, url and headers unless names_only.
 * The strings live until fr_release(); the array (and each headers array) is the caller's
 * to free with v3_free_subscribers(). NULL with fr->failed on bad input. */
static struct eng_subscriber *read_subscribers(struct field_reader *fr, int list, bool names_only,
                                               size_t *n_out, const struct api_push_rules *rules,
                                               const struct route *rt)
{
    size_t n = fr->doc.tok[list].count, i = 0;
    *n_out = n;
    if (n > PUSH_SUBSCRIBERS_MAX) {
        fr_fail(fr, "subscribers holds at most %d entries", PUSH_SUBSCRIBERS_MAX);
        return NULL;
    }
    struct eng_subscriber *subs = calloc(n ? n : 1, sizeof(*subs));
    if (!subs) {
        fr_fail(fr, "Server is out of memory");
        return NULL;
    }
    for (int s = jr_child(&fr->doc, list); s >= 0 && !fr->failed; s = jr_sibling(&fr->doc, list, s), i++) {
        if (!jr_is(&fr->doc, s, JR_OBJECT)) {
            fr_fail(fr, "subscribers[%zu] must be an object {\"name\", \"url\"}", i);
            break;
        }
        const char *name = fr_cstring(fr, s, "name");
        const char *url = names_only ? NULL : fr_cstring(fr, s, "url");
        if (fr->failed)
            break;
        if (!name || !name[0] || strlen(name) > SUBSCRIBER_NAME_MAX || !api_valid_utf8(name, strlen(name))) {
            fr_fail(fr, "subscribers[%zu].name is required: 1 to %d bytes of text", i, SUBSCRIBER_NAME_MAX);
            break;
        }
        if (!names_only && (!url || !url_allowed(url))) {
            fr_fail(fr, "subscribers[%zu].url is required: an http://, https:// or ironmq:// URL of at"
                        " most %d bytes", i, SUBSCRIBER_URL_MAX);
            break;
        }
        if (!names_only)
            check_target(fr, rules, i, url, rt->project, rt->queue);
        if (fr->failed)
            break;
        for (size_t j = 0; !fr->failed && j < i; j++)
            if (strcmp(subs[j].name, name) == 0)
                fr_fail(fr, "subscribers[%zu].name repeats \"%s\": names must be unique", i, name);
        if (fr->failed)
            break;
        subs[i].name = (char *)name;
        subs[i].url = (char *)(url ? url : "");
        if (!names_only)
            read_headers(fr, s, i, &subs[i]);
    }
    if (fr->failed) {
        v3_free_subscribers(subs, n);
        return NULL;
    }
    return subs;
}

static void parse_push(struct field_reader *fr, int q, struct eng_queue_config *cfg,
                       struct eng_subscriber **subs, const struct api *api,
                       const struct route *rt)
{
    int push = fr_object(fr, q, "push");
    cfg->has_push = push >= 0;
    if (push < 0)
        return;
    struct eng_push_config *pc = &cfg->push;
    int list = fr_array(fr, push, "subscribers");
    if (list >= 0) {
        size_t n = 0;
        *subs = read_subscribers(fr, list, false, &n, &api->push, rt);
        pc->has_subscribers = *subs != NULL;
        pc->subscribers = *subs;
        pc->n_subscribers = (uint32_t)n;
    }
    pc->has_retries = fr_uint(fr, push, "retries", 0, PUSH_RETRIES_MAX, &pc->retries);
    pc->has_retries_delay = fr_uint_or_zero(fr, push, "retries_delay", api_retries_delay_min(api),
                                            PUSH_RETRIES_DELAY_MAX_S, &pc->retries_delay_s);
    const char *error_queue = fr_cstring(fr, push, "error_queue");
    if (error_queue && error_queue[0] && !api_valid_name(error_queue))
        fr_fail(fr, "push.error_queue must be a valid queue name, or \"\" for none");
    pc->has_error_queue = error_queue != NULL;
    pc->error_queue = error_queue;
}

/* Fills cfg from {"queue": {...}} (strings in cfg live until fr_release); false when the
 * body is not a JSON object. */
static bool parse_queue_config(struct field_reader *fr, struct api_request *req,
                               struct eng_queue_config *cfg, struct eng_subscriber **subs,
                               const struct api *api, const struct route *rt)
{
    memset(cfg, 0, sizeof(*cfg));
    if (fr_parse(fr, req->body, req->body_len) != 0)
        return false;
    int q = fr_object(fr, 0, "queue");
    if (q < 0)
        q = 0; /* the options may also come at the root */
    v3_read_queue_settings(fr, q, cfg, subs, api, rt);
    return true;
}

void v3_read_queue_settings(struct field_reader *fr, int q, struct eng_queue_config *cfg,
                            struct eng_subscriber **subs, const struct api *api,
                            const struct route *rt)
{
    parse_type(fr, q, cfg);
    cfg->has_message_timeout = fr_uint_or_zero(fr, q, "message_timeout", api_timeout_min(api),
                                               TIMEOUT_MAX_S, &cfg->message_timeout_s);
    cfg->has_message_expiration = fr_uint_or_zero(fr, q, "message_expiration", api_expiration_min(api),
                                                  EXPIRATION_MAX_S, &cfg->message_expiration_s);
    parse_push(fr, q, cfg, subs, api, rt);
    parse_dead_letter(fr, q, cfg);
}

static void put_or_patch(struct api *api, struct api_request *req, const struct route *rt,
                         bool patch)
{
    struct field_reader fr = {0};
    struct eng_queue_config cfg;
    struct eng_subscriber *subs = NULL;
    parse_queue_config(&fr, req, &cfg, &subs, api, rt);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else if (patch) {
        api_prepare_op(req, on_queue_with_counts);
        eng_queue_patch(api->engine, &req->op, rt->project, rt->queue, &cfg);
    } else {
        api_prepare_op(req, on_queue_created);
        eng_queue_put(api->engine, &req->op, rt->project, rt->queue, &cfg);
    }
    v3_free_subscribers(subs, cfg.push.n_subscribers);
    fr_release(&fr);
}

void v3_put_queue(struct api *api, struct api_request *req, const struct route *rt)
{
    put_or_patch(api, req, rt, false);
}

void v3_patch_queue(struct api *api, struct api_request *req, const struct route *rt)
{
    put_or_patch(api, req, rt, true);
}

static void on_deleted(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_msg(req, 200, "Deleted");
}

void v3_delete_queue(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_deleted);
    eng_queue_delete(api->engine, &req->op, rt->project, rt->queue);
}

static void on_subscribers(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_msg(req, 200, "Updated");
}

/* POST adds or updates subscribers by name, PUT replaces them all, DELETE removes the named
 * ones: {"subscribers": [{"name", "url", "headers"?}]} (DELETE reads names only). */
void v3_subscribers(struct api *api, struct api_request *req, const struct route *rt)
{
    struct field_reader fr = {0};
    bool remove = strcmp(req->method, "DELETE") == 0;
    enum eng_subscriber_edit edit = remove ? SUBSCRIBERS_REMOVE
                                    : strcmp(req->method, "PUT") == 0 ? SUBSCRIBERS_REPLACE
                                                                      : SUBSCRIBERS_ADD;
    struct eng_subscriber *subs = NULL;
    size_t n = 0;
    if (fr_parse(&fr, req->body, req->body_len) == 0) {
        int list = fr_array(&fr, 0, "subscribers");
        if (!fr.failed && list < 0)
            fr_fail(&fr, "subscribers is required: {\"subscribers\": [{\"name\": \"...\"%s}]}",
                    remove ? "" : ", \"url\": \"...\"");
        else if (!fr.failed && fr.doc.tok[list].count == 0)
            fr_fail(&fr, "subscribers must hold at least one entry");
        else if (!fr.failed)
            subs = read_subscribers(&fr, list, remove, &n, &api->push, rt);
    }
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else {
        api_prepare_op(req, on_subscribers);
        eng_subscribers(api->engine, &req->op, rt->project, rt->queue, edit, subs, n);
    }
    v3_free_subscribers(subs, n);
    fr_release(&fr);
}
