/* SPDX-License-Identifier: MIT */
/* deadletter.h -- a message that can never be handled, copied to the dead-letter topic. */
#ifndef CRM_DEADLETTER_H
#define CRM_DEADLETTER_H

#include <stdbool.h>
#include <stdint.h>

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

/*
 * A flood of poison must not flood the journal: of each class, the first
 * dead letter of a DEADLETTER_LOG_WINDOW_MS window is logged, and the others
 * are counted and told in one line when the window ends.
 */
#define DEADLETTER_LOG_WINDOW_MS 10000

struct deadletter_log {
    int64_t since[ERROR_CLASSES]; /* when the class's window began (monotonic ms); 0: none */
    uint64_t more[ERROR_CLASSES]; /* dead letters of the class not logged in it */
};

/*
 * Whether a dead letter of class cls at now (monotonic ms) is to be logged:
 * the first of its window is (a window that ended with others untold says
 * so first); the others are counted.
 */
bool deadletter_log_due(struct deadletter_log *l, enum error_class cls, int64_t now);

/* Tell the windows that ended with dead letters untold (call it now and then). */
void deadletter_log_tick(struct deadletter_log *l, int64_t now);

#endif
