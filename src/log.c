/* SPDX-License-Identifier: MIT */
/* log.c -- levelled logging to stderr: <N> priority prefixes for journald, plain on a terminal. */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * librdkafka calls our log callback from its own threads, so the threshold is
 * atomic. Each line is formatted into one buffer and written with a single
 * fputs so lines from different threads do not interleave.
 */
static atomic_int threshold = LOG_INFO;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "critical",
    [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/* Whether standard error is the journal: then each line starts with its <N> priority. */
static bool journal;

/*
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected to the journal; standard error is that stream only if they
 * match (a child whose stderr was redirected inherits the variable too).
 */
static bool stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return v && sscanf(v, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int level)
{
    journal = stderr_is_journal();
    log_set_level(level);
}

void log_set_level(int level)
{
    atomic_store(&threshold, level);
}

int log_get_level(void)
{
    return atomic_load(&threshold);
}

int log_level_parse(const char *name)
{
    for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < LOG_EMERG || level > LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

void log_vwrite(int prio, const char *fmt, va_list ap)
{
    char line[2048];
    const size_t cap = sizeof(line) - 1; /* keeps room for the newline */
    size_t len;
    int n, m;

    if (prio > atomic_load(&threshold))
        return;
    /* On a terminal or in a file the level is written out where it matters. */
    if (journal)
        n = snprintf(line, cap, "<%d>", prio);
    else if (prio <= LOG_WARNING)
        n = snprintf(line, cap, "%s: ", level_names[prio < LOG_EMERG ? LOG_EMERG : prio]);
    else
        n = 0;
    m = vsnprintf(line + n, cap - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    len = (size_t)n + (size_t)m;
    if (len >= cap) {
        /* An over-long line is cut, and marked as cut rather than silently split. */
        len = cap - 1;
        memcpy(line + len - 3, "...", 3);
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void log_write(int prio, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(prio, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    char msg[1536];
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write(LOG_WARNING, "%s: %s", msg, strerror(saved));
}

#define LOG_FORWARD(name, prio)                                                                    \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vwrite(prio, fmt, ap);                                                                 \
        va_end(ap);                                                                                \
    }

LOG_FORWARD(log_warnx, LOG_WARNING)
LOG_FORWARD(log_errx, LOG_ERR)
LOG_FORWARD(log_notice, LOG_NOTICE)
LOG_FORWARD(log_info, LOG_INFO)
LOG_FORWARD(log_debug, LOG_DEBUG)
