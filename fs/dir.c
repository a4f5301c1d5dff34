/* dir.c: directories: OPENDIR, READDIR(PLUS) of the root, mailboxes and the Maildir view,
 * MKDIR and RMDIR of mailboxes */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

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
 * FS_OFF_MEM + k + 1 in-memory files, FS_OFF_KEPT + k kept files. */
#define FS_OFF_MSG (1ll << 40)
#define FS_OFF_MEM (1ll << 60)
#define FS_OFF_KEPT (1ll << 61) /* + k: kept files (a kept directory uses its own offsets) */

typedef struct dir_fill {
    fs_mount *m;
    fuse_req_t req;
    bool plus;
    bool md; /* cur/ of the Maildir view: names carry flags, so entries are not cached */
    char *buf;
    size_t size, used;
    bool full;
    uint64_t *inos; /* readdirplus: the inodes handed to the kernel (each counts a lookup) */
    size_t ninos, maxinos;
} dir_fill;

/* The least a readdirplus entry takes (struct fuse_entry_out, then a fuse_dirent): a buffer of
 * SIZE bytes holds at most SIZE / DIRENTPLUS_MIN + 1 entries. */
#define DIRENTPLUS_MIN 152

static bool dir_add(dir_fill *d, const char *name, const struct stat *st, off_t next, bool mem)
{
    size_t need;
    if (d->plus) {
        struct fuse_entry_param e;
        if (mem)
            fs_entry_mem(&e, st);
        else
            fs_entry_store(&e, st);
        if (d->md) e.entry_timeout = 0;
        need = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e, next);
        if (need <= d->size - d->used && d->ninos < d->maxinos && strcmp(name, ".") != 0 &&
            strcmp(name, "..") != 0)
            d->inos[d->ninos++] = e.ino;
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

typedef struct kept_fill {
    dir_fill *d;
    off_t base;
} kept_fill;

static int kept_cb(void *ctx, const char *name, const struct stat *st, off_t next)
{
    kept_fill *k = ctx;
    return dir_add(k->d, name, st, k->base + next, false) ? 0 : 1;
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

    if (k != FS_K_ROOT && k != FS_K_DIR && k != FS_K_MDIR && k != FS_K_KEPT) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    size_t maxinos = plus ? size / DIRENTPLUS_MIN + 1 : 0;
    char *buf = thread_buf(maxinos * sizeof(uint64_t) + size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    dir_fill d = {.m = m,
                  .req = req,
                  .plus = plus,
                  .buf = buf + maxinos * sizeof(uint64_t),
                  .size = size,
                  .inos = (uint64_t *)(void *)buf,
                  .maxinos = maxinos};
    if (k == FS_K_KEPT) { /* a kept directory: what its directory in the kept tree holds */
        kept_fill kf = {&d, 0};
        rc = fs_kept_list(m, ino, off, true, kept_cb, &kf);
        if (rc) goto err;
        goto done;
    }
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
            if (!dir_add(&d, fs_mailbox_leaf(kids.v[i].name), &st, (off_t)i + 3, false)) goto done;
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
        if (d.full) goto done;
    }
    if (k != FS_K_MDIR) {
        kept_fill kf = {&d, FS_OFF_KEPT};
        store_read_end(&t); /* no transaction across the kept tree's reads */
        rc = fs_kept_list(m, ino, off > FS_OFF_KEPT ? off - FS_OFF_KEPT : 0, false, kept_cb, &kf);
        if (rc) goto err;
    }
done:
    store_read_end(&t);
    free(kids.v);
    fs_inode_ref_many(m, d.inos, d.ninos);       /* before the reply: FORGETs may come at once */
    if (fuse_reply_buf(req, d.buf, d.used) != 0) /* the kernel never saw them */
        for (size_t i = 0; i < d.ninos; i++)
            fs_inode_forget(m, d.inos[i], 1);
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

static int mkdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_create(w, o->user_id, o->name, 0, &o->out);
}

static int rmdir_cb(store_txn *w, void *arg)
{
    mbox_op *o = arg;
    return store_mailbox_delete(w, o->user_id, o->name, STORE_DEL_IF_EMPTY);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fs_mount *m = M(req);
    char full[STORE_NAME_MAX + 1];
    const char *why;
    int rc = fs_name_check(name);
    if (rc == 0 && fs_kept_new_name(parent, name, true)) { /* .git, .notmuch and what is in them */
        struct fuse_entry_param e;
        store_txn *t;
        struct stat st;
        if (fs_ino_kind(parent) == FS_K_DIR && (rc = store_read_begin(m->st, &t)) == 0) {
            store_mailbox mb;
            rc = fs_dir_mailbox(m, t, parent, &mb);
            if (rc == 0 && fs_lookup_store(m, t, parent, name, &st) == 0) rc = -EEXIST;
            store_read_end(&t);
        }
        if (rc == 0 && atomic_load(&m->node_count)) {
            pthread_mutex_lock(&m->lock);
            if (fs_node_find_name(m, parent, name)) rc = -EEXIST;
            pthread_mutex_unlock(&m->lock);
        }
        if (rc == 0) rc = fs_kept_create(m, parent, name, mode, O_EXCL, true, &e);
        if (rc)
            fuse_reply_err(req, -rc);
        else
            fs_reply_entry(m, req, &e);
        return;
    }
    if (rc == 0 && fs_ino_kind(parent) == FS_K_KEPT) rc = -ENOTDIR;
    if (rc == 0 && !fs_ino_is_dir(parent)) rc = -ENOTDIR;
    if (rc == 0 && fs_ino_kind(parent) == FS_K_MDIR) rc = -EPERM; /* no folders in a Maildir */
    if (rc == 0) rc = fs_full_name(m, parent, name, full, sizeof full);
    if (rc == 0 && store_mailbox_name_check(full, &why) != 0) rc = -EINVAL;
    if (rc == 0 && atomic_load(&m->node_count)) {
        pthread_mutex_lock(&m->lock);
        if (fs_node_find_name(m, parent, name)) rc = -EEXIST;
        pthread_mutex_unlock(&m->lock);
    }
    mbox_op o = {.user_id = m->user_id, .name = full};
    if (rc == 0) rc = store_write(m->st, mkdir_cb, &o);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e = {0};
    fs_dir_attr(m, &o.out, &e.attr);
    e.ino = e.attr.st_ino;
    e.attr_timeout = e.entry_timeout = FS_TIMEOUT;
    fs_reply_entry(m, req, &e);
}

static bool has_mem_children(fs_mount *m, uint64_t dir)
{
    bool found = false;
    if (!atomic_load(&m->node_count)) return false;
    pthread_mutex_lock(&m->lock);
    for (fs_node *n = m->nodes; n && !found; n = n->next)
        found = n->parent == dir;
    pthread_mutex_unlock(&m->lock);
    return found;
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_mount *m = M(req);
    char full[STORE_NAME_MAX + 1];
    struct stat st;
    if (fs_ino_kind(parent) == FS_K_KEPT) {
        fuse_reply_err(req, -fs_kept_unlink(m, parent, name, true));
        return;
    }
    int rc = fs_full_name(m, parent, name, full, sizeof full);
    if (rc == 0) {
        store_txn *t;
        rc = store_read_begin(m->st, &t);
        if (rc == 0) {
            rc = fs_lookup_store(m, t, parent, name, &st);
            store_read_end(&t);
        }
        if (rc == -ENOENT && fs_kept_exists(m, parent, name, NULL)) { /* a kept directory */
            fuse_reply_err(req, -fs_kept_unlink(m, parent, name, true));
            return;
        }
        if (rc == 0 && !S_ISDIR(st.st_mode)) rc = -ENOTDIR;
        if (rc == 0 && fs_ino_kind(st.st_ino) == FS_K_MDIR) rc = -EPERM; /* the Maildir view */
        if (rc == 0 && (has_mem_children(m, st.st_ino) ||
                        has_mem_children(m, fs_ino_mdir(fs_ino_mailbox(st.st_ino), FS_MD_TMP))))
            rc = -ENOTEMPTY;
    }
    mbox_op o = {.user_id = m->user_id, .name = full};
    if (rc == 0) rc = store_write(m->st, rmdir_cb, &o);
    fuse_reply_err(req, -rc);
}
