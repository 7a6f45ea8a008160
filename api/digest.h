/* api/digest.h — the hashes and encodings the SQS front needs, over OpenSSL's libcrypto:
 * MD5 (SQS answers MD5OfMessageBody and MD5OfMessageAttributes, which clients check),
 * SHA-256 and HMAC-SHA256/SHA1 (AWS request signatures), and base64 (binary message
 * attributes, SigV2 signatures). */
#ifndef ANVIL_DIGEST_H
#define ANVIL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

enum { DG_MD5_HEX = 33, DG_SHA256_LEN = 32, DG_SHA256_HEX = 65, DG_SHA1_LEN = 20 };

/* Lowercase hex of the digest, NUL-terminated. */
void dg_md5_hex(const void *data, size_t len, char out[DG_MD5_HEX]);
void dg_sha256_hex(const void *data, size_t len, char out[DG_SHA256_HEX]);
void dg_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[DG_SHA256_LEN]);
void dg_hmac_sha1(const void *key, size_t key_len, const void *data, size_t len,
                  unsigned char out[DG_SHA1_LEN]);
void dg_hex(const unsigned char *bin, size_t len, char *out); /* out: 2*len+1 bytes */

/* MD5 built up piece by piece (message attributes are hashed as a sequence of fields). */
struct dg_md5;
struct dg_md5 *dg_md5_new(void);
void dg_md5_add(struct dg_md5 *m, const void *data, size_t len);
/* Writes the hex digest and frees m. */
void dg_md5_finish(struct dg_md5 *m, char out[DG_MD5_HEX]);

/* Standard base64 with padding. encode: out needs dg_base64_len(len) bytes (NUL included). */
size_t dg_base64_len(size_t len);
void dg_base64_encode(const void *in, size_t len, char *out);
/* Strict decode (padding required, no whitespace): false when `in` is not base64. out needs
 * len / 4 * 3 bytes; *out_len gets the decoded length. */
bool dg_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

#endif
