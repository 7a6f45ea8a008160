/* api/digest.c — MD5, SHA-256, HMAC and base64 for the SQS front (see digest.h), over
 * OpenSSL's libcrypto (EVP): no hand-written cryptography. */
#include "digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

void dg_hex(const unsigned char *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

static void digest_hex(const EVP_MD *md, const void *data, size_t len, char *out)
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, bin, &n, md, NULL) != 1)
        n = 0;
    dg_hex(bin, n, out);
}

void dg_md5_hex(const void *data, size_t len, char out[DG_MD5_HEX])
{
    digest_hex(EVP_md5(), data, len, out);
}

void dg_sha256_hex(const void *data, size_t len, char out[DG_SHA256_HEX])
{
    digest_hex(EVP_sha256(), data, len, out);
}

void dg_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[DG_SHA256_LEN])
{
    unsigned int n = DG_SHA256_LEN;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n))
        memset(out, 0, DG_SHA256_LEN);
}

void dg_hmac_sha1(const void *key, size_t key_len, const void *data, size_t len,
                  unsigned char out[DG_SHA1_LEN])
{
    unsigned int n = DG_SHA1_LEN;
    if (!HMAC(EVP_sha1(), key, (int)key_len, data, len, out, &n))
        memset(out, 0, DG_SHA1_LEN);
}

struct dg_md5 *dg_md5_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return (struct dg_md5 *)ctx;
}

void dg_md5_add(struct dg_md5 *m, const void *data, size_t len)
{
    if (m)
        EVP_DigestUpdate((EVP_MD_CTX *)m, data, len);
}

void dg_md5_finish(struct dg_md5 *m, char out[DG_MD5_HEX])
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!m || EVP_DigestFinal_ex((EVP_MD_CTX *)m, bin, &n) != 1)
        n = 0;
    dg_hex(bin, n, out);
    EVP_MD_CTX_free((EVP_MD_CTX *)m);
}

size_t dg_base64_len(size_t len)
{
    return (len + 2) / 3 * 4 + 1;
}

void dg_base64_encode(const void *in, size_t len, char *out)
{
    /* EVP_EncodeBlock takes an int: encode in slices of a multiple of 3 bytes */
    const unsigned char *p = in;
    enum { SLICE = 3 * 1024 * 1024 };
    size_t o = 0;
    out[0] = '\0';
    while (len) {
        size_t n = len > SLICE ? SLICE : len;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p, (int)n);
        p += n;
        len -= n;
    }
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

bool dg_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
{
    size_t o = 0;
    if (len % 4)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad || (v[k] = b64_value(c)) < 0)
                return false; /* a character after padding, or not base64 */
        }
        unsigned triple = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (unsigned char)(triple >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(triple >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)triple;
    }
    *out_len = o;
    return true;
}
