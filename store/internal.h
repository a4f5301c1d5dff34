/* internal.h: what the store's own files share: the handle, LMDB tables and record layouts */
#ifndef MAILFS_STORE_INTERNAL_H
#define MAILFS_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "store/store.h"

/*
 * The tables (LMDB named databases). Integers in keys are big-endian so that keys sort
 * numerically; integers in values are in host order (a store is not portable across byte
 * orders, like LMDB itself).
 *
 *   meta      "schema" -> u32, "seq" -> u64 change counter, "next_user" -> u32,
 *             "next_mbox" -> u32, "last_uidvalidity" -> u32, "feed_min" -> u64,
 *             "body_bytes" -> u64
 *   users     user name -> user_rec + password hash text
 *   mboxes    u32 mailbox id -> mbox_rec + name (no NUL)
 *   mboxnames u32 user id + name -> u32 mailbox id
 *   msgs      u32 mailbox id + u32 uid -> msg_rec + file name + NUL + keywords + NUL
 *   names     u32 mailbox id + file name -> u32 uid
 *   bodyids   sha256 -> bodyref_rec (body id and reference count)
 *   bodies    u64 pack key -> a pack of raw message bytes (pack.c; ids only grow)
 *   packs     u64 pack key -> the pack's live bodies and bytes (pack.c)
 *   bodyinfo  u64 body id -> body_rec + MIME summary blob (never changes)
 *   dups      u32 mailbox id + u64 body id + u32 uid -> (empty): finds duplicates for import
 *   expunged  u32 mailbox id + u32 uid -> u64 modseq of the expunge
 *   changes   u64 seq -> change_rec
 *   subs      u32 user id + name -> (empty): the user's subscription list (RFC 3501 6.3.6), names
 *             normalized as in mboxnames (INBOX in capitals) but independent of the mailboxes:
 *             a name may be subscribed while no mailbox has it, DELETE leaves it, RENAME moves
 *             the subtree's names along (mailbox.c), user deletion removes them all
 */
enum {
    DB_META,
    DB_USERS,
    DB_MBOXES,
    DB_MBOXNAMES,
    DB_MSGS,
    DB_NAMES,
    DB_BODYIDS,
    DB_BODIES,
    DB_BODYINFO,
    DB_DUPS,
    DB_EXPUNGED,
    DB_CHANGES,
    DB_PACKS,
    DB_SUBS,
    DB_COUNT
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char *dir;
    int notify_fd; /* the file written after each commit; watchers inotify it */
    bool rdonly;
    uint64_t msg_max;
    uint32_t max_mailboxes, max_subscriptions; /* per user; store_set_user_limits */
    uint64_t feed_keep; /* changes the feed keeps (FEED_KEEP; MAILFS_FEED_KEEP for tests) */
    size_t mapsize;
    size_t psize;              /* LMDB's page size */
    pthread_rwlock_t map_lock; /* held shared by every txn, exclusively to grow the map */
    pthread_mutex_t pool_lock; /* guards pool */
    struct store_txn *pool;    /* ended read transactions, reset, for reuse */
    int pooled;
};

#define DUPKEY_LEN 16 /* dups key: mailbox id, body id, uid */

typedef struct st_pack st_pack;

struct store_txn {
    store *s;
    MDB_txn *txn;
    bool write;
    bool map_full;          /* a put hit MDB_MAP_FULL: store_write grows the map and runs again */
    uint64_t seq;           /* change counter; writes raise it */
    uint64_t seq0;          /* its value when the txn began */
    struct store_txn *next; /* in the store's pool of ended read transactions */
    MDB_cursor *cur[DB_COUNT];     /* read txns: one cursor per table for lookups, kept across
                                      reuse; a lookup near the last one stays on its page */
    st_pack *pack;                 /* write txns: new bodies not yet written (pack.c) */
    uintptr_t walk_page[DB_COUNT]; /* st_get_next: the leaf page last prefetched */
};

typedef struct user_rec {
    uint32_t id;
} user_rec;

typedef struct mbox_rec {
    uint32_t user_id, uidvalidity, uidnext, messages, unseen, deleted, special_use;
    uint32_t pad; /* was the subscribed flag (schema 3); subscriptions live in the subs table */
    uint64_t highestmodseq, bytes;
    int64_t mtime_ns, ctime_ns;
    uint64_t crlf_bytes; /* sum of the messages' crlf_size (STATUS SIZE) */
} mbox_rec;

typedef struct msg_rec {
    uint32_t flags;
    int16_t tz_min;
    uint16_t name_len;
    uint16_t kw_len;
    uint16_t pad;
    uint32_t lines;
    uint64_t modseq;
    int64_t internaldate, savedate, ctime_ns;
    uint64_t size, crlf_size;
    uint64_t body_id;
    uint8_t hash[32];
} msg_rec;

typedef struct bodyref_rec {
    uint64_t id;
    uint32_t refs;
    uint32_t pad;
} bodyref_rec;

typedef struct body_rec {
    uint32_t lines;
    uint32_t pad;
    uint64_t crlf_size;
} body_rec;

typedef struct change_rec {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t user_id, mailbox_id, uid;
} change_rec;

/* big-endian key helpers */
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}
static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32), put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Maps an LMDB or system error to this API's codes; marks T when the map is full. */
int st_err(store_txn *t, int mdb_rc);

/* Thin wrappers over mdb_get/put/del on table DB that map errors through st_err. */
int st_get(store_txn *t, int db, const void *k, size_t klen, MDB_val *v);
/* st_get for keys looked up in order: in a read txn it first tries the kept cursor's next key. */
int st_get_next(store_txn *t, int db, const void *k, size_t klen, MDB_val *v);
int st_put(store_txn *t, int db, const void *k, size_t klen, const void *v, size_t vlen);
int st_del(store_txn *t, int db, const void *k, size_t klen);
int st_cursor(store_txn *t, int db, MDB_cursor **c);

/*
 * A walk, in key order, over the records of one table whose keys begin with a prefix: the one
 * way the store reads a range of keys. The usual shape:
 *
 *     st_iter it;
 *     int rc = st_iter_begin(&it, t, DB_MSGS, key, 8, 4); // from KEY, while its first 4 bytes
 *     if (rc) return rc;
 *     while (rc == 0 && st_iter_next(&it)) {
 *         ... it.k, it.v: the current record; set rc to stop ...
 *     }
 *     return st_iter_end(&it, rc);
 *
 * it.k and it.v point into the map (or the write txn's pages) and are valid until the next
 * st_iter_next, st_iter_del or st_iter_end, or until the txn writes. Tables whose keys have one
 * length check it.k.mv_size themselves (a damaged key then ends the walk, as store_check
 * reports it). The prefix is copied, so START need not outlive st_iter_begin.
 */
#define ST_ITER_PREFIX_MAX 511 /* LMDB's largest key */
typedef struct st_iter {
    MDB_val k, v; /* the current record */
    MDB_cursor *c;
    store_txn *t;
    int mrc;    /* LMDB's code for the last step: 0, MDB_NOTFOUND at the end, or an error */
    bool after; /* skip a key equal to START (st_iter_after) */
    bool begun; /* st_iter_next has positioned the cursor */
    size_t slen, plen;
    uint8_t start[ST_ITER_PREFIX_MAX];
} st_iter;

/* Begins a walk over table DB from the first key >= START (SLEN bytes, 1..ST_ITER_PREFIX_MAX;
 * 0: from the table's first key) for as long as keys begin with START's first PLEN bytes
 * (PLEN <= SLEN; 0: to the end of the table). Returns 0 or an error (-EINVAL for a START too
 * long); on error there is nothing to end. Nothing is read until st_iter_next. */
int st_iter_begin(st_iter *it, store_txn *t, int db, const void *start, size_t slen, size_t plen);
/* As st_iter_begin, from the first key > START (a listing that goes on after a name). */
int st_iter_after(st_iter *it, store_txn *t, int db, const void *start, size_t slen, size_t plen);
/* Moves to the next record of the walk (the first, on the first call); false at the end of
 * the prefix or the table, or on an LMDB error (which st_iter_end returns). */
bool st_iter_next(st_iter *it);
/* Deletes the current record (write txns); the next st_iter_next gives the record after it.
 * Returns 0 or an error from st_err. */
int st_iter_del(st_iter *it);
/* Ends the walk, closing its cursor. Returns RC if it is non-zero (the caller's error that
 * stopped the walk), otherwise 0, or the LMDB error that stopped it (mapped by st_err). */
int st_iter_end(st_iter *it, int rc);

/* Deletes every record of table DB whose key starts with the big-endian ID, calling EACH (if
 * not NULL) with each record's value first; EACH's error stops it. */
int st_del_prefix(store_txn *w, int db, uint32_t id,
                  int (*each)(store_txn *w, const MDB_val *v, void *ctx), void *ctx);

/* Meta counters. */
uint64_t st_meta_u64(store_txn *t, const char *key, uint64_t dflt);
int st_meta_put_u64(store_txn *t, const char *key, uint64_t v);

/* The change feed (feed.c). st_feed_add records a change and returns its seq (which is also
 * the MODSEQ it gives); st_feed_trim drops the oldest so that the feed holds at most
 * s->feed_keep (store_write calls it before commit); st_feed_keep is that bound for a new
 * handle; st_feed_open opens the notify file at store_open (a sentence in *err on failure);
 * st_feed_notify writes it after a commit, which wakes every watcher. */
int st_feed_add(store_txn *t, int kind, uint32_t user_id, uint32_t mailbox_id, uint32_t uid,
                uint64_t *seq);
int st_feed_trim(store_txn *t);
uint64_t st_feed_keep(void);
int st_feed_open(store *s, char *err, size_t errlen);
void st_feed_notify(store *s, uint64_t seq);

/* The current time in nanoseconds. */
int64_t st_now_ns(void);

/* Reads and writes mailbox records by id. */
int st_mbox_get(store_txn *t, uint32_t id, mbox_rec *rec, char *name, size_t namelen);
int st_mbox_put(store_txn *t, uint32_t id, const mbox_rec *rec, const char *name);

/* Deletes mailbox NORM (a normalized name; INBOX too) as store_mailbox_delete does. */
int st_mbox_drop(store_txn *t, uint32_t user_id, const char *norm, int flags);

/* Deletes every subscription of a user (user deletion). */
int st_subs_purge(store_txn *t, uint32_t user_id);

/* Deletes every message of a mailbox (used by mailbox and user deletion). */
int st_msgs_purge(store_txn *t, uint32_t mailbox_id);

/* Message bodies (pack.c). st_body_put stores body ID (ids increase) in the pending pack;
 * st_body_get finds one (the pointer is valid until the txn writes again or ends);
 * st_body_drop releases one whose bodyinfo record is already gone, giving its length;
 * st_body_flush writes the pending pack (store_write calls it before commit), and
 * st_body_discard frees it. st_packs_check reports damaged packs through FAIL. */
int st_body_put(store_txn *w, uint64_t id, const void *data, size_t len);
int st_body_get(store_txn *t, uint64_t id, const char **data, size_t *len);
int st_body_drop(store_txn *w, uint64_t id, uint64_t *len);
int st_body_flush(store_txn *w);
void st_body_discard(store_txn *w);
int st_packs_check(store_txn *t, void (*fail)(void *ctx, const char *msg), void *ctx);

/* Checks a message file name: 1..255 bytes, UTF-8, no '/', no NUL, not "." or "..". */
int st_filename_check(const char *name);


/* files.c: kept files into DEST/files (a backup); and each kept tree: CB gets (user, USER) for
 * a user's directory, then (user, mailbox id) for each mailbox tree in it, 0 for a name that is
 * no id */
int st_files_backup(store *s, const char *dest, char *err, size_t errlen);
int st_files_list(store *s, int (*cb)(void *ctx, uint32_t user_id, uint32_t mailbox_id),
                  void *ctx);

#endif
