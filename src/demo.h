/* SPDX-License-Identifier: MIT */
/* demo.h -- an embedded mock Kafka cluster with a generator of realistic CRM traffic. */
#ifndef CRM_DEMO_H
#define CRM_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct demo;

/*
 * Start an embedded mock cluster (3 brokers) with cfg's input topics (4
 * partitions each) and output topics (4 partitions each, identities 2), point
 * cfg->kafka.brokers at it (free the old string, strdup the bootstrap list),
 * and start a traffic generator thread producing `rate` messages per second
 * (0 = none) to the input topics. NULL with a reason in err.
 */
struct demo *demo_start(struct config *cfg, int rate, char *err, size_t errlen);

/* The bootstrap address (for kcat -b). */
const char *demo_bootstraps(const struct demo *d);

/* Messages the generator has produced so far (atomic read), and how many were poison pills. */
uint64_t demo_produced(const struct demo *d);
uint64_t demo_poison(const struct demo *d);

/*
 * Stop the generator (joins the thread, flushes its producer up to 5 s), then
 * destroy the cluster. Takes NULL; returns NULL. Must be called after the
 * daemon's own clients are destroyed or at least closed.
 */
struct demo *demo_stop(struct demo *d);

#endif
