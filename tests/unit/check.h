/* tests/unit/check.h — a minimal test harness: each test is a function named after the
 * behaviour it proves; CHECK records a failure with its line and keeps going; main()
 * runs the table and prints one line per test and a final `RESULT passed=N failed=M`
 * (the line scripts/test.sh adds up). Exit status is non-zero when anything failed. */
#ifndef ANVIL_CHECK_H
#define ANVIL_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                       \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                 \
        if (check_a_ != check_b_) {                                                     \
            fprintf(stderr, "    %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
                    __LINE__, #a, #b, check_a_, check_b_);                              \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

#define CHECK_STR(a, b)                                                                   \
    do {                                                                                  \
        const char *check_a_ = (a), *check_b_ = (b);                                      \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                  \
            fprintf(stderr, "    %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,     \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                     \
                    check_b_ ? check_b_ : "(null)");                                      \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

struct check_test {
    const char *name;
    void (*fn)(void);
};

#define TEST(fn) {#fn, fn}

static inline int check_run(const struct check_test *tests, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int before = check_failures;
        tests[i].fn();
        if (check_failures == before) {
            printf("ok   %s\n", tests[i].name);
            passed++;
        } else {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        }
        fflush(stdout);
    }
    printf("RESULT passed=%d failed=%d\n", passed, failed);
    return failed ? 1 : 0;
}

#define CHECK_MAIN(...)                                                \
    int main(void)                                                     \
    {                                                                  \
        static const struct check_test tests[] = {__VA_ARGS__};       \
        return check_run(tests, sizeof(tests) / sizeof(tests[0]));     \
    }

#endif
