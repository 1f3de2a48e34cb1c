/* SPDX-License-Identifier: MIT */
/* whatsapp.c -- the whatsapp_received handler: a ticket and an auto-response for a chat message. */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"

/* A phone number, however formatted, fits in 64 bytes; E.164 needs 16. */
enum { MESSAGE_ID, FROM, TEXT, PROFILE_NAME, TIMESTAMP, FIELDS };

static const struct field_spec whatsapp_fields[FIELDS] = {
    [MESSAGE_ID] = {"message_id", FIELD_STRING, true, 1, 256},
    [FROM] = {"from", FIELD_STRING, true, 1, 64},
    [TEXT] = {"text", FIELD_STRING, false, 0, 0},
    [PROFILE_NAME] = {"profile_name", FIELD_STRING, false, 0, 256},
    [TIMESTAMP] = {"timestamp", FIELD_STRING_OR_NUMBER, false, 0, 64},
};

enum outcome handler_whatsapp(void *opaque, const cJSON *msg, const struct message_meta *meta,
                              struct emitter *out, struct route_result *res)
{
    struct handlers *h = opaque;
    char phone[IDENTITY_PHONE_MAX + 1];
    char customer_id[IDENTITY_ID_LEN + 1];
    const char *why = NULL;
    const cJSON *f[FIELDS];

    enum outcome outcome = fields_check(msg, "", whatsapp_fields, FIELDS, f, res);
    if (outcome != OUTCOME_OK)
        return outcome;

    const char *from = fields_text(f[FROM]);
    int rc = identity_phone(from, strlen(from), h->cfg->identity.default_region, phone,
                            sizeof(phone), &why);
    /* Out of memory is no fault of the number: the message is tried again. */
    if (rc == -ENOMEM)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "field \"from\": %s", why);
    if (rc < 0)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_IDENTITY, "field \"from\": %s", why);

    /* A number a form once tied to an e-mail address belongs to that address's customer. */
    int found = h->links != NULL ? links_get(h->links, phone, customer_id, sizeof(customer_id)) : 0;
    if (found < 0)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                           "cannot read the identity store");
    if (found == 0)
        identity_customer_id("phone", phone, customer_id);

    struct ticket t = {
        .channel = "whatsapp",
        .source_id = fields_text(f[MESSAGE_ID]),
        .customer_id = customer_id,
        .body = fields_text(f[TEXT]),
        .name = fields_text(f[PROFILE_NAME]),
        .phone = phone,
        .received_at = f[TIMESTAMP],
        .to = phone,
        .template_text = h->cfg->responses.whatsapp,
    };
    outcome = handlers_emit_ticket(h, &t, meta, out, res);
    if (outcome != OUTCOME_OK)
        return outcome;
    h->stats.whatsapp++;
    return OUTCOME_OK;
}
