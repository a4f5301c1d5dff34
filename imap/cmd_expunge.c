/* cmd_expunge.c: EXPUNGE and UID EXPUNGE; the shared expunge step also serves CLOSE */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct expunge_ctx {
    uint32_t mailbox_id;
    const uint32_t *cand; /* candidate UIDs (the view, or the UID set) */
    size_t ncand;
    uint32_t *done;
    size_t ndone;
} expunge_ctx;

static int expunge_tx(store_txn *w, void *ctx)
{
    expunge_ctx *x = ctx;
    x->ndone = 0;
    for (size_t i = 0; i < x->ncand; i++) {
        store_msg m;
        if (store_msg_get(w, x->mailbox_id, x->cand[i], &m) < 0 || !(m.flags & STORE_F_DELETED))
            continue;
        int rc = store_msg_expunge(w, x->mailbox_id, x->cand[i]);
        if (rc < 0) return rc;
        x->done[x->ndone++] = x->cand[i];
    }
    return 0;
}

/* Expunges the \Deleted messages among CAND; announces them unless SILENT. */
int imap_expunge_run(imap_client *c, const uint32_t *cand, size_t ncand, bool silent)
{
    expunge_ctx x = {.mailbox_id = c->sel.mailbox_id, .cand = cand, .ncand = ncand};
    x.done = malloc((ncand ? ncand : 1) * sizeof(uint32_t));
    if (!x.done) abort();
    int rc = store_write(c->srv->st, expunge_tx, &x);
    if (rc == 0 && !silent) {
        for (size_t i = x.ndone; i-- > 0;) {
            uint32_t seq = imap_sync_remove(c, x.done[i]);
            if (seq) imap_buf_printf(&c->out, "* %u EXPUNGE\r\n", seq);
        }
    }
    free(x.done);
    return rc;
}

void imap_cmd_expunge(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                      bool uid)
{
    if (c->sel.readonly) {
        imap_no(c, "[READ-ONLY] mailbox is read-only");
        return;
    }
    uint32_t *uids = NULL, *seqs = NULL;
    size_t n = 0;
    if (uid) {
        if (nargs != 1 || imap_set_resolve(c, &args[0], true, &uids, &seqs, &n) < 0) {
            if (nargs != 1) imap_bad(c, "usage: UID EXPUNGE set");
            return;
        }
    } else {
        if (nargs) {
            imap_bad(c, "EXPUNGE takes no arguments");
            return;
        }
        n = c->sel.n;
        uids = malloc((n ? n : 1) * sizeof(uint32_t));
        if (!uids) abort();
        if (n) memcpy(uids, c->sel.uids, n * sizeof(uint32_t));
    }
    int rc = imap_expunge_run(c, uids, n, false);
    free(uids);
    free(seqs);
    if (rc < 0)
        imap_no_store(c, rc, "EXPUNGE");
    else
        imap_ok(c, "EXPUNGE completed");
}
