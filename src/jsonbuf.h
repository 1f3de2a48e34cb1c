/* SPDX-License-Identifier: MIT */
/* jsonbuf.h -- a growable buffer for writing compact JSON text without building a tree. */
#ifndef CRM_JSONBUF_H
#define CRM_JSONBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The text so far is data[0..len), NUL-terminated when len > 0 or data is
 * set. The struct is public so that it can live inside its owner and cost
 * no allocation of its own; touch the members only through the functions.
 * Errors are sticky: after one append fails, every append fails with the
 * same error until jsonbuf_reset(), so a writer may append a whole document
 * and check jsonbuf_error() once, and a half-written document is never
 * mistaken for a whole one.
 */
struct jsonbuf {
    char *data;
    size_t len;
    size_t cap;
    int err; /* 0, or the first append's negative errno since the last reset */
};

/* Make b empty, with nothing allocated. */
void jsonbuf_init(struct jsonbuf *b);

/* Empty b and clear its error, keeping the memory for the next document. */
void jsonbuf_reset(struct jsonbuf *b);

/* Release b's memory and leave it as jsonbuf_init() does; takes an initialised b. */
void jsonbuf_free(struct jsonbuf *b);

/* 0, or the sticky negative errno (-ENOMEM) of the first failed append since the last reset. */
int jsonbuf_error(const struct jsonbuf *b);

/* jsonbuf_append() when the bytes do not fit or an error is pending: grows b, or fails. */
int jsonbuf_append_slow(struct jsonbuf *b, const void *data, size_t len);

/*
 * Append len bytes as they are (punctuation, keys known to need no escaping).
 * 0 or -ENOMEM. Inline, as an output is written in dozens of small pieces:
 * the common case, room to spare, is a copy.
 */
static inline int jsonbuf_append(struct jsonbuf *b, const void *data, size_t len)
{
    if (b->err != 0 || len >= b->cap - b->len)
        return jsonbuf_append_slow(b, data, len);
    /* memcpy from NULL is undefined even for 0 bytes. */
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* Append the NUL-terminated s as it is (a literal's length is known when compiling). 0 or -ENOMEM.
 */
static inline int jsonbuf_append_raw(struct jsonbuf *b, const char *s)
{
    return jsonbuf_append(b, s, strlen(s));
}

/* Append len bytes of valid UTF-8 escaped for the inside of a JSON string, no quotes. */
int jsonbuf_append_escaped(struct jsonbuf *b, const char *s, size_t len);

/* Append len bytes of valid UTF-8 as a quoted, escaped JSON string. 0 or -ENOMEM. */
int jsonbuf_append_string(struct jsonbuf *b, const char *s, size_t len);

/* Append the NUL-terminated s as a JSON string, or null when s is NULL. 0 or -ENOMEM. */
int jsonbuf_append_cstring(struct jsonbuf *b, const char *s);

/*
 * Append the NUL-terminated s quoted and as it is, without looking for what
 * needs escaping: only for text the caller knows has none (ids and times it
 * made, fixed names). 0 or -ENOMEM.
 */
int jsonbuf_append_plain(struct jsonbuf *b, const char *s);

/* Append v in decimal. 0 or -ENOMEM. */
int jsonbuf_append_int64(struct jsonbuf *b, int64_t v);

/*
 * Append v as a JSON number: in decimal when integral and |v| < 2^53 (so
 * 1714557600.0 stays 1714557600), else "%.17g", which round-trips. Not
 * finite (JSON has no such number): -EINVAL, sticky like -ENOMEM.
 */
int jsonbuf_append_double(struct jsonbuf *b, double v);

/* Append null. 0 or -ENOMEM. */
int jsonbuf_append_null(struct jsonbuf *b);

#endif
