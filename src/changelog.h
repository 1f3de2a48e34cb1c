/* SPDX-License-Identifier: MIT */
/* changelog.h -- the identities topic read back into the links table, at start-up and live. */
#ifndef CRM_CHANGELOG_H
#define CRM_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "identity.h"

struct changelog;

/*
 * The reader's librdkafka configuration, as changelog_new() makes it. NULL
 * with a reason in err.
 */
rd_kafka_conf_t *changelog_conf_new(const struct config *cfg, char *err, size_t errlen);

/*
 * A reader of output.identities_topic (every partition, from the beginning,
 * outside any consumer group) that applies each identity.linked event to
 * links. cfg and links must outlive it. NULL with a reason in err.
 */
struct changelog *changelog_new(const struct config *cfg, struct identity_links *links, char *err,
                                size_t errlen);

/*
 * Read up to the end of every partition, waiting at most timeout_ms. Returns
 * 0, or -ETIMEDOUT when the end was not reached (what was read is applied and
 * reading goes on in changelog_poll()).
 */
int changelog_load(struct changelog *cl, int timeout_ms);

/* Apply what arrived since, without blocking; returns the number of events applied. */
int changelog_poll(struct changelog *cl);

/* Events applied so far, and events skipped as unreadable. */
uint64_t changelog_applied(const struct changelog *cl);
uint64_t changelog_skipped(const struct changelog *cl);

/* Free; takes NULL; returns NULL. */
struct changelog *changelog_free(struct changelog *cl);

#endif
