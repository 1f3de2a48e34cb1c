/* SPDX-License-Identifier: MIT */
/* telemetry.h -- what the daemon counts and how healthy it is: metrics, probes, STATUS lines. */
#ifndef CRM_TELEMETRY_H
#define CRM_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "config.h"
#include "metrics.h"
#include "router.h"

/* The status label of kafka_consumer_messages_consumed_total. */
enum message_status {
    MESSAGE_SUCCESS,     /* handled (or skipped by policy) */
    MESSAGE_FAILURE,     /* the handler asked for a retry */
    MESSAGE_ERROR,       /* an output was not acknowledged: the message is redone */
    MESSAGE_DEAD_LETTER, /* copied to the dead-letter topic */
    MESSAGE_STATUSES,
};

/* The type label of crm_consumer_rebalances_total. */
enum rebalance_kind {
    REBALANCE_ASSIGN,
    REBALANCE_REVOKE,
    REBALANCE_LOST,
    REBALANCE_KINDS,
};

/* What the main loop was blocked waiting for. */
enum wait_kind {
    WAIT_MESSAGES,         /* a message to handle: nothing fetched yet */
    WAIT_ACKNOWLEDGEMENTS, /* outputs' acknowledgements, held back by flow control */
    WAIT_KINDS,
};

struct telemetry;

/*
 * Register every family (see crm-consumerd(8), METRICS) for cfg's topics and
 * group. The updates below are lock-free and meant for the main loop; the
 * probes and metrics rendering run on the HTTP thread. NULL when out of memory.
 */
struct telemetry *telemetry_new(const struct config *cfg);

/* The registry, for the HTTP server. */
struct metrics *telemetry_registry(struct telemetry *t);

/* The index of an input topic in cfg->kafka.topics, for telemetry_message(); 0 when unknown. */
size_t telemetry_topic_index(const struct telemetry *t, const char *topic);

/* One message routed: its outcome and its processing time in seconds. */
void telemetry_message(struct telemetry *t, size_t topic_index, enum message_status status,
                       double seconds);

/*
 * A handler started at since_ms (CLOCK_MONOTONIC milliseconds), or none runs
 * (0): /health notices one that never ends.
 */
void telemetry_handling(struct telemetry *t, int64_t since_ms);

/* A dead letter of class cls was queued. */
void telemetry_dead_letter(struct telemetry *t, enum error_class cls);

/* The consumer reported an error instead of a message. */
void telemetry_consume_error(struct telemetry *t);

/* A partition was rewound for a retry. */
void telemetry_retry(struct telemetry *t);

/* The consumer woke librdkafka's fetchers as the prefetched messages ran low. */
void telemetry_fetch_wakeup(struct telemetry *t);

/* A partition not fetched for processing.stall_timeout_s was fetched again. */
void telemetry_stall(struct telemetry *t);

/* The main loop spent ns nanoseconds blocked in a poll waiting for kind. */
void telemetry_wait(struct telemetry *t, enum wait_kind kind, uint64_t ns);

/* An output's delivery report. */
void telemetry_output(struct telemetry *t, enum output_topic topic, bool ok);

/* An offset commit's result. */
void telemetry_commit(struct telemetry *t, bool ok);

/* A rebalance callback. */
void telemetry_rebalance(struct telemetry *t, enum rebalance_kind kind);

/*
 * The gauge of a partition's last processed record timestamp
 * (crm_consumer_last_processed_record_timestamp_seconds{topic,partition});
 * NULL when out of memory. Made once per partition, kept for the process.
 */
struct metric *telemetry_record_gauge(struct telemetry *t, const char *topic, int32_t partition);

/*
 * An input is done (its outputs acknowledged): its record timestamp,
 * milliseconds since the epoch (<= 0: none), gives its age now, observed in
 * crm_consumer_record_age_seconds. now_ms is the wall clock.
 */
void telemetry_record_done(struct telemetry *t, int64_t timestamp_ms, int64_t now_ms);

/* The gauges the loop knows: assigned and paused partitions, messages in flight. */
void telemetry_partitions(struct telemetry *t, int assigned, int paused, uint64_t in_flight);

/* The circuit breaker changed state (for the metrics, /ready and STATUS=). */
void telemetry_breaker(struct telemetry *t, enum breaker_state state);

/* The loop turned (for /health and crm_consumer_last_poll_timestamp_seconds). */
void telemetry_poll(struct telemetry *t);

/* librdkafka hit a fatal error: /health says so from now on. */
void telemetry_fatal(struct telemetry *t, const char *why);

/* Where the identity store stands, for the metrics, /ready and STATUS=. */
enum identity_state {
    IDENTITY_READY,     /* restored: messages may be handled */
    IDENTITY_RESTORING, /* reading the identities topic up to its end at start-up */
    IDENTITY_STOPPED,   /* the store is full or failing: no message is handled */
};

struct identity_report {
    enum identity_state state;
    uint64_t restore_done, restore_total; /* records read, and to read, before ready */
    size_t links, pending;                /* stored, and announced but not yet read back */
    uint64_t store_bytes, store_max_bytes;
    uint64_t rebuilds;
    uint64_t lost; /* records deleted before they were read, while following */
    int compacted; /* the topic's cleanup.policy: 1 compact, 0 not, -1 unknown */
};

/* The identity store's state, as the main loop sees it. */
void telemetry_identities(struct telemetry *t, const struct identity_report *r);

/* More records read back from the identities topic: applied as links, and skipped. */
void telemetry_link_events(struct telemetry *t, uint64_t applied, uint64_t skipped);

/*
 * librdkafka's statistics (the consumer's stats_cb JSON): consumer lag per
 * partition (consumer_lag_stored, as offsets are stored by hand), broker
 * states, and the group's join state for /ready.
 */
void telemetry_stats(struct telemetry *t, const char *json, size_t len);

/* /health: the loop turned within its TTL, no handler is stuck, no fatal error. */
bool telemetry_health(void *t, char *body, size_t len);

/*
 * /ready: the identity links are restored and the store takes writes, a
 * broker is up, the group is steady (or legitimately idle), the breaker is
 * not open.
 */
bool telemetry_ready(void *t, char *body, size_t len);

/* What the demo's live view shows: counts since the start, and the state now. */
struct telemetry_view {
    double consumed;             /* messages routed */
    double acked[OUTPUT_TOPICS]; /* outputs acknowledged, by topic */
    double dead[ERROR_CLASSES];  /* dead letters, by class */
    double links;                /* links in the identity store */
    int64_t lag;                 /* -1: unknown */
};

/* Fill v from the metrics (main loop). */
void telemetry_view(struct telemetry *t, struct telemetry_view *v);

/* One line for systemd's STATUS=: rate, lag, state. */
void telemetry_status(struct telemetry *t, char *buf, size_t len);

/* Free; takes NULL; returns NULL. */
struct telemetry *telemetry_free(struct telemetry *t);

#endif
