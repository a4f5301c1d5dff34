/* feed.c: the change feed: recording, trimming and reading changes, and waking its watchers */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"

#define FEED_KEEP 1000000u /* changes the feed keeps before trimming the oldest */
#define NOTIFY_FILE "changes"

/* How many changes the feed keeps: FEED_KEEP, or $MAILFS_FEED_KEEP when that is a positive
 * integer (a testing knob: a small feed lets tests reach -ERANGE in a few hundred changes;
 * anything else in it is ignored). */
uint64_t st_feed_keep(void)
{
    const char *v = getenv("MAILFS_FEED_KEEP");
    if (!v || *v < '0' || *v > '9') return FEED_KEEP; /* no sign, no space */
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n == 0) return FEED_KEEP;
    return n;
}

/* Opens the notify file watchers inotify (made if missing, unless S is read-only). */
int st_feed_open(store *s, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" NOTIFY_FILE, s->dir);
    s->notify_fd = open(path, (s->rdonly ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);
    if (s->notify_fd < 0 && !s->rdonly) {
        int e = errno;
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int st_feed_add(store_txn *t, int kind, uint32_t user_id, uint32_t mailbox_id, uint32_t uid,
                uint64_t *seq)
{
    uint8_t k[8];
    change_rec c = {
        .kind = (uint8_t)kind, .user_id = user_id, .mailbox_id = mailbox_id, .uid = uid};
    put_be64(k, ++t->seq);
    int rc = st_put(t, DB_CHANGES, k, sizeof k, &c, sizeof c);
    if (rc == 0 && seq) *seq = t->seq;
    return rc;
}

/* Drops the oldest changes so that the feed holds at most s->feed_keep. */
int st_feed_trim(store_txn *t)
{
    uint64_t keep = t->s->feed_keep;
    if (t->seq <= keep) return 0;
    uint64_t min = st_meta_u64(t, "feed_min", 1), want = t->seq - keep + 1;
    if (min >= want) return 0;
    st_iter it; /* the oldest first */
    int rc = st_iter_begin(&it, t, DB_CHANGES, "", 0, 0);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it) && get_be64(it.k.mv_data) < want)
        rc = st_iter_del(&it);
    if ((rc = st_iter_end(&it, rc)) != 0) return rc;
    return st_meta_put_u64(t, "feed_min", want);
}

uint64_t store_change_seq(store_txn *t)
{
    return t->seq;
}

void st_feed_notify(store *s, uint64_t seq)
{
    if (s->notify_fd < 0) return;
    /* the content is only informative; the write itself wakes inotify watchers */
    if (pwrite(s->notify_fd, &seq, sizeof seq, 0) < 0) {
        /* a watcher then wakes at its next timeout; nothing is lost */
    }
}

int store_changes_since(store_txn *t, uint64_t after, int (*cb)(void *ctx, const store_change *c),
                        void *ctx)
{
    if (after >= t->seq) return 0;
    uint64_t min = st_meta_u64(t, "feed_min", 1);
    if (after + 1 < min) return -ERANGE;
    uint8_t kb[8];
    put_be64(kb, after + 1);
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_CHANGES, kb, 8, 0);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        change_rec r;
        memcpy(&r, it.v.mv_data, sizeof r < it.v.mv_size ? sizeof r : it.v.mv_size);
        store_change ch = {.seq = get_be64(it.k.mv_data),
                           .kind = r.kind,
                           .user_id = r.user_id,
                           .mailbox_id = r.mailbox_id,
                           .uid = r.uid};
        rc = cb(ctx, &ch);
    }
    return st_iter_end(&it, rc);
}

uint64_t store_changes_oldest(store_txn *t)
{
    return st_meta_u64(t, "feed_min", 1) - 1;
}

int store_watch_open(store *s, int *fd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" NOTIFY_FILE, s->dir);
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd < 0) return -errno;
    if (inotify_add_watch(ifd, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
        int e = errno;
        close(ifd);
        return -e;
    }
    *fd = ifd;
    return 0;
}

void store_watch_drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static uint64_t current_seq(store *s)
{
    store_txn *t;
    if (store_read_begin(s, &t) != 0) return 0;
    uint64_t seq = t->seq;
    store_read_end(&t);
    return seq;
}

int store_wait_change(store *s, uint64_t after, int timeout_ms)
{
    int fd, rc = store_watch_open(s, &fd);
    if (rc) return rc;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = -ETIMEDOUT;
    for (;;) {
        if (current_seq(s) > after) {
            rc = 0;
            break;
        }
        int wait = -1;
        if (timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long spent =
                (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (spent >= timeout_ms) break;
            wait = timeout_ms - (int)spent;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, wait) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        store_watch_drain(fd);
    }
    close(fd);
    return rc;
}
