/* tests/unit/test_journal.c — the embedded engine over its real SQLite journal in a
 * temporary directory: answers wait for the group commit that makes them durable, reads of
 * uncommitted state wait too, and a reopened engine finds exactly what was acknowledged
 * (reserved messages ready again, delays and dead letters kept, expired ones gone). Also
 * the refusals: a second process on the directory, a newer schema, a corrupt file. */
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "engine_fixture.h"
#include "../../storage/schema.h"

static const int64_t T0 = 1700000000000LL;

struct tmpdir {
    char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/anvil-unit-XXXXXX");
    if (!mkdtemp(d->path))
        abort();
}

static void tmpdir_remove(struct tmpdir *d)
{
    static const char *const files[] = {"anvil.db", "anvil.db-wal", "anvil.db-shm", "anvil.lock"};
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", d->path, files[i]);
        unlink(path);
    }
    rmdir(d->path);
}

static uint64_t budget; /* memory budget for the engines the tests open (0: none) */

static struct engine *open_dir(const struct tmpdir *d, int64_t now, enum durability dur,
                               char *err, size_t err_len)
{
    struct eng_options opt = {.data_dir = d->path, .durability = dur, .now_ms = now, .seed = 9,
                              .memory_budget = budget};
    return eng_open(&opt, err, err_len);
}

static struct engine *reopen(struct engine *old, const struct tmpdir *d, int64_t now)
{
    char err[256] = "";
    eng_close(old);
    struct engine *e = open_dir(d, now, DURABILITY_FSYNC, err, sizeof(err));
    if (!e)
        fprintf(stderr, "    reopen failed: %s\n", err);
    return e;
}

/* Runs sql on the data directory's database directly (the engine closed); the result code. */
static int db_exec(const struct tmpdir *d, const char *sql)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/anvil.db", d->path);
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* The integer in the first column of the first row sql gives, or -1. */
static int64_t db_int(const struct tmpdir *d, const char *sql)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/anvil.db", d->path);
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* What the event loop does: hand batches to the writer and collect the commits. */
static void settle(struct engine *e)
{
    for (int i = 0; i < 1000 && !eng_idle(e); i++) {
        eng_flush(e);
        struct pollfd p = {.fd = eng_poll_fd(e), .events = POLLIN};
        poll(&p, 1, 1000);
        eng_on_readable(e);
    }
}

__attribute__((constructor)) static void use_settle(void)
{
    fix_settle = settle;
}

static void test_answers_wait_for_their_commit(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct call *c = fix_post(e, "q", "m", 0);
    CHECK_EQ(c->done_count, 0);
    settle(e);
    CHECK_EQ(c->done_count, 1);
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_reads_of_uncommitted_state_wait_for_it(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct call *post = fix_post(e, "q", "m", 0);
    struct call *peek = fix_peek(e, "q", 1);
    struct call *info = fix_info(e, "q");
    CHECK_EQ(peek->done_count, 0);
    CHECK_EQ(info->done_count, 0);
    settle(e);
    CHECK_EQ(post->done_count, 1);
    CHECK_EQ(peek->done_count, 1);
    CHECK_EQ(peek->n, 1);
    CHECK_EQ(info->done_count, 1);
    struct call *again = fix_peek(e, "q", 1); /* committed: answered at once */
    CHECK_EQ(again->done_count, 1);
    free(post);
    free(peek);
    free(info);
    free(again);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_reserve_waits_for_the_post_it_hands_out_but_not_for_its_count(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct call *post = fix_post(e, "q", "fresh", 0);
    struct call *early = fix_reserve(e, "q", 1, 0, 0); /* the post is not durable yet */
    CHECK_EQ(early->done_count, 0);
    settle(e);
    CHECK_EQ(early->done_count, 1);
    CHECK_EQ(early->n, 1);
    fix_post_id(e, "q", "durable", 0);
    struct call *r = fix_reserve(e, "q", 1, 0, 0); /* answered at once: a reservation is not */
    CHECK_EQ(r->done_count, 1);                    /* durable, its count follows lazily */
    CHECK_EQ(r->n, 1);
    struct call *t = fix_touch(e, "q", r->ids[0], r->rids[0], 0);
    CHECK_EQ(t->done_count, 1);
    CHECK_EQ(t->status, ENG_OK);
    CHECK_EQ(fix_delete(e, "q", r->ids[0], t->reservation_id), ENG_OK); /* a delete waits */
    settle(e);
    fix_post_id(e, "q", "consumed", 0);
    settle(e);
    struct call *rd = fix_call(); /* delete: true is a delete: it waits for its commit */
    struct eng_reserve_args del = {.n = 1, .delete_msgs = true};
    eng_reserve(e, &rd->op, "p", "q", &del);
    CHECK_EQ(rd->done_count, 0);
    settle(e);
    CHECK_EQ(rd->done_count, 1);
    CHECK_EQ(rd->n, 1);
    free(rd);
    e = reopen(e, &d, T0 + 1);
    struct call *g = fix_call();
    eng_get(e, &g->op, "p", "q", early->ids[0]);
    settle(e);
    CHECK_EQ(g->counts[0], 1); /* the lazy count reached the disk with its batch */
    free(post);
    free(early);
    free(r);
    free(t);
    free(g);
    eng_close(e);
    tmpdir_remove(&d);
}

/* A batch does not write what a later record of it makes moot: a count followed by the
 * message's delete, a count followed by a newer count. What is on disk is the same. */
static void test_a_batch_skips_records_a_later_one_makes_moot(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    settle(e);
    struct eng_stats before, after;
    eng_stats(e, &before);
    struct call *r = fix_reserve(e, "q", 2, 0, 0); /* counts of a and b: lazy, same batch */
    CHECK_EQ(r->n, 2);
    struct call *t = fix_touch(e, "q", b, r->rids[1], 0); /* b's count again: supersedes */
    CHECK_EQ(t->status, ENG_OK);
    CHECK_EQ(fix_delete(e, "q", a, r->rids[0]), ENG_OK); /* a's count is moot */
    settle(e);
    eng_stats(e, &after);
    CHECK_EQ(after.commit_records - before.commit_records, 4);
    CHECK_EQ(after.commit_skipped - before.commit_skipped, 2);
    e = reopen(e, &d, T0 + 1);
    struct call *ga = fix_call(), *gb = fix_call();
    eng_get(e, &ga->op, "p", "q", a);
    eng_get(e, &gb->op, "p", "q", b);
    settle(e);
    CHECK_EQ(ga->status, ENG_MESSAGE_NOT_FOUND);
    CHECK_EQ(gb->status, ENG_OK);
    CHECK_EQ(gb->counts[0], 2); /* the newest count reached the disk */
    free(r);
    free(t);
    free(ga);
    free(gb);
    eng_close(e);
    tmpdir_remove(&d);
}

static int pushes_sent;

static void count_push(void *ctx, const struct eng_push_request *r)
{
    (void)ctx, (void)r;
    pushes_sent++;
}

/* A subscriber never sees a message a crash could take back; after a restart, delivery of
 * what was not delivered starts over. */
static void test_a_push_waits_for_its_post_to_be_durable_and_restarts_after_a_crash(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct eng_pusher p = {.send = count_push, .max_in_flight = 4};
    eng_set_pusher(e, &p);
    struct eng_subscriber s = {.name = "s", .url = "http://127.0.0.1:9/"};
    struct eng_queue_config cfg = {.has_push = true,
                                   .push = {.has_subscribers = true, .subscribers = &s, .n_subscribers = 1}};
    CHECK_EQ(fix_put(e, "pq", &cfg), ENG_OK);
    settle(e);
    pushes_sent = 0;
    struct call *c = fix_post(e, "pq", "durable first", 0);
    CHECK_EQ(pushes_sent, 0);
    settle(e);
    CHECK_EQ(c->status, ENG_OK);
    CHECK_EQ(pushes_sent, 1);
    free(c);
    e = reopen(e, &d, T0 + 1); /* the answer never came */
    pushes_sent = 0;
    eng_set_pusher(e, &p);
    CHECK_EQ(pushes_sent, 1);
    CHECK_EQ(fix_size(e, "pq"), 1);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_restart_recovers_messages_config_and_counts(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct eng_queue_config cfg = {.has_message_timeout = true, .message_timeout_s = 90,
                                   .has_message_expiration = true, .message_expiration_s = 7200,
                                   .has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 5};
    fix_put(e, "q", &cfg);
    uint64_t a = fix_post_id(e, "q", "a", 0), b = fix_post_id(e, "q", "b", 0);
    uint64_t c = fix_post_id(e, "q", "c", 0), dd = fix_post_id(e, "q", "d", 0);
    settle(e);
    struct call *r = fix_reserve(e, "q", 3, 0, 0); /* a, b, c */
    settle(e);
    CHECK_EQ(r->n, 3);
    CHECK_EQ(fix_delete(e, "q", b, r->rids[1]), ENG_OK);
    CHECK_EQ(fix_release(e, "q", c, r->rids[2], 100), ENG_OK);
    free(r);
    settle(e);

    e = reopen(e, &d, T0 + 1000);
    struct call *info = fix_info(e, "q");
    settle(e);
    CHECK_EQ(info->status, ENG_OK);
    CHECK_EQ(info->queue.message_timeout_s, 90);
    CHECK_EQ(info->queue.message_expiration_s, 7200);
    CHECK_STR(info->dead_letter, "dlq");
    CHECK_EQ(info->queue.dead_letter_max, 5);
    CHECK_EQ(info->queue.total_messages, 4);
    CHECK_EQ(info->queue.ready, 2);   /* a (was reserved) and d */
    CHECK_EQ(info->queue.delayed, 1); /* c, released with a delay */
    free(info);
    r = fix_reserve(e, "q", 10, 3600, 0);
    settle(e);
    CHECK_EQ(r->n, 2);
    CHECK_EQ(r->ids[0], a);
    CHECK_EQ(r->counts[0], 2); /* its first reservation was journalled */
    CHECK_EQ(r->ids[1], dd);
    free(r);
    eng_set_time(e, T0 + 100000);
    r = fix_reserve(e, "q", 10, 0, 0);
    settle(e);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], c);
    CHECK_EQ(r->counts[0], 2);
    free(r);
    settle(e);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_expired_while_down_is_never_delivered(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct eng_queue_config cfg = {.has_message_expiration = true, .message_expiration_s = 60};
    fix_put(e, "q", &cfg);
    fix_post_id(e, "q", "old", 0);
    settle(e);
    e = reopen(e, &d, T0 + 60000);
    CHECK_EQ(fix_size(e, "q"), 0);
    settle(e); /* recovery journals the deletion */
    e = reopen(e, &d, T0 + 60001);
    CHECK_EQ(fix_size(e, "q"), 0);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_dead_letter_move_survives_restart(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct eng_queue_config cfg = {.has_dead_letter_queue = true, .dead_letter_queue = "dlq",
                                   .has_dead_letter_max = true, .dead_letter_max = 1};
    fix_put(e, "q", &cfg);
    uint64_t id = fix_post_id(e, "q", "m", 0);
    struct call *first = fix_reserve(e, "q", 1, 30, 0);
    settle(e);
    eng_set_time(e, T0 + 30000);
    struct call *second = fix_reserve(e, "q", 1, 30, 0);
    settle(e);
    CHECK_EQ(first->n, 1);
    CHECK_EQ(second->n, 0);
    free(first);
    free(second);
    e = reopen(e, &d, T0 + 31000);
    CHECK_EQ(fix_size(e, "q"), 0);
    struct call *r = fix_reserve(e, "dlq", 1, 0, 0);
    settle(e);
    CHECK_EQ(r->n, 1);
    CHECK_EQ(r->ids[0], id);
    CHECK_EQ(r->counts[0], 2);
    free(r);
    settle(e);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_queue_delete_and_clear_survive_restart(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_NORMAL, err, sizeof(err));
    fix_post_id(e, "gone", "x", 0);
    fix_post_id(e, "cleared", "ready", 0);
    fix_post_id(e, "cleared", "delayed", 60);
    fix_post_id(e, "cleared", "reserved", 0);
    fix_post_id(e, "kept", "z", 0);
    settle(e);
    struct call *r = fix_reserve(e, "cleared", 1, 0, 0);
    free(r);
    struct call *c = fix_call();
    eng_queue_delete(e, &c->op, "p", "gone");
    settle(e);
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    struct call *late = fix_post(e, "cleared", "posted in the clear's batch", 0);
    c = fix_call();
    eng_clear(e, &c->op, "p", "cleared");
    settle(e);
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    free(late);
    fix_post_id(e, "gone", "new life", 0); /* re-created under the same name */
    settle(e);
    e = reopen(e, &d, T0 + 1);
    CHECK_EQ(fix_size(e, "gone"), 1);
    CHECK_EQ(fix_size(e, "cleared"), 0);
    CHECK_EQ(fix_size(e, "kept"), 1);
    struct call *info = fix_info(e, "gone");
    settle(e);
    CHECK_EQ(info->queue.total_messages, 1);
    free(info);
    eng_close(e);
    /* the rows themselves are gone, not merely skipped at recovery */
    CHECK_EQ(db_int(&d, "SELECT count(*) FROM messages"), 2);
    tmpdir_remove(&d);
}

static void test_ids_keep_increasing_across_restart_even_if_the_clock_goes_back(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    uint64_t first = fix_post_id(e, "q", "a", 0);
    struct call *r = fix_reserve(e, "q", 1, 0, 0);
    settle(e);
    fix_delete(e, "q", first, r->rids[0]); /* the highest id no longer in the table */
    free(r);
    settle(e);
    e = reopen(e, &d, T0 - 86400000);
    uint64_t second = fix_post_id(e, "q", "b", 0);
    CHECK(second > first);
    settle(e);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_second_engine_on_the_same_directory_is_refused(void)
{
    struct tmpdir d;
    char err[256] = "";
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    CHECK(e != NULL);
    struct engine *e2 = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    CHECK(e2 == NULL);
    CHECK(strstr(err, "in use") != NULL);
    eng_close(e);
    tmpdir_remove(&d);
}

static void test_newer_schema_is_refused_with_a_clear_message(void)
{
    struct tmpdir d;
    char err[256] = "";
    tmpdir_make(&d);
    CHECK_EQ(db_exec(&d, "PRAGMA user_version = 99"), SQLITE_OK);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    CHECK(e == NULL);
    CHECK(strstr(err, "newer") != NULL);
    tmpdir_remove(&d);
}

/* A database written by the first schema (built here from migration 0 itself) is brought
 * to the current version at start, its data intact. */
static void test_a_version_1_database_is_upgraded(void)
{
    struct tmpdir d;
    char err[256] = "";
    tmpdir_make(&d);
    CHECK_EQ(db_exec(&d, "PRAGMA auto_vacuum = INCREMENTAL"), SQLITE_OK);
    CHECK_EQ(db_exec(&d, schema_migrations[0]), SQLITE_OK);
    CHECK_EQ(db_exec(&d, "INSERT INTO queues(key, project, name, id, created_at, type,"
                              " message_timeout, message_expiration, total_messages)"
                              " VALUES (1, 'p', 'q', '0123456789abcdef01234567', 0, 0, 60, 604800, 1);"
                              "INSERT INTO messages(id, queue, body, created_at, expires_at)"
                              " VALUES (7, 1, 'from version 1', 0, 9999999999999);"
                              "INSERT INTO meta(key, value) VALUES ('last_message_id', 7);"
                              "PRAGMA user_version = 1"), SQLITE_OK);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    CHECK(e != NULL);
    if (!e) {
        fprintf(stderr, "    %s\n", err);
        tmpdir_remove(&d);
        return;
    }
    CHECK_EQ(fix_size(e, "q"), 1);
    eng_close(e);
    CHECK_EQ(db_int(&d, "SELECT count(*) FROM sqlite_schema WHERE name = 'messages_by_queue'"), 0);
    CHECK_EQ(db_int(&d, "PRAGMA user_version"), SCHEMA_VERSION);
    tmpdir_remove(&d);
}

static void test_corrupt_database_is_refused_with_a_clear_message(void)
{
    struct tmpdir d;
    char err[256] = "", path[128];
    tmpdir_make(&d);
    snprintf(path, sizeof(path), "%s/anvil.db", d.path);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 512; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    CHECK(e == NULL);
    CHECK(strstr(err, "not a database") != NULL);
    tmpdir_remove(&d);
}

/* ---- failed commits ---- */

/* Like settle(), but gives up after `ms` (a commit that keeps failing never settles). */
static void settle_for(struct engine *e, int ms)
{
    for (int waited = 0; waited < ms && !eng_idle(e); waited += 10) {
        eng_set_time(e, T0 + 100000 + waited); /* retries are timed by the engine's clock */
        eng_flush(e);
        struct pollfd p = {.fd = eng_poll_fd(e), .events = POLLIN};
        poll(&p, 1, 10);
        eng_on_readable(e);
    }
}

static void test_failed_commit_answers_503_and_its_retry_settles_later_readers(void)
{
    struct tmpdir d;
    char err[256], path[128];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    fix_post_id(e, "q", "committed", 0);
    snprintf(path, sizeof(path), "%s/anvil.db", d.path);
    sqlite3 *other;
    CHECK_EQ(sqlite3_open(path, &other), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

    struct call *post = fix_post(e, "q", "refused", 0);
    settle_for(e, 2000); /* the writer waits a second for the lock, then fails */
    CHECK_EQ(post->status, ENG_STORAGE_UNAVAILABLE);
    struct call *again = fix_post(e, "q", "while failing", 0);
    CHECK_EQ(again->status, ENG_STORAGE_UNAVAILABLE); /* refused before any change */
    struct call *info = fix_info(e, "q"); /* counts the refused post: waits for its retry */
    CHECK_EQ(info->done_count, 0);

    CHECK_EQ(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    settle_for(e, 3000);
    CHECK_EQ(info->done_count, 1);
    CHECK_EQ(info->status, ENG_OK);
    CHECK_EQ(info->queue.ready, 2); /* the refused post was committed by the retry */
    struct call *after = fix_post(e, "q", "after", 0);
    settle_for(e, 2000);
    CHECK_EQ(after->status, ENG_OK);
    free(post);
    free(again);
    free(info);
    free(after);
    eng_close(e);
    tmpdir_remove(&d);
}

/* ---- memory budget ---- */

static void post_numbered(struct engine *e, int from, int to)
{
    char body[64];
    for (int i = from; i < to; i++) {
        snprintf(body, sizeof(body), "message %04d ..............................", i);
        fix_post_id(e, "q", body, 0);
    }
}

static void test_bodies_past_the_budget_live_on_disk_and_come_back_in_order(void)
{
    struct tmpdir d;
    char err[256];
    struct eng_stats st;
    tmpdir_make(&d);
    budget = 100 * 1024ULL;
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    post_numbered(e, 0, 400);
    settle(e);
    eng_stats(e, &st);
    CHECK(st.cold_messages > 0);
    CHECK(st.index_bytes + st.body_bytes <= budget);
    CHECK_EQ(st.messages, 400);
    for (int round = 0; round < 4; round++) {
        struct call *r = fix_reserve(e, "q", 100, 0, 0);
        settle(e);
        CHECK_EQ(r->n, 100);
        for (size_t i = 0; i < r->n; i++) {
            char want[64];
            snprintf(want, sizeof(want), "message %04d ....", round * 100 + (int)i);
            CHECK(strncmp(r->bodies[i], want, strlen(want)) == 0);
        }
        free(r);
    }
    eng_stats(e, &st);
    CHECK(st.body_reads > 0);
    eng_close(e);
    budget = 0;
    tmpdir_remove(&d);
}

static void test_recovery_keeps_bodies_past_the_budget_on_disk(void)
{
    struct tmpdir d;
    char err[256];
    struct eng_stats st;
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    post_numbered(e, 0, 300);
    settle(e);
    budget = 72 * 1024ULL; /* the index of 300 messages (about 66 KiB) and a few bodies */
    e = reopen(e, &d, T0 + 1);
    eng_stats(e, &st);
    CHECK_EQ(st.messages, 300);
    CHECK(st.cold_messages > 0);
    CHECK(st.index_bytes + st.body_bytes <= budget);
    struct call *r = fix_reserve(e, "q", 100, 0, 0);
    settle(e);
    CHECK_EQ(r->n, 100);
    CHECK(strncmp(r->bodies[0], "message 0000", 12) == 0);
    free(r);
    struct call *rest = fix_peek(e, "q", 100); /* from the back, read from disk */
    settle(e);
    CHECK_EQ(rest->n, 100);
    CHECK(strncmp(rest->bodies[99], "message 0199", 12) == 0);
    free(rest);
    eng_close(e);
    budget = 0;
    tmpdir_remove(&d);
}

static void test_posts_are_refused_when_the_index_would_not_fit(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    budget = 20 * 1024ULL; /* room for the index of about a hundred messages */
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    int accepted = 0;
    enum eng_status last = ENG_OK;
    for (int i = 0; i < 500 && last == ENG_OK; i++) {
        struct call *c = fix_post(e, "q", "0123456789", 0);
        settle(e);
        last = c->status;
        accepted += c->status == ENG_OK;
        free(c);
    }
    CHECK_EQ(last, ENG_MEMORY_BUDGET);
    CHECK(accepted > 50 && accepted < 200);
    struct call *r = fix_reserve(e, "q", 10, 0, 0); /* consuming makes room again */
    settle(e);
    for (size_t i = 0; i < r->n; i++)
        fix_delete(e, "q", r->ids[i], r->rids[i]);
    free(r);
    struct call *c = fix_post(e, "q", "again", 0);
    settle(e);
    CHECK_EQ(c->status, ENG_OK);
    free(c);
    eng_close(e);
    budget = 0;
    tmpdir_remove(&d);
}

static void test_memory_mode_refuses_bodies_past_the_budget(void)
{
    char err[256];
    struct eng_options opt = {.durability = DURABILITY_MEMORY, .now_ms = T0, .memory_budget = 8192};
    struct engine *e = eng_open(&opt, err, sizeof(err));
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int accepted = 0;
    for (int i = 0; i < 10; i++) {
        struct call *c = fix_post(e, "q", big, 0);
        accepted += c->status == ENG_OK;
        free(c);
    }
    CHECK(accepted >= 2 && accepted <= 4);
    struct eng_stats st;
    eng_stats(e, &st);
    CHECK(st.index_bytes + st.body_bytes <= 8192);
    CHECK_EQ(st.cold_messages, 0);
    eng_close(e);
}

struct attrs_call {
    struct call c;
    char message_attrs[64], queue_attrs[64];
    size_t message_len, queue_len;
};

static void keep_attributes(struct eng_op *op, const struct eng_result *res)
{
    struct attrs_call *a = (struct attrs_call *)op;
    fix_done(op, res);
    const struct blob *m = res->n_messages ? res->messages[0].attributes : NULL;
    const struct blob *q = res->has_queue ? res->queue.attributes : NULL;
    a->message_len = m && m->len <= sizeof(a->message_attrs) ? m->len : 0;
    a->queue_len = q && q->len <= sizeof(a->queue_attrs) ? q->len : 0;
    if (a->message_len)
        memcpy(a->message_attrs, m->data, a->message_len);
    if (a->queue_len)
        memcpy(a->queue_attrs, q->data, a->queue_len);
}

/* The SQS front's attributes of a queue and of a message are stored with them (schema 5). */
static void test_front_attributes_survive_a_restart(void)
{
    struct tmpdir d;
    char err[256];
    tmpdir_make(&d);
    struct engine *e = open_dir(&d, T0, DURABILITY_FSYNC, err, sizeof(err));
    struct call *put = fix_call();
    struct eng_queue_config cfg = {.has_attributes = true, .attributes = "DelaySeconds\0005",
                                   .attributes_len = 15};
    eng_queue_put(e, &put->op, "p", "q", &cfg);
    struct call *post = fix_call();
    struct eng_post_msg m = {.body = "b", .body_len = 1, .attributes = "k\0String\0v", .attributes_len = 11};
    eng_post(e, &post->op, "p", "q", &m, 1);
    settle(e);
    CHECK_EQ(post->status, ENG_OK);
    e = reopen(e, &d, T0 + 1);
    struct attrs_call *info = calloc(1, sizeof(*info));
    info->c.op.done = keep_attributes;
    eng_queue_get(e, &info->c.op, "p", "q");
    settle(e);
    CHECK_EQ(info->queue_len, 15);
    CHECK(memcmp(info->queue_attrs, "DelaySeconds\0005", 15) == 0);
    struct attrs_call *r = calloc(1, sizeof(*r));
    r->c.op.done = keep_attributes;
    struct eng_reserve_args a = {.n = 1};
    eng_reserve(e, &r->c.op, "p", "q", &a);
    settle(e);
    CHECK_EQ(r->c.n, 1);
    CHECK_EQ(r->message_len, 11);
    CHECK(memcmp(r->message_attrs, "k\0String\0v", 11) == 0);
    free(put);
    free(post);
    free(info);
    free(r);
    eng_close(e);
    tmpdir_remove(&d);
}

CHECK_MAIN(TEST(test_answers_wait_for_their_commit),
           TEST(test_front_attributes_survive_a_restart),
           TEST(test_reads_of_uncommitted_state_wait_for_it),
           TEST(test_reserve_waits_for_the_post_it_hands_out_but_not_for_its_count),
           TEST(test_a_batch_skips_records_a_later_one_makes_moot),
           TEST(test_a_push_waits_for_its_post_to_be_durable_and_restarts_after_a_crash),
           TEST(test_restart_recovers_messages_config_and_counts),
           TEST(test_expired_while_down_is_never_delivered),
           TEST(test_dead_letter_move_survives_restart),
           TEST(test_queue_delete_and_clear_survive_restart),
           TEST(test_ids_keep_increasing_across_restart_even_if_the_clock_goes_back),
           TEST(test_second_engine_on_the_same_directory_is_refused),
           TEST(test_newer_schema_is_refused_with_a_clear_message),
           TEST(test_a_version_1_database_is_upgraded),
           TEST(test_corrupt_database_is_refused_with_a_clear_message),
           TEST(test_failed_commit_answers_503_and_its_retry_settles_later_readers),
           TEST(test_bodies_past_the_budget_live_on_disk_and_come_back_in_order),
           TEST(test_recovery_keeps_bodies_past_the_budget_on_disk),
           TEST(test_posts_are_refused_when_the_index_would_not_fit),
           TEST(test_memory_mode_refuses_bodies_past_the_budget))
