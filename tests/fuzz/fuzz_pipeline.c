/* SPDX-License-Identifier: MIT */
/* fuzz_pipeline.c -- libFuzzer harness: inbound values through the router, identity and handlers.
 */

/*
 * One fuzz input is up to MAX_MESSAGES Kafka message values separated by
 * the byte 0x1E (a value holding that byte would be a parse error anyway).
 * They go, in order, through two pipelines built as the daemon builds its
 * own (router, identity links, handlers): one from the default settings,
 * one from a tight configuration (small limits, the skip policy,
 * other templates, a small producer size limit). Each value is routed as
 * the consumer would route it, first through an emitter that refuses one
 * output as a full producer queue does, then again through a clean one,
 * as a retry would. Every result is checked against what the daemon
 * promises downstream; a broken promise aborts. Each value is also parsed
 * by cJSON: whatever the daemon's parser accepts, cJSON must read to the
 * same tree. A short input is also read as a phone number on its own, in
 * a region its bytes pick.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handlers/handlers.h"
#include "identity.h"
#include "phone.h"
#include "json.h"
#include "json_same.h"
#include "router.h"

#define MAX_MESSAGES 8
#define MAX_OUTPUTS  4
#define SEPARATOR    0x1E
#define TOPIC        "crm.inbound"
#define KEY          "input-key"

/* The pinned clock, 2026-11-28 12:00:00.123 UTC, and what created_at must say. */
#define CLOCK_MS INT64_C(1795867200123)
#define CREATED  "2026-11-28T12:00:00.123Z"

/* librdkafka's default message.max.bytes, and the smallest value it accepts. */
#define PRODUCER_MAX_DEFAULT 1000000
#define PRODUCER_MAX_TIGHT   1000

/* A configuration far from the defaults, loaded through config_load() so that it is checked. */
static const char tight_conf[] =
    "kafka = { brokers = \"127.0.0.1:9\"; };\n"
    "processing = { max_message_bytes = 4096; max_nesting_depth = 8; unknown_type = \"skip\"; };\n"
    "identity = { default_region = \"GB\"; };\n"
    "responses = {\n"
    "  email = \"{{Re}} {subject}: {name}, ticket {ticket_id} for {customer_id} ({channel}); \"\n"
    "          \"{subject}, {name}, {subject}, {name}\";\n"
    "  whatsapp = \"Hi {name} \\\"quoted\\\" \\\\ {ticket_id}\";\n"
    "  form = \"{name}/{subject}/{channel}/{ticket_id}/{customer_id} {{}}\";\n"
    "};\n";

struct pipeline {
    const char *name;
    struct config *cfg;
    size_t producer_max; /* outputs larger than this are refused with -EMSGSIZE */
};

static struct pipeline pipelines[2];

/* FUZZ_PIPELINE_TRACE set: print each value's outcome, to see what a seed exercises. */
static bool trace;

/* One record the handlers queued. */
struct output {
    enum output_topic topic;
    char *key;
    size_t key_len;
    char *value;
    size_t len;
};

/* An emitter that keeps copies, and refuses its fail_at-th call (1-based) with fail_rc. */
struct capture {
    struct emitter emitter; /* first: the emitter's address is the capture's */
    struct output outputs[MAX_OUTPUTS];
    size_t n;
    size_t calls;
    size_t fail_at;
    int fail_rc;
    size_t producer_max;
    bool refused; /* an emit() returned an error */
};

/* What the harness remembers of identity links: phone -> customer id of the e-mail. */
struct link_model {
    char phone[MAX_MESSAGES][IDENTITY_PHONE_MAX + 1];
    char customer[MAX_MESSAGES][IDENTITY_ID_LEN + 1];
    size_t n;
};

static const char *current_pipeline = "";

static void violation(int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void violation(int line, const char *what, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fuzz_pipeline.c:%d: invariant broken (%s pipeline): %s: ", line,
            current_pipeline, what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            violation(__LINE__, #cond, __VA_ARGS__);                                               \
    } while (0)

static int64_t pinned_clock(void)
{
    return CLOCK_MS;
}

/* The documented id hash, written out again here: FNV-1a 64 over prefix then data. */
static uint64_t fnv1a(const char *prefix, const char *data, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (const char *p = prefix; *p != '\0'; p++) {
        h ^= (unsigned char)*p;
        h *= UINT64_C(0x100000001b3);
    }
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void expected_id(const char *tag, const char *prefix, const char *data, char *out)
{
    snprintf(out, IDENTITY_ID_LEN + 1, "%s_%016llx", tag,
             (unsigned long long)fnv1a(prefix, data, strlen(data)));
}

/* Whether s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;

    for (size_t i = 0; i < len;) {
        unsigned int c = s[i], cp, n;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (unsigned int k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

static bool is_id(const char *s, const char *tag)
{
    if (s == NULL || strlen(s) != IDENTITY_ID_LEN || strncmp(s, tag, 4) != 0)
        return false;
    for (size_t i = 4; i < IDENTITY_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static char *copy_bytes(const void *data, size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        abort();
    if (len > 0)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

static int capture_emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                        const void *value, size_t len, int64_t timestamp_ms)
{
    struct capture *c = (struct capture *)e;

    (void)timestamp_ms;
    REQUIRE(topic == OUTPUT_TICKETS || topic == OUTPUT_RESPONSES || topic == OUTPUT_IDENTITIES,
            "a handler emitted to topic %d", (int)topic);
    REQUIRE(key != NULL && key_len > 0, "an output without a key");
    REQUIRE(value != NULL && len > 0, "an empty output");
    if (++c->calls == c->fail_at) {
        c->refused = true;
        return c->fail_rc;
    }
    if (len > c->producer_max) {
        c->refused = true;
        return -EMSGSIZE;
    }
    REQUIRE(c->n < MAX_OUTPUTS, "more than %d outputs for one message", MAX_OUTPUTS);
    c->outputs[c->n++] = (struct output){.topic = topic,
                                         .key = copy_bytes(key, key_len),
                                         .key_len = key_len,
                                         .value = copy_bytes(value, len),
                                         .len = len};
    return 0;
}

static void capture_init(struct capture *c, size_t fail_at, size_t producer_max)
{
    *c = (struct capture){.emitter = {.emit = capture_emit},
                          .fail_at = fail_at,
                          .fail_rc = -ENOBUFS,
                          .producer_max = producer_max};
}

static void capture_clear(struct capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->outputs[i].key);
        free(c->outputs[i].value);
    }
    c->n = 0;
}

/* A string member of obj, or NULL when it is absent, null or not a string. */
static const char *member_string(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* A member of an output that must be a string (want_null: or null); its text or NULL. */
static const char *output_string(const cJSON *obj, const char *name, bool may_be_null)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    REQUIRE(item != NULL, "output member \"%s\" missing", name);
    if (cJSON_IsNull(item)) {
        REQUIRE(may_be_null, "output member \"%s\" is null", name);
        return NULL;
    }
    REQUIRE(cJSON_IsString(item), "output member \"%s\" is not a string", name);
    return item->valuestring;
}

static bool same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The output's member `name` equals the input's string (NULL: absent or null in the input). */
static void require_copied(const cJSON *out, const char *name, const char *input)
{
    const char *got = output_string(out, name, true);

    REQUIRE(same_string(got, input), "output \"%s\" is \"%s\", the input said \"%s\"", name,
            got ? got : "(null)", input ? input : "(null)");
}

/* Parse an output strictly: the whole text, one JSON object, valid UTF-8, no NUL. */
static cJSON *parse_output(const struct output *o)
{
    const char *end = NULL;

    REQUIRE(utf8_valid(o->value, o->len), "output is not valid UTF-8: %s", o->value);
    REQUIRE(memchr(o->value, '\0', o->len) == NULL, "output holds a NUL byte");
    cJSON *root = cJSON_ParseWithLengthOpts(o->value, o->len, &end, 0);
    REQUIRE(root != NULL, "output is not JSON: %s", o->value);
    REQUIRE(end == o->value + o->len, "output has %zu bytes after its JSON: %s",
            (size_t)(o->value + o->len - end), o->value);
    REQUIRE(cJSON_IsObject(root), "output is not an object: %s", o->value);
    return root;
}

static void check_source(const cJSON *out, const struct message_meta *meta, const char *source_id)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(out, "source");

    REQUIRE(cJSON_IsObject(src), "output without a source object");
    require_copied(src, "topic", meta->topic);
    require_copied(src, "message_id", source_id);
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(src, "partition");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(src, "offset");
    REQUIRE(cJSON_IsNumber(part) && part->valuedouble == (double)meta->partition,
            "source.partition is wrong");
    REQUIRE(cJSON_IsNumber(off) && off->valuedouble == (double)meta->offset,
            "source.offset is wrong");
}

/* The normalised e-mail address is a fixed point of the normalisation and lower-case. */
static void check_email(const char *email)
{
    char again[IDENTITY_EMAIL_MAX + 1];
    const char *why = NULL;

    REQUIRE(identity_email(email, strlen(email), again, sizeof(again), &why) == 0,
            "normalised address \"%s\" does not normalise again: %s", email, why);
    REQUIRE(strcmp(again, email) == 0, "normalising \"%s\" again gives \"%s\"", email, again);
    for (const char *p = email; *p != '\0'; p++)
        REQUIRE(!(*p >= 'A' && *p <= 'Z'), "normalised address \"%s\" has upper case", email);
    REQUIRE(strchr(email, '@') != NULL && strchr(email, '@') == strrchr(email, '@'),
            "normalised address \"%s\" lacks a single @", email);
}

/* Regions whose plans differ in the ways that matter: prefixes 011, 0011, 00 and a carrier. */
static const char *const regions[] = {"US", "GB", "DE", "FR", "IN", "BR", "AU", "IT", "JP", "RU"};

#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

/*
 * The normalised number is E.164 and a fixed point of the normalisation,
 * in its region and in any other: a number with its country code is read
 * the same everywhere.
 */
static void check_phone(const char *region, const char *phone)
{
    char again[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;
    size_t len = strlen(phone);
    const char *other = regions[fnv1a("", phone, len) % NREGIONS];

    REQUIRE(phone[0] == '+' && len >= 2 && len <= 16 && phone[1] != '0',
            "\"%s\" is not E.164, '+' and 1 to 15 digits", phone);
    for (size_t i = 1; i < len; i++)
        REQUIRE(phone[i] >= '0' && phone[i] <= '9', "\"%s\" holds a non-digit", phone);
    REQUIRE(identity_phone(phone, len, region, again, sizeof(again), &why) == 0,
            "normalised number \"%s\" does not normalise again: %s", phone, why);
    REQUIRE(strcmp(again, phone) == 0, "normalising \"%s\" again gives \"%s\"", phone, again);
    REQUIRE(identity_phone(phone, len, other, again, sizeof(again), &why) == 0,
            "normalised number \"%s\" is refused in %s: %s", phone, other, why);
    REQUIRE(strcmp(again, phone) == 0, "normalising \"%s\" in %s gives \"%s\"", phone, other,
            again);
}

/*
 * The whole fuzz input as a phone number, in one region its bytes pick:
 * an answer (E.164 read back to itself, or a reason and an empty result),
 * and the same answer again when it is remembered.
 */
static void check_phone_input(const uint8_t *data, size_t size)
{
    char out[IDENTITY_PHONE_MAX + 1], again[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL, *why_again = NULL;
    const char *region = regions[fnv1a("region", (const char *)data, size) % NREGIONS];
    char *number = copy_bytes(data, size);

    current_pipeline = "phone";
    int rc = identity_phone(number, size, region, out, sizeof(out), &why);
    REQUIRE(rc == 0 || rc == -EINVAL, "identity_phone returned %d", rc);
    if (rc == 0) {
        check_phone(region, out);
    } else {
        REQUIRE(why != NULL && why[0] != '\0' && out[0] == '\0', "a refusal without its reason");
    }
    /*
     * The quick reading, where it answers, is libphonenumber's parser's
     * answer: on the '+' and digits of the input, as identity_phone() passes
     * them on.
     */
    char spelling[48];
    size_t n = 0;
    for (size_t i = 0; i < size && n + 1 < sizeof(spelling); i++)
        if ((data[i] >= '0' && data[i] <= '9') || (data[i] == '+' && n == 0))
            spelling[n++] = (char)data[i];
    spelling[n] = '\0';
    if (phone_normalise_quick(spelling, region, again, sizeof(again))) {
        char full[IDENTITY_PHONE_MAX + 1];
        const char *why_full = NULL;

        REQUIRE(phone_normalise(spelling, region, full, sizeof(full), &why_full) == 0 &&
                    strcmp(full, again) == 0,
                "\"%s\" in %s: quickly %s, by the parser %s", spelling, region, again,
                why_full ? why_full : full);
    }
    int rc_again = identity_phone(number, size, region, again, sizeof(again), &why_again);
    REQUIRE(rc_again == rc && strcmp(again, out) == 0 && (rc == 0 || strcmp(why, why_again) == 0),
            "\"%.64s\" in %s: %d \"%s\", then %d \"%s\"", number, region, rc, out, rc_again, again);
    if (trace)
        fprintf(stderr, "phone in %s: %s\n", region, rc == 0 ? out : why);
    free(number);
}

static const char *model_get(const struct link_model *m, const char *phone)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->phone[i], phone) == 0)
            return m->customer[i];
    return NULL;
}

static void model_put(struct link_model *m, const char *phone, const char *customer)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (strcmp(m->phone[i], phone) == 0)
            break;
    if (i == m->n) {
        REQUIRE(m->n < MAX_MESSAGES, "more links than messages");
        m->n++;
    }
    snprintf(m->phone[i], sizeof(m->phone[i]), "%s", phone);
    snprintf(m->customer[i], sizeof(m->customer[i]), "%s", customer);
}

/* What a response text must be: the template with each placeholder replaced, written out anew. */
struct text_values {
    const char *name, *subject, *ticket_id, *customer_id, *channel;
};

static char *render(const char *tmpl, const struct text_values *v)
{
    const char *names[] = {"{name}", "{subject}", "{ticket_id}", "{customer_id}", "{channel}"};
    const char *values[] = {v->name && v->name[0] ? v->name : "there",
                            v->subject && v->subject[0] ? v->subject : "(no subject)", v->ticket_id,
                            v->customer_id, v->channel};
    size_t cap = 64, len = 0;
    char *out = malloc(cap);

    for (const char *p = tmpl; out != NULL && *p != '\0';) {
        const char *piece = p;
        size_t n = 1, in = 1;

        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            in = 2;
        } else if (p[0] == '{') {
            for (size_t i = 0; i < 5; i++)
                if (strncmp(p, names[i], strlen(names[i])) == 0) {
                    piece = values[i];
                    n = strlen(values[i]);
                    in = strlen(names[i]);
                    break;
                }
        }
        while (len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(out, cap);
        if (grown == NULL)
            break;
        out = grown;
        memcpy(out + len, piece, n);
        len += n;
        p += in;
    }
    if (out == NULL)
        abort();
    out[len] = '\0';
    return out;
}

/*
 * An OK result: the outputs, their order, keys and every member against
 * the input (parsed again here) and the identity model.
 */
static void check_ok(const struct pipeline *pl, const struct route_result *res,
                     const struct capture *cap, const char *value, size_t len,
                     const struct message_meta *meta, struct link_model *model)
{
    REQUIRE(res->error_class == ERROR_NONE && res->reason[0] == '\0',
            "an OK result carries class %s, reason \"%s\"", router_class_name(res->error_class),
            res->reason);

    cJSON *in = cJSON_ParseWithLength(value, len);
    REQUIRE(cJSON_IsObject(in), "an OK input that is no JSON object");

    const char *channel, *source_id, *subject = NULL, *body, *name, *received_name;
    const cJSON *fields = NULL;
    if (strcmp(res->type, "email_received") == 0) {
        channel = "email";
        source_id = member_string(in, "message_id");
        subject = member_string(in, "subject");
        body = member_string(in, "body");
        name = member_string(in, "name");
        received_name = "received_at";
    } else if (strcmp(res->type, "whatsapp_received") == 0) {
        channel = "whatsapp";
        source_id = member_string(in, "message_id");
        body = member_string(in, "text");
        name = member_string(in, "profile_name");
        received_name = "timestamp";
    } else {
        REQUIRE(strcmp(res->type, "form_submitted") == 0, "OK for type \"%s\"", res->type);
        channel = "form";
        source_id = member_string(in, "submission_id");
        fields = cJSON_GetObjectItemCaseSensitive(in, "fields");
        REQUIRE(cJSON_IsObject(fields), "an OK form without a fields object");
        body = member_string(fields, "message");
        name = member_string(fields, "name");
        received_name = "submitted_at";
    }
    REQUIRE(source_id != NULL && source_id[0] != '\0', "an OK input without a source id");

    const char *in_email = fields ? member_string(fields, "email") : NULL;
    const char *in_phone = fields ? member_string(fields, "phone") : NULL;
    bool link = in_email != NULL && in_phone != NULL;
    REQUIRE(cap->n == (link ? 3u : 2u), "%zu outputs for an OK %s message", cap->n, channel);
    /* One output per topic, in whatever order they were emitted. */
    const struct output *by_topic[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < cap->n; i++) {
        size_t k = (size_t)cap->outputs[i].topic;

        REQUIRE(k < 3 && by_topic[k] == NULL, "two outputs to topic %zu", k);
        by_topic[k] = &cap->outputs[i];
    }
    REQUIRE(by_topic[OUTPUT_TICKETS] && by_topic[OUTPUT_RESPONSES] &&
                (by_topic[OUTPUT_IDENTITIES] != NULL) == link,
            "the outputs' topics are wrong");

    char ticket_id[IDENTITY_ID_LEN + 1], want[IDENTITY_ID_LEN + 1];
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%s:", channel);
    expected_id("tkt", prefix, source_id, ticket_id);

    cJSON *ticket = parse_output(by_topic[OUTPUT_TICKETS]);
    cJSON *response = parse_output(by_topic[OUTPUT_RESPONSES]);
    cJSON *identity = link ? parse_output(by_topic[OUTPUT_IDENTITIES]) : NULL;
    cJSON *outs[] = {ticket, response, identity};
    static const char *const events[] = {"ticket.created", "response.requested", "identity.linked"};
    const char *customer = output_string(ticket, "customer_id", false);

    REQUIRE(is_id(customer, "cus_"), "customer_id \"%s\" is malformed", customer);
    for (size_t i = 0; i < cap->n; i++) {
        const struct output *o = by_topic[i];

        require_copied(outs[i], "event", events[i]);
        require_copied(outs[i], "customer_id", customer);
        /* A link is keyed by its phone, the lookup key; the other outputs by the customer. */
        const char *key =
            i == OUTPUT_IDENTITIES ? output_string(outs[i], "phone", false) : customer;
        REQUIRE(o->key_len == strlen(key) && memcmp(o->key, key, o->key_len) == 0,
                "output key \"%s\" is not %s", o->key, key);
        check_source(outs[i], meta, source_id);
        if (i < 2) {
            require_copied(outs[i], "ticket_id", ticket_id);
            require_copied(outs[i], "channel", channel);
        }
    }

    /* The ticket: contact details, copied texts, times. */
    const cJSON *contact = cJSON_GetObjectItemCaseSensitive(ticket, "contact");
    REQUIRE(cJSON_IsObject(contact), "ticket without a contact object");
    const char *email = output_string(contact, "email", true);
    const char *phone = output_string(contact, "phone", true);
    require_copied(contact, "name", name);
    require_copied(ticket, "subject", subject);
    require_copied(ticket, "body", body);
    require_copied(ticket, "created_at", CREATED);

    const cJSON *rin = cJSON_GetObjectItemCaseSensitive(in, received_name);
    const cJSON *rout = cJSON_GetObjectItemCaseSensitive(ticket, "received_at");
    REQUIRE(rout != NULL, "ticket without received_at");
    if (rin == NULL || cJSON_IsNull(rin))
        REQUIRE(cJSON_IsNull(rout), "received_at is not null for an input without one");
    else if (cJSON_IsString(rin))
        REQUIRE(cJSON_IsString(rout) && strcmp(rout->valuestring, rin->valuestring) == 0,
                "received_at \"%s\" changed", rin->valuestring);
    else
        REQUIRE(cJSON_IsNumber(rin) && cJSON_IsNumber(rout) &&
                    rout->valuedouble == rin->valuedouble,
                "received_at %.17g changed", rin->valuedouble);

    if (strcmp(channel, "email") == 0) {
        REQUIRE(email != NULL && phone == NULL, "an e-mail ticket's contact is wrong");
    } else if (strcmp(channel, "whatsapp") == 0) {
        REQUIRE(email == NULL && phone != NULL, "a WhatsApp ticket's contact is wrong");
    } else {
        REQUIRE((email != NULL) == (in_email != NULL) && (phone != NULL) == (in_phone != NULL),
                "a form ticket's contact does not follow its fields");
    }
    if (email != NULL) {
        check_email(email);
        /* An e-mail address always names the customer. */
        expected_id("cus", "email:", email, want);
        REQUIRE(strcmp(customer, want) == 0, "customer %s of %s should be %s", customer, email,
                want);
    } else {
        check_phone(pl->cfg->identity.default_region, phone);
        const char *linked = model_get(model, phone);
        expected_id("cus", "phone:", phone, want);
        /* Links are never forgotten. */
        REQUIRE(strcmp(customer, linked ? linked : want) == 0, "customer %s of %s should be %s",
                customer, phone, linked ? linked : want);
    }

    /* The response goes to the address, else the number, and names the ticket. */
    const char *to = output_string(response, "to", false);
    REQUIRE(strcmp(to, email ? email : phone) == 0, "response to \"%s\"", to);
    const char *text = output_string(response, "text", false);
    const char *tmpl = strcmp(channel, "email") == 0      ? pl->cfg->responses.email
                       : strcmp(channel, "whatsapp") == 0 ? pl->cfg->responses.whatsapp
                                                          : pl->cfg->responses.form;
    struct text_values tv = {name, subject, ticket_id, customer, channel};
    char *rendered = render(tmpl, &tv);
    REQUIRE(strcmp(text, rendered) == 0, "response text \"%s\", want \"%s\"", text, rendered);
    free(rendered);

    if (identity != NULL) {
        require_copied(identity, "email", email);
        require_copied(identity, "phone", phone);
        model_put(model, phone, customer);
    }

    cJSON_Delete(identity);
    cJSON_Delete(response);
    cJSON_Delete(ticket);
    cJSON_Delete(in);
}

static bool registered(const char *type)
{
    return strcmp(type, "email_received") == 0 || strcmp(type, "whatsapp_received") == 0 ||
           strcmp(type, "form_submitted") == 0;
}

/* What holds of every result, whatever its outcome. */
static void check_result(const struct pipeline *pl, const struct route_result *res,
                         const struct capture *cap)
{
    size_t rlen = strnlen(res->reason, sizeof(res->reason));
    size_t tlen = strnlen(res->type, sizeof(res->type));

    REQUIRE(rlen < sizeof(res->reason), "reason not terminated");
    REQUIRE(tlen < sizeof(res->type), "type not terminated");
    REQUIRE(utf8_valid(res->reason, rlen), "reason is not UTF-8: %s", res->reason);
    REQUIRE(utf8_valid(res->type, tlen), "type is not UTF-8");
    for (size_t i = 0; i < rlen; i++)
        REQUIRE((unsigned char)res->reason[i] >= 0x20 && res->reason[i] != 0x7F,
                "reason holds a control character: %s", res->reason);

    switch (res->outcome) {
    case OUTCOME_OK:
        break;
    case OUTCOME_SKIPPED:
        REQUIRE(pl->cfg->processing.unknown_type == UNKNOWN_TYPE_SKIP,
                "skipped without the skip policy");
        REQUIRE(res->error_class == ERROR_NONE, "a skip with class %s",
                router_class_name(res->error_class));
        REQUIRE(tlen > 0 && !registered(res->type), "skipped type \"%s\"", res->type);
        REQUIRE(cap->n == 0 && cap->calls == 0, "a skipped message has outputs");
        break;
    case OUTCOME_PERMANENT: {
        /* What the dead letter's crm.error.class and crm.error.reason headers will say. */
        const char *cls = router_class_name(res->error_class);

        REQUIRE(res->error_class != ERROR_NONE && res->error_class != ERROR_TRANSIENT &&
                    strcmp(cls, "unknown") != 0,
                "dead letter of class %s", cls);
        REQUIRE(rlen > 0, "dead letter of class %s without a reason", cls);
        REQUIRE(cap->n == 0, "dead letter (%s: %s) after %zu outputs", cls, res->reason, cap->n);
        if (res->error_class == ERROR_UNKNOWN_TYPE)
            REQUIRE(pl->cfg->processing.unknown_type == UNKNOWN_TYPE_DEAD_LETTER && tlen > 0 &&
                        !registered(res->type),
                    "unknown_type for \"%s\"", res->type);
        if (res->error_class == ERROR_OVERSIZE && cap->calls > 0)
            REQUIRE(cap->refused, "oversize output without a refusal");
        break;
    }
    case OUTCOME_TRANSIENT:
        REQUIRE(res->error_class == ERROR_TRANSIENT && rlen > 0,
                "transient result of class %s, reason \"%s\"", router_class_name(res->error_class),
                res->reason);
        REQUIRE(cap->refused, "transient without a refused output: %s", res->reason);
        break;
    default:
        REQUIRE(false, "outcome %d", (int)res->outcome);
    }
}

static void require_same_outputs(const struct capture *a, const struct capture *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        REQUIRE(a->outputs[i].topic == b->outputs[i].topic &&
                    a->outputs[i].len == b->outputs[i].len &&
                    memcmp(a->outputs[i].value, b->outputs[i].value, a->outputs[i].len) == 0 &&
                    strcmp(a->outputs[i].key, b->outputs[i].key) == 0,
                "output %zu differs between tries:\n%s\n%s", i, a->outputs[i].value,
                b->outputs[i].value);
}

/* Route one value through one pipeline: a try that hits a full queue, then a clean retry. */
static void route_one(struct pipeline *pl, struct router *router, const char *value, size_t len,
                      size_t index, struct link_model *model)
{
    struct message_meta meta = {.topic = TOPIC,
                                .partition = (int32_t)index,
                                .offset = INT64_C(1000) + (int64_t)index,
                                .key = KEY,
                                .key_len = sizeof(KEY) - 1,
                                .timestamp_ms = -1};
    struct route_result first, again;
    struct capture a, b;

    /* Refuse the first, second or third output, or none, as the value's hash picks. */
    capture_init(&a, (size_t)(fnv1a("", value, len) % 4), pl->producer_max);
    router_route(router, value, len, &meta, &a.emitter, &first);
    check_result(pl, &first, &a);

    capture_init(&b, 0, pl->producer_max);
    router_route(router, value, len, &meta, &b.emitter, &again);
    check_result(pl, &again, &b);
    REQUIRE(again.outcome != OUTCOME_TRANSIENT, "transient without a refusal: %s", again.reason);
    if (trace)
        fprintf(stderr, "%s #%zu: %s %s %s: %s (%zu outputs)\n", pl->name, index,
                router_outcome_name(again.outcome), router_class_name(again.error_class),
                again.type, again.reason, b.n);
    if (again.outcome == OUTCOME_OK)
        check_ok(pl, &again, &b, value, len, &meta, model);

    if (first.outcome == OUTCOME_TRANSIENT) {
        /* A retry finds what the failed try queued, and more. */
        REQUIRE(a.n <= b.n, "the retry emitted less than the failed try");
        require_same_outputs(&a, &b, a.n);
    } else {
        /* Without a full queue in between, routing is a function of the value and the links. */
        REQUIRE(first.outcome == again.outcome && first.error_class == again.error_class &&
                    strcmp(first.reason, again.reason) == 0 && strcmp(first.type, again.type) == 0,
                "two tries differ: %s/%s \"%s\" then %s/%s \"%s\"",
                router_outcome_name(first.outcome), router_class_name(first.error_class),
                first.reason, router_outcome_name(again.outcome),
                router_class_name(again.error_class), again.reason);
        REQUIRE(a.n == b.n, "two tries emitted %zu and %zu outputs", a.n, b.n);
        require_same_outputs(&a, &b, a.n);
    }
    capture_clear(&a);
    capture_clear(&b);
}

/* True when text has a run of n or more bytes that cJSON takes for a number. */
static bool number_run(const char *text, size_t len, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < len && run < n; i++)
        run = strchr("0123456789+-eE.", text[i]) != NULL && text[i] != '\0' ? run + 1 : 0;
    return run >= n;
}

/*
 * The daemon's parser against cJSON's, both ways. A value it accepts must be
 * JSON that cJSON reads to the same tree; cJSON reads at most 63 bytes of a
 * number, and skips a byte-order mark only when at least two bytes follow
 * it, so those are the things it may refuse. The other way, cJSON is laxer
 * (it takes 01, 1. and -.5, bad UTF-8 and raw control bytes), so a value it
 * accepts is printed by cJSON, which writes strict JSON, and the daemon's
 * parser must accept that text and read it as cJSON reads it back: valid
 * JSON is never refused. Only text that is not UTF-8, which cJSON passes
 * through as it found it, is left out.
 */
static void check_parser(const char *value, size_t len)
{
    struct pool pool = {0};
    struct json_error err;
    char why[256];
    cJSON *ours = json_parse(value, len, JSON_DEPTH_LIMIT, pool_alloc, &pool, &err);
    cJSON *theirs = len > 0 ? cJSON_ParseWithLength(value, len) : NULL;

    REQUIRE(ours != NULL || err.kind != JSON_NOMEM, "out of memory from an allocator that has it");
    REQUIRE(ours != NULL || err.at < len || len == 0, "error at byte %zu of %zu", err.at, len);
    if (ours != NULL) {
        bool short_after_bom = len >= 3 && len <= 4 && memcmp(value, "\xEF\xBB\xBF", 3) == 0;

        REQUIRE(theirs != NULL || number_run(value, len, 63) || short_after_bom,
                "accepted what cJSON refuses");
        if (theirs != NULL)
            REQUIRE(json_same(ours, theirs, why, sizeof(why)), "trees differ: %s", why);
    }
    pool_free(&pool);

    char *printed = theirs != NULL ? cJSON_PrintUnformatted(theirs) : NULL;
    if (printed != NULL && utf8_valid(printed, strlen(printed))) {
        cJSON *again =
            json_parse(printed, strlen(printed), JSON_DEPTH_LIMIT, pool_alloc, &pool, &err);
        cJSON *reread = cJSON_Parse(printed);

        REQUIRE(again != NULL, "refused cJSON's printing of a value (error %d at byte %zu): %.200s",
                err.kind, err.at, printed);
        REQUIRE(reread != NULL && json_same(again, reread, why, sizeof(why)),
                "read cJSON's printing differently: %s", why);
        cJSON_Delete(reread);
        pool_free(&pool);
    }
    free(printed);
    cJSON_Delete(theirs);
}

static void run_pipeline(struct pipeline *pl, const uint8_t *data, size_t size)
{
    struct router_limits limits = {
        .max_message_bytes = (size_t)pl->cfg->processing.max_message_bytes,
        .max_nesting_depth = pl->cfg->processing.max_nesting_depth,
        .unknown_type = pl->cfg->processing.unknown_type,
    };
    struct links *links = links_new(NULL);
    struct router *router = router_new(&limits);
    struct handlers *handlers = links ? handlers_new(pl->cfg, links, pinned_clock) : NULL;
    struct link_model model = {.n = 0};

    current_pipeline = pl->name;
    if (router == NULL || handlers == NULL || handlers_register(handlers, router) < 0)
        abort();

    /* Each value is handed over in a buffer of its own size, as librdkafka hands payloads. */
    size_t start = 0;
    for (size_t index = 0; index < MAX_MESSAGES && start <= size; index++) {
        const uint8_t *sep = memchr(data + start, SEPARATOR, size - start);
        size_t end = sep ? (size_t)(sep - data) : size;
        size_t len = end - start;
        char *value = len > 0 ? copy_bytes(data + start, len) : NULL;

        route_one(pl, router, value, len, index, &model);
        if (pl == &pipelines[0])
            check_parser(value, len);
        free(value);
        if (sep == NULL)
            break;
        start = end + 1;
    }

    handlers_free(handlers);
    router_free(router);
    links_free(links);
}

static struct config *load_tight(void)
{
    char path[] = "/tmp/fuzz_pipeline.XXXXXX";
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, tight_conf, sizeof(tight_conf) - 1) != (ssize_t)sizeof(tight_conf) - 1)
        abort();
    close(fd);
    int rc = config_load(path, &cfg, &errs);
    unlink(path);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    config_errors_clear(&errs);
    if (rc < 0)
        abort();
    return cfg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trace = getenv("FUZZ_PIPELINE_TRACE") != NULL;
    pipelines[0] = (struct pipeline){
        .name = "default", .cfg = config_new_defaults(), .producer_max = PRODUCER_MAX_DEFAULT};
    pipelines[1] =
        (struct pipeline){.name = "tight", .cfg = load_tight(), .producer_max = PRODUCER_MAX_TIGHT};
    if (pipelines[0].cfg == NULL || pipelines[1].cfg == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < 2; i++)
        run_pipeline(&pipelines[i], data, size);
    /* Longer than any number: the pipelines' 64-byte fields hold the longer ones. */
    if (size <= 128)
        check_phone_input(data, size);
    return 0;
}
