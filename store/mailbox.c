/* mailbox.c: a user's mailbox hierarchy: create, delete, rename, subscribe, list */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/buf.h"
#include "store/internal.h"

#define NAMEKEY_MAX (4 + STORE_NAME_MAX)

/* Copies NAME into OUT with a first level of "inbox" in any case written "INBOX". */
static int normalize(const char *name, char *out)
{
    const char *why;
    int rc = store_mailbox_name_check(name, &why);
    if (rc) return rc;
    strcpy(out, name);
    if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == 0 || out[5] == '/'))
        memcpy(out, "INBOX", 5);
    return 0;
}

static size_t namekey(uint8_t *k, uint32_t user_id, const char *name)
{
    size_t n = strlen(name);
    put_be32(k, user_id);
    memcpy(k + 4, name, n);
    return 4 + n;
}

int st_mbox_get(store_txn *t, uint32_t id, mbox_rec *rec, char *name, size_t namelen)
{
    uint8_t k[4];
    put_be32(k, id);
    MDB_val v;
    int rc = st_get(t, DB_MBOXES, k, 4, &v);
    if (rc) return rc;
    if (v.mv_size < sizeof *rec) return -EIO;
    memcpy(rec, v.mv_data, sizeof *rec);
    if (name) {
        size_t n = v.mv_size - sizeof *rec;
        if (n >= namelen) return -EIO;
        memcpy(name, (const char *)v.mv_data + sizeof *rec, n);
        name[n] = 0;
    }
    return 0;
}

int st_mbox_put(store_txn *t, uint32_t id, const mbox_rec *rec, const char *name)
{
    uint8_t k[4], v[sizeof(mbox_rec) + STORE_NAME_MAX];
    size_t n = strlen(name);
    put_be32(k, id);
    memcpy(v, rec, sizeof *rec);
    memcpy(v + sizeof *rec, name, n);
    return st_put(t, DB_MBOXES, k, 4, v, sizeof *rec + n);
}

/* True if NORM (normalized) is in USER_ID's subscription list. */
static bool subscribed(store_txn *t, uint32_t user_id, const char *norm)
{
    uint8_t k[NAMEKEY_MAX];
    MDB_val v;
    return st_get(t, DB_SUBS, k, namekey(k, user_id, norm), &v) == 0;
}

static void fill(store_txn *t, store_mailbox *out, uint32_t id, const mbox_rec *r, const char *name)
{
    out->id = id;
    out->user_id = r->user_id;
    out->uidvalidity = r->uidvalidity;
    out->uidnext = r->uidnext;
    out->highestmodseq = r->highestmodseq;
    out->messages = r->messages;
    out->unseen = r->unseen;
    out->deleted = r->deleted;
    out->bytes = r->bytes;
    out->crlf_bytes = r->crlf_bytes;
    out->special_use = r->special_use;
    out->subscribed = subscribed(t, r->user_id, name);
    out->mtime_ns = r->mtime_ns;
    out->ctime_ns = r->ctime_ns;
    snprintf(out->name, sizeof out->name, "%s", name);
}

static int lookup_id(store_txn *t, uint32_t user_id, const char *norm, uint32_t *id)
{
    uint8_t k[NAMEKEY_MAX];
    MDB_val v;
    int rc = st_get(t, DB_MBOXNAMES, k, namekey(k, user_id, norm), &v);
    if (rc) return rc;
    if (v.mv_size != 4) return -EIO;
    memcpy(id, v.mv_data, 4);
    return 0;
}

int store_mailbox_get_id(store_txn *t, uint32_t mailbox_id, store_mailbox *out)
{
    mbox_rec r;
    char name[STORE_NAME_MAX + 1];
    int rc = st_mbox_get(t, mailbox_id, &r, name, sizeof name);
    if (rc == 0 && out) fill(t, out, mailbox_id, &r, name);
    return rc;
}

int store_mailbox_get(store_txn *t, uint32_t user_id, const char *name, store_mailbox *out)
{
    char norm[STORE_NAME_MAX + 1];
    uint32_t id;
    if (normalize(name, norm) != 0) return -ENOENT;
    int rc = lookup_id(t, user_id, norm, &id);
    if (rc) return rc;
    return store_mailbox_get_id(t, id, out);
}

void store_set_user_limits(store *s, uint32_t mailboxes, uint32_t subscriptions)
{
    s->max_mailboxes = mailboxes < STORE_MAILBOXES_MIN ? STORE_MAILBOXES_MIN : mailboxes;
    s->max_subscriptions = subscriptions;
}

void store_user_limits(const store *s, uint32_t *mailboxes, uint32_t *subscriptions)
{
    if (mailboxes) *mailboxes = s->max_mailboxes;
    if (subscriptions) *subscriptions = s->max_subscriptions;
}

/* 0 if USER_ID may have ADD more names in table DB (mailbox names or subscriptions) under
 * LIMIT, -EDQUOT if not. The walk stops at the limit, so it costs at most LIMIT keys. */
static int room_for(store_txn *t, int db, uint32_t user_id, uint32_t limit, size_t add)
{
    if (add == 0) return 0;
    if (add > limit) return -EDQUOT;
    uint8_t kb[4];
    put_be32(kb, user_id);
    st_iter it;
    int rc = st_iter_begin(&it, t, db, kb, 4, 4);
    if (rc) return rc;
    size_t n = 0, most = limit - add; /* may have this many already */
    while (n <= most && st_iter_next(&it))
        n++;
    if ((rc = st_iter_end(&it, 0)) != 0) return rc;
    return n > most ? -EDQUOT : 0;
}

/* How many of NORM and its parents (with SELF) no mailbox has yet. */
static int missing(store_txn *t, uint32_t user_id, const char *norm, bool self, size_t *n)
{
    char buf[STORE_NAME_MAX + 1];
    strcpy(buf, norm);
    *n = 0;
    uint32_t id;
    for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        int rc = lookup_id(t, user_id, buf, &id);
        if (rc == -ENOENT)
            (*n)++;
        else if (rc)
            return rc;
        *p = '/';
    }
    if (self) {
        int rc = lookup_id(t, user_id, norm, &id);
        if (rc == -ENOENT)
            (*n)++;
        else if (rc)
            return rc;
    }
    return 0;
}

/* -EDQUOT if making NORM (with SELF) and its missing parents would pass the mailbox limit. */
static int mailbox_room(store_txn *w, uint32_t user_id, const char *norm, bool self)
{
    size_t n;
    int rc = missing(w, user_id, norm, self, &n);
    return rc ? rc : room_for(w, DB_MBOXNAMES, user_id, w->s->max_mailboxes, n);
}

/* Creates exactly NORM (its parents must exist or be made by the caller). */
static int create_one(store_txn *w, uint32_t user_id, const char *norm, uint32_t special_use,
                      store_mailbox *out)
{
    uint32_t id;
    if (lookup_id(w, user_id, norm, &id) == 0) return -EEXIST;
    id = (uint32_t)st_meta_u64(w, "next_mbox", 1);
    if (id == UINT32_MAX) return -ENOSPC;
    /* UIDVALIDITY: the creation time, but always above every value given before */
    uint32_t uv = (uint32_t)time(NULL), last = (uint32_t)st_meta_u64(w, "last_uidvalidity", 0);
    if (uv <= last) uv = last + 1;
    uint64_t seq;
    int rc = st_feed_add(w, STORE_CH_MBOX_CREATE, user_id, id, 0, &seq);
    if (rc) return rc;
    int64_t now = st_now_ns();
    mbox_rec r = {.user_id = user_id,
                  .uidvalidity = uv,
                  .uidnext = 1,
                  .special_use = special_use,
                  .highestmodseq = seq,
                  .mtime_ns = now,
                  .ctime_ns = now};
    uint8_t k[NAMEKEY_MAX];
    if ((rc = st_meta_put_u64(w, "next_mbox", id + 1)) ||
        (rc = st_meta_put_u64(w, "last_uidvalidity", uv)) ||
        (rc = st_put(w, DB_MBOXNAMES, k, namekey(k, user_id, norm), &id, 4)) ||
        (rc = st_mbox_put(w, id, &r, norm)))
        return rc;
    if (out) fill(w, out, id, &r, norm);
    return 0;
}

/* Makes every missing parent of NORM. */
static int create_parents(store_txn *w, uint32_t user_id, const char *norm)
{
    char buf[STORE_NAME_MAX + 1];
    strcpy(buf, norm);
    for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        uint32_t id;
        int rc = lookup_id(w, user_id, buf, &id);
        if (rc == -ENOENT) rc = create_one(w, user_id, buf, 0, NULL);
        if (rc) return rc;
        *p = '/';
    }
    return 0;
}

int store_mailbox_create(store_txn *w, uint32_t user_id, const char *name, uint32_t special_use,
                         store_mailbox *out)
{
    char norm[STORE_NAME_MAX + 1];
    int rc = normalize(name, norm);
    if (rc) return rc;
    uint32_t id;
    if (lookup_id(w, user_id, norm, &id) == 0) return -EEXIST;
    if ((rc = mailbox_room(w, user_id, norm, true)) != 0) return rc;
    if ((rc = create_parents(w, user_id, norm)) != 0) return rc;
    return create_one(w, user_id, norm, special_use, out);
}

/* Calls CB for each mailbox of USER whose name starts with PREFIX (all if ""). */
static int walk(store_txn *t, uint32_t user_id, const char *prefix,
                int (*cb)(void *ctx, const store_mailbox *mb), void *ctx)
{
    uint8_t kb[NAMEKEY_MAX];
    size_t plen = namekey(kb, user_id, prefix);
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_MBOXNAMES, kb, plen, plen);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        uint32_t id;
        if (it.v.mv_size != 4) {
            rc = -EIO;
            break;
        }
        memcpy(&id, it.v.mv_data, 4);
        store_mailbox mb;
        if ((rc = store_mailbox_get_id(t, id, &mb)) == 0) rc = cb(ctx, &mb);
    }
    return st_iter_end(&it, rc);
}

int store_mailbox_list(store_txn *t, uint32_t user_id,
                       int (*cb)(void *ctx, const store_mailbox *mb), void *ctx)
{
    return walk(t, user_id, "", cb, ctx);
}

/* Begins a walk over USER_ID's names in table DB that come after AFTER ("" or NULL: all). */
static int walk_after(st_iter *it, store_txn *t, int db, uint32_t user_id, const char *after)
{
    uint8_t key[NAMEKEY_MAX];
    return st_iter_after(it, t, db, key, namekey(key, user_id, after ? after : ""), 4);
}

int store_mailbox_list_after(store_txn *t, uint32_t user_id, const char *after,
                             int (*cb)(void *ctx, const store_mailbox *mb), void *ctx)
{
    st_iter it;
    int rc = walk_after(&it, t, DB_MBOXNAMES, user_id, after);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        uint32_t id;
        if (it.v.mv_size != 4) {
            rc = -EIO;
            break;
        }
        memcpy(&id, it.v.mv_data, 4);
        store_mailbox mb;
        if ((rc = store_mailbox_get_id(t, id, &mb)) == 0) rc = cb(ctx, &mb);
    }
    return st_iter_end(&it, rc);
}

static int found_one(void *ctx, const store_mailbox *mb)
{
    (void)ctx, (void)mb;
    return 1;
}

static int has_children(store_txn *t, uint32_t user_id, const char *norm)
{
    char prefix[STORE_NAME_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s/", norm);
    return walk(t, user_id, prefix, found_one, NULL);
}

int store_mailbox_delete(store_txn *w, uint32_t user_id, const char *name, int flags)
{
    char norm[STORE_NAME_MAX + 1];
    if (normalize(name, norm) != 0) return -ENOENT;
    if (strcmp(norm, "INBOX") == 0) return -EPERM;
    /* kept files (files.c) are never dropped with their mailbox: they go through the mount */
    store_mailbox mb;
    uint64_t kept = 0;
    int rc = store_mailbox_get(w, user_id, norm, &mb);
    if (rc == 0) rc = store_files_count(w->s, user_id, mb.id, &kept);
    if (rc) return rc;
    if (kept) return -ENOTEMPTY;
    rc = st_mbox_drop(w, user_id, norm, flags);
    if (rc == 0) store_files_remove(w->s, user_id, mb.id); /* its empty directory, if any */
    return rc;
}

int st_mbox_drop(store_txn *w, uint32_t user_id, const char *norm, int flags)
{
    uint32_t id;
    int rc = lookup_id(w, user_id, norm, &id);
    if (rc) return rc;
    rc = has_children(w, user_id, norm);
    if (rc == 1) return -ENOTEMPTY;
    if (rc) return rc;
    mbox_rec r;
    if ((rc = st_mbox_get(w, id, &r, NULL, 0)) != 0) return rc;
    if ((flags & STORE_DEL_IF_EMPTY) && r.messages > 0) return -ENOTEMPTY;
    uint8_t k[NAMEKEY_MAX], ik[4];
    put_be32(ik, id);
    if ((rc = st_msgs_purge(w, id)) ||
        (rc = st_del(w, DB_MBOXNAMES, k, namekey(k, user_id, norm))) ||
        (rc = st_del(w, DB_MBOXES, ik, 4)))
        return rc;
    return st_feed_add(w, STORE_CH_MBOX_DELETE, user_id, id, 0, NULL);
}

typedef struct rename_ctx {
    uint32_t *ids;
    size_t n;
} rename_ctx;

static int collect(void *ctx, const store_mailbox *mb)
{
    rename_ctx *rc = ctx;
    uint32_t *grown = realloc(rc->ids, (rc->n + 1) * sizeof *grown);
    if (!grown) return -ENOMEM;
    rc->ids = grown;
    rc->ids[rc->n++] = mb->id;
    return 0;
}

/* Gives mailbox ID the name NEWNAME (which must be free). */
static int rename_one(store_txn *w, uint32_t user_id, uint32_t id, const char *newname)
{
    mbox_rec r;
    char old[STORE_NAME_MAX + 1];
    int rc = st_mbox_get(w, id, &r, old, sizeof old);
    if (rc) return rc;
    uint8_t k[NAMEKEY_MAX];
    if ((rc = st_del(w, DB_MBOXNAMES, k, namekey(k, user_id, old))) ||
        (rc = st_put(w, DB_MBOXNAMES, k, namekey(k, user_id, newname), &id, 4)))
        return rc;
    uint64_t seq;
    if ((rc = st_feed_add(w, STORE_CH_MBOX_RENAME, user_id, id, 0, &seq)) != 0) return rc;
    r.highestmodseq = seq;
    r.ctime_ns = st_now_ns();
    return st_mbox_put(w, id, &r, newname);
}

/* Records in the feed that NORM joined or left the subscription list, with the id of the
 * mailbox of that name (0 if none). */
static int sub_feed(store_txn *w, uint32_t user_id, const char *norm)
{
    uint32_t id = 0;
    int rc = lookup_id(w, user_id, norm, &id);
    if (rc == -ENOENT) id = 0, rc = 0;
    if (rc) return rc;
    return st_feed_add(w, STORE_CH_MBOX_SUBSCRIBE, user_id, id, 0, NULL);
}

/* Adds NORM to the subscription list or removes it; the caller knows that this is a change. */
static int sub_set(store_txn *w, uint32_t user_id, const char *norm, bool on)
{
    uint8_t k[NAMEKEY_MAX];
    size_t kl = namekey(k, user_id, norm);
    int rc = on ? st_put(w, DB_SUBS, k, kl, "", 0) : st_del(w, DB_SUBS, k, kl);
    return rc ? rc : sub_feed(w, user_id, norm);
}

/* Collects USER_ID's subscribed names that are FROM or below it into *OUT, NUL-terminated and
 * back to back. */
static int subs_below(store_txn *t, uint32_t user_id, const char *from, mfs_buf *out)
{
    uint8_t kb[NAMEKEY_MAX];
    size_t plen = namekey(kb, user_id, from), fl = plen - 4;
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_SUBS, kb, plen, plen);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        const char *name = (const char *)it.k.mv_data + 4;
        size_t nl = it.k.mv_size - 4;
        if (nl == fl || name[fl] == '/') /* not "Workshop" */
            rc = mfs_buf_try_append(out, name, nl) ? -ENOMEM : mfs_buf_try_append(out, "", 1);
    }
    return st_iter_end(&it, rc);
}

/* After a rename of FROM to TO: each subscription of FROM or below it moves to the same place
 * below TO. All old names go before any new one is added, so that a new name that equals an
 * old one still to move (TO above FROM) is not lost. A name that would grow too long for a
 * name or for an LMDB key (only one no mailbox has: the mailboxes were renamed already) stays
 * where it is rather than failing the rename. */
static int subs_rename(store_txn *w, uint32_t user_id, const char *from, const char *to)
{
    mfs_buf n = {0};
    int rc = subs_below(w, user_id, from, &n);
    size_t fl = strlen(from), maxkey = (size_t)mdb_env_get_maxkeysize(w->s->env);
    uint8_t k[NAMEKEY_MAX];
    for (size_t at = 0; rc == 0 && at < n.len; at += strlen(n.data + at) + 1)
        rc = st_del(w, DB_SUBS, k, namekey(k, user_id, n.data + at));
    for (size_t at = 0; rc == 0 && at < n.len; at += strlen(n.data + at) + 1) {
        const char *old = n.data + at;
        char newname[STORE_NAME_MAX + 2];
        int len = snprintf(newname, sizeof newname, "%s%s", to, old + fl);
        if (len > STORE_NAME_MAX || 4 + (size_t)len > maxkey) {
            rc = st_put(w, DB_SUBS, k, namekey(k, user_id, old), "", 0);
            continue;
        }
        if ((rc = st_put(w, DB_SUBS, k, namekey(k, user_id, newname), "", 0)) == 0)
            rc = sub_feed(w, user_id, newname);
    }
    mfs_buf_free(&n);
    return rc;
}

/* RFC 9051: renaming INBOX moves its messages to a new mailbox and leaves INBOX empty. */
static int rename_inbox(store_txn *w, uint32_t user_id, const char *to)
{
    store_mailbox inbox, dst;
    int rc = store_mailbox_get(w, user_id, "INBOX", &inbox);
    if (rc == 0) rc = store_mailbox_create(w, user_id, to, 0, &dst);
    if (rc) return rc;
    /* the mail goes on under the new name, so does a subscription; INBOX keeps its own */
    if (inbox.subscribed && !dst.subscribed &&
        ((rc = room_for(w, DB_SUBS, user_id, w->s->max_subscriptions, 1)) != 0 ||
         (rc = sub_set(w, user_id, to, true)) != 0))
        return rc;
    for (;;) {
        uint8_t kb[8];
        put_be32(kb, inbox.id);
        put_be32(kb + 4, 0);
        st_iter it; /* the first message left; a new walk each time, as the move changes DB_MSGS */
        if ((rc = st_iter_begin(&it, w, DB_MSGS, kb, 8, 4)) != 0) return rc;
        uint32_t uid =
            st_iter_next(&it) && it.k.mv_size == 8 ? get_be32((uint8_t *)it.k.mv_data + 4) : 0;
        if ((rc = st_iter_end(&it, 0)) != 0) return rc;
        if (!uid) return 0;
        store_msg m;
        if ((rc = store_msg_get(w, inbox.id, uid, &m)) != 0) return rc;
        char fname[STORE_COMPONENT_MAX + 1];
        snprintf(fname, sizeof fname, "%s", m.filename);
        if ((rc = store_msg_move(w, inbox.id, uid, dst.id, fname, NULL)) != 0) return rc;
    }
}

int store_mailbox_rename(store_txn *w, uint32_t user_id, const char *from, const char *to)
{
    char f[STORE_NAME_MAX + 1], t[STORE_NAME_MAX + 1];
    int rc = normalize(to, t);
    if (rc) return rc;
    if (normalize(from, f) != 0) return -ENOENT;
    uint32_t id;
    if ((rc = lookup_id(w, user_id, f, &id)) != 0) return rc;
    if (strcmp(f, t) == 0) return -EEXIST;
    if (lookup_id(w, user_id, t, &id) == 0) return -EEXIST;
    size_t fl = strlen(f);
    if (strncmp(t, f, fl) == 0 && t[fl] == '/') return -EINVAL; /* into its own child */
    if (strcmp(f, "INBOX") == 0) return rename_inbox(w, user_id, t);
    if ((rc = mailbox_room(w, user_id, t, false)) != 0) return rc;
    if ((rc = create_parents(w, user_id, t)) != 0) return rc;
    rename_ctx rc_ = {0};
    char prefix[STORE_NAME_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s/", f);
    if ((rc = lookup_id(w, user_id, f, &id)) == 0 &&
        (rc = collect(&rc_, &(store_mailbox){.id = id})) == 0)
        rc = walk(w, user_id, prefix, collect, &rc_);
    for (size_t i = 0; rc == 0 && i < rc_.n; i++) {
        store_mailbox mb;
        char newname[STORE_NAME_MAX + 2];
        if ((rc = store_mailbox_get_id(w, rc_.ids[i], &mb)) != 0) break;
        int n = snprintf(newname, sizeof newname, "%s%s", t, mb.name + fl);
        if (n > STORE_NAME_MAX)
            rc = -ENAMETOOLONG; /* a child's new name would pass the limit */
        else
            rc = rename_one(w, user_id, rc_.ids[i], newname);
    }
    free(rc_.ids);
    if (rc == 0) rc = subs_rename(w, user_id, f, t);
    return rc;
}

int store_mailbox_subscribe(store_txn *w, uint32_t user_id, const char *name, bool on)
{
    char norm[STORE_NAME_MAX + 1];
    int rc = normalize(name, norm);
    if (rc) return rc;
    if (subscribed(w, user_id, norm) == on) return 0;
    if (on && (rc = room_for(w, DB_SUBS, user_id, w->s->max_subscriptions, 1)) != 0) return rc;
    return sub_set(w, user_id, norm, on);
}

int store_subscription_list(store_txn *t, uint32_t user_id, int (*cb)(void *ctx, const char *name),
                            void *ctx)
{
    return store_subscription_list_after(t, user_id, "", cb, ctx);
}

int store_subscription_list_after(store_txn *t, uint32_t user_id, const char *after,
                                  int (*cb)(void *ctx, const char *name), void *ctx)
{
    st_iter it;
    int rc = walk_after(&it, t, DB_SUBS, user_id, after);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        char name[STORE_NAME_MAX + 1];
        size_t n = it.k.mv_size - 4;
        if (n > STORE_NAME_MAX) n = STORE_NAME_MAX; /* a damaged key; check reports it */
        memcpy(name, (const char *)it.k.mv_data + 4, n);
        name[n] = 0;
        rc = cb(ctx, name);
    }
    return st_iter_end(&it, rc);
}

int st_subs_purge(store_txn *w, uint32_t user_id)
{
    return st_del_prefix(w, DB_SUBS, user_id, NULL, NULL);
}
