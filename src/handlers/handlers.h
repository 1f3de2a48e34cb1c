/* SPDX-License-Identifier: MIT */
/* handlers.h -- the built-in handlers: email_received, whatsapp_received, form_submitted. */
#ifndef CRM_HANDLERS_H
#define CRM_HANDLERS_H

#include <stdint.h>

#include "../config.h"
#include "../identity.h"
#include "../links.h"
#include "../router.h"

/* Counts kept by the built-in handlers. Main-loop thread only. */
struct handler_stats {
    uint64_t email;    /* email_received messages turned into outputs */
    uint64_t whatsapp; /* whatsapp_received messages turned into outputs */
    uint64_t form;     /* form_submitted messages turned into outputs */
    uint64_t links;    /* identity.linked events emitted (new or changed links) */
};

struct handlers;

/*
 * The built-in handlers' shared state: templates and identity settings from
 * cfg, the phone-to-customer links (pending ones over the identity store;
 * may be NULL: nothing is remembered), and the wall clock in milliseconds since the epoch for
 * created_at (NULL for the real one; tests pin it). cfg and links must outlive the result. NULL
 * when out of memory (also while loading libphonenumber's metadata, done here, once).
 */
struct handlers *handlers_new(const struct config *cfg, struct links *links,
                              int64_t (*clock_ms)(void));

/* Register email_received, whatsapp_received and form_submitted on r. 0 or negative errno. */
int handlers_register(struct handlers *h, struct router *r);

/* The counts. */
const struct handler_stats *handlers_stats(const struct handlers *h);

/* Free; takes NULL; returns NULL. */
struct handlers *handlers_free(struct handlers *h);

#endif
