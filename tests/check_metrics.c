/* SPDX-License-Identifier: MIT */
/* check_metrics.c -- unit tests for the Prometheus registry and its text exposition. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "procstat.h"

#define PROMTOOL "/usr/bin/promtool"

#define THREADS        4
#define OPS_PER_THREAD 100000

/* The seed's processing-time buckets, which dashboards already chart. */
static const double duration_buckets[] = {0.00005, 0.0001, 0.001, 0.01, 0.1, 1, 10};
#define NDURATION (sizeof(duration_buckets) / sizeof(duration_buckets[0]))

/* Render m, check that the length and the NUL agree, and return the text for the caller to free. */
static char *render(struct metrics *m)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(metrics_render(m, &text, &len), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

/* Render m and compare with the whole expected exposition. */
static void assert_render(struct metrics *m, const char *expected)
{
    char *text = render(m);

    ck_assert_str_eq(text, expected);
    free(text);
}

/* The value of the sample whose series (name and labels) is exactly series; NAN when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return NAN;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

START_TEST(test_empty)
{
    struct metrics *m = metrics_new();

    ck_assert_ptr_nonnull(m);
    assert_render(m, "");
    ck_assert_ptr_null(metrics_free(m));
    ck_assert_ptr_null(metrics_free(NULL));
}
END_TEST

START_TEST(test_counter)
{
    static const char *const labels[] = {"topic", "status"};
    static const char *const ok[] = {"orders", "ok"};
    static const char *const dead[] = {"orders", "dead_letter"};
    struct metrics *m = metrics_new();
    struct metric_family *f =
        metrics_family(m, METRIC_COUNTER, "kafka_consumer_messages_consumed_total",
                       "Messages consumed, by topic and outcome.", 2, labels, 0, NULL);

    ck_assert_ptr_nonnull(f);
    struct metric *a = metrics_child(f, ok);
    struct metric *b = metrics_child(f, dead);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    /* The same label values give back the same child. */
    ck_assert_ptr_eq(metrics_child(f, ok), a);
    metric_add(a, 3);
    metric_add(a, 4);
    /* 2^53 + 1 and 1 make 2^53 + 2: a double would have lost the odd one, the counter does not. */
    metric_add(b, 1);
    metric_add(b, UINT64_C(9007199254740993));
    ck_assert(metric_value(a) == 7.0);

    assert_render(m, "# HELP kafka_consumer_messages_consumed_total Messages consumed, by topic "
                     "and outcome.\n"
                     "# TYPE kafka_consumer_messages_consumed_total counter\n"
                     "kafka_consumer_messages_consumed_total{topic=\"orders\",status=\"ok\"} 7\n"
                     "kafka_consumer_messages_consumed_total{topic=\"orders\",status=\"dead_"
                     "letter\"} 9007199254740994\n");
    metrics_free(m);
}
END_TEST

/* A counter of nanoseconds shown in seconds: exact sums, fractional output. */
START_TEST(test_counter_divisor)
{
    static const char *const labels[] = {"for"};
    static const char *const msgs[] = {"messages"}, *const acks[] = {"acknowledgements"};
    struct metrics *m = metrics_new();
    struct metric_family *f = metrics_family(m, METRIC_COUNTER, "crm_wait_seconds_total",
                                             "Time spent waiting.", 1, labels, 0, NULL);

    ck_assert_ptr_nonnull(f);
    metrics_set_divisor(f, 1e9);
    struct metric *a = metrics_child(f, msgs), *b = metrics_child(f, acks);
    metric_add(a, 1000000000);
    metric_add(a, 500000000);
    metric_add(b, 250);
    ck_assert(metric_value(a) == 1.5);
    assert_render(m, "# HELP crm_wait_seconds_total Time spent waiting.\n"
                     "# TYPE crm_wait_seconds_total counter\n"
                     "crm_wait_seconds_total{for=\"messages\"} 1.5\n"
                     "crm_wait_seconds_total{for=\"acknowledgements\"} 2.5e-07\n");
    metrics_free(m);

    /* Gauges and histograms keep their own scale; NULL is ignored. */
    m = metrics_new();
    struct metric_family *g =
        metrics_family(m, METRIC_GAUGE, "crm_level", "A level.", 0, NULL, 0, NULL);
    ck_assert_ptr_nonnull(g);
    metrics_set_divisor(g, 1e3);
    metrics_set_divisor(NULL, 1e3);
    metric_set(metrics_child(g, NULL), 7);
    assert_render(m, "# HELP crm_level A level.\n# TYPE crm_level gauge\ncrm_level 7\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_gauge)
{
    static const char *const labels[] = {"topic", "partition"};
    static const char *const p0[] = {"orders", "0"};
    static const char *const p1[] = {"orders", "1"};
    struct metrics *m = metrics_new();
    struct metric_family *lag =
        metrics_family(m, METRIC_GAUGE, "kafka_consumer_lag", "Messages behind the high watermark.",
                       2, labels, 0, NULL);
    struct metric_family *inflight = metrics_family(m, METRIC_GAUGE, "crm_inflight_messages",
                                                    "Messages being handled.", 0, NULL, 0, NULL);

    ck_assert_ptr_nonnull(lag);
    ck_assert_ptr_nonnull(inflight);
    struct metric *a = metrics_child(lag, p0);
    struct metric *b = metrics_child(lag, p1);
    struct metric *c = metrics_child(inflight, NULL);
    ck_assert_ptr_nonnull(c);
    metric_set(a, 10);
    metric_add(a, 5);
    metric_set(b, 0.25);
    metric_add(b, 2);
    metric_set(c, -3);
    metric_add(c, 1);
    ck_assert(metric_value(a) == 15.0);
    ck_assert(metric_value(b) == 2.25);
    ck_assert(metric_value(c) == -2.0);

    assert_render(m, "# HELP kafka_consumer_lag Messages behind the high watermark.\n"
                     "# TYPE kafka_consumer_lag gauge\n"
                     "kafka_consumer_lag{topic=\"orders\",partition=\"0\"} 15\n"
                     "kafka_consumer_lag{topic=\"orders\",partition=\"1\"} 2.25\n"
                     "# HELP crm_inflight_messages Messages being handled.\n"
                     "# TYPE crm_inflight_messages gauge\n"
                     "crm_inflight_messages -2\n");
    metrics_free(m);
}
END_TEST

/* How a gauge's double is written: the shortest text that reads back as the same double. */
static const struct {
    double value;
    const char *text;
} numbers[] = {
    {0.0, "0"},
    {-0.0, "0"},
    {3.0, "3"},
    {-42.0, "-42"},
    {0.1, "0.1"},
    {2.5, "2.5"},
    {-0.25, "-0.25"},
    {1.0 / 3.0, "0.3333333333333333"},
    {123456789.125, "123456789.125"},
    {5e-05, "5e-05"},
    {1e-07, "1e-07"},
    {9007199254740993.0, "9007199254740992"},
    {1e20, "100000000000000000000"},
    {1e21, "1e+21"},
    {1.5e300, "1.5e+300"},
    {DBL_MAX, "1.7976931348623157e+308"},
    {DBL_MIN, "2.2250738585072014e-308"},
    {4.9406564584124654e-324, "5e-324"},
    {NAN, "NaN"},
    {INFINITY, "+Inf"},
    {-INFINITY, "-Inf"},
};
#define NNUMBERS (sizeof(numbers) / sizeof(numbers[0]))

START_TEST(test_number_format)
{
    struct metrics *m = metrics_new();
    struct metric_family *f = metrics_family(m, METRIC_GAUGE, "g", "G.", 0, NULL, 0, NULL);
    char expected[128];

    metric_set(metrics_child(f, NULL), numbers[_i].value);
    snprintf(expected, sizeof(expected), "# HELP g G.\n# TYPE g gauge\ng %s\n", numbers[_i].text);
    assert_render(m, expected);
    metrics_free(m);
}
END_TEST

START_TEST(test_histogram)
{
    static const char *const labels[] = {"topic"};
    static const char *const orders[] = {"orders"};
    static const char *const payments[] = {"payments"};
    static const double observations[] = {0.00003, 0.00007, 0.0001, 0.004, 0.5, 2.5, 42};
    static const double small[] = {0.5, 2.5};
    struct metrics *m = metrics_new();
    struct metric_family *f = metrics_family(
        m, METRIC_HISTOGRAM, "kafka_message_processing_duration_seconds",
        "Time spent handling one message, in seconds.", 1, labels, NDURATION, duration_buckets);
    struct metric_family *g =
        metrics_family(m, METRIC_HISTOGRAM, "batch_size", "Messages per poll.", 0, NULL, 2, small);

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(g);
    struct metric *h = metrics_child(f, orders);
    ck_assert_ptr_nonnull(metrics_child(f, payments));
    struct metric *b = metrics_child(g, NULL);
    /* 0.0001 sits on a bound, which is inclusive; 42 is above every bound. */
    for (size_t i = 0; i < sizeof(observations) / sizeof(observations[0]); i++)
        metric_observe(h, observations[i]);
    metric_observe(b, 2.5);
    metric_observe(b, 0.25);
    ck_assert(metric_value(h) == 7.0);
    ck_assert(metric_value(b) == 2.0);

#define H "kafka_message_processing_duration_seconds"
    assert_render(
        m,
        "# HELP " H " Time spent handling one message, in seconds.\n"
        "# TYPE " H " histogram\n" H "_bucket{topic=\"orders\",le=\"5e-05\"} 1\n" H
        "_bucket{topic=\"orders\",le=\"0.0001\"} 3\n" H
        "_bucket{topic=\"orders\",le=\"0.001\"} 3\n" H "_bucket{topic=\"orders\",le=\"0.01\"} 4\n" H
        "_bucket{topic=\"orders\",le=\"0.1\"} 4\n" H "_bucket{topic=\"orders\",le=\"1\"} 5\n" H
        "_bucket{topic=\"orders\",le=\"10\"} 6\n" H "_bucket{topic=\"orders\",le=\"+Inf\"} 7\n" H
        "_sum{topic=\"orders\"} 45.0042\n" H "_count{topic=\"orders\"} 7\n" H
        "_bucket{topic=\"payments\",le=\"5e-05\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"0.0001\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"0.001\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"0.01\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"0.1\"} 0\n" H "_bucket{topic=\"payments\",le=\"1\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"10\"} 0\n" H
        "_bucket{topic=\"payments\",le=\"+Inf\"} 0\n" H "_sum{topic=\"payments\"} 0\n" H
        "_count{topic=\"payments\"} 0\n"
        "# HELP batch_size Messages per poll.\n"
        "# TYPE batch_size histogram\n"
        "batch_size_bucket{le=\"0.5\"} 1\n"
        "batch_size_bucket{le=\"2.5\"} 2\n"
        "batch_size_bucket{le=\"+Inf\"} 2\n"
        "batch_size_sum 2.75\n"
        "batch_size_count 2\n");
#undef H
    metrics_free(m);
}
END_TEST

/* A histogram with no bounds has only the +Inf bucket, which is still a valid histogram. */
START_TEST(test_histogram_no_buckets)
{
    struct metrics *m = metrics_new();
    struct metric_family *f = metrics_family(m, METRIC_HISTOGRAM, "h", "H.", 0, NULL, 0, NULL);

    metric_observe(metrics_child(f, NULL), 1.5);
    assert_render(m, "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1.5\n"
                     "h_count 1\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_escaping)
{
    static const char *const labels[] = {"path"};
    static const char *const odd[] = {"a\"b\\c\nd"};
    struct metrics *m = metrics_new();
    struct metric_family *f =
        metrics_family(m, METRIC_COUNTER, "odd_total",
                       "Counts \"quoted\" things.\nBackslash: \\ end", 1, labels, 0, NULL);

    metric_add(metrics_child(f, odd), 1);
    /* HELP escapes backslash and newline only; a label value escapes the quote as well. */
    assert_render(m, "# HELP odd_total Counts \"quoted\" things.\\nBackslash: \\\\ end\n"
                     "# TYPE odd_total counter\n"
                     "odd_total{path=\"a\\\"b\\\\c\\nd\"} 1\n");
    metrics_free(m);
}
END_TEST

/* Label values that are not UTF-8 would fail the whole scrape; each bad byte becomes U+FFFD. */
START_TEST(test_utf8_repair)
{
    static const char *const labels[] = {"v"};
    static const char *const values[][1] = {
        {"caf\xc3\xa9 \xf0\x9f\x98\x80"}, /* valid: kept as it is */
        {"bad\xff"},
        {"bad\xfe"},         /* the same after repair, so the same child */
        {"\xc0\xaf"},        /* an overlong '/' */
        {"\xed\xa0\x80"},    /* a UTF-16 surrogate */
        {"cut\xe2\x82"},     /* a sequence cut short */
        {"\xf4\x90\x80\x80"} /* above U+10FFFF */
    };
    struct metrics *m = metrics_new();
    struct metric_family *f = metrics_family(m, METRIC_GAUGE, "u", "U.", 1, labels, 0, NULL);
    struct metric *c[7];

    for (size_t i = 0; i < 7; i++) {
        c[i] = metrics_child(f, values[i]);
        ck_assert_ptr_nonnull(c[i]);
        metric_set(c[i], (double)i);
    }
    ck_assert_ptr_eq(c[1], c[2]);

#define R "\xef\xbf\xbd"
    assert_render(m, "# HELP u U.\n# TYPE u gauge\n"
                     "u{v=\"caf\xc3\xa9 \xf0\x9f\x98\x80\"} 0\n"
                     "u{v=\"bad" R "\"} 2\n"
                     "u{v=\"" R R "\"} 3\n"
                     "u{v=\"" R R R "\"} 4\n"
                     "u{v=\"cut" R R "\"} 5\n"
                     "u{v=\"" R R R R "\"} 6\n");
#undef R
    metrics_free(m);
}
END_TEST

START_TEST(test_order)
{
    static const char *const labels[] = {"k"};
    static const char *const z[] = {"z"};
    static const char *const y[] = {"y"};
    struct metrics *m = metrics_new();
    struct metric_family *b =
        metrics_family(m, METRIC_COUNTER, "b_total", "B.", 1, labels, 0, NULL);
    struct metric_family *a = metrics_family(m, METRIC_COUNTER, "a_total", "A.", 0, NULL, 0, NULL);
    struct metric_family *c = metrics_family(m, METRIC_GAUGE, "c", "C.", 0, NULL, 0, NULL);

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(c);
    /* Families in registration order, children in creation order, never sorted. */
    metric_add(metrics_child(b, z), 1);
    metric_add(metrics_child(b, y), 2);
    metric_add(metrics_child(a, NULL), 3);
    assert_render(m, "# HELP b_total B.\n# TYPE b_total counter\n"
                     "b_total{k=\"z\"} 1\nb_total{k=\"y\"} 2\n"
                     "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n"
                     "# HELP c C.\n# TYPE c gauge\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_clear)
{
    static const char *const labels[] = {"topic", "partition"};
    static const char *const p0[] = {"orders", "0"};
    static const char *const p1[] = {"orders", "1"};
    struct metrics *m = metrics_new();
    struct metric_family *lag = metrics_family(m, METRIC_GAUGE, "lag", "Lag.", 2, labels, 0, NULL);
    struct metric_family *keep =
        metrics_family(m, METRIC_COUNTER, "keep_total", "Kept.", 0, NULL, 0, NULL);
    struct metric *k = metrics_child(keep, NULL);

    metric_set(metrics_child(lag, p0), 5);
    metric_set(metrics_child(lag, p1), 6);
    metric_add(k, 1);
    metrics_clear(lag);
    /* The family stays, with no samples; other families are untouched. */
    assert_render(m, "# HELP lag Lag.\n# TYPE lag gauge\n"
                     "# HELP keep_total Kept.\n# TYPE keep_total counter\nkeep_total 1\n");
    /* A child made again after the clear starts from zero. */
    struct metric *again = metrics_child(lag, p1);
    ck_assert_ptr_nonnull(again);
    ck_assert(metric_value(again) == 0.0);
    metric_add(again, 2);
    assert_render(m, "# HELP lag Lag.\n# TYPE lag gauge\nlag{topic=\"orders\",partition=\"1\"} 2\n"
                     "# HELP keep_total Kept.\n# TYPE keep_total counter\nkeep_total 1\n");
    metrics_clear(NULL);
    metrics_free(m);
}
END_TEST

/* retain keeps the given children, in creation order, with their values; drops the rest. */
START_TEST(test_retain)
{
    static const char *const labels[] = {"partition"};
    static const char *const p0[] = {"0"}, *const p1[] = {"1"}, *const p2[] = {"2"};
    struct metrics *m = metrics_new();
    struct metric_family *lag = metrics_family(m, METRIC_GAUGE, "lag", "Lag.", 1, labels, 0, NULL);
    struct metric *a = metrics_child(lag, p0), *b = metrics_child(lag, p1);
    struct metric *c = metrics_child(lag, p2);
    struct metric *keep[] = {c, a};

    metric_set(a, 1);
    metric_set(b, 2);
    metric_set(c, 3);
    metrics_retain(lag, keep, 2);
    assert_render(m, "# HELP lag Lag.\n# TYPE lag gauge\nlag{partition=\"0\"} 1\n"
                     "lag{partition=\"2\"} 3\n");
    /* A kept pointer is still the live child. */
    metric_set(c, 4);
    ck_assert_ptr_eq(metrics_child(lag, p2), c);
    assert_render(m, "# HELP lag Lag.\n# TYPE lag gauge\nlag{partition=\"0\"} 1\n"
                     "lag{partition=\"2\"} 4\n");
    metrics_retain(lag, NULL, 0);
    assert_render(m, "# HELP lag Lag.\n# TYPE lag gauge\n");
    metrics_retain(NULL, NULL, 0);
    metrics_free(m);
}
END_TEST

/* Families that metrics_family() must refuse. */
static const struct {
    const char *why;
    enum metric_type type;
    const char *name;
    size_t nlabels;
    const char *labels[9];
    size_t nbuckets;
    double buckets[3];
} invalid[] = {
    {"empty name", METRIC_GAUGE, "", 0, {NULL}, 0, {0}},
    {"NULL name", METRIC_GAUGE, NULL, 0, {NULL}, 0, {0}},
    {"name starts with a digit", METRIC_GAUGE, "1abc", 0, {NULL}, 0, {0}},
    {"dash in name", METRIC_GAUGE, "a-b", 0, {NULL}, 0, {0}},
    {"space in name", METRIC_GAUGE, "a b", 0, {NULL}, 0, {0}},
    {"non-ASCII name", METRIC_GAUGE, "caf\xc3\xa9", 0, {NULL}, 0, {0}},
    {"empty label", METRIC_GAUGE, "g", 1, {""}, 0, {0}},
    {"NULL label", METRIC_GAUGE, "g", 1, {NULL}, 0, {0}},
    {"label starts with a digit", METRIC_GAUGE, "g", 1, {"1a"}, 0, {0}},
    {"colon in label", METRIC_GAUGE, "g", 1, {"a:b"}, 0, {0}},
    {"dash in label", METRIC_GAUGE, "g", 1, {"a-b"}, 0, {0}},
    {"reserved label", METRIC_GAUGE, "g", 1, {"__name__"}, 0, {0}},
    {"reserved label prefix", METRIC_COUNTER, "c_total", 2, {"ok", "__x"}, 0, {0}},
    {"le on a histogram", METRIC_HISTOGRAM, "h", 1, {"le"}, 0, {0}},
    {"duplicate label", METRIC_GAUGE, "g", 3, {"a", "b", "a"}, 0, {0}},
    {"nine labels", METRIC_GAUGE, "g", 9, {"a", "b", "c", "d", "e", "f", "g", "h", "i"}, 0, {0}},
    {"buckets on a gauge", METRIC_GAUGE, "g", 0, {NULL}, 2, {1, 2}},
    {"buckets not increasing", METRIC_HISTOGRAM, "h", 0, {NULL}, 3, {1, 2, 2}},
    {"buckets decreasing", METRIC_HISTOGRAM, "h", 0, {NULL}, 2, {2, 1}},
    {"+Inf bucket", METRIC_HISTOGRAM, "h", 0, {NULL}, 2, {1, INFINITY}},
    {"NaN bucket", METRIC_HISTOGRAM, "h", 0, {NULL}, 2, {1, NAN}},
    {"unknown type", (enum metric_type)7, "g", 0, {NULL}, 0, {0}},
};
#define NINVALID (sizeof(invalid) / sizeof(invalid[0]))

START_TEST(test_invalid)
{
    struct metrics *m = metrics_new();
    const double *buckets = invalid[_i].nbuckets > 0 ? invalid[_i].buckets : NULL;

    ck_assert_msg(metrics_family(m, invalid[_i].type, invalid[_i].name, "Help.",
                                 invalid[_i].nlabels, invalid[_i].labels, invalid[_i].nbuckets,
                                 buckets) == NULL,
                  "accepted: %s", invalid[_i].why);
    /* Nothing half-registered is left behind. */
    assert_render(m, "");
    metrics_free(m);
}
END_TEST

START_TEST(test_valid_names)
{
    static const char *const eight[] = {"a", "b", "c", "d", "e", "f", "g", "h_9"};
    static const char *const le[] = {"le", "_x"};
    struct metrics *m = metrics_new();

    ck_assert_ptr_nonnull(metrics_family(m, METRIC_GAUGE, ":a_B:9", "", 8, eight, 0, NULL));
    ck_assert_ptr_nonnull(metrics_family(m, METRIC_GAUGE, "_x", NULL, 0, NULL, 0, NULL));
    /* "le" is only the histogram's. */
    ck_assert_ptr_nonnull(metrics_family(m, METRIC_COUNTER, "le_total", "Le.", 2, le, 0, NULL));
    metrics_free(m);
}
END_TEST

/* Two families must never render a sample of the same name. */
START_TEST(test_name_clash)
{
    static const double b[] = {1};
    struct metrics *m = metrics_new();

    ck_assert_ptr_nonnull(metrics_family(m, METRIC_COUNTER, "x_total", "X.", 0, NULL, 0, NULL));
    ck_assert_ptr_null(metrics_family(m, METRIC_GAUGE, "x_total", "X.", 0, NULL, 0, NULL));
    ck_assert_ptr_nonnull(metrics_family(m, METRIC_HISTOGRAM, "h", "H.", 0, NULL, 1, b));
    ck_assert_ptr_null(metrics_family(m, METRIC_GAUGE, "h_count", "C.", 0, NULL, 0, NULL));
    ck_assert_ptr_null(metrics_family(m, METRIC_GAUGE, "h_sum", "S.", 0, NULL, 0, NULL));
    ck_assert_ptr_null(metrics_family(m, METRIC_GAUGE, "h_bucket", "B.", 0, NULL, 0, NULL));
    ck_assert_ptr_nonnull(metrics_family(m, METRIC_GAUGE, "h_total", "T.", 0, NULL, 0, NULL));
    ck_assert_ptr_nonnull(metrics_family(m, METRIC_GAUGE, "y_sum", "Y.", 0, NULL, 0, NULL));
    ck_assert_ptr_null(metrics_family(m, METRIC_HISTOGRAM, "y", "Y.", 0, NULL, 1, b));
    ck_assert_int_eq(procstat_register(m), 0);
    ck_assert_int_eq(procstat_register(m), -EEXIST);
    metrics_free(m);
}
END_TEST

/* Calls on NULL and calls that do not fit the child's type do nothing, and do not crash. */
START_TEST(test_misuse)
{
    struct metrics *m = metrics_new();
    struct metric_family *c = metrics_family(m, METRIC_COUNTER, "c_total", "C.", 0, NULL, 0, NULL);
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "g", "G.", 0, NULL, 0, NULL);
    struct metric_family *h = metrics_family(m, METRIC_HISTOGRAM, "h", "H.", 0, NULL, 0, NULL);
    struct metric *cc = metrics_child(c, NULL);
    struct metric *gc = metrics_child(g, NULL);
    struct metric *hc = metrics_child(h, NULL);
    char untouched[] = "untouched";
    char *text = untouched;
    size_t len = 1;

    metric_set(cc, 5);
    metric_observe(cc, 5);
    metric_observe(gc, 5);
    metric_add(hc, 5);
    metric_set(hc, 5);
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    ck_assert(metric_value(NULL) == 0.0);
    ck_assert(metric_value(cc) == 0.0);
    ck_assert(metric_value(gc) == 0.0);
    ck_assert(metric_value(hc) == 0.0);
    ck_assert_ptr_null(metrics_child(NULL, NULL));
    ck_assert_ptr_null(metrics_family(NULL, METRIC_GAUGE, "g", "G.", 0, NULL, 0, NULL));
    ck_assert_int_eq(metrics_render(NULL, &text, &len), -EINVAL);
    ck_assert_ptr_null(text);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(procstat_register(NULL), -EINVAL);
    metrics_free(m);
}
END_TEST

/* Many long series: the buffer grows past its first allocation without truncating anything. */
START_TEST(test_large)
{
    static const char *const labels[] = {"key"};
    enum { N = 3000 };
    struct metrics *m = metrics_new();
    struct metric_family *f =
        metrics_family(m, METRIC_COUNTER, "many_total", "Many.", 1, labels, 0, NULL);
    char value[128], series[160];

    for (int i = 0; i < N; i++) {
        snprintf(value, sizeof(value), "%0100d", i);
        const char *values[] = {value};
        metric_add(metrics_child(f, values), (uint64_t)i);
    }
    char *text = render(m);
    ck_assert_uint_eq(count_lines(text), N + 2);
    ck_assert_uint_gt(strlen(text), (size_t)N * 100);
    snprintf(series, sizeof(series), "many_total{key=\"%0100d\"}", N - 1);
    ck_assert(sample(text, series) == N - 1);
    free(text);
    metrics_free(m);
}
END_TEST

struct shared {
    struct metric *counter;
    struct metric *gauge;
    struct metric *histogram;
    struct metrics *m;
    atomic_int writers_left;
    unsigned renders;
};

static void *writer(void *arg)
{
    struct shared *s = arg;

    for (int i = 0; i < OPS_PER_THREAD; i++) {
        metric_add(s->counter, 1);
        metric_add(s->gauge, 1);
        metric_observe(s->histogram, (i % 4) * 0.5);
    }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

/* Render until the writers finish, checking that every scrape is self-consistent. */
static void *renderer(void *arg)
{
    struct shared *s = arg;
    double last = 0;

    do {
        char *text = render(s->m);
        double count = sample(text, "hot_seconds_count");
        double total = sample(text, "hot_total");
        ck_assert(count == sample(text, "hot_seconds_bucket{le=\"+Inf\"}"));
        ck_assert(count >= 0 && count <= THREADS * OPS_PER_THREAD);
        ck_assert(total >= last);
        last = total;
        free(text);
        s->renders++;
    } while (atomic_load(&s->writers_left) > 0);
    return NULL;
}

START_TEST(test_concurrency)
{
    static const double b[] = {0.5, 1};
    struct shared s = {.m = metrics_new()};
    pthread_t writers[THREADS], reader;

    s.counter = metrics_child(
        metrics_family(s.m, METRIC_COUNTER, "hot_total", "Hot.", 0, NULL, 0, NULL), NULL);
    s.gauge =
        metrics_child(metrics_family(s.m, METRIC_GAUGE, "hot", "Hot.", 0, NULL, 0, NULL), NULL);
    s.histogram = metrics_child(
        metrics_family(s.m, METRIC_HISTOGRAM, "hot_seconds", "Hot.", 0, NULL, 2, b), NULL);
    ck_assert_ptr_nonnull(s.counter);
    ck_assert_ptr_nonnull(s.gauge);
    ck_assert_ptr_nonnull(s.histogram);
    ck_assert_int_eq(procstat_register(s.m), 0);
    atomic_init(&s.writers_left, THREADS);

    ck_assert_int_eq(pthread_create(&reader, NULL, renderer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&writers[i], NULL, writer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(writers[i], NULL);
    pthread_join(reader, NULL);

    ck_assert_uint_ge(s.renders, 1);
    ck_assert(metric_value(s.counter) == THREADS * OPS_PER_THREAD);
    ck_assert(metric_value(s.gauge) == THREADS * OPS_PER_THREAD);
    ck_assert(metric_value(s.histogram) == THREADS * OPS_PER_THREAD);
    char *text = render(s.m);
    ck_assert(sample(text, "hot_total") == 400000);
    ck_assert(sample(text, "hot") == 400000);
    /* Each thread observed 0, 0.5, 1 and 1.5 in turn, 25,000 times each. */
    ck_assert(sample(text, "hot_seconds_bucket{le=\"0.5\"}") == 200000);
    ck_assert(sample(text, "hot_seconds_bucket{le=\"1\"}") == 300000);
    ck_assert(sample(text, "hot_seconds_bucket{le=\"+Inf\"}") == 400000);
    ck_assert(sample(text, "hot_seconds_sum") == 300000);
    ck_assert(sample(text, "hot_seconds_count") == 400000);
    free(text);
    metrics_free(s.m);
}
END_TEST

START_TEST(test_process)
{
    struct metrics *m = metrics_new();
    struct rlimit rl;

    ck_assert_int_eq(procstat_register(m), 0);
    char *text = render(m);
    double cpu = sample(text, "process_cpu_seconds_total");
    double rss = sample(text, "process_resident_memory_bytes");
    double vsz = sample(text, "process_virtual_memory_bytes");
    double fds = sample(text, "process_open_fds");
    double max_fds = sample(text, "process_max_fds");
    double start = sample(text, "process_start_time_seconds");
    double now = (double)time(NULL);

    ck_assert_msg(cpu >= 0 && cpu < 3600, "cpu %f", cpu);
    ck_assert_msg(rss > 0, "rss %f", rss);
    ck_assert_msg(vsz >= rss, "vsz %f, rss %f", vsz, rss);
    ck_assert_msg(fds >= 1, "open fds %f", fds);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(max_fds > 0 && max_fds == (double)rl.rlim_cur, "max fds %f", max_fds);
    ck_assert_msg(start > now - 3600 && start <= now + 1, "start %f, now %f", start, now);
    ck_assert_ptr_nonnull(strstr(text, "\n# TYPE process_cpu_seconds_total counter\n"));
    free(text);

    /* One more descriptor open, one more counted. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    text = render(m);
    ck_assert(sample(text, "process_open_fds") == fds + 1);
    free(text);
    close(fd);
    metrics_free(m);
}
END_TEST

/* Every kind of sample this module writes, in one registry, for promtool to judge. */
static struct metrics *everything(void)
{
    static const char *const labels[] = {"topic", "status"};
    static const char *const odd[] = {"a\"b\\c\nd", "caf\xc3\xa9\xff"};
    static const char *const plain[] = {"orders", "ok"};
    static const char *const topic[] = {"topic"};
    static const char *const orders[] = {"orders"};
    struct metrics *m = metrics_new();
    struct metric_family *c = metrics_family(m, METRIC_COUNTER, "events_total",
                                             "Events \\ seen.\nBy topic.", 2, labels, 0, NULL);
    struct metric_family *g =
        metrics_family(m, METRIC_GAUGE, "level_ratio", "A level.", 2, labels, 0, NULL);
    struct metric_family *h =
        metrics_family(m, METRIC_HISTOGRAM, "kafka_message_processing_duration_seconds",
                       "Handling time.", 1, topic, NDURATION, duration_buckets);

    ck_assert_ptr_nonnull(
        metrics_family(m, METRIC_GAUGE, "empty_ratio", "No samples.", 1, topic, 0, NULL));
    metric_add(metrics_child(c, odd), 3);
    metric_add(metrics_child(c, plain), UINT64_MAX);
    metric_set(metrics_child(g, odd), NAN);
    metric_set(metrics_child(g, plain), -INFINITY);
    metric_observe(metrics_child(h, orders), 0.00002);
    metric_observe(metrics_child(h, orders), 99);
    ck_assert_int_eq(procstat_register(m), 0);
    return m;
}

START_TEST(test_promtool)
{
    char path[] = "/tmp/check_metrics.XXXXXX";
    char cmd[256], out[4096];

    if (access(PROMTOOL, X_OK) != 0) {
        printf("check_metrics: %s not installed; skipping promtool check metrics\n", PROMTOOL);
        return;
    }
    struct metrics *m = everything();
    char *text = render(m);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    /* promtool's verdict and complaints, with the exit status last. */
    snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s 2>&1; echo \"exit $?\"", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    unlink(path);
    ck_assert_msg(strcmp(out, "exit 0\n") == 0, "promtool check metrics said:\n%s\non:\n%s", out,
                  text);
    free(text);
    metrics_free(m);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    TCase *threads = tcase_create("threads");

    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_retain);
    tcase_add_test(tc, test_counter);
    tcase_add_test(tc, test_counter_divisor);
    tcase_add_test(tc, test_gauge);
    tcase_add_loop_test(tc, test_number_format, 0, (int)NNUMBERS);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_histogram_no_buckets);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_utf8_repair);
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_clear);
    tcase_add_loop_test(tc, test_invalid, 0, (int)NINVALID);
    tcase_add_test(tc, test_valid_names);
    tcase_add_test(tc, test_name_clash);
    tcase_add_test(tc, test_misuse);
    tcase_add_test(tc, test_large);
    tcase_add_test(tc, test_process);
    tcase_add_test(tc, test_promtool);
    /* test_large takes about 2 s under sanitizers alone, more on a busy machine. */
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    /* Sanitizers and valgrind slow the threads down well past Check's 4 s default. */
    tcase_set_timeout(threads, 120);
    tcase_add_test(threads, test_concurrency);
    suite_add_tcase(s, threads);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
