/* cmd_import.c: `mailfs import`: Maildir (++ and nested), mbox (mboxrd, Content-Length), .eml */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/progress.h"
#include "tools/mailio.h"

#define BATCH_MSGS 4000
#define BATCH_BYTES (32u << 20)

static void import_usage(FILE *f)
{
    fprintf(f, "usage: mailfs import USER PATH... [--mailbox NAME] [--verbose]\n\n"
               "Imports mail into USER's mailboxes. Each PATH may be:\n"
               "  a Maildir (cur/ new/): into NAME (default INBOX); Maildir++ subfolders\n"
               "      (.Sent, .Work.Projects) and nested maildirs (Work/Projects/cur) become\n"
               "      mailboxes beside it (under NAME when --mailbox is given); flags and\n"
               "      keywords come from the file names and dovecot-keywords\n"
               "  an mbox file (starts with 'From '): mboxrd '>From' unquoting, Content-Length\n"
               "      framing when present, flags from Status:/X-Status:\n"
               "  a message file (.eml or any other file)\n"
               "  a directory of the above; without --mailbox, a file NAME.mbox goes into\n"
               "      mailbox NAME (path below the directory, so Work/Projects.mbox works)\n\n"
               "A message whose exact bytes are already in the target mailbox is skipped and\n"
               "counted as a duplicate, so importing the same input twice adds nothing.\n"
               "Missing mailboxes are created. Messages are committed durably in batches;\n"
               "--verbose prints a line per committed batch on standard output.\n"
               "Progress goes to standard error: on a terminal one line redrawn in place\n"
               "(messages, MB, rate, percentage of the input read, time left), otherwise a\n"
               "line per committed batch, the first and then at most one every 2 s.\n");
}

typedef struct item {
    const char *data;
    size_t len;
    char *owned; /* data's buffer when the item owns it */
    uint32_t flags;
    char *keywords;
    int64_t date;
    char *mailbox;
    store_prepared prep; /* hash and MIME summary, made before the write transaction */
} item;

struct importer;

/* A batch of messages committed in one transaction. */
typedef struct batch {
    struct importer *im;
    item *items;
    size_t n, bytes;
    int rc;                  /* the commit's result */
    const char *bad_mailbox; /* the mailbox that could not be created */
    /* what the commit did; recomputed each time the write runs (it may run again) */
    uint64_t msgs, msg_bytes, dups, big;
} batch;

/* Two batches: one fills (read, hashed, summarized) while the other commits on a thread. */
typedef struct importer {
    store *s;
    uint32_t user;
    bool verbose;
    progress prog;
    batch b[2];
    int fill;        /* the batch being filled */
    bool committing; /* b[!fill] is being committed by `committer` */
    pthread_t committer;
    /* what was committed */
    uint64_t msgs, msg_bytes, dups, too_big, unreadable;
    int failed;                 /* a store error that stopped the import */
    uint64_t in_total, in_done; /* input bytes, for the progress bar */
} importer;

/* Shows how far the import is: messages committed, input read; BATCH after a commit. */
static void show(importer *im, bool at_batch)
{
    progress_show(&im->prog, im->msgs, im->msg_bytes, im->in_done, at_batch);
}

#define MAPPED_MAX (64ull << 20) /* file pages mapped (store and input) before unmapping */

/* Bytes of files mapped and resident in this process (the store, an mbox being read). */
static uint64_t file_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size = 0, resident = 0, shared = 0;
    if (f) {
        if (fscanf(f, "%lu %lu %lu", &size, &resident, &shared) != 3) shared = 0;
        fclose(f);
    }
    return (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int batch_write(store_txn *w, void *ctx)
{
    batch *b = ctx;
    b->msgs = b->msg_bytes = b->dups = b->big = 0;
    const char *cur_name = NULL;
    uint32_t cur_id = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!cur_name || strcmp(cur_name, it->mailbox) != 0) {
            store_mailbox mb;
            int rc = store_mailbox_get(w, b->im->user, it->mailbox, &mb);
            if (rc == -ENOENT) rc = store_mailbox_create(w, b->im->user, it->mailbox, 0, &mb);
            if (rc) {
                b->bad_mailbox = it->mailbox;
                return rc;
            }
            cur_name = it->mailbox, cur_id = mb.id;
        }
        store_append opt = {.flags = it->flags,
                            .keywords = it->keywords,
                            .internaldate = it->date,
                            .skip_duplicate = true,
                            .prepared = &it->prep};
        int rc = store_msg_append(w, cur_id, it->data, it->len, &opt, NULL);
        if (rc == -EEXIST)
            b->dups++;
        else if (rc == -EFBIG)
            b->big++;
        else if (rc)
            return rc;
        else
            b->msgs++, b->msg_bytes += it->len;
        /* the index lookups above touch pages all over the store, and the kernel maps the
         * whole cached folio around each (hundreds of KB): unmap them when they add up, or
         * RSS grows with the store */
        if (i % 32 == 31 && file_rss_bytes() > MAPPED_MAX) store_release_map(b->im->s);
    }
    return 0;
}

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].owned);
        free(b->items[i].keywords);
        free(b->items[i].mailbox);
        store_prepared_clear(&b->items[i].prep);
    }
    b->n = b->bytes = 0;
    b->rc = 0;
    b->bad_mailbox = NULL;
}

static void *commit_main(void *arg)
{
    batch *b = arg;
    b->rc = store_write(b->im->s, batch_write, b);
    store_release_map(b->im->s); /* what the commit mapped */
    return NULL;
}

/* Reports a committed batch B and empties it. Returns its result. */
static int account(importer *im, batch *b)
{
    int rc = b->rc;
    if (rc) {
        if (b->bad_mailbox)
            cli_error("import: cannot create mailbox '%s': %s", b->bad_mailbox, store_strerror(rc));
        else
            cli_error("import: cannot store messages: %s (%" PRIu64 " messages were committed "
                      "before this and are kept)",
                      store_strerror(rc), im->msgs);
        im->failed = rc;
    } else {
        im->msgs += b->msgs, im->msg_bytes += b->msg_bytes;
        im->dups += b->dups, im->too_big += b->big;
        if (im->verbose)
            printf("committed %" PRIu64 " messages (%" PRIu64 " in all)\n", b->msgs, im->msgs);
        fflush(stdout);
    }
    batch_clear(b);
    show(im, true);
    return rc;
}

/* Waits for the batch being committed, if any, and accounts for it. */
static int wait_commit(importer *im)
{
    if (!im->committing) return 0;
    pthread_join(im->committer, NULL);
    im->committing = false;
    return account(im, &im->b[!im->fill]);
}

/* Hands the batch being filled to the committer (after the previous commit ends) and starts
 * filling the other one. Returns 0 or a store error (already reported). */
static int flush(importer *im)
{
    int rc = wait_commit(im);
    if (rc) return rc;
    batch *b = &im->b[im->fill];
    if (b->n == 0) return 0;
    if (pthread_create(&im->committer, NULL, commit_main, b) != 0) {
        commit_main(b); /* no thread to be had: commit here */
        return account(im, b);
    }
    im->committing = true;
    im->fill = !im->fill;
    return 0;
}

/* Commits everything queued and waits for it. */
static int finish(importer *im)
{
    int rc = flush(im);
    int rc2 = wait_commit(im);
    return rc ? rc : rc2;
}

/* Queues one message; DATA stays valid until its batch is committed (OWNED is freed then). */
static int add(importer *im, const char *data, size_t len, char *owned, uint32_t flags,
               const char *kw, int64_t date, const char *mailbox)
{
    show(im, false); /* a terminal's line moves on while a batch fills */
    if (len > store_msg_max(im->s)) {
        im->too_big++;
        free(owned);
        return 0;
    }
    batch *b = &im->b[im->fill];
    if (b->n == BATCH_MSGS || (b->bytes + len > BATCH_BYTES && b->n > 0)) {
        int rc = flush(im);
        if (rc) {
            free(owned);
            return rc;
        }
        b = &im->b[im->fill];
    }
    item *it = &b->items[b->n];
    *it = (item){.data = data,
                 .len = len,
                 .owned = owned,
                 .flags = flags,
                 .keywords = kw && *kw ? strdup(kw) : NULL,
                 .date = date,
                 .mailbox = strdup(mailbox)};
    int rc = store_msg_prepare(data, len, &it->prep);
    if (rc || !it->mailbox) {
        cli_error("import: cannot prepare a message: %s", store_strerror(rc ? rc : -ENOMEM));
        free(it->owned), free(it->keywords), free(it->mailbox);
        store_prepared_clear(&it->prep);
        return rc ? rc : -ENOMEM;
    }
    b->n++;
    b->bytes += len;
    return 0;
}

/* Reads the whole file open on FD and closes FD; returns 0, or -errno. */
static int slurp_fd(int fd, char **buf, size_t *len, struct stat *st)
{
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t n = (size_t)st->st_size, got = 0;
    char *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            return -e;
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b, *len = n;
    return 0;
}

static int slurp(const char *path, char **buf, size_t *len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : slurp_fd(fd, buf, len, st);
}

static void unreadable(importer *im, const char *path, int err)
{
    cli_error("import: skipping '%s': %s", path, strerror(-err));
    im->unreadable++;
}

static int import_mbox(importer *im, const char *path, const char *mailbox)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        unreadable(im, path, -errno);
        if (fd >= 0) close(fd);
        return 0;
    }
    size_t len = (size_t)st.st_size;
    char *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (len && map == MAP_FAILED) {
        unreadable(im, path, -errno);
        return 0;
    }
    madvise(map, len, MADV_SEQUENTIAL);
    size_t pos = 0, done = 0;
    mailio_mbox_msg m;
    int rc = 0;
    while (rc == 0 && mailio_mbox_next(map, len, &pos, &m)) {
        char *owned = NULL;
        const char *data = m.data;
        size_t mlen = m.len;
        if (m.quoted && mailio_mbox_needs_quoting(m.data, m.len)) {
            if (!(owned = malloc(m.len ? m.len : 1))) {
                rc = -ENOMEM;
                break;
            }
            mlen = mailio_mbox_unquote(m.data, m.len, owned);
            data = owned;
        }
        rc = add(im, data, mlen, owned, mailio_mbox_status_flags(data, mlen), NULL,
                 m.date ? m.date : st.st_mtime, mailbox);
        size_t here = (size_t)(m.data - map);
        if (rc == 0 && im->b[im->fill].n == 1 && here > done + (64u << 20)) {
            /* a batch was just committed: give back the pages before this message */
            size_t upto = here & ~(size_t)4095;
            madvise(map, upto, MADV_DONTNEED);
            im->in_done += upto - done;
            done = upto;
        }
    }
    /* the batches point into the map: all of them must be committed before it goes */
    int frc = finish(im);
    if (rc == 0) rc = frc;
    im->in_done += len - done;
    if (len) munmap(map, len);
    return rc;
}

static int import_file(importer *im, const char *path, const char *mailbox, uint32_t flags,
                       const char *kw)
{
    char head[5];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        unreadable(im, path, -errno);
        return 0;
    }
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n == 5 && mailio_is_mbox(head, 5) && !kw && !flags) return import_mbox(im, path, mailbox);
    char *buf;
    size_t len;
    struct stat st;
    int rc = slurp(path, &buf, &len, &st);
    if (rc) {
        unreadable(im, path, rc);
        return 0;
    }
    im->in_done += len;
    return add(im, buf, len, buf, flags, kw, st.st_mtime, mailbox);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_maildir(const char *path)
{
    char p[4200 + 8]; /* paths here come from 4200-byte buffers */
    snprintf(p, sizeof p, "%s/cur", path);
    if (is_dir(p)) return true;
    snprintf(p, sizeof p, "%s/new", path);
    return is_dir(p);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of DIR sorted by name, without "." and ".."; NULL-terminated. */
static char **list_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    *count = 0;
    if (!d) return NULL;
    size_t cap = 64, n = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n + 1 == cap) {
            char **g = realloc(names, (cap *= 2) * sizeof *names);
            if (!g) break;
            names = g;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (!names) return NULL;
    qsort(names, n, sizeof *names, cmp_names);
    names[n] = NULL;
    *count = n;
    return names;
}

static void free_list(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

static int import_maildir(importer *im, const char *path, const char *mailbox, bool pp_top);

#define PREFETCH 32 /* files opened and read ahead of the one being imported */

/* Imports cur/ and new/ of one maildir into MAILBOX. The next PREFETCH files are opened with
 * POSIX_FADV_WILLNEED, so that the disk reads them while this one is parsed and stored. */
static int import_maildir_files(importer *im, const char *path, const char *mailbox)
{
    mailio_keywords kws;
    mailio_keywords_load(&kws, path);
    int rc = 0;
    for (int sub = 0; sub < 2 && rc == 0; sub++) {
        char dir[4200], file[8400];
        snprintf(dir, sizeof dir, "%s/%s", path, sub ? "cur" : "new");
        size_t n, ahead = 0;
        char **names = list_dir(dir, &n);
        int ring[PREFETCH]; /* an open fd, or -errno */
        for (size_t i = 0; rc == 0 && i < n; i++) {
            for (; ahead < n && ahead < i + PREFETCH; ahead++) {
                int fd = -ENOENT;
                if (names[ahead][0] != '.') {
                    snprintf(file, sizeof file, "%s/%s", dir, names[ahead]);
                    fd = open(file, O_RDONLY | O_CLOEXEC);
                    if (fd < 0)
                        fd = -errno;
                    else
                        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
                }
                ring[ahead % PREFETCH] = fd;
            }
            int fd = ring[i % PREFETCH];
            ring[i % PREFETCH] = -1;
            if (names[i][0] == '.') continue;
            char kw[STORE_KEYWORDS_MAX + 1];
            uint32_t flags;
            snprintf(file, sizeof file, "%s/%s", dir, names[i]);
            mailio_maildir_flags(names[i], &kws, &flags, kw, sizeof kw);
            char *buf;
            size_t len;
            struct stat st;
            int r = fd < 0 ? fd : slurp_fd(fd, &buf, &len, &st);
            if (r) {
                if (r != -EISDIR) unreadable(im, file, r);
                continue;
            }
            im->in_done += len;
            rc = add(im, buf, len, buf, flags, kw, st.st_mtime, mailbox);
        }
        /* stopped early: close the files opened ahead */
        for (size_t k = ahead > PREFETCH ? ahead - PREFETCH : 0; rc && k < ahead; k++)
            if (ring[k % PREFETCH] >= 0) close(ring[k % PREFETCH]), ring[k % PREFETCH] = -1;
        free_list(names);
    }
    mailio_keywords_free(&kws);
    return rc;
}

/* A maildir at PATH into MAILBOX, then its subfolders: Maildir++ ".A.B" (named from the top
 * when PP_TOP) and nested maildirs "A/B". */
static int import_maildir(importer *im, const char *path, const char *mailbox, bool pp_top)
{
    int rc = import_maildir_files(im, path, mailbox);
    size_t n;
    char **names = list_dir(path, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *e = names[i];
        char sub[4200], name[STORE_NAME_MAX * 2 + 2], dec[STORE_NAME_MAX + 1];
        snprintf(sub, sizeof sub, "%s/%s", path, e);
        if (!strcmp(e, "cur") || !strcmp(e, "new") || !strcmp(e, "tmp") || !is_maildir(sub))
            continue;
        if (e[0] == '.') {
            mailio_folder_decode(e + 1, dec, sizeof dec);
            if (pp_top)
                snprintf(name, sizeof name, "%s", dec);
            else
                snprintf(name, sizeof name, "%s/%s", mailbox, dec);
        } else {
            snprintf(name, sizeof name, "%s/%s", mailbox, e);
        }
        const char *why;
        if (store_mailbox_name_check(name, &why) != 0) {
            cli_error("import: skipping folder '%s': it would be mailbox '%s', but %s", sub, name,
                      why);
            im->unreadable++;
            continue;
        }
        if (e[0] == '.')
            rc = import_maildir_files(im, sub, name);
        else
            rc = import_maildir(im, sub, name, false);
    }
    free_list(names);
    return rc;
}

/* A directory that is not a maildir: its files and subdirectories, recursively. */
static int import_dir(importer *im, const char *path, const char *rel, const char *mailbox,
                      bool by_name, int depth)
{
    if (depth > 32) {
        cli_error("import: skipping '%s': directories nested more than 32 deep", path);
        return 0;
    }
    size_t n;
    char **names = list_dir(path, &n);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char sub[4200], subrel[2048];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        snprintf(subrel, sizeof subrel, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        struct stat st;
        if (lstat(sub, &st) != 0 || names[i][0] == '.') continue;
        if (S_ISDIR(st.st_mode)) {
            if (is_maildir(sub))
                rc = import_maildir(im, sub, mailbox, false);
            else
                rc = import_dir(im, sub, subrel, mailbox, by_name, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            size_t l = strlen(subrel);
            if (by_name && l > 5 && strcmp(subrel + l - 5, ".mbox") == 0) {
                char name[2048];
                snprintf(name, sizeof name, "%.*s", (int)(l - 5), subrel);
                const char *why;
                if (store_mailbox_name_check(name, &why) != 0) {
                    cli_error("import: '%s' goes into '%s' instead: '%s' is no mailbox name: %s",
                              sub, mailbox, name, why);
                    rc = import_file(im, sub, mailbox, 0, NULL);
                } else {
                    rc = import_file(im, sub, name, 0, NULL);
                }
            } else {
                rc = import_file(im, sub, mailbox, 0, NULL);
            }
        }
    }
    free_list(names);
    return rc;
}

static uint64_t input_size(const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    if (depth > 32) return 0;
    uint64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        total += input_size(sub, depth + 1);
    }
    if (d) closedir(d);
    return total;
}

int cmd_import(cli *c, int argc, char **argv)
{
    const char *user = NULL, *mailbox = NULL;
    bool verbose = false;
    char **paths = calloc((size_t)argc, sizeof *paths);
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            import_usage(stdout);
            free(paths);
            return EX_OK;
        } else if (!strcmp(argv[i], "--mailbox") || !strcmp(argv[i], "-m")) {
            if (++i >= argc) {
                cli_error("import: --mailbox needs a name");
                free(paths);
                return EX_USAGE;
            }
            mailbox = argv[i];
        } else if (!strncmp(argv[i], "--mailbox=", 10)) {
            mailbox = argv[i] + 10;
        } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("import: unknown option '%s': see 'mailfs import --help'", argv[i]);
            free(paths);
            return EX_USAGE;
        } else if (!user) {
            user = argv[i];
        } else {
            paths[np++] = argv[i];
        }
    }
    if (!user || np == 0) {
        cli_error("import: give a user and at least one path: mailfs import USER PATH...");
        free(paths);
        return EX_USAGE;
    }
    const char *why;
    if (mailbox && store_mailbox_name_check(mailbox, &why) != 0) {
        cli_error("import: bad mailbox name '%s': %s", mailbox, why);
        free(paths);
        return EX_DATAERR;
    }
    for (int i = 0; i < np; i++) {
        if (access(paths[i], R_OK) != 0) {
            cli_error("import: cannot read '%s': %s", paths[i], strerror(errno));
            free(paths);
            return EX_NOINPUT;
        }
    }
    importer im = {.verbose = verbose};
    int rc = cli_open_store(c, 0, &im.s);
    if (rc == 0) rc = cli_user_id(im.s, user, &im.user);
    if (rc) {
        if (im.s) store_close(&im.s);
        free(paths);
        return rc;
    }
    for (int k = 0; k < 2; k++) {
        im.b[k].im = &im;
        im.b[k].items = calloc(BATCH_MSGS, sizeof *im.b[k].items);
    }
    bool mem = im.b[0].items && im.b[1].items;
    for (int i = 0; i < np; i++)
        im.in_total += input_size(paths[i], 0);
    progress_begin(&im.prog, "import", im.in_total);
    const char *target = mailbox ? mailbox : "INBOX";
    for (int i = 0; i < np && rc == 0 && mem; i++) {
        if (is_dir(paths[i])) {
            if (is_maildir(paths[i]))
                rc = import_maildir(&im, paths[i], target, mailbox == NULL);
            else
                rc = import_dir(&im, paths[i], "", target, mailbox == NULL, 0);
        } else {
            rc = import_file(&im, paths[i], target, 0, NULL);
        }
        if (rc == 0) rc = flush(&im);
    }
    int frc = finish(&im);
    if (rc == 0) rc = frc;
    for (int k = 0; k < 2; k++) {
        if (im.b[k].items) batch_clear(&im.b[k]);
        free(im.b[k].items);
    }
    progress_end(&im.prog, im.msgs, im.msg_bytes, im.in_done);
    printf("imported %" PRIu64 " messages (%.1f MB)", im.msgs, (double)im.msg_bytes / 1e6);
    if (im.dups || im.too_big || im.unreadable) {
        printf("; skipped %" PRIu64 ":", im.dups + im.too_big + im.unreadable);
        if (im.dups) printf(" %" PRIu64 " already in the mailbox (duplicates)", im.dups);
        if (im.too_big)
            printf("%s %" PRIu64 " larger than %" PRIu64 " bytes", im.dups ? "," : "", im.too_big,
                   store_msg_max(im.s));
        if (im.unreadable)
            printf("%s %" PRIu64 " unreadable files", im.dups || im.too_big ? "," : "",
                   im.unreadable);
    }
    printf("\n");
    store_close(&im.s);
    free(paths);
    if (!mem) {
        cli_error("import: out of memory");
        return EX_TEMPFAIL;
    }
    if (rc) return rc == -ENOMEM ? EX_TEMPFAIL : cli_exit_code(rc);
    return im.unreadable ? EX_IOERR : EX_OK;
}
