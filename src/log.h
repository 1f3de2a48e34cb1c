/* SPDX-License-Identifier: MIT */
/* log.h -- levelled logging to stderr: <N> priority prefixes for journald, plain on a terminal. */
#ifndef CRM_LOG_H
#define CRM_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Set up logging: messages above priority `level` (LOG_ERR .. LOG_DEBUG) are dropped. */
void log_init(int level);

/* Change the threshold at run time (SIGHUP); safe to call from the main loop only. */
void log_set_level(int level);

/* The current threshold. */
int log_get_level(void);

/* Parse "error", "warning", "notice", "info" or "debug"; returns the priority or -1. */
int log_level_parse(const char *name);

/* The name of a priority, for messages; "unknown" for values out of range. */
const char *log_level_name(int level);

/* Emit one line at `prio`; the building block of the helpers below. */
void log_write(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, from a va_list. */
void log_vwrite(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Warning with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Warning without errno. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Error without errno. */
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Notice: normal but significant (start, stop, rebalance). */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Informational. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Debugging detail; cheap when disabled. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
