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
 * Normalise a phone number to E.164: drop spaces, dashes, dots, parentheses
 * and slashes; a leading "00" becomes "+"; a number without "+" (national)
 * loses a leading trunk_prefix (when non-empty and present) and gains
 * "+" country_code. The result is "+" and 8 to 15 digits, the first not 0.
 * Any other character is an error. Writes the result and a NUL to out
 * (outlen > IDENTITY_PHONE_MAX). Returns 0, or -EINVAL with *why set.
 */
int identity_phone(const char *in, size_t len, const char *country_code, const char *trunk_prefix,
                   char *out, size_t outlen, const char **why);

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
