/* inodes.c: forwards: where a message went that this mount replaced or moved */
#include <stdlib.h>

#include "fs/fs_int.h"

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
