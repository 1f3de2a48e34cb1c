/* SPDX-License-Identifier: MIT */
/* dlq.c -- the dead-letter topic read back: its crm.* headers, and --dlq-stats. */
#include "dlq.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "utf8.h"

/* How long the brokers may take to answer a metadata or offsets request. */
#define REQUEST_TIMEOUT_MS 10000
/* Reasons listed by --dlq-stats. */
#define TOP_REASONS 10
/* Distinct names a tally keeps; the rest are counted together (bounded memory). */
#define TALLY_MAX 100000

/* The last header called name, NUL-terminated and cut to fit out; false when absent. */
static bool header(const rd_kafka_headers_t *h, const char *name, char *out, size_t len)
{
    const void *value;
    size_t size;

    out[0] = '\0';
    if (!h || rd_kafka_header_get_last(h, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    if (size >= len)
        size = len - 1;
    if (value)
        memcpy(out, value, size);
    out[size] = '\0';
    return true;
}

/* A header holding a decimal integer in [min, max]. */
static bool header_int(const rd_kafka_headers_t *h, const char *name, int64_t min, int64_t max,
                       int64_t *v)
{
    char text[32], *end;
    long long n;

    if (!header(h, name, text, sizeof(text)) || !isdigit((unsigned char)text[text[0] == '-']))
        return false;
    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno || *end || n < min || n > max)
        return false;
    *v = n;
    return true;
}

void dlq_letter_read(const rd_kafka_message_t *m, struct dead_letter *d)
{
    rd_kafka_headers_t *h = NULL;
    int64_t partition = -1;

    memset(d, 0, sizeof(*d));
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    header(h, "crm.error.class", d->cls, sizeof(d->cls));
    header(h, "crm.error.reason", d->reason, sizeof(d->reason));
    header(h, "crm.message_type", d->type, sizeof(d->type));
    header(h, "crm.failed_at", d->failed_at, sizeof(d->failed_at));
    d->has_source = header(h, "crm.source.topic", d->topic, sizeof(d->topic)) &&
                    d->topic[0] != '\0' &&
                    header_int(h, "crm.source.partition", 0, INT32_MAX, &partition) &&
                    header_int(h, "crm.source.offset", 0, INT64_MAX, &d->offset);
    d->partition = (int32_t)partition;
    if (!header_int(h, "crm.source.timestamp", INT64_MIN + 1, INT64_MAX, &d->timestamp))
        d->timestamp = -1;
    d->omitted = header(h, "crm.value.omitted_bytes", d->omitted_bytes, sizeof(d->omitted_bytes));
}

/*
 * s made fit for a terminal and a log: bytes that are not well-formed UTF-8,
 * and control characters, become '?'. Cut to fit out.
 */
const char *dlq_printable(const char *s, char *out, size_t len)
{
    size_t i = 0, n = strlen(s), k;

    while (*s && i + 1 < len) {
        k = utf8_len((const unsigned char *)s, n);
        if (k == 0 || (k == 1 && (iscntrl((unsigned char)*s)))) {
            out[i++] = '?';
            s++, n--;
            continue;
        }
        if (i + k >= len)
            break;
        memcpy(out + i, s, k);
        i += k, s += k, n -= k;
    }
    out[i] = '\0';
    return out;
}

/* Characters (code points) in the well-formed s, for aligning columns. */
static size_t width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* A count per distinct name (an open-addressing hash table), bounded to TALLY_MAX names. */
struct tally_item {
    char *name;
    uint64_t n;
};

struct tally {
    struct tally_item *items;
    size_t cap, n;
    uint64_t other; /* counted beyond TALLY_MAX names */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int tally_grow(struct tally *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct tally_item *items = calloc(cap, sizeof(*items));

    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        size_t j;

        if (!t->items[i].name)
            continue;
        for (j = hash(t->items[i].name) & (cap - 1); items[j].name; j = (j + 1) & (cap - 1))
            ;
        items[j] = t->items[i];
    }
    free(t->items);
    t->items = items;
    t->cap = cap;
    return 0;
}

static int tally_add(struct tally *t, const char *name)
{
    size_t j;

    if (t->n * 2 >= t->cap && t->n < TALLY_MAX && tally_grow(t) < 0)
        return -ENOMEM;
    for (j = hash(name) & (t->cap - 1); t->items[j].name; j = (j + 1) & (t->cap - 1)) {
        if (strcmp(t->items[j].name, name) == 0) {
            t->items[j].n++;
            return 0;
        }
    }
    if (t->n >= TALLY_MAX) {
        t->other++;
        return 0;
    }
    if (!(t->items[j].name = strdup(name)))
        return -ENOMEM;
    t->items[j].n = 1;
    t->n++;
    return 0;
}

static int by_count(const void *a, const void *b)
{
    const struct tally_item *x = *(struct tally_item *const *)a;
    const struct tally_item *y = *(struct tally_item *const *)b;

    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The items, most frequent first (then by name): an array the caller frees; NULL when none. */
static struct tally_item **tally_sorted(const struct tally *t)
{
    struct tally_item **v = t->n ? malloc(t->n * sizeof(*v)) : NULL;
    size_t k = 0;

    if (!v)
        return NULL;
    for (size_t i = 0; i < t->cap; i++)
        if (t->items[i].name)
            v[k++] = &t->items[i];
    qsort(v, k, sizeof(*v), by_count);
    return v;
}

static void tally_free(struct tally *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->items[i].name);
    free(t->items);
    memset(t, 0, sizeof(*t));
}

/* Run f(arg) with our signals blocked, so that the threads librdkafka starts never take them. */
void *dlq_unsignalled(void *(*f)(void *), void *arg)
{
    sigset_t block, old;
    void *r;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    r = f(arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

struct new_client {
    rd_kafka_conf_t *conf;
    char err[512];
};

static void *new_consumer(void *arg)
{
    struct new_client *nc = arg;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, nc->conf, nc->err, sizeof(nc->err));

    if (rk)
        nc->conf = NULL;
    return rk;
}

static struct dlq_part *dlq_find(struct dlq *d, int32_t partition)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->parts[i].id == partition)
            return &d->parts[i];
    return NULL;
}

/* The partitions of the topic, from the brokers: 0, -ENOENT (no such topic) or -ETIMEDOUT. */
static int dlq_partitions(struct dlq *d)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(d->rk, 1, NULL, &md, REQUEST_TIMEOUT_MS);
    int rc = -ENOENT;

    if (err)
        return -ETIMEDOUT;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];

        if (strcmp(t->topic, d->topic) != 0 || t->err || t->partition_cnt <= 0)
            continue;
        d->parts = calloc((size_t)t->partition_cnt, sizeof(*d->parts));
        rc = d->parts ? 0 : -ENOMEM;
        for (int p = 0; d->parts && p < t->partition_cnt; p++) {
            d->parts[p].id = t->partitions[p].id;
            d->parts[p].commit = -1;
            window_init(&d->parts[p].win);
        }
        d->n = d->parts ? (size_t)t->partition_cnt : 0;
        break;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/*
 * Where each partition starts: its low watermark, or later: the group's
 * committed offset, the first offset with a timestamp at or after since_ms.
 * It ends at the high watermark as it is now. 0 or -ETIMEDOUT.
 */
static int dlq_positions(struct dlq *d, int64_t since_ms)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)d->n);
    int rc = 0;

    for (size_t i = 0; i < d->n && rc == 0; i++) {
        int64_t lo, hi;

        if (rd_kafka_query_watermark_offsets(d->rk, d->topic, d->parts[i].id, &lo, &hi,
                                             REQUEST_TIMEOUT_MS))
            rc = -ETIMEDOUT;
        d->parts[i].start = lo;
        d->parts[i].end = hi;
        rd_kafka_topic_partition_list_add(l, d->topic, d->parts[i].id);
    }
    if (rc == 0 && d->committing) {
        if (rd_kafka_committed(d->rk, l, REQUEST_TIMEOUT_MS))
            rc = -ETIMEDOUT;
        for (int i = 0; rc == 0 && i < l->cnt; i++) {
            struct dlq_part *p = dlq_find(d, l->elems[i].partition);

            if (p && l->elems[i].offset > p->start)
                p->start = l->elems[i].offset;
        }
    }
    if (rc == 0 && since_ms >= 0) {
        for (int i = 0; i < l->cnt; i++)
            l->elems[i].offset = since_ms;
        if (rd_kafka_offsets_for_times(d->rk, l, REQUEST_TIMEOUT_MS))
            rc = -ETIMEDOUT;
        for (int i = 0; rc == 0 && i < l->cnt; i++) {
            struct dlq_part *p = dlq_find(d, l->elems[i].partition);
            int64_t o = l->elems[i].offset;

            /* No record that recent: nothing to read there. */
            if (p && (o < 0 || o > p->end))
                o = p->end;
            if (p && o > p->start)
                p->start = o;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; i < d->n; i++)
        d->parts[i].done = d->parts[i].start >= d->parts[i].end;
    return rc;
}

void dlq_close(struct dlq *d)
{
    if (d->rk) {
        rd_kafka_consumer_close(d->rk);
        rd_kafka_destroy(d->rk);
    }
    free(d->parts);
    memset(d, 0, sizeof(*d));
}

/*
 * Open the dead-letter topic for reading: `group` NULL reads outside any
 * group (and commits nothing). librdkafka 2.0.2 refuses assign() to a
 * consumer without a group.id: that one is given "<kafka.group_id>.dlq-stats",
 * which it never joins, reads nor commits. Logs what goes wrong; returns an
 * exit status.
 */
int dlq_open(struct dlq *d, const struct config *cfg, const char *path, const char *group,
             int64_t since_ms)
{
    struct new_client nc = {0};
    rd_kafka_topic_partition_list_t *l;
    char err[512], stats_group[300];
    int rc, resolved;

    memset(d, 0, sizeof(*d));
    d->topic = cfg->output.dlq_topic;
    d->committing = group != NULL;
    snprintf(stats_group, sizeof(stats_group), "%s.dlq-stats", cfg->kafka.group_id);
    if (!group)
        group = stats_group;
    resolved = kafka_resolve_brokers(cfg->kafka.brokers, err, sizeof(err));
    if (resolved == 0) {
        log_errx("kafka.brokers: %s; check the names in %s, or the DNS", err, path);
        return EX_NOHOST;
    }
    nc.conf = kafka_conf_new(cfg, RD_KAFKA_CONSUMER, err, sizeof(err));
    /* Brokers that do not answer are reported once, below: not by each connection attempt. */
    if (nc.conf &&
        (kafka_conf_set(nc.conf, "group.id", group, err, sizeof(err)) < 0 ||
         kafka_conf_set(nc.conf, "enable.auto.commit", "false", err, sizeof(err)) < 0 ||
         kafka_conf_set(nc.conf, "enable.auto.offset.store", "false", err, sizeof(err)) < 0 ||
         kafka_conf_set(nc.conf, "enable.partition.eof", "true", err, sizeof(err)) < 0 ||
         kafka_conf_set(nc.conf, "auto.offset.reset", "earliest", err, sizeof(err)) < 0 ||
         kafka_conf_set(nc.conf, "log_level", "2", err, sizeof(err)) < 0)) {
        rd_kafka_conf_destroy(nc.conf);
        nc.conf = NULL;
    }
    if (!nc.conf) {
        log_errx("cannot configure the Kafka consumer: %s", err);
        return EX_CONFIG;
    }
    d->rk = dlq_unsignalled(new_consumer, &nc);
    if (!d->rk) {
        rd_kafka_conf_destroy(nc.conf);
        log_errx("cannot start the Kafka consumer: %s", nc.err);
        return EX_UNAVAILABLE;
    }
    rc = dlq_partitions(d);
    if (rc == 0)
        rc = dlq_positions(d, since_ms);
    if (rc == -ETIMEDOUT) {
        log_errx("no answer from the brokers (%s) within %d s; check kafka.brokers in %s",
                 cfg->kafka.brokers, REQUEST_TIMEOUT_MS / 1000, path);
        return EX_UNAVAILABLE;
    }
    if (rc == -ENOENT) {
        log_errx("the dead-letter topic %s does not exist on the brokers; check "
                 "output.dlq_topic in %s",
                 d->topic, path);
        return EX_CONFIG;
    }
    if (rc < 0) {
        log_errx("out of memory");
        return EX_OSERR;
    }
    l = rd_kafka_topic_partition_list_new((int)d->n);
    for (size_t i = 0; i < d->n; i++)
        if (!d->parts[i].done)
            rd_kafka_topic_partition_list_add(l, d->topic, d->parts[i].id)->offset =
                d->parts[i].start;
    rc = l->cnt ? (int)rd_kafka_assign(d->rk, l) : 0;
    rd_kafka_topic_partition_list_destroy(l);
    if (rc) {
        log_errx("cannot read %s: %s", d->topic, rd_kafka_err2str((rd_kafka_resp_err_t)rc));
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

bool dlq_done(const struct dlq *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (!d->parts[i].done)
            return false;
    return true;
}

/*
 * The next dead letter, waiting up to timeout_ms; NULL when none came, or
 * with *fatal set when reading cannot go on. *part is its partition.
 */
rd_kafka_message_t *dlq_next(struct dlq *d, int timeout_ms, struct dlq_part **part, bool *fatal)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(d->rk, timeout_ms);
    struct dlq_part *p;

    if (!m)
        return NULL;
    p = dlq_find(d, m->partition);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p)
            p->done = true;
    } else if (m->err) {
        log_warnx("%s [%" PRId32 "]: %s", d->topic, m->partition, rd_kafka_message_errstr(m));
        if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
            m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            rd_kafka_fatal_error(d->rk, NULL, 0))
            *fatal = true;
    } else if (p && !p->done && m->offset < p->end) {
        if (m->offset + 1 >= p->end)
            p->done = true;
        *part = p;
        return m;
    }
    rd_kafka_message_destroy(m);
    return NULL;
}

/* Whether t is a well-formed crm.failed_at time, "YYYY-MM-DDTHH:MM:SS.mmmZ" (so it sorts). */
static bool iso_time(const char *t)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    for (size_t i = 0; form[i]; i++)
        if (form[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != form[i])
            return false;
    return t[sizeof(form) - 1] == '\0';
}

/* One aligned table of a tally: the first `max` rows (0: all), then the rest as one row. */
static void print_table(const char *title, const struct tally *t, size_t max)
{
    struct tally_item **v = tally_sorted(t);
    size_t wide = width(title), rows = max && max < t->n ? max : t->n;
    uint64_t rest = t->other;
    char buf[512];

    for (size_t i = 0; i < rows; i++) {
        size_t w = width(dlq_printable(v[i]->name, buf, sizeof(buf)));

        if (w > wide)
            wide = w;
    }
    for (size_t i = rows; i < t->n; i++)
        rest += v[i]->n;
    printf("\n%s%*s  %10s\n", title, (int)(wide - width(title)), "", "COUNT");
    for (size_t i = 0; i < rows; i++) {
        dlq_printable(v[i]->name, buf, sizeof(buf));
        printf("%s%*s  %10" PRIu64 "\n", buf, (int)(wide - width(buf)), "", v[i]->n);
    }
    if (rest)
        printf("(%zu other%s)%*s  %10" PRIu64 "\n", t->n - rows + (t->other ? 1 : 0),
               t->n - rows == 1 ? "" : "s", 0, "", rest);
    free(v);
}

int dlq_stats(const struct config *cfg, const char *path, volatile sig_atomic_t *quit)
{
    struct tally classes = {0}, reasons = {0}, topics = {0};
    struct dead_letter dl;
    struct dlq d;
    struct dlq_part *part;
    char oldest[48] = "", newest[48] = "";
    uint64_t total = 0, omitted = 0;
    bool fatal = false;
    int status = dlq_open(&d, cfg, path, NULL, -1);

    while (status == EX_OK && !dlq_done(&d) && !*quit && !fatal) {
        rd_kafka_message_t *m = dlq_next(&d, 200, &part, &fatal);

        if (!m)
            continue;
        dlq_letter_read(m, &dl);
        rd_kafka_message_destroy(m);
        total++;
        omitted += dl.omitted;
        if (tally_add(&classes, dl.cls[0] ? dl.cls : "(none)") < 0 ||
            tally_add(&reasons, dl.reason[0] ? dl.reason : "(none)") < 0 ||
            tally_add(&topics, dl.has_source ? dl.topic : "(none)") < 0) {
            log_errx("out of memory");
            status = EX_OSERR;
        }
        if (iso_time(dl.failed_at)) {
            if (!oldest[0] || strcmp(dl.failed_at, oldest) < 0)
                snprintf(oldest, sizeof(oldest), "%s", dl.failed_at);
            if (strcmp(dl.failed_at, newest) > 0)
                snprintf(newest, sizeof(newest), "%s", dl.failed_at);
        }
    }
    if (fatal)
        status = EX_UNAVAILABLE;
    if (status == EX_OK) {
        printf("%s: %" PRIu64 " dead letter%s in %zu partition%s%s\n", d.topic, total,
               total == 1 ? "" : "s", d.n, d.n == 1 ? "" : "s",
               *quit ? " (interrupted: counted so far)" : "");
        if (oldest[0])
            printf("failed_at: oldest %s, newest %s\n", oldest, newest);
        if (omitted)
            printf("value left out (too big to copy; cannot be replayed): %" PRIu64 "\n", omitted);
        if (total) {
            print_table("CLASS", &classes, 0);
            print_table("SOURCE TOPIC", &topics, 0);
            print_table("MOST FREQUENT REASONS", &reasons, TOP_REASONS);
        }
        if (*quit)
            status = EX_TEMPFAIL;
    }
    tally_free(&classes);
    tally_free(&reasons);
    tally_free(&topics);
    dlq_close(&d);
    return status;
}
