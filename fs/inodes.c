/* inodes.c: the files' inodes the kernel holds: their lookup counts (FORGET drops them) and
 * forwards to where a message went that this mount replaced or moved */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"

/*
 * Inode numbers are derived (fs_int.h), so most inodes need no table. A forward does: when
 * this mount gives a message a new inode (an edit stores a new message, a move gives it a new
 * UID, a new file becomes a message), the kernel may still hold the old one (an open
 * descriptor, a cached entry), and a request on it must reach the message where it is now.
 *
 * As in libfuse's passthrough_ll, an entry lives exactly as long as the kernel's lookup count
 * of the inode: every reply that hands a file's inode to the kernel counts one (fs_reply_entry,
 * fs_reply_create, readdirplus through fs_inode_ref_many), FORGET takes them back, and at zero
 * the entry goes, with its forward. A forward's target is kept while something forwards to it,
 * so a chain (A edited into B, B into C) holds while the kernel holds A. Directories are not
 * counted: nothing forwards from or to them. The table is an open-addressing hash (linear
 * probing, deletion by backward shift) under its own lock, m->ino_lock, never held together
 * with m->lock.
 */

#define MIN_CAP 64u

/* Only files: messages and in-memory files. */
static bool counted(uint64_t ino)
{
    enum fs_ino_kind k = fs_ino_kind(ino);
    return k == FS_K_MSG || k == FS_K_MEM;
}

static size_t slot_of(const fs_mount *m, uint64_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 32) & (m->ino_cap - 1);
}

static fs_inode *find(fs_mount *m, uint64_t ino)
{
    if (!m->ino_cap) return NULL;
    for (size_t i = slot_of(m, ino);; i = (i + 1) & (m->ino_cap - 1)) {
        if (m->inodes[i].ino == ino) return &m->inodes[i];
        if (m->inodes[i].ino == 0) return NULL;
    }
}

/* Rebuilds the table with CAP slots (a power of two above the number of entries). */
static int resize(fs_mount *m, size_t cap)
{
    fs_inode *v = calloc(cap, sizeof *v);
    if (!v) return -ENOMEM;
    for (size_t i = 0; i < m->ino_cap; i++) {
        if (!m->inodes[i].ino) continue;
        size_t j = (size_t)((m->inodes[i].ino * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
        while (v[j].ino)
            j = (j + 1) & (cap - 1);
        v[j] = m->inodes[i];
    }
    free(m->inodes);
    m->inodes = v;
    m->ino_cap = cap;
    return 0;
}

/* The entry of INO, made (with no lookups) if there is none; NULL when out of memory. */
static fs_inode *get(fs_mount *m, uint64_t ino)
{
    fs_inode *e = find(m, ino);
    if (e) return e;
    if ((m->ino_used + 1) * 10 > m->ino_cap * 7 &&
        resize(m, m->ino_cap ? m->ino_cap * 2 : MIN_CAP) != 0)
        return NULL;
    size_t i = slot_of(m, ino);
    while (m->inodes[i].ino)
        i = (i + 1) & (m->ino_cap - 1);
    m->inodes[i] = (fs_inode){.ino = ino};
    m->ino_used++;
    return &m->inodes[i];
}

/* Removes entry E: the entries after it in its run move back, so that no search stops early. */
static void del(fs_mount *m, fs_inode *e)
{
    size_t mask = m->ino_cap - 1, i = (size_t)(e - m->inodes);
    for (size_t j = (i + 1) & mask; m->inodes[j].ino; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->inodes[j].ino);
        /* entry J may fill hole I unless its home slot lies cyclically in (I, J] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->inodes[i] = m->inodes[j];
            i = j;
        }
    }
    m->inodes[i] = (fs_inode){0};
    m->ino_used--;
    if (m->ino_cap > MIN_CAP && m->ino_used * 8 < m->ino_cap) {
        size_t cap = MIN_CAP;
        while (cap * 7 < m->ino_used * 20)
            cap *= 2;
        resize(m, cap); /* out of memory: stays as big as it was */
    }
}

/* Drops the entry of INO (and then of what it forwards to) once nothing holds it. */
static void release(fs_mount *m, uint64_t ino)
{
    for (int hop = 0; ino && hop < 64; hop++) {
        fs_inode *e = find(m, ino);
        if (!e || e->nlookup || e->refs) return;
        ino = e->to;
        if (ino) atomic_fetch_sub(&m->fwd_count, 1);
        del(m, e);
        e = ino ? find(m, ino) : NULL;
        if (!e) return;
        e->refs--;
    }
}

void fs_inode_ref_many(fs_mount *m, const uint64_t *ino, size_t n)
{
    for (size_t i = 0; i < n; i++) /* kept files have a table of their own */
        if (fs_ino_kind(ino[i]) == FS_K_KEPT) fs_kept_ref(m, ino[i], 1);
    pthread_mutex_lock(&m->ino_lock);
    for (size_t i = 0; i < n; i++) {
        if (!counted(ino[i])) continue;
        fs_inode *e = get(m, ino[i]);
        if (e) e->nlookup++; /* out of memory: not counted, its FORGET finds nothing */
    }
    pthread_mutex_unlock(&m->ino_lock);
}

static void forget_locked(fs_mount *m, uint64_t ino, uint64_t nlookup)
{
    fs_inode *e = counted(ino) ? find(m, ino) : NULL;
    if (!e) return;
    e->nlookup = e->nlookup > nlookup ? e->nlookup - nlookup : 0;
    if (e->nlookup == 0) release(m, ino);
}

void fs_inode_forget(fs_mount *m, uint64_t ino, uint64_t nlookup)
{
    if (fs_ino_kind(ino) == FS_K_KEPT) fs_kept_forget(m, ino, nlookup);
    if (!counted(ino)) return;
    pthread_mutex_lock(&m->ino_lock);
    forget_locked(m, ino, nlookup);
    pthread_mutex_unlock(&m->ino_lock);
}

void fs_inode_forget_many(fs_mount *m, const struct fuse_forget_data *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fs_ino_kind(f[i].ino) == FS_K_KEPT) fs_kept_forget(m, f[i].ino, f[i].nlookup);
    pthread_mutex_lock(&m->ino_lock);
    for (size_t i = 0; i < n; i++)
        forget_locked(m, f[i].ino, f[i].nlookup);
    pthread_mutex_unlock(&m->ino_lock);
}

void fs_reply_entry(fs_mount *m, fuse_req_t req, const struct fuse_entry_param *e)
{
    uint64_t ino = e->ino;
    fs_inode_ref_many(m, &ino, 1); /* before the reply: its FORGET may come at once */
    if (fuse_reply_entry(req, e) != 0) fs_inode_forget(m, ino, 1); /* never reached it */
}

void fs_reply_create(fs_mount *m, fuse_req_t req, const struct fuse_entry_param *e,
                     const struct fuse_file_info *fi)
{
    uint64_t ino = e->ino;
    fs_inode_ref_many(m, &ino, 1);
    if (fuse_reply_create(req, e, fi) != 0) fs_inode_forget(m, ino, 1);
}

void fs_forward_add(fs_mount *m, uint64_t from, uint64_t to)
{
    if (from == to || !counted(from)) return;
    pthread_mutex_lock(&m->ino_lock);
    fs_inode *e = find(m, from); /* none: the kernel does not hold FROM, nobody will ask */
    if (e && e->to != to) {
        uint64_t old = e->to;
        fs_inode *t = get(m, to); /* may move entries: E is found again */
        e = find(m, from);
        if (t) {
            if (!old) atomic_fetch_add(&m->fwd_count, 1);
            e->to = to;
            t->refs++;
            if (old) {
                fs_inode *o = find(m, old);
                if (o) o->refs--;
                release(m, old);
            }
        }
    }
    pthread_mutex_unlock(&m->ino_lock);
}

uint64_t fs_forward(fs_mount *m, uint64_t ino)
{
    if (atomic_load(&m->fwd_count) == 0) return 0;
    uint64_t found = 0;
    pthread_mutex_lock(&m->ino_lock);
    for (int hop = 0; hop < 16; hop++) {
        fs_inode *e = find(m, ino);
        if (!e || !e->to) break;
        found = ino = e->to;
    }
    pthread_mutex_unlock(&m->ino_lock);
    return found;
}
