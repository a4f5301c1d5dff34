/* cmd_expunge.c: EXPUNGE and UID EXPUNGE, in steps; the same steps serve CLOSE */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_context.h"
#include "imap/imap_int.h"

/* An expunge runs in two phases: read transactions find the \Deleted messages among the
 * candidates, then write transactions of about IMAP_STEP_MS each expunge them, each batch
 * committed (and announced) before the loop's other sessions get their turn. */
typedef struct expunge_run {
    uint32_t mailbox_id;
    uint32_t *cand; /* candidate UIDs (the view, or the UID set), ascending */
    size_t ncand, pos;
    bool finding;  /* still in the first phase */
    uint32_t *del; /* the \Deleted ones found (ascending) */
    size_t ndel, cap_del;
    size_t next;    /* where the batch being written ends */
    uint32_t *done; /* expunged so far (ascending); the batch is the tail from BATCH */
    size_t ndone, batch;
    int64_t until; /* the first phase's step */
    imap_batch b;
    bool silent, close;
} expunge_run;

static void expunge_free(void *p)
{
    expunge_run *x = p;
    free(x->cand);
    free(x->del);
    free(x->done);
    free(x);
}

static int expunge_tx(store_txn *w, void *ctx)
{
    expunge_run *x = ctx;
    x->ndone = x->batch; /* a rerun (the map grew) starts the batch again */
    size_t i = x->pos;
    for (; i < x->ndel; i++) {
        if (i > x->pos && !imap_batch_more(&x->b, i - x->pos)) break;
        store_msg m; /* flags may have changed since the first phase */
        if (store_msg_get(w, x->mailbox_id, x->del[i], &m) < 0 || !(m.flags & STORE_F_DELETED))
            continue;
        int rc = store_msg_expunge(w, x->mailbox_id, x->del[i]);
        if (rc < 0) return rc;
        x->done[x->ndone++] = x->del[i];
    }
    x->next = i;
    imap_batch_worked(&x->b, i - x->pos);
    return 0;
}

/* The first phase, one read transaction per step; returns 1 while candidates are left. */
static int expunge_find(imap_client *c, expunge_run *x)
{
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) return rc;
    while (x->pos < x->ncand) {
        store_msg m;
        uint32_t uid = x->cand[x->pos++];
        if (store_msg_get(t, x->mailbox_id, uid, &m) == 0 && (m.flags & STORE_F_DELETED)) {
            if (x->ndel == x->cap_del) {
                x->cap_del = x->cap_del ? x->cap_del * 2 : 256;
                uint32_t *g = realloc(x->del, x->cap_del * sizeof(*g));
                if (!g) abort();
                x->del = g;
            }
            x->del[x->ndel++] = uid;
        }
        if (imap_now_ms() >= x->until) break;
    }
    store_read_end(&t);
    return x->pos < x->ncand;
}

/* Announces the batch just committed: highest first, numbered as the client sees the
 * mailbox now. The view itself is compacted once, at the end: every message expunged in
 * an earlier batch has a lower UID, so a number is the view's position minus those. */
static void announce_batch(imap_client *c, expunge_run *x)
{
    if (c->qresync) { /* the batch's UIDs, as one VANISHED (RFC 7162 3.2.7) */
        imap_vanished_put(&c->out, x->done + x->batch, x->ndone - x->batch, false);
        return;
    }
    size_t earlier = x->batch;
    /* live searches' REMOVEFROM first, while the numbers are still good */
    imap_context_expunge(c, x->done + x->batch, x->ndone - x->batch, (uint32_t)earlier);
    for (size_t i = x->ndone; i-- > x->batch;) {
        uint32_t seq = imap_seq_of(c, x->done[i]);
        if (!seq) continue;
        mfs_buf_puts(&c->out, "* ");
        mfs_buf_put_u64(&c->out, seq - earlier);
        mfs_buf_puts(&c->out, " EXPUNGE\r\n");
    }
}

static int expunge_step(imap_client *c, void *ctx)
{
    expunge_run *x = ctx;
    x->until = imap_now_ms() + IMAP_STEP_MS;
    int rc = 0;
    if (x->finding) {
        rc = expunge_find(c, x);
        if (rc == 1) return 1;
        x->finding = false;
        x->pos = 0;
        x->done = malloc((x->ndel ? x->ndel : 1) * sizeof(uint32_t));
        if (!x->done) abort();
        if (rc == 0 && x->ndel && imap_now_ms() >= x->until) return 1;
    }
    if (rc == 0 && x->pos < x->ndel) {
        x->batch = x->ndone;
        imap_batch_start(&x->b);
        rc = store_write(c->srv->st, expunge_tx, x);
        imap_batch_done(&x->b);
        if (rc == 0) {
            x->pos = x->next;
            if (!x->silent) announce_batch(c, x);
            imap_sync_absorb(c);
            if (x->pos < x->ndel) return 1;
        } else {
            x->ndone = x->batch; /* what earlier batches did stays done */
        }
    }
    /* done, or a batch failed */
    if (x->close) {
        imap_unselect(c);
    } else {
        imap_sync_remove(c, x->done, x->ndone, NULL); /* announced batch by batch */
    }
    const char *what = x->close ? "CLOSE" : "EXPUNGE";
    store_txn *t;
    store_mailbox mb;
    if (rc < 0) {
        imap_no_store(c, rc, what);
    } else if (c->qresync && !x->close && x->ndone && store_read_begin(c->srv->st, &t) == 0) {
        /* RFC 7162 3.2.7: the new HIGHESTMODSEQ with the answer (never after CLOSE, 3.2.8) */
        int mrc = store_mailbox_get_id(t, x->mailbox_id, &mb);
        store_read_end(&t);
        if (mrc == 0)
            imap_ok(c, "[HIGHESTMODSEQ %llu] %s completed", (unsigned long long)mb.highestmodseq,
                    what);
        else
            imap_ok(c, "%s completed", what);
    } else {
        imap_ok(c, "%s completed", what);
    }
    return 0;
}

void imap_expunge_start(imap_client *c, uint32_t *cand, size_t ncand, bool silent, bool close)
{
    expunge_run *x = calloc(1, sizeof(*x));
    if (!x) abort();
    x->mailbox_id = c->sel.mailbox_id;
    x->cand = cand;
    x->ncand = ncand;
    x->finding = true;
    x->silent = silent;
    x->close = close;
    c->cont = expunge_step;
    c->cont_ctx = x;
    c->cont_free = expunge_free;
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
        free(seqs);
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
    imap_expunge_start(c, uids, n, false, false);
}
