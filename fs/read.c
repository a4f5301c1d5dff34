/* read.c: the read side of the mount: lookup, getattr, readdir(plus), open, read, xattrs, statfs */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

static fs_mount *M(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void entry_store(struct fuse_entry_param *e, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->ino = st->st_ino;
    e->attr = *st;
    e->attr_timeout = FS_TIMEOUT;
    e->entry_timeout = FS_TIMEOUT;
}

void fs_entry_mem(struct fuse_entry_param *e, const struct stat *st)
{
    memset(e, 0, sizeof *e);
    e->ino = st->st_ino;
    e->attr = *st;
    e->attr_timeout = 0;
    e->entry_timeout = 0;
}

/* Full mailbox name of child NAME of directory PARENT, into BUF. */
int fs_child_mailbox_name(fs_mount *m, store_txn *t, uint64_t parent, const char *name, char *buf,
                          size_t size)
{
    if (parent == FS_INO_ROOT) {
        if (strlen(name) >= size) return -ENAMETOOLONG;
        strcpy(buf, name);
        return 0;
    }
    store_mailbox pmb;
    int rc = fs_dir_mailbox(m, t, parent, &pmb);
    if (rc) return rc;
    if ((size_t)snprintf(buf, size, "%s/%s", pmb.name, name) >= size) return -ENAMETOOLONG;
    return 0;
}

static const char *leaf(const char *name)
{
    const char *s = strrchr(name, '/');
    return s ? s + 1 : name;
}

/* A stored message by its name in cur/ of the Maildir view: the flags in the name must be its
 * flags now, as a name in a real Maildir would be (in any order: what cp copied in as
 * "x:2,SF" is found under that name too, though listed as "x:2,FS"). */
int fs_md_msg(fs_mount *m, store_txn *t, uint64_t mdir, const char *name, store_msg *msg)
{
    char filename[STORE_COMPONENT_MAX + 8], now[STORE_COMPONENT_MAX + 16];
    char nowfile[STORE_COMPONENT_MAX + 8];
    uint32_t flags, nowflags;
    bool passed, nowpassed;
    store_mailbox mb;
    int rc = fs_mdir_mailbox(m, t, mdir, &mb);
    if (rc) return rc;
    if (fs_ino_md_which(mdir) != FS_MD_CUR) return -ENOENT;
    if (fs_md_parse(name, filename, sizeof filename, &flags, &passed) != 0) return -ENOENT;
    rc = store_msg_by_name(t, mb.id, filename, msg);
    if (rc) return rc;
    if (!fs_md_name(msg, now, sizeof now) ||
        fs_md_parse(now, nowfile, sizeof nowfile, &nowflags, &nowpassed) != 0 ||
        nowflags != flags || nowpassed != passed)
        return -ENOENT;
    return 0;
}

/* Looks NAME up in directory PARENT: fills *st and returns 0, or -ENOENT. */
int fs_lookup_store(fs_mount *m, store_txn *t, uint64_t parent, const char *name, struct stat *st)
{
    char full[STORE_NAME_MAX + 1];
    store_mailbox mb;
    store_msg msg;
    bool eml = fs_name_is_message(name);
    uint32_t pmb = fs_ino_mailbox(parent);
    int rc;

    if (fs_ino_kind(parent) == FS_K_MDIR) {
        rc = fs_md_msg(m, t, parent, name, &msg);
        if (rc == 0) fs_msg_attr(m, &msg, st);
        return rc;
    }

    if (eml && parent != FS_INO_ROOT) {
        rc = store_msg_by_name(t, pmb, name, &msg);
        if (rc != -ENOENT) {
            if (rc == 0) fs_msg_attr(m, &msg, st);
            return rc;
        }
    }
    rc = fs_child_mailbox_name(m, t, parent, name, full, sizeof full);
    if (rc == 0) {
        rc = store_mailbox_get(t, m->user_id, full, &mb);
        if (rc == 0 && strcmp(leaf(mb.name), name) != 0)
            rc = -ENOENT; /* "inbox" is not another name for INBOX here */
        if (rc == 0) {
            fs_dir_attr(m, &mb, st);
            return 0;
        }
        if (rc == -EINVAL || rc == -ENAMETOOLONG) rc = -ENOENT;
        if (rc != -ENOENT) return rc;
    } else if (rc == -ENAMETOOLONG) {
        rc = -ENOENT;
    }
    unsigned which = parent != FS_INO_ROOT ? fs_md_which(name) : 0;
    if (rc == -ENOENT && which) { /* the Maildir view, unless a mailbox has that name */
        rc = fs_dir_mailbox(m, t, parent, &mb);
        if (rc == 0) fs_mdir_attr(m, &mb, which, st);
    }
    return rc;
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = M(req);
    struct fuse_entry_param e;
    struct stat st;
    enum fs_ino_kind k = fs_ino_kind(parent);
    if (k != FS_K_ROOT && k != FS_K_DIR && k != FS_K_MDIR) {
        fuse_reply_err(req, k == FS_K_MEM || k == FS_K_MSG ? ENOTDIR : ENOENT);
        return;
    }
    if (strlen(name) > STORE_COMPONENT_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_name(m, parent, name);
        if (n) fs_node_attr(m, n, &st);
        pthread_mutex_unlock(&m->lock);
        if (n) {
            fs_entry_mem(&e, &st);
            fuse_reply_entry(req, &e);
            return;
        }
    }
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = fs_lookup_store(m, t, parent, name, &st);
    store_read_end(&t);
    if (rc == -ENOENT && k != FS_K_MDIR) { /* cached until the change feed says otherwise */
        memset(&e, 0, sizeof e);
        e.entry_timeout = FS_TIMEOUT;
        fuse_reply_entry(req, &e);
        return;
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    entry_store(&e, &st);
    if (k == FS_K_MDIR) e.entry_timeout = 0; /* a flag change elsewhere renames it */
    fuse_reply_entry(req, &e);
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    fuse_reply_none(req);
}

/* Stat data of any inode: 0 with *st and *mem (true for in-memory files), or -errno. */
int fs_stat_ino(fs_mount *m, uint64_t ino, struct stat *st, bool *mem)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    *mem = false;
    if (k == FS_K_ROOT) {
        fs_root_attr(m, st);
        return 0;
    }
    if ((k == FS_K_MEM || k == FS_K_MSG) && atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        fs_node *n = fs_node_find_ino(m, ino);
        if (n) fs_node_attr(m, n, st);
        pthread_mutex_unlock(&m->lock);
        if (n) {
            *mem = true;
            return 0;
        }
    }
    if (k == FS_K_BAD) return -ENOENT;
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    if (k == FS_K_DIR || k == FS_K_MDIR) {
        store_mailbox mb;
        rc = k == FS_K_DIR ? fs_dir_mailbox(m, t, ino, &mb) : fs_mdir_mailbox(m, t, ino, &mb);
        if (rc == 0 && k == FS_K_DIR) fs_dir_attr(m, &mb, st);
        if (rc == 0 && k == FS_K_MDIR) fs_mdir_attr(m, &mb, fs_ino_md_which(ino), st);
    } else {
        store_msg msg;
        rc = fs_msg_lookup(m, t, ino, &msg);
        if (rc == 0) {
            fs_msg_attr(m, &msg, st);
            st->st_ino = ino;
        }
    }
    store_read_end(&t);
    return rc;
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    bool mem;
    int rc = fs_stat_ino(M(req), ino, &st, &mem);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, mem ? 0 : FS_TIMEOUT);
}

/* ---- directories ------------------------------------------------------------------------- */

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    if (m->no_opendir) {
        fuse_reply_err(req, ENOSYS); /* the kernel stops asking; it caches listings itself */
        return;
    }
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

/* Offsets: 1 ".", 2 "..", 3.. child mailboxes, FS_OFF_MSG + uid + 1 messages (a stable cursor),
 * FS_OFF_MEM + k + 1 in-memory files. */
#define FS_OFF_MSG (1ll << 40)
#define FS_OFF_MEM (1ll << 60)

typedef struct dir_fill {
    fs_mount *m;
    fuse_req_t req;
    bool plus;
    bool md; /* cur/ of the Maildir view: names carry flags, so entries are not cached */
    char *buf;
    size_t size, used;
    bool full;
} dir_fill;

static bool dir_add(dir_fill *d, const char *name, const struct stat *st, off_t next, bool mem)
{
    size_t need;
    if (d->plus) {
        struct fuse_entry_param e;
        if (mem)
            fs_entry_mem(&e, st);
        else
            entry_store(&e, st);
        if (d->md) e.entry_timeout = 0;
        need = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e, next);
    } else {
        need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, st, next);
    }
    if (need > d->size - d->used) {
        d->full = true;
        return false;
    }
    d->used += need;
    return true;
}

typedef struct child_list {
    store_mailbox *v;
    size_t n, cap;
    const char *prefix; /* "" for the root, else "Name/" */
    size_t plen;
} child_list;

static int child_cb(void *ctx, const store_mailbox *mb)
{
    child_list *c = ctx;
    if (strncmp(mb->name, c->prefix, c->plen) != 0 || !mb->name[c->plen] ||
        strchr(mb->name + c->plen, '/'))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        store_mailbox *v = realloc(c->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *mb;
    return 0;
}

static int msg_cb(void *ctx, const store_msg *msg)
{
    dir_fill *d = ctx;
    struct stat st;
    bool mem = false;
    fs_msg_attr(d->m, msg, &st);
    if (atomic_load(&d->m->node_count)) { /* being rewritten: show the new size */
        pthread_mutex_lock(&d->m->lock);
        fs_node *n = fs_node_find_ino(d->m, st.st_ino);
        if (n) {
            fs_node_attr(d->m, n, &st);
            mem = true;
        }
        pthread_mutex_unlock(&d->m->lock);
    }
    char mdname[STORE_COMPONENT_MAX + 16];
    const char *name = msg->filename;
    if (d->md) { /* names a lookup could not take (over 255 bytes) are left out */
        size_t len = fs_md_name(msg, mdname, sizeof mdname);
        if (!len || len > STORE_COMPONENT_MAX) return 0;
        name = mdname;
    }
    if (!dir_add(d, name, &st, FS_OFF_MSG + (off_t)msg->uid + 1, mem)) return 1;
    return 0;
}

/* Each worker thread keeps one reply buffer for listings (freed when the thread ends). */
typedef struct tl_buf {
    char *p;
    size_t cap;
} tl_buf;
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_free(void *v)
{
    tl_buf *b = v;
    free(b->p);
    free(b);
}

static void buf_key_make(void)
{
    pthread_key_create(&buf_key, buf_free);
}

static char *thread_buf(size_t size)
{
    pthread_once(&buf_once, buf_key_make);
    tl_buf *b = pthread_getspecific(buf_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(buf_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (size > b->cap) {
        char *p = realloc(b->p, size);
        if (!p) return NULL;
        b->p = p;
        b->cap = size;
    }
    return b->p;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    fs_mount *m = M(req);
    enum fs_ino_kind k = fs_ino_kind(ino);
    store_txn *t = NULL;
    store_mailbox self;
    child_list kids = {0};
    char prefix[STORE_NAME_MAX + 2];
    int rc;

    if (k != FS_K_ROOT && k != FS_K_DIR && k != FS_K_MDIR) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    char *buf = thread_buf(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    dir_fill d = {.m = m, .req = req, .plus = plus, .buf = buf, .size = size};
    rc = store_read_begin(m->st, &t);
    if (rc) goto err;
    if (k == FS_K_MDIR) {
        rc = fs_mdir_mailbox(m, t, ino, &self);
        if (rc) goto err;
        d.md = true;
        prefix[0] = 0;
    } else if (k == FS_K_DIR) {
        rc = fs_dir_mailbox(m, t, ino, &self);
        if (rc) goto err;
        snprintf(prefix, sizeof prefix, "%s/", self.name);
    } else {
        prefix[0] = 0;
    }

    struct stat st;
    if (off < 1) {
        if (k == FS_K_ROOT)
            fs_root_attr(m, &st);
        else if (k == FS_K_MDIR)
            fs_mdir_attr(m, &self, fs_ino_md_which(ino), &st);
        else
            fs_dir_attr(m, &self, &st);
        if (!dir_add(&d, ".", &st, 1, false)) goto done;
        off = 1;
    }
    if (off < 2) {
        memset(&st, 0, sizeof st);
        st.st_ino = FS_INO_ROOT; /* the kernel ignores ".." data; only its type matters */
        st.st_mode = S_IFDIR;
        if (!dir_add(&d, "..", &st, 2, false)) goto done;
        off = 2;
    }
    if (off < FS_OFF_MSG && k == FS_K_MDIR) off = FS_OFF_MSG; /* no folders in a Maildir view */
    if (off < FS_OFF_MSG) {
        kids.prefix = prefix;
        kids.plen = strlen(prefix);
        rc = store_mailbox_list(t, m->user_id, child_cb, &kids);
        if (rc) goto err;
        for (size_t i = (size_t)off - 2; i < kids.n; i++) {
            fs_dir_attr(m, &kids.v[i], &st);
            if (!dir_add(&d, leaf(kids.v[i].name), &st, (off_t)i + 3, false)) goto done;
        }
        off = FS_OFF_MSG;
    }
    if (off < FS_OFF_MEM) {
        if (k == FS_K_DIR || (k == FS_K_MDIR && fs_ino_md_which(ino) == FS_MD_CUR)) {
            uint32_t first = (uint32_t)(off - FS_OFF_MSG);
            rc = store_msg_list(t, self.id, first ? first : 1, msg_cb, &d);
            if (rc < 0) goto err;
            if (d.full) goto done;
        }
        off = FS_OFF_MEM;
    }
    if (atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        off_t i = 0;
        for (fs_node *n = m->nodes; n; n = n->next) {
            if (n->parent != ino) continue;
            i++;
            if (FS_OFF_MEM + i <= off) continue;
            fs_node_attr(m, n, &st);
            if (!dir_add(&d, n->name, &st, FS_OFF_MEM + i, true)) break;
        }
        pthread_mutex_unlock(&m->lock);
    }
done:
    store_read_end(&t);
    free(kids.v);
    fuse_reply_buf(req, d.buf, d.used);
    return;
err:
    if (t) store_read_end(&t);
    free(kids.v);
    fuse_reply_err(req, -rc);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, true);
}

/* ---- files ------------------------------------------------------------------------------- */

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    fs_mount *m = M(req);
    fs_node *n = NULL;
    if (atomic_load(&m->node_count)) { /* a file being written reads back what was written */
        pthread_mutex_lock(&m->lock);
        n = fs_node_find_ino(m, ino);
        if (!n) pthread_mutex_unlock(&m->lock);
    }
    if (n) {
        size_t len = off < 0 || (uint64_t)off >= n->len ? 0 : n->len - (size_t)off;
        if (len > size) len = size;
        fuse_reply_buf(req, len ? n->data + off : NULL, len);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    store_txn *t;
    store_msg msg;
    const char *data;
    size_t len;
    int rc = store_read_begin(m->st, &t);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    rc = fs_msg_lookup(m, t, ino, &msg);
    if (rc == 0) rc = store_msg_body(t, &msg, &data, &len);
    if (rc) {
        store_read_end(&t);
        fuse_reply_err(req, -rc);
        return;
    }
    size_t n_ = off < 0 || (uint64_t)off >= len ? 0 : len - (size_t)off;
    if (n_ > size) n_ = size;
    fuse_reply_buf(req, n_ ? data + off : NULL, n_); /* straight from the memory map */
    store_read_end(&t);
}

/* ---- extended attributes ----------------------------------------------------------------- */

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

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    if (statvfs(M(req)->store_path, &sv) != 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = STORE_COMPONENT_MAX;
    fuse_reply_statfs(req, &sv);
}
