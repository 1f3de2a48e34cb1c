/* SPDX-License-Identifier: MIT */
/* pipeline.c -- the message pipeline alone (router and handlers, no Kafka), for profiles. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "handlers/handlers.h"
#include "identity.h"
#include "router.h"

/*
 * usage: pipeline FILE [COUNT]
 *
 * Routes the first COUNT values of FILE (one JSON value a line, as
 * `bench_tool.py values N` writes the benchmark's load) through the built-in
 * handlers with the default configuration and a fixed clock, and prints the
 * messages, the outputs, a digest of every output's topic, key and value
 * and of every result, and the time per message. Under
 * `valgrind --tool=callgrind` it gives instruction counts per message that
 * a busy machine does not disturb; the digest shows that a change left
 * every output byte as it was.
 */

#define FNV_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

struct sink {
    struct emitter emitter; /* first, so that the emitter's address is the sink's */
    uint64_t digest;
    uint64_t outputs;
};

static void mix(uint64_t *h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= FNV_PRIME;
    }
}

static int sink_emit(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                     const void *value, size_t len, int64_t timestamp_ms)
{
    struct sink *s = (struct sink *)e;
    unsigned char t = (unsigned char)topic;

    (void)timestamp_ms;
    mix(&s->digest, &t, 1);
    mix(&s->digest, key, key_len);
    mix(&s->digest, value, len);
    s->outputs++;
    return 0;
}

/* A clock that moves 7 ms a reading, so created_at crosses seconds as a live one does. */
static int64_t stepping_clock(void)
{
    static int64_t ms = INT64_C(1795867200123);

    return ms += 7;
}

struct load {
    char **values;
    size_t *lens;
    size_t n, cap;
};

/* Read up to max lines of path into l, without their newlines. */
static int load_read(struct load *l, const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;

    if (f == NULL)
        return -errno;
    while (l->n < max && (got = getline(&line, &linecap, f)) > 0) {
        size_t len = (size_t)got - (line[got - 1] == '\n');

        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 1024;
            char **values = realloc(l->values, cap * sizeof(*values));
            size_t *lens = values ? realloc(l->lens, cap * sizeof(*lens)) : NULL;

            if (values)
                l->values = values;
            if (!values || !lens)
                break;
            l->lens = lens;
            l->cap = cap;
        }
        /* Exactly len bytes, no NUL: the router must not read past a value. */
        l->values[l->n] = malloc(len ? len : 1);
        if (l->values[l->n] == NULL)
            break;
        memcpy(l->values[l->n], line, len);
        l->lens[l->n++] = len;
    }
    free(line);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    struct config *cfg = config_new_defaults();
    struct links *links = NULL;
    struct router *router = NULL;
    struct handlers *handlers = NULL;
    struct sink sink = {.emitter = {.emit = sink_emit}, .digest = FNV_BASIS};
    struct load load = {0};
    struct timespec start, end;
    size_t max = argc > 2 ? strtoul(argv[2], NULL, 10) : SIZE_MAX;
    int status = EXIT_FAILURE, rc;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s FILE [COUNT]\n", argv[0]);
        return 64;
    }
    if (cfg == NULL)
        goto out;
    struct router_limits limits = {
        .max_message_bytes = (size_t)cfg->processing.max_message_bytes,
        .max_nesting_depth = cfg->processing.max_nesting_depth,
        .unknown_type = cfg->processing.unknown_type,
    };
    links = links_new(NULL);
    router = router_new(&limits);
    handlers = links ? handlers_new(cfg, links, stepping_clock) : NULL;
    if (router == NULL || handlers == NULL || handlers_register(handlers, router) < 0) {
        fprintf(stderr, "pipeline: out of memory\n");
        goto out;
    }
    if ((rc = load_read(&load, argv[1], max)) < 0) {
        fprintf(stderr, "pipeline: %s: %s\n", argv[1], strerror(-rc));
        goto out;
    }

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (size_t i = 0; i < load.n; i++) {
        /* The benchmark's layout: 32 partitions, filled in turn. */
        struct message_meta meta = {.topic = "crm.inbound",
                                    .partition = (int32_t)(i % 32),
                                    .offset = (int64_t)(i / 32),
                                    .timestamp_ms = -1};
        struct route_result res;
        unsigned char outcome;

        router_route(router, load.values[i], load.lens[i], &meta, &sink.emitter, &res);
        outcome = (unsigned char)res.outcome;
        mix(&sink.digest, &outcome, 1);
        mix(&sink.digest, res.reason, strlen(res.reason) + 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);

    double ns = ((double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec));
    printf("messages=%zu outputs=%" PRIu64 " digest=%016" PRIx64 " ns_per_message=%.0f\n", load.n,
           sink.outputs, sink.digest, load.n ? ns / (double)load.n : 0.0);
    status = EXIT_SUCCESS;
out:
    for (size_t i = 0; i < load.n; i++)
        free(load.values[i]);
    free(load.values);
    free(load.lens);
    handlers_free(handlers);
    router_free(router);
    links_free(links);
    config_free(cfg);
    return status;
}
