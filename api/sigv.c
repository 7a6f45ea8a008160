/* api/sigv.c — owns the checking of AWS request signatures for the SQS front (see sigv.h):
 * reading what a request claims (a SigV4 Authorization header, a SigV4 presigned query, or
 * the SigV2 parameters of the query protocol), rebuilding the text its signer hashed,
 * recomputing the HMAC with the caller's secret, comparing in constant time, and the
 * 15-minute rule. Canonicalization follows what botocore 1.29 (SigV4Auth), boto 2.49
 * (HmacAuthV4Handler, QuerySignatureV2AuthHandler) and @smithy/signature-v4 (the AWS SDK
 * for JavaScript v3) compute; where they differ, the comment at the spot says which one is
 * followed. Every text built here has a hard size limit: past it the request is refused
 * (SIG_INCOMPLETE) rather than buffered. No state outside the arguments. */
#include "sigv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

enum {
    MAX_SKEW_S = 15 * 60,               /* the 15-minute rule */
    MAX_PRESIGN_S = 7 * 24 * 3600,      /* X-Amz-Expires: a week at most, as AWS */
    MAX_AUTHORIZATION = 8192,           /* the Authorization header's length */
    MAX_METHOD = 32,
    MAX_PATH = 16 * 1024,               /* the path as received */
    MAX_QUERY = 1024 * 1024,            /* the raw query (a GET SendMessage carries a body) */
    MAX_PARAMS = 10000,                 /* pairs in the query, or query-protocol params */
    MAX_HEADER_VALUE = 16 * 1024,       /* one signed header's value */
    MAX_CANONICAL = 8 * 1024 * 1024,    /* a SigV4 canonical request */
    MAX_V2_TEXT = 64 * 1024 * 1024,     /* a SigV2 string to sign (a 16 MiB form, encoded) */
    MAX_SECRET = 1024,
    V4_SIGNATURE_HEX = 64,
    AMZ_DATE_LEN = 16,                  /* YYYYMMDDTHHMMSSZ */
};

static const char ALGORITHM[] = "AWS4-HMAC-SHA256";

/* ---- bounded text ---- */

/* A growing string that refuses to grow past max: then (or out of memory) failed is set
 * and every later append does nothing. */
struct text {
    char *s;
    size_t len, cap, max;
    bool failed;
};

static void text_init(struct text *t, size_t max)
{
    *t = (struct text){.max = max};
}

static void text_free(struct text *t)
{
    free(t->s);
    *t = (struct text){0};
}

/* Makes room for `more` bytes and a NUL; false (and failed) when it cannot. */
static bool text_reserve(struct text *t, size_t more)
{
    if (t->failed)
        return false;
    if (more > t->max - t->len) {
        t->failed = true;
        return false;
    }
    size_t need = t->len + more + 1;
    if (need <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < need)
        cap *= 2;
    char *grown = realloc(t->s, cap);
    if (!grown) {
        t->failed = true;
        return false;
    }
    t->s = grown;
    t->cap = cap;
    return true;
}

static void text_add(struct text *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    if (n)
        memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_add_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void text_add_char(struct text *t, char c)
{
    text_add(t, &c, 1);
}

/* ---- small helpers ---- */

static const char *header(const struct sig_input *in, const char *name)
{
    return in->header ? in->header(in->header_ctx, name) : NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool same_ascii_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Equal bytes, in time that depends on n only. */
static bool same_bytes_const_time(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(x[i] ^ y[i]);
    return diff == 0;
}

/* Overwrites key material so it does not linger on the stack. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = 0;
}

/* An all-zero MAC is what digest.c leaves when HMAC itself failed: never a match. */
static bool all_zero(const unsigned char *b, size_t n)
{
    unsigned any = 0;
    for (size_t i = 0; i < n; i++)
        any |= b[i];
    return any == 0;
}

/* Copies n bytes of src into dst[size] with a NUL: false when empty, too long, or holding
 * a byte outside printable ASCII (no spaces, controls or NULs in keys and scopes). */
static bool copy_token(char *dst, size_t size, const char *src, size_t n)
{
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)src[i] <= ' ' || (unsigned char)src[i] >= 0x7f)
            return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return true;
}

/* Is `a - b` more than limit (no overflow whatever the values)? */
static bool later_by_more_than(int64_t a, int64_t b, int64_t limit)
{
    return a > b && (uint64_t)a - (uint64_t)b > (uint64_t)limit;
}

/* ---- percent-encoding (RFC 3986: A-Za-z0-9-_.~ kept, every other byte %XX) ---- */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static bool kept(unsigned char c, bool keep_slash)
{
    return unreserved(c) || (keep_slash && c == '/');
}

static size_t encoded_len(const char *s, size_t n, bool keep_slash)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += kept((unsigned char)s[i], keep_slash) ? 1 : 3;
    return len;
}

/* Writes the encoding of s[0..n) at dst (encoded_len bytes, no NUL); returns its length. */
static size_t encode_into(char *dst, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (kept(c, keep_slash)) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}

static void text_add_encoded(struct text *t, const char *s, size_t n, bool keep_slash)
{
    size_t len = encoded_len(s, n, keep_slash);
    if (!text_reserve(t, len))
        return;
    t->len += encode_into(t->s + t->len, s, n, keep_slash);
    t->s[t->len] = '\0';
}

/* ---- dates ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* n digits at s as a number; -1 when any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Unix seconds of a UTC calendar time; false when a field is out of range. */
static bool civil_to_unix(int y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || s < 0 || s > 60)
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
    return true;
}

/* X-Amz-Date: YYYYMMDDTHHMMSSZ exactly. */
static bool parse_amz_date(const char *s, int64_t *out)
{
    if (strlen(s) != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return false;
    return civil_to_unix(digits(s, 4), digits(s + 4, 2), digits(s + 6, 2), digits(s + 9, 2),
                         digits(s + 11, 2), digits(s + 13, 2), out);
}

/* An RFC 1123 Date header, "Mon, 30 Aug 2015 12:36:00 GMT", written as X-Amz-Date. The zone
 * must be UTC: GMT (RFC 7231), or -0000 / +0000 (what botocore's formatdate() writes). */
static bool http_date_to_amz(const char *s, char amz[AMZ_DATE_LEN + 1])
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *comma = strchr(s, ',');
    if (comma)
        s = comma + 1;
    s += strspn(s, " ");
    int dlen = is_digit(s[0]) && is_digit(s[1]) ? 2 : 1;
    int day = digits(s, dlen);
    s += dlen;
    if (day < 0 || *s++ != ' ' || strlen(s) < 21 || s[3] != ' ' || s[8] != ' ' ||
        s[11] != ':' || s[14] != ':' || s[17] != ' ')
        return false;
    int month = 0;
    for (size_t i = 0; i < 12 && !month; i++)
        if (same_ascii_nocase(s, months + 3 * i, 3))
            month = (int)i + 1;
    const char *zone = s + 18;
    if (!month || (strcmp(zone, "GMT") != 0 && strcmp(zone, "UTC") != 0 &&
                   strcmp(zone, "+0000") != 0 && strcmp(zone, "-0000") != 0))
        return false;
    int year = digits(s + 4, 4), hour = digits(s + 9, 2), min = digits(s + 12, 2),
        sec = digits(s + 15, 2);
    int64_t t;
    if (!civil_to_unix(year, month, day, hour, min, sec, &t))
        return false;
    int n = snprintf(amz, AMZ_DATE_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ", year, month, day, hour,
                     min, sec);
    return n == AMZ_DATE_LEN;
}

/* SigV2's Timestamp / Expires: ISO 8601, YYYY-MM-DDTHH:MM:SS, then optional fractional
 * seconds, then Z, +HH:MM, -HH:MM, +HHMM or nothing (UTC). boto 2 writes ...SSZ, the Java
 * SDK ...SS.sssZ. */
static bool parse_iso8601(const char *s, int64_t *out)
{
    if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return false;
    int64_t t;
    if (!civil_to_unix(digits(s, 4), digits(s + 5, 2), digits(s + 8, 2), digits(s + 11, 2),
                       digits(s + 14, 2), digits(s + 17, 2), &t))
        return false;
    const char *z = s + 19;
    if (*z == '.') {
        size_t n = strspn(z + 1, "0123456789");
        if (n == 0)
            return false;
        z += 1 + n;
    }
    int64_t offset = 0;
    if (*z == '+' || *z == '-') {
        int hh = digits(z + 1, 2);
        if (hh < 0 || hh > 23)
            return false;
        const char *mm = z[3] == ':' ? z + 4 : z + 3;
        int m = digits(mm, 2);
        if (m < 0 || m > 59 || mm[2] != '\0')
            return false;
        offset = ((int64_t)hh * 3600 + (int64_t)m * 60) * (*z == '-' ? -1 : 1);
    } else if ((*z == 'Z' || *z == 'z') && z[1] == '\0') {
        offset = 0;
    } else if (*z != '\0') {
        return false;
    }
    *out = t - offset;
    return true;
}

/* ---- reading the SigV4 claim ---- */

/* Credential=AKID/YYYYMMDD/region/service/aws4_request, read from the right: the access
 * key id may hold '/' or ':' (anvil's "project:token"). */
static bool parse_credential(const char *s, size_t len, struct sig_claim *c)
{
    size_t cut[4], end = len;
    for (int k = 0; k < 4; k++) {
        while (end > 0 && s[end - 1] != '/')
            end--;
        if (end == 0)
            return false;
        cut[k] = --end; /* the '/' */
    }
    static const char term[] = "aws4_request";
    const char *date = s + cut[3] + 1;
    return len - cut[0] - 1 == sizeof(term) - 1 &&
           memcmp(s + cut[0] + 1, term, sizeof(term) - 1) == 0 && cut[2] - cut[3] - 1 == 8 &&
           digits(date, 4) >= 0 && digits(date + 4, 4) >= 0 &&
           copy_token(c->date, sizeof(c->date), date, 8) &&
           copy_token(c->region, sizeof(c->region), s + cut[2] + 1, cut[1] - cut[2] - 1) &&
           copy_token(c->service, sizeof(c->service), s + cut[1] + 1, cut[0] - cut[1] - 1) &&
           copy_token(c->access_key, sizeof(c->access_key), s, cut[3]);
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* SignedHeaders: ';'-separated header names, lowercased here; must name host. */
static bool parse_signed_headers(const char *s, size_t len, struct sig_claim *c)
{
    if (len == 0 || len >= sizeof(c->signed_headers))
        return false;
    bool host = false;
    for (size_t i = 0; i <= len;) {
        size_t n = 0;
        while (i + n < len && s[i + n] != ';')
            n++;
        if (n == 0)
            return false;
        for (size_t k = 0; k < n; k++) {
            char ch = lower(s[i + k]);
            if (!is_tchar(ch))
                return false;
            c->signed_headers[i + k] = ch;
        }
        host = host || (n == 4 && memcmp(c->signed_headers + i, "host", 4) == 0);
        if (i + n < len)
            c->signed_headers[i + n] = ';';
        i += n + 1;
    }
    c->signed_headers[len] = '\0';
    return host;
}

static bool parse_signature_hex(const char *s, size_t len, struct sig_claim *c)
{
    if (len != V4_SIGNATURE_HEX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_hex(s[i]))
            return false;
    memcpy(c->signature, s, len);
    c->signature[len] = '\0';
    return true;
}

/* The request's date for SigV4 signed by header: X-Amz-Date, or an RFC 1123 Date. */
static bool read_header_date(const struct sig_input *in, struct sig_claim *c)
{
    const char *amz = header(in, "X-Amz-Date");
    int64_t t;
    if (amz) {
        if (!parse_amz_date(amz, &t))
            return false;
        memcpy(c->amz_date, amz, AMZ_DATE_LEN + 1);
        return true;
    }
    const char *date = header(in, "Date");
    return date && strlen(date) < 64 && http_date_to_amz(date, c->amz_date);
}

/* Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
 * (botocore separates the parts with ", ", boto 2 with ","; any order). */
static enum sig_status read_v4_header(const struct sig_input *in, const char *auth,
                                      struct sig_claim *c)
{
    size_t alen = strlen(ALGORITHM);
    size_t total = strnlen(auth, MAX_AUTHORIZATION + 1);
    if (total > MAX_AUTHORIZATION || strncmp(auth, ALGORITHM, alen) != 0 || auth[alen] != ' ')
        return SIG_INCOMPLETE;
    bool have_cred = false, have_signed = false, have_sig = false;
    for (const char *p = auth + alen; *p;) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, ",");
        size_t trimmed = n;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        const char *eq = memchr(p, '=', trimmed);
        if (eq) {
            size_t klen = (size_t)(eq - p), vlen = trimmed - klen - 1;
            bool ok = true;
            if (klen == 10 && memcmp(p, "Credential", 10) == 0) {
                ok = !have_cred && parse_credential(eq + 1, vlen, c);
                have_cred = true;
            } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
                ok = !have_signed && parse_signed_headers(eq + 1, vlen, c);
                have_signed = true;
            } else if (klen == 9 && memcmp(p, "Signature", 9) == 0) {
                ok = !have_sig && parse_signature_hex(eq + 1, vlen, c);
                have_sig = true;
            }
            if (!ok)
                return SIG_INCOMPLETE;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!have_cred || !have_signed || !have_sig || !read_header_date(in, c))
        return SIG_INCOMPLETE;
    c->version = 4;
    return SIG_OK;
}

/* Parses the raw query as a form (split on '&', '+' a space, %XX a byte, "a" is a=""):
 * the same reading the query protocol gives its parameters. */
static enum sig_status parse_query(const char *query, struct form *f)
{
    size_t len = strnlen(query, MAX_QUERY + 1), pairs = 1;
    if (len > MAX_QUERY)
        return SIG_INCOMPLETE;
    for (size_t i = 0; i < len; i++)
        pairs += query[i] == '&';
    if (pairs > MAX_PARAMS || form_parse(f, query, len) != 0) {
        form_free(f);
        return SIG_INCOMPLETE;
    }
    return SIG_OK;
}

/* The value of a parameter that must be present and NUL-free; NULL otherwise. */
static const char *text_param(const struct form *f, const char *name)
{
    const struct form_pair *p = form_find(f, name);
    return p && strlen(p->value) == p->value_len ? p->value : NULL;
}

static bool parse_expires(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 6 || strspn(s, "0123456789") != n)
        return false;
    *out = digits(s, (int)n);
    return *out >= 1 && *out <= MAX_PRESIGN_S;
}

/* A presigned URL's X-Amz-* parameters; SIG_MISSING when the query has none of them. */
static enum sig_status read_presigned_params(const struct form *q, struct sig_claim *c)
{
    if (!form_find(q, "X-Amz-Algorithm") && !form_find(q, "X-Amz-Credential") &&
        !form_find(q, "X-Amz-Signature"))
        return SIG_MISSING;
    const char *alg = text_param(q, "X-Amz-Algorithm");
    const char *cred = text_param(q, "X-Amz-Credential");
    const char *sig = text_param(q, "X-Amz-Signature");
    const char *signed_headers = text_param(q, "X-Amz-SignedHeaders");
    const char *date = text_param(q, "X-Amz-Date");
    const char *expires = text_param(q, "X-Amz-Expires");
    int64_t t;
    if (!alg || strcmp(alg, ALGORITHM) != 0 || !cred || !sig || !signed_headers || !date ||
        !expires || !parse_credential(cred, strlen(cred), c) ||
        !parse_signed_headers(signed_headers, strlen(signed_headers), c) ||
        !parse_signature_hex(sig, strlen(sig), c) || !parse_amz_date(date, &t) ||
        !parse_expires(expires, &c->expires_s))
        return SIG_INCOMPLETE;
    memcpy(c->amz_date, date, AMZ_DATE_LEN + 1);
    c->version = 4;
    return SIG_OK;
}

static enum sig_status read_presigned(const struct sig_input *in, struct sig_claim *c)
{
    const char *query = in->query ? in->query : "";
    if (!strstr(query, "X-Amz-"))
        return SIG_MISSING;
    struct form q = {0};
    enum sig_status st = parse_query(query, &q);
    if (st == SIG_OK)
        st = read_presigned_params(&q, c);
    form_free(&q);
    return st;
}

/* ---- reading the SigV2 claim ---- */

static bool has_v2_params(const struct form *p)
{
    return p && (form_find(p, "AWSAccessKeyId") || form_find(p, "Signature") ||
                 form_find(p, "SignatureVersion") || form_find(p, "SignatureMethod"));
}

/* The Signature parameter as base64: a '+' sent unencoded became a space in the form
 * reading; put it back. Fills bin (at most 96 bytes); false when it is not base64. */
static bool v2_signature_bytes(const char *sig, unsigned char bin[96], size_t *bin_len)
{
    char b64[129];
    size_t n = strlen(sig);
    if (n == 0 || n >= sizeof(b64) || n % 4 != 0)
        return false;
    for (size_t i = 0; i <= n; i++)
        b64[i] = sig[i] == ' ' ? '+' : sig[i];
    return dg_base64_decode(b64, n, bin, bin_len);
}

/* Timestamp (the 15-minute rule) or Expires (not past); exactly one of them. */
static enum sig_status v2_time(const struct form *p, int64_t now_s, bool check)
{
    const char *ts = text_param(p, "Timestamp"), *exp = text_param(p, "Expires");
    int64_t t;
    if ((ts != NULL) == (exp != NULL) || !parse_iso8601(ts ? ts : exp, &t))
        return SIG_INCOMPLETE;
    if (!check)
        return SIG_OK;
    if (ts)
        return later_by_more_than(now_s, t, MAX_SKEW_S) || later_by_more_than(t, now_s, MAX_SKEW_S)
                   ? SIG_EXPIRED
                   : SIG_OK;
    return now_s > t ? SIG_EXPIRED : SIG_OK;
}

static enum sig_status read_v2(const struct sig_input *in, struct sig_claim *c)
{
    const struct form *p = in->params;
    if (!has_v2_params(p))
        return SIG_MISSING;
    const char *version = text_param(p, "SignatureVersion");
    const char *method = text_param(p, "SignatureMethod");
    const char *key = text_param(p, "AWSAccessKeyId");
    const char *sig = text_param(p, "Signature");
    unsigned char bin[96];
    size_t bin_len;
    if (p->n > MAX_PARAMS || !version || strcmp(version, "2") != 0 || !method ||
        (strcmp(method, "HmacSHA256") != 0 && strcmp(method, "HmacSHA1") != 0) || !key ||
        !copy_token(c->access_key, sizeof(c->access_key), key, strlen(key)) || !sig ||
        !v2_signature_bytes(sig, bin, &bin_len) || v2_time(p, 0, false) != SIG_OK)
        return SIG_INCOMPLETE;
    size_t n = strlen(sig);
    for (size_t i = 0; i <= n; i++)
        c->signature[i] = sig[i] == ' ' ? '+' : sig[i];
    c->version = 2;
    return SIG_OK;
}

enum sig_status sig_read(const struct sig_input *in, struct sig_claim *c)
{
    memset(c, 0, sizeof(*c));
    const char *auth = header(in, "Authorization");
    enum sig_status st;
    if (auth) {
        /* Any other scheme (AWS3, OAuth, ...) is not a signature this reads. */
        st = read_v4_header(in, auth, c);
    } else {
        st = read_presigned(in, c);
        if (st == SIG_MISSING)
            st = read_v2(in, c);
    }
    if (st != SIG_OK)
        memset(c, 0, sizeof(*c));
    return st;
}

/* ---- the SigV4 canonical request ---- */

/* The canonical URI, non-S3 rules: dot segments and empty segments removed, then the path
 * as received percent-encoded once more, '/' kept (so "%20" becomes "%2520").
 *   botocore: quote(remove_dot_segments(path), safe='/~'), "/" for an empty path; the JS
 *     SDK's getCanonicalPath does the same (escapeUri, %2F back to '/'). This is what is
 *     followed here, and what AWS's test suite ("normalized" cases) expects.
 *   boto 2: quote(posixpath.normpath(path)) (safe '/', '~' safe since Python 3.7), plus
 *     '/' when the path ended in one. It differs on odd paths only: normpath keeps a
 *     leading "//" ("//a" stays "//a", botocore "/a") and boto 2 adds the slash back even
 *     when nothing is left ("/a/../" is "//", botocore "/"). SQS paths ("/", "/account/
 *     queue") canonicalize the same in all three. */
static enum sig_status add_canonical_uri(struct text *out, const char *path)
{
    size_t len = strnlen(path, MAX_PATH + 1);
    if (len > MAX_PATH)
        return SIG_INCOMPLETE;
    if (len == 0) {
        text_add_char(out, '/');
        return SIG_OK;
    }
    char *segs = malloc(len + 1);
    if (!segs)
        return SIG_INCOMPLETE;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *seg = path + i;
        size_t slen = strcspn(seg, "/");
        if (slen == 2 && seg[0] == '.' && seg[1] == '.') {
            while (n > 0 && segs[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else if (slen > 0 && !(slen == 1 && seg[0] == '.')) {
            if (n > 0)
                segs[n++] = '/';
            memcpy(segs + n, seg, slen);
            n += slen;
        }
        i += slen + 1;
    }
    if (path[0] == '/')
        text_add_char(out, '/');
    text_add_encoded(out, segs, n, true);
    if (n > 0 && path[len - 1] == '/')
        text_add_char(out, '/');
    free(segs);
    return SIG_OK;
}

/* One pair of the canonical query, encoded (pointing into one buffer). */
struct enc_pair {
    const char *name, *value;
    size_t name_len, value_len;
};

static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int compare_enc_pairs(const void *a, const void *b)
{
    const struct enc_pair *x = a, *y = b;
    int c = compare_bytes(x->name, x->name_len, y->name, y->name_len);
    return c ? c : compare_bytes(x->value, x->value_len, y->value, y->value_len);
}

static bool is_signature_param(const struct form_pair *p)
{
    return p->name_len == 15 && same_ascii_nocase(p->name, "X-Amz-Signature", 15);
}

/* The canonical query string: each pair decoded (parse_query) and encoded again, sorted by
 * encoded name, then encoded value, "name=value" joined with '&'. A presigned request
 * leaves X-Amz-Signature out (any case, as the JS SDK).
 *   The JS SDK builds the same from its decoded query object; botocore's SigV4Auth sorts
 *   the raw pairs of the URL without re-encoding, which is the same for the URLs it makes
 *   (already encoded this way), and for AWSRequest.params encodes them like this while
 *   sending them with urlencode (a space as '+'): decoding '+' as a space is what makes
 *   that request verify. boto 2 signs sorted quote(name)=quote(value) of its params, the
 *   same thing; for a POST it signs an empty query and sends the params in the body. */
static enum sig_status add_canonical_query(struct text *out, const struct form *q, bool presigned)
{
    if (q->n == 0)
        return SIG_OK;
    size_t total = 0;
    for (size_t i = 0; i < q->n; i++)
        total += encoded_len(q->pairs[i].name, q->pairs[i].name_len, false) +
                 encoded_len(q->pairs[i].value, q->pairs[i].value_len, false);
    char *buf = malloc(total + 1);
    struct enc_pair *pairs = calloc(q->n, sizeof(*pairs));
    if (!buf || !pairs) {
        free(buf);
        free(pairs);
        return SIG_INCOMPLETE;
    }
    size_t n = 0, at = 0;
    for (size_t i = 0; i < q->n; i++) {
        const struct form_pair *p = &q->pairs[i];
        if (presigned && is_signature_param(p))
            continue;
        pairs[n].name = buf + at;
        pairs[n].name_len = encode_into(buf + at, p->name, p->name_len, false);
        at += pairs[n].name_len;
        pairs[n].value = buf + at;
        pairs[n].value_len = encode_into(buf + at, p->value, p->value_len, false);
        at += pairs[n].value_len;
        n++;
    }
    qsort(pairs, n, sizeof(*pairs), compare_enc_pairs);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            text_add_char(out, '&');
        text_add(out, pairs[i].name, pairs[i].name_len);
        text_add_char(out, '=');
        text_add(out, pairs[i].value, pairs[i].value_len);
    }
    free(buf);
    free(pairs);
    return SIG_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A header value trimmed, each inner run of spaces, tabs, CR and LF one space.
 *   The JS SDK does exactly this; botocore splits on any Python whitespace (also \v, \f,
 *   \x1c-\x1f and, for text, Unicode spaces); boto 2 only trims a value that holds a '"'
 *   (AWS's get-header-value-trim case, "a   b   c" -> "a b c", fails with boto 2). */
static void add_header_value(struct text *out, const char *v)
{
    bool pending = false, any = false;
    for (; *v; v++) {
        if (is_space(*v)) {
            pending = any;
            continue;
        }
        if (pending)
            text_add_char(out, ' ');
        text_add_char(out, *v);
        pending = false;
        any = true;
    }
}

/* "name:value\n" for each signed header, in the order of SignedHeaders (clients sort it).
 * A header named but absent cannot be what was signed. The request's one value per name
 * is used: a header sent several times would be joined with ',' by AWS. */
static enum sig_status add_canonical_headers(struct text *out, const struct sig_input *in,
                                             const char *signed_headers)
{
    char name[sizeof(((struct sig_claim *)0)->signed_headers)];
    for (const char *p = signed_headers; *p;) {
        size_t n = strcspn(p, ";");
        memcpy(name, p, n);
        name[n] = '\0';
        const char *value = header(in, name);
        if (!value)
            return SIG_MISMATCH;
        if (strnlen(value, MAX_HEADER_VALUE + 1) > MAX_HEADER_VALUE)
            return SIG_INCOMPLETE;
        text_add(out, name, n);
        text_add_char(out, ':');
        add_header_value(out, value);
        text_add_char(out, '\n');
        p += n;
        if (*p == ';')
            p++;
    }
    return SIG_OK;
}

/* The payload hash: SHA-256 of the body. An x-amz-content-sha256 header stands in for it
 * (botocore and the JS SDK sign the header's text) only when it is that hash, or
 * UNSIGNED-PAYLOAD. */
static enum sig_status payload_hash(const struct sig_input *in, char out[DG_SHA256_HEX])
{
    dg_sha256_hex(in->body_len ? in->body : "", in->body_len, out);
    const char *claimed = header(in, "x-amz-content-sha256");
    if (!claimed)
        return SIG_OK;
    static const char unsigned_payload[] = "UNSIGNED-PAYLOAD";
    if (strcmp(claimed, unsigned_payload) == 0) {
        memcpy(out, unsigned_payload, sizeof(unsigned_payload));
        return SIG_OK;
    }
    if (strlen(claimed) == DG_SHA256_HEX - 1 &&
        same_ascii_nocase(claimed, out, DG_SHA256_HEX - 1)) {
        memcpy(out, claimed, DG_SHA256_HEX);
        return SIG_OK;
    }
    return SIG_MISMATCH;
}

static enum sig_status canonical_request(const struct sig_input *in, const struct sig_claim *c,
                                         struct text *cr)
{
    const char *method = in->method ? in->method : "";
    if (strnlen(method, MAX_METHOD + 1) > MAX_METHOD)
        return SIG_INCOMPLETE;
    text_add_str(cr, method);
    text_add_char(cr, '\n');
    enum sig_status st = add_canonical_uri(cr, in->path ? in->path : "");
    if (st != SIG_OK)
        return st;
    text_add_char(cr, '\n');
    struct form q = {0};
    st = parse_query(in->query ? in->query : "", &q);
    if (st == SIG_OK)
        st = add_canonical_query(cr, &q, c->expires_s > 0);
    form_free(&q);
    if (st != SIG_OK)
        return st;
    text_add_char(cr, '\n');
    st = add_canonical_headers(cr, in, c->signed_headers);
    if (st != SIG_OK)
        return st;
    text_add_char(cr, '\n');
    text_add_str(cr, c->signed_headers);
    text_add_char(cr, '\n');
    char hash[DG_SHA256_HEX];
    st = payload_hash(in, hash);
    if (st != SIG_OK)
        return st;
    text_add_str(cr, hash);
    return cr->failed ? SIG_INCOMPLETE : SIG_OK;
}

/* ---- SigV4: key, string to sign, signature ---- */

/* HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
static void v4_signing_key(const char *secret, const struct sig_claim *c,
                           unsigned char key[DG_SHA256_LEN])
{
    char k_secret[4 + MAX_SECRET + 1];
    int n = snprintf(k_secret, sizeof(k_secret), "AWS4%s", secret); /* sig_check bounds it */
    size_t klen = n > 0 && (size_t)n < sizeof(k_secret) ? (size_t)n : 0;
    unsigned char a[DG_SHA256_LEN], b[DG_SHA256_LEN];
    dg_hmac_sha256(k_secret, klen, c->date, strlen(c->date), a);
    dg_hmac_sha256(a, sizeof(a), c->region, strlen(c->region), b);
    dg_hmac_sha256(b, sizeof(b), c->service, strlen(c->service), a);
    dg_hmac_sha256(a, sizeof(a), "aws4_request", 12, key);
    wipe(k_secret, sizeof(k_secret));
    wipe(a, sizeof(a));
    wipe(b, sizeof(b));
}

/* The hex signature of a canonical request; false when the HMAC could not be computed. */
static bool v4_signature(const char *secret, const struct sig_claim *c, const struct text *cr,
                         char out[DG_SHA256_HEX])
{
    char cr_hash[DG_SHA256_HEX];
    dg_sha256_hex(cr->s, cr->len, cr_hash);
    char sts[512];
    int n = snprintf(sts, sizeof(sts), "%s\n%s\n%s/%s/%s/aws4_request\n%s", ALGORITHM, c->amz_date,
                     c->date, c->region, c->service, cr_hash);
    if (n < 0 || (size_t)n >= sizeof(sts))
        return false;
    unsigned char key[DG_SHA256_LEN], mac[DG_SHA256_LEN];
    v4_signing_key(secret, c, key);
    dg_hmac_sha256(key, sizeof(key), sts, (size_t)n, mac);
    wipe(key, sizeof(key));
    if (all_zero(mac, sizeof(mac)))
        return false;
    dg_hex(mac, sizeof(mac), out);
    return true;
}

/* The 15-minute rule; a presigned URL is good from X-Amz-Date (less the same skew) until
 * X-Amz-Date + X-Amz-Expires. */
static enum sig_status v4_time(const struct sig_claim *c, int64_t now_s)
{
    int64_t t;
    if (!parse_amz_date(c->amz_date, &t))
        return SIG_INCOMPLETE;
    if (later_by_more_than(t, now_s, MAX_SKEW_S))
        return SIG_EXPIRED;
    if (c->expires_s > 0)
        return later_by_more_than(now_s, t, c->expires_s) ? SIG_EXPIRED : SIG_OK;
    return later_by_more_than(now_s, t, MAX_SKEW_S) ? SIG_EXPIRED : SIG_OK;
}

static enum sig_status check_v4(const struct sig_input *in, const struct sig_claim *c,
                                const char *secret)
{
    enum sig_status st = v4_time(c, in->now_s);
    if (st != SIG_OK)
        return st;
    /* AWS refuses a scope date that is not the request's date. */
    if (strlen(c->date) != 8 || memcmp(c->date, c->amz_date, 8) != 0)
        return SIG_MISMATCH;
    struct text cr;
    text_init(&cr, MAX_CANONICAL);
    st = canonical_request(in, c, &cr);
    char mine[DG_SHA256_HEX];
    if (st == SIG_OK)
        st = v4_signature(secret, c, &cr, mine) &&
                     strlen(c->signature) == V4_SIGNATURE_HEX &&
                     same_bytes_const_time(mine, c->signature, V4_SIGNATURE_HEX)
                 ? SIG_OK
                 : SIG_MISMATCH;
    text_free(&cr);
    return st;
}

/* ---- SigV2 ---- */

static int compare_form_pairs(const void *a, const void *b)
{
    const struct form_pair *x = *(const struct form_pair *const *)a;
    const struct form_pair *y = *(const struct form_pair *const *)b;
    int c = compare_bytes(x->name, x->name_len, y->name, y->name_len);
    return c ? c : compare_bytes(x->value, x->value_len, y->value, y->value_len);
}

/* The parameters but Signature, sorted by decoded name in byte order (AWS's V2 rule and
 * boto 2's sorted(params); unlike SigV4, which sorts encoded names), "name=value" encoded
 * and joined with '&'. */
static bool add_v2_query(struct text *out, const struct form *p)
{
    const struct form_pair **sorted = calloc(p->n ? p->n : 1, sizeof(*sorted));
    if (!sorted)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!(p->pairs[i].name_len == 9 && memcmp(p->pairs[i].name, "Signature", 9) == 0))
            sorted[n++] = &p->pairs[i];
    qsort(sorted, n, sizeof(*sorted), compare_form_pairs);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            text_add_char(out, '&');
        text_add_encoded(out, sorted[i]->name, sorted[i]->name_len, false);
        text_add_char(out, '=');
        text_add_encoded(out, sorted[i]->value, sorted[i]->value_len, false);
    }
    free(sorted);
    return !out->failed;
}

/* The V2 string to sign, "METHOD\nhost\npath\nquery" (host lowercased); false when it
 * cannot be built within its limit. */
static bool v2_string(const struct sig_input *in, const char *host, size_t host_len,
                      struct text *s)
{
    const char *path = in->path && in->path[0] ? in->path : "/";
    const char *method = in->method ? in->method : "";
    if (strnlen(path, MAX_PATH + 1) > MAX_PATH || strnlen(method, MAX_METHOD + 1) > MAX_METHOD)
        return false;
    text_add_str(s, method);
    text_add_char(s, '\n');
    for (size_t i = 0; i < host_len; i++)
        text_add_char(s, lower(host[i]));
    text_add_char(s, '\n');
    text_add_str(s, path);
    text_add_char(s, '\n');
    return add_v2_query(s, in->params);
}

static bool v2_matches(const struct text *s, const char *secret, const unsigned char *sig,
                       size_t sig_len, bool sha1)
{
    unsigned char mac[DG_SHA256_LEN];
    size_t mac_len = sha1 ? DG_SHA1_LEN : DG_SHA256_LEN;
    if (sha1)
        dg_hmac_sha1(secret, strlen(secret), s->s, s->len, mac);
    else
        dg_hmac_sha256(secret, strlen(secret), s->s, s->len, mac);
    bool ok = sig_len == mac_len && !all_zero(mac, mac_len) &&
              same_bytes_const_time(mac, sig, mac_len);
    wipe(mac, sizeof(mac));
    return ok;
}

/* The Host header's length without a trailing ":port", or its whole length. */
static size_t host_without_port(const char *host, size_t len)
{
    size_t colon = len;
    while (colon > 0 && is_digit(host[colon - 1]))
        colon--;
    return colon > 0 && colon < len && host[colon - 1] == ':' ? colon - 1 : len;
}

static enum sig_status check_v2(const struct sig_input *in, const struct sig_claim *c,
                                const char *secret)
{
    const struct form *p = in->params;
    if (!p || p->n > MAX_PARAMS)
        return SIG_INCOMPLETE;
    enum sig_status st = v2_time(p, in->now_s, true);
    if (st != SIG_OK)
        return st;
    const char *method = text_param(p, "SignatureMethod");
    unsigned char sig[96];
    size_t sig_len;
    if (!method || !v2_signature_bytes(c->signature, sig, &sig_len))
        return SIG_INCOMPLETE;
    bool sha1 = strcmp(method, "HmacSHA1") == 0;
    if (!sha1 && strcmp(method, "HmacSHA256") != 0)
        return SIG_INCOMPLETE;
    const char *host = header(in, "Host");
    host = host ? host : "";
    size_t host_len = strnlen(host, MAX_HEADER_VALUE + 1);
    if (host_len > MAX_HEADER_VALUE)
        return SIG_INCOMPLETE;
    struct text s;
    text_init(&s, MAX_V2_TEXT);
    if (!v2_string(in, host, host_len, &s)) {
        text_free(&s);
        return SIG_INCOMPLETE;
    }
    bool ok = v2_matches(&s, secret, sig, sig_len, sha1);
    /* boto 2 signs its connection's host without the port (HTTPRequest.host), while
     * http.client sends "Host: name:port": on a port other than 80 its requests only
     * verify against the name alone. Cut ":port" out of the string and try that. */
    size_t bare = host_without_port(host, host_len);
    if (!ok && bare < host_len) {
        size_t at = strlen(in->method ? in->method : "") + 1 + bare, cut = host_len - bare;
        memmove(s.s + at, s.s + at + cut, s.len - at - cut + 1);
        s.len -= cut;
        ok = v2_matches(&s, secret, sig, sig_len, sha1);
    }
    text_free(&s);
    return ok ? SIG_OK : SIG_MISMATCH;
}

/* ---- sig_check ---- */

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static bool claim_well_formed(const struct sig_claim *c)
{
    return terminated(c->access_key, sizeof(c->access_key)) &&
           terminated(c->region, sizeof(c->region)) && terminated(c->date, sizeof(c->date)) &&
           terminated(c->service, sizeof(c->service)) &&
           terminated(c->amz_date, sizeof(c->amz_date)) &&
           terminated(c->signed_headers, sizeof(c->signed_headers)) &&
           terminated(c->signature, sizeof(c->signature)) && c->expires_s >= 0 &&
           c->expires_s <= MAX_PRESIGN_S;
}

enum sig_status sig_check(const struct sig_input *in, const struct sig_claim *c,
                          const char *secret)
{
    if (!secret || strnlen(secret, MAX_SECRET + 1) > MAX_SECRET)
        return SIG_MISMATCH;
    if (!claim_well_formed(c))
        return SIG_INCOMPLETE;
    switch (c->version) {
    case 4:
        return check_v4(in, c, secret);
    case 2:
        return check_v2(in, c, secret);
    default:
        return SIG_INCOMPLETE;
    }
}
