/* cmd_export.c: `mailfs export`: a user's mail as Maildir++ or mbox, the inverse of import */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/progress.h"
#include "tools/mailio.h"

#define CHUNK 512 /* messages written per read transaction */

static void export_usage(FILE *f)
{
    fprintf(f, "usage: mailfs export USER DEST [--format maildir|mbox] [--mailbox NAME]\n\n"
               "maildir (default): DEST becomes a Maildir++ tree: INBOX in DEST itself, other\n"
               "    mailboxes in DEST/.Name.Sub ('.' inside a level is written %%2E, '%%' as\n"
               "    %%25). Flags and keywords go into the file names (keywords through\n"
               "    dovecot-keywords, 26 per folder at most); file mtime is INTERNALDATE.\n"
               "    With --mailbox, DEST is a plain maildir holding just that mailbox.\n"
               "mbox: DEST is a directory with NAME.mbox per mailbox (Work/Projects.mbox;\n"
               "    '%%' in a name is written %%25, and a level ending in '.mbox' ends in\n"
               "    '%%2Embox', so no directory is named like a file), or with --mailbox the\n"
               "    mbox file itself. mboxrd quoting. mbox keeps no flags except\n"
               "    Status:/X-Status: headers already in a message, and cannot keep a missing\n"
               "    final newline: use maildir for an exact copy. Files are made 0600; an\n"
               "    existing file or a symbolic link in the way is an error.\n"
               "Existing files in DEST are left alone; exporting into a non-empty maildir adds.\n"
               "Progress goes to standard error: on a terminal one line redrawn in place\n"
               "(messages, MB, rate, percentage, time left), otherwise a line every 512\n"
               "messages, the first and then at most one every 2 s.\n");
}

typedef struct exporter {
    store *s;
    uint32_t user;
    bool mbox;
    const char *dest;
    const char *only; /* --mailbox */
    uint64_t msgs, bytes;
    uint64_t total; /* bytes of the mailboxes to export, for the progress line */
    progress prog;
    int lost_keywords;
    /* names of the mailboxes to export */
    char **names;
    size_t nnames;
    char failed[4200]; /* the file or directory an mbox export could not make */
} exporter;

static int mkdirs(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Writes DATA as mboxrd: ">" before every line matching ^>*From  */
static int write_quoted(FILE *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] == '>')
            j++;
        if (n - j >= 5 && memcmp(p + j, "From ", 5) == 0) fputc('>', f);
        const char *eol = memchr(p + i, '\n', n - i);
        size_t l = eol ? (size_t)(eol - p) + 1 - i : n - i;
        fwrite(p + i, 1, l, f);
        i += l;
    }
    return ferror(f) ? -EIO : 0;
}

typedef struct chunk {
    exporter *ex;
    uint32_t next_uid;
    size_t count;
    int rc;
    /* maildir */
    const char *dir;
    mailio_keywords *kws;
    uint32_t uidvalidity;
    /* mbox */
    FILE *f;
    store_txn *t;
} chunk;

static int export_one(void *ctx, const store_msg *m)
{
    chunk *ch = ctx;
    exporter *ex = ch->ex;
    const char *data;
    size_t len;
    int rc = store_msg_body(ch->t, m, &data, &len);
    if (rc) return rc;
    if (ex->mbox) {
        char date[64];
        time_t t = (time_t)m->internaldate;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
        fprintf(ch->f, "From MAILER-DAEMON %s\n", date);
        if ((rc = write_quoted(ch->f, data, len)) != 0) return rc;
        if (len == 0 || data[len - 1] != '\n') fputc('\n', ch->f);
        fputc('\n', ch->f);
        if (ferror(ch->f)) return -EIO;
    } else {
        char info[64], name[512], tmp[4800], cur[4800];
        ex->lost_keywords += mailio_maildir_info(m->flags, m->keywords, ch->kws, info, sizeof info);
        snprintf(name, sizeof name, "%" PRId64 ".M%" PRIu32 "P%" PRIu32 ".mailfs,S=%" PRIu64 "%s",
                 m->internaldate, m->uid, ch->uidvalidity, m->size, info);
        snprintf(tmp, sizeof tmp, "%s/tmp/%s", ch->dir, name);
        snprintf(cur, sizeof cur, "%s/cur/%s", ch->dir, name);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return -errno;
        rc = write_all(fd, data, len);
        if (close(fd) != 0 && rc == 0) rc = -errno;
        struct timespec times[2] = {{.tv_sec = m->internaldate}, {.tv_sec = m->internaldate}};
        if (rc == 0 && utimensat(AT_FDCWD, tmp, times, 0) != 0) rc = -errno;
        if (rc == 0 && rename(tmp, cur) != 0) rc = -errno;
        if (rc) return rc;
    }
    ex->msgs++;
    ex->bytes += len;
    progress_show(&ex->prog, ex->msgs, ex->bytes, ex->bytes, ex->msgs % CHUNK == 0);
    ch->next_uid = m->uid + 1;
    return ++ch->count >= CHUNK ? 1 : 0;
}

/* Writes all messages of one mailbox, CHUNK per read transaction. */
static int export_messages(exporter *ex, uint32_t mailbox_id, chunk *ch)
{
    ch->ex = ex;
    ch->next_uid = 1;
    for (;;) {
        int rc = store_read_begin(ex->s, &ch->t);
        if (rc) return rc;
        ch->count = 0;
        rc = store_msg_list(ch->t, mailbox_id, ch->next_uid, export_one, ch);
        store_read_end(&ch->t);
        if (rc < 0) return rc;
        if (rc == 0) return 0; /* the walk ended before CHUNK: done */
    }
}

/* One level of a mailbox name as an mbox file or directory name: '%' becomes %25, and a final
 * ".mbox" becomes "%2Embox", so that a directory (mailbox a.mbox with children) never has the
 * name of a file (mailbox a: a.mbox), and different names stay different. */
static void mbox_level(const char *level, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < outlen; i++) {
        if (level[i] == '%')
            memcpy(out + o, "%25", 3), o += 3;
        else
            out[o++] = level[i];
    }
    out[o] = '\0';
    if (o >= 5 && strcmp(out + o - 5, ".mbox") == 0 && o + 3 < outlen) {
        memmove(out + o - 2, out + o - 4, 5); /* "mbox" and the NUL, two bytes on */
        memcpy(out + o - 5, "%2E", 3);
    }
}

/* Creates the mbox file of mailbox NAME below directory DEST: directories on the way are made
 * 0700 and must be directories (not symbolic links), the file is new (O_EXCL, 0600). Returns
 * its descriptor, or a negative errno with the path in ex->failed. */
static int mbox_create(exporter *ex, const char *name)
{
    int dfd = open(ex->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(ex->failed, sizeof ex->failed, "%s", ex->dest);
    if (dfd < 0) return -errno;
    for (const char *p = name;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char enc[STORE_NAME_MAX * 3 + 8];
        mbox_level(p, n, enc, sizeof enc - 5);
        if (!slash) strcat(enc, ".mbox");
        size_t fl = strlen(ex->failed);
        snprintf(ex->failed + fl, sizeof ex->failed - fl, "/%s", enc);
        int fd;
        if (!slash) {
            fd = openat(dfd, enc, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        } else {
            if (mkdirat(dfd, enc, 0700) != 0 && errno != EEXIST)
                fd = -1;
            else
                fd = openat(dfd, enc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        close(dfd);
        if (fd < 0) return -e;
        if (!slash) return fd;
        dfd = fd;
        p = slash + 1;
    }
}

static int export_mailbox(exporter *ex, const store_mailbox *mb)
{
    char path[4200];
    chunk ch = {0};
    int rc;
    if (ex->mbox) {
        int fd;
        if (ex->only) {
            /* DEST is the file: the directories above it are the caller's */
            snprintf(path, sizeof path, "%s", ex->dest);
            char *slash = strrchr(path, '/');
            if (slash && slash != path) {
                *slash = 0;
                rc = mkdirs(path);
                *slash = '/';
                if (rc) return rc;
            }
            snprintf(ex->failed, sizeof ex->failed, "%s", path);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd < 0) return -errno;
        } else if ((fd = mbox_create(ex, mb->name)) < 0) {
            return fd;
        }
        if (!(ch.f = fdopen(fd, "w"))) {
            rc = -errno;
            close(fd);
            return rc;
        }
        ex->failed[0] = '\0';
        rc = export_messages(ex, mb->id, &ch);
        if (fclose(ch.f) != 0 && rc == 0) rc = -errno;
        return rc;
    }
    char folder[STORE_NAME_MAX * 3 + 2];
    if (ex->only || strcmp(mb->name, "INBOX") == 0)
        snprintf(path, sizeof path, "%s", ex->dest);
    else {
        mailio_folder_encode(mb->name, folder, sizeof folder);
        snprintf(path, sizeof path, "%s/.%s", ex->dest, folder);
    }
    static const char *const subs[] = {"cur", "new", "tmp"};
    for (int i = 0; i < 3; i++) {
        char sub[4300];
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        if ((rc = mkdirs(sub)) != 0) return rc;
    }
    mailio_keywords kws;
    mailio_keywords_load(&kws, path);
    ch.dir = path;
    ch.kws = &kws;
    ch.uidvalidity = mb->uidvalidity;
    rc = export_messages(ex, mb->id, &ch);
    if (rc == 0) rc = mailio_keywords_save(&kws, path);
    mailio_keywords_free(&kws);
    return rc;
}

static int collect_name(void *ctx, const store_mailbox *mb)
{
    exporter *ex = ctx;
    char **g = realloc(ex->names, (ex->nnames + 1) * sizeof *g);
    if (!g) return -ENOMEM;
    ex->names = g;
    ex->names[ex->nnames++] = strdup(mb->name);
    ex->total += mb->bytes;
    return 0;
}

int cmd_export(cli *c, int argc, char **argv)
{
    exporter ex = {0};
    const char *user = NULL, *format = "maildir";
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            export_usage(stdout);
            return EX_OK;
        } else if ((!strcmp(argv[i], "--format") || !strcmp(argv[i], "--mailbox")) &&
                   i + 1 < argc) {
            if (argv[i][2] == 'f')
                format = argv[++i];
            else
                ex.only = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("export: unknown option or missing value '%s': see 'mailfs export --help'",
                      argv[i]);
            return EX_USAGE;
        } else if (!user) {
            user = argv[i];
        } else if (!ex.dest) {
            ex.dest = argv[i];
        } else {
            cli_error("export: unexpected argument '%s': see 'mailfs export --help'", argv[i]);
            return EX_USAGE;
        }
    }
    if (!user || !ex.dest) {
        cli_error("export: give a user and a destination: mailfs export USER DEST");
        return EX_USAGE;
    }
    if (strcmp(format, "maildir") && strcmp(format, "mbox")) {
        cli_error("export: unknown format '%s': use maildir or mbox", format);
        return EX_USAGE;
    }
    ex.mbox = format[1] == 'b';
    int rc = cli_open_store(c, STORE_OPEN_RDONLY, &ex.s);
    if (rc == 0) rc = cli_user_id(ex.s, user, &ex.user);
    if (rc) {
        if (ex.s) store_close(&ex.s);
        return rc;
    }
    store_txn *t;
    if ((rc = store_read_begin(ex.s, &t)) == 0) {
        if (ex.only) {
            store_mailbox mb;
            rc = store_mailbox_get(t, ex.user, ex.only, &mb);
            if (rc == 0) rc = collect_name(&ex, &mb);
        } else {
            rc = store_mailbox_list(t, ex.user, collect_name, &ex);
        }
        store_read_end(&t);
    }
    if (rc == -ENOENT) {
        cli_error("export: user '%s' has no mailbox '%s': see 'mailfs mailbox list %s'", user,
                  ex.only, user);
        store_close(&ex.s);
        return EX_NOINPUT;
    }
    if (rc == 0 && !(ex.mbox && ex.only)) rc = mkdirs(ex.dest);
    progress_begin(&ex.prog, "export", ex.total);
    for (size_t i = 0; rc == 0 && i < ex.nnames; i++) {
        store_mailbox mb;
        if ((rc = store_read_begin(ex.s, &t)) != 0) break;
        rc = store_mailbox_get(t, ex.user, ex.names[i], &mb);
        store_read_end(&t);
        if (rc == -ENOENT) {
            rc = 0; /* deleted meanwhile */
            continue;
        }
        if (rc == 0) rc = export_mailbox(&ex, &mb);
        if (rc && ex.failed[0] && rc == -EEXIST)
            cli_error("export: mailbox '%s': '%s' exists already: export to a new destination, "
                      "or move it away",
                      ex.names[i], ex.failed);
        else if (rc && ex.failed[0] && (rc == -ELOOP || rc == -ENOTDIR))
            cli_error("export: mailbox '%s': '%s' is a symbolic link or not a directory: "
                      "export to a new destination",
                      ex.names[i], ex.failed);
        else if (rc && ex.failed[0])
            cli_error("export: mailbox '%s': cannot create '%s': %s", ex.names[i], ex.failed,
                      strerror(-rc));
        else if (rc)
            cli_error("export: mailbox '%s' into '%s': %s", ex.names[i], ex.dest, strerror(-rc));
    }
    for (size_t i = 0; i < ex.nnames; i++)
        free(ex.names[i]);
    free(ex.names);
    store_close(&ex.s);
    progress_end(&ex.prog, ex.msgs, ex.bytes, ex.bytes);
    if (rc) return cli_exit_code(rc) == EX_SOFTWARE ? EX_CANTCREAT : cli_exit_code(rc);
    printf("exported %" PRIu64 " messages (%.1f MB) from %zu mailboxes\n", ex.msgs,
           (double)ex.bytes / 1e6, ex.nnames);
    if (ex.lost_keywords)
        cli_error("export: %d keyword uses were left out: a Maildir folder holds 26 keywords at "
                  "most",
                  ex.lost_keywords);
    return EX_OK;
}
