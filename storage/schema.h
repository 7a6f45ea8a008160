/* storage/schema.h — the database schema as a list of migrations. Migration i takes a
 * database from version i to i + 1 (PRAGMA user_version); a new schema change is a new
 * entry at the end, never an edit of an old one. */
#ifndef ANVIL_SCHEMA_H
#define ANVIL_SCHEMA_H

enum { SCHEMA_VERSION = 4 };

extern const char *const schema_migrations[SCHEMA_VERSION];

#endif
