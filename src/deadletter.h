/* SPDX-License-Identifier: MIT */
/* deadletter.h -- a message that can never be handled, copied to the dead-letter topic. */
#ifndef CRM_DEADLETTER_H
#define CRM_DEADLETTER_H

#include <librdkafka/rdkafka.h>

#include "publisher.h"
#include "router.h"

/* Where the dead letter comes from, for its crm.* headers. */
struct deadletter_source {
    const char *topic;
    const char *group; /* the consumer group that gave up on it */
    int attempts;      /* how many times it was tried */
};

/*
 * Queue the copy of m: its key, value, original headers and timestamp, plus
 * crm.* headers saying why (res) and whence (src). Original headers in the
 * daemon's "crm." namespace are renamed "crm.previous.*". What does not fit
 * (the producer's message.max.bytes, or a broker's limit when `shrink` says
 * an earlier copy was refused) is left out and its size given: first the
 * value (shrink 1), then also the key and the original headers (2).
 * *used says how far it went. token is the publisher's token for the
 * delivery report. Returns publisher_send()'s result: 0, -ENOBUFS, -EIO, or
 * -EMSGSIZE when even the smallest copy is too big.
 */
int deadletter_send(struct publisher *pub, const rd_kafka_message_t *m,
                    const struct deadletter_source *src, const struct route_result *res, int shrink,
                    void *token, int *used);

#endif
