/* SPDX-License-Identifier: MIT */
/* email.c -- the email_received handler: a ticket and an auto-response for an e-mail. */
#include "handlers.h"

#include <string.h>

#include "fields.h"

enum { MESSAGE_ID, FROM, TO, SUBJECT, BODY, NAME, RECEIVED_AT, FIELDS };

/* The limits follow RFC 5321/5322: 320-byte addresses, 998-byte header lines. */
static const struct field_spec email_fields[FIELDS] = {
    [MESSAGE_ID] = {"message_id", FIELD_STRING, true, 1, 256},
    [FROM] = {"from", FIELD_STRING, true, 1, 320},
    [TO] = {"to", FIELD_STRING, false, 0, 4096},
    [SUBJECT] = {"subject", FIELD_STRING, false, 0, 998},
    [BODY] = {"body", FIELD_STRING, false, 0, 0},
    [NAME] = {"name", FIELD_STRING, false, 0, 256},
    [RECEIVED_AT] = {"received_at", FIELD_STRING, false, 0, 64},
};

enum outcome handler_email(void *opaque, const cJSON *msg, const struct message_meta *meta,
                           struct emitter *out, struct route_result *res)
{
    struct handlers *h = opaque;
    char email[IDENTITY_EMAIL_MAX + 1];
    char customer_id[IDENTITY_ID_LEN + 1];
    const char *why = NULL;
    const cJSON *f[FIELDS];

    enum outcome outcome = fields_check(msg, "", email_fields, FIELDS, f, res);
    if (outcome != OUTCOME_OK)
        return outcome;

    const char *from = fields_text(f[FROM]);
    if (identity_email(from, strlen(from), email, sizeof(email), &why) < 0)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_IDENTITY, "field \"from\": %s", why);
    identity_customer_id("email", email, customer_id);

    struct ticket t = {
        .channel = "email",
        .source_id = fields_text(f[MESSAGE_ID]),
        .customer_id = customer_id,
        .subject = fields_text(f[SUBJECT]),
        .body = fields_text(f[BODY]),
        .name = fields_text(f[NAME]),
        .email = email,
        .received_at = f[RECEIVED_AT],
        .to = email,
        .template_text = h->cfg->responses.email,
    };
    outcome = handlers_emit_ticket(h, &t, meta, out, res);
    if (outcome != OUTCOME_OK)
        return outcome;
    h->stats.email++;
    return OUTCOME_OK;
}
