/* SPDX-License-Identifier: MIT */
/* window.c -- a partition's offset window: messages handled, waiting for their outputs. */
#include "window.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK 1024

struct window_chunk {
    struct window_chunk *next;
    struct window_token tokens[CHUNK];
};

void window_init(struct window *w)
{
    w->head = w->tail = NULL;
    w->next = -1;
}

void window_pool_init(struct window_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
}

void window_pool_fini(struct window_pool *pool)
{
    while (pool->chunks) {
        struct window_chunk *next = pool->chunks->next;

        free(pool->chunks);
        pool->chunks = next;
    }
    pool->free = NULL;
}

void window_recycle(struct window_pool *pool, struct window_token *t)
{
    t->next = pool->free;
    pool->free = t;
}

struct window_token *window_push(struct window_pool *pool, struct window *w, int64_t offset)
{
    struct window_token *t = pool->free;

    if (!t) {
        struct window_chunk *chunk = malloc(sizeof(*chunk));

        if (!chunk)
            return NULL;
        chunk->next = pool->chunks;
        pool->chunks = chunk;
        for (size_t i = 0; i < CHUNK; i++)
            window_recycle(pool, &chunk->tokens[i]);
        t = pool->free;
    }
    pool->free = t->next;
    memset(t, 0, sizeof(*t));
    t->win = w;
    t->offset = offset;
    if (w->tail)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    pool->in_flight++;
    return t;
}

void window_report(struct window_pool *pool, struct window_token *t)
{
    t->pending--;
    if (!t->win && t->pending == 0)
        window_recycle(pool, t);
}

struct window_token *window_pop_done(struct window_pool *pool, struct window *w)
{
    struct window_token *t = w->head;

    if (!t || t->failed || t->pending > 0)
        return NULL;
    w->head = t->next;
    if (!w->head)
        w->tail = NULL;
    w->next = t->offset + 1;
    t->win = NULL;
    pool->in_flight--;
    return t;
}

struct window_token *window_failed_head(const struct window *w)
{
    return w->head && w->head->failed ? w->head : NULL;
}

void window_cut(struct window_pool *pool, struct window *w, struct window_token *t)
{
    struct window_token **link = &w->head;

    while (*link && *link != t)
        link = &(*link)->next;
    *link = NULL;
    w->tail = NULL;
    for (struct window_token *prev = w->head; prev; prev = prev->next)
        w->tail = prev;
    while (t) {
        struct window_token *next = t->next;

        t->win = NULL;
        pool->in_flight--;
        if (t->pending == 0)
            window_recycle(pool, t);
        t = next;
    }
}

int64_t window_take_next(struct window *w)
{
    int64_t next = w->next;

    w->next = -1;
    return next;
}
