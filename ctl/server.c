/* ctl/server.c — anvilctl's commands about the server as a whole: `health`, `stats`, and
 * `backup` / `restore`, which run storage/backup.c in this process on a data directory
 * (backup while anvil runs; restore only while it is stopped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "../storage/backup.h"

static int cmd_health(struct ctl_args *a)
{
    long status = 0;
    json_t *reply = NULL;
    int rc = ctl_http(a, "GET", "/health", NULL, 10, &status, &reply);
    if (rc != CTL_OK)
        return CTL_UNREACHABLE;
    const char *state = json_string_value(json_object_get(reply, "status"));
    if (a->json && reply)
        ctl_print_json(reply);
    else if (reply)
        ctl_print_fields(reply);
    if (status == 200 && state && strcmp(state, "ok") == 0)
        rc = CTL_OK;
    else if (status == 503)
        rc = CTL_ERROR;
    else {
        fprintf(stderr, "anvilctl: unexpected answer to /health (HTTP %ld)\n", status);
        rc = CTL_ERROR;
    }
    json_decref(reply);
    return rc;
}

static int cmd_stats(struct ctl_args *a)
{
    json_t *reply = NULL;
    int rc = ctl_call(a, "GET", "/stats", NULL, &reply);
    if (rc != CTL_OK)
        return rc;
    if (a->json)
        ctl_print_json(reply);
    else
        ctl_print_fields(reply);
    json_decref(reply);
    return CTL_OK;
}

static int data_tool(struct ctl_args *a, bool backup)
{
    struct store_summary sum = {0};
    char err[1024] = "";
    const char *file = a->words[0];
    int rc = backup ? store_backup(a->data_dir, file, &sum, err, sizeof(err))
                    : store_restore(a->data_dir, file, &sum, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "anvilctl %s: %s\n", backup ? "backup" : "restore", err);
        return CTL_ERROR;
    }
    if (a->json) {
        json_t *out = json_pack("{s:s, s:s, s:I, s:I, s:I}", "data_dir", a->data_dir, "file",
                                file, "queues", (json_int_t)sum.queues, "messages",
                                (json_int_t)sum.messages, "schema_version",
                                (json_int_t)sum.schema_version);
        ctl_print_json(out);
        json_decref(out);
    } else {
        printf("%s %s %s %s: %lld queues, %lld messages (schema %lld)\n",
               backup ? "backed up" : "restored", a->data_dir, backup ? "to" : "from", file,
               (long long)sum.queues, (long long)sum.messages, (long long)sum.schema_version);
    }
    return CTL_OK;
}

static int cmd_backup(struct ctl_args *a)
{
    return data_tool(a, true);
}

static int cmd_restore(struct ctl_args *a)
{
    return data_tool(a, false);
}

static int cmd_completion(struct ctl_args *a)
{
    if (strcmp(a->words[0], "bash") != 0)
        return ctl_usage_error("completion: only bash is supported, not \"%s\"", a->words[0]);
    fputs(ctl_bash_completion, stdout);
    return CTL_OK;
}

const struct ctl_command ctl_server_commands[] = {
    {"health", "", "is the server up and able to commit?",
     "GET /health (no token needed). Exit 0 when healthy, 1 when degraded (the database\n"
     "cannot commit: 503), 3 when the server cannot be reached.\n",
     0, 0, 0, cmd_health},
    {"stats", "", "the server's counters, memory and disk use",
     "GET /stats, printed as FIELD VALUE rows (nested fields as dotted names).\n", 0, 0, 0,
     cmd_stats},
    {"backup", "FILE [--data-dir DIR]", "consistent copy of a data directory's database",
     "Copies DIR/anvil.db to FILE (which must not exist) with SQLite's online backup API,\n"
     "then checks the copy. Safe while anvil runs on DIR: the copy is one consistent\n"
     "snapshot of committed state. Runs in this process on the local disk, so the server's\n"
     "URL and token are not used (SQLite back end only).\n\n"
     "Options:\n  --data-dir DIR   the server's data_dir (default ./anvil-data)\n",
     CTL_OPT_DATA_DIR, 1, 1, cmd_backup},
    {"restore", "FILE [--data-dir DIR]", "put a backup in place (server stopped)",
     "Checks FILE and replaces DIR/anvil.db with a copy of it. anvil must be stopped: while\n"
     "it runs on DIR restore refuses (exit 1). Start anvil on DIR afterwards.\n\n"
     "Options:\n  --data-dir DIR   the server's data_dir (default ./anvil-data)\n",
     CTL_OPT_DATA_DIR, 1, 1, cmd_restore},
    {"completion", "bash", "print the bash completion script",
     "Load it with `source <(anvilctl completion bash)`, or install it as\n"
     "/usr/share/bash-completion/completions/anvilctl (conf/anvilctl.bash-completion).\n",
     0, 1, 1, cmd_completion},
};
const size_t ctl_server_command_count = sizeof(ctl_server_commands) / sizeof(ctl_server_commands[0]);
