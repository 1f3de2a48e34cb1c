/* SPDX-License-Identifier: MIT */
/* handlers.c -- the built-in handlers' state, shared shape checks and output writers. */
#include "handlers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../clock.h"
#include "../json.h"
#include "../phone.h"
#include "fields.h"

/* What {name} and {subject} become when the message has none (or an empty one). */
#define NO_NAME    "there"
#define NO_SUBJECT "(no subject)"

struct handlers *handlers_new(const struct config *cfg, struct links *links,
                              int64_t (*clock_ms)(void))
{
    struct handlers *h;

    /* The handlers read phone numbers: what that takes is loaded now, not in the first message. */
    if (phone_prepare() < 0 || (h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->cfg = cfg;
    h->links = links;
    h->clock_ms = clock_ms != NULL ? clock_ms : clock_real_ms;
    for (size_t i = 0; i < sizeof(h->bufs) / sizeof(h->bufs[0]); i++)
        jsonbuf_init(&h->bufs[i]);
    return h;
}

int handlers_register(struct handlers *h, struct router *r)
{
    static const struct {
        const char *type;
        handler_fn fn;
    } builtins[] = {
        {"email_received", handler_email},
        {"whatsapp_received", handler_whatsapp},
        {"form_submitted", handler_form},
    };

    if (h == NULL || r == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        int rc = router_add(r, builtins[i].type, builtins[i].fn, h);

        if (rc < 0)
            return rc;
    }
    return 0;
}

const struct handler_stats *handlers_stats(const struct handlers *h)
{
    return &h->stats;
}

struct handlers *handlers_free(struct handlers *h)
{
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(h->bufs) / sizeof(h->bufs[0]); i++)
        jsonbuf_free(&h->bufs[i]);
    free(h);
    return NULL;
}

static enum outcome check_string(const cJSON *item, const char *prefix,
                                 const struct field_spec *spec, struct route_result *res)
{
    /* The router rejected \u0000, so strlen is the string's true length. */
    size_t len = strlen(item->valuestring);

    if (len < spec->min_len) {
        if (spec->min_len == 1)
            return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                               "field \"%s%s\" must not be empty", prefix, spec->name);
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                           "field \"%s%s\" is shorter than %zu bytes", prefix, spec->name,
                           spec->min_len);
    }
    if (spec->max_len != 0 && len > spec->max_len)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                           "field \"%s%s\" is longer than %zu bytes", prefix, spec->name,
                           spec->max_len);
    return OUTCOME_OK;
}

static enum outcome check_field(const cJSON *item, const char *prefix,
                                const struct field_spec *spec, struct route_result *res)
{
    if (item == NULL) {
        if (!spec->required)
            return OUTCOME_OK;
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" is missing",
                           prefix, spec->name);
    }
    /* A null optional member means "not given"; a null required one is ill-typed. */
    if (json_is(item, cJSON_NULL) && !spec->required)
        return OUTCOME_OK;

    switch (spec->kind) {
    case FIELD_STRING:
        if (json_is(item, cJSON_String))
            return check_string(item, prefix, spec, res);
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" must be a string",
                           prefix, spec->name);
    case FIELD_STRING_OR_NUMBER:
        /*
         * cJSON reads 1e999 as infinity, which no JSON output can carry:
         * such a number is as unusable as a boolean would be.
         */
        if (json_is(item, cJSON_Number)) {
            if (isfinite(item->valuedouble))
                return OUTCOME_OK;
            return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                               "field \"%s%s\" must be a finite number", prefix, spec->name);
        }
        if (json_is(item, cJSON_String))
            return check_string(item, prefix, spec, res);
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA,
                           "field \"%s%s\" must be a string or a number", prefix, spec->name);
    case FIELD_OBJECT:
        if (json_is(item, cJSON_Object))
            return OUTCOME_OK;
        return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" must be an object",
                           prefix, spec->name);
    }
    return router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "field \"%s%s\" has no check", prefix,
                       spec->name);
}

enum outcome fields_check(const cJSON *obj, const char *prefix, const struct field_spec *specs,
                          size_t nspecs, const cJSON **found, struct route_result *res)
{
    for (size_t i = 0; i < nspecs; i++) {
        const cJSON *item = json_member(obj, specs[i].name);
        enum outcome outcome = check_field(item, prefix, &specs[i], res);

        if (outcome != OUTCOME_OK)
            return outcome;
        found[i] = json_is(item, cJSON_NULL) ? NULL : item;
    }
    return OUTCOME_OK;
}

/* ,"source":{...}: where the input came from, so every output can be traced back to it. */
static void write_source(struct jsonbuf *b, const struct message_meta *meta, const char *source_id)
{
    jsonbuf_append_raw(b, ",\"source\":{\"topic\":");
    /* The consumer always passes meta; without one (a bare router_route) the fields are null. */
    if (meta != NULL) {
        jsonbuf_append_cstring(b, meta->topic);
        jsonbuf_append_raw(b, ",\"partition\":");
        jsonbuf_append_int64(b, meta->partition);
        jsonbuf_append_raw(b, ",\"offset\":");
        jsonbuf_append_int64(b, meta->offset);
    } else {
        jsonbuf_append_raw(b, "null,\"partition\":null,\"offset\":null");
    }
    jsonbuf_append_raw(b, ",\"message_id\":");
    jsonbuf_append_cstring(b, source_id);
    jsonbuf_append_raw(b, "}");
}

/* ,"key":value for a string that may be absent (null). */
static void write_member(struct jsonbuf *b, const char *key, const char *value)
{
    jsonbuf_append_raw(b, key);
    jsonbuf_append_cstring(b, value);
}

/*
 * Where the members a ticket shares with the other outputs of its input lie
 * in the ticket's text: the response and the identity event repeat them
 * byte for byte, so they copy them instead of writing (and escaping) them
 * again. Each is [start, end) in the ticket's buffer.
 */
struct shared {
    /* ,"ticket_id":...,"customer_id":...,"channel":..., and the customer_id member in it */
    size_t ids, ids_end, customer, customer_end;
    size_t contact, contact_end; /* ,"email":...,"phone":... */
    size_t source, source_end;   /* ,"source":{...} */
};

/* Append [start, end) of the ticket's text to b. */
static void copy_shared(struct jsonbuf *b, const struct jsonbuf *ticket, size_t start, size_t end)
{
    /* A ticket whose writing failed may hold nothing; it fails the whole input anyway. */
    if (end > start && end <= ticket->len)
        jsonbuf_append(b, ticket->data + start, end - start);
}

static void write_ticket(struct jsonbuf *b, const struct ticket *t, const char *ticket_id,
                         const char *created_at, const struct message_meta *meta, struct shared *s)
{
    jsonbuf_append_raw(b, "{\"event\":\"ticket.created\"");
    s->ids = b->len;
    jsonbuf_append_raw(b, ",\"ticket_id\":");
    jsonbuf_append_plain(b, ticket_id);
    s->customer = b->len;
    write_member(b, ",\"customer_id\":", t->customer_id);
    s->customer_end = b->len;
    jsonbuf_append_raw(b, ",\"channel\":");
    jsonbuf_append_plain(b, t->channel);
    s->ids_end = b->len;
    write_member(b, ",\"subject\":", t->subject);
    write_member(b, ",\"body\":", t->body);
    write_member(b, ",\"contact\":{\"name\":", t->name);
    s->contact = b->len;
    write_member(b, ",\"email\":", t->email);
    write_member(b, ",\"phone\":", t->phone);
    s->contact_end = b->len;
    jsonbuf_append_raw(b, "},\"received_at\":");
    /* The field checks let only strings and finite numbers through. */
    if (json_is(t->received_at, cJSON_String))
        jsonbuf_append_cstring(b, t->received_at->valuestring);
    else if (json_is(t->received_at, cJSON_Number))
        jsonbuf_append_double(b, t->received_at->valuedouble);
    else
        jsonbuf_append_null(b);
    jsonbuf_append_raw(b, ",\"created_at\":");
    jsonbuf_append_plain(b, created_at);
    s->source = b->len;
    write_source(b, meta, t->source_id);
    s->source_end = b->len;
    jsonbuf_append_raw(b, "}");
}

/* s when it holds something, else the fallback: a greeting needs a word either way. */
static const char *or_default(const char *s, const char *fallback)
{
    return s != NULL && s[0] != '\0' ? s : fallback;
}

/* The value of the placeholder named name[0..len), or NULL when it is not one. */
static const char *placeholder(const struct ticket *t, const char *ticket_id, const char *name,
                               size_t len)
{
    static const char *const names[] = {"name", "subject", "ticket_id", "customer_id", "channel"};
    const char *values[] = {or_default(t->name, NO_NAME), or_default(t->subject, NO_SUBJECT),
                            ticket_id, t->customer_id, t->channel};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return values[i];
    return NULL;
}

/*
 * The response template rendered straight into b as one JSON string, each
 * piece escaped as it goes, so no second buffer is needed. "{{" and "}}"
 * are literal braces. A placeholder runs from '{' to the next '{' or '}',
 * as config.c parses it; config.c has already rejected unknown names and
 * unbalanced braces, so the fallback of copying a brace as it is only
 * serves templates that bypassed it.
 */
static void write_text(struct jsonbuf *b, const struct ticket *t, const char *ticket_id)
{
    const char *p = t->template_text;

    jsonbuf_append_raw(b, "\"");
    while (*p != '\0') {
        size_t run = strcspn(p, "{}");

        jsonbuf_append_escaped(b, p, run);
        p += run;
        if (*p == '\0')
            break;
        if (p[1] == p[0]) {
            jsonbuf_append(b, p, 1);
            p += 2;
            continue;
        }
        if (*p == '{') {
            size_t len = strcspn(p + 1, "{}");
            const char *value = p[1 + len] == '}' ? placeholder(t, ticket_id, p + 1, len) : NULL;

            if (value != NULL) {
                jsonbuf_append_escaped(b, value, strlen(value));
                p += len + 2;
                continue;
            }
        }
        jsonbuf_append(b, p, 1);
        p++;
    }
    jsonbuf_append_raw(b, "\"");
}

static void write_response(struct jsonbuf *b, const struct ticket *t, const char *ticket_id,
                           const struct jsonbuf *ticket, const struct shared *s)
{
    jsonbuf_append_raw(b, "{\"event\":\"response.requested\"");
    copy_shared(b, ticket, s->ids, s->ids_end);
    write_member(b, ",\"to\":", t->to);
    jsonbuf_append_raw(b, ",\"text\":");
    write_text(b, t, ticket_id);
    copy_shared(b, ticket, s->source, s->source_end);
    jsonbuf_append_raw(b, "}");
}

static void write_identity(struct jsonbuf *b, const struct jsonbuf *ticket, const struct shared *s)
{
    jsonbuf_append_raw(b, "{\"event\":\"identity.linked\"");
    copy_shared(b, ticket, s->customer, s->customer_end);
    copy_shared(b, ticket, s->contact, s->contact_end);
    copy_shared(b, ticket, s->source, s->source_end);
    jsonbuf_append_raw(b, "}");
}

/*
 * Queue what b holds to `topic`. Tickets and responses are keyed by the
 * customer, so one customer's events stay in order. Identity links are keyed
 * by the phone, the lookup key: every link of one phone lands in one
 * partition in the order made, so the later wins wherever it is read, and a
 * compacted topic keeps each phone's latest link.
 */
static enum outcome emit(const struct jsonbuf *b, const struct ticket *t, enum output_topic topic,
                         int64_t timestamp_ms, struct emitter *out, struct route_result *res)
{
    const char *key = topic == OUTPUT_IDENTITIES ? t->phone : t->customer_id;
    int rc = out->emit(out, topic, key, strlen(key), b->data, b->len, timestamp_ms);
    /* Too big for the producer: it never will fit, so the input is dead-lettered. */
    if (rc == -EMSGSIZE)
        return router_fail(res, OUTCOME_PERMANENT, ERROR_OVERSIZE,
                           "an output of %zu bytes is larger than the producer accepts "
                           "(message.max.bytes)",
                           b->len);
    if (rc < 0)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "cannot queue output: %s",
                           strerror(-rc));
    return OUTCOME_OK;
}

enum outcome handlers_emit_ticket(struct handlers *h, const struct ticket *t,
                                  const struct message_meta *meta, struct emitter *out,
                                  struct route_result *res)
{
    static const enum output_topic topics[] = {OUTPUT_TICKETS, OUTPUT_RESPONSES, OUTPUT_IDENTITIES};
    char ticket_id[IDENTITY_ID_LEN + 1];
    char created_at[64];
    struct shared shared;
    size_t n = t->link ? 3 : 2, largest = 0;
    enum outcome outcome;

    identity_ticket_id(t->channel, t->source_id, strlen(t->source_id), ticket_id);
    /*
     * Every output's record carries the ticket's creation time, as its
     * created_at says (a clock before 1970 leaves it to the producer).
     */
    int64_t now = h->clock_ms(), stamp = now > 0 ? now : 0;
    if (!clock_iso8601(&h->iso, now, created_at, sizeof(created_at)))
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                           "cannot format the clock as a UTC time");

    for (size_t i = 0; i < n; i++)
        jsonbuf_reset(&h->bufs[i]);
    write_ticket(&h->bufs[0], t, ticket_id, created_at, meta, &shared);
    write_response(&h->bufs[1], t, ticket_id, &h->bufs[0], &shared);
    if (t->link)
        write_identity(&h->bufs[2], &h->bufs[0], &shared);
    for (size_t i = 0; i < n; i++) {
        int err = jsonbuf_error(&h->bufs[i]);

        if (err < 0)
            return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "cannot build output: %s",
                               strerror(-err));
        if (h->bufs[i].len > h->bufs[largest].len)
            largest = i;
    }

    /*
     * Were the ticket queued and the response then refused as too large,
     * the message would be dead-lettered with its ticket already out.
     * Whichever output the producer would refuse for its size, it is the
     * largest, so that one goes first.
     */
    if ((outcome = emit(&h->bufs[largest], t, topics[largest], stamp, out, res)) != OUTCOME_OK)
        return outcome;
    for (size_t i = 0; i < n; i++)
        if (i != largest &&
            (outcome = emit(&h->bufs[i], t, topics[i], stamp, out, res)) != OUTCOME_OK)
            return outcome;
    if (!t->link)
        return OUTCOME_OK;
    h->stats.links++;

    /*
     * The outputs are queued but the link is not yet remembered; failing now
     * sends the message round again, outputs and all, which the ids make
     * harmless. It stays pending until the changelog reads it back into the
     * store; with no links at all there is nothing to remember.
     */
    int rc = h->links != NULL ? links_put(h->links, t->phone, t->customer_id) : 0;
    if (rc < 0)
        return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                           "cannot remember the link of %s: %s", t->phone, strerror(-rc));
    return OUTCOME_OK;
}
