/* SPDX-License-Identifier: MIT */
/* fields.h -- shape checks shared by the built-in handlers (private to src/handlers). */
#ifndef CRM_HANDLERS_FIELDS_H
#define CRM_HANDLERS_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "../router.h"

/* What a member must hold. */
enum field_kind {
    FIELD_STRING,           /* a string of min_len..max_len bytes */
    FIELD_STRING_OR_NUMBER, /* a number, or a string as for FIELD_STRING */
    FIELD_OBJECT,           /* an object; the lengths are ignored */
};

/* One member of a JSON object and what it must hold. */
struct field_spec {
    const char *name;
    enum field_kind kind;
    bool required; /* when false, an absent or null member passes */
    size_t min_len;
    size_t max_len; /* 0: no limit beyond processing.max_message_bytes */
};

/*
 * Check the members of obj against specs, in order; the first misfit fills
 * res with a schema error naming the member as prefix + name, e.g.
 * `field "fields.email" must not be empty`. Returns OUTCOME_OK or
 * OUTCOME_PERMANENT.
 */
enum outcome fields_check(const cJSON *obj, const char *prefix, const struct field_spec *specs,
                          size_t nspecs, struct route_result *res);

/* Whether obj has the member `name` with a value other than null. */
bool fields_present(const cJSON *obj, const char *name);

#endif
