/* tests/fuzz/fuzz_json.c — request JSON: the input is a request body.
 *  1. The JSON reader (api/jsonr.c) against jansson, differentially: both must agree on
 *     whether the text is JSON, and on every value in it (types, decoded strings, numbers,
 *     the last value of a repeated key). Known, allowed differences: jansson refuses numbers
 *     it cannot hold and object keys holding NUL; the reader refuses nesting past 64.
 *     Then the field getters of api/json.h on the root, checked against the values.
 *  2. The same body through every route that reads one (put/patch queue, post, reserve,
 *     delete one/many, touch, release, webhook) on a fresh memory-mode engine holding a
 *     reserved message, with $ID / $RID in the body standing for its ids. */
#include "fuzz_common.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/json.h"

/* ---- 1. the reader and the getters ---- */

/* Is jr token idx the same value as jansson's v? */
static void same(const struct jr_doc *d, int idx, json_t *v, int depth)
{
    FUZZ_CHECK(idx >= 0 && (uint32_t)idx < d->n, "token %d out of range", idx);
    const struct jr_token *t = &d->tok[idx];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        FUZZ_CHECK(t->type == JR_OBJECT, "object read as %d", t->type);
        FUZZ_CHECK(t->count >= json_object_size(v), "object with %u members, jansson %zu",
                   t->count, json_object_size(v));
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) {
            int c = jr_get(d, idx, key);
            FUZZ_CHECK(c >= 0, "key \"%s\" lost", key);
            same(d, c, child, depth + 1);
        }
        break;
    }
    case JSON_ARRAY: {
        FUZZ_CHECK(t->type == JR_ARRAY, "array read as %d", t->type);
        FUZZ_CHECK(t->count == json_array_size(v), "array of %u, jansson %zu", t->count,
                   json_array_size(v));
        size_t i = 0;
        for (int c = jr_child(d, idx); c >= 0; c = jr_sibling(d, idx, c), i++)
            same(d, c, json_array_get(v, i), depth + 1);
        FUZZ_CHECK(i == json_array_size(v), "walked %zu elements", i);
        break;
    }
    case JSON_STRING: {
        FUZZ_CHECK(t->type == JR_STRING, "string read as %d", t->type);
        size_t len = jr_string_length(d, idx);
        FUZZ_CHECK(len == json_string_length(v), "string of %zu bytes, jansson %zu", len,
                   json_string_length(v));
        char *copy = malloc(len + 1);
        FUZZ_CHECK(copy && jr_string_copy(d, idx, copy) == len, "jr_string_copy");
        FUZZ_CHECK(memcmp(copy, json_string_value(v), len) == 0 && copy[len] == '\0',
                   "string decoded differently");
        char *scratch;
        size_t len2;
        const char *text = jr_string(d, idx, &len2, &scratch);
        FUZZ_CHECK(text && len2 == len && memcmp(text, copy, len) == 0, "jr_string");
        FUZZ_CHECK((scratch != NULL) == t->escaped, "scratch %p for escaped %d", (void *)scratch,
                   t->escaped);
        FUZZ_CHECK(jr_string_equals(d, idx, copy) == (strlen(copy) == len), "jr_string_equals");
        free(scratch);
        free(copy);
        break;
    }
    case JSON_INTEGER: {
        int64_t n;
        FUZZ_CHECK(t->type == JR_NUMBER && jr_integer(d, idx, &n) && n == json_integer_value(v),
                   "integer %" JSON_INTEGER_FORMAT " read differently", json_integer_value(v));
        break;
    }
    case JSON_REAL: {
        FUZZ_CHECK(t->type == JR_NUMBER, "real read as %d", t->type);
        int64_t n;
        double r = json_real_value(v);
        bool integral = r >= -9.0e18 && r <= 9.0e18 && floor(r) == r;
        FUZZ_CHECK(jr_integer(d, idx, &n) == integral && (!integral || (double)n == r),
                   "real %g as an integer", r);
        break;
    }
    case JSON_TRUE:
        FUZZ_CHECK(t->type == JR_TRUE, "true read as %d", t->type);
        break;
    case JSON_FALSE:
        FUZZ_CHECK(t->type == JR_FALSE, "false read as %d", t->type);
        break;
    case JSON_NULL:
        FUZZ_CHECK(t->type == JR_NULL, "null read as %d", t->type);
        break;
    }
    (void)depth;
}

/* What parse_message_id accepts: 1 to 20 digits, not all zeros, at most UINT64_MAX. */
static void check_message_id_text(const char *text)
{
    uint64_t id = 0;
    bool ok = parse_message_id(text, &id);
    size_t len = strlen(text), digits = strspn(text, "0123456789");
    if (!ok) {
        if (len >= 1 && len <= 19 && digits == len && strspn(text, "0") != len)
            fuzz_fail(__FILE__, __LINE__, "parse_message_id refused \"%s\"", text);
        return;
    }
    FUZZ_CHECK(digits == len && len <= 20 && id != 0, "parse_message_id accepted \"%s\"", text);
    char back[24];
    snprintf(back, sizeof(back), "%" PRIu64, id);
    FUZZ_CHECK(strcmp(back, text + strspn(text, "0")) == 0, "\"%s\" read as %s", text, back);
}

/* The getters on the root object, for keys the handlers read, against jansson's values. */
static void getters(struct field_reader *fr, json_t *root)
{
    static const char *const keys[] = {"n", "timeout", "wait", "delete", "delay", "body",
                                       "reservation_id", "ids", "messages", "queue", "type",
                                       "message_timeout", "dead_letter", "id", "push"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *key = keys[i];
        json_t *v = json_object_get(root, key);
        bool present = v && !json_is_null(v);
        struct field_reader *f = fr;
        f->failed = false;
        uint32_t u = 0xdeadbeef;
        bool got = fr_uint(f, 0, key, 1, 100, &u);
        FUZZ_CHECK(!got || (u >= 1 && u <= 100), "fr_uint(%s) = %" PRIu32, key, u);
        FUZZ_CHECK(got || u == 0xdeadbeef, "fr_uint(%s) wrote without success", key);
        FUZZ_CHECK(present || !f->failed, "fr_uint(%s) failed on an absent field", key);
        if (got)
            FUZZ_CHECK((json_is_integer(v) && json_integer_value(v) == (json_int_t)u) ||
                           (json_is_real(v) && json_real_value(v) == (double)u),
                       "fr_uint(%s) = %" PRIu32 " from a different value", key, u);
        f->failed = false;
        bool b;
        got = fr_bool(f, 0, key, &b);
        FUZZ_CHECK(got == (present && !f->failed), "fr_bool(%s)", key);
        FUZZ_CHECK(!got || json_is_boolean(v) || json_is_number(v), "fr_bool(%s) type", key);
        f->failed = false;
        size_t len = 0;
        const char *text = fr_text(f, 0, key, &len);
        FUZZ_CHECK(!text || (json_is_string(v) && len == json_string_length(v) &&
                             memcmp(text, json_string_value(v), len) == 0),
                   "fr_text(%s)", key);
        FUZZ_CHECK(text || !present || f->failed, "fr_text(%s) lost a string", key);
        f->failed = false;
        const char *c = fr_cstring(f, 0, key);
        FUZZ_CHECK(!c || (text && strlen(c) <= len && memcmp(c, text, strlen(c)) == 0),
                   "fr_cstring(%s)", key);
        f->failed = false;
        int o = fr_object(f, 0, key);
        FUZZ_CHECK(o < 0 || json_is_object(v), "fr_object(%s)", key);
        FUZZ_CHECK(present == (o >= 0 || f->failed), "fr_object(%s) lost a value", key);
        f->failed = false;
        int a = fr_array(f, 0, key);
        FUZZ_CHECK(a < 0 || json_is_array(v), "fr_array(%s)", key);
        FUZZ_CHECK(present == (a >= 0 || f->failed), "fr_array(%s) lost a value", key);
        if (present) {
            uint64_t id;
            int at = jr_get(&f->doc, 0, key);
            bool ok = fr_message_id(f, at, &id);
            if (json_is_integer(v))
                FUZZ_CHECK(ok == (json_integer_value(v) > 0), "fr_message_id(integer)");
            if (json_is_string(v)) {
                uint64_t direct;
                bool direct_ok = strlen(json_string_value(v)) == json_string_length(v) &&
                                 parse_message_id(json_string_value(v), &direct);
                FUZZ_CHECK(ok == direct_ok && (!ok || id == direct), "fr_message_id(string)");
            }
        }
    }
}

static bool allowed_jansson_refusal(const json_error_t *e)
{
    return strstr(e->text, "too big") || strstr(e->text, "overflow") ||
           strstr(e->text, "underflow") || strstr(e->text, "NUL");
}

/* jansson's stream skips a NUL byte between tokens as if it were not there; the reader,
 * like RFC 8259, refuses it where it stands. */
static bool allowed_reader_refusal(const struct field_reader *fr, const uint8_t *data, size_t size)
{
    if (strstr(fr->err, "nested too deep"))
        return true;
    const char *at = strstr(fr->err, " at byte ");
    if (!at)
        return false;
    size_t byte = strtoul(at + strlen(" at byte "), NULL, 10);
    return byte < size && data[byte] == '\0';
}

static void helpers(const uint8_t *data, size_t size)
{
    struct field_reader fr = {0};
    int root = fr_parse(&fr, (const char *)data, size);
    size_t start = 0;
    while (start < size && strchr(" \t\r\n", data[start]) && data[start])
        start++;
    json_error_t e;
    json_t *j = start == size ? json_object()
                              : json_loadb((const char *)data + start, size - start,
                                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    bool reader_ok = fr.doc.n > 0 && !(fr.failed && strstr(fr.err, "Invalid JSON"));
    if (reader_ok && !j)
        FUZZ_CHECK(allowed_jansson_refusal(&e), "the reader took what jansson refused: %s", e.text);
    if (!reader_ok && j)
        FUZZ_CHECK(allowed_reader_refusal(&fr, data, size), "the reader refused valid JSON: %s",
                   fr.err);
    if (reader_ok && j) {
        same(&fr.doc, 0, j, 0);
        FUZZ_CHECK((root == 0) == json_is_object(j), "root %d for a %d", root, json_typeof(j));
        if (root == 0)
            getters(&fr, j);
    }
    json_decref(j);
    fr_release(&fr);
    char text[64];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    check_message_id_text(text);
}

/* ---- 2. the routes that read a body ---- */

static void request(struct api *api, const char *method, const char *path, const char *body,
                    size_t len)
{
    struct fuzz_req *r = freq_new(method, strlen(method), path, strlen(path), NULL, 0, body, len);
    freq_dispatch(api, r);
    if (r->state == FREQ_WAITING)
        freq_abandon(api, r); /* a long poll: the client goes away */
    freq_free(r);
}

/* Posts a message to p/q and reserves one: $ID and $RID then name a reserved message. */
static void reserve_one(struct api *api)
{
    static const char post[] = "{\"messages\": [{\"body\": \"m\"}]}";
    static const char reserve[] = "{\"n\": 1}";
    request(api, "POST", "/3/projects/p/queues/q/messages", post, sizeof(post) - 1);
    request(api, "POST", "/3/projects/p/queues/q/reservations", reserve, sizeof(reserve) - 1);
}

static void routes(const uint8_t *data, size_t size)
{
    static const struct {
        const char *method, *path;
        bool fresh; /* wants a message just reserved */
    } calls[] = {
        {"PATCH", "/3/projects/p/queues/q", false},
        {"PUT", "/3/projects/p/queues/new", false},
        {"POST", "/3/projects/p/queues/q/messages", false},
        {"POST", "/3/projects/p/queues/q/messages/$ID/touch", true},
        {"POST", "/3/projects/p/queues/q/messages/$ID/release", true},
        {"DELETE", "/3/projects/p/queues/q/messages/$ID", true},
        {"DELETE", "/3/projects/p/queues/q/messages", true},
        {"POST", "/3/projects/p/queues/q/webhook", false},
        {"POST", "/3/projects/p/queues/q/reservations", false},
        {"POST", "/3/projects/p/queues/empty/reservations", false},
        {"PUT", "/3/projects/p/queues/q", false},
    };
    static const char setup_queue[] = "{\"queue\": {\"message_timeout\": 60}}";
    struct api api = {.engine = fuzz_engine_open(FUZZ_EPOCH_MS),
                      .limits = {.max_message_size = 1024}};
    fuzz_ids_reset();
    request(&api, "PUT", "/3/projects/p/queues/empty", "", 0);
    request(&api, "PUT", "/3/projects/p/queues/q", setup_queue, sizeof(setup_queue) - 1);
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        if (calls[i].fresh)
            reserve_one(&api);
        request(&api, calls[i].method, calls[i].path, (const char *)data, size);
    }
    eng_close(api.engine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    helpers(data, size);
    routes(data, size);
    return 0;
}
