/* SPDX-License-Identifier: MIT */
/* router.h -- checks a message value and routes it by message_type/type to a handler. */
#ifndef CRM_ROUTER_H
#define CRM_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"

/* What became of one message. Handlers return only OK, PERMANENT or TRANSIENT. */
enum outcome {
    OUTCOME_OK,        /* handled; its offset may be stored */
    OUTCOME_SKIPPED,   /* deliberately not handled (unknown type under the skip policy) */
    OUTCOME_PERMANENT, /* will never succeed: dead-letter it, then store its offset */
    OUTCOME_TRANSIENT, /* may succeed later: retry it; its offset must not be stored */
};

/* Why a message failed; the names are the dead-letter crm.error.class values. */
enum error_class {
    ERROR_NONE,
    ERROR_PARSE,        /* "parse": empty, not UTF-8, not JSON, not an object, too deep */
    ERROR_SCHEMA,       /* "schema": missing or ill-typed fields, no type */
    ERROR_IDENTITY,     /* "identity": an address or number that cannot be normalised */
    ERROR_UNKNOWN_TYPE, /* "unknown_type": no handler for the type */
    ERROR_OVERSIZE,     /* "oversize": value longer than processing.max_message_bytes */
    ERROR_TRANSIENT,    /* "transient": a retryable failure (outputs not acknowledged) */
    ERROR_CLASSES,      /* how many there are */
};

/* Where a message came from; handlers copy what they keep. */
struct message_meta {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* may be NULL */
    size_t key_len;
    int64_t timestamp_ms; /* -1 when the message has none */
};

/* The result of routing one message. */
struct route_result {
    enum outcome outcome;
    enum error_class error_class; /* ERROR_NONE unless PERMANENT or TRANSIENT */
    char type[64];                /* the message type, cut to fit; "" when absent */
    char reason[256];             /* one line for humans and for crm.error.reason */
};

/* The topics a handler can produce to. */
enum output_topic {
    OUTPUT_TICKETS,
    OUTPUT_RESPONSES,
    OUTPUT_IDENTITIES,
    OUTPUT_DEAD_LETTERS,
    OUTPUT_TOPICS, /* how many there are */
};

/*
 * Where a handler's outputs go. emit() queues one record (key and value are
 * copied) with the timestamp given, milliseconds since the epoch (0: the
 * time it is queued), and returns 0, or a negative errno when it cannot be
 * queued now (-ENOBUFS: the producer queue is full), which the handler
 * turns into OUTCOME_TRANSIENT.
 */
struct emitter {
    int (*emit)(struct emitter *e, enum output_topic topic, const void *key, size_t key_len,
                const void *value, size_t len, int64_t timestamp_ms);
};

/*
 * A handler: `msg` is the parsed JSON object, valid for the call only. It
 * validates, then emits its outputs through `out`. On failure it fills
 * res->error_class and res->reason (router_fail) and returns
 * OUTCOME_PERMANENT or OUTCOME_TRANSIENT. Whatever cJSON allocates during
 * the call comes from the router's per-message arena and is gone after it:
 * a handler keeps no cJSON item, and copies what it must keep.
 */
typedef enum outcome (*handler_fn)(void *opaque, const cJSON *msg, const struct message_meta *meta,
                                   struct emitter *out, struct route_result *res);

struct router;

/* What the router checks before any handler runs; from config "processing". */
struct router_limits {
    size_t max_message_bytes;
    int max_nesting_depth;
    enum unknown_type_policy unknown_type;
};

/* A router with no handlers; NULL when out of memory. */
struct router *router_new(const struct router_limits *limits);

/* Register fn for `type` (copied). 0, -EEXIST if the type is taken, -EINVAL, -ENOMEM. */
int router_add(struct router *r, const char *type, handler_fn fn, void *opaque);

/*
 * Check and route one value: size, emptiness, UTF-8, nesting depth, JSON
 * syntax (no trailing bytes), object-ness and the type field, then the
 * handler. Never fails itself: every problem is an outcome in *res.
 */
void router_route(struct router *r, const void *value, size_t len, const struct message_meta *meta,
                  struct emitter *out, struct route_result *res);

/* Free a router; takes NULL; returns NULL. */
struct router *router_free(struct router *r);

/* Set res to a failure of class `cls` with a printf-style reason; returns `outcome`. */
enum outcome router_fail(struct route_result *res, enum outcome outcome, enum error_class cls,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The crm.error.class name of a class ("parse", "schema", ...); "none" for ERROR_NONE. */
const char *router_class_name(enum error_class cls);

/* The name of an outcome ("ok", "skipped", "permanent", "transient"). */
const char *router_outcome_name(enum outcome outcome);

#endif
