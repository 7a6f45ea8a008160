/* api/sigv.h — AWS request signatures as SQS clients send them: Signature Version 4
 * (Authorization: AWS4-HMAC-SHA256 ..., what boto, boto3 and the AWS SDKs send) and
 * Signature Version 2 (AWSAccessKeyId/Signature/SignatureMethod/SignatureVersion/Timestamp
 * parameters of the query protocol). sig_read() says who claims to have signed; the
 * caller looks up that access key's secret and sig_check() recomputes the signature. */
#ifndef ANVIL_SIGV_H
#define ANVIL_SIGV_H

#include <stddef.h>
#include <stdint.h>

#include "form.h"

typedef const char *(*sig_header_fn)(void *ctx, const char *name); /* case-insensitive */

struct sig_input {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* as received: percent-encoded, without the query */
    const char *query;         /* as received, without '?'; "" when none */
    const char *body;
    size_t body_len;
    sig_header_fn header;
    void *header_ctx;
    /* The query protocol's parameters (query string, then form body), decoded; NULL for
     * the JSON protocol. SigV2 reads its fields from here. */
    const struct form *params;
    int64_t now_s;             /* wall clock (Unix seconds), for the 15-minute rule */
};

enum sig_status {
    SIG_OK = 0,
    SIG_MISSING,      /* no signature at all (MissingAuthenticationToken) */
    SIG_INCOMPLETE,   /* a signature missing parts or malformed (IncompleteSignature) */
    SIG_MISMATCH,     /* recomputed signature differs (SignatureDoesNotMatch) */
    SIG_EXPIRED,      /* date more than 15 minutes from now_s, or past Expires (RequestExpired) */
};

struct sig_claim {
    int version;              /* 4 or 2; 0 when sig_read failed */
    char access_key[256];
    char region[64];          /* V4: from the credential scope */
    /* private to sigv.c */
    char date[9];             /* V4 scope date, YYYYMMDD */
    char service[64];
    char amz_date[17];        /* V4 X-Amz-Date, YYYYMMDDTHHMMSSZ */
    char signed_headers[1024];
    char signature[129];
    int64_t expires_s;        /* V4 presigned URL: X-Amz-Expires; 0 for the Authorization header */
};

/* Finds the signature's claims (access key, scope, date) without checking them. */
enum sig_status sig_read(const struct sig_input *in, struct sig_claim *c);
/* Recomputes the signature with secret and compares (in constant time); checks the date. */
enum sig_status sig_check(const struct sig_input *in, const struct sig_claim *c,
                          const char *secret);

#endif
