/* SPDX-License-Identifier: MIT */
/* whatsapp.c -- the whatsapp_received handler: shape checks, then counting. */
#include "handlers.h"

#include "fields.h"

/* A phone number, however formatted, fits in 64 bytes; E.164 needs 16. */
static const struct field_spec whatsapp_fields[] = {
    {"message_id", FIELD_STRING, true, 1, 256},
    {"from", FIELD_STRING, true, 1, 64},
    {"text", FIELD_STRING, false, 0, 0},
    {"profile_name", FIELD_STRING, false, 0, 256},
    {"timestamp", FIELD_STRING_OR_NUMBER, false, 0, 64},
};

enum outcome handler_whatsapp(void *opaque, const cJSON *msg, const struct message_meta *meta,
                              struct route_result *res)
{
    struct handler_stats *stats = opaque;

    (void)meta;
    enum outcome outcome = fields_check(msg, "", whatsapp_fields,
                                        sizeof(whatsapp_fields) / sizeof(whatsapp_fields[0]), res);
    if (outcome != OUTCOME_OK)
        return outcome;
    stats->whatsapp++;
    return OUTCOME_OK;
}
