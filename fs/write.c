/* write.c: the write side of the mount: open for writing, create, write, commit, rename, unlink,
 * mkdir, rmdir, setattr and flags */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/fs_int.h"
#include "store/log.h"
#include "fs/ops.h"

static fs_mount *M(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static bool is_dir_ino(uint64_t ino)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    return k == FS_K_ROOT || k == FS_K_DIR || k == FS_K_MDIR;
}

/*
 * Open files have no handle of their own (fh is always 0): the kernel is told to skip OPEN
 * and RELEASE (ENOSYS to OPEN), so writes, FLUSH and SETATTR find their in-memory file by
 * inode. A stored message gets a write buffer (a detached node keyed by its inode) on its
 * first write or truncation; FLUSH (which close() waits for) stores it, then drops it.
 */

/* Unpins N; frees it when it is detached and holds nothing left to store. */
static void node_unpin(fs_mount *m, fs_node *n)
{
    pthread_mutex_lock(&m->lock);
    n->pins--;
    fs_node_put(m, n);
    pthread_mutex_unlock(&m->lock);
}

/* The in-memory file of INO, pinned, or NULL. */
static fs_node *node_find(fs_mount *m, uint64_t ino)
{
    if (!atomic_load(&m->node_count)) return NULL;
    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_ino(m, ino);
    if (n) n->pins++;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* The write buffer of stored message INO (made from the store unless TRUNC), pinned. If the
 * message does not fit in memory, KEEP_FAILED (a descriptor writes: its FLUSH will come) leaves
 * a failed buffer behind, so that the descriptor's later writes fail too and its close reports
 * the error, rather than writing into a fresh copy with a part missing. */
static int open_msg_for_write(fs_mount *m, uint64_t ino, bool trunc, bool keep_failed,
                              fs_node **out)
{
    fs_node *n = node_find(m, ino);
    if (n) {
        int rc = 0;
        if (trunc) {
            pthread_mutex_lock(&m->lock);
            rc = fs_node_resize(m, n, 0);
            pthread_mutex_unlock(&m->lock);
        }
        if (rc) {
            node_unpin(m, n);
            return rc;
        }
        *out = n;
        return 0;
    }
    store_txn *t;
    store_msg msg;
    const char *data = NULL;
    size_t len = 0;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_msg_lookup(m, t, ino, &msg);
    if (rc == 0 && !trunc) rc = store_msg_body(t, &msg, &data, &len);
    if (rc) {
        store_read_end(&t);
        return rc;
    }
    pthread_mutex_lock(&m->lock);
    n = fs_node_find_ino(m, ino); /* another writer may have won the race */
    if (n) {
        n->pins++;
        pthread_mutex_unlock(&m->lock);
        store_read_end(&t);
        *out = n;
        return 0;
    }
    n = fs_node_new(m, 0, msg.filename, 0600);
    if (!n) {
        pthread_mutex_unlock(&m->lock);
        store_read_end(&t);
        return -ENOMEM;
    }
    n->ino = ino;
    n->eml = true;
    n->msg_mb = msg.mailbox_id;
    n->msg_uid = msg.uid;
    n->pins = 1;
    rc = fs_node_resize(m, n, len);
    if (rc == 0 && len) memcpy(n->data, data, len);
    n->mtime.tv_sec = msg.internaldate;
    n->mtime.tv_nsec = 0;
    n->dirty = trunc;
    store_read_end(&t);
    if (rc) {
        n->pins = 0;
        if (keep_failed)
            fs_node_fail(n, rc);
        else
            n->unlinked = true;
        fs_node_put(m, n);
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    pthread_mutex_unlock(&m->lock);
    *out = n;
    return 0;
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    int acc = fi->flags & O_ACCMODE;
    bool wr = acc != O_RDONLY || (fi->flags & O_TRUNC);
    enum fs_ino_kind k = fs_ino_kind(ino);

    if (m->no_open) {
        fuse_reply_err(req, ENOSYS); /* the kernel stops sending OPEN and RELEASE */
        return;
    }
    if (k == FS_K_ROOT || k == FS_K_DIR || k == FS_K_MDIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    fi->fh = 0;
    if (wr && (fi->flags & O_TRUNC)) { /* atomic_o_trunc: truncation comes with OPEN */
        fs_node *n = node_find(m, ino);
        int rc = 0;
        if (n) {
            pthread_mutex_lock(&m->lock);
            rc = fs_node_resize(m, n, 0);
            pthread_mutex_unlock(&m->lock);
            node_unpin(m, n);
        } else if (k == FS_K_MEM && !fs_forward(m, ino)) {
            rc = -ENOENT;
        } else {
            rc = open_msg_for_write(m, ino, true, false, &n);
            if (rc == 0) node_unpin(m, n);
        }
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    if (!wr && k == FS_K_MSG) {
        fi->keep_cache = 1; /* messages never change: a new content is a new inode */
        fi->noflush = 1;
    }
    fuse_reply_open(req, fi);
}

static int check_parent(fs_mount *m, uint64_t parent)
{
    if (!is_dir_ino(parent)) return -ENOTDIR;
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
 * A file named NAME in DIR would be neither a message nor a known tool's temporary file:
 * nothing written to it could be kept, so it is refused (EPERM) rather than accepted and lost
 * at unmount. The log says so, at most FS_REFUSED_LOG lines a second (a script may try
 * thousands), then how many it left out. NAME passed fs_name_check: valid UTF-8 without
 * control characters, safe to quote.
 */
#define FS_REFUSED_LOG 20
static int refuse_name(fs_mount *m, uint64_t dir, const char *name, const char *from)
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
    else
        log_warn("mount",
                 "refused to %s '%s' in %s: a folder holds messages (NAME.eml) and the temporary "
                 "files of editors, sed, perl and rsync only",
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
    if (!is_dir_ino(parent)) return -ENOTDIR;
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
            rc = open_msg_for_write(m, st.st_ino, true, false, &n);
            if (rc) return rc;
            pthread_mutex_lock(&m->lock);
            fs_node_attr(m, n, &st);
            pthread_mutex_unlock(&m->lock);
            node_unpin(m, n);
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
    if (fs_name_kind_in(parent, name) == FS_NAME_REFUSED) return refuse_name(m, parent, name, NULL);
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
    if (!S_ISREG(mode) && (mode & S_IFMT)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int rc = make_file(M(req), parent, name, mode, fi->flags, true, &e);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = 0;
    fi->keep_cache = 0;
    fuse_reply_create(req, &e, fi);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct fuse_entry_param e;
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM); /* mail has no device nodes, fifos or sockets */
        return;
    }
    int rc = make_file(M(req), parent, name, mode, O_EXCL, false, &e);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    fs_node *n = node_find(m, ino);
    int rc = 0;
    if (!n) {
        if (fs_ino_kind(ino) != FS_K_MSG && !fs_forward(m, ino))
            rc = -EBADF;
        else
            rc = open_msg_for_write(m, ino, false, true, &n);
    }
    if (rc == 0) {
        pthread_mutex_lock(&m->lock);
        rc = fs_node_write(m, n, buf, size, off);
        pthread_mutex_unlock(&m->lock);
        node_unpin(m, n);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

/* Stores what was written to INO. A failed store, or a file whose write failed, drops the
 * content: nothing half-written is stored, a stored message keeps its stored version, a new
 * file is gone. Only a close (CLOSING) drops a failed file: after fsync its descriptor's
 * writes still fail and its close still reports the error. */
static int commit_ino(fs_mount *m, uint64_t ino, bool closing)
{
    fs_node *n = node_find(m, ino);
    if (!n) return 0;
    pthread_mutex_lock(&m->lock);
    int rc = n->failed;
    pthread_mutex_unlock(&m->lock);
    if (rc && !closing) {
        node_unpin(m, n);
        return rc;
    }
    if (!rc) rc = fs_node_commit(m, n);
    pthread_mutex_lock(&m->lock);
    /* an emptied message stays in memory (mail cannot be empty) until it is written again */
    if (rc) n->unlinked = true; /* dropped when unpinned */
    if (rc && n->parent) fs_node_detach(m, n);
    pthread_mutex_unlock(&m->lock);
    node_unpin(m, n);
    /* the kernel keeps the pages written to a stored message's inode: they were never stored */
    if (rc) fs_watch_inval_data(m, ino);
    return rc;
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
    fuse_reply_err(req, -commit_ino(m, ino, true));
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, -commit_ino(M(req), ino, false));
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    int rc = commit_ino(m, ino, true);
    if (rc)
        log_warn("mount", "storing inode %#llx on release failed: %s", (unsigned long long)ino,
                 store_strerror(rc));
    fuse_reply_err(req, 0);
}

/* ---- setattr ----------------------------------------------------------------------------- */

static void reply_attr_of(fuse_req_t req, fs_mount *m, uint64_t ino)
{
    struct stat st;
    bool mem;
    int rc = fs_stat_ino(m, ino, &st, &mem);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, mem ? 0 : FS_TIMEOUT);
}

/* A truncation through a descriptor (FH) that fails marks the file failed, as a failed write
 * does; by path (truncate(2), or O_TRUNC, which comes as a SETATTR without a descriptor) it
 * changes nothing and nothing closes the file later, so it only fails. */
static int apply_setattr(fs_mount *m, fs_node *n, const struct stat *attr, int to_set, bool fh)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    if (to_set & FUSE_SET_ATTR_MODE) n->mode = attr->st_mode & 0666;
    if (to_set & FUSE_SET_ATTR_SIZE) {
        rc = attr->st_size < 0 ? -EINVAL : fs_node_resize(m, n, (uint64_t)attr->st_size);
        if (rc && fh) fs_node_fail(n, rc);
    }
    if (rc == 0 && (to_set & FUSE_SET_ATTR_MTIME)) {
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            clock_gettime(CLOCK_REALTIME, &n->mtime);
        else
            n->mtime = attr->st_mtim;
        clock_gettime(CLOCK_REALTIME, &n->ctime);
        if (n->msg_mb || n->eml) n->dirty = true; /* INTERNALDATE changes: stored again on commit */
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    enum fs_ino_kind k = fs_ino_kind(ino);
    int rc;

    if (k == FS_K_ROOT || k == FS_K_DIR || k == FS_K_MDIR) {
        /* modes, owners and times of folders are not kept: accept them (rsync -a sets them) */
        if (to_set & FUSE_SET_ATTR_SIZE)
            fuse_reply_err(req, EISDIR);
        else
            reply_attr_of(req, m, ino);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07111)) {
        fuse_reply_err(req, EPERM); /* mail cannot be executable, setuid or sticky */
        return;
    }
    fs_node *n = node_find(m, ino);
    if (!n && k != FS_K_MSG && !fs_forward(m, ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (!n) {
        /* a stored message nobody is writing: a new size or mtime stores it again */
        bool change = (to_set & FUSE_SET_ATTR_SIZE) != 0;
        if (to_set & FUSE_SET_ATTR_MTIME) {
            struct stat cur;
            bool mem;
            rc = fs_stat_ino(m, ino, &cur, &mem);
            if (rc) {
                fuse_reply_err(req, -rc);
                return;
            }
            time_t want = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? time(NULL) : attr->st_mtim.tv_sec;
            if (want != cur.st_mtim.tv_sec) change = true;
        }
        if (!change) { /* modes, owners, atime: nothing mail keeps */
            reply_attr_of(req, m, ino);
            return;
        }
        rc = open_msg_for_write(m, ino, false, fi != NULL, &n);
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    rc = apply_setattr(m, n, attr, to_set, fi != NULL);
    /* ftruncate/futimens (FH given): the FLUSH of that descriptor stores it. truncate(1) and
     * touch(1) by path send nothing after this: store a message's buffer now. */
    bool now = rc == 0 && !fi && !n->parent && n->msg_mb && !n->failed;
    node_unpin(m, n);
    if (now) rc = commit_ino(m, ino, true);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_attr_of(req, m, ino);
}

/* ---- names ------------------------------------------------------------------------------- */

typedef struct name_op {
    uint32_t mb, uid;
    const char *name;
    uint32_t dst_mb;
    const char *dst_name;
    bool noreplace;
    uint32_t out_uid;
    uint32_t expunged_uid;
} name_op;

static int expunge_cb(store_txn *w, void *arg)
{
    name_op *o = arg;
    store_msg msg;
    int rc = store_msg_by_name(w, o->mb, o->name, &msg);
    if (rc) return rc;
    o->expunged_uid = msg.uid;
    return store_msg_expunge(w, o->mb, msg.uid);
}

static int expunge_uid_cb(store_txn *w, void *arg)
{
    name_op *o = arg;
    return store_msg_expunge(w, o->mb, o->uid);
}

static void mark_unlinked(fs_mount *m, uint64_t ino)
{
    if (!atomic_load(&m->node_count)) return;
    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_ino(m, ino);
    if (n) {
        n->unlinked = true;
        fs_node_put(m, n);
    }
    pthread_mutex_unlock(&m->lock);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = M(req);
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_name(m, parent, name);
        if (n) {
            n->unlinked = true;
            fs_node_detach(m, n);
        }
        pthread_mutex_unlock(&m->lock);
        if (n) {
            fuse_reply_err(req, 0);
            return;
        }
    }
    if (fs_ino_kind(parent) == FS_K_MDIR) { /* cur/NAME:2,FLAGS */
        store_txn *t;
        store_msg msg = {0};
        int rc = store_read_begin(m->st, &t);
        if (rc == 0) {
            rc = fs_md_msg(m, t, parent, name, &msg);
            store_read_end(&t);
        }
        name_op o = {.mb = msg.mailbox_id, .uid = msg.uid};
        if (rc == 0) rc = store_write(m->st, expunge_uid_cb, &o);
        if (rc == 0) mark_unlinked(m, fs_ino_msg(o.mb, o.uid));
        fuse_reply_err(req, -rc);
        return;
    }
    if (fs_ino_kind(parent) != FS_K_DIR) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    name_op o = {.mb = fs_ino_mailbox(parent), .name = name};
    int rc = store_write(m->st, expunge_cb, &o);
    if (rc == 0) mark_unlinked(m, fs_ino_msg(o.mb, o.expunged_uid));
    fuse_reply_err(req, -rc);
}

typedef struct mbox_op {
    uint32_t user_id;
    const char *name, *to;
    store_mailbox out;
} mbox_op;

static int mkdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_create(w, o->user_id, o->name, 0, &o->out);
}

static int rmdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_delete(w, o->user_id, o->name, STORE_DEL_IF_EMPTY);
}

static int mvdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_rename(w, o->user_id, o->name, o->to);
}

static int full_name(fs_mount *m, uint64_t parent, const char *name, char *buf, size_t size)
{
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_child_mailbox_name(m, t, parent, name, buf, size);
    store_read_end(&t);
    return rc;
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fs_mount *m = M(req);
    char full[STORE_NAME_MAX + 1];
    const char *why;
    int rc = fs_name_check(name);
    if (rc == 0 && !is_dir_ino(parent)) rc = -ENOTDIR;
    if (rc == 0 && fs_ino_kind(parent) == FS_K_MDIR) rc = -EPERM; /* no folders in a Maildir */
    if (rc == 0) rc = full_name(m, parent, name, full, sizeof full);
    if (rc == 0 && store_mailbox_name_check(full, &why) != 0) rc = -EINVAL;
    if (rc == 0 && atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        if (fs_node_find_name(m, parent, name)) rc = -EEXIST;
        pthread_mutex_unlock(&m->lock);
    }
    mbox_op o = {.user_id = m->user_id, .name = full};
    if (rc == 0) rc = store_write(m->st, mkdir_cb, &o);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e = {0};
    fs_dir_attr(m, &o.out, &e.attr);
    e.ino = e.attr.st_ino;
    e.attr_timeout = e.entry_timeout = FS_TIMEOUT;
    fuse_reply_entry(req, &e);
}

static bool has_mem_children(fs_mount *m, uint64_t dir)
{
    bool found = false;
    if (!atomic_load(&m->node_count)) return false;
    pthread_mutex_lock(&m->lock);
    for (fs_node *n = m->nodes; n && !found; n = n->next)
        found = n->parent == dir;
    pthread_mutex_unlock(&m->lock);
    return found;
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = M(req);
    char full[STORE_NAME_MAX + 1];
    struct stat st;
    int rc = full_name(m, parent, name, full, sizeof full);
    if (rc == 0) {
        store_txn *t;
        rc = store_read_begin(m->st, &t);
        if (rc == 0) {
            rc = fs_lookup_store(m, t, parent, name, &st);
            store_read_end(&t);
        }
        if (rc == 0 && !S_ISDIR(st.st_mode)) rc = -ENOTDIR;
        if (rc == 0 && fs_ino_kind(st.st_ino) == FS_K_MDIR) rc = -EPERM; /* the Maildir view */
        if (rc == 0 && (has_mem_children(m, st.st_ino) ||
                        has_mem_children(m, fs_ino_mdir(fs_ino_mailbox(st.st_ino), FS_MD_TMP))))
            rc = -ENOTEMPTY;
    }
    mbox_op o = {.user_id = m->user_id, .name = full};
    if (rc == 0) rc = store_write(m->st, rmdir_cb, &o);
    fuse_reply_err(req, -rc);
}

/* ---- rename ------------------------------------------------------------------------------ */

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
    rc = store_write(m->st, expunge_uid_cb, &o);
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
    if (!is_dir_ino(parent) || !is_dir_ino(newparent)) {
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
        fuse_reply_err(req, -refuse_name(m, newparent, newname, name));
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
        rc = full_name(m, parent, name, from, sizeof from);
        if (rc == 0) rc = full_name(m, newparent, newname, to, sizeof to);
        if (rc == 0 && store_mailbox_name_check(to, &why) != 0) rc = -EINVAL;
        if (rc == 0 && (strncmp(to, from, strlen(from)) == 0 && to[strlen(from)] == '/'))
            rc = -EINVAL; /* into itself */
        mbox_op o = {.user_id = m->user_id, .name = from, .to = to};
        if (rc == 0) rc = store_write(m->st, mvdir_cb, &o);
        fuse_reply_err(req, -rc);
        return;
    }
    if (kind == FS_NAME_REFUSED) {
        fuse_reply_err(req, -refuse_name(m, newparent, newname, name));
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
        if (o.expunged_uid) mark_unlinked(m, fs_ino_msg(o.dst_mb, o.expunged_uid));
    }
    fuse_reply_err(req, -rc);
}

/* ---- flags ------------------------------------------------------------------------------- */

typedef struct flags_op {
    fs_mount *m;
    uint64_t ino;
    uint32_t flags;
    const char *keywords;
} flags_op;

static int flags_cb(store_txn *w, void *arg)
{
    flags_op *o = arg;
    store_msg msg;
    int rc = fs_msg_lookup(o->m, w, o->ino, &msg);
    if (rc) return rc;
    return store_msg_set_flags(w, msg.mailbox_id, msg.uid, STORE_FLAGS_SET, o->flags, o->keywords,
                               0, NULL);
}

static void set_flags(fuse_req_t req, fuse_ino_t ino, uint32_t flags, char *kw)
{
    fs_mount *m = M(req);
    enum fs_ino_kind k = fs_ino_kind(ino);
    bool stored = k == FS_K_MSG;
    int rc = 0;
    if (k == FS_K_MEM || k == FS_K_MSG) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = atomic_load(&m->node_count) ? fs_node_find_ino(m, ino) : NULL;
        if (n) {
            free(n->keywords);
            n->keywords = strdup(kw);
            n->flags = flags;
            n->flags_set = true;
            clock_gettime(CLOCK_REALTIME, &n->ctime);
            stored = n->msg_mb != 0;
        } else {
            stored = true; /* committed and gone from memory: the store has it (forwards) */
        }
        pthread_mutex_unlock(&m->lock);
    } else {
        rc = -ENOTSUP; /* folders have no flags */
    }
    if (rc == 0 && stored) {
        flags_op o = {.m = m, .ino = ino, .flags = flags, .keywords = kw};
        rc = store_write(m->st, flags_cb, &o);
        if (rc == -ENOENT && k == FS_K_MEM) rc = 0;
    }
    free(kw);
    fuse_reply_err(req, -rc);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    if (strcmp(name, "user.mail.uid") == 0 || strcmp(name, "user.mail.modseq") == 0) {
        fuse_reply_err(req, EPERM); /* read-only */
        return;
    }
    if (strcmp(name, "user.mail.flags") != 0) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    uint32_t f;
    char *kw;
    int rc = fs_flags_parse(value, size, &f, &kw);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    set_flags(req, ino, f, kw);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    if (strcmp(name, "user.mail.flags") != 0) {
        fuse_reply_err(req, strncmp(name, "user.mail.", 10) == 0 ? EPERM : ENODATA);
        return;
    }
    char *kw = strdup("");
    if (!kw) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    set_flags(req, ino, 0, kw);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM); /* mail has no symbolic links */
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM); /* a message lives in one folder under one name */
}
