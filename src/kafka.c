/* SPDX-License-Identifier: MIT */
/* kafka.c -- librdkafka configuration shared by the consumer, the producer and the changelog. */
#include "kafka.h"

#include <errno.h>
#include <stdio.h>

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

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;

    /* The operator's properties first; config validation keeps them off the ones we set. */
    for (size_t i = 0; rc == 0 && i < cfg->kafka.nproperties; i++)
        rc = kafka_conf_set(conf, cfg->kafka.properties[i].name, cfg->kafka.properties[i].value,
                            err, errlen);
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
