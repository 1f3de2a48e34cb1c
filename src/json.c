/* SPDX-License-Identifier: MIT */
/* json.c -- a strict one-pass JSON parser that builds cJSON trees in the caller's memory. */
#include "json.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "utf8.h"

/*
 * Why not cJSON_Parse(): it allocates every node through one global hook,
 * cannot be told that its input may hold NUL bytes or bad UTF-8 (so every
 * value needed a checking pass of its own first), compares each literal with
 * strncmp() and reads each number through a copy and strtod(). This parser
 * checks and builds in one pass, for far fewer instructions than the check
 * and cJSON_Parse() together (docs/performance.md says how that is
 * measured); the trees it builds are plain cJSON trees, so everything that
 * reads them is unchanged.
 */

struct parser {
    const unsigned char *p;
    char *copy; /* p's text copied whole: each string is decoded in its own place there */
    size_t len;
    size_t pos; /* the next byte to read */
    int depth, max_depth;
    json_alloc_fn alloc;
    void *ctx;
    struct json_error *err;
};

static cJSON *parse_value(struct parser *ps);

/* Record why parsing stopped; returns NULL, so that a caller can return fail(...). */
static void *fail(struct parser *ps, enum json_error_kind kind, size_t at)
{
    ps->err->kind = kind;
    ps->err->at = at;
    return NULL;
}

/*
 * Parsing stopped at byte `at` on something that is not JSON. A byte that
 * also starts no UTF-8 sequence is reported as that, the more telling
 * reason; past the end, the last byte is named.
 */
static void *syntax(struct parser *ps, size_t at)
{
    if (at >= ps->len)
        return fail(ps, JSON_SYNTAX, ps->len > 0 ? ps->len - 1 : 0);
    if (ps->p[at] >= 0x80 && utf8_len(ps->p + at, ps->len - at) == 0)
        return fail(ps, JSON_UTF8, at);
    return fail(ps, JSON_SYNTAX, at);
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * How many bytes at the start of p[0..n) are plain string content: printable
 * ASCII other than the quote and the backslash, copied as they are. Eight
 * bytes are tested at once while they last: (x - 0x01..) & ~x & 0x80.. is
 * non-zero exactly when some byte of x is zero, and with 0x20.. when some
 * byte is below 0x20, once bytes >= 0x80 are ruled out.
 */
static size_t plain_run(const unsigned char *p, size_t n)
{
    size_t i = 0;
    uint64_t w;

#ifdef __SSE2__
    /*
     * Sixteen bytes at a time where the machine has SSE2 (every x86-64):
     * as signed bytes, those >= 0x80 are negative, so one signed compare
     * with 0x20 flags them and the control characters together.
     */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i hits =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                         _mm_cmplt_epi8(x, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(hits);

        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    for (; n - i >= sizeof(w); i += sizeof(w)) {
        memcpy(&w, p + i, sizeof(w));

        uint64_t quote8 = w ^ (ONES * '"'), backslash8 = w ^ (ONES * '\\');
        uint64_t hits8 = w | ((w - ONES * 0x20) & ~w) | ((quote8 - ONES) & ~quote8) |
                         ((backslash8 - ONES) & ~backslash8);
        if ((hits8 & HIGHS) != 0)
            break;
    }
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static inline void skip_space(struct parser *ps)
{
    while (ps->pos < ps->len) {
        unsigned char c = ps->p[ps->pos];

        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        ps->pos++;
    }
}

static cJSON *new_node(struct parser *ps, int type)
{
    cJSON *n = ps->alloc(ps->ctx, sizeof(*n));

    if (n == NULL)
        return fail(ps, JSON_NOMEM, ps->pos);
    *n = (cJSON){.type = type};
    return n;
}

/* The value of four hex digits at p into *v; false if one is not a hex digit. */
static bool hex4(const unsigned char *p, unsigned *v)
{
    unsigned x = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];

        if (c >= '0' && c <= '9')
            x = x * 16 + (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            x = x * 16 + (unsigned)((c | 0x20) - 'a' + 10);
        else
            return false;
    }
    *v = x;
    return true;
}

/* Write code point cp (not a surrogate, at most U+10FFFF) as UTF-8; returns the bytes written. */
static size_t put_utf8(char *s, unsigned cp)
{
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xC0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        s[0] = (char)(0xE0 | cp >> 12);
        s[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    s[0] = (char)(0xF0 | cp >> 18);
    s[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    s[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    s[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decode the escape at p[i] (a backslash) of a string that ends before
 * p[end], into s; returns the bytes written and advances *i past the escape,
 * or returns 0 after fail(). \u escapes of a surrogate must come as a pair.
 */
static size_t unescape(struct parser *ps, size_t *i, size_t end, char *s)
{
    const unsigned char *p = ps->p;
    size_t at = *i;
    unsigned cp, low;

    if (end - at < 2) {
        syntax(ps, at);
        return 0;
    }

    unsigned char e = p[at + 1];
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (size_t k = 0; k + 1 < sizeof(simple); k += 2)
        if (simple[k] == e) {
            *s = simple[k + 1];
            *i = at + 2;
            return 1;
        }
    if (e != 'u') {
        if (e < 0x20)
            fail(ps, JSON_CONTROL, at + 1);
        else
            syntax(ps, at + 1);
        return 0;
    }
    if (end - at < 6 || !hex4(p + at + 2, &cp)) {
        syntax(ps, at);
        return 0;
    }
    if (cp == 0) {
        fail(ps, JSON_NUL, at);
        return 0;
    }
    *i = at + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        syntax(ps, at); /* a low surrogate with no high one before it */
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - at < 12 || p[at + 6] != '\\' || p[at + 7] != 'u' || !hex4(p + at + 8, &low) ||
            low < 0xDC00 || low > 0xDFFF) {
            syntax(ps, at);
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        *i = at + 12;
    }
    return put_utf8(s, cp);
}

/*
 * Read the string whose opening quote is at ps->pos, leaving ps->pos after
 * its closing quote. It is decoded where it lies in the copy of the text and
 * ends with a NUL where its closing quote was: no allocation, and no copy
 * of its own. NULL after fail().
 */
static char *parse_string(struct parser *ps)
{
    const unsigned char *p = ps->p;
    size_t len = ps->len, start = ps->pos + 1;
    size_t i = start + plain_run(p + start, len - start);
    char *s = ps->copy + start;

    if (i < len && p[i] == '"') {
        /* Plain from quote to quote, as nearly every string is: nothing to decode. */
        s[i - start] = '\0';
        ps->pos = i + 1;
        return s;
    }

    /*
     * Find the closing quote, stepping over escaped bytes. Decoding never
     * makes text longer (an escape of 2, 6 or 12 bytes gives 1 to 4), so the
     * decoded string ends at or before the closing quote, and what it
     * overwrites in the copy has been read already (from p, the original).
     * Without a closing quote, end is len.
     */
    size_t end = i;
    while (end < len && p[end] != '"')
        end += p[end] == '\\' ? 2 : 1;
    if (end > len)
        end = len;

    size_t out = i - start;
    while (i < end) {
        unsigned char c = p[i];
        size_t n;

        if (c == '\\') {
            if ((n = unescape(ps, &i, end, s + out)) == 0)
                return NULL;
            out += n;
        } else if (c >= 0x80) {
            if ((n = utf8_len(p + i, end - i)) == 0)
                return fail(ps, JSON_UTF8, i);
            memcpy(s + out, p + i, n);
            out += n;
            i += n;
        } else if (c < 0x20) {
            return fail(ps, JSON_CONTROL, i);
        } else {
            /* A quote inside [start, end) is always escaped, so this run is at least 1. */
            n = plain_run(p + i, end - i);
            memcpy(s + out, p + i, n);
            out += n;
            i += n;
        }
    }
    if (end == len)
        return syntax(ps, len); /* no closing quote */
    s[out] = '\0';
    ps->pos = end + 1;
    return s;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The number at ps->pos, by RFC 8259's grammar: no leading zeros, no bare dot, no plus sign. */
static cJSON *parse_number(struct parser *ps)
{
    const unsigned char *p = ps->p;
    size_t len = ps->len, start = ps->pos, i = start;
    bool negative = p[i] == '-', integral = true;

    if (negative)
        i++;
    if (i >= len || !is_digit(p[i]))
        return syntax(ps, i);
    if (p[i] == '0')
        i++;
    else
        while (i < len && is_digit(p[i]))
            i++;

    size_t digits = i - start - negative;
    if (i < len && p[i] == '.') {
        integral = false;
        if (++i >= len || !is_digit(p[i]))
            return syntax(ps, i);
        while (i < len && is_digit(p[i]))
            i++;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        integral = false;
        if (++i < len && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= len || !is_digit(p[i]))
            return syntax(ps, i);
        while (i < len && is_digit(p[i]))
            i++;
    }

    double v;
    if (integral && digits <= 15) {
        /* Exact in an int64_t and in a double: no need for strtod(). */
        int64_t m = 0;

        for (size_t k = start + negative; k < i; k++)
            m = m * 10 + (p[k] - '0');
        v = negative ? -(double)m : (double)m;
    } else {
        /* strtod() wants a NUL; the daemon never calls setlocale(), so '.' is the decimal point. */
        char small[64], *copy = small;
        size_t n = i - start;

        if (n >= sizeof(small) && (copy = ps->alloc(ps->ctx, n + 1)) == NULL)
            return fail(ps, JSON_NOMEM, start);
        memcpy(copy, p + start, n);
        copy[n] = '\0';
        v = strtod(copy, NULL);
    }

    cJSON *node = new_node(ps, cJSON_Number);
    if (node == NULL)
        return NULL;
    node->valuedouble = v;
    /* As cJSON sets it: saturated, since converting an out-of-range double to int is undefined. */
    node->valueint = v >= INT_MAX ? INT_MAX : v <= (double)INT_MIN ? INT_MIN : (int)v;
    ps->pos = i;
    return node;
}

static cJSON *parse_literal(struct parser *ps, const char *word, size_t n, int type)
{
    if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, word, n) != 0)
        return syntax(ps, ps->pos);

    cJSON *node = new_node(ps, type);
    if (node != NULL && type == cJSON_True)
        node->valueint = 1; /* as cJSON sets it */
    ps->pos += n;
    return node;
}

/* The object or array whose opening bracket is at ps->pos. */
static cJSON *parse_container(struct parser *ps, bool object)
{
    unsigned char close = object ? '}' : ']';
    cJSON *c, *tail = NULL;

    if (++ps->depth > ps->max_depth)
        return fail(ps, JSON_DEPTH, ps->pos);
    if ((c = new_node(ps, object ? cJSON_Object : cJSON_Array)) == NULL)
        return NULL;
    ps->pos++;
    skip_space(ps);
    if (ps->pos < ps->len && ps->p[ps->pos] == close) {
        ps->pos++;
        ps->depth--;
        return c;
    }
    for (;;) {
        char *name = NULL;

        if (object) {
            if (ps->pos >= ps->len || ps->p[ps->pos] != '"')
                return syntax(ps, ps->pos);
            if ((name = parse_string(ps)) == NULL)
                return NULL;
            skip_space(ps);
            if (ps->pos >= ps->len || ps->p[ps->pos] != ':')
                return syntax(ps, ps->pos);
            ps->pos++;
            skip_space(ps);
        }

        cJSON *item = parse_value(ps);
        if (item == NULL)
            return NULL;
        item->string = name;
        if (tail == NULL) {
            c->child = item;
        } else {
            tail->next = item;
            item->prev = tail;
        }
        tail = item;

        skip_space(ps);
        if (ps->pos < ps->len && ps->p[ps->pos] == ',') {
            ps->pos++;
            skip_space(ps);
            continue;
        }
        if (ps->pos < ps->len && ps->p[ps->pos] == close)
            break;
        return syntax(ps, ps->pos);
    }
    /* As cJSON links a list: the first item's prev is the last item. */
    c->child->prev = tail;
    ps->pos++;
    ps->depth--;
    return c;
}

/* The value at ps->pos (whitespace already skipped); the recursion is as deep as the nesting. */
static cJSON *parse_value(struct parser *ps)
{
    if (ps->pos >= ps->len)
        return syntax(ps, ps->pos);

    switch (ps->p[ps->pos]) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"': {
        cJSON *node = new_node(ps, cJSON_String);

        if (node == NULL || (node->valuestring = parse_string(ps)) == NULL)
            return NULL;
        return node;
    }
    case 't':
        return parse_literal(ps, "true", 4, cJSON_True);
    case 'f':
        return parse_literal(ps, "false", 5, cJSON_False);
    case 'n':
        return parse_literal(ps, "null", 4, cJSON_NULL);
    default:
        if (ps->p[ps->pos] == '-' || is_digit(ps->p[ps->pos]))
            return parse_number(ps);
        return syntax(ps, ps->pos);
    }
}

cJSON *json_parse(const char *text, size_t len, int max_depth, json_alloc_fn alloc, void *ctx,
                  struct json_error *err)
{
    struct parser ps = {
        .p = (const unsigned char *)text,
        .len = len,
        .max_depth = max_depth < JSON_DEPTH_LIMIT ? max_depth : JSON_DEPTH_LIMIT,
        .alloc = alloc,
        .ctx = ctx,
        .err = err,
    };

    *err = (struct json_error){.kind = JSON_OK};
    /* One copy of the whole text holds every string, decoded in place (parse_string). */
    if (len == SIZE_MAX || (ps.copy = alloc(ctx, len + 1)) == NULL)
        return fail(&ps, JSON_NOMEM, 0);
    if (len > 0)
        memcpy(ps.copy, text, len);
    /* A byte-order mark is no part of the value; RFC 8259 lets a parser ignore it. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.pos = 3;
    skip_space(&ps);

    cJSON *root = parse_value(&ps);
    if (root == NULL)
        return NULL;
    skip_space(&ps);
    if (ps.pos < len)
        return fail(&ps, JSON_TRAILING, ps.pos);
    return root;
}

const cJSON *json_member(const cJSON *obj, const char *name)
{
    for (const cJSON *m = obj != NULL ? obj->child : NULL; m != NULL; m = m->next)
        if (m->string != NULL && m->string[0] == name[0] && strcmp(m->string, name) == 0)
            return m;
    return NULL;
}
