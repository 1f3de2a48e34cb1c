/* SPDX-License-Identifier: MIT */
/* changelog.c -- the identities topic read into the identity store, at start-up and live. */
#include "changelog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "arena.h"
#include "identity.h"
#include "json.h"
#include "kafka.h"
#include "linkstore.h"
#include "log.h"

/* How long one request of the start may take, and how soon a failed start is tried again. */
#define START_TIMEOUT_MS 5000
#define START_RETRY_MS   1000
/* How often to look again for the topic while it does not exist. */
#define TOPIC_RETRY_MS 10000
/*
 * A commit costs a data sync, so changes are gathered: while restoring, up
 * to RESTORE_COMMIT_RECORDS records or a second; while following, at most
 * FOLLOW_COMMIT_MS after the first change, which is how long a link made by
 * another instance may take to reach the lookups.
 */
#define RESTORE_COMMIT_RECORDS 200000
#define RESTORE_COMMIT_MS      1000
#define FOLLOW_COMMIT_RECORDS  20000
#define FOLLOW_COMMIT_MS       100
/* The longest the follower waits for records with nothing to commit: how soon it sees a quit. */
#define FOLLOW_IDLE_MS 100
/* Most records read per changelog_poll(), so the main loop keeps turning. */
#define RESTORE_POLL_MAX 20000
#define FOLLOW_POLL_MAX  1000
/* How long the brokers have to answer the topic's configuration. */
#define ADMIN_TIMEOUT_MS 10000
/*
 * Records are parsed into an arena emptied after each one: an identity.linked
 * record is a few hundred bytes, so the first block serves them all without a
 * malloc. Deeper nesting than any record of ours has is not one of ours.
 */
#define ARENA_FIRST    (4 * 1024)
#define ARENA_KEEP_MAX (64 * 1024)
#define EVENT_DEPTH    32

enum state {
    STARTING,  /* where to read from is not decided yet */
    RESTORING, /* reading up to the end offsets taken at the start */
    FOLLOWING, /* caught up; reading what arrives */
    STOPPED,   /* the store refused a write */
};

/* What other threads may ask, copied under the lock at the end of every poll. */
struct view {
    enum state state;
    uint64_t applied, skipped, rebuilds, lost;
    uint64_t restore_done, restore_total;
    enum changelog_policy policy;
};

/* A link read back that this instance had pending: settled once its commit succeeds. */
struct settle {
    char phone[IDENTITY_PHONE_MAX + 1];
    char customer_id[IDENTITY_ID_LEN + 1];
};

struct changelog {
    const struct config *cfg;
    struct links *links;
    struct linkstore *store;
    rd_kafka_t *rk;
    enum state state;
    int partitions; /* 0 while the topic does not exist */
    int64_t *pos;   /* next offset to read, as applied (committed or in the open transaction) */
    int64_t *end;   /* end offsets at the start: what the restore reads up to */
    bool *moved;    /* pos changed since the last commit */
    int unfinished; /* partitions whose pos is below end */
    size_t uncommitted;
    int64_t first_change_ms; /* when the open transaction's first change was made */
    int64_t retry_after;
    bool told_waiting;
    struct settle *settle;
    size_t nsettle, capsettle;
    uint64_t applied, skipped, rebuilds, lost;
    uint64_t restore_done, restore_total;
    int64_t restore_start_ms;
    rd_kafka_queue_t *admin; /* the answer to the cleanup.policy question, while awaited */
    enum changelog_policy policy;
    struct arena arena;
    pthread_mutex_t lock; /* guards view */
    struct view view;
    pthread_t follower; /* see changelog_follow() */
    bool has_follower;
    atomic_bool quit; /* the follower is to stop */
};

static void publish(struct changelog *cl)
{
    pthread_mutex_lock(&cl->lock);
    cl->view = (struct view){
        .state = cl->state,
        .applied = cl->applied,
        .skipped = cl->skipped,
        .rebuilds = cl->rebuilds,
        .lost = cl->lost,
        .restore_done = cl->restore_done,
        .restore_total = cl->restore_total,
        .policy = cl->policy,
    };
    pthread_mutex_unlock(&cl->lock);
}

static struct view seen(struct changelog *cl)
{
    struct view v;

    pthread_mutex_lock(&cl->lock);
    v = cl->view;
    pthread_mutex_unlock(&cl->lock);
    return v;
}

rd_kafka_conf_t *changelog_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, RD_KAFKA_CONSUMER, err, errlen);

    /*
     * No group membership: every instance reads every partition, by assign(),
     * and commits nothing (the store holds the positions). librdkafka 2.0
     * still wants a group.id for assign().
     */
    if (conf && (kafka_conf_set(conf, "group.id", "crm-consumerd.identities", err, errlen) < 0 ||
                 kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) < 0 ||
                 kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
                 /* A position retention overtook is reported, not silently moved. */
                 kafka_conf_set(conf, "auto.offset.reset", "error", err, errlen) < 0 ||
                 kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) < 0)) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    return conf;
}

struct changelog *changelog_new(const struct config *cfg, struct links *links, char *err,
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
    cl->store = links_store(links);
    cl->policy = POLICY_UNKNOWN;
    pthread_mutex_init(&cl->lock, NULL);
    atomic_init(&cl->quit, false);
    publish(cl);
    if (arena_init(&cl->arena, ARENA_FIRST, ARENA_KEEP_MAX) < 0) {
        snprintf(err, errlen, "out of memory");
        return changelog_free(cl);
    }
    conf = changelog_conf_new(cfg, err, errlen);
    if (!conf)
        return changelog_free(cl);
    cl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!cl->rk) {
        rd_kafka_conf_destroy(conf);
        return changelog_free(cl);
    }
    rd_kafka_poll_set_consumer(cl->rk);
    return cl;
}

enum changelog_policy changelog_policy_of(const char *cleanup_policy)
{
    bool compact = false, del = false;
    const char *p = cleanup_policy;

    while (p && *p) {
        size_t n;

        p += strspn(p, " ,");
        n = strcspn(p, " ,");
        if (n == 7 && strncmp(p, "compact", n) == 0)
            compact = true;
        else if (n == 6 && strncmp(p, "delete", n) == 0)
            del = true;
        p += n;
    }
    if (compact)
        return del ? POLICY_COMPACT_DELETE : POLICY_COMPACT;
    return POLICY_DELETE;
}

/* Ask the brokers for the topic's cleanup.policy; the answer is read in changelog_poll(). */
static void ask_policy(struct changelog *cl)
{
    rd_kafka_ConfigResource_t *res;
    rd_kafka_AdminOptions_t *opt;
    char errstr[256];

    if (cl->admin)
        return;
    res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cl->cfg->output.identities_topic);
    opt = rd_kafka_AdminOptions_new(cl->rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    cl->admin = rd_kafka_queue_new(cl->rk);
    if (!res || !opt || !cl->admin ||
        rd_kafka_AdminOptions_set_request_timeout(opt, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr))) {
        if (cl->admin)
            rd_kafka_queue_destroy(cl->admin);
        cl->admin = NULL;
    } else {
        rd_kafka_DescribeConfigs(cl->rk, &res, 1, opt, cl->admin);
    }
    if (res)
        rd_kafka_ConfigResource_destroy(res);
    if (opt)
        rd_kafka_AdminOptions_destroy(opt);
}

static void judge_policy(struct changelog *cl, const char *value)
{
    const char *topic = cl->cfg->output.identities_topic;

    cl->policy = changelog_policy_of(value);
    switch (cl->policy) {
    case POLICY_COMPACT:
        log_info("identities topic %s is compacted: every phone's latest link is kept", topic);
        break;
    case POLICY_COMPACT_DELETE:
        log_warnx("identities topic %s has cleanup.policy=%s: links older than its retention "
                  "are deleted, and a store rebuilt from it loses them; set "
                  "cleanup.policy=compact",
                  topic, value);
        break;
    default:
        log_warnx("identities topic %s has cleanup.policy=%s, not compact: links older than "
                  "its retention are deleted, and a store rebuilt from it loses them; set "
                  "cleanup.policy=compact",
                  topic, value ? value : "delete");
        break;
    }
}

/* The answer to ask_policy(), if it came. */
static void read_policy(struct changelog *cl)
{
    rd_kafka_event_t *ev = cl->admin ? rd_kafka_queue_poll(cl->admin, 0) : NULL;
    const rd_kafka_DescribeConfigs_result_t *result;
    const rd_kafka_ConfigResource_t **res;
    const char *value = NULL;
    bool found = false;
    size_t n = 0;

    if (!ev)
        return;
    if (rd_kafka_event_error(ev)) {
        log_info("cannot check the cleanup.policy of %s: %s (the brokers may not serve the "
                 "admin API)",
                 cl->cfg->output.identities_topic, rd_kafka_event_error_string(ev));
    } else if ((result = rd_kafka_event_DescribeConfigs_result(ev)) != NULL) {
        res = rd_kafka_DescribeConfigs_result_resources(result, &n);
        for (size_t i = 0; i < n && !rd_kafka_ConfigResource_error(res[i]); i++) {
            size_t nc;
            const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res[i], &nc);

            for (size_t j = 0; j < nc; j++) {
                if (strcmp(rd_kafka_ConfigEntry_name(entries[j]), "cleanup.policy") == 0) {
                    value = rd_kafka_ConfigEntry_value(entries[j]);
                    found = true;
                }
            }
        }
        if (found)
            judge_policy(cl, value);
        else
            log_info("cannot check the cleanup.policy of %s: not in the brokers' answer",
                     cl->cfg->output.identities_topic);
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(cl->admin);
    cl->admin = NULL;
}

/* Make room for n partitions' positions. */
static int alloc_partitions(struct changelog *cl, int n)
{
    free(cl->pos);
    free(cl->end);
    free(cl->moved);
    cl->pos = calloc((size_t)n, sizeof(*cl->pos));
    cl->end = calloc((size_t)n, sizeof(*cl->end));
    cl->moved = calloc((size_t)n, sizeof(*cl->moved));
    return cl->pos && cl->end && cl->moved ? 0 : -ENOMEM;
}

/* Read every partition from its position. */
static int assign_at_positions(struct changelog *cl)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(cl->partitions);
    rd_kafka_resp_err_t err;

    if (!l)
        return -ENOMEM;
    for (int p = 0; p < cl->partitions; p++)
        rd_kafka_topic_partition_list_add(l, cl->cfg->output.identities_topic, p)->offset =
            cl->pos[p];
    err = rd_kafka_assign(cl->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warnx("identities topic %s: assign: %s", cl->cfg->output.identities_topic,
                  rd_kafka_err2str(err));
        return -EAGAIN;
    }
    return 0;
}

/*
 * Why the store cannot resume: NULL when it can. `why` receives the reason
 * for the one log line that announces the rebuild.
 */
static const char *must_rebuild(struct changelog *cl, const struct linkstore_origin *now,
                                const int64_t *low, char *why, size_t len)
{
    struct linkstore_origin was;

    if (linkstore_origin(cl->store, &was) < 0) {
        snprintf(why, len, "the store is new");
        return why;
    }
    if (strcmp(was.cluster, now->cluster) != 0) {
        snprintf(why, len, "it was filled from another cluster (%s, now %s)", was.cluster,
                 now->cluster);
        return why;
    }
    if (strcmp(was.topic, now->topic) != 0) {
        snprintf(why, len, "it was filled from topic %s", was.topic);
        return why;
    }
    if (was.partitions != now->partitions) {
        snprintf(why, len, "the topic had %d partitions and has %d", was.partitions,
                 now->partitions);
        return why;
    }
    for (int p = 0; p < now->partitions; p++) {
        int64_t at = linkstore_position(cl->store, p);

        if (at < 0)
            at = 0;
        if (at < low[p]) {
            snprintf(why, len,
                     "partition %d's records before offset %" PRId64
                     " were deleted before the store read them (it stopped at %" PRId64 ")",
                     p, low[p], at);
            return why;
        }
        if (at > cl->end[p]) {
            snprintf(why, len,
                     "partition %d ends at offset %" PRId64 ", before the store's position %" PRId64
                     " (was the topic made again?)",
                     p, cl->end[p], at);
            return why;
        }
        cl->pos[p] = at;
    }
    return NULL;
}

/* Metadata, cluster id and watermarks: decide where to read from, and start. */
static int start(struct changelog *cl)
{
    const char *topic = cl->cfg->output.identities_topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(cl->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    struct linkstore_origin origin = {.partitions = 0};
    rd_kafka_resp_err_t err;
    int64_t *low = NULL, hi;
    char why[512], *cluster;
    int n = 0, rc = -EAGAIN;

    cl->retry_after = clock_mono_ms() + START_RETRY_MS;
    if (!rkt)
        return -ENOMEM;
    err = rd_kafka_metadata(cl->rk, 0, rkt, &md, START_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        if (!cl->told_waiting)
            log_warnx("identities topic %s: %s; no message is handled until the identity "
                      "links are restored, trying again",
                      topic, rd_kafka_err2str(err));
        cl->told_waiting = true;
        return -EAGAIN;
    }
    if (md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (n == 0) {
        /* Nothing to restore; the store keeps what it has, and the topic is looked for again. */
        if (cl->state == STARTING)
            log_info("identities topic %s does not exist yet; %zu links in the store", topic,
                     linkstore_count(cl->store));
        cl->state = FOLLOWING;
        cl->retry_after = clock_mono_ms() + TOPIC_RETRY_MS;
        return 0;
    }

    cluster = rd_kafka_clusterid(cl->rk, START_TIMEOUT_MS);
    snprintf(origin.cluster, sizeof(origin.cluster), "%s", cluster ? cluster : "");
    if (cluster)
        rd_kafka_mem_free(cl->rk, cluster);
    snprintf(origin.topic, sizeof(origin.topic), "%s", topic);
    origin.partitions = n;
    if (alloc_partitions(cl, n) < 0 || (low = calloc((size_t)n, sizeof(*low))) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (int p = 0; p < n; p++) {
        err = rd_kafka_query_watermark_offsets(cl->rk, topic, p, &low[p], &hi, START_TIMEOUT_MS);
        if (err) {
            log_warnx("identities topic %s [%d]: cannot read its offsets: %s; trying again", topic,
                      p, rd_kafka_err2str(err));
            goto out;
        }
        cl->end[p] = hi;
    }
    cl->partitions = n;
    if (must_rebuild(cl, &origin, low, why, sizeof(why))) {
        if ((rc = linkstore_reset(cl->store, &origin)) < 0 ||
            (rc = linkstore_commit(cl->store)) < 0) {
            linkstore_abort(cl->store);
            log_errx("identity store %s: cannot empty it: %s", cl->cfg->identity.store_path,
                     strerror(-rc));
            cl->partitions = 0;
            cl->state = STOPPED;
            goto out;
        }
        for (int p = 0; p < n; p++)
            cl->pos[p] = low[p];
        if (strcmp(why, "the store is new") != 0) {
            cl->rebuilds++;
            log_warnx("identity store %s: rebuilding from the beginning of %s: %s",
                      cl->cfg->identity.store_path, topic, why);
        } else {
            log_info("identity store %s: new; reading %s from the beginning",
                     cl->cfg->identity.store_path, topic);
        }
    } else {
        log_info("identity store %s: %zu links; resuming %s from the stored positions",
                 cl->cfg->identity.store_path, linkstore_count(cl->store), topic);
    }
    cl->unfinished = 0;
    cl->restore_total = 0;
    for (int p = 0; p < n; p++) {
        if (cl->pos[p] < cl->end[p]) {
            cl->unfinished++;
            cl->restore_total += (uint64_t)(cl->end[p] - cl->pos[p]);
        }
    }
    if ((rc = assign_at_positions(cl)) < 0) {
        cl->partitions = 0;
        goto out;
    }
    cl->restore_start_ms = clock_mono_ms();
    cl->state = cl->unfinished ? RESTORING : FOLLOWING;
    if (cl->state == FOLLOWING)
        log_info("identity store: up to date with %s (%zu links)", topic,
                 linkstore_count(cl->store));
    ask_policy(cl);
    rc = 0;
out:
    free(low);
    return rc;
}

static bool is_e164(const char *s)
{
    size_t n = 0;

    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return false;
    return n >= 2 && n <= 15;
}

/*
 * Check one record: NULL when it is a link (phone and customer_id filled)
 * or a removal (*removal set, phone filled); else the reason to skip it.
 */
static const char *check(struct changelog *cl, const rd_kafka_message_t *m, char *phone,
                         char *customer_id, bool *removal)
{
    struct json_error jerr;
    const cJSON *root, *event, *ph, *cus, *email;
    char normal[IDENTITY_EMAIL_MAX + 1], expect[IDENTITY_ID_LEN + 1];
    const char *key = m->key, *why;
    size_t klen = m->key_len;

    *removal = false;
    if (!m->payload) {
        if (!key || klen == 0 || klen > IDENTITY_PHONE_MAX)
            return "a null value whose key is not an E.164 phone";
        memcpy(phone, key, klen);
        phone[klen] = '\0';
        if (!is_e164(phone))
            return "a null value whose key is not an E.164 phone";
        *removal = true;
        return NULL;
    }
    root = json_parse(m->payload, m->len, EVENT_DEPTH, arena_alloc, &cl->arena, &jerr);
    event = json_member(root, "event");
    ph = json_member(root, "phone");
    cus = json_member(root, "customer_id");
    email = json_member(root, "email");
    if (!json_is(event, cJSON_String) || strcmp(event->valuestring, "identity.linked") != 0 ||
        !json_is(ph, cJSON_String) || !json_is(cus, cJSON_String) || !json_is(email, cJSON_String))
        return "not an identity.linked event with a phone, an email and a customer_id";
    if (strlen(ph->valuestring) > IDENTITY_PHONE_MAX || !is_e164(ph->valuestring))
        return "its phone is not an E.164 number";
    if (identity_email(email->valuestring, strlen(email->valuestring), normal, sizeof(normal),
                       &why) < 0)
        return "its email is not a valid address";
    identity_customer_id("email", normal, expect);
    if (strcmp(expect, cus->valuestring) != 0)
        return "its customer_id is not the id of its email";
    if (key && klen > 0 &&
        !(klen == strlen(ph->valuestring) && memcmp(key, ph->valuestring, klen) == 0) &&
        !(klen == IDENTITY_ID_LEN && memcmp(key, expect, klen) == 0))
        return "its key is neither its phone nor its customer_id";
    strcpy(phone, ph->valuestring);
    strcpy(customer_id, expect);
    return NULL;
}

static void skip(struct changelog *cl, const rd_kafka_message_t *m, const char *why)
{
    /* The 1st, 2nd, 4th, 8th... skip is a warning: a topic of strangers does not flood the log. */
    cl->skipped++;
    if ((cl->skipped & (cl->skipped - 1)) == 0)
        log_warnx("%s [%" PRId32 "] offset %" PRId64 ": %s; skipped (%" PRIu64 " so far)",
                  cl->cfg->output.identities_topic, m->partition, m->offset, why, cl->skipped);
    else
        log_debug("%s [%" PRId32 "] offset %" PRId64 ": %s; skipped",
                  cl->cfg->output.identities_topic, m->partition, m->offset, why);
}

/* The store refused a write: stop reading, and say why once, loudly. */
static void stop(struct changelog *cl, int rc)
{
    rd_kafka_topic_partition_list_t *l = NULL;

    linkstore_abort(cl->store);
    cl->nsettle = 0;
    cl->uncommitted = 0;
    cl->state = STOPPED;
    if (rd_kafka_assignment(cl->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l) {
        rd_kafka_pause_partitions(cl->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (rc == -ENOSPC)
        log_errx("identity store %s is full at identity.store_max_mb = %d with %zu links: no "
                 "message is handled, so that no customer is split; raise "
                 "identity.store_max_mb and restart",
                 cl->cfg->identity.store_path, cl->cfg->identity.store_max_mb,
                 linkstore_count(cl->store));
    else
        log_errx("identity store %s: cannot write: %s; no message is handled, so that no "
                 "customer is split; check the disk and restart",
                 cl->cfg->identity.store_path, strerror(-rc));
}

static void moved(struct changelog *cl, int32_t partition, int64_t next)
{
    if (partition < 0 || partition >= cl->partitions || next <= cl->pos[partition])
        return;
    if (cl->state == RESTORING && cl->pos[partition] < cl->end[partition]) {
        int64_t upto = next < cl->end[partition] ? next : cl->end[partition];

        cl->restore_done += (uint64_t)(upto - cl->pos[partition]);
        if (next >= cl->end[partition])
            cl->unfinished--;
    }
    cl->pos[partition] = next;
    cl->moved[partition] = true;
    if (cl->uncommitted++ == 0)
        cl->first_change_ms = clock_mono_ms();
}

/*
 * Retention deleted records of a partition before they were read (the
 * reader fell behind it): move on to the log start, and say so loudly, for
 * the links in those records are lost. A compacted topic never does this.
 */
static void overtaken(struct changelog *cl, int32_t p)
{
    const char *topic = cl->cfg->output.identities_topic;
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err;

    if (p < 0 || p >= cl->partitions)
        return;
    err = rd_kafka_query_watermark_offsets(cl->rk, topic, p, &lo, &hi, START_TIMEOUT_MS);
    if (err || lo <= cl->pos[p]) {
        /* Not known yet, or not below: read again from where we are. */
        assign_at_positions(cl);
        return;
    }
    log_warnx("identities topic %s [%d]: offsets %" PRId64 " to %" PRId64
              " were deleted before the store read them; any link in them is lost (create "
              "the topic with cleanup.policy=compact)",
              topic, p, cl->pos[p], lo - 1);
    cl->lost += (uint64_t)(lo - cl->pos[p]);
    moved(cl, p, lo);
    assign_at_positions(cl);
}

static int remember_settle(struct changelog *cl, const char *phone, const char *customer_id)
{
    if (cl->nsettle == cl->capsettle) {
        size_t cap = cl->capsettle ? cl->capsettle * 2 : 64;
        struct settle *s = realloc(cl->settle, cap * sizeof(*s));

        if (!s)
            return -ENOMEM;
        cl->settle = s;
        cl->capsettle = cap;
    }
    strcpy(cl->settle[cl->nsettle].phone, phone);
    strcpy(cl->settle[cl->nsettle].customer_id, customer_id);
    cl->nsettle++;
    return 0;
}

/* Apply one record to the open transaction. */
static void apply(struct changelog *cl, const rd_kafka_message_t *m)
{
    char phone[IDENTITY_PHONE_MAX + 1], customer_id[IDENTITY_ID_LEN + 1];
    bool removal;
    const char *why = check(cl, m, phone, customer_id, &removal);
    int rc = 0;

    if (why) {
        skip(cl, m, why);
    } else if (removal) {
        rc = linkstore_del(cl->store, phone);
    } else {
        rc = linkstore_put(cl->store, phone, customer_id);
        /* A link of ours read back: it may stop being pending once this commit lands. */
        if (rc == 0 && links_pending(cl->links) > 0 &&
            links_is_pending(cl->links, phone, customer_id))
            rc = remember_settle(cl, phone, customer_id);
    }
    arena_reset(&cl->arena);
    if (rc < 0) {
        stop(cl, rc);
        return;
    }
    if (!why)
        cl->applied++;
    moved(cl, m->partition, m->offset + 1);
}

/* Commit what was applied, with the positions that cover it, when it is due (or forced). */
static void commit(struct changelog *cl, bool force)
{
    bool restoring = cl->state == RESTORING;
    size_t most = restoring ? RESTORE_COMMIT_RECORDS : FOLLOW_COMMIT_RECORDS;
    int64_t wait = restoring ? RESTORE_COMMIT_MS : FOLLOW_COMMIT_MS;
    int rc = 0;

    if (cl->uncommitted == 0 || cl->state == STOPPED)
        return;
    if (!force && cl->uncommitted < most && clock_mono_ms() - cl->first_change_ms < wait)
        return;
    for (int p = 0; p < cl->partitions && rc == 0; p++)
        if (cl->moved[p])
            rc = linkstore_set_position(cl->store, p, cl->pos[p]);
    if (rc == 0)
        rc = linkstore_commit(cl->store);
    if (rc < 0) {
        stop(cl, rc);
        return;
    }
    for (int p = 0; p < cl->partitions; p++)
        cl->moved[p] = false;
    for (size_t i = 0; i < cl->nsettle; i++)
        links_settle(cl->links, cl->settle[i].phone, cl->settle[i].customer_id);
    cl->nsettle = 0;
    cl->uncommitted = 0;
}

static int poll_once(struct changelog *cl, int timeout_ms)
{
    uint64_t before = cl->applied;
    int most, wait = timeout_ms;

    read_policy(cl);
    if (cl->state == STOPPED)
        return 0;
    if (cl->partitions == 0) {
        if (clock_mono_ms() < cl->retry_after || start(cl) < 0 || cl->partitions == 0)
            return 0;
    }
    most = cl->state == RESTORING ? RESTORE_POLL_MAX : FOLLOW_POLL_MAX;
    for (int i = 0; i < most && cl->state != STOPPED; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->rk, wait);

        if (!m)
            break;
        wait = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            moved(cl, m->partition, m->offset);
        else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
            overtaken(cl, m->partition);
        else if (m->err)
            log_warnx("identities: %s", rd_kafka_message_errstr(m));
        else
            apply(cl, m);
        rd_kafka_message_destroy(m);
    }
    commit(cl, cl->state == RESTORING && cl->unfinished == 0);
    if (cl->state == RESTORING && cl->unfinished == 0 && cl->uncommitted == 0) {
        cl->state = FOLLOWING;
        log_info("identity store: restored from %s: %" PRIu64 " records in %.3f s, %zu links",
                 cl->cfg->output.identities_topic, cl->restore_done,
                 (double)(clock_mono_ms() - cl->restore_start_ms) / 1000.0,
                 linkstore_count(cl->store));
    }
    return (int)(cl->applied - before);
}

int changelog_poll(struct changelog *cl, int timeout_ms)
{
    int n = poll_once(cl, timeout_ms);

    publish(cl);
    return n;
}

/* How long the follower may wait for records: until the open transaction is due, or idle. */
static int follow_wait(const struct changelog *cl)
{
    int64_t left;

    if (cl->uncommitted == 0)
        return FOLLOW_IDLE_MS;
    left = cl->first_change_ms + FOLLOW_COMMIT_MS - clock_mono_ms();
    return left <= 0 ? 0 : left < FOLLOW_IDLE_MS ? (int)left : FOLLOW_IDLE_MS;
}

static void *follow(void *arg)
{
    struct changelog *cl = arg;
    const struct timespec idle = {.tv_nsec = FOLLOW_IDLE_MS * 1000000L};

    while (!atomic_load(&cl->quit)) {
        /* Stopped, or waiting to look for the topic again: nothing to wait on but time. */
        if (cl->state == STOPPED || (cl->partitions == 0 && clock_mono_ms() < cl->retry_after))
            nanosleep(&idle, NULL);
        changelog_poll(cl, follow_wait(cl));
    }
    /* The write transaction belongs to this thread: it ends here. */
    commit(cl, true);
    linkstore_abort(cl->store);
    publish(cl);
    return NULL;
}

int changelog_follow(struct changelog *cl)
{
    sigset_t all, old;
    int rc;

    if (cl->has_follower || cl->state != FOLLOWING)
        return -EINVAL;
    /* Signals are the main loop's: the thread starts with every one blocked. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&cl->follower, NULL, follow, cl);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -rc;
    cl->has_follower = true;
    return 0;
}

bool changelog_restored(struct changelog *cl)
{
    return seen(cl).state == FOLLOWING;
}

bool changelog_stopped(struct changelog *cl)
{
    return seen(cl).state == STOPPED;
}

void changelog_progress(struct changelog *cl, uint64_t *done, uint64_t *total)
{
    struct view v = seen(cl);

    *done = v.restore_done;
    *total = v.restore_total;
}

uint64_t changelog_applied(struct changelog *cl)
{
    return seen(cl).applied;
}

uint64_t changelog_skipped(struct changelog *cl)
{
    return seen(cl).skipped;
}

uint64_t changelog_lost(struct changelog *cl)
{
    return seen(cl).lost;
}

uint64_t changelog_rebuilds(struct changelog *cl)
{
    return seen(cl).rebuilds;
}

enum changelog_policy changelog_policy(struct changelog *cl)
{
    return seen(cl).policy;
}

struct changelog *changelog_free(struct changelog *cl)
{
    if (!cl)
        return NULL;
    if (cl->has_follower) {
        atomic_store(&cl->quit, true);
        pthread_join(cl->follower, NULL);
    }
    commit(cl, true);
    if (cl->admin)
        rd_kafka_queue_destroy(cl->admin);
    if (cl->rk) {
        rd_kafka_consumer_close(cl->rk); /* no group: returns at once */
        rd_kafka_destroy(cl->rk);
    }
    free(cl->pos);
    free(cl->end);
    free(cl->moved);
    free(cl->settle);
    arena_fini(&cl->arena);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
    return NULL;
}
