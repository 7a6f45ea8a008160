/* storage/backup.h — backing up a data directory's database while anvil runs, and
 * restoring a backup while it is stopped (see backup.c). */
#ifndef ANVIL_BACKUP_H
#define ANVIL_BACKUP_H

#include <stddef.h>
#include <stdint.h>

struct store_summary {
    int64_t schema_version, queues, messages;
};

/* Writes a consistent, checked copy of <dir>/anvil.db to to_path (which must not exist). */
int store_backup(const char *dir, const char *to_path, struct store_summary *sum, char *err,
                 size_t err_len);
/* Replaces <dir>/anvil.db with a checked copy of from_path; fails while anvil runs there. */
int store_restore(const char *dir, const char *from_path, struct store_summary *sum, char *err,
                  size_t err_len);

#endif
