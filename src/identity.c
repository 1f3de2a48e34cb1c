/* SPDX-License-Identifier: MIT */
/* identity.c -- e-mail and phone normalisation and the FNV-1a ids. */
#include "identity.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

/*
 * The ids are a public contract: downstream systems deduplicate and join on
 * them, so this hash must never change. FNV-1a is documented, trivial to
 * reimplement in any language and stable; it is not collision-resistant
 * against an attacker, which ids of our own customers do not need.
 */
#define FNV_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

#define EMAIL_LOCAL_MAX  64
#define PHONE_DIGITS_MAX 15

/*
 * Digits of a phone number kept while scanning: an international prefix
 * (at most 5 digits, Korea's 00700), a trunk prefix written after the
 * country code (at most 2, Hungary's 06) and the 15 of E.164. A number
 * with more fails whatever follows: beyond that they are only counted, and
 * a 10 MB string of digits costs no memory.
 */
#define PHONE_KEEP (5 + 2 + PHONE_DIGITS_MAX)

/*
 * Numbers already normalised by libphonenumber's parser, by region and the
 * '+' and digits written: it costs several times what the rest of a message
 * does, and the same customers write again and again. (Numbers the quick
 * reading answers, most of them, never come here.) A fixed table (only the entries
 * used are ever touched), in sets of 4 by hash, each set's least recently
 * used entry making room: with one place per number, two numbers of the
 * same place would push each other out for ever. Only successes are kept: a
 * bad number is a dead letter, rare, and not worth an entry. The costs and
 * sizes measured are in docs/performance.md, "Phone numbers".
 */
#define PHONE_CACHE_WAYS 4
#define PHONE_CACHE_SETS 16384

/* The reasons spell these numbers out; keep them in step. */
_Static_assert(IDENTITY_EMAIL_MAX == 254, "the e-mail length reason says 254");
_Static_assert(IDENTITY_PHONE_MAX == 1 + PHONE_DIGITS_MAX, "E.164 is '+' and 15 digits");
_Static_assert(IDENTITY_PHONE_MAX == PHONE_E164_MAX, "phone.cc writes what identity.c holds");
_Static_assert((PHONE_CACHE_SETS & (PHONE_CACHE_SETS - 1)) == 0, "sets are a power of two");

static uint64_t fnv1a(uint64_t h, const void *data, size_t len);

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

/* A region code as config.c allows it: two ASCII capitals. */
static bool is_region(const char *region)
{
    return region != NULL && region[0] >= 'A' && region[0] <= 'Z' && region[1] >= 'A' &&
           region[1] <= 'Z' && region[2] == '\0';
}

struct phone_entry {
    char region[PHONE_REGION_SIZE];
    char spelling[1 + PHONE_KEEP + 1]; /* '+' or not, the digits, a NUL; "" while unused */
    char e164[IDENTITY_PHONE_MAX + 1];
};

/* Each set's entries, most recently used first. */
static struct phone_entry phone_cache[PHONE_CACHE_SETS][PHONE_CACHE_WAYS];
static pthread_mutex_t phone_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static struct phone_entry *phone_set_of(const char *region, const char *spelling, size_t len)
{
    uint64_t h = fnv1a(fnv1a(FNV_BASIS, region, 2), spelling, len);

    /* FNV-1a's low bits depend only on the input's low bits: fold the high half in. */
    h ^= h >> 32;
    return phone_cache[h & (PHONE_CACHE_SETS - 1)];
}

/* Copy the remembered E.164 form of spelling to out; false when it is not there. */
static bool phone_cache_get(const char *region, const char *spelling, size_t len, char *out)
{
    struct phone_entry *set = phone_set_of(region, spelling, len), hit;
    int way;

    pthread_mutex_lock(&phone_cache_lock);
    for (way = 0; way < PHONE_CACHE_WAYS; way++)
        if (memcmp(set[way].region, region, PHONE_REGION_SIZE) == 0 &&
            memcmp(set[way].spelling, spelling, len + 1) == 0)
            break;
    if (way < PHONE_CACHE_WAYS) {
        memcpy(out, set[way].e164, sizeof(set[way].e164));
        hit = set[way];
        memmove(&set[1], &set[0], (size_t)way * sizeof(set[0]));
        set[0] = hit;
    }
    pthread_mutex_unlock(&phone_cache_lock);
    return way < PHONE_CACHE_WAYS;
}

/* Remember spelling's E.164 form, in place of its set's least recently used entry. */
static void phone_cache_put(const char *region, const char *spelling, size_t len, const char *e164)
{
    struct phone_entry *set = phone_set_of(region, spelling, len);

    pthread_mutex_lock(&phone_cache_lock);
    memmove(&set[1], &set[0], (PHONE_CACHE_WAYS - 1) * sizeof(set[0]));
    memcpy(set[0].region, region, PHONE_REGION_SIZE);
    memcpy(set[0].spelling, spelling, len + 1);
    memcpy(set[0].e164, e164, strlen(e164) + 1);
    pthread_mutex_unlock(&phone_cache_lock);
}

int identity_phone(const char *in, size_t len, const char *region, char *out, size_t outlen,
                   const char **why)
{
    const unsigned char *p = (const unsigned char *)in;
    char spelling[1 + PHONE_KEEP + 1];
    size_t n = 0, ndigits = 0;
    bool plus = false;
    int rc;

    if (out == NULL || outlen <= IDENTITY_PHONE_MAX)
        return fail(why, out, outlen, "output buffer too small");
    /* config.c enforces the shape; a caller that does not is a bug, not a bad number. */
    if (!is_region(region))
        return fail(why, out, outlen, "the default region is not one libphonenumber knows");
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
            spelling[n++] = '+';
        } else if (is_digit(c)) {
            if (ndigits < PHONE_KEEP)
                spelling[n++] = (char)c;
            ndigits++;
        } else {
            return fail(why, out, outlen, "phone number has an invalid character");
        }
    }
    if (ndigits == 0)
        return fail(why, out, outlen, plus ? "phone number is too short" : "phone number is empty");
    if (ndigits > PHONE_KEEP)
        return fail(why, out, outlen, "phone number has more than 15 digits");
    spelling[n] = '\0';

    /* Most numbers need no parser and no lock; the cache keeps those that do. */
    if (phone_normalise_quick(spelling, region, out, outlen) ||
        phone_cache_get(region, spelling, n, out))
        return 0;
    rc = phone_normalise(spelling, region, out, outlen, why);
    if (rc == 0)
        phone_cache_put(region, spelling, n, out);
    return rc;
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
