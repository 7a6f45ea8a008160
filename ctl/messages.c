/* ctl/messages.c — anvilctl's message commands: `post` (arguments or stdin, in batches of
 * 100), `reserve`, `delete` and `peek`. Each sends the v3 request a client would and prints
 * the answer as a table, or as JSON with --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define POST_BATCH 100

/* Posts the bodies as one request; appends the new ids to ids. */
static int post_batch(struct ctl_args *a, const char *queue, json_t *bodies, json_t *ids)
{
    json_t *messages = json_array(), *reply = NULL;
    size_t i;
    json_t *b;
    json_array_foreach(bodies, i, b) {
        json_t *m = json_pack("{s:O}", "body", b);
        if (a->delay >= 0)
            json_object_set_new(m, "delay", json_integer(a->delay));
        json_array_append_new(messages, m);
    }
    json_t *body = json_pack("{s:o}", "messages", messages);
    char *path = ctl_path(a, queue, "/messages");
    int rc = ctl_call(a, "POST", path, body, &reply);
    free(path);
    json_decref(body);
    if (rc == CTL_OK)
        json_array_extend(ids, json_object_get(reply, "ids"));
    json_decref(reply);
    json_array_clear(bodies);
    return rc;
}

/* Adds one body to the batch, sending it when it is full. */
static int post_add(struct ctl_args *a, const char *queue, json_t *batch, json_t *ids,
                    const char *text, size_t len)
{
    json_t *s = json_stringn(text, len);
    if (!s) {
        fprintf(stderr, "anvilctl: a message body is not valid UTF-8\n");
        return CTL_USAGE;
    }
    json_array_append_new(batch, s);
    return json_array_size(batch) == POST_BATCH ? post_batch(a, queue, batch, ids) : CTL_OK;
}

/* One message per line of stdin (the newline removed; empty lines skipped). */
static int post_stdin(struct ctl_args *a, const char *queue, json_t *batch, json_t *ids)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = CTL_OK;
    while (rc == CTL_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len > 0)
            rc = post_add(a, queue, batch, ids, line, (size_t)len);
    }
    free(line);
    return rc;
}

static int cmd_post(struct ctl_args *a)
{
    const char *queue = a->words[0];
    json_t *batch = json_array(), *ids = json_array();
    int rc = CTL_OK;
    for (int i = 1; i < a->n_words && rc == CTL_OK; i++)
        rc = strcmp(a->words[i], "-") == 0
                 ? post_stdin(a, queue, batch, ids)
                 : post_add(a, queue, batch, ids, a->words[i], strlen(a->words[i]));
    if (rc == CTL_OK && json_array_size(batch) > 0)
        rc = post_batch(a, queue, batch, ids);
    if (rc == CTL_OK && a->json) {
        json_t *out = json_pack("{s:O, s:s}", "ids", ids, "msg", "Messages put on queue.");
        ctl_print_json(out);
        json_decref(out);
    } else if (rc == CTL_OK) {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id)
            printf("%s\n", json_string_value(id));
    } else if (json_array_size(ids) > 0) {
        fprintf(stderr, "anvilctl: %zu messages were posted before the error\n",
                json_array_size(ids));
    }
    json_decref(batch);
    json_decref(ids);
    return rc;
}

/* Prints {"messages": [...]} as a table (with reservation ids when reserved). */
static void print_messages(const json_t *reply, bool reserved)
{
    const char *h_res[] = {"ID", "RESERVATION_ID", "RESERVED_COUNT", "BODY"};
    const char *h_peek[] = {"ID", "RESERVED_COUNT", "BODY"};
    struct ctl_table *t = reserved ? ctl_table_new(4, h_res) : ctl_table_new(3, h_peek);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(reply, "messages"), i, m) {
        char *count = ctl_cell(json_object_get(m, "reserved_count"), 20);
        char *body = ctl_cell(json_object_get(m, "body"), 60);
        const char *id = json_string_value(json_object_get(m, "id"));
        const char *res = json_string_value(json_object_get(m, "reservation_id"));
        const char *r_row[] = {id, res, count, body};
        const char *p_row[] = {id, count, body};
        ctl_table_row(t, reserved ? r_row : p_row);
        free(count);
        free(body);
    }
    ctl_table_print(t);
}

static int messages_call(struct ctl_args *a, const char *method, const char *rest,
                         json_t *body, bool reserved)
{
    json_t *reply = NULL;
    char *path = ctl_path(a, a->words[0], rest);
    int rc = ctl_call(a, method, path, body, &reply);
    free(path);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    if (a->json)
        ctl_print_json(reply);
    else
        print_messages(reply, reserved);
    json_decref(reply);
    return CTL_OK;
}

static int cmd_reserve(struct ctl_args *a)
{
    json_t *body = json_object();
    if (a->n >= 0)
        json_object_set_new(body, "n", json_integer(a->n));
    if (a->timeout >= 0)
        json_object_set_new(body, "timeout", json_integer(a->timeout));
    if (a->wait >= 0)
        json_object_set_new(body, "wait", json_integer(a->wait));
    if (a->delete_)
        json_object_set_new(body, "delete", json_true());
    return messages_call(a, "POST", "/reservations", body, true);
}

static int cmd_peek(struct ctl_args *a)
{
    char rest[64];
    snprintf(rest, sizeof(rest), "/messages?n=%lld", a->n >= 0 ? a->n : 1);
    return messages_call(a, "GET", rest, NULL, false);
}

static int cmd_delete(struct ctl_args *a)
{
    const char *id = a->words[1];
    char *eid = ctl_escape(id);
    size_t len = strlen(eid) + 16;
    char *rest = malloc(len);
    snprintf(rest, len, "/messages/%s", eid);
    json_t *body = json_object(), *reply = NULL;
    if (a->reservation_id)
        json_object_set_new(body, "reservation_id", json_string(a->reservation_id));
    char *path = ctl_path(a, a->words[0], rest);
    int rc = ctl_call(a, "DELETE", path, body, &reply);
    free(path);
    free(rest);
    free(eid);
    json_decref(body);
    if (rc == CTL_OK && a->json)
        ctl_print_json(reply);
    else if (rc == CTL_OK)
        printf("deleted message %s\n", id);
    json_decref(reply);
    return rc;
}

const struct ctl_command ctl_message_commands[] = {
    {"post", "QUEUE BODY... | QUEUE -", "post messages (arguments, or stdin one per line)",
     "Each BODY is one message; `-` reads stdin, one message per line (empty lines are\n"
     "skipped). Messages go in requests of 100. Prints the new ids, one per line; --json\n"
     "prints {\"ids\":[...],\"msg\":...}. The queue is created if missing.\n\n"
     "Options:\n  --delay S   hold the messages back S seconds (0-604800)\n",
     CTL_OPT_DELAY, 2, -1, cmd_post},
    {"reserve", "QUEUE [options]", "reserve messages",
     "POST /queues/QUEUE/reservations. Prints ID, RESERVATION_ID, RESERVED_COUNT and BODY\n"
     "(shortened; --json for whole bodies). No message: an empty table, exit 0.\n\n"
     "Options:\n"
     "  -n N          how many, 1-100 (default 1)\n"
     "  --timeout S   reservation timeout, 30-86400 s (default the queue's)\n"
     "  --wait S      long-poll up to S seconds, 0-30, for a message to arrive\n"
     "  --delete      delete the messages as they are reserved\n",
     CTL_OPT_N | CTL_OPT_TIMEOUT | CTL_OPT_WAIT | CTL_OPT_DELETE, 1, 1, cmd_reserve},
    {"delete", "QUEUE ID [--reservation-id R]", "delete a message",
     "DELETE /queues/QUEUE/messages/ID. A reserved message needs its reservation id\n"
     "(else the server answers 403: exit 1). Unknown message or queue: exit 4.\n\n"
     "Options:\n  --reservation-id R   the message's current reservation\n",
     CTL_OPT_RESERVATION_ID, 2, 2, cmd_delete},
    {"peek", "QUEUE [-n N]", "show the next ready messages without reserving them",
     "GET /queues/QUEUE/messages?n=N: the messages reserve would hand out next.\n\n"
     "Options:\n  -n N   how many, 1-100 (default 1)\n",
     CTL_OPT_N, 1, 1, cmd_peek},
};
const size_t ctl_message_command_count =
    sizeof(ctl_message_commands) / sizeof(ctl_message_commands[0]);
