/* nodes.c: in-memory files (scratch files, messages being written, write buffers of stored
 * messages): the list, pins, sizes and writes */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "store/log.h"

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
    m->scratch_bytes -= n->data.len;
    mfs_buf_free(&n->data);
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
    size_t len = n->data.len;
    if (size > len && m->scratch_bytes + (size - len) > m->scratch_max) return -ENOSPC;
    if (mfs_buf_try_resize(&n->data, (size_t)size)) return -ENOMEM;
    m->scratch_bytes = m->scratch_bytes - len + size;
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
    if (rc == 0 && end > n->data.len) rc = fs_node_resize(m, n, end);
    if (rc) {
        fs_node_fail(n, rc);
        return rc;
    }
    memcpy(n->data.data + off, buf, size);
    n->dirty = true;
    set_now(&n->mtime);
    n->ctime = n->mtime;
    return 0;
}

/* Unpins N; frees it when it is detached and holds nothing left to store. */
void fs_node_unpin(fs_mount *m, fs_node *n)
{
    pthread_mutex_lock(&m->lock);
    n->pins--;
    fs_node_put(m, n);
    pthread_mutex_unlock(&m->lock);
}

/* The in-memory file of INO, pinned, or NULL. */
void fs_node_keep_all(fs_mount *m)
{
    for (fs_node *n = m->nodes; n; n = n->next) {
        if (!n->parent || n->eml || n->unlinked || !n->name) continue;
        const char *dir = fs_ino_kind(n->parent) == FS_K_ROOT ? "the top folder" : "its folder";
        if (n->failed) {
            log_warn("mount",
                     "unmounting: temporary file '%s' in %s is not kept: a write to it "
                     "failed (%s)",
                     n->name, dir, strerror(-n->failed));
            continue;
        }
        int rc = fs_kept_put(m, n->parent, n->name, n->data.data, n->data.len, n->mode, false);
        if (rc)
            log_error("mount",
                      "unmounting: temporary file '%s' (%zu bytes) in %s could not be "
                      "kept: %s; it is lost",
                      n->name, n->data.len, dir, strerror(-rc));
        else
            log_info("mount",
                     "unmounting: kept temporary file '%s' (%zu bytes) in %s as an "
                     "ordinary file: it was never renamed to a message",
                     n->name, n->data.len, dir);
    }
}

fs_node *fs_node_pin(fs_mount *m, uint64_t ino)
{
    if (!atomic_load(&m->node_count)) return NULL;
    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_ino(m, ino);
    if (n) n->pins++;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* The write buffer of stored message INO (made from the store unless TRUNC), pinned. If the
 * message does not fit in memory, KEEP_FAILED (a descriptor writes: its FLUSH will come) leaves
 * a failed buffer behind, so that the descriptor's later writes fail too and its close reports
 * the error, rather than writing into a fresh copy with a part missing. */
int fs_node_open_msg(fs_mount *m, uint64_t ino, bool trunc, bool keep_failed, fs_node **out)
{
    fs_node *n = fs_node_pin(m, ino);
    if (n) {
        int rc = 0;
        if (trunc) {
            pthread_mutex_lock(&m->lock);
            rc = fs_node_resize(m, n, 0);
            pthread_mutex_unlock(&m->lock);
        }
        if (rc) {
            fs_node_unpin(m, n);
            return rc;
        }
        *out = n;
        return 0;
    }
    store_txn *t;
    store_msg msg;
    const char *data = NULL;
    size_t len = 0;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    rc = fs_msg_lookup(m, t, ino, &msg);
    if (rc == 0 && !trunc) rc = store_msg_body(t, &msg, &data, &len);
    if (rc) {
        store_read_end(&t);
        return rc;
    }
    pthread_mutex_lock(&m->lock);
    n = fs_node_find_ino(m, ino); /* another writer may have won the race */
    if (n) {
        n->pins++;
        pthread_mutex_unlock(&m->lock);
        store_read_end(&t);
        *out = n;
        return 0;
    }
    n = fs_node_new(m, 0, msg.filename, 0600);
    if (!n) {
        pthread_mutex_unlock(&m->lock);
        store_read_end(&t);
        return -ENOMEM;
    }
    n->ino = ino;
    n->eml = true;
    n->msg_mb = msg.mailbox_id;
    n->msg_uid = msg.uid;
    n->pins = 1;
    rc = fs_node_resize(m, n, len);
    if (rc == 0 && len) memcpy(n->data.data, data, len);
    n->mtime.tv_sec = msg.internaldate;
    n->mtime.tv_nsec = 0;
    n->dirty = trunc;
    store_read_end(&t);
    if (rc) {
        n->pins = 0;
        if (keep_failed)
            fs_node_fail(n, rc);
        else
            n->unlinked = true;
        fs_node_put(m, n);
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    pthread_mutex_unlock(&m->lock);
    *out = n;
    return 0;
}

void fs_node_mark_unlinked(fs_mount *m, uint64_t ino)
{
    if (!atomic_load(&m->node_count)) return;
    pthread_mutex_lock(&m->lock);
    fs_node *n = fs_node_find_ino(m, ino);
    if (n) {
        n->unlinked = true;
        fs_node_put(m, n);
    }
    pthread_mutex_unlock(&m->lock);
}
