/* SPDX-License-Identifier: MIT */
/* fetchwatch.h -- librdkafka 2.0's fetchers: woken as the prefetch drains, restarted if stalled. */
#ifndef CRM_FETCHWATCH_H
#define CRM_FETCHWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "telemetry.h"

/*
 * The workarounds for how Debian 12's librdkafka (2.0.2) fetches, in one
 * place: its fetchers stop at the prefetch limit and look again only when
 * their thread next wakes (fetchwatch_wake() wakes them), and a partition
 * can stop being fetched with no error said (fetchwatch_tick() notices and
 * fetches it again). Main-loop thread only.
 */
struct fetchwatch;

/* What the watch knows of one assigned partition; kept by the consumer. */
struct fetch_part {
    const char *topic;
    int32_t partition;
    bool busy;           /* held, failing or being rewound by the consumer: not judged */
    int64_t delivered;   /* the offset after the last message delivered, or -1 */
    int64_t watched;     /* delivered as the watch last saw it */
    int64_t quiet_since; /* since when (monotonic ms) it should have delivered and has not */
};

/* The consumer's i-th partition, for the functions below. */
typedef struct fetch_part *(*fetch_part_at)(void *opaque, size_t i);

/* A fresh partition's state. */
void fetchwatch_part_init(struct fetch_part *fp, const char *topic, int32_t partition);

/* For the consumer rk, which must outlive it. NULL when out of memory. */
struct fetchwatch *fetchwatch_new(rd_kafka_t *rk, const struct config *cfg, struct telemetry *tm);

/* A batch of n messages, bytes of payload in all, was taken: for the prefetch estimate. */
void fetchwatch_taken(struct fetchwatch *fw, size_t n, int64_t bytes);

/*
 * Before taking messages: when the prefetched queue has been near a limit
 * and has drained to a quarter of that peak, wake the leaders of the n
 * partitions so that they fetch again at once.
 */
void fetchwatch_wake(struct fetchwatch *fw, size_t n, fetch_part_at at, void *opaque);

/*
 * Once a second at most: fetch again a partition that nothing of the
 * consumer's holds and that has delivered nothing for
 * processing.stall_timeout_s though messages wait (or, having delivered
 * nothing since its assignment, had no fetch answered), while the loop took
 * everything else fetched.
 */
void fetchwatch_tick(struct fetchwatch *fw, size_t n, fetch_part_at at, void *opaque);

/*
 * A consume-level error the fetch gave instead of a message: counted, and
 * logged once (then every 1000th time) while it repeats at the same place,
 * as a batch that cannot be decompressed does. Returns true when it is fatal.
 */
bool fetchwatch_error(struct fetchwatch *fw, const rd_kafka_message_t *m);

/* Wake-ups made, and stalled partitions fetched again. */
uint64_t fetchwatch_wakeups(const struct fetchwatch *fw);
uint64_t fetchwatch_stalls(const struct fetchwatch *fw);

/* Free; takes NULL; returns NULL. */
struct fetchwatch *fetchwatch_free(struct fetchwatch *fw);

#endif
