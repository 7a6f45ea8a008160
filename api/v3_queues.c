/* api/v3_queues.c — queue endpoints: list, get, create (PUT), update (PATCH), delete, and
 * the subscriber calls (which only push queues accept). Request fields follow the wire
 * contract §2; clients that send zero for an unset number (Go) or put the options at the
 * root instead of under "queue" are accepted, unknown fields are ignored. */
#include "handlers.h"
#include "json.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>


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

/* Fills cfg from {"queue": {...}} (strings in cfg live until fr_release); false when the
 * body is not a JSON object. */
static bool parse_queue_config(struct field_reader *fr, struct api_request *req,
                               struct eng_queue_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    if (fr_parse(fr, req->body, req->body_len) != 0)
        return false;
    int q = fr_object(fr, 0, "queue");
    if (q < 0)
        q = 0; /* the options may also come at the root */
    parse_type(fr, q, cfg);
    cfg->has_message_timeout = fr_uint_or_zero(fr, q, "message_timeout", TIMEOUT_MIN_S,
                                               TIMEOUT_MAX_S, &cfg->message_timeout_s);
    cfg->has_message_expiration = fr_uint_or_zero(fr, q, "message_expiration", EXPIRATION_MIN_S,
                                                  EXPIRATION_MAX_S, &cfg->message_expiration_s);
    cfg->has_push = fr_object(fr, q, "push") >= 0;
    parse_dead_letter(fr, q, cfg);
    return true;
}

static void put_or_patch(struct api *api, struct api_request *req, const struct route *rt,
                         bool patch)
{
    struct field_reader fr = {0};
    struct eng_queue_config cfg;
    parse_queue_config(&fr, req, &cfg);
    if (fr.failed) {
        api_reply_error(req, API_BAD_REQUEST, fr.err);
    } else if (patch) {
        api_prepare_op(req, on_queue_with_counts);
        eng_queue_patch(api->engine, &req->op, rt->project, rt->queue, &cfg);
    } else {
        api_prepare_op(req, on_queue_created);
        eng_queue_put(api->engine, &req->op, rt->project, rt->queue, &cfg);
    }
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

/* Every queue is a pull queue until push queues are served: once the queue is known to
 * exist, subscriber calls are refused as the hosted service refuses them on pull queues. */
static void on_subscribers(struct eng_op *op, const struct eng_result *res)
{
    struct api_request *req = op->ctx;
    if (!api_failed(req, res))
        api_reply_error(req, ENG_NOT_PUSH_QUEUE, NULL);
}

void v3_subscribers(struct api *api, struct api_request *req, const struct route *rt)
{
    api_prepare_op(req, on_subscribers);
    eng_queue_get(api->engine, &req->op, rt->project, rt->queue);
}
