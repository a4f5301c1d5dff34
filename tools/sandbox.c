/* sandbox.c: `mailfs serve` once it runs: no_new_privs and a seccomp allow-list */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sysexits.h>

#include "tools/cli.h"
#include "tools/sandbox.h"

/* What serving needs, by name (names this architecture lacks are skipped). */
static const char *const allowed[] = {
    /* files and the store (LMDB maps, writes and syncs its file) */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "lseek",
    "close",
    "openat",
    "newfstatat",
    "fstat",
    "stat",
    "lstat",
    "statx",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "ftruncate",
    "fallocate",
    "flock",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "pipe2",
    "splice",
    /* the mount's kept files (fs/kept.c): ordinary files in the store's kept trees */
    "mkdirat",
    "unlinkat",
    "renameat",
    "renameat2",
    "fchmod",
    "fchmodat",
    "utimensat",
    /* memory */
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "msync",
    "mincore",
    /* connections (the listeners are bound already) */
    "accept",
    "accept4",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "connect",
    /* waiting: the event loops, the change feed (inotify), signals, the login workers */
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "epoll_create1",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "eventfd2",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "signalfd4",
    "futex",
    "futex_waitv",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "sched_yield",
    "sched_getaffinity",
    /* threads and signals */
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "exit",
    "exit_group",
    "gettid",
    "getpid",
    "getppid",
    "tgkill",
    "tkill",
    "rt_sigprocmask",
    "rt_sigaction",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    "wait4",
    "waitid",
    /* the rest: OpenSSL's randomness, glibc's look-ups, unmounting at the end as root */
    "getrandom",
    "uname",
    "sysinfo",
    "prlimit64",
    "getrlimit",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "umount2",
};

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *args)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0; /* not on this architecture */
    return seccomp_rule_add_array(ctx, action, nr, n, args);
}

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static int build(scmp_filter_ctx ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof *allowed; i++)
        rc = rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
    /* threads, but no new process: fork fails (libfuse's unmount helper then gives up
     * quietly: the unmount guard has done it), clone3 is said not to exist so that glibc
     * starts threads with clone, whose flags can be checked */
    struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    struct scmp_arg_cmp process = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &thread);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &process);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "fork", 0, NULL);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "vfork", 0, NULL);
    /* naming threads; nothing else of prctl (PR_SET_DUMPABLE stays off) */
    static const int prctls[] = {PR_SET_NAME, PR_GET_NAME};
    for (size_t i = 0; rc == 0 && i < sizeof prctls / sizeof *prctls; i++) {
        struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]);
        rc = rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &a);
    }
    /* sockets of the local kind only (syslog); no network connection can be opened */
    struct scmp_arg_cmp unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
    struct scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, AF_UNIX);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &unix_only);
    if (rc == 0) rc = rule(ctx, SCMP_ACT_ERRNO(EACCES), "socket", 1, &other);
    /* isatty() and bytes waiting, nothing else of ioctl */
    static const unsigned long ioctls[] = {TCGETS, FIONREAD};
    for (size_t i = 0; rc == 0 && i < sizeof ioctls / sizeof *ioctls; i++) {
        struct scmp_arg_cmp a = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)ioctls[i]);
        rc = rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &a);
    }
    return rc;
}

int sandbox_enter(void)
{
    /* no program it could run gains privileges (setuid bits, file capabilities) */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        cli_error("serve: cannot set no_new_privs: %s", strerror(errno));
        return EX_OSERR;
    }
    const char *mode = getenv("MAILFS_SECCOMP");
    if (mode && strcmp(mode, "off") == 0) {
        cli_error("serve: warning: MAILFS_SECCOMP=off: running without the system call filter");
        return 0;
    }
    bool log_only = mode && strcmp(mode, "log") == 0;
#ifdef SANITIZED
    /* sanitizer builds (for tests): LeakSanitizer cannot stop the threads at exit (to look for
     * leaks) in a process under any seccomp filter */
    if (!mode) {
        cli_error("serve: warning: a sanitizer build runs without the system call filter");
        return 0;
    }
#endif
    if (mode && !log_only && strcmp(mode, "kill") != 0) {
        cli_error("serve: MAILFS_SECCOMP='%s' is not a mode: use kill (the default), log or off",
                  mode);
        return EX_USAGE;
    }
    scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
    int rc = ctx ? 0 : -ENOMEM;
    /* every thread (login workers, FUSE threads) at once; the kernel logs what it kills */
    if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    if (rc == 0) rc = build(ctx);
    if (rc == 0) rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        cli_error("serve: cannot load the system call filter: %s: MAILFS_SECCOMP=off runs "
                  "without it",
                  strerror(-rc));
        return EX_OSERR;
    }
    if (log_only) cli_error("serve: warning: MAILFS_SECCOMP=log: the system call filter only logs");
    return 0;
}
