/* cmd_append.c: APPEND and MULTIAPPEND (all messages in one transaction), with APPENDUID and
 * CATENATE (RFC 4469) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fetch.h"
#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_seqset.h"
#include "imap/imap_url.h"

#define IMAP_CATENATE_PARTS 100 /* TEXT and URL parts of one CATENATE */

typedef struct append_one {
    const char *data;
    size_t len;
    const imap_arg *cat; /* CATENATE's part list, or NULL */
    mfs_buf built;       /* the message CATENATE made */
    uint32_t flags;
    char *keywords;
    int64_t date;
    int tz;
} append_one;

typedef struct append_ctx {
    const imap_client *c;
    uint32_t user_id;
    const char *name;
    uint64_t max;               /* the store's message limit */
    char badurl[200], why[160]; /* a CATENATE URL that names nothing, and why */
    append_one *msgs;
    size_t n;
    uint32_t *uids;
    uint32_t uidvalidity;
    size_t failed_at;
} append_ctx;

/* A URL part that names nothing: -EBADMSG, with what to tell the client. */
static int bad_url(append_ctx *x, const imap_arg *url, const char *why)
{
    size_t n = 0;
    for (size_t i = 0; i < url->len && n + 1 < sizeof x->badurl; i++) {
        char ch = url->str[i]; /* BADURL's text may not hold ']' or line ends (RFC 4469) */
        x->badurl[n++] = ch == ']' || ch == '\r' || ch == '\n' || ch == '\0' ? '?' : ch;
    }
    x->badurl[n] = '\0';
    snprintf(x->why, sizeof x->why, "%s", why);
    return -EBADMSG;
}

/* Runs CV over SRC[0, LEN) into OUT, the partial U asks for. */
static int section_text(append_ctx *x, imap_conv *cv, const char *src, size_t len,
                        const imap_url *u, mfs_buf *out)
{
    if (u->partial && u->partial_off > 0) { /* skip to the offset in the section's text */
        uint64_t skip = u->partial_off;
        while (skip > 0 && !imap_conv_done(cv, len)) {
            size_t step = skip > (1u << 20) ? 1u << 20 : (size_t)skip;
            skip -= imap_conv_run(cv, src, len, NULL, step);
        }
    }
    uint64_t want = u->partial && u->partial_len ? u->partial_len : UINT64_MAX;
    while (want > 0 && !imap_conv_done(cv, len)) {
        size_t step = want > 65536 ? 65536 : (size_t)want;
        want -= imap_conv_run(cv, src, len, out, step);
        if (out->len > x->max) return -EFBIG;
    }
    return 0;
}

/* Appends to OUT the text URL names in one of the user's mailboxes, as FETCH BODY.PEEK[section]
 * <partial> would send it. */
static int url_text(store_txn *w, append_ctx *x, const imap_arg *arg, mfs_buf *out)
{
    imap_url u;
    const char *why;
    if (imap_url_parse(arg->str, arg->len, &u, &why) < 0) return bad_url(x, arg, why);
    if (u.user[0] && strcmp(u.user, x->c->user) != 0)
        return bad_url(x, arg, "the URL names another user's mail");
    char name[STORE_NAME_MAX + 1];
    store_mailbox mb;
    if (imap_mailbox_decode(x->c, u.mailbox, strlen(u.mailbox), false, name, sizeof name) < 0 ||
        store_mailbox_get(w, x->user_id, name, &mb) < 0)
        return bad_url(x, arg, "the URL's mailbox does not exist");
    if (u.uidvalidity && u.uidvalidity != mb.uidvalidity)
        return bad_url(x, arg, "the URL's UIDVALIDITY is not the mailbox's");
    store_msg m;
    const char *data;
    size_t dlen;
    if (store_msg_get(w, mb.id, u.uid, &m) < 0 || store_msg_body(w, &m, &data, &dlen) < 0)
        return bad_url(x, arg, "the URL's message does not exist");
    const void *blob = NULL;
    size_t bl = 0;
    if (store_msg_summary(w, &m, &blob, &bl) < 0) blob = NULL;
    imap_fetch_item it;
    if (imap_fetch_section_parse(&it, u.section, strlen(u.section)) < 0) {
        imap_fetch_item_free(&it);
        return bad_url(x, arg, "the URL's SECTION is not a section of a message");
    }
    imap_conv cv;
    size_t off, len;
    int rc = imap_section_source(&it, data, dlen, blob, bl, &cv, &off, &len);
    if (rc == 0) rc = section_text(x, &cv, data + off, len, &u, out);
    imap_fetch_item_free(&it); /* after the converter, which reads its field names */
    return rc == -ENOENT || rc == -EPROTO
               ? bad_url(x, arg, "the URL's SECTION names no part of the message")
               : rc;
}

/* The message a CATENATE part list makes, into M->built. */
static int catenate(store_txn *w, append_ctx *x, append_one *m)
{
    mfs_buf_truncate(&m->built, 0);
    mfs_buf_puts(&m->built, "");
    for (size_t i = 0; i + 1 < m->cat->count; i += 2) {
        const imap_arg *v = &m->cat->list[i + 1];
        if (imap_arg_is_atom(&m->cat->list[i], "TEXT")) {
            mfs_buf_append(&m->built, v->str, v->len);
        } else {
            int rc = url_text(w, x, v, &m->built);
            if (rc < 0) return rc;
        }
        if (m->built.len > x->max) return -EFBIG;
    }
    m->data = m->built.data;
    m->len = m->built.len;
    return 0;
}

/* CATENATE's list: TEXT literal and URL string pairs, at least one, at most
 * IMAP_CATENATE_PARTS; -1 after answering BAD. */
static int catenate_check(imap_client *c, const imap_arg *l)
{
    if (l->count == 0 || l->count % 2 != 0 || l->count > 2 * IMAP_CATENATE_PARTS) {
        imap_bad(c, "CATENATE takes 1 to %d parts: (TEXT literal URL \"/mailbox/;UID=n\" ...)",
                 IMAP_CATENATE_PARTS);
        return -1;
    }
    for (size_t i = 0; i < l->count; i += 2) {
        const imap_arg *k = &l->list[i], *v = &l->list[i + 1];
        if (imap_arg_is_atom(k, "TEXT") && v->type == IMAP_ARG_LITERAL) continue;
        if (imap_arg_is_atom(k, "URL") && imap_arg_is_string(v)) continue;
        imap_bad(c, "CATENATE part %zu is neither TEXT literal nor URL string", i / 2 + 1);
        return -1;
    }
    return 0;
}

static int append_tx(store_txn *w, void *ctx)
{
    append_ctx *x = ctx;
    store_mailbox mb;
    int rc = store_mailbox_get(w, x->user_id, x->name, &mb);
    if (rc < 0) return rc;
    x->uidvalidity = mb.uidvalidity;
    for (size_t i = 0; i < x->n; i++) {
        append_one *m = &x->msgs[i];
        if (m->cat && (rc = catenate(w, x, m)) < 0) {
            x->failed_at = i;
            return rc;
        }
        store_append opt = {.flags = m->flags,
                            .keywords = m->keywords[0] ? m->keywords : NULL,
                            .internaldate = m->date,
                            .tz_min = (int16_t)m->tz};
        store_msg out;
        rc = store_msg_append(w, mb.id, m->data, m->len, &opt, &out);
        if (rc < 0) {
            x->failed_at = i;
            return rc;
        }
        x->uids[i] = out.uid;
    }
    return 0;
}

void imap_cmd_append(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    if (nargs < 2) {
        imap_bad(c, "usage: APPEND mailbox [(flags)] [date-time] literal");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    append_ctx x = {.c = c, .user_id = c->user_id, .name = name, .max = store_msg_max(c->srv->st)};
    x.msgs = calloc(nargs, sizeof(append_one));
    x.uids = calloc(nargs, sizeof(uint32_t));
    if (!x.msgs || !x.uids) abort();
    size_t i = 1;
    while (i < nargs) {
        append_one *m = &x.msgs[x.n];
        mfs_buf kw = {0};
        mfs_buf_puts(&kw, "");
        if (args[i].type == IMAP_ARG_LIST) {
            if (imap_flags_parse(c, &args[i], &m->flags, &kw) < 0) {
                mfs_buf_free(&kw);
                goto out;
            }
            i++;
        }
        m->keywords = kw.data;
        x.n++;
        if (i < nargs && args[i].type == IMAP_ARG_STRING) {
            if (imap_date_time_parse(args[i].str, &m->date, &m->tz) < 0) {
                imap_bad(c, "invalid date-time '%.40s'", args[i].str);
                goto out;
            }
            i++;
        }
        /* RFC 6855: UTF8 (~{n}) from UTF8=ACCEPT clients */
        const imap_arg *lit = i < nargs ? &args[i] : NULL;
        if (lit && imap_arg_is_atom(lit, "CATENATE") && i + 1 < nargs &&
            args[i + 1].type == IMAP_ARG_LIST) {
            if (catenate_check(c, &args[i + 1]) < 0) goto out;
            m->cat = &args[i + 1];
            i += 2;
            continue;
        }
        if (lit && imap_arg_is_atom(lit, "UTF8") && i + 1 < nargs &&
            args[i + 1].type == IMAP_ARG_LIST && args[i + 1].count == 1) {
            lit = &args[i + 1].list[0];
            i++;
        }
        if (!lit || lit->type != IMAP_ARG_LITERAL) {
            imap_bad(c, "APPEND needs the message as a literal");
            goto out;
        }
        m->data = lit->str;
        m->len = lit->len;
        i++;
    }
    int rc = store_write(c->srv->st, append_tx, &x);
    if (rc == -EBADMSG) {
        imap_no(c, "[BADURL %s] %s; nothing was appended", x.badurl, x.why);
    } else if (rc == -EFBIG) {
        imap_no(c, "[TOOBIG] the message would be larger than %llu bytes; nothing was appended",
                (unsigned long long)x.max);
    } else if (rc == -ENOENT) {
        imap_no(c, "[TRYCREATE] no such mailbox '%.200s'", name);
    } else if (rc < 0) {
        imap_no_store(c, rc, name);
    } else {
        mfs_buf set = {0};
        /* UIDs of one transaction are ascending */
        imap_seqset_format(&set, x.uids, x.n);
        imap_ok(c, "[APPENDUID %u %s] APPEND completed", x.uidvalidity, set.data);
        mfs_buf_free(&set);
    }
out:
    for (size_t k = 0; k < x.n; k++) {
        free(x.msgs[k].keywords);
        mfs_buf_free(&x.msgs[k].built);
    }
    free(x.msgs);
    free(x.uids);
}
