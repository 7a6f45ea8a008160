/* ctl/table.c — anvilctl's human-readable output: tables with aligned columns, FIELD VALUE
 * listings of JSON objects, and the indented JSON that --json prints. Owns every string it
 * is given (copies) until the table is printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctl_table {
    size_t n_cols, n_rows, cap_rows;
    char **cells; /* n_rows * n_cols, row 0 the headers */
};

static char *table_dup(const char *s)
{
    return strdup(s ? s : "-");
}

struct ctl_table *ctl_table_new(size_t n_cols, const char *const *headers)
{
    struct ctl_table *t = calloc(1, sizeof(*t));
    t->n_cols = n_cols;
    ctl_table_row(t, headers);
    return t;
}

void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? t->cap_rows * 2 : 8;
        t->cells = realloc(t->cells, t->cap_rows * t->n_cols * sizeof(char *));
    }
    for (size_t i = 0; i < t->n_cols; i++)
        t->cells[t->n_rows * t->n_cols + i] = table_dup(cells[i]);
    t->n_rows++;
}

void ctl_table_print(struct ctl_table *t)
{
    size_t *width = calloc(t->n_cols, sizeof(size_t));
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t i = 0; i < t->n_cols; i++) {
            size_t w = strlen(t->cells[r * t->n_cols + i]);
            if (w > width[i])
                width[i] = w;
        }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t i = 0; i < t->n_cols; i++) {
            const char *cell = t->cells[r * t->n_cols + i];
            if (i + 1 < t->n_cols)
                printf("%-*s  ", (int)width[i], cell);
            else
                printf("%s\n", cell);
            free(t->cells[r * t->n_cols + i]);
        }
    }
    free(width);
    free(t->cells);
    free(t);
}

/* Copies s into a new string, escaping newlines and tabs, cut at max_len with "...". */
static char *cell_escape(const char *s, size_t max_len)
{
    size_t len = strlen(s), out = 0, i = 0;
    char *buf = malloc(len * 2 + 8);
    for (; i < len && out < max_len; i++) {
        if (s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
            buf[out++] = '\\';
            buf[out++] = s[i] == '\n' ? 'n' : s[i] == '\t' ? 't' : 'r';
        } else {
            buf[out++] = s[i];
        }
    }
    if (i < len) {
        memcpy(buf + out, "...", 3);
        out += 3;
    }
    buf[out] = '\0';
    return buf;
}

char *ctl_cell(const json_t *v, size_t max_len)
{
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return cell_escape(json_string_value(v), max_len);
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *cell = cell_escape(text ? text : "", max_len);
    free(text);
    return cell;
}

static void fields_add(struct ctl_table *t, const char *prefix, const json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char name[256];
        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
        if (json_is_object(v) && json_object_size(v) > 0) {
            fields_add(t, name, v);
            continue;
        }
        char *cell = ctl_cell(v, 200);
        const char *row[] = {name, cell};
        ctl_table_row(t, row);
        free(cell);
    }
}

void ctl_print_fields(const json_t *obj)
{
    const char *headers[] = {"FIELD", "VALUE"};
    struct ctl_table *t = ctl_table_new(2, headers);
    fields_add(t, "", obj);
    ctl_table_print(t);
}

void ctl_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    putchar('\n');
}
