/* tests/fuzz/fuzz_sigv.c — AWS request signatures (api/sigv.c): the input is one HTTP-like
 * request,
 *
 *     @1440938160                      optional: the clock (Unix seconds) for now_s
 *     GET /path?query                  method, path, raw query
 *     Name: value                      headers until an empty line
 *
 *     body                             the rest, exactly (no NUL after it)
 *
 * made into a sig_input whose params are the form reading of the query, then of the body,
 * and given to sig_read() and sig_check() with two fixed secrets: AWS's test-suite example
 * secret and the one tests/unit/gen_sigv_fixtures.py signs with, so the seed corpus
 * (real signed requests) reaches SIG_OK. Besides memory errors and undefined behaviour,
 * the answers must hold together:
 *  - sig_read is repeatable, and leaves a zeroed claim when it fails; an accepted claim
 *    has a version (2 or 4), an access key, and a region for SigV4;
 *  - sig_check never says SIG_OK for a third secret, nor for both known ones;
 *  - when it says SIG_OK: again the same; not once the claim's signature is changed, nor
 *    (SigV4) the method or, when no x-amz-content-sha256 header stands in, one body byte;
 *    and SIG_EXPIRED with the clock moved ~30 million years ahead (every date rule applies).
 * FUZZ_TRACE=1 prints what each input claimed and whether it verified. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../api/form.h"
#include "../../api/sigv.h"

enum { MAX_FUZZ_HEADERS = 64 };

static const char *const SECRETS[] = {
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", /* AWS's test suite */
    "anvil/Secret+Key=0123456789abcdefEXAMPLE", /* tests/unit/test_sigv.c's client fixtures */
};
static const char OTHER_SECRET[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";

struct fuzz_request {
    char *method, *path, *query, *body;
    size_t body_len;
    char *names[MAX_FUZZ_HEADERS], *values[MAX_FUZZ_HEADERS];
    size_t n_headers;
    int64_t now_s;
};

static char *copy_text(const char *s, size_t n)
{
    FUZZ_CHECK(n < ((size_t)1 << 40), "length %zu", n);
    char *c = malloc(n + 1);
    FUZZ_CHECK(c != NULL, "out of memory");
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

static const char *lookup(void *ctx, const char *name)
{
    const struct fuzz_request *r = ctx;
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

/* The next line of data[*pos..size) without its "\n" or "\r\n"; advances *pos. */
static const char *next_line(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
    const char *line = (const char *)data + *pos;
    const char *nl = memchr(line, '\n', size - *pos);
    *len = nl ? (size_t)(nl - line) : size - *pos;
    *pos += *len + (nl ? 1 : 0);
    if (*len && line[*len - 1] == '\r')
        (*len)--;
    return line;
}

static int64_t read_clock(const char *s, size_t len)
{
    int64_t v = 0;
    bool negative = len > 0 && s[0] == '-';
    for (size_t i = negative ? 1 : 0; i < len && i < 18 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    return negative ? -v : v;
}

static void parse_request(const uint8_t *data, size_t size, struct fuzz_request *r)
{
    size_t pos = 0, len;
    const char *line = next_line(data, size, &pos, &len);
    r->now_s = 1440938160; /* 2015-08-30T12:36:00Z, the test suite's */
    if (len > 0 && line[0] == '@') {
        r->now_s = read_clock(line + 1, len - 1);
        line = next_line(data, size, &pos, &len);
    }
    const char *sp = memchr(line, ' ', len);
    size_t mlen = sp ? (size_t)(sp - line) : len;
    r->method = copy_text(line, mlen);
    const char *target = sp ? sp + 1 : line + len;
    size_t tlen = (size_t)(line + len - target);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    r->path = copy_text(target, plen);
    r->query = q ? copy_text(q + 1, tlen - plen - 1) : copy_text("", 0);
    while (pos < size) {
        line = next_line(data, size, &pos, &len);
        if (len == 0)
            break;
        const char *colon = memchr(line, ':', len);
        if (!colon || r->n_headers == MAX_FUZZ_HEADERS)
            continue;
        size_t nlen = (size_t)(colon - line), vstart = nlen + 1;
        while (vstart < len && (line[vstart] == ' ' || line[vstart] == '\t'))
            vstart++;
        r->names[r->n_headers] = copy_text(line, nlen);
        r->values[r->n_headers++] = copy_text(line + vstart, len - vstart);
    }
    /* exactly the rest: reading past it is a bug */
    r->body_len = size - pos;
    r->body = malloc(r->body_len ? r->body_len : 1);
    FUZZ_CHECK(r->body != NULL, "out of memory");
    if (r->body_len)
        memcpy(r->body, data + pos, r->body_len);
}

static void free_request(struct fuzz_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->method);
    free(r->path);
    free(r->query);
    free(r->body);
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static bool same_claim(const struct sig_claim *a, const struct sig_claim *b)
{
    return a->version == b->version && a->expires_s == b->expires_s &&
           memcmp(a->access_key, b->access_key, sizeof(a->access_key)) == 0 &&
           memcmp(a->region, b->region, sizeof(a->region)) == 0 &&
           memcmp(a->date, b->date, sizeof(a->date)) == 0 &&
           memcmp(a->service, b->service, sizeof(a->service)) == 0 &&
           memcmp(a->amz_date, b->amz_date, sizeof(a->amz_date)) == 0 &&
           memcmp(a->signed_headers, b->signed_headers, sizeof(a->signed_headers)) == 0 &&
           memcmp(a->signature, b->signature, sizeof(a->signature)) == 0;
}

static void check_claim(const struct sig_input *in, enum sig_status st, const struct sig_claim *c)
{
    struct sig_claim again;
    FUZZ_CHECK(sig_read(in, &again) == st, "sig_read not repeatable");
    FUZZ_CHECK(same_claim(&again, c), "sig_read claimed differently");
    if (st != SIG_OK) {
        FUZZ_CHECK(all_zero(c, sizeof(*c)), "failed sig_read (%d) left a claim", (int)st);
        return;
    }
    FUZZ_CHECK(c->version == 2 || c->version == 4, "claim version %d", c->version);
    FUZZ_CHECK(terminated(c->access_key, sizeof(c->access_key)) && c->access_key[0],
               "claim without an access key");
    FUZZ_CHECK(terminated(c->region, sizeof(c->region)) && (c->version == 2 || c->region[0]),
               "SigV4 claim without a region");
}

/* A verified request: the answer is stable, tied to the signature, and dated. */
static void check_verified(const struct sig_input *in, const struct sig_claim *c,
                           const char *secret)
{
    FUZZ_CHECK(sig_check(in, c, secret) == SIG_OK, "sig_check not repeatable");
    struct sig_claim changed = *c;
    changed.signature[0] = changed.signature[0] == 'a' ? 'b' : 'a';
    enum sig_status st = sig_check(in, &changed, secret);
    FUZZ_CHECK(st != SIG_OK, "SIG_OK with signature \"%s\" changed to \"%s\"", c->signature,
               changed.signature);
    if (c->version == 4) {
        /* SigV4 covers the method, and the body through its hash (unless the client said
         * UNSIGNED-PAYLOAD, or sent the hash in a header). */
        struct sig_input other = *in;
        size_t mlen = strlen(in->method);
        char *method = malloc(mlen + 2);
        FUZZ_CHECK(method != NULL, "out of memory");
        memcpy(method, in->method, mlen);
        memcpy(method + mlen, "X", 2);
        other.method = method;
        st = sig_check(&other, c, secret);
        FUZZ_CHECK(st != SIG_OK, "SIG_OK with the method changed to %s", method);
        free(method);
        other.method = in->method;
        if (!in->header(in->header_ctx, "x-amz-content-sha256")) {
            char *body = malloc(in->body_len + 1);
            FUZZ_CHECK(body != NULL, "out of memory");
            if (in->body_len)
                memcpy(body, in->body, in->body_len);
            body[0] = (char)(in->body_len ? body[0] ^ 1 : 'x');
            other.body = body;
            other.body_len = in->body_len ? in->body_len : 1;
            st = sig_check(&other, c, secret);
            FUZZ_CHECK(st != SIG_OK, "SIG_OK with the body changed");
            free(body);
        }
    }
    struct sig_input later = *in;
    later.now_s = (int64_t)1000000000000000LL;
    st = sig_check(&later, c, secret);
    FUZZ_CHECK(st == SIG_EXPIRED, "a verified request is %d, not expired, 30 My later", (int)st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_request r = {0};
    parse_request(data, size, &r);
    struct form params = {0};
    form_parse(&params, r.query, strlen(r.query));
    form_parse(&params, r.body, r.body_len);
    struct sig_input in = {.method = r.method,
                           .path = r.path,
                           .query = r.query,
                           .body = r.body,
                           .body_len = r.body_len,
                           .header = lookup,
                           .header_ctx = &r,
                           .params = &params,
                           .now_s = r.now_s};
    for (int with_params = 1; with_params >= 0; with_params--) {
        in.params = with_params ? &params : NULL; /* the query protocol, then JSON */
        struct sig_claim c;
        enum sig_status st = sig_read(&in, &c);
        check_claim(&in, st, &c);
        if (st != SIG_OK)
            continue;
        FUZZ_CHECK(sig_check(&in, &c, OTHER_SECRET) != SIG_OK, "SIG_OK with a third secret");
        int verified = 0;
        for (size_t i = 0; i < sizeof(SECRETS) / sizeof(SECRETS[0]); i++) {
            if (sig_check(&in, &c, SECRETS[i]) != SIG_OK)
                continue;
            verified++;
            check_verified(&in, &c, SECRETS[i]);
        }
        FUZZ_CHECK(verified <= 1, "SIG_OK with two secrets");
        if (getenv("FUZZ_TRACE"))
            fprintf(stderr, "  %s %s: SigV%d %s%s\n", r.method, r.path, c.version, c.access_key,
                    verified ? " verified" : " not verified");
    }
    form_free(&params);
    free_request(&r);
    return 0;
}
