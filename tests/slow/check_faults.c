/* SPDX-License-Identifier: MIT */
/* check_faults.c -- the consumer core against broker faults injected into an in-process mock. */

/*
 * Each case starts a mock cluster, a consumer and the inputs' first half,
 * injects one fault once the first commits are in, produces the second half
 * while the fault lasts, and drains. A separate client reads the group's
 * committed offsets every 100 ms while an observer reads the output topics:
 * no committed offset may pass an input whose outputs are not on them. At
 * the end the committed offsets are the high watermarks, every input has its
 * outputs (or its dead letter), in input order per partition, and the
 * metrics say what happened.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "consumer.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "telemetry.h"

#define INPUT      "crm.inbound"
#define TICKETS    "crm.tickets"
#define RESPONSES  "crm.responses"
#define DLQ        "crm.inbound.dlq"
#define GROUP      "faults"
#define PARTS      2
#define PER_PART   300 /* inputs per input partition: offsets 0 .. PER_PART - 1 */
#define CHUNK      20  /* inputs produced per loop turn once the fault is in */
#define TIMEOUT_MS 60000

/*
 * Who leads what, so a fault pushed on one broker hits one kind of traffic:
 * broker 1 leads the input partitions (the consumer's fetches), broker 2 the
 * output partitions (the consumer's produce requests), broker 3 coordinates
 * the group (its offset commits).
 */
#define IN_LEADER  1
#define OUT_LEADER 2
#define COORD      3

/* What the test reads back, per output kind. */
enum kind { K_TICKET, K_RESPONSE, K_DLQ, KINDS };

/* The output partitions the observer reads, in the order of enum kind. */
static const struct {
    const char *topic;
    int partitions;
} out_topics[] = {{TICKETS, 2}, {RESPONSES, 2}, {DLQ, 1}};
#define NOUT 5 /* partitions over all of out_topics */

/* A growing list of offsets. */
struct seq {
    int64_t *v;
    size_t n, cap;
};

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer; /* writes the inputs */
static rd_kafka_t *observer; /* reads the outputs as they arrive */
static rd_kafka_t *checker;  /* reads the group's committed offsets */
static int delivery_failures;

/* What the handler did: every offset it emitted outputs for, per input partition, in order. */
static struct seq handled[PARTS];
/* What the observer found: per input partition and output kind, in output order. */
static struct seq found[PARTS][2];
static int outs[PARTS][KINDS][PER_PART];
static int64_t out_next[NOUT]; /* next offset the observer expects, per output partition */
static int records;            /* records read from the output topics */
static int dlq_wrong_class;    /* dead letters whose class is not the expected one */
static const char *dlq_class;  /* the class dead letters must carry; NULL: none expected */
static int64_t prefix[PARTS];  /* inputs below this have all their outputs (or a dead letter) */
static int checks;             /* committed offsets compared with the outputs during the run */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seq_add(struct seq *s, int64_t v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 512;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        ck_assert_ptr_nonnull(s->v);
    }
    s->v[s->n++] = v;
}

/*
 * One ticket and one response per input, both keyed by the input partition
 * (so each input partition's outputs share one output partition per topic and
 * their order can be checked), valued "partition:offset".
 */
static enum outcome test_handler(void *opaque, const cJSON *msg, const struct message_meta *meta,
                                 struct emitter *out, struct route_result *res)
{
    char key[16], value[64];
    int k, n, rc;

    (void)opaque;
    (void)msg;
    ck_assert(meta->partition >= 0 && meta->partition < PARTS);
    ck_assert(meta->offset >= 0 && meta->offset < PER_PART);
    k = snprintf(key, sizeof(key), "%" PRId32, meta->partition);
    n = snprintf(value, sizeof(value), "%" PRId32 ":%" PRId64, meta->partition, meta->offset);
    rc = out->emit(out, OUTPUT_TICKETS, key, (size_t)k, value, (size_t)n, 0);
    if (rc == 0)
        rc = out->emit(out, OUTPUT_RESPONSES, key, (size_t)k, value, (size_t)n, 0);
    if (rc < 0)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "test: emit: %d", rc);
    seq_add(&handled[meta->partition], meta->offset);
    return OUTCOME_OK;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        delivery_failures++;
}

/* The test's own clients log through ours, at our threshold. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_write(level, "test client: %s: %s", fac, buf);
}

static rd_kafka_conf_t *client_conf(const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    rd_kafka_conf_set_log_cb(conf, quiet_log);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mock), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    if (group) {
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    }
    return conf;
}

static void make_topic(const char *topic, int partitions, int32_t leader)
{
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, topic, partitions, 1), 0);
    for (int p = 0; p < partitions; p++)
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, topic, p, leader), 0);
}

static void cluster_up(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l;

    rd_kafka_conf_set_log_cb(conf, quiet_log);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(mock_rk, "%s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, 3);
    ck_assert_ptr_nonnull(mock);
    make_topic(INPUT, PARTS, IN_LEADER);
    for (size_t i = 0; i < sizeof(out_topics) / sizeof(out_topics[0]); i++)
        make_topic(out_topics[i].topic, out_topics[i].partitions, OUT_LEADER);
    make_topic("crm.identities", 1, OUT_LEADER);
    ck_assert_int_eq(rd_kafka_mock_coordinator_set(mock, "group", GROUP, COORD), 0);

    conf = client_conf(NULL);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(producer, "%s", errstr);

    conf = client_conf("faults-observer");
    observer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(observer, "%s", errstr);
    l = rd_kafka_topic_partition_list_new(NOUT);
    for (size_t i = 0; i < sizeof(out_topics) / sizeof(out_topics[0]); i++)
        for (int p = 0; p < out_topics[i].partitions; p++)
            rd_kafka_topic_partition_list_add(l, out_topics[i].topic, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(l->cnt, NOUT);
    ck_assert_int_eq(rd_kafka_assign(observer, l), 0);
    rd_kafka_topic_partition_list_destroy(l);

    conf = client_conf(GROUP);
    checker = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(checker, "%s", errstr);
}

static void cluster_down(void)
{
    rd_kafka_destroy(producer);
    rd_kafka_consumer_close(observer);
    rd_kafka_destroy(observer);
    rd_kafka_consumer_close(checker);
    rd_kafka_destroy(checker);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    for (int p = 0; p < PARTS; p++) {
        free(handled[p].v);
        free(found[p][0].v);
        free(found[p][1].v);
    }
    memset(handled, 0, sizeof(handled));
    memset(found, 0, sizeof(found));
    memset(outs, 0, sizeof(outs));
    memset(out_next, 0, sizeof(out_next));
    memset(prefix, 0, sizeof(prefix));
    records = dlq_wrong_class = checks = 0;
}

/* Input number i goes to partition i % PARTS, at offset i / PARTS. */
static void produce_input(int i)
{
    char value[128];
    rd_kafka_resp_err_t err;
    int n = snprintf(value, sizeof(value), "{\"message_type\":\"test_event\",\"seq\":%d}", i);

    do {
        err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(INPUT), RD_KAFKA_V_PARTITION(i % PARTS),
                                RD_KAFKA_V_VALUE(value, (size_t)n),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 100);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    ck_assert_int_eq(err, 0);
}

/* A partition's high watermark, asking again while metadata catch up with a new leader. */
static int64_t high_watermark(const char *topic, int32_t partition)
{
    int64_t deadline = now_ms() + 20000, lo, hi;
    rd_kafka_resp_err_t err;

    while ((err = rd_kafka_query_watermark_offsets(producer, topic, partition, &lo, &hi, 5000))) {
        ck_assert_msg(now_ms() < deadline, "%s [%" PRId32 "]: high watermark: %s", topic, partition,
                      rd_kafka_err2str(err));
        rd_kafka_poll(producer, 200);
    }
    return hi;
}

static int header_int(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vlen;

    ck_assert_int_eq(rd_kafka_message_headers(m, &h), 0);
    ck_assert_msg(rd_kafka_header_get_last(h, name, &v, &vlen) == 0, "no header %s", name);
    ck_assert_uint_lt(vlen, len);
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return atoi(buf);
}

static int out_index(const char *topic, int32_t partition)
{
    int base = 0;

    for (size_t i = 0; i < sizeof(out_topics) / sizeof(out_topics[0]); i++) {
        if (strcmp(out_topics[i].topic, topic) == 0)
            return base + partition;
        base += out_topics[i].partitions;
    }
    ck_abort_msg("observer: unexpected topic %s", topic);
    return -1;
}

static void observe(const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int idx = out_index(topic, m->partition);
    char buf[128];
    int32_t p;
    int64_t off;
    enum kind k;

    ck_assert_msg(m->offset == out_next[idx],
                  "%s [%" PRId32 "]: offset %" PRId64 ", expected %" PRId64, topic, m->partition,
                  m->offset, out_next[idx]);
    out_next[idx] = m->offset + 1;
    records++;
    if (strcmp(topic, DLQ) == 0) {
        k = K_DLQ;
        p = header_int(m, "crm.source.partition", buf, sizeof(buf));
        off = header_int(m, "crm.source.offset", buf, sizeof(buf));
        header_int(m, "crm.error.class", buf, sizeof(buf));
        if (!dlq_class || strcmp(buf, dlq_class) != 0) {
            log_warnx("dead letter of %" PRId32 ":%" PRId64 " has class %s", p, off, buf);
            dlq_wrong_class++;
        }
    } else {
        k = strcmp(topic, TICKETS) == 0 ? K_TICKET : K_RESPONSE;
        ck_assert_uint_lt(m->len, sizeof(buf));
        memcpy(buf, m->payload, m->len);
        buf[m->len] = '\0';
        ck_assert_int_eq(sscanf(buf, "%" SCNd32 ":%" SCNd64, &p, &off), 2);
        ck_assert_msg(m->key_len == 1 && ((const char *)m->key)[0] == '0' + p,
                      "output of input partition %" PRId32 " with another key", p);
        seq_add(&found[p][k], off);
    }
    ck_assert(p >= 0 && p < PARTS && off >= 0 && off < PER_PART);
    outs[p][k][off]++;
}

/* Read what the output topics hold now, without waiting. */
static void observe_available(void)
{
    rd_kafka_message_t *m;

    while ((m = rd_kafka_consumer_poll(observer, 0))) {
        ck_assert_msg(!m->err, "observer: %s", rd_kafka_message_errstr(m));
        observe(m);
        rd_kafka_message_destroy(m);
    }
}

static bool complete(int p, int64_t off)
{
    return (outs[p][K_TICKET][off] > 0 && outs[p][K_RESPONSE][off] > 0) || outs[p][K_DLQ][off] > 0;
}

static void advance_prefix(void)
{
    for (int p = 0; p < PARTS; p++)
        while (prefix[p] < PER_PART && complete(p, prefix[p]))
            prefix[p]++;
}

/* The group's committed offsets (0 where none yet); false when the coordinator did not answer. */
static bool read_committed(int64_t *out)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
    bool ok;

    for (int p = 0; p < PARTS; p++)
        rd_kafka_topic_partition_list_add(l, INPUT, p);
    ok = rd_kafka_committed(checker, l, 5000) == 0;
    for (int p = 0; ok && p < PARTS; p++) {
        ok = l->elems[p].err == 0;
        out[p] = l->elems[p].offset < 0 ? 0 : l->elems[p].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

/*
 * Read the output topics up to the high watermarks they have now: what the
 * brokers had acknowledged before this call, and maybe a little more.
 */
static void observe_to_end(void)
{
    int64_t deadline = now_ms() + 30000;
    int idx = 0;

    for (size_t i = 0; i < sizeof(out_topics) / sizeof(out_topics[0]); i++) {
        for (int p = 0; p < out_topics[i].partitions; p++, idx++) {
            int64_t hi = high_watermark(out_topics[i].topic, p);

            while (out_next[idx] < hi) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(observer, 100);

                ck_assert_msg(now_ms() < deadline, "%s [%d]: read %" PRId64 " of %" PRId64,
                              out_topics[i].topic, p, out_next[idx], hi);
                if (m) {
                    ck_assert_msg(!m->err, "observer: %s", rd_kafka_message_errstr(m));
                    observe(m);
                    rd_kafka_message_destroy(m);
                }
            }
        }
    }
    advance_prefix();
}

/*
 * The invariant: every input below a committed offset has all its outputs
 * (or its dead letter) on the output topics. When the observer has not seen
 * them yet, it reads up to the output topics' ends as they are after the
 * committed offsets were read: outputs that arrive later do not count.
 * Returns whether the committed offsets could be read, in com.
 */
static bool check_committed(int64_t *com)
{
    bool behind = false;

    if (!read_committed(com))
        return false;
    observe_available();
    advance_prefix();
    for (int p = 0; p < PARTS; p++)
        behind = behind || com[p] > prefix[p];
    if (behind)
        observe_to_end();
    for (int p = 0; p < PARTS; p++)
        ck_assert_msg(com[p] <= prefix[p],
                      "partition %d committed at %" PRId64 " but input %" PRId64
                      " has no complete outputs (tickets %d, responses %d, dead letters %d)",
                      p, com[p], prefix[p], outs[p][K_TICKET][prefix[p]],
                      outs[p][K_RESPONSE][prefix[p]], outs[p][K_DLQ][prefix[p]]);
    checks++;
    return true;
}

/* The value of one sample of the consumer's metrics, e.g. `name{label="v"}`; 0 when absent. */
static double metric(struct telemetry *tm, const char *sample)
{
    char *text, *line;
    size_t len, n = strlen(sample);
    double v = 0;

    ck_assert_int_eq(metrics_render(telemetry_registry(tm), &text, &len), 0);
    for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    }
    free(text);
    return v;
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
 * A fault: what to push where, or a change of the cluster's shape, injected
 * once the first commits are in, and undone (heal) heal_ms later.
 */
struct fault {
    const char *name; /* for the summary line; the error's name when NULL */
    int16_t apikey;   /* pushed errors: the request type, -1 for none */
    int32_t broker;   /* ... on this broker */
    rd_kafka_resp_err_t err;
    int count;
    void (*inject)(void); /* another fault, or NULL */
    void (*heal)(void);   /* undo it, or NULL */
    int heal_ms;
    const char *properties[4][2]; /* extra librdkafka properties for the consumer */
    const char *dlq_class;        /* the dead letters' class, when the fault makes some */
    bool redo;                    /* inputs may be handled again (a rebalance, a rewind) */
    /*
     * The broker may append a resent batch twice. librdkafka's mock cluster
     * checks the sequence numbers of transactional producers only, so it
     * keeps both copies of a batch an idempotent producer sent again after a
     * timeout; a Kafka broker drops the second one.
     */
    bool resends;
};

/* What a run leaves for the scenario's own assertions; tm is freed by run_end(). */
struct run {
    struct config *cfg;
    struct router *router;
    struct telemetry *tm;
    struct consumer *c;
    double acked;    /* outputs acknowledged, from the metrics */
    int dead;        /* dead letters read back */
    int handled_all; /* inputs handled, counting repeats */
    int resent;      /* records that repeat one already on the topic with no new handling */
};

static size_t pending_faults(const struct fault *f)
{
    size_t cnt = 0;

    if (f->apikey >= 0)
        ck_assert_int_eq(rd_kafka_mock_broker_error_stack_cnt(mock, f->broker, f->apikey, &cnt), 0);
    return cnt;
}

/* Push the fault's errors, up to four per request to the cluster (each answered at once). */
static void push_errors(const struct fault *f)
{
    for (int left = f->count; left > 0; left -= 4) {
        size_t n = left < 4 ? (size_t)left : 4;

        ck_assert_int_eq(rd_kafka_mock_broker_push_request_error_rtts(mock, f->broker, f->apikey, n,
                                                                      f->err, 0, f->err, 0, f->err,
                                                                      0, f->err, 0),
                         0);
    }
}

/* Whether `sub` appears within `all` in order. */
static bool subsequence(const struct seq *sub, const struct seq *all)
{
    size_t j = 0;

    for (size_t i = 0; i < sub->n; i++) {
        while (j < all->n && all->v[j] != sub->v[i])
            j++;
        if (j == all->n)
            return false;
        j++;
    }
    return true;
}

static void run_case(const struct fault *f, struct run *run)
{
    static const char *const output_names[] = {TICKETS, RESPONSES, "crm.identities", DLQ};
    struct router_limits lim = {.max_message_bytes = 1048576,
                                .max_nesting_depth = 64,
                                .unknown_type = UNKNOWN_TYPE_DEAD_LETTER};
    int64_t deadline, injected = -1, com[PARTS] = {0}, next_check = 0;
    bool healed = false;
    char err[512];
    int produced = 0;

    memset(run, 0, sizeof(*run));
    dlq_class = f->dlq_class;
    cluster_up();
    run->cfg = config_new_defaults();
    ck_assert_ptr_nonnull(run->cfg);
    run->cfg->kafka.brokers = strdup(rd_kafka_mock_cluster_bootstraps(mock));
    free(run->cfg->kafka.group_id);
    run->cfg->kafka.group_id = strdup(GROUP);
    run->cfg->processing.batch_size = 50;
    run->cfg->processing.batch_timeout_ms = 50;
    run->cfg->processing.shutdown_timeout_s = 20;
    run->cfg->retry.initial_backoff_ms = 10;
    run->cfg->retry.max_backoff_ms = 200;
    run->cfg->circuit_breaker.open_timeout_s = 1;
    add_property(run->cfg, "session.timeout.ms", "6000");
    add_property(run->cfg, "auto.commit.interval.ms", "200");
    /* TEST_KAFKA_DEBUG=cgrp,fetch (say) turns on librdkafka's own debug log. */
    if (getenv("TEST_KAFKA_DEBUG"))
        add_property(run->cfg, "debug", getenv("TEST_KAFKA_DEBUG"));
    for (int i = 0; i < 4 && f->properties[i][0]; i++)
        add_property(run->cfg, f->properties[i][0], f->properties[i][1]);
    run->router = router_new(&lim);
    ck_assert_ptr_nonnull(run->router);
    ck_assert_int_eq(router_add(run->router, "test_event", test_handler, NULL), 0);
    run->tm = telemetry_new(run->cfg);
    ck_assert_ptr_nonnull(run->tm);

    run->c = consumer_new(run->cfg, run->router, run->tm, err, sizeof(err));
    ck_assert_msg(run->c, "consumer_new: %s", err);
    /* The first half goes in while the group forms; the second comes during the fault. */
    for (; produced < PARTS * PER_PART / 2; produced++)
        produce_input(produced);
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);

    deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        bool done = false;

        ck_assert_int_ge(consumer_poll(run->c), 0);
        observe_available();
        if (now_ms() >= next_check && check_committed(com)) {
            next_check = now_ms() + 100;
            done = injected >= 0 && healed && produced == PARTS * PER_PART;
            for (int p = 0; p < PARTS; p++)
                done = done && com[p] == PER_PART;
            /* Some commits in: the fault goes in. */
            if (injected < 0 && com[0] + com[1] >= PER_PART / 2) {
                if (f->count > 0)
                    push_errors(f);
                if (f->inject)
                    f->inject();
                injected = now_ms();
                healed = !f->heal;
            }
        }
        if (injected >= 0 && !healed && now_ms() - injected >= f->heal_ms) {
            f->heal();
            healed = true;
        }
        if (injected >= 0 && produced < PARTS * PER_PART) {
            for (int i = 0; i < CHUNK && produced < PARTS * PER_PART; i++)
                produce_input(produced++);
            rd_kafka_poll(producer, 0);
        }
        if (done && pending_faults(f) == 0)
            break;
        ck_assert_msg(now_ms() < deadline,
                      "not drained in time: committed %" PRId64 ", %" PRId64
                      " of %d; %d of %d produced; %zu faults not yet hit",
                      com[0], com[1], PER_PART, produced, PARTS * PER_PART, pending_faults(f));
    }
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), 0);
    ck_assert_int_eq(delivery_failures, 0);
    ck_assert_int_eq(consumer_close(run->c), 0);

    /* The inputs are where the test put them. */
    for (int p = 0; p < PARTS; p++)
        ck_assert_int_eq(high_watermark(INPUT, p), PER_PART);
    /* In the end: committed at the high watermarks, every input has its outputs. */
    ck_assert(read_committed(com));
    for (int p = 0; p < PARTS; p++)
        ck_assert_int_eq(com[p], PER_PART);
    observe_to_end();
    for (int p = 0; p < PARTS; p++)
        ck_assert_int_eq(prefix[p], PER_PART);
    ck_assert_int_gt(checks, 10);
    ck_assert_int_eq(dlq_wrong_class, 0);

    /*
     * Order: each input partition's tickets and responses appear in the
     * order the consumer handled the inputs (repeats of a resent batch
     * aside), and no output appears more often than its input was handled.
     */
    for (int p = 0; p < PARTS; p++) {
        static int times[PER_PART];

        memset(times, 0, sizeof(times));
        for (size_t i = 0; i < handled[p].n; i++)
            times[handled[p].v[i]]++;
        run->handled_all += (int)handled[p].n;
        for (int k = K_TICKET; k <= K_RESPONSE; k++) {
            struct seq first = {0};
            static int shown[PER_PART];

            memset(shown, 0, sizeof(shown));
            for (size_t i = 0; i < found[p][k].n; i++) {
                int64_t off = found[p][k].v[i];

                if (++shown[off] > times[off])
                    run->resent++;
                else
                    seq_add(&first, off);
            }
            ck_assert_msg(subsequence(&first, &handled[p]), "partition %d: %s out of input order",
                          p, out_topics[k].topic);
            free(first.v);
        }
        for (int64_t off = 0; off < PER_PART; off++) {
            run->dead += outs[p][K_DLQ][off];
            ck_assert_int_le(outs[p][K_DLQ][off], 1);
            if (f->redo)
                continue;
            /* Exactly once: handled once, and one ticket and one response, or one dead letter. */
            ck_assert_int_eq(times[off], 1);
            if (outs[p][K_DLQ][off] == 0 && !f->resends) {
                ck_assert_int_eq(outs[p][K_TICKET][off], 1);
                ck_assert_int_eq(outs[p][K_RESPONSE][off], 1);
            }
        }
        if (!f->redo)
            for (size_t i = 0; i < handled[p].n; i++)
                ck_assert_int_eq(handled[p].v[i], (int64_t)i);
    }

    /*
     * The producer added nothing of its own: every record on the output
     * topics is one the consumer saw acknowledged, once (on a broker that
     * deduplicates resent batches).
     */
    for (size_t o = 0; o < sizeof(output_names) / sizeof(output_names[0]); o++) {
        char sample[256];

        snprintf(sample, sizeof(sample),
                 "crm_consumer_outputs_total{topic=\"%s\",status=\"acknowledged\"}",
                 output_names[o]);
        run->acked += metric(run->tm, sample);
    }
    if (!f->resends)
        ck_assert_int_eq(run->resent, 0);
    ck_assert_int_eq((int)run->acked, records - run->resent);
    if (!f->dlq_class)
        ck_assert_int_eq(run->dead, 0);
    fprintf(stderr,
            "faults: %s: %d inputs, %d handled, %d records out, %d dead letters, %d commit checks, "
            "commits ok %.0f failed %.0f, retries %.0f, rebalances %.0f, breaker opens %.0f\n",
            f->name ? f->name : rd_kafka_err2name(f->err), PARTS * PER_PART, run->handled_all,
            records, run->dead, checks,
            metric(run->tm, "crm_consumer_commits_total{status=\"ok\"}"),
            metric(run->tm, "crm_consumer_commits_total{status=\"failed\"}"),
            metric(run->tm, "crm_consumer_retries_total"),
            metric(run->tm, "crm_consumer_rebalances_total{type=\"assign\"}"),
            metric(run->tm, "crm_consumer_circuit_breaker_opens_total"));
}

static void run_end(struct run *run)
{
    consumer_free(run->c);
    telemetry_free(run->tm);
    router_free(run->router);
    config_free(run->cfg);
    cluster_down();
}

static double consumed(struct run *run, const char *status)
{
    char sample[256];

    snprintf(sample, sizeof(sample),
             "kafka_consumer_messages_consumed_total{topic=\"%s\",consumer_group=\"%s\","
             "status=\"%s\"}",
             INPUT, GROUP, status);
    return metric(run->tm, sample);
}

/*
 * OffsetCommit faults. librdkafka retries most commits that timed out or
 * found the coordinator loading; the others fail the commit. Either way a
 * failure is counted, at most once per injected error, and a later commit
 * catches up. ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID also cost the member
 * its assignment (lost: nothing may be committed for it), so the inputs
 * handled since the last good commit are handled again after the rejoin.
 */
static void commit_case(rd_kafka_resp_err_t err, bool fails, bool lost)
{
    struct fault f = {
        .apikey = 8, .broker = COORD, .err = err, .count = lost ? 1 : 3, .redo = lost};
    struct run run;
    double failed;

    run_case(&f, &run);
    failed = metric(run.tm, "crm_consumer_commits_total{status=\"failed\"}");
    if (fails)
        ck_assert_double_ge(failed, 1);
    if (!lost)
        ck_assert_double_le(failed, f.count);
    ck_assert_double_ge(metric(run.tm, "crm_consumer_commits_total{status=\"ok\"}"), 1);
    if (lost)
        ck_assert_double_ge(metric(run.tm, "crm_consumer_rebalances_total{type=\"lost\"}"), 1);
    else
        ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    run_end(&run);
}

START_TEST(commit_request_timed_out)
{
    commit_case(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, false, false);
}
END_TEST

START_TEST(commit_rebalance_in_progress)
{
    commit_case(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, true, false);
}
END_TEST

START_TEST(commit_illegal_generation)
{
    commit_case(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, true, true);
}
END_TEST

START_TEST(commit_unknown_member_id)
{
    commit_case(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID, true, true);
}
END_TEST

START_TEST(commit_coordinator_load_in_progress)
{
    commit_case(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, false, false);
}
END_TEST

/* The coordinator moves to broker 1; the old one answers NOT_COORDINATOR. */
static void move_coordinator(void)
{
    ck_assert_int_eq(rd_kafka_mock_coordinator_set(mock, "group", GROUP, IN_LEADER), 0);
}

START_TEST(commit_not_coordinator)
{
    struct fault f = {.apikey = 8,
                      .broker = COORD,
                      .err = RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                      .count = 1,
                      .inject = move_coordinator,
                      .name = "NOT_COORDINATOR and a new coordinator"};
    struct run run;

    run_case(&f, &run);
    ck_assert_double_ge(metric(run.tm, "crm_consumer_commits_total{status=\"ok\"}"), 1);
    ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    run_end(&run);
}
END_TEST

/* Fetch faults: librdkafka refetches; nothing is handled twice or skipped. */
static void fetch_case(rd_kafka_resp_err_t err)
{
    struct fault f = {.apikey = 1, .broker = IN_LEADER, .err = err, .count = 3};
    struct run run;

    run_case(&f, &run);
    ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    ck_assert_double_eq(metric(run.tm, "crm_consumer_retries_total"), 0);
    run_end(&run);
}

START_TEST(fetch_not_leader)
{
    fetch_case(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
}
END_TEST

START_TEST(fetch_storage_error)
{
    fetch_case(RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR);
}
END_TEST

static void leaders_move(void)
{
    for (int p = 0; p < PARTS; p++)
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, INPUT, p, 2 + p), 0);
}

static void leaders_back(void)
{
    for (int p = 0; p < PARTS; p++)
        ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mock, INPUT, p, IN_LEADER), 0);
}

START_TEST(fetch_leader_change)
{
    struct fault f = {.apikey = -1,
                      .inject = leaders_move,
                      .heal = leaders_back,
                      .heal_ms = 1500,
                      .name = "input leaders move and back"};
    struct run run;

    run_case(&f, &run);
    ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    ck_assert_double_eq(metric(run.tm, "crm_consumer_retries_total"), 0);
    run_end(&run);
}
END_TEST

/* Produce faults the idempotent producer retries by itself: no output fails, none doubles. */
static void produce_case(rd_kafka_resp_err_t err)
{
    struct fault f = {.apikey = 0, .broker = OUT_LEADER, .err = err, .count = 4};
    struct run run;

    run_case(&f, &run);
    ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    ck_assert_double_eq(run.acked, 2 * PARTS * PER_PART);
    run_end(&run);
}

START_TEST(produce_not_enough_replicas)
{
    produce_case(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
}
END_TEST

START_TEST(produce_request_timed_out)
{
    produce_case(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
}
END_TEST

/*
 * Produce errors that outlast message.timeout.ms: outputs fail, their inputs
 * are rewound and handled again, the circuit breaker opens, pauses, tries
 * again half-open and closes. Nothing is lost, and every record on the
 * output topics is one the consumer saw acknowledged.
 */
START_TEST(produce_failures_open_breaker)
{
    struct fault f = {.apikey = 0,
                      .broker = OUT_LEADER,
                      .err = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                      .count = 40,
                      .properties = {{"message.timeout.ms", "1000"}},
                      .redo = true,
                      .name = "NOT_ENOUGH_REPLICAS past message.timeout.ms"};
    struct run run;

    run_case(&f, &run);
    ck_assert_double_ge(
        metric(run.tm, "crm_consumer_outputs_total{topic=\"" TICKETS "\",status=\"failed\"}"), 1);
    ck_assert_double_ge(metric(run.tm, "crm_consumer_retries_total"), 1);
    ck_assert_double_ge(metric(run.tm, "crm_consumer_circuit_breaker_opens_total"), 1);
    ck_assert_double_eq(metric(run.tm, "crm_consumer_circuit_breaker_state"), BREAKER_CLOSED);
    ck_assert_double_ge(consumed(&run, "error"), 1);
    run_end(&run);
}
END_TEST

/*
 * The outputs' leader answers later than the client waits: the records were
 * written but the producer does not know, and sends them again. The broker
 * must recognise the idempotent producer's sequence numbers.
 */
static void slow_outputs(void)
{
    ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mock, OUT_LEADER, 2500), 0);
}

static void fast_outputs(void)
{
    ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mock, OUT_LEADER, 0), 0);
}

START_TEST(produce_ambiguous_write)
{
    struct fault f = {.apikey = -1,
                      .inject = slow_outputs,
                      .heal = fast_outputs,
                      .heal_ms = 3000,
                      .properties = {{"socket.timeout.ms", "1500"},
                                     {"request.timeout.ms", "1000"},
                                     {"fetch.wait.max.ms", "100"}},
                      .resends = true,
                      .name = "outputs' leader slower than request.timeout.ms"};
    struct run run;

    run_case(&f, &run);
    fprintf(stderr, "faults: %d records resent and kept twice by the mock cluster\n", run.resent);
    ck_assert_double_eq(consumed(&run, "success"), PARTS * PER_PART);
    ck_assert_double_eq(
        metric(run.tm, "crm_consumer_outputs_total{topic=\"" TICKETS "\",status=\"failed\"}"), 0);
    run_end(&run);
}
END_TEST

/*
 * A broker refuses a batch as too large once: the batch may have been too
 * big, not one input's outputs, so the first input of it is sent again alone,
 * goes through, and nothing becomes a dead letter. The partition is rewound
 * to it first, so the inputs after it are handled again.
 */
START_TEST(produce_msg_size_too_large)
{
    struct fault f = {.apikey = 0,
                      .broker = OUT_LEADER,
                      .err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                      .count = 1,
                      .redo = true};
    struct run run;

    run_case(&f, &run);
    ck_assert_int_eq(run.dead, 0);
    ck_assert_double_eq(consumed(&run, "dead_letter"), 0);
    ck_assert_double_ge(consumed(&run, "error"), 1);
    run_end(&run);
}
END_TEST

/*
 * A broker that refuses outputs as too large again and again, also when an
 * input's outputs are sent alone: that input goes to the dead-letter topic
 * (class oversize) instead of being retried without end.
 */
START_TEST(produce_msg_size_too_large_alone)
{
    struct fault f = {.apikey = 0,
                      .broker = OUT_LEADER,
                      .err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                      .count = 4,
                      .dlq_class = "oversize",
                      .redo = true};
    struct run run;

    run_case(&f, &run);
    ck_assert_int_ge(run.dead, 1);
    ck_assert_double_eq(metric(run.tm, "crm_consumer_dead_letters_total{class=\"oversize\"}"),
                        run.dead);
    ck_assert_double_eq(consumed(&run, "dead_letter"), run.dead);
    ck_assert_double_ge(consumed(&run, "error"), 1);
    run_end(&run);
}
END_TEST

/* One case per scenario, so CK_RUN_CASE=name runs just that one. */
static void add_case(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");

    add_case(s, "commit_request_timed_out", commit_request_timed_out);
    add_case(s, "commit_rebalance_in_progress", commit_rebalance_in_progress);
    add_case(s, "commit_illegal_generation", commit_illegal_generation);
    add_case(s, "commit_unknown_member_id", commit_unknown_member_id);
    add_case(s, "commit_coordinator_load", commit_coordinator_load_in_progress);
    add_case(s, "commit_not_coordinator", commit_not_coordinator);
    add_case(s, "fetch_not_leader", fetch_not_leader);
    add_case(s, "fetch_storage_error", fetch_storage_error);
    add_case(s, "fetch_leader_change", fetch_leader_change);
    add_case(s, "produce_not_enough_replicas", produce_not_enough_replicas);
    add_case(s, "produce_request_timed_out", produce_request_timed_out);
    add_case(s, "produce_failures_open_breaker", produce_failures_open_breaker);
    add_case(s, "produce_ambiguous_write", produce_ambiguous_write);
    add_case(s, "produce_msg_size_too_large", produce_msg_size_too_large);
    add_case(s, "produce_msg_size_too_large_alone", produce_msg_size_too_large_alone);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(faults_suite());
    int failed;

    log_init(getenv("TEST_LOG_DEBUG") ? LOG_DEBUG : LOG_WARNING);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
