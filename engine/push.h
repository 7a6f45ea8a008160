/* engine/push.h — a push queue's settings (subscribers, retries, retries delay, error
 * queue): checking a create or update against the wire contract's rules, applying it and
 * the subscriber calls, reporting it, and its stored forms (the SQLite journal's row; a
 * packed string for the PostgreSQL back end). Delivery is in pushing.c and pg_push.c. */
#ifndef ANVIL_PUSH_H
#define ANVIL_PUSH_H

#include "engine.h"
#include "../storage/store.h"


struct push_settings {
    struct eng_subscriber *subscribers;
    uint32_t n_subscribers;
    uint32_t retries, retries_delay_s;
    char *error_queue; /* NULL when none */
};

/* The status a create (q NULL) or update of queue `name` would end with; ENG_OK if allowed.
 * `type` is the queue's type after the change. */
enum eng_status push_check(const struct push_settings *current, const char *name,
                           enum queue_type type, const struct eng_queue_config *cfg);
/* Applies cfg->push to *ps, creating it with the defaults when NULL. 0, or -1 out of memory
 * (then *ps is unchanged). */
int push_apply(struct push_settings **ps, const struct eng_push_config *cfg);
enum eng_status push_edit(struct push_settings *ps, enum eng_subscriber_edit edit,
                          const struct eng_subscriber *subs, size_t n);
void push_settings_free(struct push_settings *ps);

int push_fill_info(const struct push_settings *ps, struct eng_push_info *info);
void push_info_free(struct eng_push_info *info);

int push_to_row(const struct push_settings *ps, struct store_queue_row *row);
int push_from_row(struct push_settings **ps, const struct store_queue_row *row);
/* The packed form: *out (malloc'd, *len bytes). 0, or -1 out of memory. */
int push_pack(const struct push_settings *ps, char **out, size_t *len);
/* Reads a packed form; -1 when it is malformed or memory ran out. */
int push_unpack(const char *data, size_t len, struct push_settings **out);
struct push_settings *push_copy(const struct push_settings *ps); /* NULL: none or no memory */

#endif
