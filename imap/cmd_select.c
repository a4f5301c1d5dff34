/* cmd_select.c: SELECT and EXAMINE */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct select_ctx {
    imap_client *c;
    uint32_t first_unseen;
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
    if (c->state == IMAP_ST_SELECTED) {
        imap_unselect(c);
        imap_buf_puts(&c->out, "* OK [CLOSED] previous mailbox closed\r\n");
    }
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        imap_no_store(c, rc, name);
        return;
    }
    store_mailbox mb;
    rc = store_mailbox_get(t, c->user_id, name, &mb);
    if (rc < 0) {
        store_read_end(&t);
        imap_no_store(c, rc, name);
        return;
    }
    select_ctx x = {.c = c};
    c->sel.mailbox_id = mb.id;
    c->sel.uidvalidity = mb.uidvalidity;
    c->sel.readonly = examine;
    c->sel.feed_pos = store_change_seq(t);
    rc = store_msg_list(t, mb.id, 1, list_cb, &x);
    store_read_end(&t);
    if (rc < 0) {
        imap_unselect(c);
        imap_no_store(c, rc, name);
        return;
    }
    c->state = IMAP_ST_SELECTED;
    imap_buf *o = &c->out;
    imap_keywords_put(c);
    imap_buf_printf(o, "* %zu EXISTS\r\n", c->sel.n);
    if (!c->rev2) {
        imap_buf_printf(o, "* %zu RECENT\r\n", c->sel.nrecent);
        if (x.first_unseen) imap_buf_printf(o, "* OK [UNSEEN %u] first unseen\r\n", x.first_unseen);
    }
    imap_buf_printf(o, "* OK [UIDVALIDITY %u] UIDs valid\r\n", mb.uidvalidity);
    imap_buf_printf(o, "* OK [UIDNEXT %u] predicted next UID\r\n", mb.uidnext);
    if (c->rev2) {
        imap_buf_puts(o, "* LIST () \"/\" ");
        imap_mailbox_put(c, o, mb.name);
        imap_buf_puts(o, "\r\n");
    }
    imap_ok(c, "[%s] %s completed", examine ? "READ-ONLY" : "READ-WRITE", cmd->name);
}
