/* storage/schema.h — the database schema as a list of migrations. Migration i takes a
 * database from version i to i + 1 (PRAGMA user_version); a new schema change is a new
 * entry at the end, never an edit of an old one. */
#ifndef ANVIL_SCHEMA_H
#define ANVIL_SCHEMA_H

#include <stdint.h>

enum { SCHEMA_VERSION = 5 };

extern const char *const schema_migrations[SCHEMA_VERSION];

struct sqlite3;
/* Runs a query of one number (PRAGMA user_version, a count, a meta value): 0 with *out set,
 * or left as it was when there is no row; -1 when the query fails. */
int schema_query_int(struct sqlite3 *db, const char *sql, int64_t *out);

#endif
