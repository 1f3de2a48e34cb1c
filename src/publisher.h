/* SPDX-License-Identifier: MIT */
/* publisher.h -- one idempotent producer for tickets, responses, identities and dead letters. */
#ifndef CRM_PUBLISHER_H
#define CRM_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "router.h"

struct publisher;

/*
 * Called once per record sent, from publisher_poll() or publisher_flush() on
 * the caller's thread, with the token given to publisher_send(), the topic,
 * and the delivery result (RD_KAFKA_RESP_ERR_NO_ERROR when the broker acknowledged
 * it).
 */
typedef void (*publisher_ack_fn)(void *opaque, void *token, enum output_topic topic,
                                 rd_kafka_resp_err_t err);

/*
 * The producer's librdkafka configuration, as publisher_new() makes it, but
 * for its callbacks. NULL with a reason in err.
 */
rd_kafka_conf_t *publisher_conf_new(const struct config *cfg, char *err, size_t errlen);

/*
 * Create the producer: kafka.brokers, client.id and kafka.properties from
 * cfg, enable.idempotence=true (acks=all, ordered, no duplicates from its own
 * retries), topics from cfg->output. With cfg->dry_run it sends nothing and
 * has no librdkafka handle: every record is acknowledged at the next poll or
 * flush. NULL with a reason in err on failure.
 */
struct publisher *publisher_new(const struct config *cfg, publisher_ack_fn ack, void *opaque,
                                char *err, size_t errlen);

/*
 * Queue one record (key, value and headers are copied; headers may be NULL,
 * and are destroyed by the call in every case). timestamp_ms 0 means now.
 * Returns 0, -ENOBUFS when the producer queue is full (poll and try again),
 * or -EIO for any other refusal, with the reason logged by the caller from
 * publisher_last_error().
 */
int publisher_send(struct publisher *p, enum output_topic topic, const void *key, size_t key_len,
                   const void *value, size_t len, rd_kafka_headers_t *headers, int64_t timestamp_ms,
                   void *token);

/* Serve delivery reports for up to timeout_ms; returns how many were served. */
int publisher_poll(struct publisher *p, int timeout_ms);

/* Wait until every queued record is acknowledged or failed, up to timeout_ms: 0 or -ETIMEDOUT. */
int publisher_flush(struct publisher *p, int timeout_ms);

/* Records queued and not yet reported. */
int publisher_in_flight(struct publisher *p);

/* Whether the producer hit a fatal error (it refuses every record from then on). */
bool publisher_fatal(const struct publisher *p);

/* The reason of the last publisher_send() refusal. */
const char *publisher_last_error(const struct publisher *p);

/* The name of an output topic as configured. */
const char *publisher_topic_name(const struct publisher *p, enum output_topic topic);

/* The librdkafka producer handle, owned by p (for its configuration and statistics); NULL under
 * --dry-run. */
rd_kafka_t *publisher_handle(struct publisher *p);

/* Destroy; records still queued are reported as failed first. Takes NULL; returns NULL. */
struct publisher *publisher_free(struct publisher *p);

#endif
