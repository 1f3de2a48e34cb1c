/* SPDX-License-Identifier: MIT */
/* identity.h -- e-mail and phone normalisation, customer and ticket ids. */
#ifndef CRM_IDENTITY_H
#define CRM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* Longest normalised e-mail address (RFC 5321 path limit), without the NUL. */
#define IDENTITY_EMAIL_MAX 254
/* Longest E.164 number: "+" and 15 digits, without the NUL. */
#define IDENTITY_PHONE_MAX 16
/* "cus_" or "tkt_" and 16 lower-case hex digits, without the NUL. */
#define IDENTITY_ID_LEN 20

/*
 * Normalise an e-mail address: trim surrounding ASCII whitespace, lower-case
 * ASCII letters, then require exactly one '@', a non-empty local part of at
 * most 64 bytes, a domain with at least one dot, no empty label, no
 * whitespace or control characters anywhere, and at most IDENTITY_EMAIL_MAX
 * bytes in all. `in` need not be NUL-terminated. Writes the result and a NUL
 * to out (outlen > IDENTITY_EMAIL_MAX). Returns 0, or -EINVAL with *why set
 * to a static one-line reason.
 */
int identity_email(const char *in, size_t len, char *out, size_t outlen, const char **why);

/*
 * Normalise a phone number to E.164, "+" and at most 15 digits, reading it
 * as someone in `region` (an ISO 3166-1 alpha-2 code libphonenumber knows,
 * such as "US") writes it; phone.h says how libphonenumber reads it.
 * Surrounding whitespace is trimmed, and the spaces, tabs, dashes, dots,
 * parentheses and slashes between digits dropped; a "+" may only come
 * before the first digit. Any other character (a letter, an extension, a
 * digit outside ASCII) is an error. `in` need not be NUL-terminated.
 * Writes the result and a NUL to out (outlen > IDENTITY_PHONE_MAX).
 * Returns 0; -EINVAL with *why set to a static one-line reason when the
 * text is not a number; -ENOMEM (*why set) when memory ran out, which a
 * retry may cure.
 *
 * Results are remembered by region and digits (up to 65536), so a number
 * seen before costs a lookup instead of libphonenumber's 10 to 30
 * microseconds. Thread-safe.
 */
int identity_phone(const char *in, size_t len, const char *region, char *out, size_t outlen,
                   const char **why);

/* The ids' hash: 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3). */
uint64_t identity_hash(const void *data, size_t len);

/*
 * customer_id of a normalised identifier: "cus_" and the 16 hex digits of
 * identity_hash("email:" + address) or identity_hash("phone:" + number).
 * kind is "email" or "phone". out holds IDENTITY_ID_LEN + 1 bytes.
 */
void identity_customer_id(const char *kind, const char *canonical, char *out);

/*
 * ticket_id of one inbound message: "tkt_" and the 16 hex digits of
 * identity_hash(channel + ":" + source_id), where source_id is the message's
 * message_id (or submission_id for forms). out holds IDENTITY_ID_LEN + 1 bytes.
 */
void identity_ticket_id(const char *channel, const char *source_id, size_t source_len, char *out);

#endif
