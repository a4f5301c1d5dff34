/* fs_int.h: what the files of fs/ share: inode numbers, in-memory files, the mount context, and
 * the functions of each file that others call (the request handlers are in ops.h) */
#ifndef MAILFS_FS_INT_H
#define MAILFS_FS_INT_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "store/buf.h"
#include "store/store.h"

/*
 * How the mount reports trouble:
 * - Every request handler ends in exactly one fuse_reply_* (an error as fuse_reply_err with a
 *   positive errno); the functions it calls return 0 or a negative errno. The store's codes
 *   are errnos a program understands (EDQUOT past the mailbox limit, ENAMETOOLONG, ENOSPC,
 *   EIO) and pass through as they are.
 * - Out of memory (the one policy is in store/buf.h): the mount holds files being written
 *   that are not stored yet, and dying would lose them, so its own allocations fail the one
 *   request with ENOMEM (mfs_buf_try_* for file data, checked mallocs elsewhere).
 * - Log lines go through store/log.h (log_warn("fs", ...)); --debug shows DEBUG ones.
 */

/*
 * Inode numbers are derived, never stored (docs/mount.md):
 *   root                          1
 *   mailbox directory             mailbox_id << 32
 *   message                       (mailbox_id << 32) | uid
 *   in-memory file (scratch)      FS_INO_MEM | counter (a write buffer of a stored message
 *                                 has the message's inode)
 *   Maildir view directory        FS_INO_MD | mailbox_id << 32 | FS_MD_CUR/NEW/TMP
 *   kept file or directory        FS_INO_KEPT | its inode number in the kept tree (kept.c)
 * The mount takes 30 bits of a mailbox id (fs_ino_mailbox), so that bits 62 and 63 mark the
 * other kinds. The store counts ids up from 1 and never reuses one: only a store that created
 * 2^30 mailboxes would reach bit 30, and nothing checks it.
 */
#define FS_INO_ROOT 1ull
#define FS_INO_MEM (1ull << 63)
#define FS_INO_MD (1ull << 62)
/* kept file or directory (kept.c): both bits, then its inode number in the store's kept tree,
 * which must be below FS_INO_KEPT_MAX (EOVERFLOW otherwise; ext4's are 32-bit) */
#define FS_INO_KEPT (3ull << 62)
#define FS_INO_KEPT_MAX (1ull << 62)

enum fs_ino_kind { FS_K_ROOT, FS_K_DIR, FS_K_MSG, FS_K_MEM, FS_K_MDIR, FS_K_KEPT, FS_K_BAD };

/* The Maildir view (docs/mount.md): cur/, new/ and tmp/ inside every mailbox directory. */
enum { FS_MD_CUR = 1, FS_MD_NEW = 2, FS_MD_TMP = 3 };

static inline uint64_t fs_ino_dir(uint32_t mailbox_id)
{
    return (uint64_t)mailbox_id << 32;
}
static inline uint64_t fs_ino_msg(uint32_t mailbox_id, uint32_t uid)
{
    return ((uint64_t)mailbox_id << 32) | uid;
}
static inline uint64_t fs_ino_mdir(uint32_t mailbox_id, unsigned which)
{
    return FS_INO_MD | (uint64_t)mailbox_id << 32 | which;
}
static inline uint32_t fs_ino_mailbox(uint64_t ino)
{
    return (uint32_t)(ino >> 32) & 0x3fffffffu;
}
/* FS_MD_CUR, FS_MD_NEW or FS_MD_TMP for a Maildir view directory */
static inline unsigned fs_ino_md_which(uint64_t ino)
{
    return (unsigned)(ino & 3);
}
static inline uint32_t fs_ino_uid(uint64_t ino)
{
    return (uint32_t)ino;
}
static inline enum fs_ino_kind fs_ino_kind(uint64_t ino)
{
    if (ino == FS_INO_ROOT) return FS_K_ROOT;
    if ((ino & FS_INO_KEPT) == FS_INO_KEPT) return FS_K_KEPT;
    if (ino & FS_INO_MEM) return FS_K_MEM;
    if (fs_ino_mailbox(ino) == 0) return FS_K_BAD;
    if (ino & FS_INO_MD) {
        uint32_t which = fs_ino_uid(ino);
        return which >= FS_MD_CUR && which <= FS_MD_TMP ? FS_K_MDIR : FS_K_BAD;
    }
    return fs_ino_uid(ino) ? FS_K_MSG : FS_K_DIR;
}

static inline bool fs_ino_is_dir(uint64_t ino)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    return k == FS_K_ROOT || k == FS_K_DIR || k == FS_K_MDIR;
}

/* How long the kernel may trust what we told it; every change is invalidated explicitly. */
#define FS_TIMEOUT (86400.0)

/*
 * An in-memory file. Three uses:
 *  - a scratch file (a temporary file of a known tool, fs_name_kind_in() FS_NAME_TEMP):
 *    listed in its directory (parent != 0), never stored;
 *  - a new message being written (a message name in a mailbox): listed like a scratch file
 *    until its first commit, then detached;
 *  - the write buffer of a stored message opened for writing (ino is the message's inode).
 * Nodes live in fs_mount.nodes, guarded by fs_mount.lock.
 */
typedef struct fs_node {
    struct fs_node *next;
    uint64_t ino;    /* the inode the kernel knows this file by */
    uint64_t parent; /* directory inode while listed there, 0 when detached */
    char *name;      /* name in PARENT (kept when detached, for commits) */
    bool eml;        /* content becomes a message on flush/release */
    bool unlinked;   /* removed while open: never committed */
    bool dirty;      /* changed since the last commit */
    int failed;      /* a write or truncation failed (-errno): never stored, FLUSH returns it */
    uint32_t msg_mb; /* the message this node's content is stored as (0: none yet) */
    uint32_t msg_uid;
    mfs_buf data; /* the file's bytes: data.len is its size (store/buf.h) */
    mode_t mode;
    struct timespec mtime, ctime;
    bool flags_set; /* user.mail.flags given through setxattr */
    uint32_t flags;
    char *keywords;
    int pins; /* requests working on it right now (it is not freed meanwhile) */
} fs_node;

/* A file's inode the kernel holds (inodes.c). */
typedef struct fs_inode {
    uint64_t ino;     /* 0: a free slot */
    uint64_t nlookup; /* the kernel's lookup count */
    uint64_t to;      /* forward: the message's inode now (0: none) */
    uint32_t refs;    /* forwards to this inode from other entries */
} fs_inode;

typedef struct fs_kept fs_kept;

struct fs_mount {
    store *st;
    fs_kept *kept; /* the kept files' inodes the kernel holds (kept.c) */
    uint32_t user_id;
    char *user;
    char *mountpoint;
    char *store_path; /* absolute: statfs reports its filesystem */
    fs_options opt;
    uint64_t msg_max;     /* largest file a write may create */
    uint64_t scratch_max; /* all in-memory files together */
    uid_t uid;
    gid_t gid;
    struct fuse_session *se;
    bool no_open;    /* kernel supports answering OPEN with ENOSYS */
    bool no_opendir; /* same for OPENDIR */
    _Atomic int64_t root_mtime_ns;

    _Atomic int64_t refused_sec; /* fs_refuse_name() in file.c: log lines this second */
    _Atomic int refused_logged, refused_left_out;

    pthread_mutex_t lock; /* guards nodes, scratch_bytes, next_mem, inval_data */
    fs_node *nodes;
    _Atomic int node_count;
    uint64_t scratch_bytes;
    uint64_t next_mem;

    /* the files' inodes the kernel holds, with their forwards (inodes.c); never locked
     * together with m->lock */
    pthread_mutex_t ino_lock; /* guards inodes, ino_cap, ino_used */
    fs_inode *inodes;
    size_t ino_cap, ino_used;
    _Atomic int fwd_count; /* entries with a forward (fs_forward's fast path) */

    pthread_t loop_thread;
    bool loop_started;
    pthread_t watch_thread;
    bool watch_started;
    int watch_fd;
    int stop_pipe[2]; /* 'x' stops the watch thread, 'd' has it run inval_data[] */
    /* inodes whose cached pages and attributes the watch thread drops (fs_watch_inval_data) */
#define FS_INVAL_DATA_MAX 256
    uint64_t inval_data[FS_INVAL_DATA_MAX];
    unsigned ninval_data;

    /* group commit (commit.c): messages closed while a commit runs are stored together */
    pthread_mutex_t commit_lock;
    pthread_cond_t commit_cond;
    struct commit_req *commit_queue, **commit_tail;
    bool committing;

    pthread_mutex_t end_lock;
    pthread_cond_t end_cond;
    bool ended;
    int waiters;
};

/* names.c */
/* "*.eml" (any case) not starting with '.' */
bool fs_name_is_message(const char *name);
/* What a regular file named NAME in directory PARENT is (docs/mount.md, "Which names are
 * messages"): a message, a known tool's temporary file (kept in memory until renamed to a
 * message name), or neither (FS_NAME_REFUSED): then a kept file where fs_kept_new_name says
 * so, else refused. */
typedef enum { FS_NAME_REFUSED, FS_NAME_MESSAGE, FS_NAME_TEMP } fs_name_kind;
fs_name_kind fs_name_kind_in(uint64_t parent, const char *name);
int fs_name_check(const char *name); /* 0, -EINVAL or -ENAMETOOLONG */

/* stat.c: stat data (the mount's owner owns everything); fs_node_attr with m->lock held */
void fs_msg_attr(fs_mount *m, const store_msg *msg, struct stat *st);
void fs_dir_attr(fs_mount *m, const store_mailbox *mb, struct stat *st);
void fs_root_attr(fs_mount *m, struct stat *st);
void fs_node_attr(fs_mount *m, const fs_node *n, struct stat *st);
int64_t fs_now_ns(void); /* CLOCK_REALTIME in nanoseconds */

/* nodes.c (with m->lock held, up to fs_node_fail; the others take it themselves) */
/* The in-memory file of inode INO, or listed as NAME in directory PARENT; NULL if none. */
fs_node *fs_node_find_ino(fs_mount *m, uint64_t ino);
fs_node *fs_node_find_name(fs_mount *m, uint64_t parent, const char *name);
/* A new empty file NAME listed in PARENT (0: detached), with a fresh FS_INO_MEM inode and
 * MODE's read and write bits (0644 if none), a message if NAME is a message name there;
 * NULL when out of memory. */
fs_node *fs_node_new(fs_mount *m, uint64_t parent, const char *name, mode_t mode);
/* At unmount, once no request runs: every scratch file still listed (named like a tool's
 * temporary file but never renamed to a message: perl -i's pattern also matches "Makefile")
 * is written to the kept tree, so that nothing written through the mount is dropped. */
void fs_node_keep_all(fs_mount *m);
/* Takes N out of its directory (its name is kept), then as fs_node_put. */
void fs_node_detach(fs_mount *m, fs_node *n);
/* Frees N if it is detached, unpinned and holds nothing left to store (N is gone then). */
void fs_node_put(fs_mount *m, fs_node *n);
/* Both fail with N's error once it failed; fs_node_write marks N failed when it fails. */
int fs_node_resize(fs_mount *m, fs_node *n, uint64_t size);
int fs_node_write(fs_mount *m, fs_node *n, const char *buf, size_t size, off_t off);
/* Marks N failed with RC (its first error is kept): nothing of it is stored, and the next
 * FLUSH returns RC and drops it. */
void fs_node_fail(fs_node *n, int rc);
/* Unpins N; frees it when it is detached and holds nothing left to store. */
void fs_node_unpin(fs_mount *m, fs_node *n);
/* The in-memory file of INO, pinned, or NULL. */
fs_node *fs_node_pin(fs_mount *m, uint64_t ino);
/* Into *OUT: the write buffer of stored message INO (made from the store unless TRUNC), pinned;
 * 0 or -errno (-ENOENT: no such message, following forwards). If the
 * message does not fit in memory, KEEP_FAILED (a descriptor writes: its FLUSH will come) leaves
 * a failed buffer behind, so that the descriptor's later writes fail too and its close reports
 * the error, rather than writing into a fresh copy with a part missing. */
int fs_node_open_msg(fs_mount *m, uint64_t ino, bool trunc, bool keep_failed, fs_node **out);
/* The write buffer of INO, if there is one, is never stored: its message is gone. */
void fs_node_mark_unlinked(fs_mount *m, uint64_t ino);

/* inodes.c: the kernel's lookup counts of files and the forwards (m->lock not held) */
/* The kernel holds one more lookup of each of the N inodes (directories are not counted). */
void fs_inode_ref_many(fs_mount *m, const uint64_t *ino, size_t n);
/* FORGET: the kernel dropped NLOOKUP lookups of INO; at zero its entry and forward go. */
void fs_inode_forget(fs_mount *m, uint64_t ino, uint64_t nlookup);
void fs_inode_forget_many(fs_mount *m, const struct fuse_forget_data *f, size_t n);
/* fuse_reply_entry and fuse_reply_create, counting the lookup they hand the kernel: every
 * entry reply goes through them (readdirplus counts its entries with fs_inode_ref_many). */
void fs_reply_entry(fs_mount *m, fuse_req_t req, const struct fuse_entry_param *e);
void fs_reply_create(fs_mount *m, fuse_req_t req, const struct fuse_entry_param *e,
                     const struct fuse_file_info *fi);
/* Message FROM is message TO now: requests on FROM reach TO while the kernel holds FROM
 * (nothing is kept for an inode the kernel does not hold). */
void fs_forward_add(fs_mount *m, uint64_t from, uint64_t to);
/* Where message INO went (following forwards), 0 if it did not. */
uint64_t fs_forward(fs_mount *m, uint64_t ino);

/* commit.c */
/* Stores a node's content as a message (replacing the one it was, or the one of that name);
 * called WITHOUT m->lock held, with the node pinned (pins > 0) or listed. 0 also when there is
 * nothing to store (not a message name, unlinked, unchanged, or empty). */
int fs_node_commit(fs_mount *m, fs_node *n);
/* Stores what was written to INO. A failed store, or a file whose write failed, drops the
 * content: nothing half-written is stored, a stored message keeps its stored version, a new
 * file is gone. Only a close (CLOSING) drops a failed file: after fsync its descriptor's
 * writes still fail and its close still reports the error. m->lock not held. */
int fs_commit_ino(fs_mount *m, uint64_t ino, bool closing);

/* lookup.c (m->lock not held; T is a transaction of the caller, valid while it lasts) */
/* The mailbox of mailbox directory DIR, this user's; any other inode (the root too): -ENOENT
 * with *mb zeroed. */
int fs_dir_mailbox(fs_mount *m, store_txn *t, uint64_t dir, store_mailbox *mb);
/* Message INO, or where it went (fs_forward); -ENOENT if neither is stored. */
int fs_msg_lookup(fs_mount *m, store_txn *t, uint64_t ino, store_msg *msg);
/* Entry replies for ST: of an in-memory file (timeouts 0: the kernel asks again each time), or
 * of what the store holds (cached FS_TIMEOUT; the change feed invalidates it). */
void fs_entry_mem(struct fuse_entry_param *e, const struct stat *st);
void fs_entry_store(struct fuse_entry_param *e, const struct stat *st);
/* The full mailbox name of child NAME of directory PARENT into BUF (SIZE bytes);
 * -ENAMETOOLONG if it does not fit. fs_full_name reads in a transaction of its own. */
int fs_child_mailbox_name(fs_mount *m, store_txn *t, uint64_t parent, const char *name, char *buf,
                          size_t size);
int fs_full_name(fs_mount *m, uint64_t parent, const char *name, char *buf, size_t size);
/* The last level of mailbox name NAME (a pointer into it). */
const char *fs_mailbox_leaf(const char *name);
/* Looks NAME up in directory PARENT among what the store holds (not the in-memory files): a
 * message, a mailbox or a Maildir view directory; 0 with *st, -ENOENT, or another -errno. */
int fs_lookup_store(fs_mount *m, store_txn *t, uint64_t parent, const char *name, struct stat *st);
/* Stat data of any inode: 0 with *st and *mem (true for an in-memory file), or -errno. */
int fs_stat_ino(fs_mount *m, uint64_t ino, struct stat *st, bool *mem);

/* maildir.c: names in the Maildir view */
/* FS_MD_CUR/NEW/TMP for "cur", "new", "tmp", else 0 */
unsigned fs_md_which(const char *name);
/* The cur/ name of MSG, "BASE:2,FLAGS" for file name "BASE.eml"; 0 if it has none (a name
 * too long with its flags, or ending in ".EML" or another case of ".eml"). */
size_t fs_md_name(const store_msg *msg, char *buf, size_t size);
/* Parses a Maildir name ("BASE" or "BASE:2,LETTERS"): the message file name BASE.eml into
 * FILENAME (SIZE bytes), the flags (D F R S T) and whether P ($Forwarded) is set. -EINVAL if
 * BASE.eml is not a message name, -ENAMETOOLONG if it does not fit. */
int fs_md_parse(const char *name, char *filename, size_t size, uint32_t *flags, bool *passed);
/* KEYWORDS with $Forwarded added or removed, malloc'ed (NULL when out of memory) */
char *fs_md_keywords(const char *keywords, bool passed);
/* A Maildir view directory of MB: its mtime moves with every change, flags included, since
 * flags are part of the names in cur/. */
void fs_mdir_attr(fs_mount *m, const store_mailbox *mb, unsigned which, struct stat *st);
/* The mailbox of a Maildir view directory inode; -ENOENT for any other inode. */
int fs_mdir_mailbox(fs_mount *m, store_txn *t, uint64_t mdir, store_mailbox *mb);
/* The stored message named NAME in cur/ directory MDIR ("BASE:2,FLAGS" with its flags now, in
 * any order); -ENOENT if there is none or its flags are others now, or another -errno. */
int fs_md_msg(fs_mount *m, store_txn *t, uint64_t mdir, const char *name, store_msg *msg);
/* A file renamed into cur/ or new/ of the Maildir view: "BASE:2,FLAGS" is the message BASE.eml
 * of that mailbox with those flags. */
typedef struct fs_md_target {
    uint64_t dir;                       /* the mailbox directory; 0: not into cur/ or new/ */
    char name[STORE_COMPONENT_MAX + 8]; /* BASE.eml */
    uint32_t flags;
    bool passed; /* P: $Forwarded */
} fs_md_target;
/* What a file renamed to NAME in directory DIR becomes: T->dir stays 0 unless DIR is cur/ or
 * new/; there, -EINVAL (or -ENAMETOOLONG) if NAME is not the Maildir name of a message. */
int fs_md_target_parse(uint64_t dir, const char *name, fs_md_target *t);
/* Gives message UID of MAILBOX_ID the flags of its Maildir name T, in write transaction W. */
int fs_md_set_flags(store_txn *w, uint32_t mailbox_id, uint32_t uid, const fs_md_target *t);

/* file.c */
/* Expunges message UID of mailbox MB in a write transaction of its own. */
int fs_msg_expunge(fs_mount *m, uint32_t mb, uint32_t uid);
/* A file named NAME in DIR (created, or renamed from FROM) could not be kept: logs why (at most
 * 20 lines a second) and returns -EPERM. */
int fs_refuse_name(fs_mount *m, uint64_t dir, const char *name, const char *from);

/* kept.c: names that are not messages, kept as ordinary files in the store's kept trees
 * (docs/mount.md, "Which names are messages"); m->lock not held by callers */
int fs_kept_init(fs_mount *m);
void fs_kept_free(fs_mount *m);
/* Whether a new file (DIR false) or directory named NAME in PARENT is a kept one: anything in a
 * kept directory; in the root a dot-directory or a file that is not a message name; in a mailbox
 * directory a dot-directory or a file that is neither a message nor a known temporary name. */
bool fs_kept_new_name(uint64_t parent, const char *name, bool dir);
/* Entry replies for NAME in PARENT (root, mailbox or kept directory): 0 with *e, -ENOENT, ...;
 * the inode is noted, its lookup counted when fs_reply_entry hands it over. */
int fs_kept_lookup(fs_mount *m, uint64_t parent, const char *name, struct fuse_entry_param *e);
bool fs_kept_exists(fs_mount *m, uint64_t parent, const char *name, mode_t *mode);
/* Writes LEN bytes of DATA as kept file NAME of PARENT, replacing one of that name unless
 * NOREPLACE (-EEXIST): a scratch file renamed to a kept name (sed -i on notes.txt). */
int fs_kept_put(fs_mount *m, uint64_t parent, const char *name, const char *data, size_t len,
                mode_t mode, bool noreplace);
/* Creates file (or directory, DIR) NAME in PARENT (O_EXCL and O_TRUNC of FLAGS apply). */
int fs_kept_create(fs_mount *m, uint64_t parent, const char *name, mode_t mode, int flags, bool dir,
                   struct fuse_entry_param *e);
int fs_kept_unlink(fs_mount *m, uint64_t parent, const char *name, bool dir);
/* Both names are kept ones (fs_kept_new_name); FLAGS as renameat2's. */
int fs_kept_rename(fs_mount *m, uint64_t parent, const char *name, uint64_t newparent,
                   const char *newname, unsigned flags);
void fs_kept_ref(fs_mount *m, uint64_t ino, uint64_t n);
void fs_kept_forget(fs_mount *m, uint64_t ino, uint64_t n);
int fs_kept_stat(fs_mount *m, uint64_t ino, struct stat *st);
int fs_kept_setattr(fs_mount *m, uint64_t ino, const struct stat *attr, int to_set);
/* Replies to READ itself. */
void fs_kept_read(fs_mount *m, fuse_req_t req, uint64_t ino, size_t size, off_t off);
int fs_kept_write(fs_mount *m, uint64_t ino, const char *data, size_t size, off_t off);
int fs_kept_fsync(fs_mount *m, uint64_t ino, bool datasync);
/* Calls CB for each kept entry of DIR after offset OFF: with COOKIES (a kept directory) the
 * offsets are the directory's own, "." and ".." included; else (root, mailbox) an index from 1.
 * CB returns 0 to go on, 1 to stop. */
int fs_kept_list(fs_mount *m, uint64_t dir, off_t off, bool cookies,
                 int (*cb)(void *ctx, const char *name, const struct stat *st, off_t next),
                 void *ctx);

/* fs.c: the request table (the handlers are declared in ops.h) */
extern const struct fuse_lowlevel_ops fs_ops;

/* watch.c */
/* Starts the thread that follows the store's change feed and invalidates what the kernel
 * caches; on failure *err (ERRLEN bytes) says why. fs_watch_stop ends it and closes its
 * descriptors (also after a failed start). */
int fs_watch_start(fs_mount *m, char *err, size_t errlen);
void fs_watch_stop(fs_mount *m);
/* Has the watch thread drop what the kernel caches of INO's data and attributes (request
 * handlers must not do it themselves): a write buffer of it was dropped, so pages the kernel
 * kept from the writes were never stored. m->lock not held. */
void fs_watch_inval_data(fs_mount *m, uint64_t ino);

#endif
