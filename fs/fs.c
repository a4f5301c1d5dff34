/* fs.c: mounting and unmounting, the FUSE session and its thread, the request table */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

#define FS_MAX_IO (1u << 20)

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    fs_mount *m = userdata;
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    /* always READDIRPLUS: the attributes come from the same records as the names */
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* the writeback cache costs a GETATTR after every close; messages are written once */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* message contents never change (a new content is a new inode): invalidation is explicit */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA) conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
    m->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
    m->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
    /* without OPEN requests, O_TRUNC must come as a SETATTR */
    if (m->no_open)
        conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    else if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* mail has no ACLs: with POSIX ACL support the kernel asks once per inode and keeps the
     * answer (ENODATA), where otherwise every ls -l and cp -a asks again for every file */
    if (conn->capable & FUSE_CAP_POSIX_ACL) conn->want |= FUSE_CAP_POSIX_ACL;
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->max_write = FS_MAX_IO;
    conn->max_read = FS_MAX_IO; /* must equal the max_read mount option */
    conn->max_readahead = FS_MAX_IO;
    conn->time_gran = 1;
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .setattr = fs_op_setattr,
    .mknod = fs_op_mknod,
    .mkdir = fs_op_mkdir,
    .unlink = fs_op_unlink,
    .rmdir = fs_op_rmdir,
    .symlink = fs_op_symlink,
    .rename = fs_op_rename,
    .link = fs_op_link,
    .open = fs_op_open,
    .read = fs_op_read,
    .write = fs_op_write,
    .flush = fs_op_flush,
    .release = fs_op_release,
    .fsync = fs_op_fsync,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .readdirplus = fs_op_readdirplus,
    .statfs = fs_op_statfs,
    .setxattr = fs_op_setxattr,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
    .removexattr = fs_op_removexattr,
    .create = fs_op_create,
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Runs fusermount3 with ARGS (lazy unmount of a mount we may not own as root). */
static int run_fusermount(const char *opt, const char *dir)
{
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("fusermount3", "fusermount3", opt, "--", dir, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Is DIR (a real path) a mount point of a FUSE filesystem? */
bool fs_is_mounted(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    bool found = false;
    if (!f) return false;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent maj:min root mountpoint options ... - fstype source superopts */
        char mnt[4096], fstype[256];
        const char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(sep + 3, "%255s", fstype) != 1)
            continue;
        /* mountinfo escapes blanks as \040: compare unescaped */
        char un[4096];
        size_t j = 0;
        for (size_t i = 0; mnt[i] && j + 1 < sizeof un; i++) {
            if (mnt[i] == '\\' && mnt[i + 1] && mnt[i + 2] && mnt[i + 3]) {
                un[j++] = (char)(((mnt[i + 1] - '0') << 6) | ((mnt[i + 2] - '0') << 3) |
                                 (mnt[i + 3] - '0'));
                i += 3;
            } else {
                un[j++] = mnt[i];
            }
        }
        un[j] = 0;
        found = strcmp(un, dir) == 0 && strncmp(fstype, "fuse", 4) == 0;
    }
    fclose(f);
    return found;
}

/* A mount left by a killed daemon answers ENOTCONN: detach it so DIR can be mounted again. */
static int clean_stale(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    struct statvfs sv;
    /* statfs always reaches the daemon; stat may be answered from the kernel's cache */
    if (statvfs(dir, &sv) == 0 && stat(dir, &st) == 0) return 0;
    if (errno != ENOTCONN && errno != ECONNABORTED) {
        int e = errno;
        seterr(err, errlen, "cannot use mount point '%s': %s", dir, strerror(e));
        return -e;
    }
    if (umount2(dir, MNT_DETACH) != 0 && run_fusermount("-uz", dir) != 0) {
        seterr(err, errlen,
               "'%s' holds a stale mount of a daemon that died and it cannot be unmounted; "
               "run 'fusermount3 -uz %s'",
               dir, dir);
        return -EBUSY;
    }
    if (stat(dir, &st) != 0) {
        int e = errno;
        seterr(err, errlen, "cannot use mount point '%s' after unmounting a stale mount: %s", dir,
               strerror(e));
        return -e;
    }
    return 0;
}

static void *loop_main(void *arg)
{
    fs_mount *m = arg;
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (cfg) {
        fuse_loop_cfg_set_clone_fd(cfg, 0);
        fuse_loop_cfg_set_max_threads(cfg, 16);
        fuse_loop_cfg_set_idle_threads(cfg, 4);
        fuse_session_loop_mt(m->se, cfg);
        fuse_loop_cfg_destroy(cfg);
    } else {
        fuse_session_loop(m->se);
    }
    pthread_mutex_lock(&m->end_lock);
    m->ended = true;
    pthread_cond_broadcast(&m->end_cond);
    pthread_mutex_unlock(&m->end_lock);
    return NULL;
}

static void mount_free(fs_mount *m)
{
    if (!m) return;
    while (m->nodes) {
        fs_node *n = m->nodes;
        m->nodes = n->next;
        mfs_buf_free(&n->data);
        free(n->name);
        free(n->keywords);
        free(n);
    }
    if (m->se) fuse_session_destroy(m->se);
    free(m->inodes);
    fs_kept_free(m);
    pthread_mutex_destroy(&m->ino_lock);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->commit_lock);
    pthread_cond_destroy(&m->commit_cond);
    pthread_mutex_destroy(&m->end_lock);
    pthread_cond_destroy(&m->end_cond);
    free(m->user);
    free(m->mountpoint);
    free(m->store_path);
    free(m);
}

static int lookup_user(store *s, const char *user, uint32_t *id, char *err, size_t errlen)
{
    store_txn *t;
    int rc = store_read_begin(s, &t);
    if (rc) {
        seterr(err, errlen, "cannot read the store: %s", store_strerror(rc));
        return rc;
    }
    rc = store_user_lookup(t, user, id);
    store_read_end(&t);
    if (rc)
        seterr(err, errlen, rc == -ENOENT ? "no user '%s' in the store" : "cannot look up '%s': %s",
               user, store_strerror(rc));
    return rc;
}

int fs_mount_begin(const char *user, const char *dir, const fs_options *opt, fs_mount **out,
                   char *err, size_t errlen)
{
    fs_options defaults = {0};
    fs_mount *m = NULL;
    int rc;

    *out = NULL;
    if (!opt) opt = &defaults;
    rc = clean_stale(dir, err, errlen);
    if (rc) return rc;
    char *real = realpath(dir, NULL);
    struct stat st;
    if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = real ? -ENOTDIR : -errno;
        seterr(err, errlen, "mount point '%s' %s", dir,
               rc == -ENOTDIR ? "is not a directory" : "does not exist");
        free(real);
        return rc;
    }
    if (fs_is_mounted(real)) {
        seterr(err, errlen, "'%s' is already mounted; unmount it first (fusermount3 -u %s)", dir,
               dir);
        free(real);
        return -EBUSY;
    }

    m = calloc(1, sizeof *m);
    if (!m) {
        free(real);
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->ino_lock, NULL);
    pthread_mutex_init(&m->commit_lock, NULL);
    pthread_cond_init(&m->commit_cond, NULL);
    m->commit_tail = &m->commit_queue;
    pthread_mutex_init(&m->end_lock, NULL);
    pthread_cond_init(&m->end_cond, NULL);
    m->user = strdup(user);
    m->mountpoint = real;
    if (fs_kept_init(m) != 0) {
        free(m->user);
        free(real);
        free(m);
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->opt = *opt;
    m->watch_fd = -1;
    m->stop_pipe[0] = m->stop_pipe[1] = -1;
    /* the files belong to whoever mounted: without allow_other only they may enter */
    m->uid = getuid();
    m->gid = getgid();
    atomic_store(&m->root_mtime_ns, fs_now_ns());

    char optbuf[512];
    snprintf(optbuf, sizeof optbuf,
             "fsname=mailfs:%s,subtype=mailfs,default_permissions,max_read=%u%s", user, FS_MAX_IO,
             opt->read_only ? ",ro" : "");
    char *argv[] = {"mailfs", "-o", optbuf, opt->debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(opt->debug ? 4 : 3, argv);
    m->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, m);
    fuse_opt_free_args(&args);
    if (!m->se) {
        seterr(err, errlen, "cannot start a FUSE session (is /dev/fuse there?)");
        rc = -EIO;
        goto fail;
    }
    if (fuse_session_mount(m->se, real) != 0) {
        seterr(err, errlen,
               "cannot mount on '%s' (is the fuse module loaded and /dev/fuse usable?)", dir);
        rc = -EIO;
        goto fail;
    }
    *out = m;
    return 0;
fail:
    mount_free(m);
    return rc;
}

int fs_mount_serve(fs_mount *m, store *s, char *err, size_t errlen)
{
    uint32_t user_id;
    int rc = lookup_user(s, m->user, &user_id, err, errlen);
    if (rc) return rc;
    m->st = s;
    m->user_id = user_id;
    m->store_path = realpath(store_dir(s), NULL);
    if (!m->store_path) m->store_path = strdup(store_dir(s));
    m->msg_max = store_msg_max(s);
    if (m->opt.msg_max && m->opt.msg_max < m->msg_max) m->msg_max = m->opt.msg_max;
    m->scratch_max = m->opt.scratch_max ? m->opt.scratch_max : (256ull << 20);
    if (m->scratch_max < 2 * m->msg_max) m->scratch_max = 2 * m->msg_max;

    rc = fs_watch_start(m, err, errlen);
    if (rc) return rc;
    rc = pthread_create(&m->loop_thread, NULL, loop_main, m);
    if (rc) {
        fs_watch_stop(m);
        seterr(err, errlen, "cannot start a thread: %s", strerror(rc));
        return -rc;
    }
    m->loop_started = true;
    return 0;
}

int fs_mount_start(store *s, const char *user, const char *dir, const fs_options *opt,
                   fs_mount **out, char *err, size_t errlen)
{
    uint32_t user_id;
    fs_mount *m;

    *out = NULL;
    /* look the user up before mounting, so that a wrong name leaves nothing behind */
    int rc = lookup_user(s, user, &user_id, err, errlen);
    if (rc) return rc;
    rc = fs_mount_begin(user, dir, opt, &m, err, errlen);
    if (rc) return rc;
    rc = fs_mount_serve(m, s, err, errlen);
    if (rc) {
        fs_mount_stop(&m);
        return rc;
    }
    *out = m;
    return 0;
}

const char *fs_mount_point(const fs_mount *m)
{
    return m->mountpoint;
}

void fs_mount_wait(fs_mount *m)
{
    pthread_mutex_lock(&m->end_lock);
    m->waiters++;
    while (!m->ended)
        pthread_cond_wait(&m->end_cond, &m->end_lock);
    m->waiters--;
    pthread_cond_broadcast(&m->end_cond);
    pthread_mutex_unlock(&m->end_lock);
}

void fs_mount_stop(fs_mount **mp)
{
    fs_mount *m = *mp;
    if (!m) return;
    *mp = NULL;
    pthread_mutex_lock(&m->end_lock);
    bool ended = m->ended;
    pthread_mutex_unlock(&m->end_lock);
    if (!ended) {
        fuse_session_exit(m->se);
        fuse_session_unmount(m->se); /* the kernel ends the connection: the loop returns */
    }
    if (m->loop_started) pthread_join(m->loop_thread, NULL);
    fs_watch_stop(m);
    if (m->st) fs_node_keep_all(m); /* no request runs any more */
    pthread_mutex_lock(&m->end_lock);
    while (m->waiters > 0)
        pthread_cond_wait(&m->end_cond, &m->end_lock);
    pthread_mutex_unlock(&m->end_lock);
    if (ended) fuse_session_unmount(m->se); /* no-op unless still mounted */
    mount_free(m);
}
