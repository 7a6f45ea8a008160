/* api/sqs_queues.c — SQS queue actions: CreateQueue, GetQueueUrl, ListQueues,
 * Get/SetQueueAttributes, DeleteQueue, PurgeQueue and the tag calls. The attributes with an
 * engine counterpart map onto it (VisibilityTimeout → message_timeout, MessageRetentionPeriod
 * → message_expiration, RedrivePolicy → dead_letter); the rest (DelaySeconds,
 * MaximumMessageSize, ReceiveMessageWaitTimeSeconds, Policy, tags, ...) are the front's own,
 * kept with the queue as name\0value\0 pairs the engine stores without reading. */
#include "sqs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"

/* ---- the front's attributes of a queue ---- */

/* The next name\0value\0 pair of b at *off; false at the end (or at a cut-short pair). */
static bool pairs_next(const struct blob *b, size_t *off, const char **name, const char **value)
{
    if (!b || *off >= b->len)
        return false;
    *name = b->data + *off;
    size_t nl = strnlen(*name, b->len - *off);
    if (*off + nl + 1 >= b->len)
        return false;
    *value = *name + nl + 1;
    *off += nl + strnlen(*value, b->len - *off - nl - 1) + 2;
    return true;
}

/* The value of pair `name`, or NULL. */
static const char *pairs_get(const struct blob *b, const char *name)
{
    const char *n, *v;
    for (size_t off = 0; pairs_next(b, &off, &n, &v);)
        if (strcmp(n, name) == 0)
            return v;
    return NULL;
}

struct pair_list {
    char *data;
    size_t len;
};

static int pairs_add(struct pair_list *l, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *grown = realloc(l->data, l->len + nl + vl + 2);
    if (!grown)
        return -1;
    memcpy(grown + l->len, name, nl + 1);
    memcpy(grown + l->len + nl + 1, value, vl + 1);
    l->data = grown;
    l->len += nl + vl + 2;
    return 0;
}

/* The pairs of `old` with `set` applied (a value of NULL in set removes). */
struct setting {
    const char *name, *value;
};

static int pairs_merge(const struct blob *old, const struct setting *set, size_t n, struct pair_list *out)
{
    const char *name, *value;
    for (size_t off = 0; pairs_next(old, &off, &name, &value);) {
        bool replaced = false;
        for (size_t i = 0; i < n && !replaced; i++)
            replaced = strcmp(set[i].name, name) == 0;
        if (!replaced && pairs_add(out, name, value) != 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (set[i].value && pairs_add(out, set[i].name, set[i].value) != 0)
            return -1;
    return 0;
}

/* ---- attribute names ---- */

enum attr_kind {
    A_NUMBER,     /* a whole number in [min, max] */
    A_TEXT,       /* any text, kept as given */
    A_REDRIVE,    /* RedrivePolicy JSON */
    A_FIFO,       /* FIFO settings: anvil's queues are standard queues */
    A_READ_ONLY,  /* computed */
};

static const struct queue_attr {
    const char *name;
    enum attr_kind kind;
    uint32_t min, max;
    const char *fallback; /* front attributes: the value when never set */
} queue_attrs[] = {
    {"VisibilityTimeout", A_NUMBER, 0, SQS_VISIBILITY_MAX_S, NULL},
    {"MessageRetentionPeriod", A_NUMBER, SQS_RETENTION_MIN_S, SQS_RETENTION_MAX_S, NULL},
    {"DelaySeconds", A_NUMBER, 0, SQS_DELAY_MAX_S, "0"},
    {"MaximumMessageSize", A_NUMBER, SQS_MESSAGE_SIZE_MIN, SQS_MESSAGE_SIZE_MAX, "262144"},
    {"ReceiveMessageWaitTimeSeconds", A_NUMBER, 0, SQS_WAIT_MAX_S, "0"},
    {"RedrivePolicy", A_REDRIVE, 0, 0, NULL},
    {"Policy", A_TEXT, 0, 0, NULL},
    {"RedriveAllowPolicy", A_TEXT, 0, 0, NULL},
    {"KmsMasterKeyId", A_TEXT, 0, 0, NULL},
    {"KmsDataKeyReusePeriodSeconds", A_NUMBER, 60, 86400, NULL},
    {"SqsManagedSseEnabled", A_TEXT, 0, 0, NULL},
    {"FifoQueue", A_FIFO, 0, 0, NULL},
    {"ContentBasedDeduplication", A_FIFO, 0, 0, NULL},
    {"DeduplicationScope", A_FIFO, 0, 0, NULL},
    {"FifoThroughputLimit", A_FIFO, 0, 0, NULL},
    {"ApproximateNumberOfMessages", A_READ_ONLY, 0, 0, NULL},
    {"ApproximateNumberOfMessagesNotVisible", A_READ_ONLY, 0, 0, NULL},
    {"ApproximateNumberOfMessagesDelayed", A_READ_ONLY, 0, 0, NULL},
    {"CreatedTimestamp", A_READ_ONLY, 0, 0, NULL},
    {"LastModifiedTimestamp", A_READ_ONLY, 0, 0, NULL},
    {"QueueArn", A_READ_ONLY, 0, 0, NULL},
};

enum { N_QUEUE_ATTRS = sizeof(queue_attrs) / sizeof(queue_attrs[0]) };

static const struct queue_attr *find_attr(const char *name)
{
    for (size_t i = 0; i < N_QUEUE_ATTRS; i++)
        if (strcmp(queue_attrs[i].name, name) == 0)
            return &queue_attrs[i];
    return NULL;
}

static void write_arn(const struct sqs_call *c, char *out, size_t len, const char *project,
                      const char *queue)
{
    snprintf(out, len, "arn:aws:sqs:%s:%s:%s", c->api->sqs.region, project, queue);
}

/* A queue's value of a readable attribute, into buf (or NULL when it has none). */
static const char *attr_value(const struct sqs_call *c, const struct eng_queue_info *q,
                              const struct queue_attr *a, char *buf, size_t len)
{
    const char *n = a->name;
    uint64_t v = 0;
    if (strcmp(n, "VisibilityTimeout") == 0)
        v = q->message_timeout_s;
    else if (strcmp(n, "MessageRetentionPeriod") == 0)
        v = q->message_expiration_s;
    else if (strcmp(n, "ApproximateNumberOfMessages") == 0)
        v = q->ready;
    else if (strcmp(n, "ApproximateNumberOfMessagesNotVisible") == 0)
        v = q->reserved + q->pushing;
    else if (strcmp(n, "ApproximateNumberOfMessagesDelayed") == 0)
        v = q->delayed;
    else if (strcmp(n, "CreatedTimestamp") == 0)
        v = (uint64_t)(q->created_at_ms / 1000);
    else if (strcmp(n, "LastModifiedTimestamp") == 0) {
        const char *set = pairs_get(q->attributes, "LastModifiedTimestamp");
        if (set)
            return set;
        v = (uint64_t)(q->created_at_ms / 1000);
    } else if (strcmp(n, "QueueArn") == 0) {
        write_arn(c, buf, len, q->project, q->name);
        return buf;
    } else if (strcmp(n, "RedrivePolicy") == 0) {
        if (!q->dead_letter_queue)
            return NULL;
        char arn[600];
        write_arn(c, arn, sizeof(arn), q->project, q->dead_letter_queue);
        json_t *o = json_pack("{s:s, s:I}", "deadLetterTargetArn", arn, "maxReceiveCount",
                              (json_int_t)q->dead_letter_max);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        snprintf(buf, len, "%s", text ? text : "");
        free(text);
        return buf;
    } else if (a->kind == A_FIFO) {
        return NULL; /* standard queues: FIFO settings are never set */
    } else {
        const char *set = pairs_get(q->attributes, n);
        return set ? set : a->fallback;
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* ---- reading the attributes of a CreateQueue or SetQueueAttributes ---- */

enum { TAGS_MAX = 50 };

struct queue_change {
    struct eng_queue_config cfg;
    struct setting front[N_QUEUE_ATTRS + 1 + TAGS_MAX];
    char tag_names[TAGS_MAX][140];
    size_t n_front;
    char dead_letter[256];
    /* what was asked, for CreateQueue's comparison with an existing queue */
    const char *asked_name[N_QUEUE_ATTRS];
    const char *asked_value[N_QUEUE_ATTRS];
    size_t n_asked;
    struct pair_list merged;
    char *queue_name;
    const char *lookup;   /* the queue the change is for */
    char modified[24];
};

static void change_free(void *p)
{
    struct queue_change *ch = p;
    if (!ch)
        return;
    free(ch->merged.data);
    free(ch->queue_name);
    free(ch);
}

/* The RedrivePolicy's target queue (same account) and maxReceiveCount; false on anything else. */
static bool read_redrive(const struct sqs_call *c, const char *text, char dlq[256], uint32_t *max)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    json_t *arn = o ? json_object_get(o, "deadLetterTargetArn") : NULL;
    json_t *count = o ? json_object_get(o, "maxReceiveCount") : NULL;
    bool ok = json_is_string(arn) && (json_is_integer(count) || json_is_string(count));
    long long n = 0;
    if (ok)
        n = json_is_integer(count) ? (long long)json_integer_value(count)
                                   : strtoll(json_string_value(count), NULL, 10);
    ok = ok && n >= 1 && n <= SQS_REDRIVE_MAX;
    if (ok) {
        /* arn:aws:sqs:<region>:<account>:<queue>, and the account must be this one */
        const char *s = json_string_value(arn);
        const char *last = strrchr(s, ':');
        const char *acct_end = last;
        const char *acct = NULL;
        for (const char *p = last - 1; last && p > s; p--)
            if (*p == ':') {
                acct = p + 1;
                break;
            }
        ok = last && acct && strncmp(s, "arn:", 4) == 0 &&
             (size_t)(acct_end - acct) == strlen(c->project) &&
             strncmp(acct, c->project, strlen(c->project)) == 0 && strlen(last + 1) < 256 &&
             api_valid_name(last + 1);
        if (ok)
            snprintf(dlq, 256, "%s", last + 1);
    }
    *max = (uint32_t)n;
    json_decref(o);
    return ok;
}

/* Reads Attribute.N.Name/Value (and boto 2's unnumbered Attribute.Name/Value) into ch.
 * False when answered with an error. */
static bool read_change(struct sqs_call *c, struct queue_change *ch)
{
    for (size_t i = 0;; i++) {
        const char *name = i ? sqs_paramf(c, "Attribute.%zu.Name", i) : sqs_param(c, "Attribute.Name");
        const char *value = i ? sqs_paramf(c, "Attribute.%zu.Value", i) : sqs_param(c, "Attribute.Value");
        if (!name) {
            if (i)
                return true;
            continue;
        }
        const struct queue_attr *a = find_attr(name);
        if (!a || a->kind == A_READ_ONLY) {
            sqs_fail(c, SQS_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.100s.", name);
            return false;
        }
        if (!value) {
            sqs_fail(c, SQS_MISSING_PARAMETER, "The attribute %s needs a value.", name);
            return false;
        }
        if (ch->n_asked < N_QUEUE_ATTRS) {
            ch->asked_name[ch->n_asked] = a->name;
            ch->asked_value[ch->n_asked++] = value;
        }
        uint32_t v = 0;
        switch (a->kind) {
        case A_NUMBER: {
            char *end = NULL;
            unsigned long long n = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
            if (!end || *end || n < a->min || n > a->max) {
                sqs_fail(c, SQS_INVALID_ATTRIBUTE_VALUE,
                         "Invalid value for the parameter %s: %.64s is not a whole number from %u to %u.",
                         name, value, a->min, a->max);
                return false;
            }
            v = (uint32_t)n;
            if (strcmp(name, "VisibilityTimeout") == 0) {
                ch->cfg.has_message_timeout = true;
                ch->cfg.message_timeout_s = v;
            } else if (strcmp(name, "MessageRetentionPeriod") == 0) {
                ch->cfg.has_message_expiration = true;
                ch->cfg.message_expiration_s = v;
            } else if (ch->n_front < N_QUEUE_ATTRS) {
                ch->front[ch->n_front++] = (struct setting){a->name, value};
            }
            break;
        }
        case A_TEXT:
            if (!sqs_valid_body(value, strlen(value))) {
                sqs_fail(c, SQS_INVALID_ATTRIBUTE_VALUE, "Invalid value for the parameter %s:"
                         " characters outside the allowed set.", name);
                return false;
            }
            if (ch->n_front < N_QUEUE_ATTRS)
                ch->front[ch->n_front++] = (struct setting){a->name, value[0] ? value : NULL};
            break;
        case A_REDRIVE:
            ch->cfg.has_dead_letter_queue = true;
            ch->cfg.dead_letter_queue = "";
            if (value[0]) {
                if (!read_redrive(c, value, ch->dead_letter, &v)) {
                    sqs_fail(c, SQS_INVALID_ATTRIBUTE_VALUE,
                             "Value %.200s for parameter RedrivePolicy is invalid. Reason: it must be"
                             " {\"deadLetterTargetArn\": \"arn:aws:sqs:REGION:%s:QUEUE\","
                             " \"maxReceiveCount\": 1 to 1000} (the dead-letter queue in the same"
                             " account).", value, c->project);
                    return false;
                }
                ch->cfg.dead_letter_queue = ch->dead_letter;
                ch->cfg.has_dead_letter_max = true;
                ch->cfg.dead_letter_max = v;
            }
            break;
        case A_FIFO:
            if (strcmp(value, "false") != 0) {
                sqs_fail(c, SQS_INVALID_PARAMETER_VALUE,
                         "anvil serves standard queues only: FIFO queues (%s) are not supported.", name);
                return false;
            }
            break;
        case A_READ_ONLY:
            break;
        }
    }
}

/* Sets ch->cfg's front attributes to `old` with ch's changes, and LastModifiedTimestamp. */
static bool apply_front(struct sqs_call *c, struct queue_change *ch, const struct blob *old)
{
    snprintf(ch->modified, sizeof(ch->modified), "%lld",
             (long long)(eng_now_ms(c->api->engine) / 1000));
    if (ch->n_front < sizeof(ch->front) / sizeof(ch->front[0]))
        ch->front[ch->n_front++] = (struct setting){"LastModifiedTimestamp", ch->modified};
    if (pairs_merge(old, ch->front, ch->n_front, &ch->merged) != 0) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return false;
    }
    ch->cfg.has_attributes = true;
    ch->cfg.attributes = ch->merged.data;
    ch->cfg.attributes_len = ch->merged.len;
    return true;
}

static bool valid_sqs_queue_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SQS_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

static void reply_url(struct sqs_call *c, const char *name)
{
    struct jw url = {0};
    sqs_queue_url(c, &url, name);
    size_t len = 0;
    char *text = jw_take(&url, &len);
    so_begin(c, true);
    so_string(c, "QueueUrl", text ? text : "", text ? len : 0);
    so_end(c);
    free(text);
    sqs_reply(c);
}

/* A RedrivePolicy must name an existing queue (as in SQS): checked first, on ops[2]. */
static void on_dead_letter_checked(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct queue_change *ch = c->state;
    if (res->status == ENG_QUEUE_NOT_FOUND) {
        sqs_fail(c, SQS_INVALID_ATTRIBUTE_VALUE, "Value for parameter RedrivePolicy is invalid."
                 " Reason: Dead letter target does not exist: %.100s.", ch->dead_letter);
        return;
    }
    if (sqs_failed(c, res))
        return;
    eng_queue_get(c->api->engine, &c->ops[0], c->project, ch->lookup);
}

/* Looks the queue up (ops[0], then `looked_up` applies the change with ops[1], which ends in
 * `finished`), after checking the dead-letter target when there is one. */
static void start_change(struct sqs_call *c, const char *queue, eng_done_fn looked_up,
                         eng_done_fn finished)
{
    struct queue_change *ch = c->state;
    if (!sqs_ops(c, 3, looked_up))
        return;
    c->ops[1].done = finished;
    c->ops[2].done = on_dead_letter_checked;
    ch->lookup = queue;
    if (ch->cfg.has_dead_letter_queue && ch->cfg.dead_letter_queue[0])
        eng_queue_get(c->api->engine, &c->ops[2], c->project, ch->dead_letter);
    else
        eng_queue_get(c->api->engine, &c->ops[0], c->project, queue);
}

/* ---- CreateQueue ---- */

static void on_created(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct queue_change *ch = c->state;
    if (sqs_failed(c, res))
        return;
    reply_url(c, ch->queue_name);
}

/* Is what CreateQueue asked for what the existing queue has? */
static bool same_attributes(struct sqs_call *c, const struct queue_change *ch,
                            const struct eng_queue_info *q)
{
    for (size_t i = 0; i < ch->n_asked; i++) {
        const struct queue_attr *a = find_attr(ch->asked_name[i]);
        char buf[700];
        if (a->kind == A_FIFO)
            continue;
        const char *have = attr_value(c, q, a, buf, sizeof(buf));
        const char *asked = ch->asked_value[i];
        if (a->kind == A_NUMBER) {
            if (!have || strtoull(have, NULL, 10) != strtoull(asked, NULL, 10))
                return false;
        } else if (a->kind == A_REDRIVE) {
            char dlq[256];
            uint32_t max = 0;
            bool none = asked[0] == '\0';
            if (none != !q->dead_letter_queue)
                return false;
            if (!none && (!read_redrive(c, asked, dlq, &max) || strcmp(dlq, q->dead_letter_queue) != 0 ||
                          max != q->dead_letter_max))
                return false;
        } else if (strcmp(have ? have : "", asked) != 0) {
            return false;
        }
    }
    return true;
}

static void on_create_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct queue_change *ch = c->state;
    if (res->status == ENG_OK) {
        if (same_attributes(c, ch, &res->queue))
            reply_url(c, ch->queue_name);
        else
            sqs_fail(c, SQS_QUEUE_EXISTS,
                     "A queue already exists with the same name and a different value for an attribute.");
        return;
    }
    if (res->status != ENG_QUEUE_NOT_FOUND) {
        sqs_fail_engine(c, res->status);
        return;
    }
    /* a new queue: SQS's defaults where the request says nothing */
    if (!ch->cfg.has_message_timeout) {
        ch->cfg.has_message_timeout = true;
        ch->cfg.message_timeout_s = SQS_VISIBILITY_DEFAULT_S;
    }
    if (!ch->cfg.has_message_expiration) {
        ch->cfg.has_message_expiration = true;
        ch->cfg.message_expiration_s = SQS_RETENTION_DEFAULT_S;
    }
    if (ch->cfg.has_dead_letter_queue && !ch->cfg.dead_letter_queue[0])
        ch->cfg.has_dead_letter_queue = false;
    if (!apply_front(c, ch, NULL))
        return;
    eng_queue_put(c->api->engine, &c->ops[1], c->project, ch->queue_name, &ch->cfg);
}

void sqs_create_queue(struct sqs_call *c)
{
    const char *name = sqs_param(c, "QueueName");
    if (!name) {
        sqs_fail(c, SQS_MISSING_PARAMETER, "The request must contain the parameter QueueName.");
        return;
    }
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".fifo") == 0) {
        sqs_fail(c, SQS_INVALID_PARAMETER_VALUE,
                 "anvil serves standard queues only: FIFO queues (.fifo) are not supported.");
        return;
    }
    if (!valid_sqs_queue_name(name)) {
        sqs_fail(c, SQS_INVALID_PARAMETER_VALUE,
                 "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length");
        return;
    }
    struct queue_change *ch = sqs_state(c, sizeof(*ch), change_free, false);
    if (!ch)
        return;
    if (!(ch->queue_name = strdup(name))) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (!read_change(c, ch))
        return;
    for (size_t i = 1;; i++) { /* tags given at creation */
        const char *key = sqs_paramf(c, "Tag.%zu.Key", i), *value = sqs_paramf(c, "Tag.%zu.Value", i);
        if (!key)
            break;
        if (i > TAGS_MAX || !key[0] || strlen(key) > 128 || !value || strlen(value) > 256 ||
            !sqs_valid_body(key, strlen(key)) || !sqs_valid_body(value, strlen(value))) {
            sqs_fail(c, SQS_INVALID_PARAMETER_VALUE, "Tag %zu is invalid: at most 50 tags, keys of 1"
                     " to 128 characters, values up to 256.", i);
            return;
        }
        snprintf(ch->tag_names[i - 1], sizeof(ch->tag_names[0]), "tag:%s", key);
        ch->front[ch->n_front++] = (struct setting){ch->tag_names[i - 1], value};
    }
    start_change(c, ch->queue_name, on_create_looked_up, on_created);
}

/* ---- SetQueueAttributes ---- */

static void on_set_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct queue_change *ch = c->state;
    if (sqs_failed(c, res))
        return;
    if (!apply_front(c, ch, res->queue.attributes))
        return;
    eng_queue_patch(c->api->engine, &c->ops[1], c->project, c->queue, &ch->cfg);
}

void sqs_set_queue_attributes(struct sqs_call *c)
{
    struct queue_change *ch = sqs_state(c, sizeof(*ch), change_free, true);
    if (!ch)
        return;
    if (read_change(c, ch))
        start_change(c, c->queue, on_set_looked_up, sqs_on_empty_answer);
}

/* ---- GetQueueUrl ---- */

static void on_url_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    reply_url(c, res->queue.name);
}

void sqs_get_queue_url(struct sqs_call *c)
{
    const char *name = sqs_param(c, "QueueName");
    if (!name) {
        sqs_fail(c, SQS_MISSING_PARAMETER, "The request must contain the parameter QueueName.");
        return;
    }
    if (!api_valid_name(name)) {
        sqs_fail(c, SQS_NON_EXISTENT_QUEUE, NULL);
        return;
    }
    if (sqs_ops(c, 1, on_url_looked_up))
        eng_queue_get(c->api->engine, &c->ops[0], c->project, name);
}

/* ---- ListQueues ---- */

static void on_listed(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    uint32_t max = c->max_results;
    so_begin(c, true);
    so_list_begin(c, "QueueUrls");
    size_t shown = res->n_names < max ? res->n_names : max;
    for (size_t i = 0; i < shown; i++)
        sqs_url_item(c, res->names[i]);
    so_list_end(c);
    if (res->n_names > max && shown) /* more remain: the last name shown is where to go on */
        so_text(c, "NextToken", res->names[shown - 1]);
    so_end(c);
    sqs_reply(c);
}

void sqs_list_queues(struct sqs_call *c)
{
    const char *prefix = sqs_param(c, "QueueNamePrefix");
    const char *token = sqs_param(c, "NextToken");
    uint32_t max = SQS_LIST_MAX;
    bool bad = false, paged = sqs_uint(c, "MaxResults", sqs_param(c, "MaxResults"), 1, SQS_LIST_MAX, &max, &bad);
    if (bad)
        return;
    c->max_results = max;
    if (sqs_ops(c, 1, on_listed)) /* one more than shown tells whether more remain */
        eng_queue_list(c->api->engine, &c->ops[0], c->project, prefix, token,
                       paged ? max + 1 : SQS_LIST_MAX);
}

/* ---- GetQueueAttributes ---- */

/* Is name (an AttributeName.N or All) among the asked ones? */
static bool attr_asked(const struct sqs_call *c, const char *name)
{
    for (size_t i = 0;; i++) {
        const char *n = i ? sqs_paramf(c, "AttributeName.%zu", i) : sqs_param(c, "AttributeName");
        if (!n && i)
            return false;
        if (n && (strcmp(n, "All") == 0 || strcmp(n, name) == 0))
            return true;
    }
}

static void on_attributes(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    so_begin(c, true);
    bool any = false;
    for (size_t i = 0; i < N_QUEUE_ATTRS; i++) {
        char buf[700];
        const struct queue_attr *a = &queue_attrs[i];
        if (!attr_asked(c, a->name))
            continue;
        const char *v = attr_value(c, &res->queue, a, buf, sizeof(buf));
        if (!v)
            continue;
        if (!any)
            so_map_begin(c, "Attributes");
        any = true;
        so_map_text(c, "Attribute", a->name, v);
    }
    if (any)
        so_map_end(c);
    so_end(c);
    sqs_reply(c);
}

void sqs_get_queue_attributes(struct sqs_call *c)
{
    if (!sqs_need_queue(c))
        return;
    for (size_t i = 0;; i++) {
        const char *n = i ? sqs_paramf(c, "AttributeName.%zu", i) : sqs_param(c, "AttributeName");
        if (!n && i)
            break;
        if (n && strcmp(n, "All") != 0 && !find_attr(n)) {
            sqs_fail(c, SQS_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.100s.", n);
            return;
        }
    }
    if (sqs_ops(c, 1, on_attributes))
        eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
}

/* ---- DeleteQueue, PurgeQueue ---- */

void sqs_delete_queue(struct sqs_call *c)
{
    if (sqs_need_queue(c) && sqs_ops(c, 1, sqs_on_empty_answer))
        eng_queue_delete(c->api->engine, &c->ops[0], c->project, c->queue);
}

void sqs_purge_queue(struct sqs_call *c)
{
    if (sqs_need_queue(c) && sqs_ops(c, 1, sqs_on_empty_answer))
        eng_clear(c->api->engine, &c->ops[0], c->project, c->queue);
}

/* ---- ListDeadLetterSourceQueues: the queues of the account whose dead letters go here ---- */

struct sources {
    char **names;   /* every queue of the account (the list's answer), owned */
    size_t n;
    bool *is_source;
};

static void sources_free(void *p)
{
    struct sources *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->is_source);
    free(s);
}

static void on_source_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct sources *s = c->state;
    size_t i = (size_t)(op - c->ops);
    s->is_source[i] = res->status == ENG_OK && res->queue.dead_letter_queue &&
                      strcmp(res->queue.dead_letter_queue, c->queue) == 0;
    if (--c->pending > 0)
        return;
    so_begin(c, true);
    so_list_begin(c, "queueUrls");
    for (size_t k = 0; k < s->n; k++)
        if (s->is_source[k])
            sqs_url_item(c, s->names[k]);
    so_list_end(c);
    so_end(c);
    sqs_reply(c);
}

static void on_sources_listed(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct sources *s = c->state;
    if (sqs_failed(c, res))
        return;
    s->names = calloc(res->n_names ? res->n_names : 1, sizeof(char *));
    s->is_source = calloc(res->n_names ? res->n_names : 1, sizeof(bool));
    for (size_t i = 0; s->names && s->is_source && i < res->n_names; i++)
        if ((s->names[s->n] = strdup(res->names[i])))
            s->n++;
    if (!s->names || !s->is_source || s->n != res->n_names) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    size_t n = s->n; /* at least the dead-letter queue itself, which was found */
    if (!sqs_ops(c, n, on_source_looked_up))
        return;
    for (size_t i = 0; i < n; i++) /* the last may answer and free c and s: n is a copy */
        eng_queue_get(c->api->engine, &c->ops[i], c->project, s->names[i]);
}

static void on_source_target_checked(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    eng_queue_list(c->api->engine, &c->ops[1], c->project, NULL, NULL, SQS_LIST_MAX);
}

void sqs_list_dead_letter_sources(struct sqs_call *c)
{
    struct sources *s = sqs_state(c, sizeof(*s), sources_free, true);
    if (!s)
        return;
    if (!sqs_ops(c, 2, on_source_target_checked))
        return;
    c->ops[1].done = on_sources_listed;
    eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
}

/* ---- tags: front attributes named "tag:KEY" ---- */

static void on_tags(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    if (sqs_failed(c, res))
        return;
    so_begin(c, true);
    const struct blob *b = res->queue.attributes;
    bool any = false;
    const char *name, *value;
    for (size_t off = 0; pairs_next(b, &off, &name, &value);) {
        if (strncmp(name, "tag:", 4) != 0)
            continue;
        if (!any) {
            if (c->protocol == SQS_JSON)
                so_map_begin(c, "Tags");
        }
        any = true;
        if (c->protocol == SQS_JSON) {
            so_map_text(c, "Tag", name + 4, value);
        } else {
            so_item_begin(c, "Tag");
            so_text(c, "Key", name + 4);
            so_text(c, "Value", value);
            so_item_end(c, "Tag");
        }
    }
    if (any && c->protocol == SQS_JSON)
        so_map_end(c);
    so_end(c);
    sqs_reply(c);
}

void sqs_list_queue_tags(struct sqs_call *c)
{
    if (sqs_need_queue(c) && sqs_ops(c, 1, on_tags))
        eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
}

static void on_tag_looked_up(struct eng_op *op, const struct eng_result *res)
{
    struct sqs_call *c = op->ctx;
    struct queue_change *ch = c->state;
    if (sqs_failed(c, res))
        return;
    if (pairs_merge(res->queue.attributes, ch->front, ch->n_front, &ch->merged) != 0) {
        sqs_fail(c, SQS_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    ch->cfg.has_attributes = true;
    ch->cfg.attributes = ch->merged.data;
    ch->cfg.attributes_len = ch->merged.len;
    eng_queue_patch(c->api->engine, &c->ops[1], c->project, c->queue, &ch->cfg);
}

static void tags_change(struct sqs_call *c, bool add)
{
    struct queue_change *ch = sqs_state(c, sizeof(*ch), change_free, true);
    if (!ch)
        return;
    for (size_t i = 1;; i++) {
        const char *key = add ? sqs_paramf(c, "Tag.%zu.Key", i) : sqs_paramf(c, "TagKey.%zu", i);
        const char *value = add ? sqs_paramf(c, "Tag.%zu.Value", i) : NULL;
        if (!key)
            break;
        if (i > TAGS_MAX || !key[0] || strlen(key) > 128 || !sqs_valid_body(key, strlen(key)) ||
            (add && (!value || strlen(value) > 256 || !sqs_valid_body(value, strlen(value))))) {
            sqs_fail(c, SQS_INVALID_PARAMETER_VALUE, "Tag %zu is invalid: at most 50 tags, keys of 1"
                     " to 128 characters, values up to 256.", i);
            return;
        }
        snprintf(ch->tag_names[i - 1], sizeof(ch->tag_names[0]), "tag:%s", key);
        ch->front[ch->n_front++] = (struct setting){ch->tag_names[i - 1], value};
    }
    if (sqs_ops(c, 2, on_tag_looked_up)) {
        c->ops[1].done = sqs_on_empty_answer;
        eng_queue_get(c->api->engine, &c->ops[0], c->project, c->queue);
    }
}

void sqs_tag_queue(struct sqs_call *c)
{
    tags_change(c, true);
}

void sqs_untag_queue(struct sqs_call *c)
{
    tags_change(c, false);
}

uint32_t sqs_queue_number(const struct eng_queue_info *q, const char *name)
{
    const struct queue_attr *a = find_attr(name);
    const char *v = pairs_get(q->attributes, name);
    if (!v && a)
        v = a->fallback;
    return v ? (uint32_t)strtoul(v, NULL, 10) : 0;
}
