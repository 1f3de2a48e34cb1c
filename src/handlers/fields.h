/* SPDX-License-Identifier: MIT */
/* fields.h -- what the built-in handlers share: shape checks and output writing (private). */
#ifndef CRM_HANDLERS_FIELDS_H
#define CRM_HANDLERS_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "../clock.h"
#include "../json.h"
#include "../jsonbuf.h"
#include "handlers.h"

/* What a member must hold. */
enum field_kind {
    FIELD_STRING,           /* a string of min_len..max_len bytes */
    FIELD_STRING_OR_NUMBER, /* a finite number, or a string as for FIELD_STRING */
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
 * Check the members of obj against specs, in order, and set found[i] to the
 * member specs[i] names, or NULL when it is absent or null, so that each is
 * looked up once; the first misfit fills res with a schema error naming the
 * member as prefix + name, e.g. `field "fields.email" must not be empty`.
 * Returns OUTCOME_OK or OUTCOME_PERMANENT.
 */
enum outcome fields_check(const cJSON *obj, const char *prefix, const struct field_spec *specs,
                          size_t nspecs, const cJSON **found, struct route_result *res);

/* The string of a member fields_check() found, or NULL when it found none or another kind. */
static inline const char *fields_text(const cJSON *item)
{
    return json_is(item, cJSON_String) ? item->valuestring : NULL;
}

/* The handlers' shared state; one per router, main-loop thread only. */
struct handlers {
    const struct config *cfg;
    struct links *links;
    int64_t (*clock_ms)(void);
    struct handler_stats stats;
    /* one per output of a message (ticket, response, identity); reused, so they rarely grow */
    struct jsonbuf bufs[3];
    struct clock_iso8601 iso; /* created_at's writer, which keeps the current second's text */
};

/*
 * Everything the outputs of one inbound message say. Strings are
 * NUL-terminated; NULL means absent and is written as null (or, in the
 * response text, replaced by the template's fallback).
 */
struct ticket {
    const char *channel;     /* "email", "whatsapp" or "form" */
    const char *source_id;   /* message_id, or submission_id for forms */
    const char *customer_id; /* IDENTITY_ID_LEN bytes, the outputs' key */
    const char *subject;
    const char *body;
    const char *name;
    const char *email;         /* normalised */
    const char *phone;         /* normalised */
    const cJSON *received_at;  /* a string or a number; NULL when absent */
    const char *to;            /* where the response goes: email or phone */
    const char *template_text; /* cfg->responses.<channel> */
    bool link;                 /* also announce and remember phone -> customer_id */
};

/*
 * Write t's outputs, ticket.created, response.requested and, when t->link,
 * identity.linked; emit the largest of them first and then the others in
 * that order; after that remember the link. The outputs carry no headers
 * and their keys (the customer id, or the shorter phone of a link) differ
 * by less than the ticket outgrows the others, so when the producer takes
 * the largest it takes them all: one too large for it fails the message before anything is queued,
 * and the dead letter is the only trace. The link is stored only once
 * every output is queued: a message that fails here is retried, and the
 * retry must find the link still missing so that it emits the identity
 * event again. Returns OUTCOME_OK; OUTCOME_PERMANENT with res filled when
 * the largest output is too large for the producer; or OUTCOME_TRANSIENT
 * with res filled (an output could not be queued, or memory ran out).
 */
enum outcome handlers_emit_ticket(struct handlers *h, const struct ticket *t,
                                  const struct message_meta *meta, struct emitter *out,
                                  struct route_result *res);

/* The email_received handler; opaque is the struct handlers. */
enum outcome handler_email(void *opaque, const cJSON *msg, const struct message_meta *meta,
                           struct emitter *out, struct route_result *res);

/* The whatsapp_received handler; opaque is the struct handlers. */
enum outcome handler_whatsapp(void *opaque, const cJSON *msg, const struct message_meta *meta,
                              struct emitter *out, struct route_result *res);

/* The form_submitted handler; opaque is the struct handlers. */
enum outcome handler_form(void *opaque, const cJSON *msg, const struct message_meta *meta,
                          struct emitter *out, struct route_result *res);

#endif
