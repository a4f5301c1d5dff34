/* stat.c: stat data of the root, mailbox directories, messages and in-memory files, and the clock
 */
#include <errno.h>
#include <string.h>
#include <time.h>

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

void fs_node_attr(fs_mount *m, const fs_node *n, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = n->ino;
    st->st_mode = S_IFREG | (n->mode & 0666);
    st->st_nlink = n->parent ? 1 : 0;
    if (n->msg_mb) st->st_nlink = 1;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    st->st_size = (off_t)n->data.len;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((n->data.len + 511) / 512);
    st->st_mtim = n->mtime;
    st->st_atim = n->mtime;
    st->st_ctim = n->ctime;
}

int64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
