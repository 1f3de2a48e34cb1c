/* SPDX-License-Identifier: MIT */
/* notify.c -- sd_notify: READY, STATUS, WATCHDOG, STOPPING, RELOADING. */
#include "clock.h"
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

static bool enabled;
static uint64_t watchdog_usec;
static uint64_t last_watchdog;

void notify_init(void)
{
    const char *sock = getenv("NOTIFY_SOCKET");

    enabled = sock && *sock;
    /* Keep the variables: sd_notify reads NOTIFY_SOCKET at each call. */
    if (!enabled || sd_watchdog_enabled(0, &watchdog_usec) <= 0)
        watchdog_usec = 0;
}

static void tell(const char *state)
{
    if (enabled)
        sd_notify(0, state);
}

void notify_ready(const char *status)
{
    char line[512];

    snprintf(line, sizeof(line), "READY=1\nSTATUS=%s", status);
    tell(line);
}

void notify_status(const char *status)
{
    char line[512];

    snprintf(line, sizeof(line), "STATUS=%s", status);
    tell(line);
}

uint64_t notify_watchdog_usec(void)
{
    return watchdog_usec;
}

void notify_watchdog(void)
{
    uint64_t now;

    if (!watchdog_usec)
        return;
    now = clock_mono_ns() / 1000;
    /* Twice per interval, as sd_watchdog_enabled(3) advises. */
    if (now - last_watchdog < watchdog_usec / 2)
        return;
    last_watchdog = now;
    tell("WATCHDOG=1");
}

void notify_reloading(void)
{
    tell("RELOADING=1");
}

void notify_stopping(void)
{
    tell("STOPPING=1");
}
