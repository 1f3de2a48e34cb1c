/* SPDX-License-Identifier: MIT */
/* main.c -- crm-consumerd: command line, start-up, signals and the main loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "changelog.h"
#include "config.h"
#include "demo.h"
#include "consumer.h"
#include "handlers/handlers.h"
#include "kafka.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "notify.h"
#include "router.h"
#include "telemetry.h"

#define DEFAULT_CONFIG "/etc/crm-consumer.conf"

static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        quit_signal = sig;
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: crm-consumerd [-c FILE] [-t|--check-config] [--demo [--demo-rate N]] "
                 "[-V|--version] [-h|--help]\n"
                 "  -c, --config FILE    configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --check-config   check the configuration, print the result, exit\n"
                 "      --demo           run against an embedded broker with sample traffic\n"
                 "      --demo-rate N    sample messages per second (default 300)\n"
                 "      --dry-run        publish nothing (benchmarks only: inputs are "
                 "committed)\n"
                 "  -V, --version        print the version and exit\n"
                 "  -h, --help           print this help and exit\n"
                 "See crm-consumerd(8) and crm-consumer.conf(5).\n");
}

/* Load the file; print every problem. Returns the config or NULL with *status an exit code. */
static struct config *load_config(const char *path, int prefixed, int *status)
{
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    int rc = config_load(path, &cfg, &errs);

    /* The two mistakes of a first install get one line saying what to do. */
    if (rc == -ENOENT || rc == -EACCES) {
        const char *what = rc == -ENOENT
                               ? "no such file; copy conf/crm-consumer.conf there, or name "
                                 "another with -c FILE"
                               : "permission denied; make it readable by the user "
                                 "crm-consumerd runs as";

        if (prefixed)
            log_errx("%s: %s", path, what);
        else
            fprintf(stderr, "%s: %s\n", path, what);
        config_errors_clear(&errs);
        *status = rc == -ENOENT ? EX_NOINPUT : EX_NOPERM;
        return NULL;
    }
    /* After a success, what errs holds are warnings: deprecated settings. */
    for (size_t i = 0; i < errs.n; i++) {
        if (prefixed && rc == 0)
            log_warnx("%s", errs.msgs[i]);
        else if (prefixed)
            log_errx("%s", errs.msgs[i]);
        else
            fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    config_errors_clear(&errs);
    if (rc == 0) {
        *status = EX_OK;
        return cfg;
    }
    *status = rc == -EINVAL ? EX_CONFIG : EX_NOINPUT;
    return NULL;
}

/* SIGHUP: re-read the file; apply what can change at run time, keep the rest. */
static void reload(const char *path)
{
    int status;
    struct config *fresh;

    notify_reloading();
    fresh = load_config(path, 1, &status);
    if (!fresh) {
        log_warnx("reload: %s has errors; keeping the running configuration", path);
        return;
    }
    log_set_level(fresh->log.level);
    log_notice("reload: log level is %s; other settings take effect at restart",
               log_level_name(fresh->log.level));
    config_free(fresh);
}

/* The longest start-up wait for the identity links already published. */
#define LINKS_LOAD_TIMEOUT_MS 60000
/* How often systemd's STATUS= line is refreshed. */
#define STATUS_INTERVAL_S 5

/* The demo's live line: what was produced, what the daemon made of it. */
static void demo_line(struct demo *demo, struct telemetry *tm, bool tty)
{
    char line[256];

    telemetry_status(tm, line, sizeof(line));
    printf("%sdemo: %llu produced (%llu poison pills) | %s%s", tty ? "\r\033[K" : "",
           (unsigned long long)demo_produced(demo), (unsigned long long)demo_poison(demo), line,
           tty ? "" : "\n");
    fflush(stdout);
}

static int run(const char *path, struct config *cfg, struct demo *demo)
{
    struct router_limits limits = {
        .max_message_bytes = (size_t)cfg->processing.max_message_bytes,
        .max_nesting_depth = cfg->processing.max_nesting_depth,
        .unknown_type = cfg->processing.unknown_type,
    };
    struct identity_links *links = identity_links_new((size_t)cfg->identity.max_links);
    struct router *router = router_new(&limits);
    struct handlers *handlers = links ? handlers_new(cfg, links, NULL) : NULL;
    struct telemetry *tm = telemetry_new(cfg);
    struct changelog *changelog = NULL;
    struct consumer *c = NULL;
    struct http *http = NULL;
    struct http_routes routes;
    time_t last_status = 0, last_demo = 0;
    uint64_t links_applied = 0, links_skipped = 0; /* already added to the metrics */
    bool tty = isatty(STDOUT_FILENO);
    char line[256];
    const struct consumer_stats *st;
    sigset_t block, old;
    char err[512];
    int status = EX_OK, close_rc = 0, resolved;

    if (!router || !handlers || !tm || handlers_register(handlers, router) < 0) {
        log_errx("out of memory");
        status = EX_OSERR;
        goto out;
    }
    /* librdkafka would retry a misspelt broker name for ever: say so now, once. */
    resolved = kafka_resolve_brokers(cfg->kafka.brokers, err, sizeof(err));
    if (resolved == 0) {
        log_errx("kafka.brokers: %s; check the names in %s, or the DNS", err, path);
        status = EX_NOHOST;
        goto out;
    } else if (resolved < 0) {
        log_warnx("kafka.brokers: %s; going on with the others", err);
    }
    /*
     * librdkafka's threads inherit the signal mask of the thread that creates
     * them: block our signals while the handles are made, so only the main
     * thread takes them and their system calls are not interrupted.
     */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    changelog = changelog_new(cfg, links, err, sizeof(err));
    if (changelog)
        c = consumer_new(cfg, router, tm, err, sizeof(err));
    if (!c) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        log_errx("cannot start the Kafka clients: %s", err);
        status = EX_UNAVAILABLE;
        goto out;
    }
    routes = (struct http_routes){.metrics = telemetry_registry(tm),
                                  .health = telemetry_health,
                                  .ready = telemetry_ready,
                                  .opaque = tm};
    http = http_start(cfg, &routes, err, sizeof(err));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!http) {
        log_errx("cannot serve /metrics: %s; free the address or change http.listen", err);
        status = EX_CANTCREAT;
        goto out;
    }
    /* Links made by any instance before now, so the first messages resolve like the last. */
    if (changelog_load(changelog, LINKS_LOAD_TIMEOUT_MS) < 0)
        log_warnx("%s: not read to the end in %d s; starting with %zu links, reading on",
                  cfg->output.identities_topic, LINKS_LOAD_TIMEOUT_MS / 1000,
                  identity_links_count(links));
    else
        log_info("%s: %zu identity links loaded", cfg->output.identities_topic,
                 identity_links_count(links));
    log_notice("crm-consumerd %s (librdkafka %s) started: group %s, %zu topic%s, brokers %s, "
               "metrics on http://%s/metrics",
               CRM_VERSION, rd_kafka_version_str(), cfg->kafka.group_id, cfg->kafka.ntopics,
               cfg->kafka.ntopics == 1 ? "" : "s", cfg->kafka.brokers, cfg->http.listen);
    notify_ready("subscribed; waiting for partitions");
    if (demo)
        printf("demo: embedded Kafka at %s (try: kcat -b %s -C -t %s)\n"
               "demo: http://%s/metrics  http://%s/health  http://%s/ready\n"
               "demo: Ctrl-C stops it\n",
               demo_bootstraps(demo), demo_bootstraps(demo), cfg->output.tickets_topic,
               cfg->http.listen, cfg->http.listen, cfg->http.listen);

    while (!quit_signal) {
        if (consumer_poll(c) < 0) {
            log_errx("the Kafka client hit a fatal error; shutting down");
            status = EX_UNAVAILABLE;
            break;
        }
        changelog_poll(changelog);
        telemetry_links(tm, identity_links_count(links));
        telemetry_link_events(tm, changelog_applied(changelog) - links_applied,
                              changelog_skipped(changelog) - links_skipped);
        links_applied = changelog_applied(changelog);
        links_skipped = changelog_skipped(changelog);
        /* Only a loop that turns feeds the watchdog: a stuck one gets restarted. */
        notify_watchdog();
        if (time(NULL) - last_status >= STATUS_INTERVAL_S) {
            last_status = time(NULL);
            telemetry_status(tm, line, sizeof(line));
            notify_status(line);
        }
        if (demo && time(NULL) - last_demo >= (tty ? 1 : 5)) {
            last_demo = time(NULL);
            demo_line(demo, tm, tty);
        }
        if (reload_requested) {
            reload_requested = 0;
            reload(path);
            telemetry_status(tm, line, sizeof(line));
            notify_ready(line);
        }
    }
    notify_stopping();
    if (demo && tty)
        printf("\n");
    if (quit_signal)
        log_notice("%s: finishing the batch, flushing outputs, committing and leaving the group",
                   strsignal(quit_signal));

    close_rc = consumer_close(c);
    if (close_rc == -ETIMEDOUT)
        log_warnx("shutdown: not finished within %d s; leaving anyway (uncommitted messages "
                  "will be consumed again)",
                  cfg->processing.shutdown_timeout_s);
    else if (close_rc < 0)
        log_warnx("shutdown: the final offset commit failed (uncommitted messages will be "
                  "consumed again)");
    st = consumer_stats(c);
    log_notice("stopped: %llu messages (%llu handled, %llu skipped, %llu dead letters, %llu "
               "retries), %llu outputs acknowledged, %llu failed, %llu commits",
               (unsigned long long)st->messages, (unsigned long long)st->ok,
               (unsigned long long)st->skipped, (unsigned long long)st->dead_letters,
               (unsigned long long)st->retries, (unsigned long long)st->outputs_ok,
               (unsigned long long)st->outputs_failed, (unsigned long long)st->commits_ok);
    /*
     * After a close that ran out of time, destroying the consumer would wait
     * for the group session to expire (up to session.timeout.ms): exit
     * without it. Everything else is freed as usual.
     */
    if (close_rc == -ETIMEDOUT)
        c = NULL;
out:
    http_stop(http);
    consumer_free(c);
    changelog_free(changelog);
    telemetry_free(tm);
    router_free(router);
    handlers_free(handlers);
    identity_links_free(links);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {"demo", no_argument, NULL, 'D'},         {"demo-rate", required_argument, NULL, 'R'},
        {"dry-run", no_argument, NULL, 'N'},      {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    int check_only = 0, opt, status, demo_rate = 300, want_demo = 0, dry_run = 0;
    struct demo *demo = NULL;
    struct config *cfg;
    char *end;
    char err[512];

    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'V':
            printf("crm-consumerd %s (librdkafka %s)\n", CRM_VERSION, rd_kafka_version_str());
            return EX_OK;
        case 'h':
            usage(stdout);
            return EX_OK;
        case 'D':
            want_demo = 1;
            break;
        case 'N':
            dry_run = 1;
            break;
        case 'R':
            demo_rate = (int)strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || demo_rate < 0 || demo_rate > 100000) {
                fprintf(stderr, "crm-consumerd: --demo-rate: a number of messages per second "
                                "from 0 to 100000\n");
                return EX_USAGE;
            }
            break;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crm-consumerd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }

    log_init(LOG_INFO);
    cfg = load_config(path, !check_only, &status);
    if (check_only) {
        if (cfg)
            printf("configuration OK\n");
        config_free(cfg);
        return status;
    }
    if (!cfg) {
        if (status == EX_CONFIG)
            log_errx("refusing to start: fix %s (check it with crm-consumerd -t -c %s)", path,
                     path);
        return status;
    }
    log_set_level(cfg->log.level);
    cfg->dry_run = dry_run;
    if (dry_run)
        log_warnx("--dry-run: nothing is published; offsets are committed as if it were");
    notify_init();
    if (install_signals() < 0) {
        log_warn("sigaction");
        config_free(cfg);
        return EX_OSERR;
    }
    if (want_demo) {
        /* The threads of the embedded broker and the generator must not take our signals. */
        demo = demo_start(cfg, demo_rate, err, sizeof(err));
        if (!demo) {
            log_errx("demo: %s", err);
            config_free(cfg);
            return EX_UNAVAILABLE;
        }
    }
    status = run(path, cfg, demo);
    demo_stop(demo);
    config_free(cfg);
    return status;
}
