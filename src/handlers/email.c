/* SPDX-License-Identifier: MIT */
/* email.c -- the email_received handler: shape checks, then counting. */
#include "handlers.h"

#include "fields.h"

/* The limits follow RFC 5321/5322: 320-byte addresses, 998-byte header lines. */
static const struct field_spec email_fields[] = {
    {"message_id", FIELD_STRING, true, 1, 256},  {"from", FIELD_STRING, true, 1, 320},
    {"to", FIELD_STRING, false, 0, 4096},        {"subject", FIELD_STRING, false, 0, 998},
    {"body", FIELD_STRING, false, 0, 0},         {"name", FIELD_STRING, false, 0, 256},
    {"received_at", FIELD_STRING, false, 0, 64},
};

enum outcome handler_email(void *opaque, const cJSON *msg, const struct message_meta *meta,
                           struct route_result *res)
{
    struct handler_stats *stats = opaque;

    (void)meta;
    enum outcome outcome =
        fields_check(msg, "", email_fields, sizeof(email_fields) / sizeof(email_fields[0]), res);
    if (outcome != OUTCOME_OK)
        return outcome;
    stats->email++;
    return OUTCOME_OK;
}
