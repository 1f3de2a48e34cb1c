/* SPDX-License-Identifier: MIT */
/* check_links.c -- pending links over the identity store: lookups, settling, growth. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "links.h"
#include "linkstore.h"

#define US   "+15550100123"
#define UK   "+442079460000"
#define CUS1 "cus_0123456789abcdef"
#define CUS2 "cus_fedcba9876543210"
#define CUS3 "cus_00000000000000aa"

/* The customer of phone, or "" (one buffer: read it before the next call). */
static const char *get(struct links *l, const char *phone)
{
    static char id[IDENTITY_ID_LEN + 1];
    int rc = links_get(l, phone, id, sizeof(id));

    ck_assert_int_ge(rc, 0);
    if (rc == 0)
        id[0] = '\0';
    return id;
}

START_TEST(test_pending_only)
{
    struct links *l = links_new(NULL);
    char id[IDENTITY_ID_LEN + 1];

    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(get(l, US), "");
    ck_assert_int_eq(links_put(l, US, CUS1), 1);
    ck_assert_int_eq(links_put(l, US, CUS1), 0);
    ck_assert_str_eq(get(l, US), CUS1);
    ck_assert_int_eq(links_put(l, US, CUS2), 1);
    ck_assert_str_eq(get(l, US), CUS2);
    ck_assert_int_eq(links_put(l, UK, CUS1), 1);
    ck_assert_uint_eq(links_pending(l), 2);
    ck_assert(links_is_pending(l, US, CUS2));
    ck_assert(!links_is_pending(l, US, CUS1));

    /* Wrong lengths. */
    ck_assert_int_eq(links_put(l, "+1234567890123456", CUS1), -EINVAL);
    ck_assert_int_eq(links_put(l, "", CUS1), -EINVAL);
    ck_assert_int_eq(links_put(l, NULL, CUS1), -EINVAL);
    ck_assert_int_eq(links_put(l, US, "cus_0123456789abcdef0"), -EINVAL);
    ck_assert_int_eq(links_put(l, US, "cus_a"), -EINVAL);
    ck_assert_int_eq(links_put(l, US, NULL), -EINVAL);
    ck_assert_int_eq(links_get(l, NULL, id, sizeof(id)), 0);
    ck_assert_int_eq(links_get(l, US, id, IDENTITY_ID_LEN), 0);

    /* Settling an older link of the phone keeps the newer one pending. */
    links_settle(l, US, CUS1);
    ck_assert_str_eq(get(l, US), CUS2);
    links_settle(l, US, CUS2);
    ck_assert_str_eq(get(l, US), "");
    ck_assert_uint_eq(links_pending(l), 1);
    links_settle(l, UK, CUS1);
    ck_assert_uint_eq(links_pending(l), 0);
    links_settle(l, UK, CUS1);
    ck_assert_ptr_null(links_store(l));
    ck_assert_ptr_null(links_free(l));
    ck_assert_ptr_null(links_free(NULL));
}
END_TEST

/* A pending link wins over the store; once settled, the store answers. */
START_TEST(test_over_store)
{
    char dir[] = "/tmp/check_links.XXXXXX", note[128], err[256], cmd[64];
    struct linkstore *s;
    struct links *l;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    s = linkstore_open(dir, 4 << 20, note, sizeof(note), err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    l = links_new(s);
    ck_assert_ptr_eq(links_store(l), s);
    ck_assert_int_eq(linkstore_put(s, US, CUS1), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(l, US), CUS1);

    ck_assert_int_eq(links_put(l, US, CUS2), 1);
    ck_assert_str_eq(get(l, US), CUS2);
    /* The changelog reads the link back and commits it, then settles it. */
    ck_assert_int_eq(linkstore_put(s, US, CUS2), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    links_settle(l, US, CUS2);
    ck_assert_uint_eq(links_pending(l), 0);
    ck_assert_str_eq(get(l, US), CUS2);
    /* Another instance's later link reaches the store; nothing pending hides it. */
    ck_assert_int_eq(linkstore_put(s, US, CUS3), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(l, US), CUS3);
    ck_assert_str_eq(get(l, UK), "");

    links_free(l);
    linkstore_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/*
 * 100,000 pending links: the table grows (and rehashes) many times, loses
 * none, and settling them all in another order empties it, each settle
 * moving another entry into the hole.
 */
START_TEST(test_growth_and_settle_all)
{
    enum { N = 100000 };
    struct links *l = links_new(NULL);
    char phone[IDENTITY_PHONE_MAX + 1], id[IDENTITY_ID_LEN + 1];
    unsigned bad = 0;

    for (unsigned i = 0; i < N; i++) {
        snprintf(phone, sizeof(phone), "+1555%07u", i);
        snprintf(id, sizeof(id), "cus_%016x", i);
        ck_assert_int_eq(links_put(l, phone, id), 1);
    }
    ck_assert_uint_eq(links_pending(l), N);
    for (unsigned i = 0; i < N; i += 2) {
        snprintf(phone, sizeof(phone), "+1555%07u", i);
        snprintf(id, sizeof(id), "cus_%016x", i);
        links_settle(l, phone, id);
    }
    ck_assert_uint_eq(links_pending(l), N / 2);
    for (unsigned i = 0; i < N; i++) {
        char want[IDENTITY_ID_LEN + 1];

        snprintf(phone, sizeof(phone), "+1555%07u", i);
        snprintf(want, sizeof(want), "cus_%016x", i);
        if (strcmp(get(l, phone), i % 2 ? want : "") != 0)
            bad++;
    }
    ck_assert_uint_eq(bad, 0);
    for (unsigned i = N; i-- > 0;) {
        snprintf(phone, sizeof(phone), "+1555%07u", i);
        snprintf(id, sizeof(id), "cus_%016x", i);
        links_settle(l, phone, id);
    }
    ck_assert_uint_eq(links_pending(l), 0);
    links_free(l);
}
END_TEST

static Suite *links_suite(void)
{
    Suite *s = suite_create("links");
    TCase *tc = tcase_create("links");

    tcase_add_test(tc, test_pending_only);
    tcase_add_test(tc, test_over_store);
    tcase_add_test(tc, test_growth_and_settle_all);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(links_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
