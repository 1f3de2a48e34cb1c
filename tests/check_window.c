/* SPDX-License-Identifier: MIT */
/* check_window.c -- the offset window from tables: what is stored, where a rewind goes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

/*
 * A script over one window: 'p' pushes the next offset (from first), 'a'
 * acknowledges one output of token i, 'o' gives token i one more output,
 * 'f' marks token i failed; at the end, the offset to store and the failed
 * head are checked.
 */
struct step {
    char op;
    int token;
};

struct window_case {
    const char *name;
    int64_t first;
    struct step steps[16];
    int nsteps;
    int64_t want_next;   /* -1: nothing to store */
    int64_t want_failed; /* -1: no failed head */
    uint64_t want_in_flight;
};

#define P                                                                                          \
    {                                                                                              \
        'p', 0                                                                                     \
    }
#define O(i)                                                                                       \
    {                                                                                              \
        'o', i                                                                                     \
    }
#define A(i)                                                                                       \
    {                                                                                              \
        'a', i                                                                                     \
    }
#define F(i)                                                                                       \
    {                                                                                              \
        'f', i                                                                                     \
    }

static const struct window_case cases[] = {
    {"empty", 0, {{0}}, 0, -1, -1, 0},
    {"pushed, no outputs: done at once", 10, {P, P}, 2, 12, -1, 0},
    {"one output pending", 10, {P, O(0)}, 2, -1, -1, 1},
    {"acknowledged", 10, {P, O(0), A(0)}, 3, 11, -1, 0},
    {"the first waits: nothing after it is stored", 10, {P, O(0), P, P}, 4, -1, -1, 3},
    {"a gap fills: the prefix moves past all", 10, {P, O(0), P, O(1), P, A(1), A(0)}, 7, 13, -1, 0},
    {"the middle waits: stored up to it", 10, {P, P, O(1), P}, 4, 11, -1, 2},
    {"two outputs: both needed", 5, {P, O(0), O(0), A(0)}, 4, -1, -1, 1},
    {"a failure at the head: the rewind point", 7, {P, O(0), F(0), A(0)}, 4, -1, 7, 1},
    {"a failure after done ones: stored up to it", 7, {P, P, O(1), F(1), P, A(1)}, 6, 8, 8, 2},
    {"a failure waiting behind an unfinished one", 7, {P, O(0), P, O(1), F(1), A(1)}, 6, -1, -1, 2},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_table)
{
    const struct window_case *c = &cases[_i];
    struct window_pool pool;
    struct window w;
    struct window_token *tokens[16], *t;
    int n = 0;
    int64_t next = -1;

    window_pool_init(&pool);
    window_init(&w);
    for (int i = 0; i < c->nsteps; i++) {
        const struct step *s = &c->steps[i];

        switch (s->op) {
        case 'p':
            tokens[n] = window_push(&pool, &w, c->first + n);
            ck_assert_ptr_nonnull(tokens[n]);
            n++;
            break;
        case 'o':
            tokens[s->token]->pending++;
            break;
        case 'a':
            window_report(&pool, tokens[s->token]);
            break;
        case 'f':
            tokens[s->token]->failed = true;
            break;
        }
        /*
         * The consumer moves the done prefix after reports come, not while it
         * routes a message (a push and its outputs), and at the end of a turn.
         */
        if (s->op == 'a' || s->op == 'f' || i == c->nsteps - 1) {
            while ((t = window_pop_done(&pool, &w)))
                window_recycle(&pool, t);
            if (w.next >= 0)
                next = window_take_next(&w);
        }
    }
    ck_assert_msg(next == c->want_next, "%s: next %lld, want %lld", c->name, (long long)next,
                  (long long)c->want_next);
    t = window_failed_head(&w);
    ck_assert_msg((t ? t->offset : -1) == c->want_failed, "%s: failed head %lld, want %lld",
                  c->name, t ? (long long)t->offset : -1LL, (long long)c->want_failed);
    ck_assert_msg(pool.in_flight == c->want_in_flight, "%s: in flight %llu, want %llu", c->name,
                  (unsigned long long)pool.in_flight, (unsigned long long)c->want_in_flight);
    ck_assert_int_eq(window_take_next(&w), -1);
    window_pool_fini(&pool);
}
END_TEST

/*
 * A rewind cuts the window at the failed token: it and everything after it
 * leave; those still waiting for reports are recycled with their last one.
 */
START_TEST(test_cut)
{
    struct window_pool pool;
    struct window w;
    struct window_token *a, *b, *c, *t;

    window_pool_init(&pool);
    window_init(&w);
    a = window_push(&pool, &w, 1);
    b = window_push(&pool, &w, 2);
    c = window_push(&pool, &w, 3);
    a->pending = 1;
    b->pending = 2;
    b->failed = true;
    window_cut(&pool, &w, b);
    ck_assert_ptr_eq(w.head, a);
    ck_assert_ptr_eq(w.tail, a);
    ck_assert_ptr_null(a->next);
    ck_assert_uint_eq(pool.in_flight, 1);
    ck_assert_ptr_null(b->win);
    ck_assert_ptr_null(c->win);
    /* c had no report pending: recycled already, the next push takes it. */
    t = window_push(&pool, &w, 4);
    ck_assert_ptr_eq(t, c);
    /* b's reports still come; the last recycles it. */
    window_report(&pool, b);
    window_report(&pool, b);
    ck_assert_ptr_eq(pool.free, b);
    window_report(&pool, a);
    ck_assert_ptr_eq(window_pop_done(&pool, &w), a);
    window_recycle(&pool, a);
    ck_assert_ptr_eq(window_pop_done(&pool, &w), t);
    window_recycle(&pool, t);
    ck_assert_int_eq(window_take_next(&w), 5);
    ck_assert_uint_eq(pool.in_flight, 0);
    /* Cutting at the head empties the window. */
    a = window_push(&pool, &w, 6);
    a->pending = 1;
    window_cut(&pool, &w, w.head);
    ck_assert_ptr_null(w.head);
    ck_assert_ptr_null(w.tail);
    window_pool_fini(&pool);
}
END_TEST

/* Thousands of tokens: the pool grows by chunks and recycles them. */
START_TEST(test_many)
{
    struct window_pool pool;
    struct window w;
    struct window_token *t;

    window_pool_init(&pool);
    window_init(&w);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i++)
            window_push(&pool, &w, round * 5000 + i)->pending = 1;
        ck_assert_uint_eq(pool.in_flight, 5000);
        for (t = w.head; t; t = t->next)
            t->pending = 0;
        while ((t = window_pop_done(&pool, &w)))
            window_recycle(&pool, t);
        ck_assert_int_eq(window_take_next(&w), (round + 1) * 5000);
        ck_assert_uint_eq(pool.in_flight, 0);
    }
    window_pool_fini(&pool);
}
END_TEST

static Suite *window_suite(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("window");

    tcase_add_loop_test(tc, test_table, 0, (int)NCASES);
    tcase_add_test(tc, test_cut);
    tcase_add_test(tc, test_many);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(window_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
