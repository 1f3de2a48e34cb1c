/* SPDX-License-Identifier: MIT */
/* form.c -- the form_submitted handler: shape checks, then counting. */
#include "handlers.h"

#include "fields.h"

static const struct field_spec form_fields[] = {
    {"form_id", FIELD_STRING, true, 1, 256},
    {"submission_id", FIELD_STRING, true, 1, 256},
    {"fields", FIELD_OBJECT, true, 0, 0},
    {"submitted_at", FIELD_STRING, false, 0, 64},
};

/* The members of "fields" we read; a form may carry others, which we ignore. */
static const struct field_spec form_inner_fields[] = {
    {"email", FIELD_STRING, false, 1, 320},
    {"phone", FIELD_STRING, false, 1, 64},
    {"name", FIELD_STRING, false, 0, 256},
    {"message", FIELD_STRING, false, 0, 0},
};

enum outcome handler_form(void *opaque, const cJSON *msg, const struct message_meta *meta,
                          struct route_result *res)
{
    struct handler_stats *stats = opaque;

    (void)meta;
    enum outcome outcome =
        fields_check(msg, "", form_fields, sizeof(form_fields) / sizeof(form_fields[0]), res);
    if (outcome != OUTCOME_OK)
        return outcome;

    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(msg, "fields");
    outcome = fields_check(fields, "fields.", form_inner_fields,
                           sizeof(form_inner_fields) / sizeof(form_inner_fields[0]), res);
    if (outcome != OUTCOME_OK)
        return outcome;
    /* Without an address or a number there is no customer to answer. */
    if (!fields_present(fields, "email") && !fields_present(fields, "phone"))
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "fields must hold \"email\" or \"phone\"");
    stats->form++;
    return OUTCOME_OK;
}
