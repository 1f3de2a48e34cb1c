/* SPDX-License-Identifier: MIT */
/* mock_cluster.c -- a librdkafka mock cluster in its own process, for tests of the daemon. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * usage: mock_cluster [-b brokers] [-p partitions] TOPIC...
 * Creates the topics, prints the bootstrap address on one line, then serves
 * until SIGTERM or SIGINT, or until its standard input ends. Lines on standard
 * input inject faults:
 *   down ID | up ID            a broker stops or starts answering
 *   push APIKEY COUNT ERR      the next COUNT requests of APIKEY fail with ERR
 *   clear APIKEY               forget the pushed errors
 *   rtt ID MS                  a broker answers MS milliseconds late
 *   leader TOPIC PARTITION ID  move a partition's leadership
 *   coord TYPE KEY ID          make broker ID the coordinator of group/txn KEY
 */
static volatile sig_atomic_t quit;

/* One topic to create, on a thread of its own: see create_topics(). */
struct creation {
    rd_kafka_mock_cluster_t *mock;
    const char *name;
    int partitions;
    pthread_t thread;
    bool started;
};

static void *create_one(void *arg)
{
    struct creation *c = arg;

    rd_kafka_mock_topic_create(c->mock, c->name, c->partitions, 1);
    return NULL;
}

/*
 * librdkafka 2.0.2's mock thread often misses the wake-up for a request made
 * from another thread and takes it up only at its next timer, a second later:
 * thirty topics created one after another took 11 to 13 s. Made at once, the
 * requests waiting are served together.
 */
static void create_topics(rd_kafka_mock_cluster_t *mock, char **names, int n, int partitions)
{
    struct creation *cs = calloc((size_t)n, sizeof(*cs));

    for (int i = 0; i < n; i++) {
        if (cs) {
            cs[i] = (struct creation){.mock = mock, .name = names[i], .partitions = partitions};
            cs[i].started = pthread_create(&cs[i].thread, NULL, create_one, &cs[i]) == 0;
        }
        if (!cs || !cs[i].started)
            rd_kafka_mock_topic_create(mock, names[i], partitions, 1);
    }
    for (int i = 0; cs && i < n; i++)
        if (cs[i].started)
            pthread_join(cs[i].thread, NULL);
    free(cs);
}

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static void command(rd_kafka_mock_cluster_t *mock, const char *line)
{
    char verb[16], name[256], key[256];
    long a = 0, b = 0, c = 0;
    int n = sscanf(line, "%15s %ld %ld %ld", verb, &a, &b, &c);

    if (sscanf(line, "leader %255s %ld %ld", name, &a, &b) == 3)
        rd_kafka_mock_partition_set_leader(mock, name, (int32_t)a, (int32_t)b);
    else if (sscanf(line, "coord %255s %255s %ld", name, key, &a) == 3)
        rd_kafka_mock_coordinator_set(mock, name, key, (int32_t)a);
    else if (n >= 2 && strcmp(verb, "down") == 0)
        rd_kafka_mock_broker_set_down(mock, (int32_t)a);
    else if (n >= 2 && strcmp(verb, "up") == 0)
        rd_kafka_mock_broker_set_up(mock, (int32_t)a);
    else if (n >= 3 && strcmp(verb, "rtt") == 0)
        rd_kafka_mock_broker_set_rtt(mock, (int32_t)a, (int)b);
    else if (n >= 2 && strcmp(verb, "clear") == 0)
        rd_kafka_mock_clear_request_errors(mock, (int16_t)a);
    else if (n >= 4 && strcmp(verb, "push") == 0 && b > 0 && b <= 100000) {
        rd_kafka_resp_err_t *errs = calloc((size_t)b, sizeof(*errs));

        for (long i = 0; errs && i < b; i++)
            errs[i] = (rd_kafka_resp_err_t)c;
        if (errs)
            rd_kafka_mock_push_request_errors_array(mock, (int16_t)a, (size_t)b, errs);
        free(errs);
    } else {
        fprintf(stderr, "mock_cluster: unknown command: %s", line);
        return;
    }
    fprintf(stderr, "mock_cluster: %s", line);
}

int main(int argc, char **argv)
{
    int brokers = 3, partitions = 4, opt;
    struct sigaction sa;
    sigset_t block, old;
    char line[256];
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_mock_cluster_t *mock;
    rd_kafka_t *rk;

    while ((opt = getopt(argc, argv, "b:p:")) != -1) {
        switch (opt) {
        case 'b':
            brokers = atoi(optarg);
            break;
        case 'p':
            partitions = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: mock_cluster [-b brokers] [-p partitions] TOPIC...\n");
            return 64;
        }
    }
    /* Signals stay blocked except inside sigsuspend(), so none slips past the check. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "mock_cluster: %s\n", errstr);
        return 69;
    }
    mock = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mock) {
        fprintf(stderr, "mock_cluster: cannot create the cluster\n");
        rd_kafka_destroy(rk);
        return 69;
    }
    create_topics(mock, argv + optind, argc - optind, partitions);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mock));
    fflush(stdout);
    /* Signals are taken while reading: a blocked read returns EINTR and quit is seen. */
    sigprocmask(SIG_SETMASK, &old, NULL);
    while (!quit && fgets(line, sizeof(line), stdin))
        command(mock, line);
    if (!quit) {
        /* Input closed (e.g. </dev/null): keep serving until a signal. */
        sigprocmask(SIG_BLOCK, &block, NULL);
        while (!quit)
            sigsuspend(&old);
    }
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
    return 0;
}
