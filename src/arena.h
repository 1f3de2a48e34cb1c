/* SPDX-License-Identifier: MIT */
/* arena.h -- memory handed out piece by piece and taken back all at once, for parsed trees. */
#ifndef CRM_ARENA_H
#define CRM_ARENA_H

#include <stddef.h>

struct arena_overflow;

/*
 * Pieces are carved out of one block; a reset empties it, so a tree built
 * in the arena is thrown away with no allocator call per node and no walk
 * over it. What does not fit goes to overflow blocks of its own, freed at
 * the reset, after which the block grows (up to keep_max) so that the next
 * tree of that size fits. The struct is public so that it can live inside
 * its owner; touch the members only through the functions.
 */
struct arena {
    unsigned char *block;
    size_t used, cap, keep_max;
    size_t wanted; /* bytes in overflow blocks since the last reset */
    struct arena_overflow *overflow;
};

/* Set a up with a first block of `first` bytes, to grow up to keep_max. 0 or -ENOMEM. */
int arena_init(struct arena *a, size_t first, size_t keep_max);

/* n bytes aligned for any object, valid until the next reset; NULL when out of memory. ctx is
 * the arena (a json_alloc_fn). */
void *arena_alloc(void *ctx, size_t n);

/* Take back everything allocated since the last reset; keep the block, grown if it was short. */
void arena_reset(struct arena *a);

/* Release all of a's memory; takes an arena set up by arena_init() or zeroed. */
void arena_fini(struct arena *a);

#endif
