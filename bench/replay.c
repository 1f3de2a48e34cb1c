/* SPDX-License-Identifier: MIT */
/* replay.c -- the daemon's publisher alone: send recorded outputs, time them to their acks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "publisher.h"

/*
 * usage: replay CONFIG FILE
 *
 * Sends every record of FILE through the daemon's own publisher, made from
 * CONFIG as the daemon makes it, and waits for every acknowledgement. A line
 * of FILE is `OUTPUT<TAB>KEY<TAB>VALUE`, OUTPUT one of tickets, responses,
 * identities, dead_letters: what `kcat -f` prints of a full run's output
 * topics. The records are read into memory first, so that the timed part is
 * the producing alone: the wall time from the first send to the last
 * acknowledgement, and the CPU time of the whole process (every librdkafka
 * thread) over it. It prints one line:
 *
 *   replay records=N acked=N failed=N wall_s=S cpu_s=S
 *
 * and exits non-zero unless every record was acknowledged. `make bench` runs
 * it on its first full run's outputs: what a full run needs beyond the dry run.
 */

/*
 * Delivery reports are served after this many sends: more often than the
 * daemon, which serves them once a batch (500 inputs, some 1,150 records, by
 * default); a call that finds reports waiting costs little beside them.
 */
#define POLL_EVERY 256

static const char *const output_names[OUTPUT_TOPICS] = {
    [OUTPUT_TICKETS] = "tickets",
    [OUTPUT_RESPONSES] = "responses",
    [OUTPUT_IDENTITIES] = "identities",
    [OUTPUT_DEAD_LETTERS] = "dead_letters",
};

struct record {
    enum output_topic topic;
    const char *key, *value; /* into the line, which the record owns */
    size_t key_len, len;
    char *line;
};

struct records {
    struct record *r;
    size_t n, cap;
};

struct tally {
    size_t acked, failed;
    rd_kafka_resp_err_t first_err;
};

static void on_ack(void *opaque, void *token, enum output_topic topic, rd_kafka_resp_err_t err)
{
    struct tally *t = opaque;

    (void)token;
    (void)topic;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        t->acked++;
        return;
    }
    if (t->failed++ == 0)
        t->first_err = err;
}

/* Split line (len bytes, no newline) into r; -EINVAL if it is not OUTPUT<TAB>KEY<TAB>VALUE. */
static int record_parse(char *line, size_t len, struct record *r)
{
    char *tab1 = memchr(line, '\t', len), *tab2;

    if (tab1 == NULL)
        return -EINVAL;
    tab2 = memchr(tab1 + 1, '\t', len - (size_t)(tab1 + 1 - line));
    if (tab2 == NULL)
        return -EINVAL;
    *tab1 = '\0';
    for (r->topic = 0; r->topic < OUTPUT_TOPICS; r->topic++)
        if (strcmp(line, output_names[r->topic]) == 0)
            break;
    if (r->topic == OUTPUT_TOPICS)
        return -EINVAL;
    r->key = tab1 + 1;
    r->key_len = (size_t)(tab2 - r->key);
    r->value = tab2 + 1;
    r->len = len - (size_t)(r->value - line);
    r->line = line;
    return 0;
}

/* Read path into rs; returns 0, a negative errno, or the 1-based number of a malformed line. */
static long records_read(struct records *rs, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    long status = 0;

    if (f == NULL)
        return -errno;
    while ((got = getline(&line, &linecap, f)) > 0) {
        size_t len = (size_t)got - (line[got - 1] == '\n');

        if (rs->n == rs->cap) {
            size_t cap = rs->cap ? rs->cap * 2 : 4096;
            struct record *r = realloc(rs->r, cap * sizeof(*r));

            if (r == NULL) {
                status = -ENOMEM;
                break;
            }
            rs->r = r;
            rs->cap = cap;
        }
        if (record_parse(line, len, &rs->r[rs->n]) < 0) {
            status = (long)rs->n + 1;
            break;
        }
        rs->n++;
        line = NULL; /* the record keeps it */
        linecap = 0;
    }
    free(line);
    fclose(f);
    return status;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for the brokers and every output topic's metadata, so the timing starts warm. */
static int warm_up(struct publisher *p)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(publisher_handle(p), 1, NULL, &md, 10000);

    if (err) {
        fprintf(stderr, "replay: no metadata: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* Send every record, serving delivery reports as the daemon does; -1 on a refusal. */
static int send_all(struct publisher *p, const struct records *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        const struct record *r = &rs->r[i];
        int rc;

        while ((rc = publisher_send(p, r->topic, r->key, r->key_len, r->value, r->len, NULL, 0,
                                    NULL)) == -ENOBUFS)
            publisher_poll(p, 10); /* a full queue: wait for room, as flow control does */
        if (rc < 0) {
            fprintf(stderr, "replay: record %zu refused: %s\n", i + 1, publisher_last_error(p));
            return -1;
        }
        if (i % POLL_EVERY == POLL_EVERY - 1)
            publisher_poll(p, 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config *cfg = NULL;
    struct config_errors errs = {0};
    struct records rs = {0};
    struct tally tally = {0};
    struct publisher *p = NULL;
    char err[512];
    double wall0, cpu0, wall, cpu;
    long rc;
    int status = EXIT_FAILURE;

    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG FILE\n", argv[0]);
        return 64;
    }
    if (config_load(argv[1], &cfg, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "replay: %s\n", errs.msgs[i]);
        goto out;
    }
    log_init(cfg->log.level);
    rc = records_read(&rs, argv[2]);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "replay: %s: %s\n", argv[2], strerror((int)-rc));
        else
            fprintf(stderr, "replay: %s:%ld: not OUTPUT<TAB>KEY<TAB>VALUE\n", argv[2], rc);
        goto out;
    }
    p = publisher_new(cfg, on_ack, &tally, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    if (warm_up(p) < 0)
        goto out;
    wall0 = wall_seconds();
    cpu0 = cpu_seconds();
    if (send_all(p, &rs) < 0)
        goto out;
    if (publisher_flush(p, 120000) < 0) {
        fprintf(stderr, "replay: %d records unacknowledged after 120 s\n", publisher_in_flight(p));
        goto out;
    }
    wall = wall_seconds() - wall0;
    cpu = cpu_seconds() - cpu0;
    printf("replay records=%zu acked=%zu failed=%zu wall_s=%.3f cpu_s=%.3f\n", rs.n, tally.acked,
           tally.failed, wall, cpu);
    if (tally.failed > 0)
        fprintf(stderr, "replay: %zu records failed, the first: %s\n", tally.failed,
                rd_kafka_err2str(tally.first_err));
    else if (tally.acked == rs.n)
        status = EXIT_SUCCESS;
out:
    publisher_free(p);
    for (size_t i = 0; i < rs.n; i++)
        free(rs.r[i].line);
    free(rs.r);
    config_errors_clear(&errs);
    config_free(cfg);
    return status;
}
