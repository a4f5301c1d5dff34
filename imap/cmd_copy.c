/* cmd_copy.c: COPY and MOVE (and their UID forms), with COPYUID */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "imap/imap_seqset.h"

typedef struct copy_ctx {
    uint32_t user_id, src_id;
    const char *dst;
    bool move;
    const uint32_t *uids;
    size_t n;
    uint32_t *src, *dstuids;
    size_t ndone;
    uint32_t uidvalidity;
} copy_ctx;

static int copy_tx(store_txn *w, void *ctx)
{
    copy_ctx *x = ctx;
    x->ndone = 0;
    store_mailbox mb;
    int rc = store_mailbox_get(w, x->user_id, x->dst, &mb);
    if (rc < 0) return rc;
    x->uidvalidity = mb.uidvalidity;
    for (size_t i = 0; i < x->n; i++) {
        store_msg out;
        rc = x->move ? store_msg_move(w, x->src_id, x->uids[i], mb.id, NULL, &out)
                     : store_msg_copy(w, x->src_id, x->uids[i], mb.id, NULL, &out);
        if (rc == -ENOENT) continue;
        if (rc < 0) return rc;
        x->src[x->ndone] = x->uids[i];
        x->dstuids[x->ndone++] = out.uid;
    }
    return 0;
}

void imap_cmd_copy(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    bool move = strcmp(cmd->name, "MOVE") == 0 ||
                (uid && cmd->nargs && imap_arg_is_atom(&cmd->args[0], "MOVE"));
    char name[STORE_NAME_MAX + 1];
    if (nargs != 2) {
        imap_bad(c, "usage: %s set mailbox", move ? "MOVE" : "COPY");
        return;
    }
    if (imap_mailbox_arg(c, &args[1], name, sizeof(name)) < 0) return;
    if (move && c->sel.readonly) {
        imap_no(c, "[READ-ONLY] mailbox is read-only");
        return;
    }
    uint32_t *uids, *seqs;
    size_t n;
    if (imap_set_resolve(c, &args[0], uid, &uids, &seqs, &n) < 0) return;
    copy_ctx x = {.user_id = c->user_id,
                  .src_id = c->sel.mailbox_id,
                  .dst = name,
                  .move = move,
                  .uids = uids,
                  .n = n};
    x.src = malloc((n ? n : 1) * sizeof(uint32_t));
    x.dstuids = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!x.src || !x.dstuids) abort();
    int rc = store_write(c->srv->st, copy_tx, &x);
    if (rc == -ENOENT) {
        imap_no(c, "[TRYCREATE] no such mailbox '%.200s'", name);
    } else if (rc < 0) {
        imap_no_store(c, rc, name);
    } else {
        imap_buf code = {0};
        if (x.ndone) {
            imap_buf_printf(&code, "[COPYUID %u ", x.uidvalidity);
            imap_seqset_format(&code, x.src, x.ndone);
            imap_buf_putc(&code, ' ');
            imap_seqset_format(&code, x.dstuids, x.ndone);
            imap_buf_puts(&code, "] ");
        } else {
            imap_buf_puts(&code, "");
        }
        if (move) {
            if (x.ndone) imap_buf_printf(&c->out, "* OK %smoved\r\n", code.data);
            for (size_t i = x.ndone; i-- > 0;) {
                uint32_t seq = imap_sync_remove(c, x.src[i]);
                if (seq) imap_buf_printf(&c->out, "* %u EXPUNGE\r\n", seq);
            }
            imap_ok(c, "MOVE completed");
        } else if (x.ndone < n && !uid) {
            imap_no(c, "[EXPUNGEISSUED] some messages were expunged");
        } else {
            imap_ok(c, "%sCOPY completed", code.data);
        }
        imap_buf_free(&code);
    }
    free(x.src);
    free(x.dstuids);
    free(uids);
    free(seqs);
}
