/* file.c: regular files: OPEN, CREATE, MKNOD, READ, WRITE, FLUSH, FSYNC, RELEASE, UNLINK, and
 * the refusal of names that cannot be kept, of symbolic and hard links */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "store/log.h"
#include "fs/ops.h"

/*
 * Open files have no handle of their own (fh is always 0): the kernel is told to skip OPEN
 * and RELEASE (ENOSYS to OPEN), so writes, FLUSH and SETATTR find their in-memory file by
 * inode. A stored message gets a write buffer (a detached node keyed by its inode) on its
 * first write or truncation; FLUSH (which close() waits for) stores it, then drops it.
 */

/* O_TRUNC on OPEN (atomic_o_trunc: the truncation comes with it): empties the in-memory file
 * of INO, or a write buffer made for stored message INO. */
static int truncate_on_open(fs_mount *m, uint64_t ino)
{
    fs_node *n = fs_node_pin(m, ino);
    int rc = 0;
    if (n) {
        pthread_mutex_lock(&m->lock);
        rc = fs_node_resize(m, n, 0);
        pthread_mutex_unlock(&m->lock);
        fs_node_unpin(m, n);
    } else if (fs_ino_kind(ino) == FS_K_MEM && !fs_forward(m, ino)) {
        rc = -ENOENT;
    } else {
        rc = fs_node_open_msg(m, ino, true, false, &n);
        if (rc == 0) fs_node_unpin(m, n);
    }
    return rc;
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    int acc = fi->flags & O_ACCMODE;
    bool wr = acc != O_RDONLY || (fi->flags & O_TRUNC);
    int rc = 0;

    if (m->no_open)
        rc = -ENOSYS; /* the kernel stops sending OPEN and RELEASE */
    else if (fs_ino_kind(ino) == FS_K_KEPT) {
        struct stat a = {.st_size = 0};
        if (wr && (fi->flags & O_TRUNC)) rc = fs_kept_setattr(m, ino, &a, FUSE_SET_ATTR_SIZE);
        if (rc == 0) {
            fi->fh = 0;
            fuse_reply_open(req, fi);
            return;
        }
    } else if (fs_ino_is_dir(ino))
        rc = -EISDIR;
    else if (wr && (fi->flags & O_TRUNC))
        rc = truncate_on_open(m, ino);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = 0;
    if (!wr && fs_ino_kind(ino) == FS_K_MSG) {
        fi->keep_cache = 1; /* messages never change: a new content is a new inode */
        fi->noflush = 1;
    }
    fuse_reply_open(req, fi);
}

static int check_parent(fs_mount *m, uint64_t parent)
{
    if (!fs_ino_is_dir(parent)) return -ENOTDIR;
    if (parent == FS_INO_ROOT) return 0;
    store_txn *t;
    store_mailbox mb;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    if (fs_ino_kind(parent) == FS_K_MDIR)
        rc = fs_mdir_mailbox(m, t, parent, &mb);
    else
        rc = fs_dir_mailbox(m, t, parent, &mb);
    store_read_end(&t);
    return rc;
}

/* How the log names directory DIR: "INBOX", "INBOX/cur", or "the top directory". */
static void dir_label(fs_mount *m, uint64_t dir, char *buf, size_t size)
{
    static const char *const md[] = {"", "cur", "new", "tmp"};
    enum fs_ino_kind k = fs_ino_kind(dir);
    store_txn *t;
    store_mailbox mb;
    snprintf(buf, size, "the top directory");
    if (k != FS_K_DIR && k != FS_K_MDIR) return;
    if (store_read_begin(m->st, &t) != 0) return;
    int rc = k == FS_K_DIR ? fs_dir_mailbox(m, t, dir, &mb) : fs_mdir_mailbox(m, t, dir, &mb);
    if (rc == 0 && k == FS_K_DIR) snprintf(buf, size, "'%s'", mb.name);
    if (rc == 0 && k == FS_K_MDIR)
        snprintf(buf, size, "'%s/%s'", mb.name, md[fs_ino_md_which(dir)]);
    store_read_end(&t);
}

/*
 * A file named NAME in DIR can be neither a message, a kept file nor a known tool's temporary
 * file (a message name in the top directory, a non-Maildir name in the Maildir view): it is
 * refused (EPERM) rather than accepted and lost at unmount. The log says so, at most FS_REFUSED_LOG lines a second (a script may try
 * thousands), then how many it left out. NAME passed fs_name_check: valid UTF-8 without
 * control characters, safe to quote.
 */
#define FS_REFUSED_LOG 20

int fs_refuse_name(fs_mount *m, uint64_t dir, const char *name, const char *from)
{
    int64_t sec = fs_now_ns() / 1000000000;
    if (atomic_exchange(&m->refused_sec, sec) != sec) {
        int left_out = atomic_exchange(&m->refused_left_out, 0);
        atomic_store(&m->refused_logged, 0);
        if (left_out) log_warn("mount", "%d more file names were refused and not logged", left_out);
    }
    if (atomic_fetch_add(&m->refused_logged, 1) >= FS_REFUSED_LOG) {
        atomic_fetch_add(&m->refused_left_out, 1);
        return -EPERM;
    }
    char where[STORE_NAME_MAX + 32];
    dir_label(m, dir, where, sizeof where);
    char what[STORE_COMPONENT_MAX + 32];
    if (from)
        snprintf(what, sizeof what, "rename '%s' to", from);
    else
        snprintf(what, sizeof what, "create");
    if (fs_ino_kind(dir) == FS_K_ROOT)
        log_warn("mount",
                 "refused to %s '%s' in the top directory: it holds folders only; put messages "
                 "(NAME.eml) into a folder such as INBOX",
                 what, name);
    else if (fs_ino_kind(dir) == FS_K_MDIR)
        log_warn("mount",
                 "refused to %s '%s' in %s: the Maildir view holds messages with Maildir names "
                 "(NAME or NAME:2,FLAGS) only; other files go into the folder itself",
                 what, name, where);
    else
        log_warn("mount",
                 "refused to %s '%s' in %s: a folder holds messages (NAME.eml), kept files and "
                 "the temporary files of editors, sed, perl and rsync",
                 what, name, where);
    return -EPERM;
}

/* Creates a regular file, or (CREATE on an existing name without O_EXCL) opens it. */
static int make_file(fs_mount *m, uint64_t parent, const char *name, mode_t mode, int flags,
                     bool open, struct fuse_entry_param *e)
{
    struct stat st;
    int rc = fs_name_check(name);
    if (rc) return rc;
    if (fs_ino_kind(parent) == FS_K_KEPT)
        return fs_kept_create(m, parent, name, mode, open ? flags : O_EXCL, false, e);
    if (!fs_ino_is_dir(parent)) return -ENOTDIR;
    mode_t kept_mode = mode;
    mode &= ~0111u; /* mail is never executable; chmod +x later says EPERM */

    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_name(m, parent, name);
    if (n) {
        if ((flags & O_EXCL) || !open) {
            pthread_mutex_unlock(&m->lock);
            return -EEXIST;
        }
        rc = (flags & O_TRUNC) ? fs_node_resize(m, n, 0) : 0;
        fs_node_attr(m, n, &st);
        pthread_mutex_unlock(&m->lock);
        if (rc) return rc;
        fs_entry_mem(e, &st);
        return 0;
    }
    pthread_mutex_unlock(&m->lock);

    store_txn *t;
    rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_lookup_store(m, t, parent, name, &st);
    store_read_end(&t);
    if (rc == 0) {
        if (S_ISDIR(st.st_mode)) return -EISDIR;
        if ((flags & O_EXCL) || !open) return -EEXIST;
        if (flags & O_TRUNC) {
            rc = fs_node_open_msg(m, st.st_ino, true, false, &n);
            if (rc) return rc;
            pthread_mutex_lock(&m->lock);
            fs_node_attr(m, n, &st);
            pthread_mutex_unlock(&m->lock);
            fs_node_unpin(m, n);
            fs_entry_mem(e, &st);
        } else {
            memset(e, 0, sizeof *e);
            e->ino = st.st_ino;
            e->attr = st;
            e->attr_timeout = e->entry_timeout = FS_TIMEOUT;
        }
        return 0;
    }
    if (rc != -ENOENT) return rc;
    rc = check_parent(m, parent);
    if (rc) return rc;
    if (fs_kept_new_name(parent, name, false)) /* notes.txt: an ordinary file, kept */
        return fs_kept_create(m, parent, name, kept_mode, open ? flags : O_EXCL, false, e);
    if (fs_name_kind_in(parent, name) == FS_NAME_REFUSED)
        return fs_refuse_name(m, parent, name, NULL);
    pthread_mutex_lock(&m->lock);
    n = fs_node_find_name(m, parent, name);
    if (n) {
        pthread_mutex_unlock(&m->lock);
        return -EEXIST;
    }
    n = fs_node_new(m, parent, name, mode);
    if (!n) {
        pthread_mutex_unlock(&m->lock);
        return -ENOMEM;
    }
    n->dirty = true;
    fs_node_attr(m, n, &st);
    pthread_mutex_unlock(&m->lock);
    fs_entry_mem(e, &st);
    return 0;
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi)
{
    struct fuse_entry_param e;
    int rc = -EPERM; /* only regular files */
    if (S_ISREG(mode) || !(mode & S_IFMT))
        rc = make_file(M(req), parent, name, mode, fi->flags, true, &e);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = 0;
    fi->keep_cache = 0;
    fs_reply_create(M(req), req, &e, fi);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct fuse_entry_param e;
    int rc = -EPERM; /* mail has no device nodes, fifos or sockets */
    if (S_ISREG(mode)) rc = make_file(M(req), parent, name, mode, O_EXCL, false, &e);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fs_reply_entry(M(req), req, &e);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    fs_node *n = NULL;
    if (fs_ino_kind(ino) == FS_K_KEPT) {
        fs_kept_read(m, req, ino, size, off);
        return;
    }
    if (atomic_load(&m->node_count)) { /* a file being written reads back what was written */
        pthread_mutex_lock(&m->lock);
        n = fs_node_find_ino(m, ino);
        if (!n) pthread_mutex_unlock(&m->lock);
    }
    if (n) {
        size_t have = n->data.len;
        size_t len = off < 0 || (uint64_t)off >= have ? 0 : have - (size_t)off;
        if (len > size) len = size;
        fuse_reply_buf(req, len ? n->data.data + off : NULL, len);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    store_txn *t;
    store_msg msg;
    const char *data;
    size_t len;
    int rc = store_read_begin(m->st, &t);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = fs_msg_lookup(m, t, ino, &msg);
    if (rc == 0) rc = store_msg_body(t, &msg, &data, &len);
    if (rc) {
        store_read_end(&t);
        fuse_reply_err(req, -rc);
        return;
    }
    size_t n_ = off < 0 || (uint64_t)off >= len ? 0 : len - (size_t)off;
    if (n_ > size) n_ = size;
    fuse_reply_buf(req, n_ ? data + off : NULL, n_); /* straight from the memory map */
    store_read_end(&t);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    if (fs_ino_kind(ino) == FS_K_KEPT) {
        int krc = fs_kept_write(m, ino, buf, size, off);
        if (krc)
            fuse_reply_err(req, -krc);
        else
            fuse_reply_write(req, size);
        return;
    }
    fs_node *n = fs_node_pin(m, ino);
    int rc = 0;
    if (!n) {
        if (fs_ino_kind(ino) != FS_K_MSG && !fs_forward(m, ino))
            rc = -EBADF;
        else
            rc = fs_node_open_msg(m, ino, false, true, &n);
    }
    if (rc == 0) {
        pthread_mutex_lock(&m->lock);
        rc = fs_node_write(m, n, buf, size, off);
        pthread_mutex_unlock(&m->lock);
        fs_node_unpin(m, n);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

/* close() waits for FLUSH (RELEASE would come later, asynchronously): so a finished cp is
 * visible over IMAP when it returns, the message is stored here. */
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    if (m->opt.read_only) {
        fuse_reply_err(req, ENOSYS); /* read-only: the kernel stops sending FLUSH */
        return;
    }
    if (fs_ino_kind(ino) == FS_K_KEPT) { /* written through already */
        fuse_reply_err(req, 0);
        return;
    }
    fuse_reply_err(req, -fs_commit_ino(m, ino, true));
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    if (fs_ino_kind(ino) == FS_K_KEPT)
        fuse_reply_err(req, -fs_kept_fsync(M(req), ino, datasync));
    else
        fuse_reply_err(req, -fs_commit_ino(M(req), ino, false));
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    int rc = fs_ino_kind(ino) == FS_K_KEPT ? 0 : fs_commit_ino(m, ino, true);
    if (rc)
        log_warn("mount", "storing inode %#llx on release failed: %s", (unsigned long long)ino,
                 store_strerror(rc));
    fuse_reply_err(req, 0);
}

/* A message expunged by its name (expunge_cb) or by its UID (uid_cb). */
typedef struct expunge_op {
    uint32_t mb;
    const char *name;
    uint32_t uid; /* in for uid_cb, out for expunge_cb */
} expunge_op;

static int expunge_cb(store_txn *w, void *arg)
{
    expunge_op *o = arg;
    store_msg msg;
    int rc = store_msg_by_name(w, o->mb, o->name, &msg);
    if (rc) return rc;
    o->uid = msg.uid;
    return store_msg_expunge(w, o->mb, msg.uid);
}

static int uid_cb(store_txn *w, void *arg)
{
    expunge_op *o = arg;
    return store_msg_expunge(w, o->mb, o->uid);
}

int fs_msg_expunge(fs_mount *m, uint32_t mb, uint32_t uid)
{
    expunge_op o = {.mb = mb, .uid = uid};
    return store_write(m->st, uid_cb, &o);
}

/* Removes NAME from PARENT: an in-memory file, a message, or one in cur/ by its Maildir name. */
static int unlink_name(fs_mount *m, uint64_t parent, const char *name)
{
    enum fs_ino_kind pk = fs_ino_kind(parent);
    if (pk == FS_K_KEPT) return fs_kept_unlink(m, parent, name, false);
    if ((pk == FS_K_ROOT || pk == FS_K_DIR) && !fs_name_is_message(name) &&
        fs_kept_exists(m, parent, name, NULL)) {
        bool mem = false;
        if (atomic_load(&m->node_count)) {
            pthread_mutex_lock(&m->lock);
            mem = fs_node_find_name(m, parent, name) != NULL;
            pthread_mutex_unlock(&m->lock);
        }
        if (!mem) return fs_kept_unlink(m, parent, name, false);
    }
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_name(m, parent, name);
        if (n) {
            n->unlinked = true;
            fs_node_detach(m, n);
        }
        pthread_mutex_unlock(&m->lock);
        if (n) return 0;
    }
    expunge_op o = {.mb = fs_ino_mailbox(parent), .name = name};
    int rc;
    if (fs_ino_kind(parent) == FS_K_MDIR) { /* cur/NAME:2,FLAGS */
        store_txn *t;
        store_msg msg;
        rc = store_read_begin(m->st, &t);
        if (rc == 0) {
            rc = fs_md_msg(m, t, parent, name, &msg);
            store_read_end(&t);
        }
        if (rc == 0) {
            o.mb = msg.mailbox_id;
            o.uid = msg.uid;
            rc = store_write(m->st, uid_cb, &o);
        }
    } else if (fs_ino_kind(parent) == FS_K_DIR) {
        rc = store_write(m->st, expunge_cb, &o);
    } else {
        rc = -ENOENT;
    }
    if (rc == 0) fs_node_mark_unlinked(m, fs_ino_msg(o.mb, o.uid));
    return rc;
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, -unlink_name(M(req), parent, name));
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM); /* mail has no symbolic links */
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM); /* a message lives in one folder under one name */
}
