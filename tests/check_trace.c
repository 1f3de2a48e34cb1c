/* SPDX-License-Identifier: MIT */
/* check_trace.c -- W3C trace context: which traceparents pass, what an input's headers give. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID  "00f067aa0ba902b7"
#define GOOD "00-" TID "-" PID "-01"

static const struct {
    const char *value;
    bool valid;
} parents[] = {
    {GOOD, true},
    {"00-" TID "-" PID "-00", true},
    {"01-" TID "-" PID "-01", true},
    {"01-" TID "-" PID "-01-extra", true},
    {"01-" TID "-" PID "-01extra", false},
    {"00-" TID "-" PID "-01-extra", false}, /* version 00 ends at the flags */
    {"ff-" TID "-" PID "-01", false},
    {"00-00000000000000000000000000000000-" PID "-01", false},
    {"00-" TID "-0000000000000000-01", false},
    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", false}, /* upper case */
    {"00-" TID "-" PID "-0", false},
    {"00-" TID "-" PID, false},
    {"00_" TID "-" PID "-01", false},
    {"0g-" TID "-" PID "-01", false},
    {"", false},
};

START_TEST(test_parent_valid)
{
    const char *v = parents[_i].value;

    ck_assert_msg(trace_parent_valid(v, strlen(v)) == parents[_i].valid, "\"%s\"", v);
}
END_TEST

static void add(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, value ? -1 : 0);
}

/* The value of the header name in h, or NULL. */
static const char *header(rd_kafka_headers_t *h, const char *name)
{
    static char buf[600];
    const void *v;
    size_t n;

    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_read_and_copy)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(4), *out;
    struct trace t;

    /* Names match without regard to case; both are carried over as they came. */
    add(in, "trace-id", "something else");
    add(in, "TraceParent", GOOD);
    add(in, "TRACESTATE", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    trace_read(in, &t);
    ck_assert(t.valid);
    ck_assert_str_eq(t.id, TID);
    out = trace_headers(&t);
    ck_assert_str_eq(header(out, "traceparent"), GOOD);
    ck_assert_str_eq(header(out, "tracestate"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    ck_assert_int_eq(rd_kafka_header_cnt(out), 2);
    rd_kafka_headers_destroy(out);
    rd_kafka_headers_destroy(in);

    /* A bad traceparent: neither it nor the tracestate is carried. */
    in = rd_kafka_headers_new(4);
    add(in, "traceparent", "00-" TID "-" PID "-1");
    add(in, "tracestate", "congo=t61rcWkgMzE");
    trace_read(in, &t);
    ck_assert(!t.valid);
    ck_assert_ptr_null(trace_headers(&t));
    rd_kafka_headers_destroy(in);

    /* Two traceparents: which is meant cannot be told. */
    in = rd_kafka_headers_new(4);
    add(in, "traceparent", GOOD);
    add(in, "Traceparent", GOOD);
    trace_read(in, &t);
    ck_assert(!t.valid);
    rd_kafka_headers_destroy(in);

    /* A tracestate with a control byte, or too long, is dropped; the traceparent stays. */
    in = rd_kafka_headers_new(4);
    add(in, "traceparent", GOOD);
    add(in, "tracestate", "a=b\nc=d");
    trace_read(in, &t);
    ck_assert(t.valid);
    out = trace_headers(&t);
    ck_assert_ptr_null(header(out, "tracestate"));
    ck_assert_int_eq(rd_kafka_header_cnt(out), 1);
    rd_kafka_headers_destroy(out);
    rd_kafka_headers_destroy(in);
    {
        char longer[TRACE_STATE_MAX + 2];

        memset(longer, 'a', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        in = rd_kafka_headers_new(4);
        add(in, "traceparent", GOOD);
        add(in, "tracestate", longer);
        trace_read(in, &t);
        ck_assert(t.valid);
        ck_assert_str_eq(t.state, "");
        rd_kafka_headers_destroy(in);
    }

    /* No headers, or none of these: nothing. */
    trace_read(NULL, &t);
    ck_assert(!t.valid);
    in = rd_kafka_headers_new(1);
    add(in, "traceparent", NULL);
    trace_read(in, &t);
    ck_assert(!t.valid);
    rd_kafka_headers_destroy(in);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");

    tcase_add_loop_test(tc, test_parent_valid, 0, (int)(sizeof(parents) / sizeof(parents[0])));
    tcase_add_test(tc, test_read_and_copy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
