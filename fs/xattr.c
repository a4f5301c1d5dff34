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
        *flen = fs_flags_format(msg.flags, msg.keywords, flags, fsize);
        *uid = msg.uid;
        *modseq = msg.modseq;
    }
    store_read_end(&t);
    return rc;
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    fs_mount *m = M(req);
    char buf[STORE_KEYWORDS_MAX + 128];
    size_t len;
    bool flags = strcmp(name, XA_FLAGS) == 0;
    bool uid = strcmp(name, XA_UID) == 0, modseq = strcmp(name, XA_MODSEQ) == 0;
    enum fs_ino_kind k = fs_ino_kind(ino);

    if ((!flags && !uid && !modseq) || k == FS_K_ROOT || k == FS_K_DIR || k == FS_K_MDIR ||
        k == FS_K_BAD) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    if (atomic_load(&m->node_count) && k == FS_K_MEM) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_ino(m, ino);
        bool found = n && !n->msg_mb;
        if (found && flags && (n->flags_set || n->eml))
            len = fs_flags_format(n->flags, n->keywords, buf, sizeof buf);
        else if (found)
            len = (size_t)-1;
        pthread_mutex_unlock(&m->lock);
        if (found) {
            if (len == (size_t)-1)
                fuse_reply_err(req, ENODATA);
            else
                reply_xattr_value(req, buf, len, size);
            return;
        }
    }
    uint32_t msg_uid;
    uint64_t msg_modseq;
    int rc = stored_xattrs(m, ino, buf, sizeof buf, &len, &msg_uid, &msg_modseq);
    if (rc == 0 && uid)
        len = (size_t)snprintf(buf, sizeof buf, "%u", msg_uid);
    else if (rc == 0 && modseq)
        len = (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)msg_modseq);
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

static void set_flags(fuse_req_t req, fuse_ino_t ino, uint32_t flags, char *kw)
{
    fs_mount *m = M(req);
    enum fs_ino_kind k = fs_ino_kind(ino);
    bool stored = k == FS_K_MSG;
    int rc = 0;
    if (k == FS_K_MEM || k == FS_K_MSG) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = atomic_load(&m->node_count) ? fs_node_find_ino(m, ino) : NULL;
        if (n) {
            free(n->keywords);
            n->keywords = strdup(kw);
            n->flags = flags;
            n->flags_set = true;
            clock_gettime(CLOCK_REALTIME, &n->ctime);
            stored = n->msg_mb != 0;
        } else {
            stored = true; /* committed and gone from memory: the store has it (forwards) */
        }
        pthread_mutex_unlock(&m->lock);
    } else {
        rc = -ENOTSUP; /* folders have no flags */
    }
    if (rc == 0 && stored) {
        flags_op o = {.m = m, .ino = ino, .flags = flags, .keywords = kw};
        rc = store_write(m->st, flags_cb, &o);
        if (rc == -ENOENT && k == FS_K_MEM) rc = 0;
    }
    free(kw);
    fuse_reply_err(req, -rc);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                    size_t size, int flags)
{
    if (strcmp(name, "user.mail.uid") == 0 || strcmp(name, "user.mail.modseq") == 0) {
        fuse_reply_err(req, EPERM); /* read-only */
        return;
    }
    if (strcmp(name, "user.mail.flags") != 0) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    uint32_t f;
    char *kw;
    int rc = fs_flags_parse(value, size, &f, &kw);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    set_flags(req, ino, f, kw);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    if (strcmp(name, "user.mail.flags") != 0) {
        fuse_reply_err(req, strncmp(name, "user.mail.", 10) == 0 ? EPERM : ENODATA);
        return;
    }
    char *kw = strdup("");
    if (!kw) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    set_flags(req, ino, 0, kw);
}
