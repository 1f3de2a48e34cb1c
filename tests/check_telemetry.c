/* SPDX-License-Identifier: MIT */
/* check_telemetry.c -- librdkafka statistics into the lag gauges, the breaker into /ready. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "telemetry.h"

static struct config *cfg;
static struct telemetry *tm;

static void setup(void)
{
    cfg = config_new_defaults();
    ck_assert_ptr_nonnull(cfg);
    tm = telemetry_new(cfg);
    ck_assert_ptr_nonnull(tm);
}

static void teardown(void)
{
    telemetry_free(tm);
    config_free(cfg);
}

/* librdkafka's statistics with two partitions of crm.inbound; lag -1 is "unknown". */
static void stats(int lag0, int lag1, int desired1)
{
    char json[1024];
    int n = snprintf(json, sizeof(json),
                     "{\"topics\":{\"crm.inbound\":{\"partitions\":{"
                     "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag_stored\":%d},"
                     "\"1\":{\"partition\":1,\"desired\":%s,\"consumer_lag_stored\":%d},"
                     "\"-1\":{\"partition\":-1,\"desired\":false,\"consumer_lag_stored\":-1}}}}}",
                     lag0, desired1 ? "true" : "false", lag1);

    telemetry_stats(tm, json, (size_t)n);
}

/* The kafka_consumer_lag sample of partition p, or -1 if it has none. */
static double lag_of(int p)
{
    char *text = NULL, want[128];
    size_t len = 0;
    const char *at;
    double v = -1;

    ck_assert_int_eq(metrics_render(telemetry_registry(tm), &text, &len), 0);
    snprintf(want, sizeof(want),
             "kafka_consumer_lag{topic=\"crm.inbound\",partition=\"%d\",consumer_group=\"%s\"} ", p,
             cfg->kafka.group_id);
    at = strstr(text, want);
    if (at)
        v = strtod(at + strlen(want), NULL);
    free(text);
    return v;
}

START_TEST(lag_follows_statistics)
{
    char line[256];

    stats(5, 7, 1);
    ck_assert_double_eq(lag_of(0), 5);
    ck_assert_double_eq(lag_of(1), 7);
    telemetry_status(tm, line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "lag 12,"));
}
END_TEST

START_TEST(unknown_lag_keeps_the_last_value)
{
    char line[256];

    stats(5, 7, 1);
    /* Every broker gone: librdkafka no longer knows partition 1's lag. */
    stats(4, -1, 1);
    ck_assert_double_eq(lag_of(0), 4);
    ck_assert_double_eq(lag_of(1), 7);
    telemetry_status(tm, line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "lag unknown,"));
    /* Known again. */
    stats(0, 0, 1);
    ck_assert_double_eq(lag_of(1), 0);
}
END_TEST

START_TEST(revoked_partition_loses_its_series)
{
    stats(5, 7, 1);
    stats(5, 7, 0);
    ck_assert_double_eq(lag_of(0), 5);
    ck_assert_double_eq(lag_of(1), -1);
}
END_TEST

START_TEST(open_breaker_is_not_ready)
{
    char body[512];

    static const char up[] = "{\"brokers\":{\"b:9092/1\":{\"nodeid\":1,\"nodename\":"
                             "\"b:9092\",\"state\":\"UP\"}},"
                             "\"cgrp\":{\"state\":\"up\",\"join_state\":\"steady\"}}";

    /* Ready otherwise: a broker up, the group steady. */
    telemetry_stats(tm, up, strlen(up));
    ck_assert_msg(telemetry_ready(tm, body, sizeof(body)), "%s", body);
    telemetry_breaker(tm, BREAKER_OPEN);
    ck_assert(!telemetry_ready(tm, body, sizeof(body)));
    ck_assert_ptr_nonnull(strstr(body, "\"breaker\":{\"ok\":false,\"state\":\"open\"}"));
    telemetry_breaker(tm, BREAKER_HALF_OPEN);
    ck_assert(telemetry_ready(tm, body, sizeof(body)));
    ck_assert_ptr_nonnull(strstr(body, "\"state\":\"half-open\""));
    telemetry_breaker(tm, BREAKER_OPEN);
    telemetry_breaker(tm, BREAKER_HALF_OPEN);
    telemetry_breaker(tm, BREAKER_CLOSED);
    ck_assert(telemetry_ready(tm, body, sizeof(body)));
}
END_TEST

static Suite *telemetry_suite(void)
{
    Suite *s = suite_create("telemetry");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lag_follows_statistics);
    tcase_add_test(tc, unknown_lag_keeps_the_last_value);
    tcase_add_test(tc, revoked_partition_loses_its_series);
    tcase_add_test(tc, open_breaker_is_not_ready);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(telemetry_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
