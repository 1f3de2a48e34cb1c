/* SPDX-License-Identifier: MIT */
/* utf8.h -- well-formed UTF-8: one sequence at a time, whole strings, repairs. */
#ifndef CRM_UTF8_H
#define CRM_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The length of the well-formed UTF-8 sequence at p, of which n >= 1 bytes
 * are available, or 0 when it is not well-formed (RFC 3629: no overlong
 * forms, surrogates, code points above U+10FFFF, stray continuation bytes or
 * sequences cut short).
 */
size_t utf8_len(const unsigned char *p, size_t n);

/* Whether the NUL-terminated s is well-formed UTF-8 throughout. */
bool utf8_valid(const char *s);

/*
 * A copy of s (malloc'd) with each byte that is not part of well-formed
 * UTF-8 replaced by U+FFFD; NULL when out of memory. Prometheus rejects a
 * scrape with an invalid label value, and a value can come from outside (a
 * topic name, say), so one bad value must not cost every metric.
 */
char *utf8_repair(const char *s);

#endif
