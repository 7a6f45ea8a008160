/* storage/backup.c — consistent copies of a data directory's database and putting one back.
 * A backup may be taken while anvil runs: VACUUM INTO reads one snapshot of the database
 * (WAL mode lets it read beside the writer) and writes a compact copy, which is then
 * checked. A restore needs anvil stopped: it takes the directory's lock, checks the copy
 * (a SQLite file with an anvil schema this build knows, passing quick_check), writes it
 * beside the database, drops the old write-ahead log and renames it into place. */
#include "backup.h"
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(sqlite3 *db, char *err, size_t err_len, const char *what)
{
    snprintf(err, err_len, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return -1;
}


/* Opens path read-only and checks it is an anvil database this build can use. */
static int check_copy(const char *path, struct store_summary *sum, char *err, size_t err_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fail(db, err, err_len, path);
        goto out;
    }
    if (schema_query_int(db, "PRAGMA user_version", &sum->schema_version) != 0) {
        fail(db, err, err_len, path);
        goto out;
    }
    if (sum->schema_version < 1 || sum->schema_version > SCHEMA_VERSION) {
        snprintf(err, err_len, "%s: schema version %lld is not one this anvil knows (1 to %d)",
                 path, (long long)sum->schema_version, SCHEMA_VERSION);
        goto out;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        fail(db, err, err_len, path);
        goto out;
    }
    const char *verdict = (const char *)sqlite3_column_text(st, 0);
    if (!verdict || strcmp(verdict, "ok") != 0) {
        snprintf(err, err_len, "%s fails its integrity check: %s", path, verdict ? verdict : "?");
        goto out;
    }
    if (schema_query_int(db, "SELECT count(*) FROM queues", &sum->queues) != 0 ||
        schema_query_int(db, "SELECT count(*) FROM messages", &sum->messages) != 0) {
        fail(db, err, err_len, path);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int store_backup(const char *dir, const char *to_path, struct store_summary *sum, char *err,
                 size_t err_len)
{
    char path[4096];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    snprintf(path, sizeof(path), "%s/anvil.db", dir);
    if (access(path, R_OK) != 0) {
        snprintf(err, err_len, "no database at %s: %s", path, strerror(errno));
        return -1;
    }
    if (access(to_path, F_OK) == 0) {
        snprintf(err, err_len, "%s exists already: a backup never overwrites a file", to_path);
        return -1;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fail(db, err, err_len, path);
        goto out;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL) != SQLITE_OK) {
        fail(db, err, err_len, "cannot prepare the backup");
        goto out;
    }
    sqlite3_bind_text(st, 1, to_path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        fail(db, err, err_len, "backup failed");
        unlink(to_path);
        goto out;
    }
    rc = check_copy(to_path, sum, err, err_len);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int store_restore(const char *dir, const char *from_path, struct store_summary *sum, char *err,
                  size_t err_len)
{
    char path[4096], tmp[4200], lock[4200], wal[4200], shm[4200];
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *bk = NULL;
    int lock_fd = -1, rc = -1;
    snprintf(path, sizeof(path), "%s/anvil.db", dir);
    snprintf(tmp, sizeof(tmp), "%s.restoring", path);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    snprintf(lock, sizeof(lock), "%s/anvil.lock", dir);
    if (check_copy(from_path, sum, err, err_len) != 0)
        return -1;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, err_len, "anvil is running on %s (or the lock cannot be taken): stop it first",
                 dir);
        goto out;
    }
    unlink(tmp);
    if (sqlite3_open_v2(from_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fail(dst ? dst : src, err, err_len, "cannot open the copy");
        goto out;
    }
    bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk || sqlite3_backup_step(bk, -1) != SQLITE_DONE) {
        fail(dst, err, err_len, "cannot copy the backup");
        goto out;
    }
    sqlite3_backup_finish(bk);
    bk = NULL;
    if (sqlite3_close(dst) != SQLITE_OK) {
        fail(dst, err, err_len, "cannot finish the copy");
        dst = NULL;
        goto out;
    }
    dst = NULL;
    /* The old log belongs to the old database: applied to the new one it would corrupt it. */
    unlink(wal);
    unlink(shm);
    if (rename(tmp, path) != 0 || sync_dir(dir) != 0) {
        snprintf(err, err_len, "cannot put %s in place: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (bk)
        sqlite3_backup_finish(bk);
    sqlite3_close(dst);
    sqlite3_close(src);
    if (rc != 0)
        unlink(tmp);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
