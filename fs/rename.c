/* rename.c: RENAME of in-memory files, messages (within and between folders, into and out of
 * the Maildir view) and folders */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

/*
 * A rename, worked out once: where the file lands and what it becomes there. For a file, the
 * new name decides (fs_name_kind_in): a message name stores it, a temporary name keeps it in
 * memory, anything else is refused. In cur/ or new/ of the Maildir view "BASE:2,FLAGS" is the
 * message BASE.eml of that mailbox with those flags (md).
 */
typedef struct rename_req {
    uint64_t parent, newparent;
    const char *name, *newname;
    bool noreplace;
    fs_name_kind kind; /* what NEWNAME in NEWPARENT is for a file (not for a folder) */
    bool to_msg;       /* the file is a stored message afterwards */
    unsigned dst_md;   /* FS_MD_CUR/NEW/TMP if NEWPARENT is in the Maildir view, else 0 */
    fs_md_target md;   /* md.dir != 0: into cur/ or new/ */
} rename_req;

/* Where the file lands: the mailbox directory and the message name for a Maildir target. */
static uint64_t to_dir(const rename_req *r)
{
    return r->md.dir ? r->md.dir : r->newparent;
}

static const char *to_name(const rename_req *r)
{
    return r->md.dir ? r->md.name : r->newname;
}

static int rename_prepare(rename_req *r, uint64_t parent, const char *name, uint64_t newparent,
                          const char *newname, unsigned flags)
{
    *r = (rename_req){.parent = parent,
                      .newparent = newparent,
                      .name = name,
                      .newname = newname,
                      .noreplace = flags & RENAME_NOREPLACE};
    if (flags & ~RENAME_NOREPLACE) return -EINVAL; /* RENAME_EXCHANGE and RENAME_WHITEOUT */
    if (!fs_ino_is_dir(parent) || !fs_ino_is_dir(newparent)) return -ENOTDIR;
    r->kind = fs_name_kind_in(newparent, newname);
    r->dst_md = fs_ino_kind(newparent) == FS_K_MDIR ? fs_ino_md_which(newparent) : 0;
    int rc = fs_name_check(newname);
    if (rc == 0) rc = fs_md_target_parse(newparent, newname, &r->md);
    r->to_msg = r->kind == FS_NAME_MESSAGE || r->md.dir;
    return rc;
}

/* The store write of a message's rename or move (move_cb). */
typedef struct move_op {
    uint32_t mb, uid; /* the message */
    uint32_t dst_mb;  /* where it goes, and its name there */
    const char *dst_name;
    bool noreplace;
    const fs_md_target *md; /* into cur/ or new/: it gets the flags of its name (else NULL) */
    uint32_t out_uid;       /* out: its UID now */
    uint32_t expunged_uid;  /* out: the message of that name it replaced (0: none) */
} move_op;

static int move_cb(store_txn *w, void *arg)
{
    move_op *o = arg;
    store_msg msg, dst;
    int rc;
    o->expunged_uid = 0;
    rc = store_msg_get(w, o->mb, o->uid, &msg);
    if (rc) return rc;
    if (o->dst_mb == o->mb && strcmp(msg.filename, o->dst_name) == 0) {
        o->out_uid = o->uid;
    } else {
        rc = store_msg_by_name(w, o->dst_mb, o->dst_name, &dst);
        if (rc == 0) {
            if (o->noreplace) return -EEXIST;
            o->expunged_uid = dst.uid;
            rc = store_msg_expunge(w, o->dst_mb, dst.uid);
        } else if (rc == -ENOENT) {
            rc = 0;
        }
        if (rc) return rc;
        if (o->dst_mb == o->mb) {
            o->out_uid = o->uid;
            rc = store_msg_rename(w, o->mb, o->uid, o->dst_name);
        } else {
            store_msg out;
            rc = store_msg_move(w, o->mb, o->uid, o->dst_mb, o->dst_name, &out);
            o->out_uid = out.uid;
        }
    }
    if (rc == 0 && o->md) rc = fs_md_set_flags(w, o->dst_mb, o->out_uid, o->md);
    return rc;
}

static int mvdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_rename(w, o->user_id, o->name, o->to);
}

/* Drops an in-memory file that a rename replaces. With m->lock held. */
static int replace_mem_target(fs_mount *m, uint64_t parent, const char *name, bool noreplace,
                              const fs_node *src)
{
    fs_node *d = fs_node_find_name(m, parent, name);
    if (!d || d == src) return 0;
    if (noreplace) return -EEXIST;
    d->unlinked = true;
    fs_node_detach(m, d);
    return 0;
}

/* A stored message renamed to a name that is not a message name: it becomes an in-memory file
 * (and leaves the store), the way editors rename a file to its backup name before writing. */
static int message_to_mem(fs_mount *m, uint64_t msg_ino, uint64_t newparent, const char *newname,
                          bool noreplace)
{
    store_txn *t;
    store_msg msg;
    const char *data;
    size_t len;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_msg_lookup(m, t, msg_ino, &msg);
    if (rc == 0) rc = store_msg_body(t, &msg, &data, &len);
    if (rc) {
        store_read_end(&t);
        return rc;
    }
    pthread_mutex_lock(&m->lock);
    rc = replace_mem_target(m, newparent, newname, noreplace, NULL);
    fs_node *n = rc ? NULL : fs_node_new(m, newparent, newname, 0600);
    if (!rc && !n) rc = -ENOMEM;
    if (n) {
        n->eml = false;
        rc = fs_node_resize(m, n, len);
        if (rc == 0) {
            if (len) memcpy(n->data.data, data, len);
            n->mtime.tv_sec = msg.internaldate;
            n->mtime.tv_nsec = 0;
            n->flags_set = true;
            n->flags = msg.flags;
            n->keywords = strdup(msg.keywords ? msg.keywords : "");
            n->dirty = false;
        } else {
            fs_node_detach(m, n);
            n = NULL;
        }
    }
    pthread_mutex_unlock(&m->lock);
    uint32_t mb = msg.mailbox_id, uid = msg.uid;
    store_read_end(&t);
    if (rc) return rc;
    rc = fs_msg_expunge(m, mb, uid);
    if (rc) {
        pthread_mutex_lock(&m->lock);
        fs_node_detach(m, n);
        pthread_mutex_unlock(&m->lock);
    }
    return rc;
}

/* Renames in-memory file SRC; called with m->lock held, returns with it released. To a message
 * name it is stored (replacing a message of that name, keeping its flags); if that fails, the
 * rename is undone. */
static int rename_node(fs_mount *m, const rename_req *r, fs_node *src)
{
    if (r->kind == FS_NAME_REFUSED) {
        pthread_mutex_unlock(&m->lock);
        return fs_refuse_name(m, r->newparent, r->newname, r->name);
    }
    char *old_name = src->name, *old_kw = src->keywords;
    uint64_t old_parent = src->parent;
    bool old_eml = src->eml, old_set = src->flags_set, pinned = false;
    uint32_t old_flags = src->flags;
    int rc = replace_mem_target(m, to_dir(r), to_name(r), r->noreplace, src);
    if (rc == 0) {
        char *nn = strdup(to_name(r));
        char *kw = r->md.dir ? fs_md_keywords(old_kw, r->md.passed) : old_kw;
        if (!nn || (r->md.dir && !kw)) {
            free(nn);
            if (kw != old_kw) free(kw);
            rc = -ENOMEM;
        } else {
            src->name = nn;
            src->parent = to_dir(r);
            src->eml = r->to_msg;
            src->dirty = true;
            if (r->md.dir) { /* the flags are in the name */
                src->flags_set = true;
                src->flags = r->md.flags;
                src->keywords = kw;
            }
            src->pins++; /* pinned while it is committed */
            pinned = true;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == 0 && r->to_msg) rc = fs_node_commit(m, src);
    pthread_mutex_lock(&m->lock);
    if (rc && pinned && !src->msg_mb) { /* not stored: undo the rename */
        free(src->name);
        src->name = old_name;
        src->parent = old_parent;
        src->eml = old_eml;
        if (src->keywords != old_kw) free(src->keywords);
        src->keywords = old_kw;
        src->flags_set = old_set;
        src->flags = old_flags;
    } else if (pinned) {
        free(old_name);
        if (src->keywords != old_kw) free(old_kw);
    }
    if (pinned) {
        src->pins--;
        fs_node_put(m, src);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Renames folder (mailbox) NAME of PARENT; the Maildir view's directories stay where they are. */
static int rename_folder(fs_mount *m, const rename_req *r, uint64_t dir)
{
    if (fs_ino_kind(dir) == FS_K_MDIR || fs_ino_kind(r->newparent) == FS_K_MDIR) return -EPERM;
    char from[STORE_NAME_MAX + 1], to[STORE_NAME_MAX + 1];
    const char *why;
    int rc = fs_full_name(m, r->parent, r->name, from, sizeof from);
    if (rc == 0) rc = fs_full_name(m, r->newparent, r->newname, to, sizeof to);
    if (rc == 0 && store_mailbox_name_check(to, &why) != 0) rc = -EINVAL;
    if (rc == 0 && (strncmp(to, from, strlen(from)) == 0 && to[strlen(from)] == '/'))
        rc = -EINVAL; /* into itself */
    mbox_op o = {.user_id = m->user_id, .name = from, .to = to};
    if (rc == 0) rc = store_write(m->st, mvdir_cb, &o);
    return rc;
}

/* Renames or moves stored message INO to a message name. */
static int move_message(fs_mount *m, const rename_req *r, uint64_t ino)
{
    pthread_mutex_lock(&m->lock);
    int rc = replace_mem_target(m, to_dir(r), to_name(r), r->noreplace, NULL);
    pthread_mutex_unlock(&m->lock);
    move_op o = {.mb = fs_ino_mailbox(ino),
                 .uid = fs_ino_uid(ino),
                 .dst_mb = fs_ino_mailbox(to_dir(r)),
                 .dst_name = to_name(r),
                 .noreplace = r->noreplace,
                 .md = r->md.dir ? &r->md : NULL};
    if (rc == 0) rc = store_write(m->st, move_cb, &o);
    if (rc == 0) {
        fs_forward_add(m, ino, fs_ino_msg(o.dst_mb, o.out_uid));
        if (o.expunged_uid) fs_node_mark_unlinked(m, fs_ino_msg(o.dst_mb, o.expunged_uid));
    }
    return rc;
}

/* Renames what the store holds under NAME in PARENT: a folder or a message. */
static int rename_stored(fs_mount *m, const rename_req *r)
{
    struct stat st;
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_lookup_store(m, t, r->parent, r->name, &st);
    store_read_end(&t);
    if (rc) return rc;
    if (S_ISDIR(st.st_mode)) return rename_folder(m, r, st.st_ino);
    if (r->dst_md == FS_MD_TMP) return -EXDEV; /* tools copy instead; no tmp/ stage here */
    if (r->kind == FS_NAME_REFUSED && fs_kept_new_name(r->newparent, r->newname, false))
        return -EXDEV; /* a message to a kept file: mv copies, then removes the message */
    if (r->kind == FS_NAME_REFUSED) return fs_refuse_name(m, r->newparent, r->newname, r->name);
    if (!r->to_msg) /* a backup name: vim's "x.eml~" */
        return message_to_mem(m, st.st_ino, r->newparent, r->newname, r->noreplace);
    return move_message(m, r, st.st_ino);
}

/* Scratch file NAME of PARENT renamed to a kept name: its content becomes that kept file. */
static int scratch_to_kept(fs_mount *m, uint64_t parent, const char *name, uint64_t newparent,
                           const char *newname, bool noreplace)
{
    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_name(m, parent, name);
    if (!n) {
        pthread_mutex_unlock(&m->lock);
        return -ENOENT;
    }
    if (n->failed) {
        int rc = n->failed;
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    size_t len = n->data.len;
    mode_t mode = n->mode;
    char *copy = malloc(len ? len : 1);
    if (copy && len) memcpy(copy, n->data.data, len);
    pthread_mutex_unlock(&m->lock);
    if (!copy) return -ENOMEM;
    int rc = fs_kept_put(m, newparent, newname, copy, len, mode, noreplace);
    free(copy);
    if (rc) return rc;
    pthread_mutex_lock(&m->lock);
    n = fs_node_find_name(m, parent, name);
    if (n) {
        n->unlinked = true;
        fs_node_detach(m, n);
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* A rename that involves kept files: *handled is false when it involves none. */
static int rename_kept(fs_mount *m, uint64_t parent, const char *name, uint64_t newparent,
                       const char *newname, unsigned flags, bool *handled)
{
    enum fs_ino_kind pk = fs_ino_kind(parent), nk = fs_ino_kind(newparent);
    mode_t mode = 0;
    bool mem = false;
    *handled = true;
    int rc = fs_name_check(newname);
    if (rc) return rc;
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        mem = fs_node_find_name(m, parent, name) != NULL;
        pthread_mutex_unlock(&m->lock);
    }
    bool src_kept = pk == FS_K_KEPT;
    if (!src_kept && !mem && (pk == FS_K_ROOT || pk == FS_K_DIR) && !fs_name_is_message(name) &&
        fs_kept_exists(m, parent, name, &mode)) {
        struct stat st;
        store_txn *t;
        rc = store_read_begin(m->st, &t);
        if (rc) return rc;
        src_kept = fs_lookup_store(m, t, parent, name, &st) == -ENOENT; /* a folder shadows it */
        store_read_end(&t);
    }
    if (src_kept) {
        if (pk == FS_K_KEPT && !fs_kept_exists(m, parent, name, &mode)) return -ENOENT;
        if (!fs_kept_new_name(newparent, newname, S_ISDIR(mode)))
            return -EXDEV; /* to a message name, a folder or a scratch name: tools copy */
        return fs_kept_rename(m, parent, name, newparent, newname, flags);
    }
    bool to_kept = nk == FS_K_KEPT || (mem && fs_kept_new_name(newparent, newname, false));
    if (!to_kept) {
        *handled = false;
        return 0;
    }
    if (flags & ~RENAME_NOREPLACE) return -EINVAL;
    if (mem) return scratch_to_kept(m, parent, name, newparent, newname, flags & RENAME_NOREPLACE);
    return -EXDEV; /* a message or a folder into a kept directory */
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
    fs_mount *m = M(req);
    rename_req r;
    bool handled;
    int rc = rename_kept(m, parent, name, newparent, newname, flags, &handled);
    if (handled) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = rename_prepare(&r, parent, name, newparent, newname, flags);
    if (rc == 0) {
        pthread_mutex_lock(&m->lock);
        fs_node *src = atomic_load(&m->node_count) ? fs_node_find_name(m, parent, name) : NULL;
        if (src) {
            rc = rename_node(m, &r, src); /* releases m->lock */
        } else {
            pthread_mutex_unlock(&m->lock);
            rc = rename_stored(m, &r);
        }
    }
    fuse_reply_err(req, -rc);
}
