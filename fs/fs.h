/* fs.h: the FUSE view of one user's mail (libfuse3 low-level API) */
#ifndef MAILFS_FS_H
#define MAILFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct fs_mount fs_mount;

typedef struct fs_options {
    bool read_only;       /* -o ro */
    uint64_t msg_max;     /* largest message a write may create; 0: the store's limit */
    bool debug;           /* log every request to stderr */
    uint64_t scratch_max; /* bytes of all in-memory (scratch) files together; 0: 256 MiB */
} fs_options;

/* Mounts USER's mail on DIR and serves it from background threads until fs_mount_stop().
 * S must stay open until then. A stale mount left on DIR by a killed daemon is cleaned first.
 * On failure *err (ERRLEN bytes) says what went wrong. */
int fs_mount_start(store *s, const char *user, const char *dir, const fs_options *opt,
                   fs_mount **out, char *err, size_t errlen);

/* fs_mount_start in two steps, for a process that mounts as root and serves as another user.
 * fs_mount_begin makes the kernel mount of DIR for USER (a stale mount is cleaned first) and
 * needs no store; requests to DIR wait until fs_mount_serve. On failure *err says why. */
int fs_mount_begin(const char *user, const char *dir, const fs_options *opt, fs_mount **out,
                   char *err, size_t errlen);

/* Serves a mount from fs_mount_begin out of S (which must stay open until fs_mount_stop):
 * looks the user up and starts the threads. Call it once. On failure *err says why; the mount
 * stays until fs_mount_stop. */
int fs_mount_serve(fs_mount *m, store *s, char *err, size_t errlen);

/* The mount point's absolute path; valid until fs_mount_stop. */
const char *fs_mount_point(const fs_mount *m);

/* True if DIR (an absolute path without symbolic links) is the mount point of a FUSE
 * filesystem now, live or left by a daemon that died. */
bool fs_is_mounted(const char *dir);

/* Blocks until the mount ends (fusermount -u, umount, or fs_mount_stop from another thread). */
void fs_mount_wait(fs_mount *m);

/* Unmounts (if still mounted), joins the threads and frees M; sets *m to NULL. */
void fs_mount_stop(fs_mount **m);

#endif
