/* SPDX-License-Identifier: MIT */
/* publisher.c -- one idempotent producer for tickets, responses, identities and dead letters. */
#include "publisher.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

/* A record that --dry-run acknowledges without sending: its report, due at the next poll. */
struct dry_ack {
    void *token;
    enum output_topic topic;
};

struct publisher {
    rd_kafka_t *rk; /* NULL under --dry-run */
    rd_kafka_topic_t *topics[OUTPUT_TOPICS];
    const char *names[OUTPUT_TOPICS];
    publisher_ack_fn ack;
    void *opaque;
    bool fatal;
    struct dry_ack *dry; /* --dry-run's reports to come */
    size_t ndry, capdry;
    char last_error[256];
};

/*
 * Producer settings for this workload, each unless the operator set it (or
 * its alias) in kafka.properties.
 *
 * An input's offset waits for its outputs' acknowledgements, which come no
 * sooner than the linger, and at most processing.max_in_flight inputs wait
 * at a time: the daemon handles no more than max_in_flight inputs per linger
 * and round trip. A long linger holds the rate down whatever the CPU could
 * do; a short one costs the brokers a request per tiny batch. 15 ms keeps
 * the rate of a shorter linger with fewer, larger requests; the measurement
 * is in docs/performance.md, "Producer linger".
 *
 * Batches are compressed with LZ4: the outputs are JSON, which it shrinks to
 * a fraction, so the brokers receive, replicate and store less, for a small
 * cost here.
 */
static const struct kafka_default tuned[] = {
    {"linger.ms", "queue.buffering.max.ms", "15"},
    {"batch.num.messages", NULL, "10000"},
    {"compression.codec", "compression.type", "lz4"},
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct publisher *p = opaque;
    int t = 0;

    (void)rk;
    while (t < OUTPUT_TOPICS - 1 && p->topics[t] != m->rkt)
        t++;
    p->ack(p->opaque, m->_private, (enum output_topic)t, m->err);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct publisher *p = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* The idempotent producer can no longer guarantee order and uniqueness. */
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_errx("producer: fatal: %s", fatal);
        p->fatal = true;
    } else if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* All-brokers-down is said once by the consumer; the producer would repeat it. */
        log_warnx("producer: %s: %s", rd_kafka_err2name(err), reason);
    }
}

rd_kafka_conf_t *publisher_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    /*
     * The operator's properties are shared with the consumer (security
     * settings must be), less those for consumers only.
     */
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, RD_KAFKA_PRODUCER, err, errlen);

    /* acks=all, in order, no duplicates from the producer's own retries. */
    if (conf && kafka_conf_set(conf, "enable.idempotence", "true", err, errlen) < 0) {
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

struct publisher *publisher_new(const struct config *cfg, publisher_ack_fn ack, void *opaque,
                                char *err, size_t errlen)
{
    const char *names[OUTPUT_TOPICS] = {
        [OUTPUT_TICKETS] = cfg->output.tickets_topic,
        [OUTPUT_RESPONSES] = cfg->output.responses_topic,
        [OUTPUT_IDENTITIES] = cfg->output.identities_topic,
        [OUTPUT_DEAD_LETTERS] = cfg->output.dlq_topic,
    };
    struct publisher *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->ack = ack;
    p->opaque = opaque;
    for (int t = 0; t < OUTPUT_TOPICS; t++)
        p->names[t] = names[t];
    /* --dry-run: everything but the brokers' part; each record is acknowledged at once. */
    if (cfg->dry_run)
        return p;
    conf = publisher_conf_new(cfg, err, errlen);
    if (!conf) {
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    for (int t = 0; t < OUTPUT_TOPICS; t++) {
        p->topics[t] = rd_kafka_topic_new(p->rk, names[t], NULL);
        if (!p->topics[t]) {
            snprintf(err, errlen, "topic %s: %s", names[t],
                     rd_kafka_err2str(rd_kafka_last_error()));
            return publisher_free(p);
        }
    }
    return p;
}

int publisher_send(struct publisher *p, enum output_topic topic, const void *key, size_t key_len,
                   const void *value, size_t len, rd_kafka_headers_t *headers, int64_t timestamp_ms,
                   void *token)
{
    /* librdkafka copies the payload (F_COPY) but its prototype takes a non-const pointer. */
    union {
        const void *in;
        void *out;
    } payload = {.in = value};
    rd_kafka_resp_err_t err;

    if (!p->rk) {
        if (headers)
            rd_kafka_headers_destroy(headers);
        if (p->ndry == p->capdry) {
            size_t cap = p->capdry ? p->capdry * 2 : 1024;
            struct dry_ack *grown = realloc(p->dry, cap * sizeof(*grown));

            if (!grown) {
                snprintf(p->last_error, sizeof(p->last_error), "out of memory");
                return -EIO;
            }
            p->dry = grown;
            p->capdry = cap;
        }
        p->dry[p->ndry++] = (struct dry_ack){token, topic};
        return 0;
    }
    if (p->fatal) {
        snprintf(p->last_error, sizeof(p->last_error), "the producer hit a fatal error");
        if (headers)
            rd_kafka_headers_destroy(headers);
        return -EIO;
    }
    if (headers)
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->topics[topic]),
                                RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(payload.out, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_HEADERS(headers),
                                RD_KAFKA_V_OPAQUE(token), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_RKT(p->topics[topic]), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(payload.out, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_OPAQUE(token), RD_KAFKA_V_END);
    if (!err)
        return 0; /* the headers belong to the message now */
    if (headers)
        rd_kafka_headers_destroy(headers);
    snprintf(p->last_error, sizeof(p->last_error), "%s: %s", rd_kafka_topic_name(p->topics[topic]),
             rd_kafka_err2str(err));
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return -ENOBUFS;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        return -EMSGSIZE;
    return -EIO;
}

/* --dry-run's reports, all of them, with err. */
static int report_dry(struct publisher *p, rd_kafka_resp_err_t err)
{
    size_t n = p->ndry;

    p->ndry = 0;
    for (size_t i = 0; i < n; i++)
        p->ack(p->opaque, p->dry[i].token, p->dry[i].topic, err);
    return (int)n;
}

int publisher_poll(struct publisher *p, int timeout_ms)
{
    if (!p->rk)
        return report_dry(p, RD_KAFKA_RESP_ERR_NO_ERROR);
    return rd_kafka_poll(p->rk, timeout_ms);
}

int publisher_flush(struct publisher *p, int timeout_ms)
{
    if (!p->rk) {
        report_dry(p, RD_KAFKA_RESP_ERR_NO_ERROR);
        return 0;
    }
    return rd_kafka_flush(p->rk, timeout_ms) ? -ETIMEDOUT : 0;
}

int publisher_in_flight(struct publisher *p)
{
    return p->rk ? rd_kafka_outq_len(p->rk) : (int)p->ndry;
}

const char *publisher_last_error(const struct publisher *p)
{
    return p->last_error;
}

const char *publisher_topic_name(const struct publisher *p, enum output_topic topic)
{
    return p->names[topic];
}

bool publisher_fatal(const struct publisher *p)
{
    return p->fatal;
}

rd_kafka_t *publisher_handle(struct publisher *p)
{
    return p->rk;
}

struct publisher *publisher_free(struct publisher *p)
{
    if (!p)
        return NULL;
    if (p->rk) {
        /* Whatever is still queued is reported as failed, so every token is settled. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 1000);
    } else {
        report_dry(p, RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    }
    free(p->dry);
    for (int t = 0; t < OUTPUT_TOPICS; t++)
        if (p->topics[t])
            rd_kafka_topic_destroy(p->topics[t]);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
    return NULL;
}
