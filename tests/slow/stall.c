/* SPDX-License-Identifier: MIT */
/*
 * stall.c -- a test shim, preloaded into the daemon: parsing a message that
 * contains "crm-test-stall" hangs for CRM_STALL_SECONDS, once (the file
 * CRM_STALL_ONCE records that it did), as a stuck handler would.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define MARKER "crm-test-stall"

typedef cJSON *parse_fn(const char *, size_t, const char **, cJSON_bool);

static void stall_once(void)
{
    const char *secs = getenv("CRM_STALL_SECONDS"), *once = getenv("CRM_STALL_ONCE");
    struct timespec ts = {.tv_sec = secs ? atoi(secs) : 0};
    int fd;

    if (!once || (fd = open(once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return; /* not asked, or done before */
    close(fd);
    while (nanosleep(&ts, &ts) < 0)
        ;
}

cJSON *cJSON_ParseWithLengthOpts(const char *value, size_t len, const char **end,
                                 cJSON_bool require_null)
{
    static parse_fn *real;

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "cJSON_ParseWithLengthOpts");
    if (value && memmem(value, len, MARKER, sizeof(MARKER) - 1))
        stall_once();
    return real(value, len, end, require_null);
}
