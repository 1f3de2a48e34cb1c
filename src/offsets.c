/* SPDX-License-Identifier: MIT */
/* offsets.c -- what the consumer stores and commits: offsets of inputs whose outputs are all in. */
#include "offsets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

/* The shortest time between two commits made because the consumer caught up. */
#define IDLE_COMMIT_EVERY_MS 1000

struct offsets {
    rd_kafka_t *rk;
    struct telemetry *tm;
    rd_kafka_queue_t *replies; /* of offsets_commit() */
    uintptr_t seq;             /* tells this commit's reply from a late one */
    rd_kafka_topic_partition_list_t *pending;
    bool uncommitted;             /* stored since the last idle commit */
    int64_t idle_at;              /* when the last idle commit was made */
    rd_kafka_resp_err_t last_err; /* the last automatic commit's error, to log a run once */
    uint64_t failures_in_row;
    uint64_t ok, failed;
};

struct offsets *offsets_new(rd_kafka_t *rk, struct telemetry *tm)
{
    struct offsets *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->rk = rk;
    o->tm = tm;
    o->replies = rd_kafka_queue_new(rk);
    if (!o->replies) {
        free(o);
        return NULL;
    }
    return o;
}

void offsets_add(struct offsets *o, const char *topic, int32_t partition, int64_t next)
{
    if (!o->pending)
        o->pending = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_list_add(o->pending, topic, partition)->offset = next;
}

void offsets_store(struct offsets *o)
{
    rd_kafka_topic_partition_list_t *l = o->pending;
    rd_kafka_resp_err_t err;

    if (!l)
        return;
    o->pending = NULL;
    err = rd_kafka_offsets_store(o->rk, l);
    o->uncommitted = true;
    /* _STATE for a partition means it is no longer assigned: its new owner redoes it. */
    for (int i = 0; err && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];

        if (tp->err && tp->err != RD_KAFKA_RESP_ERR__STATE)
            log_warnx("%s [%" PRId32 "]: storing offset %" PRId64 ": %s", tp->topic, tp->partition,
                      tp->offset, rd_kafka_err2str(tp->err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void count(struct offsets *o, bool ok)
{
    if (ok)
        o->ok++;
    else
        o->failed++;
    telemetry_commit(o->tm, ok);
}

int offsets_commit(struct offsets *o, int64_t deadline)
{
    uintptr_t seq = ++o->seq;
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(o->rk, NULL, o->replies, NULL, (void *)seq);

    while (!err) {
        int64_t left = deadline - clock_mono_ms();
        rd_kafka_event_t *ev;

        if (left <= 0) {
            log_warnx("offset commit: no answer from the group coordinator in time");
            count(o, false);
            return -ETIMEDOUT;
        }
        ev = rd_kafka_queue_poll(o->replies, left > 1000000 ? 1000000 : (int)left);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT ||
            (uintptr_t)rd_kafka_event_opaque(ev) != seq) {
            rd_kafka_event_destroy(ev); /* the late answer to an abandoned commit */
            continue;
        }
        err = rd_kafka_event_error(ev);
        rd_kafka_event_destroy(ev);
        if (!err) {
            count(o, true);
            return 0;
        }
    }
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0; /* nothing stored since the last commit */
    log_warnx("offset commit: %s", rd_kafka_err2str(err));
    count(o, false);
    return -EIO;
}

/*
 * Automatic commits alone leave the group up to auto.commit.interval.ms
 * behind a backlog just drained, and a restart in that time handles those
 * inputs again. Once a second at most, so that a trickle of messages is not
 * a stream of commits.
 */
void offsets_commit_idle(struct offsets *o, bool caught_up)
{
    rd_kafka_resp_err_t err;
    int64_t now;

    if (!caught_up || !o->uncommitted)
        return;
    now = clock_mono_ms();
    if (o->idle_at && now - o->idle_at < IDLE_COMMIT_EVERY_MS)
        return;
    o->idle_at = now;
    o->uncommitted = false;
    err = rd_kafka_commit(o->rk, NULL, 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_debug("offset commit when idle: %s", rd_kafka_err2str(err));
}

void offsets_committed(struct offsets *o, rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    count(o, !err);
    if (err) {
        /* One line per kind of failure in a row, not one per auto.commit.interval.ms. */
        if (err != o->last_err)
            log_warnx("automatic offset commit: %s", rd_kafka_err2str(err));
        else
            log_debug("automatic offset commit: %s", rd_kafka_err2str(err));
        o->last_err = err;
        o->failures_in_row++;
    } else {
        if (o->failures_in_row > 1)
            log_notice("automatic offset commits succeed again, after %" PRIu64 " failures",
                       o->failures_in_row);
        o->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
        o->failures_in_row = 0;
    }
}

uint64_t offsets_commits_ok(const struct offsets *o)
{
    return o->ok;
}

uint64_t offsets_commits_failed(const struct offsets *o)
{
    return o->failed;
}

struct offsets *offsets_free(struct offsets *o)
{
    if (!o)
        return NULL;
    if (o->pending)
        rd_kafka_topic_partition_list_destroy(o->pending);
    rd_kafka_queue_destroy(o->replies);
    free(o);
    return NULL;
}
