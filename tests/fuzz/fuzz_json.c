/* tests/fuzz/fuzz_json.c — request JSON: the input is a request body.
 *  1. api/json.h directly: json_parse_object(), then every fr_* getter on every key of
 *     every object in the document (with a few ranges, with and without an error prefix,
 *     and on absent keys), json_message_id() on every value and parse_message_id() on
 *     every string and on the raw input, each checked against what json.h promises.
 *  2. The same body through every route that reads one (put/patch queue, post, reserve,
 *     delete one/many, touch, release, webhook) on a fresh memory-mode engine holding a
 *     reserved message, with $ID / $RID in the body standing for its ids. */
#include "fuzz_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/json.h"

enum { MAX_DEPTH = 16 };

/* ---- 1. the helpers ---- */

static void check_reader(const struct field_reader *fr)
{
    if (fr->failed) {
        FUZZ_CHECK(fr->err[0] != '\0', "failed without a message");
        FUZZ_CHECK(memchr(fr->err, '\0', sizeof(fr->err)) != NULL, "message not terminated");
    }
}

/* What parse_message_id accepts: 1 to 20 digits, not all zeros, at most UINT64_MAX;
 * printing the id back gives the text without its leading zeros. */
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
    FUZZ_CHECK(id > 0, "id 0 from \"%s\"", text);
    FUZZ_CHECK(digits == len && len <= 20, "accepted \"%s\"", text);
    json_t *back = json_id_string(id);
    FUZZ_CHECK(back != NULL, "json_id_string");
    const char *stripped = text + strspn(text, "0");
    FUZZ_CHECK(strcmp(json_string_value(back), stripped) == 0, "\"%s\" read as %s", text,
               json_string_value(back));
    uint64_t again = 0;
    FUZZ_CHECK(json_message_id(back, &again) && again == id, "json_message_id(\"%s\")",
               json_string_value(back));
    json_decref(back);
}

static void check_message_id_value(json_t *v)
{
    uint64_t id = 0;
    bool ok = json_message_id(v, &id);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        bool has_nul = strlen(s) != json_string_length(v);
        uint64_t direct = 0;
        bool direct_ok = !has_nul && parse_message_id(s, &direct);
        FUZZ_CHECK(ok == direct_ok && (!ok || id == direct), "json_message_id(\"%s\")", s);
        check_message_id_text(s);
    } else if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        FUZZ_CHECK(ok == (n > 0) && (!ok || id == (uint64_t)n), "json_message_id(%" JSON_INTEGER_FORMAT ")", n);
    } else {
        FUZZ_CHECK(!ok, "json_message_id accepted a %d", (int)json_typeof(v));
    }
}

static const struct {
    uint32_t min, max;
} ranges[] = {{0, UINT32_MAX}, {1, 100}, {30, 86400}, {0, 604800}, {60, 2592000}, {0, 0}};

static void getters(json_t *obj, const char *key, const char *prefix)
{
    json_t *v = json_object_get(obj, key);
    bool present = v && !json_is_null(v);
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        for (int zero = 0; zero < 2; zero++) {
            struct field_reader fr = {0};
            snprintf(fr.prefix, sizeof(fr.prefix), "%s", prefix);
            uint32_t out = 0xdeadbeef;
            bool got = zero ? fr_uint_or_zero(&fr, obj, key, ranges[i].min, ranges[i].max, &out)
                            : fr_uint(&fr, obj, key, ranges[i].min, ranges[i].max, &out);
            check_reader(&fr);
            FUZZ_CHECK(!got || (present && !fr.failed && out >= ranges[i].min &&
                                out <= ranges[i].max),
                       "fr_uint(%s) gave %" PRIu32, key, out);
            FUZZ_CHECK(got || out == 0xdeadbeef, "fr_uint(%s) wrote without success", key);
            FUZZ_CHECK(present || !fr.failed, "fr_uint(%s) failed on an absent field", key);
        }
    }
    struct field_reader fr = {0};
    snprintf(fr.prefix, sizeof(fr.prefix), "%s", prefix);
    bool b = false;
    bool got = fr_bool(&fr, obj, key, &b);
    check_reader(&fr);
    FUZZ_CHECK(got == (present && !fr.failed), "fr_bool(%s)", key);
    FUZZ_CHECK(!got || json_is_boolean(v) || json_is_number(v), "fr_bool(%s) type", key);

    struct field_reader fs = {0};
    size_t len = (size_t)-1;
    const char *s = fr_string(&fs, obj, key, &len);
    check_reader(&fs);
    FUZZ_CHECK(!s || (json_is_string(v) && len == json_string_length(v) && s[len] == '\0'),
               "fr_string(%s)", key);
    FUZZ_CHECK(s || !present || fs.failed, "fr_string(%s) lost a string", key);
    FUZZ_CHECK(fr_string(&fs, obj, key, NULL) == s, "fr_string(%s) without len", key);

    struct field_reader fo = {0};
    json_t *o = fr_object(&fo, obj, key);
    check_reader(&fo);
    FUZZ_CHECK(!o || (json_is_object(o) && o == v), "fr_object(%s)", key);
    FUZZ_CHECK(present == (o != NULL || fo.failed), "fr_object(%s) lost a value", key);

    struct field_reader fa = {0};
    json_t *a = fr_array(&fa, obj, key);
    check_reader(&fa);
    FUZZ_CHECK(!a || (json_is_array(a) && a == v), "fr_array(%s)", key);
    FUZZ_CHECK(present == (a != NULL || fa.failed), "fr_array(%s) lost a value", key);
}

static void walk(json_t *v, int depth)
{
    check_message_id_value(v);
    if (depth >= MAX_DEPTH)
        return;
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        int i = 0;
        json_object_foreach(v, key, child) {
            char prefix[40];
            snprintf(prefix, sizeof(prefix), "messages[%d].", i++);
            getters(v, key, i % 2 ? prefix : "");
            walk(child, depth + 1);
        }
        getters(v, "no such key", "");
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            walk(json_array_get(v, i), depth + 1);
    }
}

static void helpers(const uint8_t *data, size_t size)
{
    struct field_reader fr = {0};
    json_t *root = json_parse_object(&fr, (const char *)data, size);
    check_reader(&fr);
    FUZZ_CHECK((root != NULL) != fr.failed, "json_parse_object: root %p, failed %d", (void *)root,
               fr.failed);
    if (root) {
        FUZZ_CHECK(json_is_object(root), "json_parse_object gave a non-object");
        walk(root, 0);
        getters(NULL, "n", ""); /* no object at all */
        json_decref(root);
    }
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
