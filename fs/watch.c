/* watch.c: the thread that follows the store's change feed and invalidates the kernel's caches */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/log.h"

/*
 * The feed says "uid 7 left mailbox 3" but the kernel forgets entries by name, so this thread
 * keeps a mirror of every message's and mailbox's name, owned by it alone (no locking):
 * the old name of an expunged or renamed message comes from here.
 */

#define TOMB UINT64_MAX

typedef struct mirror {
    uint64_t *keys; /* message inodes; 0 empty, TOMB deleted */
    char **names;
    size_t cap, used; /* used counts live keys and tombstones */
    struct mbox {
        uint32_t id;
        char *name;
    } * mb;
    size_t nmb, capmb;
} mirror;

static size_t slot_of(const mirror *mi, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (mi->cap - 1);
}

static ssize_t mi_find(const mirror *mi, uint64_t key)
{
    if (!mi->cap) return -1;
    for (size_t i = slot_of(mi, key), n = 0; n < mi->cap; i = (i + 1) & (mi->cap - 1), n++) {
        if (mi->keys[i] == key) return (ssize_t)i;
        if (mi->keys[i] == 0) return -1;
    }
    return -1;
}

static int mi_put(mirror *mi, uint64_t key, const char *name);

static int mi_grow(mirror *mi)
{
    mirror nm = {0};
    nm.cap = mi->cap ? mi->cap * 2 : 1024;
    while (nm.cap < 2 * mi->used)
        nm.cap *= 2;
    nm.keys = calloc(nm.cap, sizeof *nm.keys);
    nm.names = calloc(nm.cap, sizeof *nm.names);
    if (!nm.keys || !nm.names) {
        free(nm.keys);
        free(nm.names);
        return -ENOMEM;
    }
    for (size_t i = 0; i < mi->cap; i++) {
        if (mi->keys[i] && mi->keys[i] != TOMB) {
            size_t j = slot_of(&nm, mi->keys[i]);
            while (nm.keys[j])
                j = (j + 1) & (nm.cap - 1);
            nm.keys[j] = mi->keys[i];
            nm.names[j] = mi->names[i];
            nm.used++;
        }
    }
    free(mi->keys);
    free(mi->names);
    mi->keys = nm.keys;
    mi->names = nm.names;
    mi->cap = nm.cap;
    mi->used = nm.used;
    return 0;
}

static int mi_put(mirror *mi, uint64_t key, const char *name)
{
    ssize_t at = mi_find(mi, key);
    char *dup = strdup(name);
    if (!dup) return -ENOMEM;
    if (at >= 0) {
        free(mi->names[at]);
        mi->names[at] = dup;
        return 0;
    }
    if ((mi->used + 1) * 10 > mi->cap * 7 && mi_grow(mi) != 0) {
        free(dup);
        return -ENOMEM;
    }
    size_t i = slot_of(mi, key);
    while (mi->keys[i] && mi->keys[i] != TOMB)
        i = (i + 1) & (mi->cap - 1);
    if (mi->keys[i] == 0) mi->used++;
    mi->keys[i] = key;
    mi->names[i] = dup;
    return 0;
}

static const char *mi_get(const mirror *mi, uint64_t key)
{
    ssize_t at = mi_find(mi, key);
    return at >= 0 ? mi->names[at] : NULL;
}

static void mi_del(mirror *mi, uint64_t key)
{
    ssize_t at = mi_find(mi, key);
    if (at >= 0) {
        free(mi->names[at]);
        mi->names[at] = NULL;
        mi->keys[at] = TOMB;
    }
}

static struct mbox *mi_mbox(mirror *mi, uint32_t id)
{
    for (size_t i = 0; i < mi->nmb; i++)
        if (mi->mb[i].id == id) return &mi->mb[i];
    return NULL;
}

static uint32_t mi_mbox_by_name(const mirror *mi, const char *name, size_t len)
{
    for (size_t i = 0; i < mi->nmb; i++)
        if (strlen(mi->mb[i].name) == len && memcmp(mi->mb[i].name, name, len) == 0)
            return mi->mb[i].id;
    return 0;
}

static int mi_mbox_set(mirror *mi, uint32_t id, const char *name)
{
    struct mbox *b = mi_mbox(mi, id);
    char *dup = strdup(name);
    if (!dup) return -ENOMEM;
    if (b) {
        free(b->name);
        b->name = dup;
        return 0;
    }
    if (mi->nmb == mi->capmb) {
        size_t cap = mi->capmb ? mi->capmb * 2 : 32;
        struct mbox *v = realloc(mi->mb, cap * sizeof *v);
        if (!v) {
            free(dup);
            return -ENOMEM;
        }
        mi->mb = v;
        mi->capmb = cap;
    }
    mi->mb[mi->nmb].id = id;
    mi->mb[mi->nmb].name = dup;
    mi->nmb++;
    return 0;
}

static void mi_mbox_del(mirror *mi, uint32_t id)
{
    for (size_t i = 0; i < mi->nmb; i++) {
        if (mi->mb[i].id == id) {
            free(mi->mb[i].name);
            mi->mb[i] = mi->mb[--mi->nmb];
            break;
        }
    }
    for (size_t i = 0; i < mi->cap; i++) {
        if (mi->keys[i] && mi->keys[i] != TOMB && fs_ino_mailbox(mi->keys[i]) == id) {
            free(mi->names[i]);
            mi->names[i] = NULL;
            mi->keys[i] = TOMB;
        }
    }
}

static void mi_free(mirror *mi)
{
    for (size_t i = 0; i < mi->cap; i++)
        free(mi->names[i]);
    for (size_t i = 0; i < mi->nmb; i++)
        free(mi->mb[i].name);
    free(mi->keys);
    free(mi->names);
    free(mi->mb);
    memset(mi, 0, sizeof *mi);
}

struct watch;
static void act_add(struct watch *w, uint64_t ino, const char *name);

typedef struct build_ctx {
    mirror *mi;
    store_txn *t;
    struct watch *w; /* a rebuild: messages changed after SINCE get their attributes renewed */
    uint64_t since;
} build_ctx;

static int build_msg_cb(void *ctx, const store_msg *msg)
{
    build_ctx *b = ctx;
    uint64_t ino = fs_ino_msg(msg->mailbox_id, msg->uid);
    if (b->w && msg->modseq > b->since) act_add(b->w, ino, NULL); /* e.g. flags moved ctime */
    return mi_put(b->mi, ino, msg->filename);
}

static int build_mbox_cb(void *ctx, const store_mailbox *mb)
{
    build_ctx *b = ctx;
    int rc = mi_mbox_set(b->mi, mb->id, mb->name);
    if (rc == 0) rc = store_msg_list(b->t, mb->id, 1, build_msg_cb, b);
    return rc;
}

/* Builds MI from the store; *SEQ gets the feed position it reflects. With W (a rebuild), the
 * messages changed after W->seq get an attribute invalidation. */
static int mi_build(fs_mount *m, mirror *mi, uint64_t *seq, struct watch *w, uint64_t since)
{
    store_txn *t;
    int rc = store_read_begin(m->st, &t);
    if (rc) return rc;
    *seq = store_change_seq(t);
    build_ctx b = {.mi = mi, .t = t, .w = w, .since = since};
    rc = store_mailbox_list(t, m->user_id, build_mbox_cb, &b);
    store_read_end(&t);
    return rc;
}

/* ---- invalidations ----------------------------------------------------------------------- */

typedef struct action {
    uint64_t ino; /* directory (entry) or inode */
    char *name;   /* NULL: invalidate the inode */
} action;

typedef struct watch {
    fs_mount *m;
    mirror mi;
    uint64_t seq;
    store_change *ch;
    size_t nch, capch;
    action *act;
    size_t nact, capact;
    uint32_t last_md; /* the mailbox whose cur/ was last queued for invalidation */
} watch;

static void act_add(struct watch *w, uint64_t ino, const char *name)
{
    if (w->nact == w->capact) {
        size_t cap = w->capact ? w->capact * 2 : 256;
        action *v = realloc(w->act, cap * sizeof *v);
        if (!v) return;
        w->act = v;
        w->capact = cap;
    }
    w->act[w->nact].ino = ino;
    w->act[w->nact].name = name ? strdup(name) : NULL;
    w->nact++;
}

/* Parent directory inode and leaf of mailbox NAME, per the mirror. */
static uint64_t parent_of(const mirror *mi, const char *name, const char **leaf)
{
    const char *slash = strrchr(name, '/');
    if (!slash) {
        *leaf = name;
        return FS_INO_ROOT;
    }
    *leaf = slash + 1;
    uint32_t id = mi_mbox_by_name(mi, name, (size_t)(slash - name));
    return id ? fs_ino_dir(id) : 0;
}

static void mbox_entry(watch *w, const char *name)
{
    const char *leaf;
    uint64_t parent = parent_of(&w->mi, name, &leaf);
    if (!parent) return;
    act_add(w, parent, leaf);
    act_add(w, parent, NULL);
    if (parent == FS_INO_ROOT) atomic_store(&w->m->root_mtime_ns, fs_now_ns());
}

/* Any change to a mailbox's messages, flags included, renames something in its cur/ (the
 * Maildir view's names carry the flags): drop the kernel's listing of cur/. Its entries are
 * never cached, so nothing else is needed. */
static void md_changed(watch *w, uint32_t mailbox_id)
{
    if (w->last_md == mailbox_id) return;
    w->last_md = mailbox_id;
    act_add(w, fs_ino_mdir(mailbox_id, FS_MD_CUR), NULL);
}

static int collect_cb(void *ctx, const store_change *c)
{
    watch *w = ctx;
    if (w->nch == w->capch) {
        size_t cap = w->capch ? w->capch * 2 : 256;
        store_change *v = realloc(w->ch, cap * sizeof *v);
        if (!v) return -ENOMEM;
        w->ch = v;
        w->capch = cap;
    }
    w->ch[w->nch++] = *c;
    return 0;
}

static void handle(watch *w, store_txn *t, const store_change *c)
{
    fs_mount *m = w->m;
    uint64_t ino = fs_ino_msg(c->mailbox_id, c->uid), dir = fs_ino_dir(c->mailbox_id);
    store_msg msg;
    store_mailbox mb;
    const char *old;

    if (c->kind == STORE_CH_USER) return;
    if (c->user_id != m->user_id && !mi_mbox(&w->mi, c->mailbox_id))
        return; /* another user's mail */
    switch (c->kind) {
    case STORE_CH_APPEND:
        if (store_msg_get(t, c->mailbox_id, c->uid, &msg) == 0) {
            mi_put(&w->mi, ino, msg.filename);
            act_add(w, dir, msg.filename);
        }
        act_add(w, dir, NULL);
        md_changed(w, c->mailbox_id);
        break;
    case STORE_CH_EXPUNGE:
        old = mi_get(&w->mi, ino);
        if (old) act_add(w, dir, old);
        mi_del(&w->mi, ino);
        act_add(w, dir, NULL);
        md_changed(w, c->mailbox_id);
        break;
    case STORE_CH_RENAME_MSG:
        old = mi_get(&w->mi, ino);
        if (old) act_add(w, dir, old);
        if (store_msg_get(t, c->mailbox_id, c->uid, &msg) == 0) {
            act_add(w, dir, msg.filename);
            mi_put(&w->mi, ino, msg.filename);
        }
        act_add(w, dir, NULL);
        md_changed(w, c->mailbox_id);
        break;
    case STORE_CH_FLAGS:
        act_add(w, ino, NULL); /* ctime moved (xattrs themselves are never cached) */
        md_changed(w, c->mailbox_id);
        break;
    case STORE_CH_MBOX_CREATE:
        if (store_mailbox_get_id(t, c->mailbox_id, &mb) == 0 && mb.user_id == m->user_id) {
            mi_mbox_set(&w->mi, mb.id, mb.name);
            mbox_entry(w, mb.name);
        }
        break;
    case STORE_CH_MBOX_DELETE: {
        struct mbox *b = mi_mbox(&w->mi, c->mailbox_id);
        if (b) {
            mbox_entry(w, b->name);
            mi_mbox_del(&w->mi, c->mailbox_id);
        }
        break;
    }
    case STORE_CH_MBOX_RENAME: {
        struct mbox *b = mi_mbox(&w->mi, c->mailbox_id);
        if (b) mbox_entry(w, b->name);
        if (store_mailbox_get_id(t, c->mailbox_id, &mb) == 0 && mb.user_id == m->user_id) {
            mbox_entry(w, mb.name);
            mi_mbox_set(&w->mi, mb.id, mb.name);
        }
        act_add(w, dir, NULL);
        break;
    }
    default:
        break;
    }
}

/* The feed lost changes we never saw: rebuild the mirror and invalidate every difference:
 * the old and the new name of whatever came, went or was renamed (the kernel may hold the new
 * name as absent), and the attributes of what changed otherwise. */
static void resync(watch *w)
{
    mirror nm = {0};
    uint64_t seq;
    size_t nact = w->nact;
    if (mi_build(w->m, &nm, &seq, w, w->seq) != 0) {
        mi_free(&nm);
        for (size_t i = nact; i < w->nact; i++)
            free(w->act[i].name);
        w->nact = nact;
        return;
    }
    for (size_t i = 0; i < w->mi.cap; i++) {
        uint64_t k = w->mi.keys[i];
        if (!k || k == TOMB) continue;
        const char *now = mi_get(&nm, k);
        if (!now || strcmp(now, w->mi.names[i]) != 0)
            act_add(w, fs_ino_dir(fs_ino_mailbox(k)), w->mi.names[i]);
    }
    for (size_t i = 0; i < nm.cap; i++) {
        uint64_t k = nm.keys[i];
        if (!k || k == TOMB) continue;
        const char *was = mi_get(&w->mi, k);
        if (!was || strcmp(was, nm.names[i]) != 0)
            act_add(w, fs_ino_dir(fs_ino_mailbox(k)), nm.names[i]);
    }
    for (size_t i = 0; i < w->mi.nmb; i++) {
        struct mbox *b = mi_mbox(&nm, w->mi.mb[i].id);
        if (!b || strcmp(b->name, w->mi.mb[i].name) != 0) mbox_entry(w, w->mi.mb[i].name);
        act_add(w, fs_ino_dir(w->mi.mb[i].id), NULL);
        act_add(w, fs_ino_mdir(w->mi.mb[i].id, FS_MD_CUR), NULL);
    }
    for (size_t i = 0; i < nm.nmb; i++) {
        struct mbox *b = mi_mbox(&w->mi, nm.mb[i].id);
        if (!b || strcmp(b->name, nm.mb[i].name) != 0) {
            mirror tmp = w->mi;
            w->mi = nm; /* parents by the new names */
            mbox_entry(w, nm.mb[i].name);
            w->mi = tmp;
        }
    }
    act_add(w, FS_INO_ROOT, NULL);
    mi_free(&w->mi);
    w->mi = nm;
    w->seq = seq;
}

static void run_actions(watch *w)
{
    struct fuse_session *se = w->m->se;
    for (size_t i = 0; i < w->nact; i++) {
        action *a = &w->act[i];
        if (a->name) {
            int rc = fuse_lowlevel_notify_inval_entry(se, a->ino, a->name, strlen(a->name));
            log_debug("mount", "forget entry %#llx/%s: %d", (unsigned long long)a->ino, a->name,
                      rc);
            free(a->name);
        } else if (i + 1 < w->nact && !w->act[i + 1].name && w->act[i + 1].ino == a->ino) {
            continue; /* the same inode again next */
        } else if (fs_ino_kind(a->ino) == FS_K_MSG) {
            fuse_lowlevel_notify_inval_inode(se, a->ino, -1, 0); /* attributes only */
        } else {
            fuse_lowlevel_notify_inval_inode(se, a->ino, 0, 0);
        }
    }
    w->nact = 0;
    w->last_md = 0;
}

static void process(watch *w)
{
    for (int round = 0; round < 64; round++) {
        store_txn *t;
        if (store_read_begin(w->m->st, &t) != 0) return;
        w->nch = 0;
        int rc = store_changes_since(t, w->seq, collect_cb, w);
        if (rc == -ERANGE) {
            store_read_end(&t);
            resync(w);
            run_actions(w);
            return;
        }
        for (size_t i = 0; i < w->nch; i++) {
            log_debug("mount", "change %llu kind %u mailbox %u uid %u",
                      (unsigned long long)w->ch[i].seq, w->ch[i].kind, w->ch[i].mailbox_id,
                      w->ch[i].uid);
            handle(w, t, &w->ch[i]);
            if (w->ch[i].seq > w->seq) w->seq = w->ch[i].seq;
        }
        uint64_t now = store_change_seq(t);
        store_read_end(&t);
        run_actions(w);
        if (rc == 0 && w->seq >= now) return;
        if (rc && rc != -ERANGE) return;
    }
}

void fs_watch_inval_data(fs_mount *m, uint64_t ino)
{
    pthread_mutex_lock(&m->lock);
    bool wake = m->ninval_data == 0; /* one 'd' waits in the pipe at most: it never fills */
    if (m->ninval_data < FS_INVAL_DATA_MAX) m->inval_data[m->ninval_data++] = ino;
    pthread_mutex_unlock(&m->lock);
    if (wake && m->stop_pipe[1] >= 0) {
        ssize_t n = write(m->stop_pipe[1], "d", 1);
        (void)n;
    }
}

static void inval_data(watch *w)
{
    fs_mount *m = w->m;
    uint64_t ino[FS_INVAL_DATA_MAX];
    pthread_mutex_lock(&m->lock);
    unsigned n = m->ninval_data;
    memcpy(ino, m->inval_data, n * sizeof *ino);
    m->ninval_data = 0;
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < n; i++) {
        int rc = fuse_lowlevel_notify_inval_inode(m->se, ino[i], 0, 0);
        log_debug("mount", "drop cached data of %#llx: %d", (unsigned long long)ino[i], rc);
    }
}

static void *watch_main(void *arg)
{
    watch *w = arg;
    fs_mount *m = w->m;
    for (;;) {
        struct pollfd p[2] = {{.fd = m->watch_fd, .events = POLLIN},
                              {.fd = m->stop_pipe[0], .events = POLLIN}};
        int n = poll(p, 2, 1000);
        if (n < 0 && errno != EINTR) break;
        if (p[1].revents) {
            char b[64];
            ssize_t got = read(m->stop_pipe[0], b, sizeof b);
            if (got <= 0 || memchr(b, 'x', (size_t)got)) break;
            inval_data(w);
        }
        if (n > 0 && p[0].revents) store_watch_drain(m->watch_fd);
        process(w); /* also once a second, in case a wake-up was missed */
    }
    mi_free(&w->mi);
    free(w->ch);
    for (size_t i = 0; i < w->nact; i++)
        free(w->act[i].name);
    free(w->act);
    free(w);
    return NULL;
}

int fs_watch_start(fs_mount *m, char *err, size_t errlen)
{
    watch *w = calloc(1, sizeof *w);
    int rc;
    if (!w) return -ENOMEM;
    w->m = m;
    rc = mi_build(m, &w->mi, &w->seq, NULL, 0);
    if (rc == 0) rc = store_watch_open(m->st, &m->watch_fd);
    if (rc == 0 && pipe2(m->stop_pipe, O_CLOEXEC) != 0) rc = -errno;
    if (rc == 0) {
        rc = -pthread_create(&m->watch_thread, NULL, watch_main, w);
        if (rc == 0) {
            m->watch_started = true;
            return 0;
        }
    }
    snprintf(err, errlen, "cannot follow the store's changes: %s", store_strerror(rc));
    mi_free(&w->mi);
    free(w);
    return rc;
}

void fs_watch_stop(fs_mount *m)
{
    if (m->watch_started) {
        ssize_t n = write(m->stop_pipe[1], "x", 1);
        (void)n;
        pthread_join(m->watch_thread, NULL);
        m->watch_started = false;
    }
    if (m->watch_fd >= 0) close(m->watch_fd);
    if (m->stop_pipe[0] >= 0) {
        close(m->stop_pipe[0]);
        close(m->stop_pipe[1]);
    }
    m->watch_fd = m->stop_pipe[0] = m->stop_pipe[1] = -1;
}
