/* SPDX-License-Identifier: MIT */
/* demo.c -- --demo: an embedded mock Kafka cluster, and a generator sending it sample traffic. */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"
#include "samples.h"

#define BROKERS             3
#define INPUT_PARTITIONS    4
#define OUTPUT_PARTITIONS   4
#define IDENTITY_PARTITIONS 2
/* The generator wakes 100 times a second, so even low rates come out evenly spread. */
#define TICKS_PER_S 100
#define TICK_NS     (1000000000L / TICKS_PER_S)
/* Far above what a laptop demo needs; it keeps rate * ticks well inside 64 bits. */
#define MAX_RATE      1000000
#define FLUSH_MS      5000
#define QUEUE_WAIT_MS 10

struct demo {
    rd_kafka_t *host; /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mock;
    char *bootstraps;
    rd_kafka_t *producer; /* the generator's; NULL when rate is 0 */
    char **topics;        /* the input topics, copied: cfg may be reloaded */
    size_t ntopics;
    int rate;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_uint_fast64_t produced;
    atomic_uint_fast64_t poison;
    atomic_uint_fast64_t failed;
    /* Generator thread only from here. */
    uint64_t seq;
    struct samples samples;
};

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_write(level, "demo: %s: %s", fac, buf);
}

/* Counts only what the cluster acknowledged, so demo_produced() is what a reader can find. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct demo *d = opaque;

    (void)rk;
    if (m->err) {
        /* One warning is enough to explain a stalled demo; the rest go to debug. */
        if (atomic_fetch_add(&d->failed, 1) == 0)
            log_write(LOG_WARNING, "demo: delivery failed: %s", rd_kafka_err2str(m->err));
        else
            log_write(LOG_DEBUG, "demo: delivery failed: %s", rd_kafka_err2str(m->err));
        return;
    }
    atomic_fetch_add(&d->produced, 1);
    if (m->_private)
        atomic_fetch_add(&d->poison, 1);
}

/* Build and send one message. Returns 0, or -1 when it was not queued. */
static int produce_one(struct demo *d)
{
    uint64_t id = ++d->seq;
    bool bad;
    const char *topic = d->topics[samples_pick(&d->samples, (uint32_t)d->ntopics)];
    char key[64];
    rd_kafka_resp_err_t err;
    int n = samples_next(&d->samples, id, &bad);

    if (n < 0)
        return -1;
    snprintf(key, sizeof(key), "%s-%" PRIu64, samples_run(&d->samples), id);
    for (;;) {
        /* No partition given: the partitioner hashes the unique key, which spreads at random. */
        err = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(d->samples.buf, (size_t)n), RD_KAFKA_V_OPAQUE(bad ? (void *)d : NULL),
            RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(&d->stop))
            break;
        rd_kafka_poll(d->producer, QUEUE_WAIT_MS);
    }
    if (err) {
        log_write(LOG_DEBUG, "demo: produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void *generate(void *arg)
{
    struct demo *d = arg;
    struct timespec next;
    sigset_t block;
    uint64_t ticks = 0, sent = 0, due;

    /* The daemon's signals belong to its main thread, whatever mask we were started with. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, NULL);

    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&d->stop)) {
        ticks++;
        due = (uint64_t)d->rate * ticks / TICKS_PER_S;
        /* Fallen more than a second behind (a full queue): drop the backlog, do not burst. */
        if (due - sent > (uint64_t)d->rate)
            sent = due - (uint64_t)d->rate;
        while (sent < due && !atomic_load(&d->stop)) {
            produce_one(d);
            sent++;
        }
        rd_kafka_poll(d->producer, 0);
        next.tv_nsec += TICK_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        /* Absolute deadlines keep the pace from drifting by the time spent producing. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    return NULL;
}

/* Make the input, output and dead-letter topics; an output that repeats a name is made once. */
static int make_topics(struct demo *d, const struct config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int partitions;
    } outputs[] = {
        {cfg->output.tickets_topic, OUTPUT_PARTITIONS},
        {cfg->output.responses_topic, OUTPUT_PARTITIONS},
        {cfg->output.identities_topic, IDENTITY_PARTITIONS},
        {cfg->output.dlq_topic, OUTPUT_PARTITIONS},
    };
    const size_t noutputs = sizeof(outputs) / sizeof(outputs[0]);
    rd_kafka_resp_err_t rc;

    for (size_t i = 0; i < cfg->kafka.ntopics + noutputs; i++) {
        bool input = i < cfg->kafka.ntopics;
        const char *name = input ? cfg->kafka.topics[i] : outputs[i - cfg->kafka.ntopics].name;
        int partitions = input ? INPUT_PARTITIONS : outputs[i - cfg->kafka.ntopics].partitions;

        if (!name)
            continue;
        rc = rd_kafka_mock_topic_create(d->mock, name, partitions, 1);
        if (rc && rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(err, errlen, "demo: create topic %s: %s", name, rd_kafka_err2str(rc));
            return -1;
        }
    }
    return 0;
}

static rd_kafka_t *new_producer(struct demo *d, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", d->bootstraps, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "crm-demo-generator", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr))) {
        snprintf(err, errlen, "demo: producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        snprintf(err, errlen, "demo: producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Everything that makes threads; the caller has blocked the daemon's signals. */
static int start_threads(struct demo *d, struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    int rc;

    /* The host handle only carries the cluster; its own chatter is errors only. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        snprintf(err, errlen, "demo: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    d->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!d->host) {
        snprintf(err, errlen, "demo: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    d->mock = rd_kafka_mock_cluster_new(d->host, BROKERS);
    if (!d->mock) {
        snprintf(err, errlen, "demo: cannot create the mock cluster");
        return -1;
    }
    if (make_topics(d, cfg, err, errlen) < 0)
        return -1;
    d->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(d->mock));
    if (!d->bootstraps) {
        snprintf(err, errlen, "demo: out of memory");
        return -1;
    }
    if (d->rate == 0)
        return 0;
    d->producer = new_producer(d, err, errlen);
    if (!d->producer)
        return -1;
    rc = pthread_create(&d->thread, NULL, generate, d);
    if (rc) {
        snprintf(err, errlen, "demo: generator thread: %s", strerror(rc));
        return -1;
    }
    d->running = true;
    return 0;
}

struct demo *demo_start(struct config *cfg, int rate, char *err, size_t errlen)
{
    struct demo *d;
    struct timespec ts;
    sigset_t block, old;
    char *brokers;
    int rc;

    if (rate < 0 || rate > MAX_RATE) {
        snprintf(err, errlen, "demo: rate %d is not within 0..%d messages per second", rate,
                 MAX_RATE);
        return NULL;
    }
    if (!cfg || cfg->kafka.ntopics == 0) {
        snprintf(err, errlen, "demo: no input topics");
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->topics = calloc(cfg->kafka.ntopics, sizeof(*d->topics)))) {
        free(d);
        snprintf(err, errlen, "demo: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->kafka.ntopics; i++) {
        if (!(d->topics[i] = strdup(cfg->kafka.topics[i]))) {
            snprintf(err, errlen, "demo: out of memory");
            return demo_stop(d);
        }
        d->ntopics++;
    }
    d->rate = rate;
    atomic_init(&d->stop, false);
    atomic_init(&d->produced, 0);
    atomic_init(&d->poison, 0);
    atomic_init(&d->failed, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    samples_init(&d->samples,
                 ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16));

    /*
     * librdkafka's threads and ours inherit the creator's signal mask: block
     * the daemon's signals while they are made, so only the main thread takes them.
     */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = start_threads(d, cfg, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        return demo_stop(d);

    brokers = strdup(d->bootstraps);
    if (!brokers) {
        snprintf(err, errlen, "demo: out of memory");
        return demo_stop(d);
    }
    free(cfg->kafka.brokers);
    cfg->kafka.brokers = brokers;
    return d;
}

const char *demo_bootstraps(const struct demo *d)
{
    return d->bootstraps;
}

uint64_t demo_produced(const struct demo *d)
{
    return atomic_load(&d->produced);
}

uint64_t demo_poison(const struct demo *d)
{
    return atomic_load(&d->poison);
}

struct demo *demo_stop(struct demo *d)
{
    rd_kafka_resp_err_t err;

    if (!d)
        return NULL;
    if (d->running) {
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
    }
    if (d->producer) {
        err = rd_kafka_flush(d->producer, FLUSH_MS);
        if (err)
            log_write(LOG_WARNING, "demo: %d messages not delivered at stop: %s",
                      rd_kafka_outq_len(d->producer), rd_kafka_err2str(err));
        rd_kafka_destroy(d->producer);
    }
    if (d->mock)
        rd_kafka_mock_cluster_destroy(d->mock);
    if (d->host)
        rd_kafka_destroy(d->host);
    for (size_t i = 0; i < d->ntopics; i++)
        free(d->topics[i]);
    free(d->topics);
    free(d->bootstraps);
    samples_fini(&d->samples);
    free(d);
    return NULL;
}
