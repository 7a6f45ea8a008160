/* ctl/settings.c — where anvilctl's settings come from: flags (already parsed by main.c)
 * beat the ANVIL_* environment variables, which beat the config file (--config,
 * ANVILCTL_CONFIG, or ~/.config/anvil/anvilctl.conf if it exists), which beats the defaults.
 * Owns the copies of the file's values (ctl_settings_free). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define DEFAULT_PROJECT "default"
#define DEFAULT_DATA_DIR "./anvil-data"

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

/* Stores one `key = value` line; unknown keys are a usage error naming file and line. */
static int file_line(struct ctl_file *fs, const char *path, int lineno, char *line)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return ctl_usage_error("%s:%d: expected `key = value`", path, lineno);
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    for (char *k = key; *k; k++)
        if (*k == '-')
            *k = '_';
    char **slot = strcmp(key, "url") == 0        ? &fs->url
                  : strcmp(key, "project") == 0  ? &fs->project
                  : strcmp(key, "token") == 0    ? &fs->token
                  : strcmp(key, "data_dir") == 0 ? &fs->data_dir
                                                 : NULL;
    if (!slot)
        return ctl_usage_error("%s:%d: unknown key \"%s\" (url, project, token, data_dir)",
                               path, lineno, key);
    free(*slot);
    *slot = strdup(value);
    return CTL_OK;
}

/* Reads the config file: explicit (must exist) or the default one (if it exists). */
static int file_load(struct ctl_file *fs, const char *explicit_path)
{
    char fallback[4096] = "";
    const char *path = explicit_path;
    if (!path) {
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0])
            snprintf(fallback, sizeof(fallback), "%s/anvil/anvilctl.conf", xdg);
        else if (home && home[0])
            snprintf(fallback, sizeof(fallback), "%s/.config/anvil/anvilctl.conf", home);
        path = fallback[0] ? fallback : NULL;
    }
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return explicit_path ? ctl_usage_error("cannot read %s: %s", path, strerror(errno))
                             : CTL_OK;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = CTL_OK;
    while (rc == CTL_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#'), *t;
        if (hash)
            *hash = '\0';
        t = trim(line);
        if (t[0])
            rc = file_line(fs, path, lineno, t);
    }
    free(line);
    fclose(f);
    return rc;
}

static const char *pick(const char *flag, const char *env_name, const char *file,
                        const char *fallback)
{
    const char *env = getenv(env_name);
    return flag ? flag : env && env[0] ? env : file ? file : fallback;
}

int ctl_settings_load(struct ctl_args *a, struct ctl_file *fs)
{
    const char *config = a->config ? a->config : getenv("ANVILCTL_CONFIG");
    int rc = file_load(fs, config && config[0] ? config : NULL);
    if (rc != CTL_OK)
        return rc;
    a->url = pick(a->url, "ANVIL_URL", fs->url, DEFAULT_URL);
    a->project = pick(a->project, "ANVIL_PROJECT", fs->project, DEFAULT_PROJECT);
    a->token = pick(a->token, "ANVIL_TOKEN", fs->token, NULL);
    a->data_dir = pick(a->data_dir, "ANVIL_DATA_DIR", fs->data_dir, DEFAULT_DATA_DIR);
    if (strncmp(a->url, "http://", 7) != 0 && strncmp(a->url, "https://", 8) != 0)
        return ctl_usage_error("the URL \"%s\" does not start with http:// or https://", a->url);
    if (!a->project[0])
        return ctl_usage_error("the project is empty");
    return CTL_OK;
}

void ctl_settings_free(struct ctl_file *fs)
{
    free(fs->url);
    free(fs->project);
    free(fs->token);
    free(fs->data_dir);
}
