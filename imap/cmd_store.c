/* cmd_store.c: STORE and UID STORE (FLAGS, +FLAGS, -FLAGS, and .SILENT) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

typedef struct store_res {
    uint32_t uid, seq, flags;
    uint64_t modseq;
    size_t kw_off; /* into the keywords buffer */
} store_res;

typedef struct store_ctx {
    uint32_t mailbox_id;
    int op;
    uint32_t flags;
    const char *keywords;
    const uint32_t *uids, *seqs;
    size_t n;
    store_res *res;
    size_t nres;
    imap_buf kws;
} store_ctx;

static int store_tx(store_txn *w, void *ctx)
{
    store_ctx *x = ctx;
    x->nres = 0;
    x->kws.len = 0;
    for (size_t i = 0; i < x->n; i++) {
        store_msg out;
        int rc = store_msg_set_flags(w, x->mailbox_id, x->uids[i], x->op, x->flags, x->keywords, 0,
                                     &out);
        if (rc == -ENOENT) continue; /* expunged meanwhile; announced later */
        if (rc < 0) return rc;
        store_res *r = &x->res[x->nres++];
        r->uid = x->uids[i];
        r->seq = x->seqs[i];
        r->flags = out.flags;
        r->modseq = out.modseq;
        r->kw_off = x->kws.len;
        imap_buf_puts(&x->kws, out.keywords ? out.keywords : "");
        imap_buf_putc(&x->kws, '\0');
    }
    return 0;
}

void imap_cmd_store(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    if (nargs != 3 || args[1].type != IMAP_ARG_ATOM) {
        imap_bad(c, "usage: STORE set [+|-]FLAGS[.SILENT] (flags)");
        return;
    }
    const char *item = args[1].str;
    store_ctx x = {.mailbox_id = c->sel.mailbox_id, .op = STORE_FLAGS_SET};
    if (item[0] == '+') {
        x.op = STORE_FLAGS_ADD;
        item++;
    } else if (item[0] == '-') {
        x.op = STORE_FLAGS_DEL;
        item++;
    }
    bool silent;
    if (strcasecmp(item, "FLAGS") == 0)
        silent = false;
    else if (strcasecmp(item, "FLAGS.SILENT") == 0)
        silent = true;
    else {
        imap_bad(c, "unknown STORE item '%.40s'", args[1].str);
        return;
    }
    if (c->sel.readonly) {
        imap_no(c, "[READ-ONLY] mailbox is read-only");
        return;
    }
    imap_buf kw = {0};
    if (imap_flags_parse(c, &args[2], &x.flags, &kw) < 0) {
        imap_buf_free(&kw);
        return;
    }
    uint32_t *uids, *seqs;
    size_t n;
    if (imap_set_resolve(c, &args[0], uid, &uids, &seqs, &n) < 0) {
        imap_buf_free(&kw);
        return;
    }
    x.keywords = kw.len ? kw.data : (x.op == STORE_FLAGS_SET ? "" : NULL);
    x.uids = uids;
    x.seqs = seqs;
    x.n = n;
    x.res = malloc((n ? n : 1) * sizeof(store_res));
    if (!x.res) abort();
    int rc = n ? store_write(c->srv->st, store_tx, &x) : 0;
    if (rc < 0) {
        imap_no_store(c, rc, "STORE");
    } else {
        bool gone = x.nres < n;
        for (size_t i = 0; i < x.nres; i++) {
            store_res *r = &x.res[i];
            imap_sync_own(c, r->modseq);
            if (silent) continue;
            imap_buf_printf(&c->out, "* %u FETCH (FLAGS ", r->seq);
            imap_flags_put_msg(c, &c->out, r->uid, r->flags, x.kws.data + r->kw_off);
            if (uid) imap_buf_printf(&c->out, " UID %u", r->uid);
            imap_buf_puts(&c->out, ")\r\n");
        }
        if (gone && !uid)
            imap_no(c, "[EXPUNGEISSUED] some messages were expunged");
        else
            imap_ok(c, "STORE completed");
    }
    free(x.res);
    imap_buf_free(&x.kws);
    imap_buf_free(&kw);
    free(uids);
    free(seqs);
}
