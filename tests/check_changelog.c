/* SPDX-License-Identifier: MIT */
/* check_changelog.c -- the identities topic read into the identity store, from a mock cluster. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "changelog.h"
#include "config.h"
#include "identity.h"
#include "links.h"
#include "linkstore.h"

#define TOPIC      "crm.identities"
#define TIMEOUT_MS 30000

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer;
static char dir[64];

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
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "crm.identities.three", 3, 1), 0);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mock), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(producer, "%s", errstr);
    snprintf(dir, sizeof(dir), "/tmp/check_changelog.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void cluster_down(void)
{
    char cmd[128];

    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A record (NULL value: a tombstone) to a partition of `topic`, stored before this returns. */
static void put_to(const char *topic, int32_t partition, const char *key, const char *value,
                   size_t len)
{
    ck_assert_int_eq(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                                       RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                       RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_flush(producer, TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void put(int32_t partition, const char *key, const char *value)
{
    put_to(TOPIC, partition, key, value, value ? strlen(value) : 0);
}

/* The customer id of an e-mail address, as the handlers make it. */
static const char *cus(const char *email)
{
    static char ids[8][IDENTITY_ID_LEN + 1];
    static int next;
    char *id = ids[next++ % 8];

    identity_customer_id("email", email, id);
    return id;
}

/* A self-consistent link of phone to email's customer, in a buffer of its own. */
static char *link_json(const char *phone, const char *email)
{
    char normal[IDENTITY_EMAIL_MAX + 1], id[IDENTITY_ID_LEN + 1];
    const char *why;
    char *s = NULL;

    /* The id of the normalised address; an address that has none gets its own hash. */
    if (identity_email(email, strlen(email), normal, sizeof(normal), &why) == 0)
        identity_customer_id("email", normal, id);
    else
        identity_customer_id("email", email, id);
    ck_assert_int_ge(asprintf(&s,
                              "{\"event\":\"identity.linked\",\"customer_id\":\"%s\",\"email\":"
                              "\"%s\",\"phone\":\"%s\",\"source\":{\"topic\":\"crm.inbound\","
                              "\"partition\":0,\"offset\":1,\"message_id\":\"m1\"}}",
                              id, email, phone),
                     0);
    return s;
}

static void put_link(int32_t partition, const char *key, const char *phone, const char *email)
{
    char *v = link_json(phone, email);

    put(partition, key, v);
    free(v);
}

static struct config *test_config(void)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    cfg->kafka.brokers = strdup(rd_kafka_mock_cluster_bootstraps(mock));
    ck_assert_ptr_nonnull(cfg->kafka.brokers);
    free(cfg->identity.store_path);
    cfg->identity.store_path = strdup(dir);
    return cfg;
}

/* A store, links over it and a changelog reading into them. */
struct reader {
    struct linkstore *store;
    struct links *links;
    struct changelog *cl;
    char note[256];
};

static void reader_open(struct reader *r, const struct config *cfg, size_t max_bytes)
{
    char err[512];

    r->store = linkstore_open(dir, max_bytes, r->note, sizeof(r->note), err, sizeof(err));
    ck_assert_msg(r->store != NULL, "%s", err);
    r->links = links_new(r->store);
    ck_assert_ptr_nonnull(r->links);
    r->cl = changelog_new(cfg, r->links, err, sizeof(err));
    ck_assert_msg(r->cl != NULL, "%s", err);
}

static void reader_close(struct reader *r)
{
    r->cl = changelog_free(r->cl);
    r->links = links_free(r->links);
    r->store = linkstore_close(r->store);
}

/* Poll until restored (or stopped), as the daemon's loop does before it consumes. */
static void restore(struct reader *r)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!changelog_restored(r->cl) && !changelog_stopped(r->cl)) {
        changelog_poll(r->cl, 100);
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < TIMEOUT_MS / 1000, "not restored in time");
    }
}

/* Poll, live, until `applied` records are applied and committed. */
static void follow(struct reader *r, uint64_t applied)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        changelog_poll(r->cl, 50);
        if (changelog_applied(r->cl) >= applied) {
            /* One more turn after the commit interval, so the batch is committed. */
            nanosleep(&(struct timespec){.tv_nsec = 150 * 1000 * 1000}, NULL);
            changelog_poll(r->cl, 0);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < TIMEOUT_MS / 1000, "live records not applied");
    }
}

static const char *get(struct reader *r, const char *phone)
{
    static char id[IDENTITY_ID_LEN + 1];

    if (links_get(r->links, phone, id, sizeof(id)) != 1)
        id[0] = '\0';
    return id;
}

/* Nested `depth` arrays deep inside an otherwise good link. */
static char *deep_link(int depth)
{
    char *good = link_json("+15550100009", "deep@example.org");
    size_t len = strlen(good) + 2 * (size_t)depth + 16;
    char *s = malloc(len);
    char *p = s;

    ck_assert_ptr_nonnull(s);
    p += sprintf(p, "%.*s,\"extra\":", (int)strlen(good) - 1, good);
    memset(p, '[', (size_t)depth);
    p += depth;
    memset(p, ']', (size_t)depth);
    p += depth;
    strcpy(p, "}");
    free(good);
    return s;
}

/*
 * Only a self-consistent identity.linked record is applied; everything else
 * is skipped and counted, not applied and not fatal. Keyed by the phone (or
 * by the customer id, as earlier versions wrote), a later link for a phone
 * wins, and a null value removes it.
 */
START_TEST(test_apply_and_skip)
{
    struct config *cfg;
    struct reader r = {0};
    char *v;
    char forged[512];

    cluster_up();
    cfg = test_config();

    put_link(0, "+15550100001", "+15550100001", "ann@example.org");
    put(0, NULL, "not json");
    put(0, "+15550100004", "{\"event\":\"ticket.created\",\"phone\":\"+15550100004\"}");
    put(0, NULL, "{\"event\":\"identity.linked\",\"customer_id\":\"cus_x\"}");
    /* Forged: a customer id that is not the e-mail's (a takeover of the phone). */
    snprintf(forged, sizeof(forged),
             "{\"event\":\"identity.linked\",\"customer_id\":\"cus_a77acca77acca77a\",\"email\":"
             "\"ann@example.org\",\"phone\":\"+15550100005\"}");
    put(0, "+15550100005", forged);
    /* Not E.164, and a phone as a number. */
    put_link(1, NULL, "15550100006", "bob@example.org");
    put_link(1, NULL, "+05550100006", "bob@example.org");
    put(1, NULL,
        "{\"event\":\"identity.linked\",\"customer_id\":\"cus_x\",\"email\":\"b@example.org\","
        "\"phone\":15550100006}");
    /* An invalid address, and a key that is neither the phone nor the customer. */
    put_link(1, NULL, "+15550100007", "no-at-sign");
    put_link(1, "+15550100099", "+15550100007", "bob@example.org");
    v = link_json("+15550100010", "bob@example.org");
    put(1, NULL, v);
    free(v);
    /* Trailing garbage, too deep; and one deep but within the limit. */
    v = link_json("+15550100011", "bob@example.org");
    strcat(v = realloc(v, strlen(v) + 16), " trailing");
    put(1, NULL, v);
    free(v);
    v = deep_link(40);
    put(1, NULL, v);
    free(v);
    v = deep_link(20);
    put(1, NULL, v);
    free(v);
    /* Earlier versions keyed links by customer id: applied from the value. */
    put_link(1, cus("cara@example.org"), "+15550100002", "Cara@Example.org");
    /* A tombstone whose key is not a phone. */
    put(1, "cus_0123456789abcdef", NULL);

    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(changelog_applied(r.cl), 4);
    ck_assert_uint_eq(changelog_skipped(r.cl), 12);
    ck_assert_uint_eq(linkstore_count(r.store), 4);
    ck_assert_str_eq(get(&r, "+15550100001"), cus("ann@example.org"));
    ck_assert_str_eq(get(&r, "+15550100002"), cus("cara@example.org"));
    ck_assert_str_eq(get(&r, "+15550100009"), cus("deep@example.org"));
    ck_assert_str_eq(get(&r, "+15550100010"), cus("bob@example.org"));
    ck_assert_str_eq(get(&r, "+15550100005"), "");
    ck_assert_str_eq(get(&r, "+15550100007"), "");

    /* Live: a later link of a phone wins, a tombstone removes one. */
    put_link(0, "+15550100001", "+15550100001", "dave@example.org");
    put(1, "+15550100010", NULL);
    follow(&r, 6);
    ck_assert_str_eq(get(&r, "+15550100001"), cus("dave@example.org"));
    ck_assert_str_eq(get(&r, "+15550100010"), "");
    ck_assert_uint_eq(linkstore_count(r.store), 3);

    reader_close(&r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * A restart resumes from the stored positions: nothing is read twice, and
 * what arrived meanwhile is read before the store counts as restored.
 */
START_TEST(test_resume)
{
    struct config *cfg;
    struct reader r = {0};
    uint64_t done, total;

    cluster_up();
    cfg = test_config();
    for (int i = 0; i < 20; i++) {
        char phone[32];

        snprintf(phone, sizeof(phone), "+1555010%04d", i);
        put_link(i % 2, phone, phone, "ann@example.org");
    }
    reader_open(&r, cfg, 16 << 20);
    ck_assert_str_eq(r.note, "");
    ck_assert(!changelog_restored(r.cl));
    restore(&r);
    changelog_progress(r.cl, &done, &total);
    ck_assert_uint_eq(done, 20);
    ck_assert_uint_eq(total, 20);
    ck_assert_uint_eq(changelog_rebuilds(r.cl), 0);
    reader_close(&r);

    put_link(0, "+15550109999", "+15550109999", "bob@example.org");
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    changelog_progress(r.cl, &done, &total);
    ck_assert_uint_eq(done, 1);
    ck_assert_uint_eq(total, 1);
    ck_assert_uint_eq(changelog_applied(r.cl), 1);
    ck_assert_uint_eq(linkstore_count(r.store), 21);
    ck_assert_int_eq(linkstore_position(r.store, 0), 11);
    ck_assert_int_eq(linkstore_position(r.store, 1), 10);
    ck_assert_str_eq(get(&r, "+15550109999"), cus("bob@example.org"));
    reader_close(&r);

    /* Up to date: restored at once, nothing read. */
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(changelog_applied(r.cl), 0);
    ck_assert_uint_eq(linkstore_count(r.store), 21);
    reader_close(&r);

    config_free(cfg);
    cluster_down();
}
END_TEST

/* A store filled from another topic (or partition count) is rebuilt, and says why. */
START_TEST(test_rebuild_other_topic)
{
    struct config *cfg;
    struct reader r = {0};
    char *v;

    cluster_up();
    cfg = test_config();
    put_link(0, "+15550100001", "+15550100001", "ann@example.org");
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(linkstore_count(r.store), 1);
    reader_close(&r);

    free(cfg->output.identities_topic);
    cfg->output.identities_topic = strdup("crm.identities.three");
    v = link_json("+15550100002", "b@example.org");
    put_to("crm.identities.three", 2, "+15550100002", v, strlen(v));
    free(v);
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(changelog_rebuilds(r.cl), 1);
    ck_assert_uint_eq(linkstore_count(r.store), 1);
    ck_assert_str_eq(get(&r, "+15550100001"), "");
    ck_assert_str_eq(get(&r, "+15550100002"), cus("b@example.org"));
    reader_close(&r);

    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * Records deleted before the store read them (its position is below the log
 * start: retention overtook a stopped instance) make it rebuild from what is
 * left; a store whose position is above the log start keeps its links,
 * though the records that made them are gone.
 */
START_TEST(test_stale_store_rebuilt)
{
    enum { BIG = 700 * 1000 };
    struct config *cfg;
    struct reader r = {0};
    char *big = malloc(BIG);
    int64_t lo = 0, hi = 0;

    ck_assert_ptr_nonnull(big);
    memset(big, 'x', BIG);
    cluster_up();
    cfg = test_config();
    put_link(0, "+15550100001", "+15550100001", "ann@example.org");
    put_link(1, "+15550100002", "+15550100002", "bob@example.org");
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    reader_close(&r);

    /* Fill partition 1 past the mock's 5 MiB retention: its first records go. */
    for (int i = 0; i < 9; i++)
        put_to(TOPIC, 1, NULL, big, BIG);
    ck_assert_int_eq(rd_kafka_query_watermark_offsets(producer, TOPIC, 1, &lo, &hi, TIMEOUT_MS), 0);
    ck_assert_int_gt(lo, 1);

    /* The store read up to offset 1 of partition 1, now below the log start: rebuilt. */
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(changelog_rebuilds(r.cl), 1);
    ck_assert_str_eq(get(&r, "+15550100001"), cus("ann@example.org"));
    ck_assert_str_eq(get(&r, "+15550100002"), "");
    ck_assert_int_eq(linkstore_position(r.store, 1), hi);
    reader_close(&r);

    /* Caught up with the retention's effect: the next start resumes and rebuilds nothing. */
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_uint_eq(changelog_rebuilds(r.cl), 0);
    ck_assert_str_eq(get(&r, "+15550100001"), cus("ann@example.org"));
    reader_close(&r);

    free(big);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* A link this instance announced stays pending until it is read back and committed. */
START_TEST(test_pending_settled)
{
    struct config *cfg;
    struct reader r = {0};

    cluster_up();
    cfg = test_config();
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert_int_eq(links_put(r.links, "+15550100001", cus("ann@example.org")), 1);
    ck_assert_int_eq(links_put(r.links, "+15550100002", cus("bob@example.org")), 1);
    ck_assert_uint_eq(links_pending(r.links), 2);
    put_link(0, "+15550100001", "+15550100001", "ann@example.org");
    /* Another instance linked 2 elsewhere before our link of it was read back: ours stays. */
    put_link(1, "+15550100002", "+15550100002", "cara@example.org");
    follow(&r, 2);
    ck_assert_uint_eq(links_pending(r.links), 1);
    ck_assert_str_eq(get(&r, "+15550100002"), cus("bob@example.org"));
    put_link(1, "+15550100002", "+15550100002", "bob@example.org");
    follow(&r, 3);
    ck_assert_uint_eq(links_pending(r.links), 0);
    ck_assert_str_eq(get(&r, "+15550100001"), cus("ann@example.org"));
    ck_assert_str_eq(get(&r, "+15550100002"), cus("bob@example.org"));
    reader_close(&r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/*
 * Once restored, a thread of its own follows the topic. Meanwhile the links
 * this side made are looked up without pause: each is always found, pending
 * or stored, while the thread settles them; and all are stored when it stops.
 */
START_TEST(test_follow_thread)
{
    enum { N = 200 };
    struct config *cfg;
    struct reader r = {0};
    char phone[N][IDENTITY_PHONE_MAX + 1], email[64], id[IDENTITY_ID_LEN + 1];
    struct timespec start, now;
    unsigned missing = 0, rounds = 0;

    cluster_up();
    cfg = test_config();
    reader_open(&r, cfg, 16 << 20);
    ck_assert_int_eq(changelog_follow(r.cl), -EINVAL); /* not restored yet */
    restore(&r);
    ck_assert_int_eq(changelog_follow(r.cl), 0);
    ck_assert_int_eq(changelog_follow(r.cl), -EINVAL); /* already */
    for (int i = 0; i < N; i++) {
        snprintf(phone[i], sizeof(phone[i]), "+1555020%04d", i);
        snprintf(email, sizeof(email), "f%d@example.org", i);
        ck_assert_int_eq(links_put(r.links, phone[i], cus(email)), 1);
        put_link(i % 2, phone[i], phone[i], email);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (changelog_applied(r.cl) < N || links_pending(r.links) > 0) {
        for (int i = 0; i < N; i++)
            if (links_get(r.links, phone[i], id, sizeof(id)) != 1)
                missing++;
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < TIMEOUT_MS / 1000, "links not settled in time");
    }
    ck_assert_uint_eq(missing, 0);
    ck_assert_uint_gt(rounds, 0);
    ck_assert(!changelog_stopped(r.cl));
    reader_close(&r);

    /* What the thread stored is there after it stopped. */
    reader_open(&r, cfg, 16 << 20);
    ck_assert_uint_eq(linkstore_count(r.store), N);
    for (int i = 0; i < N; i++) {
        snprintf(email, sizeof(email), "f%d@example.org", i);
        ck_assert_str_eq(get(&r, phone[i]), cus(email));
    }
    reader_close(&r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* A store at its size stops the reader: nothing more is applied, and it says so. */
START_TEST(test_store_full_stops)
{
    struct config *cfg;
    struct reader r = {0};
    int64_t pos;

    cluster_up();
    cfg = test_config();
    for (int i = 0; i < 12000; i++) {
        char phone[32];
        char *v;

        snprintf(phone, sizeof(phone), "+1555%07d", i);
        v = link_json(phone, "ann@example.org");
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_KEY(phone, strlen(phone)), RD_KAFKA_V_VALUE(v, strlen(v)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        free(v);
    }
    ck_assert_int_eq(rd_kafka_flush(producer, TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    reader_open(&r, cfg, 256 * 1024);
    restore(&r);
    ck_assert(changelog_stopped(r.cl));
    ck_assert(!changelog_restored(r.cl));
    pos = linkstore_position(r.store, 0);
    ck_assert_int_lt(pos, 12000);
    /* Every committed link is covered by the committed position, and no more. */
    ck_assert_uint_eq(linkstore_count(r.store), (size_t)(pos < 0 ? 0 : pos));
    ck_assert_int_eq(changelog_poll(r.cl, 0), 0);
    reader_close(&r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* A topic that does not exist yet is nothing to restore, not an error. */
START_TEST(test_no_topic)
{
    struct config *cfg;
    struct reader r = {0};

    cluster_up();
    cfg = test_config();
    free(cfg->output.identities_topic);
    cfg->output.identities_topic = strdup("crm.identities.absent");
    ck_assert_ptr_nonnull(cfg->output.identities_topic);
    reader_open(&r, cfg, 16 << 20);
    restore(&r);
    ck_assert(changelog_restored(r.cl));
    ck_assert_int_eq(changelog_poll(r.cl, 0), 0);
    ck_assert_uint_eq(changelog_applied(r.cl), 0);
    reader_close(&r);
    config_free(cfg);
    cluster_down();
}
END_TEST

/* The cleanup.policy verdicts: only plain compaction keeps every phone's link for ever. */
START_TEST(test_policy_verdicts)
{
    static const struct {
        const char *value;
        enum changelog_policy want;
    } cases[] = {
        {"compact", POLICY_COMPACT},
        {"delete", POLICY_DELETE},
        {"compact,delete", POLICY_COMPACT_DELETE},
        {"delete,compact", POLICY_COMPACT_DELETE},
        {"compact, delete", POLICY_COMPACT_DELETE},
        {" compact ", POLICY_COMPACT},
        {"", POLICY_DELETE},
        {NULL, POLICY_DELETE},
        {"compacted", POLICY_DELETE},
        {"COMPACT", POLICY_DELETE},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(changelog_policy_of(cases[i].value) == cases[i].want, "\"%s\"",
                      cases[i].value ? cases[i].value : "(null)");
}
END_TEST

static Suite *changelog_suite(void)
{
    Suite *s = suite_create("changelog");
    TCase *tc = tcase_create("changelog");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_apply_and_skip);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_rebuild_other_topic);
    tcase_add_test(tc, test_stale_store_rebuilt);
    tcase_add_test(tc, test_pending_settled);
    tcase_add_test(tc, test_follow_thread);
    tcase_add_test(tc, test_store_full_stops);
    tcase_add_test(tc, test_no_topic);
    tcase_add_test(tc, test_policy_verdicts);
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
