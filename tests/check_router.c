/* SPDX-License-Identifier: MIT */
/* check_router.c -- unit tests for the router's checks and the built-in handlers' shapes. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handlers/handlers.h"
#include "identity.h"
#include "router.h"

#define DEFAULT_MAX_BYTES 1048576
#define DEFAULT_DEPTH     64

#define X8  "xxxxxxxx"
#define X63 X8 X8 X8 X8 X8 X8 X8 "xxxxxxx"
#define X64 X8 X8 X8 X8 X8 X8 X8 X8
#define E8  "éééééééé"
#define E31 E8 E8 E8 "ééééééé"
#define E32 E8 E8 E8 E8

#define EMAIL                                                                                      \
    "{\"message_type\":\"email_received\",\"message_id\":\"m1\",\"from\":\"ann@example.com\""
#define WA   "{\"type\":\"whatsapp_received\",\"message_id\":\"w1\",\"from\":\"+15551234567\""
#define FORM "{\"message_type\":\"form_submitted\",\"form_id\":\"contact\",\"submission_id\":\"s1\""
#define TOK  "{\"message_type\":\"test_ok\""

/* created_at in every output; check_handlers holds the golden values, here it only must not vary.
 */
#define CLOCK_MS INT64_C(1795867200123)

/* Calls into the test handlers, and the meta and emitter every call must see. */
static unsigned test_ok_calls;
static const struct message_meta *expected_meta;
static const struct emitter *expected_out;

/*
 * Counts what the built-in handlers queue. The exact bytes are
 * check_handlers' business; here each output must be one well-formed JSON
 * object keyed by a customer id.
 */
struct capture {
    struct emitter emitter; /* first, so that the emitter's address is the capture's */
    unsigned emitted;
};

static int capture_emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                        const void *value, size_t len, int64_t timestamp_ms)
{
    struct capture *c = (struct capture *)e;
    const char *end = NULL;

    ck_assert_int_gt(timestamp_ms, 0);
    ck_assert_int_lt(topic, OUTPUT_DEAD_LETTERS);
    /* Links are keyed by the E.164 phone, everything else by the customer id. */
    if (topic == OUTPUT_IDENTITIES) {
        ck_assert_uint_ge(key_len, 3);
        ck_assert_uint_le(key_len, IDENTITY_PHONE_MAX);
        ck_assert_int_eq(*(const char *)key, '+');
    } else {
        ck_assert_uint_eq(key_len, IDENTITY_ID_LEN);
        ck_assert_int_eq(memcmp(key, "cus_", 4), 0);
    }
    cJSON *json = cJSON_ParseWithLengthOpts(value, len, &end, 0);
    ck_assert_msg(cJSON_IsObject(json) && end == (const char *)value + len,
                  "output is not one JSON object: %.*s", (int)len, (const char *)value);
    cJSON_Delete(json);
    c->emitted++;
    return 0;
}

static int64_t fixed_clock(void)
{
    return CLOCK_MS;
}

/* A router with the built-in handlers on default settings, the test handlers, and an emitter. */
struct fixture {
    struct config *cfg;
    struct links *links;
    struct handlers *handlers;
    struct router *router;
    struct capture capture;
};

/* Succeeds, but leaves litter in res that the router must clear. */
static enum outcome test_ok(void *opaque, const cJSON *msg, const struct message_meta *meta,
                            struct emitter *out, struct route_result *res)
{
    unsigned *calls = opaque;

    ck_assert(cJSON_IsObject(msg));
    ck_assert_ptr_eq(meta, expected_meta);
    ck_assert_ptr_eq(out, expected_out);
    (*calls)++;
    res->error_class = ERROR_SCHEMA;
    snprintf(res->reason, sizeof(res->reason), "litter");
    return OUTCOME_OK;
}

static enum outcome test_transient(void *opaque, const cJSON *msg, const struct message_meta *meta,
                                   struct emitter *out, struct route_result *res)
{
    (void)opaque;
    (void)msg;
    (void)meta;
    (void)out;
    return router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "test: outputs not acknowledged");
}

static enum outcome test_identity(void *opaque, const cJSON *msg, const struct message_meta *meta,
                                  struct emitter *out, struct route_result *res)
{
    (void)opaque;
    (void)msg;
    (void)meta;
    (void)out;
    return router_fail(res, OUTCOME_PERMANENT, ERROR_IDENTITY, "test: bad number \"%s\"", "12");
}

/* The built-in handlers on config_new_defaults() settings, with an empty links table. */
static void handlers_setup(struct fixture *f)
{
    *f = (struct fixture){0};
    f->cfg = config_new_defaults();
    ck_assert_ptr_nonnull(f->cfg);
    f->links = links_new(NULL);
    ck_assert_ptr_nonnull(f->links);
    f->handlers = handlers_new(f->cfg, f->links, fixed_clock);
    ck_assert_ptr_nonnull(f->handlers);
    f->capture = (struct capture){.emitter = {.emit = capture_emit}};
}

static void make_router(struct fixture *f, size_t max_bytes, int max_depth,
                        enum unknown_type_policy policy)
{
    struct router_limits limits = {
        .max_message_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES,
        .max_nesting_depth = max_depth ? max_depth : DEFAULT_DEPTH,
        .unknown_type = policy,
    };

    handlers_setup(f);
    f->router = router_new(&limits);
    ck_assert_ptr_nonnull(f->router);
    ck_assert_int_eq(handlers_register(f->handlers, f->router), 0);
    ck_assert_int_eq(router_add(f->router, "test_ok", test_ok, &test_ok_calls), 0);
    ck_assert_int_eq(router_add(f->router, "test_transient", test_transient, NULL), 0);
    ck_assert_int_eq(router_add(f->router, "test_identity", test_identity, NULL), 0);
    expected_out = &f->capture.emitter;
}

static void fixture_free(struct fixture *f)
{
    f->router = router_free(f->router);
    f->handlers = handlers_free(f->handlers);
    f->links = links_free(f->links);
    f->cfg = config_free(f->cfg);
}

/*
 * Route `len` bytes of `value` from a malloc'd buffer of exactly that size,
 * as Kafka hands them over: no NUL after the last byte, so any read past
 * the end is an ASan or valgrind error. res starts as garbage to show that
 * the router initialises all of it.
 */
static void route_exact(struct fixture *f, const char *value, size_t len,
                        const struct message_meta *meta, struct route_result *res)
{
    memset(res, 0xA5, sizeof(*res));
    if (value == NULL) {
        router_route(f->router, NULL, len, meta, &f->capture.emitter, res);
        return;
    }
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, value, len);
    router_route(f->router, copy, len, meta, &f->capture.emitter, res);
    free(copy);
}

/* Finish text built with open_memstream: the malloc'd, NUL-terminated result. */
static char *build_end(FILE *f, char **buf)
{
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_ptr_nonnull(*buf);
    return *buf;
}

/* `n` copies of `unit`. */
static void put_repeat(FILE *f, const char *unit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputs(unit, f);
}

static char *deep_arrays(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    put_repeat(f, "[", 10000);
    put_repeat(f, "]", 10000);
    return build_end(f, &buf);
}

static char *deep_objects(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    put_repeat(f, "{\"a\":", 10000);
    fputs("1", f);
    put_repeat(f, "}", 10000);
    return build_end(f, &buf);
}

/* A test_ok message nested `depth` levels deep: the object plus depth - 1 arrays. */
static char *nested(size_t depth)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    fputs(TOK ",\"a\":", f);
    put_repeat(f, "[", depth - 1);
    put_repeat(f, "]", depth - 1);
    fputs("}", f);
    return build_end(f, &buf);
}

static char *nested_1000(void)
{
    return nested(1000);
}

static char *nested_1001(void)
{
    return nested(1001);
}

/* An object with members k0..k(n-2) and then `last`. */
static char *members(size_t n, const char *last)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    fputs("{", f);
    for (size_t i = 0; i + 1 < n; i++)
        fprintf(f, "\"k%zu\":%zu,", i, i);
    fprintf(f, "\"%s\":0}", last);
    return build_end(f, &buf);
}

static char *members_100(void)
{
    return members(100, "message_type\":\"test_ok\",\"end");
}

static char *members_100_dup(void)
{
    return members(100, "k42");
}

static char *members_17_dup(void)
{
    return members(17, "k0");
}

static char *members_16_dup(void)
{
    return members(16, "k0");
}

/* Replace each "<FILL>" in tmpl with n copies of unit. */
static char *fill(const char *tmpl, const char *unit, size_t n)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    const char *p = tmpl, *mark;

    while ((mark = strstr(p, "<FILL>")) != NULL) {
        fwrite(p, 1, (size_t)(mark - p), f);
        put_repeat(f, unit, n);
        p = mark + strlen("<FILL>");
    }
    fputs(p, f);
    return build_end(f, &buf);
}

struct route_case {
    const char *name;
    const char *value;     /* NULL (and no build): a NULL value, a tombstone */
    size_t len;            /* 0: strlen(value) */
    char *(*build)(void);  /* generated value, used instead of value */
    size_t nfill;          /* when set, value is a fill() template */
    const char *fill_unit; /* NULL: "x" */
    size_t max_bytes;      /* 0: DEFAULT_MAX_BYTES */
    int max_depth;         /* 0: DEFAULT_DEPTH */
    bool skip_unknown;
    enum outcome outcome;
    enum error_class cls;
    const char *type;
    const char *reason;
    char counted; /* 'e', 'w', 'f': that built-in counter rises by one; 't': test_ok ran */
    bool linked;  /* a form linking an e-mail address and a number: identity.linked too */
};

#define OK(t, c)     .outcome = OUTCOME_OK, .cls = ERROR_NONE, .type = t, .reason = "", .counted = c
#define PARSE(r)     .outcome = OUTCOME_PERMANENT, .cls = ERROR_PARSE, .type = "", .reason = r
#define SCHEMA(t, r) .outcome = OUTCOME_PERMANENT, .cls = ERROR_SCHEMA, .type = t, .reason = r
#define NOTYPE(r)    SCHEMA("", r)
#define EMAIL_BAD(r) SCHEMA("email_received", r)
#define WA_BAD(r)    SCHEMA("whatsapp_received", r)
#define FORM_BAD(r)  SCHEMA("form_submitted", r)
#define FORM_NO_ID   "fields must hold \"email\" or \"phone\""
#define DEEPER(n)    PARSE("nesting deeper than " #n " levels")

static const struct route_case cases[] = {
    /* Each built-in type, by message_type and by type. */
    {"email by message_type", EMAIL "}", OK("email_received", 'e')},
    {"email by type",
     "{\"type\":\"email_received\",\"message_id\":\"m1\",\"from\":\"a@b.example\"}",
     OK("email_received", 'e')},
    {"whatsapp by type", WA "}", OK("whatsapp_received", 'w')},
    {"whatsapp by message_type",
     "{\"message_type\":\"whatsapp_received\",\"message_id\":\"w1\",\"from\":\"+4915112345678\"}",
     OK("whatsapp_received", 'w')},
    {"form by message_type", FORM ",\"fields\":{\"email\":\"bo@example.com\"}}",
     OK("form_submitted", 'f')},
    {"form by type",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s\",\"fields\":{\"phone\":"
     "\"555 010 0100\"}}",
     OK("form_submitted", 'f')},
    {"email with every optional field",
     EMAIL ",\"to\":\"help@example.com\",\"subject\":\"Hi\",\"body\":\"Text\",\"name\":\"Ann\","
           "\"received_at\":\"2024-05-01T10:00:00Z\"}",
     OK("email_received", 'e')},
    {"email with null optionals",
     EMAIL ",\"to\":null,\"subject\":null,\"body\":null,\"name\":null,\"received_at\":null}",
     OK("email_received", 'e')},
    {"email with empty optionals", EMAIL ",\"subject\":\"\",\"body\":\"\"}",
     OK("email_received", 'e')},
    {"email with unknown extra fields", EMAIL ",\"x-spam\":[1,{\"a\":true}]}",
     OK("email_received", 'e')},

    /* The type field. */
    {"message_type wins over type", TOK ",\"type\":\"email_received\"}", OK("test_ok", 't')},
    {"non-string message_type gives way to type", "{\"message_type\":5,\"type\":\"test_ok\"}",
     OK("test_ok", 't')},
    {"empty message_type gives way to type", "{\"message_type\":\"\",\"type\":\"test_ok\"}",
     OK("test_ok", 't')},
    {"no type field", "{\"message_id\":\"m1\"}", NOTYPE("no message_type or type field")},
    {"empty object", "{}", NOTYPE("no message_type or type field")},
    {"type names are case-sensitive", "{\"Message_Type\":\"test_ok\",\"TYPE\":\"test_ok\"}",
     NOTYPE("no message_type or type field")},
    {"numeric message_type", "{\"message_type\":5}",
     NOTYPE("message_type must be a non-empty string")},
    {"empty message_type", "{\"message_type\":\"\"}",
     NOTYPE("message_type must be a non-empty string")},
    {"null message_type", "{\"message_type\":null}",
     NOTYPE("message_type must be a non-empty string")},
    {"array type", "{\"type\":[\"test_ok\"]}", NOTYPE("type must be a non-empty string")},
    {"both ill-typed: message_type named", "{\"type\":1,\"message_type\":{}}",
     NOTYPE("message_type must be a non-empty string")},

    /* Unknown types under both policies. */
    {"unknown type, dead-letter policy", "{\"message_type\":\"sms_received\"}",
     .outcome = OUTCOME_PERMANENT, .cls = ERROR_UNKNOWN_TYPE, .type = "sms_received",
     .reason = "no handler for type \"sms_received\""},
    {"unknown type, skip policy", "{\"message_type\":\"sms_received\"}", .skip_unknown = true,
     .outcome = OUTCOME_SKIPPED, .cls = ERROR_NONE, .type = "sms_received",
     .reason = "no handler for type \"sms_received\"; skipped by policy"},
    {"known type under skip policy", EMAIL "}", .skip_unknown = true, OK("email_received", 'e')},
    {"type lookup is case-sensitive", "{\"type\":\"Email_Received\"}", .outcome = OUTCOME_PERMANENT,
     .cls = ERROR_UNKNOWN_TYPE, .type = "Email_Received",
     .reason = "no handler for type \"Email_Received\""},
    {"type with quote and newline escaped in reason", "{\"type\":\"a\\\"b\\nc\\u0001\"}",
     .outcome = OUTCOME_PERMANENT, .cls = ERROR_UNKNOWN_TYPE, .type = "a\"b\nc\x01",
     .reason = "no handler for type \"a\\\"b\\u000ac\\u0001\""},
    {"long type cut in type and reason", "{\"type\":\"<FILL>\"}", .nfill = 100,
     .outcome = OUTCOME_PERMANENT, .cls = ERROR_UNKNOWN_TYPE, .type = X63,
     .reason = "no handler for type \"" X64 "...\""},
    {"multi-byte type cut between characters", "{\"type\":\"<FILL>\"}", .nfill = 40,
     .fill_unit = "é", .outcome = OUTCOME_PERMANENT, .cls = ERROR_UNKNOWN_TYPE, .type = E31,
     .reason = "no handler for type \"" E32 "...\""},

    /* Handler outcomes propagate. */
    {"transient handler", "{\"message_type\":\"test_transient\"}", .outcome = OUTCOME_TRANSIENT,
     .cls = ERROR_TRANSIENT, .type = "test_transient", .reason = "test: outputs not acknowledged"},
    {"identity failure", "{\"message_type\":\"test_identity\"}", .outcome = OUTCOME_PERMANENT,
     .cls = ERROR_IDENTITY, .type = "test_identity", .reason = "test: bad number \"12\""},

    /* Not an object. */
    {"array", "[]", PARSE("value is a JSON array, not an object")},
    {"array of objects", "[" TOK "}]", PARSE("value is a JSON array, not an object")},
    {"string", "\"email_received\"", PARSE("value is a JSON string, not an object")},
    {"number", "-1.5e3", PARSE("value is a JSON number, not an object")},
    {"true", "true", PARSE("value is a JSON boolean, not an object")},
    {"false", "false", PARSE("value is a JSON boolean, not an object")},
    {"null", "null", PARSE("value is a JSON null, not an object")},

    /* Invalid JSON: the byte where reading stopped, or the last byte when the value ends early. */
    {"missing value", "{\"a\":}", PARSE("invalid JSON near byte 5")},
    {"missing colon", "{\"a\" 1}", PARSE("invalid JSON near byte 5")},
    {"single quotes", "{'a':1}", PARSE("invalid JSON near byte 1")},
    {"bad literal", "{\"a\":tru}", PARSE("invalid JSON near byte 5")},
    {"trailing comma", "{\"a\":1,}", PARSE("invalid JSON near byte 7")},
    {"unclosed object", "{\"a\":1", PARSE("invalid JSON near byte 5")},
    {"unclosed string", "{\"a\":\"abc", PARSE("invalid JSON near byte 8")},
    {"bare word", "email", PARSE("invalid JSON near byte 0")},
    {"only whitespace", "   ", PARSE("invalid JSON near byte 2")},
    {"cut inside \\u escape", "{\"a\":\"\\u000", PARSE("invalid JSON near byte 6")},
    {"lone surrogate escape", "{\"a\":\"\\udc00\"}", PARSE("invalid JSON near byte 6")},
    {"control byte outside strings", "{\x01\"message_type\":\"test_ok\"}",
     PARSE("invalid JSON near byte 1")},

    /* Trailing data. */
    {"trailing garbage", TOK "} x", PARSE("trailing data after JSON at byte 27")},
    {"two objects", TOK "}{}", PARSE("trailing data after JSON at byte 26")},
    {"extra closing brace", TOK "}}", PARSE("trailing data after JSON at byte 26")},
    {"trailing NUL", TOK "}\0", 27, PARSE("trailing data after JSON at byte 26")},
    {"trailing whitespace", TOK "} \t\r\n", OK("test_ok", 't')},
    {"leading and inner whitespace", " \n{\t\"message_type\" :\r\n\"test_ok\" }",
     OK("test_ok", 't')},
    {"byte-order mark", "\xEF\xBB\xBF" TOK "}", OK("test_ok", 't')},

    /* Empty and oversize. */
    {"NULL value (tombstone)", NULL, PARSE("null value (a tombstone)")},
    {"zero-length value", "", PARSE("empty value")},
    {"exactly max_message_bytes", TOK "}", .max_bytes = 26, OK("test_ok", 't')},
    {"one byte over max_message_bytes", TOK "}", .max_bytes = 25, .outcome = OUTCOME_PERMANENT,
     .cls = ERROR_OVERSIZE, .type = "",
     .reason = "value of 26 bytes exceeds processing.max_message_bytes (25)"},
    {"oversize checked before parsing", "not json at all", .max_bytes = 10,
     .outcome = OUTCOME_PERMANENT, .cls = ERROR_OVERSIZE, .type = "",
     .reason = "value of 15 bytes exceeds processing.max_message_bytes (10)"},

    /* UTF-8: the bad byte sits at offset 6 unless said otherwise. */
    {"overlong 2-byte", "{\"n\":\"\xC0\x80\"}", PARSE("invalid UTF-8 at byte 6")},
    {"overlong 2-byte C1", "{\"n\":\"\xC1\xBF\"}", PARSE("invalid UTF-8 at byte 6")},
    {"overlong 3-byte", "{\"n\":\"\xE0\x80\xAF\"}", PARSE("invalid UTF-8 at byte 6")},
    {"overlong 4-byte", "{\"n\":\"\xF0\x80\x80\xAF\"}", PARSE("invalid UTF-8 at byte 6")},
    {"surrogate U+D800", "{\"n\":\"\xED\xA0\x80\"}", PARSE("invalid UTF-8 at byte 6")},
    {"surrogate U+DFFF", "{\"n\":\"\xED\xBF\xBF\"}", PARSE("invalid UTF-8 at byte 6")},
    {"beyond U+10FFFF", "{\"n\":\"\xF4\x90\x80\x80\"}", PARSE("invalid UTF-8 at byte 6")},
    {"lead byte F5", "{\"n\":\"\xF5\x80\x80\x80\"}", PARSE("invalid UTF-8 at byte 6")},
    {"truncated 2-byte", "{\"n\":\"\xC3\"}", PARSE("invalid UTF-8 at byte 6")},
    {"truncated 3-byte", "{\"n\":\"\xE6\x97\"}", PARSE("invalid UTF-8 at byte 6")},
    {"truncated 4-byte", "{\"n\":\"\xF0\x9F\x98\"}", PARSE("invalid UTF-8 at byte 6")},
    {"truncated at end of value", "{\"n\":\"ab\xE6\x97", PARSE("invalid UTF-8 at byte 8")},
    {"stray continuation byte", "{\"n\":\"\x80\"}", PARSE("invalid UTF-8 at byte 6")},
    {"byte FF", "{\"n\":\"\xFF\"}", PARSE("invalid UTF-8 at byte 6")},
    {"byte FE", "{\"n\":\"\xFE\"}", PARSE("invalid UTF-8 at byte 6")},
    {"bad byte in a key", "{\"\xC0\x80\":1}", PARSE("invalid UTF-8 at byte 2")},
    {"bad byte outside strings", "{\xFF}", PARSE("invalid UTF-8 at byte 1")},
    {"bad byte after an escape", "{\"n\":\"\\\xFF\"}", PARSE("invalid UTF-8 at byte 7")},
    {"bad byte after good ones", "{\"n\":\"日本\xED\xA0\x80\"}", PARSE("invalid UTF-8 at byte 12")},
    {"name José", EMAIL ",\"name\":\"José\"}", OK("email_received", 'e')},
    {"name 日本", EMAIL ",\"name\":\"日本\"}", OK("email_received", 'e')},
    {"emoji", WA ",\"text\":\"thanks 😀\",\"profile_name\":\"Zoë 🚀\"}",
     OK("whatsapp_received", 'w')},
    {"boundary code points",
     TOK ",\"n\":\"\xC2\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"}",
     OK("test_ok", 't')},
    {"multi-byte key and type", "{\"type\":\"test_ok\",\"ключ\":\"значение\"}", OK("test_ok", 't')},
    {"escaped surrogate pair", TOK ",\"n\":\"\\ud83d\\ude00\"}", OK("test_ok", 't')},

    /* Nesting, with max_nesting_depth 3 unless said otherwise. */
    {"depth at the limit", TOK ",\"a\":{\"b\":{}}}", .max_depth = 3, OK("test_ok", 't')},
    {"depth over the limit", TOK ",\"a\":{\"b\":{\"c\":[]}}}", .max_depth = 3, DEEPER(3)},
    {"arrays at the limit", TOK ",\"a\":[[]]}", .max_depth = 3, OK("test_ok", 't')},
    {"arrays over the limit", TOK ",\"a\":[[[]]]}", .max_depth = 3, DEEPER(3)},
    {"siblings do not add up", TOK ",\"a\":[[]],\"b\":[{}],\"c\":{\"d\":{}}}", .max_depth = 3,
     OK("test_ok", 't')},
    {"brackets in strings do not count", TOK ",\"a\":\"[[[[{{{{\"}", .max_depth = 3,
     OK("test_ok", 't')},
    {"escaped quote does not end a string", TOK ",\"a\":\"\\\"[[[[\",\"b\":\"\\\\\"}",
     .max_depth = 3, OK("test_ok", 't')},
    {"10000 nested arrays", .build = deep_arrays, DEEPER(64)},
    {"10000 nested objects", .build = deep_objects, DEEPER(64)},
    {"10000 nested, limit above cJSON's", .build = deep_arrays, .max_depth = 100000, DEEPER(1000)},
    {"1000 levels under a 1000 limit", .build = nested_1000, .max_depth = 1000, OK("test_ok", 't')},
    {"1001 levels under a 2000 limit", .build = nested_1001, .max_depth = 2000, DEEPER(1000)},

    /* Control characters and NUL. */
    {"raw newline in string", "{\"n\":\"a\nb\"}", PARSE("control character in string at byte 7")},
    {"raw tab in string", "{\"n\":\"\tb\"}", PARSE("control character in string at byte 6")},
    {"raw NUL in string", "{\"n\":\"a\0b\"}", 11, PARSE("control character in string at byte 7")},
    {"raw control in key", "{\"a\x1f\":1}", PARSE("control character in string at byte 3")},
    {"\\u0000 in string", "{\"n\":\"\\u0000\"}", PARSE("\\u0000 in string at byte 6")},
    {"\\u0000 after text", "{\"n\":\"ab\\u00000\"}", PARSE("\\u0000 in string at byte 8")},
    {"\\u0000 in key", "{\"\\u0000\":1}", PARSE("\\u0000 in string at byte 2")},
    {"escaped backslash before u0000", TOK ",\"n\":\"\\\\u0000\"}", OK("test_ok", 't')},
    {"\\u0001 is allowed", TOK ",\"n\":\"\\u0001\\u001F\"}", OK("test_ok", 't')},

    /* Duplicate keys. */
    {"duplicate key", TOK ",\"a\":1,\"a\":2}", PARSE("duplicate key \"a\"")},
    {"duplicate message_type", "{\"message_type\":\"email_received\",\"message_type\":\"test_ok\"}",
     PARSE("duplicate key \"message_type\"")},
    {"duplicate in nested object", TOK ",\"o\":{\"x\":1,\"x\":{}}}", PARSE("duplicate key \"x\"")},
    {"duplicate in object in array", TOK ",\"l\":[{\"k\":1},{\"k\":1,\"k\":2}]}",
     PARSE("duplicate key \"k\"")},
    {"duplicate spelled with an escape", TOK ",\"a\":1,\"\\u0061\":2}",
     PARSE("duplicate key \"a\"")},
    {"duplicate with a quote", TOK ",\"a\\\"b\":1,\"a\\\"b\":2}",
     PARSE("duplicate key \"a\\\"b\"")},
    {"keys differing in case", TOK ",\"a\":1,\"A\":2}", OK("test_ok", 't')},
    {"same key in different objects", TOK ",\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}",
     OK("test_ok", 't')},
    {"100 distinct members", .build = members_100, OK("test_ok", 't')},
    {"100 members with a duplicate", .build = members_100_dup, PARSE("duplicate key \"k42\"")},
    {"17 members, first and last equal", .build = members_17_dup, PARSE("duplicate key \"k0\"")},
    {"16 members, first and last equal", .build = members_16_dup, PARSE("duplicate key \"k0\"")},
    {"long duplicate key cut", "{\"<FILL>\":1,\"<FILL>\":2}", .nfill = 300,
     PARSE("duplicate key \"" X64 "...\"")},
    {"duplicate key of control characters", "{\"<FILL>\":1,\"<FILL>\":2}", .nfill = 40,
     .fill_unit = "\\u0001",
     PARSE("duplicate key \"\\u0001\\u0001\\u0001\\u0001\\u0001\\u0001\\u0001\\u0001\\u0001\\u0001"
           "...\"")},

    /* email_received shapes. */
    {"email: message_id missing", "{\"message_type\":\"email_received\",\"from\":\"a@b\"}",
     EMAIL_BAD("field \"message_id\" is missing")},
    {"email: both required missing: first named", "{\"message_type\":\"email_received\"}",
     EMAIL_BAD("field \"message_id\" is missing")},
    {"email: message_id number", "{\"type\":\"email_received\",\"message_id\":7,\"from\":\"a@b\"}",
     EMAIL_BAD("field \"message_id\" must be a string")},
    {"email: message_id null", "{\"type\":\"email_received\",\"message_id\":null,\"from\":\"a@b\"}",
     EMAIL_BAD("field \"message_id\" must be a string")},
    {"email: message_id empty",
     "{\"type\":\"email_received\",\"message_id\":\"\",\"from\":\"a@b\"}",
     EMAIL_BAD("field \"message_id\" must not be empty")},
    {"email: message_id 256 bytes",
     "{\"type\":\"email_received\",\"message_id\":\"<FILL>\",\"from\":\"a@b.example\"}",
     .nfill = 256, OK("email_received", 'e')},
    {"email: message_id 257 bytes",
     "{\"type\":\"email_received\",\"message_id\":\"<FILL>\",\"from\":\"a@b\"}", .nfill = 257,
     EMAIL_BAD("field \"message_id\" is longer than 256 bytes")},
    {"email: from missing", "{\"type\":\"email_received\",\"message_id\":\"m\"}",
     EMAIL_BAD("field \"from\" is missing")},
    {"email: from array", "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":[]}",
     EMAIL_BAD("field \"from\" must be a string")},
    {"email: from empty", "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"\"}",
     EMAIL_BAD("field \"from\" must not be empty")},
    /* 305 blanks and 15 bytes of address: the shape allows 320 bytes, identity trims blanks. */
    {"email: from 320 bytes",
     "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"<FILL>ann@example.com\"}",
     .nfill = 305, .fill_unit = " ", OK("email_received", 'e')},
    {"email: from 321 bytes",
     "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"<FILL>\"}", .nfill = 321,
     EMAIL_BAD("field \"from\" is longer than 320 bytes")},
    {"email: to number", EMAIL ",\"to\":1}", EMAIL_BAD("field \"to\" must be a string")},
    {"email: to 4097 bytes", EMAIL ",\"to\":\"<FILL>\"}", .nfill = 4097,
     EMAIL_BAD("field \"to\" is longer than 4096 bytes")},
    {"email: subject 998 bytes", EMAIL ",\"subject\":\"<FILL>\"}", .nfill = 998,
     OK("email_received", 'e')},
    {"email: subject 999 bytes", EMAIL ",\"subject\":\"<FILL>\"}", .nfill = 999,
     EMAIL_BAD("field \"subject\" is longer than 998 bytes")},
    {"email: subject 999 bytes of é", EMAIL ",\"subject\":\"<FILL>\"}", .nfill = 500,
     .fill_unit = "é", EMAIL_BAD("field \"subject\" is longer than 998 bytes")},
    {"email: subject object", EMAIL ",\"subject\":{}}",
     EMAIL_BAD("field \"subject\" must be a string")},
    {"email: body boolean", EMAIL ",\"body\":false}", EMAIL_BAD("field \"body\" must be a string")},
    {"email: body 200000 bytes", EMAIL ",\"body\":\"<FILL>\"}", .nfill = 200000,
     OK("email_received", 'e')},
    {"email: name 257 bytes", EMAIL ",\"name\":\"<FILL>\"}", .nfill = 257,
     EMAIL_BAD("field \"name\" is longer than 256 bytes")},
    {"email: received_at number", EMAIL ",\"received_at\":1700000000}",
     EMAIL_BAD("field \"received_at\" must be a string")},
    {"email: received_at 65 bytes", EMAIL ",\"received_at\":\"<FILL>\"}", .nfill = 65,
     EMAIL_BAD("field \"received_at\" is longer than 64 bytes")},

    /* whatsapp_received shapes. */
    {"whatsapp: message_id missing", "{\"type\":\"whatsapp_received\",\"from\":\"+1555\"}",
     WA_BAD("field \"message_id\" is missing")},
    {"whatsapp: from missing", "{\"type\":\"whatsapp_received\",\"message_id\":\"w\"}",
     WA_BAD("field \"from\" is missing")},
    {"whatsapp: from number", "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":1555}",
     WA_BAD("field \"from\" must be a string")},
    {"whatsapp: from empty", "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"\"}",
     WA_BAD("field \"from\" must not be empty")},
    /* 12 bytes of number and 52 separators, which identity drops. */
    {"whatsapp: from 64 bytes",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"+1555<FILL>1234567\"}",
     .nfill = 52, .fill_unit = "-", OK("whatsapp_received", 'w')},
    {"whatsapp: from 65 bytes",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"<FILL>\"}", .nfill = 65,
     .fill_unit = "5", WA_BAD("field \"from\" is longer than 64 bytes")},
    {"whatsapp: text number", WA ",\"text\":5}", WA_BAD("field \"text\" must be a string")},
    {"whatsapp: text null", WA ",\"text\":null}", OK("whatsapp_received", 'w')},
    {"whatsapp: profile_name 257 bytes", WA ",\"profile_name\":\"<FILL>\"}", .nfill = 257,
     WA_BAD("field \"profile_name\" is longer than 256 bytes")},
    {"whatsapp: numeric timestamp", WA ",\"timestamp\":1714557600}", OK("whatsapp_received", 'w')},
    {"whatsapp: string timestamp", WA ",\"timestamp\":\"1714557600\"}",
     OK("whatsapp_received", 'w')},
    {"whatsapp: boolean timestamp", WA ",\"timestamp\":true}",
     WA_BAD("field \"timestamp\" must be a string or a number")},
    {"whatsapp: infinite timestamp", WA ",\"timestamp\":1e999}",
     WA_BAD("field \"timestamp\" must be a finite number")},
    {"whatsapp: fractional timestamp", WA ",\"timestamp\":1714557600.25}",
     OK("whatsapp_received", 'w')},
    {"whatsapp: timestamp 65 bytes", WA ",\"timestamp\":\"<FILL>\"}", .nfill = 65,
     WA_BAD("field \"timestamp\" is longer than 64 bytes")},

    /* form_submitted shapes. */
    {"form: phone only", FORM ",\"fields\":{\"phone\":\"+15551234567\",\"name\":\"Bo\"}}",
     OK("form_submitted", 'f')},
    {"form: email and phone",
     FORM ",\"fields\":{\"email\":\"bo@example.com\",\"phone\":\"555 010 0100\",\"message\":"
          "\"help\"},\"submitted_at\":\"2024-05-01\"}",
     OK("form_submitted", 'f'), .linked = true},
    {"form: email with a null phone",
     FORM ",\"fields\":{\"email\":\"bo@example.com\",\"phone\":null}}", OK("form_submitted", 'f')},
    {"form: form_id missing", "{\"type\":\"form_submitted\",\"submission_id\":\"s\",\"fields\":{}}",
     FORM_BAD("field \"form_id\" is missing")},
    {"form: form_id 257 bytes",
     "{\"type\":\"form_submitted\",\"form_id\":\"<FILL>\",\"submission_id\":\"s\",\"fields\":{}}",
     .nfill = 257, FORM_BAD("field \"form_id\" is longer than 256 bytes")},
    {"form: submission_id empty",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"\",\"fields\":{}}",
     FORM_BAD("field \"submission_id\" must not be empty")},
    {"form: submission_id number",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":9,\"fields\":{}}",
     FORM_BAD("field \"submission_id\" must be a string")},
    {"form: fields missing", FORM "}", FORM_BAD("field \"fields\" is missing")},
    {"form: fields array", FORM ",\"fields\":[{\"email\":\"a@b\"}]}",
     FORM_BAD("field \"fields\" must be an object")},
    {"form: fields string", FORM ",\"fields\":\"a@b\"}",
     FORM_BAD("field \"fields\" must be an object")},
    {"form: fields null", FORM ",\"fields\":null}", FORM_BAD("field \"fields\" must be an object")},
    {"form: fields empty", FORM ",\"fields\":{}}", FORM_BAD(FORM_NO_ID)},
    {"form: fields with a name only", FORM ",\"fields\":{\"name\":\"Bo\"}}", FORM_BAD(FORM_NO_ID)},
    {"form: email and phone null", FORM ",\"fields\":{\"email\":null,\"phone\":null}}",
     FORM_BAD(FORM_NO_ID)},
    {"form: email empty", FORM ",\"fields\":{\"email\":\"\",\"phone\":\"555\"}}",
     FORM_BAD("field \"fields.email\" must not be empty")},
    {"form: email number", FORM ",\"fields\":{\"email\":5}}",
     FORM_BAD("field \"fields.email\" must be a string")},
    {"form: email 321 bytes", FORM ",\"fields\":{\"email\":\"<FILL>\"}}", .nfill = 321,
     FORM_BAD("field \"fields.email\" is longer than 320 bytes")},
    {"form: phone empty", FORM ",\"fields\":{\"phone\":\"\"}}",
     FORM_BAD("field \"fields.phone\" must not be empty")},
    {"form: phone 65 bytes", FORM ",\"fields\":{\"phone\":\"<FILL>\"}}", .nfill = 65,
     FORM_BAD("field \"fields.phone\" is longer than 64 bytes")},
    {"form: name 257 bytes", FORM ",\"fields\":{\"email\":\"a@b\",\"name\":\"<FILL>\"}}",
     .nfill = 257, FORM_BAD("field \"fields.name\" is longer than 256 bytes")},
    {"form: message array", FORM ",\"fields\":{\"email\":\"a@b\",\"message\":[]}}",
     FORM_BAD("field \"fields.message\" must be a string")},
    {"form: submitted_at number", FORM ",\"fields\":{\"email\":\"a@b\"},\"submitted_at\":1}",
     FORM_BAD("field \"submitted_at\" must be a string")},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_route_table)
{
    const struct route_case *c = &cases[_i];
    struct message_meta meta = {
        .topic = "crm.inbound", .partition = 3, .offset = 42, .timestamp_ms = -1};
    struct fixture f;
    struct route_result res;
    char *built = NULL;
    const char *value = c->value;
    size_t len = c->len;

    if (c->build != NULL)
        value = built = c->build();
    else if (c->nfill != 0)
        value = built = fill(c->value, c->fill_unit ? c->fill_unit : "x", c->nfill);
    if (value != NULL && len == 0)
        len = strlen(value);

    make_router(&f, c->max_bytes, c->max_depth,
                c->skip_unknown ? UNKNOWN_TYPE_SKIP : UNKNOWN_TYPE_DEAD_LETTER);
    const struct handler_stats *stats = handlers_stats(f.handlers);
    test_ok_calls = 0;
    expected_meta = &meta;
    route_exact(&f, value, len, &meta, &res);

    ck_assert_msg(res.outcome == c->outcome, "%s: outcome %s, want %s", c->name,
                  router_outcome_name(res.outcome), router_outcome_name(c->outcome));
    ck_assert_msg(res.error_class == c->cls, "%s: class %s, want %s", c->name,
                  router_class_name(res.error_class), router_class_name(c->cls));
    ck_assert_msg(strcmp(res.type, c->type) == 0, "%s: type \"%s\", want \"%s\"", c->name, res.type,
                  c->type);
    ck_assert_msg(strcmp(res.reason, c->reason) == 0, "%s: reason \"%s\", want \"%s\"", c->name,
                  res.reason, c->reason);
    ck_assert_msg(stats->email == (c->counted == 'e'), "%s: email count %ju", c->name,
                  (uintmax_t)stats->email);
    ck_assert_msg(stats->whatsapp == (c->counted == 'w'), "%s: whatsapp count %ju", c->name,
                  (uintmax_t)stats->whatsapp);
    ck_assert_msg(stats->form == (c->counted == 'f'), "%s: form count %ju", c->name,
                  (uintmax_t)stats->form);
    ck_assert_msg(test_ok_calls == (c->counted == 't'), "%s: test_ok calls %u", c->name,
                  test_ok_calls);
    /* A handled message made a ticket and a response (and maybe a link); a failed one, nothing. */
    unsigned want = c->counted == 'e' || c->counted == 'w' || c->counted == 'f' ? 2 : 0;
    if (c->linked)
        want++;
    ck_assert_msg(stats->links == c->linked, "%s: links count %ju", c->name,
                  (uintmax_t)stats->links);
    ck_assert_msg(f.capture.emitted == want, "%s: %u outputs, want %u", c->name, f.capture.emitted,
                  want);

    free(built);
    fixture_free(&f);
}
END_TEST

/*
 * Every prefix of a good message is a bad one, and the router must say so
 * without reading past the prefix (each is its own exact-size buffer).
 */
START_TEST(test_prefixes)
{
    static const char *const messages[] = {
        EMAIL ",\"subject\":\"Ünïcode 😀 \\\"q\\\" \\u00e9\\ud83d\\ude00\",\"n\":[1,-2.5e3,true,"
              "false,null,{}]}",
        FORM ",\"fields\":{\"email\":\"a@b.example\",\"phone\":\"+1 555 010 0123\"}}",
    };
    struct fixture f;
    struct route_result res;

    make_router(&f, 0, 0, UNKNOWN_TYPE_DEAD_LETTER);

    expected_meta = NULL;
    for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++) {
        size_t len = strlen(messages[m]);

        for (size_t n = 0; n < len; n++) {
            route_exact(&f, messages[m], n, NULL, &res);
            ck_assert_msg(res.outcome == OUTCOME_PERMANENT && res.error_class == ERROR_PARSE,
                          "prefix %zu of message %zu: %s %s \"%s\"", n, m,
                          router_outcome_name(res.outcome), router_class_name(res.error_class),
                          res.reason);
        }
        route_exact(&f, messages[m], len, NULL, &res);
        ck_assert_msg(res.outcome == OUTCOME_OK, "message %zu: %s", m, res.reason);
    }
    ck_assert_uint_eq(handlers_stats(f.handlers)->email, 1);
    ck_assert_uint_eq(handlers_stats(f.handlers)->form, 1);
    ck_assert_uint_eq(handlers_stats(f.handlers)->links, 1);
    ck_assert_uint_eq(f.capture.emitted, 5);
    fixture_free(&f);
}
END_TEST

/*
 * The scan skips plain string text eight bytes at a time: a bad byte, a
 * quote or a backslash at any position of a long string must still be seen
 * there, and reported at its exact offset.
 */
START_TEST(test_scan_every_position)
{
    static const struct {
        const char *bytes;  /* put at the position */
        const char *reason; /* %zu: the byte offset expected, or NULL when fine */
    } spots[] = {
        {"\x01", "control character in string at byte %zu"},
        {"\x1f", "control character in string at byte %zu"},
        {"\x80", "invalid UTF-8 at byte %zu"},
        {"\xc3", "invalid UTF-8 at byte %zu"},
        {"\xff", "invalid UTF-8 at byte %zu"},
        {"\\u0000", "\\u0000 in string at byte %zu"},
        {"\\\"", NULL},
        {"\xc3\xa9", NULL},
        {"\x7f", NULL},
    };
    static const char head[] = TOK ",\"text\":\"";
    struct fixture f;
    struct route_result res;
    char value[128], want[64];

    make_router(&f, 0, 0, UNKNOWN_TYPE_DEAD_LETTER);
    expected_meta = NULL;
    for (size_t c = 0; c < sizeof(spots) / sizeof(spots[0]); c++) {
        for (size_t at = 0; at < 24; at++) {
            int n = snprintf(value, sizeof(value), "%s%.*s%s%.*s\"}", head, (int)at, X63,
                             spots[c].bytes, (int)(23 - at), X63);

            ck_assert_int_gt(n, 0);
            router_route(f.router, value, (size_t)n, NULL, &f.capture.emitter, &res);
            if (spots[c].reason == NULL) {
                ck_assert_msg(res.outcome == OUTCOME_OK, "case %zu at %zu: %s", c, at, res.reason);
                continue;
            }
            snprintf(want, sizeof(want), spots[c].reason, strlen(head) + at);
            ck_assert_int_eq(res.outcome, OUTCOME_PERMANENT);
            ck_assert_str_eq(res.reason, want);
        }
    }
    /* A string that ends exactly at a word boundary, and a quote there, close as they should. */
    for (size_t at = 0; at < 24; at++) {
        int n = snprintf(value, sizeof(value), "%s%.*s\",\"y\":\"%.*s\"}", head, (int)at, X63,
                         (int)(23 - at), X63);

        router_route(f.router, value, (size_t)n, NULL, &f.capture.emitter, &res);
        ck_assert_msg(res.outcome == OUTCOME_OK, "split at %zu: %s", at, res.reason);
    }
    fixture_free(&f);
}
END_TEST

/*
 * Trees are parsed into an arena that is emptied after each message: one
 * far larger than its block (overflow blocks, then a grown block), a second
 * one that now fits, a small one, and a large one that fails half-way, must
 * each come out as if every node had its own allocation.
 */
START_TEST(test_large_trees_in_turn)
{
    char *big = members(10000, "message_type\":\"test_ok\",\"end");
    char *big_dup = members(10000, "k9990");
    struct fixture f;
    struct route_result res;

    make_router(&f, 0, 0, UNKNOWN_TYPE_DEAD_LETTER);
    expected_meta = NULL;
    test_ok_calls = 0;
    for (int round = 0; round < 2; round++) {
        router_route(f.router, big, strlen(big), NULL, &f.capture.emitter, &res);
        ck_assert_msg(res.outcome == OUTCOME_OK, "round %d: %s", round, res.reason);
        router_route(f.router, TOK "}", strlen(TOK "}"), NULL, &f.capture.emitter, &res);
        ck_assert_int_eq(res.outcome, OUTCOME_OK);
        router_route(f.router, big_dup, strlen(big_dup), NULL, &f.capture.emitter, &res);
        ck_assert_int_eq(res.outcome, OUTCOME_PERMANENT);
        ck_assert_str_eq(res.reason, "duplicate key \"k9990\"");
        /* Cut short: cJSON gives up inside the tree and frees what it built. */
        router_route(f.router, big, strlen(big) / 2, NULL, &f.capture.emitter, &res);
        ck_assert_int_eq(res.outcome, OUTCOME_PERMANENT);
        ck_assert_int_eq(res.error_class, ERROR_PARSE);
    }
    ck_assert_uint_eq(test_ok_calls, 4);
    fixture_free(&f);
    free(big);
    free(big_dup);
}
END_TEST

/* Bytes after len must never be looked at, whatever they would mean. */
START_TEST(test_reads_only_len_bytes)
{
    static const char buf[] = TOK "}" TOK ",\"x\":1}";
    struct fixture f;
    struct route_result res;

    make_router(&f, 0, 0, UNKNOWN_TYPE_DEAD_LETTER);
    expected_meta = NULL;
    test_ok_calls = 0;
    router_route(f.router, buf, strlen(TOK "}"), NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_OK);
    ck_assert_uint_eq(test_ok_calls, 1);

    router_route(f.router, buf, strlen(TOK), NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_PERMANENT);
    ck_assert_str_eq(res.reason, "invalid JSON near byte 24");
    fixture_free(&f);
}
END_TEST

START_TEST(test_router_add)
{
    struct router_limits limits = {.max_message_bytes = 1024, .max_nesting_depth = 8};
    struct router *r = router_new(&limits);
    struct fixture f;
    struct route_result res;
    char type[32];

    handlers_setup(&f);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(router_add(r, "test_ok", test_ok, &test_ok_calls), 0);
    ck_assert_int_eq(router_add(r, "test_ok", test_transient, NULL), -EEXIST);
    ck_assert_int_eq(router_add(r, "", test_ok, NULL), -EINVAL);
    ck_assert_int_eq(router_add(r, NULL, test_ok, NULL), -EINVAL);
    ck_assert_int_eq(router_add(r, "x", NULL, NULL), -EINVAL);
    ck_assert_int_eq(handlers_register(f.handlers, r), 0);
    ck_assert_int_eq(handlers_register(f.handlers, r), -EEXIST);
    ck_assert_int_eq(handlers_register(NULL, r), -EINVAL);
    ck_assert_int_eq(handlers_register(f.handlers, NULL), -EINVAL);

    /* Many types, and the type string is the router's own copy. */
    for (int i = 0; i < 100; i++) {
        snprintf(type, sizeof(type), "t%d", i);
        ck_assert_int_eq(router_add(r, type, test_transient, NULL), 0);
    }
    router_route(r, "{\"type\":\"t0\"}", 13, NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_TRANSIENT);
    ck_assert_str_eq(res.type, "t0");
    router_route(r, "{\"type\":\"t99\"}", 14, NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_TRANSIENT);
    ck_assert_str_eq(res.type, "t99");
    router_route(r, "{\"type\":\"t100\"}", 15, NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_PERMANENT);
    ck_assert_int_eq(res.error_class, ERROR_UNKNOWN_TYPE);

    test_ok_calls = 0;
    expected_meta = NULL;
    expected_out = &f.capture.emitter;
    router_route(r, TOK "}", strlen(TOK "}"), NULL, &f.capture.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_OK);
    ck_assert_uint_eq(test_ok_calls, 1);

    ck_assert_ptr_null(router_free(r));
    ck_assert_ptr_null(router_free(NULL));
    ck_assert_uint_eq(f.capture.emitted, 0);
    ck_assert_ptr_null(handlers_free(NULL));
    fixture_free(&f);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(router_class_name(ERROR_NONE), "none");
    ck_assert_str_eq(router_class_name(ERROR_PARSE), "parse");
    ck_assert_str_eq(router_class_name(ERROR_SCHEMA), "schema");
    ck_assert_str_eq(router_class_name(ERROR_IDENTITY), "identity");
    ck_assert_str_eq(router_class_name(ERROR_UNKNOWN_TYPE), "unknown_type");
    ck_assert_str_eq(router_class_name(ERROR_OVERSIZE), "oversize");
    ck_assert_str_eq(router_class_name(ERROR_TRANSIENT), "transient");
    ck_assert_str_eq(router_outcome_name(OUTCOME_OK), "ok");
    ck_assert_str_eq(router_outcome_name(OUTCOME_SKIPPED), "skipped");
    ck_assert_str_eq(router_outcome_name(OUTCOME_PERMANENT), "permanent");
    ck_assert_str_eq(router_outcome_name(OUTCOME_TRANSIENT), "transient");
}
END_TEST

START_TEST(test_result_fail)
{
    struct route_result res = {.type = "keep"};
    char *long_e = fill("<FILL>", "é", 200);

    ck_assert_int_eq(router_fail(&res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "n=%d %s", 7, "z"),
                     OUTCOME_TRANSIENT);
    ck_assert_int_eq(res.outcome, OUTCOME_TRANSIENT);
    ck_assert_int_eq(res.error_class, ERROR_TRANSIENT);
    ck_assert_str_eq(res.reason, "n=7 z");
    ck_assert_str_eq(res.type, "keep");

    /* Cut to fit, NUL-terminated, and not in the middle of a character. */
    ck_assert_int_eq(router_fail(&res, OUTCOME_PERMANENT, ERROR_SCHEMA, "%s", long_e),
                     OUTCOME_PERMANENT);
    ck_assert_uint_eq(strlen(res.reason), 254);
    ck_assert_int_eq(strncmp(res.reason, long_e, 254), 0);

    char *long_x = fill("a<FILL>", "x", 300);
    router_fail(&res, OUTCOME_PERMANENT, ERROR_SCHEMA, "%s", long_x);
    ck_assert_uint_eq(strlen(res.reason), sizeof(res.reason) - 1);
    free(long_x);
    free(long_e);
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("route");

    tcase_add_loop_test(tc, test_route_table, 0, (int)NCASES);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_reads_only_len_bytes);
    tcase_add_test(tc, test_scan_every_position);
    tcase_add_test(tc, test_large_trees_in_turn);
    tcase_add_test(tc, test_router_add);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_result_fail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
