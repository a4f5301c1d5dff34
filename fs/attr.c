/* attr.c: stat data of the root, mailbox directories and messages, and inode resolution */
#include <errno.h>
#include <string.h>

#include "fs/fs_int.h"

static struct timespec ts_from_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    if (ts.tv_nsec < 0) {
        ts.tv_sec--;
        ts.tv_nsec += 1000000000;
    }
    return ts;
}

void fs_msg_attr(fs_mount *m, const store_msg *msg, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = fs_ino_msg(msg->mailbox_id, msg->uid);
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    st->st_size = (off_t)msg->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((msg->size + 511) / 512);
    st->st_mtim.tv_sec = msg->internaldate;
    st->st_atim = st->st_mtim;
    st->st_ctim = ts_from_ns(msg->ctime_ns); /* flag changes move it, nothing else */
}

void fs_dir_attr(fs_mount *m, const store_mailbox *mb, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = fs_ino_dir(mb->id);
    st->st_mode = S_IFDIR | 0700;
    st->st_nlink = 2;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    st->st_size = 4096;
    st->st_blksize = 4096;
    st->st_blocks = 8;
    st->st_mtim = ts_from_ns(mb->mtime_ns);
    st->st_atim = st->st_mtim;
    st->st_ctim = ts_from_ns(mb->ctime_ns > mb->mtime_ns ? mb->ctime_ns : mb->mtime_ns);
}

void fs_mdir_attr(fs_mount *m, const store_mailbox *mb, unsigned which, struct stat *st)
{
    fs_dir_attr(m, mb, st);
    st->st_ino = fs_ino_mdir(mb->id, which);
    st->st_mtim = st->st_ctim;
    st->st_atim = st->st_mtim;
}

void fs_root_attr(fs_mount *m, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = FS_INO_ROOT;
    st->st_mode = S_IFDIR | 0700;
    st->st_nlink = 2;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    st->st_size = 4096;
    st->st_blksize = 4096;
    st->st_blocks = 8;
    st->st_mtim = ts_from_ns(atomic_load(&m->root_mtime_ns));
    st->st_atim = st->st_mtim;
    st->st_ctim = st->st_mtim;
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

int fs_mdir_mailbox(fs_mount *m, store_txn *t, uint64_t mdir, store_mailbox *mb)
{
    if (fs_ino_kind(mdir) != FS_K_MDIR) return -ENOENT;
    return fs_dir_mailbox(m, t, fs_ino_dir(fs_ino_mailbox(mdir)), mb);
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
