/* SPDX-License-Identifier: MIT */
/* consumer.c -- the Kafka consumer: subscribe, rebalance, poll batches, track outputs, store
 * offsets. */
#include "consumer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "breaker.h"
#include "kafka.h"
#include "log.h"
#include "publisher.h"
#include "telemetry.h"

/* How long one seek may take before the retry falls back to trying again later. */
#define SEEK_TIMEOUT_MS 5000

/* How long the loop may take no messages, waiting for acknowledgements, before it pauses. */
#define FLOW_HOLD_MS 1000
/* How often the stall watch (see watch_stalls()) looks at the partitions. */
#define WATCH_EVERY_MS 1000
/* The longest the stall watch waits for a partition's committed offset. */
#define COMMITTED_TIMEOUT_MS 2000

/* How long sending a refused message's outputs alone may wait for the queue to drain. */
#define PROBE_FLUSH_MS 10000

/*
 * While outputs are in flight the loop waits for messages at most this long,
 * so that their delivery reports (which arrive on the producer's queue, not
 * the one the wait is on) are served, and their offsets stored, promptly.
 */
#define ACK_SERVE_MS 5
/* The shortest time between two commits made because the loop went idle. */
#define IDLE_COMMIT_EVERY_MS 1000

/* Tokens are allocated this many at a time and recycled: no allocation per message. */
#define TOKEN_CHUNK 1024

/*
 * One handled input message whose offset is not stored yet: it waits for
 * `pending` outputs (or its dead letter) to be acknowledged. Tokens of a
 * partition form its window, in offset order. A token outlives its
 * partition's interest in it when the partition is revoked or rewound
 * (`part` is then NULL); it is recycled when its last report arrives.
 */
struct token {
    struct part *part;
    struct token *next;
    int64_t offset;
    int pending;
    uint32_t trial; /* the breaker's trial number when it was handled */
    bool failed;
    bool refused;            /* the broker refused an output for good (its size) */
    bool dead_letter;        /* its output is its dead letter */
    bool backpressure;       /* it failed only because the producer's queue was full */
    int shrink;              /* what its dead letter left out: see dead_letter() */
    rd_kafka_resp_err_t err; /* the first delivery error, for the log */
};

struct token_chunk {
    struct token_chunk *next;
    struct token tokens[TOKEN_CHUNK];
};

/*
 * State of one assigned partition. The window's done prefix moves `next`,
 * the offset to store. A failure (`failing`) stops the partition taking new
 * messages; once everything before the failed message is done, the window is
 * cut there, the partition is sought back to it and paused for the backoff.
 */
struct part {
    char *topic;
    int32_t partition;
    size_t topic_index; /* in cfg->kafka.topics, for the metrics */
    struct token *head, *tail;
    int64_t next;
    bool failing;
    bool paused;  /* paused by us for a retry (flow control and the breaker are separate) */
    bool held;    /* paused in librdkafka now, for whichever reason */
    int attempts; /* consecutive failures of the message at attempt_offset */
    int64_t attempt_offset;
    int64_t retry_at;   /* offset to seek back to before resuming, -1 if none pending */
    int64_t refused_at; /* a message whose output the broker refused, or -1 */
    bool refused_alone; /* ... and refused again when sent alone: dead-letter it */
    int refused_shrink; /* what to leave out of its dead letter (see dead_letter()) */
    rd_kafka_resp_err_t refused_err;
    int64_t resume_at;   /* monotonic milliseconds; 0 while waiting for the window to drain */
    int64_t delivered;   /* the offset after the last message librdkafka gave us, or -1 */
    int64_t watched;     /* delivered as the stall watch last saw it */
    int64_t quiet_since; /* since when, monotonic ms, p should have delivered and has not */
};

struct consumer {
    const struct config *cfg;
    struct router *router;
    struct telemetry *tm;
    struct publisher *pub;
    struct emitter emitter;
    struct token *current; /* the message being routed, for emit() */
    rd_kafka_t *rk;
    rd_kafka_queue_t *commitq; /* replies of bounded synchronous commits */
    rd_kafka_queue_t *fetched; /* the consumer queue, to see how much is prefetched */
    int64_t prefetch_msgs;     /* librdkafka's limits on it: queued.min.messages */
    int64_t prefetch_bytes;    /* and queued.max.messages.kbytes, in bytes */
    int64_t msg_bytes;         /* a recent message's payload size, on average */
    int64_t queued_peak;       /* the longest the queue has been since the fetchers were woken */
    int64_t woke_at;           /* when they were, monotonic ms */
    rd_kafka_queue_t *closeq;  /* events of a close in progress */
    uintptr_t commit_seq;      /* tells this commit's reply from a late one */
    rd_kafka_message_t **batch;
    size_t nbatch;
    struct part **parts;
    size_t nparts;
    size_t capparts;
    size_t last; /* index of the last partition looked up: messages come in runs */
    struct token *free_tokens;
    struct token_chunk *chunks;
    bool flow_paused;   /* every partition paused: too many messages in flight for too long */
    int64_t flow_since; /* when the loop stopped taking messages for that reason, or 0 */
    bool queue_full;    /* the producer refused an output: wait for its queue to drain */
    int queue_resume;   /* producer queue length at which a queue-full pause ends */
    struct breaker breaker;
    bool breaker_hold; /* every partition paused by the breaker: open, or its trial is done */
    uint32_t trial;    /* counts half-open trials: tokens of earlier ones do not decide */
    bool cooperative;  /* the rebalance protocol, cached at assign time */
    bool fatal;
    bool closed;            /* rd_kafka_consumer_close finished */
    int64_t deadline;       /* for work done from rebalance callbacks while closing */
    double max_poll_s;      /* max.poll.interval.ms: a handler that long has cost us the group */
    bool uncommitted;       /* offsets stored since the last idle commit */
    bool idle;              /* the last wait for messages found none */
    int64_t idle_commit_at; /* when the last idle commit was made, monotonic ms */
    rd_kafka_resp_err_t commit_err; /* the last automatic commit's error, to log a run once */
    uint64_t commit_failures;       /* automatic commits failed in a row */
    struct {
        rd_kafka_resp_err_t err;
        const rd_kafka_topic_t *rkt; /* compared only, never used */
        int32_t partition;
        int64_t offset;
        uint64_t repeats;
    } last_error;         /* the last consume error logged, to log a repeating one once */
    int64_t watch_at;     /* the stall watch's next look, monotonic ms; 0 before the first */
    bool fetched_drained; /* the prefetched queue was empty at its last look */
    struct consumer_stats stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();

    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}

static struct part *find_part(struct consumer *c, const char *topic, int32_t partition)
{
    struct part *p;

    if (c->last < c->nparts) {
        p = c->parts[c->last];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    }
    for (size_t i = 0; i < c->nparts; i++) {
        p = c->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            c->last = i;
            return p;
        }
    }
    return NULL;
}

static struct token *token_get(struct consumer *c)
{
    struct token *t = c->free_tokens;

    if (!t) {
        struct token_chunk *chunk = malloc(sizeof(*chunk));

        if (!chunk)
            return NULL;
        chunk->next = c->chunks;
        c->chunks = chunk;
        for (size_t i = 0; i < TOKEN_CHUNK; i++) {
            chunk->tokens[i].next = c->free_tokens;
            c->free_tokens = &chunk->tokens[i];
        }
        t = c->free_tokens;
    }
    c->free_tokens = t->next;
    memset(t, 0, sizeof(*t));
    return t;
}

static void token_put(struct consumer *c, struct token *t)
{
    t->next = c->free_tokens;
    c->free_tokens = t;
}

/* Let go of t and every token after it: their reports still come, and recycle them. */
static void orphan_from(struct consumer *c, struct part *p, struct token *t)
{
    struct token **link = &p->head;

    while (*link && *link != t)
        link = &(*link)->next;
    *link = NULL;
    p->tail = NULL;
    for (struct token *prev = p->head; prev; prev = prev->next)
        p->tail = prev;
    while (t) {
        struct token *next = t->next;

        t->part = NULL;
        c->stats.in_flight--;
        if (t->pending == 0)
            token_put(c, t);
        t = next;
    }
}

static int add_part(struct consumer *c, const char *topic, int32_t partition)
{
    struct part *p;

    if (find_part(c, topic, partition))
        return 0;
    if (c->nparts == c->capparts) {
        size_t cap = c->capparts ? c->capparts * 2 : 16;
        struct part **grown = realloc(c->parts, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        c->parts = grown;
        c->capparts = cap;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return -ENOMEM;
    }
    p->partition = partition;
    p->topic_index = telemetry_topic_index(c->tm, topic);
    p->next = -1;
    p->retry_at = -1;
    p->refused_at = -1;
    p->attempt_offset = -1;
    p->delivered = -1;
    p->watched = -1;
    c->parts[c->nparts++] = p;
    return 0;
}

static void remove_part(struct consumer *c, size_t i)
{
    struct part *p = c->parts[i];

    if (p->head)
        orphan_from(c, p, p->head);
    free(p->topic);
    free(p);
    c->parts[i] = c->parts[--c->nparts];
    c->last = 0;
}

/* A one-partition list, for pause, resume and seek. */
static rd_kafka_topic_partition_list_t *one_part(const struct part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
    return l;
}

/*
 * Three things pause a partition: its own retry (p->paused), flow control
 * and the circuit breaker (both for every partition). It fetches only when
 * none of them holds it; this makes librdkafka's state match.
 */
static void sync_pause(struct consumer *c, struct part *p, bool force)
{
    bool want = p->paused || c->flow_paused || c->breaker_hold;
    rd_kafka_topic_partition_list_t *l;

    if (want == p->held && !force)
        return;
    l = one_part(p, RD_KAFKA_OFFSET_INVALID);
    if (want)
        rd_kafka_pause_partitions(c->rk, l);
    else
        rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    p->held = want;
}

static void sync_pause_all(struct consumer *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        sync_pause(c, c->parts[i], false);
}

/* "crm.inbound[0,1,2] crm.other[4]"-style summary for logs, cut with "..." when long. */
static void describe(const rd_kafka_topic_partition_list_t *l, char *buf, size_t len)
{
    size_t used = 0;

    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        bool same = i > 0 && strcmp(l->elems[i - 1].topic, tp->topic) == 0;
        int n;

        if (same)
            n = snprintf(buf + used, len - used, ",%" PRId32, tp->partition);
        else
            n = snprintf(buf + used, len - used, "%s%s[%" PRId32, i ? "] " : "", tp->topic,
                         tp->partition);
        /* Keep one byte for the closing bracket. */
        if (n < 0 || (size_t)n >= len - used - 1) {
            memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
    snprintf(buf + used, len - used, "%s", l->cnt ? "]" : "(none)");
}

/*
 * Commit the stored offsets of the current assignment and wait for the
 * broker's answer until `deadline`. rd_kafka_commit() would wait without a
 * bound when the coordinator is gone; this waits on a queue of our own.
 */
static int commit_sync(struct consumer *c, int64_t deadline)
{
    uintptr_t seq = ++c->commit_seq;
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(c->rk, NULL, c->commitq, NULL, (void *)seq);

    while (!err) {
        int wait = remaining_ms(deadline);
        rd_kafka_event_t *ev;

        if (wait == 0) {
            log_warnx("offset commit: no answer from the group coordinator in time");
            c->stats.commits_failed++;
            telemetry_commit(c->tm, false);
            return -ETIMEDOUT;
        }
        ev = rd_kafka_queue_poll(c->commitq, wait);
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
            c->stats.commits_ok++;
            telemetry_commit(c->tm, true);
            return 0;
        }
    }
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0; /* nothing stored since the last commit */
    log_warnx("offset commit: %s", rd_kafka_err2str(err));
    c->stats.commits_failed++;
    telemetry_commit(c->tm, false);
    return -EIO;
}

static int64_t backoff_ms(const struct config *cfg, int attempts)
{
    int64_t ms = cfg->retry.initial_backoff_ms;

    for (int i = 1; i < attempts && ms < cfg->retry.max_backoff_ms; i++)
        ms *= 2;
    return ms > cfg->retry.max_backoff_ms ? cfg->retry.max_backoff_ms : ms;
}

/* Store the offsets that moved since the last call: one call for every partition. */
static void store_offsets(struct consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = c->parts[i];

        if (p->next < 0)
            continue;
        if (!l)
            l = rd_kafka_topic_partition_list_new((int)c->nparts);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next;
        p->next = -1;
    }
    if (!l)
        return;
    err = rd_kafka_offsets_store(c->rk, l);
    c->uncommitted = true;
    /* _STATE for a partition means it is no longer assigned: its new owner redoes it. */
    for (int i = 0; err && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];

        if (tp->err && tp->err != RD_KAFKA_RESP_ERR__STATE)
            log_warnx("%s [%" PRId32 "]: storing offset %" PRId64 ": %s", tp->topic, tp->partition,
                      tp->offset, rd_kafka_err2str(tp->err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Seek p back to its failed message. Returns 0, or -EAGAIN to try again at resume time. */
static int seek_back(struct consumer *c, struct part *p)
{
    rd_kafka_topic_partition_list_t *l = one_part(p, p->retry_at);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, SEEK_TIMEOUT_MS);
    const char *why = NULL;

    if (error)
        why = rd_kafka_error_string(error);
    else if (l->elems[0].err)
        why = rd_kafka_err2str(l->elems[0].err);
    if (why)
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s; trying again later", p->topic,
                  p->partition, p->retry_at, why);
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(l);
    if (why)
        return -EAGAIN;
    p->delivered = p->retry_at;
    p->retry_at = -1;
    return 0;
}

/*
 * Pause p, seek it back to `offset` and resume after the backoff, so the
 * message at offset and everything after it come again. Returns the wait.
 */
static int64_t retry_from(struct consumer *c, struct part *p, int64_t offset)
{
    int64_t wait;

    if (p->attempt_offset == offset) {
        p->attempts++;
    } else {
        p->attempt_offset = offset;
        p->attempts = 1;
    }
    wait = backoff_ms(c->cfg, p->attempts);
    c->stats.retries++;
    telemetry_retry(c->tm);
    p->failing = false;
    p->paused = true;
    sync_pause(c, p, false);
    p->retry_at = offset;
    seek_back(c, p);
    p->resume_at = now_ms() + wait;
    return wait;
}

/*
 * The failed message t is at the head of p's window: everything before it is
 * stored. Cut the window there and retry from t; nothing is skipped.
 */
static void rewind_to(struct consumer *c, struct part *p, struct token *t)
{
    int64_t offset = t->offset, wait;
    rd_kafka_resp_err_t err = t->err;
    bool backpressure = t->backpressure;

    if (err)
        telemetry_message(c->tm, p->topic_index, MESSAGE_ERROR, 0);
    if (t->refused) {
        /*
         * The broker refuses a whole batch, and other messages' outputs may
         * have made it too big: first send this message's outputs alone. If
         * those are refused too, no retry can make them fit: when the message
         * comes again, it becomes a (smaller and smaller) dead letter.
         */
        if (p->refused_at == offset) {
            p->refused_alone = true;
            p->refused_shrink = !t->dead_letter ? 0 : t->shrink < 2 ? t->shrink + 1 : 2;
        } else {
            p->refused_at = offset;
            p->refused_alone = false;
            p->refused_shrink = 0;
        }
        p->refused_err = err;
    }
    orphan_from(c, p, t); /* t may be recycled from here on */
    wait = retry_from(c, p, offset);
    if (err)
        log_write(p->attempts >= c->cfg->retry.max_attempts ? LOG_ERR : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": an output was not acknowledged: %s "
                  "(attempt %d); retrying in %" PRId64 " ms",
                  p->topic, p->partition, offset, rd_kafka_err2str(err), p->attempts, wait);
    else
        log_write(backpressure                                ? LOG_INFO
                  : p->attempts >= c->cfg->retry.max_attempts ? LOG_ERR
                                                              : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": attempt %d failed; retrying in %" PRId64
                  " ms",
                  p->topic, p->partition, offset, p->attempts, wait);
}

static void count_paused(struct consumer *c)
{
    c->stats.paused = 0;
    for (size_t i = 0; i < c->nparts; i++)
        c->stats.paused += c->parts[i]->held;
    c->stats.assigned = (int)c->nparts;
}

static void breaker_changed(struct consumer *c)
{
    c->stats.breaker_state = (int)c->breaker.state;
    c->stats.breaker_opens = c->breaker.opens;
    telemetry_breaker(c->tm, c->breaker.state);
    count_paused(c);
}

/*
 * The breaker opened: hold every partition. What was handled stays tracked
 * (its outputs may still be acknowledged, or fail and rewind their partition);
 * what was fetched and not handled is sought back to when the trial starts.
 */
static void breaker_open(struct consumer *c, bool trial)
{
    c->breaker_hold = true;
    sync_pause_all(c);
    breaker_changed(c);
    if (trial)
        log_errx("circuit breaker open again: the trial failed; pausing %zu partition%s for "
                 "%" PRId64 " s",
                 c->nparts, c->nparts == 1 ? "" : "s", c->breaker.timeout_ms / 1000);
    else
        log_errx("circuit breaker open: %d failures in a row; pausing %zu partition%s for "
                 "%" PRId64 " s",
                 c->breaker.threshold, c->nparts, c->nparts == 1 ? "" : "s",
                 c->breaker.timeout_ms / 1000);
}

/*
 * Let the partitions go: each is first sought back to the first message it
 * fetched and did not handle while held, so nothing is skipped.
 */
static void breaker_release(struct consumer *c)
{
    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = c->parts[i];

        if (p->paused || p->retry_at < 0)
            continue; /* its own retry (with its own seek) is pending, or nothing skipped */
        if (seek_back(c, p) < 0) {
            p->paused = true;
            p->resume_at = now_ms() + backoff_ms(c->cfg, 1);
        }
    }
    c->breaker_hold = false;
    sync_pause_all(c);
    breaker_changed(c);
}

/* A message succeeded (ok) or failed transiently; t says which trial it belongs to. */
static void breaker_report(struct consumer *c, const struct token *t, bool ok)
{
    /* While half-open only the trial's own messages decide. */
    if (c->breaker.state == BREAKER_HALF_OPEN && t->trial != c->trial)
        return;
    if (ok) {
        if (breaker_success(&c->breaker)) {
            breaker_release(c);
            log_notice("circuit breaker closed: the trial succeeded; consuming again");
        }
    } else {
        bool trial = c->breaker.state == BREAKER_HALF_OPEN;

        if (breaker_failure(&c->breaker, now_ms()))
            breaker_open(c, trial);
    }
}

/* An open breaker's time is up: let one batch through. */
static void breaker_trial(struct consumer *c)
{
    c->trial++;
    breaker_release(c);
    log_notice("circuit breaker half-open: trying one batch");
}

/* Move p's done prefix into `next`; rewind when the head failed. */
static void advance(struct consumer *c, struct part *p)
{
    struct token *t;

    while ((t = p->head)) {
        if (t->failed) {
            rewind_to(c, p, t);
            return;
        }
        if (t->pending > 0)
            break;
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        p->next = t->offset + 1;
        if (t->offset == p->attempt_offset)
            p->attempts = 0; /* it went through at last */
        if (t->offset == p->refused_at) {
            p->refused_at = -1;
            p->refused_alone = false;
        }
        c->stats.in_flight--;
        breaker_report(c, t, true);
        token_put(c, t);
    }
    /* A failure further on: fetch nothing more until the rewind. */
    if (p->failing && !p->paused) {
        p->paused = true;
        sync_pause(c, p, false);
    }
}

static void advance_all(struct consumer *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        advance(c, c->parts[i]);
}

/* Delivery errors that no retry can cure: the broker will never take that record. */
static bool refused(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE;
}

/* A delivery report, served by publisher_poll() or publisher_flush() on this thread. */
static void on_ack(void *opaque, void *token, enum output_topic topic, rd_kafka_resp_err_t err)
{
    struct consumer *c = opaque;
    struct token *t = token;

    t->pending--;
    telemetry_output(c->tm, topic, !err);
    if (err) {
        c->stats.outputs_failed++;
        if (!t->failed) {
            t->failed = true;
            t->err = err;
            /* A broker that refuses a record's size is not failing: that record is at fault. */
            if (refused(err))
                t->refused = true;
            else
                breaker_report(c, t, false);
        }
        if (t->part)
            t->part->failing = true;
    } else {
        c->stats.outputs_ok++;
    }
    if (!t->part && t->pending == 0)
        token_put(c, t);
}

/* Backpressure, not a failure: pause until half the producer's queue is delivered. */
static void note_queue_full(struct consumer *c)
{
    if (c->queue_full)
        return;
    c->queue_full = true;
    c->queue_resume = publisher_in_flight(c->pub) / 2;
}

/* The handlers' emitter: every output is tied to the message being routed. */
static int emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                const void *value, size_t len, int64_t timestamp_ms)
{
    struct consumer *c = (struct consumer *)((char *)e - offsetof(struct consumer, emitter));
    int rc;

    /* --dry-run measures everything but the brokers' part: the output counts as acknowledged. */
    if (c->cfg->dry_run) {
        c->stats.outputs_ok++;
        telemetry_output(c->tm, topic, true);
        return 0;
    }
    rc = publisher_send(c->pub, topic, key, key_len, value, len, NULL, timestamp_ms, c->current);

    if (rc == 0) {
        c->current->pending++;
    } else if (rc == -ENOBUFS) {
        note_queue_full(c);
    }
    return rc;
}

/* Release the batch's unhandled messages of the partitions in l. */
static void drop_revoked(struct consumer *c, const rd_kafka_topic_partition_list_t *l)
{
    for (size_t i = 0; i < c->nbatch; i++) {
        rd_kafka_message_t *m = c->batch[i];

        if (m && rd_kafka_topic_partition_list_find(l, rd_kafka_topic_name(m->rkt), m->partition)) {
            rd_kafka_message_destroy(m);
            c->batch[i] = NULL;
            c->stats.dropped++;
        }
    }
}

static void on_assign(struct consumer *c, rd_kafka_topic_partition_list_t *l)
{
    char desc[512];

    c->cooperative = strcmp(rd_kafka_rebalance_protocol(c->rk), "COOPERATIVE") == 0;
    if (c->cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(c->rk, l);

        if (error) {
            log_errx("incremental assign: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            return;
        }
    } else {
        rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, l);

        if (err) {
            log_errx("assign: %s", rd_kafka_err2str(err));
            return;
        }
    }
    for (int i = 0; i < l->cnt; i++) {
        struct part *p;

        if (add_part(c, l->elems[i].topic, l->elems[i].partition) < 0) {
            log_errx("assign: out of memory; stopping");
            c->fatal = true;
            continue;
        }
        /*
         * A new partition joins the pauses in force (flow control, the
         * breaker), and one that comes back is resumed if none holds it:
         * librdkafka may remember a pause from its previous assignment.
         */
        if ((p = find_part(c, l->elems[i].topic, l->elems[i].partition)))
            sync_pause(c, p, true);
    }
    c->stats.assigns++;
    telemetry_rebalance(c->tm, REBALANCE_ASSIGN);
    count_paused(c);
    describe(l, desc, sizeof(desc));
    log_notice("assigned %d partition%s (%s): %s", l->cnt, l->cnt == 1 ? "" : "s",
               c->cooperative ? "cooperative" : "eager", desc);
}

static void on_revoke(struct consumer *c, rd_kafka_topic_partition_list_t *l)
{
    bool lost = rd_kafka_assignment_lost(c->rk);
    char desc[512];

    drop_revoked(c, l);
    describe(l, desc, sizeof(desc));
    if (lost) {
        /* Another member may own them already: a commit now could overwrite its progress. */
        c->stats.lost++;
        telemetry_rebalance(c->tm, REBALANCE_LOST);
        log_warnx("lost %d partition%s without a clean revoke; not committing: %s", l->cnt,
                  l->cnt == 1 ? "" : "s", desc);
    } else {
        int64_t deadline =
            c->deadline ? c->deadline : now_ms() + c->cfg->processing.shutdown_timeout_s * 1000;

        /* Wait for the outputs in flight, so what is done can be committed now. */
        if (publisher_flush(c->pub, remaining_ms(deadline)) < 0)
            log_warnx("revoke: outputs still unacknowledged; their messages will be redone");
        advance_all(c);
        store_offsets(c);
        commit_sync(c, deadline);
        log_notice("revoked %d partition%s: %s", l->cnt, l->cnt == 1 ? "" : "s", desc);
    }
    /* The protocol cached at assign time: during close 2.0.x may report it as NONE. */
    if (c->cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(c->rk, l);

        if (error) {
            log_errx("incremental unassign: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(c->rk, NULL);
    }
    for (size_t i = c->nparts; i-- > 0;) {
        const struct part *p = c->parts[i];

        /* Eager revokes everything: forget anything left. */
        if (!c->cooperative || rd_kafka_topic_partition_list_find(l, p->topic, p->partition))
            remove_part(c, i);
    }
    c->stats.revokes++;
    telemetry_rebalance(c->tm, REBALANCE_REVOKE);
    count_paused(c);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct consumer *c = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(c, l);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(c, l);
    } else {
        log_errx("rebalance failed: %s; dropping the assignment", rd_kafka_err2str(err));
        on_revoke(c, l);
    }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct consumer *c = opaque;

    (void)rk;
    (void)offsets;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err) {
        c->stats.commits_failed++;
        telemetry_commit(c->tm, false);
        /* One line per kind of failure in a row, not one per auto.commit.interval.ms. */
        if (err != c->commit_err)
            log_warnx("automatic offset commit: %s", rd_kafka_err2str(err));
        else
            log_debug("automatic offset commit: %s", rd_kafka_err2str(err));
        c->commit_err = err;
        c->commit_failures++;
    } else {
        c->stats.commits_ok++;
        telemetry_commit(c->tm, true);
        if (c->commit_failures > 1)
            log_notice("automatic offset commits succeed again, after %" PRIu64 " failures",
                       c->commit_failures);
        c->commit_err = RD_KAFKA_RESP_ERR_NO_ERROR;
        c->commit_failures = 0;
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_errx("kafka: fatal: %s", fatal);
        telemetry_fatal(c->tm, fatal);
        c->fatal = true;
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* Informational: librdkafka keeps reconnecting by itself. */
        log_warnx("kafka: all brokers are down; reconnecting");
    } else {
        log_warnx("kafka: %s: %s", rd_kafka_err2name(err), reason);
    }
}

/* librdkafka's statistics, every statistics.interval.ms, served by consumer_poll(). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct consumer *c = opaque;

    (void)rk;
    telemetry_stats(c->tm, json, len);
    return 0; /* librdkafka frees json */
}

/* Consume-level errors come as messages with err set; none of them carries data. */
static void consume_error(struct consumer *c, rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        /* Not fatal: the topic may be created later, and the subscription picks it up. */
        log_warnx("topic %s does not exist: create it, or fix kafka.topics; waiting for it",
                  m->rkt ? rd_kafka_topic_name(m->rkt) : "(unknown)");
        return;
    }
    telemetry_consume_error(c->tm);
    if (m->err == RD_KAFKA_RESP_ERR__FATAL)
        c->fatal = true;
    /*
     * The same error at the same place comes back at every fetch (a batch
     * librdkafka cannot decompress, say): log it once, then every 1000th time.
     */
    if (m->err == c->last_error.err && m->partition == c->last_error.partition &&
        m->offset == c->last_error.offset && m->rkt == c->last_error.rkt) {
        if (++c->last_error.repeats % 1000)
            return;
    } else {
        c->last_error.err = m->err;
        c->last_error.partition = m->partition;
        c->last_error.offset = m->offset;
        c->last_error.rkt = m->rkt;
        c->last_error.repeats = 0;
    }
    if (m->rkt)
        log_warnx("consume %s [%" PRId32 "] offset %" PRId64 ": %s%s", rd_kafka_topic_name(m->rkt),
                  m->partition, m->offset, rd_kafka_message_errstr(m),
                  c->last_error.repeats ? " (again, 1000 times)" : "");
    else
        log_warnx("consume: %s", rd_kafka_message_errstr(m));
}

/* An integer setting of the consumer's, as librdkafka has it; fallback when unreadable. */
static int64_t conf_int(rd_kafka_t *rk, const char *name, int64_t fallback)
{
    char buf[32];
    size_t len = sizeof(buf);
    char *end;
    long long v;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &len) != RD_KAFKA_CONF_OK)
        return fallback;
    v = strtoll(buf, &end, 10);
    return end != buf && *end == '\0' && v > 0 ? (int64_t)v : fallback;
}

/*
 * The consumer's defaults where the daemon's differ from librdkafka's, used
 * unless the operator sets the property in kafka.properties.
 *
 * Lag and broker states come from the statistics, so those are on.
 *
 * Prefetching: librdkafka stops fetching once the local queue holds
 * queued.min.messages records or queued.max.messages.kbytes, and (in 2.0,
 * Debian 12's) looks again only when its broker thread next wakes, up to a
 * second later, unless wake_fetchers() wakes it sooner. The queue is bounded
 * by bytes, not by librdkafka's 100,000 records (30 MB of messages of a few
 * hundred bytes, 100 MB of 1 KB ones): at 16 MiB it holds 55,000 messages of
 * `make bench`'s 305 bytes, about a quarter of a second of a dry run's work
 * and half a second of a full run's. With the wake-ups, 3 `make bench` runs at each size had
 * the same full-run rate at 8, 16 and 40 MiB (93,000-111,000 msgs/s), dry
 * runs at a median of 238,000, 278,000 and 219,000 msgs/s, and peak RSS of
 * 44-58, 63-83 and 106-121 MB: a queue that fits the caches is handled
 * faster. 16 MiB leaves more room than 8 for a broker farther away.
 */
static const struct kafka_default tuned[] = {
    {"statistics.interval.ms", NULL, "5000"},
    {"queued.min.messages", NULL, "1000000"},
    {"queued.max.messages.kbytes", NULL, "16384"},
};

rd_kafka_conf_t *consumer_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, RD_KAFKA_CONSUMER, err, errlen);

    /* At least once: only offsets we store are committed, and we store after the outputs. */
    if (conf &&
        (kafka_conf_set(conf, "group.id", cfg->kafka.group_id, err, errlen) < 0 ||
         kafka_conf_set(conf, "auto.offset.reset", cfg->kafka.auto_offset_reset, err, errlen) < 0 ||
         kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
         kafka_conf_set(conf, "enable.auto.commit", "true", err, errlen) < 0)) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    if (conf &&
        kafka_conf_defaults(conf, cfg, tuned, sizeof(tuned) / sizeof(tuned[0]), err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    return conf;
}

struct consumer *consumer_new(const struct config *cfg, struct router *router, struct telemetry *tm,
                              char *err, size_t errlen)
{
    struct consumer *c = calloc(1, sizeof(*c));
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_resp_err_t rerr;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->router = router;
    c->tm = tm;
    c->emitter.emit = emit;
    c->max_poll_s = config_max_poll_interval_ms(cfg) / 1000.0;
    breaker_init(&c->breaker, cfg->circuit_breaker.failure_threshold,
                 (int64_t)cfg->circuit_breaker.open_timeout_s * 1000);
    c->batch = calloc((size_t)cfg->processing.batch_size, sizeof(*c->batch));
    if (!c->batch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->pub = publisher_new(cfg, on_ack, c, err, errlen);
    if (!c->pub)
        goto fail;
    conf = consumer_conf_new(cfg, err, errlen);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    /* Serve errors, logs and commit results from consumer_poll(). */
    rd_kafka_poll_set_consumer(c->rk);
    c->fetched = rd_kafka_queue_get_consumer(c->rk);
    c->prefetch_msgs = conf_int(c->rk, "queued.min.messages", INT64_MAX / 4);
    c->prefetch_bytes = conf_int(c->rk, "queued.max.messages.kbytes", INT64_MAX / 4096) * 1024;
    c->commitq = rd_kafka_queue_new(c->rk);
    topics = rd_kafka_topic_partition_list_new((int)cfg->kafka.ntopics);
    for (size_t i = 0; i < cfg->kafka.ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->kafka.topics[i], RD_KAFKA_PARTITION_UA);
    rerr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    return c;
fail:
    consumer_free(c);
    return NULL;
}

/*
 * librdkafka stops fetching while the consumer queue holds
 * queued.max.messages.kbytes (or queued.min.messages) and, before 2.3 (or
 * with fetch.queue.backoff.ms left at its default after), decides again only
 * when the broker thread next wakes: up to a second later, however soon the
 * queue drains. Any request to a broker wakes its thread, which then sees
 * the queue short and fetches. So when the queue has been near a limit (half
 * of it or more: the fetchers have likely stopped) and has since drained to
 * a quarter of that peak, send every leader of our partitions one ListOffsets
 * request, by rd_kafka_offsets_for_times() with no wait (its answer is
 * dropped). In `make bench`'s dry run the loop's wait for messages fell
 * from 14-26% of the run to 0.10-0.14%.
 *
 * That is once per fill and drain of the queue while a backlog lasts, at most
 * every WAKE_INTERVAL_MS, and never while the daemon keeps up with its input,
 * the queue far from its limits. The queue's bytes are estimated from its
 * length and the payload sizes of recent messages.
 */
#define WAKE_INTERVAL_MS 50

static void wake_fetchers(struct consumer *c)
{
    int64_t queued = c->fetched ? rd_kafka_queue_length(c->fetched) : 0;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;
    int64_t now;

    if (queued > c->queued_peak)
        c->queued_peak = queued;
    if (c->queued_peak * 2 < c->prefetch_msgs &&
        c->queued_peak * c->msg_bytes * 2 < c->prefetch_bytes)
        return; /* never near a limit: the fetchers are fetching */
    if (queued > c->queued_peak / 4 || c->nparts == 0)
        return;
    now = now_ms();
    if (now - c->woke_at < WAKE_INTERVAL_MS)
        return;
    l = rd_kafka_topic_partition_list_new((int)c->nparts);
    if (!l)
        return;
    for (size_t i = 0; i < c->nparts; i++)
        rd_kafka_topic_partition_list_add(l, c->parts[i]->topic, c->parts[i]->partition)->offset =
            RD_KAFKA_OFFSET_END;
    /* Returns at once: _TIMED_OUT once the requests are sent, another error if some were not. */
    err = rd_kafka_offsets_for_times(c->rk, l, 0);
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT)
        log_debug("waking the fetchers: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
    c->queued_peak = queued;
    c->woke_at = now;
    c->stats.fetch_wakeups++;
    telemetry_fetch_wakeup(c->tm);
}

/*
 * Wait up to timeout_ms for a first message, then take what is already
 * queued, up to processing.batch_size: a message never waits for a batch to
 * fill, and a busy loop reads no clock per message. The wait is counted:
 * with a backlog it shows how long librdkafka's prefetch left the loop idle.
 */
static void fill_batch(struct consumer *c, int timeout_ms)
{
    size_t max = (size_t)c->cfg->processing.batch_size;
    int64_t bytes = 0;

    wake_fetchers(c);
    c->nbatch = 0;
    if (c->stats.in_flight > 0 && timeout_ms > ACK_SERVE_MS)
        timeout_ms = ACK_SERVE_MS;
    while (c->nbatch < max && !c->fatal) {
        bool waits = c->nbatch == 0 && timeout_ms != 0;
        uint64_t start = waits ? now_ns() : 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, c->nbatch ? 0 : timeout_ms);

        if (waits)
            telemetry_wait(c->tm, WAIT_MESSAGES, now_ns() - start);
        if (!m)
            break;
        if (m->err) {
            consume_error(c, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        c->batch[c->nbatch++] = m;
        bytes += (int64_t)m->len;
    }
    c->idle = c->nbatch == 0 && timeout_ms != 0;
    /* A moving average over batches, for wake_fetchers()'s estimate of the queue's bytes. */
    if (c->nbatch > 0 && c->msg_bytes == 0)
        c->msg_bytes = bytes / (int64_t)c->nbatch;
    else if (c->nbatch > 0)
        c->msg_bytes += (bytes / (int64_t)c->nbatch - c->msg_bytes) / 8;
}

static void resume_due(struct consumer *c)
{
    int64_t now = now_ms();

    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = c->parts[i];

        if (!p->paused || p->resume_at == 0 || p->resume_at > now)
            continue;
        if (p->retry_at >= 0 && seek_back(c, p) < 0) {
            p->resume_at = now + backoff_ms(c->cfg, p->attempts);
            continue;
        }
        p->paused = false;
        p->resume_at = 0;
        sync_pause(c, p, false);
    }
}

/*
 * Where p starts when it has delivered nothing since its assignment: its
 * committed offset, asked of the group's coordinator, or where
 * kafka.auto_offset_reset says if it has none. RD_KAFKA_OFFSET_INVALID when
 * that cannot be told (the coordinator does not answer, or the policy is
 * "error"). librdkafka's logical "stored" offset is no use here: a seek to
 * it leaves the partition unfetched.
 */
static int64_t start_offset(struct consumer *c, const struct part *p)
{
    rd_kafka_topic_partition_list_t *l = one_part(p, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t err = rd_kafka_committed(c->rk, l, COMMITTED_TIMEOUT_MS);
    int64_t offset;

    if (!err)
        err = l->elems[0].err;
    offset = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warnx("%s [%" PRId32 "]: its committed offset: %s", p->topic, p->partition,
                  rd_kafka_err2str(err));
        return RD_KAFKA_OFFSET_INVALID;
    }
    if (offset >= 0)
        return offset;
    if (strcmp(c->cfg->kafka.auto_offset_reset, "earliest") == 0)
        return RD_KAFKA_OFFSET_BEGINNING;
    if (strcmp(c->cfg->kafka.auto_offset_reset, "latest") == 0)
        return RD_KAFKA_OFFSET_END;
    return RD_KAFKA_OFFSET_INVALID;
}

/*
 * Resume p and seek it to the next offset not delivered, or to where it
 * starts if none was: for stall_timeout_s librdkafka has given none of its
 * waiting messages, or had no fetch of it answered, though nothing of ours
 * holds it. The resume is harmless if librdkafka already has p resumed; the
 * seek drops nothing and repeats nothing that was delivered.
 */
static void restart_fetch(struct consumer *c, struct part *p, int64_t hi, int64_t quiet_ms)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_error_t *error;
    const char *why = NULL;
    int64_t from;

    if (p->delivered >= 0)
        log_warnx("%s [%" PRId32 "]: nothing fetched for %" PRId64 " s though it is not paused "
                  "and offsets %" PRId64 " to %" PRId64 " wait; fetching it again from %" PRId64,
                  p->topic, p->partition, quiet_ms / 1000, p->delivered, hi - 1, p->delivered);
    else
        log_warnx("%s [%" PRId32 "]: no fetch answered for %" PRId64 " s since it was assigned, "
                  "though it is not paused; fetching it again from where it starts",
                  p->topic, p->partition, quiet_ms / 1000);
    c->stats.stalls++;
    telemetry_stall(c->tm);
    sync_pause(c, p, true);
    from = p->delivered >= 0 ? p->delivered : start_offset(c, p);
    if (from == RD_KAFKA_OFFSET_INVALID)
        return; /* resumed only */
    l = one_part(p, from);
    error = rd_kafka_seek_partitions(c->rk, l, SEEK_TIMEOUT_MS);
    if (error)
        why = rd_kafka_error_string(error);
    else if (l->elems[0].err)
        why = rd_kafka_err2str(l->elems[0].err);
    if (why)
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s", p->topic, p->partition, from, why);
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * The stall watch. librdkafka fetches every assigned partition that is not
 * paused; should it stop fetching one (a resume lost in its state, say), that
 * partition's messages would wait for ever while the others flow, and no
 * error would say so. Once a second, each partition nothing of ours holds is
 * quiet while its last fetch showed messages beyond those delivered (the
 * cached high watermark) and no more came, or, if it has delivered nothing
 * since its assignment, while no fetch of it has been answered at all (an
 * answer sets the high watermark, messages or none). After stall_timeout_s
 * of quiet it is fetched again, but only if the prefetched queue was empty
 * at this look and the one before: the loop has taken everything fetched,
 * so a partition behind a long queue or slow handlers is not taken for one
 * not fetched. If the loop was away longer than a look (a slow handler),
 * every quiet spell starts again.
 */
static void watch_stalls(struct consumer *c)
{
    int64_t now = now_ms(), stall_ms = (int64_t)c->cfg->processing.stall_timeout_s * 1000;
    bool away, drained, judge;

    if (stall_ms == 0 || now < c->watch_at)
        return;
    away = c->watch_at == 0 ||
           now - c->watch_at > WATCH_EVERY_MS + c->cfg->processing.batch_timeout_ms;
    drained = !c->fetched || rd_kafka_queue_length(c->fetched) == 0;
    judge = !away && drained && c->fetched_drained;
    c->watch_at = now + WATCH_EVERY_MS;
    c->fetched_drained = drained;
    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = c->parts[i];
        int64_t lo, hi;

        /* A partition being rewound comes again from its failed message: not judged. */
        if (away || p->quiet_since == 0 || p->held || p->failing || p->paused || p->retry_at >= 0 ||
            p->delivered != p->watched ||
            rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            (p->delivered >= 0 ? hi <= p->delivered : hi >= 0)) {
            p->watched = p->delivered;
            p->quiet_since = now;
            continue;
        }
        if (judge && now - p->quiet_since >= stall_ms) {
            restart_fetch(c, p, hi, now - p->quiet_since);
            p->quiet_since = now;
        }
    }
}

/*
 * Bound the messages in flight (handled, outputs not yet acknowledged). At
 * processing.max_in_flight, or when the producer's queue is full, the loop
 * takes no messages and waits for acknowledgements (librdkafka goes on
 * prefetching, within queued.max.messages.kbytes). Should that last longer
 * than FLOW_HOLD_MS, every partition is paused, so that the loop can serve
 * the group again without taking messages, until half of them are done.
 * Pausing is not the first resort: a resumed partition can wait about a
 * second for its next fetch. Nothing is dropped either way. Returns true
 * when the loop must take no messages this turn.
 */
static bool flow_control(struct consumer *c)
{
    uint64_t max = (uint64_t)c->cfg->processing.max_in_flight;
    bool queue_ok = !c->queue_full || publisher_in_flight(c->pub) <= c->queue_resume;
    int64_t now = now_ms();

    if (c->flow_paused) {
        if (c->stats.in_flight > max / 2 || !queue_ok)
            return true;
        c->flow_paused = false;
        c->queue_full = false;
        c->flow_since = 0;
        sync_pause_all(c);
        return false;
    }
    if (c->flow_since) {
        if (c->stats.in_flight < max && queue_ok) {
            c->queue_full = false;
            c->flow_since = 0;
            return false;
        }
        if (now - c->flow_since < FLOW_HOLD_MS)
            return true;
        c->flow_paused = true;
        c->stats.flow_stalls++;
        sync_pause_all(c);
        if (c->queue_full)
            log_info("the producer queue stays full; pausing consumption until it drains");
        else
            log_info("%" PRIu64 " messages wait for their outputs; pausing consumption",
                     c->stats.in_flight);
        return true;
    }
    if (c->stats.in_flight < max && !c->queue_full)
        return false;
    c->flow_since = now;
    c->stats.flow_pauses++;
    return true;
}

static void iso8601_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

/*
 * The original headers, for a dead letter: those in the daemon's own "crm."
 * namespace (a replayed dead letter, a spoofed header) become
 * "crm.previous.*", so the daemon's headers are the only ones by their names.
 * *bytes is their total size, names included.
 */
static rd_kafka_headers_t *original_headers(const rd_kafka_message_t *m, size_t *bytes)
{
    rd_kafka_headers_t *orig = NULL, *h;
    const char *name;
    const void *value;
    size_t size;
    char renamed[256];

    *bytes = 0;
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rd_kafka_headers_new(12);
    h = rd_kafka_headers_new(rd_kafka_header_cnt(orig) + 12);
    for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &value, &size) == 0; i++) {
        *bytes += strlen(name) + size;
        if (strncmp(name, "crm.", 4) == 0 && strncmp(name, "crm.previous.", 13) != 0 &&
            (size_t)snprintf(renamed, sizeof(renamed), "crm.previous.%s", name + 4) <
                sizeof(renamed))
            rd_kafka_header_add(h, renamed, -1, value, (ssize_t)size);
        else
            rd_kafka_header_add(h, name, -1, value, (ssize_t)size);
    }
    return h;
}

/* The daemon's crm.* headers of a dead letter: why, whence, when. */
static void crm_headers(struct consumer *c, rd_kafka_headers_t *h, const struct part *p,
                        const rd_kafka_message_t *m, const struct route_result *res, int64_t ts)
{
    char num[32], when[64];

    add_header(h, "crm.error.class", error_class_name(res->error_class));
    add_header(h, "crm.error.reason", res->reason);
    add_header(h, "crm.source.topic", p->topic);
    snprintf(num, sizeof(num), "%" PRId32, m->partition);
    add_header(h, "crm.source.partition", num);
    snprintf(num, sizeof(num), "%" PRId64, m->offset);
    add_header(h, "crm.source.offset", num);
    snprintf(num, sizeof(num), "%" PRId64, ts);
    add_header(h, "crm.source.timestamp", num);
    add_header(h, "crm.consumer.group", c->cfg->kafka.group_id);
    add_header(h, "crm.message_type", res->type);
    snprintf(num, sizeof(num), "%d", p->attempt_offset == m->offset ? p->attempts + 1 : 1);
    add_header(h, "crm.attempts", num);
    iso8601_now(when, sizeof(when));
    add_header(h, "crm.failed_at", when);
}

static void add_size(rd_kafka_headers_t *h, const char *name, size_t n)
{
    char num[32];

    snprintf(num, sizeof(num), "%zu", n);
    add_header(h, name, num);
}

/*
 * Copy a message that can never be handled to the dead-letter topic: its key,
 * value, headers and timestamp, plus crm.* headers saying why and whence. Its
 * offset is stored once the copy is acknowledged, like any output. What does
 * not fit (the producer's message.max.bytes, or the broker's limit when
 * `shrink` says an earlier copy was refused) is left out and its size given:
 * first the value (shrink 1), then also the key and original headers (2).
 */
static void dead_letter(struct consumer *c, struct part *p, const rd_kafka_message_t *m,
                        const struct route_result *res, struct token *t, int shrink)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    size_t header_bytes;
    rd_kafka_headers_t *h = original_headers(m, &header_bytes);
    int rc = -EMSGSIZE;

    crm_headers(c, h, p, m, res, ts);
    if (c->cfg->dry_run) {
        rd_kafka_headers_destroy(h);
        c->stats.dead_letters++;
        telemetry_dead_letter(c->tm, res->error_class);
        return;
    }
    t->dead_letter = true;
    t->shrink = shrink;
    if (shrink == 0)
        rc = publisher_send(c->pub, OUTPUT_DEAD_LETTERS, m->key, m->key_len, m->payload, m->len,
                            rd_kafka_headers_copy(h), ts > 0 ? ts : 0, t);
    if (rc == -EMSGSIZE && shrink <= 1) {
        /* Keep the evidence, point at the original. */
        t->shrink = 1;
        add_size(h, "crm.value.omitted_bytes", m->len);
        rc = publisher_send(c->pub, OUTPUT_DEAD_LETTERS, m->key, m->key_len, NULL, 0,
                            rd_kafka_headers_copy(h), ts > 0 ? ts : 0, t);
    }
    rd_kafka_headers_destroy(h);
    if (rc == -EMSGSIZE) {
        /* The key or the headers alone are too big: only the daemon's headers go. */
        t->shrink = 2;
        h = rd_kafka_headers_new(14);
        crm_headers(c, h, p, m, res, ts);
        add_size(h, "crm.value.omitted_bytes", m->len);
        add_size(h, "crm.key.omitted_bytes", m->key_len);
        add_size(h, "crm.headers.omitted_bytes", header_bytes);
        rc = publisher_send(c->pub, OUTPUT_DEAD_LETTERS, NULL, 0, NULL, 0, h, ts > 0 ? ts : 0, t);
    }
    if (rc < 0) {
        t->failed = true;
        p->failing = true;
        t->backpressure = rc == -ENOBUFS;
        log_write(t->backpressure ? LOG_INFO : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": cannot queue the dead letter: %s", p->topic,
                  m->partition, m->offset, publisher_last_error(c->pub));
        if (t->backpressure)
            note_queue_full(c);
        else
            breaker_report(c, t, false);
        return;
    }
    t->pending++;
    c->stats.dead_letters++;
    telemetry_dead_letter(c->tm, res->error_class);
    log_info("%s [%" PRId32 "] offset %" PRId64 ": dead letter: %s: %s", p->topic, m->partition,
             m->offset, error_class_name(res->error_class), res->reason);
}

/* Route one message. Returns false if it was left for later (held, or behind a failure). */
static bool handle(struct consumer *c, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct part *p = find_part(c, topic, m->partition);
    rd_kafka_timestamp_type_t tstype;
    struct message_meta meta;
    struct route_result res;
    struct timespec start, end;
    enum message_status status;
    double seconds;
    int64_t since;
    bool probe = false;
    int shrink = 0; /* what a dead letter leaves out: see dead_letter() */
    struct token *t;

    if (!p) {
        c->stats.dropped++; /* not ours any more */
        return false;
    }
    if (p->failing || p->paused)
        return false; /* behind a failed message: it comes again after the rewind */
    if (c->breaker_hold) {
        /* Fetched before the pause took effect: it comes again when the breaker lets go. */
        if (p->retry_at < 0)
            p->retry_at = m->offset;
        c->stats.held_back++;
        return false;
    }
    p->delivered = m->offset + 1;
    t = token_get(c);
    if (!t) {
        /* No token to fail: send the partition back to this message directly. */
        log_errx("%s [%" PRId32 "] offset %" PRId64 ": out of memory; retrying", topic,
                 m->partition, m->offset);
        retry_from(c, p, m->offset);
        return false;
    }
    t->part = p;
    t->offset = m->offset;
    t->trial = c->trial;
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    c->stats.in_flight++;
    c->current = t;

    meta.topic = topic;
    meta.partition = m->partition;
    meta.offset = m->offset;
    meta.key = m->key;
    meta.key_len = m->key_len;
    meta.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (m->offset == p->refused_at && p->refused_alone) {
        /* The broker refused its outputs even alone: do not route it again. */
        res.outcome = OUTCOME_PERMANENT;
        res.error_class = ERROR_OVERSIZE;
        res.type[0] = '\0';
        snprintf(res.reason, sizeof(res.reason), "the broker refused %s: %s",
                 p->refused_shrink ? "its dead letter" : "an output",
                 rd_kafka_err2str(p->refused_err));
        shrink = p->refused_shrink;
    } else {
        /* Outputs refused in a batch: deliver what is queued, so these go in a batch alone. */
        probe = m->offset == p->refused_at && !c->cfg->dry_run;
        if (probe && publisher_flush(c->pub, PROBE_FLUSH_MS) < 0)
            log_warnx("%s [%" PRId32 "] offset %" PRId64 ": outputs still queued; sending anyway",
                      topic, m->partition, m->offset);
        /* The clock is read once for both: this runs for every message (0 means "none runs"). */
        since = (int64_t)start.tv_sec * 1000 + start.tv_nsec / 1000000;
        telemetry_handling(c->tm, since > 0 ? since : 1);
        router_route(c->router, m->payload, m->len, &meta, &c->emitter, &res);
        telemetry_handling(c->tm, 0);
    }
    c->stats.messages++;
    switch (res.outcome) {
    case OUTCOME_OK:
        c->stats.ok++;
        status = MESSAGE_SUCCESS;
        break;
    case OUTCOME_SKIPPED:
        c->stats.skipped++;
        status = MESSAGE_SUCCESS;
        log_debug("%s [%" PRId32 "] offset %" PRId64 ": %s", topic, m->partition, m->offset,
                  res.reason);
        break;
    case OUTCOME_PERMANENT:
        dead_letter(c, p, m, &res, t, shrink);
        status = t->failed ? MESSAGE_FAILURE : MESSAGE_DEAD_LETTER;
        break;
    case OUTCOME_TRANSIENT:
    default:
        t->failed = true;
        p->failing = true;
        status = MESSAGE_FAILURE;
        /* A full producer queue is backpressure (flow control), not a failing dependency. */
        t->backpressure = c->queue_full;
        log_write(t->backpressure ? LOG_INFO : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": %s", topic, m->partition, m->offset,
                  res.reason);
        if (!t->backpressure)
            breaker_report(c, t, false);
        break;
    }
    if (probe)
        publisher_flush(c->pub, PROBE_FLUSH_MS); /* nothing of the next message joins them */
    clock_gettime(CLOCK_MONOTONIC, &end);
    seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    telemetry_message(c->tm, p->topic_index, status, seconds);
    /*
     * The loop polls nothing while a handler runs, so a handler slower than
     * max.poll.interval.ms makes librdkafka leave the group; say so here
     * rather than count on librdkafka to notice a stuck caller.
     */
    if (seconds > c->max_poll_s)
        log_errx("%s [%" PRId32 "] offset %" PRId64 ": the handler took %.1f s, more than "
                 "max.poll.interval.ms (%.0f s): this member left the group; its partitions "
                 "are redone from their committed offsets",
                 topic, m->partition, m->offset, seconds, c->max_poll_s);
    return true;
}

/*
 * Commit what is stored once the loop has caught up: its last wait found no
 * message and nothing is in flight. Automatic commits alone leave the group
 * up to auto.commit.interval.ms behind a backlog just drained, and a restart
 * in that time handles those inputs again. At most once per
 * IDLE_COMMIT_EVERY_MS, so that a trickle of messages is not a stream of
 * commits. The commit is asynchronous: commit_cb() counts and logs it.
 *
 * Not under the cooperative protocol: there librdkafka 2.0.2 sends a commit
 * made by the application while the group rebalances (its automatic commits
 * it holds back), and when the broker answers that the generation moved on,
 * it gives the whole assignment up as lost, after another member already
 * took some of it. With two instances joining and leaving, that handled
 * thousands of inputs twice.
 */
static void commit_idle(struct consumer *c)
{
    rd_kafka_resp_err_t err;
    int64_t now;

    if (!c->idle || !c->uncommitted || c->stats.in_flight > 0 || c->nparts == 0 || c->cooperative)
        return;
    now = now_ms();
    if (c->idle_commit_at && now - c->idle_commit_at < IDLE_COMMIT_EVERY_MS)
        return;
    c->idle_commit_at = now;
    c->uncommitted = false;
    err = rd_kafka_commit(c->rk, NULL, 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_debug("offset commit when idle: %s", rd_kafka_err2str(err));
}

int consumer_poll(struct consumer *c)
{
    int routed = 0, handled = 0;

    if (c->fatal || publisher_fatal(c->pub))
        return -ENOTRECOVERABLE;
    publisher_poll(c->pub, 0);
    advance_all(c);
    if (breaker_tick(&c->breaker, now_ms()))
        breaker_trial(c);
    resume_due(c);
    watch_stalls(c);
    if (flow_control(c)) {
        /* Wait for acknowledgements instead; once paused, serve the group too (timeout 0). */
        uint64_t start = now_ns();

        publisher_poll(c->pub, c->cfg->processing.batch_timeout_ms);
        telemetry_wait(c->tm, WAIT_ACKNOWLEDGEMENTS, now_ns() - start);
        if (c->flow_paused)
            fill_batch(c, 0);
    } else {
        fill_batch(c, c->cfg->processing.batch_timeout_ms);
    }
    for (size_t i = 0; i < c->nbatch; i++) {
        rd_kafka_message_t *m = c->batch[i];

        if (!m)
            continue; /* released by a revoke while the batch was filling */
        handled += handle(c, m);
        rd_kafka_message_destroy(m);
        c->batch[i] = NULL;
        routed++;
    }
    c->nbatch = 0;
    /* Half-open lets one batch through, then holds until its first result decides. */
    if (c->breaker.state == BREAKER_HALF_OPEN && handled > 0 && !c->breaker_hold) {
        c->breaker_hold = true;
        sync_pause_all(c);
    }
    publisher_poll(c->pub, 0);
    advance_all(c);
    store_offsets(c);
    commit_idle(c);
    count_paused(c);
    telemetry_partitions(c->tm, c->stats.assigned, c->stats.paused, c->stats.in_flight);
    telemetry_poll(c->tm);
    return c->fatal || publisher_fatal(c->pub) ? -ENOTRECOVERABLE : routed;
}

/* Serve the close queue (its rebalance events) until the close is done or the deadline. */
static int serve_close(struct consumer *c, int64_t deadline)
{
    while (!rd_kafka_consumer_closed(c->rk)) {
        int wait = remaining_ms(deadline);
        rd_kafka_event_t *ev;

        if (wait == 0)
            return -ETIMEDOUT;
        ev = rd_kafka_queue_poll(c->closeq, wait < 100 ? wait : 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         c);
        rd_kafka_event_destroy(ev);
    }
    c->closed = true;
    return 0;
}

int consumer_close(struct consumer *c)
{
    int64_t deadline = now_ms() + (int64_t)c->cfg->processing.shutdown_timeout_s * 1000;
    rd_kafka_error_t *error;
    int rc = 0, crc;

    c->deadline = deadline;
    if (publisher_flush(c->pub, remaining_ms(deadline)) < 0)
        rc = -ETIMEDOUT;
    advance_all(c);
    store_offsets(c);
    crc = commit_sync(c, deadline);
    if (crc < 0 && rc == 0)
        rc = crc == -ETIMEDOUT ? -ETIMEDOUT : -EIO;

    /*
     * Leave the group on a queue of our own so the wait can be bounded:
     * rd_kafka_consumer_close() can hang when the coordinator is gone.
     */
    c->closeq = rd_kafka_queue_new(c->rk);
    error = rd_kafka_consumer_close_queue(c->rk, c->closeq);
    if (error) {
        log_warnx("consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (serve_close(c, deadline) < 0)
        rc = -ETIMEDOUT;
    return rc;
}

struct consumer *consumer_free(struct consumer *c)
{
    if (!c)
        return NULL;
    for (size_t i = 0; i < c->nbatch; i++)
        if (c->batch[i])
            rd_kafka_message_destroy(c->batch[i]);
    if (c->closeq && !c->closed) {
        /*
         * A close cut short by its deadline is still running inside
         * librdkafka, and destroying the handle waits for it: let it finish
         * (it gives up on a missing coordinator after the session timeout).
         * The daemon does not come here then; it exits without destroying.
         */
        serve_close(c, now_ms() + 600000);
    }
    /* Then the producer: its last reports settle tokens that point at partitions. */
    c->pub = publisher_free(c->pub);
    while (c->nparts)
        remove_part(c, c->nparts - 1);
    if (c->closeq)
        rd_kafka_queue_destroy(c->closeq);
    if (c->commitq)
        rd_kafka_queue_destroy(c->commitq);
    if (c->fetched)
        rd_kafka_queue_destroy(c->fetched);
    if (c->rk) {
        /* Without a close, destroy would try one on the consumer queue, where nobody serves. */
        rd_kafka_destroy_flags(c->rk, c->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    while (c->chunks) {
        struct token_chunk *next = c->chunks->next;

        free(c->chunks);
        c->chunks = next;
    }
    free(c->parts);
    free(c->batch);
    free(c);
    return NULL;
}

const struct consumer_stats *consumer_stats(const struct consumer *c)
{
    return &c->stats;
}

struct rd_kafka_s *consumer_handle(struct consumer *c)
{
    return c->rk;
}
