/* storage/schema.c — the migrations that build anvil's database (see schema.h).
 * Times are milliseconds since the Unix epoch; visible_at 0 means "visible now";
 * reservations are not stored (a restart makes reserved messages ready again). */
#include "schema.h"

#include <sqlite3.h>
#include <stddef.h>

const char *const schema_migrations[SCHEMA_VERSION] = {
    /* 0 → 1: queues, messages and the id high-water mark */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE queues ("
    "  key INTEGER PRIMARY KEY,"
    "  project TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  message_timeout INTEGER NOT NULL,"
    "  message_expiration INTEGER NOT NULL,"
    "  dead_letter_queue TEXT,"
    "  dead_letter_max INTEGER NOT NULL DEFAULT 0,"
    "  total_messages INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (project, name)"
    ");"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  queue INTEGER NOT NULL,"
    "  body BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  visible_at INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER NOT NULL,"
    "  reserved_count INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX messages_by_queue ON messages (queue);",
    /* 1 → 2: no index by queue. Every post and delete paid for a second B-tree (W2 went
     * from about 90k to 140k messages/s without it); clearing or deleting a queue now
     * journals one delete per message, which the engine knows. */
    "DROP INDEX messages_by_queue;",
    /* 2 → 3: push queues' settings; headers are name\0value\0 pairs */
    "ALTER TABLE queues ADD COLUMN push_retries INTEGER NOT NULL DEFAULT 3;"
    "ALTER TABLE queues ADD COLUMN push_retries_delay INTEGER NOT NULL DEFAULT 60;"
    "ALTER TABLE queues ADD COLUMN error_queue TEXT;"
    "CREATE TABLE subscribers ("
    "  queue INTEGER NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  headers BLOB NOT NULL,"
    "  PRIMARY KEY (queue, position)"
    ") WITHOUT ROWID;",
    /* 3 → 4: the push_headers a message was posted with (name\0value\0 pairs) */
    "ALTER TABLE messages ADD COLUMN push_headers BLOB;",
    /* 4 → 5: settings and message attributes a front keeps for itself (the SQS front:
     * queue attributes such as DelaySeconds, and MessageAttributes), opaque to the engine */
    ("ALTER TABLE queues ADD COLUMN attributes BLOB;"
     "ALTER TABLE messages ADD COLUMN attributes BLOB;"),
};

int schema_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}
