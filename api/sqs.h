/* api/sqs.h — the SQS front's private interface, shared by its modules:
 *   sqs.c           entry: which protocol, the parameters, who is asking, which action;
 *                   the one table of SQS errors; the per-request state
 *   sqs_out.c       answers, written as XML (query protocol) or JSON (JSON protocol)
 *   sqs_attrs.c     message attributes: reading, storing, filtering, their MD5
 *   sqs_queues.c    queue actions (CreateQueue ... PurgeQueue)
 *   sqs_messages.c  message actions (SendMessage ... ChangeMessageVisibilityBatch)
 * Parameters arrive in the query protocol's flat form ("Attribute.1.Name=...") whichever
 * protocol carried them: a JSON request is flattened into the same names on the way in,
 * so the actions read one shape. They reach queue state only through engine.h. */
#ifndef ANVIL_SQS_H
#define ANVIL_SQS_H

#include "api.h"
#include "form.h"
#include "jsonw.h"

enum sqs_protocol { SQS_QUERY, SQS_JSON };

/* The SQS limits anvil keeps (SQS's own, see docs/api.md "SQS API"). */
enum {
    SQS_BATCH_MAX = 10,              /* entries per batch call, messages per receive */
    SQS_ATTRIBUTES_MAX = 10,         /* message attributes per message */
    SQS_NAME_MAX = 80,               /* queue names and batch entry ids */
    SQS_VISIBILITY_MAX_S = 43200,
    SQS_VISIBILITY_DEFAULT_S = 30,
    SQS_DELAY_MAX_S = 900,
    SQS_WAIT_MAX_S = 20,
    SQS_RETENTION_MIN_S = 60,
    SQS_RETENTION_MAX_S = 1209600,
    SQS_RETENTION_DEFAULT_S = 345600,
    SQS_MESSAGE_SIZE_MIN = 1024,
    SQS_MESSAGE_SIZE_MAX = 262144,   /* also the default MaximumMessageSize */
    SQS_REDRIVE_MAX = 1000,
    SQS_LIST_MAX = 1000,
};

enum sqs_error {
    SQS_OK = 0,
    SQS_NON_EXISTENT_QUEUE,
    SQS_QUEUE_EXISTS,
    SQS_INVALID_PARAMETER_VALUE,
    SQS_MISSING_PARAMETER,
    SQS_INVALID_ATTRIBUTE_NAME,
    SQS_INVALID_ATTRIBUTE_VALUE,
    SQS_RECEIPT_HANDLE_INVALID,
    SQS_MESSAGE_NOT_INFLIGHT,
    SQS_EMPTY_BATCH,
    SQS_TOO_MANY_ENTRIES,
    SQS_BATCH_IDS_NOT_DISTINCT,
    SQS_INVALID_BATCH_ENTRY_ID,
    SQS_BATCH_TOO_LONG,
    SQS_INVALID_MESSAGE_CONTENTS,
    SQS_INVALID_ACTION,
    SQS_MISSING_ACTION,
    SQS_UNSUPPORTED_OPERATION,
    SQS_MALFORMED_REQUEST,
    SQS_INVALID_ADDRESS,
    SQS_MISSING_AUTHENTICATION,
    SQS_INVALID_CLIENT_TOKEN,
    SQS_SIGNATURE_MISMATCH,
    SQS_INCOMPLETE_SIGNATURE,
    SQS_REQUEST_EXPIRED,
    SQS_ACCESS_DENIED,
    SQS_SERVICE_UNAVAILABLE,
    SQS_INTERNAL_FAILURE,
    SQS_ERROR_COUNT
};

/* The answer being written (sqs_out.c). */
struct sqs_out {
    struct jw w;
    enum sqs_protocol protocol;
    int depth;
    bool comma[16];   /* JSON: something was written at this depth */
    bool result_open; /* XML: the <ActionResult> element is open */
};

struct sqs_call;
typedef void (*sqs_action_fn)(struct sqs_call *c);

struct sqs_call {
    struct api *api;
    struct api_request *req;
    enum sqs_protocol protocol;
    const char *action;       /* borrowed from params or the X-Amz-Target header */
    struct form params;
    char *project;            /* the account the request acts in */
    char *queue;              /* from QueueUrl or the path; NULL when none */
    char host[256];           /* for queue URLs */
    char request_id[40];
    struct sqs_out out;
    /* Engine calls of this request: one op, or one per batch entry. */
    struct eng_op *ops;
    size_t n_ops, pending;
    uint32_t max_results;     /* ListQueues: URLs to show */
    void *state;              /* the action's own, freed with the call */
    void (*free_state)(void *state);
    bool answered;
};

/* ---- sqs.c ---- */
/* Answers with an SQS error (detail: NULL for the table's text) and frees the call. */
void sqs_fail(struct sqs_call *c, enum sqs_error err, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with the written output and frees the call. */
void sqs_reply(struct sqs_call *c);
/* The SQS error for an engine status that an action does not handle itself. */
enum sqs_error sqs_engine_error(enum eng_status st);
/* Fails the call for st (with the status's text as detail); always returns true. */
bool sqs_fail_engine(struct sqs_call *c, enum eng_status st);
/* When the engine call failed, answers with its error and returns true (c is gone). */
bool sqs_failed(struct sqs_call *c, const struct eng_result *res);
/* An engine call's done() for actions whose answer is empty. */
void sqs_on_empty_answer(struct eng_op *op, const struct eng_result *res);
/* Writes a list item holding the URL of queue `name`. */
void sqs_url_item(struct sqs_call *c, const char *name);
/* Prepares c->ops for n engine calls (each op's ctx is c); false (and answered) on no memory. */
bool sqs_ops(struct sqs_call *c, size_t n, eng_done_fn done);
/* The queue, or answers MissingParameter / NonExistentQueue-like errors and returns NULL. */
const char *sqs_need_queue(struct sqs_call *c);
/* The action's state: a zeroed allocation of size that the call frees with free_fn. NULL
 * (answered: c is gone) when memory ran out, or when need_queue and the call names none. */
void *sqs_state(struct sqs_call *c, size_t size, void (*free_fn)(void *), bool need_queue);
/* A parameter, or NULL. */
const char *sqs_param(const struct sqs_call *c, const char *name);
const char *sqs_paramf(const struct sqs_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads an optional whole number in [min, max]: true when given; on a bad value answers
 * InvalidParameterValue, sets *bad, returns false. */
bool sqs_uint(struct sqs_call *c, const char *name, const char *value, uint32_t min, uint32_t max,
              uint32_t *out, bool *bad);
/* Writes the URL of queue `name` of the call's account into w. */
void sqs_queue_url(const struct sqs_call *c, struct jw *w, const char *name);

/* ---- sqs_out.c ---- */
void so_begin(struct sqs_call *c, bool has_result);
void so_string(struct sqs_call *c, const char *name, const char *value, size_t len);
void so_text(struct sqs_call *c, const char *name, const char *value); /* so_string of a C string */
void so_u64(struct sqs_call *c, const char *name, uint64_t v);
void so_bool(struct sqs_call *c, const char *name, bool v);
/* A list: JSON "json_name": [...]; XML one <xml_item> element per item (flattened). */
void so_list_begin(struct sqs_call *c, const char *json_name);
void so_list_end(struct sqs_call *c);
void so_item_begin(struct sqs_call *c, const char *xml_item); /* an object item */
void so_item_end(struct sqs_call *c, const char *xml_item);
void so_item_text(struct sqs_call *c, const char *xml_item, const char *value); /* a string item */
/* A map: JSON "json_name": {"k": v}; XML one <xml_entry><Name>k</Name><Value>v</Value></xml_entry>
 * per entry (the way SQS writes Attributes and MessageAttributes). */
void so_map_begin(struct sqs_call *c, const char *json_name);
void so_map_end(struct sqs_call *c);
void so_map_text(struct sqs_call *c, const char *xml_entry, const char *key, const char *value);
void so_map_object_begin(struct sqs_call *c, const char *xml_entry, const char *key);
void so_map_object_end(struct sqs_call *c, const char *xml_entry);
/* Closes the answer (result, metadata); then sqs_reply(). */
void so_end(struct sqs_call *c);
/* XML text escaping (also for error bodies). */
void so_xml_escape(struct jw *w, const char *text, size_t len);

/* ---- sqs_attrs.c: message attributes ---- */
/* Stored form (the engine keeps it opaque): for each attribute name\0type\0value\0, where
 * a Binary value is kept as the base64 text it came in. */
struct sqs_attrs {
    char *data;
    size_t len;
    size_t n;
    size_t size; /* what they count toward the message size: names, types and values */
};
/* Reads `prefix`MessageAttribute.N.{Name,Value.DataType,Value.StringValue,Value.BinaryValue}.
 * False with the reason in err when one is not valid (nothing is answered). */
bool sqs_attrs_read(const struct sqs_call *c, const char *prefix, struct sqs_attrs *out,
                    char *err, size_t err_len);
void sqs_attrs_free(struct sqs_attrs *a);
/* MD5 (hex) of attributes in the stored form, counting only those `want` selects (NULL:
 * all); false when none are selected. */
typedef bool (*sqs_attr_filter)(const struct sqs_call *c, const char *name);
bool sqs_attrs_md5(const struct sqs_call *c, const char *data, size_t len, sqs_attr_filter want,
                   char out[33]);
/* Writes the selected attributes as MessageAttributes. */
void sqs_attrs_write(struct sqs_call *c, const char *data, size_t len, sqs_attr_filter want);
/* Valid as an SQS message body: UTF-8 of the characters XML allows. */
bool sqs_valid_body(const char *s, size_t len);

/* ---- sqs_queues.c, for the message actions ---- */
/* The front attribute `name` (DelaySeconds...) of a looked-up queue, as a number. */
uint32_t sqs_queue_number(const struct eng_queue_info *q, const char *name);

/* ---- actions ---- */
void sqs_create_queue(struct sqs_call *c);
void sqs_get_queue_url(struct sqs_call *c);
void sqs_list_queues(struct sqs_call *c);
void sqs_get_queue_attributes(struct sqs_call *c);
void sqs_set_queue_attributes(struct sqs_call *c);
void sqs_delete_queue(struct sqs_call *c);
void sqs_purge_queue(struct sqs_call *c);
void sqs_list_dead_letter_sources(struct sqs_call *c);
void sqs_list_queue_tags(struct sqs_call *c);
void sqs_tag_queue(struct sqs_call *c);
void sqs_untag_queue(struct sqs_call *c);
void sqs_send_message(struct sqs_call *c);
void sqs_send_message_batch(struct sqs_call *c);
void sqs_receive_message(struct sqs_call *c);
void sqs_delete_message(struct sqs_call *c);
void sqs_delete_message_batch(struct sqs_call *c);
void sqs_change_visibility(struct sqs_call *c);
void sqs_change_visibility_batch(struct sqs_call *c);

#endif
