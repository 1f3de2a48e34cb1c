/* SPDX-License-Identifier: MIT */
/* dlq.h -- the dead-letter topic read back: its crm.* headers, and --dlq-stats. */
#ifndef CRM_DLQ_H
#define CRM_DLQ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "window.h"

/* What a dead letter's crm.* headers say (see deadletter.h). */
struct dead_letter {
    char cls[32];
    char reason[256];
    char type[64];
    char topic[256]; /* crm.source.topic */
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* crm.source.timestamp; -1 when absent */
    char failed_at[48];
    bool has_source; /* topic, partition and offset all present and readable */
    bool omitted;    /* its value was left out (crm.value.omitted_bytes) */
    char omitted_bytes[24];
};

/* One partition of the dead-letter topic being read. */
struct dlq_part {
    int32_t id;
    int64_t start, end; /* read [start, end): end is the high watermark when reading began */
    bool done;
    struct window win; /* replay: dead letters handled, waiting for their outputs */
    int64_t commit;    /* replay: the offset to commit next, or -1 */
};

/* The dead-letter topic, assigned partition by partition (no subscription, no rebalance). */
struct dlq {
    rd_kafka_t *rk;
    const char *topic;
    size_t n;
    struct dlq_part *parts;
    bool committing; /* the consumer has a group.id whose offsets are read and committed */
};

/* Read m's crm.* headers into d, each bounded and checked. */
void dlq_letter_read(const rd_kafka_message_t *m, struct dead_letter *d);

/* s made safe to print into out: bytes that are not UTF-8, and control characters, become '?'. */
const char *dlq_printable(const char *s, char *out, size_t len);

/* f(arg) with the daemon's signals blocked, so that the threads librdkafka starts never take them.
 */
void *dlq_unsignalled(void *(*f)(void *), void *arg);

/*
 * Open the dead-letter topic of cfg for reading, partition by partition up
 * to its end at this moment: from the group's committed offsets when group is
 * not NULL (a replay's progress), else from the beginning; since_ms >= 0
 * starts each partition at the first record of that time or later. Returns
 * an exit status (EX_OK, or one said on standard error: the topic missing,
 * no brokers), path naming the file in messages.
 */
int dlq_open(struct dlq *d, const struct config *cfg, const char *path, const char *group,
             int64_t since_ms);

/* Whether every partition was read to its end. */
bool dlq_done(const struct dlq *d);

/*
 * The next record, waiting at most timeout_ms: NULL when none came; *part
 * says its partition, *fatal that librdkafka cannot go on.
 */
rd_kafka_message_t *dlq_next(struct dlq *d, int timeout_ms, struct dlq_part **part, bool *fatal);

/* Close the reader and free d's partitions. */
void dlq_close(struct dlq *d);

/*
 * --dlq-stats: read output.dlq_topic from its beginning to its end as it is
 * now, outside any consumer group, and print to standard output the counts
 * by class, the most frequent reasons, the oldest and newest failed_at, and
 * the counts by source topic. `path` is the configuration file, for
 * messages. Returns an exit status (sysexits.h); errors are logged.
 */
int dlq_stats(const struct config *cfg, const char *path, volatile sig_atomic_t *quit);

#endif
