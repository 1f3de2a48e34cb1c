/* SPDX-License-Identifier: MIT */
/* consumer.c -- the Kafka consumer: subscribe, rebalance, poll and handle batches, retry. */
#include "consumer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "breaker.h"
#include "clock.h"
#include "deadletter.h"
#include "fetchwatch.h"
#include "flow.h"
#include "kafka.h"
#include "log.h"
#include "offsets.h"
#include "partitions.h"
#include "publisher.h"
#include "telemetry.h"
#include "trace.h"
#include "window.h"

/* How long sending a refused message's outputs alone may wait for the queue to drain. */
#define PROBE_FLUSH_MS 10000
/*
 * While outputs are in flight the loop waits for messages at most this long,
 * so that their delivery reports (which arrive on the producer's queue, not
 * the one the wait is on) are served, and their offsets stored, promptly.
 */
#define ACK_SERVE_MS 5

struct consumer {
    const struct config *cfg;
    struct router *router;
    struct telemetry *tm;
    struct publisher *pub;
    struct offsets *offsets;
    struct fetchwatch *watch;
    struct emitter emitter;
    struct window_token *current;   /* the message being routed, for emit() */
    struct trace trace;             /* its W3C trace context, copied onto its outputs */
    struct deadletter_log dead_log; /* dead letters logged at a bounded rate */
    rd_kafka_t *rk;
    rd_kafka_queue_t *closeq; /* events of a close in progress */
    rd_kafka_message_t **batch;
    size_t nbatch;
    struct partitions ps; /* with the holds: ps.hold_flow, hold_breaker, hold_caller */
    struct window_pool pool;
    struct flow flow;
    struct breaker breaker;
    uint32_t trial;   /* counts half-open trials: tokens of earlier ones do not decide */
    bool cooperative; /* the rebalance protocol, cached at assign time */
    bool fatal;
    bool closed;       /* rd_kafka_consumer_close finished */
    int64_t deadline;  /* for work done from rebalance callbacks while closing */
    double max_poll_s; /* max.poll.interval.ms: a handler that long has cost us the group */
    bool idle;         /* the last wait for messages found none */
    struct consumer_stats stats;
};

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();

    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}

static struct fetch_part *fetch_part_of(void *opaque, size_t i)
{
    struct consumer *c = opaque;
    struct part *p = c->ps.parts[i];

    p->fetch.busy = p->held || p->failing || p->paused || p->retry_at >= 0;
    return &p->fetch;
}

/* Store the offsets that moved since the last call: one call for every partition. */
static void store_offsets(struct consumer *c)
{
    for (size_t i = 0; i < c->ps.n; i++) {
        struct part *p = c->ps.parts[i];
        int64_t next = window_take_next(&p->win);

        if (next < 0)
            continue;
        offsets_add(c->offsets, p->topic, p->partition, next);
        if (p->done_ts > 0 && p->record_ts)
            metric_set(p->record_ts, (double)p->done_ts / 1000.0);
    }
    offsets_store(c->offsets);
}

static void count_paused(struct consumer *c)
{
    c->stats.paused = partitions_paused(&c->ps);
    c->stats.assigned = (int)c->ps.n;
}

/* The circuit breaker's state changed: metrics, /ready, STATUS=. */
static void circuit_changed(struct consumer *c)
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
static void circuit_open(struct consumer *c, bool trial)
{
    c->ps.hold_breaker = true;
    partitions_sync_pause_all(&c->ps);
    circuit_changed(c);
    if (trial)
        log_errx("circuit breaker open again: the trial failed; pausing %zu partition%s for "
                 "%" PRId64 " s",
                 c->ps.n, c->ps.n == 1 ? "" : "s", c->breaker.timeout_ms / 1000);
    else
        log_errx("circuit breaker open: %d failures in a row; pausing %zu partition%s for "
                 "%" PRId64 " s",
                 c->breaker.threshold, c->ps.n, c->ps.n == 1 ? "" : "s",
                 c->breaker.timeout_ms / 1000);
}

/* Let the partitions go, unless the caller holds them too. */
static void circuit_release(struct consumer *c)
{
    if (!c->ps.hold_caller)
        partitions_seek_back_held(&c->ps);
    c->ps.hold_breaker = false;
    partitions_sync_pause_all(&c->ps);
    circuit_changed(c);
}

/* A message succeeded (ok) or failed transiently; t says which trial it belongs to. */
static void circuit_report(struct consumer *c, const struct window_token *t, bool ok)
{
    /* While half-open only the trial's own messages decide. */
    if (c->breaker.state == BREAKER_HALF_OPEN && t->trial != c->trial)
        return;
    if (ok) {
        if (breaker_success(&c->breaker)) {
            circuit_release(c);
            log_notice("circuit breaker closed: the trial succeeded; consuming again");
        }
    } else {
        bool trial = c->breaker.state == BREAKER_HALF_OPEN;

        if (breaker_failure(&c->breaker, clock_mono_ms()))
            circuit_open(c, trial);
    }
}

/* An open breaker's time is up: let one batch through. */
static void circuit_trial(struct consumer *c)
{
    c->trial++;
    circuit_release(c);
    log_notice("circuit breaker half-open: trying one batch");
}

/* Move p's done prefix out of its window; rewind when the head failed. */
static void advance(struct consumer *c, struct part *p)
{
    struct window_token *t;

    int64_t now = 0;

    while ((t = window_pop_done(&c->pool, &p->win))) {
        if (t->timestamp_ms > 0) {
            if (now == 0)
                now = clock_real_ms();
            telemetry_record_done(c->tm, t->timestamp_ms, now);
            p->done_ts = t->timestamp_ms;
        }
        if (t->offset == p->attempt_offset)
            p->attempts = 0; /* it went through at last */
        if (t->offset == p->refused_at) {
            p->refused_at = -1;
            p->refused_alone = false;
        }
        circuit_report(c, t, true);
        window_recycle(&c->pool, t);
    }
    if ((t = window_failed_head(&p->win))) {
        partitions_rewind(&c->ps, p, t);
        return;
    }
    /* A failure further on: fetch nothing more until the rewind. */
    if (p->failing && !p->paused) {
        p->paused = true;
        partitions_sync_pause(&c->ps, p, false);
    }
}

static void advance_all(struct consumer *c)
{
    for (size_t i = 0; i < c->ps.n; i++)
        advance(c, c->ps.parts[i]);
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
    struct window_token *t = token;
    struct part *p = partitions_of(t);

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
                circuit_report(c, t, false);
        }
        if (p)
            p->failing = true;
    } else {
        c->stats.outputs_ok++;
    }
    window_report(&c->pool, t);
}

/* The handlers' emitter: every output is tied to the message being routed. */
static int emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                const void *value, size_t len, int64_t timestamp_ms)
{
    struct consumer *c =
        (struct consumer *)(void *)((char *)e - offsetof(struct consumer, emitter));
    int rc = publisher_send(c->pub, topic, key, key_len, value, len, trace_headers(&c->trace),
                            timestamp_ms, c->current);

    if (rc == 0)
        c->current->pending++;
    else if (rc == -ENOBUFS)
        flow_queue_full(&c->flow, publisher_in_flight(c->pub));
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
        struct part *p = partitions_add(&c->ps, l->elems[i].topic, l->elems[i].partition);

        if (!p) {
            log_errx("assign: out of memory; stopping");
            c->fatal = true;
            continue;
        }
        /*
         * A new partition joins the pauses in force (flow control, the
         * breaker), and one that comes back is resumed if none holds it:
         * librdkafka may remember a pause from its previous assignment.
         */
        partitions_sync_pause(&c->ps, p, true);
    }
    c->stats.assigns++;
    telemetry_rebalance(c->tm, REBALANCE_ASSIGN);
    count_paused(c);
    kafka_describe(l, desc, sizeof(desc));
    log_notice("assigned %d partition%s (%s): %s", l->cnt, l->cnt == 1 ? "" : "s",
               c->cooperative ? "cooperative" : "eager", desc);
}

static void on_revoke(struct consumer *c, rd_kafka_topic_partition_list_t *l)
{
    bool lost = rd_kafka_assignment_lost(c->rk);
    char desc[512];

    drop_revoked(c, l);
    kafka_describe(l, desc, sizeof(desc));
    if (lost) {
        /* Another member may own them already: a commit now could overwrite its progress. */
        c->stats.lost++;
        telemetry_rebalance(c->tm, REBALANCE_LOST);
        log_warnx("lost %d partition%s without a clean revoke; not committing: %s", l->cnt,
                  l->cnt == 1 ? "" : "s", desc);
    } else {
        int64_t deadline = c->deadline
                               ? c->deadline
                               : clock_mono_ms() + c->cfg->processing.shutdown_timeout_s * 1000;

        /* Wait for the outputs in flight, so what is done can be committed now. */
        if (publisher_flush(c->pub, remaining_ms(deadline)) < 0)
            log_warnx("revoke: outputs still unacknowledged; their messages will be redone");
        advance_all(c);
        store_offsets(c);
        offsets_commit(c->offsets, deadline);
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
    for (size_t i = c->ps.n; i-- > 0;) {
        const struct part *p = c->ps.parts[i];

        /* Eager revokes everything: forget anything left. */
        if (!c->cooperative || rd_kafka_topic_partition_list_find(l, p->topic, p->partition))
            partitions_remove(&c->ps, i);
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
    offsets_committed(c->offsets, err);
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

/*
 * The consumer's defaults where the daemon's differ from librdkafka's, used
 * unless the operator sets the property in kafka.properties. Lag and broker
 * states come from the statistics, so those are on. The prefetch is bounded
 * by bytes, not by librdkafka's 100,000 records (tens of megabytes of
 * messages of a few hundred bytes): a queue that fits the caches is handled
 * faster, and fetchwatch_wake() keeps it from running dry (the sizes
 * measured are in docs/performance.md).
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
    window_pool_init(&c->pool);
    flow_init(&c->flow, (uint64_t)cfg->processing.max_in_flight);
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
    partitions_init(&c->ps, c->rk, cfg, tm, &c->pool);
    c->offsets = offsets_new(c->rk, tm);
    c->watch = fetchwatch_new(c->rk, cfg, tm);
    if (!c->offsets || !c->watch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
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
 * Wait up to timeout_ms for a first message, then take what is already
 * queued, up to processing.batch_size: a message never waits for a batch to
 * fill, and a busy loop reads no clock per message. The wait is counted:
 * with a backlog it shows how long librdkafka's prefetch left the loop idle.
 */
static void fill_batch(struct consumer *c, int timeout_ms)
{
    size_t max = (size_t)c->cfg->processing.batch_size;
    int64_t bytes = 0;

    fetchwatch_wake(c->watch, c->ps.n, fetch_part_of, c);
    c->nbatch = 0;
    if (c->pool.in_flight > 0 && timeout_ms > ACK_SERVE_MS)
        timeout_ms = ACK_SERVE_MS;
    while (c->nbatch < max && !c->fatal) {
        bool waits = c->nbatch == 0 && timeout_ms != 0;
        uint64_t start = waits ? clock_mono_ns() : 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, c->nbatch ? 0 : timeout_ms);

        if (waits)
            telemetry_wait(c->tm, WAIT_MESSAGES, clock_mono_ns() - start);
        if (!m)
            break;
        if (m->err) {
            if (fetchwatch_error(c->watch, m))
                c->fatal = true;
            rd_kafka_message_destroy(m);
            continue;
        }
        c->batch[c->nbatch++] = m;
        bytes += (int64_t)m->len;
    }
    c->idle = c->nbatch == 0 && timeout_ms != 0;
    fetchwatch_taken(c->watch, c->nbatch, bytes);
}

/*
 * Flow control (see flow.h): whether the loop may take messages this turn,
 * pausing or resuming every partition when it says so.
 */
static bool flow_allows(struct consumer *c)
{
    switch (flow_check(&c->flow, c->pool.in_flight, publisher_in_flight(c->pub), clock_mono_ms())) {
    case FLOW_TAKE:
        return true;
    case FLOW_RESUME_ALL:
        c->ps.hold_flow = false;
        partitions_sync_pause_all(&c->ps);
        return true;
    case FLOW_PAUSE_ALL:
        c->ps.hold_flow = true;
        partitions_sync_pause_all(&c->ps);
        if (c->flow.queue_full)
            log_info("the producer queue stays full; pausing consumption until it drains");
        else
            log_info("%" PRIu64 " messages wait for their outputs; pausing consumption",
                     c->pool.in_flight);
        return false;
    case FLOW_WAIT:
    default:
        return false;
    }
}

/* A dead letter, logged at a bounded rate (see deadletter.h), with its trace id. */
static void log_dead_letter(struct consumer *c, const struct part *p, const rd_kafka_message_t *m,
                            const struct route_result *res)
{
    if (!deadletter_log_due(&c->dead_log, res->error_class, clock_mono_ms()))
        return;
    log_info("%s [%" PRId32 "] offset %" PRId64 ": dead letter: %s: %s%s%s", p->topic, m->partition,
             m->offset, router_class_name(res->error_class), res->reason,
             c->trace.valid ? "; trace " : "", c->trace.valid ? c->trace.id : "");
}

/* A message that can never be handled: its copy to the dead-letter topic is its output. */
static void dead_letter(struct consumer *c, struct part *p, const rd_kafka_message_t *m,
                        const struct route_result *res, struct window_token *t, int shrink)
{
    struct deadletter_source src = {
        .topic = p->topic,
        .group = c->cfg->kafka.group_id,
        .attempts = p->attempt_offset == m->offset ? p->attempts + 1 : 1,
    };
    int used, rc;

    t->dead_letter = true;
    rc = deadletter_send(c->pub, m, &src, res, shrink, t, &used);
    t->shrink = used;
    if (rc < 0) {
        t->failed = true;
        p->failing = true;
        t->backpressure = rc == -ENOBUFS;
        log_write(t->backpressure ? LOG_INFO : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": cannot queue the dead letter: %s", p->topic,
                  m->partition, m->offset, publisher_last_error(c->pub));
        if (t->backpressure)
            flow_queue_full(&c->flow, publisher_in_flight(c->pub));
        else
            circuit_report(c, t, false);
        return;
    }
    t->pending++;
    c->stats.dead_letters++;
    telemetry_dead_letter(c->tm, res->error_class);
    log_dead_letter(c, p, m, res);
}

/*
 * Route m, or decide without routing it: a message the broker refused even
 * alone becomes a dead letter at once. *probe is set when its outputs must
 * go in a batch of their own (see rewind_to()).
 */
static void route(struct consumer *c, struct part *p, const rd_kafka_message_t *m,
                  struct route_result *res, int *shrink, bool *probe)
{
    const char *topic = p->topic;
    rd_kafka_timestamp_type_t tstype;
    struct message_meta meta = {
        .topic = topic,
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .key_len = m->key_len,
        .timestamp_ms = rd_kafka_message_timestamp(m, &tstype),
    };

    *shrink = 0;
    *probe = false;
    if (m->offset == p->refused_at && p->refused_alone) {
        res->outcome = OUTCOME_PERMANENT;
        res->error_class = ERROR_OVERSIZE;
        res->type[0] = '\0';
        snprintf(res->reason, sizeof(res->reason), "the broker refused %s: %s",
                 p->refused_shrink ? "its dead letter" : "an output",
                 rd_kafka_err2str(p->refused_err));
        *shrink = p->refused_shrink;
        return;
    }
    /* Outputs refused in a batch: deliver what is queued, so these go in a batch alone. */
    *probe = m->offset == p->refused_at;
    if (*probe && publisher_flush(c->pub, PROBE_FLUSH_MS) < 0)
        log_warnx("%s [%" PRId32 "] offset %" PRId64 ": outputs still queued; sending anyway",
                  topic, m->partition, m->offset);
    router_route(c->router, m->payload, m->len, &meta, &c->emitter, res);
}

/* Route one message. Returns false if it was left for later (held, or behind a failure). */
static bool handle(struct consumer *c, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct part *p = partitions_find(&c->ps, topic, m->partition);
    struct route_result res;
    enum message_status status;
    rd_kafka_timestamp_type_t tstype;
    rd_kafka_headers_t *headers;
    int64_t start_ns, since;
    double seconds;
    bool probe;
    int shrink; /* what a dead letter leaves out: see deadletter.h */
    struct window_token *t;

    if (!p) {
        c->stats.dropped++; /* not ours any more */
        return false;
    }
    if (p->failing || p->paused)
        return false; /* behind a failed message: it comes again after the rewind */
    if (c->ps.hold_breaker || c->ps.hold_caller) {
        /* Fetched before the pause took effect: it comes again when the hold ends. */
        if (p->retry_at < 0)
            p->retry_at = m->offset;
        c->stats.held_back++;
        return false;
    }
    p->fetch.delivered = m->offset + 1;
    t = window_push(&c->pool, &p->win, m->offset);
    if (!t) {
        /* No token to fail: send the partition back to this message directly. */
        log_errx("%s [%" PRId32 "] offset %" PRId64 ": out of memory; retrying", topic,
                 m->partition, m->offset);
        partitions_retry_from(&c->ps, p, m->offset);
        return false;
    }
    t->trial = c->trial;
    t->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    c->current = t;
    if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
        headers = NULL;
    trace_read(headers, &c->trace);

    /* The clock is read once for both: this runs for every message (0 means "none runs"). */
    start_ns = (int64_t)clock_mono_ns();
    since = start_ns / 1000000;
    telemetry_handling(c->tm, since > 0 ? since : 1);
    route(c, p, m, &res, &shrink, &probe);
    telemetry_handling(c->tm, 0);
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
        t->backpressure = c->flow.queue_full;
        log_write(t->backpressure ? LOG_INFO : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": %s%s%s", topic, m->partition, m->offset,
                  res.reason, c->trace.valid ? "; trace " : "", c->trace.valid ? c->trace.id : "");
        if (!t->backpressure)
            circuit_report(c, t, false);
        break;
    }
    if (probe)
        publisher_flush(c->pub, PROBE_FLUSH_MS); /* nothing of the next message joins them */
    seconds = (double)((int64_t)clock_mono_ns() - start_ns) / 1e9;
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

/* The totals kept by the modules, into the stats. */
static void sync_stats(struct consumer *c)
{
    c->stats.in_flight = c->pool.in_flight;
    c->stats.retries = c->ps.retries;
    c->stats.flow_pauses = c->flow.waits;
    c->stats.flow_stalls = c->flow.pauses;
    c->stats.commits_ok = offsets_commits_ok(c->offsets);
    c->stats.commits_failed = offsets_commits_failed(c->offsets);
    c->stats.fetch_wakeups = fetchwatch_wakeups(c->watch);
    c->stats.stalls = fetchwatch_stalls(c->watch);
    count_paused(c);
}

void consumer_reconfigure(struct consumer *c)
{
    breaker_configure(&c->breaker, c->cfg->circuit_breaker.failure_threshold,
                      (int64_t)c->cfg->circuit_breaker.open_timeout_s * 1000);
}

void consumer_hold(struct consumer *c, bool hold)
{
    if (c->ps.hold_caller == hold)
        return;
    if (!hold && !c->ps.hold_breaker)
        partitions_seek_back_held(&c->ps);
    c->ps.hold_caller = hold;
    partitions_sync_pause_all(&c->ps);
    count_paused(c);
}

/*
 * One turn: settle what was acknowledged, let due retries and trials go, look
 * after the fetchers, take a batch (or wait for acknowledgements), handle it,
 * store what is done, commit if caught up.
 */
int consumer_poll(struct consumer *c)
{
    int routed = 0, handled = 0;

    if (c->fatal || publisher_fatal(c->pub))
        return -ENOTRECOVERABLE;
    publisher_poll(c->pub, 0);
    advance_all(c);
    if (breaker_tick(&c->breaker, clock_mono_ms()))
        circuit_trial(c);
    partitions_resume_due(&c->ps);
    fetchwatch_tick(c->watch, c->ps.n, fetch_part_of, c);
    if (flow_allows(c)) {
        fill_batch(c, c->cfg->processing.batch_timeout_ms);
    } else {
        /* Wait for acknowledgements instead; once paused, serve the group too (timeout 0). */
        uint64_t start = clock_mono_ns();

        publisher_poll(c->pub, c->cfg->processing.batch_timeout_ms);
        telemetry_wait(c->tm, WAIT_ACKNOWLEDGEMENTS, clock_mono_ns() - start);
        if (c->ps.hold_flow)
            fill_batch(c, 0);
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
    if (c->breaker.state == BREAKER_HALF_OPEN && handled > 0 && !c->ps.hold_breaker) {
        c->ps.hold_breaker = true;
        partitions_sync_pause_all(&c->ps);
    }
    publisher_poll(c->pub, 0);
    advance_all(c);
    store_offsets(c);
    /*
     * Not under the cooperative protocol: there librdkafka 2.0.2 sends a
     * commit made by the application while the group rebalances, and when the
     * broker answers that the generation moved on, it gives the whole
     * assignment up as lost, after another member already took some of it.
     */
    deadletter_log_tick(&c->dead_log, clock_mono_ms());
    offsets_commit_idle(c->offsets,
                        c->idle && c->pool.in_flight == 0 && c->ps.n > 0 && !c->cooperative);
    sync_stats(c);
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
    int64_t deadline = clock_mono_ms() + (int64_t)c->cfg->processing.shutdown_timeout_s * 1000;
    rd_kafka_error_t *error;
    int rc = 0, crc;

    c->deadline = deadline;
    if (publisher_flush(c->pub, remaining_ms(deadline)) < 0)
        rc = -ETIMEDOUT;
    advance_all(c);
    store_offsets(c);
    crc = offsets_commit(c->offsets, deadline);
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
    /* The dead letters of windows still open are told now, not lost with the process. */
    deadletter_log_tick(&c->dead_log, INT64_MAX);
    sync_stats(c);
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
        serve_close(c, clock_mono_ms() + 600000);
    }
    /* Then the producer: its last reports settle tokens that point at partitions. */
    c->pub = publisher_free(c->pub);
    partitions_fini(&c->ps);
    c->offsets = offsets_free(c->offsets);
    c->watch = fetchwatch_free(c->watch);
    if (c->closeq)
        rd_kafka_queue_destroy(c->closeq);
    if (c->rk) {
        /* Without a close, destroy would try one on the consumer queue, where nobody serves. */
        rd_kafka_destroy_flags(c->rk, c->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    window_pool_fini(&c->pool);
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
