/* cmd_store.c: STORE and UID STORE (FLAGS, +FLAGS, -FLAGS, and .SILENT; UNCHANGEDSINCE) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

typedef struct store_res {
    uint32_t uid, seq, flags;
    uint64_t modseq;
    bool changed;  /* this STORE made MODSEQ: its change in the feed is ours */
    size_t kw_off; /* into the keywords buffer */
} store_res;

/* A STORE runs in batches: one write transaction of about IMAP_STEP_MS per step, committed
 * and announced before the loop's other sessions get their turn. Each batch is atomic, the
 * command as a whole is not (RFC 9051 asks no more of STORE). */
typedef struct store_run {
    uint32_t mailbox_id;
    int op;
    uint32_t flags;
    mfs_buf kw;
    bool has_kw; /* KW holds the keywords (else NULL: leave them alone) */
    bool silent, uid;
    bool unchanged;          /* the UNCHANGEDSINCE modifier (RFC 7162 3.1.3)... */
    uint64_t unchangedsince; /* ...with this (0: every message fails the test) */
    uint32_t *modified;      /* the numbers (UIDs for UID STORE) that failed it, ascending */
    size_t nmodified, cap_modified, batch_modified;
    uint32_t *uids, *seqs;
    size_t n, pos, next;
    bool gone; /* some message was expunged meanwhile */
    imap_batch b;
    store_res *res; /* the batch's results */
    size_t nres, cap_res;
    mfs_buf kws;
} store_run;

static void store_run_free(void *p)
{
    store_run *x = p;
    mfs_buf_free(&x->kw);
    mfs_buf_free(&x->kws);
    free(x->uids);
    free(x->seqs);
    free(x->res);
    free(x->modified);
    free(x);
}

static int store_tx(store_txn *w, void *ctx)
{
    store_run *x = ctx;
    x->nres = 0; /* a rerun (the map grew) starts the batch again */
    x->kws.len = 0;
    x->nmodified = x->batch_modified;
    uint64_t base = store_change_seq(w); /* a MODSEQ above it is this transaction's */
    size_t i = x->pos;
    for (; i < x->n; i++) {
        if (i > x->pos && !imap_batch_more(&x->b, i - x->pos)) break;
        store_msg out;
        int rc = -ESTALE; /* UNCHANGEDSINCE 0 fails for every message that exists */
        if (x->unchanged && x->unchangedsince == 0)
            rc = store_msg_get(w, x->mailbox_id, x->uids[i], &out) == -ENOENT ? -ENOENT : -ESTALE;
        else
            rc = store_msg_set_flags(w, x->mailbox_id, x->uids[i], x->op, x->flags,
                                     x->has_kw ? x->kw.data : NULL, x->unchangedsince, &out);
        if (rc == -ENOENT) continue; /* expunged meanwhile; announced later */
        if (rc == -ESTALE) {
            if (x->nmodified == x->cap_modified) {
                x->cap_modified = x->cap_modified ? x->cap_modified * 2 : 64;
                uint32_t *g = realloc(x->modified, x->cap_modified * sizeof(*g));
                if (!g) abort();
                x->modified = g;
            }
            x->modified[x->nmodified++] = x->uid ? x->uids[i] : x->seqs[i];
            continue;
        }
        if (rc < 0) return rc;
        if (x->nres == x->cap_res) {
            x->cap_res = x->cap_res ? x->cap_res * 2 : 256;
            store_res *g = realloc(x->res, x->cap_res * sizeof(*g));
            if (!g) abort();
            x->res = g;
        }
        store_res *r = &x->res[x->nres++];
        r->uid = x->uids[i];
        r->seq = x->seqs[i];
        r->flags = out.flags;
        r->modseq = out.modseq;
        r->changed = out.modseq > base;
        r->kw_off = x->kws.len;
        mfs_buf_puts(&x->kws, out.keywords ? out.keywords : "");
        mfs_buf_putc(&x->kws, '\0');
    }
    x->next = i;
    imap_batch_worked(&x->b, i - x->pos);
    return 0;
}

static int store_step(imap_client *c, void *ctx)
{
    store_run *x = ctx;
    imap_batch_start(&x->b);
    int rc = store_write(c->srv->st, store_tx, x);
    imap_batch_done(&x->b);
    if (rc < 0) {
        imap_no_store(c, rc, "STORE"); /* the batches before this one stay done */
        return 0;
    }
    x->gone = x->gone || x->nres + (x->nmodified - x->batch_modified) < x->next - x->pos;
    x->batch_modified = x->nmodified;
    x->pos = x->next;
    for (size_t i = 0; i < x->nres; i++) {
        store_res *r = &x->res[i];
        /* only a change this STORE made is ours: a message it left as it was may carry
         * another session's change this one has not been told of yet */
        if (r->changed) imap_sync_own(c, r->modseq);
        if (x->silent && !c->condstore) continue;
        /* once CONDSTORE is on, .SILENT still tells the new MODSEQ (RFC 7162 3.1.3), and
         * every answer names the UID (3.2.4) */
        if (!x->silent) imap_keywords_announce(c, x->kws.data + r->kw_off);
        mfs_buf *o = &c->out; /* no printf: this runs once per message */
        mfs_buf_puts(o, "* ");
        mfs_buf_put_u64(o, r->seq);
        mfs_buf_puts(o, " FETCH (");
        if (!x->silent) {
            mfs_buf_puts(o, "FLAGS ");
            imap_flags_put_msg(c, o, r->uid, r->flags, x->kws.data + r->kw_off);
        }
        if (x->uid || c->condstore) {
            mfs_buf_puts(o, x->silent ? "UID " : " UID ");
            mfs_buf_put_u64(o, r->uid);
        }
        if (c->condstore) {
            mfs_buf_puts(o, " MODSEQ (");
            mfs_buf_put_u64(o, r->modseq);
            mfs_buf_putc(o, ')');
        }
        mfs_buf_puts(o, ")\r\n");
    }
    /* read our own changes off the feed now, batch by batch, not all at the end */
    imap_sync_absorb(c);
    if (x->pos < x->n) return 1;
    if (x->nmodified) {
        mfs_buf set = {0};
        imap_seqset_format(&set, x->modified, x->nmodified);
        if (x->gone && !x->uid) /* RFC 7162 3.1.3, example 11 */
            imap_no(c,
                    "[MODIFIED %s] some of the messages no longer exist, and these changed "
                    "since the UNCHANGEDSINCE given",
                    set.data);
        else
            imap_ok(c,
                    "[MODIFIED %s] STORE completed, except for these: they changed since the "
                    "UNCHANGEDSINCE given",
                    set.data);
        mfs_buf_free(&set);
    } else if (x->gone && !x->uid) {
        /* RFC 2180 4.2.1: the rest were stored; Dovecot says OK too */
        imap_ok(c, "[EXPUNGEISSUED] STORE completed; some of the messages no longer exist");
    } else {
        imap_ok(c, "STORE completed");
    }
    return 0;
}

void imap_cmd_store(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    bool unchanged = false;
    uint64_t unchangedsince = 0;
    if (nargs == 4) { /* a modifier list (RFC 4466): UNCHANGEDSINCE n, nothing else */
        const imap_arg *m = &args[1];
        if (m->type != IMAP_ARG_LIST || m->count != 2 ||
            !imap_arg_is_atom(&m->list[0], "UNCHANGEDSINCE")) {
            imap_bad(c, "STORE's modifier list is (UNCHANGEDSINCE modseq)");
            return;
        }
        if (imap_modseq_arg(c, &m->list[1], true, "UNCHANGEDSINCE", &unchangedsince) < 0) return;
        unchanged = true;
    }
    imap_arg rest[3]; /* the arguments without the modifier list */
    if (nargs == 4) {
        rest[0] = args[0];
        rest[1] = args[2];
        rest[2] = args[3];
        args = rest;
        nargs = 3;
    }
    if (nargs != 3 || args[1].type != IMAP_ARG_ATOM) {
        imap_bad(c, "usage: STORE set [(UNCHANGEDSINCE modseq)] [+|-]FLAGS[.SILENT] (flags)");
        return;
    }
    const char *item = args[1].str;
    int op = STORE_FLAGS_SET;
    if (item[0] == '+') {
        op = STORE_FLAGS_ADD;
        item++;
    } else if (item[0] == '-') {
        op = STORE_FLAGS_DEL;
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
    store_run *x = calloc(1, sizeof(*x));
    if (!x) abort();
    x->mailbox_id = c->sel.mailbox_id;
    x->op = op;
    x->silent = silent;
    x->uid = uid;
    x->unchanged = unchanged;
    x->unchangedsince = unchangedsince;
    if (imap_flags_parse(c, &args[2], &x->flags, &x->kw) < 0 ||
        imap_set_resolve(c, &args[0], uid, &x->uids, &x->seqs, &x->n) < 0) {
        store_run_free(x);
        return;
    }
    x->has_kw = x->kw.len || op == STORE_FLAGS_SET; /* FLAGS () clears the keywords too */
    if (unchanged) imap_condstore_on(c);
    if (x->n == 0) {
        store_run_free(x);
        imap_ok(c, "STORE completed");
        return;
    }
    c->cont = store_step;
    c->cont_ctx = x;
    c->cont_free = store_run_free;
}
