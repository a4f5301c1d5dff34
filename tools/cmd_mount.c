/* cmd_mount.c: `mailfs mount`: show a user's mail as a filesystem (FUSE) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <unistd.h>

#include "fs/fs.h"
#include "store/log.h"
#include "tools/cli.h"

static void mount_usage(FILE *f)
{
    fprintf(f, "usage: mailfs mount [-f] [-o OPTIONS] [--debug] USER DIR\n\n"
               "Shows USER's mail on DIR: one directory per mailbox, one .eml file per message,\n"
               "flags in the extended attribute user.mail.flags. Goes to the background once\n"
               "DIR is usable; unmount with 'fusermount3 -u DIR' or by sending SIGTERM.\n\n"
               "options:\n"
               "  -f               stay in the foreground\n"
               "  -o ro            read-only (fastest: for backups and grep sessions)\n"
               "  -o rw            read-write (the default)\n"
               "  -o msgmax=BYTES  largest message a write may create (suffixes K, M, G)\n"
               "  -o scratchmax=BYTES  memory for messages being written and tools' temporary\n"
               "                       files, default 256M (other files are kept on disk)\n"
               "  --debug          log every FUSE request to standard error (implies -f)\n"
               "  --help           this text\n\n"
               "Files named *.eml (not starting with '.') are messages; the temporary files of\n"
               "editors, sed -i and rsync named after a message live in memory until renamed to\n"
               "it; every other file, and every directory starting with '.' (.git, .notmuch),\n"
               "is kept as an ordinary file in the store directory, never seen by IMAP.\n"
               "See docs/mount.md.\n");
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return -1;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024ull * 1024 * 1024, end++;
    if (*end || v == 0 || v > UINT64_MAX / mul) return -1;
    *out = v * mul;
    return 0;
}

static int parse_opts(char *list, fs_options *o)
{
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "ro") == 0) {
            o->read_only = true;
        } else if (strcmp(tok, "rw") == 0) {
            o->read_only = false;
        } else if (strncmp(tok, "msgmax=", 7) == 0) {
            if (parse_size(tok + 7, &o->msg_max) != 0) {
                cli_error("mount: bad msgmax '%s': give a positive number of bytes (e.g. 20M)",
                          tok + 7);
                return EX_USAGE;
            }
        } else if (strncmp(tok, "scratchmax=", 11) == 0) {
            if (parse_size(tok + 11, &o->scratch_max) != 0) {
                cli_error("mount: bad scratchmax '%s': give a positive number of bytes", tok + 11);
                return EX_USAGE;
            }
        } else {
            cli_error("mount: unknown option '%s': see 'mailfs mount --help'", tok);
            return EX_USAGE;
        }
    }
    return 0;
}

static void *waiter_main(void *arg)
{
    fs_mount_wait(arg);
    kill(getpid(), SIGUSR1); /* wake the main thread: the mount ended from outside */
    return NULL;
}

/* Tells the parent (waiting in the foreground) how the mount went. */
static void report(int fd, int code)
{
    if (fd < 0) return;
    unsigned char b = (unsigned char)code;
    ssize_t n = write(fd, &b, 1);
    (void)n;
    close(fd);
}

static int serve(cli *c, const char *user, const char *dir, fs_options *o, int report_fd)
{
    store *s;
    fs_mount *m;
    char err[1024];
    sigset_t set;
    pthread_t waiter;
    int rc = cli_open_store(c, o->read_only ? STORE_OPEN_RDONLY : 0, &s);
    if (rc) {
        report(report_fd, rc);
        return rc;
    }
    uint32_t uid;
    if ((rc = cli_user_id(s, user, &uid)) != 0) {
        store_close(&s);
        report(report_fd, rc);
        return rc;
    }
    /* every thread started from here on leaves these signals to sigwait() below */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = fs_mount_start(s, user, dir, o, &m, err, sizeof err);
    if (rc) {
        cli_error("mount: %s", err);
        store_close(&s);
        int code = rc == -EBUSY                      ? EX_TEMPFAIL
                   : rc == -ENOENT || rc == -ENOTDIR ? EX_NOINPUT
                   : rc == -EPERM || rc == -EACCES   ? EX_NOPERM
                                                     : EX_OSERR;
        report(report_fd, code);
        return code;
    }
    if (pthread_create(&waiter, NULL, waiter_main, m) != 0) {
        cli_error("mount: cannot start a thread");
        fs_mount_stop(&m);
        store_close(&s);
        report(report_fd, EX_OSERR);
        return EX_OSERR;
    }
    if (report_fd >= 0) {
        report(report_fd, 0);
        if (chdir("/") != 0) {
            /* not fatal: the mount and the store use absolute paths by now */
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            if (!o->debug) dup2(null, 2);
            if (null > 2) close(null);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    fs_mount_stop(&m); /* unmounts unless it already ended */
    pthread_join(waiter, NULL);
    store_close(&s);
    return EX_OK;
}

int cmd_mount(cli *c, int argc, char **argv)
{
    fs_options o = {0};
    bool foreground = false;
    const char *user = NULL, *dir = NULL;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            mount_usage(stdout);
            return EX_OK;
        } else if (strcmp(argv[i], "-f") == 0) {
            foreground = true;
        } else if (strcmp(argv[i], "--debug") == 0 || strcmp(argv[i], "-d") == 0) {
            o.debug = true;
            log_setup(LOG_TO_STDERR, LOG_LEVEL_DEBUG);
            foreground = true;
        } else if (strcmp(argv[i], "-o") == 0 || strncmp(argv[i], "-o", 2) == 0) {
            char *list = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!list) {
                cli_error("mount: -o needs options: see 'mailfs mount --help'");
                return EX_USAGE;
            }
            char *copy = strdup(list);
            int rc = copy ? parse_opts(copy, &o) : EX_OSERR;
            free(copy);
            if (rc) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("mount: unknown option '%s': see 'mailfs mount --help'", argv[i]);
            return EX_USAGE;
        } else if (!user) {
            user = argv[i];
        } else if (!dir) {
            dir = argv[i];
        } else {
            cli_error("mount: unexpected argument '%s': see 'mailfs mount --help'", argv[i]);
            return EX_USAGE;
        }
    }
    if (!user || !dir) {
        cli_error("mount: give a user and a directory: mailfs mount USER DIR");
        return EX_USAGE;
    }
    if (!store_user_name_valid(user)) {
        /* checked before it goes anywhere near FUSE's mount options (fsname=mailfs:USER) */
        cli_error("mount: bad user name '%s': a user name has up to %d letters, digits and "
                  ". _ @ + -, and does not start with '.' ('mailfs user list' shows them)",
                  user, STORE_USER_MAX);
        return EX_USAGE;
    }
    struct stat st;
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0 || stat(dir, &st) != 0) {
        if (errno != ENOTCONN && errno != ECONNABORTED) { /* else: a stale mount, cleaned later */
            cli_error("mount: mount point '%s': %s", dir, strerror(errno));
            return EX_NOINPUT;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        cli_error("mount: mount point '%s' is not a directory", dir);
        return EX_USAGE;
    }
    if (foreground) return serve(c, user, dir, &o, -1);

    /* LMDB must be opened after fork(): fork first, mount in the child, and let the parent
     * return only once the mount is usable (or has failed) */
    int p[2];
    if (pipe(p) != 0) {
        cli_error("mount: cannot make a pipe: %s", strerror(errno));
        return EX_OSERR;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("mount: cannot fork: %s", strerror(errno));
        return EX_OSERR;
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        _exit(serve(c, user, dir, &o, p[1]));
    }
    close(p[1]);
    unsigned char code;
    ssize_t n;
    while ((n = read(p[0], &code, 1)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    if (n != 1) {
        cli_error("mount: the mount daemon for '%s' exited before mounting", dir);
        return EX_SOFTWARE;
    }
    return code;
}
