/* server/clock.h — the only place anvil reads the time. The engine is handed these values;
 * it never reads a clock itself, which is what lets tests drive time by hand. */
#ifndef ANVIL_CLOCK_H
#define ANVIL_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);   /* milliseconds since the Unix epoch (stored in the database) */
int64_t clock_mono_us(void);   /* monotonic microseconds, for measuring durations */

#endif
