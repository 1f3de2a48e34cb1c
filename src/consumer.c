/* SPDX-License-Identifier: MIT */
/* consumer.c -- the Kafka consumer: subscribe, rebalance, poll batches, store offsets. */
#include "consumer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "log.h"

/* How long one seek may take before the retry falls back to trying again later. */
#define SEEK_TIMEOUT_MS 5000

/*
 * State of one assigned partition. `next` is the offset to store at the end of
 * the batch (the offset after the last message handled), -1 when nothing new
 * was handled. A transient failure blocks the partition for the rest of the
 * batch, seeks it back to the failed message and pauses it for the backoff.
 */
struct part {
    char *topic;
    int32_t partition;
    int64_t next;
    bool blocked;
    bool paused;
    int attempts;      /* consecutive transient failures at the partition's head */
    int64_t retry_at;  /* offset to seek back to before resuming, -1 if none pending */
    int64_t resume_at; /* monotonic milliseconds */
};

struct consumer {
    const struct config *cfg;
    struct router *router;
    rd_kafka_t *rk;
    rd_kafka_queue_t *commitq; /* replies of bounded synchronous commits */
    uintptr_t commit_seq;      /* tells this commit's reply from a late one */
    rd_kafka_message_t **batch;
    size_t nbatch;
    struct part *parts;
    size_t nparts;
    size_t capparts;
    size_t last;      /* index of the last partition looked up: messages come in runs */
    bool cooperative; /* the rebalance protocol, cached at assign time */
    bool fatal;
    bool closed;      /* rd_kafka_consumer_close finished */
    int64_t deadline; /* for commits made from rebalance callbacks while closing */
    struct consumer_stats stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    if (c->last < c->nparts && c->parts[c->last].partition == partition &&
        strcmp(c->parts[c->last].topic, topic) == 0)
        return &c->parts[c->last];
    for (size_t i = 0; i < c->nparts; i++) {
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0) {
            c->last = i;
            return &c->parts[i];
        }
    }
    return NULL;
}

static int add_part(struct consumer *c, const char *topic, int32_t partition)
{
    struct part *p;

    if (find_part(c, topic, partition))
        return 0;
    if (c->nparts == c->capparts) {
        size_t cap = c->capparts ? c->capparts * 2 : 16;
        struct part *grown = realloc(c->parts, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        c->parts = grown;
        c->capparts = cap;
    }
    p = &c->parts[c->nparts];
    memset(p, 0, sizeof(*p));
    p->topic = strdup(topic);
    if (!p->topic)
        return -ENOMEM;
    p->partition = partition;
    p->next = -1;
    p->retry_at = -1;
    c->nparts++;
    return 0;
}

static void remove_part(struct consumer *c, const char *topic, int32_t partition)
{
    struct part *p = find_part(c, topic, partition);

    if (!p)
        return;
    free(p->topic);
    *p = c->parts[--c->nparts];
    c->last = 0;
}

/* A one-partition list, for pause, resume and seek. */
static rd_kafka_topic_partition_list_t *one_part(const struct part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
    return l;
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
            return 0;
        }
    }
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0; /* nothing stored since the last commit */
    log_warnx("offset commit: %s", rd_kafka_err2str(err));
    c->stats.commits_failed++;
    return -EIO;
}

/* Store the offsets handled in this batch: one call for every partition. */
static void store_offsets(struct consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = &c->parts[i];

        p->blocked = false;
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
    /* _STATE for a partition means it is no longer assigned: its new owner redoes it. */
    for (int i = 0; err && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];

        if (tp->err && tp->err != RD_KAFKA_RESP_ERR__STATE)
            log_warnx("%s [%" PRId32 "]: storing offset %" PRId64 ": %s", tp->topic, tp->partition,
                      tp->offset, rd_kafka_err2str(tp->err));
    }
    rd_kafka_topic_partition_list_destroy(l);
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
        if (add_part(c, l->elems[i].topic, l->elems[i].partition) < 0) {
            log_errx("assign: out of memory; leaving the group to retry");
            c->fatal = true;
        }
    }
    c->stats.assigns++;
    c->stats.assigned = (int)c->nparts;
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
        log_warnx("lost %d partition%s without a clean revoke; not committing: %s", l->cnt,
                  l->cnt == 1 ? "" : "s", desc);
    } else {
        int64_t deadline =
            c->deadline ? c->deadline : now_ms() + c->cfg->processing.shutdown_timeout_s * 1000;

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
    for (int i = 0; i < l->cnt; i++)
        remove_part(c, l->elems[i].topic, l->elems[i].partition);
    if (!c->cooperative) {
        /* Eager revokes everything: forget anything left. */
        while (c->nparts)
            remove_part(c, c->parts[0].topic, c->parts[0].partition);
    }
    c->stats.revokes++;
    c->stats.assigned = (int)c->nparts;
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
    c->stats.paused = 0;
    for (size_t i = 0; i < c->nparts; i++)
        c->stats.paused += c->parts[i].paused;
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
        log_warnx("automatic offset commit: %s", rd_kafka_err2str(err));
    } else {
        c->stats.commits_ok++;
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_errx("kafka: fatal: %s", fatal);
        c->fatal = true;
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* Informational: librdkafka keeps reconnecting by itself. */
        log_warnx("kafka: all brokers are down; reconnecting");
    } else {
        log_warnx("kafka: %s: %s", rd_kafka_err2name(err), reason);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_write(level < LOG_ERR ? LOG_ERR : level, "kafka: %s: %s", fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s: %s", name, errstr);
        return -EINVAL;
    }
    return 0;
}

static rd_kafka_conf_t *make_conf(struct consumer *c, char *err, size_t errlen)
{
    const struct config *cfg = c->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;

    /* The operator's properties first; config validation keeps them off ours. */
    for (size_t i = 0; rc == 0 && i < cfg->kafka.nproperties; i++)
        rc = conf_set(conf, cfg->kafka.properties[i].name, cfg->kafka.properties[i].value, err,
                      errlen);
    if (rc == 0)
        rc = conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, err, errlen);
    if (rc == 0)
        rc = conf_set(conf, "group.id", cfg->kafka.group_id, err, errlen);
    if (rc == 0)
        rc = conf_set(conf, "client.id", cfg->kafka.client_id, err, errlen);
    if (rc == 0)
        rc = conf_set(conf, "auto.offset.reset", cfg->kafka.auto_offset_reset, err, errlen);
    /* At least once: only offsets we store are committed, and we store after handling. */
    if (rc == 0)
        rc = conf_set(conf, "enable.auto.offset.store", "false", err, errlen);
    if (rc == 0)
        rc = conf_set(conf, "enable.auto.commit", "true", err, errlen);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

struct consumer *consumer_new(const struct config *cfg, struct router *router, char *err,
                              size_t errlen)
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
    c->batch = calloc((size_t)cfg->processing.batch_size, sizeof(*c->batch));
    if (!c->batch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    conf = make_conf(c, err, errlen);
    if (!conf)
        goto fail;
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    conf = NULL; /* owned by c->rk now */
    /* Serve errors, logs and commit results from consumer_poll(). */
    rd_kafka_poll_set_consumer(c->rk);
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

/* Consume-level errors come as messages with err set; none of them carries data. */
static void consume_error(struct consumer *c, rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (m->rkt)
        log_warnx("consume %s [%" PRId32 "]: %s", rd_kafka_topic_name(m->rkt), m->partition,
                  rd_kafka_message_errstr(m));
    else
        log_warnx("consume: %s", rd_kafka_message_errstr(m));
    if (m->err == RD_KAFKA_RESP_ERR__FATAL)
        c->fatal = true;
}

static void fill_batch(struct consumer *c)
{
    int64_t deadline = now_ms() + c->cfg->processing.batch_timeout_ms;
    size_t max = (size_t)c->cfg->processing.batch_size;

    c->nbatch = 0;
    while (c->nbatch < max && !c->fatal) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, remaining_ms(deadline));

        if (!m)
            break;
        if (m->err) {
            consume_error(c, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        c->batch[c->nbatch++] = m;
    }
}

static int64_t backoff_ms(const struct config *cfg, int attempts)
{
    int64_t ms = cfg->retry.initial_backoff_ms;

    for (int i = 1; i < attempts && ms < cfg->retry.max_backoff_ms; i++)
        ms *= 2;
    return ms > cfg->retry.max_backoff_ms ? cfg->retry.max_backoff_ms : ms;
}

/* Seek p back to its failed message. Returns 0, or -EAGAIN to try again at resume time. */
static int seek_back(struct consumer *c, struct part *p)
{
    rd_kafka_topic_partition_list_t *l = one_part(p, p->retry_at);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, SEEK_TIMEOUT_MS);
    int rc = 0;

    if (error) {
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s", p->topic, p->partition, p->retry_at,
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rc = -EAGAIN;
    } else if (l->elems[0].err) {
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s", p->topic, p->partition, p->retry_at,
                  rd_kafka_err2str(l->elems[0].err));
        rc = -EAGAIN;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (rc == 0)
        p->retry_at = -1;
    return rc;
}

/*
 * A transient failure: nothing after this message in its partition is handled
 * or stored; the partition is paused, and sought back so the message comes
 * again after the backoff. It is never skipped.
 */
static void retry_later(struct consumer *c, struct part *p, const rd_kafka_message_t *m,
                        const struct route_result *res)
{
    rd_kafka_topic_partition_list_t *l = one_part(p, RD_KAFKA_OFFSET_INVALID);
    int64_t wait;

    p->attempts++;
    wait = backoff_ms(c->cfg, p->attempts);
    p->blocked = true;
    p->paused = true;
    p->retry_at = m->offset;
    p->resume_at = now_ms() + wait;
    c->stats.retries++;
    rd_kafka_pause_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    seek_back(c, p);
    log_write(p->attempts >= c->cfg->retry.max_attempts ? LOG_ERR : LOG_WARNING,
              "%s [%" PRId32 "] offset %" PRId64 ": %s (attempt %d); retrying in %" PRId64 " ms",
              p->topic, p->partition, m->offset, res->reason, p->attempts, wait);
}

static void resume_due(struct consumer *c)
{
    int64_t now = now_ms();
    int paused = 0;

    for (size_t i = 0; i < c->nparts; i++) {
        struct part *p = &c->parts[i];
        rd_kafka_topic_partition_list_t *l;

        if (!p->paused)
            continue;
        if (p->resume_at > now || (p->retry_at >= 0 && seek_back(c, p) < 0)) {
            paused++;
            continue;
        }
        l = one_part(p, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resume_partitions(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        p->paused = false;
    }
    c->stats.paused = paused;
}

/*
 * Until the dead-letter publisher exists, a permanent failure is logged with
 * everything needed to find the message again, and its offset is stored.
 */
static void dead_letter(struct consumer *c, const rd_kafka_message_t *m,
                        const struct route_result *res)
{
    c->stats.dead_letters++;
    log_warnx("%s [%" PRId32 "] offset %" PRId64 ": %s: %s (type \"%s\"); not published: the "
              "dead-letter topic is not implemented yet",
              rd_kafka_topic_name(m->rkt), m->partition, m->offset,
              error_class_name(res->error_class), res->reason, res->type);
}

static void handle(struct consumer *c, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct part *p = find_part(c, topic, m->partition);
    rd_kafka_timestamp_type_t tstype;
    struct message_meta meta;
    struct route_result res;

    if (!p || p->blocked) {
        /* Not ours any more, or behind a failed message that will come again. */
        c->stats.dropped += !p;
        return;
    }
    meta.topic = topic;
    meta.partition = m->partition;
    meta.offset = m->offset;
    meta.key = m->key;
    meta.key_len = m->key_len;
    meta.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    router_route(c->router, m->payload, m->len, &meta, &res);
    c->stats.messages++;
    switch (res.outcome) {
    case OUTCOME_OK:
        c->stats.ok++;
        break;
    case OUTCOME_SKIPPED:
        c->stats.skipped++;
        log_debug("%s [%" PRId32 "] offset %" PRId64 ": %s", topic, m->partition, m->offset,
                  res.reason);
        break;
    case OUTCOME_PERMANENT:
        dead_letter(c, m, &res);
        break;
    case OUTCOME_TRANSIENT:
        retry_later(c, p, m, &res);
        return;
    }
    p->attempts = 0;
    p->next = m->offset + 1;
}

int consumer_poll(struct consumer *c)
{
    int routed = 0;

    if (c->fatal)
        return -ENOTRECOVERABLE;
    resume_due(c);
    fill_batch(c);
    for (size_t i = 0; i < c->nbatch; i++) {
        rd_kafka_message_t *m = c->batch[i];

        if (!m)
            continue; /* released by a revoke while the batch was filling */
        handle(c, m);
        rd_kafka_message_destroy(m);
        c->batch[i] = NULL;
        routed++;
    }
    c->nbatch = 0;
    store_offsets(c);
    return c->fatal ? -ENOTRECOVERABLE : routed;
}

int consumer_close(struct consumer *c)
{
    int64_t deadline = now_ms() + (int64_t)c->cfg->processing.shutdown_timeout_s * 1000;
    rd_kafka_queue_t *q;
    rd_kafka_error_t *error;
    int rc = 0, crc;

    c->deadline = deadline;
    store_offsets(c);
    crc = commit_sync(c, deadline);
    if (crc < 0)
        rc = crc == -ETIMEDOUT ? -ETIMEDOUT : -EIO;

    /*
     * Leave the group on a queue of our own so the wait can be bounded:
     * rd_kafka_consumer_close() can hang when the coordinator is gone.
     */
    q = rd_kafka_queue_new(c->rk);
    error = rd_kafka_consumer_close_queue(c->rk, q);
    if (error) {
        log_warnx("consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    while (!rd_kafka_consumer_closed(c->rk)) {
        int wait = remaining_ms(deadline);
        rd_kafka_event_t *ev;

        if (wait == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        ev = rd_kafka_queue_poll(q, wait < 100 ? wait : 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         c);
        rd_kafka_event_destroy(ev);
    }
    c->closed = rd_kafka_consumer_closed(c->rk);
    rd_kafka_queue_destroy(q);
    return rc;
}

struct consumer *consumer_free(struct consumer *c)
{
    if (!c)
        return NULL;
    for (size_t i = 0; i < c->nbatch; i++)
        if (c->batch[i])
            rd_kafka_message_destroy(c->batch[i]);
    if (c->commitq)
        rd_kafka_queue_destroy(c->commitq);
    if (c->rk) {
        /* Without a finished close, destroy would try to close again and could hang. */
        rd_kafka_destroy_flags(c->rk, c->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
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
