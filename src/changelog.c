/* SPDX-License-Identifier: MIT */
/* changelog.c -- the identities topic read back into the links table, at start-up and live. */
#include "changelog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "arena.h"
#include "json.h"
#include "kafka.h"
#include "log.h"

/* Most events applied per changelog_poll(), so the main loop keeps turning. */
#define POLL_MAX 1000
/* How often to look again for the topic while it does not exist. */
#define RETRY_MS 10000
/*
 * Events are parsed into an arena emptied after each one: an identity.linked
 * event is a few hundred bytes, so the first block serves them all without a
 * malloc. Deeper nesting than any event of ours has is not one of ours.
 */
#define ARENA_FIRST    (4 * 1024)
#define ARENA_KEEP_MAX (64 * 1024)
#define EVENT_DEPTH    32

struct changelog {
    const struct config *cfg;
    struct identity_links *links;
    rd_kafka_t *rk;
    int partitions;      /* assigned; 0 while the topic does not exist */
    int64_t retry_after; /* monotonic ms of the next look for the topic */
    uint64_t applied;
    uint64_t skipped;
    struct arena arena;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

rd_kafka_conf_t *changelog_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, RD_KAFKA_CONSUMER, err, errlen);

    /*
     * No group membership: every instance reads every partition, by assign(),
     * and commits nothing. librdkafka 2.0 still wants a group.id for assign().
     */
    if (conf && (kafka_conf_set(conf, "group.id", "crm-consumerd.identities", err, errlen) < 0 ||
                 kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) < 0 ||
                 kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) < 0)) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    return conf;
}

struct changelog *changelog_new(const struct config *cfg, struct identity_links *links, char *err,
                                size_t errlen)
{
    struct changelog *cl = calloc(1, sizeof(*cl));
    rd_kafka_conf_t *conf;

    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cl->cfg = cfg;
    cl->links = links;
    if (arena_init(&cl->arena, ARENA_FIRST, ARENA_KEEP_MAX) < 0) {
        snprintf(err, errlen, "out of memory");
        free(cl);
        return NULL;
    }
    conf = changelog_conf_new(cfg, err, errlen);
    if (!conf) {
        arena_fini(&cl->arena);
        free(cl);
        return NULL;
    }
    cl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!cl->rk) {
        rd_kafka_conf_destroy(conf);
        arena_fini(&cl->arena);
        free(cl);
        return NULL;
    }
    rd_kafka_poll_set_consumer(cl->rk);
    return cl;
}

/* Find the topic's partitions and read them all from the beginning. */
static int assign_all(struct changelog *cl, int timeout_ms)
{
    const char *topic = cl->cfg->output.identities_topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(cl->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;
    int n = 0;

    cl->retry_after = now_ms() + RETRY_MS;
    if (!rkt)
        return -ENOMEM;
    err = rd_kafka_metadata(cl->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        log_warnx("identities topic %s: %s", topic, rd_kafka_err2str(err));
        return -EAGAIN;
    }
    if (md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (n == 0) {
        rd_kafka_metadata_destroy(md);
        log_info("identities topic %s does not exist yet; no links to load", topic);
        return -ENOENT;
    }
    l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(cl->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warnx("identities topic %s: assign: %s", topic, rd_kafka_err2str(err));
        return -EAGAIN;
    }
    cl->partitions = n;
    return 0;
}

/*
 * Apply one identity.linked event; anything else is skipped (and counted). The
 * daemon reads back every link it writes, so this runs for a large share of
 * the inputs: it parses with json_parse() into the arena, not with libcjson,
 * which would allocate every node.
 */
static void apply(struct changelog *cl, const rd_kafka_message_t *m)
{
    struct json_error jerr;
    const cJSON *root =
        m->len ? json_parse(m->payload, m->len, EVENT_DEPTH, arena_alloc, &cl->arena, &jerr) : NULL;
    const cJSON *event = json_member(root, "event");
    const cJSON *phone = json_member(root, "phone");
    const cJSON *customer = json_member(root, "customer_id");
    const char *why = "not an identity.linked event with a phone and a customer_id";

    if (json_is(event, cJSON_String) && strcmp(event->valuestring, "identity.linked") == 0 &&
        json_is(phone, cJSON_String) && json_is(customer, cJSON_String)) {
        int rc = identity_links_put(cl->links, phone->valuestring, customer->valuestring);

        if (rc >= 0) {
            cl->applied++;
            arena_reset(&cl->arena);
            return;
        }
        why = rc == -ENOMEM ? "out of memory for the link"
                            : "a phone or customer_id empty or too long to be one";
    }
    /* The 1st, 2nd, 4th, 8th... skip is a warning: a topic of strangers does not flood the log. */
    cl->skipped++;
    if ((cl->skipped & (cl->skipped - 1)) == 0)
        log_warnx("%s [%" PRId32 "] offset %" PRId64 ": %s; skipped (%" PRIu64 " so far)",
                  cl->cfg->output.identities_topic, m->partition, m->offset, why, cl->skipped);
    else
        log_debug("%s [%" PRId32 "] offset %" PRId64 ": %s; skipped",
                  cl->cfg->output.identities_topic, m->partition, m->offset, why);
    arena_reset(&cl->arena);
}

int changelog_load(struct changelog *cl, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    bool *at_end;
    int ends = 0;

    if (assign_all(cl, timeout_ms) < 0)
        return 0; /* nothing to load; changelog_poll looks again later */
    at_end = calloc((size_t)cl->partitions, sizeof(*at_end));
    if (!at_end)
        return -ENOMEM;
    while (ends < cl->partitions) {
        int64_t left = deadline - now_ms();
        rd_kafka_message_t *m;

        if (left <= 0)
            break;
        m = rd_kafka_consumer_poll(cl->rk, left > 100 ? 100 : (int)left);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < cl->partitions && !at_end[m->partition]) {
                at_end[m->partition] = true;
                ends++;
            }
        } else if (m->err) {
            log_warnx("identities: %s", rd_kafka_message_errstr(m));
        } else {
            apply(cl, m);
        }
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    return ends < cl->partitions ? -ETIMEDOUT : 0;
}

int changelog_poll(struct changelog *cl)
{
    uint64_t before = cl->applied;

    if (cl->partitions == 0) {
        if (now_ms() < cl->retry_after || assign_all(cl, 0) < 0)
            return 0;
    }
    for (int i = 0; i < POLL_MAX; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->rk, 0);

        if (!m)
            break;
        if (!m->err)
            apply(cl, m);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warnx("identities: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return (int)(cl->applied - before);
}

uint64_t changelog_applied(const struct changelog *cl)
{
    return cl->applied;
}

uint64_t changelog_skipped(const struct changelog *cl)
{
    return cl->skipped;
}

struct changelog *changelog_free(struct changelog *cl)
{
    if (!cl)
        return NULL;
    if (cl->rk) {
        rd_kafka_consumer_close(cl->rk); /* no group: returns at once */
        rd_kafka_destroy(cl->rk);
    }
    arena_fini(&cl->arena);
    free(cl);
    return NULL;
}
