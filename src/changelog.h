/* SPDX-License-Identifier: MIT */
/* changelog.h -- the identities topic read into the identity store, at start-up and live. */
#ifndef CRM_CHANGELOG_H
#define CRM_CHANGELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "links.h"

/*
 * The identities topic is the changelog of the identity store: keyed by the
 * E.164 phone, a later record for a phone replaces its link, a null value
 * removes it. The reader takes every partition (outside any group), from
 * the positions the store recorded, and writes each batch of links together
 * with the positions that cover it. The store is rebuilt from the beginning
 * when it is new, was filled from another cluster, topic or partition count,
 * or when records were deleted before it read them.
 *
 * A record is applied only when it is self-consistent: an identity.linked
 * event whose phone is E.164, whose customer_id is the id of its own
 * normalised e-mail address, and whose key (when it has one) is its phone
 * or, as earlier versions wrote, its customer_id. Anything else is skipped
 * and counted.
 */
struct changelog;

/*
 * The reader's librdkafka configuration, as changelog_new() makes it. NULL
 * with a reason in err.
 */
rd_kafka_conf_t *changelog_conf_new(const struct config *cfg, char *err, size_t errlen);

/*
 * A reader of cfg->output.identities_topic into links' store (which must
 * not be NULL); the links it reads back are settled in links. cfg and links
 * must outlive it. NULL with a reason in err.
 */
struct changelog *changelog_new(const struct config *cfg, struct links *links, char *err,
                                size_t errlen);

/*
 * Do what is due: find the topic and decide where to start (retried while
 * the brokers do not answer), read and apply what arrived, commit to the
 * store. Waits at most timeout_ms for a first record. Returns the number of
 * records applied.
 */
int changelog_poll(struct changelog *cl, int timeout_ms);

/*
 * Once restored, go on following the topic on a thread of its own, which
 * polls, applies and commits (data syncs included) away from the main
 * loop; changelog_poll() must not be called again. Every other function
 * here may be called meanwhile, from one other thread; changelog_free()
 * stops the thread, after a last commit. Returns 0, -EINVAL when not
 * restored or already following, or -errno when the thread cannot start.
 */
int changelog_follow(struct changelog *cl);

/* Whether the store has caught up with the end offsets the topic had at start-up. */
bool changelog_restored(struct changelog *cl);

/*
 * Whether the store refused a write (full at identity.store_max_mb, or an
 * I/O error): reading has stopped, and no message may be handled, lest a
 * customer be split.
 */
bool changelog_stopped(struct changelog *cl);

/* Records read and to read before the restore is done (both 0 before the start is decided). */
void changelog_progress(struct changelog *cl, uint64_t *done, uint64_t *total);

/* Records applied so far, and records skipped as unreadable or inconsistent. */
uint64_t changelog_applied(struct changelog *cl);
uint64_t changelog_skipped(struct changelog *cl);

/* Records deleted by retention before the reader reached them, while it followed the topic. */
uint64_t changelog_lost(struct changelog *cl);

/* Times the store was rebuilt from the beginning of the topic. */
uint64_t changelog_rebuilds(struct changelog *cl);

/* What the topic's cleanup.policy means for the links. */
enum changelog_policy {
    POLICY_UNKNOWN = -1,       /* not known: the brokers did not answer the admin API */
    POLICY_DELETE = 0,         /* no compaction: links past the retention are lost */
    POLICY_COMPACT = 1,        /* every phone's latest link is kept for ever */
    POLICY_COMPACT_DELETE = 2, /* compacted, but old segments are deleted all the same */
};

/* The verdict on a cleanup.policy value ("compact", "delete", "compact,delete"...). */
enum changelog_policy changelog_policy_of(const char *cleanup_policy);

/* The verdict on the topic, once the brokers answered. */
enum changelog_policy changelog_policy(struct changelog *cl);

/* Free; takes NULL; returns NULL. What was applied and not yet committed is committed. */
struct changelog *changelog_free(struct changelog *cl);

#endif
