/* store.c: opening and closing the store, table access, transactions with map growth, stats */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"

#define MAP_INITIAL (1ull << 30) /* first map size; it doubles when full */
#define MAP_LIMIT (1ull << 42)   /* 4 TiB: past this a write gets -ENOSPC */
#define MAX_READERS 1024         /* LMDB reader slots: threads x processes */
#define READ_POOL_MAX 64         /* ended read transactions kept for reuse */

static const char *const db_names[DB_COUNT] = {
    "meta",   "users",    "mboxes", "mboxnames", "msgs",    "names", "bodyids",
    "bodies", "bodyinfo", "dups",   "expunged",  "changes", "packs", "subs",
};

int64_t st_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *store_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "success";
    case -ENOENT:
        return "not found";
    case -EEXIST:
        return "already exists";
    case -ENOTEMPTY:
        return "not empty";
    case -EINVAL:
        return "invalid name or argument";
    case -EACCES:
        return "authentication failed";
    case -EFBIG:
        return "message too large";
    case -ENOSPC:
        return "no space left on the store's disk";
    case -EPROTO:
        return "unknown store schema version";
    case -EIO:
        return "store damaged or I/O error";
    case -EROFS:
        return "store opened read-only";
    case -ERANGE:
        return "change feed position too old";
    case -ESTALE:
        return "message changed since the given modseq";
    case -EDQUOT:
        return "the user's limit of mailboxes or subscriptions is reached";
    case -EPERM:
        return "operation not permitted";
    default:
        return rc < 0 ? strerror(-rc) : mdb_strerror(rc);
    }
}

int st_err(store_txn *t, int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
        if (t) t->map_full = true;
        return -ENOSPC;
    case MDB_TXN_FULL:
        return -EFBIG;
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    case MDB_READERS_FULL:
        return -EAGAIN;
    default:
        if (rc > 0 && rc < 4096) return -rc; /* a system errno, e.g. ENOSPC from the disk */
        return -EIO;
    }
}

int st_get(store_txn *t, int db, const void *k, size_t klen, MDB_val *v)
{
    MDB_val key = {klen, (void *)k};
    if (t->write) return st_err(t, mdb_get(t->txn, t->s->dbi[db], &key, v));
    /* a read txn looks up through a kept cursor: LMDB searches the cursor's current page
     * first, so walking UIDs or body ids in order does not descend from the root each time */
    if (!t->cur[db]) {
        int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &t->cur[db]);
        if (rc) return st_err(t, rc);
    }
    return st_err(t, mdb_cursor_get(t->cur[db], &key, v, MDB_SET_KEY));
}

int st_get_next(store_txn *t, int db, const void *k, size_t klen, MDB_val *v)
{
    MDB_cursor *c = t->write ? NULL : t->cur[db];
    if (c) {
        /* walking keys in order (FETCH 1:*): the wanted key is usually the next one */
        MDB_val key;
        if (mdb_cursor_get(c, &key, v, MDB_NEXT) == 0 && key.mv_size == klen &&
            memcmp(key.mv_data, k, klen) == 0) {
            /* and the next ones are on the same leaf page: on entering a page, ask for all of
             * it at once, so its records arrive together instead of one cache miss each */
            uintptr_t page = (uintptr_t)v->mv_data & ~(uintptr_t)(t->s->psize - 1);
            if (v->mv_size < t->s->psize / 2 && page != t->walk_page[db]) {
                t->walk_page[db] = page;
                for (size_t off = 0; off < t->s->psize; off += 64)
                    __builtin_prefetch((const char *)page + off);
            }
            return 0;
        }
    }
    return st_get(t, db, k, klen, v);
}

/* Closes a read transaction's kept cursors (before the txn itself goes). */
static void close_cursors(store_txn *t)
{
    for (int i = 0; i < DB_COUNT; i++)
        if (t->cur[i]) mdb_cursor_close(t->cur[i]), t->cur[i] = NULL;
}

int st_put(store_txn *t, int db, const void *k, size_t klen, const void *v, size_t vlen)
{
    if (!t->write) return -EROFS;
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
    return st_err(t, mdb_put(t->txn, t->s->dbi[db], &key, &val, 0));
}

int st_del(store_txn *t, int db, const void *k, size_t klen)
{
    if (!t->write) return -EROFS;
    MDB_val key = {klen, (void *)k};
    return st_err(t, mdb_del(t->txn, t->s->dbi[db], &key, NULL));
}

static int iter_open(st_iter *it, store_txn *t, int db, const void *start, size_t slen, size_t plen,
                     bool after)
{
    if (slen > sizeof it->start || plen > slen) return -EINVAL;
    *it = (st_iter){.t = t, .after = after, .slen = slen, .plen = plen};
    if (slen) memcpy(it->start, start, slen);
    return st_cursor(t, db, &it->c);
}

int st_iter_begin(st_iter *it, store_txn *t, int db, const void *start, size_t slen, size_t plen)
{
    return iter_open(it, t, db, start, slen, plen, false);
}

int st_iter_after(st_iter *it, store_txn *t, int db, const void *start, size_t slen, size_t plen)
{
    return iter_open(it, t, db, start, slen, plen, true);
}

bool st_iter_next(st_iter *it)
{
    if (it->mrc) return false;
    if (!it->begun) {
        it->begun = true;
        it->k = (MDB_val){it->slen, it->start};
        it->mrc = mdb_cursor_get(it->c, &it->k, &it->v, it->slen ? MDB_SET_RANGE : MDB_FIRST);
        if (it->mrc == 0 && it->after && it->k.mv_size == it->slen &&
            memcmp(it->k.mv_data, it->start, it->slen) == 0)
            it->mrc = mdb_cursor_get(it->c, &it->k, &it->v, MDB_NEXT);
    } else {
        /* after st_iter_del too: LMDB then gives the record that followed the deleted one */
        it->mrc = mdb_cursor_get(it->c, &it->k, &it->v, MDB_NEXT);
    }
    if (it->mrc == 0 &&
        (it->k.mv_size < it->plen || memcmp(it->k.mv_data, it->start, it->plen) != 0))
        it->mrc = MDB_NOTFOUND; /* past the prefix */
    return it->mrc == 0;
}

int st_iter_del(st_iter *it)
{
    int mrc = mdb_cursor_del(it->c, 0);
    if (mrc) it->mrc = mrc;
    return st_err(it->t, mrc);
}

int st_iter_end(st_iter *it, int rc)
{
    if (it->c) mdb_cursor_close(it->c), it->c = NULL;
    if (rc) return rc;
    return it->mrc == 0 || it->mrc == MDB_NOTFOUND ? 0 : st_err(it->t, it->mrc);
}

int st_del_prefix(store_txn *w, int db, uint32_t id,
                  int (*each)(store_txn *w, const MDB_val *v, void *ctx), void *ctx)
{
    uint8_t kb[4];
    put_be32(kb, id);
    st_iter it;
    int rc = st_iter_begin(&it, w, db, kb, 4, 4);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        if (each) rc = each(w, &it.v, ctx);
        if (rc == 0) rc = st_iter_del(&it);
    }
    return st_iter_end(&it, rc);
}

int st_cursor(store_txn *t, int db, MDB_cursor **c)
{
    return st_err(t, mdb_cursor_open(t->txn, t->s->dbi[db], c));
}

uint64_t st_meta_u64(store_txn *t, const char *key, uint64_t dflt)
{
    MDB_val v;
    uint64_t x = 0;
    if (st_get(t, DB_META, key, strlen(key), &v) != 0) return dflt;
    if (v.mv_size == 8)
        memcpy(&x, v.mv_data, 8);
    else if (v.mv_size == 4) {
        uint32_t y;
        memcpy(&y, v.mv_data, 4);
        x = y;
    } else
        return dflt;
    return x;
}

int st_meta_put_u64(store_txn *t, const char *key, uint64_t v)
{
    return st_put(t, DB_META, key, strlen(key), &v, sizeof v);
}

/* ---- opening ---------------------------------------------------------------------------- */

/* "cannot open store DIR: Permission denied (it belongs to uid U, this process runs as V): ..." */
static void access_error(const char *dir, int e, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0 && st.st_uid != geteuid())
        snprintf(err, errlen,
                 "cannot open store '%s': %s (it belongs to uid %u and this process runs as uid "
                 "%u): run as its owner, or give it to this user with chown -R",
                 dir, strerror(e), (unsigned)st.st_uid, (unsigned)geteuid());
    else
        snprintf(err, errlen,
                 "cannot open store '%s': %s: check the permissions of the directory, its "
                 "parents and the files in it (the store's are 0700 and 0600)",
                 dir, strerror(e));
}

static int env_open(const char *dir, bool rdonly, bool create, MDB_env **out, size_t *mapsize,
                    char *err, size_t errlen)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) {
        snprintf(err, errlen, "cannot set up LMDB: %s", mdb_strerror(rc));
        return -ENOMEM;
    }
    char path[PATH_MAX];
    struct stat st;
    size_t size = MAP_INITIAL;
    const char *env_map = getenv("MAILFS_MAPSIZE"); /* tests use a tiny map to exercise growth */
    if (env_map && atoll(env_map) > 0) size = (size_t)atoll(env_map);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) == 0) {
        while (size < (size_t)st.st_size + (size_t)st.st_size / 2)
            size *= 2;
    } else if (errno != ENOENT && errno != ENOTDIR) {
        int e = errno;
        mdb_env_close(env);
        access_error(dir, e, err, errlen);
        return e == EACCES ? -EACCES : -e;
    } else if (!create) {
        mdb_env_close(env);
        snprintf(err, errlen, "no store at '%s': create one with 'mailfs init' or pass --store",
                 dir);
        return -ENOENT;
    }
    mdb_env_set_maxdbs(env, DB_COUNT + 2);
    mdb_env_set_maxreaders(env, MAX_READERS);
    mdb_env_set_mapsize(env, size);
    rc = mdb_env_open(env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0600);
    if (rc == EACCES || rc == EPERM) {
        access_error(dir, rc, err, errlen);
        mdb_env_close(env);
        return -EACCES;
    }
    if (rc) {
        snprintf(err, errlen, "cannot open store '%s': %s", dir, mdb_strerror(rc));
        mdb_env_close(env);
        return rc == EACCES ? -EACCES : (rc > 0 && rc < 4096 ? -rc : -EIO);
    }
    if (!rdonly) {
        int dead = 0;
        mdb_reader_check(env, &dead); /* free slots of killed processes */
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    *mapsize = info.me_mapsize;
    *out = env;
    return 0;
}

static int open_tables(store *s, bool create, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc) goto err;
    /* the schema first, so that a store of another version is named as such */
    rc = mdb_dbi_open(txn, db_names[DB_META], create ? MDB_CREATE : 0, &s->dbi[DB_META]);
    MDB_val k = {6, "schema"}, v;
    uint32_t ver = STORE_SCHEMA_VERSION;
    if (rc == 0) rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND && create) {
        v.mv_size = sizeof ver, v.mv_data = &ver;
        rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
    } else if (rc == 0) {
        ver = 0;
        if (v.mv_size == 4) memcpy(&ver, v.mv_data, 4);
        if (ver != STORE_SCHEMA_VERSION) {
            mdb_txn_abort(txn);
            snprintf(err, errlen,
                     "store '%s' has schema version %u but this mailfs knows only version %u: "
                     "open it with the mailfs release that made it, export the mail "
                     "(mailfs export) and import it into a new store",
                     s->dir, ver, STORE_SCHEMA_VERSION);
            return -EPROTO;
        }
    }
    for (int i = 1; rc == 0 && i < DB_COUNT; i++)
        rc = mdb_dbi_open(txn, db_names[i], create ? MDB_CREATE : 0, &s->dbi[i]);
    if (rc) {
        mdb_txn_abort(txn);
        goto err;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) goto err;
    return 0;
err:
    if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "'%s' is not a mailfs store (its tables are missing)", s->dir);
        return -EPROTO;
    }
    snprintf(err, errlen, "cannot read store '%s': %s", s->dir, mdb_strerror(rc));
    return st_err(NULL, rc);
}

static int store_open_impl(const char *dir, int flags, bool create, store **out, char *err,
                           size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->rdonly = flags & STORE_OPEN_RDONLY;
    s->msg_max = STORE_MSG_MAX_DEFAULT;
    s->max_mailboxes = STORE_MAILBOXES_MAX_DEFAULT;
    s->max_subscriptions = STORE_SUBSCRIPTIONS_MAX_DEFAULT;
    s->feed_keep = st_feed_keep();
    s->notify_fd = -1;
    pthread_rwlock_init(&s->map_lock, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    int rc = env_open(dir, s->rdonly, create, &s->env, &s->mapsize, err, errlen);
    MDB_stat est;
    s->psize = rc == 0 && mdb_env_stat(s->env, &est) == 0 ? est.ms_psize : 4096;
    if (rc == 0) rc = open_tables(s, create, err, errlen);
    if (rc == 0) rc = st_feed_open(s, err, errlen);
    if (rc) {
        store_close(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int store_create(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "store path '%s' is too long", dir);
        return -ENAMETOOLONG;
    }
    if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "'%s' already holds a store: use it, or pick another directory", dir);
        return -EEXIST;
    }
    /* make missing parents 0755 (umask applies), as mkdir -p would: they hold nothing but the
     * store, and a 0700 parent made by root would lock out the account serve drops to; the
     * store directory itself is 0700 */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) goto mkerr;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0) {
        if (errno != EEXIST) goto mkerr;
        /* an existing (empty) directory becomes what a new one would be: the store holds
         * everyone's mail */
        struct stat st;
        if (stat(tmp, &st) == 0 && (st.st_mode & 077) && chmod(tmp, 0700) != 0) {
            int e = errno;
            snprintf(err, errlen, "'%s' is mode %o and cannot be made 0700: %s", tmp,
                     (unsigned)(st.st_mode & 07777), strerror(e));
            return -e;
        }
    }
    store *s;
    int rc = store_open_impl(dir, 0, true, &s, err, errlen);
    if (rc) return rc;
    store_close(&s);
    return 0;
mkerr:;
    int e = errno;
    snprintf(err, errlen, "cannot create directory '%s': %s", tmp, strerror(e));
    return -e;
}

int store_open(const char *dir, int flags, store **out, char *err, size_t errlen)
{
    return store_open_impl(dir, flags, false, out, err, errlen);
}

void store_close(store **sp)
{
    store *s = *sp;
    if (!s) return;
    for (store_txn *t = s->pool, *next; t; t = next) {
        next = t->next;
        close_cursors(t);
        mdb_txn_abort(t->txn);
        free(t);
    }
    if (s->env) mdb_env_close(s->env);
    if (s->notify_fd >= 0) close(s->notify_fd);
    pthread_rwlock_destroy(&s->map_lock);
    pthread_mutex_destroy(&s->pool_lock);
    free(s->dir);
    free(s);
    *sp = NULL;
}

const char *store_dir(const store *s)
{
    return s->dir;
}

void store_set_msg_max(store *s, uint64_t bytes)
{
    s->msg_max = bytes;
}

uint64_t store_msg_max(const store *s)
{
    return s->msg_max;
}

/* ---- transactions ----------------------------------------------------------------------- */

/* Grows the map to at least WANT bytes (0: adopt the size another process set). */
static int map_grow(store *s, size_t want)
{
    pthread_rwlock_wrlock(&s->map_lock);
    int rc = 0;
    if (want == 0 || want > s->mapsize) {
        rc = mdb_env_set_mapsize(s->env, want);
        if (rc == 0) {
            MDB_envinfo info;
            mdb_env_info(s->env, &info);
            s->mapsize = info.me_mapsize;
        }
    }
    pthread_rwlock_unlock(&s->map_lock);
    return rc ? st_err(NULL, rc) : 0;
}

static int txn_begin(store *s, bool write, MDB_txn **txn)
{
    for (int tries = 0; tries < 8; tries++) {
        pthread_rwlock_rdlock(&s->map_lock);
        int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
        if (rc == 0) return 0; /* the caller unlocks at the end of the txn */
        pthread_rwlock_unlock(&s->map_lock);
        if (rc != MDB_MAP_RESIZED) return st_err(NULL, rc);
        if ((rc = map_grow(s, 0)) != 0) return rc;
    }
    return -EIO;
}

/* Read transactions are kept for reuse after they end (reset, holding their reader slot), so
 * that a request handler's read costs no allocation and no reader-table lock. */
int store_read_begin(store *s, store_txn **out)
{
    pthread_mutex_lock(&s->pool_lock);
    store_txn *t = s->pool;
    if (t) s->pool = t->next, s->pooled--;
    pthread_mutex_unlock(&s->pool_lock);
    if (t) {
        pthread_rwlock_rdlock(&s->map_lock);
        bool ok = mdb_txn_renew(t->txn) == 0;
        for (int i = 0; ok && i < DB_COUNT; i++)
            if (t->cur[i] && mdb_cursor_renew(t->txn, t->cur[i]) != 0) ok = false;
        if (!ok) {
            /* e.g. MDB_MAP_RESIZED: drop it and begin afresh, which handles that */
            pthread_rwlock_unlock(&s->map_lock);
            close_cursors(t);
            mdb_txn_abort(t->txn);
            free(t);
            t = NULL;
        }
    }
    if (!t) {
        if (!(t = calloc(1, sizeof *t))) return -ENOMEM;
        int rc = txn_begin(s, false, &t->txn);
        if (rc) {
            free(t);
            return rc;
        }
        t->s = s;
    }
    t->seq = t->seq0 = st_meta_u64(t, "seq", 0);
    *out = t;
    return 0;
}

void store_read_end(store_txn **tp)
{
    store_txn *t = *tp;
    if (!t) return;
    store *s = t->s;
    *tp = NULL;
    mdb_txn_reset(t->txn);
    pthread_rwlock_unlock(&s->map_lock);
    pthread_mutex_lock(&s->pool_lock);
    if (s->pooled < READ_POOL_MAX) {
        t->next = s->pool, s->pool = t, s->pooled++;
        t = NULL;
    }
    pthread_mutex_unlock(&s->pool_lock);
    if (t) {
        close_cursors(t);
        mdb_txn_abort(t->txn);
        free(t);
    }
}

/* LMDB reports a short write as EIO; on a disk that is (nearly) full that means ENOSPC. */
static bool disk_nearly_full(store *s)
{
    struct statvfs vfs;
    if (statvfs(s->dir, &vfs) != 0) return false;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < (64ull << 20);
}

/*
 * LMDB reuses the pages a commit freed only from the second commit after it on (it keeps the
 * last two snapshots whole). On a full disk that means the space an expunge just freed is not
 * there for the next write, and a write that failed is no commit that would move things on:
 * `rm` through the mount, then `cp`, failed with ENOSPC for as long as nothing else wrote.
 * So after a write fails for lack of space, commit this small write (it fits in pages freed
 * earlier or already given to the file by the failed attempt), and try once more.
 */
static int commit_turn(store *s)
{
    store_txn w = {.s = s, .write = true};
    int rc = txn_begin(s, true, &w.txn);
    if (rc) return rc;
    rc = st_meta_put_u64(&w, "seq", st_meta_u64(&w, "seq", 0)); /* the same value */
    if (rc == 0) {
        rc = st_err(&w, mdb_txn_commit(w.txn));
        if (rc == -EIO && disk_nearly_full(s)) rc = -ENOSPC;
    } else {
        mdb_txn_abort(w.txn);
    }
    pthread_rwlock_unlock(&s->map_lock);
    return rc;
}

int store_write(store *s, int (*fn)(store_txn *w, void *ctx), void *ctx)
{
    if (s->rdonly) return -EROFS;
    bool turned = false;
    for (int tries = 0;; tries++) {
        store_txn w = {.s = s, .write = true};
        int rc = txn_begin(s, true, &w.txn);
        if (rc) return rc;
        w.seq = w.seq0 = st_meta_u64(&w, "seq", 0);
        rc = fn(&w, ctx);
        if (rc == 0 && !w.map_full) rc = st_body_flush(&w);
        if (rc == 0 && !w.map_full && w.seq != w.seq0) {
            rc = st_meta_put_u64(&w, "seq", w.seq);
            if (rc == 0) rc = st_feed_trim(&w);
        }
        if (rc == 0 && !w.map_full) {
            int mrc = mdb_txn_commit(w.txn);
            rc = st_err(&w, mrc);
            if (rc == -EIO && disk_nearly_full(s)) rc = -ENOSPC;
        } else {
            mdb_txn_abort(w.txn);
        }
        st_body_discard(&w);
        pthread_rwlock_unlock(&s->map_lock);
        if (w.map_full) {
            size_t want = s->mapsize * 2;
            if (want > MAP_LIMIT || tries > 40) return -ENOSPC;
            if ((rc = map_grow(s, want)) != 0) return rc;
            continue;
        }
        if (rc == -ENOSPC && !turned) {
            turned = true;
            if (commit_turn(s) == 0) continue;
        }
        if (rc == 0 && w.seq != w.seq0) st_feed_notify(s, w.seq);
        return rc;
    }
}

/* ---- maintenance ------------------------------------------------------------------------ */

void store_release_map(store *s)
{
    /* LMDB does not tell where it mapped the file (mdb_env_info's me_mapaddr is only the
     * address asked for with MDB_FIXEDMAP), so find the mapping in /proc/self/maps */
    char want[PATH_MAX], line[PATH_MAX + 256];
    snprintf(want, sizeof want, "%s/data.mdb", s->dir);
    char *real = realpath(want, NULL);
    pthread_rwlock_rdlock(&s->map_lock); /* no remap while it runs */
    FILE *f = real ? fopen("/proc/self/maps", "re") : NULL;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path_at) < 2 || !path_at)
            continue;
        char *path = line + path_at;
        path[strcspn(path, "\n")] = 0;
        /* a shared file mapping: MADV_DONTNEED drops page-table entries, never data */
        if (strcmp(path, real) == 0) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    if (f) fclose(f);
    pthread_rwlock_unlock(&s->map_lock);
    free(real);
}

int store_get_stats(store *s, store_stats *out)
{
    memset(out, 0, sizeof *out);
    store_txn *t;
    int rc = store_read_begin(s, &t);
    if (rc) return rc;
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    out->map_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    MDB_stat bs;
    if (mdb_stat(t->txn, s->dbi[DB_BODYINFO], &bs) == 0) out->bodies = bs.ms_entries;
    out->body_bytes = st_meta_u64(t, "body_bytes", 0);
    store_read_end(&t);
    char path[PATH_MAX];
    struct stat fst;
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    if (stat(path, &fst) == 0) out->file_bytes = (uint64_t)fst.st_size;
    return 0;
}
