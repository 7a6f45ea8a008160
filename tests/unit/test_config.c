/* tests/unit/test_config.c — the settings parser: defaults with no file, every kind of
 * value, tokens and their projects, and errors that name the line and the problem.
 * (Precedence of flags over environment over file is tested end to end.) */
#include <stdlib.h>

#include "../../server/config.h"
#include "check.h"

static enum config_result parse(struct config *cfg, const char *text, char *err, size_t len)
{
    return config_load_text(cfg, text, strlen(text), err, len);
}

static void test_empty_file_gives_the_documented_defaults(void)
{
    struct config cfg;
    char err[256];
    CHECK_EQ(parse(&cfg, "", err, sizeof(err)), CONFIG_OK);
    CHECK_STR(cfg.host, "127.0.0.1");
    CHECK_EQ(cfg.port, 8080);
    CHECK_STR(cfg.data_dir, "./anvil-data");
    CHECK_EQ(cfg.durability, DURABILITY_FSYNC);
    CHECK_EQ(cfg.log_level, LOG_INFO);
    CHECK_EQ(cfg.log_format, LOG_TEXT);
    CHECK_EQ(cfg.slow_request_ms, 1000);
    CHECK_EQ(cfg.slow_commit_ms, 200);
    CHECK_EQ(cfg.max_message_size, 65536);
    CHECK_EQ(cfg.max_request_size, 16 * 1024 * 1024);
    CHECK_EQ(cfg.n_tokens, 0);
    config_free(&cfg);
}

static void test_values_comments_quotes_and_dashes_are_understood(void)
{
    struct config cfg;
    char err[256];
    const char *text = "# a comment\n"
                       "host = ::1   # trailing comment\n"
                       "port=9000\n"
                       "data-dir = \"/var/lib/anvil\"\n"
                       "durability = normal\r\n"
                       "\n"
                       "log_level = debug\n"
                       "max_message_size = 256k\n"
                       "max_request_size = 32m\n";
    CHECK_EQ(parse(&cfg, text, err, sizeof(err)), CONFIG_OK);
    CHECK_STR(cfg.host, "::1");
    CHECK_EQ(cfg.port, 9000);
    CHECK_STR(cfg.data_dir, "/var/lib/anvil");
    CHECK_EQ(cfg.durability, DURABILITY_NORMAL);
    CHECK_EQ(cfg.log_level, LOG_DEBUG);
    CHECK_EQ(cfg.max_message_size, 256 * 1024);
    CHECK_EQ(cfg.max_request_size, 32 * 1024 * 1024);
    config_free(&cfg);
}

static void test_tokens_grant_listed_projects_or_all(void)
{
    struct config cfg;
    char err[256];
    CHECK_EQ(parse(&cfg, "token = s3cret:p1,p2\ntoken = admin\ntoken = ops:*\n", err, sizeof(err)),
             CONFIG_OK);
    CHECK_EQ(cfg.n_tokens, 3);
    if (cfg.n_tokens == 3) {
        CHECK_STR(cfg.tokens[0].token, "s3cret");
        CHECK_EQ(cfg.tokens[0].n_projects, 2);
        CHECK_STR(cfg.tokens[0].projects[1], "p2");
        CHECK(!cfg.tokens[0].all_projects);
        CHECK(cfg.tokens[1].all_projects);
        CHECK(cfg.tokens[2].all_projects);
    }
    config_free(&cfg);
}

static void expect_error(const char *text, const char *fragment)
{
    struct config cfg;
    char err[256] = "";
    CHECK_EQ(parse(&cfg, text, err, sizeof(err)), CONFIG_ERROR);
    if (!strstr(err, fragment)) {
        fprintf(stderr, "    error \"%s\" lacks \"%s\"\n", err, fragment);
        check_failures++;
    }
    config_free(&cfg);
}

static void test_sqs_keys_and_account(void)
{
    struct config cfg;
    char err[256];
    CHECK_EQ(parse(&cfg, "", err, sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.n_sqs_keys, 0);
    CHECK_STR(cfg.sqs_account, "000000000000");
    CHECK_STR(cfg.sqs_region, "us-east-1");
    config_free(&cfg);
    CHECK_EQ(parse(&cfg, "sqs_key = AKID:se/cr+et:proj-1\nsqs_key = K2:s:p:with:colons\n"
                         "sqs_account = mine\nsqs_region = eu-west-1\n", err, sizeof(err)),
             CONFIG_OK);
    CHECK_EQ(cfg.n_sqs_keys, 2);
    CHECK_STR(cfg.sqs_keys[0].access_key, "AKID");
    CHECK_STR(cfg.sqs_keys[0].secret, "se/cr+et");
    CHECK_STR(cfg.sqs_keys[0].project, "proj-1");
    CHECK_STR(cfg.sqs_keys[1].project, "p:with:colons");
    CHECK_STR(cfg.sqs_account, "mine");
    CHECK_STR(cfg.sqs_region, "eu-west-1");
    config_free(&cfg);
    static const char *const bad[] = {"sqs_key = AKID:secret\n", "sqs_key = :s:p\n", "sqs_key = a::p\n",
                                      "sqs_key = a:s:\n", "sqs_key = a:s:p/q\n", "sqs_region = EU\n",
                                      "sqs_account = a/b\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(parse(&cfg, bad[i], err, sizeof(err)), CONFIG_ERROR);
        CHECK(strstr(err, "sqs_") != NULL);
        config_free(&cfg);
    }
}

static void test_errors_name_the_line_and_the_problem(void)
{
    expect_error("port = 8080\nbogus = 1\n", "config:2: unknown setting \"bogus\"");
    expect_error("port = 70000\n", "port");
    expect_error("port = -1\n", "port");
    expect_error("durability = sometimes\n", "fsync, normal, memory");
    expect_error("log_level = loud\n", "log_level");
    expect_error("just some words\n", "expected key = value");
    expect_error("max_message_size = 0\n", "max_message_size");
    expect_error("max_message_size = 2m\nmax_request_size = 1m\n", "larger than max_request_size");
    expect_error("token = :p1\n", "empty token");
    expect_error("token = a b\n", "cannot contain");
    expect_error("connection_limit = 0\n", "connection_limit");
    expect_error("test_mode = maybe\n", "auto, on, off");
    expect_error("limits = loose\n", "strict or relaxed");
    expect_error("log_format = xml\n", "text or json");
    expect_error("slow_request_ms = soon\n", "slow_request_ms");
}

static void test_log_settings(void)
{
    struct config cfg;
    char err[256];
    CHECK_EQ(parse(&cfg, "log-format = json\nslow_request_ms = 0\nslow-commit-ms = 5\n", err,
                   sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.log_format, LOG_JSON);
    CHECK_EQ(cfg.slow_request_ms, 0);
    CHECK_EQ(cfg.slow_commit_ms, 5);
    config_free(&cfg);
}

static enum config_result flags(struct config *cfg, char **argv, int argc, char *err, size_t len)
{
    return config_load(cfg, argc, argv, err, len);
}

static void test_test_mode_is_auto_and_follows_the_tokens(void)
{
    struct config cfg;
    char err[256];
    CHECK_EQ(parse(&cfg, "", err, sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.test_mode, TEST_MODE_AUTO);
    CHECK(config_test_mode_on(&cfg));      /* dev mode */
    CHECK(!cfg.relaxed_limits);
    config_free(&cfg);
    CHECK_EQ(parse(&cfg, "token = t\n", err, sizeof(err)), CONFIG_OK);
    CHECK(!config_test_mode_on(&cfg));     /* tokens: off unless asked */
    config_free(&cfg);
    CHECK_EQ(parse(&cfg, "token = t\ntest_mode = on\nlimits = relaxed\n", err, sizeof(err)), CONFIG_OK);
    CHECK(config_test_mode_on(&cfg));
    CHECK(cfg.relaxed_limits);
    config_free(&cfg);
    CHECK_EQ(parse(&cfg, "test_mode = off\n", err, sizeof(err)), CONFIG_OK);
    CHECK(!config_test_mode_on(&cfg));
    config_free(&cfg);
}

static void test_test_mode_flag_alone_turns_it_on(void)
{
    struct config cfg;
    char err[256];
    char *alone[] = {"anvil", "--token", "t", "--test-mode", NULL};
    CHECK_EQ(flags(&cfg, alone, 4, err, sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.test_mode, TEST_MODE_ON);
    config_free(&cfg);
    char *before[] = {"anvil", "--test-mode", "--port", "0", NULL};
    CHECK_EQ(flags(&cfg, before, 4, err, sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.test_mode, TEST_MODE_ON);
    CHECK_EQ(cfg.port, 0);
    config_free(&cfg);
    char *off[] = {"anvil", "--test-mode", "off", NULL};
    CHECK_EQ(flags(&cfg, off, 3, err, sizeof(err)), CONFIG_OK);
    CHECK_EQ(cfg.test_mode, TEST_MODE_OFF);
    config_free(&cfg);
    char *init[] = {"anvil", "--token", "t", "--init", "f.json", NULL};
    CHECK_EQ(flags(&cfg, init, 5, err, sizeof(err)), CONFIG_ERROR);
    CHECK(strstr(err, "test mode") != NULL);
    config_free(&cfg);
}

CHECK_MAIN(TEST(test_empty_file_gives_the_documented_defaults),
           TEST(test_test_mode_is_auto_and_follows_the_tokens),
           TEST(test_test_mode_flag_alone_turns_it_on),
           TEST(test_sqs_keys_and_account),
           TEST(test_values_comments_quotes_and_dashes_are_understood),
           TEST(test_tokens_grant_listed_projects_or_all),
           TEST(test_errors_name_the_line_and_the_problem),
           TEST(test_log_settings))
