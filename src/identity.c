/* SPDX-License-Identifier: MIT */
/* identity.c -- e-mail and phone normalisation and the FNV-1a ids. */
#include "identity.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * The ids are a public contract: downstream systems deduplicate and join on
 * them, so this hash must never change. FNV-1a is documented, trivial to
 * reimplement in any language and stable; it is not collision-resistant
 * against an attacker, which ids of our own customers do not need.
 */
#define FNV_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

#define EMAIL_LOCAL_MAX  64
#define PHONE_DIGITS_MIN 8
#define PHONE_DIGITS_MAX 15
/* The shapes config.c allows for identity.default_country_code and identity.trunk_prefix. */
#define COUNTRY_CODE_MAX 3
#define TRUNK_PREFIX_MAX 2

/*
 * Digits of a phone number kept while scanning. Dropping a leading "00" or
 * a trunk prefix removes at most two, so a number with more digits than
 * PHONE_DIGITS_MAX + 2 fails whatever follows: beyond that they are only
 * counted, and a 10 MB string of digits costs no memory.
 */
#define PHONE_KEEP (PHONE_DIGITS_MAX + 4)

/* The reasons spell these numbers out; keep them in step. */
_Static_assert(IDENTITY_EMAIL_MAX == 254, "the e-mail length reason says 254");
_Static_assert(IDENTITY_PHONE_MAX == 1 + PHONE_DIGITS_MAX, "E.164 is '+' and 15 digits");
_Static_assert(PHONE_KEEP >= PHONE_DIGITS_MAX + 2 && PHONE_KEEP >= TRUNK_PREFIX_MAX,
               "kept digits must cover every number that can pass");

/* Fail a normalisation: leave an empty string in out, when there is room for one. */
static int fail(const char **why, char *out, size_t outlen, const char *reason)
{
    if (out != NULL && outlen > 0)
        out[0] = '\0';
    if (why != NULL)
        *why = reason;
    return -EINVAL;
}

/* The whitespace trimmed from both ends of an address or number. */
static bool is_trim_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const unsigned char **p, size_t *len)
{
    while (*len > 0 && is_trim_space((*p)[0])) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && is_trim_space((*p)[*len - 1]))
        (*len)--;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Only ASCII letters are lower-cased. Unicode case folding needs tables
 * and has locale-dependent answers (Turkish dotless i), and the local part
 * is case-sensitive by RFC 5321 anyway; so "JOSÉ@x" and "josé@x" stay two
 * addresses, and UTF-8 bytes pass through untouched.
 */
static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* A byte allowed in a (lower-cased) domain label; bytes >= 0x80 let IDN through. */
static bool is_domain_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c >= 0x80;
}

int identity_email(const char *in, size_t len, char *out, size_t outlen, const char **why)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t at = 0, nat = 0;

    if (out == NULL || outlen <= IDENTITY_EMAIL_MAX)
        return fail(why, out, outlen, "output buffer too small");
    if (p == NULL)
        len = 0;
    trim(&p, &len);
    if (len == 0)
        return fail(why, out, outlen, "e-mail address is empty");
    /* Checked first so that nothing below ever looks past 254 bytes of a huge value. */
    if (len > IDENTITY_EMAIL_MAX)
        return fail(why, out, outlen, "e-mail address is longer than 254 bytes");

    /* One pass copies, lower-cases and finds the '@'; out has room for len + 1 bytes. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (c < 0x21 || c == 0x7F)
            return fail(why, out, outlen,
                        "e-mail address contains whitespace or a control character");
        if (c == '@' && nat++ == 0)
            at = i;
        out[i] = (char)ascii_lower(c);
    }
    out[len] = '\0';

    /*
     * Exactly one '@' rules out quoted local parts such as "a@b"@example.com;
     * no real customer writes those, and accepting them would make the
     * domain ambiguous for everything downstream.
     */
    if (nat == 0)
        return fail(why, out, outlen, "e-mail address has no \"@\"");
    if (nat > 1)
        return fail(why, out, outlen, "e-mail address has more than one \"@\"");
    if (at == 0)
        return fail(why, out, outlen, "e-mail address has an empty local part");
    if (at > EMAIL_LOCAL_MAX)
        return fail(why, out, outlen, "e-mail local part is longer than 64 bytes");

    const unsigned char *dom = (const unsigned char *)out + at + 1;
    size_t dlen = len - at - 1;
    bool dot = false, empty_label = false;

    if (dlen == 0)
        return fail(why, out, outlen, "e-mail address has an empty domain");
    for (size_t i = 0; i < dlen; i++) {
        if (dom[i] == '.') {
            dot = true;
            if (i == 0 || i == dlen - 1 || dom[i - 1] == '.')
                empty_label = true;
        } else if (!is_domain_byte(dom[i])) {
            return fail(why, out, outlen, "e-mail domain has an invalid character");
        }
    }
    if (!dot)
        return fail(why, out, outlen, "e-mail domain has no dot");
    if (empty_label)
        return fail(why, out, outlen, "e-mail domain has an empty label");
    return 0;
}

/* Characters people write between the digits of a phone number. */
static bool is_phone_separator(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/';
}

/* s is min..max ASCII digits. */
static bool is_digit_string(const char *s, size_t min, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return false;
    return true;
}

int identity_phone(const char *in, size_t len, const char *country_code, const char *trunk_prefix,
                   char *out, size_t outlen, const char **why)
{
    const unsigned char *p = (const unsigned char *)in;
    char digits[PHONE_KEEP];
    size_t ndigits = 0, skip = 0, total;
    bool plus = false;

    if (out == NULL || outlen <= IDENTITY_PHONE_MAX)
        return fail(why, out, outlen, "output buffer too small");
    /* config.c enforces these shapes; a caller that does not is a bug, not a bad number. */
    if (country_code == NULL || !is_digit_string(country_code, 1, COUNTRY_CODE_MAX))
        return fail(why, out, outlen, "default country code is not 1 to 3 digits");
    if (trunk_prefix == NULL)
        trunk_prefix = "";
    if (!is_digit_string(trunk_prefix, 0, TRUNK_PREFIX_MAX))
        return fail(why, out, outlen, "trunk prefix is not 0 to 2 digits");
    if (p == NULL)
        len = 0;
    trim(&p, &len);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (is_phone_separator(c))
            continue;
        if (c == '+') {
            /* "(+1) 555" is fine: separators before the '+' do not count. */
            if (plus || ndigits > 0)
                return fail(why, out, outlen, "phone number has a \"+\" not at the start");
            plus = true;
        } else if (is_digit(c)) {
            if (ndigits < PHONE_KEEP)
                digits[ndigits] = (char)c;
            ndigits++;
        } else {
            return fail(why, out, outlen, "phone number has an invalid character");
        }
    }
    if (!plus && ndigits == 0)
        return fail(why, out, outlen, "phone number is empty");

    /* "00" is the international call prefix in most of the world: 0049 is +49. */
    if (!plus && ndigits >= 2 && digits[0] == '0' && digits[1] == '0') {
        plus = true;
        skip = 2;
    }
    size_t tlen = strlen(trunk_prefix);
    if (!plus && tlen > 0 && ndigits >= tlen && memcmp(digits, trunk_prefix, tlen) == 0)
        skip = tlen;
    size_t cclen = plus ? 0 : strlen(country_code);

    total = cclen + (ndigits - skip);
    if (total > PHONE_DIGITS_MAX)
        return fail(why, out, outlen, "phone number has more than 15 digits");
    if (total < PHONE_DIGITS_MIN)
        return fail(why, out, outlen, "phone number has fewer than 8 digits");
    /* From here ndigits <= PHONE_DIGITS_MAX + skip < PHONE_KEEP: every digit was kept. */
    if ((cclen > 0 ? country_code[0] : digits[skip]) == '0')
        return fail(why, out, outlen, "phone number's country code starts with 0");

    out[0] = '+';
    memcpy(out + 1, country_code, cclen);
    memcpy(out + 1 + cclen, digits + skip, ndigits - skip);
    out[1 + total] = '\0';
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t identity_hash(const void *data, size_t len)
{
    return fnv1a(FNV_BASIS, data, len);
}

/* prefix ("cus_" or "tkt_") and h as 16 lower-case hex digits, what "%016" PRIx64 prints. */
static void format_id(const char *prefix, uint64_t h, char *out)
{
    static const char hex[] = "0123456789abcdef";

    memcpy(out, prefix, 4);
    for (int i = 15; i >= 0; i--) {
        out[4 + i] = hex[h & 0xF];
        h >>= 4;
    }
    out[IDENTITY_ID_LEN] = '\0';
}

/* Hashing the parts one after another equals hashing their concatenation: no buffer needed. */
static uint64_t hash_joined(const char *a, const void *b, size_t blen)
{
    uint64_t h = fnv1a(FNV_BASIS, a, strlen(a));

    h = fnv1a(h, ":", 1);
    return fnv1a(h, b, blen);
}

void identity_customer_id(const char *kind, const char *canonical, char *out)
{
    format_id("cus_", hash_joined(kind, canonical, strlen(canonical)), out);
}

void identity_ticket_id(const char *channel, const char *source_id, size_t source_len, char *out)
{
    format_id("tkt_", hash_joined(channel, source_id, source_len), out);
}
