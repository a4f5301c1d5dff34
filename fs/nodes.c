/* nodes.c: in-memory files (scratch files, messages being written) and their commit to the store */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"

fs_node *fs_node_find_ino(fs_mount *m, uint64_t ino)
{
    for (fs_node *n = m->nodes; n; n = n->next)
        if (n->ino == ino) return n;
    return NULL;
}

fs_node *fs_node_find_name(fs_mount *m, uint64_t parent, const char *name)
{
    for (fs_node *n = m->nodes; n; n = n->next)
        if (n->parent == parent && strcmp(n->name, name) == 0) return n;
    return NULL;
}

static void set_now(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
}

fs_node *fs_node_new(fs_mount *m, uint64_t parent, const char *name, mode_t mode)
{
    fs_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->name = strdup(name);
    if (!n->name) {
        free(n);
        return NULL;
    }
    n->ino = FS_INO_MEM | ++m->next_mem;
    n->parent = parent;
    /* in cur/ or new/ (cp, rsync from another Maildir) a message is named by its base and
     * carries the flags of its name */
    n->eml = fs_name_kind_in(parent, name) == FS_NAME_MESSAGE;
    n->mode = (mode & 0666) ? (mode & 0666) : 0644;
    set_now(&n->mtime);
    n->ctime = n->mtime;
    n->next = m->nodes;
    m->nodes = n;
    atomic_fetch_add(&m->node_count, 1);
    return n;
}

static void node_free(fs_mount *m, fs_node *n)
{
    for (fs_node **pp = &m->nodes; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    atomic_fetch_sub(&m->node_count, 1);
    m->scratch_bytes -= n->len;
    free(n->data);
    free(n->name);
    free(n->keywords);
    free(n);
}

/* A detached node is freed once no request works on it and it holds nothing left to store. */
void fs_node_put(fs_mount *m, fs_node *n)
{
    if (n->parent == 0 && n->pins <= 0 && (!n->dirty || n->unlinked || !n->eml)) node_free(m, n);
}

void fs_node_detach(fs_mount *m, fs_node *n)
{
    n->parent = 0;
    fs_node_put(m, n);
}

void fs_node_fail(fs_node *n, int rc)
{
    if (!n->failed) n->failed = rc;
    n->dirty = true; /* kept (detached) until a FLUSH reports it */
}

int fs_node_resize(fs_mount *m, fs_node *n, uint64_t size)
{
    if (n->failed) return n->failed;
    if (size > m->msg_max) return -EFBIG;
    if (size > n->len && m->scratch_bytes + (size - n->len) > m->scratch_max) return -ENOSPC;
    if (size > n->cap) {
        size_t cap = n->cap ? n->cap : 4096;
        while (cap < size)
            cap *= 2;
        char *d = realloc(n->data, cap);
        if (!d) return -ENOMEM;
        n->data = d;
        n->cap = cap;
    }
    if (size > n->len) memset(n->data + n->len, 0, size - n->len);
    m->scratch_bytes = m->scratch_bytes - n->len + size;
    n->len = size;
    if (size < n->cap / 4 && n->cap > 65536) {
        char *d = realloc(n->data, size ? size : 1);
        if (d) {
            n->data = d;
            n->cap = size ? size : 1;
        }
    }
    n->dirty = true;
    set_now(&n->mtime);
    n->ctime = n->mtime;
    return 0;
}

int fs_node_write(fs_mount *m, fs_node *n, const char *buf, size_t size, off_t off)
{
    if (n->failed) return n->failed;
    /* a part that cannot be written makes the whole file unusable: a message with a hole or
     * a missing tail must never be stored */
    int rc = off < 0 ? -EINVAL : 0;
    uint64_t end = (uint64_t)off + size; /* off <= INT64_MAX and size <= max_write */
    if (rc == 0 && end > n->len) rc = fs_node_resize(m, n, end);
    if (rc) {
        fs_node_fail(n, rc);
        return rc;
    }
    memcpy(n->data + off, buf, size);
    n->dirty = true;
    set_now(&n->mtime);
    n->ctime = n->mtime;
    return 0;
}

void fs_node_attr(fs_mount *m, const fs_node *n, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = n->ino;
    st->st_mode = S_IFREG | (n->mode & 0666);
    st->st_nlink = n->parent ? 1 : 0;
    if (n->msg_mb) st->st_nlink = 1;
    st->st_uid = m->uid;
    st->st_gid = m->gid;
    st->st_size = (off_t)n->len;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((n->len + 511) / 512);
    st->st_mtim = n->mtime;
    st->st_atim = n->mtime;
    st->st_ctim = n->ctime;
}

/* ---- forwards: where a message went that this mount replaced or moved ------------------- */

void fs_forward_add(fs_mount *m, uint64_t from, uint64_t to)
{
    if (from == to) return;
    pthread_mutex_lock(&m->lock);
    m->fwd[m->fwd_next].from = from;
    m->fwd[m->fwd_next].to = to;
    m->fwd_next = (m->fwd_next + 1) % FS_FORWARDS;
    if (atomic_load(&m->fwd_count) < FS_FORWARDS) atomic_fetch_add(&m->fwd_count, 1);
    pthread_mutex_unlock(&m->lock);
}

uint64_t fs_forward(fs_mount *m, uint64_t ino)
{
    if (atomic_load(&m->fwd_count) == 0) return 0;
    uint64_t cur = ino, found = 0;
    pthread_mutex_lock(&m->lock);
    for (int hop = 0; hop < 16; hop++) {
        uint64_t next = 0;
        for (unsigned i = 0; i < FS_FORWARDS; i++) {
            unsigned k = (m->fwd_next + FS_FORWARDS - 1 - i) % FS_FORWARDS;
            if (m->fwd[k].from == cur && m->fwd[k].to) {
                next = m->fwd[k].to;
                break;
            }
        }
        if (!next) break;
        found = cur = next;
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

/* ---- commit ------------------------------------------------------------------------------ */

typedef struct commit_ctx {
    uint32_t mb;
    uint32_t old_uid; /* replace this message (0: none) */
    const char *name; /* file name when not replacing OLD_UID */
    const char *data;
    size_t len;
    int64_t internaldate;
    bool flags_set;
    uint32_t flags;
    const char *keywords;
    uint32_t replaced_uid; /* out: the message that was expunged (0: none) */
    store_msg out;
} commit_ctx;

static int commit_cb(store_txn *w, void *arg)
{
    commit_ctx *c = arg;
    char name[STORE_COMPONENT_MAX + 1];
    char kw[STORE_KEYWORDS_MAX + 1];
    store_msg old;
    int rc = -ENOENT;
    c->replaced_uid = 0;
    if (c->old_uid) rc = store_msg_get(w, c->mb, c->old_uid, &old);
    if (rc == -ENOENT && c->name)
        rc = store_msg_by_name(w, c->mb, c->name, &old);
    else if (rc == -ENOENT && !c->name)
        return -ENOENT;
    store_append opt = {.internaldate = c->internaldate};
    if (rc == 0) {
        snprintf(name, sizeof name, "%s", old.filename);
        snprintf(kw, sizeof kw, "%s", old.keywords ? old.keywords : "");
        opt.flags = old.flags;
        opt.keywords = kw;
        opt.filename = name;
        c->replaced_uid = old.uid;
        rc = store_msg_expunge(w, c->mb, old.uid);
        if (rc) return rc;
    } else if (rc == -ENOENT) {
        opt.filename = c->name;
    } else {
        return rc;
    }
    if (c->flags_set) {
        opt.flags = c->flags;
        opt.keywords = c->keywords;
    }
    return store_msg_append(w, c->mb, c->data, c->len, &opt, &c->out);
}

/*
 * Group commit. Each stored message costs a durable store commit (an fdatasync); writers that
 * close files at the same time (restic restoring, parallel cp) would wait for each other's
 * syncs one by one. A commit that finds another running queues itself; when the running one
 * ends, the first queued takes the whole queue and stores it in one transaction. If that fails,
 * each is stored alone, so one bad message never costs the others theirs. Every FLUSH still
 * returns only once its own message is stored.
 */
typedef struct commit_req {
    commit_ctx *c;
    int rc;
    bool done;
    struct commit_req *next;
} commit_req;

static int batch_cb(store_txn *w, void *arg)
{
    for (commit_req *r = arg; r; r = r->next) {
        int rc = commit_cb(w, r->c);
        if (rc) return rc;
    }
    return 0;
}

static int commit_grouped(fs_mount *m, commit_ctx *c)
{
    commit_req me = {.c = c};
    pthread_mutex_lock(&m->commit_lock);
    *m->commit_tail = &me;
    m->commit_tail = &me.next;
    while (!me.done) {
        if (m->committing) {
            pthread_cond_wait(&m->commit_cond, &m->commit_lock);
            continue;
        }
        m->committing = true;
        commit_req *batch = m->commit_queue;
        m->commit_queue = NULL;
        m->commit_tail = &m->commit_queue;
        pthread_mutex_unlock(&m->commit_lock);
        int rc = store_write(m->st, batch->next ? batch_cb : commit_cb,
                             batch->next ? (void *)batch : (void *)batch->c);
        for (commit_req *r = batch; r; r = r->next)
            r->rc = rc && batch->next ? store_write(m->st, commit_cb, r->c) : rc;
        pthread_mutex_lock(&m->commit_lock);
        for (commit_req *r = batch, *next; r; r = next) {
            next = r->next; /* a woken waiter's request goes away with its stack */
            r->done = true;
        }
        m->committing = false;
        pthread_cond_broadcast(&m->commit_cond);
    }
    pthread_mutex_unlock(&m->commit_lock);
    return me.rc;
}

int fs_node_commit(fs_mount *m, fs_node *n)
{
    commit_ctx c = {0};
    char *data = NULL, *name = NULL, *kw = NULL;
    uint64_t parent;
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    if (n->failed && !n->unlinked) {
        rc = n->failed;
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    if (!n->eml || n->unlinked || !n->dirty) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    if (n->len == 0) { /* mail cannot be empty: nothing to store yet */
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    parent = n->parent;
    c.mb = n->msg_mb ? n->msg_mb : fs_ino_mailbox(parent);
    c.old_uid = n->msg_uid;
    c.len = n->len;
    c.internaldate = n->mtime.tv_sec;
    c.flags_set = n->flags_set;
    c.flags = n->flags;
    data = malloc(n->len);
    name = strdup(n->name ? n->name : "");
    kw = strdup(n->keywords ? n->keywords : "");
    if (!data || !name || !kw) {
        pthread_mutex_unlock(&m->lock);
        rc = -ENOMEM;
        goto out;
    }
    memcpy(data, n->data, n->len);
    n->dirty = false; /* writes from now on make it dirty again */
    pthread_mutex_unlock(&m->lock);

    if (fs_ino_kind(parent) == FS_K_MDIR && !n->msg_mb) { /* cur/BASE:2,FLAGS */
        char file[STORE_COMPONENT_MAX + 8];
        bool passed;
        rc = fs_md_parse(name, file, sizeof file, &c.flags, &passed);
        char *f = rc ? NULL : strdup(file), *k = rc ? NULL : fs_md_keywords(kw, passed);
        if (!rc && (!f || !k)) rc = -ENOMEM;
        if (rc) {
            free(f);
            free(k);
            goto fail;
        }
        free(name);
        free(kw);
        name = f;
        kw = k;
        c.flags_set = true;
    } else if (c.mb == 0 || (parent && fs_ino_kind(parent) != FS_K_DIR && !n->msg_mb)) {
        rc = -EPERM; /* a message must live in a mailbox */
        goto fail;
    }
    c.data = data;
    c.name = name[0] ? name : NULL;
    c.keywords = kw;
    rc = commit_grouped(m, &c);
    if (rc) goto fail;

    uint64_t new_ino = fs_ino_msg(c.mb, c.out.uid);
    pthread_mutex_lock(&m->lock);
    n->msg_mb = c.mb;
    n->msg_uid = c.out.uid;
    bool listed = n->parent != 0;
    pthread_mutex_unlock(&m->lock);
    fs_forward_add(m, n->ino, new_ino);
    if (c.replaced_uid) fs_forward_add(m, fs_ino_msg(c.mb, c.replaced_uid), new_ino);
    if (listed) { /* the name is a stored message now */
        pthread_mutex_lock(&m->lock);
        if (n->parent) n->parent = 0;
        pthread_mutex_unlock(&m->lock);
    }
    goto out;
fail:
    pthread_mutex_lock(&m->lock);
    n->dirty = true;
    pthread_mutex_unlock(&m->lock);
out:
    free(data);
    free(name);
    free(kw);
    return rc;
}
