/* SPDX-License-Identifier: MIT */
/* handlers.c -- registers the built-in handlers and holds their shared shape checks. */
#include "handlers.h"

#include <string.h>

#include "fields.h"

int handlers_register(struct router *r, struct handler_stats *stats)
{
    static const struct {
        const char *type;
        handler_fn fn;
    } builtins[] = {
        {"email_received", handler_email},
        {"whatsapp_received", handler_whatsapp},
        {"form_submitted", handler_form},
    };

    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        int rc = router_add(r, builtins[i].type, builtins[i].fn, stats);

        if (rc < 0)
            return rc;
    }
    return 0;
}

bool fields_present(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return item != NULL && !cJSON_IsNull(item);
}

static enum outcome check_string(const cJSON *item, const char *prefix,
                                 const struct field_spec *spec, struct route_result *res)
{
    /* The router rejected \u0000, so strlen is the string's true length. */
    size_t len = strlen(item->valuestring);

    if (len < spec->min_len) {
        if (spec->min_len == 1)
            return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                     "field \"%s%s\" must not be empty", prefix, spec->name);
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "field \"%s%s\" is shorter than %zu bytes", prefix, spec->name,
                                 spec->min_len);
    }
    if (spec->max_len != 0 && len > spec->max_len)
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "field \"%s%s\" is longer than %zu bytes", prefix, spec->name,
                                 spec->max_len);
    return OUTCOME_OK;
}

static enum outcome check_field(const cJSON *obj, const char *prefix, const struct field_spec *spec,
                                struct route_result *res)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, spec->name);

    if (item == NULL) {
        if (!spec->required)
            return OUTCOME_OK;
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" is missing",
                                 prefix, spec->name);
    }
    /* A null optional member means "not given"; a null required one is ill-typed. */
    if (cJSON_IsNull(item) && !spec->required)
        return OUTCOME_OK;

    switch (spec->kind) {
    case FIELD_STRING:
        if (cJSON_IsString(item))
            return check_string(item, prefix, spec, res);
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "field \"%s%s\" must be a string", prefix, spec->name);
    case FIELD_STRING_OR_NUMBER:
        if (cJSON_IsNumber(item))
            return OUTCOME_OK;
        if (cJSON_IsString(item))
            return check_string(item, prefix, spec, res);
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "field \"%s%s\" must be a string or a number", prefix, spec->name);
    case FIELD_OBJECT:
        if (cJSON_IsObject(item))
            return OUTCOME_OK;
        return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                                 "field \"%s%s\" must be an object", prefix, spec->name);
    }
    return route_result_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" has no check",
                             prefix, spec->name);
}

enum outcome fields_check(const cJSON *obj, const char *prefix, const struct field_spec *specs,
                          size_t nspecs, struct route_result *res)
{
    for (size_t i = 0; i < nspecs; i++) {
        enum outcome outcome = check_field(obj, prefix, &specs[i], res);

        if (outcome != OUTCOME_OK)
            return outcome;
    }
    return OUTCOME_OK;
}
