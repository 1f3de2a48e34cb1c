/* SPDX-License-Identifier: MIT */
/* check_deadletter.c -- a dead letter's copy, its crm.* headers and its shrink ladder, on a mock.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "deadletter.h"
#include "log.h"
#include "publisher.h"

#define TIMEOUT_MS 30000

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static int acked, failed;

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void on_ack(void *opaque, void *token, enum output_topic topic, rd_kafka_resp_err_t err)
{
    (void)opaque;
    (void)token;
    ck_assert_int_eq(topic, OUTPUT_DEAD_LETTERS);
    if (err)
        failed++;
    else
        acked++;
}

static rd_kafka_conf_t *client_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    rd_kafka_conf_set_log_cb(conf, quiet);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mock), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    return conf;
}

/* The one message of topic's partition 0, consumed (the caller destroys it and rk). */
static rd_kafka_message_t *consume_one(const char *topic, rd_kafka_t **rkp)
{
    rd_kafka_conf_t *conf = client_conf();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_message_t *m = NULL;
    char err[256];
    rd_kafka_t *rk;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", "check", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    for (int i = 0; i < TIMEOUT_MS / 100 && !m; i++) {
        m = rd_kafka_consumer_poll(rk, 100);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    ck_assert_ptr_nonnull(m);
    *rkp = rk;
    return m;
}

/* An input with a key, a value and headers (one in the crm. namespace), on crm.inbound. */
static void produce_input(size_t value_len)
{
    rd_kafka_conf_t *conf = client_conf();
    char err[256], *value = malloc(value_len);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_t *rk;

    ck_assert_ptr_nonnull(value);
    memset(value, 'v', value_len);
    rd_kafka_header_add(h, "trace-id", -1, "t-1", -1);
    rd_kafka_header_add(h, "crm.error.class", -1, "spoofed", -1);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("crm.inbound"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_KEY("k-1", 3), RD_KAFKA_V_VALUE(value, value_len),
                                       RD_KAFKA_V_TIMESTAMP(1700000000123), RD_KAFKA_V_HEADERS(h),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_flush(rk, TIMEOUT_MS), 0);
    rd_kafka_destroy(rk);
    free(value);
}

static const char *header(const rd_kafka_message_t *m, const char *name)
{
    static char buf[512];
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;

    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n))
        return NULL;
    memcpy(buf, v, n < sizeof(buf) - 1 ? n : sizeof(buf) - 1);
    buf[n < sizeof(buf) - 1 ? n : sizeof(buf) - 1] = '\0';
    return buf;
}

static struct config *setup(const char *max_bytes)
{
    struct config *cfg = config_new_defaults();
    char err[256];
    rd_kafka_conf_t *host = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(host, quiet);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, host, err, sizeof(err));
    ck_assert_ptr_nonnull(mock_rk);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    ck_assert_ptr_nonnull(mock);
    rd_kafka_mock_topic_create(mock, "crm.inbound", 1, 1);
    rd_kafka_mock_topic_create(mock, "crm.inbound.dlq", 1, 1);
    cfg->kafka.brokers = strdup(rd_kafka_mock_cluster_bootstraps(mock));
    if (max_bytes) {
        cfg->kafka.properties = calloc(1, sizeof(*cfg->kafka.properties));
        cfg->kafka.properties[0].name = strdup("message.max.bytes");
        cfg->kafka.properties[0].value = strdup(max_bytes);
        cfg->kafka.nproperties = 1;
    }
    acked = failed = 0;
    return cfg;
}

static void teardown(struct config *cfg)
{
    config_free(cfg);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
}

static const struct route_result res = {
    .outcome = OUTCOME_PERMANENT,
    .error_class = ERROR_SCHEMA,
    .reason = "field \"from\" is missing",
    .type = "email_received",
};

/* The copy: key, value, original headers (crm.* renamed) and timestamp, plus why and whence. */
START_TEST(test_whole_copy)
{
    struct config *cfg = setup(NULL);
    struct deadletter_source src = {.topic = "crm.inbound", .group = "g1", .attempts = 3};
    rd_kafka_t *in_rk, *out_rk;
    rd_kafka_message_t *in, *out;
    rd_kafka_timestamp_type_t tstype;
    char err[256];
    struct publisher *pub = publisher_new(cfg, on_ack, NULL, err, sizeof(err));
    int used = -1;

    ck_assert_msg(pub != NULL, "%s", err);
    produce_input(100);
    in = consume_one("crm.inbound", &in_rk);
    ck_assert_int_eq(deadletter_send(pub, in, &src, &res, 0, NULL, &used), 0);
    ck_assert_int_eq(used, 0);
    ck_assert_int_eq(publisher_flush(pub, TIMEOUT_MS), 0);
    ck_assert_int_eq(acked, 1);
    out = consume_one("crm.inbound.dlq", &out_rk);
    ck_assert_uint_eq(out->key_len, 3);
    ck_assert_int_eq(memcmp(out->key, "k-1", 3), 0);
    ck_assert_uint_eq(out->len, 100);
    ck_assert_int_eq(rd_kafka_message_timestamp(out, &tstype), 1700000000123);
    ck_assert_str_eq(header(out, "trace-id"), "t-1");
    ck_assert_str_eq(header(out, "crm.previous.error.class"), "spoofed");
    ck_assert_str_eq(header(out, "crm.error.class"), "schema");
    ck_assert_str_eq(header(out, "crm.error.reason"), "field \"from\" is missing");
    ck_assert_str_eq(header(out, "crm.source.topic"), "crm.inbound");
    ck_assert_str_eq(header(out, "crm.source.partition"), "0");
    ck_assert_str_eq(header(out, "crm.source.offset"), "0");
    ck_assert_str_eq(header(out, "crm.source.timestamp"), "1700000000123");
    ck_assert_str_eq(header(out, "crm.consumer.group"), "g1");
    ck_assert_str_eq(header(out, "crm.message_type"), "email_received");
    ck_assert_str_eq(header(out, "crm.attempts"), "3");
    ck_assert_uint_eq(strlen(header(out, "crm.failed_at")), 24);
    ck_assert_ptr_null(header(out, "crm.value.omitted_bytes"));
    rd_kafka_message_destroy(in);
    rd_kafka_message_destroy(out);
    rd_kafka_consumer_close(in_rk);
    rd_kafka_destroy(in_rk);
    rd_kafka_consumer_close(out_rk);
    rd_kafka_destroy(out_rk);
    publisher_free(pub);
    teardown(cfg);
}
END_TEST

/* Too big for the producer: the value is left out and its size said; with shrink 2, all but ours.
 */
START_TEST(test_shrink_ladder)
{
    struct config *cfg = setup("10000");
    struct deadletter_source src = {.topic = "crm.inbound", .group = "g1", .attempts = 1};
    rd_kafka_t *in_rk, *out_rk;
    rd_kafka_message_t *in, *out;
    char err[256];
    struct publisher *pub = publisher_new(cfg, on_ack, NULL, err, sizeof(err));
    int used = -1;

    ck_assert_msg(pub != NULL, "%s", err);
    produce_input(50000);
    in = consume_one("crm.inbound", &in_rk);
    ck_assert_int_eq(deadletter_send(pub, in, &src, &res, 0, NULL, &used), 0);
    ck_assert_int_eq(used, 1);
    ck_assert_int_eq(deadletter_send(pub, in, &src, &res, 2, NULL, &used), 0);
    ck_assert_int_eq(used, 2);
    ck_assert_int_eq(publisher_flush(pub, TIMEOUT_MS), 0);
    ck_assert_int_eq(acked, 2);
    out = consume_one("crm.inbound.dlq", &out_rk);
    ck_assert_uint_eq(out->len, 0);
    ck_assert_uint_eq(out->key_len, 3);
    ck_assert_str_eq(header(out, "crm.value.omitted_bytes"), "50000");
    ck_assert_str_eq(header(out, "trace-id"), "t-1");
    ck_assert_str_eq(header(out, "crm.error.class"), "schema");
    rd_kafka_message_destroy(out);
    /* The second copy: no key, no original headers, their sizes given. */
    {
        rd_kafka_message_t *second = NULL;

        for (int i = 0; i < TIMEOUT_MS / 100 && !second; i++) {
            second = rd_kafka_consumer_poll(out_rk, 100);
            if (second && second->err) {
                rd_kafka_message_destroy(second);
                second = NULL;
            }
        }
        ck_assert_ptr_nonnull(second);
        ck_assert_uint_eq(second->key_len, 0);
        ck_assert_uint_eq(second->len, 0);
        ck_assert_ptr_null(header(second, "trace-id"));
        ck_assert_str_eq(header(second, "crm.key.omitted_bytes"), "3");
        ck_assert_str_eq(header(second, "crm.value.omitted_bytes"), "50000");
        ck_assert_str_eq(header(second, "crm.error.reason"), "field \"from\" is missing");
        rd_kafka_message_destroy(second);
    }
    rd_kafka_message_destroy(in);
    rd_kafka_consumer_close(in_rk);
    rd_kafka_destroy(in_rk);
    rd_kafka_consumer_close(out_rk);
    rd_kafka_destroy(out_rk);
    publisher_free(pub);
    teardown(cfg);
}
END_TEST

static Suite *deadletter_suite(void)
{
    Suite *s = suite_create("deadletter");
    TCase *tc = tcase_create("deadletter");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_whole_copy);
    tcase_add_test(tc, test_shrink_ladder);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(deadletter_suite());

    log_init(LOG_CRIT);
    srunner_run_all(sr, CK_NORMAL);
    int failed_n = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed_n == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
