/* SPDX-License-Identifier: MIT */
/* partitions.h -- the consumer's assigned partitions: their windows, pauses, rewinds and retries.
 */
#ifndef CRM_PARTITIONS_H
#define CRM_PARTITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "fetchwatch.h"
#include "telemetry.h"
#include "window.h"

/*
 * One assigned partition. Its window holds the messages handled and not yet
 * done, in offset order (see window.h). A failure (`failing`) stops the
 * partition taking new messages; once everything before the failed message
 * is done, the window is cut there, the partition is sought back to it and
 * paused for the backoff (partitions_rewind()). Known to consumer.c and
 * partitions.c only.
 */
struct part {
    char *topic;
    int32_t partition;
    size_t topic_index; /* in cfg->kafka.topics, for the metrics */
    struct window win;
    struct fetch_part fetch;  /* what the fetch watch knows of it */
    struct metric *record_ts; /* its last stored record's timestamp, for the metrics */
    int64_t done_ts;          /* the record timestamp of the last input done, ms (<= 0: none) */
    bool failing;
    bool paused;  /* paused for its own retry (the holds below are separate) */
    bool held;    /* paused in librdkafka now, for whichever reason */
    int attempts; /* consecutive failures of the message at attempt_offset */
    int64_t attempt_offset;
    int64_t retry_at;   /* offset to seek back to before resuming, -1 if none pending */
    int64_t refused_at; /* a message whose output the broker refused, or -1 */
    bool refused_alone; /* ... and refused again when sent alone: dead-letter it */
    int refused_shrink; /* what to leave out of its dead letter (see deadletter.h) */
    rd_kafka_resp_err_t refused_err;
    int64_t resume_at; /* monotonic milliseconds; 0 while waiting for the window to drain */
};

/* The table, and the holds that pause every partition. Main-loop thread only. */
struct partitions {
    rd_kafka_t *rk;
    const struct config *cfg;
    struct telemetry *tm;
    struct window_pool *pool;
    struct part **parts;
    size_t n, cap;
    size_t last; /* index of the last partition looked up: messages come in runs */
    bool hold_flow, hold_breaker, hold_caller;
    uint64_t retries;
};

/* An empty table for the consumer rk; rk, cfg, tm and pool must outlive it. */
void partitions_init(struct partitions *ps, rd_kafka_t *rk, const struct config *cfg,
                     struct telemetry *tm, struct window_pool *pool);

/* Forget every partition (their tokens are let go) and free the table. */
void partitions_fini(struct partitions *ps);

/* The partition, or NULL when it is not assigned. */
struct part *partitions_find(struct partitions *ps, const char *topic, int32_t partition);

/* Add a partition (nothing if it is there). Returns it, or NULL when out of memory. */
struct part *partitions_add(struct partitions *ps, const char *topic, int32_t partition);

/* Remove the i-th partition; its tokens are let go (their reports still come). */
void partitions_remove(struct partitions *ps, size_t i);

/* The partition a token belongs to, or NULL once it was let go. */
struct part *partitions_of(struct window_token *t);

/*
 * Make librdkafka's pause of p match ours: paused when its retry or any hold
 * holds it. force: say so to librdkafka even if it seems to agree.
 */
void partitions_sync_pause(struct partitions *ps, struct part *p, bool force);
void partitions_sync_pause_all(struct partitions *ps);

/* How many partitions are paused now. */
int partitions_paused(const struct partitions *ps);

/* The backoff before attempt `attempts` of a message (retry settings). */
int64_t partitions_backoff_ms(const struct config *cfg, int attempts);

/*
 * Pause p, seek it back to `offset` and resume after the backoff, so the
 * message at offset and everything after it come again. Returns the wait.
 */
int64_t partitions_retry_from(struct partitions *ps, struct part *p, int64_t offset);

/*
 * The failed message t is at the head of p's window: everything before it
 * is stored. Cut the window there and retry from t, and log why; nothing is
 * skipped.
 */
void partitions_rewind(struct partitions *ps, struct part *p, struct window_token *t);

/* Resume the partitions whose backoff is over, seeking them back first. */
void partitions_resume_due(struct partitions *ps);

/*
 * Before a hold ends: each partition is sought back to the first message it
 * fetched and did not handle while held, so nothing is skipped.
 */
void partitions_seek_back_held(struct partitions *ps);

#endif
