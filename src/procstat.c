/* SPDX-License-Identifier: MIT */
/* procstat.c -- the standard process_* metrics, read from /proc at each scrape. */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * The whole of a /proc file's first line, or the line starting with
 * prefix; NULL if the file or the line is missing. The caller frees it.
 * getline() grows its buffer, so a long line (the intr line of
 * /proc/stat on a large machine) is never split.
 */
static char *read_line(const char *path, const char *prefix)
{
    FILE *fp = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;

    if (fp == NULL)
        return NULL;
    while (getline(&line, &cap, fp) >= 0) {
        if (prefix == NULL || strncmp(line, prefix, strlen(prefix)) == 0) {
            fclose(fp);
            return line;
        }
    }
    free(line);
    fclose(fp);
    return NULL;
}

/*
 * Fields of /proc/self/stat, numbered as in proc(5): utime (14), stime
 * (15) and starttime (22), in clock ticks. 0 or -EIO.
 */
static int read_self_stat(unsigned long long *utime, unsigned long long *stime,
                          unsigned long long *starttime)
{
    char *line = read_line("/proc/self/stat", NULL);
    int ret = -EIO;

    if (line == NULL)
        return -EIO;
    /* The command name (field 2) may hold spaces and parentheses; it ends at the last ')'. */
    char *p = strrchr(line, ')');
    if (p == NULL)
        goto out;
    p++;
    for (int field = 3; field <= 22; field++) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " \n");
        if (n == 0)
            goto out;
        if (field == 14)
            *utime = strtoull(p, NULL, 10);
        else if (field == 15)
            *stime = strtoull(p, NULL, 10);
        else if (field == 22)
            *starttime = strtoull(p, NULL, 10);
        p += n;
    }
    ret = 0;
out:
    free(line);
    return ret;
}

/* /proc/self/statm's size (index 0) or resident (index 1) field, in bytes. */
static int read_statm(int index, double *v)
{
    char *line = read_line("/proc/self/statm", NULL);
    unsigned long long pages[2];
    long page_size = sysconf(_SC_PAGESIZE);
    int ret = -EIO;

    if (line == NULL)
        return -EIO;
    if (page_size > 0 && sscanf(line, "%llu %llu", &pages[0], &pages[1]) == 2) {
        *v = (double)pages[index] * (double)page_size;
        ret = 0;
    }
    free(line);
    return ret;
}

static int collect_cpu_seconds(double *v)
{
    unsigned long long utime, stime, starttime;
    long ticks = sysconf(_SC_CLK_TCK);

    if (ticks <= 0 || read_self_stat(&utime, &stime, &starttime) < 0)
        return -EIO;
    *v = (double)(utime + stime) / (double)ticks;
    return 0;
}

static int collect_resident_bytes(double *v)
{
    return read_statm(1, v);
}

static int collect_virtual_bytes(double *v)
{
    return read_statm(0, v);
}

static int collect_open_fds(double *v)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    double n = 0;

    if (dir == NULL)
        return -errno;
    /* Leave out ".", ".." and the descriptor that is reading the directory. */
    int self = dirfd(dir);
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == self)
            continue;
        n++;
    }
    closedir(dir);
    *v = n;
    return 0;
}

static int collect_max_fds(double *v)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    *v = (double)rl.rlim_cur;
    return 0;
}

/*
 * Boot time from the clocks rather than /proc/stat's btime: the unit's
 * ProcSubset=pid hides /proc/stat, while /proc/self/stat stays readable.
 */
static int collect_start_time(double *v)
{
    unsigned long long utime, stime, starttime;
    long ticks = sysconf(_SC_CLK_TCK);
    struct timespec real, boot;

    if (ticks <= 0 || read_self_stat(&utime, &stime, &starttime) < 0)
        return -EIO;
    if (clock_gettime(CLOCK_REALTIME, &real) < 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
        return -errno;
    *v = (double)(real.tv_sec - boot.tv_sec) + (double)(real.tv_nsec - boot.tv_nsec) / 1e9 +
         (double)starttime / (double)ticks;
    return 0;
}

int procstat_register(struct metrics *m)
{
    static const struct {
        enum metric_type type;
        const char *name;
        const char *help;
        metrics_collect_fn *collect;
    } process[] = {
        {METRIC_COUNTER, "process_cpu_seconds_total",
         "Processor time spent by the process in user and system mode, in seconds.",
         collect_cpu_seconds},
        {METRIC_GAUGE, "process_resident_memory_bytes",
         "Memory the process holds in RAM (resident set size), in bytes.", collect_resident_bytes},
        {METRIC_GAUGE, "process_virtual_memory_bytes",
         "Size of the process's virtual address space, in bytes.", collect_virtual_bytes},
        {METRIC_GAUGE, "process_open_fds", "File descriptors the process has open.",
         collect_open_fds},
        {METRIC_GAUGE, "process_max_fds",
         "The most file descriptors the process may open (the soft RLIMIT_NOFILE).",
         collect_max_fds},
        {METRIC_GAUGE, "process_start_time_seconds",
         "When the process started, in seconds since the Unix epoch.", collect_start_time},
    };

    /*
     * On failure the families added so far stay registered; they are
     * valid on their own, and the caller treats the error as fatal anyway.
     */
    if (m == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(process) / sizeof(process[0]); i++) {
        int ret = metrics_collected(m, process[i].type, process[i].name, process[i].help,
                                    process[i].collect);
        if (ret < 0)
            return ret;
    }
    return 0;
}
