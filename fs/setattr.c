/* setattr.c: SETATTR: sizes and times of messages and in-memory files (chmod, truncate, touch);
 * folders accept and ignore them */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

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

/* Does what SETATTR asks of INO (FH: through a descriptor); 0 when the reply is INO's
 * attributes, else -errno. */
static int setattr_ino(fs_mount *m, uint64_t ino, const struct stat *attr, int to_set, bool fh)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    int rc;
    if (k == FS_K_KEPT) return fs_kept_setattr(m, ino, attr, to_set);

    /* modes, owners and times of folders are not kept: accept them (rsync -a sets them) */
    if (fs_ino_is_dir(ino)) return (to_set & FUSE_SET_ATTR_SIZE) ? -EISDIR : 0;
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07111))
        return -EPERM; /* mail cannot be executable, setuid or sticky */
    fs_node *n = fs_node_pin(m, ino);
    if (!n && k != FS_K_MSG && !fs_forward(m, ino)) return -ENOENT;
    if (!n) {
        /* a stored message nobody is writing: a new size or mtime stores it again */
        bool change = (to_set & FUSE_SET_ATTR_SIZE) != 0;
        if (to_set & FUSE_SET_ATTR_MTIME) {
            struct stat cur;
            bool mem;
            rc = fs_stat_ino(m, ino, &cur, &mem);
            if (rc) return rc;
            time_t want = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? time(NULL) : attr->st_mtim.tv_sec;
            if (want != cur.st_mtim.tv_sec) change = true;
        }
        if (!change) return 0; /* modes, owners, atime: nothing mail keeps */
        rc = fs_node_open_msg(m, ino, false, fh, &n);
        if (rc) return rc;
    }
    rc = apply_setattr(m, n, attr, to_set, fh);
    /* ftruncate/futimens (FH given): the FLUSH of that descriptor stores it. truncate(1) and
     * touch(1) by path send nothing after this: store a message's buffer now. */
    bool now = rc == 0 && !fh && !n->parent && n->msg_mb && !n->failed;
    fs_node_unpin(m, n);
    if (now) rc = fs_commit_ino(m, ino, true);
    return rc;
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    struct stat st;
    bool mem = false;
    int rc = setattr_ino(m, ino, attr, to_set, fi != NULL);
    if (rc == 0) rc = fs_stat_ino(m, ino, &st, &mem);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, mem ? 0 : FS_TIMEOUT);
}
