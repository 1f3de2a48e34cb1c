/* SPDX-License-Identifier: MIT */
/* check_consumer.c -- the consumer core against an in-process librdkafka mock cluster. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "consumer.h"
#include "handlers/handlers.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "telemetry.h"

#define TOPIC      "crm.inbound"
#define MAX_PARTS  8
#define TIMEOUT_MS 90000

/* The mock cluster and a producer that fills it; one of each per test process. */
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer;
static int delivery_failures;

/* Each consumer counts into its own telemetry, freed with the cluster. */
static struct telemetry *tms[4];
static int ntms;

/*
 * What the test handler saw, per partition: every offset it returned OK for,
 * in order. `fail_*` makes one message fail transiently a number of times.
 */
struct record {
    int64_t *offsets;
    size_t n, cap;
    unsigned char *hit; /* hit[offset]: handled at least once */
    size_t nhit;
};
static struct record seen[MAX_PARTS];
static int32_t fail_partition = -1;
static int64_t fail_offset = -1;
static int fail_left;
static size_t distinct; /* offsets handled at least once, over all partitions */
static int attempts_at_fail;

/*
 * The test handler emits one ticket per message (key = partition, value =
 * "partition:offset"), so the consumer has an output to wait for before it
 * may store the offset.
 */
static enum outcome test_handler(void *opaque, const cJSON *msg, const struct message_meta *meta,
                                 struct emitter *out, struct route_result *res)
{
    struct record *r = &seen[meta->partition];
    char value[64];
    int n, rc;

    (void)opaque;
    (void)msg;
    ck_assert_int_lt(meta->partition, MAX_PARTS);
    if (meta->partition == fail_partition && meta->offset == fail_offset) {
        attempts_at_fail++;
        if (fail_left > 0) {
            fail_left--;
            return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                               "test: output not acknowledged");
        }
    }
    n = snprintf(value, sizeof(value), "%" PRId32 ":%" PRId64, meta->partition, meta->offset);
    rc = out->emit(out, OUTPUT_TICKETS, value, 1, value, (size_t)n, 0);
    if (rc < 0)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "test: emit: %d", rc);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->offsets = realloc(r->offsets, r->cap * sizeof(*r->offsets));
        ck_assert_ptr_nonnull(r->offsets);
    }
    r->offsets[r->n++] = meta->offset;
    if ((size_t)meta->offset >= r->nhit) {
        size_t want = (size_t)meta->offset * 2 + 1024;

        r->hit = realloc(r->hit, want);
        ck_assert_ptr_nonnull(r->hit);
        memset(r->hit + r->nhit, 0, want - r->nhit);
        r->nhit = want;
    }
    distinct += !r->hit[meta->offset];
    r->hit[meta->offset] = 1;
    return OUTCOME_OK;
}

static size_t seen_total(void)
{
    size_t n = 0;

    for (int i = 0; i < MAX_PARTS; i++)
        n += seen[i].n;
    return n;
}

/*
 * What each assigned partition looks like to librdkafka, for a test that timed
 * out waiting: a partition that stopped short of its high watermark while
 * not paused is one librdkafka stopped fetching. Returns a static buffer.
 */
static const char *stall_report(struct consumer *c)
{
    static char buf[4096];
    rd_kafka_t *rk = consumer_handle(c);
    rd_kafka_topic_partition_list_t *l = NULL;
    size_t used;

    used =
        (size_t)snprintf(buf, sizeof(buf), "\n%d of %d assigned partitions paused by the consumer",
                         consumer_stats(c)->paused, consumer_stats(c)->assigned);
    if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return buf;
    rd_kafka_position(rk, l);
    for (int i = 0; i < l->cnt && used < sizeof(buf); i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        int64_t lo = -1, hi = -1;
        size_t n = tp->partition >= 0 && tp->partition < MAX_PARTS ? seen[tp->partition].n : 0;

        rd_kafka_get_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi);
        used += (size_t)snprintf(buf + used, sizeof(buf) - used,
                                 "\n  %s [%" PRId32 "]: %zu handled, position %" PRId64
                                 ", high watermark %" PRId64 " (as last fetched)",
                                 tp->topic, tp->partition, n, tp->offset, hi);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return buf;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        delivery_failures++;
}

/* The test's own clients log through ours, at our threshold, so a quiet run is quiet. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_write(level, "test client: %s: %s", fac, buf);
}

static rd_kafka_conf_t *client_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, quiet_log);
    return conf;
}

static void cluster_up(int partitions)
{
    char errstr[512];
    rd_kafka_conf_t *conf = client_conf();

    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(mock_rk, "%s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, 3);
    ck_assert_ptr_nonnull(mock);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, TOPIC, partitions, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "crm.tickets", 4, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "crm.responses", 4, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "crm.identities", 2, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "crm.inbound.dlq", 2, 1), 0);

    conf = client_conf();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mock), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(producer, "%s", errstr);
}

static void cluster_down(void)
{
    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    for (int i = 0; i < MAX_PARTS; i++) {
        free(seen[i].offsets);
        free(seen[i].hit);
        memset(&seen[i], 0, sizeof(seen[i]));
    }
    while (ntms > 0)
        telemetry_free(tms[--ntms]);
    distinct = 0;
}

static void produce(int32_t partition, const char *value)
{
    rd_kafka_resp_err_t err;
    /* librdkafka copies the value (F_COPY) but its prototype takes a non-const pointer. */
    char *copy = strdup(value);

    do {
        err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_VALUE(copy, strlen(value)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 100);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    free(copy);
    ck_assert_int_eq(err, 0);
}

/* n test events spread round-robin over the partitions. */
static void produce_events(int n, int partitions)
{
    char value[128];

    for (int i = 0; i < n; i++) {
        snprintf(value, sizeof(value), "{\"message_type\":\"test_event\",\"seq\":%d}", i);
        produce(i % partitions, value);
    }
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
    ck_assert_int_eq(delivery_failures, 0);
}

/* The partition's end; asked again while the producer's metadata has an old leader. */
static int64_t high_watermark(int32_t partition)
{
    rd_kafka_resp_err_t err;
    int64_t lo, hi;

    for (int i = 0; i < 50; i++) {
        err = rd_kafka_query_watermark_offsets(producer, TOPIC, partition, &lo, &hi, 10000);
        if (err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
            break;
        rd_kafka_poll(producer, 100);
    }
    ck_assert_int_eq(err, 0);
    return hi;
}

/* The group's committed offset of every partition, read by a separate client. */
static void committed(const char *group, int partitions, int64_t *out)
{
    char errstr[512];
    rd_kafka_conf_t *conf = client_conf();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk, "%s", errstr);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, TOPIC, i);
    ck_assert_int_eq(rd_kafka_committed(rk, l, 10000), 0);
    for (int i = 0; i < partitions; i++)
        out[i] = l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void add_property(struct config *cfg, const char *name, const char *value)
{
    struct config_property *props =
        realloc(cfg->kafka.properties, (cfg->kafka.nproperties + 1) * sizeof(*props));

    ck_assert_ptr_nonnull(props);
    props[cfg->kafka.nproperties] =
        (struct config_property){.name = strdup(name), .value = strdup(value)};
    cfg->kafka.properties = props;
    cfg->kafka.nproperties++;
}

/*
 * Read every message of `topic` (all partitions, from the beginning, to the
 * end), calling fn on each; returns how many there were.
 */
static int read_topic(const char *topic, int partitions,
                      void (*fn)(const rd_kafka_message_t *m, void *arg), void *arg)
{
    char errstr[512];
    rd_kafka_conf_t *conf = client_conf();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    int64_t deadline = now_ms() + 30000;
    int ends = 0, n = 0;
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    /* librdkafka 2.0 wants a group.id even to assign(); nothing joins or commits. */
    rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk, "%s", errstr);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    while (ends < partitions) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        ck_assert_msg(now_ms() < deadline, "%s: %d of %d partitions read", topic, ends, partitions);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ends++;
        } else {
            ck_assert_msg(!m->err, "%s: %s", topic, rd_kafka_message_errstr(m));
            n++;
            if (fn)
                fn(m, arg);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* The value of header `name`, NUL-terminated in buf; fails the test when absent. */
static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vlen;

    ck_assert_int_eq(rd_kafka_message_headers(m, &h), 0);
    ck_assert_msg(rd_kafka_header_get_last(h, name, &v, &vlen) == 0, "no header %s", name);
    ck_assert_uint_lt(vlen, len);
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return buf;
}

struct dlq_check {
    int classes[ERROR_TRANSIENT + 1];
};

/* Every dead letter carries every crm.* header; count them by class. */
static void check_dead_letter(const rd_kafka_message_t *m, void *arg)
{
    static const char *const names[] = {
        "crm.error.reason",  "crm.source.topic",     "crm.source.partition",
        "crm.source.offset", "crm.source.timestamp", "crm.consumer.group",
        "crm.message_type",  "crm.attempts",         "crm.failed_at",
    };
    struct dlq_check *dc = arg;
    char buf[512];
    int cls;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        header(m, names[i], buf, sizeof(buf));
    ck_assert_str_eq(header(m, "crm.source.topic", buf, sizeof(buf)), TOPIC);
    ck_assert_str_eq(header(m, "crm.consumer.group", buf, sizeof(buf)), "mixed");
    ck_assert_str_eq(header(m, "crm.attempts", buf, sizeof(buf)), "1");
    header(m, "crm.error.class", buf, sizeof(buf));
    for (cls = ERROR_PARSE; cls <= ERROR_TRANSIENT; cls++)
        if (strcmp(buf, router_class_name(cls)) == 0)
            break;
    ck_assert_int_le(cls, ERROR_TRANSIENT);
    dc->classes[cls]++;
}

/* Whether rk's group has committed exactly `want` on every partition. */
static int committed_is(rd_kafka_t *rk, int partitions, const int64_t *want)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    int same = 1;

    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, TOPIC, i);
    if (rd_kafka_committed(rk, l, 5000) != 0)
        same = 0;
    for (int i = 0; same && i < partitions; i++)
        same = l->elems[i].offset == want[i];
    rd_kafka_topic_partition_list_destroy(l);
    return same;
}

static struct config *test_config(const char *group, const char *strategy)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    cfg->kafka.brokers = strdup(rd_kafka_mock_cluster_bootstraps(mock));
    free(cfg->kafka.group_id);
    cfg->kafka.group_id = strdup(group);
    cfg->processing.batch_size = 100;
    cfg->processing.shutdown_timeout_s = 20;
    cfg->retry.initial_backoff_ms = 10;
    cfg->retry.max_backoff_ms = 40;
    /* Fault cases may open the circuit breaker: keep its pause short. */
    cfg->circuit_breaker.open_timeout_s = 1;
    /*
     * The mock cluster holds a join until every member it knows has rejoined or
     * timed out, even one that left: keep the session short so a restart in the
     * same group waits seconds, not the default 45 s.
     */
    add_property(cfg, "session.timeout.ms", "6000");
    if (strategy)
        add_property(cfg, "partition.assignment.strategy", strategy);
    return cfg;
}

static struct router *test_router(struct handlers *hs)
{
    struct router_limits lim = {.max_message_bytes = 1048576,
                                .max_nesting_depth = 64,
                                .unknown_type = UNKNOWN_TYPE_DEAD_LETTER};
    struct router *r = router_new(&lim);

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(router_add(r, "test_event", test_handler, NULL), 0);
    if (hs)
        ck_assert_int_eq(handlers_register(hs, r), 0);
    return r;
}

static struct consumer *start(const struct config *cfg, struct router *r)
{
    char err[512];
    struct telemetry *tm = telemetry_new(cfg);
    struct consumer *c;

    ck_assert_ptr_nonnull(tm);
    ck_assert_int_lt(ntms, 4);
    tms[ntms++] = tm;
    c = consumer_new(cfg, r, tm, err, sizeof(err));

    ck_assert_msg(c, "consumer_new: %s", err);
    return c;
}

/* crm_consumer_wait_seconds_total{for="<what>"} as tm's /metrics shows it. */
static double wait_seconds(struct telemetry *tm, const char *what)
{
    char *text, series[128];
    size_t len;
    double v = -1;

    ck_assert_int_eq(metrics_render(telemetry_registry(tm), &text, &len), 0);
    snprintf(series, sizeof(series), "\ncrm_consumer_wait_seconds_total{for=\"%s\"} ", what);
    const char *at = strstr(text, series);
    ck_assert_msg(at != NULL, "no %s in:\n%s", series + 1, text);
    v = strtod(at + strlen(series), NULL);
    free(text);
    return v;
}

/* Poll until at least `want` messages were routed in total, or fail after TIMEOUT_MS. */
static void poll_until(struct consumer *c, uint64_t want)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;

    while (consumer_stats(c)->messages < want) {
        ck_assert_int_ge(consumer_poll(c), 0);
        if (now_ms() >= deadline)
            ck_abort_msg("only %" PRIu64 " of %" PRIu64 " messages in time%s",
                         consumer_stats(c)->messages, want, stall_report(c));
    }
}

/* Run the loop for ms milliseconds. */
static void poll_for(struct consumer *c, int64_t ms)
{
    int64_t until = now_ms() + ms;

    while (now_ms() < until)
        ck_assert_int_ge(consumer_poll(c), 0);
}

/* Every partition's record is exactly [from[p], to[p]) in order: no gap, no duplicate. */
static void assert_contiguous(int partitions, const int64_t *from, const int64_t *to)
{
    for (int p = 0; p < partitions; p++) {
        ck_assert_int_eq((int64_t)seen[p].n, to[p] - from[p]);
        for (size_t i = 0; i < seen[p].n; i++)
            ck_assert_int_eq(seen[p].offsets[i], from[p] + (int64_t)i);
    }
}

/* Poll until every one of n offsets was handled (failed attempts are routed too). */
static void poll_until_handled(struct consumer *c, size_t n)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;

    while (seen_total() < n) {
        ck_assert_int_ge(consumer_poll(c), 0);
        if (now_ms() >= deadline)
            ck_abort_msg("only %zu of %zu handled%s", seen_total(), n, stall_report(c));
    }
}

/* Every offset of every partition handled once, in order, from 0; the group committed all. */
static void assert_drained(const char *group, int parts)
{
    int64_t zero[MAX_PARTS] = {0}, hi[MAX_PARTS], done[MAX_PARTS];

    ck_assert_int_le(parts, MAX_PARTS);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    assert_contiguous(parts, zero, hi);
    committed(group, parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
}

START_TEST(drain_commits_high_watermarks)
{
    const int parts = 4, n = 2000;
    int64_t zero[4] = {0}, hi[4], done[4];
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("drain", NULL);
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_eq(consumer_stats(c)->ok, (uint64_t)n);
    ck_assert_uint_eq(consumer_stats(c)->dead_letters, 0);
    /* 2,000 small messages never come near the prefetch limits: no request to wake fetchers. */
    ck_assert_uint_eq(consumer_stats(c)->fetch_wakeups, 0);
    consumer_free(c);

    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    committed("drain", parts, done);
    assert_contiguous(parts, zero, hi);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * Caught up, the loop commits what it stored at once, not at the next
 * automatic commit (ten minutes away here). The group's offsets are read
 * while the consumer still runs: a close would commit them anyway.
 */
START_TEST(caught_up_commits_at_once)
{
    const int parts = 3, n = 600;
    int64_t hi[3];
    int64_t deadline;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("idle-commit", NULL);
    add_property(cfg, "auto.commit.interval.ms", "600000");
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    deadline = now_ms() + 20000;
    for (int turn = 0;; turn++) {
        ck_assert_int_ge(consumer_poll(c), 0);
        if (turn % 5 == 0 && committed_is(consumer_handle(c), parts, hi))
            break;
        ck_assert_msg(now_ms() < deadline, "offsets not committed within 20 s of catching up");
    }
    ck_assert_uint_eq(consumer_stats(c)->in_flight, 0);
    /*
     * Its result is counted once served. Idle from then on, the loop commits
     * nothing more, since it stores nothing more.
     */
    poll_for(c, 1500);
    {
        uint64_t once = consumer_stats(c)->commits_ok;

        ck_assert_uint_ge(once, 1);
        poll_for(c, 2500);
        ck_assert_uint_eq(consumer_stats(c)->commits_ok, once);
    }
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* Under the cooperative protocol only the automatic commits commit: see commit_idle(). */
START_TEST(caught_up_cooperative_waits_for_auto_commit)
{
    const int parts = 3, n = 300;
    int64_t hi[3];
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("idle-commit-coop", "cooperative-sticky");
    add_property(cfg, "auto.commit.interval.ms", "600000");
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    poll_for(c, 2500);
    ck_assert_uint_eq(consumer_stats(c)->in_flight, 0);
    ck_assert_uint_eq(consumer_stats(c)->commits_ok, 0);
    ck_assert(!committed_is(consumer_handle(c), parts, hi));
    /* The close commits them. */
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_ge(consumer_stats(c)->commits_ok, 1);
    consumer_free(c);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

START_TEST(stop_midstream_and_restart_skips_nothing)
{
    const int parts = 4, n = 4000;
    int64_t zero[4] = {0}, hi[4], mid[4], done[4], first = 0;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("restart", NULL);
    r = test_router(NULL);

    /* First life: stop a third of the way through, as the SIGTERM flag would. */
    c = start(cfg, r);
    poll_until(c, (uint64_t)n / 3);
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    committed("restart", parts, mid);
    for (int p = 0; p < parts; p++) {
        hi[p] = high_watermark(p);
        /* A partition life one never reached has no committed offset yet. */
        if (mid[p] < 0)
            mid[p] = 0;
        ck_assert_int_le(mid[p], hi[p]);
        first += mid[p];
    }
    ck_assert_int_ge(first, n / 3);
    /* Everything handled was committed, and nothing more. */
    assert_contiguous(parts, zero, mid);

    /* Second life, same group: it must start exactly at the committed offsets. */
    for (int p = 0; p < parts; p++)
        seen[p].n = 0;
    c = start(cfg, r);
    poll_until(c, (uint64_t)(n - first));
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    assert_contiguous(parts, mid, hi);
    committed("restart", parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

START_TEST(transient_failure_is_retried_in_order)
{
    const int parts = 2, n = 600;
    int64_t zero[2] = {0}, hi[2], done[2];
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    fail_partition = 1;
    fail_offset = 42;
    fail_left = 3;
    cfg = test_config("retry", NULL);
    r = test_router(NULL);
    c = start(cfg, r);
    /* Done when every offset was handled once; failed attempts are routed too. */
    poll_until_handled(c, (size_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_eq(consumer_stats(c)->retries, 3);
    ck_assert_int_eq(attempts_at_fail, 4);
    consumer_free(c);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    /* The failed message was not skipped, and nothing behind it went first. */
    assert_contiguous(parts, zero, hi);
    committed("retry", parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* Offsets below hi[p] never handled; *dups counts those handled more than once. */
static size_t count_missing(int parts, const int64_t *hi, size_t *dups)
{
    size_t missing = 0;

    *dups = 0;
    for (int p = 0; p < parts; p++) {
        char *hit = calloc((size_t)hi[p], 1);

        ck_assert_ptr_nonnull(hit);
        for (size_t i = 0; i < seen[p].n; i++) {
            int64_t off = seen[p].offsets[i];

            ck_assert(off >= 0 && off < hi[p]);
            *dups += hit[off];
            hit[off] = 1;
        }
        for (int64_t off = 0; off < hi[p]; off++)
            missing += !hit[off];
        free(hit);
    }
    return missing;
}

/* A second member joins mid-stream; both drain together; then both leave. */
static void rebalance_case(const char *group, const char *strategy)
{
    const int parts = 4, n = 4000;
    int64_t hi[4], done[4];
    struct config *cfg;
    struct router *r;
    struct consumer *a, *b;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    size_t missing = 0, dups = 0;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config(group, strategy);
    cfg->processing.batch_size = 20;
    add_property(cfg, "auto.commit.interval.ms", "200");
    r = test_router(NULL);
    a = start(cfg, r);
    poll_until(a, 400);
    b = start(cfg, r);
    while (distinct < (size_t)n || consumer_stats(b)->assigns == 0) {
        ck_assert_int_ge(consumer_poll(a), 0);
        ck_assert_int_ge(consumer_poll(b), 0);
        ck_assert_msg(now_ms() < deadline, "%zu of %d handled", distinct, n);
    }
    ck_assert_uint_ge(consumer_stats(a)->revokes, 1);

    /*
     * A leaves cleanly; B takes over its partitions and redoes whatever A
     * handled but could not commit, until the group's committed offsets reach
     * the high watermarks (B's automatic commits run every 200 ms here).
     */
    ck_assert_int_eq(consumer_close(a), 0);
    consumer_free(a);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    for (int turn = 0;; turn++) {
        ck_assert_int_ge(consumer_poll(b), 0);
        ck_assert_msg(now_ms() < deadline, "B did not finish A's partitions in time");
        if (turn % 5 == 0 && consumer_stats(b)->assigned == parts &&
            committed_is(consumer_handle(b), parts, hi))
            break;
    }
    ck_assert_int_eq(consumer_close(b), 0);
    consumer_free(b);

    missing = count_missing(parts, hi, &dups);
    ck_assert_uint_eq(missing, 0);
    /*
     * Revoked partitions are committed before release, so a broker that takes
     * commits during a rebalance (Kafka does, in PreparingRebalance) sees no
     * duplicates. The mock cluster refuses them with REBALANCE_IN_PROGRESS, so
     * here a revoke can redo up to what was handled since the last commit.
     */
    fprintf(stderr, "%s: %zu duplicates of %d messages\n", group, dups, n);
    committed(group, parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    router_free(r);
    config_free(cfg);
    cluster_down();
}

START_TEST(rebalance_eager)
{
    rebalance_case("rebalance-eager", NULL);
}
END_TEST

START_TEST(rebalance_cooperative)
{
    rebalance_case("rebalance-coop", "cooperative-sticky");
}
END_TEST

START_TEST(builtin_types_and_poison)
{
    static const char *const values[] = {
        "{\"message_type\":\"email_received\",\"message_id\":\"m1\",\"from\":\"a@example.com\"}",
        "{\"type\":\"whatsapp_received\",\"message_id\":\"w1\",\"from\":\"+15550100123\"}",
        "{\"message_type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s1\","
        "\"fields\":{\"email\":\"b@example.com\"}}",
        "{not json",
        "[1,2,3]",
        "{\"message_type\":\"fax_received\"}",
        "{\"message_type\":\"email_received\",\"message_id\":\"m2\"}",
        "",
    };
    const int parts = 2, rounds = 50, nv = (int)(sizeof(values) / sizeof(values[0]));
    int64_t hi[2], done[2];
    struct links *links = links_new(NULL);
    struct handlers *hs;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    for (int i = 0; i < rounds * nv; i++)
        produce(i % parts, values[i % nv]);
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
    cfg = test_config("mixed", NULL);
    hs = handlers_new(cfg, links, NULL);
    r = test_router(hs);
    c = start(cfg, r);
    poll_until(c, (uint64_t)(rounds * nv));
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_eq(handlers_stats(hs)->email, rounds);
    ck_assert_uint_eq(handlers_stats(hs)->whatsapp, rounds);
    ck_assert_uint_eq(handlers_stats(hs)->form, rounds);
    ck_assert_uint_eq(consumer_stats(c)->ok, 3 * rounds);
    ck_assert_uint_eq(consumer_stats(c)->dead_letters, 5 * rounds);
    /* Two outputs per handled message and one copy per dead letter, all acknowledged. */
    ck_assert_uint_eq(consumer_stats(c)->outputs_ok, 2 * 3 * rounds + 5 * rounds);
    consumer_free(c);
    ck_assert_int_eq(read_topic("crm.tickets", 4, NULL, NULL), 3 * rounds);
    ck_assert_int_eq(read_topic("crm.responses", 4, NULL, NULL), 3 * rounds);
    {
        struct dlq_check dc = {0};

        ck_assert_int_eq(read_topic("crm.inbound.dlq", 2, check_dead_letter, &dc), 5 * rounds);
        ck_assert_int_eq(dc.classes[ERROR_PARSE], 3 * rounds);
        ck_assert_int_eq(dc.classes[ERROR_UNKNOWN_TYPE], rounds);
        ck_assert_int_eq(dc.classes[ERROR_SCHEMA], rounds);
    }
    handlers_free(hs);
    links_free(links);
    committed("mixed", parts, done);
    for (int p = 0; p < parts; p++) {
        hi[p] = high_watermark(p);
        ck_assert_int_eq(done[p], hi[p]);
    }
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

START_TEST(close_without_brokers_is_bounded)
{
    const int parts = 2;
    struct config *cfg;
    struct router *r;
    struct consumer *c;
    int64_t t0;

    cluster_up(parts);
    produce_events(200, parts);
    cfg = test_config("gone", NULL);
    cfg->processing.shutdown_timeout_s = 3;
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, 200);
    /* Every broker goes away; close must give up at the deadline, not hang. */
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_down(mock, b);
    t0 = now_ms();
    ck_assert_int_le(consumer_close(c), 0);
    ck_assert_int_lt(now_ms() - t0, 3000 + 2000);
    consumer_free(c);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

struct ticket_check {
    unsigned char *hit[MAX_PARTS]; /* hit[p][offset]: a ticket for that input exists */
    int64_t size[MAX_PARTS];
};

static void check_ticket(const rd_kafka_message_t *m, void *arg)
{
    struct ticket_check *tc = arg;
    char value[64];
    int32_t p;
    int64_t off;

    ck_assert_uint_lt(m->len, sizeof(value));
    memcpy(value, m->payload, m->len);
    value[m->len] = '\0';
    ck_assert_int_eq(sscanf(value, "%" SCNd32 ":%" SCNd64, &p, &off), 2);
    ck_assert(p >= 0 && p < MAX_PARTS && off >= 0 && off < tc->size[p]);
    tc->hit[p][off] = 1;
}

/*
 * Produce requests fail for a while and the producer gives up on some
 * outputs: their inputs are redone, nothing is committed past them, and in
 * the end every input has its output.
 */
START_TEST(failed_outputs_are_redone)
{
    const int parts = 2, n = 600;
    rd_kafka_resp_err_t errs[60];
    struct ticket_check tc = {0};
    int64_t hi[2], done[2];
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("outputs", NULL);
    add_property(cfg, "message.timeout.ms", "1000");
    add_property(cfg, "auto.commit.interval.ms", "200");
    r = test_router(NULL);
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    rd_kafka_mock_push_request_errors_array(mock, 0 /* Produce */, sizeof(errs) / sizeof(errs[0]),
                                            errs);
    c = start(cfg, r);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    {
        int64_t deadline = now_ms() + TIMEOUT_MS;

        /* Done when the group's commits reach the end (automatic commits every 200 ms). */
        for (int turn = 0;; turn++) {
            ck_assert_int_ge(consumer_poll(c), 0);
            ck_assert_msg(now_ms() < deadline, "%zu of %d handled", distinct, n);
            if (turn % 5 == 0 && committed_is(consumer_handle(c), parts, hi))
                break;
        }
    }
    ck_assert_int_eq(consumer_close(c), 0);
    /* The fault really happened, and was retried rather than skipped. */
    ck_assert_uint_gt(consumer_stats(c)->outputs_failed, 0);
    ck_assert_uint_gt(consumer_stats(c)->retries, 0);
    consumer_free(c);
    committed("outputs", parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    for (int p = 0; p < parts; p++) {
        tc.hit[p] = calloc((size_t)hi[p], 1);
        tc.size[p] = hi[p];
    }
    ck_assert_int_ge(read_topic("crm.tickets", 4, check_ticket, &tc), n);
    for (int p = 0; p < parts; p++) {
        for (int64_t off = 0; off < hi[p]; off++)
            ck_assert_msg(tc.hit[p][off], "no output for input %d:%" PRId64, p, off);
        free(tc.hit[p]);
    }
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

static void check_omitted(const rd_kafka_message_t *m, void *arg)
{
    char buf[64];

    (void)arg;
    ck_assert_str_eq(header(m, "crm.error.class", buf, sizeof(buf)), "oversize");
    ck_assert_int_gt(atoi(header(m, "crm.value.omitted_bytes", buf, sizeof(buf))), 3000);
    ck_assert_uint_eq(m->len, 0);
}

/*
 * An output larger than the producer's message.max.bytes can never be sent:
 * the input is dead-lettered (class oversize) rather than retried forever,
 * and as the input itself is too big for the producer, its copy goes without
 * the value, which a header accounts for.
 */
START_TEST(oversize_output_is_dead_lettered)
{
    char big[3400];
    int64_t done[1];
    struct links *links = links_new(NULL);
    struct handlers *hs;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(1);
    snprintf(big, sizeof(big),
             "{\"message_type\":\"email_received\",\"message_id\":\"big\","
             "\"from\":\"a@example.com\",\"body\":\"%3200d\"}",
             7);
    produce(0, big);
    produce(0, "{\"message_type\":\"email_received\",\"message_id\":\"small\","
               "\"from\":\"a@example.com\"}");
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
    cfg = test_config("oversize", NULL);
    add_property(cfg, "message.max.bytes", "2000");
    hs = handlers_new(cfg, links, NULL);
    r = test_router(hs);
    c = start(cfg, r);
    poll_until(c, 2);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_eq(consumer_stats(c)->dead_letters, 1);
    ck_assert_uint_eq(consumer_stats(c)->ok, 1);
    consumer_free(c);
    ck_assert_int_eq(read_topic("crm.inbound.dlq", 2, check_omitted, NULL), 1);
    committed("oversize", 1, done);
    ck_assert_int_eq(done[0], 2);
    router_free(r);
    handlers_free(hs);
    links_free(links);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* The broker's refusal is named in the dead letter, which keeps the original value. */
static void check_refused(const rd_kafka_message_t *m, void *arg)
{
    char buf[512];

    (void)arg;
    ck_assert_str_eq(header(m, "crm.error.class", buf, sizeof(buf)), "oversize");
    ck_assert_str_eq(header(m, "crm.error.reason", buf, sizeof(buf)),
                     "the broker refused an output: Broker: Message size too large");
    ck_assert_str_eq(header(m, "crm.source.offset", buf, sizeof(buf)), "0");
    ck_assert_uint_gt(m->len, 0);
}

/*
 * The broker refuses `errors` Produce requests as too large. The first
 * message whose outputs were refused is sent again alone (the batch may have
 * been too big, not its outputs); refused again, it becomes a dead letter
 * instead of stalling its partition. The rest are redone and go through.
 */
static void refused_case(int errors, uint64_t dead)
{
    const int n = 20;
    int64_t done[1];
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(1);
    produce_events(n, 1);
    rd_kafka_mock_push_request_errors(mock, 0 /* Produce */, (size_t)errors,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,  /* the batch */
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE); /* alone */
    cfg = test_config("refused", NULL);
    r = test_router(NULL);
    c = start(cfg, r);
    {
        int64_t deadline = now_ms() + TIMEOUT_MS;

        const int64_t all[1] = {n};

        /* Offset 0 was routed (its outputs refused), then dead-lettered or sent alone. */
        for (int turn = 0;; turn++) {
            ck_assert_int_ge(consumer_poll(c), 0);
            ck_assert_msg(now_ms() < deadline, "only %zu of %d handled", distinct, n);
            if (turn % 5 == 0 && consumer_stats(c)->retries >= 1 &&
                committed_is(consumer_handle(c), 1, all))
                break;
        }
    }
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_eq(consumer_stats(c)->dead_letters, dead);
    ck_assert_uint_eq(consumer_stats(c)->breaker_opens, 0);
    consumer_free(c);
    ck_assert_int_eq(read_topic("crm.inbound.dlq", 2, check_refused, NULL), (int)dead);
    if (!dead)
        ck_assert(seen[0].hit[0]);
    committed("refused", 1, done);
    ck_assert_int_eq(done[0], n);
    router_free(r);
    config_free(cfg);
    cluster_down();
}

START_TEST(refused_output_is_dead_lettered)
{
    refused_case(2, 1);
}
END_TEST

START_TEST(refused_batch_is_sent_again_alone)
{
    refused_case(1, 0);
}
END_TEST

/*
 * With a small processing.max_in_flight consumption pauses again and again
 * while outputs are acknowledged; resuming loses and repeats nothing.
 */
START_TEST(flow_control_pauses_without_loss)
{
    const int parts = 2, n = 1000;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("flow", NULL);
    cfg->processing.max_in_flight = 50;
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_gt(consumer_stats(c)->flow_pauses, 0);
    /* Both waits are counted: for the group's first messages, and for acknowledgements. */
    ck_assert(wait_seconds(tms[ntms - 1], "messages") > 0);
    ck_assert(wait_seconds(tms[ntms - 1], "acknowledgements") > 0);
    consumer_free(c);
    assert_drained("flow", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * A prefetch queue of 32 KiB, filled by fetches of at most 16 KiB a
 * partition: librdkafka stops fetching many times over while 20,000
 * messages drain, and the consumer wakes its fetchers each time the queue
 * runs low. Every wake is counted, in the stats and on /metrics; nothing is
 * lost or repeated. (Without the wakes the drain takes about three times as
 * long, which `make bench` shows and this test does not time.)
 */
START_TEST(prefetch_wakes_fetchers)
{
    const int parts = 4, n = 20000;
    struct config *cfg;
    struct router *r;
    struct consumer *c;
    char *text = NULL, series[64];
    size_t len;
    const char *at;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("wake", NULL);
    add_property(cfg, "queued.max.messages.kbytes", "32");
    add_property(cfg, "max.partition.fetch.bytes", "16384");
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_ge(consumer_stats(c)->fetch_wakeups, 2);
    ck_assert_int_eq(metrics_render(telemetry_registry(tms[ntms - 1]), &text, &len), 0);
    snprintf(series, sizeof(series), "\ncrm_consumer_fetch_wakeups_total %" PRIu64 "\n",
             consumer_stats(c)->fetch_wakeups);
    at = strstr(text, series);
    ck_assert_msg(at != NULL, "no %s in:\n%s", series + 1, text);
    free(text);
    consumer_free(c);
    assert_drained("wake", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * Acknowledgements take 1.5 s (the outputs' leader is slow): waiting for them
 * at processing.max_in_flight outlasts the loop's patience, so every
 * partition is paused, then resumed once they come; nothing lost or repeated.
 */
START_TEST(slow_acknowledgements_pause_partitions)
{
    const int parts = 2, n = 100;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    for (int p = 0; p < 4; p++)
        rd_kafka_mock_partition_set_leader(mock, "crm.tickets", p, 3);
    rd_kafka_mock_broker_set_rtt(mock, 3, 1500);
    cfg = test_config("slow_acks", NULL);
    cfg->processing.batch_size = 10;
    cfg->processing.max_in_flight = 20;
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until(c, (uint64_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_gt(consumer_stats(c)->flow_stalls, 0);
    consumer_free(c);
    assert_drained("slow_acks", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * One message fails twice: the first failure opens the breaker (threshold 1)
 * and nothing at all is handled while it is open; the second fails its trial
 * (it re-opens) or, if another partition's success closed it first, opens it
 * again; the third succeeds. In the end every offset was handled once, in
 * order, and committed.
 *
 * The threshold is 1 because failures in a row are not deterministic here:
 * a failure counts when it is handled, a success when its output is
 * acknowledged (up to linger.ms later), so other partitions' successes may
 * land between the retries of the failing one. check_breaker counts them.
 */
START_TEST(circuit_breaker_pauses_and_skips_nothing)
{
    const int parts = 4, n = 2000;
    int64_t deadline;
    bool saw_not_ready = false;
    struct config *cfg;
    struct router *r;
    struct consumer *c;
    char body[512];

    cluster_up(parts);
    produce_events(n, parts);
    fail_partition = 1;
    fail_offset = 300;
    fail_left = 2;
    cfg = test_config("breaker", NULL);
    cfg->circuit_breaker.failure_threshold = 1;
    r = test_router(NULL);
    c = start(cfg, r);
    deadline = now_ms() + TIMEOUT_MS;
    while (seen_total() < (size_t)n) {
        uint64_t before = consumer_stats(c)->messages, opens = consumer_stats(c)->breaker_opens;
        bool was_open = consumer_stats(c)->breaker_state == BREAKER_OPEN;

        ck_assert_int_ge(consumer_poll(c), 0);
        /* Open all through this poll (not half-open for a trial that failed and re-opened it). */
        if (was_open && consumer_stats(c)->breaker_state == BREAKER_OPEN &&
            consumer_stats(c)->breaker_opens == opens) {
            ck_assert_uint_eq(consumer_stats(c)->messages, before);
            ck_assert_int_eq(consumer_stats(c)->paused, consumer_stats(c)->assigned);
            ck_assert(!telemetry_ready(tms[ntms - 1], body, sizeof(body)));
            ck_assert_ptr_nonnull(strstr(body, "\"breaker\":{\"ok\":false,\"state\":\"open\"}"));
            saw_not_ready = true;
        }
        if (now_ms() >= deadline)
            ck_abort_msg("only %zu of %d handled%s", seen_total(), n, stall_report(c));
    }
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert(saw_not_ready);
    ck_assert_int_eq(attempts_at_fail, 3);
    ck_assert_uint_eq(consumer_stats(c)->breaker_opens, 2);
    ck_assert_int_eq(consumer_stats(c)->breaker_state, BREAKER_CLOSED);
    consumer_free(c);
    assert_drained("breaker", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * A producer queue far smaller than processing.max_in_flight fills up: that
 * is backpressure (consumption pauses until it drains), never a loss and
 * never a reason to open the breaker.
 */
START_TEST(full_producer_queue_pauses_without_loss)
{
    const int parts = 2, n = 1000;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("queue_full", NULL);
    cfg->processing.max_in_flight = 100000;
    cfg->circuit_breaker.failure_threshold = 1;
    add_property(cfg, "queue.buffering.max.messages", "20");
    r = test_router(NULL);
    c = start(cfg, r);
    poll_until_handled(c, (size_t)n);
    ck_assert_int_eq(consumer_close(c), 0);
    ck_assert_uint_gt(consumer_stats(c)->flow_pauses, 0);
    ck_assert_uint_eq(consumer_stats(c)->breaker_opens, 0);
    consumer_free(c);
    assert_drained("queue_full", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * The breaker is open when a second member joins: every partition the eager
 * rebalance gives back to the first member is paused again at once, and it
 * handles nothing until the breaker lets go. Then everything is handled.
 */
START_TEST(breaker_pause_survives_rebalance)
{
    const int parts = 4, n = 2000;
    int64_t hi[4], done[4], deadline = now_ms() + TIMEOUT_MS;
    struct config *cfg;
    struct router *r;
    struct consumer *a, *b;
    size_t dups;
    uint64_t handled, held_back;

    cluster_up(parts);
    produce_events(n, parts);
    fail_partition = 0;
    fail_offset = 10;
    fail_left = 1; /* opens A's breaker for good; B, later, sees no failure */
    cfg = test_config("breaker-rebalance", NULL);
    cfg->circuit_breaker.failure_threshold = 1;
    cfg->circuit_breaker.open_timeout_s = 600;
    add_property(cfg, "auto.commit.interval.ms", "200");
    r = test_router(NULL);
    a = start(cfg, r);
    while (consumer_stats(a)->breaker_state != BREAKER_OPEN) {
        ck_assert_int_ge(consumer_poll(a), 0);
        ck_assert_msg(now_ms() < deadline, "the breaker did not open");
    }
    b = start(cfg, r);
    while (consumer_stats(a)->assigns < 2 || consumer_stats(b)->assigns < 1 ||
           consumer_stats(a)->assigned + consumer_stats(b)->assigned != parts) {
        ck_assert_int_ge(consumer_poll(a), 0);
        ck_assert_int_ge(consumer_poll(b), 0);
        ck_assert_msg(now_ms() < deadline, "no rebalance");
    }
    ck_assert_int_gt(consumer_stats(a)->assigned, 0);
    ck_assert_int_lt(consumer_stats(a)->assigned, parts);
    ck_assert_int_eq(consumer_stats(a)->paused, consumer_stats(a)->assigned);
    /* Paused in librdkafka too: nothing is even fetched, let alone handled. */
    handled = consumer_stats(a)->messages;
    held_back = consumer_stats(a)->held_back;
    for (int i = 0; i < 50; i++) {
        ck_assert_int_ge(consumer_poll(a), 0);
        ck_assert_int_ge(consumer_poll(b), 0);
    }
    ck_assert_int_eq(consumer_stats(a)->breaker_state, BREAKER_OPEN);
    ck_assert_uint_eq(consumer_stats(a)->messages, handled);
    ck_assert_uint_eq(consumer_stats(a)->held_back, held_back);
    ck_assert_int_eq(consumer_stats(a)->paused, consumer_stats(a)->assigned);

    /* A leaves with its breaker open; B, whose breaker is closed, does the rest. */
    ck_assert_int_eq(consumer_close(a), 0);
    consumer_free(a);
    for (int p = 0; p < parts; p++)
        hi[p] = high_watermark(p);
    for (int turn = 0;; turn++) {
        ck_assert_int_ge(consumer_poll(b), 0);
        ck_assert_msg(now_ms() < deadline, "B did not finish A's partitions in time");
        if (turn % 5 == 0 && consumer_stats(b)->assigned == parts &&
            committed_is(consumer_handle(b), parts, hi))
            break;
    }
    ck_assert_int_eq(consumer_close(b), 0);
    consumer_free(b);
    ck_assert_uint_eq(count_missing(parts, hi, &dups), 0);
    committed("breaker-rebalance", parts, done);
    for (int p = 0; p < parts; p++)
        ck_assert_int_eq(done[p], hi[p]);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* The value of a property of c's consumer, as librdkafka reports it. */
static const char *setting(struct consumer *c, const char *name, char *buf, size_t len)
{
    const rd_kafka_conf_t *conf = rd_kafka_conf(consumer_handle(c));

    ck_assert_int_eq(rd_kafka_conf_get(conf, name, buf, &len), RD_KAFKA_CONF_OK);
    return buf;
}

/* The daemon's prefetch and statistics defaults, and the operator's values over them. */
START_TEST(tuned_defaults_yield_to_the_operator)
{
    struct router *r;
    struct config *cfg;
    struct consumer *c;
    char buf[64];

    cluster_up(1);
    r = test_router(NULL);
    cfg = test_config("settings", NULL);
    c = start(cfg, r);
    ck_assert_str_eq(setting(c, "queued.min.messages", buf, sizeof(buf)), "1000000");
    ck_assert_str_eq(setting(c, "queued.max.messages.kbytes", buf, sizeof(buf)), "16384");
    ck_assert_str_eq(setting(c, "statistics.interval.ms", buf, sizeof(buf)), "5000");
    ck_assert_str_eq(setting(c, "enable.auto.offset.store", buf, sizeof(buf)), "false");
    consumer_free(c);
    config_free(cfg);

    cfg = test_config("settings", NULL);
    add_property(cfg, "queued.min.messages", "5000");
    add_property(cfg, "queued.max.messages.kbytes", "1024");
    add_property(cfg, "statistics.interval.ms", "60000");
    add_property(cfg, "linger.ms", "7"); /* the producer's only: not the consumer's */
    c = start(cfg, r);
    ck_assert_str_eq(setting(c, "queued.min.messages", buf, sizeof(buf)), "5000");
    ck_assert_str_eq(setting(c, "queued.max.messages.kbytes", buf, sizeof(buf)), "1024");
    ck_assert_str_eq(setting(c, "statistics.interval.ms", buf, sizeof(buf)), "60000");
    ck_assert_str_eq(setting(c, "session.timeout.ms", buf, sizeof(buf)), "6000");
    ck_assert_str_eq(setting(c, "linger.ms", buf, sizeof(buf)), "5");
    consumer_free(c);
    config_free(cfg);
    router_free(r);
    cluster_down();
}
END_TEST

/* One case per test, so CK_RUN_CASE=name runs just that one. */
/*
 * Pause a partition in librdkafka behind the consumer's back, as a resume
 * lost inside librdkafka would leave it: the consumer believes it fetched.
 */
static void pause_behind_back(struct consumer *c, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, TOPIC, partition);
    ck_assert_int_eq(rd_kafka_pause_partitions(consumer_handle(c), l), 0);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Poll until partition 0 has had a message handled, then pause it behind the consumer's back. */
static void stop_partition0(struct consumer *c)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;

    while (seen[0].n == 0) {
        ck_assert_int_ge(consumer_poll(c), 0);
        ck_assert_msg(now_ms() < deadline, "nothing of partition 0 handled%s", stall_report(c));
    }
    pause_behind_back(c, 0);
}

/*
 * librdkafka stops fetching a partition the consumer never paused (here the
 * test pauses it behind the consumer's back, as a resume lost inside
 * librdkafka would leave it): the stall watch sees its messages wait while
 * the rest is drained, fetches it again from where it stopped after
 * processing.stall_timeout_s, and nothing is lost or repeated.
 */
START_TEST(stalled_partition_is_fetched_again)
{
    const int parts = 2, n = 2000;
    struct config *cfg;
    struct router *r;
    struct consumer *c;
    char *text = NULL;
    size_t len;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("stall", NULL);
    cfg->processing.stall_timeout_s = 1;
    /* Small fetches: partition 0 has more messages waiting when it stops. */
    add_property(cfg, "max.partition.fetch.bytes", "1024");
    r = test_router(NULL);
    c = start(cfg, r);
    stop_partition0(c);
    ck_assert_uint_lt(seen[0].n, (size_t)n / parts);

    poll_until_handled(c, (size_t)n);
    ck_assert_uint_ge(consumer_stats(c)->stalls, 1);
    ck_assert_int_eq(metrics_render(telemetry_registry(tms[ntms - 1]), &text, &len), 0);
    ck_assert_msg(strstr(text, "\ncrm_consumer_partition_stalls_total 0\n") == NULL &&
                      strstr(text, "\ncrm_consumer_partition_stalls_total ") != NULL,
                  "no stall counted in:\n%s", text);
    free(text);
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    assert_drained("stall", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * The same for a partition that no fetch has answered since its assignment:
 * its leader is down while the group assigns it, and librdkafka is made to
 * stop fetching it before the leader comes back. The watch fetches it again
 * from its committed offset (none here: the earliest).
 */
START_TEST(unfetched_partition_is_fetched_again)
{
    static const struct {
        const char *topic;
        int partitions;
    } outputs[] = {
        {"crm.tickets", 4}, {"crm.responses", 4}, {"crm.identities", 2}, {"crm.inbound.dlq", 2}};
    const int parts = 2, n = 2000;
    int64_t deadline;
    uint64_t before;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    /* Partition 0 alone on broker 3; the group's coordinator and the outputs elsewhere. */
    ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, TOPIC, 0, 3), 0);
    ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, TOPIC, 1, 1), 0);
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++)
        for (int p = 0; p < outputs[i].partitions; p++)
            ck_assert_int_eq(
                rd_kafka_mock_partition_set_leader(mock, outputs[i].topic, p, 1 + p % 2), 0);
    ck_assert_int_eq(rd_kafka_mock_coordinator_set(mock, "group", "unfetched", 1), 0);
    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mock, 3), 0);
    cfg = test_config("unfetched", NULL);
    cfg->processing.stall_timeout_s = 1;
    r = test_router(NULL);
    c = start(cfg, r);
    deadline = now_ms() + TIMEOUT_MS;
    while (seen[1].n < (size_t)n / parts) {
        ck_assert_int_ge(consumer_poll(c), 0);
        ck_assert_msg(now_ms() < deadline, "partition 1 not drained%s", stall_report(c));
    }
    ck_assert_uint_eq(seen[0].n, 0);
    pause_behind_back(c, 0);
    before = consumer_stats(c)->stalls;
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mock, 3), 0);

    poll_until_handled(c, (size_t)n);
    ck_assert_uint_gt(consumer_stats(c)->stalls, before);
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    assert_drained("unfetched", parts);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * The same with the watch off: partition 0 stays unfetched, which shows that
 * the case above can fail. A shorter wait, since nothing is expected.
 */
START_TEST(stall_watch_can_be_turned_off)
{
    const int parts = 2, n = 2000;
    int64_t deadline;
    struct config *cfg;
    struct router *r;
    struct consumer *c;

    cluster_up(parts);
    produce_events(n, parts);
    cfg = test_config("nowatch", NULL);
    cfg->processing.stall_timeout_s = 0;
    add_property(cfg, "max.partition.fetch.bytes", "1024");
    r = test_router(NULL);
    c = start(cfg, r);
    stop_partition0(c);
    /* Partition 1 drains; then 3 s, three times the timeout above, with partition 0 still. */
    deadline = now_ms() + TIMEOUT_MS;
    while (seen[1].n < (size_t)n / parts) {
        ck_assert_int_ge(consumer_poll(c), 0);
        ck_assert_msg(now_ms() < deadline, "partition 1 not drained%s", stall_report(c));
    }
    size_t before = seen[0].n;
    deadline = now_ms() + 3000;
    while (now_ms() < deadline)
        ck_assert_int_ge(consumer_poll(c), 0);
    ck_assert_uint_eq(seen[0].n, before);
    ck_assert_uint_lt(seen[0].n, (size_t)n / parts);
    ck_assert_uint_eq(consumer_stats(c)->stalls, 0);
    ck_assert_int_eq(consumer_close(c), 0);
    consumer_free(c);
    router_free(r);
    config_free(cfg);
    cluster_down();
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *consumer_suite(void)
{
    Suite *s = suite_create("consumer");

    add_case(s, "drain", drain_commits_high_watermarks);
    add_case(s, "idle_commit", caught_up_commits_at_once);
    add_case(s, "idle_commit_cooperative", caught_up_cooperative_waits_for_auto_commit);
    add_case(s, "restart", stop_midstream_and_restart_skips_nothing);
    add_case(s, "retry", transient_failure_is_retried_in_order);
    add_case(s, "rebalance_eager", rebalance_eager);
    add_case(s, "rebalance_cooperative", rebalance_cooperative);
    add_case(s, "mixed", builtin_types_and_poison);
    add_case(s, "failed_outputs", failed_outputs_are_redone);
    add_case(s, "oversize_output", oversize_output_is_dead_lettered);
    add_case(s, "flow_control", flow_control_pauses_without_loss);
    add_case(s, "slow_acks", slow_acknowledgements_pause_partitions);
    add_case(s, "circuit_breaker", circuit_breaker_pauses_and_skips_nothing);
    add_case(s, "queue_full", full_producer_queue_pauses_without_loss);
    add_case(s, "refused_output", refused_output_is_dead_lettered);
    add_case(s, "refused_batch", refused_batch_is_sent_again_alone);
    add_case(s, "breaker_rebalance", breaker_pause_survives_rebalance);
    add_case(s, "close_without_brokers", close_without_brokers_is_bounded);
    add_case(s, "settings", tuned_defaults_yield_to_the_operator);
    add_case(s, "prefetch_wake", prefetch_wakes_fetchers);
    add_case(s, "stall_watch", stalled_partition_is_fetched_again);
    add_case(s, "stall_watch_unfetched", unfetched_partition_is_fetched_again);
    add_case(s, "stall_watch_off", stall_watch_can_be_turned_off);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(consumer_suite());
    int failed;

    log_init(getenv("TEST_LOG_DEBUG") ? LOG_DEBUG : LOG_WARNING);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
