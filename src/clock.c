/* SPDX-License-Identifier: MIT */
/* clock.c -- the clocks the daemon reads, and UTC times written as ISO 8601. */
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t clock_real_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool clock_iso8601(struct clock_iso8601 *cache, int64_t ms, char *out, size_t outlen)
{
    struct clock_iso8601 local = {.len = 0};
    /* Floor division, so that times before 1970 still get 0..999 milliseconds. */
    int64_t sec = ms / 1000, milli = ms % 1000;

    if (!cache)
        cache = &local;
    if (milli < 0) {
        milli += 1000;
        sec--;
    }
    if (cache->len == 0 || cache->sec != sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        int n;

        cache->len = 0;
        if (gmtime_r(&t, &tm) == NULL)
            return false;
        n = snprintf(cache->text, sizeof(cache->text), "%04d-%02d-%02dT%02d:%02d:%02d.",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
        if (n <= 0 || (size_t)n >= sizeof(cache->text))
            return false;
        cache->sec = sec;
        cache->len = (size_t)n;
    }
    /* The second's text, then the milliseconds as %03d and the Z. */
    if (cache->len + sizeof("123Z") > outlen)
        return false;
    memcpy(out, cache->text, cache->len);
    out[cache->len] = (char)('0' + milli / 100);
    out[cache->len + 1] = (char)('0' + milli / 10 % 10);
    out[cache->len + 2] = (char)('0' + milli % 10);
    memcpy(out + cache->len + 3, "Z", sizeof("Z"));
    return true;
}
