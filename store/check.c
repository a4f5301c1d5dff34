/* check.c: verifying every invariant of a store (mailfs check) */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "store/internal.h"
#include "store/mime.h"

#define REPORT_MAX 200 /* problems reported one by one; the rest are counted */

typedef struct checker {
    store_txn *t;
    void (*problem)(void *ctx, const char *text);
    void *ctx;
    uint64_t problems;
    /* every message's body: (body id, hash), sorted later to count references */
    struct bref {
        uint64_t id;
        uint8_t hash[32];
    } * refs;
    size_t nrefs, caprefs;
} checker;

static void fail(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(checker *c, const char *fmt, ...)
{
    if (++c->problems > REPORT_MAX) return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    c->problem(c->ctx, text);
}

static void pack_fail(void *ctx, const char *msg)
{
    fail(ctx, "%s", msg);
}

static int add_ref(checker *c, uint64_t id, const uint8_t hash[32])
{
    if (c->nrefs == c->caprefs) {
        size_t cap = c->caprefs ? c->caprefs * 2 : 1024;
        struct bref *g = realloc(c->refs, cap * sizeof *g);
        if (!g) return -ENOMEM;
        c->refs = g, c->caprefs = cap;
    }
    c->refs[c->nrefs].id = id;
    memcpy(c->refs[c->nrefs++].hash, hash, 32);
    return 0;
}

static int cmp_ref(const void *a, const void *b)
{
    return memcmp(((const struct bref *)a)->hash, ((const struct bref *)b)->hash, 32);
}

static bool exists(store_txn *t, int db, const void *k, size_t kl)
{
    MDB_val v;
    return st_get(t, db, k, kl, &v) == 0;
}

/* The messages of one mailbox against its record and the indexes. */
static int check_messages(checker *c, uint32_t id, const mbox_rec *r, const char *name,
                          uint64_t seq)
{
    uint8_t kb[8];
    put_be32(kb, id);
    put_be32(kb + 4, 0);
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_MSGS, kb, 8, 4);
    if (rc) return rc;
    uint32_t messages = 0, unseen = 0, deleted = 0, max_uid = 0;
    uint64_t bytes = 0, crlf_bytes = 0;
    while (st_iter_next(&it) && it.k.mv_size == 8) {
        uint32_t uid = get_be32((uint8_t *)it.k.mv_data + 4);
        store_msg m;
        if ((rc = store_msg_get(c->t, id, uid, &m)) != 0) {
            fail(c, "mailbox '%s' (id %u): message UID %u has a damaged record", name, id, uid);
            rc = 0;
            continue;
        }
        messages++;
        unseen += !(m.flags & STORE_F_SEEN);
        deleted += (m.flags & STORE_F_DELETED) != 0;
        bytes += m.size;
        crlf_bytes += m.crlf_size;
        if (uid > max_uid) max_uid = uid;
        if (m.modseq > r->highestmodseq || m.modseq > seq)
            fail(c,
                 "mailbox '%s': UID %u has MODSEQ %llu above HIGHESTMODSEQ %llu or the "
                 "change counter %llu",
                 name, uid, (unsigned long long)m.modseq, (unsigned long long)r->highestmodseq,
                 (unsigned long long)seq);
        uint8_t nk[4 + STORE_COMPONENT_MAX];
        size_t nl = strlen(m.filename);
        put_be32(nk, id);
        memcpy(nk + 4, m.filename, nl);
        MDB_val nv;
        uint32_t named = 0;
        if (st_get(c->t, DB_NAMES, nk, 4 + nl, &nv) == 0 && nv.mv_size == 4)
            memcpy(&named, nv.mv_data, 4);
        if (named != uid)
            fail(c, "mailbox '%s': file name '%s' of UID %u is not indexed to it", name, m.filename,
                 uid);
        uint8_t dk[DUPKEY_LEN];
        put_be32(dk, id);
        put_be64(dk + 4, m.body_id);
        put_be32(dk + 12, uid);
        if (!exists(c->t, DB_DUPS, dk, DUPKEY_LEN))
            fail(c, "mailbox '%s': UID %u is missing from the duplicate index", name, uid);
        if ((rc = add_ref(c, m.body_id, m.body_hash)) != 0) break;
    }
    if ((rc = st_iter_end(&it, rc)) != 0) return rc;
    if (messages != r->messages || unseen != r->unseen || deleted != r->deleted ||
        bytes != r->bytes || crlf_bytes != r->crlf_bytes)
        fail(c,
             "mailbox '%s': counts say %u messages, %u unseen, %u deleted, %llu bytes, "
             "%llu CRLF bytes; the messages are %u, %u, %u, %llu, %llu",
             name, r->messages, r->unseen, r->deleted, (unsigned long long)r->bytes,
             (unsigned long long)r->crlf_bytes, messages, unseen, deleted,
             (unsigned long long)bytes, (unsigned long long)crlf_bytes);
    if (max_uid >= r->uidnext)
        fail(c, "mailbox '%s': UIDNEXT %u is not above the largest UID %u", name, r->uidnext,
             max_uid);
    return 0;
}

static int check_mailboxes(checker *c, uint64_t seq, store_check_counts *n)
{
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_MBOXES, "", 0, 0);
    if (rc) return rc;
    uint32_t next = (uint32_t)st_meta_u64(c->t, "next_mbox", 1);
    while (rc == 0 && st_iter_next(&it)) {
        uint32_t id = it.k.mv_size == 4 ? get_be32(it.k.mv_data) : 0;
        mbox_rec r;
        char name[STORE_NAME_MAX + 1];
        if (!id || st_mbox_get(c->t, id, &r, name, sizeof name) != 0) {
            fail(c, "a mailbox record (id %u) is damaged", id);
            continue;
        }
        n->mailboxes++;
        if (id >= next) fail(c, "mailbox '%s' has id %u, not below next_mbox %u", name, id, next);
        const char *why;
        if (store_mailbox_name_check(name, &why) != 0)
            fail(c, "mailbox id %u has an invalid name '%s': %s", id, name, why);
        uint8_t nk[4 + STORE_NAME_MAX];
        size_t nl = strlen(name);
        put_be32(nk, r.user_id);
        memcpy(nk + 4, name, nl);
        MDB_val iv;
        uint32_t indexed = 0;
        if (st_get(c->t, DB_MBOXNAMES, nk, 4 + nl, &iv) == 0 && iv.mv_size == 4)
            memcpy(&indexed, iv.mv_data, 4);
        if (indexed != id) fail(c, "mailbox '%s' (id %u) is not in the name index", name, id);
        char *slash = strrchr(name, '/');
        if (slash) {
            put_be32(nk, r.user_id);
            memcpy(nk + 4, name, (size_t)(slash - name));
            if (!exists(c->t, DB_MBOXNAMES, nk, 4 + (size_t)(slash - name)))
                fail(c, "mailbox '%s' has no parent mailbox", name);
        }
        if (r.highestmodseq == 0 || r.highestmodseq > seq)
            fail(c, "mailbox '%s': HIGHESTMODSEQ %llu is 0 or above the change counter %llu", name,
                 (unsigned long long)r.highestmodseq, (unsigned long long)seq);
        if (r.uidvalidity == 0) fail(c, "mailbox '%s' has UIDVALIDITY 0", name);
        rc = check_messages(c, id, &r, name, seq);
    }
    return st_iter_end(&it, rc);
}

/* Every index entry must point back at what it indexes. */
static int check_indexes(checker *c, uint64_t messages)
{
    uint64_t names = 0, dups = 0;
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_MBOXNAMES, "", 0, 0);
    if (rc) return rc;
    while (st_iter_next(&it)) {
        uint32_t id = 0;
        if (it.v.mv_size == 4) memcpy(&id, it.v.mv_data, 4);
        mbox_rec r;
        if (it.k.mv_size < 4 || st_mbox_get(c->t, id, &r, NULL, 0) != 0 ||
            r.user_id != get_be32(it.k.mv_data))
            fail(c, "mailbox name '%.*s' is indexed to a missing mailbox %u",
                 (int)(it.k.mv_size > 4 ? it.k.mv_size - 4 : 0), (char *)it.k.mv_data + 4, id);
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    if ((rc = st_iter_begin(&it, c->t, DB_NAMES, "", 0, 0)) != 0) return rc;
    while (st_iter_next(&it)) {
        names++;
        uint32_t uid = 0;
        if (it.v.mv_size == 4) memcpy(&uid, it.v.mv_data, 4);
        store_msg m;
        size_t nl = it.k.mv_size - 4;
        if (it.k.mv_size < 4 || store_msg_get(c->t, get_be32(it.k.mv_data), uid, &m) != 0 ||
            strlen(m.filename) != nl || memcmp(m.filename, (char *)it.k.mv_data + 4, nl) != 0)
            fail(c, "file name '%.*s' in mailbox %u is indexed to UID %u, which does not have it",
                 (int)nl, (char *)it.k.mv_data + 4, it.k.mv_size >= 4 ? get_be32(it.k.mv_data) : 0,
                 uid);
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    if ((rc = st_iter_begin(&it, c->t, DB_DUPS, "", 0, 0)) != 0) return rc;
    while (st_iter_next(&it)) {
        dups++;
        store_msg m;
        const uint8_t *p = it.k.mv_data;
        bool ok = it.k.mv_size == DUPKEY_LEN;
        if (!ok || store_msg_get(c->t, get_be32(p), get_be32(p + 12), &m) != 0 ||
            m.body_id != get_be64(p + 4))
            fail(c, "the duplicate index names a message that is not there (mailbox %u UID %u)",
                 ok ? get_be32(p) : 0, ok ? get_be32(p + 12) : 0);
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    if (names != messages)
        fail(c, "%llu file names for %llu messages", (unsigned long long)names,
             (unsigned long long)messages);
    if (dups != messages)
        fail(c, "%llu duplicate-index entries for %llu messages", (unsigned long long)dups,
             (unsigned long long)messages);
    return 0;
}

/* Bodies: reference counts, presence, hashes, summaries and the byte total. */
static int check_bodies(checker *c, store_check_counts *n)
{
    if (c->nrefs) qsort(c->refs, c->nrefs, sizeof *c->refs, cmp_ref); /* refs is NULL if 0 */
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_BODYIDS, "", 0, 0);
    if (rc) return rc;
    size_t at = 0;
    uint64_t total = 0, next = st_meta_u64(c->t, "next_body", 1);
    while (st_iter_next(&it)) {
        bodyref_rec ref;
        if (it.k.mv_size != 32 || it.v.mv_size != sizeof ref) {
            fail(c, "a body index record is damaged");
            continue;
        }
        memcpy(&ref, it.v.mv_data, sizeof ref);
        n->bodies++;
        while (at < c->nrefs && memcmp(c->refs[at].hash, it.k.mv_data, 32) < 0) {
            fail(c, "a message refers to body %llu, which is not in the body index",
                 (unsigned long long)c->refs[at].id);
            at++;
        }
        uint32_t users = 0;
        for (; at < c->nrefs && memcmp(c->refs[at].hash, it.k.mv_data, 32) == 0; at++) {
            users++;
            if (c->refs[at].id != ref.id)
                fail(c, "a message refers to body %llu by a hash that belongs to body %llu",
                     (unsigned long long)c->refs[at].id, (unsigned long long)ref.id);
        }
        if (users != ref.refs)
            fail(c, "body %llu has reference count %u but %u messages use it",
                 (unsigned long long)ref.id, ref.refs, users);
        if (ref.id >= next)
            fail(c, "body %llu is not below next_body %llu", (unsigned long long)ref.id,
                 (unsigned long long)next);
        uint8_t ik[8];
        put_be64(ik, ref.id);
        MDB_val s;
        const char *bytes;
        size_t blen;
        if (st_body_get(c->t, ref.id, &bytes, &blen) != 0) {
            fail(c, "body %llu has no bytes", (unsigned long long)ref.id);
            continue;
        }
        total += blen;
        uint8_t h[32];
        unsigned hl = 32;
        if (EVP_Digest(bytes, blen, h, &hl, EVP_sha256(), NULL) != 1 ||
            memcmp(h, it.k.mv_data, 32) != 0)
            fail(c, "body %llu does not match its SHA-256 (the bytes are damaged)",
                 (unsigned long long)ref.id);
        uint64_t crlf;
        uint32_t lines;
        if (st_get(c->t, DB_BODYINFO, ik, 8, &s) != 0 || s.mv_size < sizeof(body_rec) ||
            store_mime_totals((char *)s.mv_data + sizeof(body_rec), s.mv_size - sizeof(body_rec),
                              &crlf, &lines) != 0)
            fail(c, "body %llu has no readable MIME summary", (unsigned long long)ref.id);
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    for (; at < c->nrefs; at++)
        fail(c, "a message refers to body %llu, which is not in the body index",
             (unsigned long long)c->refs[at].id);
    MDB_stat is;
    mdb_stat(c->t->txn, c->t->s->dbi[DB_BODYINFO], &is);
    if (is.ms_entries != n->bodies)
        fail(c, "%llu bodies are indexed but %zu have summaries (orphans)",
             (unsigned long long)n->bodies, (size_t)is.ms_entries);
    if ((rc = st_packs_check(c->t, pack_fail, c)) != 0) return rc;
    uint64_t meta = st_meta_u64(c->t, "body_bytes", 0);
    if (meta != total)
        fail(c, "the body byte total says %llu but the bodies hold %llu", (unsigned long long)meta,
             (unsigned long long)total);
    return 0;
}

static int check_feed(checker *c, uint64_t seq, store_check_counts *n)
{
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_CHANGES, "", 0, 0);
    if (rc) return rc;
    uint64_t prev = 0, min = st_meta_u64(c->t, "feed_min", 1);
    while (st_iter_next(&it)) {
        uint64_t s = it.k.mv_size == 8 ? get_be64(it.k.mv_data) : 0;
        change_rec r = {0};
        if (it.v.mv_size == sizeof r) memcpy(&r, it.v.mv_data, sizeof r);
        n->changes++;
        if (s <= prev || s > seq || s < min)
            fail(c, "change %llu is out of order (after %llu, counter %llu, oldest kept %llu)",
                 (unsigned long long)s, (unsigned long long)prev, (unsigned long long)seq,
                 (unsigned long long)min);
        if (r.kind < STORE_CH_APPEND || r.kind > STORE_CH_USER)
            fail(c, "change %llu has an unknown kind %u", (unsigned long long)s, r.kind);
        prev = s;
    }
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    if (seq && prev != seq)
        fail(c, "the change counter is %llu but the last change recorded is %llu",
             (unsigned long long)seq, (unsigned long long)prev);
    return 0;
}

typedef struct user_ids {
    uint32_t *v;
    size_t n, cap;
} user_ids;

static int collect_user(void *ctx, const char *name, uint32_t id)
{
    user_ids *u = ctx;
    (void)name;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        uint32_t *g = realloc(u->v, cap * sizeof *g);
        if (!g) return -ENOMEM;
        u->v = g, u->cap = cap;
    }
    u->v[u->n++] = id;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Each subscription: a valid, normalized mailbox name of an existing user, with no value. */
static int check_subscriptions(checker *c, user_ids *users, store_check_counts *n)
{
    if (users->n) qsort(users->v, users->n, sizeof *users->v, cmp_u32);
    st_iter it;
    int rc = st_iter_begin(&it, c->t, DB_SUBS, "", 0, 0);
    if (rc) return rc;
    while (st_iter_next(&it)) {
        n->subscriptions++;
        size_t nl = it.k.mv_size > 4 ? it.k.mv_size - 4 : 0;
        if (nl == 0 || nl > STORE_NAME_MAX) {
            fail(c, "a subscription record is damaged (key of %zu bytes)", it.k.mv_size);
            continue;
        }
        uint32_t user = get_be32(it.k.mv_data);
        char name[STORE_NAME_MAX + 1];
        memcpy(name, (char *)it.k.mv_data + 4, nl);
        name[nl] = 0;
        const char *why = NULL;
        if (strlen(name) != nl)
            why = "the name holds a NUL byte";
        else if (store_mailbox_name_check(name, &why) == 0 && strncasecmp(name, "INBOX", 5) == 0 &&
                 (name[5] == 0 || name[5] == '/') && memcmp(name, "INBOX", 5) != 0)
            why = "INBOX is not written in capitals";
        if (why) fail(c, "subscription '%s' of user %u is not a valid name: %s", name, user, why);
        if (it.v.mv_size != 0)
            fail(c, "subscription '%s' of user %u has a value of %zu bytes", name, user,
                 it.v.mv_size);
        if (!users->n || !bsearch(&user, users->v, users->n, sizeof *users->v, cmp_u32))
            fail(c, "subscription '%s' belongs to user %u, who does not exist", name, user);
    }
    return st_iter_end(&it, 0);
}

/* Each kept tree (files.c) belongs to an existing user and one of that user's mailboxes. */
typedef struct files_check {
    checker *c;
    store *s;
    user_ids *users;
} files_check;

static int files_cb(void *ctx, uint32_t user_id, uint32_t mailbox_id)
{
    files_check *f = ctx;
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "'%s/files/%u'", store_dir(f->s), user_id);
    if (user_id == 0) {
        fail(f->c, "'%s/files' holds a name that is no user id: kept files go in files/USER_ID",
             store_dir(f->s));
        return 0;
    }
    bool known =
        f->users->n && bsearch(&user_id, f->users->v, f->users->n, sizeof *f->users->v, cmp_u32);
    if (mailbox_id == STORE_FILES_USER) {
        if (!known)
            fail(f->c, "kept files in %s belong to user %u, who does not exist: move them away",
                 where, user_id);
        return 0;
    }
    if (!known) return 0; /* said once for the user */
    if (mailbox_id == 0) {
        fail(f->c, "%s holds a name that is no mailbox id", where);
        return 0;
    }
    store_mailbox mb;
    int rc = store_mailbox_get_id(f->c->t, mailbox_id, &mb);
    if (rc == -ENOENT || (rc == 0 && mb.user_id != user_id)) {
        uint64_t n = 0;
        store_files_count(f->s, user_id, mailbox_id, &n);
        fail(f->c,
             "kept files in '%s/files/%u/%u' (%llu entries) belong to mailbox %u, which user %u "
             "does not have: move them away",
             store_dir(f->s), user_id, mailbox_id, (unsigned long long)n, mailbox_id, user_id);
        return 0;
    }
    return rc;
}

int store_check(store *s, void (*problem)(void *ctx, const char *text), void *ctx,
                store_check_counts *counts)
{
    store_check_counts n = {0};
    checker c = {.problem = problem, .ctx = ctx};
    int rc = store_read_begin(s, &c.t);
    if (rc) return rc;
    uint64_t seq = store_change_seq(c.t);
    user_ids users = {0};
    rc = store_user_list(c.t, collect_user, &users);
    n.users = users.n;
    if (rc == 0) rc = check_feed(&c, seq, &n);
    if (rc == 0) rc = check_mailboxes(&c, seq, &n);
    n.messages = c.nrefs;
    if (rc == 0) rc = check_indexes(&c, n.messages);
    if (rc == 0) rc = check_bodies(&c, &n);
    if (rc == 0) rc = check_subscriptions(&c, &users, &n);
    files_check fc = {&c, s, &users};
    if (rc == 0) rc = st_files_list(s, files_cb, &fc);
    store_read_end(&c.t);
    free(c.refs);
    free(users.v);
    if (c.problems > REPORT_MAX) {
        char text[128];
        snprintf(text, sizeof text, "... and %llu more problems",
                 (unsigned long long)(c.problems - REPORT_MAX));
        problem(ctx, text);
    }
    if (counts) *counts = n;
    if (rc) return rc;
    return c.problems ? -EIO : 0;
}
