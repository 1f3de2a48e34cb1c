/* SPDX-License-Identifier: MIT */
/* kafka.c -- librdkafka configuration shared by the consumer, the producer and the changelog. */
#include "kafka.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* rk's name tells the consumer, the producer and the changelog reader apart. */
    log_write(level < LOG_ERR ? LOG_ERR : level, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s: %s", name, errstr);
        return -EINVAL;
    }
    return 0;
}

/*
 * The clients a librdkafka property is for, as the library's own table of
 * its properties says (the one its CONFIGURATION.md is made from): 'C'
 * consumers, 'P' producers, '*' both. A name the table does not have, or a
 * table that cannot be read, counts as '*': librdkafka then judges it.
 */
static char property_scope(const char *name)
{
    size_t len = strlen(name), size = 0;
    char *text = NULL, *save = NULL, scope = 0;
    FILE *fp = open_memstream(&text, &size);

    if (!fp)
        return '*';
    rd_kafka_conf_properties_show(fp);
    if (fclose(fp) != 0) {
        free(text);
        return '*';
    }
    /* A row: "name   |  C  | range | default | importance | description". */
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *bar = line + len;
        char mark;

        if (strncmp(line, name, len) != 0)
            continue;
        bar += strspn(bar, " ");
        if (*bar != '|')
            continue;
        mark = bar[1 + strspn(bar + 1, " ")];
        if (mark == 'C' || mark == 'P')
            scope = scope != 0 && scope != mark ? '*' : mark;
        else if (mark == '*')
            scope = '*';
    }
    free(text);
    return scope != 0 ? scope : '*';
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, rd_kafka_type_t type, char *err,
                                size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char other = type == RD_KAFKA_PRODUCER ? 'C' : 'P';
    int rc = 0;

    /*
     * The operator's properties first; config validation keeps them off the
     * ones we set. Each goes only to the clients it is for, so that
     * librdkafka has no property of the other kind to warn about.
     */
    for (size_t i = 0; rc == 0 && i < cfg->kafka.nproperties; i++) {
        const struct config_property *prop = &cfg->kafka.properties[i];

        if (property_scope(prop->name) == other) {
            log_debug("kafka.properties: %s is for %s only; not given to the %s", prop->name,
                      other == 'C' ? "consumers" : "producers",
                      type == RD_KAFKA_PRODUCER ? "producer" : "consumer");
            continue;
        }
        rc = kafka_conf_set(conf, prop->name, prop->value, err, errlen);
    }
    if (rc == 0)
        rc = kafka_conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, err, errlen);
    if (rc == 0)
        rc = kafka_conf_set(conf, "client.id", cfg->kafka.client_id, err, errlen);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

int kafka_conf_defaults(rd_kafka_conf_t *conf, const struct config *cfg,
                        const struct kafka_default *defs, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (config_property(cfg, defs[i].name) ||
            (defs[i].alias && config_property(cfg, defs[i].alias)))
            continue;
        if (kafka_conf_set(conf, defs[i].name, defs[i].value, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

/* A client made only to be checked says nothing: its refusal comes back in err. */
static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/*
 * Whether librdkafka creates the client from cfg; false with its reason in
 * err. The client has no bootstrap brokers, so it connects to nothing, and
 * is destroyed at once.
 */
static bool client_starts(const struct config *cfg, const struct kafka_client *client, char *err,
                          size_t errlen)
{
    rd_kafka_conf_t *conf = client->conf_new(cfg, err, errlen);
    rd_kafka_t *rk;

    if (!conf)
        return false;
    if (kafka_conf_set(conf, "bootstrap.servers", "", err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_log_cb(conf, quiet_log_cb);
    rk = rd_kafka_new(client->type, conf, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_destroy(rk);
    return true;
}

static int errs_append(struct config_errors *errs, char *msg)
{
    char **msgs;

    if (!msg)
        return -ENOMEM;
    msgs = realloc(errs->msgs, (errs->n + 1) * sizeof(*msgs));
    if (!msgs) {
        free(msg);
        return -ENOMEM;
    }
    errs->msgs = msgs;
    errs->msgs[errs->n++] = msg;
    return 0;
}

/* "FILE:LINE: kafka.properties.NAME: librdkafka refuses it for CLIENT: why", or NULL. */
static char *blame(const struct config *cfg, const struct config_property *prop,
                   const struct kafka_client *client, const char *why)
{
    char *setting = strdup(prop->name), *msg = NULL;
    /* What librdkafka says of idempotence would otherwise puzzle: the operator never set it. */
    const char *idem =
        strstr(why, "enable.idempotence") ? " (crm-consumerd's producer is always idempotent)" : "";
    int rc;

    if (!setting)
        return NULL;
    /* libconfig names cannot hold dots: the file has them as underscores. */
    for (char *p = setting; *p; p++)
        if (*p == '.')
            *p = '_';
    if (prop->secret)
        rc = asprintf(&msg,
                      "%s:%d: kafka.secret_files.%s: librdkafka refuses the value read from the "
                      "file for %s (its reason is not shown, as it may quote the value)",
                      prop->file ? prop->file : cfg->path, prop->line, setting, client->name);
    else
        rc = asprintf(&msg, "%s:%d: kafka.properties.%s: librdkafka refuses it for %s: %s%s",
                      prop->file ? prop->file : cfg->path, prop->line, setting, client->name, why,
                      idem);
    free(setting);
    return rc < 0 ? NULL : msg;
}

int kafka_check(const struct config *cfg, const struct kafka_client *clients, size_t n,
                struct config_errors *errs)
{
    size_t np = cfg->kafka.nproperties;
    /* What each property is blamed for (it is then left out of the trials), and a trial's list. */
    char **why = calloc(np ? np : 1, sizeof(*why));
    struct config_property *props = calloc(np ? np : 1, sizeof(*props));
    struct config trial = *cfg;
    char err[512], again[512];
    int added = 0, rc = 0;

    if (!why || !props) {
        free(why);
        free(props);
        return -ENOMEM;
    }
    trial.kafka.properties = props;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        for (;;) {
            size_t culprit = np;

            trial.kafka.nproperties = 0;
            for (size_t i = 0; i < np; i++)
                if (!why[i])
                    props[trial.kafka.nproperties++] = cfg->kafka.properties[i];
            if (client_starts(&trial, &clients[k], err, sizeof(err)))
                break;
            /* The culprit: the first property without which librdkafka says something else. */
            for (size_t i = 0; culprit == np && i < np; i++) {
                size_t m = 0;

                if (why[i])
                    continue;
                for (size_t j = 0; j < np; j++)
                    if (!why[j] && j != i)
                        props[m++] = cfg->kafka.properties[j];
                trial.kafka.nproperties = m;
                if (client_starts(&trial, &clients[k], again, sizeof(again)) ||
                    strcmp(again, err) != 0)
                    culprit = i;
            }
            if (culprit == np) {
                char *msg = NULL;

                if (asprintf(&msg, "%s: kafka: librdkafka cannot start %s: %s", cfg->path,
                             clients[k].name, err) < 0)
                    msg = NULL;
                rc = errs_append(errs, msg);
                added += rc == 0;
                break;
            }
            why[culprit] = blame(cfg, &cfg->kafka.properties[culprit], &clients[k], err);
            if (!why[culprit]) {
                rc = -ENOMEM;
                break;
            }
        }
    }
    /* In the order of the file, whichever client librdkafka refused first. */
    for (size_t i = 0; i < np; i++) {
        if (!why[i])
            continue;
        if (rc == 0) {
            rc = errs_append(errs, why[i]);
            added += rc == 0;
        } else {
            free(why[i]);
        }
    }
    free(why);
    free(props);
    return rc < 0 ? rc : added;
}

/* The host of one "proto://host:port" entry, into buf; false when there is none. */
static bool broker_host(const char *entry, size_t len, char *buf, size_t buflen)
{
    const char *scheme = memmem(entry, len, "://", 3), *end;

    if (scheme) {
        len -= (size_t)(scheme + 3 - entry);
        entry = scheme + 3;
    }
    if (len && entry[0] == '[') {
        end = memchr(entry, ']', len);
        if (!end)
            return false;
        entry++;
    } else {
        end = entry + len;
        for (const char *p = entry; p < entry + len; p++)
            if (*p == ':')
                end = p; /* the last colon starts the port */
    }
    if (end <= entry || (size_t)(end - entry) >= buflen)
        return false;
    memcpy(buf, entry, (size_t)(end - entry));
    buf[end - entry] = '\0';
    return true;
}

int kafka_resolve_brokers(const char *brokers, char *err, size_t errlen)
{
    int ok = 0, bad = 0;

    err[0] = '\0';
    for (const char *p = brokers; *p;) {
        size_t len = strcspn(p, ", ");
        char host[256];
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        int rc;

        if (len > 0) {
            if (!broker_host(p, len, host, sizeof(host))) {
                rc = EAI_NONAME;
                snprintf(host, sizeof(host), "%.*s", (int)(len < 200 ? len : 200), p);
            } else {
                rc = getaddrinfo(host, NULL, &hints, &res);
            }
            if (rc == 0) {
                ok++;
                freeaddrinfo(res);
            } else if (bad++ == 0) {
                snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
            }
        }
        p += len;
        p += strspn(p, ", ");
    }
    if (ok == 0 && bad == 0)
        snprintf(err, errlen, "no broker in \"%s\"", brokers);
    return bad == 0 ? ok : -ok;
}

/* "crm.inbound[0,1,2] crm.other[4]"-style summary for logs, cut with "..." when long. */
void kafka_describe(const rd_kafka_topic_partition_list_t *l, char *buf, size_t len)
{
    size_t used = 0;

    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        bool same = i > 0 && strcmp(l->elems[i - 1].topic, tp->topic) == 0;
        int n;

        if (same)
            n = snprintf(buf + used, len - used, ",%" PRId32, tp->partition);
        else
            n = snprintf(buf + used, len - used, "%s%s[%" PRId32, i ? "] " : "", tp->topic,
                         tp->partition);
        /* Keep one byte for the closing bracket. */
        if (n < 0 || (size_t)n >= len - used - 1) {
            memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
    snprintf(buf + used, len - used, "%s", l->cnt ? "]" : "(none)");
}
