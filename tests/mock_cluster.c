/* SPDX-License-Identifier: MIT */
/* mock_cluster.c -- a librdkafka mock cluster in its own process, for tests of the daemon. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * usage: mock_cluster [-b brokers] [-p partitions] TOPIC...
 * Creates the topics, prints the bootstrap address on one line, then serves
 * until SIGTERM or SIGINT.
 */
static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

int main(int argc, char **argv)
{
    int brokers = 3, partitions = 4, opt;
    struct sigaction sa;
    sigset_t block, old;
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
    for (int i = optind; i < argc; i++)
        rd_kafka_mock_topic_create(mock, argv[i], partitions, 1);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mock));
    fflush(stdout);
    while (!quit)
        sigsuspend(&old);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
    return 0;
}
