/* SPDX-License-Identifier: MIT */
/* notify.h -- sd_notify: READY, STATUS, WATCHDOG, STOPPING, RELOADING. */
#ifndef CRM_NOTIFY_H
#define CRM_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Read NOTIFY_SOCKET and WATCHDOG_USEC once. Every call below is a no-op
 * outside systemd (no NOTIFY_SOCKET), so the daemon runs the same from a
 * terminal.
 */
void notify_init(void);

/* READY=1 with a STATUS= line: start-up is complete. */
void notify_ready(const char *status);

/* STATUS=<line>, at most every few seconds from the main loop. */
void notify_status(const char *status);

/* Whether systemd expects WATCHDOG=1, and how often (microseconds; 0 when not). */
uint64_t notify_watchdog_usec(void);

/* WATCHDOG=1 when the watchdog is on and half its interval has passed since the last one. */
void notify_watchdog(void);

/* RELOADING=1 then, from notify_ready(), READY=1 again. */
void notify_reloading(void);

/* STOPPING=1: shutdown has begun. */
void notify_stopping(void);

#endif
