/* SPDX-License-Identifier: MIT */
/*
 * stall.c -- a test shim, preloaded into the daemon: handling a message
 * with a string field of exactly "crm-test-stall" hangs for
 * CRM_STALL_SECONDS, once (the file CRM_STALL_ONCE records that it did), as
 * a stuck handler would.
 *
 * The daemon parses with code of its own, which no preload can reach, so
 * the shim takes strlen(): the handlers measure every string field they
 * check with it. It counts the bytes itself, so it calls nothing that might
 * call it back.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MARKER "crm-test-stall"

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

/* Without the attribute GCC turns the loop back into a call to strlen(): this one. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n] != '\0')
        n++;
    if (n == sizeof(MARKER) - 1 && memcmp(s, MARKER, n) == 0)
        stall_once();
    return n;
}
