/* tests/unit/test_log.c — the log writer: JSON lines that parse whatever they carry
 * (quotes, control characters, bytes that are not UTF-8, values too long for a line),
 * request lines with their fields, text lines that stay one line, and levels.
 * stderr is captured into a temporary file; jansson checks every JSON line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../server/log.h"
#include "check.h"

static FILE *capture_file;
static int saved_stderr = -1;

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture_file), STDERR_FILENO);
}

/* Restores stderr; returns what was written (malloc'd, NUL-terminated). */
static char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    long len = ftell(capture_file);
    if (len < 0)
        len = lseek(fileno(capture_file), 0, SEEK_CUR);
    char *text = calloc(1, (size_t)len + 1);
    if (text) {
        rewind(capture_file);
        size_t got = fread(text, 1, (size_t)len, capture_file);
        text[got] = '\0';
    }
    fclose(capture_file);
    return text;
}

/* The one line in text as a JSON object (NULL, with a failure recorded, otherwise). */
static json_t *one_json_line(const char *text)
{
    const char *nl = strchr(text, '\n');
    CHECK(nl != NULL && nl[1] == '\0');
    json_error_t e;
    json_t *obj = json_loadb(text, nl ? (size_t)(nl - text) : strlen(text), 0, &e);
    if (!obj)
        fprintf(stderr, "    not JSON (%s): %.200s\n", e.text, text);
    CHECK(json_is_object(obj));
    CHECK(json_is_string(json_object_get(obj, "ts")));
    CHECK(json_is_string(json_object_get(obj, "level")));
    CHECK(json_is_string(json_object_get(obj, "msg")));
    return obj;
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void test_json_message_escapes_what_it_carries(void)
{
    log_set_level(LOG_INFO);
    log_set_format(LOG_JSON);
    capture_begin();
    log_msg(LOG_WARN, "q \"%s\" \\ tab\t nl\n ctl\x01 del\x7f caf\xc3\xa9 bad\xff\xc0\xaf end",
            "name");
    char *text = capture_end();
    json_t *obj = one_json_line(text);
    CHECK_STR(str(obj, "level"), "warn");
    CHECK_STR(str(obj, "msg"), "q \"name\" \\ tab\t nl\n ctl\x01 del\x7f caf\xc3\xa9 "
                               "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
    json_decref(obj);
    free(text);
}

static void test_json_too_long_is_cut_and_still_parses(void)
{
    static char big[20000];
    log_set_format(LOG_JSON);
    /* two-byte characters and escapes all the way: a cut lands mid-sequence unless careful */
    for (size_t i = 0; i + 2 < sizeof(big); i += 3)
        memcpy(big + i, i % 2 ? "\xc3\xa9\"" : "\"\xc3\xa9", 3);
    big[sizeof(big) - 2] = '\0';
    capture_begin();
    log_msg(LOG_ERROR, "%s", big);
    struct log_field fields[8];
    for (int i = 0; i < 8; i++)
        fields[i] = (struct log_field){.key = "k", .kind = LF_STR, .str = big};
    log_event(LOG_ERROR, big, fields, 8);
    log_request(LOG_INFO, &(struct log_request){.request_id = big, .method = big, .path = big,
                                                .remote = big, .status = 200, .bytes = 1});
    char *text = capture_end();
    int lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
        nl[0] = '\0';
        CHECK(strlen(line) < 8192);
        json_error_t e;
        json_t *obj = json_loads(line, 0, &e);
        if (!obj)
            fprintf(stderr, "    line %d not JSON (%s)\n", lines, e.text);
        CHECK(json_is_object(obj));
        json_decref(obj);
    }
    CHECK_EQ(lines, 3);
    free(text);
}

static void test_json_request_line_has_its_fields(void)
{
    log_set_format(LOG_JSON);
    capture_begin();
    log_request(LOG_INFO, &(struct log_request){.request_id = "0123456789abcdef",
                                                .method = "POST", .path = "/3/p\xff/q",
                                                .remote = "127.0.0.1", .status = 201,
                                                .duration_ms = 1.5, .bytes = 42});
    char *text = capture_end();
    json_t *obj = one_json_line(text);
    CHECK_STR(str(obj, "msg"), "request");
    CHECK_STR(str(obj, "request_id"), "0123456789abcdef");
    CHECK_STR(str(obj, "method"), "POST");
    CHECK_STR(str(obj, "path"), "/3/p\xef\xbf\xbd/q");
    CHECK_STR(str(obj, "remote"), "127.0.0.1");
    CHECK_EQ(json_integer_value(json_object_get(obj, "status")), 201);
    CHECK_EQ(json_integer_value(json_object_get(obj, "bytes")), 42);
    CHECK(json_real_value(json_object_get(obj, "duration_ms")) == 1.5);
    CHECK(json_object_get(obj, "threshold_ms") == NULL);
    json_decref(obj);
    free(text);

    capture_begin(); /* aborted, unknown size and address, and a slow warning */
    log_request(LOG_WARN, &(struct log_request){.request_id = "x", .path = "/", .bytes = -1,
                                                .duration_ms = 30, .slow_ms = 20});
    text = capture_end();
    obj = one_json_line(text);
    CHECK_STR(str(obj, "msg"), "slow request");
    CHECK_STR(str(obj, "level"), "warn");
    CHECK_STR(str(obj, "method"), "-");
    CHECK(json_is_true(json_object_get(obj, "aborted")));
    CHECK(json_object_get(obj, "status") == NULL);
    CHECK(json_object_get(obj, "bytes") == NULL);
    CHECK(json_object_get(obj, "remote") == NULL);
    CHECK_EQ(json_integer_value(json_object_get(obj, "threshold_ms")), 20);
    json_decref(obj);
    free(text);
}

static void test_text_lines_stay_one_line(void)
{
    log_set_format(LOG_TEXT);
    capture_begin();
    log_msg(LOG_INFO, "two\nlines\r");
    log_request(LOG_INFO, &(struct log_request){.request_id = "id1", .method = "GET",
                                                .path = "/a\nb", .status = 200,
                                                .duration_ms = 0.25, .bytes = 3});
    log_event(LOG_WARN, "slow commit",
              (struct log_field[]){{.key = "records", .kind = LF_INT, .num = 7},
                                   {.key = "duration_ms", .kind = LF_MS, .ms = 2.5}},
              2);
    char *text = capture_end();
    char *l1 = text, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    CHECK(strstr(l1, " info  two?lines?\n") != NULL);
    CHECK(strstr(l2, "info  GET /a?b 200 0.250ms id=id1 bytes=3\n") != NULL);
    CHECK(strstr(l3, "warn  slow commit records=7 duration_ms=2.500\n") != NULL);
    CHECK(strchr(l3, '\n')[1] == '\0');
    free(text);
}

static void test_levels_filter_lines(void)
{
    log_set_format(LOG_TEXT);
    log_set_level(LOG_WARN);
    capture_begin();
    log_msg(LOG_INFO, "hidden");
    log_request(LOG_INFO, &(struct log_request){.request_id = "x", .path = "/", .status = 200});
    log_msg(LOG_ERROR, "shown");
    char *text = capture_end();
    CHECK(strstr(text, "hidden") == NULL && strstr(text, "id=x") == NULL);
    CHECK(strstr(text, "error shown\n") != NULL);
    CHECK(!log_enabled(LOG_INFO) && log_enabled(LOG_WARN));
    free(text);
    log_set_level(LOG_INFO);
}

static void test_parse_level_and_format(void)
{
    enum log_level level;
    enum log_format format;
    CHECK(log_parse_level("debug", &level) && level == LOG_DEBUG);
    CHECK(log_parse_level("warning", &level) && level == LOG_WARN);
    CHECK(!log_parse_level("loud", &level));
    CHECK(log_parse_format("json", &format) && format == LOG_JSON);
    CHECK(log_parse_format("text", &format) && format == LOG_TEXT);
    CHECK(!log_parse_format("JSON", &format) && !log_parse_format("", &format));
    CHECK_STR(log_format_name(LOG_JSON), "json");
}

CHECK_MAIN(TEST(test_json_message_escapes_what_it_carries),
           TEST(test_json_too_long_is_cut_and_still_parses),
           TEST(test_json_request_line_has_its_fields),
           TEST(test_text_lines_stay_one_line),
           TEST(test_levels_filter_lines),
           TEST(test_parse_level_and_format))
