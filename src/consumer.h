/* SPDX-License-Identifier: MIT */
/* consumer.h -- the Kafka consumer: subscribe, rebalance, poll batches, store offsets. */
#ifndef CRM_CONSUMER_H
#define CRM_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "router.h"
#include "telemetry.h"

struct consumer;

/* Running totals, for logs, tests and (later) metrics. Main-loop thread only. */
struct consumer_stats {
    uint64_t messages;       /* messages taken from Kafka and routed */
    uint64_t ok;             /* handled */
    uint64_t skipped;        /* unknown type under the skip policy */
    uint64_t dead_letters;   /* permanent failures, copied to the dead-letter topic */
    uint64_t retries;        /* rewinds after a failure (each schedules a retry) */
    uint64_t outputs_ok;     /* outputs and dead letters acknowledged by the brokers */
    uint64_t outputs_failed; /* outputs and dead letters whose delivery failed */
    uint64_t in_flight;      /* messages handled whose outputs are not all acknowledged */
    uint64_t flow_pauses;    /* times the loop stopped taking messages at max_in_flight */
    uint64_t flow_stalls;    /* of which lasted long enough to pause every partition */
    uint64_t fetch_wakeups;  /* times the fetchers were woken as the prefetched queue ran low */
    uint64_t stalls;         /* partitions fetched again after stall_timeout_s unfetched */
    uint64_t dropped;        /* polled but released unhandled because a rebalance revoked them */
    uint64_t held_back;      /* polled while the circuit breaker held consumption: fetched again */
    uint64_t assigns;        /* rebalance callbacks that added partitions */
    uint64_t revokes;        /* rebalance callbacks that took partitions away */
    uint64_t lost;           /* of which the partitions were lost (nothing committed) */
    uint64_t commits_ok;     /* offset commits acknowledged (automatic and explicit) */
    uint64_t commits_failed; /* offset commits that failed */
    uint64_t breaker_opens;  /* times the circuit breaker opened */
    int breaker_state;       /* enum breaker_state: closed, open or half-open now */
    int assigned;            /* partitions assigned now */
    int paused;              /* partitions paused now (retry backoff or flow control) */
};

/*
 * The consumer's librdkafka configuration, as consumer_new() makes it, but
 * for its callbacks. NULL with a reason in err.
 */
rd_kafka_conf_t *consumer_conf_new(const struct config *cfg, char *err, size_t errlen);

/*
 * Create the consumer and its producer, and subscribe to cfg->kafka.topics;
 * the router decides each message's outcome and its handlers' outputs go to
 * the producer. An input offset is stored only once every output of its
 * message (or its dead letter) is acknowledged. cfg and router must outlive
 * the consumer. Everything it does is counted in tm (and the statistics it
 * asks librdkafka for feed tm's lag and readiness). Returns NULL with a
 * reason in err on failure. Joining the group happens on the first
 * consumer_poll() calls.
 */
struct consumer *consumer_new(const struct config *cfg, struct router *router, struct telemetry *tm,
                              char *err, size_t errlen);

/*
 * One turn of the loop: serve delivery reports, poll one batch (up to
 * processing.batch_size messages, or what arrives within
 * processing.batch_timeout_ms; none while processing.max_in_flight messages
 * wait for their outputs), route each message, then store the offsets whose
 * messages are done. Returns the number of messages routed, or
 * -ENOTRECOVERABLE when librdkafka raised a fatal error and the caller must
 * shut down.
 */
int consumer_poll(struct consumer *c);

/*
 * Take no message (hold) or take them again: while held every partition is
 * paused, including those assigned meanwhile, and what was fetched but not
 * handled is fetched again when the hold ends. Outputs in flight are still
 * acknowledged and their offsets stored.
 */
void consumer_hold(struct consumer *c, bool hold);

/* The configuration was reloaded: take the circuit breaker's new settings. */
void consumer_reconfigure(struct consumer *c);

/*
 * Graceful shutdown: wait for the outputs in flight, store and commit
 * synchronously, then leave the group with rd_kafka_consumer_close(), the
 * whole bounded by processing.shutdown_timeout_s. Returns 0, or -ETIMEDOUT
 * when the deadline cut it short (what was committed stays committed), or
 * -EIO when the final commit failed.
 */
int consumer_close(struct consumer *c);

/* Destroy the handle (call consumer_close first for a clean leave). Takes NULL; returns NULL. */
struct consumer *consumer_free(struct consumer *c);

/* The running totals. */
const struct consumer_stats *consumer_stats(const struct consumer *c);

/* The librdkafka handle, for tests and diagnostics; owned by the consumer. */
struct rd_kafka_s *consumer_handle(struct consumer *c);

#endif
