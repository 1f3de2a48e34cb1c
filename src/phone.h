/* SPDX-License-Identifier: MIT */
/* phone.h -- phone numbers to E.164 by libphonenumber, the C API of the one C++ unit (phone.cc). */
#ifndef CRM_PHONE_H
#define CRM_PHONE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest E.164 number: "+" and 15 digits, without the NUL. */
#define PHONE_E164_MAX 16
/* A region code ("US", "GB") and its NUL. */
#define PHONE_REGION_SIZE 3

/*
 * Read `number`, a '+' or nothing followed by ASCII digits only (no
 * separators: identity_phone() takes those out), as written by someone in
 * `region` (ISO 3166-1 alpha-2, e.g. "US"), and write its E.164 form and a
 * NUL to out (outlen > PHONE_E164_MAX).
 *
 * libphonenumber's metadata for the number's country decides: the region's
 * international prefix (011 in the US), a trunk prefix after the country
 * code ("+44 (0)20"), a national number's country code. A leading "00" is
 * an international prefix in every region; where the region's own prefix
 * also begins with 00 (Australia's 0011, Brazil's 00 and a carrier code),
 * that reading is taken instead when the "00" one gives no possible number,
 * or only the region's gives a valid one. The number must be possible
 * (a length its country uses), not valid, and complete: one that only
 * dials locally, without its area code, is refused. The result reads back
 * to itself.
 *
 * Returns 0; -EINVAL with *why set to a static one-line reason when the
 * number is not one (or region is not a region libphonenumber knows); or
 * -ENOMEM (*why set) when libphonenumber ran out of memory. Thread-safe.
 * Always by libphonenumber's parser: try phone_normalise_quick() first.
 */
int phone_normalise(const char *number, const char *region, char *out, size_t outlen,
                    const char **why);

/*
 * The quick reading: 1 with the E.164 form of number in out, as
 * phone_normalise() gives it, or 0 (out unchanged) when it cannot tell
 * without libphonenumber's parser; the tests and the fuzzer hold the two
 * to the same answers. A '+' and a country code, then a
 * national number that no prefix can be taken from and whose length the
 * country uses, is the common case it answers; see phone.cc. No lock, no
 * allocation once the first call has learnt the metadata. Thread-safe.
 */
int phone_normalise_quick(const char *number, const char *region, char *out, size_t outlen);

/*
 * Load libphonenumber's metadata and learn the quick reading's tables now
 * (some tens of milliseconds), rather than in the first number read.
 * Returns 0, -ENOMEM, or -EIO. Later calls cost nothing.
 */
int phone_prepare(void);

/* The country calling code of `region` ("GB": 44), or 0 when libphonenumber has no such region. */
int phone_region_code(const char *region);

/*
 * The main region of country calling code `code` (1: "US", 44: "GB") and a
 * NUL, in out (outlen >= PHONE_REGION_SIZE). Returns 0, or -ENOENT when no
 * region has the code (unassigned, or non-geographic such as 800).
 */
int phone_code_region(int code, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif
