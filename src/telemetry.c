/* SPDX-License-Identifier: MIT */
/* telemetry.c -- what the daemon counts and how healthy it is: metrics, probes, STATUS lines. */
#include "telemetry.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "arena.h"
#include "json.h"
#include "procstat.h"

/*
 * A handler running longer than this is stuck: handlers only compute, they
 * never wait. Sooner if max.poll.interval.ms is shorter: by then the member
 * has left the group.
 */
#define HANDLER_TTL_MS 30000

/* Group states for /ready, from the statistics' cgrp object. */
enum group_state {
    GROUP_UNKNOWN, /* no statistics yet */
    GROUP_STEADY,  /* joined, assignment in force (possibly empty: more members than partitions) */
    GROUP_JOINING, /* a rebalance is under way */
    GROUP_DOWN,    /* no coordinator */
};

static const char *const group_names[] = {"unknown", "steady", "rebalancing", "no coordinator"};

/*
 * Per-message latency, from tens of microseconds (a parse and three outputs
 * queued) to seconds (a stuck dependency).
 */
/*
 * Record age, from a fraction of a second (keeping up) to a day (an input
 * that waited out an outage or a long backlog).
 */
static const double age_buckets[] = {0.1, 0.25, 0.5, 1,   2.5,  5,     10,
                                     30,  60,   300, 900, 3600, 21600, 86400};

static const double latency_buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    0.25,
                                         0.5,     1,        2.5,     5,      10};

/*
 * librdkafka's statistics, which grow with the partitions assigned, are parsed into
 * an arena that keeps up to STATS_ARENA_KEEP_MAX for the next round: no
 * allocator call per node, every statistics.interval.ms, on the main loop.
 * They nest five levels deep (root, topics, topic, partitions, partition);
 * the limit only has to bound the recursion.
 */
#define STATS_ARENA_FIRST    (64 * 1024)
#define STATS_ARENA_KEEP_MAX (16 * 1024 * 1024)
#define STATS_MAX_DEPTH      32

struct telemetry {
    const struct config *cfg;
    struct metrics *registry;
    size_t ntopics;
    struct metric **consumed; /* [topic][status] */
    struct metric *latency;
    struct metric *dead[ERROR_TRANSIENT + 1];
    struct metric *retries, *breaker_opens, *consume_errors, *fetch_wakeups, *stalls;
    struct metric *waits[WAIT_KINDS];
    struct metric *outputs[OUTPUT_TOPICS][2]; /* [topic][ok] */
    struct metric *commits[2];                /* [ok] */
    struct metric *rebalances[REBALANCE_KINDS];
    struct metric *assigned, *paused, *in_flight, *breaker, *last_poll, *links;
    struct metric *links_pending, *restoring, *restore_left, *store_bytes, *store_max, *stopped;
    struct metric *rebuilds, *compacted, *lost;
    struct metric *link_events[2]; /* identity.linked events read back: applied, skipped */
    struct metric_family *lag, *broker_up, *record_ts;
    struct metric *record_age;

    /* Published by the main loop for the probes on the HTTP thread. */
    atomic_int_fast64_t poll_ms;    /* monotonic ms of the last loop turn, 0 before the first */
    atomic_int_fast64_t handler_ms; /* monotonic ms a handler started, 0 when none runs */
    atomic_int brokers_up;          /* -1 before the first statistics */
    atomic_int brokers;
    atomic_int group;
    atomic_int_fast64_t total_lag; /* -1 unknown */
    atomic_bool fatal;
    atomic_int breaker_state;
    atomic_int identity_state;
    atomic_uint_fast64_t restore_done, restore_total;
    char fatal_why[256]; /* written once, before fatal is set */

    /* The last statistics' tree, rebuilt in the same memory each time; main loop only. */
    struct arena stats_arena;

    /* For the STATUS= rate; main loop only. */
    double last_consumed;
    double rate;
    int64_t last_status_ms;
};

static struct metric *single(struct metrics *m, enum metric_type type, const char *name,
                             const char *help)
{
    struct metric_family *f = metrics_family(m, type, name, help, 0, NULL, 0, NULL);

    return f ? metrics_child(f, NULL) : NULL;
}

static bool register_all(struct telemetry *t)
{
    static const char *const statuses[] = {"success", "failure", "error", "dead_letter"};
    static const char *const consumed_labels[] = {"topic", "consumer_group", "status"};
    static const char *const class_label[] = {"class"};
    static const char *const output_labels[] = {"topic", "status"};
    static const char *const status_label[] = {"status"};
    static const char *const type_label[] = {"type"};
    static const char *const for_label[] = {"for"};
    static const char *const result_label[] = {"result"};
    static const char *const results[] = {"applied", "skipped"};
    static const char *const waits[] = {
        [WAIT_MESSAGES] = "messages", [WAIT_ACKNOWLEDGEMENTS] = "acknowledgements"};
    static const char *const lag_labels[] = {"topic", "partition", "consumer_group"};
    static const char *const broker_label[] = {"broker"};
    static const char *const ts_labels[] = {"topic", "partition"};
    static const char *const build_labels[] = {"version", "librdkafka_version"};
    static const char *const kinds[] = {"assign", "revoke", "lost"};
    const struct config *cfg = t->cfg;
    const char *outputs[OUTPUT_TOPICS] = {cfg->output.tickets_topic, cfg->output.responses_topic,
                                          cfg->output.identities_topic, cfg->output.dlq_topic};
    struct metrics *m = t->registry;
    struct metric_family *f;
    bool ok = true;

    f = metrics_family(m, METRIC_COUNTER, "kafka_consumer_messages_consumed_total",
                       "Messages consumed, by input topic, group and outcome.", 3, consumed_labels,
                       0, NULL);
    for (size_t i = 0; f && i < t->ntopics; i++) {
        for (int s = 0; s < MESSAGE_STATUSES; s++) {
            const char *v[] = {cfg->kafka.topics[i], cfg->kafka.group_id, statuses[s]};

            ok &= (t->consumed[i * MESSAGE_STATUSES + (size_t)s] = metrics_child(f, v)) != NULL;
        }
    }
    ok &= f != NULL;
    f = metrics_family(m, METRIC_HISTOGRAM, "kafka_message_processing_duration_seconds",
                       "Time to route one message and queue its outputs.", 0, NULL,
                       sizeof(latency_buckets) / sizeof(latency_buckets[0]), latency_buckets);
    ok &= f && (t->latency = metrics_child(f, NULL)) != NULL;
    f = metrics_family(m, METRIC_HISTOGRAM, "crm_consumer_record_age_seconds",
                       "Age of an input when its outputs are acknowledged: now minus its record "
                       "timestamp (the latency a CRM user feels).",
                       0, NULL, sizeof(age_buckets) / sizeof(age_buckets[0]), age_buckets);
    ok &= f && (t->record_age = metrics_child(f, NULL)) != NULL;
    t->record_ts = metrics_family(
        m, METRIC_GAUGE, "crm_consumer_last_processed_record_timestamp_seconds",
        "Record timestamp of the last input whose offset was stored, by partition (Unix time).", 2,
        ts_labels, 0, NULL);
    ok &= t->record_ts != NULL;
    t->lag = metrics_family(m, METRIC_GAUGE, "kafka_consumer_lag",
                            "Messages behind the partition's high watermark, from the offset "
                            "last stored (librdkafka's consumer_lag_stored).",
                            3, lag_labels, 0, NULL);
    ok &= t->lag != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_dead_letters_total",
                       "Messages copied to the dead-letter topic, by error class.", 1, class_label,
                       0, NULL);
    for (int c = ERROR_PARSE; f && c <= ERROR_OVERSIZE; c++) {
        const char *v[] = {router_class_name((enum error_class)c)};

        ok &= (t->dead[c] = metrics_child(f, v)) != NULL;
    }
    ok &= f != NULL;
    ok &= (t->retries = single(m, METRIC_COUNTER, "crm_consumer_retries_total",
                               "Partitions rewound to a failed message for another attempt.")) !=
          NULL;
    ok &= (t->fetch_wakeups =
               single(m, METRIC_COUNTER, "crm_consumer_fetch_wakeups_total",
                      "Times librdkafka's fetchers were woken as the prefetched messages ran "
                      "low, during a backlog.")) != NULL;
    ok &= (t->stalls = single(m, METRIC_COUNTER, "crm_consumer_partition_stalls_total",
                              "Partitions fetched again after processing.stall_timeout_s with "
                              "messages waiting (or no fetch answered since their assignment), "
                              "none delivered and nothing pausing them.")) != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_wait_seconds_total",
                       "Time the main loop spent blocked waiting, by what for: messages (none "
                       "fetched yet) or acknowledgements (flow control: "
                       "processing.max_in_flight reached, or the producer's queue full).",
                       1, for_label, 0, NULL);
    metrics_set_divisor(f, 1e9);
    for (int k = 0; f && k < WAIT_KINDS; k++) {
        const char *v[] = {waits[k]};

        ok &= (t->waits[k] = metrics_child(f, v)) != NULL;
    }
    ok &= f != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_outputs_total",
                       "Outputs and dead letters, by topic and delivery result.", 2, output_labels,
                       0, NULL);
    for (int o = 0; f && o < OUTPUT_TOPICS; o++) {
        const char *failed[] = {outputs[o], "failed"}, *acked[] = {outputs[o], "acknowledged"};

        ok &= (t->outputs[o][0] = metrics_child(f, failed)) != NULL;
        ok &= (t->outputs[o][1] = metrics_child(f, acked)) != NULL;
    }
    ok &= f != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_commits_total",
                       "Offset commits, by result.", 1, status_label, 0, NULL);
    if (f) {
        const char *failed[] = {"failed"}, *acked[] = {"ok"};

        ok &= (t->commits[0] = metrics_child(f, failed)) != NULL;
        ok &= (t->commits[1] = metrics_child(f, acked)) != NULL;
    }
    ok &= f != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_rebalances_total",
                       "Rebalance callbacks, by kind.", 1, type_label, 0, NULL);
    for (int k = 0; f && k < REBALANCE_KINDS; k++) {
        const char *v[] = {kinds[k]};

        ok &= (t->rebalances[k] = metrics_child(f, v)) != NULL;
    }
    ok &= f != NULL;
    ok &= (t->assigned = single(m, METRIC_GAUGE, "crm_consumer_assigned_partitions",
                                "Partitions assigned to this member.")) != NULL;
    ok &=
        (t->paused = single(m, METRIC_GAUGE, "crm_consumer_paused_partitions",
                            "Assigned partitions paused for a retry or by flow control.")) != NULL;
    ok &=
        (t->in_flight = single(m, METRIC_GAUGE, "crm_consumer_in_flight_messages",
                               "Messages handled whose outputs are not all acknowledged.")) != NULL;
    ok &= (t->breaker = single(m, METRIC_GAUGE, "crm_consumer_circuit_breaker_state",
                               "Circuit breaker: 0 closed, 1 open, 2 half-open.")) != NULL;
    ok &= (t->consume_errors =
               single(m, METRIC_COUNTER, "crm_consumer_consume_errors_total",
                      "Errors the consumer returned instead of a message (such as a batch that "
                      "cannot be decompressed).")) != NULL;
    ok &= (t->breaker_opens =
               single(m, METRIC_COUNTER, "crm_consumer_circuit_breaker_opens_total",
                      "Times the circuit breaker opened and paused every partition.")) != NULL;
    t->broker_up =
        metrics_family(m, METRIC_GAUGE, "crm_consumer_broker_up",
                       "1 when the connection to the broker is up.", 1, broker_label, 0, NULL);
    ok &= t->broker_up != NULL;
    ok &= (t->last_poll = single(m, METRIC_GAUGE, "crm_consumer_last_poll_timestamp_seconds",
                                 "When the main loop last polled Kafka (Unix time).")) != NULL;
    ok &= (t->links = single(m, METRIC_GAUGE, "crm_consumer_identity_links",
                             "Phone-to-customer links in the identity store.")) != NULL;
    ok &= (t->links_pending =
               single(m, METRIC_GAUGE, "crm_consumer_identity_links_pending",
                      "Links announced by this instance and not yet read back into the "
                      "store.")) != NULL;
    ok &= (t->restoring = single(m, METRIC_GAUGE, "crm_consumer_identity_restoring",
                                 "1 while the identity links are restored at start-up (no "
                                 "message is handled).")) != NULL;
    ok &= (t->restore_left =
               single(m, METRIC_GAUGE, "crm_consumer_identity_restore_remaining_records",
                      "Records of the identities topic still to read before messages are "
                      "handled.")) != NULL;
    ok &= (t->store_bytes = single(m, METRIC_GAUGE, "crm_consumer_identity_store_bytes",
                                   "Bytes of the identity store's file in use.")) != NULL;
    ok &= (t->store_max = single(m, METRIC_GAUGE, "crm_consumer_identity_store_max_bytes",
                                 "The most the identity store may hold "
                                 "(identity.store_max_mb).")) != NULL;
    ok &= (t->stopped = single(m, METRIC_GAUGE, "crm_consumer_identity_store_stopped",
                               "1 when the identity store is full or failing: no message is "
                               "handled.")) != NULL;
    ok &= (t->rebuilds = single(m, METRIC_COUNTER, "crm_consumer_identity_store_rebuilds_total",
                                "Times the identity store was rebuilt from the beginning of the "
                                "identities topic.")) != NULL;
    ok &= (t->lost = single(m, METRIC_COUNTER, "crm_consumer_identity_records_lost_total",
                            "Records of the identities topic deleted by its retention before "
                            "the store read them (their links are lost).")) != NULL;
    ok &= (t->compacted = single(m, METRIC_GAUGE, "crm_consumer_identities_topic_compacted",
                                 "The identities topic's cleanup.policy: 1 compact, 0 not (or "
                                 "compact,delete), -1 not known.")) != NULL;
    f = metrics_family(m, METRIC_COUNTER, "crm_consumer_identity_events_total",
                       "Records read back from the identities topic: applied as links, or "
                       "skipped as not a readable identity.linked event.",
                       1, result_label, 0, NULL);
    for (int r = 0; f && r < 2; r++) {
        const char *v[] = {results[r]};

        ok &= (t->link_events[r] = metrics_child(f, v)) != NULL;
    }
    ok &= f != NULL;
    f = metrics_family(m, METRIC_GAUGE, "crm_consumer_build_info", "The running version; always 1.",
                       2, build_labels, 0, NULL);
    if (f) {
        const char *v[] = {CRM_VERSION, rd_kafka_version_str()};
        struct metric *b = metrics_child(f, v);

        ok &= b != NULL;
        if (b)
            metric_set(b, 1);
    }
    ok &= f != NULL;
    return ok && procstat_register(m) == 0;
}

struct telemetry *telemetry_new(const struct config *cfg)
{
    struct telemetry *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->cfg = cfg;
    t->ntopics = cfg->kafka.ntopics;
    t->consumed = calloc(t->ntopics * MESSAGE_STATUSES, sizeof(*t->consumed));
    t->registry = metrics_new();
    atomic_init(&t->poll_ms, 0);
    atomic_init(&t->handler_ms, 0);
    atomic_init(&t->brokers_up, -1);
    atomic_init(&t->brokers, 0);
    atomic_init(&t->group, GROUP_UNKNOWN);
    atomic_init(&t->total_lag, -1);
    atomic_init(&t->fatal, false);
    atomic_init(&t->identity_state, IDENTITY_READY);
    atomic_init(&t->restore_done, 0);
    atomic_init(&t->restore_total, 0);
    if (!t->consumed || !t->registry || !register_all(t) ||
        arena_init(&t->stats_arena, STATS_ARENA_FIRST, STATS_ARENA_KEEP_MAX) < 0)
        return telemetry_free(t);
    metric_set(t->compacted, -1);
    return t;
}

struct metrics *telemetry_registry(struct telemetry *t)
{
    return t->registry;
}

size_t telemetry_topic_index(const struct telemetry *t, const char *topic)
{
    for (size_t i = 0; i < t->ntopics; i++)
        if (strcmp(t->cfg->kafka.topics[i], topic) == 0)
            return i;
    return 0;
}

void telemetry_message(struct telemetry *t, size_t topic_index, enum message_status status,
                       double seconds)
{
    metric_add(t->consumed[topic_index * MESSAGE_STATUSES + status], 1);
    metric_observe(t->latency, seconds);
}

void telemetry_handling(struct telemetry *t, int64_t since_ms)
{
    atomic_store_explicit(&t->handler_ms, since_ms, memory_order_relaxed);
}

void telemetry_dead_letter(struct telemetry *t, enum error_class cls)
{
    if (cls >= ERROR_PARSE && cls <= ERROR_OVERSIZE)
        metric_add(t->dead[cls], 1);
}

void telemetry_retry(struct telemetry *t)
{
    metric_add(t->retries, 1);
}

void telemetry_fetch_wakeup(struct telemetry *t)
{
    metric_add(t->fetch_wakeups, 1);
}

void telemetry_stall(struct telemetry *t)
{
    metric_add(t->stalls, 1);
}

void telemetry_wait(struct telemetry *t, enum wait_kind kind, uint64_t ns)
{
    metric_add(t->waits[kind], ns);
}

void telemetry_consume_error(struct telemetry *t)
{
    metric_add(t->consume_errors, 1);
}

void telemetry_breaker(struct telemetry *t, enum breaker_state state)
{
    metric_set(t->breaker, (double)state);
    if (state == BREAKER_OPEN && atomic_load(&t->breaker_state) != BREAKER_OPEN)
        metric_add(t->breaker_opens, 1);
    atomic_store(&t->breaker_state, (int)state);
}

void telemetry_output(struct telemetry *t, enum output_topic topic, bool ok)
{
    metric_add(t->outputs[topic][ok], 1);
}

void telemetry_commit(struct telemetry *t, bool ok)
{
    metric_add(t->commits[ok], 1);
}

void telemetry_rebalance(struct telemetry *t, enum rebalance_kind kind)
{
    metric_add(t->rebalances[kind], 1);
}

void telemetry_partitions(struct telemetry *t, int assigned, int paused, uint64_t in_flight)
{
    metric_set(t->assigned, assigned);
    metric_set(t->paused, paused);
    metric_set(t->in_flight, (double)in_flight);
}

void telemetry_poll(struct telemetry *t)
{
    atomic_store_explicit(&t->poll_ms, clock_mono_ms(), memory_order_relaxed);
    metric_set(t->last_poll, (double)clock_real_ms() / 1000.0);
}

void telemetry_fatal(struct telemetry *t, const char *why)
{
    if (atomic_load(&t->fatal))
        return;
    snprintf(t->fatal_why, sizeof(t->fatal_why), "%s", why);
    atomic_store(&t->fatal, true);
}

struct metric *telemetry_record_gauge(struct telemetry *t, const char *topic, int32_t partition)
{
    char num[16];
    const char *v[] = {topic, num};

    snprintf(num, sizeof(num), "%" PRId32, partition);
    return metrics_child(t->record_ts, v);
}

void telemetry_record_done(struct telemetry *t, int64_t timestamp_ms, int64_t now_ms)
{
    if (timestamp_ms > 0)
        metric_observe(t->record_age,
                       now_ms > timestamp_ms ? (double)(now_ms - timestamp_ms) / 1000.0 : 0);
}

void telemetry_identities(struct telemetry *t, const struct identity_report *r)
{
    uint64_t left = r->restore_total > r->restore_done ? r->restore_total - r->restore_done : 0;
    double rebuilds = metric_value(t->rebuilds);

    metric_set(t->links, (double)r->links);
    metric_set(t->links_pending, (double)r->pending);
    metric_set(t->restoring, r->state == IDENTITY_RESTORING);
    metric_set(t->restore_left, r->state == IDENTITY_RESTORING ? (double)left : 0);
    metric_set(t->store_bytes, (double)r->store_bytes);
    metric_set(t->store_max, (double)r->store_max_bytes);
    metric_set(t->stopped, r->state == IDENTITY_STOPPED);
    if ((double)r->rebuilds > rebuilds)
        metric_add(t->rebuilds, (uint64_t)((double)r->rebuilds - rebuilds));
    if ((double)r->lost > metric_value(t->lost))
        metric_add(t->lost, (uint64_t)((double)r->lost - metric_value(t->lost)));
    metric_set(t->compacted, r->compacted);
    atomic_store(&t->restore_done, r->restore_done);
    atomic_store(&t->restore_total, r->restore_total);
    atomic_store(&t->identity_state, (int)r->state);
}

void telemetry_link_events(struct telemetry *t, uint64_t applied, uint64_t skipped)
{
    metric_add(t->link_events[0], applied);
    metric_add(t->link_events[1], skipped);
}

static const char *string_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void stats_group(struct telemetry *t, const cJSON *root)
{
    const cJSON *cgrp = cJSON_GetObjectItemCaseSensitive(root, "cgrp");
    const char *state = string_of(cgrp, "state"), *join = string_of(cgrp, "join_state");
    int g = GROUP_UNKNOWN;

    if (state && strcmp(state, "up") != 0)
        g = GROUP_DOWN;
    else if (state && join)
        g = strcmp(join, "steady") == 0 ? GROUP_STEADY : GROUP_JOINING;
    atomic_store(&t->group, g);
}

/* The children set in one statistics round; the others are retired after it. */
struct seen {
    struct metric **list;
    size_t n, cap;
};

static void seen_add(struct seen *s, struct metric *m)
{
    if (!m)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct metric **grown = realloc(s->list, cap * sizeof(*grown));

        if (!grown)
            return; /* out of memory: that child is retired, and comes back next round */
        s->list = grown;
        s->cap = cap;
    }
    s->list[s->n++] = m;
}

static void stats_brokers(struct telemetry *t, const cJSON *root)
{
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers"), *b;
    struct seen seen = {0};
    int up = 0, n = 0;

    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
        const char *state = string_of(b, "state");
        const char *name = string_of(b, "nodename");
        struct metric *g;
        bool is_up;

        /* Bootstrap and logical (coordinator) connections have no node id of their own. */
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || !state || !name)
            continue;
        is_up = strcmp(state, "UP") == 0;
        n++;
        up += is_up;
        g = metrics_child(t->broker_up, &name);
        if (g)
            metric_set(g, is_up);
        seen_add(&seen, g);
    }
    /* Updated in place, then the departed retired: a scrape never sees a gap. */
    metrics_retain(t->broker_up, seen.list, seen.n);
    free(seen.list);
    atomic_store(&t->brokers, n);
    atomic_store(&t->brokers_up, up);
}

static void stats_lag(struct telemetry *t, const cJSON *root)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics"), *topic;
    struct seen seen = {0};
    int64_t total = 0;
    bool known = false, all_known = true;

    cJSON_ArrayForEach(topic, topics)
    {
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(topic, "partitions"), *p;

        cJSON_ArrayForEach(p, parts)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "partition");
            const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag_stored");
            const cJSON *desired = cJSON_GetObjectItemCaseSensitive(p, "desired");
            char pid[16];
            const char *v[3];
            struct metric *g;

            /* -1 is librdkafka's internal unassigned partition; only ours count. */
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || !cJSON_IsTrue(desired))
                continue;
            /* Ours, but its lag is unknown for now (every broker gone, say): keep the last. */
            if (!cJSON_IsNumber(lag) || lag->valuedouble < 0) {
                all_known = false;
                continue;
            }
            snprintf(pid, sizeof(pid), "%d", (int)id->valuedouble);
            v[0] = topic->string;
            v[1] = pid;
            v[2] = t->cfg->kafka.group_id;
            g = metrics_child(t->lag, v);
            if (g)
                metric_set(g, lag->valuedouble);
            seen_add(&seen, g);
            total += (int64_t)lag->valuedouble;
            known = true;
        }
    }
    /* Series of partitions no longer ours go once every partition's lag is known again. */
    if (all_known)
        metrics_retain(t->lag, seen.list, seen.n);
    free(seen.list);
    atomic_store(&t->total_lag, known && all_known ? total : -1);
}

void telemetry_stats(struct telemetry *t, const char *json, size_t len)
{
    struct json_error err;
    cJSON *root = json_parse(json, len, STATS_MAX_DEPTH, arena_alloc, &t->stats_arena, &err);

    /* Unreadable statistics change nothing: the metrics keep their last values. */
    if (root != NULL) {
        stats_group(t, root);
        stats_brokers(t, root);
        stats_lag(t, root);
    }
    arena_reset(&t->stats_arena);
}

bool telemetry_health(void *opaque, char *body, size_t len)
{
    struct telemetry *t = opaque;
    int64_t now = clock_mono_ms(), polled = atomic_load(&t->poll_ms);
    int64_t handler = atomic_load(&t->handler_ms);
    /* The loop may legitimately block for a revoke's flush and commit: allow for it. */
    int64_t ttl = (int64_t)t->cfg->processing.shutdown_timeout_s * 2000;
    bool loop_ok = polled > 0 && now - polled <= (ttl > 30000 ? ttl : 30000);
    int64_t max_poll = config_max_poll_interval_ms(t->cfg);
    bool handler_ok =
        handler == 0 || now - handler <= (max_poll < HANDLER_TTL_MS ? max_poll : HANDLER_TTL_MS);
    bool fatal = atomic_load(&t->fatal);

    snprintf(body, len,
             "{\"status\":\"%s\",\"loop\":{\"ok\":%s,\"last_poll_ms_ago\":%" PRId64 "},"
             "\"handler\":{\"ok\":%s,\"running_ms\":%" PRId64 "},"
             "\"kafka\":{\"ok\":%s,\"fatal_error\":%s%s%s}}",
             loop_ok && handler_ok && !fatal ? "ok" : "fail", loop_ok ? "true" : "false",
             polled > 0 ? now - polled : -1, handler_ok ? "true" : "false",
             handler ? now - handler : 0, fatal ? "false" : "true", fatal ? "\"" : "",
             fatal ? t->fatal_why : "null", fatal ? "\"" : "");
    return loop_ok && handler_ok && !fatal;
}

bool telemetry_ready(void *opaque, char *body, size_t len)
{
    static const char *const identity_names[] = {
        [IDENTITY_READY] = "restored",
        [IDENTITY_RESTORING] = "restoring",
        [IDENTITY_STOPPED] = "store full or failing",
    };
    struct telemetry *t = opaque;
    int up = atomic_load(&t->brokers_up), n = atomic_load(&t->brokers);
    int group = atomic_load(&t->group);
    enum breaker_state breaker = (enum breaker_state)atomic_load(&t->breaker_state);
    enum identity_state identity = (enum identity_state)atomic_load(&t->identity_state);
    bool brokers_ok = up > 0, group_ok = group == GROUP_STEADY,
         breaker_ok = breaker != BREAKER_OPEN, identity_ok = identity == IDENTITY_READY;
    bool ok = brokers_ok && group_ok && breaker_ok && identity_ok;

    snprintf(body, len,
             "{\"status\":\"%s\",\"identities\":{\"ok\":%s,\"state\":\"%s\",\"read\":%" PRIu64
             ",\"to_read\":%" PRIu64 "},\"brokers\":{\"ok\":%s,\"up\":%d,\"known\":%d},"
             "\"group\":{\"ok\":%s,\"state\":\"%s\"},\"breaker\":{\"ok\":%s,\"state\":\"%s\"}}",
             ok ? "ready" : "not ready", identity_ok ? "true" : "false", identity_names[identity],
             (uint64_t)atomic_load(&t->restore_done), (uint64_t)atomic_load(&t->restore_total),
             brokers_ok ? "true" : "false", up < 0 ? 0 : up, n, group_ok ? "true" : "false",
             group_names[group], breaker_ok ? "true" : "false", breaker_state_name(breaker));
    return ok;
}

void telemetry_view(struct telemetry *t, struct telemetry_view *v)
{
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < t->ntopics * MESSAGE_STATUSES; i++)
        v->consumed += metric_value(t->consumed[i]);
    for (int o = 0; o < OUTPUT_TOPICS; o++)
        v->acked[o] = metric_value(t->outputs[o][1]);
    for (int c = ERROR_PARSE; c <= ERROR_OVERSIZE; c++)
        v->dead[c] = metric_value(t->dead[c]);
    v->links = metric_value(t->links);
    v->lag = atomic_load(&t->total_lag);
}

void telemetry_status(struct telemetry *t, char *buf, size_t len)
{
    int64_t now = clock_mono_ms(), lag = atomic_load(&t->total_lag);
    double consumed = 0, rate = 0;
    enum breaker_state breaker;
    char note[48], lagbuf[24];

    for (size_t i = 0; i < t->ntopics * MESSAGE_STATUSES; i++)
        consumed += metric_value(t->consumed[i]);
    /* Sampled at most once a second, so two callers in a row both see a real rate. */
    if (now - t->last_status_ms >= 1000) {
        if (t->last_status_ms)
            t->rate = (consumed - t->last_consumed) * 1000.0 / (double)(now - t->last_status_ms);
        t->last_consumed = consumed;
        t->last_status_ms = now;
    }
    rate = t->rate;
    breaker = (enum breaker_state)atomic_load(&t->breaker_state);
    if (breaker != BREAKER_CLOSED)
        snprintf(note, sizeof(note), ", circuit breaker %s", breaker_state_name(breaker));
    else
        note[0] = '\0';
    if (lag >= 0)
        snprintf(lagbuf, sizeof(lagbuf), "%" PRId64, lag);
    else
        snprintf(lagbuf, sizeof(lagbuf), "unknown");
    snprintf(buf, len, "%.0f msg/s, lag %s, %.0f partitions (%.0f paused), group %s%s", rate,
             lagbuf, metric_value(t->assigned), metric_value(t->paused),
             group_names[atomic_load(&t->group)], note);
}

struct telemetry *telemetry_free(struct telemetry *t)
{
    if (!t)
        return NULL;
    metrics_free(t->registry);
    free(t->consumed);
    arena_fini(&t->stats_arena);
    free(t);
    return NULL;
}
