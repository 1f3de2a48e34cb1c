/* SPDX-License-Identifier: MIT */
/* check_handlers.c -- golden tests of the built-in handlers' outputs, and of jsonbuf. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handlers/handlers.h"
#include "identity.h"
#include "jsonbuf.h"
#include "router.h"

/*
 * The pinned clock, 2026-11-28 12:00:00.123 UTC: 1795867200 s is 20785 days
 * (1970-01-01 to 2026-11-28) of 86400 s plus 12 h.
 */
#define CLOCK_MS INT64_C(1795867200123)
#define CREATED  "\"created_at\":\"2026-11-28T12:00:00.123Z\""

/* The "source" member and the closing brace of every output from crm.inbound [3] @ 42. */
#define SOURCE(id)                                                                                 \
    ",\"source\":{\"topic\":\"crm.inbound\",\"partition\":3,\"offset\":42,\"message_id\":\"" id    \
    "\"}}"

/*
 * The ids below were computed outside C, with FNV-1a 64 in Python, from
 * the strings in the comments; they must never change (downstream joins on
 * them).
 */
#define CUS_ANN  "cus_aa2a12dd1e26d18b" /* email:ann.lee@example.com */
#define TKT_M1   "tkt_29e57ea4bf352aad" /* email:<m-1@mail.example> */
#define CUS_BOB  "cus_4170b28f55c42864" /* email:bob@example.org */
#define TKT_M2   "tkt_85cb16c586f06901" /* email:m-2 */
#define TKT_M7   "tkt_85cb19c586f06e1a" /* email:m-7 */
#define CUS_UK   "cus_1deafe51553555a8" /* phone:+442079460000 */
#define TKT_W1   "tkt_8cce403dd0f08dee" /* whatsapp:wamid.1 */
#define TKT_W8   "tkt_8cce393dd0f08209" /* whatsapp:wamid.8 */
#define CUS_US   "cus_14b789b1840311b1" /* phone:+15550100123 */
#define TKT_W2   "tkt_8cce3f3dd0f08c3b" /* whatsapp:wamid.2 */
#define CUS_DE   "cus_32aa934166fa3470" /* phone:+4915112345678 */
#define TKT_S2   "tkt_92971d46628fb5a0" /* form:sub-2 */
#define CUS_CARA "cus_0787dc8144634cfd" /* email:cara@example.net */
#define CUS_P199 "cus_14a67fb183f48d80" /* phone:+15550100199 */
#define TKT_S1   "tkt_92972046628fbab9" /* form:sub-1 */
#define TKT_W3   "tkt_8cce3e3dd0f08a88" /* whatsapp:wamid.3 */
#define TKT_S3   "tkt_92971e46628fb753" /* form:sub-3 */
#define CUS_DAVE "cus_0383645262939bc6" /* email:dave@example.net */
#define TKT_S4   "tkt_92972346628fbfd2" /* form:sub-4 */
#define TKT_W4   "tkt_8cce453dd0f0966d" /* whatsapp:wamid.4 */
#define CUS_OB   "cus_424353af2692c5fb" /* email:o"brien\x@example.com */
#define TKT_M3   "tkt_960c7fa4765093fb" /* email:m"3\ */
#define CUS_JP   "cus_888a34d1f0563a2e" /* phone:+819012345678 */
#define TKT_W5   "tkt_7addd681869f1e9f" /* whatsapp:w"5\ */
#define CUS_JO   "cus_68322b27d266b5cd" /* email:j"o@example.com */
#define TKT_S6   "tkt_c2137ccf15d9ec88" /* form:s"6\ */
#define CUS_EVE  "cus_63b36dd52b803a2e" /* email:eve@example.com */
#define TKT_S9   "tkt_92972846628fc851" /* form:sub-9 */
#define CUS_P177 "cus_14c87db184117080" /* phone:+15550100177 */

#define MAX_OUTPUTS 4

/* One record the handlers queued. */
struct output {
    enum output_topic topic;
    char *key;
    char *value;
    int64_t timestamp_ms;
};

/*
 * An emitter that keeps copies of what it is given, and can refuse the
 * fail_at-th call (1-based) with fail_rc, as a full producer queue would,
 * and any value longer than max_len (when not 0) with -EMSGSIZE, as the
 * producer does one larger than message.max.bytes.
 */
struct capture {
    struct emitter emitter; /* first, so that the emitter's address is the capture's */
    struct output outputs[MAX_OUTPUTS];
    size_t n;
    size_t calls;
    size_t fail_at;
    int fail_rc;
    size_t max_len;
};

/* A malloc'd, NUL-terminated copy of len bytes, which must hold no NUL themselves. */
static char *copy_text(const void *data, size_t len)
{
    char *s = malloc(len + 1);

    ck_assert_ptr_nonnull(s);
    memcpy(s, data, len);
    s[len] = '\0';
    ck_assert_uint_eq(strlen(s), len);
    return s;
}

static int capture_emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                        const void *value, size_t len, int64_t timestamp_ms)
{
    struct capture *c = (struct capture *)e;

    if (++c->calls == c->fail_at)
        return c->fail_rc;
    if (c->max_len != 0 && len > c->max_len)
        return -EMSGSIZE;
    ck_assert_uint_lt(c->n, MAX_OUTPUTS);
    c->outputs[c->n++] = (struct output){
        .topic = topic,
        .key = copy_text(key, key_len),
        .value = copy_text(value, len),
        .timestamp_ms = timestamp_ms,
    };
    return 0;
}

static void capture_clear(struct capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->outputs[i].key);
        free(c->outputs[i].value);
    }
    *c = (struct capture){.emitter = {.emit = capture_emit}};
}

static int64_t fixed_clock(void)
{
    return CLOCK_MS;
}

/* The customer a phone is linked to, or "" (one buffer: read it before the next call). */
static const char *link_of(struct links *l, const char *phone)
{
    static char id[IDENTITY_ID_LEN + 1];

    if (links_get(l, phone, id, sizeof(id)) != 1)
        id[0] = '\0';
    return id;
}

/* The real path: default settings, a links table, handlers_register on a router. */
struct fixture {
    struct config *cfg;
    struct links *links;
    struct handlers *handlers;
    struct router *router;
    struct capture capture;
    struct route_result res;
};

static void setup(struct fixture *f)
{
    *f = (struct fixture){0};
    f->cfg = config_new_defaults();
    ck_assert_ptr_nonnull(f->cfg);
    f->links = links_new(NULL);
    ck_assert_ptr_nonnull(f->links);
    f->handlers = handlers_new(f->cfg, f->links, fixed_clock);
    ck_assert_ptr_nonnull(f->handlers);

    struct router_limits limits = {
        .max_message_bytes = (size_t)f->cfg->processing.max_message_bytes,
        .max_nesting_depth = f->cfg->processing.max_nesting_depth,
        .unknown_type = f->cfg->processing.unknown_type,
    };
    f->router = router_new(&limits);
    ck_assert_ptr_nonnull(f->router);
    ck_assert_int_eq(handlers_register(f->handlers, f->router), 0);
    capture_clear(&f->capture);
}

static void teardown(struct fixture *f)
{
    capture_clear(&f->capture);
    f->router = router_free(f->router);
    f->handlers = handlers_free(f->handlers);
    f->links = links_free(f->links);
    f->cfg = config_free(f->cfg);
}

/* Route one value from an exact-size buffer, with fresh captures; returns the outcome. */
static enum outcome route(struct fixture *f, const char *value)
{
    static const struct message_meta meta = {
        .topic = "crm.inbound", .partition = 3, .offset = 42, .timestamp_ms = -1};
    size_t len = strlen(value);
    char *copy = malloc(len);

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, value, len);
    size_t fail_at = f->capture.fail_at;
    int fail_rc = f->capture.fail_rc;
    size_t max_len = f->capture.max_len;
    capture_clear(&f->capture);
    f->capture.fail_at = fail_at;
    f->capture.fail_rc = fail_rc;
    f->capture.max_len = max_len;
    router_route(f->router, copy, len, &meta, &f->capture.emitter, &f->res);
    free(copy);
    return f->res.outcome;
}

/* Replace one of cfg's templates, as a reload would. */
static void set_template(char **slot, const char *text)
{
    free(*slot);
    *slot = strdup(text);
    ck_assert_ptr_nonnull(*slot);
}

struct expected_output {
    enum output_topic topic;
    const char *key;
    const char *value;
};

/* Check the captured outputs against want[0..n), each byte for byte. */
static void expect_outputs(const struct fixture *f, const char *name,
                           const struct expected_output *want, size_t n)
{
    ck_assert_msg(f->res.outcome == OUTCOME_OK, "%s: %s %s \"%s\"", name,
                  router_outcome_name(f->res.outcome), router_class_name(f->res.error_class),
                  f->res.reason);
    ck_assert_msg(f->capture.n == n, "%s: %zu outputs, want %zu", name, f->capture.n, n);
    for (size_t i = 0; i < n; i++) {
        const struct output *got = &f->capture.outputs[i];

        ck_assert_msg(got->topic == want[i].topic, "%s: output %zu topic %d, want %d", name, i,
                      got->topic, want[i].topic);
        ck_assert_str_eq(got->key, want[i].key);
        ck_assert_str_eq(got->value, want[i].value);
    }
}

struct golden_case {
    const char *name;
    const char *input;
    char counted; /* 'e', 'w' or 'f': which counter rises */
    size_t n;
    struct expected_output outputs[3];
};

static const struct golden_case golden_cases[] = {
    {"email with every field",
     "{\"message_type\":\"email_received\",\"message_id\":\"<m-1@mail.example>\",\"from\":\"  "
     "Ann.Lee@Example.COM \",\"to\":\"help@crm.example\",\"subject\":\"Order #42\",\"body\":"
     "\"Where is my order?\",\"name\":\"Ann Lee\",\"received_at\":\"2026-11-28T11:59:00Z\"}",
     'e',
     2,
     {{OUTPUT_TICKETS, CUS_ANN,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"tkt_29e57ea4bf352aad\",\"customer_id\":"
       "\"cus_aa2a12dd1e26d18b\",\"channel\":\"email\",\"subject\":\"Order #42\",\"body\":\"Where "
       "is my order?\",\"contact\":{\"name\":\"Ann Lee\",\"email\":\"ann.lee@example.com\","
       "\"phone\":null},\"received_at\":\"2026-11-28T11:59:00Z\",\"created_at\":\"2026-11-28T12:"
       "00:00.123Z\",\"source\":{\"topic\":\"crm.inbound\",\"partition\":3,\"offset\":42,"
       "\"message_id\":\"<m-1@mail.example>\"}}"},
      {OUTPUT_RESPONSES, CUS_ANN,
       "{\"event\":\"response.requested\",\"ticket_id\":\"tkt_29e57ea4bf352aad\",\"customer_id\":"
       "\"cus_aa2a12dd1e26d18b\",\"channel\":\"email\",\"to\":\"ann.lee@example.com\",\"text\":"
       "\"Hello Ann Lee, we received \\\"Order #42\\\". Your ticket is tkt_29e57ea4bf352aad.\","
       "\"source\":{\"topic\":\"crm.inbound\",\"partition\":3,\"offset\":42,\"message_id\":\"<m-"
       "1@mail.example>\"}}"}}},
    {"email with only the required fields",
     "{\"type\":\"email_received\",\"message_id\":\"m-2\",\"from\":\"bob@example.org\"}",
     'e',
     2,
     {{OUTPUT_TICKETS, CUS_BOB,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_M2 "\",\"customer_id\":\"" CUS_BOB
       "\",\"channel\":\"email\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
       "\"email\":\"bob@example.org\",\"phone\":null},\"received_at\":null," CREATED SOURCE("m-2")},
      {OUTPUT_RESPONSES, CUS_BOB,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_M2 "\",\"customer_id\":\"" CUS_BOB
       "\",\"channel\":\"email\",\"to\":\"bob@example.org\",\"text\":\"Hello there, we received "
       "\\\"(no subject)\\\". Your ticket is " TKT_M2 ".\"" SOURCE("m-2")}}},
    {"email with empty name and subject, null body",
     "{\"type\":\"email_received\",\"message_id\":\"m-7\",\"from\":\"bob@example.org\","
     "\"subject\":\"\",\"name\":\"\",\"body\":null}",
     'e',
     2,
     {{OUTPUT_TICKETS, CUS_BOB,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_M7 "\",\"customer_id\":\"" CUS_BOB
       "\",\"channel\":\"email\",\"subject\":\"\",\"body\":null,\"contact\":{\"name\":\"\","
       "\"email\":\"bob@example.org\",\"phone\":null},\"received_at\":null," CREATED SOURCE("m-7")},
      {OUTPUT_RESPONSES, CUS_BOB,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_M7 "\",\"customer_id\":\"" CUS_BOB
       "\",\"channel\":\"email\",\"to\":\"bob@example.org\",\"text\":\"Hello there, we received "
       "\\\"(no subject)\\\". Your ticket is " TKT_M7 ".\"" SOURCE("m-7")}}},
    {"whatsapp with a numeric timestamp",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.1\",\"from\":\"+44 20 7946 0000\","
     "\"text\":\"Hi\",\"profile_name\":\"Zoë\",\"timestamp\":1795867100}",
     'w',
     2,
     {{OUTPUT_TICKETS, CUS_UK,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_W1 "\",\"customer_id\":\"" CUS_UK
       "\",\"channel\":\"whatsapp\",\"subject\":null,\"body\":\"Hi\",\"contact\":{\"name\":"
       "\"Zoë\",\"email\":null,\"phone\":\"+442079460000\"},\"received_at\":1795867100," CREATED
           SOURCE("wamid.1")},
      {OUTPUT_RESPONSES, CUS_UK,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W1 "\",\"customer_id\":\"" CUS_UK
       "\",\"channel\":\"whatsapp\",\"to\":\"+442079460000\",\"text\":\"Hi Zoë, thanks for your "
       "message. Your ticket is " TKT_W1 ".\"" SOURCE("wamid.1")}}},
    {"whatsapp with a fractional timestamp",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.8\",\"from\":\"+442079460000\","
     "\"timestamp\":1795867100.25}",
     'w',
     2,
     {{OUTPUT_TICKETS, CUS_UK,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_W8 "\",\"customer_id\":\"" CUS_UK
       "\",\"channel\":\"whatsapp\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
       "\"email\":null,\"phone\":\"+442079460000\"},\"received_at\":1795867100.25," CREATED SOURCE(
           "wamid.8")},
      {OUTPUT_RESPONSES, CUS_UK,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W8 "\",\"customer_id\":\"" CUS_UK
       "\",\"channel\":\"whatsapp\",\"to\":\"+442079460000\",\"text\":\"Hi there, thanks for your "
       "message. Your ticket is " TKT_W8 ".\"" SOURCE("wamid.8")}}},
    {"whatsapp with a string timestamp and a national number",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.2\",\"from\":\"(555) 010-0123\","
     "\"timestamp\":\"1795867100\"}",
     'w',
     2,
     {{OUTPUT_TICKETS, CUS_US,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_W2 "\",\"customer_id\":\"" CUS_US
       "\",\"channel\":\"whatsapp\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
       "\"email\":null,\"phone\":\"+15550100123\"},\"received_at\":\"1795867100\"," CREATED SOURCE(
           "wamid.2")},
      {OUTPUT_RESPONSES, CUS_US,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W2 "\",\"customer_id\":\"" CUS_US
       "\",\"channel\":\"whatsapp\",\"to\":\"+15550100123\",\"text\":\"Hi there, thanks for your "
       "message. Your ticket is " TKT_W2 ".\"" SOURCE("wamid.2")}}},
    {"form with a phone only",
     "{\"type\":\"form_submitted\",\"form_id\":\"contact\",\"submission_id\":\"sub-2\","
     "\"fields\":{\"phone\":\"+49 151 1234 5678\",\"extra\":[1]}}",
     'f',
     2,
     {{OUTPUT_TICKETS, CUS_DE,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_S2 "\",\"customer_id\":\"" CUS_DE
       "\",\"channel\":\"form\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
       "\"email\":null,\"phone\":\"+4915112345678\"},\"received_at\":null," CREATED SOURCE(
           "sub-2")},
      {OUTPUT_RESPONSES, CUS_DE,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S2 "\",\"customer_id\":\"" CUS_DE
       "\",\"channel\":\"form\",\"to\":\"+4915112345678\",\"text\":\"Hello there, thank you for "
       "contacting us. Your ticket is " TKT_S2 ".\"" SOURCE("sub-2")}}},

    /*
     * Escaping: quotes, backslashes, \b \f \n \r \t, other controls as
     * \u00xx in lower case, '/' and DEL and UTF-8 as they are; in every
     * string member and in the rendered template. The addresses' local
     * parts hold a quote and a backslash, which identity_email allows.
     */
    {"email escaping",
     "{\"type\":\"email_received\",\"message_id\":\"m\\\"3\\\\\",\"from\":\"O\\\"Brien\\\\x@"
     "Example.com\",\"subject\":\"Re: \\\"quote\\\" \\\\ back\\nnext\\u0001\\u001F\\b\\f\\r\\t/ "
     "😀\",\"body\":\"Line1\\r\\nLine2\\t\\\"x\\\"\\\\\",\"name\":\"José 日本 \\\"JJ\\\"\\n\","
     "\"received_at\":\"t\\\"1\\\\\"}",
     'e',
     2,
     {{OUTPUT_TICKETS, CUS_OB,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_M3 "\",\"customer_id\":\"" CUS_OB
       "\",\"channel\":\"email\",\"subject\":\"Re: \\\"quote\\\" \\\\ back\\nnext\\u0001\\u001f"
       "\\b\\f\\r\\t/ 😀\",\"body\":\"Line1\\r\\nLine2\\t\\\"x\\\"\\\\\",\"contact\":{\"name\":"
       "\"José 日本 \\\"JJ\\\"\\n\",\"email\":\"o\\\"brien\\\\x@example.com\",\"phone\":null},"
       "\"received_at\":\"t\\\"1\\\\\"," CREATED SOURCE("m\\\"3\\\\")},
      {OUTPUT_RESPONSES, CUS_OB,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_M3 "\",\"customer_id\":\"" CUS_OB
       "\",\"channel\":\"email\",\"to\":\"o\\\"brien\\\\x@example.com\",\"text\":\"Hello José "
       "日本 \\\"JJ\\\"\\n, we received \\\"Re: \\\"quote\\\" \\\\ back\\nnext\\u0001\\u001f\\b"
       "\\f\\r\\t/ 😀\\\". Your ticket is " TKT_M3 ".\"" SOURCE("m\\\"3\\\\")}}},
    {"whatsapp escaping",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\\\"5\\\\\",\"from\":\"+81 90-1234-5678\","
     "\"text\":\"hi\\n\\\"there\\\"\\\\ \\u001b[0m\",\"profile_name\":\"Zoë \\\"Z\\\" \\\\ "
     "日本\\u007f\",\"timestamp\":\"17\\\"95\"}",
     'w',
     2,
     {{OUTPUT_TICKETS, CUS_JP,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_W5 "\",\"customer_id\":\"" CUS_JP
       "\",\"channel\":\"whatsapp\",\"subject\":null,\"body\":\"hi\\n\\\"there\\\"\\\\ \\u001b"
       "[0m\",\"contact\":{\"name\":\"Zoë \\\"Z\\\" \\\\ 日本\x7f"
       "\",\"email\":null,\"phone\":\"+819012345678\"},\"received_at\":\"17\\\"95\"," CREATED
           SOURCE("w\\\"5\\\\")},
      {OUTPUT_RESPONSES, CUS_JP,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W5 "\",\"customer_id\":\"" CUS_JP
       "\",\"channel\":\"whatsapp\",\"to\":\"+819012345678\",\"text\":\"Hi Zoë \\\"Z\\\" \\\\ "
       "日本\x7f"
       ", thanks for your message. Your ticket is " TKT_W5 ".\"" SOURCE("w\\\"5\\\\")}}},
    {"form escaping",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s\\\"6\\\\\",\"fields\":"
     "{\"email\":\"J\\\"o@Example.com\",\"phone\":\"+33 6 12 34 56 78\",\"name\":\"José\\t\\\"J\\\""
     "\",\"message\":\"<b>\\\"x\\\"</b>\\\\n\\u0002\"},\"submitted_at\":\"\\\"now\\\"\"}",
     'f',
     3,
     {{OUTPUT_TICKETS, CUS_JO,
       "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_S6 "\",\"customer_id\":\"" CUS_JO
       "\",\"channel\":\"form\",\"subject\":null,\"body\":\"<b>\\\"x\\\"</b>\\\\n\\u0002\","
       "\"contact\":{\"name\":\"José\\t\\\"J\\\"\",\"email\":\"j\\\"o@example.com\",\"phone\":"
       "\"+33612345678\"},\"received_at\":\"\\\"now\\\"\"," CREATED SOURCE("s\\\"6\\\\")},
      {OUTPUT_RESPONSES, CUS_JO,
       "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S6 "\",\"customer_id\":\"" CUS_JO
       "\",\"channel\":\"form\",\"to\":\"j\\\"o@example.com\",\"text\":\"Hello José\\t\\\"J\\\", "
       "thank you for contacting us. Your ticket is " TKT_S6 ".\"" SOURCE("s\\\"6\\\\")},
      {OUTPUT_IDENTITIES, "+33612345678",
       "{\"event\":\"identity.linked\",\"customer_id\":\"" CUS_JO "\",\"email\":\"j\\\"o@example."
       "com\",\"phone\":\"+33612345678\"" SOURCE("s\\\"6\\\\")}}},
};

#define NGOLDEN (sizeof(golden_cases) / sizeof(golden_cases[0]))

START_TEST(test_golden)
{
    const struct golden_case *c = &golden_cases[_i];
    struct fixture f;

    setup(&f);
    route(&f, c->input);
    expect_outputs(&f, c->name, c->outputs, c->n);

    const struct handler_stats *stats = handlers_stats(f.handlers);
    ck_assert_uint_eq(stats->email, c->counted == 'e');
    ck_assert_uint_eq(stats->whatsapp, c->counted == 'w');
    ck_assert_uint_eq(stats->form, c->counted == 'f');
    ck_assert_uint_eq(stats->links, c->n == 3);
    ck_assert_uint_eq(links_pending(f.links), c->n == 3);

    /* The same message again gives the same ticket: the ids make re-processing idempotent. */
    char *first = strdup(f.capture.outputs[0].value);
    route(&f, c->input);
    ck_assert_str_eq(f.capture.outputs[0].value, first);
    free(first);
    teardown(&f);
}
END_TEST

#define FORM_CARA                                                                                  \
    "{\"message_type\":\"form_submitted\",\"form_id\":\"contact\",\"submission_id\":\"sub-1\","    \
    "\"fields\":{\"email\":\"Cara@Example.net\",\"phone\":\"1 (555) 010-0199\",\"name\":\"Cara\"," \
    "\"message\":\"Call me\"},\"submitted_at\":\"2026-11-28T11:58:00Z\"}"

/*
 * A form with an e-mail address and a number links them: three outputs.
 * The same form again announces the link again (an at-least-once repeat of
 * the same event, so a retried message never loses it). Later messages
 * from the number, on any channel, belong to the address's customer; a form
 * tying the number to another address moves the link and announces it.
 */
START_TEST(test_links)
{
    static const struct expected_output cara[] = {
        {OUTPUT_TICKETS, CUS_CARA,
         "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_S1 "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"form\",\"subject\":null,\"body\":\"Call me\",\"contact\":{\"name\":"
         "\"Cara\",\"email\":\"cara@example.net\",\"phone\":\"+15550100199\"},\"received_at\":"
         "\"2026-11-28T11:58:00Z\"," CREATED SOURCE("sub-1")},
        {OUTPUT_RESPONSES, CUS_CARA,
         "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S1
         "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"form\",\"to\":\"cara@example.net\",\"text\":\"Hello Cara, thank you for "
         "contacting us. Your ticket is " TKT_S1 ".\"" SOURCE("sub-1")},
        {OUTPUT_IDENTITIES, "+15550100199",
         "{\"event\":\"identity.linked\",\"customer_id\":\"" CUS_CARA "\",\"email\":\"cara@example."
         "net\",\"phone\":\"+15550100199\"" SOURCE("sub-1")},
    };
    static const struct expected_output whatsapp[] = {
        {OUTPUT_TICKETS, CUS_CARA,
         "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_W3 "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"whatsapp\",\"subject\":null,\"body\":\"It's me\",\"contact\":{\"name\":"
         "null,\"email\":null,\"phone\":\"+15550100199\"},\"received_at\":null," CREATED SOURCE(
             "wamid.3")},
        {OUTPUT_RESPONSES, CUS_CARA,
         "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W3
         "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"whatsapp\",\"to\":\"+15550100199\",\"text\":\"Hi there, thanks for your "
         "message. Your ticket is " TKT_W3 ".\"" SOURCE("wamid.3")},
    };
    static const struct expected_output phone_form[] = {
        {OUTPUT_TICKETS, CUS_CARA,
         "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_S3 "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"form\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
         "\"email\":null,\"phone\":\"+15550100199\"},\"received_at\":null," CREATED SOURCE(
             "sub-3")},
        {OUTPUT_RESPONSES, CUS_CARA,
         "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S3
         "\",\"customer_id\":\"" CUS_CARA
         "\",\"channel\":\"form\",\"to\":\"+15550100199\",\"text\":\"Hello there, thank you for "
         "contacting us. Your ticket is " TKT_S3 ".\"" SOURCE("sub-3")},
    };
    static const struct expected_output dave[] = {
        {OUTPUT_TICKETS, CUS_DAVE,
         "{\"event\":\"ticket.created\",\"ticket_id\":\"" TKT_S4 "\",\"customer_id\":\"" CUS_DAVE
         "\",\"channel\":\"form\",\"subject\":null,\"body\":null,\"contact\":{\"name\":null,"
         "\"email\":\"dave@example.net\",\"phone\":\"+15550100199\"},\"received_at\":null," CREATED
             SOURCE("sub-4")},
        {OUTPUT_RESPONSES, CUS_DAVE,
         "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S4
         "\",\"customer_id\":\"" CUS_DAVE "\",\"channel\":\"form\",\"to\":\"dave@example.net\","
         "\"text\":\"Hello there, thank you for "
         "contacting us. Your ticket is " TKT_S4 ".\"" SOURCE("sub-4")},
        {OUTPUT_IDENTITIES, "+15550100199",
         "{\"event\":\"identity.linked\",\"customer_id\":\"" CUS_DAVE "\",\"email\":\"dave@example."
         "net\",\"phone\":\"+15550100199\"" SOURCE("sub-4")},
    };
    struct fixture f;

    setup(&f);
    const struct handler_stats *stats = handlers_stats(f.handlers);

    /* Before any form the number is its own customer. */
    ck_assert_int_eq(route(&f, "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.0\","
                               "\"from\":\"+15550100199\"}"),
                     OUTCOME_OK);
    ck_assert_str_eq(f.capture.outputs[0].key, CUS_P199);

    route(&f, FORM_CARA);
    expect_outputs(&f, "first form", cara, 3);
    ck_assert_uint_eq(stats->links, 1);
    ck_assert_str_eq(link_of(f.links, "+15550100199"), CUS_CARA);

    route(&f, FORM_CARA);
    expect_outputs(&f, "same form again", cara, 3);
    ck_assert_uint_eq(stats->links, 2);

    route(&f, "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.3\",\"from\":\"+1 555 010 "
              "0199\",\"text\":\"It's me\"}");
    expect_outputs(&f, "whatsapp from the linked number", whatsapp, 2);

    route(&f, "{\"type\":\"form_submitted\",\"form_id\":\"contact\",\"submission_id\":\"sub-3\","
              "\"fields\":{\"phone\":\"555.010.0199\"}}");
    expect_outputs(&f, "form with the linked number only", phone_form, 2);

    route(&f, "{\"type\":\"form_submitted\",\"form_id\":\"contact\",\"submission_id\":\"sub-4\","
              "\"fields\":{\"email\":\"dave@example.net\",\"phone\":\"+15550100199\"}}");
    expect_outputs(&f, "form moving the link", dave, 3);
    ck_assert_uint_eq(stats->links, 3);

    route(&f, "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.4\",\"from\":"
              "\"+15550100199\"}");
    ck_assert_int_eq(f.res.outcome, OUTCOME_OK);
    ck_assert_str_eq(f.capture.outputs[0].key, CUS_DAVE);
    ck_assert_ptr_nonnull(strstr(f.capture.outputs[0].value, "\"ticket_id\":\"" TKT_W4 "\""));

    ck_assert_uint_eq(stats->email, 0);
    ck_assert_uint_eq(stats->whatsapp, 3);
    ck_assert_uint_eq(stats->form, 4);
    ck_assert_uint_eq(links_pending(f.links), 1);
    teardown(&f);
}
END_TEST

/* With no links at all nothing is remembered, so every such form announces its link. */
START_TEST(test_links_disabled)
{
    struct fixture f;

    setup(&f);
    f.links = links_free(f.links);
    f.handlers = handlers_free(f.handlers);
    f.router = router_free(f.router);
    f.handlers = handlers_new(f.cfg, f.links, fixed_clock);
    struct router_limits limits = {.max_message_bytes = 4096, .max_nesting_depth = 8};
    f.router = router_new(&limits);
    ck_assert_int_eq(handlers_register(f.handlers, f.router), 0);

    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(route(&f, FORM_CARA), OUTCOME_OK);
        ck_assert_uint_eq(f.capture.n, 3);
    }
    ck_assert_uint_eq(handlers_stats(f.handlers)->links, 2);
    route(&f, "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.3\",\"from\":"
              "\"+15550100199\"}");
    ck_assert_str_eq(f.capture.outputs[0].key, CUS_P199);
    teardown(&f);
}
END_TEST

struct error_case {
    const char *name;
    const char *input;
    const char *reason;
};

/* Identifiers that cannot be normalised: dead-lettered at once, nothing emitted. */
static const struct error_case identity_errors[] = {
    {"email without @",
     "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"not-an-address\"}",
     "field \"from\": e-mail address has no \"@\""},
    {"email domain without a dot",
     "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"a@b\"}",
     "field \"from\": e-mail domain has no dot"},
    {"email with a space inside",
     "{\"type\":\"email_received\",\"message_id\":\"m\",\"from\":\"ann lee@example.com\"}",
     "field \"from\": e-mail address contains whitespace or a control character"},
    {"whatsapp number too short",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"12\"}",
     "field \"from\": phone number is too short for its country"},
    {"whatsapp number without its area code",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"555 0123\"}",
     "field \"from\": phone number lacks its area code"},
    {"whatsapp number with letters",
     "{\"type\":\"whatsapp_received\",\"message_id\":\"w\",\"from\":\"+1 555 CALL NOW\"}",
     "field \"from\": phone number has an invalid character"},
    {"form with a bad email",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s\",\"fields\":{"
     "\"email\":\"ann@\",\"phone\":\"+15550100123\"}}",
     "field \"fields.email\": e-mail address has an empty domain"},
    {"form with a good email and a bad phone",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s\",\"fields\":{"
     "\"email\":\"ann@example.com\",\"phone\":\"+0 555 0100 123\"}}",
     "field \"fields.phone\": phone number has no valid country code"},
    {"form with a bad phone only",
     "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s\",\"fields\":{"
     "\"phone\":\"call me\"}}",
     "field \"fields.phone\": phone number has an invalid character"},
};

#define NIDENTITY (sizeof(identity_errors) / sizeof(identity_errors[0]))

START_TEST(test_identity_errors)
{
    const struct error_case *c = &identity_errors[_i];
    struct fixture f;

    setup(&f);
    ck_assert_int_eq(route(&f, c->input), OUTCOME_PERMANENT);
    ck_assert_int_eq(f.res.error_class, ERROR_IDENTITY);
    ck_assert_str_eq(f.res.reason, c->reason);
    ck_assert_uint_eq(f.capture.calls, 0);

    const struct handler_stats *stats = handlers_stats(f.handlers);
    ck_assert_uint_eq(stats->email + stats->whatsapp + stats->form + stats->links, 0);
    ck_assert_uint_eq(links_pending(f.links), 0);
    teardown(&f);
}
END_TEST

/*
 * Spellings of three numbers, several of which used to make second
 * customers: each, from a WhatsApp message and from a form, lands on its
 * number's one customer.
 */
START_TEST(test_one_customer_per_number)
{
    static const struct {
        const char *spelling, *number;
    } spellings[] = {
        {"+44 20 7946 0958", "+442079460958"},      {"+44 (0)20 7946 0958", "+442079460958"},
        {"+44 (0) 20 7946 0958", "+442079460958"},  {"+44 020 7946 0958", "+442079460958"},
        {"0044 20 7946 0958", "+442079460958"},     {"011 44 20 7946 0958", "+442079460958"},
        {"+49 30 1234567", "+49301234567"},         {"+49 (0)30 1234567", "+49301234567"},
        {"+49 (0) 30 / 123 45 67", "+49301234567"}, {"0049 30 1234567", "+49301234567"},
        {"(555) 010-0123", "+15550100123"},         {"1 555 010 0123", "+15550100123"},
        {"+1 555 010 0123", "+15550100123"},
    };
    char value[512], want[IDENTITY_ID_LEN + 1];
    struct fixture f;

    setup(&f);
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        identity_customer_id("phone", spellings[i].number, want);
        snprintf(value, sizeof(value),
                 "{\"type\":\"whatsapp_received\",\"message_id\":\"w%zu\",\"from\":\"%s\"}", i,
                 spellings[i].spelling);
        ck_assert_msg(route(&f, value) == OUTCOME_OK, "%s: %s", spellings[i].spelling,
                      f.res.reason);
        ck_assert_str_eq(f.capture.outputs[0].key, want);
        snprintf(value, sizeof(value),
                 "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"s%zu\","
                 "\"fields\":{\"phone\":\"%s\"}}",
                 i, spellings[i].spelling);
        ck_assert_msg(route(&f, value) == OUTCOME_OK, "%s: %s", spellings[i].spelling,
                      f.res.reason);
        ck_assert_str_eq(f.capture.outputs[0].key, want);
    }
    teardown(&f);
}
END_TEST

/*
 * An output that cannot be queued makes the message TRANSIENT, stops the
 * outputs there, and counts nothing; the retry emits everything again. A
 * form's link is remembered only once all its outputs are queued, so the
 * retry announces it again.
 */
START_TEST(test_emit_failure)
{
    struct fixture f;

    setup(&f);
    const struct handler_stats *stats = handlers_stats(f.handlers);

    f.capture.fail_at = 2;
    f.capture.fail_rc = -ENOBUFS;
    ck_assert_int_eq(route(&f, golden_cases[0].input), OUTCOME_TRANSIENT);
    ck_assert_int_eq(f.res.error_class, ERROR_TRANSIENT);
    ck_assert_str_eq(f.res.reason, "cannot queue output: No buffer space available");
    ck_assert_uint_eq(f.capture.calls, 2);
    ck_assert_uint_eq(f.capture.n, 1);
    ck_assert_int_eq(f.capture.outputs[0].topic, OUTPUT_TICKETS);
    ck_assert_uint_eq(stats->email, 0);

    f.capture.fail_at = 1;
    f.capture.fail_rc = -ENOMEM;
    ck_assert_int_eq(route(&f, golden_cases[0].input), OUTCOME_TRANSIENT);
    ck_assert_str_eq(f.res.reason, "cannot queue output: Cannot allocate memory");
    ck_assert_uint_eq(f.capture.n, 0);

    f.capture.fail_at = 3;
    f.capture.fail_rc = -ENOBUFS;
    ck_assert_int_eq(route(&f, FORM_CARA), OUTCOME_TRANSIENT);
    ck_assert_int_eq(f.res.error_class, ERROR_TRANSIENT);
    ck_assert_str_eq(f.res.reason, "cannot queue output: No buffer space available");
    ck_assert_uint_eq(f.capture.n, 2);
    ck_assert_uint_eq(stats->form, 0);
    ck_assert_uint_eq(stats->links, 0);
    ck_assert_uint_eq(links_pending(f.links), 0);

    f.capture.fail_at = 0;
    ck_assert_int_eq(route(&f, FORM_CARA), OUTCOME_OK);
    ck_assert_uint_eq(f.capture.n, 3);
    ck_assert_int_eq(f.capture.outputs[2].topic, OUTPUT_IDENTITIES);
    ck_assert_uint_eq(stats->form, 1);
    ck_assert_uint_eq(stats->links, 1);
    ck_assert_uint_eq(links_pending(f.links), 1);

    ck_assert_int_eq(route(&f, golden_cases[0].input), OUTCOME_OK);
    ck_assert_uint_eq(stats->email, 1);
    teardown(&f);
}
END_TEST

/*
 * A response that outgrows its ticket (a template that repeats the subject)
 * and is too large for the producer: the message is dead-lettered with
 * nothing queued, not with its ticket already out. The largest output goes
 * first, so the producer refuses it before anything else is queued.
 */
START_TEST(test_oversize_output)
{
    static const char input[] =
        "{\"type\":\"email_received\",\"message_id\":\"m-2\",\"from\":\"bob@example.org\","
        "\"subject\":\"The same long subject, written out again and again by the template\"}";
    struct fixture f;

    setup(&f);
    const struct handler_stats *stats = handlers_stats(f.handlers);
    set_template(&f.cfg->responses.email, "{subject} / {subject} / {subject} / {ticket_id}");

    ck_assert_int_eq(route(&f, input), OUTCOME_OK);
    ck_assert_uint_eq(f.capture.n, 2);
    ck_assert_int_eq(f.capture.outputs[0].topic, OUTPUT_RESPONSES);
    ck_assert_int_eq(f.capture.outputs[1].topic, OUTPUT_TICKETS);
    size_t response_len = strlen(f.capture.outputs[0].value);
    size_t ticket_len = strlen(f.capture.outputs[1].value);
    ck_assert_uint_gt(response_len, ticket_len);
    ck_assert_uint_eq(stats->email, 1);

    /* The ticket would fit, the response would not. */
    f.capture.max_len = ticket_len;
    ck_assert_int_eq(route(&f, input), OUTCOME_PERMANENT);
    ck_assert_int_eq(f.res.error_class, ERROR_OVERSIZE);
    ck_assert_uint_eq(f.capture.n, 0);
    ck_assert_uint_eq(f.capture.calls, 1);
    char want[128];
    snprintf(want, sizeof(want),
             "an output of %zu bytes is larger than the producer accepts (message.max.bytes)",
             response_len);
    ck_assert_str_eq(f.res.reason, want);
    ck_assert_uint_eq(stats->email, 1);

    /* With a short template the ticket is the largest, and it goes first as it always did. */
    set_template(&f.cfg->responses.email, "Your ticket is {ticket_id}.");
    f.capture.max_len = 0;
    ck_assert_int_eq(route(&f, input), OUTCOME_OK);
    ck_assert_int_eq(f.capture.outputs[0].topic, OUTPUT_TICKETS);
    ck_assert_int_eq(f.capture.outputs[1].topic, OUTPUT_RESPONSES);
    teardown(&f);
}
END_TEST

/* Every placeholder, the {{ }} escapes, fallbacks, and template text that needs escaping. */
START_TEST(test_templates)
{
    struct fixture f;

    setup(&f);
    set_template(&f.cfg->responses.email,
                 "{{{name}}} | {subject} | {ticket_id} | {customer_id} | {channel} | {{name}} "
                 "}}{{ \"q\" \\ é\n\t{nope} {");
    set_template(&f.cfg->responses.whatsapp, "{channel}:{subject}:{name}:{customer_id}");
    set_template(&f.cfg->responses.form, "{name}{{{ticket_id}}}");

    route(&f, golden_cases[0].input);
    ck_assert_int_eq(f.res.outcome, OUTCOME_OK);
    ck_assert_str_eq(
        f.capture.outputs[1].value,
        "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_M1 "\",\"customer_id\":\"" CUS_ANN
        "\",\"channel\":\"email\",\"to\":\"ann.lee@"
        "example.com\",\"text\":\"{Ann Lee} | Order #42 | " TKT_M1 " | " CUS_ANN
        " | email | {name} }{ \\\"q\\\" \\\\ é\\n\\t{nope} {\"" SOURCE("<m-1@mail.example>"));

    route(&f, "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.2\",\"from\":\"(555) "
              "010-0123\",\"profile_name\":\"\"}");
    ck_assert_int_eq(f.res.outcome, OUTCOME_OK);
    ck_assert_ptr_nonnull(strstr(f.capture.outputs[0].value, "\"contact\":{\"name\":\"\","));
    ck_assert_str_eq(f.capture.outputs[1].value,
                     "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_W2
                     "\",\"customer_id\":\"" CUS_US "\",\"channel\":\"whatsapp\",\"to\":"
                     "\"+15550100123\",\"text\":\"whatsapp:(no subject):there:" CUS_US
                     "\"" SOURCE("wamid.2"));

    route(&f, "{\"type\":\"form_submitted\",\"form_id\":\"f\",\"submission_id\":\"sub-9\","
              "\"fields\":{\"email\":\"eve@example.com\",\"name\":\"日本\"}}");
    ck_assert_int_eq(f.res.outcome, OUTCOME_OK);
    ck_assert_uint_eq(f.capture.n, 2);
    ck_assert_str_eq(f.capture.outputs[1].value,
                     "{\"event\":\"response.requested\",\"ticket_id\":\"" TKT_S9
                     "\",\"customer_id\":\"" CUS_EVE "\",\"channel\":\"form\",\"to\":\"eve@"
                     "example.com\",\"text\":\"日本{" TKT_S9 "}\"" SOURCE("sub-9"));
    teardown(&f);
}
END_TEST

/* The default templates, as config_new_defaults() has them, are what the goldens assume. */
START_TEST(test_default_templates)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->responses.email,
                     "Hello {name}, we received \"{subject}\". Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->responses.whatsapp,
                     "Hi {name}, thanks for your message. Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->responses.form,
                     "Hello {name}, thank you for contacting us. Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->identity.default_region, "US");
    config_free(cfg);
}
END_TEST

/* The source member carries the full int32 partition and int64 offset, and a real clock works. */
START_TEST(test_source_and_clock)
{
    struct config *cfg = config_new_defaults();
    struct links *links = links_new(NULL);
    struct handlers *h = handlers_new(cfg, links, NULL);
    struct router_limits limits = {.max_message_bytes = 4096, .max_nesting_depth = 8};
    struct router *r = router_new(&limits);
    struct message_meta meta = {
        .topic = "t", .partition = INT32_MAX, .offset = INT64_MAX, .timestamp_ms = -1};
    static const char msg[] =
        "{\"type\":\"email_received\",\"message_id\":\"m-2\",\"from\":\"bob@example.org\"}";
    struct capture cap = {0};
    struct route_result res;

    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(handlers_register(h, r), 0);
    capture_clear(&cap);
    router_route(r, msg, strlen(msg), &meta, &cap.emitter, &res);
    ck_assert_int_eq(res.outcome, OUTCOME_OK);

    const char *v = cap.outputs[0].value;
    ck_assert_ptr_nonnull(strstr(v, ",\"source\":{\"topic\":\"t\",\"partition\":2147483647,"
                                    "\"offset\":9223372036854775807,\"message_id\":\"m-2\"}}"));
    /* "created_at":"YYYY-MM-DDTHH:MM:SS.mmmZ", from the real clock, well after the code was
     * written. */
    const char *at = strstr(v, "\"created_at\":\"");
    ck_assert_ptr_nonnull(at);
    at += strlen("\"created_at\":\"");
    ck_assert_uint_eq(strcspn(at, "\""), 24);
    ck_assert(at[4] == '-' && at[10] == 'T' && at[19] == '.' && at[23] == 'Z');
    ck_assert_int_ge(strncmp(at, "2025", 4), 0);

    capture_clear(&cap);
    router_free(r);
    handlers_free(h);
    links_free(links);
    config_free(cfg);
}
END_TEST

/* A clock that reads from a script, one value a call. */
static const int64_t *script_ms;
static int64_t scripted_clock(void)
{
    return *script_ms++;
}

/*
 * created_at for a run of clock readings that stay within a second, move to
 * the next, go back and cross 1970: the text of a second is reused only while
 * the clock stays in that second. The records' timestamps are the same
 * reading.
 */
START_TEST(test_created_at_sequence)
{
    static const struct {
        int64_t ms;
        const char *text;
    } steps[] = {
        {INT64_C(1795867200123), "2026-11-28T12:00:00.123Z"},
        {INT64_C(1795867200999), "2026-11-28T12:00:00.999Z"},
        {INT64_C(1795867201000), "2026-11-28T12:00:01.000Z"},
        {INT64_C(1795867200007), "2026-11-28T12:00:00.007Z"},
        {INT64_C(1795867260050), "2026-11-28T12:01:00.050Z"},
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {INT64_C(-1000), "1969-12-31T23:59:59.000Z"},
        {INT64_C(1795867260050), "2026-11-28T12:01:00.050Z"},
    };
    int64_t clock[sizeof(steps) / sizeof(steps[0])];
    struct config *cfg = config_new_defaults();
    struct handlers *h;
    struct router *r;
    struct router_limits limits = {.max_message_bytes = 4096, .max_nesting_depth = 8};
    struct capture cap = {0};
    struct route_result res;
    const char *msg =
        "{\"type\":\"email_received\",\"message_id\":\"m-1\",\"from\":\"a@example.org\"}";
    char want[64];

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        clock[i] = steps[i].ms;
    script_ms = clock;
    ck_assert_ptr_nonnull(cfg);
    h = handlers_new(cfg, NULL, scripted_clock);
    r = router_new(&limits);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(handlers_register(h, r), 0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        capture_clear(&cap);
        router_route(r, msg, strlen(msg), NULL, &cap.emitter, &res);
        ck_assert_int_eq(res.outcome, OUTCOME_OK);
        snprintf(want, sizeof(want), "\"created_at\":\"%s\"", steps[i].text);
        ck_assert_ptr_nonnull(strstr(cap.outputs[0].value, want));
        /* Both records carry that time; one before 1970 is left to the producer (0). */
        ck_assert_uint_eq(cap.n, 2);
        for (size_t o = 0; o < cap.n; o++)
            ck_assert_int_eq(cap.outputs[o].timestamp_ms, steps[i].ms > 0 ? steps[i].ms : 0);
    }
    ck_assert_ptr_eq(script_ms, clock + sizeof(steps) / sizeof(steps[0]));
    capture_clear(&cap);
    router_free(r);
    handlers_free(h);
    config_free(cfg);
}
END_TEST

/* jsonbuf on its own: escaping of every byte class, numbers, reuse and sticky errors. */
START_TEST(test_jsonbuf_escape)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain", 5, "\"plain\""},
        {"\"\\/", 3, "\"\\\"\\\\/\""},
        {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x02\x1f\x0b", 4, "\"\\u0001\\u0002\\u001f\\u000b\""},
        {"\x7f", 1, "\"\x7f\""},
        {"José 日本 😀", 17, "\"José 日本 😀\""},
        {"\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""},
        {"a\nb\"", 4, "\"a\\nb\\\"\""},
    };
    struct jsonbuf b;
    char all[0x20];

    jsonbuf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jsonbuf_reset(&b);
        ck_assert_int_eq(jsonbuf_append_string(&b, cases[i].in, cases[i].len), 0);
        ck_assert_str_eq(b.data, cases[i].out);
        ck_assert_uint_eq(b.len, strlen(cases[i].out));
    }

    /* Every C0 control but NUL (which never reaches us), each the short way or \u00xx. */
    for (int c = 1; c < 0x20; c++)
        all[c - 1] = (char)c;
    jsonbuf_reset(&b);
    ck_assert_int_eq(jsonbuf_append_escaped(&b, all, 0x1f), 0);
    ck_assert_str_eq(b.data, "\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b"
                             "\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015"
                             "\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e"
                             "\\u001f");

    jsonbuf_reset(&b);
    ck_assert_int_eq(jsonbuf_append_cstring(&b, NULL), 0);
    ck_assert_int_eq(jsonbuf_append_raw(&b, ","), 0);
    ck_assert_int_eq(jsonbuf_append_null(&b), 0);
    ck_assert_int_eq(jsonbuf_append(&b, NULL, 0), 0);
    ck_assert_str_eq(b.data, "null,null");
    jsonbuf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

/*
 * Escaping looks at up to 16 bytes at a time, short strings by overlapping
 * loads: put every byte value at every position of texts of 1 to 40 bytes,
 * each in a buffer of exactly its size (ASan catches a read past it), and
 * compare with the escaping of one byte alone, bare and quoted.
 */
START_TEST(test_jsonbuf_escape_every_position)
{
    struct jsonbuf b, one;
    char want[256];

    jsonbuf_init(&b);
    jsonbuf_init(&one);
    for (size_t len = 1; len <= 40; len++) {
        char *text = malloc(len);

        ck_assert_ptr_nonnull(text);
        for (int c = 1; c < 0x100; c++) {
            char ch = (char)c;

            if (c >= 0x80 && c != 0x80 && c != 0xc3 && c != 0xff)
                continue; /* bytes of UTF-8 sequences all pass alike */
            jsonbuf_reset(&one);
            ck_assert_int_eq(jsonbuf_append_escaped(&one, &ch, 1), 0);
            for (size_t at = 0; at < len; at++) {
                memset(text, 'a', len);
                text[at] = ch;
                snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)at, text, one.data,
                         (int)(len - at - 1), text + at + 1);
                jsonbuf_reset(&b);
                ck_assert_int_eq(jsonbuf_append_string(&b, text, len), 0);
                ck_assert_str_eq(b.data, want);
                want[strlen(want) - 1] = '\0';
                jsonbuf_reset(&b);
                ck_assert_int_eq(jsonbuf_append_escaped(&b, text, len), 0);
                ck_assert_str_eq(b.data, want + 1);
            }
        }
        free(text);
    }
    /* Bytes of UTF-8 sequences (>= 0x80) pass as they are, next to a quote or not. */
    jsonbuf_reset(&b);
    ck_assert_int_eq(jsonbuf_append_escaped(&b, "\xc3\xa9\"\xe2\x82\xac\\\xf0\x9f\x98\x80", 11), 0);
    ck_assert_str_eq(b.data, "\xc3\xa9\\\"\xe2\x82\xac\\\\\xf0\x9f\x98\x80");
    jsonbuf_free(&one);
    jsonbuf_free(&b);
}
END_TEST

START_TEST(test_jsonbuf_numbers)
{
    static const struct {
        double v;
        const char *out;
    } doubles[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1795867100.0, "1795867100"},
        {-42.0, "-42"},
        {1.5, "1.5"},
        {0.1, "0.10000000000000001"},
        {9007199254740991.0, "9007199254740991"},
        {-9007199254740991.0, "-9007199254740991"},
        {9007199254740992.0, "9007199254740992"},
        {1e300, "1.0000000000000001e+300"},
        {-1e-7, "-9.9999999999999995e-08"},
        {-1e-300, "-1e-300"},
    };
    struct jsonbuf b;

    jsonbuf_init(&b);
    ck_assert_int_eq(jsonbuf_append_int64(&b, INT64_MIN), 0);
    ck_assert_int_eq(jsonbuf_append_raw(&b, " "), 0);
    ck_assert_int_eq(jsonbuf_append_int64(&b, INT64_MAX), 0);
    ck_assert_int_eq(jsonbuf_append_raw(&b, " "), 0);
    ck_assert_int_eq(jsonbuf_append_int64(&b, 0), 0);
    ck_assert_str_eq(b.data, "-9223372036854775808 9223372036854775807 0");

    for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
        jsonbuf_reset(&b);
        ck_assert_int_eq(jsonbuf_append_double(&b, doubles[i].v), 0);
        ck_assert_str_eq(b.data, doubles[i].out);
    }

    /* Not a JSON number: refused, and the error sticks until reset. */
    jsonbuf_reset(&b);
    ck_assert_int_eq(jsonbuf_append_raw(&b, "{"), 0);
    ck_assert_int_eq(jsonbuf_append_double(&b, INFINITY), -EINVAL);
    ck_assert_int_eq(jsonbuf_append_double(&b, 1.0), -EINVAL);
    ck_assert_int_eq(jsonbuf_append_raw(&b, "}"), -EINVAL);
    ck_assert_int_eq(jsonbuf_append_string(&b, "x", 1), -EINVAL);
    ck_assert_int_eq(jsonbuf_append_escaped(&b, "", 0), -EINVAL);
    ck_assert_int_eq(jsonbuf_error(&b), -EINVAL);
    ck_assert_str_eq(b.data, "{");
    ck_assert_int_eq(jsonbuf_append_double(&b, NAN), -EINVAL);
    jsonbuf_reset(&b);
    ck_assert_int_eq(jsonbuf_error(&b), 0);
    ck_assert_int_eq(jsonbuf_append_double(&b, -INFINITY), -EINVAL);
    jsonbuf_free(&b);
}
END_TEST

/* Growth is geometric, and reset keeps the memory: a steady state allocates nothing. */
START_TEST(test_jsonbuf_reuse)
{
    struct jsonbuf b;
    char chunk[1000];

    memset(chunk, 'a', sizeof(chunk));
    jsonbuf_init(&b);
    ck_assert_int_eq(jsonbuf_error(&b), 0);
    jsonbuf_reset(&b);
    ck_assert_ptr_null(b.data);

    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(jsonbuf_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_uint_eq(strlen(b.data), 100000);
    ck_assert_uint_ge(b.cap, 100001);
    ck_assert_uint_lt(b.cap, 2 * 100001);

    char *data = b.data;
    size_t cap = b.cap;
    jsonbuf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(jsonbuf_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    jsonbuf_free(&b);
}
END_TEST

/* Text known to need no escaping is quoted as it is, and grows the buffer like any append. */
START_TEST(test_jsonbuf_plain)
{
    struct jsonbuf b;
    char id[3000];

    jsonbuf_init(&b);
    ck_assert_int_eq(jsonbuf_append_plain(&b, "tkt_0123456789abcdef"), 0);
    ck_assert_int_eq(jsonbuf_append(&b, ",", 1), 0);
    ck_assert_int_eq(jsonbuf_append_plain(&b, ""), 0);
    ck_assert_str_eq(b.data, "\"tkt_0123456789abcdef\",\"\"");
    ck_assert_uint_eq(b.len, strlen(b.data));

    /* Longer than the buffer's first allocation, from an empty buffer. */
    memset(id, 'f', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    jsonbuf_free(&b);
    ck_assert_int_eq(jsonbuf_append_plain(&b, id), 0);
    ck_assert_uint_eq(b.len, sizeof(id) + 1);
    ck_assert_int_eq(b.data[0], '"');
    ck_assert_int_eq(memcmp(b.data + 1, id, sizeof(id) - 1), 0);
    ck_assert_int_eq(b.data[sizeof(id)], '"');
    ck_assert_int_eq(b.data[b.len], '\0');
    jsonbuf_free(&b);
}
END_TEST

static Suite *handlers_suite(void)
{
    Suite *s = suite_create("handlers");
    TCase *tc = tcase_create("outputs");
    TCase *tj = tcase_create("jsonbuf");

    tcase_add_loop_test(tc, test_golden, 0, (int)NGOLDEN);
    tcase_add_test(tc, test_links);
    tcase_add_test(tc, test_links_disabled);
    tcase_add_loop_test(tc, test_identity_errors, 0, (int)NIDENTITY);
    tcase_add_test(tc, test_one_customer_per_number);
    tcase_add_test(tc, test_emit_failure);
    tcase_add_test(tc, test_oversize_output);
    tcase_add_test(tc, test_templates);
    tcase_add_test(tc, test_default_templates);
    tcase_add_test(tc, test_source_and_clock);
    tcase_add_test(tc, test_created_at_sequence);
    suite_add_tcase(s, tc);

    tcase_add_test(tj, test_jsonbuf_escape);
    tcase_add_test(tj, test_jsonbuf_escape_every_position);
    tcase_add_test(tj, test_jsonbuf_numbers);
    tcase_add_test(tj, test_jsonbuf_reuse);
    tcase_add_test(tj, test_jsonbuf_plain);
    suite_add_tcase(s, tj);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(handlers_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
