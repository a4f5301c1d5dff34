/* pack.c: message bodies packed into shared LMDB values
 *
 * LMDB keeps a value larger than about 2 KB in its own run of overflow pages, rounded up to
 * 4 KiB; with mail's size mix that rounding alone cost 15 % of the raw bytes. So bodies live
 * in packs: one value in the bodies table holds several bodies back to back, each contiguous
 * (a reader still gets one pointer into the map, no copy).
 *
 *   bodies  u64 pack key (its smallest body id) -> u64 n, n x pack_ent {id, off, len}, bytes
 *   packs   u64 pack key -> pack_stat (live bodies, live bytes, value size)
 *
 * Entries are sorted by id and packs cover disjoint id ranges, so the pack holding body ID is
 * the one with the greatest key <= ID. A write transaction gathers new bodies in memory (the
 * pending pack) and writes it when it reaches PACK_TARGET bytes or the transaction commits;
 * the first new body of a transaction takes over the last pack if that one is still small, so
 * one-message transactions (IMAP APPEND, deliver, a cp into the mount) fill packs too. A body
 * of PACK_SOLO bytes or more gets a pack of its own unless bodies are pending, whose pack it
 * then ends. When a body loses its last reference its
 * bytes stay until fewer than half of its pack's bytes are live; then the pack is rewritten
 * with only the live bodies (or deleted when none is left). A body is live while it has a
 * bodyinfo record.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "store/internal.h"

#define PACK_TARGET (256u << 10) /* a pending pack is written once it holds this much */
#define PACK_SOLO (128u << 10)   /* bodies this large get a pack of their own */
#define PACK_MERGE (64u << 10)   /* a last pack smaller than this takes the next bodies */
#define PACK_HDR 8u              /* u64 entry count */

typedef struct pack_ent {
    uint64_t id, off, len; /* off is from the start of the value */
} pack_ent;

typedef struct pack_stat {
    uint32_t live, pad;
    uint64_t live_bytes, size;
} pack_stat;

/* The pending pack of a write transaction. Entry offsets count from the start of DATA. */
struct st_pack {
    uint64_t key; /* the pack's key: its first body id */
    bool exists;  /* a pack with this key is in the table (a taken-over last pack) */
    pack_ent *ents;
    size_t n, ents_cap;
    mfs_buf data; /* the bodies back to back (data.len bytes used) */
};

/* Reads entry I of the pack value P (values need not be aligned). */
static pack_ent ent_at(const char *p, size_t i)
{
    pack_ent e;
    memcpy(&e, p + PACK_HDR + i * sizeof e, sizeof e);
    return e;
}

/* Checks the pack value V's header; *N gets its entry count. */
static int pack_header(const MDB_val *v, uint64_t *n)
{
    if (v->mv_size < PACK_HDR) return -EIO;
    memcpy(n, v->mv_data, 8);
    if (*n > (v->mv_size - PACK_HDR) / sizeof(pack_ent)) return -EIO;
    return 0;
}

/* Finds body ID in the pack value V: *OUT gets its entry, -ENOENT if it is not there. */
static int pack_find(const MDB_val *v, uint64_t id, pack_ent *out)
{
    uint64_t n;
    int rc = pack_header(v, &n);
    if (rc) return rc;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        pack_ent e = ent_at(v->mv_data, mid);
        if (e.id == id) {
            if (e.off < PACK_HDR + n * sizeof e || e.off > v->mv_size || e.len > v->mv_size - e.off)
                return -EIO;
            *out = e;
            return 0;
        }
        if (e.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -ENOENT;
}

/* The kept cursor on the bodies table (read and write transactions alike). */
static int bodies_cursor(store_txn *t, MDB_cursor **c)
{
    if (!t->cur[DB_BODIES]) {
        int rc = mdb_cursor_open(t->txn, t->s->dbi[DB_BODIES], &t->cur[DB_BODIES]);
        if (rc) return st_err(t, rc);
    }
    *c = t->cur[DB_BODIES];
    return 0;
}

/* Finds the stored pack that would hold body ID: the one with the greatest key <= ID. */
static int pack_locate(store_txn *t, uint64_t id, uint64_t *key, MDB_val *v)
{
    MDB_cursor *c = NULL;
    int rc = bodies_cursor(t, &c);
    if (rc) return rc;
    uint8_t kb[8];
    put_be64(kb, id);
    MDB_val k = {8, kb};
    int mrc = mdb_cursor_get(c, &k, v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(c, &k, v, MDB_LAST);
    else if (mrc == 0 && (k.mv_size != 8 || get_be64(k.mv_data) != id))
        mrc = mdb_cursor_get(c, &k, v, MDB_PREV);
    if (mrc == MDB_NOTFOUND) return -ENOENT;
    if (mrc) return st_err(t, mrc);
    if (k.mv_size != 8) return -EIO;
    *key = get_be64(k.mv_data);
    return *key <= id ? 0 : -ENOENT;
}

static int stat_get(store_txn *t, uint64_t key, pack_stat *st)
{
    uint8_t k[8];
    put_be64(k, key);
    MDB_val v;
    int rc = st_get(t, DB_PACKS, k, 8, &v);
    if (rc) return rc == -ENOENT ? -EIO : rc;
    if (v.mv_size != sizeof *st) return -EIO;
    memcpy(st, v.mv_data, sizeof *st);
    return 0;
}

static int stat_put(store_txn *w, uint64_t key, const pack_stat *st)
{
    uint8_t k[8];
    put_be64(k, key);
    return st_put(w, DB_PACKS, k, 8, st, sizeof *st);
}

/* Deletes the pack KEY and its statistics record. */
static int pack_delete(store_txn *w, uint64_t key)
{
    uint8_t kb[8];
    put_be64(kb, key);
    int rc = st_del(w, DB_BODIES, kb, 8);
    return rc ? rc : st_del(w, DB_PACKS, kb, 8);
}

static bool body_live(store_txn *t, uint64_t id)
{
    uint8_t k[8];
    put_be64(k, id);
    MDB_val v;
    return st_get(t, DB_BODYINFO, k, 8, &v) == 0;
}

/* Writes N entries and their bytes (DATA, offsets from DATA) as the pack KEY. APPEND: KEY is
 * greater than every key in the table. */
static int pack_write(store_txn *w, uint64_t key, bool append, const pack_ent *ents, size_t n,
                      const char *data, size_t used)
{
    uint8_t kb[8];
    put_be64(kb, key);
    size_t hdr = PACK_HDR + n * sizeof(pack_ent);
    MDB_val k = {8, kb}, v = {hdr + used, NULL};
    int mrc =
        mdb_put(w->txn, w->s->dbi[DB_BODIES], &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0));
    if (mrc) return st_err(w, mrc);
    char *p = v.mv_data;
    uint64_t n64 = n;
    memcpy(p, &n64, 8);
    pack_stat st = {.live = (uint32_t)n, .size = hdr + used};
    for (size_t i = 0; i < n; i++) {
        pack_ent e = ents[i];
        e.off += hdr;
        memcpy(p + PACK_HDR + i * sizeof e, &e, sizeof e);
        st.live_bytes += e.len;
    }
    if (used) memcpy(p + hdr, data, used);
    return stat_put(w, key, &st);
}

int st_body_flush(store_txn *w)
{
    st_pack *p = w->pack;
    if (!p || p->n == 0) return 0;
    int rc = pack_write(w, p->key, !p->exists, p->ents, p->n, p->data.data, p->data.len);
    p->n = 0;
    p->data.len = 0;
    return rc;
}

void st_body_discard(store_txn *w)
{
    if (!w->pack) return;
    free(w->pack->ents);
    mfs_buf_free(&w->pack->data);
    free(w->pack);
    w->pack = NULL;
}

/* Adds LEN bytes of body ID to the pending pack P (ids arrive in increasing order). */
static int pending_add(st_pack *p, uint64_t id, const void *data, size_t len)
{
    if (p->n == p->ents_cap) {
        size_t cap = p->ents_cap ? p->ents_cap * 2 : 64;
        pack_ent *e = realloc(p->ents, cap * sizeof *e);
        if (!e) return -ENOMEM;
        p->ents = e, p->ents_cap = cap;
    }
    /* a pack's worth at once: most transactions then allocate once */
    size_t want =
        p->data.cap ? len : (len > PACK_TARGET + PACK_SOLO ? len : PACK_TARGET + PACK_SOLO);
    if (mfs_buf_try_reserve(&p->data, want)) return -ENOMEM;
    size_t off = p->data.len;
    if (mfs_buf_try_append(&p->data, data, len)) return -ENOMEM;
    p->ents[p->n++] = (pack_ent){.id = id, .off = off, .len = len};
    return 0;
}

/* Appends to P the bodies of the stored pack value V (N entries) that are live, or all of them
 * when ALL_LIVE, leaving out body SKIP. */
static int copy_live(store_txn *w, const MDB_val *v, uint64_t n, bool all_live, uint64_t skip,
                     st_pack *p)
{
    const char *base = v->mv_data;
    for (uint64_t i = 0; i < n; i++) {
        pack_ent e = ent_at(base, i);
        if (e.off > v->mv_size || e.len > v->mv_size - e.off) return -EIO;
        if (e.id == skip || (!all_live && !body_live(w, e.id))) continue;
        int rc = pending_add(p, e.id, base + e.off, e.len);
        if (rc) return rc;
    }
    return 0;
}

/* Starts the pending pack of a write transaction: it takes over the last stored pack when that
 * one is small, keeping its live bodies (their ids are all below the new ones). */
static int pending_start(store_txn *w, st_pack *p, uint64_t first_id)
{
    p->key = first_id, p->exists = false;
    MDB_cursor *c = NULL;
    int rc = bodies_cursor(w, &c);
    if (rc) return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (mrc == MDB_NOTFOUND) return 0;
    if (mrc) return st_err(w, mrc);
    if (k.mv_size != 8 || v.mv_size >= PACK_MERGE) return 0;
    uint64_t key = get_be64(k.mv_data), n;
    if ((rc = pack_header(&v, &n)) != 0) return rc;
    pack_stat st;
    if ((rc = stat_get(w, key, &st)) != 0) return rc;
    /* copy first: the reads below may move the cursor, never the value's bytes (this txn
     * does not write until the pending pack is flushed); ids are never 0, so none is skipped */
    if ((rc = copy_live(w, &v, n, st.live == n, 0, p)) != 0) return rc;
    /* with nothing live in it (not normally: empty packs are deleted) or its first bodies
     * dead, it moves to a new key: the old one goes now */
    bool moved = p->n == 0 || p->ents[0].id != key;
    if (moved && (rc = pack_delete(w, key)) != 0) return rc;
    if (p->n) p->key = p->ents[0].id;
    p->exists = !moved;
    return 0;
}

int st_body_put(store_txn *w, uint64_t id, const void *data, size_t len)
{
    int rc;
    if (len >= PACK_SOLO && (!w->pack || w->pack->n == 0)) {
        /* straight into a pack of its own (with bodies pending, it ends their pack instead:
         * writing it apart would split their id range) */
        pack_ent e = {.id = id, .off = 0, .len = len};
        return pack_write(w, id, true, &e, 1, data, len);
    }
    if (!w->pack && !(w->pack = calloc(1, sizeof *w->pack))) return -ENOMEM;
    st_pack *p = w->pack;
    if (p->n == 0 && (rc = pending_start(w, p, id)) != 0) return rc;
    if ((rc = pending_add(p, id, data, len)) != 0) return rc;
    if (p->data.len >= PACK_TARGET) return st_body_flush(w);
    return 0;
}

int st_body_get(store_txn *t, uint64_t id, const char **data, size_t *len)
{
    st_pack *p = t->pack;
    if (p && p->n && id >= p->ents[0].id && id <= p->ents[p->n - 1].id) {
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (p->ents[mid].id == id) {
                *data = p->data.data + p->ents[mid].off;
                *len = p->ents[mid].len;
                return 0;
            }
            if (p->ents[mid].id < id)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    uint64_t key = 0;
    MDB_val v;
    pack_ent e;
    int rc = pack_locate(t, id, &key, &v);
    if (rc == 0) rc = pack_find(&v, id, &e);
    if (rc) return rc;
    *data = (const char *)v.mv_data + e.off;
    *len = e.len;
    return 0;
}

int st_body_drop(store_txn *w, uint64_t id, uint64_t *len)
{
    *len = 0;
    int rc = st_body_flush(w); /* the body may be pending; from here on all are stored */
    if (rc) return rc;
    uint64_t key = 0, n;
    MDB_val v;
    pack_ent e;
    if ((rc = pack_locate(w, id, &key, &v)) || (rc = pack_find(&v, id, &e))) return rc;
    *len = e.len;
    pack_stat st;
    if ((rc = stat_get(w, key, &st)) != 0) return rc;
    if (st.live == 0 || st.live_bytes < e.len) return -EIO;
    st.live--, st.live_bytes -= e.len;
    if (st.live == 0) return pack_delete(w, key);
    if (st.live_bytes * 2 >= st.size) return stat_put(w, key, &st);
    /* under half live: rewrite it with only the live bodies (copied out first: deleting the
     * old value may hand its pages to the new one); the dropped body is already not live */
    if ((rc = pack_header(&v, &n)) != 0) return rc;
    st_pack live = {0};
    rc = copy_live(w, &v, n, false, id, &live);
    if (rc == 0 && (live.n != st.live || live.data.len != st.live_bytes)) rc = -EIO;
    if (rc == 0) rc = pack_delete(w, key);
    if (rc == 0)
        rc =
            pack_write(w, live.ents[0].id, false, live.ents, live.n, live.data.data, live.data.len);
    free(live.ents);
    mfs_buf_free(&live.data);
    return rc;
}

/* ---- checking ----------------------------------------------------------------------------- */

int st_packs_check(store_txn *t, void (*fail)(void *ctx, const char *msg), void *ctx)
{
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_BODIES, "", 0, 0);
    if (rc) return rc;
    char msg[256];
    uint64_t prev_end = 0, packs = 0;
    while (st_iter_next(&it)) {
        const MDB_val *v = &it.v;
        packs++;
        uint64_t key = it.k.mv_size == 8 ? get_be64(it.k.mv_data) : 0, n;
        if (pack_header(v, &n) != 0 || n == 0) {
            snprintf(msg, sizeof msg, "body pack %llu has a damaged header",
                     (unsigned long long)key);
            fail(ctx, msg);
            continue;
        }
        pack_stat want = {.size = v->mv_size}, have;
        uint64_t end = PACK_HDR + n * sizeof(pack_ent), prev_id = 0;
        for (uint64_t i = 0; i < n; i++) {
            pack_ent e = ent_at(v->mv_data, i);
            if ((i == 0 && e.id != key) || (i > 0 && e.id <= prev_id) || e.id < prev_end ||
                e.off < end || e.off > v->mv_size || e.len > v->mv_size - e.off) {
                snprintf(msg, sizeof msg,
                         "body pack %llu: entry %llu (body %llu) is out of order or out of "
                         "bounds",
                         (unsigned long long)key, (unsigned long long)i, (unsigned long long)e.id);
                fail(ctx, msg);
                break;
            }
            prev_id = e.id, end = e.off + e.len;
            if (body_live(t, e.id)) want.live++, want.live_bytes += e.len;
        }
        prev_end = prev_id + 1;
        if ((rc = stat_get(t, key, &have)) != 0) {
            snprintf(msg, sizeof msg, "body pack %llu has no statistics record",
                     (unsigned long long)key);
            fail(ctx, msg);
            continue;
        }
        if (have.live != want.live || have.live_bytes != want.live_bytes ||
            have.size != want.size) {
            snprintf(msg, sizeof msg,
                     "body pack %llu: its record says %u live bodies, %llu live bytes, %llu "
                     "bytes, but it holds %u, %llu, %llu",
                     (unsigned long long)key, have.live, (unsigned long long)have.live_bytes,
                     (unsigned long long)have.size, want.live, (unsigned long long)want.live_bytes,
                     (unsigned long long)want.size);
            fail(ctx, msg);
        }
        if (want.live == 0) {
            snprintf(msg, sizeof msg, "body pack %llu holds no live body but was kept",
                     (unsigned long long)key);
            fail(ctx, msg);
        }
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    MDB_stat ps;
    mdb_stat(t->txn, t->s->dbi[DB_PACKS], &ps);
    if (ps.ms_entries != packs) {
        snprintf(msg, sizeof msg, "%llu body packs but %zu pack records", (unsigned long long)packs,
                 (size_t)ps.ms_entries);
        fail(ctx, msg);
    }
    return 0;
}
