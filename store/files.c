/* files.c: the kept files of the mount (names that are not messages), one directory tree per
 * mailbox under STORE/files/USER_ID/, and their count, removal and backup */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

/* Opens (and with CREATE makes, parents included) directory REL of the store directory. */
static int open_rel(const store *s, const char *rel, bool create, int *fd)
{
    int base = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) return -errno;
    char part[PATH_MAX];
    if (strlen(rel) >= sizeof part) {
        close(base);
        return -ENAMETOOLONG;
    }
    strcpy(part, rel);
    int cur = base;
    for (char *p = part, *slash; p && *p; p = slash) {
        slash = strchr(p, '/');
        if (slash) *slash++ = 0;
        int next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(cur, p, 0700) != 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                return -e;
            }
            next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        }
        int e = errno;
        close(cur);
        if (next < 0) return -e;
        cur = next;
    }
    *fd = cur;
    return 0;
}

static void files_rel(char *buf, size_t size, uint32_t user_id, uint32_t mailbox_id)
{
    if (mailbox_id == STORE_FILES_TOP)
        snprintf(buf, size, "files/%u/top", user_id);
    else if (mailbox_id == STORE_FILES_USER)
        snprintf(buf, size, "files/%u", user_id);
    else
        snprintf(buf, size, "files/%u/%u", user_id, mailbox_id);
}

int store_files_dir(store *s, uint32_t user_id, uint32_t mailbox_id, bool create, int *fd)
{
    char rel[64];
    files_rel(rel, sizeof rel, user_id, mailbox_id);
    return open_rel(s, rel, create, fd);
}

/* Counts the entries below directory FD (which it closes), at most up to LIMIT levels deep. */
static int count_tree(int fd, uint64_t *n, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        (*n)++;
        if (de->d_type == DT_DIR && depth < 64) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub >= 0) rc = count_tree(sub, n, depth + 1);
        }
    }
    closedir(d);
    return rc;
}

int store_files_count(store *s, uint32_t user_id, uint32_t mailbox_id, uint64_t *n)
{
    int fd;
    *n = 0;
    int rc = store_files_dir(s, user_id, mailbox_id, false, &fd);
    if (rc == -ENOENT) return 0;
    if (rc) return rc;
    return count_tree(fd, n, 0);
}

/* Removes everything below directory FD (which it closes). */
static int remove_tree(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode) && depth < 256) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub >= 0) {
                int r = remove_tree(sub, depth + 1);
                if (r && !rc) rc = r;
            }
            if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0 && !rc) rc = -errno;
        } else if (unlinkat(dirfd(d), de->d_name, 0) != 0 && !rc) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int store_files_remove(store *s, uint32_t user_id, uint32_t mailbox_id)
{
    char rel[64], path[PATH_MAX];
    int fd;
    files_rel(rel, sizeof rel, user_id, mailbox_id);
    int rc = open_rel(s, rel, false, &fd);
    if (rc == -ENOENT) return 0;
    if (rc) return rc;
    rc = remove_tree(fd, 0);
    snprintf(path, sizeof path, "%s/%s", s->dir, rel);
    if (rc == 0 && unlinkat(AT_FDCWD, path, AT_REMOVEDIR) != 0 && errno != ENOENT) rc = -errno;
    return rc;
}

/* Copies regular file NAME of directory FROM into directory TO, with its mode and times. */
static int copy_file(int from, int to, const char *name, const struct stat *st, char *err,
                     size_t errlen, const char *where)
{
    int in = openat(from, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read kept file '%s/%s': %s", where, name, strerror(e));
        return -e;
    }
    int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 0777);
    if (out < 0) {
        int e = errno;
        close(in);
        snprintf(err, errlen, "cannot write kept file '%s/%s': %s", where, name, strerror(e));
        return -e;
    }
    char buf[65536];
    ssize_t got;
    int rc = 0;
    while ((got = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(out, buf + off, (size_t)(got - off));
            if (w < 0) {
                rc = -errno;
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    if (got < 0 && !rc) rc = -errno;
    if (rc == 0) {
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        futimens(out, ts);
    }
    if (close(out) != 0 && !rc) rc = -errno;
    close(in);
    if (rc) snprintf(err, errlen, "cannot copy kept file '%s/%s': %s", where, name, strerror(-rc));
    return rc;
}

/* Copies the tree below directory FROM into directory TO (both closed here); WHERE names FROM
 * in messages. */
static int copy_tree(int from, int to, const char *where, int depth, char *err, size_t errlen)
{
    DIR *d = fdopendir(from);
    if (!d) {
        int e = errno;
        close(from);
        close(to);
        snprintf(err, errlen, "cannot list '%s': %s", where, strerror(e));
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        char sub[PATH_MAX + 256];
        snprintf(sub, sizeof sub, "%s/%s", where, de->d_name);
        if (S_ISREG(st.st_mode)) {
            rc = copy_file(dirfd(d), to, de->d_name, &st, err, errlen, where);
        } else if (S_ISDIR(st.st_mode) && depth < 256) {
            if (mkdirat(to, de->d_name, st.st_mode & 0777) != 0 && errno != EEXIST) {
                rc = -errno;
                snprintf(err, errlen, "cannot create '%s' in the backup: %s", sub, strerror(-rc));
                break;
            }
            int a = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            int b = openat(to, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (a < 0 || b < 0) {
                rc = -errno;
                if (a >= 0) close(a);
                if (b >= 0) close(b);
                snprintf(err, errlen, "cannot open '%s': %s", sub, strerror(-rc));
                break;
            }
            rc = copy_tree(a, b, sub, depth + 1, err, errlen);
            if (rc == 0) {
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                utimensat(to, de->d_name, ts, 0);
            }
        } /* anything else (a symbolic link someone put there) is no kept file */
    }
    closedir(d);
    close(to);
    return rc;
}

int st_files_backup(store *s, const char *dest, char *err, size_t errlen)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/files", s->dir);
    snprintf(to, sizeof to, "%s/files", dest);
    int a = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a < 0) return errno == ENOENT ? 0 : -errno; /* nothing kept yet */
    if (mkdir(to, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        close(a);
        snprintf(err, errlen, "cannot create '%s': %s", to, strerror(e));
        return -e;
    }
    int b = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b < 0) {
        int e = errno;
        close(a);
        snprintf(err, errlen, "cannot open '%s': %s", to, strerror(e));
        return -e;
    }
    return copy_tree(a, b, from, 0, err, errlen);
}

int st_files_list(store *s, int (*cb)(void *ctx, uint32_t user_id, uint32_t mailbox_id), void *ctx)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/files", s->dir);
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char *end;
        if (de->d_name[0] == '.') continue;
        unsigned long u = strtoul(de->d_name, &end, 10);
        if (*end || u == 0 || u > UINT32_MAX) {
            rc = cb(ctx, 0, 0); /* a name that is no user id */
            continue;
        }
        int ufd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *ud = ufd >= 0 ? fdopendir(ufd) : NULL;
        if (!ud) {
            if (ufd >= 0) close(ufd);
            continue;
        }
        struct dirent *me;
        rc = cb(ctx, (uint32_t)u, STORE_FILES_USER);
        while (rc == 0 && (me = readdir(ud)) != NULL) {
            if (me->d_name[0] == '.') continue;
            if (strcmp(me->d_name, "top") == 0) continue;
            unsigned long mb = strtoul(me->d_name, &end, 10);
            rc = cb(ctx, (uint32_t)u, *end || mb == 0 || mb >= STORE_FILES_TOP ? 0 : (uint32_t)mb);
        }
        closedir(ud);
    }
    closedir(d);
    return rc;
}
