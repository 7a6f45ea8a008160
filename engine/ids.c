/* engine/ids.c — message, reservation and queue identifiers (see ids.h). */
#include "ids.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ids_init(struct idgen *g, uint64_t last_message_id, uint64_t seed)
{
    g->last_message_id = last_message_id;
    for (int i = 0; i < 4; i++)
        g->rng[i] = splitmix(&seed);
}

uint64_t ids_next_message(struct idgen *g, int64_t now_ms)
{
    uint64_t by_time = now_ms > 0 ? (uint64_t)now_ms << 20 : 0;
    uint64_t next = g->last_message_id + 1;
    if (by_time > next)
        next = by_time;
    g->last_message_id = next;
    return next;
}

uint64_t ids_random(struct idgen *g)
{
    uint64_t *s = g->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void ids_new_reservation(struct idgen *g, uint8_t out[RESERVATION_ID_BYTES])
{
    for (int half = 0; half < 2; half++) {
        uint64_t r = ids_random(g);
        for (int i = 0; i < 8; i++)
            out[half * 8 + i] = (uint8_t)(r >> (8 * i));
    }
}

void ids_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

int ids_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ids_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t len)
{
    if (hex_len != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = ids_hex_value(hex[2 * i]), lo = ids_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
