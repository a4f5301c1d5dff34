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

/* Blocks until the mount ends (fusermount -u, umount, or fs_mount_stop from another thread). */
void fs_mount_wait(fs_mount *m);

/* Unmounts (if still mounted), joins the threads and frees M; sets *m to NULL. */
void fs_mount_stop(fs_mount **m);

#endif
