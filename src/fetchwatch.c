/* SPDX-License-Identifier: MIT */
/* fetchwatch.c -- librdkafka 2.0's fetchers: woken as the prefetch drains, restarted if stalled. */
#include "fetchwatch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* The shortest time between two wake-ups. */
#define WAKE_INTERVAL_MS 50
/* How often the stall watch looks at the partitions. */
#define WATCH_EVERY_MS 1000
/* The longest the stall watch waits for a partition's committed offset, and for a seek. */
#define COMMITTED_TIMEOUT_MS 2000
#define SEEK_TIMEOUT_MS      5000

struct fetchwatch {
    rd_kafka_t *rk;
    const struct config *cfg;
    struct telemetry *tm;
    rd_kafka_queue_t *fetched; /* the consumer queue, to see how much is prefetched */
    int64_t prefetch_msgs;     /* librdkafka's limits on it: queued.min.messages */
    int64_t prefetch_bytes;    /* and queued.max.messages.kbytes, in bytes */
    int64_t msg_bytes;         /* a recent message's payload size, on average */
    int64_t queued_peak;       /* the longest the queue has been since the fetchers were woken */
    int64_t woke_at;           /* when they were, monotonic ms */
    int64_t watch_at;          /* the stall watch's next look, monotonic ms; 0 before the first */
    bool drained;              /* the prefetched queue was empty at the last look */
    struct {
        rd_kafka_resp_err_t err;
        const rd_kafka_topic_t *rkt; /* compared only, never used */
        int32_t partition;
        int64_t offset;
        uint64_t repeats;
    } last_error; /* the last consume error logged, to log a repeating one once */
    uint64_t wakeups, stalls;
};

/* An integer setting of the consumer's, as librdkafka has it; fallback when unreadable. */
static int64_t conf_int(rd_kafka_t *rk, const char *name, int64_t fallback)
{
    char buf[32];
    size_t len = sizeof(buf);
    char *end;
    long long v;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &len) != RD_KAFKA_CONF_OK)
        return fallback;
    v = strtoll(buf, &end, 10);
    return end != buf && *end == '\0' && v > 0 ? (int64_t)v : fallback;
}

void fetchwatch_part_init(struct fetch_part *fp, const char *topic, int32_t partition)
{
    *fp =
        (struct fetch_part){.topic = topic, .partition = partition, .delivered = -1, .watched = -1};
}

struct fetchwatch *fetchwatch_new(rd_kafka_t *rk, const struct config *cfg, struct telemetry *tm)
{
    struct fetchwatch *fw = calloc(1, sizeof(*fw));

    if (!fw)
        return NULL;
    fw->rk = rk;
    fw->cfg = cfg;
    fw->tm = tm;
    fw->fetched = rd_kafka_queue_get_consumer(rk);
    fw->prefetch_msgs = conf_int(rk, "queued.min.messages", INT64_MAX / 4);
    fw->prefetch_bytes = conf_int(rk, "queued.max.messages.kbytes", INT64_MAX / 4096) * 1024;
    return fw;
}

void fetchwatch_taken(struct fetchwatch *fw, size_t n, int64_t bytes)
{
    /* A moving average over batches, for the estimate of the queue's bytes. */
    if (n == 0)
        return;
    if (fw->msg_bytes == 0)
        fw->msg_bytes = bytes / (int64_t)n;
    else
        fw->msg_bytes += (bytes / (int64_t)n - fw->msg_bytes) / 8;
}

/*
 * librdkafka stops fetching while the consumer queue holds
 * queued.max.messages.kbytes (or queued.min.messages) and, before 2.3 (or
 * with fetch.queue.backoff.ms left at its default after), decides again only
 * when the broker thread next wakes: up to a second later, however soon the
 * queue drains. Any request to a broker wakes its thread, which then sees
 * the queue short and fetches. So when the queue has been near a limit (half
 * of it or more: the fetchers have likely stopped) and has since drained to
 * a quarter of that peak, every leader of our partitions is sent one
 * ListOffsets request, by rd_kafka_offsets_for_times() with no wait (its
 * answer is dropped). That is once per fill and drain of the queue while a
 * backlog lasts, at most every WAKE_INTERVAL_MS, and never while the daemon
 * keeps up with its input, the queue far from its limits. The queue's bytes
 * are estimated from its length and the payload sizes of recent messages.
 */
void fetchwatch_wake(struct fetchwatch *fw, size_t n, fetch_part_at at, void *opaque)
{
    int64_t queued = fw->fetched ? rd_kafka_queue_length(fw->fetched) : 0;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;
    int64_t now;

    if (queued > fw->queued_peak)
        fw->queued_peak = queued;
    if (fw->queued_peak * 2 < fw->prefetch_msgs &&
        fw->queued_peak * fw->msg_bytes * 2 < fw->prefetch_bytes)
        return; /* never near a limit: the fetchers are fetching */
    if (queued > fw->queued_peak / 4 || n == 0)
        return;
    now = clock_mono_ms();
    if (now - fw->woke_at < WAKE_INTERVAL_MS)
        return;
    l = rd_kafka_topic_partition_list_new((int)n);
    if (!l)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct fetch_part *fp = at(opaque, i);

        rd_kafka_topic_partition_list_add(l, fp->topic, fp->partition)->offset =
            RD_KAFKA_OFFSET_END;
    }
    /* Returns at once: _TIMED_OUT once the requests are sent, another error if some were not. */
    err = rd_kafka_offsets_for_times(fw->rk, l, 0);
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT)
        log_debug("waking the fetchers: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
    fw->queued_peak = queued;
    fw->woke_at = now;
    fw->wakeups++;
    telemetry_fetch_wakeup(fw->tm);
}

static rd_kafka_topic_partition_list_t *one_part(const struct fetch_part *fp, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, fp->topic, fp->partition)->offset = offset;
    return l;
}

/*
 * Where fp starts when it has delivered nothing since its assignment: its
 * committed offset, asked of the group's coordinator, or where
 * kafka.auto_offset_reset says if it has none. RD_KAFKA_OFFSET_INVALID when
 * that cannot be told (the coordinator does not answer, or the policy is
 * "error"). librdkafka's logical "stored" offset is no use here: a seek to
 * it leaves the partition unfetched.
 */
static int64_t start_offset(struct fetchwatch *fw, const struct fetch_part *fp)
{
    rd_kafka_topic_partition_list_t *l = one_part(fp, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t err = rd_kafka_committed(fw->rk, l, COMMITTED_TIMEOUT_MS);
    int64_t offset;

    if (!err)
        err = l->elems[0].err;
    offset = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warnx("%s [%" PRId32 "]: its committed offset: %s", fp->topic, fp->partition,
                  rd_kafka_err2str(err));
        return RD_KAFKA_OFFSET_INVALID;
    }
    if (offset >= 0)
        return offset;
    if (strcmp(fw->cfg->kafka.auto_offset_reset, "earliest") == 0)
        return RD_KAFKA_OFFSET_BEGINNING;
    if (strcmp(fw->cfg->kafka.auto_offset_reset, "latest") == 0)
        return RD_KAFKA_OFFSET_END;
    return RD_KAFKA_OFFSET_INVALID;
}

/*
 * Resume fp and seek it to the next offset not delivered, or to where it
 * starts if none was. The resume is harmless if librdkafka already has it
 * resumed (nothing of the consumer's holds it); the seek drops nothing and
 * repeats nothing that was delivered.
 */
static void restart(struct fetchwatch *fw, struct fetch_part *fp, int64_t hi, int64_t quiet_ms)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_error_t *error;
    const char *why = NULL;
    int64_t from;

    if (fp->delivered >= 0)
        log_warnx("%s [%" PRId32 "]: nothing fetched for %" PRId64 " s though it is not paused "
                  "and offsets %" PRId64 " to %" PRId64 " wait; fetching it again from %" PRId64,
                  fp->topic, fp->partition, quiet_ms / 1000, fp->delivered, hi - 1, fp->delivered);
    else
        log_warnx("%s [%" PRId32 "]: no fetch answered for %" PRId64 " s since it was assigned, "
                  "though it is not paused; fetching it again from where it starts",
                  fp->topic, fp->partition, quiet_ms / 1000);
    fw->stalls++;
    telemetry_stall(fw->tm);
    l = one_part(fp, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resume_partitions(fw->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    from = fp->delivered >= 0 ? fp->delivered : start_offset(fw, fp);
    if (from == RD_KAFKA_OFFSET_INVALID)
        return; /* resumed only */
    l = one_part(fp, from);
    error = rd_kafka_seek_partitions(fw->rk, l, SEEK_TIMEOUT_MS);
    if (error)
        why = rd_kafka_error_string(error);
    else if (l->elems[0].err)
        why = rd_kafka_err2str(l->elems[0].err);
    if (why)
        log_warnx("%s [%" PRId32 "]: seek to %" PRId64 ": %s", fp->topic, fp->partition, from, why);
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * librdkafka fetches every assigned partition that is not paused; should it
 * stop fetching one (a resume lost in its state, say), that partition's
 * messages would wait for ever while the others flow, and no error would
 * say so. Once a second, each partition nothing of ours holds is quiet while
 * its last fetch showed messages beyond those delivered (the cached high
 * watermark) and no more came, or, if it has delivered nothing since its
 * assignment, while no fetch of it has been answered at all (an answer sets
 * the high watermark, messages or none). After stall_timeout_s of quiet it
 * is fetched again, but only if the prefetched queue was empty at this look
 * and the one before: the loop has taken everything fetched, so a partition
 * behind a long queue or slow handlers is not taken for one not fetched. If
 * the loop was away longer than a look (a slow handler), every quiet spell
 * starts again.
 */
void fetchwatch_tick(struct fetchwatch *fw, size_t n, fetch_part_at at, void *opaque)
{
    int64_t now = clock_mono_ms(), stall_ms = (int64_t)fw->cfg->processing.stall_timeout_s * 1000;
    bool away, drained, judge;

    if (stall_ms == 0 || now < fw->watch_at)
        return;
    away = fw->watch_at == 0 ||
           now - fw->watch_at > WATCH_EVERY_MS + fw->cfg->processing.batch_timeout_ms;
    drained = !fw->fetched || rd_kafka_queue_length(fw->fetched) == 0;
    judge = !away && drained && fw->drained;
    fw->watch_at = now + WATCH_EVERY_MS;
    fw->drained = drained;
    for (size_t i = 0; i < n; i++) {
        struct fetch_part *fp = at(opaque, i);
        int64_t lo, hi;

        if (away || fp->quiet_since == 0 || fp->busy || fp->delivered != fp->watched ||
            rd_kafka_get_watermark_offsets(fw->rk, fp->topic, fp->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            (fp->delivered >= 0 ? hi <= fp->delivered : hi >= 0)) {
            fp->watched = fp->delivered;
            fp->quiet_since = now;
            continue;
        }
        if (judge && now - fp->quiet_since >= stall_ms) {
            restart(fw, fp, hi, now - fp->quiet_since);
            fp->quiet_since = now;
        }
    }
}

bool fetchwatch_error(struct fetchwatch *fw, const rd_kafka_message_t *m)
{
    bool fatal;

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return false;
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        /* Not fatal: the topic may be created later, and the subscription picks it up. */
        log_warnx("topic %s does not exist: create it, or fix kafka.topics; waiting for it",
                  m->rkt ? rd_kafka_topic_name(m->rkt) : "(unknown)");
        return false;
    }
    telemetry_consume_error(fw->tm);
    fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
    /*
     * The same error at the same place comes back at every fetch (a batch
     * librdkafka cannot decompress, say): log it once, then every 1000th time.
     */
    if (m->err == fw->last_error.err && m->partition == fw->last_error.partition &&
        m->offset == fw->last_error.offset && m->rkt == fw->last_error.rkt) {
        if (++fw->last_error.repeats % 1000)
            return fatal;
    } else {
        fw->last_error.err = m->err;
        fw->last_error.partition = m->partition;
        fw->last_error.offset = m->offset;
        fw->last_error.rkt = m->rkt;
        fw->last_error.repeats = 0;
    }
    if (m->rkt)
        log_warnx("consume %s [%" PRId32 "] offset %" PRId64 ": %s%s", rd_kafka_topic_name(m->rkt),
                  m->partition, m->offset, rd_kafka_message_errstr(m),
                  fw->last_error.repeats ? " (again, 1000 times)" : "");
    else
        log_warnx("consume: %s", rd_kafka_message_errstr(m));
    return fatal;
}

uint64_t fetchwatch_wakeups(const struct fetchwatch *fw)
{
    return fw->wakeups;
}

uint64_t fetchwatch_stalls(const struct fetchwatch *fw)
{
    return fw->stalls;
}

struct fetchwatch *fetchwatch_free(struct fetchwatch *fw)
{
    if (!fw)
        return NULL;
    if (fw->fetched)
        rd_kafka_queue_destroy(fw->fetched);
    free(fw);
    return NULL;
}
