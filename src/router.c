/* SPDX-License-Identifier: MIT */
/* router.c -- checks a message value and routes it by message_type/type to a handler. */
#include "router.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"

/* Byte positions in reasons are 0-based offsets into the value, as xxd and dd count. */

/* Objects with more members than this are checked for duplicates by sorting. */
#define PAIRWISE_MAX 16

/* Longest piece of message text (a key or a type) quoted in a reason. */
#define SHOW_MAX 64

struct route {
    char *type;
    handler_fn fn;
    void *opaque;
};

/*
 * While router_route() parses and handles a message, the tree lives in an
 * arena, emptied after the message; a message whose tree outgrows the first
 * block makes it grow, up to ARENA_KEEP_MAX, for the next such message.
 */
#define ARENA_FIRST    (16 * 1024)
#define ARENA_KEEP_MAX (1024 * 1024)

struct router {
    struct router_limits limits;
    struct route *routes;
    size_t nroutes;
    size_t cap;
    struct arena arena;
};

struct router *router_new(const struct router_limits *limits)
{
    struct router *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->limits = *limits;
    if (arena_init(&r->arena, ARENA_FIRST, ARENA_KEEP_MAX) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

static struct route *find_route(const struct router *r, const char *type)
{
    for (size_t i = 0; i < r->nroutes; i++)
        if (strcmp(r->routes[i].type, type) == 0)
            return &r->routes[i];
    return NULL;
}

int router_add(struct router *r, const char *type, handler_fn fn, void *opaque)
{
    /* An empty type could never be routed: step 7 only accepts non-empty ones. */
    if (r == NULL || type == NULL || type[0] == '\0' || fn == NULL)
        return -EINVAL;
    if (find_route(r, type) != NULL)
        return -EEXIST;
    if (r->nroutes == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        struct route *routes = realloc(r->routes, cap * sizeof(*routes));

        if (routes == NULL)
            return -ENOMEM;
        r->routes = routes;
        r->cap = cap;
    }
    char *copy = strdup(type);
    if (copy == NULL)
        return -ENOMEM;
    r->routes[r->nroutes++] = (struct route){.type = copy, .fn = fn, .opaque = opaque};
    return 0;
}

struct router *router_free(struct router *r)
{
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < r->nroutes; i++)
        free(r->routes[i].type);
    free(r->routes);
    arena_fini(&r->arena);
    free(r);
    return NULL;
}

/*
 * The length of s[0..len) cut back so that it does not end inside a UTF-8
 * sequence. The text is already known to be valid UTF-8, so only the last
 * lead byte needs looking at.
 */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t lead = len;

    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return len;
    unsigned char c = (unsigned char)s[lead - 1];
    size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    return len - (lead - 1) >= need ? len : lead - 1;
}

enum outcome router_fail(struct route_result *res, enum outcome outcome, enum error_class cls,
                         const char *fmt, ...)
{
    va_list ap;

    res->outcome = outcome;
    res->error_class = cls;
    va_start(ap, fmt);
    int n = vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
    va_end(ap);
    if (n < 0)
        res->reason[0] = '\0';
    else if ((size_t)n >= sizeof(res->reason))
        /* The field is documented as cut to fit; keep it valid UTF-8 for headers. */
        res->reason[utf8_cut(res->reason, sizeof(res->reason) - 1)] = '\0';
    return outcome;
}

const char *router_class_name(enum error_class cls)
{
    switch (cls) {
    case ERROR_NONE:
        return "none";
    case ERROR_PARSE:
        return "parse";
    case ERROR_SCHEMA:
        return "schema";
    case ERROR_IDENTITY:
        return "identity";
    case ERROR_UNKNOWN_TYPE:
        return "unknown_type";
    case ERROR_OVERSIZE:
        return "oversize";
    case ERROR_TRANSIENT:
        return "transient";
    case ERROR_CLASSES:
        break;
    }
    return "unknown";
}

const char *router_outcome_name(enum outcome outcome)
{
    switch (outcome) {
    case OUTCOME_OK:
        return "ok";
    case OUTCOME_SKIPPED:
        return "skipped";
    case OUTCOME_PERMANENT:
        return "permanent";
    case OUTCOME_TRANSIENT:
        return "transient";
    }
    return "unknown";
}

/*
 * Render message text (a key or a type) for a reason as at most SHOW_MAX
 * bytes, with quotes, backslashes and control characters escaped so the
 * reason stays one line, cut only between UTF-8 sequences (the text is valid
 * UTF-8) and marked "..." when cut. dst holds SHOW_SIZE bytes.
 */
#define SHOW_SIZE (SHOW_MAX + sizeof("..."))
static const char *show(char *dst, const char *s)
{
    size_t out = 0;

    for (size_t i = 0; s[i] != '\0';) {
        unsigned char c = (unsigned char)s[i];
        char piece[8];
        size_t n, in;

        if (c == '"' || c == '\\') {
            n = (size_t)snprintf(piece, sizeof(piece), "\\%c", c);
            in = 1;
        } else if (c < 0x20 || c == 0x7F) {
            n = (size_t)snprintf(piece, sizeof(piece), "\\u%04x", c);
            in = 1;
        } else {
            in = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            memcpy(piece, s + i, in);
            n = in;
        }
        if (out + n > SHOW_MAX) {
            memcpy(dst + out, "...", sizeof("..."));
            return dst;
        }
        memcpy(dst + out, piece, n);
        out += n;
        i += in;
    }
    dst[out] = '\0';
    return dst;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Find a name that occurs twice among obj's members. Returns 1 and sets *dup,
 * 0 when all differ, -ENOMEM. Names are NUL-free (json_parse() refuses \u0000), so
 * strcmp compares them exactly.
 */
static int object_duplicate(const cJSON *obj, const char **dup)
{
    size_t n = 0;

    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        n++;
    if (n <= PAIRWISE_MAX) {
        for (const cJSON *a = obj->child; a != NULL; a = a->next)
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (a->string[0] == b->string[0] && strcmp(a->string, b->string) == 0) {
                    *dup = a->string;
                    return 1;
                }
        return 0;
    }

    const char **names = malloc(n * sizeof(*names));
    if (names == NULL)
        return -ENOMEM;
    size_t i = 0;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        names[i++] = m->string;
    qsort(names, n, sizeof(*names), compare_names);
    int found = 0;
    for (i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            *dup = names[i];
            found = 1;
            break;
        }
    free(names);
    return found;
}

/*
 * Check every object in the tree for duplicate names. The recursion is as
 * deep as the document, which json_parse() has bounded by the nesting limit.
 */
static int tree_duplicate(const cJSON *node, const char **dup)
{
    if (json_is(node, cJSON_Object)) {
        int rc = object_duplicate(node, dup);

        if (rc != 0)
            return rc;
    }
    if (json_is(node, cJSON_Object) || json_is(node, cJSON_Array))
        for (const cJSON *c = node->child; c != NULL; c = c->next) {
            int rc = tree_duplicate(c, dup);

            if (rc != 0)
                return rc;
        }
    return 0;
}

static const char *json_kind(const cJSON *item)
{
    if (json_is(item, cJSON_Array))
        return "array";
    if (json_is(item, cJSON_String))
        return "string";
    if (json_is(item, cJSON_Number))
        return "number";
    if (cJSON_IsBool(item))
        return "boolean";
    if (json_is(item, cJSON_NULL))
        return "null";
    return "non-object";
}

/* The message's type: the first of message_type and type that is a non-empty string. */
static const char *message_type(const cJSON *root, struct route_result *res)
{
    static const char *const names[] = {"message_type", "type"};
    const char *bad = NULL;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const cJSON *t = json_member(root, names[i]);

        if (json_is(t, cJSON_String) && t->valuestring[0] != '\0')
            return t->valuestring;
        if (t != NULL && bad == NULL)
            bad = names[i];
    }
    if (bad != NULL)
        router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "%s must be a non-empty string", bad);
    else
        router_fail(res, OUTCOME_PERMANENT, ERROR_SCHEMA, "no message_type or type field");
    return NULL;
}

/* Parse a value that must be one JSON object, into r's arena. */
static cJSON *parse(struct router *r, const char *value, size_t len, struct route_result *res)
{
    struct json_error err;
    cJSON *root = json_parse(value, len, r->limits.max_nesting_depth, arena_alloc, &r->arena, &err);

    if (root == NULL) {
        switch (err.kind) {
        case JSON_UTF8:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "invalid UTF-8 at byte %zu", err.at);
            break;
        case JSON_CONTROL:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE,
                        "control character in string at byte %zu", err.at);
            break;
        case JSON_NUL:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "\\u0000 in string at byte %zu",
                        err.at);
            break;
        case JSON_DEPTH:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "nesting deeper than %d levels",
                        r->limits.max_nesting_depth < JSON_DEPTH_LIMIT ? r->limits.max_nesting_depth
                                                                       : JSON_DEPTH_LIMIT);
            break;
        case JSON_TRAILING:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "trailing data after JSON at byte %zu",
                        err.at);
            break;
        case JSON_NOMEM:
            /* Not the message's fault: retrying may well succeed. */
            router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT, "out of memory parsing");
            break;
        case JSON_OK:
        case JSON_SYNTAX:
            router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "invalid JSON near byte %zu", err.at);
            break;
        }
        return NULL;
    }
    if (!json_is(root, cJSON_Object)) {
        router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "value is a JSON %s, not an object",
                    json_kind(root));
        return NULL;
    }
    return root;
}

void router_route(struct router *r, const void *value, size_t len, const struct message_meta *meta,
                  struct emitter *out, struct route_result *res)
{
    char shown[SHOW_SIZE];

    *res = (struct route_result){.outcome = OUTCOME_OK, .error_class = ERROR_NONE};

    /* A tombstone (null value) is told apart from a zero-length one: they mean different things. */
    if (value == NULL) {
        router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "null value (a tombstone)");
        return;
    }
    if (len == 0) {
        router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "empty value");
        return;
    }
    if (len > r->limits.max_message_bytes) {
        router_fail(res, OUTCOME_PERMANENT, ERROR_OVERSIZE,
                    "value of %zu bytes exceeds processing.max_message_bytes (%zu)", len,
                    r->limits.max_message_bytes);
        return;
    }
    cJSON *root = parse(r, value, len, res);
    if (root == NULL)
        goto out;

    const char *dup = NULL;
    int rc = tree_duplicate(root, &dup);
    if (rc < 0) {
        /* Not the message's fault: retrying may well succeed. */
        router_fail(res, OUTCOME_TRANSIENT, ERROR_TRANSIENT,
                    "out of memory checking for duplicate keys");
        goto out;
    }
    if (rc > 0) {
        router_fail(res, OUTCOME_PERMANENT, ERROR_PARSE, "duplicate key \"%s\"", show(shown, dup));
        goto out;
    }

    const char *type = message_type(root, res);
    if (type == NULL)
        goto out;
    size_t tlen = strlen(type);
    if (tlen >= sizeof(res->type))
        tlen = utf8_cut(type, sizeof(res->type) - 1);
    memcpy(res->type, type, tlen);
    res->type[tlen] = '\0';

    const struct route *route = find_route(r, type);
    if (route == NULL) {
        if (r->limits.unknown_type == UNKNOWN_TYPE_SKIP)
            router_fail(res, OUTCOME_SKIPPED, ERROR_NONE,
                        "no handler for type \"%s\"; skipped by policy", show(shown, type));
        else
            router_fail(res, OUTCOME_PERMANENT, ERROR_UNKNOWN_TYPE, "no handler for type \"%s\"",
                        show(shown, type));
        goto out;
    }

    enum outcome outcome = route->fn(route->opaque, root, meta, out, res);
    res->outcome = outcome;
    if (outcome == OUTCOME_OK) {
        /* A handler that succeeded owes no reason; leave none behind. */
        res->error_class = ERROR_NONE;
        res->reason[0] = '\0';
    }
out:
    /* The tree lived in the arena: emptying it frees every node at once. */
    arena_reset(&r->arena);
}
