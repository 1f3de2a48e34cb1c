/* SPDX-License-Identifier: MIT */
/* json.h -- a strict one-pass JSON parser that builds cJSON trees in the caller's memory. */
#ifndef CRM_JSON_H
#define CRM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* The deepest nesting json_parse() accepts whatever it is asked for: it recurses once a level. */
#define JSON_DEPTH_LIMIT 1000

/* Why a value was refused. */
enum json_error_kind {
    JSON_OK,
    JSON_SYNTAX,   /* not JSON; `at` is where reading stopped (the last byte if it ended early) */
    JSON_UTF8,     /* a byte sequence that is not well-formed UTF-8 starts at `at` */
    JSON_CONTROL,  /* a raw control character (below 0x20) inside a string, at `at` */
    JSON_NUL,      /* the escape \u0000, which no C string can carry, starts at `at` */
    JSON_DEPTH,    /* nested deeper than the limit; `at` is the bracket that went too deep */
    JSON_TRAILING, /* a whole value, then something other than whitespace at `at` */
    JSON_NOMEM,    /* the allocator failed */
};

struct json_error {
    enum json_error_kind kind;
    size_t at; /* a 0-based byte offset into the text */
};

/* Where json_parse() gets its memory: n bytes aligned for any object, or NULL. */
typedef void *(*json_alloc_fn)(void *ctx, size_t n);

/*
 * Parse text[0..len) (not NUL-terminated) as exactly one JSON value (RFC
 * 8259), with optional whitespace around it and an optional UTF-8 byte-order
 * mark before it. Stricter than JSON requires where the daemon needs it:
 * every string must be well-formed UTF-8 (no overlong forms, surrogates or
 * lone surrogate escapes) and free of \u0000, and nesting deeper than
 * max_depth (capped at JSON_DEPTH_LIMIT) is refused. Duplicate object names
 * are kept, in order, for the caller to judge.
 *
 * Returns the root of a cJSON tree whose nodes and strings all come from
 * alloc(ctx, ...): the caller frees them together with that memory, never
 * with cJSON_Delete(). Numbers get valuedouble, and valueint as cJSON sets
 * it (saturated to the range of int); 1e999 reads as infinity. On failure
 * returns NULL and fills *err with the first problem in reading order.
 */
cJSON *json_parse(const char *text, size_t len, int max_depth, json_alloc_fn alloc, void *ctx,
                  struct json_error *err);

/*
 * The first member of obj named exactly name (null values too), or NULL;
 * obj may be NULL. What cJSON_GetObjectItemCaseSensitive() answers, but with the
 * first bytes compared inline, since most members differ there and a call
 * to strcmp() for each costs more than the lookup's other work.
 */
const cJSON *json_member(const cJSON *obj, const char *name);

/*
 * Whether item is a node of that type (cJSON_String, cJSON_Object, ...), as
 * cJSON_IsString() and its kin answer, false for NULL. Inline: the router
 * and the handlers ask dozens of times per message, and a call into the
 * shared library for each costs more than the question.
 */
static inline bool json_is(const cJSON *item, int type)
{
    return item != NULL && (item->type & 0xFF) == type;
}

#endif
