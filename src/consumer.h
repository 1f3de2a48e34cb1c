/* SPDX-License-Identifier: MIT */
/* consumer.h -- the Kafka consumer: subscribe, rebalance, poll batches, store offsets. */
#ifndef CRM_CONSUMER_H
#define CRM_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "router.h"

struct consumer;

/* Running totals, for logs, tests and (later) metrics. Main-loop thread only. */
struct consumer_stats {
    uint64_t messages;       /* messages taken from Kafka and routed */
    uint64_t ok;             /* handled */
    uint64_t skipped;        /* unknown type under the skip policy */
    uint64_t dead_letters;   /* permanent failures */
    uint64_t retries;        /* transient failures (each schedules a retry) */
    uint64_t dropped;        /* polled but released unhandled because a rebalance revoked them */
    uint64_t assigns;        /* rebalance callbacks that added partitions */
    uint64_t revokes;        /* rebalance callbacks that took partitions away */
    uint64_t lost;           /* of which the partitions were lost (nothing committed) */
    uint64_t commits_ok;     /* offset commits acknowledged (automatic and explicit) */
    uint64_t commits_failed; /* offset commits that failed */
    int assigned;            /* partitions assigned now */
    int paused;              /* partitions paused now (waiting out a retry backoff) */
};

/*
 * Create the consumer and subscribe to cfg->kafka.topics; the router decides
 * each message's outcome. cfg and router must outlive the consumer. Returns
 * NULL with a reason in err on failure. Joining the group happens on the
 * first consumer_poll() calls.
 */
struct consumer *consumer_new(const struct config *cfg, struct router *router, char *err,
                              size_t errlen);

/*
 * Poll one batch (up to processing.batch_size messages, or what arrives within
 * processing.batch_timeout_ms), route each message, then store the offsets of
 * the handled ones. Returns the number of messages routed, or a negative errno
 * when librdkafka raised a fatal error (-ENOTRECOVERABLE) and the caller must
 * shut down.
 */
int consumer_poll(struct consumer *c);

/*
 * Graceful shutdown: commit the stored offsets synchronously, then leave the
 * group with rd_kafka_consumer_close(), the whole bounded by
 * processing.shutdown_timeout_s. Returns 0, or -ETIMEDOUT when the deadline
 * cut it short (what was committed stays committed), or -EIO when the final
 * commit failed.
 */
int consumer_close(struct consumer *c);

/* Destroy the handle (call consumer_close first for a clean leave). Takes NULL; returns NULL. */
struct consumer *consumer_free(struct consumer *c);

/* The running totals. */
const struct consumer_stats *consumer_stats(const struct consumer *c);

/* The librdkafka handle, for tests and diagnostics; owned by the consumer. */
struct rd_kafka_s *consumer_handle(struct consumer *c);

#endif
