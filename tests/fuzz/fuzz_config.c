/* tests/fuzz/fuzz_config.c — the config-file parser: the input is the file's text, fed to
 * config_load_text() and then config_free(). Besides memory errors, an answer must be
 * consistent: an error has a message, a success satisfies the checks config.c promises
 * (sizes ordered, a connection limit, a port that fits, well-formed tokens), and every
 * number setting holds the value its text means (an oracle with its own arithmetic:
 * a value that overflows or is negative must have been refused, not wrapped). */
#include "fuzz_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/config.h"

/* config.c's trim(): spaces and tabs before, also CR/LF after, then one pair of quotes. */
static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && strchr(" \t\r\n", (*s)[*len - 1]))
        (*len)--;
    if (*len >= 2 && (*s)[0] == '"' && (*s)[*len - 1] == '"')
        (*s)++, *len -= 2;
}

/* The text of the last line that sets key (after '#' comments and trimming), or NULL. */
static const char *last_value(const char *text, size_t size, const char *key, size_t *out_len)
{
    const char *found = NULL;
    for (size_t pos = 0; pos < size;) {
        const char *line = text + pos, *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        pos += len + 1;
        const char *hash = memchr(line, '#', len);
        if (hash)
            len = (size_t)(hash - line);
        trim(&line, &len);
        const char *eq = memchr(line, '=', len);
        if (!eq)
            continue;
        const char *k = line, *v = eq + 1;
        size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
        trim(&k, &klen);
        trim(&v, &vlen);
        if (klen != strlen(key))
            continue;
        bool same = true;
        for (size_t i = 0; i < klen && same; i++)
            same = k[i] == key[i] || (key[i] == '_' && k[i] == '-');
        if (same) {
            found = v;
            *out_len = vlen;
        }
    }
    return found;
}

/* What an accepted number text means: whitespace, a sign, digits, k/m/g. False when it
 * does not fit in 64 bits or is below zero: then it must not have been accepted. */
static bool meaning(const char *v, size_t len, unsigned long long *out)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)v[i]))
        i++;
    bool negative = i < len && v[i] == '-';
    if (i < len && (v[i] == '-' || v[i] == '+'))
        i++;
    unsigned long long n = 0, max = ~0ULL;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        unsigned digit = (unsigned)(v[i] - '0');
        if (n > (max - digit) / 10)
            return false;
        n = n * 10 + digit;
    }
    unsigned long long scale = 1;
    if (i < len && (v[i] == 'k' || v[i] == 'K'))
        scale = 1024;
    else if (i < len && (v[i] == 'm' || v[i] == 'M'))
        scale = 1024ULL * 1024;
    else if (i < len && (v[i] == 'g' || v[i] == 'G'))
        scale = 1024ULL * 1024 * 1024;
    if (n > max / scale || (negative && n))
        return false;
    n *= scale;
    *out = n;
    return true;
}

static void check_number(const uint8_t *data, size_t size, const char *key,
                         unsigned long long value)
{
    size_t len = 0;
    const char *v = last_value((const char *)data, size, key, &len);
    if (!v)
        return; /* the default */
    unsigned long long want = 0;
    FUZZ_CHECK(meaning(v, len, &want), "%s = \"%.*s\" accepted (as %llu), but it is out of range",
               key, (int)len, v, value);
    FUZZ_CHECK(want == value, "%s = \"%.*s\" read as %llu", key, (int)len, v, value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    char err[512];
    memset(err, 'x', sizeof(err)); /* an error must overwrite this with a C string */
    err[sizeof(err) - 1] = '\0';
    enum config_result rc = config_load_text(&cfg, (const char *)data, size, err, sizeof(err));
    FUZZ_CHECK(rc == CONFIG_OK || rc == CONFIG_ERROR, "config_load_text returned %d", (int)rc);
    if (rc == CONFIG_ERROR) {
        FUZZ_CHECK(err[0] != 'x' && err[0] != '\0', "an error without a message");
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error message not terminated");
    } else {
        FUZZ_CHECK(cfg.host != NULL && cfg.data_dir != NULL, "host or data_dir missing");
        FUZZ_CHECK(cfg.port <= 65535, "port %u", cfg.port);
        FUZZ_CHECK(cfg.max_message_size >= 1 && cfg.max_message_size <= cfg.max_request_size,
                   "max_message_size %zu, max_request_size %zu", cfg.max_message_size,
                   cfg.max_request_size);
        FUZZ_CHECK(cfg.connection_limit >= 1, "connection_limit 0 accepted");
        FUZZ_CHECK(cfg.durability == DURABILITY_FSYNC || cfg.durability == DURABILITY_NORMAL ||
                       cfg.durability == DURABILITY_MEMORY,
                   "durability %d", (int)cfg.durability);
        FUZZ_CHECK(cfg.durability == DURABILITY_MEMORY || cfg.data_dir[0],
                   "empty data_dir accepted");
        FUZZ_CHECK(cfg.n_tokens == 0 || cfg.tokens != NULL, "tokens missing");
        for (size_t i = 0; i < cfg.n_tokens; i++) {
            const struct api_token *t = &cfg.tokens[i];
            FUZZ_CHECK(t->token && t->token[0], "empty token %zu", i);
            FUZZ_CHECK(!strpbrk(t->token, " \t,;:"), "token \"%s\" has a separator", t->token);
            FUZZ_CHECK(t->all_projects || t->n_projects > 0, "token \"%s\" grants nothing",
                       t->token);
            for (size_t j = 0; j < t->n_projects; j++)
                FUZZ_CHECK(t->projects[j] && t->projects[j][0] && !strchr(t->projects[j], ','),
                           "token \"%s\": bad project %zu", t->token, j);
        }
        FUZZ_CHECK(durability_name(cfg.durability) != NULL, "durability_name");
        check_number(data, size, "port", cfg.port);
        check_number(data, size, "connection_limit", cfg.connection_limit);
        check_number(data, size, "idle_timeout", cfg.idle_timeout_s);
        check_number(data, size, "shutdown_timeout", cfg.shutdown_timeout_s);
        check_number(data, size, "max_message_size", cfg.max_message_size);
        check_number(data, size, "max_request_size", cfg.max_request_size);
        size_t len = 0;
        const char *budget = last_value((const char *)data, size, "memory_budget", &len);
        if (budget && len == 4 && memcmp(budget, "auto", 4) == 0)
            FUZZ_CHECK(cfg.memory_budget == CONFIG_MEMORY_AUTO, "memory_budget = auto read as %llu",
                       (unsigned long long)cfg.memory_budget);
        else
            check_number(data, size, "memory_budget", cfg.memory_budget);
    }
    config_free(&cfg);
    return 0;
}
