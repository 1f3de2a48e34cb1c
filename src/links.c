/* SPDX-License-Identifier: MIT */
/* links.c -- a phone's customer: links made here and not yet read back, over the store. */
#include "links.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

/* The end of a bucket chain. */
#define NIL UINT32_MAX

/* Entries allocated at the first pending link; the array then doubles. */
#define INITIAL 64

/* Indices are 32-bit. */
#define LIMIT ((size_t)1 << 30)

/* One pending link, inline: the table makes no allocation per link. */
struct pending {
    char phone[IDENTITY_PHONE_MAX + 1];
    char customer_id[IDENTITY_ID_LEN + 1];
    uint32_t hash;  /* kept so that growing needs no rehashing */
    uint32_t chain; /* next entry in the same bucket */
};

struct links {
    struct linkstore *store;
    /* The handlers add and look up; the changelog's thread checks and settles. */
    pthread_mutex_t lock;
    struct pending *entries; /* cap entries, the first count in use */
    uint32_t *buckets;       /* nbuckets chain heads, a power of two >= cap */
    size_t cap, count, nbuckets;
};

/*
 * FNV-1a's low bits depend only on the input's low bits, and the bucket is
 * chosen by the low bits, so the high half is mixed in first (MurmurHash3's
 * finaliser).
 */
static uint32_t key_hash(const char *phone, size_t len)
{
    uint64_t h = identity_hash(phone, len);

    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint32_t *bucket_of(const struct links *l, uint32_t hash)
{
    return &l->buckets[hash & (l->nbuckets - 1)];
}

static uint32_t find(const struct links *l, const char *phone, uint32_t hash)
{
    if (l->count == 0)
        return NIL;
    for (uint32_t i = *bucket_of(l, hash); i != NIL; i = l->entries[i].chain)
        if (l->entries[i].hash == hash && strcmp(l->entries[i].phone, phone) == 0)
            return i;
    return NIL;
}

static void chain_push(struct links *l, uint32_t i)
{
    uint32_t *head = bucket_of(l, l->entries[i].hash);

    l->entries[i].chain = *head;
    *head = i;
}

static void chain_unlink(struct links *l, uint32_t i)
{
    uint32_t *pp = bucket_of(l, l->entries[i].hash);

    while (*pp != i)
        pp = &l->entries[*pp].chain;
    *pp = l->entries[i].chain;
}

/* Double the entries and, when they outgrow the buckets, rebuild those. Unchanged on failure. */
static int grow(struct links *l)
{
    size_t cap = l->cap ? l->cap * 2 : INITIAL, nb = l->nbuckets ? l->nbuckets : 1;
    uint32_t *buckets = NULL;
    struct pending *entries;

    if (cap > LIMIT)
        return -ENOMEM;
    while (nb < cap)
        nb *= 2;
    if (nb != l->nbuckets && (buckets = malloc(nb * sizeof(*buckets))) == NULL)
        return -ENOMEM;
    entries = realloc(l->entries, cap * sizeof(*entries));
    if (entries == NULL) {
        free(buckets);
        return -ENOMEM;
    }
    l->entries = entries;
    l->cap = cap;
    if (buckets != NULL) {
        free(l->buckets);
        l->buckets = buckets;
        l->nbuckets = nb;
        for (size_t b = 0; b < nb; b++)
            buckets[b] = NIL;
        for (size_t i = 0; i < l->count; i++)
            chain_push(l, (uint32_t)i);
    }
    return 0;
}

struct links *links_new(struct linkstore *store)
{
    struct links *l = calloc(1, sizeof(*l));

    if (l != NULL) {
        l->store = store;
        pthread_mutex_init(&l->lock, NULL);
    }
    return l;
}

/* The length of s when it is 1..max bytes, else 0. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strnlen(s, max + 1);
    return n <= max ? n : 0;
}

int links_get(struct links *l, const char *phone, char *out, size_t outlen)
{
    size_t plen = bounded_len(phone, IDENTITY_PHONE_MAX);
    uint32_t i;

    if (plen == 0 || outlen <= IDENTITY_ID_LEN)
        return 0;
    pthread_mutex_lock(&l->lock);
    i = find(l, phone, key_hash(phone, plen));
    if (i != NIL)
        memcpy(out, l->entries[i].customer_id, IDENTITY_ID_LEN + 1);
    pthread_mutex_unlock(&l->lock);
    if (i != NIL)
        return 1;
    /*
     * Not pending: a link is settled (taken from here) only after the commit
     * that stores it, so the store has it by now if it is not pending.
     */
    return l->store != NULL ? linkstore_get(l->store, phone, out, outlen) : 0;
}

int links_put(struct links *l, const char *phone, const char *customer_id)
{
    size_t plen = bounded_len(phone, IDENTITY_PHONE_MAX);
    size_t idlen = bounded_len(customer_id, IDENTITY_ID_LEN);
    uint32_t hash, i;
    struct pending *e;
    int rc;

    if (plen == 0 || idlen != IDENTITY_ID_LEN)
        return -EINVAL;
    hash = key_hash(phone, plen);
    pthread_mutex_lock(&l->lock);
    i = find(l, phone, hash);
    if (i != NIL) {
        e = &l->entries[i];
        rc = memcmp(e->customer_id, customer_id, IDENTITY_ID_LEN) != 0;
        memcpy(e->customer_id, customer_id, IDENTITY_ID_LEN + 1);
    } else if (l->count < l->cap || (rc = grow(l)) == 0) {
        i = (uint32_t)l->count++;
        e = &l->entries[i];
        memcpy(e->phone, phone, plen + 1);
        memcpy(e->customer_id, customer_id, IDENTITY_ID_LEN + 1);
        e->hash = hash;
        chain_push(l, i);
        rc = 1;
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static uint32_t find_pending(const struct links *l, const char *phone, const char *customer_id)
{
    size_t plen = bounded_len(phone, IDENTITY_PHONE_MAX);
    uint32_t i;

    if (plen == 0 || bounded_len(customer_id, IDENTITY_ID_LEN) != IDENTITY_ID_LEN)
        return NIL;
    i = find(l, phone, key_hash(phone, plen));
    if (i == NIL || memcmp(l->entries[i].customer_id, customer_id, IDENTITY_ID_LEN) != 0)
        return NIL;
    return i;
}

int links_is_pending(struct links *l, const char *phone, const char *customer_id)
{
    uint32_t i;

    pthread_mutex_lock(&l->lock);
    i = find_pending(l, phone, customer_id);
    pthread_mutex_unlock(&l->lock);
    return i != NIL;
}

void links_settle(struct links *l, const char *phone, const char *customer_id)
{
    uint32_t i, last;

    pthread_mutex_lock(&l->lock);
    i = find_pending(l, phone, customer_id);
    if (i != NIL) {
        /* Move the last entry into the hole, so the used entries stay a prefix. */
        chain_unlink(l, i);
        last = (uint32_t)--l->count;
        if (i != last) {
            chain_unlink(l, last);
            l->entries[i] = l->entries[last];
            chain_push(l, i);
        }
    }
    pthread_mutex_unlock(&l->lock);
}

size_t links_pending(struct links *l)
{
    size_t n;

    pthread_mutex_lock(&l->lock);
    n = l->count;
    pthread_mutex_unlock(&l->lock);
    return n;
}

struct linkstore *links_store(const struct links *l)
{
    return l->store;
}

struct links *links_free(struct links *l)
{
    if (l != NULL) {
        free(l->entries);
        free(l->buckets);
        pthread_mutex_destroy(&l->lock);
        free(l);
    }
    return NULL;
}
