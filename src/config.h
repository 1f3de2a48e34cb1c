/* SPDX-License-Identifier: MIT */
/* config.h -- /etc/crm-consumer.conf (libconfig) to a typed, validated struct. */
#ifndef CRM_CONFIG_H
#define CRM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* What the router does with a message whose type has no handler. */
enum unknown_type_policy {
    UNKNOWN_TYPE_DEAD_LETTER, /* "dead_letter": copy to the dead-letter topic (default) */
    UNKNOWN_TYPE_SKIP,        /* "skip": count, log at debug level, store the offset */
};

/* One kafka.properties entry, already translated for librdkafka. */
struct config_property {
    char *name;  /* librdkafka name, '_' turned into '.' */
    char *value; /* value as librdkafka takes it (ints, floats, booleans stringified) */
    int line;    /* line in the file, for error messages */
    char *file;  /* the file that line is in: an @include, or NULL for the main file */
    bool secret; /* from kafka.secret_files: the value must never be shown */
};

struct config {
    char *path;   /* the file this was loaded from */
    bool dry_run; /* --dry-run (benchmarks): handle everything, publish nothing; not a setting */
    struct {
        char *brokers; /* required */
        char *group_id;
        char *client_id;
        char **topics; /* ntopics >= 1 */
        size_t ntopics;
        char *auto_offset_reset; /* "earliest" | "latest" | "error" */
        struct config_property *properties;
        size_t nproperties;
    } kafka;
    struct {
        int batch_size;
        int batch_timeout_ms;
        int max_in_flight;
        int max_message_bytes;
        int max_nesting_depth;
        int shutdown_timeout_s;
        int stall_timeout_s; /* 0: no stall watch */
        enum unknown_type_policy unknown_type;
    } processing;
    struct {
        int max_attempts;
        int initial_backoff_ms;
        int max_backoff_ms;
    } retry;
    struct {
        int failure_threshold;
        int open_timeout_s;
    } circuit_breaker;
    struct {
        char *tickets_topic;
        char *responses_topic;
        char *identities_topic;
        char *dlq_topic;
    } output;
    struct {
        char *default_region;       /* ISO 3166-1 alpha-2 code libphonenumber knows */
        char *default_country_code; /* deprecated, read into default_region; NULL if unset */
        char *trunk_prefix;         /* deprecated and ignored; NULL if unset */
        char *store_path;           /* the LMDB store's directory */
        int store_max_mb;           /* the most the store may grow to */
    } identity;
    struct {
        char *email;
        char *whatsapp;
        char *form;
    } responses;
    struct {
        char *listen;
        int max_connections;
        int max_connections_per_ip;
        int timeout_s;
        char *tls_cert_file;            /* "" = plain HTTP */
        char *tls_key_file;             /* set together with tls_cert_file */
        char *basic_auth_user;          /* "" = no authentication */
        char *basic_auth_password_hash; /* crypt(3) form: "$y$...", "$2b$..." */
    } http;
    struct {
        int level; /* syslog priority, LOG_ERR .. LOG_DEBUG */
    } log;
};

/* Diagnostics from config_load(): each one complete line, "file:line: setting: what". */
struct config_errors {
    char **msgs;
    size_t n;
};

/*
 * Read and validate `path`. On success returns 0 and sets *out (free with
 * config_free); errs then holds only warnings (deprecated settings), in the
 * same form, for the caller to log as such. Returns -ENOENT or -EACCES (or
 * another negative errno) when the file cannot be opened, with one message
 * in errs; returns -EINVAL when the file has syntax or validation errors,
 * with every error and warning in errs.
 */
int config_load(const char *path, struct config **out, struct config_errors *errs);

/* A config holding every default and no brokers (callers fill in brokers). */
struct config *config_new_defaults(void);

/*
 * The dotted name of the i-th setting the file may hold ("kafka.brokers",
 * ...), written into buf; NULL past the last. For the man-page check.
 */
const char *config_setting_at(size_t i, char *buf, size_t len);

/* The value of librdkafka property `name` set in kafka.properties, or NULL. */
const char *config_property(const struct config *cfg, const char *name);

/* max.poll.interval.ms as librdkafka will use it: the property, or its default 300000. */
int config_max_poll_interval_ms(const struct config *cfg);

/*
 * SIGHUP: take from fresh what a running daemon may change at once --
 * log.level, the response templates, the retry and circuit_breaker settings
 * -- into cfg (fresh gets cfg's old values, freed with it). The other
 * settings that differ are named in restart ("section.name, ..."; "" when
 * none): they take effect at the next start. Returns how many were taken.
 */
int config_reload(struct config *cfg, struct config *fresh, char *restart, size_t len);

/* Free a config; takes NULL; returns NULL. */
struct config *config_free(struct config *cfg);

/* Free the messages held in errs and empty it; errs itself is the caller's. */
void config_errors_clear(struct config_errors *errs);

#endif
