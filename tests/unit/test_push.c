/* tests/unit/test_push.c — a push queue's settings: the contract's rules for a create or
 * update, the subscribers calls (add or update by name, replace, remove, never to none),
 * and the stored form read back exactly. */
#include <stdlib.h>
#include <string.h>

#include "../../engine/push.h"
#include "check.h"

static struct eng_header token_header = {"X-Token", "k1"};

static struct eng_subscriber sub(const char *name, const char *url)
{
    return (struct eng_subscriber){.name = (char *)name, .url = (char *)url};
}

static struct push_settings *settings_with(struct eng_subscriber *subs, uint32_t n)
{
    struct push_settings *ps = NULL;
    struct eng_push_config pc = {.has_subscribers = true, .subscribers = subs, .n_subscribers = n};
    CHECK_EQ(push_apply(&ps, &pc), 0);
    return ps;
}

static void test_create_rules_follow_the_contract(void)
{
    struct eng_subscriber a = sub("a", "http://127.0.0.1:9/");
    struct eng_queue_config cfg = {.has_push = true,
                                   .push = {.has_subscribers = true, .subscribers = &a, .n_subscribers = 1}};
    CHECK_EQ(push_check(NULL, "q", QUEUE_MULTICAST, &cfg), ENG_OK);
    CHECK_EQ(push_check(NULL, "q", QUEUE_PULL, &cfg), ENG_PUSH_ON_PULL);
    struct eng_queue_config none = {0};
    CHECK_EQ(push_check(NULL, "q", QUEUE_PULL, &none), ENG_OK);
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &none), ENG_NO_SUBSCRIBERS);
    struct eng_queue_config dl = cfg;
    dl.has_dead_letter_queue = true;
    dl.dead_letter_queue = "dlq";
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &dl), ENG_DEAD_LETTER_ON_PUSH);
    dl.dead_letter_queue = ""; /* removing one that is not there is harmless */
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &dl), ENG_OK);
    struct eng_queue_config self = cfg;
    self.push.has_error_queue = true;
    self.push.error_queue = "q";
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &self), ENG_ERROR_QUEUE_SELF);
    struct eng_queue_config many = cfg;
    many.push.n_subscribers = PUSH_SUBSCRIBERS_MAX + 1;
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &many), ENG_TOO_MANY_SUBSCRIBERS);
    /* an update that does not name subscribers keeps the current ones */
    struct push_settings *ps = settings_with(&a, 1);
    struct eng_queue_config retries = {.has_push = true, .push = {.has_retries = true, .retries = 0}};
    CHECK_EQ(push_check(ps, "q", QUEUE_UNICAST, &retries), ENG_OK);
    CHECK_EQ(push_check(NULL, "q", QUEUE_UNICAST, &retries), ENG_NO_SUBSCRIBERS);
    push_settings_free(ps);
}

static void test_apply_sets_defaults_then_changes_only_what_is_named(void)
{
    struct eng_subscriber a = sub("a", "http://127.0.0.1:9/a");
    struct push_settings *ps = settings_with(&a, 1);
    CHECK_EQ(ps->retries, PUSH_RETRIES_DEFAULT);
    CHECK_EQ(ps->retries_delay_s, PUSH_RETRIES_DELAY_DEFAULT_S);
    CHECK(ps->error_queue == NULL);
    struct eng_push_config pc = {.has_retries = true, .retries = 0, .has_error_queue = true,
                                 .error_queue = "errors"};
    CHECK_EQ(push_apply(&ps, &pc), 0);
    CHECK_EQ(ps->retries, 0);
    CHECK_EQ(ps->retries_delay_s, PUSH_RETRIES_DELAY_DEFAULT_S);
    CHECK_STR(ps->error_queue, "errors");
    CHECK_EQ(ps->n_subscribers, 1);
    struct eng_push_config off = {.has_error_queue = true, .error_queue = ""};
    CHECK_EQ(push_apply(&ps, &off), 0);
    CHECK(ps->error_queue == NULL);
    push_settings_free(ps);
}

static void test_subscriber_edits(void)
{
    struct eng_subscriber a = sub("a", "http://h/a"), b = sub("b", "http://h/b");
    struct push_settings *ps = settings_with(&a, 1);
    struct eng_subscriber add[] = {sub("b", "http://h/b"), sub("a", "http://h/a2")};
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_ADD, add, 2), ENG_OK); /* a updated in place, b appended */
    CHECK_EQ(ps->n_subscribers, 2);
    CHECK_STR(ps->subscribers[0].name, "a");
    CHECK_STR(ps->subscribers[0].url, "http://h/a2");
    CHECK_STR(ps->subscribers[1].name, "b");
    struct eng_subscriber gone[] = {sub("a", NULL), sub("nobody", NULL)};
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_REMOVE, gone, 2), ENG_OK);
    CHECK_EQ(ps->n_subscribers, 1);
    CHECK_STR(ps->subscribers[0].name, "b");
    struct eng_subscriber last[] = {sub("b", NULL)};
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_REMOVE, last, 1), ENG_NO_SUBSCRIBERS);
    CHECK_EQ(ps->n_subscribers, 1); /* unchanged */
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_REPLACE, &a, 1), ENG_OK);
    CHECK_EQ(ps->n_subscribers, 1);
    CHECK_STR(ps->subscribers[0].name, "a");
    struct eng_subscriber many[PUSH_SUBSCRIBERS_MAX];
    char names[PUSH_SUBSCRIBERS_MAX][8];
    for (int i = 0; i < PUSH_SUBSCRIBERS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "s%d", i);
        many[i] = sub(names[i], "http://h/");
    }
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_ADD, many, PUSH_SUBSCRIBERS_MAX), ENG_TOO_MANY_SUBSCRIBERS);
    CHECK_EQ(push_edit(ps, SUBSCRIBERS_REPLACE, many, PUSH_SUBSCRIBERS_MAX), ENG_OK);
    CHECK_EQ(ps->n_subscribers, PUSH_SUBSCRIBERS_MAX);
    (void)b;
    push_settings_free(ps);
}

static void test_the_stored_form_reads_back_exactly(void)
{
    struct eng_subscriber subs[] = {sub("a", "http://h/a"), sub("b", "ironmq:///other")};
    subs[0].headers = &token_header;
    subs[0].n_headers = 1;
    struct push_settings *ps = settings_with(subs, 2);
    struct eng_push_config pc = {.has_retries = true, .retries = 9, .has_retries_delay = true,
                                 .retries_delay_s = 120, .has_error_queue = true, .error_queue = "errs"};
    CHECK_EQ(push_apply(&ps, &pc), 0);
    struct store_queue_row *row = calloc(1, sizeof(*row));
    CHECK_EQ(push_to_row(ps, row), 0);
    struct push_settings *back = NULL;
    CHECK_EQ(push_from_row(&back, row), 0);
    CHECK_EQ(back->retries, 9);
    CHECK_EQ(back->retries_delay_s, 120);
    CHECK_STR(back->error_queue, "errs");
    CHECK_EQ(back->n_subscribers, 2);
    CHECK_STR(back->subscribers[0].url, "http://h/a");
    CHECK_EQ(back->subscribers[0].n_headers, 1);
    CHECK_STR(back->subscribers[0].headers[0].name, "X-Token");
    CHECK_STR(back->subscribers[0].headers[0].value, "k1");
    CHECK_EQ(back->subscribers[1].n_headers, 0);
    CHECK_STR(back->subscribers[1].url, "ironmq:///other");
    struct eng_push_info info;
    CHECK_EQ(push_fill_info(back, &info), 0);
    CHECK_EQ(info.n_subscribers, 2);
    CHECK_STR(info.subscribers[0].headers[0].value, "k1");
    push_info_free(&info);
    store_free_row(row);
    push_settings_free(ps);
    push_settings_free(back);
}

/* The packed form (the PostgreSQL back end's column) reads back exactly, and anything
 * truncated or with trailing bytes is refused rather than half read. */
static void test_the_packed_form_reads_back_exactly_and_refuses_damage(void)
{
    struct eng_subscriber subs[] = {sub("a", "http://h/a"), sub("b", "ironmq:///other")};
    subs[0].headers = &token_header;
    subs[0].n_headers = 1;
    struct push_settings *ps = settings_with(subs, 2);
    struct eng_push_config pc = {.has_retries = true, .retries = 9, .has_error_queue = true,
                                 .error_queue = "errs"};
    CHECK_EQ(push_apply(&ps, &pc), 0);
    char *packed = NULL;
    size_t len = 0;
    CHECK_EQ(push_pack(ps, &packed, &len), 0);
    struct push_settings *back = NULL;
    CHECK_EQ(push_unpack(packed, len, &back), 0);
    CHECK_EQ(back->retries, 9);
    CHECK_EQ(back->retries_delay_s, PUSH_RETRIES_DELAY_DEFAULT_S);
    CHECK_STR(back->error_queue, "errs");
    CHECK_EQ(back->n_subscribers, 2);
    CHECK_STR(back->subscribers[0].name, "a");
    CHECK_STR(back->subscribers[0].headers[0].name, "X-Token");
    CHECK_STR(back->subscribers[0].headers[0].value, "k1");
    CHECK_STR(back->subscribers[1].url, "ironmq:///other");
    CHECK_EQ(back->subscribers[1].n_headers, 0);
    push_settings_free(back);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        struct push_settings *bad = NULL;
        CHECK_EQ(push_unpack(packed, cut, &bad), -1);
    }
    char *longer = malloc(len + 2);
    memcpy(longer, packed, len);
    memcpy(longer + len, "x", 2);
    struct push_settings *bad = NULL;
    CHECK_EQ(push_unpack(longer, len + 2, &bad), -1);
    free(longer);
    struct push_settings *copy = push_copy(ps);
    CHECK(copy && copy->n_subscribers == 2 && strcmp(copy->subscribers[1].name, "b") == 0);
    push_settings_free(copy);
    struct push_settings none = {0};
    char *empty = NULL;
    CHECK_EQ(push_pack(&none, &empty, &len), 0); /* no error queue: read back as none */
    CHECK_EQ(push_unpack(empty, len, &bad), 0);
    CHECK(bad && bad->error_queue == NULL && bad->n_subscribers == 0);
    push_settings_free(bad);
    free(empty);
    free(packed);
    push_settings_free(ps);
}

CHECK_MAIN(TEST(test_create_rules_follow_the_contract),
           TEST(test_apply_sets_defaults_then_changes_only_what_is_named),
           TEST(test_subscriber_edits),
           TEST(test_the_stored_form_reads_back_exactly),
           TEST(test_the_packed_form_reads_back_exactly_and_refuses_damage))
