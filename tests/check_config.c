/* SPDX-License-Identifier: MIT */
/* check_config.c -- unit tests of config.c: defaults, every class of mistake, exact messages. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <check.h>

#include "config.h"

/* Every test writes its files here; main() creates it and removes it afterwards. */
static char tmpdir[] = "/tmp/check_config.XXXXXX";

/* Write `len` bytes of text to a fresh file in tmpdir; returns its path (free it). */
static char *write_bytes(const char *text, size_t len)
{
    static unsigned serial;
    char *path = NULL;
    FILE *fp;

    ck_assert_int_ge(asprintf(&path, "%s/t%u.conf", tmpdir, serial++), 0);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
    return path;
}

static char *write_conf(const char *text)
{
    return write_bytes(text, strlen(text));
}

/* Load text; the path written is returned in *pathp for building expected messages. */
static int load_text(const char *text, char **pathp, struct config **cfg,
                     struct config_errors *errs)
{
    *pathp = write_conf(text);
    return config_load(*pathp, cfg, errs);
}

/* Assert that text fails with exactly one message: the path followed by `want`. */
static void assert_one_error(const char *text, const char *want)
{
    struct config_errors errs = {0};
    struct config *cfg = (struct config *)1;
    char *path, *full = NULL;
    int rc = load_text(text, &path, &cfg, &errs);

    ck_assert_int_ge(asprintf(&full, "%s%s", path, want), 0);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_str_eq(errs.msgs[0], full);
    config_errors_clear(&errs);
    ck_assert_uint_eq(errs.n, 0);
    free(full);
    unlink(path);
    free(path);
}

/* Load text that must be valid; returns the config (free it). */
static struct config *assert_loads(const char *text)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path;
    int rc = load_text(text, &path, &cfg, &errs);

    ck_assert_msg(rc == 0, "%s: rc %d, first error: %s", text, rc,
                  errs.n ? errs.msgs[0] : "(none)");
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->path, path);
    unlink(path);
    free(path);
    return cfg;
}

#define BROKERS "kafka = { brokers = \"b:9092\"; };\n"
#define ALLOWED "allowed: {name}, {ticket_id}, {subject}, {customer_id}, {channel}"
#define TOPIC_RULE                                                                                 \
    "must be a Kafka topic name of 1 to 249 characters from [A-Za-z0-9._-], not \".\" or \"..\""
#define CONSUME_OWN "or the daemon would consume its own output"
#define REGION_RULE                                                                                \
    "must be a region libphonenumber knows, in two capitals (ISO 3166-1 alpha-2) such as \"US\" "  \
    "or "                                                                                          \
    "\"GB\""

/* One mistake per row: the file, and the message after "PATH". */
static const struct {
    const char *text;
    const char *want;
} mistakes[] = {
    /* out of range */
    {BROKERS "processing = { batch_size = 0; };\n",
     ":2: processing.batch_size: must be an integer from 1 to 100000 (got 0)"},
    {BROKERS "http = {\n max_connections = 100001;\n};\n",
     ":3: http.max_connections: must be an integer from 1 to 100000 (got 100001)"},
    {BROKERS "identity = { store_max_mb = 0; };\n",
     ":2: identity.store_max_mb: must be an integer from 1 to 1048576 (got 0)"},
    {BROKERS "identity = {\n  max_links = 1000000;\n};\n",
     ":3: identity.max_links: retired: the links are kept on disk in identity.store_path, up to "
     "identity.store_max_mb, and none is evicted; remove it"},
    {BROKERS "identity = { store_path = \"/dev/null/identities\"; };\n",
     ":2: identity.store_path: /dev/null is not a directory"},
    {BROKERS "identity = { store_path = \"\"; };\n",
     ":2: identity.store_path: must be a non-empty string of at most 4000 characters (got \"\")"},
    {BROKERS "retry = { max_attempts = 5000000000L; };\n",
     ":2: retry.max_attempts: must be an integer from 1 to 1000 (got 5000000000)"},
    /* libconfig 1.5 reads this as 1: the literal must be checked */
    {BROKERS "processing = { batch_size = 4294967297; };\n",
     ":2: processing.batch_size: must be an integer from 1 to 100000 (got 4294967297)"},
    {BROKERS "processing = { max_in_flight = 0x100000001; };\n",
     ":2: processing.max_in_flight: must be an integer from 1 to 10000000 (got 0x100000001)"},
    /* wrong type */
    {BROKERS "processing = { batch_size = \"500\"; };\n",
     ":2: processing.batch_size: must be an integer from 1 to 100000 (got a string)"},
    {BROKERS "processing = { batch_timeout_ms = 1.5; };\n",
     ":2: processing.batch_timeout_ms: must be an integer from 1 to 60000 (got a float)"},
    {BROKERS "circuit_breaker = { open_timeout_s = true; };\n",
     ":2: circuit_breaker.open_timeout_s: must be an integer from 1 to 86400 (got a boolean)"},
    {BROKERS "retry = { max_attempts = { n = 1; }; };\n",
     ":2: retry.max_attempts: must be an integer from 1 to 1000 (got a group)"},
    {BROKERS "http = { timeout_s = [ 1 ]; };\n",
     ":2: http.timeout_s: must be an integer from 1 to 3600 (got an array)"},
    {BROKERS "http = { timeout_s = ( 1 ); };\n",
     ":2: http.timeout_s: must be an integer from 1 to 3600 (got a list)"},
    {"kafka = { brokers = \"b\"; group_id = 7; };\n",
     ":1: kafka.group_id: must be a non-empty string of at most 255 characters (got an integer)"},
    {"kafka = { brokers = \"b\"; client_id = \"\"; };\n",
     ":1: kafka.client_id: must be a non-empty string of at most 255 characters (got \"\")"},
    {"kafka = { brokers = \"\"; };\n",
     ":1: kafka.brokers: must be a non-empty string of at most 4096 characters (got \"\")"},
    {BROKERS "log = \"debug\";\n", ":2: log: must be a group (got a string)"},
    {"kafka = 1;\n", ":1: kafka: must be a group (got an integer)"},
    /* unknown settings */
    {BROKERS "kafak = { };\n", ":2: kafak: unknown setting (did you mean \"kafka\"?)"},
    {BROKERS "telemetry = 1;\n", ":2: telemetry: unknown setting"},
    {"kafka = {\n  brokers = \"b\";\n  brokerz = \"c\";\n};\n",
     ":3: kafka.brokerz: unknown setting (did you mean \"brokers\"?)"},
    {BROKERS "processing = { batchsize = 5; };\n",
     ":2: processing.batchsize: unknown setting (did you mean \"batch_size\"?)"},
    {BROKERS "processing = { frobnicate = 5; };\n", ":2: processing.frobnicate: unknown setting"},
    /* bad enums */
    {BROKERS "log = { level = \"verbose\"; };\n",
     ":2: log.level: must be one of \"error\", \"warning\", \"notice\", \"info\", \"debug\" "
     "(got \"verbose\")"},
    {BROKERS "log = { level = \"info\\n\"; };\n",
     ":2: log.level: must be one of \"error\", \"warning\", \"notice\", \"info\", \"debug\" "
     "(got \"info\\x0a\")"},
    {BROKERS "log = { level = 7; };\n",
     ":2: log.level: must be one of \"error\", \"warning\", \"notice\", \"info\", \"debug\" "
     "(got an integer)"},
    {"kafka = { brokers = \"b\"; auto_offset_reset = \"smallest\"; };\n",
     ":1: kafka.auto_offset_reset: must be one of \"earliest\", \"latest\", \"error\" "
     "(got \"smallest\")"},
    {BROKERS "processing = { unknown_type = \"drop\"; };\n",
     ":2: processing.unknown_type: must be one of \"dead_letter\", \"skip\" (got \"drop\")"},
    /* missing brokers */
    {"\nkafka = {\n  group_id = \"g\";\n};\n",
     ":2: kafka.brokers: required setting is missing (e.g. brokers = \"localhost:9092\";)"},
    {"log = { level = \"info\"; };\n",
     ":1: kafka.brokers: required setting is missing (e.g. brokers = \"localhost:9092\";)"},
    {"", ":1: kafka.brokers: required setting is missing (e.g. brokers = \"localhost:9092\";)"},
    /* topics */
    {"kafka = { brokers = \"b\";\n topics = [ \"crm inbound\" ]; };\n",
     ":2: kafka.topics[0]: " TOPIC_RULE " (got \"crm inbound\")"},
    {"kafka = { brokers = \"b\";\n topics = [ \"ok\", \"..\" ]; };\n",
     ":2: kafka.topics[1]: " TOPIC_RULE " (got \"..\")"},
    {"kafka = { brokers = \"b\";\n topics = ( \"ok\", 5 ); };\n",
     ":2: kafka.topics[1]: " TOPIC_RULE " (got an integer)"},
    {"kafka = { brokers = \"b\";\n topics = [ ]; };\n",
     ":2: kafka.topics: must be a non-empty array or list of 1 to 256 topic names "
     "(got an empty array)"},
    {"kafka = { brokers = \"b\";\n topics = \"crm.inbound\"; };\n",
     ":2: kafka.topics: must be a non-empty array or list of 1 to 256 topic names (got a string)"},
    {"kafka = { brokers = \"b\";\n topics = [ \"a\", \"b\",\n \"a\" ]; };\n",
     ":3: kafka.topics[2]: must not repeat a topic (got \"a\", already kafka.topics[0])"},
    {BROKERS "output = { dlq_topic = \"crm/dlq\"; };\n",
     ":2: output.dlq_topic: " TOPIC_RULE " (got \"crm/dlq\")"},
    /* outputs against inputs and each other */
    {BROKERS "output = {\n dlq_topic = \"crm.inbound\";\n};\n",
     ":3: output.dlq_topic: must not be one of kafka.topics, " CONSUME_OWN
     " (got \"crm.inbound\")"},
    {"kafka = { brokers = \"b\";\n topics = [ \"crm.tickets\" ]; };\n",
     ":2: kafka.topics: must not include output.tickets_topic (\"crm.tickets\"), " CONSUME_OWN},
    {BROKERS "output = { responses_topic = \"crm.tickets\"; };\n",
     ":2: output.responses_topic: must differ from output.tickets_topic (both \"crm.tickets\")"},
    {BROKERS "output = { tickets_topic = \"crm.responses\"; };\n",
     ":2: output.tickets_topic: must differ from output.responses_topic (both \"crm.responses\")"},
    /* properties */
    {"kafka = { brokers = \"b\";\n properties = { group_id = \"x\"; }; };\n",
     ":2: kafka.properties.group_id: set by crm-consumerd; use kafka.group_id"},
    {"kafka = { brokers = \"b\";\n properties = { bootstrap_servers = \"x\"; }; };\n",
     ":2: kafka.properties.bootstrap_servers: set by crm-consumerd; use kafka.brokers"},
    {"kafka = { brokers = \"b\";\n properties = { metadata_broker_list = \"x\"; }; };\n",
     ":2: kafka.properties.metadata_broker_list: set by crm-consumerd; use kafka.brokers"},
    {"kafka = { brokers = \"b\";\n properties = { client_id = \"x\"; }; };\n",
     ":2: kafka.properties.client_id: set by crm-consumerd; use kafka.client_id"},
    {"kafka = { brokers = \"b\";\n properties = { auto_offset_reset = \"latest\"; }; };\n",
     ":2: kafka.properties.auto_offset_reset: set by crm-consumerd; use kafka.auto_offset_reset"},
    {"kafka = { brokers = \"b\";\n properties = { enable_auto_commit = true; }; };\n",
     ":2: kafka.properties.enable_auto_commit: managed by crm-consumerd for at-least-once "
     "delivery; remove it"},
    {"kafka = { brokers = \"b\";\n properties = { enable_auto_offset_store = true; }; };\n",
     ":2: kafka.properties.enable_auto_offset_store: managed by crm-consumerd for at-least-once "
     "delivery; remove it"},
    {"kafka = { brokers = \"b\";\n properties = { auto_commit_enable = false; }; };\n",
     ":2: kafka.properties.auto_commit_enable: managed by crm-consumerd for at-least-once "
     "delivery; remove it"},
    /* properties the daemon sets for its guarantees: only its own value, or none */
    {"kafka = { brokers = \"b\";\n properties = { enable_idempotence = false; }; };\n",
     ":2: kafka.properties.enable_idempotence: must be true, as crm-consumerd sets it: the "
     "producer is idempotent, so that its retries neither duplicate nor reorder outputs"},
    {"kafka = { brokers = \"b\";\n properties = { enable_partition_eof = \"false\"; }; };\n",
     ":2: kafka.properties.enable_partition_eof: must be true, as crm-consumerd sets it: the "
     "reader of output.identities_topic needs it to know when it has read every link"},
    {"kafka = { brokers = \"b\";\n properties = { transactional_id = \"crm\"; }; };\n",
     ":2: kafka.properties.transactional_id: not allowed: the producer is idempotent, not "
     "transactional, and librdkafka refuses every output of a transactional producer sent "
     "outside a transaction; remove it"},
    {"kafka = { brokers = \"b\";\n properties = { debug = [ \"all\" ]; }; };\n",
     ":2: kafka.properties.debug: must be an integer, a float, a boolean or a string "
     "(got an array)"},
    {"kafka = { brokers = \"b\";\n properties = 5; };\n",
     ":2: kafka.properties: must be a group (got an integer)"},
    {"kafka = { brokers = \"b\";\n properties = { fetch_max_bytes = 4294968320; }; };\n",
     ":2: kafka.properties.fetch_max_bytes: must be an integer from -2147483648 to 2147483647, "
     "or end in L for a 64-bit integer (got 4294968320)"},
    /* templates */
    {BROKERS "responses = { email = \"Hi {nmae}\"; };\n",
     ":2: responses.email: unknown placeholder \"{nmae}\"; " ALLOWED},
    {BROKERS "responses = { whatsapp = \"Hi {}\"; };\n",
     ":2: responses.whatsapp: unknown placeholder \"{}\"; " ALLOWED},
    {BROKERS "responses = { form = \"Hi {name\"; };\n",
     ":2: responses.form: unbalanced brace at character 4"},
    {BROKERS "responses = { form = \"a } b\"; };\n",
     ":2: responses.form: unbalanced brace at character 3"},
    {BROKERS "responses = { email = \"\"; };\n",
     ":2: responses.email: must be a non-empty string of at most 4096 characters (got \"\")"},
    /* listen addresses */
    {BROKERS "http = { listen = \"localhost\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \"localhost\")"},
    {BROKERS "http = { listen = \"127.0.0.1:0\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \"127.0.0.1:0\")"},
    {BROKERS "http = { listen = \":9464\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \":9464\")"},
    {BROKERS "http = { listen = \"::1:9464\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \"::1:9464\")"},
    {BROKERS "http = { listen = \"[::1]:65536\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \"[::1]:65536\")"},
    {BROKERS "http = { listen = \"[zz]:80\"; };\n",
     ":2: http.listen: must be \"HOST:PORT\" or \"[IPV6]:PORT\" with a port from 1 to 65535 "
     "(got \"[zz]:80\")"},
    /* retry cross-check */
    {BROKERS "retry = { initial_backoff_ms = 1000;\n max_backoff_ms = 500; };\n",
     ":3: retry.max_backoff_ms: must be at least retry.initial_backoff_ms (1000)"},
    {BROKERS "retry = { initial_backoff_ms = 60000; };\n",
     ":2: retry.initial_backoff_ms: must be at most retry.max_backoff_ms (30000)"},
    /* identity */
    {BROKERS "identity = { default_country_code = \"01\"; };\n",
     ":2: identity.default_country_code: must be a string of 1 to 3 digits, not starting with 0 "
     "(got \"01\")"},
    {BROKERS "identity = { default_country_code = \"1234\"; };\n",
     ":2: identity.default_country_code: must be a string of 1 to 3 digits, not starting with 0 "
     "(got \"1234\")"},
    {BROKERS "identity = { trunk_prefix = \"abc\"; };\n",
     ":2: identity.trunk_prefix: must be a string of 0 to 2 digits (got \"abc\")"},
    {BROKERS "identity = { trunk_prefix = 0; };\n",
     ":2: identity.trunk_prefix: must be a string of 0 to 2 digits (got an integer)"},
    {BROKERS "identity = { default_region = \"XX\"; };\n",
     ":2: identity.default_region: " REGION_RULE " (got \"XX\")"},
    {BROKERS "identity = { default_region = \"gb\"; };\n",
     ":2: identity.default_region: " REGION_RULE " (got \"gb\")"},
    {BROKERS "identity = { default_region = \"GBR\"; };\n",
     ":2: identity.default_region: " REGION_RULE " (got \"GBR\")"},
    {BROKERS "identity = { default_region = \"001\"; };\n",
     ":2: identity.default_region: " REGION_RULE " (got \"001\")"},
    {BROKERS "identity = { default_region = 44; };\n",
     ":2: identity.default_region: " REGION_RULE " (got an integer)"},
    {BROKERS "identity = { default_country_code = \"800\"; };\n",
     ":2: identity.default_country_code: deprecated, and no region has country code 800; set "
     "identity.default_region instead"},
    {BROKERS "identity = { default_country_code = \"999\"; };\n",
     ":2: identity.default_country_code: deprecated, and no region has country code 999; set "
     "identity.default_region instead"},
    {BROKERS "identity = { default_region = \"XX\"; default_country_code = \"44\"; };\n",
     ":2: identity.default_region: " REGION_RULE " (got \"XX\")"},
    {BROKERS "identity = {\n default_region = \"US\";\n default_country_code = \"44\"; };\n",
     ":4: identity.default_country_code: deprecated, and contradicts identity.default_region "
     "(\"US\" has country code 1); remove it"},
    /* http settings that only go together */
    {BROKERS "http = { tls_cert_file = \"/etc/crm/cert.pem\"; };\n",
     ":2: http.tls_cert_file: needs http.tls_key_file too"},
    {BROKERS "http = { basic_auth_password_hash = \"$y$j9T$abc$def\"; };\n",
     ":2: http.basic_auth_password_hash: needs http.basic_auth_user too"},
    {BROKERS "http = { basic_auth_user = \"prom\"; basic_auth_password_hash = \"hunter2\"; };\n",
     ":2: http.basic_auth_password_hash: must be a crypt(3) hash such as \"$y$...\" (make one "
     "with mkpasswd), not a password"},
    {BROKERS "http = { max_connections_per_ip = 0; };\n",
     ":2: http.max_connections_per_ip: must be an integer from 1 to 100000 (got 0)"},
    /* secret files */
    {"kafka = { brokers = \"b\";\n secret_files = { sasl_password = \"/nonexistent/pw\"; }; };\n",
     ":2: kafka.secret_files.sasl_password: cannot read /nonexistent/pw: No such file or "
     "directory"},
    {"kafka = { brokers = \"b\";\n secret_files = { sasl_password = 7; }; };\n",
     ":2: kafka.secret_files.sasl_password: must be the path of a file holding the value (got an "
     "integer)"},
    {"kafka = { brokers = \"b\";\n secret_files = { group_id = \"/etc/hostname\"; }; };\n",
     ":2: kafka.secret_files.group_id: set by crm-consumerd; use kafka.group_id"},
    {"kafka = { brokers = \"b\"; properties = { client_rack = \"r1\"; };\n"
     " secret_files = { client_rack = \"/etc/hostname\"; }; };\n",
     ":2: kafka.secret_files.client_rack: set twice (also on line 1)"},
    /* syntax */
    {"kafka = {\n  brokers = ;\n};\n", ":2: syntax error: syntax error"},
    {"a = 1;\na = 2;\n", ":2: syntax error: duplicate setting name"},
};

START_TEST(test_mistake)
{
    assert_one_error(mistakes[_i].text, mistakes[_i].want);
}
END_TEST

/* Valid corner cases: each must load without a message. */
static const char *const valid[] = {
    BROKERS "identity = { default_region = \"UZ\"; store_max_mb = 1; };\n",
    BROKERS "identity = { default_region = \"IT\"; };\n",
    BROKERS "identity = { store_path = \"/tmp/crm-consumerd-check-config/a/b\"; };\n",
    BROKERS "http = { listen = \"[::1]:9464\"; };\n",
    BROKERS "http = { listen = \"localhost:1\"; };\n",
    BROKERS "responses = { email = \"{{literal}} {name} }} {{\"; };\n",
    BROKERS "processing = { batch_size = 500L; max_in_flight = 0x10; };\n",
    "kafka = { brokers = \"b\";\n"
    " properties = { enable_idempotence = true; enable_partition_eof = \"true\"; }; };\n",
    "kafka = { brokers = \"b\"; topics = ( \"a\", \"b-c_d.e\" ); };\n",
    BROKERS "retry = { initial_backoff_ms = 30000; };\n",
    /* The same name in two groups on one line: each literal is matched to its own value. */
    BROKERS "retry = { max_attempts = 7; }; http = { timeout_s = 7; }; processing = { "
            "shutdown_timeout_s = 9; };\n",
    "# comment\n" BROKERS "log = { level = \"debug\"; };\n",
};

START_TEST(test_valid)
{
    config_free(assert_loads(valid[_i]));
}
END_TEST

/*
 * The deprecated identity settings load, each with a warning naming its
 * line, and default_country_code becomes its code's main region.
 */
static const struct {
    const char *text;
    const char *region;
    const char *warnings[2]; /* after "PATH" */
} deprecated[] = {
    {BROKERS "identity = { default_country_code = \"44\";\n trunk_prefix = \"0\"; };\n",
     "GB",
     {":2: identity.default_country_code: deprecated; read as identity.default_region = \"GB\", "
      "which is what to write instead",
      ":3: identity.trunk_prefix: deprecated and ignored: libphonenumber knows each region's "
      "trunk prefix; remove it"}},
    {BROKERS "identity = { default_country_code = \"1\"; trunk_prefix = \"1\"; };\n",
     "US",
     {":2: identity.default_country_code: deprecated; read as identity.default_region = \"US\", "
      "which is what to write instead",
      ":2: identity.trunk_prefix: deprecated and ignored: libphonenumber knows each region's "
      "trunk prefix; remove it"}},
    {BROKERS "identity = { default_country_code = \"998\"; };\n",
     "UZ",
     {":2: identity.default_country_code: deprecated; read as identity.default_region = \"UZ\", "
      "which is what to write instead"}},
    {BROKERS "identity = { trunk_prefix = \"\"; };\n",
     "US",
     {":2: identity.trunk_prefix: deprecated and ignored: libphonenumber knows each region's "
      "trunk prefix; remove it"}},
    {BROKERS "identity = { default_region = \"CA\"; default_country_code = \"1\"; };\n",
     "CA",
     {":2: identity.default_country_code: deprecated, and identity.default_region is set; "
      "remove it"}},
};

START_TEST(test_deprecated)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path, *want = NULL;
    size_t n = deprecated[_i].warnings[1] ? 2 : 1;
    int rc = load_text(deprecated[_i].text, &path, &cfg, &errs);

    ck_assert_msg(rc == 0, "rc %d, first message: %s", rc, errs.n ? errs.msgs[0] : "(none)");
    ck_assert_str_eq(cfg->identity.default_region, deprecated[_i].region);
    ck_assert_uint_eq(errs.n, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_ge(asprintf(&want, "%s%s", path, deprecated[_i].warnings[i]), 0);
        ck_assert_str_eq(errs.msgs[i], want);
        free(want);
    }
    config_errors_clear(&errs);
    config_free(cfg);
    unlink(path);
    free(path);
}
END_TEST

/* A warning beside an error is reported with it, and the file is refused. */
START_TEST(test_deprecated_with_error)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path;
    int rc = load_text(BROKERS "identity = { trunk_prefix = \"0\"; };\nlog = { level = 3; };\n",
                       &path, &cfg, &errs);

    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, 2);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], ":2: identity.trunk_prefix: deprecated"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[1], ":3: log.level: must be one of"));
    config_errors_clear(&errs);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_shipped_example)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    int rc = config_load("conf/crm-consumer.conf", &cfg, &errs);

    ck_assert_msg(rc == 0, "rc %d, first error: %s", rc, errs.n ? errs.msgs[0] : "(none)");
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_str_eq(cfg->kafka.brokers, "localhost:9092");
    ck_assert_uint_eq(cfg->kafka.nproperties, 0);
    config_free(cfg);
}
END_TEST

static void assert_defaults(const struct config *cfg)
{
    ck_assert_str_eq(cfg->kafka.group_id, "crm-consumer");
    ck_assert_str_eq(cfg->kafka.client_id, "crm-consumerd");
    ck_assert_uint_eq(cfg->kafka.ntopics, 1);
    ck_assert_str_eq(cfg->kafka.topics[0], "crm.inbound");
    ck_assert_str_eq(cfg->kafka.auto_offset_reset, "earliest");
    ck_assert_ptr_null(cfg->kafka.properties);
    ck_assert_uint_eq(cfg->kafka.nproperties, 0);
    ck_assert_int_eq(cfg->processing.batch_size, 500);
    ck_assert_int_eq(cfg->processing.batch_timeout_ms, 100);
    ck_assert_int_eq(cfg->processing.max_in_flight, 20000);
    ck_assert_int_eq(cfg->processing.max_message_bytes, 1048576);
    ck_assert_int_eq(cfg->processing.max_nesting_depth, 64);
    ck_assert_int_eq(cfg->processing.shutdown_timeout_s, 30);
    ck_assert_int_eq(cfg->processing.unknown_type, UNKNOWN_TYPE_DEAD_LETTER);
    ck_assert_int_eq(cfg->retry.max_attempts, 5);
    ck_assert_int_eq(cfg->retry.initial_backoff_ms, 100);
    ck_assert_int_eq(cfg->retry.max_backoff_ms, 30000);
    ck_assert_int_eq(cfg->circuit_breaker.failure_threshold, 5);
    ck_assert_int_eq(cfg->circuit_breaker.open_timeout_s, 60);
    ck_assert_str_eq(cfg->output.tickets_topic, "crm.tickets");
    ck_assert_str_eq(cfg->output.responses_topic, "crm.responses");
    ck_assert_str_eq(cfg->output.identities_topic, "crm.identities");
    ck_assert_str_eq(cfg->output.dlq_topic, "crm.inbound.dlq");
    ck_assert_str_eq(cfg->identity.default_region, "US");
    ck_assert_ptr_null(cfg->identity.default_country_code);
    ck_assert_ptr_null(cfg->identity.trunk_prefix);
    ck_assert_str_eq(cfg->identity.store_path, "/var/lib/crm-consumerd/identities");
    ck_assert_int_eq(cfg->identity.store_max_mb, 1024);
    ck_assert_str_eq(cfg->responses.email,
                     "Hello {name}, we received \"{subject}\". Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->responses.whatsapp,
                     "Hi {name}, thanks for your message. Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->responses.form,
                     "Hello {name}, thank you for contacting us. Your ticket is {ticket_id}.");
    ck_assert_str_eq(cfg->http.listen, "127.0.0.1:9464");
    ck_assert_int_eq(cfg->http.max_connections, 64);
    ck_assert_int_eq(cfg->http.timeout_s, 10);
    ck_assert_int_eq(cfg->log.level, LOG_INFO);
}

START_TEST(test_minimal_gives_defaults)
{
    struct config *cfg = assert_loads("kafka = { brokers = \"b1:9092,b2:9092\"; };\n");

    ck_assert_str_eq(cfg->kafka.brokers, "b1:9092,b2:9092");
    assert_defaults(cfg);
    config_free(cfg);
}
END_TEST

START_TEST(test_new_defaults)
{
    struct config *cfg = config_new_defaults();

    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_null(cfg->kafka.brokers);
    ck_assert_ptr_null(cfg->path);
    assert_defaults(cfg);
    ck_assert_ptr_null(config_free(cfg));
    ck_assert_ptr_null(config_free(NULL));
}
END_TEST

START_TEST(test_values_stored)
{
    struct config *cfg = assert_loads("kafka = {\n"
                                      "  brokers = \"k:1\";\n"
                                      "  topics = [ \"in.a\", \"in.b\" ];\n"
                                      "  auto_offset_reset = \"error\";\n"
                                      "};\n"
                                      "processing = { unknown_type = \"skip\"; batch_size = 1; };\n"
                                      "retry = { max_backoff_ms = 3600000L; };\n"
                                      "log = { level = \"debug\"; };\n");

    ck_assert_uint_eq(cfg->kafka.ntopics, 2);
    ck_assert_str_eq(cfg->kafka.topics[0], "in.a");
    ck_assert_str_eq(cfg->kafka.topics[1], "in.b");
    ck_assert_str_eq(cfg->kafka.auto_offset_reset, "error");
    ck_assert_int_eq(cfg->processing.unknown_type, UNKNOWN_TYPE_SKIP);
    ck_assert_int_eq(cfg->processing.batch_size, 1);
    ck_assert_int_eq(cfg->retry.max_backoff_ms, 3600000);
    ck_assert_int_eq(cfg->log.level, LOG_DEBUG);
    config_free(cfg);
}
END_TEST

START_TEST(test_properties_translated)
{
    static const struct {
        const char *name, *value;
        int line;
    } want[] = {
        {"session.timeout.ms", "45000", 3},
        {"check.crcs", "false", 4},
        {"partition.assignment.strategy", "roundrobin", 5},
        {"linger.ms", "5.5", 6},
        {"statistics.interval.ms", "60000", 7},
    };
    struct config *cfg = assert_loads("kafka = { brokers = \"b\";\n"
                                      "  properties = {\n"
                                      "    session_timeout_ms = 45000;\n"
                                      "    check_crcs = false;\n"
                                      "    partition_assignment_strategy = \"roundrobin\";\n"
                                      "    linger_ms = 5.5;\n"
                                      "    statistics_interval_ms = 60000L;\n"
                                      "  };\n"
                                      "};\n");

    ck_assert_uint_eq(cfg->kafka.nproperties, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
        ck_assert_str_eq(cfg->kafka.properties[i].name, want[i].name);
        ck_assert_str_eq(cfg->kafka.properties[i].value, want[i].value);
        ck_assert_int_eq(cfg->kafka.properties[i].line, want[i].line);
    }
    config_free(cfg);
}
END_TEST

/* librdkafka's own words are passed on; only their start is ours to fix. */
static const struct {
    const char *property;
    const char *value;
    const char *librdkafka_says;
} refused[] = {
    {"no_such_property", "1", "No such configuration property: \"no.such.property\""},
    {"session_timeout_ms", "\"abc\"", "Invalid value for configuration property"},
    {"socket_timeout_ms", "1", "outside allowed range"},
};

/* A secret file's value reaches librdkafka without its newline, and is never printed. */
START_TEST(test_secret_files)
{
    char dir[] = "/tmp/crm-secret-XXXXXX", file[64], *text, *path;
    struct config_errors errs = {0};
    struct config *cfg;
    FILE *fp;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/pw", dir);
    fp = fopen(file, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("s3cr3t-value\n", fp);
    fclose(fp);
    ck_assert_int_ge(asprintf(&text,
                              "kafka = { brokers = \"b\"; secret_files = { "
                              "sasl_password = \"%s\"; }; };\n",
                              file),
                     0);
    cfg = assert_loads(text);
    ck_assert_uint_eq(cfg->kafka.nproperties, 1);
    ck_assert_str_eq(cfg->kafka.properties[0].name, "sasl.password");
    ck_assert_str_eq(cfg->kafka.properties[0].value, "s3cr3t-value");
    ck_assert(cfg->kafka.properties[0].secret);
    config_free(cfg);
    free(text);

    /* A value librdkafka refuses: the message names the file, not the value. */
    fp = fopen(file, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("not-a-number\n", fp);
    fclose(fp);
    ck_assert_int_ge(asprintf(&text,
                              "kafka = { brokers = \"b\"; secret_files = { "
                              "session_timeout_ms = \"%s\"; }; };\n",
                              file),
                     0);
    ck_assert_int_eq(load_text(text, &path, &cfg, &errs), -EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "librdkafka refused the value read from"));
    ck_assert_ptr_null(strstr(errs.msgs[0], "not-a-number"));
    config_errors_clear(&errs);
    unlink(path);
    free(path);
    free(text);
    unlink(file);
    rmdir(dir);
}
END_TEST

/*
 * Every setting the module knows is documented in crm-consumer.conf(5), and
 * every setting the page documents exists: `.Ss section` then `.It Va name`.
 */
START_TEST(test_man_page_matches)
{
    FILE *fp = fopen("man/crm-consumer.conf.5", "r");
    char line[512], section[64] = "", buf[128], documented[128][96];
    size_t ndoc = 0;

    ck_assert_ptr_nonnull(fp);
    while (fgets(line, sizeof(line), fp)) {
        char name[64];

        if (sscanf(line, ".Ss %63s", section) == 1)
            continue;
        if (strncmp(line, ".Sh ", 4) == 0)
            section[0] = '\0';
        if (section[0] && sscanf(line, ".It Va %63s", name) == 1) {
            ck_assert_uint_lt(ndoc, 128);
            snprintf(documented[ndoc++], sizeof(documented[0]), "%s.%s", section, name);
        }
    }
    fclose(fp);
    for (size_t i = 0; config_setting_at(i, buf, sizeof(buf)); i++) {
        bool found = false;

        for (size_t j = 0; j < ndoc && !found; j++)
            found = strcmp(documented[j], buf) == 0;
        ck_assert_msg(found, "%s is not documented in man/crm-consumer.conf.5", buf);
    }
    for (size_t j = 0; j < ndoc; j++) {
        bool found = false;

        for (size_t i = 0; !found && config_setting_at(i, buf, sizeof(buf)); i++)
            found = strcmp(documented[j], buf) == 0;
        ck_assert_msg(found, "man/crm-consumer.conf.5 documents %s, which does not exist",
                      documented[j]);
    }
}
END_TEST

START_TEST(test_librdkafka_refuses)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *text = NULL, *path, *prefix = NULL;
    int rc;

    ck_assert_int_ge(asprintf(&text,
                              "kafka = {\n brokers = \"b\";\n properties = { %s = %s; };\n};\n",
                              refused[_i].property, refused[_i].value),
                     0);
    rc = load_text(text, &path, &cfg, &errs);
    ck_assert_int_ge(
        asprintf(&prefix, "%s:3: kafka.properties.%s: librdkafka: ", path, refused[_i].property),
        0);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_msg(strncmp(errs.msgs[0], prefix, strlen(prefix)) == 0, "got: %s", errs.msgs[0]);
    ck_assert_msg(strstr(errs.msgs[0], refused[_i].librdkafka_says) != NULL, "got: %s",
                  errs.msgs[0]);
    /* One line, even where librdkafka ends its text with a newline. */
    ck_assert_ptr_null(strchr(errs.msgs[0], '\n'));
    config_errors_clear(&errs);
    free(prefix);
    free(text);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_mistakes_in_file_order)
{
    /* Found in the order batch_size, topics, brokers (after the kafka group is read). */
    static const char *const want[] = {
        ":1: processing.batch_size: must be an integer from 1 to 100000 (got 0)",
        ":2: kafka.brokers: required setting is missing (e.g. brokers = \"localhost:9092\";)",
        ":3: kafka.topics[0]: " TOPIC_RULE " (got \"x y\")",
    };
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path;
    int rc = load_text("processing = { batch_size = 0; };\n"
                       "kafka = {\n"
                       "  topics = [ \"x y\" ];\n"
                       "};\n",
                       &path, &cfg, &errs);

    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, 3);
    for (size_t i = 0; i < 3; i++) {
        char *full = NULL;

        ck_assert_int_ge(asprintf(&full, "%s%s", path, want[i]), 0);
        ck_assert_str_eq(errs.msgs[i], full);
        free(full);
    }
    config_errors_clear(&errs);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_every_mistake_reported)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path;
    int rc = load_text("kafka = { brokers = \"b\"; topics = [ \"a\", \"a\" ]; x = 1; };\n"
                       "processing = { batch_size = 0; batch_timeout_ms = 0; };\n"
                       "retry = { max_attempts = 0; };\n"
                       "output = { dlq_topic = \"a b\"; };\n"
                       "log = { level = \"loud\"; };\n"
                       "bogus = 1;\n",
                       &path, &cfg, &errs);

    /* topics[1], x, batch_size, batch_timeout_ms, max_attempts, dlq_topic, level, bogus */
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_uint_eq(errs.n, 8);
    config_errors_clear(&errs);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_topic_limits)
{
    char name[251], *text = NULL, *list = NULL;
    struct config *cfg;
    size_t len = 0;
    FILE *mem;

    memset(name, 'a', 249);
    name[249] = '\0';
    ck_assert_int_ge(asprintf(&text, BROKERS "output = { dlq_topic = \"%s\"; };\n", name), 0);
    cfg = assert_loads(text);
    ck_assert_uint_eq(strlen(cfg->output.dlq_topic), 249);
    config_free(cfg);
    free(text);

    strcpy(name + 249, "a");
    ck_assert_int_ge(asprintf(&text, BROKERS "output = { dlq_topic = \"%s\"; };\n", name), 0);
    assert_one_error(text, ":2: output.dlq_topic: " TOPIC_RULE " (got 250 characters)");
    free(text);

    /* 257 distinct topics: one more than allowed. */
    mem = open_memstream(&list, &len);
    ck_assert_ptr_nonnull(mem);
    fputs("kafka = { brokers = \"b\"; topics = [ ", mem);
    for (int i = 0; i < 257; i++)
        fprintf(mem, "%s\"t%d\"", i ? ", " : "", i);
    fputs(" ]; };\n", mem);
    ck_assert_int_eq(fclose(mem), 0);
    assert_one_error(list, ":1: kafka.topics: must be a non-empty array or list of 1 to 256 "
                           "topic names (got 257 topics)");
    free(list);

    /* A brokers string over 4096 characters is counted, not printed. */
    text = malloc(5000 + 64);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "kafka = { brokers = \"");
    memset(text + strlen(text), 'b', 5000);
    strcpy(text + 21 + 5000, "\"; };\n");
    assert_one_error(text, ":1: kafka.brokers: must be a non-empty string of at most 4096 "
                           "characters (got 5000 characters)");
    free(text);
}
END_TEST

START_TEST(test_missing_file)
{
    struct config_errors errs = {0};
    struct config *cfg = (struct config *)1;
    char *path = NULL, *want = NULL;

    ck_assert_int_ge(asprintf(&path, "%s/does-not-exist.conf", tmpdir), 0);
    ck_assert_int_eq(config_load(path, &cfg, &errs), -ENOENT);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_int_ge(asprintf(&want, "%s: cannot open: No such file or directory", path), 0);
    ck_assert_str_eq(errs.msgs[0], want);
    config_errors_clear(&errs);
    free(want);
    free(path);
}
END_TEST

START_TEST(test_directory)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *want = NULL;

    /* libconfig's scanner would exit the process on this; we must return instead. */
    ck_assert_int_eq(config_load(tmpdir, &cfg, &errs), -EISDIR);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_int_ge(asprintf(&want, "%s: cannot read: Is a directory", tmpdir), 0);
    ck_assert_str_eq(errs.msgs[0], want);
    config_errors_clear(&errs);
    free(want);
}
END_TEST

START_TEST(test_nul_byte)
{
    static const char text[] = BROKERS "log = { level = \"info\"; };\0\nbogus = 1;\n";
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *path = write_bytes(text, sizeof(text) - 1), *want = NULL;

    ck_assert_int_eq(config_load(path, &cfg, &errs), -EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_int_ge(asprintf(&want, "%s:2: syntax error: NUL byte in the file", path), 0);
    ck_assert_str_eq(errs.msgs[0], want);
    config_errors_clear(&errs);
    free(want);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_include_directory)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    char *text = NULL, *path, *want = NULL;

    /* libconfig's scanner would exit the process on this; we must return instead. */
    ck_assert_int_ge(asprintf(&text, BROKERS "@include \"%s\"\n", tmpdir), 0);
    ck_assert_int_eq(load_text(text, &path, &cfg, &errs), -EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_int_ge(
        asprintf(&want, "%s:2: syntax error: cannot include \"%s\": Is a directory", path, tmpdir),
        0);
    ck_assert_str_eq(errs.msgs[0], want);
    config_errors_clear(&errs);
    free(want);
    free(text);
    unlink(path);
    free(path);
}
END_TEST

/* Each property keeps where it was written, for the messages of crm-consumerd -t. */
START_TEST(test_property_source)
{
    char *inc =
        write_conf("\nkafka = {\n  brokers = \"b\";\n  properties = { linger_ms = 5; };\n};\n");
    char *text = NULL;
    struct config *cfg;

    ck_assert_int_ge(asprintf(&text, "log = { level = \"info\"; };\n@include \"%s\"\n", inc), 0);
    cfg = assert_loads(text);
    ck_assert_uint_eq(cfg->kafka.nproperties, 1);
    ck_assert_str_eq(cfg->kafka.properties[0].name, "linger.ms");
    ck_assert_int_eq(cfg->kafka.properties[0].line, 4);
    ck_assert_ptr_nonnull(cfg->kafka.properties[0].file);
    ck_assert_str_eq(cfg->kafka.properties[0].file, inc);
    ck_assert(!cfg->kafka.properties[0].secret);
    config_free(cfg);
    free(text);
    unlink(inc);
    free(inc);
}
END_TEST

START_TEST(test_errors_clear_empty)
{
    struct config_errors errs = {0};

    config_errors_clear(&errs);
    config_errors_clear(NULL);
    ck_assert_ptr_null(errs.msgs);
    ck_assert_uint_eq(errs.n, 0);
}
END_TEST

/* Tests unlink what they write, but a failed one stops before it can. */
static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    struct dirent *de;

    if (!dir)
        return;
    while ((de = readdir(dir)))
        if (de->d_name[0] != '.')
            unlinkat(dirfd(dir), de->d_name, 0);
    closedir(dir);
    if (rmdir(tmpdir) != 0)
        perror(tmpdir);
}

/* A reload takes the settings a running daemon may change, and names the others. */
START_TEST(test_reload)
{
    struct config_errors errs = {0};
    struct config *cfg, *fresh;
    char *path, restart[256];

    ck_assert_int_eq(load_text(BROKERS "log = { level = \"info\"; };\n", &path, &cfg, &errs), 0);
    free(path);
    ck_assert_int_eq(load_text("kafka = { brokers = \"b:9092\"; group_id = \"other\"; "
                               "properties = { session_timeout_ms = 7000; }; };\n"
                               "log = { level = \"debug\"; };\n"
                               "responses = { email = \"Hi {name}\"; };\n"
                               "retry = { max_attempts = 9; };\n"
                               "circuit_breaker = { open_timeout_s = 5; };\n"
                               "processing = { batch_size = 7; };\n",
                               &path, &fresh, &errs),
                     0);
    free(path);
    ck_assert_int_eq(config_reload(cfg, fresh, restart, sizeof(restart)), 4);
    ck_assert_int_eq(cfg->log.level, LOG_DEBUG);
    ck_assert_str_eq(cfg->responses.email, "Hi {name}");
    ck_assert_int_eq(cfg->retry.max_attempts, 9);
    ck_assert_int_eq(cfg->circuit_breaker.open_timeout_s, 5);
    /* Not taken: named, and the running values stay. */
    ck_assert_str_eq(restart, "kafka.group_id, kafka.properties, processing.batch_size");
    ck_assert_str_eq(cfg->kafka.group_id, "crm-consumer");
    ck_assert_int_eq(cfg->processing.batch_size, 500);
    /* fresh holds the old values now, freed with it. */
    ck_assert_int_eq(fresh->log.level, LOG_INFO);
    config_free(fresh);
    /* The same file again: nothing to take, nothing to name. */
    ck_assert_int_eq(load_text(BROKERS "log = { level = \"debug\"; };\n"
                                       "responses = { email = \"Hi {name}\"; };\n"
                                       "retry = { max_attempts = 9; };\n"
                                       "circuit_breaker = { open_timeout_s = 5; };\n",
                               &path, &fresh, &errs),
                     0);
    free(path);
    ck_assert_int_eq(config_reload(cfg, fresh, restart, sizeof(restart)), 0);
    ck_assert_str_eq(restart, "");
    config_free(fresh);
    config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_shipped_example);
    tcase_add_test(tc, test_reload);
    tcase_add_test(tc, test_minimal_gives_defaults);
    tcase_add_test(tc, test_new_defaults);
    tcase_add_test(tc, test_values_stored);
    tcase_add_loop_test(tc, test_mistake, 0, (int)(sizeof(mistakes) / sizeof(mistakes[0])));
    tcase_add_loop_test(tc, test_valid, 0, (int)(sizeof(valid) / sizeof(valid[0])));
    tcase_add_loop_test(tc, test_deprecated, 0, (int)(sizeof(deprecated) / sizeof(deprecated[0])));
    tcase_add_test(tc, test_deprecated_with_error);
    tcase_add_test(tc, test_properties_translated);
    tcase_add_test(tc, test_secret_files);
    tcase_add_test(tc, test_man_page_matches);
    tcase_add_loop_test(tc, test_librdkafka_refuses, 0,
                        (int)(sizeof(refused) / sizeof(refused[0])));
    tcase_add_test(tc, test_mistakes_in_file_order);
    tcase_add_test(tc, test_every_mistake_reported);
    tcase_add_test(tc, test_topic_limits);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_directory);
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_include_directory);
    tcase_add_test(tc, test_property_source);
    tcase_add_test(tc, test_errors_clear_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
