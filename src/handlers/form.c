/* SPDX-License-Identifier: MIT */
/* form.c -- the form_submitted handler: a ticket, an auto-response and e-mail/phone links. */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../json.h"
#include "fields.h"

enum { FORM_ID, SUBMISSION_ID, FIELDS, SUBMITTED_AT, FORM_FIELDS };

static const struct field_spec form_fields[FORM_FIELDS] = {
    [FORM_ID] = {"form_id", FIELD_STRING, true, 1, 256},
    [SUBMISSION_ID] = {"submission_id", FIELD_STRING, true, 1, 256},
    [FIELDS] = {"fields", FIELD_OBJECT, true, 0, 0},
    [SUBMITTED_AT] = {"submitted_at", FIELD_STRING, false, 0, 64},
};

enum { EMAIL, PHONE, NAME, MESSAGE, INNER_FIELDS };

/* The members of "fields" we read; a form may carry others, which we ignore. */
static const struct field_spec form_inner_fields[INNER_FIELDS] = {
    [EMAIL] = {"email", FIELD_STRING, false, 1, 320},
    [PHONE] = {"phone", FIELD_STRING, false, 1, 64},
    [NAME] = {"name", FIELD_STRING, false, 0, 256},
    [MESSAGE] = {"message", FIELD_STRING, false, 0, 0},
};

enum outcome handler_form(void *opaque, const cJSON *msg, const struct message_meta *meta,
                          struct emitter *out, struct route_result *res)
{
    struct handlers *h = opaque;
    char email[IDENTITY_EMAIL_MAX + 1];
    char phone[IDENTITY_PHONE_MAX + 1];
    char customer_id[IDENTITY_ID_LEN + 1];
    const char *why = NULL;
    const cJSON *f[FORM_FIELDS], *inner[INNER_FIELDS];

    enum outcome outcome = fields_check(msg, "", form_fields, FORM_FIELDS, f, res);
    if (outcome != OUTCOME_OK)
        return outcome;
    outcome = fields_check(f[FIELDS], "fields.", form_inner_fields, INNER_FIELDS, inner, res);
    if (outcome != OUTCOME_OK)
        return outcome;

    const char *raw_email = fields_text(inner[EMAIL]);
    const char *raw_phone = fields_text(inner[PHONE]);
    /* Without an address or a number there is no customer to answer. */
    if (raw_email == NULL && raw_phone == NULL)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                           "fields must hold \"email\" or \"phone\"");

    /* Both are checked before either is used: a form with one bad identifier is a bad form. */
    if (raw_email != NULL &&
        identity_email(raw_email, strlen(raw_email), email, sizeof(email), &why) < 0)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_IDENTITY, "field \"fields.email\": %s",
                           why);
    int rc = raw_phone != NULL
                 ? identity_phone(raw_phone, strlen(raw_phone), h->cfg->identity.default_region,
                                  phone, sizeof(phone), &why)
                 : 0;
    /* Out of memory is no fault of the number: the message is tried again. */
    if (rc == -ENOMEM)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "field \"fields.phone\": %s",
                           why);
    if (rc < 0)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_IDENTITY, "field \"fields.phone\": %s",
                           why);

    /*
     * The e-mail address names the customer when there is one: it is the
     * stabler identifier, and a number given beside it is linked to it.
     * The link is announced every time, not only when the table lacks it:
     * the table learns it when the outputs are queued, so if they then fail
     * and the message comes round again, a "known" link would never reach
     * the identities topic. Repeats are harmless; they are the same event.
     */
    bool link = false;
    int found = 0;
    if (raw_email != NULL) {
        identity_customer_id("email", email, customer_id);
        link = raw_phone != NULL;
    } else {
        found = h->links != NULL ? links_get(h->links, phone, customer_id, sizeof(customer_id)) : 0;
        if (found < 0)
            return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                               "cannot read the identity store");
        if (found == 0)
            identity_customer_id("phone", phone, customer_id);
    }

    struct ticket t = {
        .channel = "form",
        .source_id = fields_text(f[SUBMISSION_ID]),
        .customer_id = customer_id,
        .body = fields_text(inner[MESSAGE]),
        .name = fields_text(inner[NAME]),
        .email = raw_email != NULL ? email : NULL,
        .phone = raw_phone != NULL ? phone : NULL,
        .received_at = f[SUBMITTED_AT],
        .to = raw_email != NULL ? email : phone,
        .template_text = h->cfg->responses.form,
        .link = link,
    };
    outcome = handlers_emit_ticket(h, &t, meta, out, res);
    if (outcome != OUTCOME_OK)
        return outcome;
    h->stats.form++;
    return OUTCOME_OK;
}
