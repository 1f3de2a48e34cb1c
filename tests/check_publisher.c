/* SPDX-License-Identifier: MIT */
/* check_publisher.c -- the producer's settings: tuned defaults, and the operator's word over them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "log.h"
#include "publisher.h"

static void no_ack(void *opaque, void *token, enum output_topic topic, rd_kafka_resp_err_t err)
{
    (void)opaque;
    (void)token;
    (void)topic;
    (void)err;
}

/* A default configuration whose kafka.properties are the name/value pairs in props. */
static struct config *config_with(const char *const *props, size_t n)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    free(cfg->kafka.brokers);
    /* Nothing listens there; the producer only has to be created. */
    cfg->kafka.brokers = strdup("127.0.0.1:9");
    ck_assert_ptr_nonnull(cfg->kafka.brokers);
    cfg->kafka.properties = calloc(n ? n : 1, sizeof(*cfg->kafka.properties));
    ck_assert_ptr_nonnull(cfg->kafka.properties);
    for (size_t i = 0; i < n; i++) {
        cfg->kafka.properties[i].name = strdup(props[2 * i]);
        cfg->kafka.properties[i].value = strdup(props[2 * i + 1]);
        ck_assert_ptr_nonnull(cfg->kafka.properties[i].value);
    }
    cfg->kafka.nproperties = n;
    return cfg;
}

/* The value of a property of p's producer, as librdkafka reports it. */
static const char *setting(struct publisher *p, const char *name, char *buf, size_t len)
{
    const rd_kafka_conf_t *conf = rd_kafka_conf(publisher_handle(p));

    ck_assert_int_eq(rd_kafka_conf_get(conf, name, buf, &len), RD_KAFKA_CONF_OK);
    return buf;
}

START_TEST(test_tuned_defaults)
{
    struct config *cfg = config_with(NULL, 0);
    char err[256], buf[64];
    struct publisher *p = publisher_new(cfg, no_ack, NULL, err, sizeof(err));

    ck_assert_msg(p != NULL, "publisher_new: %s", err);
    ck_assert_str_eq(setting(p, "linger.ms", buf, sizeof(buf)), "15");
    ck_assert_str_eq(setting(p, "batch.num.messages", buf, sizeof(buf)), "10000");
    ck_assert_str_eq(setting(p, "compression.codec", buf, sizeof(buf)), "lz4");
    ck_assert_str_eq(setting(p, "enable.idempotence", buf, sizeof(buf)), "true");
    publisher_free(p);
    config_free(cfg);
}
END_TEST

/* What the operator sets wins, under either of linger's names. */
START_TEST(test_operator_wins)
{
    static const char *const by_name[] = {"linger.ms", "7", "batch.num.messages", "100"};
    static const char *const by_alias[] = {"queue.buffering.max.ms", "9", "compression.type",
                                           "none"};
    char err[256], buf[64];
    struct config *cfg = config_with(by_name, 2);
    struct publisher *p = publisher_new(cfg, no_ack, NULL, err, sizeof(err));

    ck_assert_msg(p != NULL, "publisher_new: %s", err);
    ck_assert_str_eq(setting(p, "linger.ms", buf, sizeof(buf)), "7");
    ck_assert_str_eq(setting(p, "batch.num.messages", buf, sizeof(buf)), "100");
    publisher_free(p);
    config_free(cfg);

    cfg = config_with(by_alias, 2);
    p = publisher_new(cfg, no_ack, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "publisher_new: %s", err);
    ck_assert_str_eq(setting(p, "linger.ms", buf, sizeof(buf)), "9");
    ck_assert_str_eq(setting(p, "compression.codec", buf, sizeof(buf)), "none");
    ck_assert_str_eq(setting(p, "batch.num.messages", buf, sizeof(buf)), "10000");
    publisher_free(p);
    config_free(cfg);
}
END_TEST

/*
 * The operator's properties reach the producer only if librdkafka lists them
 * for producers too: a consumer's own (session.timeout.ms, fetch.wait.max.ms)
 * stay at the producer's defaults, where librdkafka would warn about them.
 */
START_TEST(test_consumer_properties_stay_out)
{
    static const char *const props[] = {
        "session.timeout.ms", "6000", "fetch.wait.max.ms",       "77",
        "linger.ms",          "7",    "socket.keepalive.enable", "true"};
    char err[256], buf[64];
    struct config *cfg = config_with(props, 4);
    struct publisher *p = publisher_new(cfg, no_ack, NULL, err, sizeof(err));

    ck_assert_msg(p != NULL, "publisher_new: %s", err);
    ck_assert_str_eq(setting(p, "session.timeout.ms", buf, sizeof(buf)), "45000");
    ck_assert_str_eq(setting(p, "fetch.wait.max.ms", buf, sizeof(buf)), "500");
    ck_assert_str_eq(setting(p, "linger.ms", buf, sizeof(buf)), "7");
    ck_assert_str_eq(setting(p, "socket.keepalive.enable", buf, sizeof(buf)), "true");
    publisher_free(p);
    config_free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("publisher");
    TCase *tc = tcase_create("settings");
    SRunner *sr;
    int failed;

    log_init(LOG_CRIT); /* a producer with no broker to reach complains at LOG_ERR */
    tcase_add_test(tc, test_tuned_defaults);
    tcase_add_test(tc, test_operator_wins);
    tcase_add_test(tc, test_consumer_properties_stay_out);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
