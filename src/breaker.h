/* SPDX-License-Identifier: MIT */
/* breaker.h -- the circuit breaker: stop consuming while failures repeat, then try again. */
#ifndef CRM_BREAKER_H
#define CRM_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

/* The values are those of crm_consumer_circuit_breaker_state. */
enum breaker_state {
    BREAKER_CLOSED = 0,    /* consuming */
    BREAKER_OPEN = 1,      /* paused until the timeout runs out */
    BREAKER_HALF_OPEN = 2, /* one trial batch: its first success closes, a failure re-opens */
};

/*
 * The state machine alone, with time passed in (monotonic milliseconds), so it
 * is tested without a clock. The consumer does the pausing; the breaker only
 * says when. Plain data: no allocation, nothing to free.
 */
struct breaker {
    int threshold;      /* consecutive failures that open it */
    int64_t base_ms;    /* the first open period */
    int64_t max_ms;     /* the longest open period after repeated trials failed */
    int64_t timeout_ms; /* the current open period */
    int64_t open_until; /* when an open breaker turns half-open */
    int failures;       /* consecutive failures counted while closed */
    uint64_t opens;     /* times it opened, for the metrics */
    enum breaker_state state;
};

/*
 * Closed, opening after `threshold` consecutive failures for `open_ms`; each
 * failed trial doubles the open period up to the larger of open_ms and
 * ten minutes.
 */
void breaker_init(struct breaker *b, int threshold, int64_t open_ms);

/*
 * New settings for a running breaker (a reload): its state and counts stay;
 * the next open period is open_ms unless failed trials have lengthened it.
 */
void breaker_configure(struct breaker *b, int threshold, int64_t open_ms);

/* A message went through. Closes a half-open breaker; returns true if it did. */
bool breaker_success(struct breaker *b);

/*
 * A transient failure at time now. Returns true if it opened the breaker
 * (the threshold reached while closed, or any failure while half-open).
 */
bool breaker_failure(struct breaker *b, int64_t now);

/* Turn an open breaker half-open once its period is over; returns true if it did. */
bool breaker_tick(struct breaker *b, int64_t now);

/* Milliseconds until an open breaker turns half-open; 0 if it is not open. */
int64_t breaker_remaining(const struct breaker *b, int64_t now);

/* "closed", "open" or "half-open". */
const char *breaker_state_name(enum breaker_state s);

#endif
