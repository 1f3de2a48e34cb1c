/* SPDX-License-Identifier: MIT */
/* handlers.h -- the built-in handlers: email_received, whatsapp_received, form_submitted. */
#ifndef CRM_HANDLERS_H
#define CRM_HANDLERS_H

#include <stdint.h>

#include "../router.h"

/* Per-type counts of messages the built-in handlers accepted. Main-loop thread only. */
struct handler_stats {
    uint64_t email;
    uint64_t whatsapp;
    uint64_t form;
};

/* Register the three built-in handlers on r, counting into stats. 0 or negative errno. */
int handlers_register(struct router *r, struct handler_stats *stats);

/* The email_received handler: checks message_id and from (strings, non-empty). */
enum outcome handler_email(void *opaque, const cJSON *msg, const struct message_meta *meta,
                           struct route_result *res);

/* The whatsapp_received handler: checks message_id and from (strings, non-empty). */
enum outcome handler_whatsapp(void *opaque, const cJSON *msg, const struct message_meta *meta,
                              struct route_result *res);

/* The form_submitted handler: checks form_id, submission_id, fields with email or phone. */
enum outcome handler_form(void *opaque, const cJSON *msg, const struct message_meta *meta,
                          struct route_result *res);

#endif
