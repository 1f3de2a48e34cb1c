/* SPDX-License-Identifier: MIT */
/* check_demo.c -- the embedded demo cluster and its traffic generator, read back by a consumer. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "demo.h"
#include "log.h"

#define PARTITIONS  4
#define WANT        1000
#define DEADLINE_MS 30000

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the generator has had `want` messages acknowledged, or the deadline passes. */
static uint64_t wait_produced(const struct demo *d, uint64_t want)
{
    const struct timespec tick = {0, 10 * 1000000L};
    int64_t deadline = now_ms() + DEADLINE_MS;

    while (demo_produced(d) < want && now_ms() < deadline)
        nanosleep(&tick, NULL);
    return demo_produced(d);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

START_TEST(test_utf8_checker)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"plain", true}, {"Jürgen", true},    {"山田", true},          {"😊", true},
        {"\xC3", false}, {"\xC0\xAF", false}, {"\xED\xA0\x80", false}, {"\xF4\x90\x80\x80", false},
        {"\x80", false}, {"a\xFFz", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(utf8_valid((const unsigned char *)cases[i].s, strlen(cases[i].s)) ==
                          cases[i].ok,
                      "case %zu", i);
}
END_TEST

static bool has_non_ascii(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static const char *string_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* What was read back from the input topic. */
struct tally {
    size_t total;
    size_t broken; /* not a JSON object, or no known type */
    size_t schema; /* a known type without its identifier or with an impossible sender */
    size_t emails, whatsapps, forms;
    size_t linking_forms; /* forms with both an e-mail and a phone */
    size_t non_ascii_names;
    char **keys;
    size_t nkeys, capkeys;
};

static void keep_key(struct tally *t, const void *key, size_t len)
{
    if (t->nkeys == t->capkeys) {
        t->capkeys = t->capkeys ? t->capkeys * 2 : 1024;
        t->keys = realloc(t->keys, t->capkeys * sizeof(*t->keys));
        ck_assert_ptr_nonnull(t->keys);
    }
    t->keys[t->nkeys] = strndup(key, len);
    ck_assert_ptr_nonnull(t->keys[t->nkeys]);
    t->nkeys++;
}

static void classify(struct tally *t, const rd_kafka_message_t *m)
{
    cJSON *msg;
    const char *type, *name = NULL;

    t->total++;
    ck_assert_msg(utf8_valid(m->payload, m->len), "offset %lld: not UTF-8", (long long)m->offset);
    ck_assert_ptr_nonnull(m->key);
    keep_key(t, m->key, m->key_len);
    msg = cJSON_ParseWithLength(m->payload, m->len);
    if (!cJSON_IsObject(msg)) {
        t->broken++;
        cJSON_Delete(msg);
        return;
    }
    type = string_of(msg, "message_type");
    if (!type)
        type = string_of(msg, "type");
    if (type && strcmp(type, "email_received") == 0) {
        const char *from = string_of(msg, "from");

        t->emails++;
        if (!string_of(msg, "message_id") || !from || !strchr(from, '@'))
            t->schema++;
        name = string_of(msg, "name");
    } else if (type && strcmp(type, "whatsapp_received") == 0) {
        t->whatsapps++;
        if (!string_of(msg, "message_id") || !string_of(msg, "from"))
            t->schema++;
        name = string_of(msg, "profile_name");
    } else if (type && strcmp(type, "form_submitted") == 0) {
        const cJSON *fields = cJSON_GetObjectItemCaseSensitive(msg, "fields");

        t->forms++;
        if (!string_of(msg, "submission_id") || !cJSON_IsObject(fields))
            t->schema++;
        else if (string_of(fields, "email") && string_of(fields, "phone"))
            t->linking_forms++;
        name = string_of(fields, "name");
    } else {
        t->broken++;
    }
    t->non_ascii_names += has_non_ascii(name);
    cJSON_Delete(msg);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read every partition of topic from the beginning to its end, outside any committed group. */
static void read_topic(const char *brokers, const char *topic, struct tally *t)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    bool at_end[PARTITIONS] = {false};
    int ends = 0;
    int64_t deadline = now_ms() + DEADLINE_MS;
    char errstr[512];
    rd_kafka_t *rk;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", "demo-check", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk, "%s", errstr);
    for (int32_t p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    while (ends < PARTITIONS && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ck_assert(m->partition >= 0 && m->partition < PARTITIONS);
            ends += !at_end[m->partition];
            at_end[m->partition] = true;
        } else {
            ck_assert_msg(!m->err, "%s", rd_kafka_message_errstr(m));
            classify(t, m);
        }
        rd_kafka_message_destroy(m);
    }
    ck_assert_int_eq(ends, PARTITIONS);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

START_TEST(test_traffic)
{
    struct config *cfg = config_new_defaults();
    struct tally t = {0};
    struct demo *d;
    uint64_t acked;
    double broken, poison;
    int64_t t0;
    char err[512] = "";

    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_null(cfg->kafka.brokers);
    d = demo_start(cfg, 500, err, sizeof(err));
    ck_assert_msg(d, "%s", err);
    ck_assert_ptr_nonnull(cfg->kafka.brokers);
    ck_assert_str_eq(cfg->kafka.brokers, demo_bootstraps(d));

    acked = wait_produced(d, WANT);
    ck_assert_uint_ge(acked, WANT);
    read_topic(cfg->kafka.brokers, cfg->kafka.topics[0], &t);

    /* Everything acknowledged before reading began is in the log. */
    ck_assert_uint_ge(t.total, acked);
    broken = (double)t.broken / (double)t.total;
    poison = (double)(t.broken + t.schema) / (double)t.total;
    ck_assert_msg(broken >= 0.005 && broken <= 0.05, "%zu of %zu unparsable or of unknown type",
                  t.broken, t.total);
    ck_assert_msg(poison >= 0.005 && poison <= 0.05, "%zu of %zu poison", t.broken + t.schema,
                  t.total);
    ck_assert_uint_gt(demo_poison(d), 0);
    ck_assert_uint_lt(demo_poison(d) * 20, demo_produced(d));
    /* 45/35/20 with generous room: over 1,000 messages one standard deviation is under 2%. */
    ck_assert_msg(t.emails * 100 >= t.total * 35 && t.emails * 100 <= t.total * 55, "%zu e-mails",
                  t.emails);
    ck_assert_msg(t.whatsapps * 100 >= t.total * 25 && t.whatsapps * 100 <= t.total * 45,
                  "%zu WhatsApps", t.whatsapps);
    ck_assert_msg(t.forms * 100 >= t.total * 12 && t.forms * 100 <= t.total * 28, "%zu forms",
                  t.forms);
    ck_assert_uint_gt(t.linking_forms, 0);
    ck_assert_uint_gt(t.non_ascii_names, 0);

    /* Keys are the message ids: unique, so an idempotent producer wrote each once. */
    qsort(t.keys, t.nkeys, sizeof(*t.keys), compare_keys);
    for (size_t i = 1; i < t.nkeys; i++)
        ck_assert_str_ne(t.keys[i - 1], t.keys[i]);
    for (size_t i = 0; i < t.nkeys; i++)
        free(t.keys[i]);
    free(t.keys);

    t0 = now_ms();
    ck_assert_ptr_null(demo_stop(d));
    ck_assert_int_lt(now_ms() - t0, 2000);
    config_free(cfg);
}
END_TEST

START_TEST(test_idle)
{
    static const struct {
        const char *topic;
        int partitions;
    } want[] = {
        {"crm.inbound", 4},    {"crm.tickets", 4},     {"crm.responses", 4},
        {"crm.identities", 2}, {"crm.inbound.dlq", 4},
    };
    struct config *cfg = config_new_defaults();
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md;
    struct demo *d;
    char err[512] = "";
    rd_kafka_t *rk;

    ck_assert_ptr_nonnull(cfg);
    cfg->kafka.brokers = strdup("old.example:9092");
    d = demo_start(cfg, 0, err, sizeof(err));
    ck_assert_msg(d, "%s", err);
    ck_assert_str_eq(cfg->kafka.brokers, demo_bootstraps(d));

    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "bootstrap.servers", demo_bootstraps(d), err, sizeof(err)),
        RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk, "%s", err);
    ck_assert_int_eq(rd_kafka_metadata(rk, 1, NULL, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int found = -1;

        for (int j = 0; j < md->topic_cnt; j++)
            if (strcmp(md->topics[j].topic, want[i].topic) == 0)
                found = j;
        ck_assert_msg(found >= 0, "%s missing", want[i].topic);
        ck_assert_int_eq(md->topics[found].err, RD_KAFKA_RESP_ERR_NO_ERROR);
        ck_assert_int_eq(md->topics[found].partition_cnt, want[i].partitions);
    }
    ck_assert_int_eq(md->broker_cnt, 3);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);

    ck_assert_uint_eq(demo_produced(d), 0);
    ck_assert_uint_eq(demo_poison(d), 0);
    ck_assert_ptr_null(demo_stop(d));
    config_free(cfg);
}
END_TEST

START_TEST(test_bad_rate)
{
    struct config *cfg = config_new_defaults();
    char err[512] = "";

    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_null(demo_start(cfg, -1, err, sizeof(err)));
    ck_assert_str_eq(err, "demo: rate -1 is not within 0..1000000 messages per second");
    ck_assert_ptr_null(cfg->kafka.brokers);
    ck_assert_ptr_null(demo_stop(NULL));
    config_free(cfg);
}
END_TEST

static Suite *demo_suite(void)
{
    Suite *s = suite_create("demo");
    TCase *tc = tcase_create("demo");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_utf8_checker);
    tcase_add_test(tc, test_bad_rate);
    tcase_add_test(tc, test_idle);
    tcase_add_test(tc, test_traffic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(demo_suite());
    int failed;

    log_init(getenv("TEST_LOG_DEBUG") ? LOG_DEBUG : LOG_WARNING);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
