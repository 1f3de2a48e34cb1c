/* SPDX-License-Identifier: MIT */
/* partitions.c -- the consumer's assigned partitions: their windows, pauses, rewinds and retries.
 */
#include "partitions.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* How long one seek may take before the retry falls back to trying again later. */
#define SEEK_TIMEOUT_MS 5000

void partitions_init(struct partitions *ps, rd_kafka_t *rk, const struct config *cfg,
                     struct telemetry *tm, struct window_pool *pool)
{
    *ps = (struct partitions){.rk = rk, .cfg = cfg, .tm = tm, .pool = pool};
}

void partitions_fini(struct partitions *ps)
{
    while (ps->n)
        partitions_remove(ps, ps->n - 1);
    free(ps->parts);
    ps->parts = NULL;
    ps->cap = 0;
}

struct part *partitions_find(struct partitions *ps, const char *topic, int32_t partition)
{
    struct part *p;

    if (ps->last < ps->n) {
        p = ps->parts[ps->last];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    }
    for (size_t i = 0; i < ps->n; i++) {
        p = ps->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            ps->last = i;
            return p;
        }
    }
    return NULL;
}

struct part *partitions_add(struct partitions *ps, const char *topic, int32_t partition)
{
    struct part *p = partitions_find(ps, topic, partition);

    if (p)
        return p;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        struct part **grown = realloc(ps->parts, cap * sizeof(*grown));

        if (!grown)
            return NULL;
        ps->parts = grown;
        ps->cap = cap;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->topic_index = telemetry_topic_index(ps->tm, topic);
    window_init(&p->win);
    p->record_ts = telemetry_record_gauge(ps->tm, p->topic, partition);
    fetchwatch_part_init(&p->fetch, p->topic, partition);
    p->retry_at = -1;
    p->refused_at = -1;
    p->attempt_offset = -1;
    ps->parts[ps->n++] = p;
    return p;
}

void partitions_remove(struct partitions *ps, size_t i)
{
    struct part *p = ps->parts[i];

    if (p->win.head)
        window_cut(ps->pool, &p->win, p->win.head);
    free(p->topic);
    free(p);
    ps->parts[i] = ps->parts[--ps->n];
    ps->last = 0;
}

struct part *partitions_of(struct window_token *t)
{
    return t->win ? (struct part *)(void *)((char *)t->win - offsetof(struct part, win)) : NULL;
}

/* A one-partition list, for pause, resume and seek. */
static rd_kafka_topic_partition_list_t *one_part(const struct part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
    return l;
}

void partitions_sync_pause(struct partitions *ps, struct part *p, bool force)
{
    bool want = p->paused || ps->hold_flow || ps->hold_breaker || ps->hold_caller;
    rd_kafka_topic_partition_list_t *l;

    if (want == p->held && !force)
        return;
    l = one_part(p, RD_KAFKA_OFFSET_INVALID);
    if (want)
        rd_kafka_pause_partitions(ps->rk, l);
    else
        rd_kafka_resume_partitions(ps->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    p->held = want;
}

void partitions_sync_pause_all(struct partitions *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        partitions_sync_pause(ps, ps->parts[i], false);
}

int partitions_paused(const struct partitions *ps)
{
    int n = 0;

    for (size_t i = 0; i < ps->n; i++)
        n += ps->parts[i]->held;
    return n;
}

int64_t partitions_backoff_ms(const struct config *cfg, int attempts)
{
    int64_t ms = cfg->retry.initial_backoff_ms;

    for (int i = 1; i < attempts && ms < cfg->retry.max_backoff_ms; i++)
        ms *= 2;
    return ms > cfg->retry.max_backoff_ms ? cfg->retry.max_backoff_ms : ms;
}

/* Seek p back to its failed message. Returns 0, or -EAGAIN to try again at resume time. */
static int seek_back(struct partitions *ps, struct part *p)
{
    rd_kafka_topic_partition_list_t *l = one_part(p, p->retry_at);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(ps->rk, l, SEEK_TIMEOUT_MS);
    const char *why = NULL;

    if (error)
        why = rd_kafka_error_string(error);
    else if (l->elems[0].err)
        why = rd_kafka_err2str(l->elems[0].err);
    if (why)
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s; trying again later", p->topic,
                  p->partition, p->retry_at, why);
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(l);
    if (why)
        return -EAGAIN;
    p->fetch.delivered = p->retry_at;
    p->retry_at = -1;
    return 0;
}

int64_t partitions_retry_from(struct partitions *ps, struct part *p, int64_t offset)
{
    int64_t wait;

    if (p->attempt_offset == offset) {
        p->attempts++;
    } else {
        p->attempt_offset = offset;
        p->attempts = 1;
    }
    wait = partitions_backoff_ms(ps->cfg, p->attempts);
    ps->retries++;
    telemetry_retry(ps->tm);
    p->failing = false;
    p->paused = true;
    partitions_sync_pause(ps, p, false);
    p->retry_at = offset;
    seek_back(ps, p);
    p->resume_at = clock_mono_ms() + wait;
    return wait;
}

void partitions_rewind(struct partitions *ps, struct part *p, struct window_token *t)
{
    int64_t offset = t->offset, wait;
    rd_kafka_resp_err_t err = (rd_kafka_resp_err_t)t->err;
    bool backpressure = t->backpressure;

    if (err)
        telemetry_message(ps->tm, p->topic_index, MESSAGE_ERROR, 0);
    if (t->refused) {
        /*
         * The broker refuses a whole batch, and other messages' outputs may
         * have made it too big: first send this message's outputs alone. If
         * those are refused too, no retry can make them fit: when the message
         * comes again, it becomes a (smaller and smaller) dead letter.
         */
        if (p->refused_at == offset) {
            p->refused_alone = true;
            p->refused_shrink = !t->dead_letter ? 0 : t->shrink < 2 ? t->shrink + 1 : 2;
        } else {
            p->refused_at = offset;
            p->refused_alone = false;
            p->refused_shrink = 0;
        }
        p->refused_err = err;
    }
    window_cut(ps->pool, &p->win, t); /* t may be recycled from here on */
    wait = partitions_retry_from(ps, p, offset);
    if (err)
        log_write(p->attempts >= ps->cfg->retry.max_attempts ? LOG_ERR : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": an output was not acknowledged: %s "
                  "(attempt %d); retrying in %" PRId64 " ms",
                  p->topic, p->partition, offset, rd_kafka_err2str(err), p->attempts, wait);
    else
        log_write(backpressure                                 ? LOG_INFO
                  : p->attempts >= ps->cfg->retry.max_attempts ? LOG_ERR
                                                               : LOG_WARNING,
                  "%s [%" PRId32 "] offset %" PRId64 ": attempt %d failed; retrying in %" PRId64
                  " ms",
                  p->topic, p->partition, offset, p->attempts, wait);
}

void partitions_resume_due(struct partitions *ps)
{
    int64_t now = clock_mono_ms();

    for (size_t i = 0; i < ps->n; i++) {
        struct part *p = ps->parts[i];

        if (!p->paused || p->resume_at == 0 || p->resume_at > now)
            continue;
        if (p->retry_at >= 0 && seek_back(ps, p) < 0) {
            p->resume_at = now + partitions_backoff_ms(ps->cfg, p->attempts);
            continue;
        }
        p->paused = false;
        p->resume_at = 0;
        partitions_sync_pause(ps, p, false);
    }
}

void partitions_seek_back_held(struct partitions *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct part *p = ps->parts[i];

        if (p->paused || p->retry_at < 0)
            continue; /* its own retry (with its own seek) is pending, or nothing skipped */
        if (seek_back(ps, p) < 0) {
            p->paused = true;
            p->resume_at = clock_mono_ms() + partitions_backoff_ms(ps->cfg, 1);
        }
    }
}
