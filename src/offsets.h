/* SPDX-License-Identifier: MIT */
/* offsets.h -- what the consumer stores and commits: offsets of inputs whose outputs are all in. */
#ifndef CRM_OFFSETS_H
#define CRM_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "telemetry.h"

/*
 * Offsets are stored by hand (enable.auto.offset.store=false) and committed
 * by librdkafka's automatic commit, by offsets_commit() on revoke and
 * shutdown, and by offsets_commit_idle() when the consumer has caught up.
 * Counts every commit's result in tm. Main-loop thread only.
 */
struct offsets;

/* For the consumer rk (which must outlive it); NULL when out of memory. */
struct offsets *offsets_new(rd_kafka_t *rk, struct telemetry *tm);

/* Note the next offset to store for a partition; offsets_store() stores them. */
void offsets_add(struct offsets *o, const char *topic, int32_t partition, int64_t next);

/*
 * Store what was added, in one call: a partition no longer assigned is
 * skipped (its new owner redoes it), any other refusal logged.
 */
void offsets_store(struct offsets *o);

/*
 * Commit the stored offsets of the current assignment and wait for the
 * coordinator's answer until deadline (monotonic ms): rd_kafka_commit() would
 * wait without a bound when the coordinator is gone. 0 (also when nothing was
 * stored since the last commit), -ETIMEDOUT or -EIO.
 */
int offsets_commit(struct offsets *o, int64_t deadline);

/*
 * Commit what is stored, asynchronously, once the consumer has caught up
 * (caught_up: its last wait found no message and nothing is in flight), at
 * most once a second. The result comes to offsets_committed().
 */
void offsets_commit_idle(struct offsets *o, bool caught_up);

/* The result of an asynchronous or automatic commit (the consumer's offset_commit_cb). */
void offsets_committed(struct offsets *o, rd_kafka_resp_err_t err);

/* Commits acknowledged, and failed. */
uint64_t offsets_commits_ok(const struct offsets *o);
uint64_t offsets_commits_failed(const struct offsets *o);

/* Free; takes NULL; returns NULL. */
struct offsets *offsets_free(struct offsets *o);

#endif
