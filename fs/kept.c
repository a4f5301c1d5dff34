/* kept.c: kept files: names that are not messages, kept as ordinary files and directories in
 * the store's kept trees (store_files_dir) and passed straight through to them */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_int.h"

/*
 * The kernel knows a kept file by FS_INO_KEPT | its inode number in the tree (stable across
 * remounts, never equal to another kind's). The mount finds the file again by name: each inode
 * the kernel holds has an entry with its parent (a kept directory, a mailbox directory or the
 * root) and its name there, so a renamed directory takes its children along. Entries live as
 * long as the kernel's lookup count. A file the kernel holds may keep a descriptor open on it
 * (reads and writes come without a handle of their own, fs/file.c says why): a file removed
 * while open is still read and written through it.
 */
#define KEPT_BUCKETS 4096u
#define KEPT_FDS_MAX 256 /* descriptors kept open at once (removed files' not counted) */

typedef struct kept_ent {
    struct kept_ent *next;
    uint64_t ino, parent;
    char *name;
    uint64_t nlookup;
    int fd;        /* -1: none open */
    bool unlinked; /* removed: only FD reaches it */
} kept_ent;

struct fs_kept {
    pthread_mutex_t lock;
    kept_ent *b[KEPT_BUCKETS];
    int fds;
};

int fs_kept_init(fs_mount *m)
{
    m->kept = calloc(1, sizeof *m->kept);
    if (!m->kept) return -ENOMEM;
    pthread_mutex_init(&m->kept->lock, NULL);
    return 0;
}

void fs_kept_free(fs_mount *m)
{
    if (!m->kept) return;
    for (size_t i = 0; i < KEPT_BUCKETS; i++)
        for (kept_ent *e = m->kept->b[i], *nx; e; e = nx) {
            nx = e->next;
            if (e->fd >= 0) close(e->fd);
            free(e->name);
            free(e);
        }
    pthread_mutex_destroy(&m->kept->lock);
    free(m->kept);
    m->kept = NULL;
}

static kept_ent **slot(fs_kept *k, uint64_t ino)
{
    kept_ent **p = &k->b[(ino * 0x9e3779b97f4a7c15ull) >> 52 & (KEPT_BUCKETS - 1)];
    while (*p && (*p)->ino != ino)
        p = &(*p)->next;
    return p;
}

bool fs_kept_new_name(uint64_t parent, const char *name, bool dir)
{
    enum fs_ino_kind k = fs_ino_kind(parent);
    if (k == FS_K_KEPT) return true;
    if (k == FS_K_ROOT) return dir ? name[0] == '.' : !fs_name_is_message(name);
    if (k != FS_K_DIR || fs_md_which(name)) return false;
    if (dir) return name[0] == '.';
    return fs_name_kind_in(parent, name) == FS_NAME_REFUSED;
}

/* The path of INO below its mailbox's tree into BUF, and that mailbox (STORE_FILES_TOP for the
 * root) into *MB; with k->lock held. */
static int path_locked(fs_kept *k, uint64_t ino, uint32_t *mb, char *buf, size_t size)
{
    const char *parts[64];
    size_t n = 0;
    while (fs_ino_kind(ino) == FS_K_KEPT) {
        kept_ent *e = *slot(k, ino);
        if (!e || e->unlinked || n == 64) return -ESTALE;
        parts[n++] = e->name;
        ino = e->parent;
    }
    if (ino == FS_INO_ROOT)
        *mb = STORE_FILES_TOP;
    else if (fs_ino_kind(ino) == FS_K_DIR)
        *mb = fs_ino_mailbox(ino);
    else
        return -ESTALE;
    size_t used = 0;
    buf[0] = 0;
    while (n--) {
        int w = snprintf(buf + used, size - used, "%s%s", used ? "/" : "", parts[n]);
        if (w < 0 || (size_t)w >= size - used) return -ENAMETOOLONG;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, size, ".");
    return 0;
}

/* Where NAME in directory PARENT is: *dirfd (the caller closes it) and the path below it. */
static int kept_at(fs_mount *m, uint64_t parent, const char *name, bool create, int *dirfd,
                   char *path, size_t size)
{
    uint32_t mb;
    char dir[PATH_MAX];
    pthread_mutex_lock(&m->kept->lock);
    int rc = path_locked(m->kept, parent, &mb, dir, sizeof dir);
    pthread_mutex_unlock(&m->kept->lock);
    if (rc) return rc;
    if (name) {
        if ((size_t)snprintf(path, size, "%s/%s", dir, name) >= size) return -ENAMETOOLONG;
    } else {
        snprintf(path, size, "%s", dir);
    }
    return store_files_dir(m->st, m->user_id, mb, create, dirfd);
}

/* What the mount shows of a kept file's stat data. */
static int kept_attr(fs_mount *m, struct stat *st)
{
    if ((uint64_t)st->st_ino >= FS_INO_KEPT_MAX) return -EOVERFLOW;
    st->st_ino = FS_INO_KEPT | (uint64_t)st->st_ino;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    if (S_ISDIR(st->st_mode)) st->st_nlink = 2;
    return 0;
}

/* Records that NAME in PARENT is ST's inode (the lookup count is raised by fs_kept_ref). */
static int kept_note(fs_mount *m, uint64_t ino, uint64_t parent, const char *name)
{
    fs_kept *k = m->kept;
    char *dup = strdup(name);
    if (!dup) return -ENOMEM;
    pthread_mutex_lock(&k->lock);
    kept_ent **p = slot(k, ino), *e = *p;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&k->lock);
            free(dup);
            return -ENOMEM;
        }
        e->ino = ino;
        e->fd = -1;
        *p = e;
    }
    free(e->name);
    e->name = dup;
    e->parent = parent;
    e->unlinked = false;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

void fs_kept_ref(fs_mount *m, uint64_t ino, uint64_t n)
{
    pthread_mutex_lock(&m->kept->lock);
    kept_ent *e = *slot(m->kept, ino);
    if (e) e->nlookup += n;
    pthread_mutex_unlock(&m->kept->lock);
}

void fs_kept_forget(fs_mount *m, uint64_t ino, uint64_t n)
{
    fs_kept *k = m->kept;
    pthread_mutex_lock(&k->lock);
    kept_ent **p = slot(k, ino), *e = *p;
    if (e) {
        e->nlookup = e->nlookup > n ? e->nlookup - n : 0;
        if (!e->nlookup) {
            *p = e->next;
            if (e->fd >= 0) {
                close(e->fd);
                if (!e->unlinked) k->fds--;
            }
            free(e->name);
            free(e);
        }
    }
    pthread_mutex_unlock(&k->lock);
}

/* Stat data of NAME in PARENT into *st (noted for the entry the caller hands the kernel). */
static int stat_at(fs_mount *m, uint64_t parent, const char *name, struct stat *st)
{
    char path[PATH_MAX];
    int dfd;
    int rc = kept_at(m, parent, name, false, &dfd, path, sizeof path);
    if (rc) return rc;
    rc = fstatat(dfd, path, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
    close(dfd);
    if (rc == 0 && !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
        rc = -ENOENT; /* nothing else is ever made here */
    if (rc == 0) rc = kept_attr(m, st);
    if (rc == 0) rc = kept_note(m, st->st_ino, parent, name);
    return rc;
}

static void entry(struct fuse_entry_param *e, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->ino = st->st_ino;
    e->attr = *st;
    /* every change of a kept file comes through the mount, which the kernel sees */
    e->attr_timeout = e->entry_timeout = FS_TIMEOUT;
}

int fs_kept_lookup(fs_mount *m, uint64_t parent, const char *name, struct fuse_entry_param *e)
{
    struct stat st;
    int rc = stat_at(m, parent, name, &st);
    if (rc == 0) entry(e, &st);
    return rc;
}

/* A descriptor of kept file INO (a dup: the caller closes it). */
static int kept_fd(fs_mount *m, uint64_t ino, int *out)
{
    fs_kept *k = m->kept;
    pthread_mutex_lock(&k->lock);
    kept_ent *e = *slot(k, ino);
    if (e && e->fd >= 0) {
        *out = dup(e->fd);
        pthread_mutex_unlock(&k->lock);
        return *out >= 0 ? 0 : -errno;
    }
    pthread_mutex_unlock(&k->lock);
    if (!e) return -ESTALE;
    char path[PATH_MAX];
    int dfd;
    uint32_t mb;
    pthread_mutex_lock(&k->lock);
    int rc = path_locked(k, ino, &mb, path, sizeof path);
    pthread_mutex_unlock(&k->lock);
    if (rc) return rc;
    rc = store_files_dir(m->st, m->user_id, mb, false, &dfd);
    if (rc) return rc == -ENOENT ? -ESTALE : rc;
    int fd = openat(dfd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (errno == EACCES || errno == EISDIR))
        fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    rc = fd < 0 ? -errno : 0;
    close(dfd);
    if (rc) return rc;
    *out = dup(fd);
    if (*out < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    pthread_mutex_lock(&k->lock);
    e = *slot(k, ino);
    if (e && e->fd < 0) {
        if (k->fds >= KEPT_FDS_MAX) /* too many open: close the others' */
            for (size_t i = 0; i < KEPT_BUCKETS; i++)
                for (kept_ent *o = k->b[i]; o; o = o->next)
                    if (o->fd >= 0 && !o->unlinked) {
                        close(o->fd);
                        o->fd = -1;
                        k->fds--;
                    }
        e->fd = fd;
        k->fds++;
        fd = -1;
    }
    pthread_mutex_unlock(&k->lock);
    if (fd >= 0) close(fd);
    return 0;
}

int fs_kept_stat(fs_mount *m, uint64_t ino, struct stat *st)
{
    fs_kept *k = m->kept;
    pthread_mutex_lock(&k->lock);
    kept_ent *e = *slot(k, ino);
    int fd = e && e->fd >= 0 ? dup(e->fd) : -1;
    bool known = e != NULL;
    pthread_mutex_unlock(&k->lock);
    if (!known) return -ESTALE;
    int rc;
    if (fd >= 0) {
        rc = fstat(fd, st) == 0 ? 0 : -errno;
        close(fd);
    } else {
        char path[PATH_MAX];
        uint32_t mb;
        int dfd;
        pthread_mutex_lock(&k->lock);
        rc = path_locked(k, ino, &mb, path, sizeof path);
        pthread_mutex_unlock(&k->lock);
        if (rc == 0) rc = store_files_dir(m->st, m->user_id, mb, false, &dfd);
        if (rc == 0) {
            rc = fstatat(dfd, path, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
            close(dfd);
        }
    }
    if (rc == 0) rc = kept_attr(m, st);
    return rc;
}

int fs_kept_create(fs_mount *m, uint64_t parent, const char *name, mode_t mode, int flags, bool dir,
                   struct fuse_entry_param *e)
{
    char path[PATH_MAX];
    int dfd;
    struct stat st;
    int rc = kept_at(m, parent, name, true, &dfd, path, sizeof path);
    if (rc) return rc;
    mode &= 0777;
    if (dir) {
        rc = mkdirat(dfd, path, mode | 0700) == 0 ? 0 : -errno;
    } else {
        int fd = openat(dfd, path,
                        O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (flags & (O_EXCL | O_TRUNC)),
                        mode | 0600);
        rc = fd < 0 ? -errno : 0;
        if (fd >= 0) close(fd);
    }
    close(dfd);
    if (rc == 0) rc = stat_at(m, parent, name, &st);
    if (rc == 0) entry(e, &st);
    return rc;
}

/* Keeps a descriptor on kept file INO if the kernel holds it, then marks it removed. */
static void keep_removed(fs_mount *m, uint64_t ino)
{
    int fd;
    if (kept_fd(m, ino, &fd) == 0) close(fd);
    fs_kept *k = m->kept;
    pthread_mutex_lock(&k->lock);
    kept_ent *e = *slot(k, ino);
    if (e && !e->unlinked) {
        e->unlinked = true;
        if (e->fd >= 0) k->fds--;
    }
    pthread_mutex_unlock(&k->lock);
}

int fs_kept_unlink(fs_mount *m, uint64_t parent, const char *name, bool dir)
{
    char path[PATH_MAX];
    int dfd;
    struct stat st;
    int rc = kept_at(m, parent, name, false, &dfd, path, sizeof path);
    if (rc) return rc;
    if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = -errno;
    } else if (dir != S_ISDIR(st.st_mode)) {
        rc = dir ? -ENOTDIR : -EISDIR;
    } else {
        uint64_t ino = FS_INO_KEPT | (uint64_t)st.st_ino;
        if (!dir) keep_removed(m, ino);
        rc = unlinkat(dfd, path, dir ? AT_REMOVEDIR : 0) == 0 ? 0 : -errno;
        if (rc == 0 && dir) {
            pthread_mutex_lock(&m->kept->lock);
            kept_ent *e = *slot(m->kept, ino);
            if (e) e->unlinked = true;
            pthread_mutex_unlock(&m->kept->lock);
        }
    }
    close(dfd);
    return rc;
}

bool fs_kept_exists(fs_mount *m, uint64_t parent, const char *name, mode_t *mode)
{
    char path[PATH_MAX];
    int dfd;
    struct stat st;
    if (kept_at(m, parent, name, false, &dfd, path, sizeof path) != 0) return false;
    bool found = fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
    close(dfd);
    if (found && mode) *mode = st.st_mode;
    return found;
}

int fs_kept_put(fs_mount *m, uint64_t parent, const char *name, const char *data, size_t len,
                mode_t mode, bool noreplace)
{
    char path[PATH_MAX];
    int dfd;
    int rc = kept_at(m, parent, name, true, &dfd, path, sizeof path);
    if (rc) return rc;
    struct stat old;
    if (fstatat(dfd, path, &old, AT_SYMLINK_NOFOLLOW) == 0) {
        if (noreplace)
            rc = -EEXIST;
        else if (S_ISDIR(old.st_mode))
            rc = -EISDIR;
        else
            keep_removed(m, FS_INO_KEPT | (uint64_t)old.st_ino);
    }
    /* written beside it, then renamed over it: the old content stays whole until then */
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.mailfs-%ld", path, (long)getpid());
    int fd = rc ? -1
                : openat(dfd, tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                         (mode & 0777) | 0600);
    if (!rc && fd < 0) rc = -errno;
    for (size_t done = 0; fd >= 0 && rc == 0 && done < len;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno != EINTR) rc = -errno;
        if (w > 0) done += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0 && !rc) rc = -errno;
    if (rc == 0 && renameat(dfd, tmp, dfd, path) != 0) rc = -errno;
    if (rc && fd >= 0) unlinkat(dfd, tmp, 0);
    close(dfd);
    return rc;
}

int fs_kept_rename(fs_mount *m, uint64_t parent, const char *name, uint64_t newparent,
                   const char *newname, unsigned flags)
{
    char from[PATH_MAX], to[PATH_MAX];
    int a, b;
    struct stat st, old;
    int rc = kept_at(m, parent, name, false, &a, from, sizeof from);
    if (rc) return rc;
    rc = kept_at(m, newparent, newname, true, &b, to, sizeof to);
    if (rc) {
        close(a);
        return rc;
    }
    if (fstatat(a, from, &st, AT_SYMLINK_NOFOLLOW) != 0) rc = -errno;
    bool replaced = rc == 0 && fstatat(b, to, &old, AT_SYMLINK_NOFOLLOW) == 0;
    if (replaced && S_ISREG(old.st_mode) && old.st_ino != st.st_ino && !(flags & RENAME_EXCHANGE))
        keep_removed(m, FS_INO_KEPT | (uint64_t)old.st_ino);
    if (rc == 0) rc = renameat2(a, from, b, to, flags) == 0 ? 0 : -errno;
    if (rc == 0) {
        uint64_t ino = FS_INO_KEPT | (uint64_t)st.st_ino;
        pthread_mutex_lock(&m->kept->lock);
        kept_ent *e = *slot(m->kept, ino);
        char *dup = e ? strdup(newname) : NULL;
        if (dup) {
            free(e->name);
            e->name = dup;
            e->parent = newparent;
        }
        if (replaced && (flags & RENAME_EXCHANGE) &&
            (e = *slot(m->kept, FS_INO_KEPT | old.st_ino)) && (dup = strdup(name))) {
            free(e->name);
            e->name = dup;
            e->parent = parent;
        }
        pthread_mutex_unlock(&m->kept->lock);
    }
    close(a);
    close(b);
    return rc;
}

int fs_kept_setattr(fs_mount *m, uint64_t ino, const struct stat *attr, int to_set)
{
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07000))
        return -EPERM; /* no setuid, setgid or sticky bits through the mount */
    int fd, rc = kept_fd(m, ino, &fd);
    if (rc) return rc;
    if (to_set & FUSE_SET_ATTR_MODE)
        if (fchmod(fd, attr->st_mode & 0777) != 0) rc = -errno;
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        if (ftruncate(fd, attr->st_size) != 0) rc = -errno;
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
        if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
        if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
        if (futimens(fd, ts) != 0) rc = -errno;
    }
    close(fd); /* owners: the mount's user owns everything, as elsewhere */
    return rc;
}

void fs_kept_read(fs_mount *m, fuse_req_t req, uint64_t ino, size_t size, off_t off)
{
    int fd, rc = kept_fd(m, ino, &fd);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, 0);
    close(fd);
}

int fs_kept_write(fs_mount *m, uint64_t ino, const char *data, size_t size, off_t off)
{
    int fd, rc = kept_fd(m, ino, &fd);
    if (rc) return rc;
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, off + (off_t)done);
        if (w < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            break;
        }
        done += (size_t)w;
    }
    close(fd);
    return rc;
}

int fs_kept_fsync(fs_mount *m, uint64_t ino, bool datasync)
{
    int fd, rc = kept_fd(m, ino, &fd);
    if (rc) return rc == -EISDIR ? 0 : rc;
    if ((datasync ? fdatasync(fd) : fsync(fd)) != 0) rc = -errno;
    close(fd);
    return rc;
}

int fs_kept_list(fs_mount *m, uint64_t dir, off_t off, bool cookies,
                 int (*cb)(void *ctx, const char *name, const struct stat *st, off_t next),
                 void *ctx)
{
    char path[PATH_MAX];
    int dfd;
    int rc = kept_at(m, dir, NULL, false, &dfd, path, sizeof path);
    if (rc == -ENOENT && !cookies) return 0; /* no kept files in this mailbox */
    if (rc) return rc;
    int fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    rc = fd < 0 ? -errno : 0;
    close(dfd);
    if (rc) return rc;
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (cookies && off > 0) seekdir(d, off);
    off_t i = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool dots = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
        if (!cookies && (dots || ++i <= off)) continue;
        struct stat st;
        if (dots) {
            memset(&st, 0, sizeof st);
            st.st_ino = FS_INO_ROOT;
            st.st_mode = S_IFDIR;
        } else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                   (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) || kept_attr(m, &st) != 0 ||
                   kept_note(m, st.st_ino, dir, de->d_name) != 0) {
            continue;
        }
        off_t next = cookies ? telldir(d) : i;
        int r = cb(ctx, de->d_name, &st, next);
        if (r) {
            rc = r < 0 ? r : 0;
            break;
        }
    }
    closedir(d);
    return rc;
}
