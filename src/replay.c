/* SPDX-License-Identifier: MIT */
/* replay.c -- the dead-letter topic summarised, and its dead letters handled again. */
#include "replay.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "changelog.h"
#include "clock.h"
#include "dlq.h"
#include "handlers/handlers.h"
#include "kafka.h"
#include "links.h"
#include "linkstore.h"
#include "log.h"
#include "publisher.h"
#include "router.h"
#include "trace.h"
#include "utf8.h"
#include "window.h"

/* How long the brokers may take to answer a metadata or offsets request. */
#define REQUEST_TIMEOUT_MS 10000
/* How often a replay commits its progress while it runs. */
#define COMMIT_INTERVAL_MS 1000
/* How often a handler that fails transiently (a full producer queue) is tried again. */
#define TRANSIENT_TRIES 600

int replay_parse_classes(const char *list, unsigned *mask, char *err, size_t errlen)
{
    const char *s = list;

    *mask = 0;
    for (;;) {
        size_t n = strcspn(s, ",");
        int c;

        for (c = ERROR_PARSE; c < ERROR_CLASSES; c++)
            if (n && strlen(router_class_name((enum error_class)c)) == n &&
                strncmp(s, router_class_name((enum error_class)c), n) == 0)
                break;
        if (c == ERROR_CLASSES) {
            char name[64], shown[64];

            snprintf(name, sizeof(name), "%.*s", (int)(n < 40 ? n : 40), s);
            snprintf(err, errlen,
                     "\"%s\" is not a class; the classes are parse, schema, identity, "
                     "unknown_type, oversize and transient",
                     dlq_printable(name, shown, sizeof(shown)));
            return -EINVAL;
        }
        *mask |= 1u << c;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

/* n digits at *s into *v, advancing *s. */
static bool digits(const char **s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (!isdigit((unsigned char)**s))
            return false;
        *v = *v * 10 + (**s - '0');
    }
    return true;
}

int replay_parse_time(const char *text, int64_t *ms)
{
    const char *s = text;
    struct tm tm = {0}, back;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0, sign = 0;
    time_t t;

    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return -EINVAL;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
            return -EINVAL;
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &sec))
                return -EINVAL;
            if (*s == '.' || *s == ',') {
                int scale = 100;

                if (!isdigit((unsigned char)*++s))
                    return -EINVAL;
                for (; isdigit((unsigned char)*s); s++, scale /= 10)
                    frac += (*s - '0') * scale;
            }
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            sign = *s++ == '-' ? -1 : 1;
            if (!digits(&s, 2, &oh) || (*s == ':' && !s++) || !digits(&s, 2, &om) || oh > 23 ||
                om > 59)
                return -EINVAL;
        }
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* 31 February comes back as 3 March: refuse it. */
    if (!gmtime_r(&t, &back) || back.tm_mday != d)
        return -EINVAL;
    *ms = ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return 0;
}

void replay_group_name(const struct config *cfg, const struct replay_options *o, char *out,
                       size_t len)
{
    size_t n = (size_t)snprintf(out, len, "%s.replay", cfg->kafka.group_id);
    const char *sep = ".class-";
    char when[48];

    for (int c = ERROR_PARSE; c < ERROR_CLASSES && n < len; c++) {
        if (!(o->classes & (1u << c)))
            continue;
        n +=
            (size_t)snprintf(out + n, len - n, "%s%s", sep, router_class_name((enum error_class)c));
        sep = "+";
    }
    if (o->since_ms >= 0 && n < len && clock_iso8601(NULL, o->since_ms, when, sizeof(when)))
        n += (size_t)snprintf(out + n, len - n, ".since-%s", when);
    if (o->until_ms >= 0 && n < len && clock_iso8601(NULL, o->until_ms, when, sizeof(when)))
        snprintf(out + n, len - n, ".until-%s", when);
}

/* A replay under way. */
struct replayer {
    struct emitter emitter; /* the handlers' outputs: see emit() */
    const struct config *cfg;
    const struct replay_options *o;
    volatile sig_atomic_t *quit;
    struct dlq d;
    struct router *router;
    struct handlers *handlers;
    struct links *links;
    struct linkstore *store;
    struct changelog *changelog;
    struct publisher *pub; /* NULL under --dry-run */
    struct window_pool pool;
    struct window_token *current; /* the dead letter being handled */
    struct trace trace;           /* its input's trace context, carried onto its outputs */
    int outputs[OUTPUT_TOPICS];   /* --dry-run: the outputs it would have */
    char tmpstore[256];           /* a temporary identity store's directory, or "" */
    uint64_t read, selected, replayed, failed, skipped, unacked;
    bool stop;  /* reading stops: an output was not acknowledged, or a handler kept failing */
    int status; /* why it stopped */
};

/* Marks a token whose dead letter was handled (its outputs count it as replayed). */
#define TOKEN_REPLAYED 1

static int emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                const void *value, size_t len, int64_t timestamp_ms)
{
    struct replayer *r = (struct replayer *)(void *)e;
    int rc;

    if (!r->pub) {
        r->outputs[topic]++;
        return 0;
    }
    rc = publisher_send(r->pub, topic, key, key_len, value, len, trace_headers(&r->trace),
                        timestamp_ms, r->current);
    if (rc == 0)
        r->current->pending++;
    return rc;
}

static void on_ack(void *opaque, void *token, enum output_topic topic, rd_kafka_resp_err_t err)
{
    struct replayer *r = opaque;
    struct window_token *t = token;

    (void)topic;
    if (err) {
        r->unacked++;
        if (!t->failed) {
            t->failed = true;
            t->err = err;
        }
    }
    window_report(&r->pool, t);
}

/* Move each partition's done prefix out of its window; stop at an output that failed. */
static void advance(struct replayer *r)
{
    for (size_t i = 0; i < r->d.n; i++) {
        struct dlq_part *p = &r->d.parts[i];
        struct window_token *t;
        int64_t next;

        while ((t = window_pop_done(&r->pool, &p->win))) {
            if (t->trial == TOKEN_REPLAYED)
                r->replayed++;
            window_recycle(&r->pool, t);
        }
        next = window_take_next(&p->win);
        if (next >= 0)
            p->commit = next;
        t = window_failed_head(&p->win);
        if (t && t->err && !r->stop) {
            log_errx("%s [%" PRId32 "] offset %" PRId64 ": an output was not acknowledged (%s); "
                     "the progress stops before it: run the replay again",
                     r->d.topic, p->id, t->offset, rd_kafka_err2str(t->err));
            r->stop = true;
            r->status = EX_UNAVAILABLE;
        }
    }
}

/* Commit the offsets that moved, synchronously (never under --dry-run). */
static void commit(struct replayer *r)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;

    if (!r->pub)
        return;
    l = rd_kafka_topic_partition_list_new((int)r->d.n);
    for (size_t i = 0; i < r->d.n; i++) {
        if (r->d.parts[i].commit >= 0)
            rd_kafka_topic_partition_list_add(l, r->d.topic, r->d.parts[i].id)->offset =
                r->d.parts[i].commit;
        r->d.parts[i].commit = -1;
    }
    if (l->cnt && (err = rd_kafka_commit(r->d.rk, l, 0)))
        log_warnx("committing the replay's progress: %s (what follows it is replayed again "
                  "next time)",
                  rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static bool selected(const struct replayer *r, const struct dead_letter *dl,
                     const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);

    if (r->o->classes) {
        int c;

        for (c = ERROR_PARSE; c < ERROR_CLASSES; c++)
            if (strcmp(dl->cls, router_class_name((enum error_class)c)) == 0)
                break;
        if (c == ERROR_CLASSES || !(r->o->classes & (1u << c)))
            return false;
    }
    if (r->o->since_ms >= 0 && ts < r->o->since_ms)
        return false;
    if (r->o->until_ms >= 0 && ts >= r->o->until_ms)
        return false;
    return true;
}

/* One report line: "what: DLQ [p] offset o (from TOPIC [p] offset o, type): detail". */
static void report(const struct replayer *r, const char *what, const rd_kafka_message_t *m,
                   const struct dead_letter *dl, const char *detail)
{
    char topic[256], type[64], text[512], from[400];

    if (dl->has_source)
        snprintf(from, sizeof(from), "from %s [%" PRId32 "] offset %" PRId64,
                 dlq_printable(dl->topic, topic, sizeof(topic)), dl->partition, dl->offset);
    else
        snprintf(from, sizeof(from), "no crm.source headers");
    printf("%s: %s [%" PRId32 "] offset %" PRId64 " (%s, %s): %s\n", what, r->d.topic, m->partition,
           m->offset, from, dl->type[0] ? dlq_printable(dl->type, type, sizeof(type)) : "no type",
           dlq_printable(detail, text, sizeof(text)));
}

/* Handle one dead letter of partition p. */
static void handle(struct replayer *r, struct dlq_part *p, const rd_kafka_message_t *m)
{
    struct window_token *t = window_push(&r->pool, &p->win, m->offset);
    struct dead_letter dl;
    struct route_result res;
    struct message_meta meta;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t type;
    char detail[512];

    if (!t) {
        log_errx("out of memory");
        r->stop = true;
        r->status = EX_OSERR;
        return;
    }
    r->read++;
    dlq_letter_read(m, &dl);
    if (!selected(r, &dl, m))
        return; /* not ours: its offset passes */
    r->selected++;
    if (dl.omitted || !dl.has_source) {
        r->skipped++;
        if (dl.omitted)
            snprintf(detail, sizeof(detail),
                     "its value (%s bytes) was left out of the dead letter; it cannot be "
                     "replayed",
                     dl.omitted_bytes);
        else
            snprintf(detail, sizeof(detail), "not a dead letter of crm-consumerd");
        report(r, "skipped", m, &dl, detail);
        return;
    }
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    trace_read(h, &r->trace);
    meta = (struct message_meta){
        .topic = dl.topic,
        .partition = dl.partition,
        .offset = dl.offset,
        .key = m->key,
        .key_len = m->key_len,
        .timestamp_ms = dl.timestamp >= 0 ? dl.timestamp : rd_kafka_message_timestamp(m, &type),
    };
    r->current = t;
    memset(r->outputs, 0, sizeof(r->outputs));
    for (int tries = 0;; tries++) {
        router_route(r->router, m->payload, m->len, &meta, &r->emitter, &res);
        if (res.outcome != OUTCOME_TRANSIENT)
            break;
        /* A full producer queue: let it drain, then try again (its ids make repeats harmless). */
        if (*r->quit || tries >= TRANSIENT_TRIES) {
            report(r, "stopped at", m, &dl, res.reason);
            t->failed = true;
            r->stop = true;
            r->status = *r->quit ? EX_TEMPFAIL : EX_UNAVAILABLE;
            return;
        }
        if (r->pub)
            publisher_poll(r->pub, 100);
    }
    switch (res.outcome) {
    case OUTCOME_OK:
        if (r->pub) {
            t->trial = TOKEN_REPLAYED;
            break;
        }
        r->replayed++;
        snprintf(detail, sizeof(detail), "%d to %s, %d to %s, %d to %s", r->outputs[OUTPUT_TICKETS],
                 r->cfg->output.tickets_topic, r->outputs[OUTPUT_RESPONSES],
                 r->cfg->output.responses_topic, r->outputs[OUTPUT_IDENTITIES],
                 r->cfg->output.identities_topic);
        report(r, "would replay", m, &dl, detail);
        break;
    case OUTCOME_SKIPPED:
        r->skipped++;
        report(r, "skipped", m, &dl, res.reason);
        break;
    default:
        r->failed++;
        snprintf(detail, sizeof(detail), "%s: %s", router_class_name(res.error_class), res.reason);
        report(r, r->pub ? "failed again" : "would fail again", m, &dl, detail);
        break;
    }
}

struct new_changelog {
    const struct config *cfg;
    struct links *links;
    char err[512];
};

static void *new_changelog(void *arg)
{
    struct new_changelog *nc = arg;

    return changelog_new(nc->cfg, nc->links, nc->err, sizeof(nc->err));
}

static void *new_publisher(void *arg)
{
    struct replayer *r = arg;
    char err[512];
    struct publisher *p = publisher_new(r->cfg, on_ack, r, err, sizeof(err));

    if (!p)
        log_errx("cannot start the Kafka producer: %s", err);
    return p;
}

/*
 * The links the handlers resolve phones with, as the daemon has them: its
 * identity store brought up to date from the identities topic. While the
 * daemon runs it holds the store; then the links are read from the topic
 * into a temporary store, which is what the daemon's store caches.
 */
static int open_links(struct replayer *r)
{
    size_t max = (size_t)r->cfg->identity.store_max_mb << 20;
    struct new_changelog nc = {.cfg = r->cfg};
    const char *tmp = getenv("TMPDIR");
    char note[512], err[512];

    r->store =
        linkstore_open(r->cfg->identity.store_path, max, note, sizeof(note), err, sizeof(err));
    if (!r->store) {
        snprintf(r->tmpstore, sizeof(r->tmpstore), "%s/crm-consumerd-replay.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(r->tmpstore)) {
            log_warn("identity store %s: %s; cannot make a temporary one",
                     r->cfg->identity.store_path, err);
            r->tmpstore[0] = '\0';
            return EX_CANTCREAT;
        }
        log_notice("identity store %s: %s; reading the links from %s into a temporary store",
                   r->cfg->identity.store_path, err, r->cfg->output.identities_topic);
        r->store = linkstore_open(r->tmpstore, max, note, sizeof(note), err, sizeof(err));
        if (!r->store) {
            log_errx("temporary identity store %s: %s", r->tmpstore, err);
            return EX_CANTCREAT;
        }
    }
    r->links = links_new(r->store);
    nc.links = r->links;
    if (!r->links) {
        log_errx("out of memory");
        return EX_OSERR;
    }
    r->changelog = dlq_unsignalled(new_changelog, &nc);
    if (!r->changelog) {
        log_errx("cannot read %s: %s", r->cfg->output.identities_topic, nc.err);
        return EX_UNAVAILABLE;
    }
    while (!changelog_restored(r->changelog) && !changelog_stopped(r->changelog) && !*r->quit)
        changelog_poll(r->changelog, 100);
    if (changelog_stopped(r->changelog)) {
        log_errx("the identity store refuses writes; see identity.store_max_mb");
        return EX_CANTCREAT;
    }
    return *r->quit ? EX_TEMPFAIL : EX_OK;
}

static void close_links(struct replayer *r)
{
    char path[300];

    r->changelog = changelog_free(r->changelog);
    r->links = links_free(r->links);
    r->store = linkstore_close(r->store);
    if (r->tmpstore[0]) {
        snprintf(path, sizeof(path), "%s/data.mdb", r->tmpstore);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", r->tmpstore);
        unlink(path);
        rmdir(r->tmpstore);
    }
}

/* Read and handle dead letters until the end, the limit, a stop or a signal. */
static void replay_loop(struct replayer *r)
{
    int64_t last_commit = clock_mono_ms();
    struct dlq_part *p;
    bool fatal = false;

    while (!dlq_done(&r->d) && !*r->quit && !r->stop) {
        rd_kafka_message_t *m;

        if (r->o->limit && r->selected >= (uint64_t)r->o->limit)
            break;
        /* Bounded work in flight, as the daemon's processing.max_in_flight. */
        while (r->pub && r->pool.in_flight >= (uint64_t)r->cfg->processing.max_in_flight &&
               !*r->quit) {
            publisher_poll(r->pub, 100);
            advance(r);
        }
        m = dlq_next(&r->d, 100, &p, &fatal);
        if (fatal) {
            r->stop = true;
            r->status = EX_UNAVAILABLE;
        }
        if (m) {
            handle(r, p, m);
            rd_kafka_message_destroy(m);
        }
        if (r->pub) {
            publisher_poll(r->pub, 0);
            changelog_poll(r->changelog, 0);
        }
        advance(r);
        if (clock_mono_ms() - last_commit >= COMMIT_INTERVAL_MS) {
            commit(r);
            last_commit = clock_mono_ms();
        }
    }
}

/* Wait for the outputs in flight (bounded by processing.shutdown_timeout_s once interrupted). */
static void drain(struct replayer *r)
{
    int64_t deadline = -1;

    while (r->pub && publisher_in_flight(r->pub) > 0) {
        if (*r->quit && deadline < 0)
            deadline = clock_mono_ms() + (int64_t)r->cfg->processing.shutdown_timeout_s * 1000;
        if (deadline >= 0 && clock_mono_ms() >= deadline) {
            log_warnx("outputs still in flight after %d s; their dead letters are replayed "
                      "again next time",
                      r->cfg->processing.shutdown_timeout_s);
            break;
        }
        publisher_flush(r->pub, 1000);
        advance(r);
        commit(r);
    }
    advance(r);
    commit(r);
}

int replay_run(const struct config *cfg, const char *path, const struct replay_options *o,
               volatile sig_atomic_t *quit)
{
    struct router_limits limits = {
        .max_message_bytes = (size_t)cfg->processing.max_message_bytes,
        .max_nesting_depth = cfg->processing.max_nesting_depth,
        .unknown_type = cfg->processing.unknown_type,
    };
    struct replayer r = {.emitter.emit = emit, .cfg = cfg, .o = o, .quit = quit};
    char group[512];
    bool limited;
    int status;

    window_pool_init(&r.pool);
    replay_group_name(cfg, o, group, sizeof(group));
    status = dlq_open(&r.d, cfg, path, group, o->since_ms);
    /* A dry run resolves phones without the stored links: what it reports does not depend on them.
     */
    if (status == EX_OK && !o->dry_run)
        status = open_links(&r);
    else if (status == EX_OK && !(r.links = links_new(NULL)))
        status = EX_OSERR;
    r.router = router_new(&limits);
    r.handlers = r.links ? handlers_new(cfg, r.links, NULL) : NULL;
    if (status == EX_OK &&
        (!r.router || !r.handlers || handlers_register(r.handlers, r.router) < 0)) {
        log_errx("out of memory");
        status = EX_OSERR;
    }
    if (status == EX_OK && !o->dry_run && !(r.pub = dlq_unsignalled(new_publisher, &r)))
        status = EX_UNAVAILABLE;
    if (status == EX_OK) {
        log_info("replaying %s into %s and %s (progress in group %s)", r.d.topic,
                 cfg->output.tickets_topic, cfg->output.responses_topic, group);
        replay_loop(&r);
        drain(&r);
        limited = o->limit && r.selected >= (uint64_t)o->limit && !dlq_done(&r.d);
        printf("replay%s: %" PRIu64 " selected, %" PRIu64 " %s, %" PRIu64 " %s, %" PRIu64
               " skipped (%" PRIu64 " dead letters read, %" PRIu64 " not selected%s%s)\n",
               o->dry_run ? " (dry run: nothing written)" : "", r.selected, r.replayed,
               o->dry_run ? "would be replayed" : "replayed", r.failed,
               o->dry_run ? "would fail again" : "failed again", r.skipped, r.read,
               r.read - r.selected, limited ? "; --limit reached" : "",
               *quit ? "; interrupted" : "");
        fflush(stdout);
        if (r.stop)
            status = r.status;
        else if (*quit)
            status = EX_TEMPFAIL;
        else if (r.failed || r.skipped)
            status = EX_DATAERR;
    }
    /* The producer goes first: it reports what is still queued to the windows. */
    r.pub = publisher_free(r.pub);
    window_pool_fini(&r.pool);
    handlers_free(r.handlers);
    router_free(r.router);
    if (o->dry_run)
        links_free(r.links);
    else
        close_links(&r);
    dlq_close(&r.d);
    return status;
}
