/* privdrop.h: `mailfs serve` started as root: whom to run as, the drop, the unmount guard */
#ifndef MAILFS_PRIVDROP_H
#define MAILFS_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The account a server started as root runs as when --user is not given. */
#define PRIVDROP_DEFAULT_USER "mailfs"

/* Whom the server runs as. */
typedef struct privdrop_target {
    bool drop; /* started as root and becoming the account below */
    uid_t uid;
    gid_t gid;
    char name[256];
} privdrop_target;

/* Decides whom the server runs as from --user USER (NULL when not given). Not root: nothing
 * changes (USER may only name the current account). Root: USER, by default the account
 * "mailfs", which must exist; an account with uid 0 keeps root, with a warning. Returns 0, or
 * an exit code (EX_*) after printing why not. */
int privdrop_resolve(const char *user, privdrop_target *t);

/* Returns 0 if the store in DIR and the files in it belong to T's account; else prints what to
 * chown and returns an exit code. */
int privdrop_check_store(const privdrop_target *t, const char *dir);

/* Becomes T's account for good (supplementary groups, group, then user) and checks that root
 * cannot be regained. Call it while the process has one thread. Returns 0, or an exit code
 * after printing why not: the process must then stop. */
int privdrop_drop(const privdrop_target *t);

/* The unmount guard: a child that stays root and, once the server ends for any reason (the
 * pipe closes, even after SIGKILL), unmounts what the server mounted as root, which the server
 * can no longer do itself after the drop. It holds nothing else open. Started by a server that
 * is not root, it unmounts with fusermount3, which the server cannot run once no_new_privs is
 * set (sandbox.h). */
typedef struct privdrop_guard {
    pid_t pid; /* 0: not started */
    int fd;    /* our end of the pipe */
    size_t sent;
} privdrop_guard;

/* Starts the guard. Call it before any thread starts, and before opening the store. Returns 0
 * or an exit code after printing why not. */
int privdrop_guard_start(privdrop_guard *g);

/* Has the guard unmount DIR (absolute, as fs_mount_point gives it) when the server ends.
 * Returns 0 or a negative errno. */
int privdrop_guard_add(privdrop_guard *g, const char *dir);

/* Has the guard unmount everything now and waits until it has; then *g is reset. */
void privdrop_guard_end(privdrop_guard *g);

#endif
