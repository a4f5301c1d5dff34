/* imap_condstore.c: what CONDSTORE and QRESYNC (RFC 7162) share: mod-sequence arguments,
 * turning CONDSTORE on, VANISHED responses, and the QRESYNC parameter of SELECT */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

int imap_modseq_arg(imap_client *c, const imap_arg *a, bool zero_ok, const char *what,
                    uint64_t *out)
{
    uint64_t v = 0;
    bool ok = a && a->type == IMAP_ARG_ATOM && a->len > 0 && a->len <= 19;
    for (size_t i = 0; ok && i < a->len; i++) {
        ok = isdigit((unsigned char)a->str[i]) != 0;
        v = v * 10 + (uint64_t)(a->str[i] - '0'); /* 19 digits fit in 64 bits */
    }
    if (!ok || v > IMAP_MODSEQ_MAX || (v == 0 && !zero_ok)) {
        imap_bad(c, "%s needs a mod-sequence, a number from %d to 9223372036854775807, not '%.40s'",
                 what, zero_ok ? 0 : 1, a && a->str ? a->str : "");
        return -1;
    }
    *out = v;
    return 0;
}

void imap_condstore_on(imap_client *c)
{
    if (c->condstore) return;
    c->condstore = true;
    /* RFC 7162 3.1: the first enabling command with a mailbox selected reports its
     * HIGHESTMODSEQ. The value of the SELECT is sent: everything up to it has reached the
     * client, which a later value (with changes still held back) would not promise. */
    if (c->state == IMAP_ST_SELECTED)
        mfs_buf_printf(&c->out, "* OK [HIGHESTMODSEQ %llu] mod-sequences are on\r\n",
                       (unsigned long long)c->sel.highestmodseq);
}

void imap_vanished_put(mfs_buf *b, const uint32_t *uids, size_t n, bool earlier)
{
    if (!n) return;
    mfs_buf_puts(b, earlier ? "* VANISHED (EARLIER) " : "* VANISHED ");
    imap_seqset_format(b, uids, n);
    mfs_buf_puts(b, "\r\n");
}

/* Parses a set of the QRESYNC parameter (no '*' allowed) into *SET, resolved. */
static int qr_set(imap_client *c, const imap_arg *a, const char *what, imap_seqset *set)
{
    const char *why = "not a sequence set";
    if (a->type != IMAP_ARG_ATOM || memchr(a->str, '*', a->len) ||
        imap_seqset_parse(a->str, a->len, IMAP_SEQSET_MAX_RANGES, set, &why) < 0) {
        if (a->type == IMAP_ARG_ATOM && memchr(a->str, '*', a->len)) why = "'*' is not allowed";
        imap_bad(c, "QRESYNC %s '%.40s': %s", what, a->str ? a->str : "(list)", why);
        return -1;
    }
    imap_seqset_resolve(set, 0);
    return 0;
}

void imap_qresync_note(imap_qresync *q, const store_msg *m, uint32_t seq)
{
    if (m->modseq <= q->modseq || (q->has_known && !imap_seqset_contains(&q->known, m->uid)))
        return;
    if (q->nchanged == q->cap_changed) {
        q->cap_changed = q->cap_changed ? q->cap_changed * 2 : 64;
        void *p = realloc(q->changed, q->cap_changed * sizeof(*q->changed));
        if (!p) abort();
        q->changed = p;
    }
    q->changed[q->nchanged].uid = m->uid;
    q->changed[q->nchanged++].seq = seq;
}

void imap_qresync_free(imap_qresync *q)
{
    free(q->changed);
    imap_seqset_free(&q->known);
    imap_seqset_free(&q->match_seqs);
    imap_seqset_free(&q->match_uids);
    memset(q, 0, sizeof(*q));
}

int imap_qresync_parse(imap_client *c, const imap_arg *a, imap_qresync *q)
{
    memset(q, 0, sizeof(*q));
    if (!c->qresync) {
        imap_bad(c, "QRESYNC is not enabled: send ENABLE QRESYNC first");
        return -1;
    }
    if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 4) {
        imap_bad(c, "usage: QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])");
        return -1;
    }
    const imap_arg *v = a->list;
    uint64_t uv;
    if (imap_arg_number(&v[0], &uv) < 0 || uv == 0 || uv > UINT32_MAX) {
        imap_bad(c, "QRESYNC needs a UIDVALIDITY, a number from 1 to 4294967295, not '%.40s'",
                 v[0].str ? v[0].str : "(list)");
        return -1;
    }
    q->uidvalidity = (uint32_t)uv;
    if (imap_modseq_arg(c, &v[1], true, "QRESYNC", &q->modseq) < 0) return -1;
    size_t i = 2;
    if (i < a->count && v[i].type == IMAP_ARG_ATOM) {
        if (qr_set(c, &v[i], "known-uids", &q->known) < 0) goto fail;
        q->has_known = true;
        i++;
    }
    if (i < a->count) {
        const imap_arg *m = &v[i];
        if (m->type != IMAP_ARG_LIST || m->count != 2 || i + 1 != a->count) {
            imap_bad(c, "QRESYNC's last part is (known-sequence-set known-uid-set)");
            goto fail;
        }
        if (qr_set(c, &m->list[0], "known-sequence-set", &q->match_seqs) < 0 ||
            qr_set(c, &m->list[1], "known-uid-set", &q->match_uids) < 0)
            goto fail;
        if (imap_seqset_count(&q->match_seqs) != imap_seqset_count(&q->match_uids)) {
            imap_bad(c, "QRESYNC's known-sequence-set and known-uid-set differ in size");
            goto fail;
        }
        q->has_match = true;
    }
    return 0;
fail:
    imap_qresync_free(q);
    return -1;
}

/* The Nth value (from 0) of resolved SET, walking on from range *R, value *AT within it. */
static uint32_t set_next(const imap_seqset *set, size_t *r, uint32_t *at)
{
    while (*r<set->n && * at> set->r[*r].hi - set->r[*r].lo) {
        (*r)++;
        *at = 0;
    }
    return set->r[*r].lo + (*at)++;
}

/* The lowest UID whose expunge the client may not know of, from its sequence match data: the
 * pairs are walked in order, and every matching one tells that the client knows of all
 * expunges up to it (RFC 7162 3.2.5.2); the first that does not match ends the walk. */
static uint32_t match_floor(const imap_client *c, const imap_qresync *q)
{
    uint32_t floor = 1;
    uint64_t n = imap_seqset_count(&q->match_seqs);
    size_t rs = 0, ru = 0;
    uint32_t as = 0, au = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint32_t seq = set_next(&q->match_seqs, &rs, &as);
        uint32_t uid = set_next(&q->match_uids, &ru, &au);
        if (seq == 0 || seq > c->sel.n || c->sel.uids[seq - 1] != uid) break;
        floor = uid == UINT32_MAX ? uid : uid + 1;
    }
    return floor;
}

typedef struct vanished_ctx {
    const imap_qresync *q;
    uint32_t floor;
    uint32_t *uids;
    size_t n, cap;
} vanished_ctx;

static int vanished_cb(void *ctx, uint32_t uid, uint64_t modseq)
{
    vanished_ctx *v = ctx;
    (void)modseq;
    if (uid < v->floor || (v->q->has_known && !imap_seqset_contains(&v->q->known, uid))) return 0;
    imap_u32_push(&v->uids, &v->n, &v->cap, uid);
    return 0;
}

int imap_qresync_answer(imap_client *c, store_txn *t, const imap_qresync *q)
{
    vanished_ctx v = {.q = q, .floor = q->has_match ? match_floor(c, q) : 1};
    int rc = store_expunged_list(t, c->sel.mailbox_id, q->modseq, vanished_cb, &v);
    if (rc == 0) imap_vanished_put(&c->out, v.uids, v.n, true);
    free(v.uids);
    if (rc < 0) return rc;
    for (size_t i = 0; i < q->nchanged; i++) {
        uint32_t uid = q->changed[i].uid;
        store_msg m;
        if (store_msg_get(t, c->sel.mailbox_id, uid, &m) < 0) continue;
        mfs_buf_printf(&c->out, "* %u FETCH (UID %u FLAGS ", q->changed[i].seq, uid);
        imap_flags_put_msg(c, &c->out, uid, m.flags, m.keywords);
        mfs_buf_printf(&c->out, " MODSEQ (%llu))\r\n", (unsigned long long)m.modseq);
    }
    return 0;
}
