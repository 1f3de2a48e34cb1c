/* SPDX-License-Identifier: MIT */
/* check_changelog.c -- the identities topic read back into the links table, from a mock cluster. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "changelog.h"
#include "config.h"
#include "identity.h"

#define TOPIC      "crm.identities"
#define TIMEOUT_MS 30000

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer;

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void cluster_up(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, quiet_log);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(mock_rk, "%s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    ck_assert_ptr_nonnull(mock);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, TOPIC, 2, 1), 0);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mock), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(producer, "%s", errstr);
}

static void cluster_down(void)
{
    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
}

/* Write len bytes of value to a partition of the identities topic and wait until it is stored. */
static void put(int32_t partition, const char *value, size_t len)
{
    char *copy = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, value, len);
    ck_assert_int_eq(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC),
                                       RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE(len ? copy : NULL, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    free(copy);
    ck_assert_int_eq(rd_kafka_flush(producer, TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void put_str(int32_t partition, const char *value)
{
    put(partition, value, strlen(value));
}

#define LINK(phone, customer)                                                                      \
    "{\"event\":\"identity.linked\",\"customer_id\":\"" customer "\",\"email\":\"a@example.org\"," \
    "\"phone\":\"" phone "\",\"source\":{\"topic\":\"crm.inbound\",\"partition\":0,"               \
    "\"offset\":1,\"message_id\":\"m1\"}}"

static struct config *test_config(void)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    cfg->kafka.brokers = strdup(rd_kafka_mock_cluster_bootstraps(mock));
    ck_assert_ptr_nonnull(cfg->kafka.brokers);
    return cfg;
}

/* Nested `depth` arrays deep inside an otherwise good link event. */
static char *deep_link(int depth)
{
    const char *head = "{\"event\":\"identity.linked\",\"customer_id\":\"cus_deep\","
                       "\"phone\":\"+15550100009\",\"extra\":";
    size_t len = strlen(head) + 2 * (size_t)depth + 2;
    char *s = malloc(len);
    char *p = s;

    ck_assert_ptr_nonnull(s);
    p += sprintf(p, "%s", head);
    memset(p, '[', (size_t)depth);
    p += depth;
    memset(p, ']', (size_t)depth);
    p += depth;
    strcpy(p, "}");
    return s;
}

/*
 * Only an object whose "event" is "identity.linked", with a string phone and a
 * string customer_id, is a link; everything else is skipped and counted, not
 * applied and not fatal. A later event for the same phone wins.
 */
START_TEST(test_load_and_poll)
{
    struct identity_links *links = identity_links_new(100);
    struct config *cfg;
    struct changelog *cl;
    char err[256] = "";
    char *deep = NULL;
    struct timespec start, now;

    ck_assert_ptr_nonnull(links);
    cluster_up();
    cfg = test_config();

    put_str(0, LINK("+15550100001", "cus_a"));
    put_str(0, "not json");
    put(0, "", 0);
    put_str(0,
            "{\"event\":\"ticket.created\",\"customer_id\":\"cus_x\",\"phone\":\"+15550100005\"}");
    put_str(0, "{\"event\":\"identity.linked\",\"customer_id\":\"cus_x\"}");
    put_str(1, "{\"event\":\"identity.linked\",\"customer_id\":\"cus_x\",\"phone\":15550100006}");
    put_str(1, "{\"event\":\"identity.linked\",\"customer_id\":null,\"phone\":\"+15550100007\"}");
    put_str(1, "[" LINK("+15550100008", "cus_x") "]");
    put_str(1, LINK("+15550100010", "cus_x") " trailing");
    put_str(
        1,
        "{\"event\":\"identity.linked\",\"customer_id\":\"cus_\xff\",\"phone\":\"+15550100011\"}");
    put_str(1, LINK("+15550100012", "cus_0123456789abcdef0123456789"));
    put_str(1, LINK("", "cus_x"));
    deep = deep_link(40);
    put_str(1, deep);
    free(deep);
    deep = deep_link(20); /* within the limit: applied */
    put_str(1, deep);
    free(deep);
    put_str(1, LINK("+15550100002", "cus_b"));

    cl = changelog_new(cfg, links, err, sizeof(err));
    ck_assert_msg(cl != NULL, "%s", err);
    ck_assert_int_eq(changelog_load(cl, TIMEOUT_MS), 0);
    ck_assert_uint_eq(changelog_applied(cl), 3);
    ck_assert_uint_eq(changelog_skipped(cl), 12);
    ck_assert_uint_eq(identity_links_count(links), 3);
    ck_assert_str_eq(identity_links_get(links, "+15550100001"), "cus_a");
    ck_assert_str_eq(identity_links_get(links, "+15550100002"), "cus_b");
    ck_assert_str_eq(identity_links_get(links, "+15550100009"), "cus_deep");
    ck_assert_ptr_null(identity_links_get(links, "+15550100008"));
    ck_assert_ptr_null(identity_links_get(links, "+15550100011"));

    /* Live: what arrives later is applied by changelog_poll(), without blocking. */
    put_str(1, LINK("+15550100001", "cus_c"));
    put_str(0, LINK("+15550100003", "cus_d"));
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        changelog_poll(cl);
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < TIMEOUT_MS / 1000, "live events not applied");
        if (changelog_applied(cl) < 5)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    } while (changelog_applied(cl) < 5);
    ck_assert_uint_eq(changelog_applied(cl), 5);
    ck_assert_uint_eq(changelog_skipped(cl), 12);
    ck_assert_str_eq(identity_links_get(links, "+15550100001"), "cus_c");
    ck_assert_str_eq(identity_links_get(links, "+15550100003"), "cus_d");

    changelog_free(cl);
    config_free(cfg);
    identity_links_free(links);
    cluster_down();
}
END_TEST

/* A topic that does not exist yet is nothing to load, not an error. */
START_TEST(test_no_topic)
{
    struct identity_links *links = identity_links_new(10);
    struct config *cfg;
    struct changelog *cl;
    char err[256] = "";

    ck_assert_ptr_nonnull(links);
    cluster_up();
    cfg = test_config();
    free(cfg->output.identities_topic);
    cfg->output.identities_topic = strdup("crm.identities.absent");
    ck_assert_ptr_nonnull(cfg->output.identities_topic);

    cl = changelog_new(cfg, links, err, sizeof(err));
    ck_assert_msg(cl != NULL, "%s", err);
    ck_assert_int_eq(changelog_load(cl, 5000), 0);
    ck_assert_int_eq(changelog_poll(cl), 0);
    ck_assert_uint_eq(changelog_applied(cl), 0);
    ck_assert_uint_eq(identity_links_count(links), 0);

    changelog_free(cl);
    config_free(cfg);
    identity_links_free(links);
    cluster_down();
}
END_TEST

static Suite *changelog_suite(void)
{
    Suite *s = suite_create("changelog");
    TCase *tc = tcase_create("changelog");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_and_poll);
    tcase_add_test(tc, test_no_topic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(changelog_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
