/* rename.c: RENAME of in-memory files, messages (within and between folders, into and out of
 * the Maildir view) and folders */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

static int mvdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_rename(w, o->user_id, o->name, o->to);
}

static int move_cb(store_txn *w, void *arg)
{
    name_op *o = arg;
    store_msg msg, dst;
    int rc;
    o->expunged_uid = 0;
    rc = store_msg_get(w, o->mb, o->uid, &msg);
    if (rc) return rc;
    if (o->dst_mb == o->mb && strcmp(msg.filename, o->dst_name) == 0) {
        o->out_uid = o->uid;
        return 0;
    }
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
        return store_msg_rename(w, o->mb, o->uid, o->dst_name);
    }
    store_msg out;
    rc = store_msg_move(w, o->mb, o->uid, o->dst_mb, o->dst_name, &out);
    o->out_uid = out.uid;
    return rc;
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
            memcpy(n->data, data, len);
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
    name_op o = {.mb = msg.mailbox_id, .uid = msg.uid};
    store_read_end(&t);
    if (rc) return rc;
    rc = store_write(m->st, fs_expunge_uid_cb, &o);
    if (rc) {
        pthread_mutex_lock(&m->lock);
        fs_node_detach(m, n);
        pthread_mutex_unlock(&m->lock);
    }
    return rc;
}

/* A rename into cur/ or new/ of the Maildir view: "BASE:2,FLAGS" is the message BASE.eml of
 * that mailbox with those flags. */
typedef struct md_target {
    uint64_t dir; /* the mailbox directory */
    char name[STORE_COMPONENT_MAX + 8];
    uint32_t flags;
    bool passed;
} md_target;

static int md_move_cb(store_txn *w, void *arg)
{
    md_target *md = ((void **)arg)[0];
    name_op *o = ((void **)arg)[1];
    int rc = move_cb(w, o);
    if (rc) return rc;
    store_msg msg;
    if ((rc = store_msg_get(w, o->dst_mb, o->out_uid, &msg)) != 0) return rc;
    char *kw = fs_md_keywords(msg.keywords, md->passed);
    if (!kw) return -ENOMEM;
    rc = store_msg_set_flags(w, o->dst_mb, o->out_uid, STORE_FLAGS_SET, md->flags, kw, 0, NULL);
    free(kw);
    return rc;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
    fs_mount *m = M(req);
    bool noreplace = flags & RENAME_NOREPLACE;
    fs_name_kind kind = fs_name_kind_in(newparent, newname); /* for a file, not a folder */
    bool to_msg = kind == FS_NAME_MESSAGE;
    unsigned dst_md = fs_ino_kind(newparent) == FS_K_MDIR ? fs_ino_md_which(newparent) : 0;
    md_target md = {0};
    int rc;

    if (flags & ~RENAME_NOREPLACE) {
        fuse_reply_err(req, EINVAL); /* RENAME_EXCHANGE and RENAME_WHITEOUT */
        return;
    }
    if (!fs_ino_is_dir(parent) || !fs_ino_is_dir(newparent)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    rc = fs_name_check(newname);
    if (rc == 0 && (dst_md == FS_MD_CUR || dst_md == FS_MD_NEW)) {
        rc = fs_md_parse(newname, md.name, sizeof md.name, &md.flags, &md.passed);
        md.dir = fs_ino_dir(fs_ino_mailbox(newparent));
        to_msg = true;
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* where the file lands: the mailbox directory and message name for a Maildir target */
    uint64_t to_dir = md.dir ? md.dir : newparent;
    const char *to_name = md.dir ? md.name : newname;

    /* an in-memory file */
    pthread_mutex_lock(&m->lock);
    fs_node *src = atomic_load(&m->node_count) ? fs_node_find_name(m, parent, name) : NULL;
    if (src && kind == FS_NAME_REFUSED) {
        pthread_mutex_unlock(&m->lock);
        fuse_reply_err(req, -fs_refuse_name(m, newparent, newname, name));
        return;
    }
    if (src) {
        char *old_name = src->name, *old_kw = src->keywords;
        uint64_t old_parent = src->parent;
        bool old_eml = src->eml, old_set = src->flags_set, pinned = false;
        uint32_t old_flags = src->flags;
        rc = replace_mem_target(m, to_dir, to_name, noreplace, src);
        if (rc == 0) {
            char *nn = strdup(to_name);
            char *kw = md.dir ? fs_md_keywords(old_kw, md.passed) : old_kw;
            if (!nn || (md.dir && !kw)) {
                free(nn);
                if (kw != old_kw) free(kw);
                rc = -ENOMEM;
            } else {
                src->name = nn;
                src->parent = to_dir;
                src->eml = to_msg;
                src->dirty = true;
                if (md.dir) { /* the flags are in the name */
                    src->flags_set = true;
                    src->flags = md.flags;
                    src->keywords = kw;
                }
                src->pins++; /* pinned while it is committed */
                pinned = true;
            }
        }
        pthread_mutex_unlock(&m->lock);
        if (rc == 0 && to_msg)
            rc = fs_node_commit(m, src); /* replaces a message of that name, keeping its flags */
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
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_mutex_unlock(&m->lock);

    /* a stored message or mailbox */
    struct stat st;
    store_txn *t;
    rc = store_read_begin(m->st, &t);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = fs_lookup_store(m, t, parent, name, &st);
    store_read_end(&t);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (S_ISDIR(st.st_mode) &&
        (fs_ino_kind(st.st_ino) == FS_K_MDIR || fs_ino_kind(newparent) == FS_K_MDIR)) {
        fuse_reply_err(req, EPERM); /* the Maildir view's directories stay where they are */
        return;
    }
    if (dst_md == FS_MD_TMP) {
        fuse_reply_err(req, EXDEV); /* tools copy instead; a stored message has no tmp/ stage */
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        char from[STORE_NAME_MAX + 1], to[STORE_NAME_MAX + 1];
        const char *why;
        rc = fs_full_name(m, parent, name, from, sizeof from);
        if (rc == 0) rc = fs_full_name(m, newparent, newname, to, sizeof to);
        if (rc == 0 && store_mailbox_name_check(to, &why) != 0) rc = -EINVAL;
        if (rc == 0 && (strncmp(to, from, strlen(from)) == 0 && to[strlen(from)] == '/'))
            rc = -EINVAL; /* into itself */
        mbox_op o = {.user_id = m->user_id, .name = from, .to = to};
        if (rc == 0) rc = store_write(m->st, mvdir_cb, &o);
        fuse_reply_err(req, -rc);
        return;
    }
    if (kind == FS_NAME_REFUSED) {
        fuse_reply_err(req, -fs_refuse_name(m, newparent, newname, name));
        return;
    }
    if (!to_msg) { /* a backup name: vim's "x.eml~" */
        rc = message_to_mem(m, st.st_ino, newparent, newname, noreplace);
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_mutex_lock(&m->lock);
    rc = replace_mem_target(m, to_dir, to_name, noreplace, NULL);
    pthread_mutex_unlock(&m->lock);
    name_op o = {.mb = fs_ino_mailbox(st.st_ino),
                 .uid = fs_ino_uid(st.st_ino),
                 .dst_mb = fs_ino_mailbox(to_dir),
                 .dst_name = to_name,
                 .noreplace = noreplace};
    void *md_args[2] = {&md, &o};
    if (rc == 0 && md.dir)
        rc = store_write(m->st, md_move_cb, md_args);
    else if (rc == 0)
        rc = store_write(m->st, move_cb, &o);
    if (rc == 0) {
        uint64_t to = fs_ino_msg(o.dst_mb, o.out_uid);
        fs_forward_add(m, st.st_ino, to);
        if (o.expunged_uid) fs_node_mark_unlinked(m, fs_ino_msg(o.dst_mb, o.expunged_uid));
    }
    fuse_reply_err(req, -rc);
}
