/* cmd_select.c: SELECT and EXAMINE, with the CONDSTORE and QRESYNC parameters (RFC 7162) */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct select_ctx {
    imap_client *c;
    uint32_t first_unseen;
    imap_qresync *qr; /* QRESYNC with a matching UIDVALIDITY, or NULL */
} select_ctx;

static int list_cb(void *ctx, const store_msg *m)
{
    select_ctx *x = ctx;
    imap_selected *s = &x->c->sel;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        uint32_t *p = realloc(s->uids, s->cap * sizeof(uint32_t));
        if (!p) abort();
        s->uids = p;
    }
    s->uids[s->n++] = m->uid;
    imap_recent_claim(x->c, m->uid);
    if (!x->first_unseen && !(m->flags & STORE_F_SEEN)) x->first_unseen = (uint32_t)s->n;
    if (m->keywords && m->keywords[0]) imap_keywords_add(s, m->keywords);
    if (x->qr) imap_qresync_note(x->qr, m, (uint32_t)s->n);
    return 0;
}

/* Parses SELECT's parameter list A (RFC 4466 select-params): CONDSTORE, QRESYNC (...).
 * Returns 0, or -1 after answering BAD. */
static int select_params(imap_client *c, const imap_arg *a, bool *condstore, imap_qresync *qr,
                         bool *has_qr)
{
    if (a->type != IMAP_ARG_LIST) {
        imap_bad(c, "SELECT's parameters go in a list: (CONDSTORE) or (QRESYNC (...))");
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const imap_arg *p = &a->list[i];
        if (imap_arg_is_atom(p, "CONDSTORE")) {
            *condstore = true;
        } else if (imap_arg_is_atom(p, "QRESYNC") && !*has_qr) {
            if (i + 1 >= a->count) {
                imap_bad(c, "QRESYNC needs its list (uidvalidity modseq ...)");
                return -1;
            }
            if (imap_qresync_parse(c, &a->list[++i], qr) < 0) return -1;
            *has_qr = true;
        } else {
            imap_bad(c, "unknown SELECT parameter '%.40s'",
                     p->type == IMAP_ARG_LIST ? "(list)" : p->str);
            return -1;
        }
    }
    return 0;
}

void imap_cmd_select(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    bool examine = strcmp(cmd->name, "EXAMINE") == 0;
    char name[STORE_NAME_MAX + 1];
    if (nargs < 1 || nargs > 2) {
        imap_bad(c, "usage: %s mailbox", cmd->name);
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    bool condstore = false, has_qr = false;
    imap_qresync qr = {0};
    if (nargs == 2) {
        if (select_params(c, &args[1], &condstore, &qr, &has_qr) < 0) {
            imap_qresync_free(&qr);
            return;
        }
    }
    if (c->state == IMAP_ST_SELECTED) {
        imap_unselect(c);
        mfs_buf_puts(&c->out, "* OK [CLOSED] previous mailbox closed\r\n");
    }
    /* CONDSTORE is on before the answer, so the answer already carries what it asks for */
    if (condstore || has_qr) c->condstore = true;
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        imap_qresync_free(&qr);
        imap_no_store(c, rc, name);
        return;
    }
    store_mailbox mb;
    rc = store_mailbox_get(t, c->user_id, name, &mb);
    if (rc < 0) {
        store_read_end(&t);
        imap_qresync_free(&qr);
        imap_no_store(c, rc, name);
        return;
    }
    /* a QRESYNC for another UIDVALIDITY is a plain SELECT (RFC 7162 3.2.5) */
    select_ctx x = {.c = c, .qr = has_qr && qr.uidvalidity == mb.uidvalidity ? &qr : NULL};
    c->sel.mailbox_id = mb.id;
    c->sel.uidvalidity = mb.uidvalidity;
    c->sel.readonly = examine;
    c->sel.feed_pos = store_change_seq(t);
    c->sel.highestmodseq = mb.highestmodseq;
    rc = store_msg_list(t, mb.id, 1, list_cb, &x);
    if (rc < 0) {
        store_read_end(&t);
        imap_qresync_free(&qr);
        imap_unselect(c);
        imap_no_store(c, rc, name);
        return;
    }
    c->state = IMAP_ST_SELECTED;
    mfs_buf *o = &c->out;
    imap_keywords_put(c);
    mfs_buf_printf(o, "* %zu EXISTS\r\n", c->sel.n);
    if (!c->rev2) {
        mfs_buf_printf(o, "* %zu RECENT\r\n", c->sel.nrecent);
        if (x.first_unseen) mfs_buf_printf(o, "* OK [UNSEEN %u] first unseen\r\n", x.first_unseen);
    }
    mfs_buf_printf(o, "* OK [UIDVALIDITY %u] UIDs valid\r\n", mb.uidvalidity);
    mfs_buf_printf(o, "* OK [UIDNEXT %u] predicted next UID\r\n", mb.uidnext);
    mfs_buf_puts(o, "* OK [MAILBOXID (");
    imap_mailboxid_put(o, mb.id, mb.uidvalidity);
    mfs_buf_puts(o, ")] the mailbox's object id\r\n");
    /* always, not only after CONDSTORE is on: never 0 (the store keeps it >= 1) */
    mfs_buf_printf(o, "* OK [HIGHESTMODSEQ %llu] highest mod-sequence\r\n",
                   (unsigned long long)mb.highestmodseq);
    if (c->rev2) {
        mfs_buf_puts(o, "* LIST () \"/\" ");
        imap_mailbox_put(c, o, mb.name);
        mfs_buf_puts(o, "\r\n");
    }
    if (x.qr) rc = imap_qresync_answer(c, t, x.qr);
    store_read_end(&t);
    imap_qresync_free(&qr);
    if (rc < 0) { /* the client must not take the mailbox as in step with it */
        imap_unselect(c);
        imap_no_store(c, rc, name);
        return;
    }
    imap_ok(c, "[%s] %s completed", examine ? "READ-ONLY" : "READ-WRITE", cmd->name);
}
