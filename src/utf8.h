/* SPDX-License-Identifier: MIT */
/* utf8.h -- well-formed UTF-8, one sequence at a time. */
#ifndef CRM_UTF8_H
#define CRM_UTF8_H

#include <stddef.h>

/*
 * The length of the well-formed UTF-8 sequence at p, of which n >= 1 bytes
 * are available, or 0 when it is not well-formed (RFC 3629: no overlong
 * forms, surrogates, code points above U+10FFFF, stray continuation bytes or
 * sequences cut short).
 */
size_t utf8_len(const unsigned char *p, size_t n);

#endif
