/* SPDX-License-Identifier: MIT */
/* links.c -- the identity store's bench helper: load a changelog of links, time lookups. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "identity.h"
#include "links.h"
#include "linkstore.h"

/*
 *   links load ADDR TOPIC N    N self-consistent links, keyed by phone, into TOPIC
 *   links lookup DIR N         N lookups of stored phones (in a scattered order) and N of
 *                              absent ones, through the handlers' path (pending links over
 *                              the store); prints nanoseconds a lookup
 * Link i ties +1555 and i in 7 digits to u<i>@example.org.
 */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void phone_of(unsigned i, char *out, size_t len)
{
    snprintf(out, len, "+1555%07u", i);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        (*(unsigned long *)opaque)++;
}

static int load(const char *addr, const char *topic, unsigned n)
{
    char err[512], phone[32], email[64], id[IDENTITY_ID_LEN + 1], value[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    unsigned long failed = 0;
    double t0 = now_s();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", addr, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "compression.type", "lz4", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err))) {
        fprintf(stderr, "links: %s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "links: %s\n", err);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        int len;

        phone_of(i, phone, sizeof(phone));
        snprintf(email, sizeof(email), "u%u@example.org", i);
        identity_customer_id("email", email, id);
        len = snprintf(value, sizeof(value),
                       "{\"event\":\"identity.linked\",\"customer_id\":\"%s\",\"email\":\"%s\","
                       "\"phone\":\"%s\"}",
                       id, email, phone);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(phone, strlen(phone)),
                                 RD_KAFKA_V_VALUE(value, (size_t)len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    if (rd_kafka_outq_len(rk) > 0 || failed) {
        fprintf(stderr, "links: %lu not delivered\n",
                failed + (unsigned long)rd_kafka_outq_len(rk));
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_destroy(rk);
    printf("loaded %u links in %.2f s\n", n, now_s() - t0);
    return 0;
}

static int lookup(const char *dir, unsigned n)
{
    char note[256], err[512], phone[32], id[IDENTITY_ID_LEN + 1];
    struct linkstore *s =
        linkstore_open(dir, (size_t)1 << 30, note, sizeof(note), err, sizeof(err));
    struct links *l = s ? links_new(s) : NULL;
    unsigned found = 0, count;
    double t0, hit_ns, miss_ns;

    if (!l) {
        fprintf(stderr, "links: %s\n", s ? "out of memory" : err);
        return 1;
    }
    count = (unsigned)linkstore_count(s);
    if (count == 0 || count < n / 2) {
        fprintf(stderr, "links: the store holds %u links\n", count);
        return 1;
    }
    /* Stored phones in a scattered order (a multiplier coprime with the count), then absent. */
    t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        phone_of((unsigned)(((uint64_t)i * 2654435761u) % count), phone, sizeof(phone));
        found += links_get(l, phone, id, sizeof(id)) == 1;
    }
    hit_ns = (now_s() - t0) * 1e9 / n;
    t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        phone_of(count + i, phone, sizeof(phone));
        found += links_get(l, phone, id, sizeof(id)) == 1;
    }
    miss_ns = (now_s() - t0) * 1e9 / n;
    printf("lookups %u found %u hit_ns %.0f miss_ns %.0f links %u\n", n, found, hit_ns, miss_ns,
           count);
    links_free(l);
    linkstore_close(s);
    return found == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "load") == 0)
        return load(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "lookup") == 0)
        return lookup(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: links load ADDR TOPIC N | links lookup DIR N\n");
    return 64;
}
