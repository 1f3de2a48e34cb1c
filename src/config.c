/* SPDX-License-Identifier: MIT */
/* config.c -- reads the libconfig file into struct config and reports every mistake at once. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>
#include <librdkafka/rdkafka.h>

#include "linkstore.h"
#include "log.h"
#include "phone.h"

/*
 * No sane configuration comes near these; they bound what a wrong -c or
 * @include (a log file, a core dump) can make us read, and the time
 * libconfig 1.5 takes, which grows with the square of a group's settings
 * (docs/performance.md, "Configuration limits", has the times measured).
 * Both count the file and every file it includes together.
 */
#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_SETTINGS   4096

/* libconfig 1.5 refuses @include nested deeper than this itself. */
#define MAX_INCLUDE_DEPTH 10

#define TOPIC_MAX_LEN 249

/* Suggest a known name for an unknown one at most this many edits away. */
#define SUGGEST_DISTANCE 2

enum kind {
    F_INT,        /* int in [min, max] */
    F_STRING,     /* string of min..max characters */
    F_TOPIC,      /* one Kafka topic name */
    F_TOPICS,     /* array or list of min..max topic names */
    F_CHOICE_STR, /* one of choices, stored as a copy of the string */
    F_CHOICE_INT, /* one of choices, stored as its index */
    F_LEVEL,      /* a log level name, stored as the syslog priority */
    F_DIGITS,     /* string of min..max ASCII digits */
    F_TEMPLATE,   /* response template with {placeholders} */
    F_LISTEN,     /* HOST:PORT or [IPV6]:PORT */
    F_PROPERTIES, /* group of librdkafka properties */
    F_REGION,     /* a region code libphonenumber knows ("US") */
};

struct field {
    const char *section;
    const char *name;
    enum kind kind;
    size_t off; /* offset of the value in struct config */
    long long min, max;
    int def;                    /* default of integer-valued kinds */
    const char *sdef;           /* default of string-valued kinds */
    const char *const *choices; /* NULL-terminated, for F_CHOICE_* */
    bool no_leading_zero;       /* F_DIGITS */
    bool secret;                /* F_PROPERTIES: values are files holding the value */
};

static const char *const offset_resets[] = {"earliest", "latest", "error", NULL};

/* Indexed by enum unknown_type_policy. */
static const char *const unknown_types[] = {"dead_letter", "skip", NULL};

/* F_CHOICE_INT stores through an int pointer; make sure the enum is one. */
_Static_assert(sizeof(enum unknown_type_policy) == sizeof(int), "enum must be int-sized");

#define OFF(member) offsetof(struct config, member)
#define INT(sec, key, member, lo, hi, dflt)                                                        \
    {                                                                                              \
        .section = sec, .name = key, .kind = F_INT, .off = OFF(member), .min = lo, .max = hi,      \
        .def = dflt                                                                                \
    }
#define STR(sec, key, type, member, lo, hi, dflt)                                                  \
    {                                                                                              \
        .section = sec, .name = key, .kind = type, .off = OFF(member), .min = lo, .max = hi,       \
        .sdef = dflt                                                                               \
    }

/* The schema: one row per setting, in the order the man page documents them. */
static const struct field fields[] = {
    STR("kafka", "brokers", F_STRING, kafka.brokers, 1, 4096, NULL),
    STR("kafka", "group_id", F_STRING, kafka.group_id, 1, 255, "crm-consumer"),
    STR("kafka", "client_id", F_STRING, kafka.client_id, 1, 255, "crm-consumerd"),
    STR("kafka", "topics", F_TOPICS, kafka.topics, 1, 256, "crm.inbound"),
    {.section = "kafka",
     .name = "auto_offset_reset",
     .kind = F_CHOICE_STR,
     .off = OFF(kafka.auto_offset_reset),
     .sdef = "earliest",
     .choices = offset_resets},
    {.section = "kafka", .name = "properties", .kind = F_PROPERTIES},
    {.section = "kafka", .name = "secret_files", .kind = F_PROPERTIES, .secret = true},
    INT("processing", "batch_size", processing.batch_size, 1, 100000, 500),
    INT("processing", "batch_timeout_ms", processing.batch_timeout_ms, 1, 60000, 100),
    INT("processing", "max_in_flight", processing.max_in_flight, 1, 10000000, 20000),
    INT("processing", "max_message_bytes", processing.max_message_bytes, 1, 104857600, 1048576),
    INT("processing", "max_nesting_depth", processing.max_nesting_depth, 1, 1000, 64),
    INT("processing", "shutdown_timeout_s", processing.shutdown_timeout_s, 1, 3600, 30),
    INT("processing", "stall_timeout_s", processing.stall_timeout_s, 0, 86400, 60),
    {.section = "processing",
     .name = "unknown_type",
     .kind = F_CHOICE_INT,
     .off = OFF(processing.unknown_type),
     .def = UNKNOWN_TYPE_DEAD_LETTER,
     .choices = unknown_types},
    INT("retry", "max_attempts", retry.max_attempts, 1, 1000, 5),
    INT("retry", "initial_backoff_ms", retry.initial_backoff_ms, 1, 3600000, 100),
    INT("retry", "max_backoff_ms", retry.max_backoff_ms, 1, 3600000, 30000),
    INT("circuit_breaker", "failure_threshold", circuit_breaker.failure_threshold, 1, 100000, 5),
    INT("circuit_breaker", "open_timeout_s", circuit_breaker.open_timeout_s, 1, 86400, 60),
    STR("output", "tickets_topic", F_TOPIC, output.tickets_topic, 1, 249, "crm.tickets"),
    STR("output", "responses_topic", F_TOPIC, output.responses_topic, 1, 249, "crm.responses"),
    STR("output", "identities_topic", F_TOPIC, output.identities_topic, 1, 249, "crm.identities"),
    STR("output", "dlq_topic", F_TOPIC, output.dlq_topic, 1, 249, "crm.inbound.dlq"),
    {.section = "identity",
     .name = "default_region",
     .kind = F_REGION,
     .off = OFF(identity.default_region),
     .sdef = "US"},
    /* Deprecated: see check_identity(). */
    {.section = "identity",
     .name = "default_country_code",
     .kind = F_DIGITS,
     .off = OFF(identity.default_country_code),
     .min = 1,
     .max = 3,
     .no_leading_zero = true},
    STR("identity", "trunk_prefix", F_DIGITS, identity.trunk_prefix, 0, 2, NULL),
    STR("identity", "store_path", F_STRING, identity.store_path, 1, 4000,
        "/var/lib/crm-consumerd/identities"),
    INT("identity", "store_max_mb", identity.store_max_mb, 1, 1048576, 1024),
    STR("responses", "email", F_TEMPLATE, responses.email, 1, 4096,
        "Hello {name}, we received \"{subject}\". Your ticket is {ticket_id}."),
    STR("responses", "whatsapp", F_TEMPLATE, responses.whatsapp, 1, 4096,
        "Hi {name}, thanks for your message. Your ticket is {ticket_id}."),
    STR("responses", "form", F_TEMPLATE, responses.form, 1, 4096,
        "Hello {name}, thank you for contacting us. Your ticket is {ticket_id}."),
    STR("http", "listen", F_LISTEN, http.listen, 0, 0, "127.0.0.1:9464"),
    INT("http", "max_connections", http.max_connections, 1, 100000, 64),
    INT("http", "max_connections_per_ip", http.max_connections_per_ip, 1, 100000, 16),
    INT("http", "timeout_s", http.timeout_s, 1, 3600, 10),
    STR("http", "tls_cert_file", F_STRING, http.tls_cert_file, 0, 4096, ""),
    STR("http", "tls_key_file", F_STRING, http.tls_key_file, 0, 4096, ""),
    STR("http", "basic_auth_user", F_STRING, http.basic_auth_user, 0, 255, ""),
    STR("http", "basic_auth_password_hash", F_STRING, http.basic_auth_password_hash, 0, 1024, ""),
    {.section = "log", .name = "level", .kind = F_LEVEL, .off = OFF(log.level), .def = LOG_INFO},
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const sections[] = {
    "kafka", "processing", "retry", "circuit_breaker", "output", "identity", "responses",
    "http",  "log",        NULL,
};

/* Settings that existed once: naming one is an error that says what replaced it. */
static const struct {
    const char *section, *name, *instead;
} retired[] = {
    {"identity", "max_links",
     "retired: the links are kept on disk in identity.store_path, up to identity.store_max_mb, "
     "and none is evicted; remove it"},
};

static const char *const placeholders[] = {"name",        "ticket_id", "subject",
                                           "customer_id", "channel",   NULL};

/*
 * librdkafka properties the daemon sets itself, and where the operator sets
 * them instead; or, for its guarantees, why it sets them and the one value
 * it accepts, if any (a silent override would hide a mistake).
 */
static const struct {
    const char *name;
    const char *use;  /* the setting to use instead, or NULL */
    const char *why;  /* with use NULL: why the daemon sets it; NULL: at-least-once delivery */
    const char *only; /* the value accepted, as librdkafka reads it back; NULL: none */
} reserved[] = {
    {"bootstrap.servers", "kafka.brokers", NULL, NULL},
    {"metadata.broker.list", "kafka.brokers", NULL, NULL},
    {"group.id", "kafka.group_id", NULL, NULL},
    {"client.id", "kafka.client_id", NULL, NULL},
    {"auto.offset.reset", "kafka.auto_offset_reset", NULL, NULL},
    {"enable.auto.offset.store", NULL, NULL, NULL},
    {"enable.auto.commit", NULL, NULL, NULL},
    /* The legacy alias of enable.auto.commit would otherwise be a way around it. */
    {"auto.commit.enable", NULL, NULL, NULL},
    {"enable.idempotence", NULL,
     "the producer is idempotent, so that its retries neither duplicate nor reorder outputs",
     "true"},
    {"enable.partition.eof", NULL,
     "the reader of output.identities_topic needs it to know when it has read every link", "true"},
    {"transactional.id", NULL,
     "the producer is idempotent, not transactional, and librdkafka refuses every output of a "
     "transactional producer sent outside a transaction",
     NULL},
};

struct diag {
    int line;
    char *msg;
};

/* State of one config_load() call. */
struct ctx {
    const char *path;
    const char *text; /* the file, NUL-terminated, for checking integer literals */
    struct config *cfg;
    struct diag *diags;
    size_t ndiags, cap;
    bool oom;
    size_t nwarnings;               /* of the diags, those that do not stop the start */
    config_setting_t *set[NFIELDS]; /* NULL when the setting is absent */
    bool bad[NFIELDS];              /* the setting was present but refused */
};

static void diag_add(struct ctx *c, int line, char *msg)
{
    struct diag *d;

    if (!msg) {
        c->oom = true;
        return;
    }
    if (c->ndiags == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;

        d = realloc(c->diags, cap * sizeof(*d));
        if (!d) {
            free(msg);
            c->oom = true;
            return;
        }
        c->diags = d;
        c->cap = cap;
    }
    c->diags[c->ndiags].line = line;
    c->diags[c->ndiags].msg = msg;
    c->ndiags++;
}

/* Settings pulled in with @include carry their own file name; the rest are in path. */
static const char *file_of(const struct ctx *c, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;

    return f ? f : c->path;
}

static int line_of(const config_setting_t *s)
{
    return s ? (int)config_setting_source_line(s) : 1;
}

/* Record "FILE:LINE: SETTING: what" at setting s (NULL: line 1 of the file itself). */
__attribute__((format(printf, 4, 5))) static void report(struct ctx *c, const config_setting_t *s,
                                                         const char *setting, const char *fmt, ...)
{
    char *what = NULL, *msg = NULL;
    int line = line_of(s);
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    if (what && asprintf(&msg, "%s:%d: %s: %s", file_of(c, s), line, setting, what) < 0)
        msg = NULL;
    free(what);
    diag_add(c, line, msg);
}

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "a setting of unknown type";
    }
}

static bool is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);

    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/* A string as it would be written in the file, so odd bytes show up in messages. */
static char *quote(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(4 * len + 3), *p = out;

    if (!out)
        return NULL;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\') {
            *p++ = '\\';
            *p++ = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            p += sprintf(p, "\\x%02x", ch);
        } else {
            *p++ = (char)ch;
        }
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

/* The choices of a field as `"a", "b", "c"`, for messages. */
static char *choice_list(const struct field *f)
{
    const char *names[8];
    size_t n = 0, len = 1;
    char *out, *p;

    if (f->kind == F_LEVEL) {
        for (int lv = LOG_ERR; lv <= LOG_DEBUG && n < 8; lv++)
            names[n++] = log_level_name(lv);
    } else {
        for (size_t i = 0; f->choices[i] && n < 8; i++)
            names[n++] = f->choices[i];
    }
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 4;
    out = malloc(len);
    if (!out)
        return NULL;
    p = out;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"%s\"", i ? ", " : "", names[i]);
    *p = '\0';
    return out;
}

static bool is_name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '*';
}

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/*
 * libconfig 1.5 silently wraps an integer literal that does not fit in 32 bits
 * (3000000000 reads as -1294967296) unless it ends in L, so a typo could land
 * back in range. Find the literal written for s in the file text and compare.
 * Returns a copy of the literal when it differs from what libconfig read.
 */
static char *wrapped_literal(const struct ctx *c, const config_setting_t *s)
{
    const char *name = config_setting_name(s), *p = c->text, *eol, *first = NULL;
    unsigned line = config_setting_source_line(s);
    size_t nlen, first_len = 0;

    if (!name || !p || config_setting_source_file(s))
        return NULL;
    for (unsigned i = 1; i < line && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    eol = strchrnul(p, '\n');
    nlen = strlen(name);
    for (const char *q = p; q < eol; q++) {
        const char *r, *start, *digits;
        unsigned long long mag;
        bool neg = false, hex;
        char *end;

        q = memmem(q, (size_t)(eol - q), name, nlen);
        if (!q)
            break;
        if ((q > p && is_name_char(q[-1])) || is_name_char(q[nlen]))
            continue;
        r = skip_space(q + nlen);
        if (*r != '=' && *r != ':')
            continue;
        start = r = skip_space(r + 1);
        if (*r == '+' || *r == '-')
            neg = *r++ == '-';
        hex = r[0] == '0' && (r[1] == 'x' || r[1] == 'X');
        digits = hex ? r + 2 : r;
        if (!(hex ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits)))
            continue;
        errno = 0;
        mag = strtoull(digits, &end, hex ? 16 : 10);
        if (errno != ERANGE && mag <= (unsigned long long)LLONG_MAX + neg &&
            (neg ? -(long long)(mag - 1) - 1 : (long long)mag) == config_setting_get_int64(s))
            return NULL;
        /* The same name may be set in another group on this line: look at every match. */
        if (!first) {
            first = start;
            first_len = (size_t)(end - start);
        }
    }
    return first ? strndup(first, first_len) : NULL;
}

/* Levenshtein distance, for "did you mean"; names here are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = calloc(lb + 1, sizeof(*row));
    size_t d;

    if (!row)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    d = row[lb];
    free(row);
    return d;
}

static int find_field(const char *section, const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].section, section) == 0 && strcmp(fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Report an unknown setting, with the closest known name in `section` (NULL: the root). */
static void report_unknown(struct ctx *c, config_setting_t *s, const char *section)
{
    const char *name = config_setting_name(s), *best = NULL;
    size_t best_d = SUGGEST_DISTANCE + 1;
    char *path = NULL;

    for (size_t i = 0; section && i < sizeof(retired) / sizeof(retired[0]); i++) {
        if (strcmp(retired[i].section, section) == 0 && strcmp(retired[i].name, name) == 0) {
            if (asprintf(&path, "%s.%s", section, name) < 0) {
                c->oom = true;
                return;
            }
            report(c, s, path, "%s", retired[i].instead);
            free(path);
            return;
        }
    }
    if (section) {
        for (size_t i = 0; i < NFIELDS; i++) {
            size_t d;

            if (strcmp(fields[i].section, section) != 0)
                continue;
            d = edit_distance(name, fields[i].name);
            if (d < best_d) {
                best_d = d;
                best = fields[i].name;
            }
        }
    } else {
        for (size_t i = 0; sections[i]; i++) {
            size_t d = edit_distance(name, sections[i]);

            if (d < best_d) {
                best_d = d;
                best = sections[i];
            }
        }
    }
    if (section && asprintf(&path, "%s.%s", section, name) < 0) {
        c->oom = true;
        return;
    }
    if (best)
        report(c, s, path ? path : name, "unknown setting (did you mean \"%s\"?)", best);
    else
        report(c, s, path ? path : name, "unknown setting");
    free(path);
}

static bool valid_topic(const char *t)
{
    size_t len = strlen(t);

    if (len < 1 || len > TOPIC_MAX_LEN || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-')
            return false;
    return true;
}

/*
 * Check a string-valued setting's type and length. Returns its value, or NULL
 * after reporting `what` (the allowed values) with what was given.
 */
static const char *check_string(struct ctx *c, config_setting_t *s, const char *setting,
                                const char *what, size_t minlen, size_t maxlen)
{
    const char *v;
    size_t len;
    char *q;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        report(c, s, setting, "%s (got %s)", what, type_name(s));
        return NULL;
    }
    v = config_setting_get_string(s);
    len = strlen(v);
    if (len > maxlen) {
        report(c, s, setting, "%s (got %zu characters)", what, len);
        return NULL;
    }
    if (len < minlen) {
        q = quote(v);
        report(c, s, setting, "%s (got %s)", what, q ? q : "?");
        free(q);
        return NULL;
    }
    return v;
}

static void report_value(struct ctx *c, config_setting_t *s, const char *setting, const char *what,
                         const char *value)
{
    char *q = quote(value);

    report(c, s, setting, "%s (got %s)", what, q ? q : "?");
    free(q);
}

static const char topic_rule[] = "must be a Kafka topic name of 1 to 249 characters from "
                                 "[A-Za-z0-9._-], not \".\" or \"..\"";

static const char *check_topic(struct ctx *c, config_setting_t *s, const char *setting)
{
    const char *v = check_string(c, s, setting, topic_rule, 1, TOPIC_MAX_LEN);

    if (v && !valid_topic(v)) {
        report_value(c, s, setting, topic_rule, v);
        return NULL;
    }
    return v;
}

static void free_topics(char **topics, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
}

static bool check_topics(struct ctx *c, config_setting_t *s, const char *setting,
                         const struct field *f)
{
    int type = config_setting_type(s), n;
    char **topics;
    bool ok = true;
    char what[128];

    snprintf(what, sizeof(what), "must be a non-empty array or list of 1 to %lld topic names",
             f->max);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        report(c, s, setting, "%s (got %s)", what, type_name(s));
        return false;
    }
    n = config_setting_length(s);
    if (n < f->min || n > f->max) {
        if (n == 0)
            report(c, s, setting, "%s (got an empty %s)", what,
                   type == CONFIG_TYPE_ARRAY ? "array" : "list");
        else
            report(c, s, setting, "%s (got %d topics)", what, n);
        return false;
    }
    topics = calloc((size_t)n, sizeof(*topics));
    if (!topics) {
        c->oom = true;
        return false;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char *epath = NULL;
        const char *v;

        if (asprintf(&epath, "%s[%d]", setting, i) < 0) {
            c->oom = true;
            ok = false;
            break;
        }
        v = check_topic(c, e, epath);
        if (!v) {
            ok = false;
        } else {
            for (int j = 0; j < i; j++) {
                if (topics[j] && strcmp(topics[j], v) == 0) {
                    report(c, e, epath, "must not repeat a topic (got \"%s\", already %s[%d])", v,
                           setting, j);
                    ok = false;
                    v = NULL;
                    break;
                }
            }
        }
        free(epath);
        if (v && !(topics[i] = strdup(v))) {
            c->oom = true;
            ok = false;
        }
    }
    if (ok) {
        free_topics(c->cfg->kafka.topics, c->cfg->kafka.ntopics);
        c->cfg->kafka.topics = topics;
        c->cfg->kafka.ntopics = (size_t)n;
    } else {
        free_topics(topics, (size_t)n);
    }
    return ok;
}

/*
 * Check a template's placeholders; `{{` and `}}` stand for literal braces.
 * Every problem is reported, so one pass shows all of them.
 */
static bool check_template(struct ctx *c, config_setting_t *s, const char *setting, const char *v)
{
    bool ok = true;

    for (size_t i = 0; v[i];) {
        if (v[i] == '{' && v[i + 1] == '{') {
            i += 2;
        } else if (v[i] == '}' && v[i + 1] == '}') {
            i += 2;
        } else if (v[i] == '{') {
            size_t j = i + 1;
            bool known = false;

            while (v[j] && v[j] != '{' && v[j] != '}')
                j++;
            if (v[j] != '}') {
                report(c, s, setting, "unbalanced brace at character %zu", i + 1);
                ok = false;
                i++;
                continue;
            }
            for (size_t k = 0; placeholders[k]; k++)
                if (strlen(placeholders[k]) == j - i - 1 &&
                    strncmp(v + i + 1, placeholders[k], j - i - 1) == 0)
                    known = true;
            if (!known) {
                report(c, s, setting,
                       "unknown placeholder \"%.*s\"; allowed: {name}, {ticket_id}, {subject}, "
                       "{customer_id}, {channel}",
                       (int)(j - i + 1), v + i);
                ok = false;
            }
            i = j + 1;
        } else if (v[i] == '}') {
            report(c, s, setting, "unbalanced brace at character %zu", i + 1);
            ok = false;
            i++;
        } else {
            i++;
        }
    }
    return ok;
}

static bool valid_port(const char *p)
{
    long port = 0;

    if (!*p || strlen(p) > 5)
        return false;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

static bool valid_listen(const char *v)
{
    const char *colon;

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        char host[INET6_ADDRSTRLEN];
        struct in6_addr addr;
        size_t hlen;

        if (!close || close[1] != ':')
            return false;
        hlen = (size_t)(close - v - 1);
        /* Longer than any IPv6 literal, so invalid rather than cut to fit. */
        if (hlen == 0 || hlen >= sizeof(host))
            return false;
        memcpy(host, v + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &addr) != 1)
            return false;
        colon = close + 1;
    } else {
        colon = strchr(v, ':');
        if (!colon || colon == v || strchr(colon + 1, ':'))
            return false;
        for (const char *h = v; h < colon; h++)
            if (isspace((unsigned char)*h) || !isprint((unsigned char)*h) || *h == '[' || *h == ']')
                return false;
    }
    return valid_port(colon + 1);
}

static bool valid_digits(const char *v, const struct field *f)
{
    size_t len = strlen(v);

    if (len < (size_t)f->min || len > (size_t)f->max)
        return false;
    if (f->no_leading_zero && v[0] == '0')
        return false;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return false;
    return true;
}

/* Two capitals, as ISO 3166-1 writes them, of a region libphonenumber has metadata for. */
static bool valid_region(const char *v)
{
    return strlen(v) == 2 && v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z' &&
           phone_region_code(v) > 0;
}

static char *string_of(config_setting_t *s)
{
    char *out = NULL;
    int r;

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        r = asprintf(&out, "%lld", config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_FLOAT:
        r = asprintf(&out, "%g", config_setting_get_float(s));
        break;
    case CONFIG_TYPE_BOOL:
        r = asprintf(&out, "%s", config_setting_get_bool(s) ? "true" : "false");
        break;
    default:
        r = asprintf(&out, "%s", config_setting_get_string(s));
        break;
    }
    return r < 0 ? NULL : out;
}

/* Secrets are short; a bigger file is a wrong path, not a password. */
#define SECRET_MAX 65536

/*
 * The value held in a secret file (systemd's LoadCredential= puts one under
 * /run/credentials): its bytes, less one trailing newline. NULL with errno.
 */
static char *read_secret(const char *path)
{
    FILE *fp = fopen(path, "re");
    char *buf;
    size_t len;

    if (!fp)
        return NULL;
    buf = malloc(SECRET_MAX + 1);
    len = buf ? fread(buf, 1, SECRET_MAX + 1, fp) : 0;
    if (buf && (ferror(fp) || len > SECRET_MAX || memchr(buf, '\0', len))) {
        free(buf);
        buf = NULL;
        errno = len > SECRET_MAX ? EFBIG : EINVAL;
    }
    fclose(fp);
    if (!buf)
        return NULL;
    if (len && buf[len - 1] == '\n')
        len--;
    buf[len] = '\0';
    return buf;
}

static void check_property(struct ctx *c, config_setting_t *s, rd_kafka_conf_t *scratch,
                           bool secret)
{
    const char *cname = config_setting_name(s);
    char *setting = NULL, *name = NULL, *value = NULL, *file = NULL, *lit;
    size_t only = SIZE_MAX; /* the row of reserved[] whose value is checked */
    char errstr[1024];
    int type = config_setting_type(s);
    struct config_property *props;

    if (asprintf(&setting, "kafka.%s.%s", secret ? "secret_files" : "properties", cname) < 0 ||
        !(name = strdup(cname))) {
        c->oom = true;
        goto out;
    }
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '.';
    if (secret && type != CONFIG_TYPE_STRING) {
        report(c, s, setting, "must be the path of a file holding the value (got %s)",
               type_name(s));
        goto out;
    }
    if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
        report(c, s, setting, "must be an integer, a float, a boolean or a string (got %s)",
               type_name(s));
        goto out;
    }
    for (size_t i = 0; i < c->cfg->kafka.nproperties; i++) {
        if (strcmp(c->cfg->kafka.properties[i].name, name) == 0) {
            report(c, s, setting, "set twice (also on line %d)", c->cfg->kafka.properties[i].line);
            goto out;
        }
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(name, reserved[i].name) != 0)
            continue;
        if (reserved[i].only) {
            only = i;
            continue;
        }
        if (reserved[i].use)
            report(c, s, setting, "set by crm-consumerd; use %s", reserved[i].use);
        else if (reserved[i].why)
            report(c, s, setting, "not allowed: %s; remove it", reserved[i].why);
        else
            report(c, s, setting, "managed by crm-consumerd for at-least-once delivery; remove it");
        goto out;
    }
    if (is_int(s) && (lit = wrapped_literal(c, s))) {
        report(c, s, setting,
               "must be an integer from %d to %d, or end in L for a 64-bit integer (got %s)",
               INT_MIN, INT_MAX, lit);
        free(lit);
        goto out;
    }
    if (secret) {
        value = read_secret(config_setting_get_string(s));
        if (!value) {
            report(c, s, setting, "cannot read %s: %s", config_setting_get_string(s),
                   strerror(errno));
            goto out;
        }
    } else {
        value = string_of(s);
        if (!value) {
            c->oom = true;
            goto out;
        }
    }
    errstr[0] = '\0';
    if (rd_kafka_conf_set(scratch, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        size_t len = strlen(errstr);
        /* librdkafka cuts its text to our buffer; a full buffer means it may have. */
        bool cut = len == sizeof(errstr) - 1;

        /* Some librdkafka messages end in a newline; the line is ours to end. */
        while (len && isspace((unsigned char)errstr[len - 1]))
            errstr[--len] = '\0';
        /* librdkafka's reason quotes the value: never print a secret. */
        if (secret)
            report(c, s, setting, "librdkafka refused the value read from %s",
                   config_setting_get_string(s));
        else
            report(c, s, setting, "librdkafka: %s%s", errstr, cut ? "..." : "");
        goto out;
    }
    if (only != SIZE_MAX) {
        char got[64];
        size_t len = sizeof(got);

        if (rd_kafka_conf_get(scratch, name, got, &len) != RD_KAFKA_CONF_OK ||
            strcmp(got, reserved[only].only) != 0) {
            report(c, s, setting, "must be %s, as crm-consumerd sets it: %s", reserved[only].only,
                   reserved[only].why);
            goto out;
        }
    }
    if (asprintf(&file, "%s", file_of(c, s)) < 0) {
        file = NULL;
        c->oom = true;
        goto out;
    }
    props = realloc(c->cfg->kafka.properties,
                    (c->cfg->kafka.nproperties + 1) * sizeof(*c->cfg->kafka.properties));
    if (!props) {
        c->oom = true;
        goto out;
    }
    c->cfg->kafka.properties = props;
    props[c->cfg->kafka.nproperties++] = (struct config_property){
        .name = name, .value = value, .line = line_of(s), .file = file, .secret = secret};
    name = value = file = NULL;
out:
    free(setting);
    free(name);
    free(value);
    free(file);
}

static bool check_properties(struct ctx *c, config_setting_t *s, const char *setting, bool secret)
{
    rd_kafka_conf_t *scratch;
    size_t before = c->ndiags;

    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        report(c, s, setting, "must be a group (got %s)", type_name(s));
        return false;
    }
    /* A scratch conf lets librdkafka judge each name and value exactly as it will later. */
    scratch = rd_kafka_conf_new();
    if (!scratch) {
        c->oom = true;
        return false;
    }
    for (int i = 0; i < config_setting_length(s); i++)
        check_property(c, config_setting_get_elem(s, (unsigned)i), scratch, secret);
    rd_kafka_conf_destroy(scratch);
    return c->ndiags == before;
}

static bool set_string(struct ctx *c, size_t off, const char *v)
{
    char **slot = (char **)((char *)c->cfg + off);
    char *copy = strdup(v);

    if (!copy) {
        c->oom = true;
        return false;
    }
    free(*slot);
    *slot = copy;
    return true;
}

/* A string setting that must also pass valid(): set, or reported with the rule it breaks. */
static bool set_valid_string(struct ctx *c, config_setting_t *s, const char *setting, size_t off,
                             bool (*valid)(const char *), const char *rule)
{
    const char *v = check_string(c, s, setting, rule, 0, SIZE_MAX);

    if (v && !valid(v)) {
        report_value(c, s, setting, rule, v);
        return false;
    }
    return v && set_string(c, off, v);
}

static int *int_slot(struct config *cfg, size_t off)
{
    return (int *)(void *)((char *)cfg + off);
}

/* Check one present setting against its row of the schema; store it when valid. */
static bool check_field(struct ctx *c, const struct field *f, config_setting_t *s)
{
    char setting[64];
    const char *v;
    char *what = NULL, *lit;
    bool ok = false;

    snprintf(setting, sizeof(setting), "%s.%s", f->section, f->name);
    switch (f->kind) {
    case F_INT:
        if (!is_int(s)) {
            report(c, s, setting, "must be an integer from %lld to %lld (got %s)", f->min, f->max,
                   type_name(s));
        } else if ((lit = wrapped_literal(c, s))) {
            report(c, s, setting, "must be an integer from %lld to %lld (got %s)", f->min, f->max,
                   lit);
            free(lit);
        } else if (config_setting_get_int64(s) < f->min || config_setting_get_int64(s) > f->max) {
            report(c, s, setting, "must be an integer from %lld to %lld (got %lld)", f->min, f->max,
                   config_setting_get_int64(s));
        } else {
            *int_slot(c->cfg, f->off) = (int)config_setting_get_int64(s);
            ok = true;
        }
        return ok;
    case F_STRING:
    case F_TEMPLATE:
        if (asprintf(&what, "must be a %sstring of at most %lld characters",
                     f->min > 0 ? "non-empty " : "", f->max) < 0) {
            c->oom = true;
            return false;
        }
        v = check_string(c, s, setting, what, (size_t)f->min, (size_t)f->max);
        free(what);
        return v && (f->kind != F_TEMPLATE || check_template(c, s, setting, v)) &&
               set_string(c, f->off, v);
    case F_TOPIC:
        v = check_topic(c, s, setting);
        return v && set_string(c, f->off, v);
    case F_TOPICS:
        return check_topics(c, s, setting, f);
    case F_CHOICE_STR:
    case F_CHOICE_INT:
    case F_LEVEL: {
        char *list = choice_list(f);
        int idx = -1;

        if (!list || asprintf(&what, "must be one of %s", list) < 0) {
            free(list);
            c->oom = true;
            return false;
        }
        free(list);
        v = check_string(c, s, setting, what, 0, SIZE_MAX);
        if (v && f->kind == F_LEVEL) {
            idx = log_level_parse(v);
        } else if (v) {
            for (int i = 0; f->choices[i]; i++)
                if (strcmp(v, f->choices[i]) == 0)
                    idx = i;
        }
        if (v && idx < 0)
            report_value(c, s, setting, what, v);
        free(what);
        if (idx < 0)
            return false;
        if (f->kind == F_CHOICE_STR)
            return set_string(c, f->off, v);
        *int_slot(c->cfg, f->off) = idx;
        return true;
    }
    case F_DIGITS:
        if (asprintf(&what, "must be a string of %lld to %lld digits%s", f->min, f->max,
                     f->no_leading_zero ? ", not starting with 0" : "") < 0) {
            c->oom = true;
            return false;
        }
        v = check_string(c, s, setting, what, 0, SIZE_MAX);
        if (v && !valid_digits(v, f)) {
            report_value(c, s, setting, what, v);
            v = NULL;
        }
        free(what);
        return v && set_string(c, f->off, v);
    case F_LISTEN:
        return set_valid_string(
            c, s, setting, f->off, valid_listen,
            "must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535");
    case F_PROPERTIES:
        return check_properties(c, s, setting, f->secret);
    case F_REGION:
        return set_valid_string(c, s, setting, f->off, valid_region,
                                "must be a region libphonenumber knows, in two capitals "
                                "(ISO 3166-1 alpha-2) such as \"US\" or \"GB\"");
    }
    return false;
}

static void check_section(struct ctx *c, config_setting_t *sec)
{
    const char *name = config_setting_name(sec);

    if (config_setting_type(sec) != CONFIG_TYPE_GROUP) {
        report(c, sec, name, "must be a group (got %s)", type_name(sec));
        return;
    }
    /* In file order, so messages come out the way the operator reads the file. */
    for (int i = 0; i < config_setting_length(sec); i++) {
        config_setting_t *s = config_setting_get_elem(sec, (unsigned)i);
        int fi = find_field(name, config_setting_name(s));

        if (fi < 0) {
            report_unknown(c, s, name);
            continue;
        }
        c->set[fi] = s;
        c->bad[fi] = !check_field(c, &fields[fi], s);
    }
}

static const char *field_string(const struct ctx *c, int fi)
{
    return *(char *const *)(const void *)((const char *)c->cfg + fields[fi].off);
}

static void check_backoff(struct ctx *c)
{
    int init = find_field("retry", "initial_backoff_ms");
    int max = find_field("retry", "max_backoff_ms");
    const struct config *cfg = c->cfg;

    if (c->bad[init] || c->bad[max] || cfg->retry.max_backoff_ms >= cfg->retry.initial_backoff_ms)
        return;
    /* Name the setting the operator wrote: a default is not their mistake. */
    if (c->set[max])
        report(c, c->set[max], "retry.max_backoff_ms",
               "must be at least retry.initial_backoff_ms (%d)", cfg->retry.initial_backoff_ms);
    else
        report(c, c->set[init], "retry.initial_backoff_ms",
               "must be at most retry.max_backoff_ms (%d)", cfg->retry.max_backoff_ms);
}

/*
 * Settings that only make sense together: a certificate with its key, a user
 * with a password hash, and the hash in crypt(3) form, so that a password
 * written in clear is refused rather than compared as if it were a hash.
 */
static void check_http_pairs(struct ctx *c)
{
    static const char *const pairs[][2] = {
        {"tls_cert_file", "tls_key_file"},
        {"basic_auth_user", "basic_auth_password_hash"},
    };
    const struct config *cfg = c->cfg;

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        int a = find_field("http", pairs[i][0]), b = find_field("http", pairs[i][1]);
        const char *va = *(char *const *)((const char *)cfg + fields[a].off);
        const char *vb = *(char *const *)((const char *)cfg + fields[b].off);
        char sa[64], sb[64];

        if (c->bad[a] || c->bad[b] || (va[0] == '\0') == (vb[0] == '\0'))
            continue;
        snprintf(sa, sizeof(sa), "http.%s", pairs[i][0]);
        snprintf(sb, sizeof(sb), "http.%s", pairs[i][1]);
        if (va[0] != '\0')
            report(c, c->set[a], sa, "needs %s too", sb);
        else
            report(c, c->set[b], sb, "needs %s too", sa);
    }
    if (!c->bad[find_field("http", "basic_auth_password_hash")] &&
        cfg->http.basic_auth_password_hash[0] != '\0' &&
        cfg->http.basic_auth_password_hash[0] != '$')
        report(c, c->set[find_field("http", "basic_auth_password_hash")],
               "http.basic_auth_password_hash",
               "must be a crypt(3) hash such as \"$y$...\" (make one with mkpasswd), not a "
               "password");
}

/*
 * The deprecated identity settings, each with a warning that does not stop
 * the start. default_country_code is read as its code's main region (1 as
 * "US", 44 as "GB"), which reads national numbers as every region sharing
 * the code does; trunk_prefix is ignored, as libphonenumber knows each
 * region's own. Beside default_region, the code must be that region's
 * (unless the region is wrong itself, which its own error says).
 */
static void check_identity(struct ctx *c)
{
    int cc = find_field("identity", "default_country_code");
    int tp = find_field("identity", "trunk_prefix");
    int dr = find_field("identity", "default_region");
    const char *written = c->cfg->identity.default_region;
    char region[PHONE_REGION_SIZE];

    if (c->set[cc] && !c->bad[cc]) {
        const char *v = c->cfg->identity.default_country_code;
        int code = atoi(v), rc = phone_code_region(code, region, sizeof(region));

        if (rc == -ENOMEM) {
            c->oom = true;
        } else if (rc < 0) {
            report(c, c->set[cc], "identity.default_country_code",
                   "deprecated, and no region has country code %s; set identity.default_region "
                   "instead",
                   v);
        } else if (!c->set[dr]) {
            if (set_string(c, fields[dr].off, region)) {
                report(c, c->set[cc], "identity.default_country_code",
                       "deprecated; read as identity.default_region = \"%s\", which is what to "
                       "write instead",
                       region);
                c->nwarnings++;
            }
        } else if (!c->bad[dr] && phone_region_code(written) != code) {
            report(c, c->set[cc], "identity.default_country_code",
                   "deprecated, and contradicts identity.default_region (\"%s\" has country code "
                   "%d); remove it",
                   written, phone_region_code(written));
        } else if (!c->bad[dr]) {
            report(c, c->set[cc], "identity.default_country_code",
                   "deprecated, and identity.default_region is set; remove it");
            c->nwarnings++;
        }
    }
    if (c->set[tp] && !c->bad[tp]) {
        report(c, c->set[tp], "identity.trunk_prefix",
               "deprecated and ignored: libphonenumber knows each region's trunk prefix; "
               "remove it");
        c->nwarnings++;
    }
}

/*
 * Outputs must be distinct, and none may be an input: the daemon would
 * consume what it produces, and a dead letter would come back as a poison pill.
 */
static void check_outputs(struct ctx *c)
{
    static const char *const names[] = {"tickets_topic", "responses_topic", "identities_topic",
                                        "dlq_topic"};
    const size_t nouts = sizeof(names) / sizeof(names[0]);
    int topics = find_field("kafka", "topics");
    const struct config *cfg = c->cfg;

    for (size_t i = 0; i < nouts; i++) {
        int a = find_field("output", names[i]);
        char setting[64];

        if (c->bad[a])
            continue;
        snprintf(setting, sizeof(setting), "output.%s", names[i]);
        for (size_t j = 0; j < i; j++) {
            int b = find_field("output", names[j]);

            if (c->bad[b] || strcmp(field_string(c, a), field_string(c, b)) != 0)
                continue;
            /* Both cannot be defaults (those differ), so at least one was written. */
            if (c->set[a]) {
                report(c, c->set[a], setting, "must differ from output.%s (both \"%s\")", names[j],
                       field_string(c, a));
            } else {
                char other[64];

                snprintf(other, sizeof(other), "output.%s", names[j]);
                report(c, c->set[b], other, "must differ from output.%s (both \"%s\")", names[i],
                       field_string(c, a));
            }
        }
        if (c->bad[topics])
            continue;
        for (size_t t = 0; t < cfg->kafka.ntopics; t++) {
            if (strcmp(cfg->kafka.topics[t], field_string(c, a)) != 0)
                continue;
            if (c->set[a])
                report(c, c->set[a], setting,
                       "must not be one of kafka.topics, or the daemon would consume its own "
                       "output (got \"%s\")",
                       field_string(c, a));
            else
                report(c, c->set[topics], "kafka.topics",
                       "must not include %s (\"%s\"), or the daemon would consume its own output",
                       setting, field_string(c, a));
        }
    }
}

/*
 * The identity store's directory, when the file names one: it must exist and
 * be writable, or be creatable. The default is checked by -t and at the start,
 * since a file that does not name it should not fail for whoever reads it.
 */
static void check_store(struct ctx *c)
{
    int fi = find_field("identity", "store_path");
    char why[512];

    if (c->bad[fi] || !c->set[fi])
        return;
    if (linkstore_check_dir(c->cfg->identity.store_path, why, sizeof(why)) < 0)
        report(c, c->set[fi], "identity.store_path", "%s", why);
}

static bool errs_add(struct config_errors *errs, char *msg)
{
    char **msgs;

    if (!msg)
        return false;
    if (!errs) {
        free(msg);
        return true;
    }
    msgs = realloc(errs->msgs, (errs->n + 1) * sizeof(*msgs));
    if (!msgs) {
        free(msg);
        return false;
    }
    errs->msgs = msgs;
    errs->msgs[errs->n++] = msg;
    return true;
}

__attribute__((format(printf, 2, 3))) static void errs_addf(struct config_errors *errs,
                                                            const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    errs_add(errs, msg);
}

/* What a file that is not a regular one is, for messages. */
static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
        return "a FIFO";
    case S_IFSOCK:
        return "a socket";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    default:
        return "of an unknown type";
    }
}

/*
 * Read a whole regular file, of at most max bytes, NUL-terminated, into
 * *textp (the caller frees it) and its length into *lenp. Opening does not
 * wait for a FIFO's writer. Returns 0, -EISDIR for a directory, -ENODEV for
 * anything else that is not a regular file (its type in *modep), -EFBIG
 * past max bytes, or another negative errno.
 */
static int read_regular(const char *path, size_t max, char **textp, size_t *lenp, mode_t *modep)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), err = 0;
    size_t len = 0, cap;
    char *text;
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    *modep = st.st_mode;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
    }
    /* The size is a hint: the file may change while it is read. One more byte finds its end. */
    if (st.st_size > 0 && (uintmax_t)st.st_size <= max)
        cap = (size_t)st.st_size + 1;
    else if (st.st_size > 0)
        cap = max + 1;
    else
        cap = max < 4096 ? max + 1 : 4096; /* no size given, as for a /proc file */
    text = malloc(cap + 1);
    while (text) {
        ssize_t n;

        if (len == cap) {
            char *grown;

            if (cap > max) {
                err = EFBIG;
                break;
            }
            cap = cap > max / 2 ? max + 1 : cap * 2;
            grown = realloc(text, cap + 1);
            if (!grown) {
                err = ENOMEM;
                break;
            }
            text = grown;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (!text)
        err = ENOMEM;
    close(fd);
    if (err) {
        free(text);
        return -err;
    }
    text[len] = '\0';
    *textp = text;
    *lenp = len;
    return 0;
}

/*
 * Read the main file ourselves: it gives open errors their errno, refuses
 * what is not a regular file (a FIFO would block for ever), and keeps
 * libconfig's scanner (which exits the process on a read error, e.g. on a
 * directory) away from the file.
 */
static int read_file(const char *path, char **textp, size_t *lenp, struct config_errors *errs)
{
    char *text = NULL, *nul;
    size_t len = 0;
    mode_t mode = 0;
    int rc = read_regular(path, MAX_FILE_BYTES, &text, &len, &mode);

    if (rc == -EFBIG)
        errs_addf(errs, "%s: cannot read: larger than %d bytes, so not a configuration file", path,
                  MAX_FILE_BYTES);
    else if (rc == -ENODEV)
        errs_addf(errs, "%s: cannot read: not a regular file but %s; name the configuration file",
                  path, file_kind(mode));
    else if (rc == -EISDIR || rc == -ENOMEM || rc == -EIO)
        errs_addf(errs, "%s: cannot read: %s", path, strerror(-rc));
    else if (rc < 0)
        errs_addf(errs, "%s: cannot open: %s", path, strerror(-rc));
    if (rc < 0)
        return rc;
    /* libconfig would stop at a NUL and silently ignore the rest of the file. */
    nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;

        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        errs_addf(errs, "%s:%d: syntax error: NUL byte in the file", path, line);
        free(text);
        return -EINVAL;
    }
    *textp = text;
    *lenp = len;
    return 0;
}

struct config *config_new_defaults(void)
{
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return NULL;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        char **slot = (char **)(void *)((char *)cfg + f->off);

        switch (f->kind) {
        case F_INT:
        case F_CHOICE_INT:
        case F_LEVEL:
            *int_slot(cfg, f->off) = f->def;
            break;
        case F_TOPICS:
            cfg->kafka.topics = calloc(1, sizeof(*cfg->kafka.topics));
            if (!cfg->kafka.topics || !(cfg->kafka.topics[0] = strdup(f->sdef)))
                return config_free(cfg);
            cfg->kafka.ntopics = 1;
            break;
        case F_PROPERTIES:
            break;
        default:
            if (f->sdef && !(*slot = strdup(f->sdef)))
                return config_free(cfg);
            break;
        }
    }
    return cfg;
}

const char *config_setting_at(size_t i, char *buf, size_t len)
{
    if (i >= NFIELDS)
        return NULL;
    snprintf(buf, len, "%s.%s", fields[i].section, fields[i].name);
    return buf;
}

const char *config_property(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->kafka.nproperties; i++)
        if (strcmp(cfg->kafka.properties[i].name, name) == 0)
            return cfg->kafka.properties[i].value;
    return NULL;
}

int config_max_poll_interval_ms(const struct config *cfg)
{
    const char *v = config_property(cfg, "max.poll.interval.ms");
    long ms = v ? strtol(v, NULL, 10) : 0;

    /* librdkafka has validated it (1 to 86400000) when the file was loaded. */
    return ms > 0 && ms <= 86400000 ? (int)ms : 300000;
}

/* Settings a running daemon takes at once on SIGHUP; the others need a restart. */
static bool reloadable(const struct field *f)
{
    return strcmp(f->section, "log") == 0 || strcmp(f->section, "responses") == 0 ||
           strcmp(f->section, "retry") == 0 || strcmp(f->section, "circuit_breaker") == 0;
}

static bool same_properties(const struct config *a, const struct config *b)
{
    if (a->kafka.nproperties != b->kafka.nproperties)
        return false;
    for (size_t i = 0; i < a->kafka.nproperties; i++)
        if (strcmp(a->kafka.properties[i].name, b->kafka.properties[i].name) != 0 ||
            strcmp(a->kafka.properties[i].value, b->kafka.properties[i].value) != 0)
            return false;
    return true;
}

static bool same_field(const struct field *f, const struct config *a, const struct config *b)
{
    const void *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;

    switch (f->kind) {
    case F_INT:
    case F_CHOICE_INT:
    case F_LEVEL:
        return *(const int *)pa == *(const int *)pb;
    case F_TOPICS:
        if (a->kafka.ntopics != b->kafka.ntopics)
            return false;
        for (size_t i = 0; i < a->kafka.ntopics; i++)
            if (strcmp(a->kafka.topics[i], b->kafka.topics[i]) != 0)
                return false;
        return true;
    case F_PROPERTIES:
        return same_properties(a, b);
    default: {
        /* A deprecated setting left unset is NULL. */
        const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;

        return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
    }
    }
}

int config_reload(struct config *cfg, struct config *fresh, char *restart, size_t len)
{
    size_t used = 0;
    int applied = 0;
    bool props_told = false;

    if (len > 0)
        restart[0] = '\0';
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        char *pa = (char *)cfg + f->off, *pb = (char *)fresh + f->off;

        if (same_field(f, cfg, fresh))
            continue;
        if (reloadable(f)) {
            /* Swapped, so that fresh frees the old value with itself. */
            if (f->kind == F_INT || f->kind == F_CHOICE_INT || f->kind == F_LEVEL) {
                int v = *(int *)(void *)pa;

                *(int *)(void *)pa = *(int *)(void *)pb;
                *(int *)(void *)pb = v;
            } else {
                char *v = *(char **)(void *)pa;

                *(char **)(void *)pa = *(char **)(void *)pb;
                *(char **)(void *)pb = v;
            }
            applied++;
            continue;
        }
        /* Both kinds of kafka.properties live in one list: name it once. */
        if (f->kind == F_PROPERTIES) {
            if (props_told)
                continue;
            props_told = true;
        }
        if (len > used) {
            int n = snprintf(restart + used, len - used, "%s%s.%s", used ? ", " : "", f->section,
                             f->kind == F_PROPERTIES ? "properties" : f->name);

            used += n > 0 ? (size_t)n : 0;
            if (used >= len)
                used = len - 1;
        }
    }
    return applied;
}

struct config *config_free(struct config *cfg)
{
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];

        switch (f->kind) {
        case F_INT:
        case F_CHOICE_INT:
        case F_LEVEL:
        case F_TOPICS:
        case F_PROPERTIES:
            break;
        default:
            free(*(char **)(void *)((char *)cfg + f->off));
            break;
        }
    }
    /* ntopics is 0 while a half-built default list is torn down. */
    if (cfg->kafka.topics) {
        for (size_t i = 0; i < cfg->kafka.ntopics; i++)
            free(cfg->kafka.topics[i]);
        free(cfg->kafka.topics);
    }
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        free(cfg->kafka.properties[i].name);
        free(cfg->kafka.properties[i].value);
        free(cfg->kafka.properties[i].file);
    }
    free(cfg->kafka.properties);
    free(cfg->path);
    free(cfg);
    return NULL;
}

void config_errors_clear(struct config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

static void check_root(struct ctx *c, config_setting_t *root)
{
    config_setting_t *kafka = config_setting_get_member(root, "kafka");
    int brokers = find_field("kafka", "brokers");

    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        bool known = false;

        for (size_t k = 0; sections[k]; k++)
            known = known || strcmp(name, sections[k]) == 0;
        if (known)
            check_section(c, s);
        else
            report_unknown(c, s, NULL);
    }
    /* A kafka that is not a group was reported already; "missing" would only add noise. */
    if (!c->set[brokers] && (!kafka || config_setting_type(kafka) == CONFIG_TYPE_GROUP))
        report(c, kafka, "kafka.brokers",
               "required setting is missing (e.g. brokers = \"localhost:9092\";)");
    check_backoff(c);
    check_identity(c);
    check_outputs(c);
    check_store(c);
    check_http_pairs(c);
}

/* Stable, so messages on one line keep the order they were found in. */
static void sort_diags(struct ctx *c)
{
    for (size_t i = 1; i < c->ndiags; i++) {
        struct diag d = c->diags[i];
        size_t j = i;

        for (; j > 0 && c->diags[j - 1].line > d.line; j--)
            c->diags[j] = c->diags[j - 1];
        c->diags[j] = d;
    }
}

/*
 * The settings a file's text holds, counted as the `=` and `:` outside
 * strings and comments (each setting has one; array elements have none).
 */
static size_t count_settings(const char *text)
{
    size_t n = 0;

    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p)
                break;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            p = strchrnul(p, '\n');
            if (!*p)
                break;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *close = strstr(p + 2, "*/");

            if (!close)
                break;
            p = close + 1;
        } else if (*p == '=' || *p == ':') {
            n++;
        }
    }
    return n;
}

/* What the files read so far hold, against the limits of the whole configuration. */
struct budget {
    size_t bytes;
    size_t settings;
};

/*
 * Check every @include of a file, and of the files it includes, before
 * libconfig reads them: libconfig's scanner exits the whole process when
 * an @include names a directory, waits for ever on a FIFO, and reads any
 * size. Each included file must be a regular file, and all of them with
 * the main file must stay within MAX_FILE_BYTES and MAX_SETTINGS. A file
 * that cannot be opened is left to libconfig, which reports it. Returns 0,
 * or -EINVAL with the reasons in errs.
 */
static int check_includes(const char *path, const char *text, int depth, struct budget *b,
                          struct config_errors *errs)
{
    int line = 1, rc = 0;

    for (const char *p = text; *p; line++) {
        const char *eol = strchrnul(p, '\n'), *q = p, *end;
        char *name = NULL, *inc = NULL;
        size_t len = 0;
        mode_t mode = 0;
        int r;

        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        p = *eol ? eol + 1 : eol;
        if (strncmp(q, "@include", 8) != 0 || depth >= MAX_INCLUDE_DEPTH)
            continue;
        q += 8;
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        end = q < eol && *q == '"' ? memchr(q + 1, '"', (size_t)(eol - q - 1)) : NULL;
        /* As libconfig does, a relative name is taken from the working directory. */
        if (!end || !(name = strndup(q + 1, (size_t)(end - q - 1))))
            continue;
        r = read_regular(name, MAX_FILE_BYTES - b->bytes, &inc, &len, &mode);
        if (r == 0) {
            b->bytes += len;
            b->settings += count_settings(inc);
            if (check_includes(name, inc, depth + 1, b, errs) < 0)
                rc = -EINVAL;
        } else if (r == -EISDIR) {
            errs_addf(errs, "%s:%d: syntax error: cannot include \"%s\": %s", path, line, name,
                      strerror(EISDIR));
        } else if (r == -ENODEV) {
            errs_addf(errs, "%s:%d: syntax error: cannot include \"%s\": not a regular file but %s",
                      path, line, name, file_kind(mode));
        } else if (r == -EFBIG) {
            errs_addf(errs,
                      "%s:%d: syntax error: cannot include \"%s\": the file and its includes "
                      "together would be over %d bytes, so not a configuration",
                      path, line, name, MAX_FILE_BYTES);
        } else if (r == -ENOMEM) {
            errs_addf(errs, "%s:%d: cannot include \"%s\": %s", path, line, name, strerror(ENOMEM));
        }
        if (r == -EISDIR || r == -ENODEV || r == -EFBIG || r == -ENOMEM)
            rc = -EINVAL;
        free(inc);
        free(name);
    }
    return rc;
}

int config_load(const char *path, struct config **out, struct config_errors *errs)
{
    struct ctx c = {.path = path};
    struct budget b = {0};
    char *text = NULL;
    config_t lc;
    int rc;

    *out = NULL;
    rc = read_file(path, &text, &b.bytes, errs);
    if (rc < 0)
        return rc;
    config_init(&lc);
    b.settings = count_settings(text);
    rc = check_includes(path, text, 0, &b, errs);
    if (rc < 0)
        goto done;
    if (b.settings > MAX_SETTINGS) {
        errs_addf(errs,
                  "%s: cannot read: over %d settings in the file and its includes together, so "
                  "not a configuration",
                  path, MAX_SETTINGS);
        rc = -EINVAL;
        goto done;
    }
    if (!config_read_string(&lc, text)) {
        const char *file = config_error_file(&lc);

        errs_addf(errs, "%s:%d: syntax error: %s", file ? file : path, config_error_line(&lc),
                  config_error_text(&lc));
        rc = -EINVAL;
        goto done;
    }
    c.text = text;
    c.cfg = config_new_defaults();
    if (!c.cfg || !(c.cfg->path = strdup(path))) {
        rc = -ENOMEM;
        goto done;
    }
    check_root(&c, config_root_setting(&lc));
    sort_diags(&c);
    for (size_t i = 0; i < c.ndiags; i++) {
        if (!errs_add(errs, c.diags[i].msg))
            c.oom = true;
    }
    if (c.oom)
        rc = -ENOMEM;
    else if (c.ndiags > c.nwarnings)
        rc = -EINVAL;
    if (rc == 0) {
        *out = c.cfg;
        c.cfg = NULL;
    }
done:
    free(c.diags);
    config_free(c.cfg);
    config_destroy(&lc);
    free(text);
    return rc;
}
