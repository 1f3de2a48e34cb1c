/* SPDX-License-Identifier: MIT */
/* flow.h -- flow control: how many messages may wait for their outputs, and what to do past it. */
#ifndef CRM_FLOW_H
#define CRM_FLOW_H

#include <stdbool.h>
#include <stdint.h>

/*
 * At processing.max_in_flight messages waiting for their outputs, or when
 * the producer's queue is full, the loop takes no messages and waits for
 * acknowledgements (librdkafka goes on prefetching, within its limits).
 * Should that last longer than FLOW_HOLD_MS, every partition is paused, so
 * that the loop can serve the group again without taking messages, until
 * half of them are done (or half the producer's queue is delivered).
 * Pausing is not the first resort: a resumed partition can wait about a
 * second for its next fetch. Nothing is dropped either way. Pure state: the
 * caller pauses and resumes.
 */
#define FLOW_HOLD_MS 1000

struct flow {
    uint64_t max;     /* processing.max_in_flight */
    bool paused;      /* every partition is paused */
    int64_t since;    /* when the loop stopped taking messages, or 0 */
    bool queue_full;  /* the producer refused an output: wait for its queue to drain */
    int queue_resume; /* producer queue length at which a queue-full wait ends */
    uint64_t waits;   /* times the loop stopped taking messages */
    uint64_t pauses;  /* of which lasted long enough to pause every partition */
};

enum flow_verdict {
    FLOW_TAKE,       /* take messages */
    FLOW_WAIT,       /* take none; wait for acknowledgements */
    FLOW_PAUSE_ALL,  /* as FLOW_WAIT, and pause every partition now */
    FLOW_RESUME_ALL, /* as FLOW_TAKE, and let every partition go now */
};

/* A flow bound of max messages in flight. */
void flow_init(struct flow *f, uint64_t max);

/* The producer refused an output as its queue is full (queued records now). */
void flow_queue_full(struct flow *f, int queued);

/* Before taking messages: in_flight messages wait, queued records are in the producer. */
enum flow_verdict flow_check(struct flow *f, uint64_t in_flight, int queued, int64_t now_ms);

#endif
