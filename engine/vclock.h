/* engine/vclock.h — the engine's clock switch for tests: wall time, or a virtual time that
 * stands still until it is advanced. Pure: the wall time comes in as a parameter, so unit
 * tests drive it by hand. server/ owns one, reads the wall clock and feeds the result to
 * eng_set_time(); the admin API (api/admin.c) freezes, advances and unfreezes it.
 * The reading never goes backwards: unfreezing after an advance keeps the time the advance
 * reached and runs on from there at wall speed (offset_ms says by how much it is ahead). */
#ifndef ANVIL_VCLOCK_H
#define ANVIL_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct vclock {
    bool frozen;
    int64_t frozen_ms; /* the reading while frozen */
    int64_t offset_ms; /* while running: reading = wall + offset_ms (never negative) */
    int64_t last_ms;   /* the latest reading handed out: readings never go below it */
};

/* The clock's reading for this wall time. Running: wall + offset, never below a reading
 * already handed out (a wall clock stepped back by NTP does not move the engine back). */
int64_t vclock_now(struct vclock *c, int64_t wall_ms);
/* Stops the clock at its current reading. Freezing a frozen clock changes nothing. */
void vclock_freeze(struct vclock *c, int64_t wall_ms);
/* Moves a frozen clock on by ms (>= 0); a running clock jumps ahead by ms. Returns the
 * new reading. */
int64_t vclock_advance(struct vclock *c, int64_t wall_ms, int64_t ms);
/* Runs the clock again from its frozen reading (or from wall time when that is later). */
void vclock_unfreeze(struct vclock *c, int64_t wall_ms);

#endif
