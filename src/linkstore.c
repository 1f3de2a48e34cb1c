/* SPDX-License-Identifier: MIT */
/* linkstore.c -- the identity store: phone -> customer links and changelog positions, in LMDB. */
#include "linkstore.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "identity.h"

/*
 * The layout. "links" maps the phone's bytes to the customer id's 20 bytes.
 * "meta" holds the format, the origin and one position per partition (key
 * "p" and the partition as 4 big-endian bytes, value an int64 in this
 * machine's order: the file never leaves the machine that wrote it).
 */
#define FORMAT        "crm-consumerd links 1"
#define KEY_FORMAT    "format"
#define KEY_CLUSTER   "cluster"
#define KEY_TOPIC     "topic"
#define KEY_PARTITION "partitions"

struct linkstore {
    MDB_env *env;
    MDB_dbi links, meta;
    /*
     * Lookups may come from one thread while another writes and commits:
     * read_lock keeps the read transaction (and count) to one user at a time.
     */
    pthread_mutex_t read_lock;
    MDB_txn *read;  /* renewed at each commit; lookups use it */
    MDB_txn *write; /* open from the first change to the commit */
    bool spoilt;    /* a change failed: the write transaction can only be aborted */
    int spoilt_err;
    int lockfd; /* the directory, flock()ed so that one process owns the store */
    size_t count;
    uint64_t max_bytes;
};

static int lmdb_errno(int rc)
{
    return rc == MDB_MAP_FULL ? -ENOSPC : -EIO;
}

static MDB_val val(const void *data, size_t len)
{
    return (MDB_val){.mv_size = len, .mv_data = (void *)(uintptr_t)data};
}

/* mkdir -p, mode 0700 for what it makes. */
static int make_dirs(const char *dir)
{
    char *p = strdup(dir);
    int rc = 0;

    if (!p)
        return -ENOMEM;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;

        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

static void remove_files(const char *dir)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
}

void linkstore_remove(const char *dir)
{
    remove_files(dir);
    rmdir(dir);
}

/* Errors that mean the file is not a store this LMDB can read: replace it. */
static bool unreadable(int rc)
{
    return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
           rc == MDB_PANIC || rc == MDB_INCOMPATIBLE || rc == MDB_BAD_VALSIZE;
}

static int env_open(struct linkstore *s, const char *dir)
{
    int rc = mdb_env_create(&s->env);

    if (rc)
        return rc;
    if ((rc = mdb_env_set_maxdbs(s->env, 2)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->max_bytes)) != 0 ||
        /*
         * NOTLS: the read transaction belongs to the store, not the thread,
         * so it can stay open across a write transaction of the same thread.
         * NOMETASYNC: a commit costs one data sync; a system crash may undo
         * the last commit, which the changelog simply reads again. NORDAHEAD:
         * lookups are random, read-ahead would only fill the page cache.
         */
        (rc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD, 0600)) != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
    return rc;
}

/* Open the databases; replace content of another format by an empty store. */
static int dbs_open(struct linkstore *s, char *note, size_t notelen)
{
    MDB_txn *txn;
    MDB_val k = val(KEY_FORMAT, strlen(KEY_FORMAT)), v;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    if (rc)
        return rc;
    if ((rc = mdb_dbi_open(txn, "links", MDB_CREATE, &s->links)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0)
        goto abort;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == 0 && v.mv_size == strlen(FORMAT) && memcmp(v.mv_data, FORMAT, v.mv_size) == 0)
        return mdb_txn_commit(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto abort;
    if (rc == 0)
        snprintf(note, notelen, "the store was written in another format");
    if ((rc = mdb_drop(txn, s->links, 0)) != 0 || (rc = mdb_drop(txn, s->meta, 0)) != 0)
        goto abort;
    v = val(FORMAT, strlen(FORMAT));
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0)
        goto abort;
    return mdb_txn_commit(txn);
abort:
    mdb_txn_abort(txn);
    return rc;
}

static void refresh_count(struct linkstore *s)
{
    MDB_stat st;

    if (mdb_stat(s->read, s->links, &st) == 0)
        s->count = st.ms_entries;
}

struct linkstore *linkstore_open(const char *dir, size_t max_bytes, char *note, size_t notelen,
                                 char *err, size_t errlen)
{
    struct linkstore *s = calloc(1, sizeof(*s));
    int rc, dead;

    snprintf(note, notelen, "%s", "");
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->lockfd = -1;
    s->max_bytes = max_bytes;
    pthread_mutex_init(&s->read_lock, NULL);
    if ((rc = make_dirs(dir)) < 0) {
        snprintf(err, errlen, "%s: cannot create the directory: %s", dir, strerror(-rc));
        goto fail;
    }
    s->lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lockfd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "%s: %s", dir,
                 errno == EWOULDBLOCK ? "in use by another process (each instance needs a "
                                        "store of its own)"
                                      : strerror(errno));
        goto fail;
    }
    rc = env_open(s, dir);
    if (rc == 0)
        rc = dbs_open(s, note, notelen);
    if (unreadable(rc)) {
        /* Only a cache of the topic: replace it, and the changelog rebuilds it. */
        snprintf(note, notelen, "the store was unreadable (%s)", mdb_strerror(rc));
        if (s->env)
            mdb_env_close(s->env);
        s->env = NULL;
        remove_files(dir);
        rc = env_open(s, dir);
        if (rc == 0)
            rc = dbs_open(s, note + strlen(note), 0);
    }
    if (rc) {
        snprintf(err, errlen, "%s: %s", dir, rc > 0 ? strerror(rc) : mdb_strerror(rc));
        goto fail;
    }
    /* Reader slots left by a process that died are freed. */
    mdb_reader_check(s->env, &dead);
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->read)) != 0) {
        snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    refresh_count(s);
    return s;
fail:
    linkstore_close(s);
    return NULL;
}

int linkstore_get(struct linkstore *s, const char *phone, char *out, size_t outlen)
{
    MDB_val k = val(phone, strlen(phone)), v;
    int rc;

    if (k.mv_size == 0 || k.mv_size > IDENTITY_PHONE_MAX || outlen <= IDENTITY_ID_LEN)
        return 0;
    pthread_mutex_lock(&s->read_lock);
    rc = mdb_get(s->read, s->links, &k, &v);
    if (rc == 0 && v.mv_size == IDENTITY_ID_LEN) {
        memcpy(out, v.mv_data, IDENTITY_ID_LEN);
        out[IDENTITY_ID_LEN] = '\0';
    }
    pthread_mutex_unlock(&s->read_lock);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc == 0 && v.mv_size == IDENTITY_ID_LEN ? 1 : -EIO;
}

static int meta_get(struct linkstore *s, const char *key, MDB_val *v)
{
    MDB_val k = val(key, strlen(key));

    return mdb_get(s->read, s->meta, &k, v);
}

int linkstore_origin(struct linkstore *s, struct linkstore_origin *o)
{
    MDB_val c, t, n;
    int32_t parts;
    int rc = -ENOENT;

    pthread_mutex_lock(&s->read_lock);
    if (!meta_get(s, KEY_CLUSTER, &c) && !meta_get(s, KEY_TOPIC, &t) &&
        !meta_get(s, KEY_PARTITION, &n) && c.mv_size < sizeof(o->cluster) &&
        t.mv_size < sizeof(o->topic) && n.mv_size == sizeof(parts)) {
        memcpy(o->cluster, c.mv_data, c.mv_size);
        o->cluster[c.mv_size] = '\0';
        memcpy(o->topic, t.mv_data, t.mv_size);
        o->topic[t.mv_size] = '\0';
        memcpy(&parts, n.mv_data, sizeof(parts));
        o->partitions = parts;
        rc = 0;
    }
    pthread_mutex_unlock(&s->read_lock);
    return rc;
}

static void position_key(int32_t partition, unsigned char key[5])
{
    uint32_t p = (uint32_t)partition;

    key[0] = 'p';
    key[1] = (unsigned char)(p >> 24);
    key[2] = (unsigned char)(p >> 16);
    key[3] = (unsigned char)(p >> 8);
    key[4] = (unsigned char)p;
}

int64_t linkstore_position(struct linkstore *s, int32_t partition)
{
    unsigned char key[5];
    MDB_val k, v;
    int64_t pos;

    position_key(partition, key);
    k = val(key, sizeof(key));
    pthread_mutex_lock(&s->read_lock);
    if (mdb_get(s->read, s->meta, &k, &v) != 0 || v.mv_size != sizeof(pos))
        pos = -1;
    else
        memcpy(&pos, v.mv_data, sizeof(pos));
    pthread_mutex_unlock(&s->read_lock);
    return pos;
}

/* Open the write transaction if none is; a spoilt one refuses every change. */
static int writing(struct linkstore *s)
{
    int rc;

    if (s->spoilt)
        return s->spoilt_err;
    if (s->write)
        return 0;
    rc = mdb_txn_begin(s->env, NULL, 0, &s->write);
    return rc ? lmdb_errno(rc) : 0;
}

static int changed(struct linkstore *s, int rc)
{
    if (rc == 0 || rc == MDB_NOTFOUND)
        return 0;
    s->spoilt = true;
    s->spoilt_err = lmdb_errno(rc);
    return s->spoilt_err;
}

int linkstore_put(struct linkstore *s, const char *phone, const char *customer_id)
{
    size_t plen = strlen(phone);
    MDB_val k = val(phone, plen), v = val(customer_id, strlen(customer_id));
    int rc;

    if (plen == 0 || plen > IDENTITY_PHONE_MAX || v.mv_size != IDENTITY_ID_LEN)
        return -EINVAL;
    if ((rc = writing(s)) < 0)
        return rc;
    return changed(s, mdb_put(s->write, s->links, &k, &v, 0));
}

int linkstore_del(struct linkstore *s, const char *phone)
{
    size_t plen = strlen(phone);
    MDB_val k = val(phone, plen);
    int rc;

    if (plen == 0 || plen > IDENTITY_PHONE_MAX)
        return -EINVAL;
    if ((rc = writing(s)) < 0)
        return rc;
    return changed(s, mdb_del(s->write, s->links, &k, NULL));
}

int linkstore_set_position(struct linkstore *s, int32_t partition, int64_t next_offset)
{
    unsigned char key[5];
    MDB_val k, v = val(&next_offset, sizeof(next_offset));
    int rc;

    if (partition < 0 || next_offset < 0)
        return -EINVAL;
    if ((rc = writing(s)) < 0)
        return rc;
    position_key(partition, key);
    k = val(key, sizeof(key));
    return changed(s, mdb_put(s->write, s->meta, &k, &v, 0));
}

static int meta_put(struct linkstore *s, const char *key, const void *data, size_t len)
{
    MDB_val k = val(key, strlen(key)), v = val(data, len);

    return changed(s, mdb_put(s->write, s->meta, &k, &v, 0));
}

int linkstore_reset(struct linkstore *s, const struct linkstore_origin *o)
{
    int32_t parts = o->partitions;
    int rc;

    if ((rc = writing(s)) < 0)
        return rc;
    if ((rc = changed(s, mdb_drop(s->write, s->links, 0))) < 0 ||
        (rc = changed(s, mdb_drop(s->write, s->meta, 0))) < 0 ||
        (rc = meta_put(s, KEY_FORMAT, FORMAT, strlen(FORMAT))) < 0 ||
        (rc = meta_put(s, KEY_CLUSTER, o->cluster, strlen(o->cluster))) < 0 ||
        (rc = meta_put(s, KEY_TOPIC, o->topic, strlen(o->topic))) < 0)
        return rc;
    return meta_put(s, KEY_PARTITION, &parts, sizeof(parts));
}

int linkstore_commit(struct linkstore *s)
{
    int rc;

    if (!s->write)
        return 0;
    if (s->spoilt) {
        rc = s->spoilt_err;
        linkstore_abort(s);
        return rc;
    }
    rc = mdb_txn_commit(s->write);
    s->write = NULL;
    if (rc)
        return lmdb_errno(rc);
    /* The same reader slot, moved to the new snapshot: no system call. */
    pthread_mutex_lock(&s->read_lock);
    mdb_txn_reset(s->read);
    rc = mdb_txn_renew(s->read);
    if (rc == 0)
        refresh_count(s);
    pthread_mutex_unlock(&s->read_lock);
    return rc ? -EIO : 0;
}

void linkstore_abort(struct linkstore *s)
{
    if (s->write)
        mdb_txn_abort(s->write);
    s->write = NULL;
    s->spoilt = false;
    s->spoilt_err = 0;
}

int linkstore_foreach(struct linkstore *s,
                      int (*fn)(const char *phone, const char *customer_id, void *opaque),
                      void *opaque)
{
    char phone[IDENTITY_PHONE_MAX + 1], id[IDENTITY_ID_LEN + 1];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, ret = 0;

    pthread_mutex_lock(&s->read_lock);
    if (mdb_cursor_open(s->read, s->links, &cur) != 0) {
        pthread_mutex_unlock(&s->read_lock);
        return -EIO;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > IDENTITY_PHONE_MAX || v.mv_size != IDENTITY_ID_LEN) {
            ret = -EIO;
            break;
        }
        memcpy(phone, k.mv_data, k.mv_size);
        phone[k.mv_size] = '\0';
        memcpy(id, v.mv_data, IDENTITY_ID_LEN);
        id[IDENTITY_ID_LEN] = '\0';
        ret = fn(phone, id, opaque);
    }
    mdb_cursor_close(cur);
    pthread_mutex_unlock(&s->read_lock);
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        ret = -EIO;
    return ret;
}

size_t linkstore_count(struct linkstore *s)
{
    size_t n;

    pthread_mutex_lock(&s->read_lock);
    n = s->count;
    pthread_mutex_unlock(&s->read_lock);
    return n;
}

uint64_t linkstore_bytes(struct linkstore *s)
{
    MDB_envinfo info;
    MDB_stat st;

    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st))
        return 0;
    return (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
}

uint64_t linkstore_max_bytes(const struct linkstore *s)
{
    return s->max_bytes;
}

struct linkstore *linkstore_close(struct linkstore *s)
{
    if (!s)
        return NULL;
    if (s->env) {
        linkstore_abort(s);
        if (s->read)
            mdb_txn_abort(s->read);
        mdb_env_close(s->env);
    }
    if (s->lockfd >= 0)
        close(s->lockfd);
    pthread_mutex_destroy(&s->read_lock);
    free(s);
    return NULL;
}

int linkstore_check_dir(const char *dir, char *err, size_t errlen)
{
    char *p = strdup(dir), *slash;
    struct stat st;
    int rc = 0;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (;;) {
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "%s is not a directory", p);
                rc = -ENOTDIR;
            } else if (access(p, W_OK | X_OK) < 0) {
                rc = -errno;
                snprintf(err, errlen, "cannot write in %s: %s", p, strerror(-rc));
            }
            break;
        }
        if (errno != ENOENT && errno != ENOTDIR) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", p, strerror(-rc));
            break;
        }
        /* Missing (or under a file): it will be made if its parent can hold it. */
        slash = strrchr(p, '/');
        if (!slash) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    free(p);
    return rc;
}
