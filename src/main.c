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
#include "demoview.h"
#include "dlq.h"
#include "consumer.h"
#include "handlers/handlers.h"
#include "kafka.h"
#include "http.h"
#include "identity.h"
#include "links.h"
#include "linkstore.h"
#include "log.h"
#include "notify.h"
#include "publisher.h"
#include "replay.h"
#include "router.h"
#include "telemetry.h"

#define DEFAULT_CONFIG "/etc/crm-consumer.conf"

static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t reload_requested;
/* Signals that neither stop nor reload: each is noted here, and the loop logs it. */
static volatile sig_atomic_t signal_noted[NSIG];
static volatile sig_atomic_t any_signal_noted;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1;
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGXCPU) {
        quit_signal = sig;
    } else if (sig > 0 && sig < NSIG) {
        signal_noted[sig] = 1;
        any_signal_noted = 1;
    }
}

/*
 * What each signal does is in crm-consumerd(8). SIGQUIT (a stop with a
 * core dump by default) and SIGXCPU (the soft CPU limit: the hard one's
 * SIGKILL follows) stop the daemon as SIGTERM does, so that it commits
 * and leaves the group. Signals that would kill it by default for no
 * reason of its own are logged and otherwise ignored, SIGUSR1 included:
 * the log is standard error, with nothing to reopen. Faults (SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) and SIGABRT, systemd's watchdog
 * signal, keep their core dump.
 */
static int install_signals(void)
{
    static const int handled[] = {SIGTERM, SIGINT, SIGQUIT, SIGXCPU, SIGHUP};
    static const int noted[] = {SIGUSR1, SIGUSR2,   SIGALRM, SIGVTALRM, SIGPROF,
                                SIGIO,   SIGSTKFLT, SIGPWR,  SIGTSTP};
    /*
     * Ignored outright: a handler would make the kernel repeat these for
     * ever at each write (SIGTTOU with stty tostop, SIGXFSZ past the file
     * size limit), and SIGTTIN stops a read the daemon never makes.
     */
    static const int ignored[] = {SIGPIPE, SIGTTIN, SIGTTOU, SIGXFSZ};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        if (sigaction(handled[i], &sa, NULL) < 0)
            return -errno;
    for (size_t i = 0; i < sizeof(noted) / sizeof(noted[0]); i++)
        if (sigaction(noted[i], &sa, NULL) < 0)
            return -errno;
    /*
     * A real-time signal the runtime keeps for itself (a debugger or valgrind
     * may) refuses a handler: it is not ours to catch, and is left as it is.
     */
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        if (sigaction(sig, &sa, NULL) < 0 && errno != EINVAL)
            return -errno;
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        if (sigaction(ignored[i], &sa, NULL) < 0)
            return -errno;
    return 0;
}

/* Log each signal noted since the last call, once. */
static void log_noted_signals(void)
{
    any_signal_noted = 0;
    for (int sig = 1; sig < NSIG; sig++) {
        const char *abbrev;

        if (!signal_noted[sig])
            continue;
        signal_noted[sig] = 0;
        abbrev = sigabbrev_np(sig);
        if (sig == SIGUSR1)
            log_notice("SIGUSR1: the log is standard error (the journal under systemd), so there "
                       "is no log file to reopen; going on");
        else if (abbrev)
            log_notice("SIG%s: ignored (SIGTERM stops crm-consumerd, SIGHUP reloads it)", abbrev);
        else
            log_notice("signal %d (SIGRTMIN+%d): ignored (SIGTERM stops crm-consumerd, SIGHUP "
                       "reloads it)",
                       sig, sig - SIGRTMIN);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: crm-consumerd [-c FILE] [-t|--check-config] [--demo [--demo-rate N]] "
                 "[-V|--version] [-h|--help]\n"
                 "       crm-consumerd [-c FILE] --dlq-stats\n"
                 "       crm-consumerd [-c FILE] --replay [--class C[,C...]] [--since TIME] "
                 "[--until TIME] [--limit N] [--dry-run]\n"
                 "  -c, --config FILE    configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --check-config   check the configuration, print the result, exit\n"
                 "      --demo           run against an embedded broker with sample traffic\n"
                 "      --demo-rate N    sample messages per second (default 300)\n"
                 "      --dry-run        publish nothing (benchmarks only: inputs are "
                 "committed);\n"
                 "                       with --replay: print what would be replayed, write "
                 "nothing\n"
                 "      --dlq-stats      summarise the dead-letter topic and exit\n"
                 "      --replay         handle dead letters again, publish their outputs, exit\n"
                 "      --class C,...    replay only these classes (parse, schema, identity,\n"
                 "                       unknown_type, oversize, transient)\n"
                 "      --since TIME     replay only records from TIME (ISO 8601, UTC by "
                 "default)\n"
                 "      --until TIME     replay only records before TIME\n"
                 "      --limit N        replay at most N dead letters\n"
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

/*
 * SIGHUP: re-read the whole file. A file with errors changes nothing (each
 * error is logged as file:line). Otherwise the settings that can change
 * safely take effect at once, and the others that differ are named.
 */
static void reload(const char *path, struct config *cfg, struct consumer *c)
{
    char restart[1024];
    struct config *fresh;
    int status, applied;

    notify_reloading();
    fresh = load_config(path, 1, &status);
    if (!fresh) {
        log_warnx("reload: %s has errors; keeping the running configuration", path);
        return;
    }
    applied = config_reload(cfg, fresh, restart, sizeof(restart));
    config_free(fresh);
    log_set_level(cfg->log.level);
    if (c)
        consumer_reconfigure(c);
    log_notice("reload: %d setting%s changed (log, responses, retry and circuit_breaker take "
               "effect now); log level is %s",
               applied, applied == 1 ? "" : "s", log_level_name(cfg->log.level));
    if (restart[0])
        log_warnx("reload: these differ from the running configuration and need a restart: %s",
                  restart);
}

/* How often systemd's STATUS= line is refreshed. */
#define STATUS_INTERVAL_S 5
/* How long the loop waits for the identities topic while restoring (it has nothing else to do). */
#define RESTORE_WAIT_MS 100

/* STATUS=: the restore's progress until the links are restored, then the loop's summary. */
static void status_line(struct telemetry *tm, struct changelog *cl, char *line, size_t len)
{
    uint64_t done, total;

    if (changelog_stopped(cl)) {
        snprintf(line, len, "identity store full or failing: not taking messages");
    } else if (!changelog_restored(cl)) {
        changelog_progress(cl, &done, &total);
        snprintf(line, len, "restoring identity links: %llu of %llu records",
                 (unsigned long long)done, (unsigned long long)total);
    } else {
        telemetry_status(tm, line, len);
    }
}

/* The identity store's state into the metrics and /ready. */
static void report_identities(struct telemetry *tm, struct changelog *cl, struct links *links,
                              struct linkstore *store)
{
    struct identity_report r = {
        .state = changelog_stopped(cl)    ? IDENTITY_STOPPED
                 : changelog_restored(cl) ? IDENTITY_READY
                                          : IDENTITY_RESTORING,
        .links = linkstore_count(store),
        .pending = links_pending(links),
        .store_bytes = linkstore_bytes(store),
        .store_max_bytes = linkstore_max_bytes(store),
        .rebuilds = changelog_rebuilds(cl),
        .lost = changelog_lost(cl),
        .compacted = changelog_policy(cl) == POLICY_UNKNOWN   ? -1
                     : changelog_policy(cl) == POLICY_COMPACT ? 1
                                                              : 0,
    };

    changelog_progress(cl, &r.restore_done, &r.restore_total);
    telemetry_identities(tm, &r);
}

/*
 * Make the consumer and subscribe. librdkafka's threads inherit the signal
 * mask of the thread that creates them: our signals are blocked meanwhile,
 * so only the main thread takes them and their system calls are not
 * interrupted.
 */
static struct consumer *start_consumer(const struct config *cfg, struct router *router,
                                       struct telemetry *tm, char *err, size_t errlen)
{
    sigset_t block, old;
    struct consumer *c;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    c = consumer_new(cfg, router, tm, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return c;
}

/*
 * Start-up, then the loop. The daemon tells systemd READY=1 once it serves
 * HTTP and reads the identities topic; it joins the group and handles
 * messages only when the identity store has caught up with the topic's end
 * as it was at start-up (until then /ready is 503 and STATUS= shows the
 * restore). A restore that waits for brokers thus never meets systemd's
 * start timeout, and never lets a message be handled against a partial
 * table.
 */
static int run(const char *path, struct config *cfg, struct demo *demo)
{
    struct router_limits limits = {
        .max_message_bytes = (size_t)cfg->processing.max_message_bytes,
        .max_nesting_depth = cfg->processing.max_nesting_depth,
        .unknown_type = cfg->processing.unknown_type,
    };
    struct linkstore *store = NULL;
    struct links *links = NULL;
    struct router *router = NULL;
    struct handlers *handlers = NULL;
    struct telemetry *tm = NULL;
    struct changelog *changelog = NULL;
    struct consumer *c = NULL;
    struct http *http = NULL;
    struct http_routes routes;
    time_t last_status = 0;
    struct demoview *view = NULL;
    uint64_t links_applied = 0, links_skipped = 0; /* already added to the metrics */
    bool tty = isatty(STDOUT_FILENO), held = false, following = false;
    char line[256];
    const struct consumer_stats *st;
    sigset_t block, old;
    char err[512], note[512];
    int status = EX_OK, close_rc = 0, resolved, rc;

    store = linkstore_open(cfg->identity.store_path, (size_t)cfg->identity.store_max_mb << 20, note,
                           sizeof(note), err, sizeof(err));
    if (!store) {
        log_errx("identity store: %s; check identity.store_path in %s", err, path);
        return EX_CANTCREAT;
    }
    if (note[0])
        log_warnx("identity store %s: %s; replaced by an empty one, rebuilt from %s",
                  cfg->identity.store_path, note, cfg->output.identities_topic);
    links = links_new(store);
    router = router_new(&limits);
    handlers = links ? handlers_new(cfg, links, NULL) : NULL;
    tm = telemetry_new(cfg);
    if (!links || !router || !handlers || !tm || handlers_register(handlers, router) < 0) {
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
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    changelog = changelog_new(cfg, links, err, sizeof(err));
    if (!changelog) {
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
    report_identities(tm, changelog, links, store);
    log_notice("crm-consumerd %s (librdkafka %s) started: group %s, %zu topic%s, brokers %s, "
               "metrics on http://%s/metrics",
               CRM_VERSION, rd_kafka_version_str(), cfg->kafka.group_id, cfg->kafka.ntopics,
               cfg->kafka.ntopics == 1 ? "" : "s", cfg->kafka.brokers, cfg->http.listen);
    notify_ready("restoring identity links");
    if (demo) {
        printf("demo: embedded Kafka at %s (try: kcat -b %s -C -t %s)\n"
               "demo: http://%s/metrics  http://%s/health  http://%s/ready\n"
               "demo: Ctrl-C stops it%s\n\n",
               demo_bootstraps(demo), demo_bootstraps(demo), cfg->output.tickets_topic,
               cfg->http.listen, cfg->http.listen, cfg->http.listen,
               tty ? "; the log shows warnings only here (redirect standard output to see it all)"
                   : "");
        /* On a terminal the view is the show: only what needs attention is logged. */
        if (tty && log_get_level() > LOG_WARNING)
            log_set_level(LOG_WARNING);
        view = demoview_new(demo_bootstraps(demo), cfg, tty);
    }

    while (!quit_signal) {
        if (!c) {
            /* Restoring: nothing else to do but read the identities topic. */
            changelog_poll(changelog, RESTORE_WAIT_MS);
            telemetry_poll(tm);
            if (changelog_restored(changelog)) {
                c = start_consumer(cfg, router, tm, err, sizeof(err));
                if (!c) {
                    log_errx("cannot start the Kafka consumer: %s", err);
                    status = EX_UNAVAILABLE;
                    break;
                }
                log_notice("identity links restored (%zu in the store); consuming",
                           linkstore_count(store));
                /*
                 * Reading links back, storing them and syncing the store to
                 * disk are not the main loop's to wait for: a thread follows
                 * the topic from now on, or this loop when it cannot start.
                 */
                if ((rc = changelog_follow(changelog)) < 0)
                    log_warnx("identity links: no thread of their own (%s); read in the main "
                              "loop",
                              strerror(-rc));
                following = rc == 0;
            }
        } else {
            if (consumer_poll(c) < 0) {
                log_errx("the Kafka client hit a fatal error; shutting down");
                status = EX_UNAVAILABLE;
                break;
            }
            if (!following)
                changelog_poll(changelog, 0);
        }
        /* A store that refuses writes would split customers: take no more messages. */
        if (c && !held && changelog_stopped(changelog)) {
            consumer_hold(c, true);
            held = true;
        }
        report_identities(tm, changelog, links, store);
        telemetry_link_events(tm, changelog_applied(changelog) - links_applied,
                              changelog_skipped(changelog) - links_skipped);
        links_applied = changelog_applied(changelog);
        links_skipped = changelog_skipped(changelog);
        /* Only a loop that turns feeds the watchdog: a stuck one gets restarted. */
        notify_watchdog();
        if (time(NULL) - last_status >= STATUS_INTERVAL_S) {
            last_status = time(NULL);
            status_line(tm, changelog, line, sizeof(line));
            notify_status(line);
        }
        if (view)
            demoview_tick(view, demo, tm);
        if (reload_requested) {
            reload_requested = 0;
            reload(path, cfg, c);
            status_line(tm, changelog, line, sizeof(line));
            notify_ready(line);
        }
        if (any_signal_noted)
            log_noted_signals();
    }
    notify_stopping();
    view = demoview_free(view);
    if (quit_signal)
        log_notice("%s: finishing the batch, flushing outputs, committing and leaving the group",
                   strsignal(quit_signal));
    if (!c)
        goto out;

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
    /* The reverse of the set-up: the consumer came last, once the links were restored. */
    consumer_free(c);
    http_stop(http);
    changelog_free(changelog);
    telemetry_free(tm);
    handlers_free(handlers);
    router_free(router);
    links_free(links);
    linkstore_close(store);
    return status;
}

/* A temporary directory for the demo's identity store, set in cfg. */
static int demo_store(struct config *cfg, char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    char *copy;

    snprintf(dir, len, "%s/crm-consumerd-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir) || !(copy = strdup(dir)))
        return -1;
    free(cfg->identity.store_path);
    cfg->identity.store_path = copy;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {"demo", no_argument, NULL, 'D'},         {"demo-rate", required_argument, NULL, 'R'},
        {"dry-run", no_argument, NULL, 'N'},      {"dlq-stats", no_argument, NULL, 'S'},
        {"replay", no_argument, NULL, 'P'},       {"class", required_argument, NULL, 'C'},
        {"since", required_argument, NULL, 'F'},  {"until", required_argument, NULL, 'U'},
        {"limit", required_argument, NULL, 'L'},  {NULL, 0, NULL, 0},
    };
    struct replay_options ro = {.since_ms = -1, .until_ms = -1};
    int want_stats = 0, replay = 0, replay_filter = 0;
    const char *path = DEFAULT_CONFIG;
    int check_only = 0, opt, status, demo_rate = 300, want_demo = 0, dry_run = 0;
    struct demo *demo = NULL;
    struct config *cfg;
    char demo_dir[256];
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
        case 'S':
            want_stats = 1;
            break;
        case 'P':
            replay = 1;
            break;
        case 'C':
            replay_filter = 1;
            if (replay_parse_classes(optarg, &ro.classes, err, sizeof(err)) < 0) {
                fprintf(stderr, "crm-consumerd: --class: %s\n", err);
                return EX_USAGE;
            }
            break;
        case 'F':
        case 'U':
            replay_filter = 1;
            if (replay_parse_time(optarg, opt == 'F' ? &ro.since_ms : &ro.until_ms) < 0) {
                fprintf(stderr,
                        "crm-consumerd: --%s: \"%s\" is not an ISO 8601 time (2024-05-01, "
                        "2024-05-01T12:30:00Z, 2024-05-01T14:30:00+02:00)\n",
                        opt == 'F' ? "since" : "until", optarg);
                return EX_USAGE;
            }
            break;
        case 'L':
            replay_filter = 1;
            errno = 0;
            ro.limit = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || errno || ro.limit < 1) {
                fprintf(stderr, "crm-consumerd: --limit: a number of dead letters, 1 or more\n");
                return EX_USAGE;
            }
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
    if ((replay_filter && !replay) || (want_stats && (replay || dry_run)) ||
        ((want_stats || replay) && (check_only || want_demo))) {
        fprintf(stderr, "crm-consumerd: --class, --since, --until and --limit go with --replay; "
                        "--dlq-stats and --replay with no other command\n");
        return EX_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "crm-consumerd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }

    log_init(LOG_INFO);
    cfg = load_config(path, !check_only, &status);
    /* The file may leave the store at its default: whether that is usable is checked here. */
    if (cfg && !want_demo && linkstore_check_dir(cfg->identity.store_path, err, sizeof(err)) < 0) {
        if (check_only)
            fprintf(stderr, "%s: identity.store_path: %s\n", path, err);
        else
            log_errx("%s: identity.store_path: %s", path, err);
        cfg = config_free(cfg);
        status = EX_CONFIG;
    }
    /*
     * librdkafka checks some settings only as it makes a client: make each
     * client's configuration as the start does, and have it judged, so that
     * -t predicts the start and the start refuses them as -t does.
     */
    if (cfg) {
        static const struct kafka_client clients[] = {
            {"the consumer", RD_KAFKA_CONSUMER, consumer_conf_new},
            {"the producer", RD_KAFKA_PRODUCER, publisher_conf_new},
            {"the reader of the identities topic", RD_KAFKA_CONSUMER, changelog_conf_new},
        };
        struct config_errors errs = {0};
        int bad = kafka_check(cfg, clients, sizeof(clients) / sizeof(clients[0]), &errs);

        for (size_t i = 0; i < errs.n; i++) {
            if (check_only)
                fprintf(stderr, "%s\n", errs.msgs[i]);
            else
                log_errx("%s", errs.msgs[i]);
        }
        config_errors_clear(&errs);
        if (bad < 0) {
            if (check_only)
                fprintf(stderr, "%s: %s\n", path, strerror(-bad));
            else
                log_errx("%s: %s", path, strerror(-bad));
        }
        if (bad != 0) {
            status = bad < 0 ? EX_OSERR : EX_CONFIG;
            cfg = config_free(cfg);
        }
    }
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
    if (want_stats || replay) {
        ro.dry_run = dry_run;
        if (install_signals() < 0) {
            log_warn("sigaction");
            status = EX_OSERR;
        } else {
            status = want_stats ? dlq_stats(cfg, path, &quit_signal)
                                : replay_run(cfg, path, &ro, &quit_signal);
        }
        config_free(cfg);
        return status;
    }
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
        /* The demo's links live in a store of its own, gone when it ends. */
        if (demo_store(cfg, demo_dir, sizeof(demo_dir)) < 0) {
            log_warn("demo: cannot make a temporary identity store");
            config_free(cfg);
            return EX_CANTCREAT;
        }
        /* The threads of the embedded broker and the generator must not take our signals. */
        demo = demo_start(cfg, demo_rate, err, sizeof(err));
        if (!demo) {
            log_errx("demo: %s", err);
            linkstore_remove(demo_dir);
            config_free(cfg);
            return EX_UNAVAILABLE;
        }
    }
    status = run(path, cfg, demo);
    demo_stop(demo);
    if (want_demo)
        linkstore_remove(demo_dir);
    config_free(cfg);
    return status;
}
