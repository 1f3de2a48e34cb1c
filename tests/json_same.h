/* SPDX-License-Identifier: MIT */
/* json_same.h -- for tests of json_parse(): an allocator, and a comparison with cJSON's trees. */
#ifndef CRM_TESTS_JSON_SAME_H
#define CRM_TESTS_JSON_SAME_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* A json_alloc_fn that remembers what it gave out, and can be told to fail from some call on. */
struct pool {
    void **blocks;
    size_t n, cap;
    size_t calls;
    size_t fail_from; /* 0: never fail */
};

static void *pool_alloc(void *ctx, size_t size)
{
    struct pool *p = ctx;

    if (p->fail_from != 0 && ++p->calls >= p->fail_from)
        return NULL;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void **blocks = realloc(p->blocks, cap * sizeof(*blocks));

        if (blocks == NULL)
            abort();
        p->blocks = blocks;
        p->cap = cap;
    }
    if ((p->blocks[p->n] = malloc(size ? size : 1)) == NULL)
        abort();
    return p->blocks[p->n++];
}

/* Free everything p gave out and make it empty. */
static void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->blocks[i]);
    free(p->blocks);
    *p = (struct pool){0};
}

static bool json_same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * True when a and b are the same tree: types, member names, strings, numbers
 * (valuedouble to the bit, so -0 is not 0, and valueint), children in order,
 * and each list linked as cJSON links one (the first child's prev is the
 * last). Otherwise writes where they differ into why.
 */
static bool json_same(const cJSON *a, const cJSON *b, char *why, size_t whylen)
{
    if ((a->type & 0xFF) != (b->type & 0xFF)) {
        snprintf(why, whylen, "type %d against %d", a->type & 0xFF, b->type & 0xFF);
        return false;
    }
    if (!json_same_text(a->string, b->string) || !json_same_text(a->valuestring, b->valuestring)) {
        snprintf(why, whylen, "name or string differs at \"%s\"", a->string ? a->string : "");
        return false;
    }
    if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
        a->valueint != b->valueint) {
        snprintf(why, whylen, "number %.17g/%d against %.17g/%d", a->valuedouble, a->valueint,
                 b->valuedouble, b->valueint);
        return false;
    }

    const cJSON *x = a->child, *y = b->child, *last = NULL;
    for (; x != NULL && y != NULL; last = x, x = x->next, y = y->next) {
        if (last != NULL && x->prev != last) {
            snprintf(why, whylen, "prev link broken");
            return false;
        }
        if (!json_same(x, y, why, whylen))
            return false;
    }
    if (x != NULL || y != NULL) {
        snprintf(why, whylen, "child count differs");
        return false;
    }
    if (a->child != NULL && a->child->prev != last) {
        snprintf(why, whylen, "first child's prev is not the last child");
        return false;
    }
    return true;
}

#endif
