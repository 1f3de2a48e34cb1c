/* SPDX-License-Identifier: MIT */
/* breaker.c -- the circuit breaker's state machine. */
#include "breaker.h"

/* Repeated failed trials stop doubling the open period here (unless open_ms is longer). */
#define BREAKER_MAX_MS (10 * 60 * 1000)

void breaker_init(struct breaker *b, int threshold, int64_t open_ms)
{
    *b = (struct breaker){
        .threshold = threshold > 0 ? threshold : 1,
        .base_ms = open_ms,
        .max_ms = open_ms > BREAKER_MAX_MS ? open_ms : BREAKER_MAX_MS,
        .timeout_ms = open_ms,
        .state = BREAKER_CLOSED,
    };
}

void breaker_configure(struct breaker *b, int threshold, int64_t open_ms)
{
    b->threshold = threshold > 0 ? threshold : 1;
    b->base_ms = open_ms;
    b->max_ms = open_ms > BREAKER_MAX_MS ? open_ms : BREAKER_MAX_MS;
    if (b->state == BREAKER_CLOSED || b->timeout_ms < open_ms)
        b->timeout_ms = open_ms;
}

static void trip(struct breaker *b, int64_t now)
{
    b->state = BREAKER_OPEN;
    b->open_until = now + b->timeout_ms;
    b->failures = 0;
    b->opens++;
}

bool breaker_success(struct breaker *b)
{
    b->failures = 0;
    if (b->state != BREAKER_HALF_OPEN)
        return false;
    b->state = BREAKER_CLOSED;
    b->timeout_ms = b->base_ms;
    return true;
}

bool breaker_failure(struct breaker *b, int64_t now)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        if (++b->failures < b->threshold)
            return false;
        trip(b, now);
        return true;
    case BREAKER_HALF_OPEN:
        /* The trial failed: stay away longer this time. */
        b->timeout_ms = b->timeout_ms > b->max_ms / 2 ? b->max_ms : b->timeout_ms * 2;
        trip(b, now);
        return true;
    case BREAKER_OPEN:
    default:
        return false; /* late reports of work done before it opened */
    }
}

bool breaker_tick(struct breaker *b, int64_t now)
{
    if (b->state != BREAKER_OPEN || now < b->open_until)
        return false;
    b->state = BREAKER_HALF_OPEN;
    return true;
}

int64_t breaker_remaining(const struct breaker *b, int64_t now)
{
    if (b->state != BREAKER_OPEN)
        return 0;
    return b->open_until > now ? b->open_until - now : 0;
}

const char *breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half-open";
    case BREAKER_CLOSED:
    default:
        return "closed";
    }
}
