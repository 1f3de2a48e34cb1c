/* SPDX-License-Identifier: MIT */
/* check_replay.c -- the replay's command-line values: times, classes, the progress group. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "router.h"

struct time_case {
    const char *text;
    int rc;
    int64_t ms;
};

static const struct time_case times[] = {
    {"2026-05-01", 0, 1777593600000},
    {"2026-05-01T12:30", 0, 1777638600000},
    {"2026-05-01T12:30:15Z", 0, 1777638615000},
    {"2026-05-01 12:30:15.25Z", 0, 1777638615250},
    {"2026-05-01T14:30:15+02:00", 0, 1777638615000},
    {"2026-05-01T10:00:15-0230", 0, 1777638615000},
    {"1970-01-01T00:00:00.001Z", 0, 1},
    {"2024-02-29", 0, 1709164800000},
    {"", -EINVAL, 0},
    {"garbage", -EINVAL, 0},
    {"2026-5-1", -EINVAL, 0},
    {"2026-02-30", -EINVAL, 0},
    {"2025-02-29", -EINVAL, 0},
    {"2026-13-01", -EINVAL, 0},
    {"2026-05-01T24:00", -EINVAL, 0},
    {"2026-05-01T12:30:15.", -EINVAL, 0},
    {"2026-05-01T12:30:15+2", -EINVAL, 0},
    {"2026-05-01T12:30:15Zjunk", -EINVAL, 0},
    {"2026-05-01T12", -EINVAL, 0},
};

#define NTIMES (sizeof(times) / sizeof(times[0]))

START_TEST(test_time)
{
    const struct time_case *c = &times[_i];
    int64_t ms = -1;

    ck_assert_msg(replay_parse_time(c->text, &ms) == c->rc, "%s", c->text);
    if (c->rc == 0)
        ck_assert_msg(ms == c->ms, "%s: %lld", c->text, (long long)ms);
}
END_TEST

START_TEST(test_classes)
{
    unsigned mask = 0;
    char err[256];

    ck_assert_int_eq(replay_parse_classes("oversize", &mask, err, sizeof(err)), 0);
    ck_assert_uint_eq(mask, 1u << ERROR_OVERSIZE);
    ck_assert_int_eq(replay_parse_classes("parse,unknown_type", &mask, err, sizeof(err)), 0);
    ck_assert_uint_eq(mask, (1u << ERROR_PARSE) | (1u << ERROR_UNKNOWN_TYPE));
    ck_assert_int_eq(replay_parse_classes("nosuch", &mask, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "\"nosuch\" is not a class; the classes are parse, schema, identity, "
                          "unknown_type, oversize and transient");
    ck_assert_int_eq(replay_parse_classes("parse,", &mask, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(replay_parse_classes("none", &mask, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(replay_parse_classes("\x01\xff", &mask, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "\"??\" is not a class; the classes are parse, schema, identity, "
                          "unknown_type, oversize and transient");
}
END_TEST

START_TEST(test_group)
{
    struct config cfg;
    char group[] = "crm";
    struct replay_options o = {.since_ms = -1, .until_ms = -1};
    char name[512];

    memset(&cfg, 0, sizeof(cfg));
    cfg.kafka.group_id = group;
    replay_group_name(&cfg, &o, name, sizeof(name));
    ck_assert_str_eq(name, "crm.replay");
    o.classes = (1u << ERROR_OVERSIZE) | (1u << ERROR_SCHEMA);
    o.since_ms = 1777593600000;
    o.limit = 10; /* not part of the selection: a limited replay resumes */
    replay_group_name(&cfg, &o, name, sizeof(name));
    ck_assert_str_eq(name, "crm.replay.class-schema+oversize.since-2026-05-01T00:00:00.000Z");
    o.classes = 0;
    o.since_ms = -1;
    o.until_ms = 0;
    replay_group_name(&cfg, &o, name, sizeof(name));
    ck_assert_str_eq(name, "crm.replay.until-1970-01-01T00:00:00.000Z");
}
END_TEST

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");

    tcase_add_loop_test(tc, test_time, 0, (int)NTIMES);
    tcase_add_test(tc, test_classes);
    tcase_add_test(tc, test_group);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(replay_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
