/* privdrop.c: `mailfs serve` started as root: whom to run as, the drop, the unmount guard */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "fs/fs.h"
#include "tools/cli.h"
#include "tools/privdrop.h"

#define GUARD_BYTES (64 * 1024) /* mount point paths the guard keeps, NUL-terminated */

int privdrop_resolve(const char *user, privdrop_target *t)
{
    memset(t, 0, sizeof *t);
    if (geteuid() != 0) {
        struct passwd *pw = user ? getpwnam(user) : NULL;
        if (user && (!pw || pw->pw_uid != geteuid())) {
            cli_error("serve: --user '%s': only root can switch users; run serve as '%s' "
                      "itself, or leave --user out",
                      user, user);
            return EX_NOPERM;
        }
        return 0;
    }
    const char *name = user ? user : PRIVDROP_DEFAULT_USER;
    struct passwd *pw = getpwnam(name);
    if (!pw && !user) {
        cli_error("serve: running as root needs an unprivileged account to drop to: create the "
                  "user '%s' (useradd --system %s) or pass --user NAME; --user root keeps root "
                  "(not recommended)",
                  name, name);
        return EX_NOUSER;
    }
    if (!pw) {
        cli_error("serve: no account '%s' to run as: create it (useradd --system %s) or name "
                  "another with --user",
                  name, name);
        return EX_NOUSER;
    }
    if (pw->pw_uid == 0) {
        cli_error("serve: warning: --user %s keeps root privileges (not recommended): a flaw in "
                  "the server would give away the machine",
                  name);
        return 0;
    }
    if (pw->pw_gid == 0) {
        cli_error("serve: account '%s' has group 0 (root) as its group: give it a group of its "
                  "own (usermod -g GROUP %s)",
                  name, name);
        return EX_CONFIG;
    }
    if (strlen(pw->pw_name) >= sizeof t->name) {
        cli_error("serve: account name '%s' is too long", name);
        return EX_USAGE;
    }
    t->drop = true;
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    strcpy(t->name, pw->pw_name);
    return 0;
}

int privdrop_check_store(const privdrop_target *t, const char *dir)
{
    /* what the server opens or creates there: another owner's file would fail after the drop */
    static const char *const names[] = {"",    "data.mdb",     "lock.mdb",   "changes",
                                        "tls", "tls/cert.pem", "tls/key.pem"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s%s%s", dir, names[i][0] ? "/" : "", names[i]);
        if (stat(path, &st) != 0) {
            if (errno == ENOENT && i > 0) continue;
            if (errno == ENOENT) {
                cli_error("no store at '%s': create one with 'mailfs init' or pass --store", dir);
                return EX_NOINPUT;
            }
            cli_error("serve: cannot check '%s': %s", path, strerror(errno));
            return EX_NOPERM;
        }
        if (st.st_uid == t->uid) continue;
        struct passwd *owner = getpwuid(st.st_uid);
        char who[300];
        if (owner)
            snprintf(who, sizeof who, "'%s'", owner->pw_name);
        else
            snprintf(who, sizeof who, "uid %u", (unsigned)st.st_uid);
        cli_error("serve: %s '%s' belongs to %s, not to '%s' that the server runs as: "
                  "chown -R %s: %s",
                  i == 0 ? "store" : "store file", path, who, t->name, t->name, dir);
        return EX_NOPERM;
    }
    return 0;
}

int privdrop_drop(const privdrop_target *t)
{
    if (initgroups(t->name, t->gid) != 0) {
        cli_error("serve: cannot take the groups of '%s': %s", t->name, strerror(errno));
        return EX_OSERR;
    }
    int n = getgroups(0, NULL);
    gid_t *groups = calloc(n > 0 ? (size_t)n : 1, sizeof *groups);
    if (!groups || n < 0 || (n = getgroups(n, groups)) < 0) {
        cli_error("serve: cannot list the groups of '%s': %s", t->name,
                  groups ? strerror(errno) : "out of memory");
        free(groups);
        return EX_OSERR;
    }
    bool root_group = false;
    for (int i = 0; i < n; i++)
        root_group |= groups[i] == 0;
    free(groups);
    if (root_group) {
        cli_error("serve: account '%s' is in group 0 (root): take it out of that group "
                  "(gpasswd -d %s root) or run as another account",
                  t->name, t->name);
        return EX_CONFIG;
    }
    if (setgid(t->gid) != 0 || setuid(t->uid) != 0) {
        cli_error("serve: cannot become '%s': %s", t->name, strerror(errno));
        return EX_OSERR;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    bool regained = setuid(0) == 0 || setegid(0) == 0;
    if (regained || getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
        ru != t->uid || eu != t->uid || su != t->uid || rg != t->gid || eg != t->gid ||
        sg != t->gid) {
        cli_error("serve: dropping root for '%s' did not hold (root could come back): stopping",
                  t->name);
        return EX_SOFTWARE;
    }
    /* no core dump and no ptrace by the account, whatever fs.suid_dumpable says: the key in
     * memory and the sockets bound as root stay out of its reach */
    prctl(PR_SET_DUMPABLE, 0);
    return 0;
}

/* Not root: the setuid helper unmounts (lazily, as umount2 above). */
static void guard_fusermount(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-q", "-z", "--", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr,
                "mailfs: serve: cannot unmount '%s' with fusermount3: run "
                "'fusermount3 -u %s'\n",
                dir, dir);
}

/* The guard's whole life: collect mount points until the pipe closes, then unmount them. */
static void __attribute__((noreturn)) guard_main(int in)
{
    prctl(PR_SET_NAME, "mailfs-umount");
    static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        signal(ignored[i], SIG_IGN);
    /* a terminal's Ctrl-C reaches us too: we stay until the server has gone */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static char paths[GUARD_BYTES + 1];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(in, paths + len, GUARD_BYTES - len);
        if (n > 0) {
            len += (size_t)n;
            if (len < GUARD_BYTES) continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break; /* end of file: the server stopped or died */
    }
    paths[len] = '\0';
    for (size_t i = 0; i < len; i += strlen(paths + i) + 1) {
        const char *dir = paths + i;
        /* unmounted by someone else meanwhile: leave whatever is there now alone */
        if (!fs_is_mounted(dir)) continue;
        if (geteuid() != 0) {
            guard_fusermount(dir);
            continue;
        }
        if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
            fprintf(stderr, "mailfs: serve: cannot unmount '%s': %s: run 'umount -l %s'\n", dir,
                    strerror(errno), dir);
    }
    _exit(0);
}

int privdrop_guard_start(privdrop_guard *g)
{
    int p[2];
    *g = (privdrop_guard){0};
    if (pipe2(p, O_CLOEXEC) != 0) {
        cli_error("serve: cannot start the unmount guard: %s", strerror(errno));
        return EX_OSERR;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("serve: cannot start the unmount guard: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return EX_OSERR;
    }
    if (pid == 0) {
        /* keep only the pipe (as fd 3) and stderr; p[1] < 3 only if p[0] < 3: closed below */
        if (dup2(p[0], 3) < 0) _exit(EX_OSERR);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (close_range(4, ~0u, 0) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            for (int fd = 4; fd < (max > 0 ? max : 1024); fd++)
                close(fd);
        }
        guard_main(3);
    }
    close(p[0]);
    g->pid = pid;
    g->fd = p[1];
    return 0;
}

int privdrop_guard_add(privdrop_guard *g, const char *dir)
{
    size_t n = strlen(dir) + 1;
    if (g->pid <= 0 || g->sent + n > GUARD_BYTES) return -ENOSPC;
    /* at most PATH_MAX bytes: one atomic pipe write */
    ssize_t w;
    while ((w = write(g->fd, dir, n)) < 0 && errno == EINTR)
        ;
    if (w != (ssize_t)n) return w < 0 ? -errno : -EIO;
    g->sent += n;
    return 0;
}

void privdrop_guard_end(privdrop_guard *g)
{
    if (g->pid <= 0) return;
    close(g->fd);
    int status;
    while (waitpid(g->pid, &status, 0) < 0 && errno == EINTR)
        ;
    *g = (privdrop_guard){0};
}
