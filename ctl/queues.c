/* ctl/queues.c — anvilctl's queue commands: `queues list|info|create|update|delete|clear`
 * and `subscribers list|add|remove`. Each builds the v3 request a client would send, calls
 * the server (http.c) and prints the answer as a table, or as the server's JSON with --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Calls method on the queue's path (plus rest), takes body, and prints the answer: the
 * server's JSON with --json, else `done QUEUE` and the queue's fields when it has them. */
static int queue_call(struct ctl_args *a, const char *method, const char *queue,
                      const char *rest, json_t *body, const char *done)
{
    json_t *reply = NULL;
    char *path = ctl_path(a, queue, rest);
    int rc = ctl_call(a, method, path, body, &reply);
    free(path);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    if (a->json) {
        ctl_print_json(reply);
    } else {
        if (done)
            printf("%s %s\n", done, queue);
        json_t *q = json_object_get(reply, "queue");
        if (q)
            ctl_print_fields(q);
    }
    json_decref(reply);
    return CTL_OK;
}

/* GETs one page of names after `prev` (NULL: the first) into all. */
static int queues_page(struct ctl_args *a, const char *prev, json_t *all, size_t *n)
{
    char *p = prev ? ctl_escape(prev) : NULL, *x = a->prefix ? ctl_escape(a->prefix) : NULL;
    size_t len = 64 + (p ? strlen(p) : 0) + (x ? strlen(x) : 0);
    char *rest = malloc(len);
    snprintf(rest, len, "?per_page=100%s%s%s%s", p ? "&previous=" : "", p ? p : "",
             x ? "&prefix=" : "", x ? x : "");
    char *path = ctl_path(a, NULL, rest);
    json_t *reply = NULL;
    int rc = ctl_call(a, "GET", path, NULL, &reply);
    free(path);
    free(rest);
    free(p);
    free(x);
    if (rc == CTL_OK) {
        json_t *page = json_object_get(reply, "queues");
        *n = json_array_size(page);
        json_array_extend(all, page);
    }
    json_decref(reply);
    return rc;
}

/* Every queue of the project (all pages) into *all, a new reference. */
static int queues_fetch_all(struct ctl_args *a, json_t **all)
{
    *all = json_array();
    size_t n = 0;
    int rc = queues_page(a, NULL, *all, &n);
    while (rc == CTL_OK && n == 100) {
        json_t *last = json_array_get(*all, json_array_size(*all) - 1);
        rc = queues_page(a, json_string_value(json_object_get(last, "name")), *all, &n);
    }
    if (rc != CTL_OK) {
        json_decref(*all);
        *all = NULL;
    }
    return rc;
}

/* One row of the list: the queue's name, type, size and total (a GET each). */
static int queues_list_row(struct ctl_args *a, struct ctl_table *t, const char *name)
{
    json_t *reply = NULL;
    char *path = ctl_path(a, name, NULL);
    int rc = ctl_call(a, "GET", path, NULL, &reply);
    free(path);
    if (rc == CTL_NOT_FOUND) /* deleted since the list was read */
        return CTL_OK;
    if (rc != CTL_OK)
        return rc;
    json_t *q = json_object_get(reply, "queue");
    char *type = ctl_cell(json_object_get(q, "type"), 20);
    char *size = ctl_cell(json_object_get(q, "size"), 20);
    char *total = ctl_cell(json_object_get(q, "total_messages"), 20);
    const char *row[] = {name, type, size, total};
    ctl_table_row(t, row);
    free(type);
    free(size);
    free(total);
    json_decref(reply);
    return CTL_OK;
}

static int queues_list(struct ctl_args *a)
{
    json_t *all = NULL;
    int rc = queues_fetch_all(a, &all);
    if (rc != CTL_OK)
        return rc;
    if (a->json) {
        json_t *out = json_pack("{s:O}", "queues", all);
        ctl_print_json(out);
        json_decref(out);
        json_decref(all);
        return CTL_OK;
    }
    const char *headers[] = {"NAME", "TYPE", "SIZE", "TOTAL"};
    struct ctl_table *t = ctl_table_new(4, headers);
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q) {
        rc = queues_list_row(a, t, json_string_value(json_object_get(q, "name")));
        if (rc != CTL_OK)
            break;
    }
    ctl_table_print(t);
    json_decref(all);
    return rc;
}

static int queues_info(struct ctl_args *a)
{
    return queue_call(a, "GET", a->words[0], NULL, NULL, NULL);
}

/* A --push-subscriber value: NAME=URL, or a bare URL named after its position. */
static json_t *subscriber_json(const char *spec, size_t index)
{
    const char *eq = strchr(spec, '=');
    const char *colon = strstr(spec, "://");
    if (eq && (!colon || eq < colon)) {
        char *name = strndup(spec, (size_t)(eq - spec));
        json_t *s = json_pack("{s:s, s:s}", "name", name, "url", eq + 1);
        free(name);
        return s;
    }
    char name[32];
    snprintf(name, sizeof(name), "s%zu", index + 1);
    return json_pack("{s:s, s:s}", "name", name, "url", spec);
}

static json_t *subscribers_json(char **specs, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, subscriber_json(specs[i], i));
    return list;
}

/* The "queue" object from the settings options; only what was given. */
static json_t *queue_settings(struct ctl_args *a)
{
    json_t *q = json_object();
    if (a->type)
        json_object_set_new(q, "type", json_string(a->type));
    if (a->message_timeout >= 0)
        json_object_set_new(q, "message_timeout", json_integer(a->message_timeout));
    if (a->message_expiration >= 0)
        json_object_set_new(q, "message_expiration", json_integer(a->message_expiration));
    if (a->dead_letter_queue || a->dead_letter_max >= 0) {
        json_t *dl = json_object();
        if (a->dead_letter_queue)
            json_object_set_new(dl, "queue_name", json_string(a->dead_letter_queue));
        if (a->dead_letter_max >= 0)
            json_object_set_new(dl, "max_reservations", json_integer(a->dead_letter_max));
        json_object_set_new(q, "dead_letter", dl);
    }
    if (a->n_subscribers || a->retries >= 0 || a->retries_delay >= 0 || a->error_queue) {
        json_t *push = json_object();
        if (a->n_subscribers)
            json_object_set_new(push, "subscribers",
                                subscribers_json(a->subscribers, a->n_subscribers));
        if (a->retries >= 0)
            json_object_set_new(push, "retries", json_integer(a->retries));
        if (a->retries_delay >= 0)
            json_object_set_new(push, "retries_delay", json_integer(a->retries_delay));
        if (a->error_queue)
            json_object_set_new(push, "error_queue", json_string(a->error_queue));
        json_object_set_new(q, "push", push);
    }
    return json_pack("{s:o}", "queue", q);
}

static int queues_create(struct ctl_args *a)
{
    return queue_call(a, "PUT", a->words[0], NULL, queue_settings(a), "created");
}

static int queues_update(struct ctl_args *a)
{
    return queue_call(a, "PATCH", a->words[0], NULL, queue_settings(a), "updated");
}

static int queues_delete(struct ctl_args *a)
{
    return queue_call(a, "DELETE", a->words[0], NULL, NULL, "deleted queue");
}

static int queues_clear(struct ctl_args *a)
{
    return queue_call(a, "DELETE", a->words[0], "/messages", json_object(), "cleared");
}

static int subscribers_list(struct ctl_args *a)
{
    json_t *reply = NULL;
    char *path = ctl_path(a, a->words[0], NULL);
    int rc = ctl_call(a, "GET", path, NULL, &reply);
    free(path);
    if (rc != CTL_OK)
        return rc;
    json_t *subs = json_object_get(json_object_get(json_object_get(reply, "queue"), "push"),
                                   "subscribers");
    if (a->json) {
        json_t *out = json_pack("{s:O}", "subscribers", subs ? subs : json_array());
        ctl_print_json(out);
        json_decref(out);
    } else {
        const char *headers[] = {"NAME", "URL"};
        struct ctl_table *t = ctl_table_new(2, headers);
        size_t i;
        json_t *s;
        json_array_foreach(subs, i, s) {
            const char *row[] = {json_string_value(json_object_get(s, "name")),
                                 json_string_value(json_object_get(s, "url"))};
            ctl_table_row(t, row);
        }
        ctl_table_print(t);
    }
    json_decref(reply);
    return CTL_OK;
}

static int subscribers_add(struct ctl_args *a)
{
    for (int i = 1; i < a->n_words; i++)
        if (!strchr(a->words[i], '='))
            return ctl_usage_error("subscribers add: \"%s\" is not NAME=URL", a->words[i]);
    json_t *body = json_pack("{s:o}", "subscribers",
                             subscribers_json(a->words + 1, (size_t)a->n_words - 1));
    return queue_call(a, "POST", a->words[0], "/subscribers", body, "updated subscribers of");
}

static int subscribers_remove(struct ctl_args *a)
{
    json_t *list = json_array();
    for (int i = 1; i < a->n_words; i++)
        json_array_append_new(list, json_pack("{s:s}", "name", a->words[i]));
    json_t *body = json_pack("{s:o}", "subscribers", list);
    return queue_call(a, "DELETE", a->words[0], "/subscribers", body, "updated subscribers of");
}

#define SETTINGS_HELP                                                                        \
    "  --type pull|unicast|multicast   queue type (push types need --push-subscriber)\n"      \
    "  --message-timeout S             reservation timeout, 30-86400 s\n"                      \
    "  --message-expiration S          message lifetime, 60-2592000 s\n"                       \
    "  --dead-letter-queue NAME        move messages reserved too often there (\"\" removes)\n" \
    "  --dead-letter-max N             reservations before dead-lettering, 1-1000\n"           \
    "  --push-subscriber [NAME=]URL    push subscriber (repeatable; replaces the list)\n"      \
    "  --retries N                     push retries, 0-100\n"                                  \
    "  --retries-delay S               seconds between push retries, 3-86400\n"                \
    "  --error-queue NAME              where undeliverable pushes go (\"\" for none)\n"

const struct ctl_command ctl_queue_commands[] = {
    {"queues list", "", "list the project's queues with type, size and total",
     "Lists every queue of the project (all pages). The table's SIZE counts ready, delayed\n"
     "and reserved messages; TOTAL every message ever posted. --json prints\n"
     "{\"queues\":[{\"name\"}...]}.\n\n"
     "Options:\n  --prefix P   only queues whose name starts with P\n",
     CTL_OPT_PREFIX, 0, 0, queues_list},
    {"queues info", "QUEUE", "show a queue's settings and counts",
     "Prints the queue's fields (GET /queues/QUEUE). 404 → exit 4.\n", 0, 1, 1, queues_info},
    {"queues create", "QUEUE [options]", "create a queue (or update it if it exists)",
     "PUT /queues/QUEUE with the settings given; anvil creates the queue or updates it.\n\n"
     "Options:\n" SETTINGS_HELP,
     CTL_OPT_QUEUE_SETTINGS, 1, 1, queues_create},
    {"queues update", "QUEUE [options]", "change some of a queue's settings",
     "PATCH /queues/QUEUE: only the settings given change. 404 → exit 4.\n\n"
     "Options:\n" SETTINGS_HELP,
     CTL_OPT_QUEUE_SETTINGS, 1, 1, queues_update},
    {"queues delete", "QUEUE", "delete a queue and its messages",
     "DELETE /queues/QUEUE. 404 → exit 4.\n", 0, 1, 1, queues_delete},
    {"queues clear", "QUEUE", "delete every message of a queue, keep the queue",
     "DELETE /queues/QUEUE/messages with no ids. 404 → exit 4.\n", 0, 1, 1, queues_clear},
    {"subscribers list", "QUEUE", "list a push queue's subscribers",
     "Prints NAME and URL of each push subscriber (from the queue's info); a pull queue\n"
     "has none.\n",
     0, 1, 1, subscribers_list},
    {"subscribers add", "QUEUE NAME=URL...", "add or update push subscribers by name",
     "POST /queues/QUEUE/subscribers: adds the subscribers, or updates those whose name\n"
     "exists. A pull queue answers 400 (exit 1).\n",
     0, 2, -1, subscribers_add},
    {"subscribers remove", "QUEUE NAME...", "remove push subscribers by name",
     "DELETE /queues/QUEUE/subscribers; unknown names are ignored. Removing the last\n"
     "subscriber is refused by the server (exit 1).\n",
     0, 2, -1, subscribers_remove},
};
const size_t ctl_queue_command_count = sizeof(ctl_queue_commands) / sizeof(ctl_queue_commands[0]);
