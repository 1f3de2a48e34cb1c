/* SPDX-License-Identifier: MIT */
/* window.h -- a partition's offset window: messages handled, waiting for their outputs. */
#ifndef CRM_WINDOW_H
#define CRM_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The at-least-once rule lives here. Each message handled takes a token at
 * the tail of its partition's window, in offset order; each of its outputs
 * (or its dead letter) adds one pending report. The offset to store is the
 * one after the longest prefix of tokens with no report pending and no
 * failure: never past a message that is not done. A failed token at the head
 * is where the partition must be rewound to. Nothing here knows Kafka: the
 * caller stores offsets, logs and retries. Single-threaded.
 */
struct window_token {
    struct window *win; /* NULL once let go: its reports still come, then it is recycled */
    struct window_token *next;
    int64_t offset;
    int64_t timestamp_ms; /* the input's record timestamp (<= 0: none) */
    int pending;          /* reports still to come */
    uint32_t trial;       /* the caller's tag (the breaker's trial number) */
    bool failed;          /* an output failed, or the message could not be handled */
    bool refused;         /* the broker refused an output for its size */
    bool dead_letter;     /* its output is its dead letter */
    bool backpressure;    /* it failed only because the producer's queue was full */
    int shrink;           /* what its dead letter left out (see deadletter.h) */
    int err;              /* the first delivery error (an rd_kafka_resp_err_t), for the log */
};

struct window {
    struct window_token *head, *tail;
    int64_t next; /* the offset to store, or -1 when it has not moved since it was taken */
};

struct window_chunk;

/* Tokens are allocated in chunks and recycled: no allocation per message. */
struct window_pool {
    struct window_token *free;
    struct window_chunk *chunks;
    uint64_t in_flight; /* tokens in windows: messages handled, not yet done */
};

/* An empty window (nothing to store). */
void window_init(struct window *w);

/* An empty pool; window_pool_fini() frees its chunks (every token, in use or not). */
void window_pool_init(struct window_pool *pool);
void window_pool_fini(struct window_pool *pool);

/* A token for offset at the tail of w, zeroed otherwise; NULL when out of memory. */
struct window_token *window_push(struct window_pool *pool, struct window *w, int64_t offset);

/*
 * One report for t has come: one pending fewer. A token that was let go is
 * recycled with its last report (the caller must not touch it after).
 */
void window_report(struct window_pool *pool, struct window_token *t);

/*
 * The head of w when it is done (nothing pending, not failed): it leaves the
 * window, w->next becomes the offset after it, and the caller recycles it
 * with window_recycle() once it has read what it wants of it. NULL when the
 * head is absent, waits, or failed.
 */
struct window_token *window_pop_done(struct window_pool *pool, struct window *w);

/* The head of w when it failed (the rewind point), else NULL. */
struct window_token *window_failed_head(const struct window *w);

/* Put back a token taken by window_pop_done(). */
void window_recycle(struct window_pool *pool, struct window_token *t);

/*
 * Let go of t and every token after it in w (a rewind, a revoke): they leave
 * the window and are recycled when their last report comes, or now if none
 * is pending.
 */
void window_cut(struct window_pool *pool, struct window *w, struct window_token *t);

/* The offset to store, once: returns w->next and resets it to -1. */
int64_t window_take_next(struct window *w);

#endif
