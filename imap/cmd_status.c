/* cmd_status.c: STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE DELETED HIGHESTMODSEQ
 * MAILBOXID) */
#include <strings.h>

#include "imap/imap_int.h"

static const struct {
    const char *name;
    unsigned bit;
} items_tab[] = {
    {"MESSAGES", IMAP_STATUS_MESSAGES},       {"UIDNEXT", IMAP_STATUS_UIDNEXT},
    {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY}, {"UNSEEN", IMAP_STATUS_UNSEEN},
    {"RECENT", IMAP_STATUS_RECENT},           {"SIZE", IMAP_STATUS_SIZE},
    {"DELETED", IMAP_STATUS_DELETED},         {"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
    {"MAILBOXID", IMAP_STATUS_MAILBOXID},
};

int imap_status_items(imap_client *c, const imap_arg *list, unsigned *items)
{
    *items = 0;
    if (!list || list->type != IMAP_ARG_LIST || list->count == 0) {
        imap_bad(c, "STATUS needs a list of items");
        return -1;
    }
    for (size_t i = 0; i < list->count; i++) {
        const imap_arg *a = &list->list[i];
        size_t k;
        for (k = 0; k < sizeof(items_tab) / sizeof(items_tab[0]); k++)
            if (imap_arg_is_atom(a, items_tab[k].name)) break;
        if (k == sizeof(items_tab) / sizeof(items_tab[0])) {
            imap_bad(c, "unknown STATUS item '%.40s'", a->str);
            return -1;
        }
        *items |= items_tab[k].bit;
    }
    if (*items & IMAP_STATUS_HIGHESTMODSEQ) imap_condstore_on(c); /* RFC 7162 3.1 */
    return 0;
}

static int count_cb(void *ctx, const store_msg *m)
{
    (*(uint32_t *)ctx)++;
    return 0;
}

void imap_status_put(imap_client *c, store_txn *t, const store_mailbox *mb, unsigned items)
{
    mfs_buf *o = &c->out;
    mfs_buf_puts(o, "* STATUS ");
    imap_mailbox_put(c, o, mb->name);
    mfs_buf_puts(o, " (");
    const char *sp = "";
    if (items & IMAP_STATUS_MESSAGES) {
        mfs_buf_printf(o, "%sMESSAGES %u", sp, mb->messages);
        sp = " ";
    }
    if (items & IMAP_STATUS_UIDNEXT) {
        mfs_buf_printf(o, "%sUIDNEXT %u", sp, mb->uidnext);
        sp = " ";
    }
    if (items & IMAP_STATUS_UIDVALIDITY) {
        mfs_buf_printf(o, "%sUIDVALIDITY %u", sp, mb->uidvalidity);
        sp = " ";
    }
    if (items & IMAP_STATUS_UNSEEN) {
        mfs_buf_printf(o, "%sUNSEEN %u", sp, mb->unseen);
        sp = " ";
    }
    if (items & IMAP_STATUS_RECENT) {
        /* messages no session has taken as recent yet */
        uint32_t n = 0;
        if (t) store_msg_list(t, mb->id, imap_recent_claimed(c->srv, mb->id) + 1, count_cb, &n);
        mfs_buf_printf(o, "%sRECENT %u", sp, n);
        sp = " ";
    }
    if (items & IMAP_STATUS_SIZE) {
        /* RFC 8438: the sum of RFC822.SIZE, which counts bare LF as CRLF; kept by the store */
        mfs_buf_printf(o, "%sSIZE %llu", sp, (unsigned long long)mb->crlf_bytes);
        sp = " ";
    }
    if (items & IMAP_STATUS_DELETED) {
        mfs_buf_printf(o, "%sDELETED %u", sp, mb->deleted);
        sp = " ";
    }
    if (items & IMAP_STATUS_HIGHESTMODSEQ) {
        /* the store keeps it >= 1: a client never sees 0, which means "no mod-sequences" */
        mfs_buf_printf(o, "%sHIGHESTMODSEQ %llu", sp, (unsigned long long)mb->highestmodseq);
        sp = " ";
    }
    if (items & IMAP_STATUS_MAILBOXID) {
        mfs_buf_printf(o, "%sMAILBOXID (", sp);
        imap_mailboxid_put(o, mb->id, mb->uidvalidity);
        mfs_buf_putc(o, ')');
        sp = " ";
    }
    mfs_buf_puts(o, ")\r\n");
}

void imap_cmd_status(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    unsigned items;
    if (nargs != 2) {
        imap_bad(c, "usage: STATUS mailbox (items)");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0 ||
        imap_status_items(c, &args[1], &items) < 0)
        return;
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    store_mailbox mb;
    if (rc < 0) {
        imap_no_store(c, rc, name);
        return;
    }
    rc = store_mailbox_get(t, c->user_id, name, &mb);
    if (rc < 0) {
        store_read_end(&t);
        imap_no_store(c, rc, name);
        return;
    }
    imap_status_put(c, t, &mb, items);
    store_read_end(&t);
    imap_ok(c, "STATUS completed");
}
