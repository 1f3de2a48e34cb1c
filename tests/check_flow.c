/* SPDX-License-Identifier: MIT */
/* check_flow.c -- flow control from tables: take, wait, pause everything, resume. */
#include <check.h>
#include <stdlib.h>

#include "flow.h"

/* One turn: the messages in flight, the producer's queue, the time; the verdict wanted. */
struct turn {
    uint64_t in_flight;
    int queued;
    int64_t now;
    bool queue_full; /* the producer refused an output before this turn */
    enum flow_verdict want;
};

struct flow_case {
    const char *name;
    struct turn turns[8];
    int n;
};

#define MAX 100

static const struct flow_case cases[] = {
    {"below the bound: take", {{99, 0, 1000, false, FLOW_TAKE}}, 1},
    {"at the bound: wait, then take once below",
     {{100, 0, 1000, false, FLOW_WAIT},
      {100, 0, 1500, false, FLOW_WAIT},
      {99, 0, 1600, false, FLOW_TAKE}},
     3},
    {"waiting past the hold: pause every partition, resume at half",
     {{100, 0, 1000, false, FLOW_WAIT},
      {100, 0, 1999, false, FLOW_WAIT},
      {100, 0, 2000, false, FLOW_PAUSE_ALL},
      {99, 0, 2100, false, FLOW_WAIT},
      {51, 0, 2200, false, FLOW_WAIT},
      {50, 0, 2300, false, FLOW_RESUME_ALL},
      {50, 0, 2400, false, FLOW_TAKE}},
     7},
    {"a full producer queue: wait until half of it is delivered",
     {{10, 1000, 1000, true, FLOW_WAIT},
      {10, 600, 1100, false, FLOW_WAIT},
      {10, 500, 1200, false, FLOW_TAKE},
      {10, 600, 1300, false, FLOW_TAKE}},
     4},
    {"a full queue that stays full: pause, resume once drained to half",
     {{0, 1000, 1000, true, FLOW_WAIT},
      {0, 900, 2000, false, FLOW_PAUSE_ALL},
      {0, 501, 2100, false, FLOW_WAIT},
      {0, 500, 2200, false, FLOW_RESUME_ALL}},
     4},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_table)
{
    const struct flow_case *c = &cases[_i];
    struct flow f;

    flow_init(&f, MAX);
    for (int i = 0; i < c->n; i++) {
        const struct turn *t = &c->turns[i];
        enum flow_verdict got;

        if (t->queue_full)
            flow_queue_full(&f, t->queued);
        got = flow_check(&f, t->in_flight, t->queued, t->now);
        ck_assert_msg(got == t->want, "%s: turn %d: verdict %d, want %d", c->name, i, got, t->want);
    }
}
END_TEST

/* The counts: a wait each time the loop stops, a pause each time a wait lasts. */
START_TEST(test_counts)
{
    struct flow f;

    flow_init(&f, 10);
    ck_assert_int_eq(flow_check(&f, 10, 0, 1), FLOW_WAIT);
    ck_assert_int_eq(flow_check(&f, 10, 0, 1 + FLOW_HOLD_MS), FLOW_PAUSE_ALL);
    ck_assert_int_eq(flow_check(&f, 0, 0, 2 + FLOW_HOLD_MS), FLOW_RESUME_ALL);
    ck_assert_int_eq(flow_check(&f, 10, 0, 5000), FLOW_WAIT);
    ck_assert_int_eq(flow_check(&f, 9, 0, 5001), FLOW_TAKE);
    ck_assert_uint_eq(f.waits, 2);
    ck_assert_uint_eq(f.pauses, 1);
    /* A second refusal while waiting keeps the first mark. */
    flow_queue_full(&f, 100);
    flow_queue_full(&f, 10);
    ck_assert_int_eq(f.queue_resume, 50);
}
END_TEST

static Suite *flow_suite(void)
{
    Suite *s = suite_create("flow");
    TCase *tc = tcase_create("flow");

    tcase_add_loop_test(tc, test_table, 0, (int)NCASES);
    tcase_add_test(tc, test_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(flow_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
