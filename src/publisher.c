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

struct publisher {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topics[OUTPUT_TOPICS];
    publisher_ack_fn ack;
    void *opaque;
    bool fatal;
    char last_error[256];
};

/*
 * Producer settings for this workload, each unless the operator set it (or
 * its alias) in kafka.properties.
 *
 * An input's offset waits for its outputs' acknowledgements, which come no
 * sooner than the linger, and at most processing.max_in_flight inputs wait
 * at a time: the daemon handles no more than max_in_flight inputs per linger
 * and round trip. Lingering 50 ms held `make bench`'s full run (10,000 in
 * flight) near 135,000 inputs a second, its loop waiting for
 * acknowledgements a fifth to a half of the time; in the same hour, at
 * 5 ms, it measured 170,000 to 215,000. At 15 ms, runs interleaved with runs
 * at 5 ms were as fast (medians 198,000 and 188,000 inputs a second) and
 * left the brokers' CPU time a sixth to a third lower, as each batch gathers
 * three times as long. The round trip under load is longer than the
 * linger alone: at 10,000 in flight the loop still waited for
 * acknowledgements 13% to 16% of a full run; at 20,000, the default now,
 * 0% to 2%, and the run was 7% to 13% faster in interleaved benches.
 *
 * Batches are compressed with LZ4: the outputs are JSON, which it shrinks to
 * a fraction, so the brokers receive, replicate and store less, for a small
 * cost here (the outputs of `make bench`'s load shrink to about a quarter
 * in 64 KiB pieces). Draining that load, the mock cluster's CPU time fell
 * by about a third and the full run was a few percent faster.
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

int publisher_poll(struct publisher *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int publisher_flush(struct publisher *p, int timeout_ms)
{
    return rd_kafka_flush(p->rk, timeout_ms) ? -ETIMEDOUT : 0;
}

int publisher_in_flight(struct publisher *p)
{
    return rd_kafka_outq_len(p->rk);
}

const char *publisher_last_error(const struct publisher *p)
{
    return p->last_error;
}

const char *publisher_topic_name(const struct publisher *p, enum output_topic topic)
{
    return rd_kafka_topic_name(p->topics[topic]);
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
    }
    for (int t = 0; t < OUTPUT_TOPICS; t++)
        if (p->topics[t])
            rd_kafka_topic_destroy(p->topics[t]);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
    return NULL;
}
