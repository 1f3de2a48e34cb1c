/* SPDX-License-Identifier: MIT */
/* linkstore.h -- the identity store: phone -> customer links and changelog positions, in LMDB. */
#ifndef CRM_LINKSTORE_H
#define CRM_LINKSTORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The store is a cache of the identities topic that survives restarts and
 * the topic's retention: the links read from it, and for each partition the
 * offset reading resumes from. Both change only together, in one write
 * transaction, so a link is never stored without the position that covers
 * it, nor a position without its links. One process owns a store; a
 * second opener is refused.
 *
 * Reads go through one read transaction that is renewed at each commit:
 * a lookup costs no system call, and sees every committed link. Reads
 * (linkstore_get, _origin, _position, _foreach, _count, _bytes) may come
 * from any thread, also while one other thread changes and commits; the
 * changes of one write transaction all come from one thread.
 */
struct linkstore;

/* Where the store's content came from: the topic it caches. */
struct linkstore_origin {
    char cluster[128]; /* the cluster id ("" when the brokers give none) */
    char topic[256];
    int partitions;
};

/*
 * Open the store in directory `dir`, creating the directory (mode 0700) and
 * the store when missing; the map may grow to max_bytes. A store LMDB cannot
 * read (corrupt, another format, another LMDB version) is replaced by an
 * empty one, and *note says why (else it is set to ""). NULL with a reason in
 * err when the directory cannot be made or used, another process has the
 * store open, or memory runs out.
 */
struct linkstore *linkstore_open(const char *dir, size_t max_bytes, char *note, size_t notelen,
                                 char *err, size_t errlen);

/*
 * The customer id stored for `phone` (E.164), copied to out (at least 21
 * bytes). Returns 1, 0 when there is none, or -EIO.
 */
int linkstore_get(struct linkstore *s, const char *phone, char *out, size_t outlen);

/* The recorded origin into *o: 0, or -ENOENT when none is recorded (a new or emptied store). */
int linkstore_origin(struct linkstore *s, struct linkstore_origin *o);

/* The committed position of `partition` (the next offset to read), or -1 when none. */
int64_t linkstore_position(struct linkstore *s, int32_t partition);

/*
 * Changes, all in one write transaction that the first of them opens and
 * linkstore_commit() ends. -ENOSPC means the map is full (the transaction is
 * spoilt: abort it); -EIO any other LMDB failure; -EINVAL a bad argument.
 */
int linkstore_put(struct linkstore *s, const char *phone, const char *customer_id);
int linkstore_del(struct linkstore *s, const char *phone);
int linkstore_set_position(struct linkstore *s, int32_t partition, int64_t next_offset);

/* Drop every link and position and record `o` as the origin. */
int linkstore_reset(struct linkstore *s, const struct linkstore_origin *o);

/*
 * Commit the open transaction (0 when none is open) and let lookups see it.
 * Returns 0, -ENOSPC (the map is full; nothing of it is kept) or -EIO.
 */
int linkstore_commit(struct linkstore *s);

/* Throw the open transaction away, if any. */
void linkstore_abort(struct linkstore *s);

/*
 * Call fn for every committed link, in phone order, until it returns
 * non-zero (which is returned). -EIO when the store cannot be read.
 */
int linkstore_foreach(struct linkstore *s,
                      int (*fn)(const char *phone, const char *customer_id, void *opaque),
                      void *opaque);

/* Links stored, as of the last commit. */
size_t linkstore_count(struct linkstore *s);

/* Bytes of the store's file in use, and the most the map may hold. */
uint64_t linkstore_bytes(struct linkstore *s);
uint64_t linkstore_max_bytes(const struct linkstore *s);

/* Close; takes NULL; returns NULL. An open transaction is aborted. */
struct linkstore *linkstore_close(struct linkstore *s);

/* Remove a closed store: its LMDB files, then the directory if that leaves it empty. */
void linkstore_remove(const char *dir);

/*
 * Whether `dir` could hold a store: an existing directory we may write in,
 * or a missing one whose nearest existing ancestor is such a directory.
 * Returns 0, or a negative errno with a reason in err.
 */
int linkstore_check_dir(const char *dir, char *err, size_t errlen);

#endif
