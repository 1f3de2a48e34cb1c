/* SPDX-License-Identifier: MIT */
/* links.h -- a phone's customer: links made here and not yet read back, over the store. */
#ifndef CRM_LINKS_H
#define CRM_LINKS_H

#include <stddef.h>

#include "linkstore.h"

/*
 * The handlers' view of the phone -> customer links. A form that links a
 * phone announces it on the identities topic; the store learns it only when
 * the changelog reads it back. Between the two, the link is pending here,
 * so the next message from that phone resolves to the same customer. A
 * pending link wins over the store (it is the newer), and is dropped when
 * the changelog reads back that very link. Nothing is evicted: what is
 * pending is what this instance produced and has not yet read back.
 * Thread-safe: the handlers add and look up from the main loop while the
 * changelog's thread checks and settles.
 */
struct links;

/* Links over `store` (NULL: pending links only, for tests); NULL when out of memory. */
struct links *links_new(struct linkstore *store);

/*
 * The customer id of `phone` (E.164): the pending link, else the stored one,
 * copied to out (at least IDENTITY_ID_LEN + 1 bytes). Returns 1, 0 when
 * there is none, -EIO when the store cannot be read.
 */
int links_get(struct links *l, const char *phone, char *out, size_t outlen);

/*
 * A link this instance has just announced: pending until read back.
 * Returns 1 when new or changed, 0 when already pending as such, -EINVAL
 * (a phone or customer id of the wrong length), -ENOMEM.
 */
int links_put(struct links *l, const char *phone, const char *customer_id);

/* Whether `phone` is pending as `customer_id`. */
int links_is_pending(struct links *l, const char *phone, const char *customer_id);

/* The changelog stored this link: drop it from the pending ones if it is pending as such. */
void links_settle(struct links *l, const char *phone, const char *customer_id);

/* Pending links. */
size_t links_pending(struct links *l);

/* The store underneath (may be NULL). */
struct linkstore *links_store(const struct links *l);

/* Free; takes NULL; returns NULL. The store is the caller's. */
struct links *links_free(struct links *l);

#endif
