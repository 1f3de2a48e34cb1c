/* SPDX-License-Identifier: MIT */
/* kafka.h -- librdkafka configuration shared by the consumer, the producer and the changelog. */
#ifndef CRM_KAFKA_H
#define CRM_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/*
 * A librdkafka configuration for a client of `type` with the operator's
 * kafka.properties, less those librdkafka lists as for the other type only,
 * then bootstrap.servers and client.id from cfg, and librdkafka's log lines
 * routed to ours. The caller sets its own properties with kafka_conf_set().
 * NULL with a reason in err.
 */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, rd_kafka_type_t type, char *err,
                                size_t errlen);

/* Set one property; 0, or -EINVAL with "name: librdkafka's reason" in err. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen);

/* A property the daemon sets unless the operator did, and the value it sets. */
struct kafka_default {
    const char *name;
    const char *alias; /* another name librdkafka accepts for it, or NULL */
    const char *value;
};

/*
 * Set each of defs[0..n) that kafka.properties does not set under either
 * name. 0, or -EINVAL with "name: librdkafka's reason" in err.
 */
int kafka_conf_defaults(rd_kafka_conf_t *conf, const struct config *cfg,
                        const struct kafka_default *defs, size_t n, char *err, size_t errlen);

/* One of the daemon's Kafka clients, for kafka_check(). */
struct kafka_client {
    const char *name;     /* for messages: "the consumer", "the producer", ... */
    rd_kafka_type_t type; /* what it is to librdkafka */
    /* Its configuration exactly as the start makes it; NULL with a reason in err. */
    rd_kafka_conf_t *(*conf_new)(const struct config *cfg, char *err, size_t errlen);
};

/*
 * Whether librdkafka would start each of clients[0..n) from cfg: builds each
 * configuration as the start does and creates a client from it, without
 * brokers, destroyed at once, as librdkafka checks some settings only then
 * (acks, retries or max.in.flight against the producer's idempotence, the
 * assignment strategy). Each refusal is blamed on the kafka.properties or
 * kafka.secret_files setting without which it goes away, and added to errs
 * as "FILE:LINE: kafka.properties.NAME: what", each setting once (a value
 * from a secret file is never shown). Returns how many were added, or
 * -ENOMEM.
 */
int kafka_check(const struct config *cfg, const struct kafka_client *clients, size_t n,
                struct config_errors *errs);

/*
 * Resolve every host of a bootstrap list ("host:port,[v6]:port,SSL://h:p").
 * Returns how many resolve when all do, 0 when none does, and minus the
 * number that do when only some do; err names the first that does not.
 */
int kafka_resolve_brokers(const char *brokers, char *err, size_t errlen);

/*
 * A "crm.inbound[0,1,2] crm.other[4]"-style summary of l for logs, cut with
 * "..." when longer than len (which must be at least 5).
 */
void kafka_describe(const rd_kafka_topic_partition_list_t *l, char *buf, size_t len);

#endif
