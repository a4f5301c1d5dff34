/* commit.c: storing an in-memory file as a message, in group commits */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"

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
    parent = n->parent;
    c.mb = n->msg_mb ? n->msg_mb : fs_ino_mailbox(parent);
    c.old_uid = n->msg_uid;
    c.len = n->data.len;
    c.internaldate = n->mtime.tv_sec;
    c.flags_set = n->flags_set;
    c.flags = n->flags;
    data = malloc(n->data.len ? n->data.len : 1); /* an empty file is an empty message */
    name = strdup(n->name ? n->name : "");
    kw = strdup(n->keywords ? n->keywords : "");
    if (!data || !name || !kw) {
        pthread_mutex_unlock(&m->lock);
        rc = -ENOMEM;
        goto out;
    }
    if (n->data.len) memcpy(data, n->data.data, n->data.len); /* an empty file may have no buffer */
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

/* Stores what was written to INO. A failed store, or a file whose write failed, drops the
 * content: nothing half-written is stored, a stored message keeps its stored version, a new
 * file is gone. Only a close (CLOSING) drops a failed file: after fsync its descriptor's
 * writes still fail and its close still reports the error. */
int fs_commit_ino(fs_mount *m, uint64_t ino, bool closing)
{
    fs_node *n = fs_node_pin(m, ino);
    if (!n) return 0;
    pthread_mutex_lock(&m->lock);
    int rc = n->failed;
    pthread_mutex_unlock(&m->lock);
    if (rc && !closing) {
        fs_node_unpin(m, n);
        return rc;
    }
    if (!rc) rc = fs_node_commit(m, n);
    pthread_mutex_lock(&m->lock);
    if (rc) n->unlinked = true; /* dropped when unpinned */
    if (rc && n->parent) fs_node_detach(m, n);
    pthread_mutex_unlock(&m->lock);
    fs_node_unpin(m, n);
    /* the kernel keeps the pages written to a stored message's inode: they were never stored */
    if (rc) fs_watch_inval_data(m, ino);
    return rc;
}
