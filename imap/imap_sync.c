/* imap_sync.c: the selected mailbox's view, kept in step with the store's change feed */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_context.h"
#include "imap/imap_int.h"

void imap_u32_push(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        uint32_t *p = realloc(*v, *cap * sizeof(**v));
        if (!p) abort();
        *v = p;
    }
    (*v)[(*n)++] = x;
}

static imap_recent_mark *recent_mark(imap_server *srv, uint32_t mailbox_id, bool create)
{
    for (size_t i = 0; i < srv->nrecent; i++)
        if (srv->recent[i].mailbox_id == mailbox_id) return &srv->recent[i];
    if (!create) return NULL;
    if (srv->nrecent == srv->cap_recent) {
        srv->cap_recent = srv->cap_recent ? srv->cap_recent * 2 : 16;
        imap_recent_mark *p = realloc(srv->recent, srv->cap_recent * sizeof(*p));
        if (!p) abort();
        srv->recent = p;
    }
    srv->recent[srv->nrecent] = (imap_recent_mark){mailbox_id, 0};
    return &srv->recent[srv->nrecent++];
}

uint32_t imap_recent_claimed(imap_server *srv, uint32_t mailbox_id)
{
    pthread_mutex_lock(&srv->recent_mu);
    imap_recent_mark *m = recent_mark(srv, mailbox_id, false);
    uint32_t r = m ? m->claimed : 0;
    pthread_mutex_unlock(&srv->recent_mu);
    return r;
}

void imap_recent_claim(imap_client *c, uint32_t uid)
{
    imap_selected *s = &c->sel;
    imap_server *srv = c->srv;
    pthread_mutex_lock(&srv->recent_mu);
    imap_recent_mark *m = recent_mark(srv, s->mailbox_id, !s->readonly);
    bool mine = !m || uid > m->claimed;
    if (mine && !s->readonly) m->claimed = uid;
    pthread_mutex_unlock(&srv->recent_mu);
    if (mine) imap_u32_push(&s->recent, &s->nrecent, &s->cap_recent, uid);
}

bool imap_is_recent(const imap_client *c, uint32_t uid)
{
    const imap_selected *s = &c->sel;
    if (c->rev2) return false;
    size_t lo = 0, hi = s->nrecent;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->recent[mid] < uid)
            lo = mid + 1;
        else if (s->recent[mid] > uid)
            hi = mid;
        else
            return true;
    }
    return false;
}

void imap_unselect(imap_client *c)
{
    imap_selected *s = &c->sel;
    imap_context_clear(s);
    free(s->recent);
    free(s->uids);
    free(s->pending_exp);
    free(s->pending_flg);
    free(s->own);
    mfs_buf_free(&s->keywords);
    free(s->saved);
    memset(s, 0, sizeof(*s));
    if (c->state == IMAP_ST_SELECTED) c->state = IMAP_ST_AUTH;
}

void imap_sync_own(imap_client *c, uint64_t modseq)
{
    imap_selected *s = &c->sel;
    if (s->nown == s->cap_own) {
        s->cap_own = s->cap_own ? s->cap_own * 2 : 16;
        uint64_t *p = realloc(s->own, s->cap_own * sizeof(*p));
        if (!p) abort();
        s->own = p;
    }
    s->own[s->nown++] = modseq;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts V and drops repeats; returns the new length. */
static size_t sort_unique(uint32_t *v, size_t n)
{
    if (n < 2) return n;
    qsort(v, n, sizeof(*v), cmp_u32);
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[w - 1]) v[w++] = v[i];
    return w;
}

/* Our own changes are recorded in commit order, so OWN is ascending: a binary search. */
static bool is_own(const imap_selected *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nown;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->own[mid] < seq)
            lo = mid + 1;
        else if (s->own[mid] > seq)
            hi = mid;
        else
            return true;
    }
    return false;
}

/* The first index of sorted V (N entries) holding a value >= X. */
static size_t lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Removes from sorted V (*N entries) the values of sorted DEL (ND entries); when POS is not
 * NULL, stores there the old index of each removed one (ascending). Returns how many went.
 * O(ND log *N) to find them, one pass over V from the first of them to move the rest. */
static size_t drop_sorted(uint32_t *v, size_t *n, const uint32_t *del, size_t nd, size_t *pos)
{
    size_t *at = pos ? pos : malloc((nd ? nd : 1) * sizeof(size_t));
    if (!at) abort();
    size_t np = 0, from = 0;
    for (size_t k = 0; k < nd; k++) {
        size_t i = from + lower_bound(v + from, *n - from, del[k]);
        if (i < *n && v[i] == del[k])
            at[np++] = i, from = i + 1;
        else
            from = i;
    }
    if (np) {
        size_t w = at[0];
        for (size_t j = 0; j < np; j++) {
            size_t a = at[j] + 1, b = j + 1 < np ? at[j + 1] : *n;
            memmove(&v[w], &v[a], (b - a) * sizeof(*v));
            w += b - a;
        }
        *n = w;
    }
    if (!pos) free(at);
    return np;
}

void imap_sync_remove(imap_client *c, const uint32_t *uids, size_t n, mfs_buf *out)
{
    imap_selected *s = &c->sel;
    if (!n || !s->n) return;
    imap_context_expunge(c, uids, n, 0); /* REMOVEFROM before the EXPUNGEs it concerns */
    if (out && c->qresync) { /* one VANISHED of the UIDs in the view (RFC 7162 3.2.10.2) */
        uint32_t *gone = malloc(n * sizeof(uint32_t));
        if (!gone) abort();
        size_t ng = 0;
        for (size_t k = 0; k < n; k++)
            if (imap_seq_of(c, uids[k])) gone[ng++] = uids[k];
        imap_vanished_put(out, gone, ng, false);
        free(gone);
        out = NULL;
    }
    size_t *pos = malloc(n * sizeof(size_t));
    if (!pos) abort();
    size_t np = drop_sorted(s->uids, &s->n, uids, n, pos);
    /* highest first: each number is the message's number when the client reads it */
    for (size_t j = np; out && j-- > 0;) {
        mfs_buf_puts(out, "* ");
        mfs_buf_put_u64(out, pos[j] + 1);
        mfs_buf_puts(out, " EXPUNGE\r\n");
    }
    free(pos);
    if (np && s->nrecent) drop_sorted(s->recent, &s->nrecent, uids, n, NULL);
}

static int change_cb(void *ctx, const store_change *ch)
{
    imap_selected *s = ctx;
    if (ch->mailbox_id != s->mailbox_id) return 0;
    switch (ch->kind) {
    case STORE_CH_EXPUNGE:
        imap_u32_push(&s->pending_exp, &s->npending, &s->cap_pending, ch->uid);
        if (!s->pending_exp_seq || ch->seq < s->pending_exp_seq) s->pending_exp_seq = ch->seq;
        break;
    case STORE_CH_FLAGS:
        imap_context_touch(s, ch->uid); /* our own changes too */
        if (!is_own(s, ch->seq))
            imap_u32_push(&s->pending_flg, &s->npending_flg, &s->cap_pending_flg, ch->uid);
        break;
    case STORE_CH_MBOX_DELETE:
        s->pending_gone = true;
        break;
    default:
        break;
    }
    return 0;
}

void imap_sync_absorb(imap_client *c)
{
    imap_selected *s = &c->sel;
    if (c->state != IMAP_ST_SELECTED) return;
    store_txn *t;
    if (store_read_begin(c->srv->st, &t) < 0) return; /* try again next time */
    uint64_t now_seq = store_change_seq(t);
    if (now_seq != s->feed_pos) {
        /* in commit order, hence ascending, unless a caller did otherwise */
        for (size_t i = 1; i < s->nown; i++) {
            if (s->own[i] < s->own[i - 1]) {
                qsort(s->own, s->nown, sizeof(*s->own), cmp_u64);
                break;
            }
        }
        if (store_changes_since(t, s->feed_pos, change_cb, s) == -ERANGE) s->pending_full = true;
        s->pending_new = true;
        s->feed_pos = now_seq;
    }
    s->nown = 0; /* the feed has been read past every change we made */
    store_read_end(&t);
}

typedef struct sync_ctx {
    imap_client *c;
    uint32_t last_uid;
} sync_ctx;

static int new_cb(void *ctx, const store_msg *m)
{
    sync_ctx *x = ctx;
    imap_selected *s = &x->c->sel;
    if (m->uid > x->last_uid) {
        imap_u32_push(&s->uids, &s->n, &s->cap, m->uid);
        imap_recent_claim(x->c, m->uid);
    }
    return 0;
}

static int all_cb(void *ctx, const store_msg *m)
{
    imap_selected *s = ctx;
    imap_u32_push(&s->pending_flg, &s->npending_flg, &s->cap_pending_flg, m->uid);
    return 0;
}

static void fetch_flags(imap_client *c, store_txn *t, uint32_t uid)
{
    uint32_t seq = imap_seq_of(c, uid);
    store_msg m;
    if (!seq || store_msg_get(t, c->sel.mailbox_id, uid, &m) < 0) return;
    imap_keywords_announce(c, m.keywords);
    mfs_buf_printf(&c->out, "* %u FETCH (UID %u FLAGS ", seq, uid);
    imap_flags_put_msg(c, &c->out, uid, m.flags, m.keywords);
    if (c->condstore) mfs_buf_printf(&c->out, " MODSEQ (%llu)", (unsigned long long)m.modseq);
    mfs_buf_puts(&c->out, ")\r\n");
}

int imap_sync(imap_client *c, bool allow_expunge)
{
    imap_selected *s = &c->sel;
    if (c->state != IMAP_ST_SELECTED) return 0;
    imap_sync_absorb(c);
    if (s->pending_gone) {
        mfs_buf_puts(&c->out, "* BYE the selected mailbox was deleted\r\n");
        return -1;
    }
    store_txn *t;
    if (store_read_begin(c->srv->st, &t) < 0) return 0; /* try again next time */
    bool full = s->pending_full;
    if (full) {
        /* The feed no longer reaches back: compare the whole mailbox. */
        store_mailbox mb;
        if (store_mailbox_get_id(t, s->mailbox_id, &mb) < 0) {
            store_read_end(&t);
            mfs_buf_puts(&c->out, "* BYE the selected mailbox was deleted\r\n");
            return -1;
        }
        for (size_t i = 0; i < s->n; i++) {
            store_msg m;
            if (store_msg_get(t, s->mailbox_id, s->uids[i], &m) == -ENOENT)
                imap_u32_push(&s->pending_exp, &s->npending, &s->cap_pending, s->uids[i]);
        }
        s->pending_exp_seq = s->highestmodseq + 1; /* their MODSEQs are unknown: above SELECT's */
        s->npending_flg = 0;
        store_msg_list(t, s->mailbox_id, 1, all_cb, s);
        imap_context_touch_all(s);
        s->pending_full = false;
    }
    /* expunges of messages in the view: announced now, or held back while the command
     * uses sequence numbers */
    s->npending = sort_unique(s->pending_exp, s->npending);
    size_t keep = 0;
    for (size_t i = 0; i < s->npending; i++)
        if (imap_seq_of(c, s->pending_exp[i])) s->pending_exp[keep++] = s->pending_exp[i];
    s->npending = keep;
    if (allow_expunge && s->npending) {
        imap_sync_remove(c, s->pending_exp, s->npending, &c->out);
        s->npending = 0;
    }
    if (!s->npending) s->pending_exp_seq = 0;
    /* new messages */
    size_t before = s->n;
    sync_ctx x = {.c = c, .last_uid = s->n ? s->uids[s->n - 1] : 0};
    if (s->pending_new || full) store_msg_list(t, s->mailbox_id, x.last_uid + 1, new_cb, &x);
    s->pending_new = false;
    if (s->n != before || full) {
        mfs_buf_printf(&c->out, "* %zu EXISTS\r\n", s->n);
        if (!c->rev2) mfs_buf_printf(&c->out, "* %zu RECENT\r\n", s->nrecent);
    }
    /* flag changes, once per message, only for messages the client already knew */
    s->npending_flg = sort_unique(s->pending_flg, s->npending_flg);
    for (size_t i = 0; i < s->npending_flg; i++) {
        uint32_t q = imap_seq_of(c, s->pending_flg[i]);
        if (q && q <= before) fetch_flags(c, t, s->pending_flg[i]);
    }
    s->npending_flg = 0;
    imap_context_sync(c, t); /* ADDTO and REMOVEFROM of live searches */
    store_read_end(&t);
    /* RFC 7162 3.2: with expunges held back, MODSEQs above theirs may have gone out; a client
     * that takes the highest it saw as its HIGHESTMODSEQ would never learn of them, so it is
     * told a lower one */
    if (c->qresync && s->npending && s->pending_exp_seq > 1)
        mfs_buf_printf(&c->out, "* OK [HIGHESTMODSEQ %llu] expunges are held back\r\n",
                       (unsigned long long)(s->pending_exp_seq - 1));
    return 0;
}
