/* SPDX-License-Identifier: MIT */
/* jsonbuf.c -- a growable buffer for writing compact JSON text without building a tree. */
#include "jsonbuf.h"

#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The first allocation: enough for a typical output event, so most never grow. */
#define INITIAL_CAP 1024

/* 2^53: doubles below this magnitude hold every integer exactly. */
#define EXACT_INT_LIMIT 9007199254740992.0

void jsonbuf_init(struct jsonbuf *b)
{
    *b = (struct jsonbuf){0};
}

void jsonbuf_reset(struct jsonbuf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void jsonbuf_free(struct jsonbuf *b)
{
    free(b->data);
    jsonbuf_init(b);
}

int jsonbuf_error(const struct jsonbuf *b)
{
    return b->err;
}

/* Record the first error; the buffer's text and memory are untouched. */
static int fail(struct jsonbuf *b, int err)
{
    if (b->err == 0)
        b->err = err;
    return b->err;
}

/*
 * Make room for `more` bytes and the NUL. Capacity doubles, so appending n
 * bytes one piece at a time costs O(n) copying in all; on failure the
 * buffer keeps its old memory and text.
 */
static int reserve(struct jsonbuf *b, size_t more)
{
    if (b->err != 0)
        return b->err;
    if (more > SIZE_MAX - 1 - b->len)
        return fail(b, -ENOMEM);

    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;

    size_t cap = b->cap ? b->cap : INITIAL_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return fail(b, -ENOMEM);
    b->data = data;
    b->cap = cap;
    return 0;
}

int jsonbuf_append_slow(struct jsonbuf *b, const void *data, size_t len)
{
    int rc = reserve(b, len);

    if (rc < 0)
        return rc;
    /* memcpy from NULL is undefined even for 0 bytes. */
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/*
 * Bytes that RFC 8259 section 7 requires escaped: the quote, the backslash
 * and C0 controls. Tested 16 at a time with SSE2 (every x86-64), else 8.
 */
#ifdef __SSE2__
/* A bit for each of 16 bytes that needs escaping: max(x, 0x1F) == 0x1F exactly below 0x20. */
static unsigned dirty_mask(__m128i x)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i low = _mm_set1_epi8(0x1F);
    __m128i hits =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                     _mm_cmpeq_epi8(_mm_max_epu8(x, low), low));

    return (unsigned)_mm_movemask_epi8(hits);
}

/*
 * clean_run() of a string of 1 to 15 bytes, which most strings written are
 * (ids, addresses, names), without reading past it: two loads that overlap
 * in the middle cover it, and the lanes left over hold 'a', which needs
 * nothing. pos[] maps a lane back to its byte.
 */
static size_t short_clean_run(const char *s, size_t len)
{
    uint64_t lo8, hi8;
    uint32_t lo4, hi4;
    unsigned mask;

    if (len >= 8) {
        memcpy(&lo8, s, 8);
        memcpy(&hi8, s + len - 8, 8);
        mask = dirty_mask(_mm_set_epi64x((long long)hi8, (long long)lo8));
        if (mask == 0)
            return len;
        return (mask & 0xFF) != 0 ? (size_t)__builtin_ctz(mask)
                                  : len - 16 + (size_t)__builtin_ctz(mask);
    }
    if (len >= 4) {
        memcpy(&lo4, s, 4);
        memcpy(&hi4, s + len - 4, 4);
        mask = dirty_mask(_mm_set_epi32(0x61616161, 0x61616161, (int)hi4, (int)lo4));
        if (mask == 0)
            return len;
        return (mask & 0xF) != 0 ? (size_t)__builtin_ctz(mask)
                                 : len - 8 + (size_t)__builtin_ctz(mask);
    }
    {
        const size_t pos[3] = {0, len / 2, len - 1};

        mask = dirty_mask(_mm_set_epi8('a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                                       'a', s[len - 1], s[len / 2], s[0]));
        return mask == 0 ? len : pos[__builtin_ctz(mask)];
    }
}

/* How many bytes at the start of s[0..len) need no escaping. */
static size_t clean_run(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return 0;
    for (; len - i >= 16; i += 16) {
        unsigned mask = dirty_mask(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));

        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
    if (i == len)
        return i;
    if (i > 0) {
        /* The last 16 bytes, overlapping some already found clean. */
        unsigned mask = dirty_mask(_mm_loadu_si128((const __m128i *)(const void *)(s + len - 16)));

        return mask != 0 ? len - 16 + (size_t)__builtin_ctz(mask) : len;
    }
    return short_clean_run(s, len);
}
#else
static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * Whether none of the 8 bytes in w needs escaping, tested on all of them at
 * once: (x - 0x01..) & ~x & 0x80.. is non-zero exactly when some byte of x
 * is zero, and likewise with 0x20 for some byte below 0x20. The byte order
 * does not matter, since only "any" is asked.
 */
static bool word_clean(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
    uint64_t hits =
        ((w - ONES * 0x20) & ~w) | ((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash);

    return (hits & HIGHS) == 0;
}

/* How many bytes at the start of s[0..len) need no escaping. */
static size_t clean_run(const char *s, size_t len)
{
    size_t i = 0;
    uint64_t w;

    for (; len - i >= sizeof(w); i += sizeof(w)) {
        memcpy(&w, s + i, sizeof(w));
        if (!word_clean(w))
            break;
    }
    while (i < len && !needs_escape((unsigned char)s[i]))
        i++;
    return i;
}
#endif

int jsonbuf_append_escaped(struct jsonbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    /*
     * Runs of bytes that need nothing are copied whole: most text has no
     * escapes at all. Bytes >= 0x80 belong to UTF-8 sequences, which JSON
     * carries as they are.
     */
    while (i < len) {
        size_t run = i + clean_run(s + i, len - i);

        if (run > i) {
            int rc = jsonbuf_append(b, s + i, run - i);

            if (rc < 0)
                return rc;
            i = run;
            if (i == len)
                break;
        }

        unsigned char c = (unsigned char)s[i++];
        char esc[6] = {'\\', 0};
        size_t n = 2;

        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            n = 6;
            break;
        }
        int rc = jsonbuf_append(b, esc, n);
        if (rc < 0)
            return rc;
    }
    /* An empty string still has to leave an error behind when one is pending. */
    return b->err;
}

int jsonbuf_append_string(struct jsonbuf *b, const char *s, size_t len)
{
    /* The escaped form is at least len + 2 bytes: reserve it once up front. */
    if (reserve(b, len > SIZE_MAX - 2 ? SIZE_MAX : len + 2) < 0)
        return b->err;
    size_t clean = clean_run(s, len);

    if (clean == len) {
        /* Nothing to escape, as for most strings: quote and copy it into the room reserved. */
        char *out = b->data + b->len;

        out[0] = '"';
        if (len > 0)
            memcpy(out + 1, s, len);
        out[len + 1] = '"';
        b->len += len + 2;
        b->data[b->len] = '\0';
        return 0;
    }
    /* The clean start is known already: only the rest is scanned again, for its escapes. */
    jsonbuf_append(b, "\"", 1);
    jsonbuf_append(b, s, clean);
    jsonbuf_append_escaped(b, s + clean, len - clean);
    return jsonbuf_append(b, "\"", 1);
}

int jsonbuf_append_cstring(struct jsonbuf *b, const char *s)
{
    if (s == NULL)
        return jsonbuf_append_null(b);
    return jsonbuf_append_string(b, s, strlen(s));
}

int jsonbuf_append_plain(struct jsonbuf *b, const char *s)
{
    size_t len = strlen(s);

    if (reserve(b, len + 2) < 0)
        return b->err;
    b->data[b->len] = '"';
    memcpy(b->data + b->len + 1, s, len);
    b->data[b->len + len + 1] = '"';
    b->len += len + 2;
    b->data[b->len] = '\0';
    return 0;
}

int jsonbuf_append_int64(struct jsonbuf *b, int64_t v)
{
    /* What "%" PRId64 prints, without the cost of printf on every number of every output. */
    char digits[24], *end = digits + sizeof(digits), *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return jsonbuf_append(b, p, (size_t)(end - p));
}

int jsonbuf_append_double(struct jsonbuf *b, double v)
{
    char digits[32];

    if (!isfinite(v))
        return b->err != 0 ? b->err : fail(b, -EINVAL);
    /* The range test comes first: converting a double outside int64_t's range is undefined. */
    if (v > -EXACT_INT_LIMIT && v < EXACT_INT_LIMIT && v == (double)(int64_t)v)
        return jsonbuf_append_int64(b, (int64_t)v);
    /*
     * The daemon never calls setlocale(), so LC_NUMERIC is "C" and the
     * decimal point is '.', as JSON needs. 17 significant digits identify
     * every double uniquely.
     */
    int n = snprintf(digits, sizeof(digits), "%.17g", v);
    return jsonbuf_append(b, digits, (size_t)n);
}

int jsonbuf_append_null(struct jsonbuf *b)
{
    return jsonbuf_append(b, "null", 4);
}
