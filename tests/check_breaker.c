/* SPDX-License-Identifier: MIT */
/* check_breaker.c -- the circuit breaker's state machine, step by step. */
#include <check.h>
#include <stdlib.h>

#include "breaker.h"

START_TEST(opens_after_threshold_consecutive_failures)
{
    struct breaker b;

    breaker_init(&b, 3, 1000);
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
    ck_assert(!breaker_failure(&b, 0));
    ck_assert(!breaker_failure(&b, 0));
    /* A success in between starts the count again. */
    ck_assert(!breaker_success(&b));
    ck_assert(!breaker_failure(&b, 10));
    ck_assert(!breaker_failure(&b, 20));
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
    ck_assert(breaker_failure(&b, 30));
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert_uint_eq(b.opens, 1);
    ck_assert_int_eq(breaker_remaining(&b, 30), 1000);
    ck_assert_int_eq(breaker_remaining(&b, 530), 500);
}
END_TEST

START_TEST(open_ignores_late_reports_and_turns_half_open_on_time)
{
    struct breaker b;

    breaker_init(&b, 1, 1000);
    ck_assert(breaker_failure(&b, 0));
    /* Reports of work done before it opened change nothing. */
    ck_assert(!breaker_failure(&b, 100));
    ck_assert(!breaker_success(&b));
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert(!breaker_tick(&b, 999));
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert(breaker_tick(&b, 1000));
    ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
    ck_assert_int_eq(breaker_remaining(&b, 1000), 0);
    ck_assert(!breaker_tick(&b, 5000));
}
END_TEST

START_TEST(trial_success_closes_and_resets_the_period)
{
    struct breaker b;

    breaker_init(&b, 2, 1000);
    breaker_failure(&b, 0);
    breaker_failure(&b, 0);
    breaker_tick(&b, 1000);
    ck_assert(breaker_failure(&b, 1000)); /* the trial failed: 2 s now */
    ck_assert_int_eq(breaker_remaining(&b, 1000), 2000);
    breaker_tick(&b, 3000);
    ck_assert(breaker_success(&b));
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
    /* Closed again: back to the threshold and the first period. */
    ck_assert(!breaker_failure(&b, 4000));
    ck_assert(breaker_failure(&b, 4000));
    ck_assert_int_eq(breaker_remaining(&b, 4000), 1000);
    ck_assert_uint_eq(b.opens, 3);
}
END_TEST

START_TEST(failed_trials_double_the_period_up_to_the_cap)
{
    /* 60 s doubles to 120, 240, 480, then stops at ten minutes. */
    static const int64_t want[] = {60000, 120000, 240000, 480000, 600000, 600000};
    struct breaker b;
    int64_t now = 0;

    breaker_init(&b, 1, 60000);
    ck_assert(breaker_failure(&b, now));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_int_eq(breaker_remaining(&b, now), want[i]);
        now += want[i];
        ck_assert(breaker_tick(&b, now));
        ck_assert(breaker_failure(&b, now));
    }
}
END_TEST

START_TEST(a_long_period_is_its_own_cap)
{
    struct breaker b;

    breaker_init(&b, 1, 3600000);
    breaker_failure(&b, 0);
    breaker_tick(&b, 3600000);
    breaker_failure(&b, 3600000);
    ck_assert_int_eq(breaker_remaining(&b, 3600000), 3600000);
}
END_TEST

START_TEST(state_names)
{
    ck_assert_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    ck_assert_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    ck_assert_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half-open");
}
END_TEST

static Suite *breaker_suite(void)
{
    Suite *s = suite_create("breaker");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, opens_after_threshold_consecutive_failures);
    tcase_add_test(tc, open_ignores_late_reports_and_turns_half_open_on_time);
    tcase_add_test(tc, trial_success_closes_and_resets_the_period);
    tcase_add_test(tc, failed_trials_double_the_period_up_to_the_cap);
    tcase_add_test(tc, a_long_period_is_its_own_cap);
    tcase_add_test(tc, state_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(breaker_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
