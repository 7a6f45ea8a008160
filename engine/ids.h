/* engine/ids.h — identifiers the engine hands out: message ids (64-bit, increasing,
 * printed as decimal strings), reservation ids (128 random bits, printed as 32 hex digits)
 * and queue ids (96 random bits, 24 hex digits). Pure: the caller supplies the seed and
 * the time, so tests get the same ids every run. */
#ifndef ANVIL_IDS_H
#define ANVIL_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RESERVATION_ID_BYTES = 16, RESERVATION_ID_HEX = 32, QUEUE_ID_HEX = 24 };

struct idgen {
    uint64_t last_message_id;
    uint64_t rng[4]; /* xoshiro256** state */
};

void ids_init(struct idgen *g, uint64_t last_message_id, uint64_t seed);
/* Time-based so ids sort by posting time and never repeat across restarts or a wiped
 * database: max(last + 1, now_ms * 2^20). */
uint64_t ids_next_message(struct idgen *g, int64_t now_ms);
uint64_t ids_random(struct idgen *g);
void ids_new_reservation(struct idgen *g, uint8_t out[RESERVATION_ID_BYTES]);
/* Writes 2*len lowercase hex digits and a NUL into out. */
void ids_hex(const uint8_t *bytes, size_t len, char *out);
/* The value of one hex digit (either case), or -1. */
int ids_hex_value(char c);
/* Parses exactly 2*len hex digits (either case); false on anything else. */
bool ids_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t len);

#endif
