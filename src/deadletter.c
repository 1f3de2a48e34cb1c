/* SPDX-License-Identifier: MIT */
/* deadletter.c -- a message that can never be handled, copied to the dead-letter topic. */
#include "deadletter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

static void add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

static void add_size(rd_kafka_headers_t *h, const char *name, size_t n)
{
    char num[32];

    snprintf(num, sizeof(num), "%zu", n);
    add_header(h, name, num);
}

/*
 * The original headers: those in the daemon's own "crm." namespace (a
 * replayed dead letter, a spoofed header) become "crm.previous.*", so the
 * daemon's headers are the only ones by their names. *bytes is their total
 * size, names included.
 */
static rd_kafka_headers_t *original_headers(const rd_kafka_message_t *m, size_t *bytes)
{
    rd_kafka_headers_t *orig = NULL, *h;
    const char *name;
    const void *value;
    size_t size;
    char renamed[256];

    *bytes = 0;
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rd_kafka_headers_new(12);
    h = rd_kafka_headers_new(rd_kafka_header_cnt(orig) + 12);
    for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &value, &size) == 0; i++) {
        *bytes += strlen(name) + size;
        if (strncmp(name, "crm.", 4) == 0 && strncmp(name, "crm.previous.", 13) != 0 &&
            (size_t)snprintf(renamed, sizeof(renamed), "crm.previous.%s", name + 4) <
                sizeof(renamed))
            rd_kafka_header_add(h, renamed, -1, value, (ssize_t)size);
        else
            rd_kafka_header_add(h, name, -1, value, (ssize_t)size);
    }
    return h;
}

/* The daemon's crm.* headers: why, whence, when. */
static void crm_headers(rd_kafka_headers_t *h, const rd_kafka_message_t *m,
                        const struct deadletter_source *src, const struct route_result *res,
                        int64_t ts)
{
    char num[32], when[64];

    add_header(h, "crm.error.class", router_class_name(res->error_class));
    add_header(h, "crm.error.reason", res->reason);
    add_header(h, "crm.source.topic", src->topic);
    snprintf(num, sizeof(num), "%" PRId32, m->partition);
    add_header(h, "crm.source.partition", num);
    snprintf(num, sizeof(num), "%" PRId64, m->offset);
    add_header(h, "crm.source.offset", num);
    snprintf(num, sizeof(num), "%" PRId64, ts);
    add_header(h, "crm.source.timestamp", num);
    add_header(h, "crm.consumer.group", src->group);
    add_header(h, "crm.message_type", res->type);
    snprintf(num, sizeof(num), "%d", src->attempts);
    add_header(h, "crm.attempts", num);
    if (!clock_iso8601(NULL, clock_real_ms(), when, sizeof(when)))
        snprintf(when, sizeof(when), "unknown");
    add_header(h, "crm.failed_at", when);
}

int deadletter_send(struct publisher *pub, const rd_kafka_message_t *m,
                    const struct deadletter_source *src, const struct route_result *res, int shrink,
                    void *token, int *used)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype), stamp = ts > 0 ? ts : 0;
    size_t header_bytes;
    rd_kafka_headers_t *h = original_headers(m, &header_bytes);
    int rc = -EMSGSIZE;

    crm_headers(h, m, src, res, ts);
    *used = shrink;
    if (shrink == 0)
        rc = publisher_send(pub, OUTPUT_DEAD_LETTERS, m->key, m->key_len, m->payload, m->len,
                            rd_kafka_headers_copy(h), stamp, token);
    if (rc == -EMSGSIZE && shrink <= 1) {
        /* Keep the evidence, point at the original. */
        *used = 1;
        add_size(h, "crm.value.omitted_bytes", m->len);
        rc = publisher_send(pub, OUTPUT_DEAD_LETTERS, m->key, m->key_len, NULL, 0,
                            rd_kafka_headers_copy(h), stamp, token);
    }
    rd_kafka_headers_destroy(h);
    if (rc == -EMSGSIZE) {
        /* The key or the headers alone are too big: only the daemon's headers go. */
        *used = 2;
        h = rd_kafka_headers_new(14);
        crm_headers(h, m, src, res, ts);
        add_size(h, "crm.value.omitted_bytes", m->len);
        add_size(h, "crm.key.omitted_bytes", m->key_len);
        add_size(h, "crm.headers.omitted_bytes", header_bytes);
        rc = publisher_send(pub, OUTPUT_DEAD_LETTERS, NULL, 0, NULL, 0, h, stamp, token);
    }
    return rc;
}

static void told(struct deadletter_log *l, int cls, int64_t now)
{
    if (l->more[cls] > 0)
        log_info("%" PRIu64 " more dead letter%s of class %s in the last %d s", l->more[cls],
                 l->more[cls] == 1 ? "" : "s", router_class_name((enum error_class)cls),
                 DEADLETTER_LOG_WINDOW_MS / 1000);
    l->more[cls] = 0;
    l->since[cls] = now;
}

bool deadletter_log_due(struct deadletter_log *l, enum error_class cls, int64_t now)
{
    int c = (int)cls;

    if (c < 0 || c >= ERROR_CLASSES)
        return true;
    if (l->since[c] && now - l->since[c] < DEADLETTER_LOG_WINDOW_MS) {
        l->more[c]++;
        return false;
    }
    told(l, c, now);
    return true;
}

void deadletter_log_tick(struct deadletter_log *l, int64_t now)
{
    for (int c = 0; c < ERROR_CLASSES; c++)
        if (l->more[c] > 0 && now - l->since[c] >= DEADLETTER_LOG_WINDOW_MS)
            told(l, c, 0);
}
