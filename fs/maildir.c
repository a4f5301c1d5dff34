/* maildir.c: the Maildir view (cur/, new/, tmp/ in every mailbox), where a message's flags are
 * part of its name: names, its directories, lookups by name */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/fs_int.h"

/*
 * cur/BASE:2,LETTERS is the message BASE.eml of the mailbox. The letters are Maildir's, in
 * ASCII order: D \Draft, F \Flagged, P passed ($Forwarded), R \Answered, S \Seen, T \Deleted.
 * Other letters (Dovecot's keyword letters a-z) are accepted and ignored.
 */
static const struct {
    char letter;
    uint32_t flag;
} letters[] = {
    {'D', STORE_F_DRAFT},    {'F', STORE_F_FLAGGED}, {'P', 0},
    {'R', STORE_F_ANSWERED}, {'S', STORE_F_SEEN},    {'T', STORE_F_DELETED},
};
#define FORWARDED "$Forwarded"

unsigned fs_md_which(const char *name)
{
    if (strcmp(name, "cur") == 0) return FS_MD_CUR;
    if (strcmp(name, "new") == 0) return FS_MD_NEW;
    if (strcmp(name, "tmp") == 0) return FS_MD_TMP;
    return 0;
}

/* Whether the space-separated list KEYWORDS holds WORD. */
static bool has_word(const char *keywords, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = keywords; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncasecmp(p, word, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

size_t fs_md_name(const store_msg *msg, char *buf, size_t size)
{
    size_t n = strlen(msg->filename);
    /* "x.EML" has no Maildir name: "x" stands for "x.eml" */
    if (!fs_name_is_message(msg->filename) || memcmp(msg->filename + n - 4, ".eml", 4) != 0 ||
        n - 4 + 3 + 6 + 1 > size)
        return 0;
    memcpy(buf, msg->filename, n - 4);
    size_t len = n - 4;
    memcpy(buf + len, ":2,", 3);
    len += 3;
    for (size_t i = 0; i < sizeof letters / sizeof *letters; i++) {
        bool on = letters[i].flag ? (msg->flags & letters[i].flag) != 0
                                  : has_word(msg->keywords, FORWARDED);
        if (on) buf[len++] = letters[i].letter;
    }
    buf[len] = 0;
    return len;
}

int fs_md_parse(const char *name, char *filename, size_t size, uint32_t *flags, bool *passed)
{
    const char *info = NULL;
    for (const char *p = strstr(name, ":2,"); p; p = strstr(p + 1, ":2,"))
        info = p;
    size_t blen = info ? (size_t)(info - name) : strlen(name);
    *flags = 0;
    *passed = false;
    if (blen + 5 > size) return -ENAMETOOLONG;
    memcpy(filename, name, blen);
    memcpy(filename + blen, ".eml", 5);
    if (!fs_name_is_message(filename) || fs_name_check(filename) != 0) return -EINVAL;
    for (const char *p = info ? info + 3 : ""; *p; p++) {
        for (size_t i = 0; i < sizeof letters / sizeof *letters; i++) {
            if (*p != letters[i].letter) continue;
            if (letters[i].flag)
                *flags |= letters[i].flag;
            else
                *passed = true;
        }
    }
    return 0;
}

char *fs_md_keywords(const char *keywords, bool passed)
{
    size_t n = keywords ? strlen(keywords) : 0;
    char *out = malloc(n + sizeof FORWARDED + 1), *q = out;
    if (!out) return NULL;
    for (const char *p = keywords; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && !(len == sizeof FORWARDED - 1 && strncasecmp(p, FORWARDED, len) == 0)) {
            if (q != out) *q++ = ' ';
            memcpy(q, p, len);
            q += len;
        }
        if (!e) break;
        p = e + 1;
    }
    if (passed) {
        if (q != out) *q++ = ' ';
        memcpy(q, FORWARDED, sizeof FORWARDED - 1);
        q += sizeof FORWARDED - 1;
    }
    *q = 0;
    return out;
}

void fs_mdir_attr(fs_mount *m, const store_mailbox *mb, unsigned which, struct stat *st)
{
    fs_dir_attr(m, mb, st);
    st->st_ino = fs_ino_mdir(mb->id, which);
    st->st_mtim = st->st_ctim;
    st->st_atim = st->st_mtim;
}

int fs_mdir_mailbox(fs_mount *m, store_txn *t, uint64_t mdir, store_mailbox *mb)
{
    if (fs_ino_kind(mdir) != FS_K_MDIR) return -ENOENT;
    return fs_dir_mailbox(m, t, fs_ino_dir(fs_ino_mailbox(mdir)), mb);
}

/* A stored message by its name in cur/ of the Maildir view: the flags in the name must be its
 * flags now, as a name in a real Maildir would be (in any order: what cp copied in as
 * "x:2,SF" is found under that name too, though listed as "x:2,FS"). */
int fs_md_msg(fs_mount *m, store_txn *t, uint64_t mdir, const char *name, store_msg *msg)
{
    char filename[STORE_COMPONENT_MAX + 8], now[STORE_COMPONENT_MAX + 16];
    char nowfile[STORE_COMPONENT_MAX + 8];
    uint32_t flags, nowflags;
    bool passed, nowpassed;
    store_mailbox mb;
    int rc = fs_mdir_mailbox(m, t, mdir, &mb);
    if (rc) return rc;
    if (fs_ino_md_which(mdir) != FS_MD_CUR) return -ENOENT;
    if (fs_md_parse(name, filename, sizeof filename, &flags, &passed) != 0) return -ENOENT;
    rc = store_msg_by_name(t, mb.id, filename, msg);
    if (rc) return rc;
    if (!fs_md_name(msg, now, sizeof now) ||
        fs_md_parse(now, nowfile, sizeof nowfile, &nowflags, &nowpassed) != 0 ||
        nowflags != flags || nowpassed != passed)
        return -ENOENT;
    return 0;
}

int fs_md_target_parse(uint64_t dir, const char *name, fs_md_target *t)
{
    memset(t, 0, sizeof *t);
    if (fs_ino_kind(dir) != FS_K_MDIR || fs_ino_md_which(dir) == FS_MD_TMP) return 0;
    t->dir = fs_ino_dir(fs_ino_mailbox(dir));
    return fs_md_parse(name, t->name, sizeof t->name, &t->flags, &t->passed);
}

int fs_md_set_flags(store_txn *w, uint32_t mailbox_id, uint32_t uid, const fs_md_target *t)
{
    store_msg msg;
    int rc = store_msg_get(w, mailbox_id, uid, &msg);
    if (rc) return rc;
    char *kw = fs_md_keywords(msg.keywords, t->passed);
    if (!kw) return -ENOMEM;
    rc = store_msg_set_flags(w, mailbox_id, uid, STORE_FLAGS_SET, t->flags, kw, 0, NULL);
    free(kw);
    return rc;
}
