/* cmd_lsub.c: LSUB (IMAP4rev1): the subscribed mailboxes matching a pattern */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

void imap_cmd_lsub(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    char ref[STORE_NAME_MAX + 1], pat[STORE_NAME_MAX + 1], full[2 * STORE_NAME_MAX + 2];
    if (nargs != 2) {
        imap_bad(c, "usage: LSUB reference pattern");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], ref, sizeof(ref)) < 0 ||
        imap_mailbox_arg(c, &args[1], pat, sizeof(pat)) < 0)
        return;
    snprintf(full, sizeof(full), "%s%s", ref, pat);
    if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == '/'))
        memcpy(full, "INBOX", 5);
    store_txn *t;
    store_mailbox *mbs = NULL;
    size_t n = 0;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc == 0) {
        rc = imap_mailboxes(c, t, &mbs, &n);
        store_read_end(&t);
    }
    if (rc < 0) {
        imap_no_store(c, rc, "LSUB");
        return;
    }
    char *pats[1] = {full};
    for (size_t m = 0; m < n; m++) {
        if (!imap_pattern_match(full, mbs[m].name)) continue;
        /* RFC 3501 6.3.9: a parent that '%' stops at, with subscribed children, is \Noselect */
        bool parent = !mbs[m].subscribed && imap_hidden_subscribed_child(mbs, n, m, pats, 1);
        if (!mbs[m].subscribed && !parent) continue;
        /* a subscribed name that no mailbox has (deleted, or never made) cannot be selected
         * either: \Noselect, as Dovecot answers with its tb-lsub-flags workaround */
        bool noselect = parent || mbs[m].id == 0;
        imap_buf_puts(&c->out, noselect ? "* LSUB (\\Noselect) \"/\" " : "* LSUB () \"/\" ");
        imap_mailbox_put(c, &c->out, mbs[m].name);
        imap_buf_puts(&c->out, "\r\n");
    }
    free(mbs);
    imap_ok(c, "LSUB completed");
}
