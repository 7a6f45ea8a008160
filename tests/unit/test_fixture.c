/* tests/unit/test_fixture.c — the engine's side of the test kit's reset and snapshots
 * (engine/fixture.c) with an injected clock: an export imported again is exactly the state
 * it was taken from (ids, reservations and their deadlines, delays, order), hand-written
 * times count from the engine's clock, ids never collide, a bad fixture changes nothing,
 * wipes answer long polls, and over the SQLite journal both survive a restart. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "engine_fixture.h"

static const int64_t T0 = 1700000000000LL;

/* ---- helpers ---- */

struct fx_call {
    struct eng_op op;
    int done_count;
    enum eng_status status;
    struct eng_fixture_where where;
};

static void fx_done(struct eng_op *op, const struct eng_result *res)
{
    struct fx_call *c = (struct fx_call *)op;
    c->done_count++;
    c->status = res->status;
    c->where = res->where;
}

static enum eng_status finish(struct engine *e, struct fx_call *c)
{
    fix_wait(e);
    return c->done_count == 1 ? c->status : ENG_STATUS_COUNT;
}

static enum eng_status export_p(struct engine *e, const char *project, struct eng_fixture *out)
{
    struct fx_call c = {.op = {.done = fx_done}};
    eng_export(e, &c.op, project, out);
    return finish(e, &c);
}

static enum eng_status import(struct engine *e, const struct eng_fixture *fx,
                              struct eng_fixture_where *where)
{
    struct fx_call c = {.op = {.done = fx_done}};
    eng_import(e, &c.op, fx);
    enum eng_status st = finish(e, &c);
    if (where)
        *where = c.where;
    return st;
}

static enum eng_status wipe(struct engine *e, const char *project)
{
    struct fx_call c = {.op = {.done = fx_done}};
    eng_wipe(e, &c.op, project);
    return finish(e, &c);
}

/* One project with one pull queue of n messages "m0", "m1", ... (defaults elsewhere). */
static void fx_make(struct eng_fixture *fx, const char *project, const char *queue, size_t n)
{
    memset(fx, 0, sizeof(*fx));
    fx->projects = calloc(1, sizeof(*fx->projects));
    fx->n_projects = 1;
    fx->projects[0].name = strdup(project);
    fx->projects[0].queues = calloc(1, sizeof(struct eng_fixture_queue));
    fx->projects[0].n_queues = 1;
    struct eng_fixture_queue *fq = &fx->projects[0].queues[0];
    fq->info.name = strdup(queue);
    fq->messages = calloc(n + 1, sizeof(*fq->messages));
    fq->n_messages = n;
    for (size_t i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof(body), "m%zu", i);
        fq->messages[i].body = blob_new(body, strlen(body));
    }
}

static struct eng_fixture_message *fx_msg(struct eng_fixture *fx, size_t i)
{
    return &fx->projects[0].queues[0].messages[i];
}

static uint64_t post_in(struct engine *e, const char *project, const char *q, const char *body)
{
    struct call *c = fix_call();
    struct eng_post_msg m = {.body = body, .body_len = strlen(body)};
    eng_post(e, &c->op, project, q, &m, 1);
    fix_wait(e);
    uint64_t id = c->status == ENG_OK ? c->ids[0] : 0;
    free(c);
    return id;
}

static uint64_t size_in(struct engine *e, const char *project, const char *q)
{
    struct call *c = fix_call();
    eng_queue_get(e, &c->op, project, q);
    fix_wait(e);
    uint64_t n = c->status == ENG_OK ? c->queue.ready + c->queue.delayed + c->queue.reserved
                                     : (uint64_t)-1;
    free(c);
    return n;
}

/* Two fixture messages are the same state. */
static void check_same_message(const struct eng_fixture_message *a,
                               const struct eng_fixture_message *b)
{
    CHECK_EQ(a->id, b->id);
    CHECK(a->body->len == b->body->len && memcmp(a->body->data, b->body->data, a->body->len) == 0);
    CHECK_EQ(a->state, b->state);
    CHECK_EQ(a->reserved_count, b->reserved_count);
    CHECK_EQ(a->has_reservation_id, b->has_reservation_id);
    CHECK(memcmp(a->reservation, b->reservation, sizeof(a->reservation)) == 0);
    CHECK_EQ(a->visible_at_ms, b->visible_at_ms);
    CHECK_EQ(a->created_at_ms, b->created_at_ms);
    CHECK_EQ(a->expires_at_ms, b->expires_at_ms);
    CHECK_EQ(a->first_reserved_at_ms, b->first_reserved_at_ms);
    CHECK_EQ(a->ready_at_front, b->ready_at_front);
}

static void check_same_queue(const struct eng_fixture_queue *a, const struct eng_fixture_queue *b)
{
    CHECK_STR(a->info.name, b->info.name);
    CHECK_STR(a->info.id, b->info.id);
    CHECK_EQ(a->info.type, b->info.type);
    CHECK_EQ(a->info.message_timeout_s, b->info.message_timeout_s);
    CHECK_EQ(a->info.message_expiration_s, b->info.message_expiration_s);
    CHECK_STR(a->info.dead_letter_queue ? a->info.dead_letter_queue : "",
              b->info.dead_letter_queue ? b->info.dead_letter_queue : "");
    CHECK_EQ(a->info.dead_letter_max, b->info.dead_letter_max);
    CHECK_EQ(a->info.total_messages, b->info.total_messages);
    CHECK_EQ(a->info.created_at_ms, b->info.created_at_ms);
    CHECK_EQ(a->n_messages, b->n_messages);
    for (size_t i = 0; i < a->n_messages && i < b->n_messages; i++)
        check_same_message(&a->messages[i], &b->messages[i]);
}

/* ---- round trips ---- */

static void test_export_then_import_restores_the_exact_state(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config cfg = {.has_message_timeout = true, .message_timeout_s = 45,
                                   .has_dead_letter_queue = true, .dead_letter_queue = "dl",
                                   .has_dead_letter_max = true, .dead_letter_max = 3};
    CHECK_EQ(fix_put(e, "q", &cfg), ENG_OK);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    uint64_t c = fix_post_id(e, "q", "c", 30);
    eng_set_time(e, T0 + 1000);
    struct call *r = fix_reserve(e, "q", 1, 40, 0);
    CHECK_EQ(r->ids[0], a);
    char rid_a[RESERVATION_ID_HEX + 1];
    memcpy(rid_a, r->rids[0], sizeof(rid_a));
    free(r);
    struct eng_fixture before = {0}, after = {0};
    CHECK_EQ(export_p(e, "p", &before), ENG_OK);
    CHECK_EQ(before.projects[0].n_queues, 1);

    /* change everything: delete, post, reconfigure */
    CHECK_EQ(fix_delete(e, "q", b, NULL), ENG_OK);
    fix_post_id(e, "q", "later", 0);
    struct eng_queue_config longer = {.has_message_timeout = true, .message_timeout_s = 90};
    CHECK_EQ(fix_put(e, "q", &longer), ENG_OK);

    CHECK_EQ(import(e, &before, NULL), ENG_OK);
    CHECK_EQ(export_p(e, "p", &after), ENG_OK);
    CHECK_EQ(after.projects[0].n_queues, 1);
    check_same_queue(&before.projects[0].queues[0], &after.projects[0].queues[0]);

    r = fix_reserve(e, "q", 10, 0, 0); /* a is still reserved, c still delayed */
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], b);
    free(r);
    CHECK_EQ(fix_delete(e, "q", a, rid_a), ENG_OK); /* the old reservation is valid again */
    eng_set_time(e, T0 + 30000);
    r = fix_reserve(e, "q", 10, 0, 0);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], c);
    free(r);
    eng_fixture_free(&before);
    eng_fixture_free(&after);
    eng_close(e);
}

static void test_restored_reservation_times_out_to_the_front_at_its_deadline(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    struct eng_fixture snap = {0};
    CHECK_EQ(export_p(e, "p", &snap), ENG_OK);
    fix_post_id(e, "q", "c", 0);
    CHECK_EQ(import(e, &snap, NULL), ENG_OK);
    eng_set_time(e, T0 + 29999);
    CHECK_EQ(fix_peek_n(e, "q", 10), 1);
    eng_set_time(e, T0 + 30000);
    struct call *p = fix_peek(e, "q", 10);
    CHECK_EQ(p->n, 2);
    CHECK_EQ(p->ids[0], a); /* timed out: back at the front */
    CHECK_EQ(p->ids[1], b);
    CHECK_EQ(p->counts[0], 1);
    free(p);
    eng_fixture_free(&snap);
    eng_close(e);
}

static void test_ready_messages_keep_their_order(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = fix_post_id(e, "q", "m", 0);
    free(fix_reserve(e, "q", 1, 30, 0));
    struct eng_fixture snap = {0};
    CHECK_EQ(export_p(e, "p", &snap), ENG_OK);
    CHECK_EQ(wipe(e, "p"), ENG_OK);
    CHECK_EQ(import(e, &snap, NULL), ENG_OK);
    struct call *r = fix_reserve(e, "q", 10, 0, 0);
    CHECK_EQ(r->n, 4);
    for (size_t i = 0; i < r->n; i++)
        CHECK_EQ(r->ids[i], ids[i + 1]);
    free(r);
    eng_fixture_free(&snap);
    eng_close(e);
}

/* ---- hand-written fixtures ---- */

static void test_hand_written_times_count_from_the_engine_clock(void)
{
    struct engine *e = fix_open_memory(T0);
    eng_set_time(e, T0 + 500);
    struct eng_fixture fx;
    fx_make(&fx, "p", "q", 3);
    fx_msg(&fx, 1)->state = FIXTURE_DELAYED;
    fx_msg(&fx, 1)->visible_in_ms = 5000;
    fx_msg(&fx, 2)->state = FIXTURE_RESERVED;
    fx_msg(&fx, 2)->visible_in_ms = 10000;
    CHECK_EQ(import(e, &fx, NULL), ENG_OK);
    CHECK_EQ(fix_size(e, "q"), 3);
    eng_set_time(e, T0 + 5499);
    CHECK_EQ(fix_peek_n(e, "q", 10), 1);
    eng_set_time(e, T0 + 5500);
    CHECK_EQ(fix_peek_n(e, "q", 10), 2);
    eng_set_time(e, T0 + 10500);
    struct call *p = fix_peek(e, "q", 10);
    CHECK_EQ(p->n, 3);
    CHECK_STR(p->bodies[0], "m2"); /* the reservation ended: at the front */
    CHECK_STR(p->bodies[1], "m0");
    CHECK_STR(p->bodies[2], "m1");
    free(p);
    eng_fixture_free(&fx);
    eng_close(e);
}

static void test_new_ids_never_collide_with_loaded_ones(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t far = ((uint64_t)T0 << 20) + 5000;
    struct eng_fixture fx;
    fx_make(&fx, "p", "q", 2);
    fx_msg(&fx, 0)->id = far;
    CHECK_EQ(import(e, &fx, NULL), ENG_OK);
    struct call *r = fix_reserve(e, "q", 2, 0, 0);
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->ids[0], far);
    CHECK(r->ids[1] > far); /* the one without an id came after the highest loaded */
    uint64_t second = r->ids[1];
    free(r);
    CHECK(fix_post_id(e, "q", "new", 0) > second);
    eng_fixture_free(&fx);
    eng_close(e);
}

static void test_expired_messages_are_not_loaded(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_fixture fx;
    fx_make(&fx, "p", "q", 2);
    fx_msg(&fx, 0)->expires_at_ms = T0;
    fx_msg(&fx, 1)->expires_in_ms = 1000;
    CHECK_EQ(import(e, &fx, NULL), ENG_OK);
    CHECK_EQ(fix_size(e, "q"), 1);
    eng_set_time(e, T0 + 1000);
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_fixture_free(&fx);
    eng_close(e);
}

/* ---- refusals change nothing ---- */

static void test_id_of_a_message_in_another_project_is_refused(void)
{
    struct engine *e = fix_open_memory(T0);
    uint64_t theirs = post_in(e, "other", "r", "theirs");
    fix_post_id(e, "q", "mine", 0);
    struct eng_fixture fx;
    fx_make(&fx, "p", "q", 2);
    fx_msg(&fx, 1)->id = theirs;
    struct eng_fixture_where w;
    CHECK_EQ(import(e, &fx, &w), ENG_ID_TAKEN);
    CHECK_EQ(w.project, 0);
    CHECK_EQ(w.queue, 0);
    CHECK_EQ(w.message, 1);
    CHECK_EQ(w.id, theirs);
    CHECK_EQ(fix_size(e, "q"), 1); /* p untouched */
    CHECK_EQ(size_in(e, "other", "r"), 1);
    eng_fixture_free(&fx);
    eng_close(e);
}

static void test_repeated_ids_names_and_dead_letter_loops_are_refused(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "kept", 0);
    struct eng_fixture fx;
    struct eng_fixture_where w;
    fx_make(&fx, "p", "q", 2);
    fx_msg(&fx, 0)->id = fx_msg(&fx, 1)->id = 77;
    CHECK_EQ(import(e, &fx, &w), ENG_ID_REPEATED);
    CHECK_EQ(w.id, 77);
    eng_fixture_free(&fx);

    fx_make(&fx, "p", "q", 0);
    struct eng_fixture_queue *two = calloc(2, sizeof(*two));
    two[0] = fx.projects[0].queues[0];
    two[1].info.name = strdup("r");
    free(fx.projects[0].queues);
    fx.projects[0].queues = two;
    fx.projects[0].n_queues = 2;
    two[0].info.dead_letter_queue = strdup("r");
    two[1].info.dead_letter_queue = strdup("q");
    CHECK_EQ(import(e, &fx, &w), ENG_DEAD_LETTER_CYCLE);
    CHECK_EQ(w.queue, 0);
    free(two[1].info.name);
    two[1].info.name = strdup("q");
    CHECK_EQ(import(e, &fx, &w), ENG_NAME_REPEATED);
    CHECK_EQ(fix_size(e, "q"), 1);
    eng_fixture_free(&fx);
    eng_close(e);
}

/* ---- wipes ---- */

static void test_wipe_of_one_project_leaves_the_others(void)
{
    struct engine *e = fix_open_memory(T0);
    fix_post_id(e, "q", "mine", 0);
    post_in(e, "other", "r", "theirs");
    CHECK_EQ(wipe(e, "p"), ENG_OK);
    CHECK_EQ(fix_size(e, "q"), (uint64_t)-1);
    CHECK_EQ(size_in(e, "other", "r"), 1);
    CHECK_EQ(wipe(e, "nobody"), ENG_OK);
    CHECK_EQ(wipe(e, NULL), ENG_OK);
    CHECK_EQ(size_in(e, "other", "r"), (uint64_t)-1);
    struct eng_stats st;
    eng_stats(e, &st);
    CHECK_EQ(st.projects, 0);
    CHECK_EQ(st.queues, 0);
    CHECK_EQ(st.messages, 0);
    eng_close(e);
}

static void test_wipe_answers_long_polls_empty(void)
{
    struct engine *e = fix_open_memory(T0);
    struct eng_queue_config none = {0};
    CHECK_EQ(fix_put(e, "q", &none), ENG_OK);
    struct call *w = fix_reserve(e, "q", 1, 0, 10);
    CHECK_EQ(w->done_count, 0);
    CHECK_EQ(wipe(e, "p"), ENG_OK);
    CHECK_EQ(w->done_count, 1);
    CHECK_EQ(w->status, ENG_OK);
    CHECK_EQ(w->n, 0);
    free(w);
    eng_close(e);
}

/* ---- over the journal ---- */

static void settle(struct engine *e)
{
    for (int i = 0; i < 1000 && !eng_idle(e); i++) {
        eng_flush(e);
        struct pollfd p = {.fd = eng_poll_fd(e), .events = POLLIN};
        poll(&p, 1, 1000);
        eng_on_readable(e);
    }
}

static struct engine *open_dir(const char *dir, int64_t now)
{
    char err[256] = "";
    struct eng_options opt = {.data_dir = dir, .durability = DURABILITY_FSYNC, .now_ms = now,
                              .seed = 3};
    struct engine *e = eng_open(&opt, err, sizeof(err));
    if (!e)
        fprintf(stderr, "    open failed: %s\n", err);
    return e;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"anvil.db", "anvil.db-wal", "anvil.db-shm", "anvil.lock"};
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_import_and_wipe_survive_a_restart(void)
{
    char dir[64] = "/tmp/anvil-unit-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    fix_settle = settle;
    struct engine *e = open_dir(dir, T0);
    uint64_t gone = fix_post_id(e, "q", "wiped by the import", 0);
    post_in(e, "other", "r", "wiped");
    struct eng_fixture fx;
    fx_make(&fx, "p", "q", 2);
    fx_msg(&fx, 0)->id = 77; /* below ids already handed out */
    fx_msg(&fx, 0)->reserved_count = 2;
    fx_msg(&fx, 1)->id = 78;
    fx_msg(&fx, 1)->state = FIXTURE_DELAYED;
    fx_msg(&fx, 1)->visible_in_ms = 60000;
    CHECK_EQ(import(e, &fx, NULL), ENG_OK);
    CHECK_EQ(wipe(e, "other"), ENG_OK);
    eng_close(e);

    e = open_dir(dir, T0); /* the same clock reading: only the journal keeps ids apart */
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ(size_in(e, "other", "r"), (uint64_t)-1);
        CHECK_EQ(fix_size(e, "q"), 2);
        struct call *r = fix_reserve(e, "q", 10, 0, 0);
        CHECK_EQ(r->n, 1);
        CHECK_EQ(r->ids[0], 77);
        CHECK_EQ(r->counts[0], 3);
        free(r);
        CHECK(fix_post_id(e, "q", "after", 0) > gone);
        eng_set_time(e, T0 + 59999);
        CHECK_EQ(fix_peek_n(e, "q", 10), 1); /* "after" */
        eng_set_time(e, T0 + 60000); /* the delay and 77's reservation end */
        CHECK_EQ(fix_peek_n(e, "q", 10), 3);
        eng_close(e);
    }
    fix_settle = NULL;
    eng_fixture_free(&fx);
    remove_dir(dir);
}

CHECK_MAIN(TEST(test_export_then_import_restores_the_exact_state),
           TEST(test_restored_reservation_times_out_to_the_front_at_its_deadline),
           TEST(test_ready_messages_keep_their_order),
           TEST(test_hand_written_times_count_from_the_engine_clock),
           TEST(test_new_ids_never_collide_with_loaded_ones),
           TEST(test_expired_messages_are_not_loaded),
           TEST(test_id_of_a_message_in_another_project_is_refused),
           TEST(test_repeated_ids_names_and_dead_letter_loops_are_refused),
           TEST(test_wipe_of_one_project_leaves_the_others),
           TEST(test_wipe_answers_long_polls_empty),
           TEST(test_import_and_wipe_survive_a_restart))
