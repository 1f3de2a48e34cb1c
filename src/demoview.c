/* SPDX-License-Identifier: MIT */
/* demoview.c -- what --demo shows on a terminal: a live view redrawn in place, and sample events.
 */
#include "demoview.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "identity.h"

/* How often the view is redrawn on a terminal, and a line written elsewhere. */
#define REDRAW_MS 1000
#define LINE_MS   5000
/* At most one sample event this often, so a newcomer can read them. */
#define SAMPLE_MS 2500
/* Lines of the view: it is redrawn by moving the cursor up over them. */
#define VIEW_LINES 4

struct demoview {
    bool tty;
    rd_kafka_t *watch; /* reads the tickets as they come, for the samples; NULL if it failed */
    int64_t drawn_at, sampled_at;
    bool drawn;
    double last_consumed;
    int64_t last_ms;
    double rate;
    int next_kind; /* the kind of sample wanted next: e-mail, linked WhatsApp, form */
};

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/* A consumer of the tickets topic from its end, in no group: it commits nothing. */
static rd_kafka_t *watch_tickets(const char *bootstraps, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk;
    char err[256];

    rd_kafka_conf_set_log_cb(conf, quiet);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", "crm-consumerd-demo-view", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt || rd_kafka_metadata(rk, 0, rkt, &md, 5000) || md->topic_cnt != 1) {
        if (md)
            rd_kafka_metadata_destroy(md);
        if (rkt)
            rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return NULL;
    }
    l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

struct demoview *demoview_new(const char *bootstraps, const struct config *cfg, bool tty)
{
    struct demoview *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->tty = tty;
    if (tty)
        v->watch = watch_tickets(bootstraps, cfg->output.tickets_topic);
    return v;
}

static const char *member(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/*
 * A line telling what the daemon made of one input, if this ticket is of
 * the kind wanted next (kinds come in turn: an e-mail, a WhatsApp message
 * resolved to a customer a form linked, a form). Returns true when written.
 */
static bool describe(struct demoview *v, const cJSON *t, char *out, size_t len)
{
    const cJSON *contact = cJSON_GetObjectItemCaseSensitive(t, "contact");
    const char *channel = member(t, "channel"), *ticket = member(t, "ticket_id");
    const char *customer = member(t, "customer_id"), *email = member(contact, "email");
    const char *phone = member(contact, "phone"), *subject = member(t, "subject");
    char own[IDENTITY_ID_LEN + 1];

    if (!channel || !ticket || !customer)
        return false;
    if (v->next_kind == 0 && strcmp(channel, "email") == 0 && email) {
        snprintf(out, len, "e-mail from %s \"%.40s\" became ticket %s of customer %s", email,
                 subject ? subject : "", ticket, customer);
        return true;
    }
    if (v->next_kind == 1 && strcmp(channel, "whatsapp") == 0 && phone) {
        identity_customer_id("phone", phone, own);
        if (strcmp(own, customer) == 0)
            return false; /* the number's own customer: not the interesting case */
        snprintf(out, len,
                 "WhatsApp from %s resolved to customer %s, whom a form linked this number to "
                 "(ticket %s)",
                 phone, customer, ticket);
        return true;
    }
    if (v->next_kind == 2 && strcmp(channel, "form") == 0 && email && phone) {
        snprintf(out, len, "form from %s and %s became ticket %s and linked the number to %s",
                 email, phone, ticket, customer);
        return true;
    }
    return false;
}

/* Read the tickets that came; the first of the kind wanted goes to out. */
static bool sample(struct demoview *v, char *out, size_t len)
{
    bool found = false;

    for (int i = 0; i < 2000 && v->watch; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(v->watch, 0);
        cJSON *t;

        if (!m)
            break;
        if (!found && !m->err && m->len > 0 &&
            (t = cJSON_ParseWithLength(m->payload, m->len)) != NULL) {
            found = describe(v, t, out, len);
            cJSON_Delete(t);
        }
        rd_kafka_message_destroy(m);
    }
    if (found)
        v->next_kind = (v->next_kind + 1) % 3;
    return found;
}

static void count(char *out, size_t len, double n)
{
    snprintf(out, len, "%.0f", n);
}

void demoview_tick(struct demoview *v, struct demo *d, struct telemetry *tm)
{
    int64_t now = clock_mono_ms();
    struct telemetry_view tv;
    char event[512], a[32], b[32], c[32], dl[32], lag[24];

    if (now - v->drawn_at < (v->tty ? REDRAW_MS : LINE_MS))
        return;
    telemetry_view(tm, &tv);
    if (v->last_ms)
        v->rate = (tv.consumed - v->last_consumed) * 1000.0 / (double)(now - v->last_ms);
    v->last_consumed = tv.consumed;
    v->last_ms = now;
    v->drawn_at = now;
    if (tv.lag >= 0)
        snprintf(lag, sizeof(lag), "%" PRId64, tv.lag);
    else
        snprintf(lag, sizeof(lag), "unknown");
    if (!v->tty) {
        printf("demo: %llu produced, %.0f handled, %.0f msg/s, lag %s\n",
               (unsigned long long)demo_produced(d), tv.consumed, v->rate, lag);
        fflush(stdout);
        return;
    }
    /* Back over the last view: sample events scroll above it, the view is written anew. */
    if (v->drawn)
        printf("\033[%dA\r\033[J", VIEW_LINES);
    if (now - v->sampled_at >= SAMPLE_MS && sample(v, event, sizeof(event))) {
        v->sampled_at = now;
        printf("  * %s\n", event);
    }
    count(a, sizeof(a), tv.acked[OUTPUT_TICKETS]);
    count(b, sizeof(b), tv.acked[OUTPUT_RESPONSES]);
    count(c, sizeof(c), tv.acked[OUTPUT_IDENTITIES]);
    count(dl, sizeof(dl), tv.acked[OUTPUT_DEAD_LETTERS]);
    printf("\033[1m--- crm-consumerd demo: live ---\033[0m\n");
    printf("produced %llu (%llu poison) | handled %.0f | %.0f msg/s | lag %s\n",
           (unsigned long long)demo_produced(d), (unsigned long long)demo_poison(d), tv.consumed,
           v->rate, lag);
    printf("tickets %s | responses %s | identity links %s (%.0f in the store)\n", a, b, c,
           tv.links);
    printf("dead letters %s: parse %.0f, schema %.0f, identity %.0f, unknown_type %.0f, "
           "oversize %.0f\n",
           dl, tv.dead[ERROR_PARSE], tv.dead[ERROR_SCHEMA], tv.dead[ERROR_IDENTITY],
           tv.dead[ERROR_UNKNOWN_TYPE], tv.dead[ERROR_OVERSIZE]);
    fflush(stdout);
    v->drawn = true;
}

struct demoview *demoview_free(struct demoview *v)
{
    if (!v)
        return NULL;
    if (v->watch) {
        rd_kafka_consumer_close(v->watch);
        rd_kafka_destroy(v->watch);
    }
    free(v);
    return NULL;
}
