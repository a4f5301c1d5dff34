/* unit_inodes.c: the mount's table of the files' inodes the kernel holds: lookup counts,
 * FORGET, forwards and their chains, the hash under many insertions and deletions */
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "tests/unit.h"

#define N 20000

static fs_mount *mount_new(void)
{
    fs_mount *m = calloc(1, sizeof *m);
    pthread_mutex_init(&m->ino_lock, NULL);
    return m;
}

static void mount_free(fs_mount *m)
{
    pthread_mutex_destroy(&m->ino_lock);
    free(m->inodes);
    free(m);
}

static void ref(fs_mount *m, uint64_t ino, int times)
{
    for (int i = 0; i < times; i++)
        fs_inode_ref_many(m, &ino, 1);
}

static void test_counts_and_forwards(void)
{
    fs_mount *m = mount_new();
    uint64_t a = fs_ino_msg(1, 1), b = fs_ino_msg(1, 2), c = fs_ino_msg(2, 1);
    uint64_t d = fs_ino_msg(2, 2), mem = FS_INO_MEM | 7;

    /* directories are not counted; files are */
    uint64_t dirs[] = {FS_INO_ROOT, fs_ino_dir(1), fs_ino_mdir(1, FS_MD_CUR)};
    fs_inode_ref_many(m, dirs, 3);
    CHECK(m->ino_used == 0);
    ref(m, a, 2);
    ref(m, mem, 1);
    CHECK(m->ino_used == 2);

    /* a forward from an inode the kernel does not hold keeps nothing */
    fs_forward_add(m, b, c);
    CHECK(fs_forward(m, b) == 0 && m->ino_used == 2);
    /* a forward lives as long as the kernel's lookups of its inode */
    fs_forward_add(m, a, b);
    fs_forward_add(m, mem, c);
    CHECK(fs_forward(m, a) == b && fs_forward(m, mem) == c);
    fs_inode_forget(m, a, 1);
    CHECK(fs_forward(m, a) == b);
    fs_inode_forget(m, a, 1);
    CHECK(fs_forward(m, a) == 0);
    struct fuse_forget_data f = {.ino = mem, .nlookup = 5}; /* more than held: all gone */
    fs_inode_forget_many(m, &f, 1);
    CHECK(fs_forward(m, mem) == 0 && m->ino_used == 0 && atomic_load(&m->fwd_count) == 0);

    /* a chain holds while the kernel holds its first inode, even when it forgot the middle */
    ref(m, a, 1);
    ref(m, b, 1);
    fs_forward_add(m, a, b);
    fs_forward_add(m, b, c);
    CHECK(fs_forward(m, a) == c && fs_forward(m, b) == c);
    fs_inode_forget(m, b, 1);
    CHECK(fs_forward(m, a) == c);
    /* a new forward replaces the old one, and what only the old one held goes */
    fs_forward_add(m, a, d);
    CHECK(fs_forward(m, a) == d && fs_forward(m, b) == 0);
    CHECK(m->ino_used == 2); /* a, and d that a forwards to */
    fs_inode_forget(m, a, 1);
    CHECK(m->ino_used == 0 && atomic_load(&m->fwd_count) == 0);
    /* forgetting what was never counted, or a directory, changes nothing */
    fs_inode_forget(m, c, 3);
    fs_inode_forget(m, fs_ino_dir(1), 1);
    CHECK(m->ino_used == 0);
    mount_free(m);
}

/* Many entries in and out in a scrambled order: every one left is still found. */
static void test_many(void)
{
    fs_mount *m = mount_new();
    static uint64_t ino[N];
    for (size_t i = 0; i < N; i++) {
        ino[i] = fs_ino_msg(1 + (uint32_t)(i % 7), 1 + (uint32_t)i);
        ref(m, ino[i], 1 + (int)(i % 3));
    }
    fs_inode_ref_many(m, ino, N);  /* as a readdirplus buffer counts them */
    for (size_t i = 0; i < N; i++) /* each forwards to a message nobody looked up */
        fs_forward_add(m, ino[i], fs_ino_msg(100, 1 + (uint32_t)i));
    CHECK(m->ino_used == 2 * N && atomic_load(&m->fwd_count) == N);
    size_t peak = m->ino_cap;
    unsigned seed = 12345;
    for (size_t i = N - 1; i > 0; i--) { /* shuffle */
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 8) % (i + 1);
        uint64_t t = ino[i];
        ino[i] = ino[j];
        ino[j] = t;
    }
    int lost = 0;
    for (size_t i = 0; i < N; i++) {
        fs_inode_forget(m, ino[i], 4); /* all its lookups */
        if (i % 997 == 0)
            for (size_t j = i + 1; j < N; j++)
                lost += fs_forward(m, ino[j]) == 0;
        lost += fs_forward(m, ino[i]) != 0;
    }
    CHECK(lost == 0);
    CHECK(m->ino_used == 0 && atomic_load(&m->fwd_count) == 0);
    CHECK(peak >= 2 * N && m->ino_cap < peak / 64); /* the table shrank back */
    mount_free(m);
}

/* Kept files' inodes (bits 63 and 62) are their own kind, apart from every other kind. */
static void test_kinds(void)
{
    uint64_t kept = FS_INO_KEPT | 123456;
    CHECK(fs_ino_kind(kept) == FS_K_KEPT);
    CHECK(fs_ino_kind(FS_INO_KEPT | (FS_INO_KEPT_MAX - 1)) == FS_K_KEPT);
    CHECK(fs_ino_kind(FS_INO_MEM | 5) == FS_K_MEM);
    CHECK(fs_ino_kind(fs_ino_mdir(7, FS_MD_TMP)) == FS_K_MDIR);
    CHECK(fs_ino_kind(fs_ino_msg(7, 9)) == FS_K_MSG);
    CHECK(fs_ino_kind(fs_ino_dir(0x3fffffffu)) == FS_K_DIR);
    CHECK(!fs_ino_is_dir(kept));
    /* which new names are kept ones (docs/mount.md, "Which names are messages") */
    uint64_t dir = fs_ino_dir(7);
    CHECK(fs_kept_new_name(FS_INO_ROOT, ".notmuch", true));
    CHECK(!fs_kept_new_name(FS_INO_ROOT, "Work", true));
    CHECK(fs_kept_new_name(FS_INO_ROOT, "notes.txt", false));
    CHECK(!fs_kept_new_name(FS_INO_ROOT, "top.eml", false));
    CHECK(fs_kept_new_name(dir, ".git", true));
    CHECK(!fs_kept_new_name(dir, "Projects", true));
    CHECK(fs_kept_new_name(dir, "notes.txt", false));
    CHECK(fs_kept_new_name(dir, "x.eml ", false));
    CHECK(!fs_kept_new_name(dir, "x.eml", false));
    CHECK(!fs_kept_new_name(dir, ".x.eml.Ab12Cd", false)); /* rsync's: a scratch file */
    CHECK(!fs_kept_new_name(dir, "sedAb12Cd", false));
    CHECK(!fs_kept_new_name(dir, "cur", false));
    CHECK(!fs_kept_new_name(fs_ino_mdir(7, FS_MD_CUR), ".hidden", false));
    CHECK(fs_kept_new_name(kept, "x.eml", false));
    CHECK(fs_kept_new_name(kept, "objects", true));
    /* the kept table counts them: the inode table never sees them */
    fs_mount *m = mount_new();
    CHECK(fs_kept_init(m) == 0);
    fs_inode_ref_many(m, &kept, 1);
    CHECK(m->ino_used == 0);
    fs_inode_forget(m, kept, 1);
    fs_kept_free(m);
    mount_free(m);
}

int main(void)
{
    test_kinds();
    test_counts_and_forwards();
    test_many();
    return unit_finish();
}
