/* msg.c: messages: append with shared bodies, copy, move, expunge, flags, lookups */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "store/internal.h"
#include "store/mime.h"

#define MSGREC_MAX (sizeof(msg_rec) + STORE_COMPONENT_MAX + 1 + STORE_KEYWORDS_MAX + 1)

static void msgkey(uint8_t k[8], uint32_t mailbox_id, uint32_t uid)
{
    put_be32(k, mailbox_id);
    put_be32(k + 4, uid);
}

static size_t namekey(uint8_t *k, uint32_t mailbox_id, const char *name)
{
    size_t n = strlen(name);
    put_be32(k, mailbox_id);
    memcpy(k + 4, name, n);
    return 4 + n;
}

static void dupkey(uint8_t k[DUPKEY_LEN], uint32_t mailbox_id, uint64_t body_id, uint32_t uid)
{
    put_be32(k, mailbox_id);
    put_be64(k + 4, body_id);
    put_be32(k + 12, uid);
}

/* Fills OUT from a stored record (pointers into the map). */
static int decode(uint32_t mailbox_id, uint32_t uid, const MDB_val *v, store_msg *out)
{
    msg_rec r;
    if (v->mv_size < sizeof r) return -EIO;
    memcpy(&r, v->mv_data, sizeof r);
    if (v->mv_size != sizeof r + r.name_len + 1u + r.kw_len + 1u) return -EIO;
    const char *p = (const char *)v->mv_data + sizeof r;
    *out = (store_msg){
        .mailbox_id = mailbox_id,
        .uid = uid,
        .flags = r.flags,
        .tz_min = r.tz_min,
        .modseq = r.modseq,
        .internaldate = r.internaldate,
        .savedate = r.savedate,
        .ctime_ns = r.ctime_ns,
        .size = r.size,
        .crlf_size = r.crlf_size,
        .lines = r.lines,
        .filename = p,
        .keywords = p + r.name_len + 1,
    };
    memcpy(out->body_hash, r.hash, 32);
    out->body_id = r.body_id;
    return 0;
}

static int put_msg(store_txn *w, const store_msg *m)
{
    uint8_t k[8], v[MSGREC_MAX];
    size_t nl = strlen(m->filename), kl = m->keywords ? strlen(m->keywords) : 0;
    if (nl > STORE_COMPONENT_MAX || kl > STORE_KEYWORDS_MAX) return -EINVAL;
    msg_rec r = {.flags = m->flags,
                 .tz_min = m->tz_min,
                 .name_len = (uint16_t)nl,
                 .kw_len = (uint16_t)kl,
                 .lines = m->lines,
                 .modseq = m->modseq,
                 .internaldate = m->internaldate,
                 .savedate = m->savedate,
                 .ctime_ns = m->ctime_ns,
                 .size = m->size,
                 .crlf_size = m->crlf_size};
    memcpy(r.hash, m->body_hash, 32);
    r.body_id = m->body_id;
    memcpy(v, &r, sizeof r);
    memcpy(v + sizeof r, m->filename, nl + 1);
    memcpy(v + sizeof r + nl + 1, kl ? m->keywords : "", kl + 1);
    msgkey(k, m->mailbox_id, m->uid);
    return st_put(w, DB_MSGS, k, 8, v, sizeof r + nl + 1 + kl + 1);
}

int store_msg_get(store_txn *t, uint32_t mailbox_id, uint32_t uid, store_msg *out)
{
    uint8_t k[8];
    MDB_val v;
    msgkey(k, mailbox_id, uid);
    int rc = st_get_next(t, DB_MSGS, k, 8, &v);
    if (rc) return rc;
    return decode(mailbox_id, uid, &v, out);
}

int store_msg_by_name(store_txn *t, uint32_t mailbox_id, const char *filename, store_msg *out)
{
    uint8_t k[4 + STORE_COMPONENT_MAX];
    MDB_val v;
    if (st_filename_check(filename) != 0) return -ENOENT;
    int rc = st_get(t, DB_NAMES, k, namekey(k, mailbox_id, filename), &v);
    if (rc) return rc;
    uint32_t uid;
    if (v.mv_size != 4) return -EIO;
    memcpy(&uid, v.mv_data, 4);
    return store_msg_get(t, mailbox_id, uid, out);
}

int store_msg_list(store_txn *t, uint32_t mailbox_id, uint32_t first_uid,
                   int (*cb)(void *ctx, const store_msg *m), void *ctx)
{
    uint8_t kb[8];
    msgkey(kb, mailbox_id, first_uid);
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_MSGS, kb, 8, 4);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it) && it.k.mv_size == 8) {
        store_msg m;
        rc = decode(mailbox_id, get_be32((uint8_t *)it.k.mv_data + 4), &it.v, &m);
        if (rc == 0) rc = cb(ctx, &m);
    }
    return st_iter_end(&it, rc);
}

int store_msg_body(store_txn *t, const store_msg *m, const char **data, size_t *len)
{
    int rc = st_body_get(t, m->body_id, data, len);
    return rc == -ENOENT ? -EIO : rc;
}

int store_msg_summary(store_txn *t, const store_msg *m, const void **blob, size_t *len)
{
    MDB_val v;
    uint8_t k[8];
    put_be64(k, m->body_id);
    int rc = st_get_next(t, DB_BODYINFO, k, 8, &v);
    if (rc) return rc == -ENOENT ? -EIO : rc;
    if (v.mv_size < sizeof(body_rec)) return -EIO;
    *blob = (const char *)v.mv_data + sizeof(body_rec);
    *len = v.mv_size - sizeof(body_rec);
    return 0;
}

int store_msg_prepare(const void *data, size_t len, store_prepared *out)
{
    memset(out, 0, sizeof *out);
    unsigned hl = 32;
    if (EVP_Digest(data, len, out->hash, &hl, EVP_sha256(), NULL) != 1) return -EIO;
    int rc = store_mime_summarize(data, len, &out->summary, &out->summary_len);
    if (rc) return rc;
    out->crlf_size = len;
    store_mime_totals(out->summary, out->summary_len, &out->crlf_size, &out->lines);
    return 0;
}

void store_prepared_clear(store_prepared *p)
{
    free(p->summary);
    memset(p, 0, sizeof *p);
}

/* Adds one reference to the body with HASH, storing DATA (with its summary: PREP's, or made
 * now) if it is new. *ID gets the body's id, *INFO its sizes. */
static int body_ref(store_txn *w, const uint8_t hash[32], const void *data, size_t len,
                    const store_prepared *prep, uint64_t *id, body_rec *info)
{
    MDB_val v;
    bodyref_rec ref;
    uint8_t k[8];
    int rc = st_get(w, DB_BODYIDS, hash, 32, &v);
    if (rc == 0) {
        if (v.mv_size != sizeof ref) return -EIO;
        memcpy(&ref, v.mv_data, sizeof ref);
        ref.refs++;
        if ((rc = st_put(w, DB_BODYIDS, hash, 32, &ref, sizeof ref)) != 0) return rc;
        put_be64(k, ref.id);
        if ((rc = st_get(w, DB_BODYINFO, k, 8, &v)) != 0 || v.mv_size < sizeof *info)
            return rc ? (rc == -ENOENT ? -EIO : rc) : -EIO;
        memcpy(info, v.mv_data, sizeof *info);
        *id = ref.id;
        return 0;
    }
    if (rc != -ENOENT || !data) return rc == -ENOENT ? -EIO : rc;
    ref = (bodyref_rec){.id = st_meta_u64(w, "next_body", 1), .refs = 1};
    if ((rc = st_meta_put_u64(w, "next_body", ref.id + 1)) ||
        (rc = st_put(w, DB_BODYIDS, hash, 32, &ref, sizeof ref)))
        return rc;
    store_prepared own = {0};
    if (!prep) {
        if ((rc = store_msg_prepare(data, len, &own)) != 0) return rc;
        prep = &own;
    }
    const void *blob = prep->summary;
    size_t bloblen = prep->summary_len;
    *info = (body_rec){.lines = prep->lines, .crlf_size = prep->crlf_size};
    put_be64(k, ref.id);
    /* reserve the space and write straight into it: ids grow, so MDB_APPEND fills pages */
    MDB_val key = {8, k}, val = {sizeof *info + bloblen, NULL};
    int mrc = mdb_put(w->txn, w->s->dbi[DB_BODYINFO], &key, &val, MDB_RESERVE | MDB_APPEND);
    if (mrc == 0) {
        memcpy(val.mv_data, info, sizeof *info);
        memcpy((char *)val.mv_data + sizeof *info, blob, bloblen);
    }
    store_prepared_clear(&own);
    if (mrc) return st_err(w, mrc);
    if ((rc = st_body_put(w, ref.id, data, len)) != 0) return rc;
    *id = ref.id;
    return st_meta_put_u64(w, "body_bytes", st_meta_u64(w, "body_bytes", 0) + len);
}

static int body_unref(store_txn *w, const uint8_t hash[32])
{
    MDB_val v;
    bodyref_rec ref;
    int rc = st_get(w, DB_BODYIDS, hash, 32, &v);
    if (rc) return rc == -ENOENT ? 0 : rc; /* already gone: nothing to release */
    if (v.mv_size != sizeof ref) return -EIO;
    memcpy(&ref, v.mv_data, sizeof ref);
    if (ref.refs > 1) {
        ref.refs--;
        return st_put(w, DB_BODYIDS, hash, 32, &ref, sizeof ref);
    }
    uint8_t k[8];
    put_be64(k, ref.id);
    uint64_t len = 0;
    if ((rc = st_del(w, DB_BODYIDS, hash, 32)) != 0) return rc;
    rc = st_del(w, DB_BODYINFO, k, 8); /* first: a body without it is dead in its pack */
    if (rc == 0) rc = st_body_drop(w, ref.id, &len);
    if (rc && rc != -ENOENT) return rc;
    uint64_t total = st_meta_u64(w, "body_bytes", 0);
    return st_meta_put_u64(w, "body_bytes", total > len ? total - len : 0);
}

/* Picks a free file name: the given one (-EEXIST if taken) or "%010u.eml" from the UID. */
static int pick_name(store_txn *w, uint32_t mailbox_id, uint32_t uid, const char *want,
                     char out[STORE_COMPONENT_MAX + 1])
{
    uint8_t k[4 + STORE_COMPONENT_MAX];
    MDB_val v;
    if (want) {
        if (st_filename_check(want) != 0) return -EINVAL;
        if (st_get(w, DB_NAMES, k, namekey(k, mailbox_id, want), &v) == 0) return -EEXIST;
        strcpy(out, want);
        return 0;
    }
    snprintf(out, STORE_COMPONENT_MAX + 1, "%010u.eml", uid);
    for (unsigned i = 2; st_get(w, DB_NAMES, k, namekey(k, mailbox_id, out), &v) == 0; i++) {
        if (i > 1000) return -EEXIST;
        snprintf(out, STORE_COMPONENT_MAX + 1, "%010u-%u.eml", uid, i);
    }
    return 0;
}

/* Adds message M (uid, name and flags set) to its mailbox: tables, counts, feed. */
static int link_msg(store_txn *w, store_msg *m, int kind)
{
    mbox_rec r;
    char mname[STORE_NAME_MAX + 1];
    int rc = st_mbox_get(w, m->mailbox_id, &r, mname, sizeof mname);
    if (rc) return rc;
    uint64_t seq;
    if ((rc = st_feed_add(w, kind, r.user_id, m->mailbox_id, m->uid, &seq)) != 0) return rc;
    m->modseq = seq;
    uint8_t nk[4 + STORE_COMPONENT_MAX], dk[DUPKEY_LEN];
    if ((rc = put_msg(w, m)) ||
        (rc = st_put(w, DB_NAMES, nk, namekey(nk, m->mailbox_id, m->filename), &m->uid, 4)))
        return rc;
    dupkey(dk, m->mailbox_id, m->body_id, m->uid);
    if ((rc = st_put(w, DB_DUPS, dk, DUPKEY_LEN, "", 0)) != 0) return rc;
    r.messages++;
    if (!(m->flags & STORE_F_SEEN)) r.unseen++;
    if (m->flags & STORE_F_DELETED) r.deleted++;
    r.bytes += m->size;
    r.crlf_bytes += m->crlf_size;
    if (m->uid >= r.uidnext) r.uidnext = m->uid + 1;
    r.highestmodseq = seq;
    r.mtime_ns = r.ctime_ns = st_now_ns();
    return st_mbox_put(w, m->mailbox_id, &r, mname);
}

static int has_duplicate(store_txn *w, uint32_t mailbox_id, const uint8_t hash[32])
{
    MDB_val v;
    bodyref_rec ref;
    int rc = st_get(w, DB_BODYIDS, hash, 32, &v);
    if (rc) return rc == -ENOENT ? 0 : rc; /* bytes nowhere in the store */
    if (v.mv_size != sizeof ref) return -EIO;
    memcpy(&ref, v.mv_data, sizeof ref);
    uint8_t kb[DUPKEY_LEN];
    dupkey(kb, mailbox_id, ref.id, 0);
    st_iter it; /* any UID of this mailbox with this body */
    if ((rc = st_iter_begin(&it, w, DB_DUPS, kb, DUPKEY_LEN, 12)) != 0) return rc;
    bool dup = st_iter_next(&it) && it.k.mv_size == DUPKEY_LEN;
    return (rc = st_iter_end(&it, 0)) != 0 ? rc : dup;
}

static int normalize_keywords(const char *in, char *out, size_t outlen)
{
    uint32_t f = 0;
    if (!in || !*in) {
        out[0] = 0;
        return 0;
    }
    int rc = store_flags_parse(in, strlen(in), &f, out, outlen, NULL);
    return rc;
}

int store_msg_append(store_txn *w, uint32_t mailbox_id, const void *data, size_t len,
                     const store_append *opt, store_msg *out)
{
    static const store_append none = {0};
    if (!opt) opt = &none;
    if (len > w->s->msg_max) return -EFBIG;
    mbox_rec r;
    int rc = st_mbox_get(w, mailbox_id, &r, NULL, 0);
    if (rc) return rc;
    if (r.uidnext == UINT32_MAX) return -ENOSPC;
    store_msg m = {.mailbox_id = mailbox_id,
                   .uid = r.uidnext,
                   .flags = opt->flags & STORE_F_ALL,
                   .tz_min = opt->tz_min,
                   .size = len};
    if (opt->prepared) {
        memcpy(m.body_hash, opt->prepared->hash, 32);
    } else {
        unsigned hl = 32;
        if (EVP_Digest(data, len, m.body_hash, &hl, EVP_sha256(), NULL) != 1) return -EIO;
    }
    if (opt->skip_duplicate && (rc = has_duplicate(w, mailbox_id, m.body_hash)) != 0)
        return rc == 1 ? -EEXIST : rc;
    char kw[STORE_KEYWORDS_MAX + 1], name[STORE_COMPONENT_MAX + 1];
    if ((rc = normalize_keywords(opt->keywords, kw, sizeof kw)) != 0) return rc;
    if ((rc = pick_name(w, mailbox_id, m.uid, opt->filename, name)) != 0) return rc;
    body_rec info;
    if ((rc = body_ref(w, m.body_hash, data, len, opt->prepared, &m.body_id, &info)) != 0)
        return rc;
    int64_t now = st_now_ns();
    m.crlf_size = info.crlf_size;
    m.lines = info.lines;
    m.internaldate = opt->internaldate ? opt->internaldate : now / 1000000000;
    m.savedate = now / 1000000000;
    m.ctime_ns = now;
    m.filename = name;
    m.keywords = kw;
    if ((rc = link_msg(w, &m, STORE_CH_APPEND)) != 0) return rc;
    /* the names in M point at this stack frame: hand out the stored copy instead */
    return out ? store_msg_get(w, mailbox_id, m.uid, out) : 0;
}

int store_msg_copy(store_txn *w, uint32_t mailbox_id, uint32_t uid, uint32_t dst_mailbox_id,
                   const char *filename, store_msg *out)
{
    store_msg m;
    int rc = store_msg_get(w, mailbox_id, uid, &m);
    if (rc) return rc;
    mbox_rec dst;
    if ((rc = st_mbox_get(w, dst_mailbox_id, &dst, NULL, 0)) != 0) return rc;
    if (dst.uidnext == UINT32_MAX) return -ENOSPC;
    char kw[STORE_KEYWORDS_MAX + 1], name[STORE_COMPONENT_MAX + 1];
    snprintf(kw, sizeof kw, "%s", m.keywords);
    if ((rc = pick_name(w, dst_mailbox_id, dst.uidnext, filename, name)) != 0) return rc;
    body_rec info;
    if ((rc = body_ref(w, m.body_hash, NULL, 0, NULL, &m.body_id, &info)) != 0) return rc;
    m.mailbox_id = dst_mailbox_id;
    m.uid = dst.uidnext;
    m.filename = name;
    m.keywords = kw;
    int64_t now = st_now_ns();
    m.savedate = now / 1000000000;
    m.ctime_ns = now;
    if ((rc = link_msg(w, &m, STORE_CH_APPEND)) != 0) return rc;
    return out ? store_msg_get(w, dst_mailbox_id, m.uid, out) : 0;
}

int store_msg_expunge(store_txn *w, uint32_t mailbox_id, uint32_t uid)
{
    store_msg m;
    int rc = store_msg_get(w, mailbox_id, uid, &m);
    if (rc) return rc;
    mbox_rec r;
    char mname[STORE_NAME_MAX + 1];
    if ((rc = st_mbox_get(w, mailbox_id, &r, mname, sizeof mname)) != 0) return rc;
    uint8_t k[8], nk[4 + STORE_COMPONENT_MAX], dk[DUPKEY_LEN];
    uint8_t hash[32];
    memcpy(hash, m.body_hash, 32);
    uint32_t flags = m.flags;
    uint64_t size = m.size, crlf_size = m.crlf_size;
    size_t nkl = namekey(nk, mailbox_id, m.filename); /* before the record goes */
    dupkey(dk, mailbox_id, m.body_id, uid);
    msgkey(k, mailbox_id, uid);
    uint64_t seq;
    if ((rc = st_del(w, DB_NAMES, nk, nkl)) || (rc = st_del(w, DB_MSGS, k, 8))) return rc;
    rc = st_del(w, DB_DUPS, dk, DUPKEY_LEN);
    if (rc && rc != -ENOENT) return rc;
    if ((rc = body_unref(w, hash)) != 0) return rc;
    if ((rc = st_feed_add(w, STORE_CH_EXPUNGE, r.user_id, mailbox_id, uid, &seq)) != 0) return rc;
    if ((rc = st_put(w, DB_EXPUNGED, k, 8, &seq, 8)) != 0) return rc;
    r.messages--;
    if (!(flags & STORE_F_SEEN)) r.unseen--;
    if (flags & STORE_F_DELETED) r.deleted--;
    r.bytes -= size;
    r.crlf_bytes -= crlf_size;
    r.highestmodseq = seq;
    r.mtime_ns = r.ctime_ns = st_now_ns();
    return st_mbox_put(w, mailbox_id, &r, mname);
}

int store_msg_move(store_txn *w, uint32_t mailbox_id, uint32_t uid, uint32_t dst_mailbox_id,
                   const char *filename, store_msg *out)
{
    store_msg copy;
    int rc = store_msg_copy(w, mailbox_id, uid, dst_mailbox_id, filename, &copy);
    if (rc) return rc;
    uint32_t new_uid = copy.uid;
    if ((rc = store_msg_expunge(w, mailbox_id, uid)) != 0) return rc;
    return out ? store_msg_get(w, dst_mailbox_id, new_uid, out) : 0;
}

int store_msg_rename(store_txn *w, uint32_t mailbox_id, uint32_t uid, const char *filename)
{
    store_msg m;
    int rc = store_msg_get(w, mailbox_id, uid, &m);
    if (rc) return rc;
    if (strcmp(m.filename, filename) == 0) return 0;
    char name[STORE_COMPONENT_MAX + 1], kw[STORE_KEYWORDS_MAX + 1];
    if ((rc = pick_name(w, mailbox_id, uid, filename, name)) != 0) return rc;
    snprintf(kw, sizeof kw, "%s", m.keywords);
    uint8_t nk[4 + STORE_COMPONENT_MAX];
    if ((rc = st_del(w, DB_NAMES, nk, namekey(nk, mailbox_id, m.filename))) != 0) return rc;
    mbox_rec r;
    char mname[STORE_NAME_MAX + 1];
    if ((rc = st_mbox_get(w, mailbox_id, &r, mname, sizeof mname)) != 0) return rc;
    uint64_t seq;
    if ((rc = st_feed_add(w, STORE_CH_RENAME_MSG, r.user_id, mailbox_id, uid, &seq)) != 0)
        return rc;
    m.filename = name;
    m.keywords = kw;
    m.ctime_ns = st_now_ns();
    /* a rename is not an IMAP-visible change, so the message's MODSEQ stays */
    if ((rc = put_msg(w, &m)) ||
        (rc = st_put(w, DB_NAMES, nk, namekey(nk, mailbox_id, name), &uid, 4)))
        return rc;
    r.mtime_ns = r.ctime_ns = m.ctime_ns;
    return st_mbox_put(w, mailbox_id, &r, mname);
}

/* Applies OP to the keyword list OLD with ARG, writing the result to OUT. */
static int merge_keywords(int op, const char *old, const char *arg, char *out, size_t outlen)
{
    char a[STORE_KEYWORDS_MAX + 1];
    int rc = normalize_keywords(arg, a, sizeof a);
    if (rc) return rc;
    if (op == STORE_FLAGS_SET) {
        snprintf(out, outlen, "%s", a);
        return 0;
    }
    if (op == STORE_FLAGS_ADD) {
        char joined[2 * STORE_KEYWORDS_MAX + 2];
        snprintf(joined, sizeof joined, "%s %s", old, a);
        return normalize_keywords(joined, out, outlen);
    }
    /* delete: keep each old keyword not named in A */
    size_t n = 0;
    out[0] = 0;
    for (const char *p = old; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        bool drop = false;
        for (const char *q = a; *q && !drop;) {
            const char *qe = strchr(q, ' ');
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            drop = ql == len && strncasecmp(p, q, len) == 0;
            q = qe ? qe + 1 : q + ql;
        }
        if (!drop && len) {
            if (n + len + 2 > outlen) return -E2BIG;
            if (n) out[n++] = ' ';
            memcpy(out + n, p, len);
            n += len;
            out[n] = 0;
        }
        p = e ? e + 1 : p + len;
    }
    return 0;
}

int store_msg_set_flags(store_txn *w, uint32_t mailbox_id, uint32_t uid, int op, uint32_t flags,
                        const char *keywords, uint64_t unchangedsince, store_msg *out)
{
    store_msg m;
    int rc = store_msg_get(w, mailbox_id, uid, &m);
    if (rc) return rc;
    if (unchangedsince && m.modseq > unchangedsince) return -ESTALE;
    flags &= STORE_F_ALL;
    uint32_t nf = op == STORE_FLAGS_SET   ? flags
                  : op == STORE_FLAGS_ADD ? m.flags | flags
                                          : m.flags & ~flags;
    char kw[STORE_KEYWORDS_MAX + 1];
    if ((rc = merge_keywords(op, m.keywords, keywords, kw, sizeof kw)) != 0) return rc;
    if (nf == m.flags && strcmp(kw, m.keywords) == 0) {
        if (out) *out = m;
        return 0;
    }
    mbox_rec r;
    char mname[STORE_NAME_MAX + 1];
    if ((rc = st_mbox_get(w, mailbox_id, &r, mname, sizeof mname)) != 0) return rc;
    uint64_t seq;
    if ((rc = st_feed_add(w, STORE_CH_FLAGS, r.user_id, mailbox_id, uid, &seq)) != 0) return rc;
    char name[STORE_COMPONENT_MAX + 1];
    snprintf(name, sizeof name, "%s", m.filename);
    if ((m.flags ^ nf) & STORE_F_SEEN) nf &STORE_F_SEEN ? r.unseen-- : r.unseen++;
    if ((m.flags ^ nf) & STORE_F_DELETED) nf &STORE_F_DELETED ? r.deleted++ : r.deleted--;
    m.flags = nf;
    m.keywords = kw;
    m.filename = name;
    m.modseq = seq;
    m.ctime_ns = st_now_ns();
    if ((rc = put_msg(w, &m)) != 0) return rc;
    r.highestmodseq = seq;
    r.ctime_ns = m.ctime_ns;
    if ((rc = st_mbox_put(w, mailbox_id, &r, mname)) != 0) return rc;
    return out ? store_msg_get(w, mailbox_id, uid, out) : 0;
}

int store_expunged_list(store_txn *t, uint32_t mailbox_id, uint64_t since,
                        int (*cb)(void *ctx, uint32_t uid, uint64_t modseq), void *ctx)
{
    uint8_t kb[8];
    msgkey(kb, mailbox_id, 0);
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_EXPUNGED, kb, 8, 4);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it) && it.k.mv_size == 8) {
        uint64_t ms;
        if (it.v.mv_size != 8) {
            rc = -EIO;
            break;
        }
        memcpy(&ms, it.v.mv_data, 8);
        if (ms > since) rc = cb(ctx, get_be32((uint8_t *)it.k.mv_data + 4), ms);
    }
    return st_iter_end(&it, rc);
}

/* Deletes every message and expunge record of a mailbox, releasing bodies. No feed entries:
 * the caller records the mailbox's deletion. */
static int purge_body(store_txn *w, const MDB_val *v, void *ctx)
{
    (void)ctx;
    msg_rec r;
    if (v->mv_size < sizeof r) return -EIO;
    memcpy(&r, v->mv_data, sizeof r);
    return body_unref(w, r.hash);
}

int st_msgs_purge(store_txn *w, uint32_t mailbox_id)
{
    static const int tables[] = {DB_MSGS, DB_NAMES, DB_DUPS, DB_EXPUNGED};
    for (size_t ti = 0; ti < sizeof tables / sizeof *tables; ti++) {
        int rc = st_del_prefix(w, tables[ti], mailbox_id, tables[ti] == DB_MSGS ? purge_body : NULL,
                               NULL);
        if (rc) return rc;
    }
    return 0;
}
