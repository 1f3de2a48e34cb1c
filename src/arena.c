/* SPDX-License-Identifier: MIT */
/* arena.c -- memory handed out piece by piece and taken back all at once, for parsed trees. */
#include "arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 16

struct arena_overflow {
    struct arena_overflow *next;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

int arena_init(struct arena *a, size_t first, size_t keep_max)
{
    *a = (struct arena){.keep_max = keep_max};
    if ((a->block = malloc(first)) == NULL)
        return -ENOMEM;
    a->cap = first;
    return 0;
}

void *arena_alloc(void *ctx, size_t n)
{
    struct arena *a = ctx;

    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->block != NULL && n <= a->cap - a->used) {
        void *p = a->block + a->used;

        a->used += n;
        return p;
    }
    if (n > SIZE_MAX - sizeof(struct arena_overflow))
        return NULL;

    struct arena_overflow *o = malloc(sizeof(*o) + n);
    if (o == NULL)
        return NULL;
    o->next = a->overflow;
    a->overflow = o;
    a->wanted += n;
    return o->data;
}

/* Free the overflow blocks; returns how many bytes they held. */
static size_t drop_overflow(struct arena *a)
{
    size_t held = a->wanted;

    while (a->overflow != NULL) {
        struct arena_overflow *next = a->overflow->next;

        free(a->overflow);
        a->overflow = next;
    }
    a->wanted = 0;
    return held;
}

void arena_reset(struct arena *a)
{
    if (a->overflow != NULL) {
        size_t want = a->used + drop_overflow(a);

        if (want > a->keep_max)
            want = a->keep_max;
        if (want > a->cap) {
            unsigned char *bigger = malloc(want);

            /* Without it the block stays as it was: the next large tree overflows again. */
            if (bigger != NULL) {
                free(a->block);
                a->block = bigger;
                a->cap = want;
            }
        }
    }
    a->used = 0;
}

void arena_fini(struct arena *a)
{
    drop_overflow(a);
    free(a->block);
    *a = (struct arena){0};
}
