/* SPDX-License-Identifier: MIT */
/* clock.h -- the clocks the daemon reads, and UTC times written as ISO 8601. */
#ifndef CRM_CLOCK_H
#define CRM_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic time, for intervals and deadlines. */
int64_t clock_mono_ms(void);
uint64_t clock_mono_ns(void);

/* Wall-clock time: milliseconds since the epoch. */
int64_t clock_real_ms(void);

/*
 * A formatter of "YYYY-MM-DDTHH:MM:SS.mmmZ" that keeps the text of the last
 * second it broke down: the times of a busy second share it, and breaking a
 * time down is not cheap. Zero it before the first use.
 */
struct clock_iso8601 {
    int64_t sec;
    size_t len; /* 0: nothing kept */
    char text[48];
};

/*
 * Write ms (since the epoch; negative ones too) to out as above, with a NUL:
 * true, or false when out is too small or the time cannot be broken down.
 * cache may be NULL.
 */
bool clock_iso8601(struct clock_iso8601 *cache, int64_t ms, char *out, size_t outlen);

#endif
