/* lookup.c: names and inodes to store records: LOOKUP, FORGET, GETATTR, STATFS and the helpers
 * that resolve a directory, a message or a child name */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

void fs_entry_store(struct fuse_entry_param *e, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->ino = st->st_ino;
    e->attr = *st;
    e->attr_timeout = FS_TIMEOUT;
    e->entry_timeout = FS_TIMEOUT;
}

void fs_entry_mem(struct fuse_entry_param *e, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->ino = st->st_ino;
    e->attr = *st;
    e->attr_timeout = 0;
    e->entry_timeout = 0;
}

int fs_dir_mailbox(fs_mount *m, store_txn *t, uint64_t dir, store_mailbox *mb)
{
    if (fs_ino_kind(dir) != FS_K_DIR) {
        memset(mb, 0, sizeof *mb);
        return -ENOENT;
    }
    int rc = store_mailbox_get_id(t, fs_ino_mailbox(dir), mb);
    if (rc == 0 && mb->user_id != m->user_id) rc = -ENOENT;
    return rc;
}

int fs_msg_lookup(fs_mount *m, store_txn *t, uint64_t ino, store_msg *msg)
{
    int rc = -ENOENT;
    if (fs_ino_kind(ino) == FS_K_MSG)
        rc = store_msg_get(t, fs_ino_mailbox(ino), fs_ino_uid(ino), msg);
    if (rc == -ENOENT) {
        uint64_t to = fs_forward(m, ino);
        if (to && fs_ino_kind(to) == FS_K_MSG)
            rc = store_msg_get(t, fs_ino_mailbox(to), fs_ino_uid(to), msg);
    }
    return rc;
}

int fs_child_mailbox_name(fs_mount *m, store_txn *t, uint64_t parent, const char *name, char *buf,
                          size_t size)
{
    if (parent == FS_INO_ROOT) {
        if (strlen(name) >= size) return -ENAMETOOLONG;
        strcpy(buf, name);
        return 0;
    }
    store_mailbox pmb;
    int rc = fs_dir_mailbox(m, t, parent, &pmb);
    if (rc) return rc;
    if ((size_t)snprintf(buf, size, "%s/%s", pmb.name, name) >= size) return -ENAMETOOLONG;
    return 0;
}

int fs_full_name(fs_mount *m, uint64_t parent, const char *name, char *buf, size_t size)
{
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_child_mailbox_name(m, t, parent, name, buf, size);
    store_read_end(&t);
    return rc;
}

const char *fs_mailbox_leaf(const char *name)
{
    const char *s = strrchr(name, '/');
    return s ? s + 1 : name;
}

int fs_lookup_store(fs_mount *m, store_txn *t, uint64_t parent, const char *name, struct stat *st)
{
    char full[STORE_NAME_MAX + 1];
    store_mailbox mb;
    store_msg msg;
    bool eml = fs_name_is_message(name);
    uint32_t pmb = fs_ino_mailbox(parent);
    int rc;

    if (fs_ino_kind(parent) == FS_K_MDIR) {
        rc = fs_md_msg(m, t, parent, name, &msg);
        if (rc == 0) fs_msg_attr(m, &msg, st);
        return rc;
    }

    if (eml && parent != FS_INO_ROOT) {
        rc = store_msg_by_name(t, pmb, name, &msg);
        if (rc != -ENOENT) {
            if (rc == 0) fs_msg_attr(m, &msg, st);
            return rc;
        }
    }
    rc = fs_child_mailbox_name(m, t, parent, name, full, sizeof full);
    if (rc == 0) {
        rc = store_mailbox_get(t, m->user_id, full, &mb);
        if (rc == 0 && strcmp(fs_mailbox_leaf(mb.name), name) != 0)
            rc = -ENOENT; /* "inbox" is not another name for INBOX here */
        if (rc == 0) {
            fs_dir_attr(m, &mb, st);
            return 0;
        }
        if (rc == -EINVAL || rc == -ENAMETOOLONG) rc = -ENOENT;
        if (rc != -ENOENT) return rc;
    } else if (rc == -ENAMETOOLONG) {
        rc = -ENOENT;
    }
    unsigned which = parent != FS_INO_ROOT ? fs_md_which(name) : 0;
    if (rc == -ENOENT && which) { /* the Maildir view, unless a mailbox has that name */
        rc = fs_dir_mailbox(m, t, parent, &mb);
        if (rc == 0) fs_mdir_attr(m, &mb, which, st);
    }
    return rc;
}

/* The reply to LOOKUP NAME in PARENT: the entry, or a negative one (ino 0). */
static int lookup_entry(fs_mount *m, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
    struct stat st;
    enum fs_ino_kind k = fs_ino_kind(parent);
    if (k == FS_K_KEPT) {
        if (strlen(name) > STORE_COMPONENT_MAX) return -ENAMETOOLONG;
        int rc = fs_kept_lookup(m, parent, name, e);
        if (rc == -ENOENT) { /* every change here comes through the mount */
            memset(e, 0, sizeof *e);
            e->entry_timeout = FS_TIMEOUT;
            return 0;
        }
        return rc;
    }
    if (k != FS_K_ROOT && k != FS_K_DIR && k != FS_K_MDIR)
        return k == FS_K_MEM || k == FS_K_MSG ? -ENOTDIR : -ENOENT;
    if (strlen(name) > STORE_COMPONENT_MAX) return -ENAMETOOLONG;
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_name(m, parent, name);
        if (n) fs_node_attr(m, n, &st);
        pthread_mutex_unlock(&m->lock);
        if (n) {
            fs_entry_mem(e, &st);
            return 0;
        }
    }
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_lookup_store(m, t, parent, name, &st);
    store_read_end(&t);
    if (rc == -ENOENT && k != FS_K_MDIR && !fs_name_is_message(name)) {
        rc = fs_kept_lookup(m, parent, name, e); /* a kept file */
        if (rc != -ENOENT) return rc;
    }
    if (rc == -ENOENT && k != FS_K_MDIR) { /* cached until the change feed says otherwise */
        memset(e, 0, sizeof *e);
        e->entry_timeout = FS_TIMEOUT;
        return 0;
    }
    if (rc) return rc;
    fs_entry_store(e, &st);
    if (k == FS_K_MDIR) e->entry_timeout = 0; /* a flag change elsewhere renames it */
    return 0;
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = M(req);
    struct fuse_entry_param e;
    int rc = lookup_entry(m, parent, name, &e);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fs_reply_entry(m, req, &e);
}

/* The kernel dropped inodes from its cache: their lookup counts go down (inodes.c). */
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs_inode_forget(M(req), ino, nlookup);
    fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fs_inode_forget_many(M(req), forgets, count);
    fuse_reply_none(req);
}

/* Stat data of any inode: 0 with *st and *mem (true for in-memory files), or -errno. */
int fs_stat_ino(fs_mount *m, uint64_t ino, struct stat *st, bool *mem)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    *mem = false;
    if (k == FS_K_KEPT) return fs_kept_stat(m, ino, st);
    if (k == FS_K_ROOT) {
        fs_root_attr(m, st);
        return 0;
    }
    if ((k == FS_K_MEM || k == FS_K_MSG) && atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_ino(m, ino);
        if (n) fs_node_attr(m, n, st);
        pthread_mutex_unlock(&m->lock);
        if (n) {
            *mem = true;
            return 0;
        }
    }
    if (k == FS_K_BAD) return -ENOENT;
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    if (k == FS_K_DIR || k == FS_K_MDIR) {
        store_mailbox mb;
        rc = k == FS_K_DIR ? fs_dir_mailbox(m, t, ino, &mb) : fs_mdir_mailbox(m, t, ino, &mb);
        if (rc == 0 && k == FS_K_DIR) fs_dir_attr(m, &mb, st);
        if (rc == 0 && k == FS_K_MDIR) fs_mdir_attr(m, &mb, fs_ino_md_which(ino), st);
    } else {
        store_msg msg;
        rc = fs_msg_lookup(m, t, ino, &msg);
        if (rc == 0) {
            fs_msg_attr(m, &msg, st);
            st->st_ino = ino;
        }
    }
    store_read_end(&t);
    return rc;
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    bool mem;
    int rc = fs_stat_ino(M(req), ino, &st, &mem);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, mem ? 0 : FS_TIMEOUT);
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    if (statvfs(M(req)->store_path, &sv) != 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = STORE_COMPONENT_MAX;
    fuse_reply_statfs(req, &sv);
}
