/* cmd_watch.c: `mailfs watch`: a user's changes from the store's feed, one line each, as they
 * happen (what a script would want inotify for: inotify on the mount sees only the mount's own
 * writes) */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "tools/cli.h"

static void watch_usage(FILE *f)
{
    fprintf(f, "usage: mailfs watch [--mailbox NAME] [--json] [--since N] [--mount DIR] USER\n\n"
               "Prints each change to USER's mail as it happens, one line per change, whoever\n"
               "made it (IMAP, the mount, deliver, import), until interrupted:\n"
               "  SEQ KIND MAILBOX UID PATH [FLAGS]   tab-separated; or one JSON object per\n"
               "                                      line with --json\n"
               "SEQ is the change's position in the feed (its MODSEQ); KIND is append,\n"
               "expunge, flags, rename (a message's file name), mailbox-create,\n"
               "mailbox-delete, mailbox-rename, subscribe or user (a password change); UID\n"
               "is 0 and PATH the folder for mailbox changes; PATH is the file's path in the\n"
               "mount (MAILBOX/NAME.eml), under DIR with --mount; FLAGS follow for append and\n"
               "flags. A value that is not known is '-' (null in JSON): the file name of a\n"
               "message expunged before watch started, say.\n\n"
               "  --mailbox NAME  only that mailbox (and a rename of it)\n"
               "  --since N       first the changes after position N (a SEQ printed before),\n"
               "                  then the new ones; without it, only new changes\n"
               "  --json          {\"seq\":..,\"kind\":..,\"mailbox\":..,\"uid\":..,\"path\":..}\n"
               "The feed keeps the last 1,000,000 changes of the store. If N is older than\n"
               "that, watch prints a line of kind 'trimmed' (SEQ: the oldest position still\n"
               "held) and goes on from there: what changed in between must be read afresh\n"
               "(mailfs mailbox list, or the mount). Text output escapes a tab, newline or\n"
               "backslash in a name as \\t, \\n, \\\\. Each line is flushed at once.\n");
}

/* ---- what watch remembers: mailbox names and message file names -------------------------- */

typedef struct wmbox {
    uint32_t id;
    char *name;
} wmbox;

/* file names by (mailbox, uid), for the path of an expunge: the feed carries the UID only,
 * and the message is gone when the change is read. Open addressing, linear probing, deleted
 * slots keep their key with name NULL. */
typedef struct wslot {
    uint64_t key; /* mailbox_id << 32 | uid, 0 = never used */
    char *name;
} wslot;

typedef struct watch {
    store *s;
    uint32_t user;
    uint32_t only; /* --mailbox's id, 0: all */
    bool json;
    const char *mount;
    wmbox *mb;
    size_t nmb, capmb;
    wslot *slot;
    size_t nslot, used; /* capacity (power of two), slots with a key */
    store_txn *t;       /* the read transaction of the current pass */
    uint64_t last;      /* the last change printed (or the start position) */
} watch;

static uint64_t name_key(uint32_t mailbox, uint32_t uid)
{
    return (uint64_t)mailbox << 32 | uid;
}

static size_t slot_of(const watch *w, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 20) & (w->nslot - 1);
    while (w->slot[i].key && w->slot[i].key != key)
        i = (i + 1) & (w->nslot - 1);
    return i;
}

static int names_grow(watch *w)
{
    size_t n = w->nslot ? w->nslot * 2 : 1024;
    wslot *old = w->slot, *nw = calloc(n, sizeof *nw);
    if (!nw) return -ENOMEM;
    size_t on = w->nslot;
    w->slot = nw;
    w->nslot = n;
    w->used = 0;
    for (size_t i = 0; i < on; i++)
        if (old[i].name) {
            w->slot[slot_of(w, old[i].key)] = old[i];
            w->used++;
        }
    free(old);
    return 0;
}

/* Remembers NAME for (MAILBOX, UID), replacing what was there. */
static int names_put(watch *w, uint32_t mailbox, uint32_t uid, const char *name)
{
    if ((w->used + 1) * 4 > w->nslot * 3 && names_grow(w)) return -ENOMEM;
    char *copy = strdup(name);
    if (!copy) return -ENOMEM;
    wslot *sl = &w->slot[slot_of(w, name_key(mailbox, uid))];
    if (!sl->key) w->used++;
    sl->key = name_key(mailbox, uid);
    free(sl->name);
    sl->name = copy;
    return 0;
}

/* The name remembered for (MAILBOX, UID) or NULL; TAKE hands it over and forgets it. */
static char *names_get(watch *w, uint32_t mailbox, uint32_t uid, bool take)
{
    if (!w->nslot) return NULL;
    wslot *sl = &w->slot[slot_of(w, name_key(mailbox, uid))];
    char *name = sl->key ? sl->name : NULL;
    if (take) sl->name = NULL;
    return name;
}

static wmbox *mbox_find(watch *w, uint32_t id)
{
    for (size_t i = 0; i < w->nmb; i++)
        if (w->mb[i].id == id) return &w->mb[i];
    return NULL;
}

/* Remembers mailbox ID as NAME; returns the entry or NULL when out of memory. */
static wmbox *mbox_put(watch *w, uint32_t id, const char *name)
{
    wmbox *m = mbox_find(w, id);
    if (!m) {
        if (w->nmb == w->capmb) {
            size_t n = w->capmb ? w->capmb * 2 : 16;
            wmbox *nm = realloc(w->mb, n * sizeof *nm);
            if (!nm) return NULL;
            w->mb = nm;
            w->capmb = n;
        }
        m = &w->mb[w->nmb++];
        m->id = id;
        m->name = NULL;
    }
    char *copy = strdup(name);
    if (!copy) return NULL;
    free(m->name);
    m->name = copy;
    return m;
}

static int remember_msg(void *ctx, const store_msg *m)
{
    watch *w = ctx;
    return names_put(w, m->mailbox_id, m->uid, m->filename);
}

static int remember_mbox(void *ctx, const store_mailbox *mb)
{
    watch *w = ctx;
    if (!mbox_put(w, mb->id, mb->name)) return -ENOMEM;
    if (w->only && mb->id != w->only) return 0;
    return store_msg_list(w->t, mb->id, 1, remember_msg, w);
}

static void watch_free(watch *w)
{
    for (size_t i = 0; i < w->nmb; i++)
        free(w->mb[i].name);
    free(w->mb);
    for (size_t i = 0; i < w->nslot; i++)
        free(w->slot[i].name);
    free(w->slot);
}

/* ---- output ------------------------------------------------------------------------------- */

/* Writes S as a JSON string, or null for NULL. */
static void put_json(const char *s)
{
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* Writes S as a field of the tab-separated form: '-' for NULL, tab, newline, carriage return
 * and backslash escaped so that one change stays one line. */
static void put_text(const char *s)
{
    if (!s) {
        putchar('-');
        return;
    }
    for (; *s; s++) {
        switch (*s) {
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        default:
            putchar(*s);
        }
    }
}

typedef struct wline {
    uint64_t seq;
    const char *kind;
    const char *mailbox; /* NULL: not known */
    uint32_t uid;
    const char *name;  /* the message's file name, NULL: none or not known */
    const char *flags; /* NULL: not part of this change */
    const char *from;  /* the old name of a rename, NULL: none */
} wline;

static void put_path(const watch *w, const wline *l, void (*put)(const char *))
{
    if (!l->mailbox || (l->uid && !l->name)) {
        put(NULL);
        return;
    }
    size_t n = (w->mount ? strlen(w->mount) + 1 : 0) + strlen(l->mailbox) + 1 +
               (l->name ? strlen(l->name) : 0) + 1;
    char *path = malloc(n);
    if (!path) {
        put(NULL);
        return;
    }
    snprintf(path, n, "%s%s%s%s%s", w->mount ? w->mount : "", w->mount ? "/" : "", l->mailbox,
             l->name ? "/" : "", l->name ? l->name : "");
    put(path);
    free(path);
}

static void print_line(const watch *w, const wline *l)
{
    if (w->json) {
        printf("{\"seq\":%" PRIu64 ",\"kind\":\"%s\",\"mailbox\":", l->seq, l->kind);
        put_json(l->mailbox);
        printf(",\"uid\":%" PRIu32 ",\"path\":", l->uid);
        put_path(w, l, put_json);
        if (l->flags) {
            fputs(",\"flags\":", stdout);
            put_json(l->flags);
        }
        if (l->from) {
            fputs(",\"from\":", stdout);
            put_json(l->from);
        }
        fputs("}\n", stdout);
    } else {
        printf("%" PRIu64 "\t%s\t", l->seq, l->kind);
        put_text(l->mailbox);
        printf("\t%" PRIu32 "\t", l->uid);
        put_path(w, l, put_text);
        if (l->flags || l->from) {
            putchar('\t');
            put_text(l->flags ? l->flags : l->from);
        }
        putchar('\n');
    }
    fflush(stdout);
}

/* The flags of M as IMAP writes them, "\Seen $Work", in BUF. */
static const char *flags_text(const store_msg *m, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    uint32_t bit;
    const char *name;
    for (size_t i = 0; (name = store_sysflag(i, &bit)); i++)
        if ((m->flags & bit) && n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", name);
    if (m->keywords[0] && n < len) snprintf(buf + n, len - n, "%s%s", n ? " " : "", m->keywords);
    return buf;
}

/* ---- reading the feed --------------------------------------------------------------------- */

static int msg_change(watch *w, const store_change *c, wline *l)
{
    static const char *const kinds[] = {[STORE_CH_APPEND] = "append",
                                        [STORE_CH_EXPUNGE] = "expunge",
                                        [STORE_CH_FLAGS] = "flags",
                                        [STORE_CH_RENAME_MSG] = "rename"};
    l->kind = kinds[c->kind];
    if (c->kind == STORE_CH_EXPUNGE) {
        char *name = names_get(w, c->mailbox_id, c->uid, true);
        l->name = name;
        print_line(w, l);
        free(name);
        return 0;
    }
    store_msg m;
    char flags[2400];
    int rc = store_msg_get(w->t, c->mailbox_id, c->uid, &m);
    if (rc == -ENOENT) { /* gone again before this pass read it */
        l->name = names_get(w, c->mailbox_id, c->uid, false);
        print_line(w, l);
        return 0;
    }
    if (rc) return rc;
    if (c->kind == STORE_CH_RENAME_MSG) l->from = names_get(w, c->mailbox_id, c->uid, false);
    if (c->kind == STORE_CH_APPEND || c->kind == STORE_CH_FLAGS)
        l->flags = flags_text(&m, flags, sizeof flags);
    l->name = m.filename;
    print_line(w, l);
    return names_put(w, c->mailbox_id, c->uid, m.filename);
}

static int mbox_change(watch *w, const store_change *c, wline *l)
{
    store_mailbox mb;
    int rc = store_mailbox_get_id(w->t, c->mailbox_id, &mb);
    if (rc && rc != -ENOENT) return rc;
    wmbox *known = mbox_find(w, c->mailbox_id);
    switch (c->kind) {
    case STORE_CH_MBOX_CREATE:
        l->kind = "mailbox-create";
        break;
    case STORE_CH_MBOX_DELETE:
        l->kind = "mailbox-delete";
        break;
    default:
        l->kind = "mailbox-rename";
        break;
    }
    if (c->kind == STORE_CH_MBOX_RENAME && known) l->from = known->name;
    if (rc == 0 && c->kind != STORE_CH_MBOX_DELETE) l->mailbox = mb.name;
    print_line(w, l);
    if (rc == 0 && c->kind != STORE_CH_MBOX_DELETE && !mbox_put(w, mb.id, mb.name)) return -ENOMEM;
    return 0;
}

static int on_change(void *ctx, const store_change *c)
{
    watch *w = ctx;
    w->last = c->seq;
    if (c->user_id != w->user) return 0;
    if (w->only && c->mailbox_id != w->only && c->kind != STORE_CH_USER) return 0;
    wmbox *known = mbox_find(w, c->mailbox_id);
    wline l = {.seq = c->seq, .uid = c->uid, .mailbox = known ? known->name : NULL};
    switch (c->kind) {
    case STORE_CH_APPEND:
    case STORE_CH_EXPUNGE:
    case STORE_CH_FLAGS:
    case STORE_CH_RENAME_MSG:
        if (!known) { /* a mailbox made and deleted again before this pass read it */
            l.kind = c->kind == STORE_CH_APPEND ? "append" : "expunge";
            print_line(w, &l);
            return 0;
        }
        return msg_change(w, c, &l);
    case STORE_CH_MBOX_CREATE:
    case STORE_CH_MBOX_DELETE:
    case STORE_CH_MBOX_RENAME:
        return mbox_change(w, c, &l);
    case STORE_CH_MBOX_SUBSCRIBE:
        l.kind = "subscribe";
        print_line(w, &l);
        return 0;
    case STORE_CH_USER:
        l.kind = "user";
        print_line(w, &l);
        return 0;
    }
    return 0;
}

/* One pass: the changes after w->last, in one snapshot. 1 when the user is gone. */
static int watch_pass(watch *w, const char *user)
{
    int rc = store_read_begin(w->s, &w->t);
    if (rc) return rc;
    uint64_t upto = store_change_seq(w->t);
    rc = store_changes_since(w->t, w->last, on_change, w);
    if (rc == -ERANGE) {
        uint64_t oldest = store_changes_oldest(w->t);
        cli_error("watch: the feed no longer holds the changes after %" PRIu64
                  " (it keeps the newest ones only; it now starts after %" PRIu64
                  "): going on from there; read what changed in between afresh",
                  w->last, oldest);
        wline l = {.seq = oldest, .kind = "trimmed"};
        print_line(w, &l);
        w->last = oldest;
        rc = store_changes_since(w->t, w->last, on_change, w);
    }
    uint32_t id;
    if (rc == 0 && store_user_lookup(w->t, user, &id) == 0 && id == w->user)
        w->last = upto;
    else if (rc == 0)
        rc = 1;
    store_read_end(&w->t);
    return rc;
}

/* Reads the user's mailboxes (all, or --mailbox's) and the file names of their messages. */
static int watch_start(watch *w, const char *user, const char *mailbox, bool since_given,
                       uint64_t since)
{
    int rc = store_read_begin(w->s, &w->t);
    if (rc) {
        cli_error("watch: cannot read store '%s': %s", store_dir(w->s), store_strerror(rc));
        return cli_exit_code(rc);
    }
    int ex = EX_OK;
    uint64_t now = store_change_seq(w->t);
    store_mailbox mb;
    if (mailbox && (rc = store_mailbox_get(w->t, w->user, mailbox, &mb)) == 0) w->only = mb.id;
    if (rc == -ENOENT) {
        cli_error("watch: user '%s' has no mailbox '%s': 'mailfs mailbox list %s' shows them", user,
                  mailbox, user);
        ex = EX_NOINPUT;
    } else if (since_given && since > now) {
        cli_error("watch: --since %" PRIu64 " is past the newest change of store '%s' (%" PRIu64
                  "): give a SEQ that watch printed for this store",
                  since, store_dir(w->s), now);
        ex = EX_USAGE;
    } else if (rc == 0 && (rc = store_mailbox_list(w->t, w->user, remember_mbox, w)) != 0) {
        cli_error("watch: cannot read the mailboxes of '%s': %s", user, store_strerror(rc));
        ex = cli_exit_code(rc);
    } else if (rc) {
        cli_error("watch: cannot read mailbox '%s': %s", mailbox, store_strerror(rc));
        ex = cli_exit_code(rc);
    }
    w->last = since_given ? since : now;
    store_read_end(&w->t);
    /* where a script that restarts later resumes from, if it has seen no change yet */
    if (ex == EX_OK)
        fprintf(stderr, "mailfs: watch: changes of '%s'%s%s%s after position %" PRIu64 "\n", user,
                mailbox ? " in '" : "", mailbox ? mailbox : "", mailbox ? "'" : "", w->last);
    return ex;
}

int cmd_watch(cli *c, int argc, char **argv)
{
    const char *mailbox = NULL, *user = NULL, *mount = NULL;
    bool json = false, since_given = false;
    uint64_t since = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            watch_usage(stdout);
            return EX_OK;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if ((!strcmp(a, "--mailbox") || !strcmp(a, "--since") || !strcmp(a, "--mount")) &&
                   i + 1 < argc) {
            const char *v = argv[++i];
            if (a[2] == 'm' && a[3] == 'a')
                mailbox = v;
            else if (a[2] == 'm')
                mount = v;
            else {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (!*v || *end || errno || *v == '-') {
                    cli_error("watch: --since takes a change position (a SEQ watch printed), "
                              "not '%s'",
                              v);
                    return EX_USAGE;
                }
                since = n;
                since_given = true;
            }
        } else if (a[0] == '-') {
            cli_error("watch: unknown option '%s' (or it lacks its value): see 'mailfs watch "
                      "--help'",
                      a);
            return EX_USAGE;
        } else if (user) {
            cli_error("watch: one user only, not '%s' too: see 'mailfs watch --help'", a);
            return EX_USAGE;
        } else {
            user = a;
        }
    }
    if (!user) {
        cli_error("watch: give the user whose mail to watch: mailfs watch USER");
        return EX_USAGE;
    }
    watch w = {.json = json, .mount = mount};
    int rc = cli_open_store(c, STORE_OPEN_RDONLY, &w.s);
    if (rc) return rc;
    int ex = cli_user_id(w.s, user, &w.user);
    if (ex == EX_OK) ex = watch_start(&w, user, mailbox, since_given, since);
    while (ex == EX_OK) {
        rc = watch_pass(&w, user);
        if (rc == 1) {
            cli_error("watch: user '%s' was deleted: nothing more to watch", user);
            ex = EX_NOUSER;
        } else if (rc) {
            cli_error("watch: cannot read the change feed of store '%s': %s", store_dir(w.s),
                      store_strerror(rc));
            ex = cli_exit_code(rc);
        } else if ((rc = store_wait_change(w.s, w.last, -1)) != 0 && rc != -ETIMEDOUT) {
            cli_error("watch: cannot wait for changes: %s%s", store_strerror(rc),
                      rc == -ENOSPC ? " (the inotify watches of this user are used up: raise "
                                      "fs.inotify.max_user_watches)"
                                    : "");
            ex = cli_exit_code(rc);
        }
    }
    watch_free(&w);
    store_close(&w.s);
    return ex;
}
