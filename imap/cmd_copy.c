/* cmd_copy.c: COPY and MOVE (and their UID forms), with COPYUID, in steps */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "imap/imap_seqset.h"

/* Both run in batches, one write transaction of about IMAP_STEP_MS per step, so that a
 * command over many messages never holds the loop's other sessions up for long.
 * MOVE: each message is moved or left alone (RFC 6851 3.3); after the last batch comes one
 * COPYUID for all, then the EXPUNGEs, also in steps. A batch that fails ends the command with
 * NO after reporting the messages moved until then.
 * COPY: a failed COPY must leave the destination as it was (RFC 3501 6.4.7), so when a batch
 * fails the copies of the batches before are expunged again (in steps too) before the NO.
 * Other sessions may see the copies arrive batch by batch meanwhile. */
enum { PH_COPY, PH_UNDO, PH_EXPUNGES };

typedef struct copy_run {
    uint32_t user_id, src_id, dst_id;
    char dst[STORE_NAME_MAX + 1];
    bool move, uid;
    uint32_t *uids, *seqs;
    size_t n, pos, next;
    uint32_t *src, *dstuids; /* done so far: the source UIDs and their copies */
    size_t ndone, batch;
    uint32_t uidvalidity;
    int phase;
    int rc;        /* why the copy stopped (PH_UNDO, PH_EXPUNGES after a failure) */
    size_t undo;   /* copies expunged again so far; for MOVE, EXPUNGEs announced so far */
    int64_t until; /* the step's end, for the EXPUNGEs */
    imap_batch b;
} copy_run;

static void copy_free(void *p)
{
    copy_run *x = p;
    free(x->uids);
    free(x->seqs);
    free(x->src);
    free(x->dstuids);
    free(x);
}

static int copy_tx(store_txn *w, void *ctx)
{
    copy_run *x = ctx;
    x->ndone = x->batch; /* a rerun (the map grew) starts the batch again */
    store_mailbox mb;
    int rc = store_mailbox_get(w, x->user_id, x->dst, &mb);
    if (rc < 0) return rc;
    /* the destination must be the mailbox the first batch copied into */
    if (x->uidvalidity && (mb.id != x->dst_id || mb.uidvalidity != x->uidvalidity)) return -ENOENT;
    x->dst_id = mb.id;
    x->uidvalidity = mb.uidvalidity;
    size_t i = x->pos;
    for (; i < x->n; i++) {
        if (i > x->pos && !imap_batch_more(&x->b, i - x->pos)) break;
        store_msg out;
        rc = x->move ? store_msg_move(w, x->src_id, x->uids[i], mb.id, NULL, &out)
                     : store_msg_copy(w, x->src_id, x->uids[i], mb.id, NULL, &out);
        if (rc == -ENOENT) continue;
        if (rc < 0) return rc;
        x->src[x->ndone] = x->uids[i];
        x->dstuids[x->ndone++] = out.uid;
    }
    x->next = i;
    imap_batch_worked(&x->b, i - x->pos);
    return 0;
}

/* Expunges the copies again, from UNDO on, until the step's time is up. */
static int undo_tx(store_txn *w, void *ctx)
{
    copy_run *x = ctx;
    size_t i = x->undo;
    for (; i < x->ndone; i++) {
        if (i > x->undo && !imap_batch_more(&x->b, i - x->undo)) break;
        int rc = store_msg_expunge(w, x->dst_id, x->dstuids[i]);
        if (rc < 0 && rc != -ENOENT) return rc;
    }
    x->next = i;
    imap_batch_worked(&x->b, i - x->undo);
    return 0;
}

static void copy_answer(imap_client *c, copy_run *x)
{
    int rc = x->rc;
    if (rc == -ENOENT && x->ndone == 0) {
        imap_no(c, "[TRYCREATE] no such mailbox '%.200s'", x->dst);
    } else if (rc == -ENOENT) {
        imap_no(c, "%s stopped: mailbox '%.200s' was deleted or renamed meanwhile",
                x->move ? "MOVE" : "COPY", x->dst);
    } else if (rc < 0) {
        imap_no_store(c, rc, x->dst);
    } else if (x->move) {
        imap_ok(c, "MOVE completed");
    } else if (x->ndone < x->n && !x->uid) {
        imap_no(c, "[EXPUNGEISSUED] some of the requested messages no longer exist");
    } else {
        mfs_buf code = {0};
        mfs_buf_puts(&code, "");
        if (x->ndone) {
            mfs_buf_printf(&code, "[COPYUID %u ", x->uidvalidity);
            imap_seqset_format(&code, x->src, x->ndone);
            mfs_buf_putc(&code, ' ');
            imap_seqset_format(&code, x->dstuids, x->ndone);
            mfs_buf_puts(&code, "] ");
        }
        imap_ok(c, "%sCOPY completed", code.data);
        mfs_buf_free(&code);
    }
}

/* MOVE's EXPUNGEs, highest first: the view is compacted only once all are out, so each
 * number is the view's position, as the client sees it when it reads that line. */
static int move_expunges(imap_client *c, copy_run *x)
{
    if (c->qresync) { /* one VANISHED for them all (RFC 7162 3.2.10.2), REMOVEFROM before it */
        imap_sync_remove(c, x->src, x->ndone, &c->out);
        copy_answer(c, x);
        return 0;
    }
    if (x->undo == 0) /* live searches' REMOVEFROM first, while the numbers are still good */
        imap_context_expunge(c, x->src, x->ndone, 0);
    while (x->undo < x->ndone && c->out.len < IMAP_OUT_HIGH) {
        uint32_t seq = imap_seq_of(c, x->src[x->ndone - 1 - x->undo++]);
        if (seq) {
            mfs_buf_puts(&c->out, "* ");
            mfs_buf_put_u64(&c->out, seq);
            mfs_buf_puts(&c->out, " EXPUNGE\r\n");
        }
        if ((x->undo & 1023) == 0 && imap_now_ms() >= x->until) break;
    }
    if (x->undo < x->ndone) return 1;
    imap_sync_remove(c, x->src, x->ndone, NULL);
    copy_answer(c, x);
    return 0;
}

static int copy_step(imap_client *c, void *ctx)
{
    copy_run *x = ctx;
    x->until = imap_now_ms() + IMAP_STEP_MS;
    if (x->phase == PH_COPY) {
        x->batch = x->ndone;
        imap_batch_start(&x->b);
        int rc = store_write(c->srv->st, copy_tx, x);
        imap_batch_done(&x->b);
        if (rc == 0) {
            x->pos = x->next;
            imap_sync_absorb(c);
            if (x->pos < x->n) return 1;
        } else {
            x->ndone = x->batch;
            x->rc = rc;
        }
        if (!x->move && x->rc < 0 && x->ndone) {
            x->phase = PH_UNDO;
            return 1;
        }
        if (!x->move || x->ndone == 0) {
            copy_answer(c, x);
            return 0;
        }
        /* one COPYUID for all the batches, then the EXPUNGEs */
        mfs_buf_printf(&c->out, "* OK [COPYUID %u ", x->uidvalidity);
        imap_seqset_format(&c->out, x->src, x->ndone);
        mfs_buf_putc(&c->out, ' ');
        imap_seqset_format(&c->out, x->dstuids, x->ndone);
        mfs_buf_puts(&c->out, "] moved\r\n");
        x->phase = PH_EXPUNGES;
        x->undo = 0;
        return 1;
    }
    if (x->phase == PH_EXPUNGES) return move_expunges(c, x);
    /* PH_UNDO */
    imap_batch_start(&x->b);
    int rc = store_write(c->srv->st, undo_tx, x);
    imap_batch_done(&x->b);
    if (rc == 0) {
        x->undo = x->next;
        if (x->undo < x->ndone) return 1;
        imap_sync_absorb(c);
    } else {
        imap_no(c,
                "[SERVERBUG] COPY failed (%s) and %zu of its copies in '%.200s' could not be "
                "removed again (%s)",
                store_strerror(x->rc), x->ndone - x->undo, x->dst, store_strerror(rc));
        return 0;
    }
    copy_answer(c, x);
    return 0;
}

void imap_cmd_copy(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    bool move = strcmp(cmd->name, "MOVE") == 0 ||
                (uid && cmd->nargs && imap_arg_is_atom(&cmd->args[0], "MOVE"));
    if (nargs != 2) {
        imap_bad(c, "usage: %s set mailbox", move ? "MOVE" : "COPY");
        return;
    }
    copy_run *x = calloc(1, sizeof(*x));
    if (!x) abort();
    if (imap_mailbox_arg(c, &args[1], x->dst, sizeof(x->dst)) < 0) {
        copy_free(x);
        return;
    }
    if (move && c->sel.readonly) {
        copy_free(x);
        imap_no(c, "[READ-ONLY] mailbox is read-only");
        return;
    }
    if (imap_set_resolve(c, &args[0], uid, &x->uids, &x->seqs, &x->n) < 0) {
        copy_free(x);
        return;
    }
    x->user_id = c->user_id;
    x->src_id = c->sel.mailbox_id;
    x->move = move;
    x->uid = uid;
    x->src = malloc((x->n ? x->n : 1) * sizeof(uint32_t));
    x->dstuids = malloc((x->n ? x->n : 1) * sizeof(uint32_t));
    if (!x->src || !x->dstuids) abort();
    c->cont = copy_step;
    c->cont_ctx = x;
    c->cont_free = copy_free;
}
