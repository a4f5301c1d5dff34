/* xattr.c: extended attributes: user.mail.flags (read-write), user.mail.uid and
 * user.mail.modseq (read-only): GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

#define XA_FLAGS "user.mail.flags"
#define XA_UID "user.mail.uid"
#define XA_MODSEQ "user.mail.modseq"

static void reply_xattr_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, v, len);
}

/* What the xattrs of stored message INO say, read in a short transaction: its flags and
 * keywords formatted as user.mail.flags into FLAGS (FSIZE bytes; its length in *FLEN), its
 * UID and MODSEQ. */
static int stored_xattrs(fs_mount *m, uint64_t ino, char *flags, size_t fsize, size_t *flen,
                         uint32_t *uid, uint64_t *modseq)
{
    store_txn *t;
    store_msg msg;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_msg_lookup(m, t, ino, &msg);
    if (rc == 0) {
        *flen = store_flags_format(msg.flags, msg.keywords, flags, fsize);
        if (*flen >= fsize) rc = -E2BIG;
        *uid = msg.uid;
        *modseq = msg.modseq;
    }
    store_read_end(&t);
    return rc;
}

/* The value of xattr NAME of INO into BUF (SIZE bytes), its length into *LEN. */
static int xattr_value(fs_mount *m, uint64_t ino, const char *name, char *buf, size_t size,
                       size_t *len)
{
    bool flags = strcmp(name, XA_FLAGS) == 0;
    bool uid = strcmp(name, XA_UID) == 0, modseq = strcmp(name, XA_MODSEQ) == 0;
    enum fs_ino_kind k = fs_ino_kind(ino);
    int rc;

    if ((!flags && !uid && !modseq) || (k != FS_K_MEM && k != FS_K_MSG)) return -ENODATA;
    if (atomic_load(&m->node_count) && k == FS_K_MEM) {
        rc = 1; /* not an in-memory file (any more) */
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_ino(m, ino);
        if (n && !n->msg_mb) {
            rc = -ENODATA;
            if (flags && (n->flags_set || n->eml)) {
                *len = store_flags_format(n->flags, n->keywords, buf, size);
                rc = *len < size ? 0 : -E2BIG;
            }
        }
        pthread_mutex_unlock(&m->lock);
        if (rc <= 0) return rc;
    }
    uint32_t msg_uid;
    uint64_t msg_modseq;
    rc = stored_xattrs(m, ino, buf, size, len, &msg_uid, &msg_modseq);
    if (rc == 0 && uid)
        *len = (size_t)snprintf(buf, size, "%u", msg_uid);
    else if (rc == 0 && modseq)
        *len = (size_t)snprintf(buf, size, "%llu", (unsigned long long)msg_modseq);
    return rc;
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    char buf[STORE_KEYWORDS_MAX + 128];
    size_t len = 0;
    int rc = xattr_value(M(req), ino, name, buf, sizeof buf, &len);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_xattr_value(req, buf, len, size);
}

/* Only user.mail.flags is listed, and only when the message has flags or keywords: uid and
 * modseq are read-only and must not be copied by rsync -X or tar --xattrs into another mount,
 * and a message without flags has nothing to copy (cp -a then stops after one LISTXATTR instead
 * of asking for the size and the value of an empty attribute: four round trips a file). An
 * unlisted user.mail.flags still reads as empty. */
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    fs_mount *m = M(req);
    static const char list[] = XA_FLAGS;
    enum fs_ino_kind k = fs_ino_kind(ino);
    bool has = false, found = false;
    if ((k == FS_K_MEM || k == FS_K_MSG) && atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_ino(m, ino);
        if (n && (k == FS_K_MEM || n->flags_set)) {
            found = !n->msg_mb || n->flags_set;
            has = n->flags || (n->keywords && n->keywords[0]);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (!found && (k == FS_K_MSG || k == FS_K_MEM)) {
        char buf[STORE_KEYWORDS_MAX + 128];
        size_t len = 0;
        uint32_t uid;
        uint64_t modseq;
        int rc = stored_xattrs(m, ino, buf, sizeof buf, &len, &uid, &modseq);
        has = rc == 0 && len > 0;
        if (rc && rc != -ENOENT) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    reply_xattr_value(req, list, has ? sizeof list : 0, size);
}

typedef struct flags_op {
    fs_mount *m;
    uint64_t ino;
    uint32_t flags;
    const char *keywords;
} flags_op;

static int flags_cb(store_txn *w, void *arg)
{
    flags_op *o = arg;
    store_msg msg;
    int rc = fs_msg_lookup(o->m, w, o->ino, &msg);
    if (rc) return rc;
    return store_msg_set_flags(w, msg.mailbox_id, msg.uid, STORE_FLAGS_SET, o->flags, o->keywords,
                               0, NULL);
}

/* Gives INO flags and keywords: an in-memory file keeps them until it is stored, a stored
 * message gets them now. */
static int set_flags(fs_mount *m, uint64_t ino, uint32_t flags, const char *kw)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    bool stored = true; /* committed and gone from memory: the store has it (forwards) */
    int rc = 0;
    if (k != FS_K_MEM && k != FS_K_MSG) return -ENOTSUP; /* folders have no flags */
    pthread_mutex_lock(&m->lock);
    fs_node *n = atomic_load(&m->node_count) ? fs_node_find_ino(m, ino) : NULL;
    if (n) {
        char *dup = strdup(kw);
        if (dup) {
            free(n->keywords);
            n->keywords = dup;
            n->flags = flags;
            n->flags_set = true;
            clock_gettime(CLOCK_REALTIME, &n->ctime);
        } else {
            rc = -ENOMEM;
        }
        stored = n->msg_mb != 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == 0 && stored) {
        flags_op o = {.m = m, .ino = ino, .flags = flags, .keywords = kw};
        rc = store_write(m->st, flags_cb, &o);
        if (rc == -ENOENT && k == FS_K_MEM) rc = 0;
    }
    return rc;
}

/* user.mail.flags set to the SIZE bytes at VALUE (store_flags_parse: taken whole or refused). */
static int set_flags_text(fs_mount *m, uint64_t ino, const char *value, size_t size)
{
    uint32_t f;
    char kw[STORE_KEYWORDS_MAX + 1];
    if (size && value[size - 1] == 0) size--; /* a C string's terminator, which some count */
    int rc = store_flags_parse(value, size, &f, kw, sizeof kw, NULL);
    if (rc == -E2BIG) rc = -EINVAL; /* more keywords than a message can hold */
    return rc ? rc : set_flags(m, ino, f, kw);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    int rc;
    if (strcmp(name, XA_UID) == 0 || strcmp(name, XA_MODSEQ) == 0)
        rc = -EPERM; /* read-only */
    else if (strcmp(name, XA_FLAGS) != 0)
        rc = -ENOTSUP;
    else
        rc = set_flags_text(M(req), ino, value, size);
    fuse_reply_err(req, -rc);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    int rc;
    if (strcmp(name, XA_FLAGS) != 0)
        rc = strncmp(name, "user.mail.", 10) == 0 ? -EPERM : -ENODATA;
    else
        rc = set_flags(M(req), ino, 0, "");
    fuse_reply_err(req, -rc);
}
