/* imap_sync.c: the selected mailbox's view, kept in step with the store's change feed */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

static void push_u32(uint32_t **v, size_t *n, size_t *cap, uint32_t x);

static void push_u32(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
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
    if (mine) push_u32(&s->recent, &s->nrecent, &s->cap_recent, uid);
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
    free(s->recent);
    free(s->uids);
    free(s->pending_exp);
    free(s->own);
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

static bool is_own(const imap_selected *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nown; i++)
        if (s->own[i] == seq) return true;
    return false;
}

uint32_t imap_sync_remove(imap_client *c, uint32_t uid)
{
    uint32_t seq = imap_seq_of(c, uid);
    if (seq) {
        imap_selected *s = &c->sel;
        memmove(&s->uids[seq - 1], &s->uids[seq], (s->n - seq) * sizeof(uint32_t));
        s->n--;
        for (size_t i = 0; i < s->nrecent; i++) {
            if (s->recent[i] == uid) {
                memmove(&s->recent[i], &s->recent[i + 1], (s->nrecent - i - 1) * sizeof(uint32_t));
                s->nrecent--;
                break;
            }
        }
    }
    return seq;
}

typedef struct sync_ctx {
    imap_client *c;
    uint32_t *exp;
    size_t nexp, cap_exp;
    uint32_t *flg;
    size_t nflg, cap_flg;
    bool deleted;
    uint32_t last_uid;
} sync_ctx;

static int change_cb(void *ctx, const store_change *ch)
{
    sync_ctx *x = ctx;
    imap_selected *s = &x->c->sel;
    if (ch->mailbox_id != s->mailbox_id) return 0;
    switch (ch->kind) {
    case STORE_CH_EXPUNGE:
        push_u32(&x->exp, &x->nexp, &x->cap_exp, ch->uid);
        break;
    case STORE_CH_FLAGS:
        if (!is_own(s, ch->seq)) push_u32(&x->flg, &x->nflg, &x->cap_flg, ch->uid);
        break;
    case STORE_CH_MBOX_DELETE:
        x->deleted = true;
        break;
    default:
        break;
    }
    return 0;
}

static int new_cb(void *ctx, const store_msg *m)
{
    sync_ctx *x = ctx;
    imap_selected *s = &x->c->sel;
    if (m->uid > x->last_uid) {
        push_u32(&s->uids, &s->n, &s->cap, m->uid);
        imap_recent_claim(x->c, m->uid);
    }
    return 0;
}

static int all_cb(void *ctx, const store_msg *m)
{
    sync_ctx *x = ctx;
    push_u32(&x->flg, &x->nflg, &x->cap_flg, m->uid);
    return 0;
}

static void fetch_flags(imap_client *c, store_txn *t, uint32_t uid)
{
    uint32_t seq = imap_seq_of(c, uid);
    store_msg m;
    if (!seq || store_msg_get(t, c->sel.mailbox_id, uid, &m) < 0) return;
    imap_buf_printf(&c->out, "* %u FETCH (UID %u FLAGS ", seq, uid);
    imap_flags_put_msg(c, &c->out, uid, m.flags, m.keywords);
    imap_buf_puts(&c->out, ")\r\n");
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int imap_sync(imap_client *c, bool allow_expunge)
{
    imap_selected *s = &c->sel;
    if (c->state != IMAP_ST_SELECTED) return 0;
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) return 0; /* try again next time */
    sync_ctx x = {.c = c};
    uint64_t now_seq = store_change_seq(t);
    bool full = false;
    if (now_seq != s->feed_pos) {
        rc = store_changes_since(t, s->feed_pos, change_cb, &x);
        if (rc == -ERANGE) {
            full = true;
            x.nexp = x.nflg = 0;
        }
    }
    if (x.deleted) {
        store_read_end(&t);
        free(x.exp);
        free(x.flg);
        imap_buf_puts(&c->out, "* BYE the selected mailbox was deleted\r\n");
        return -1;
    }
    if (full) {
        /* The feed no longer reaches back: compare the whole mailbox. */
        store_mailbox mb;
        if (store_mailbox_get_id(t, s->mailbox_id, &mb) < 0) {
            store_read_end(&t);
            imap_buf_puts(&c->out, "* BYE the selected mailbox was deleted\r\n");
            return -1;
        }
        for (size_t i = 0; i < s->n; i++) {
            store_msg m;
            if (store_msg_get(t, s->mailbox_id, s->uids[i], &m) == -ENOENT)
                push_u32(&x.exp, &x.nexp, &x.cap_exp, s->uids[i]);
        }
        store_msg_list(t, s->mailbox_id, 1, all_cb, &x);
    }
    /* expunges: the ones held back earlier first */
    for (size_t i = 0; i < s->npending; i++)
        push_u32(&x.exp, &x.nexp, &x.cap_exp, s->pending_exp[i]);
    s->npending = 0;
    for (size_t i = 0; i < x.nexp; i++) {
        uint32_t uid = x.exp[i];
        if (!imap_seq_of(c, uid)) continue;
        if (!allow_expunge) {
            bool dup = false;
            for (size_t k = 0; k < s->npending; k++)
                dup = dup || s->pending_exp[k] == uid;
            if (!dup) push_u32(&s->pending_exp, &s->npending, &s->cap_pending, uid);
            continue;
        }
        uint32_t seq = imap_sync_remove(c, uid);
        imap_buf_printf(&c->out, "* %u EXPUNGE\r\n", seq);
    }
    /* new messages */
    size_t before = s->n;
    x.last_uid = s->n ? s->uids[s->n - 1] : 0;
    if (now_seq != s->feed_pos || full)
        store_msg_list(t, s->mailbox_id, x.last_uid + 1, new_cb, &x);
    if (s->n != before || full) {
        imap_buf_printf(&c->out, "* %zu EXISTS\r\n", s->n);
        if (!c->rev2) imap_buf_printf(&c->out, "* %zu RECENT\r\n", s->nrecent);
    }
    /* flag changes, once per message, only for messages the client already knew */
    if (x.nflg) {
        qsort(x.flg, x.nflg, sizeof(uint32_t), cmp_u32);
        for (size_t i = 0; i < x.nflg; i++) {
            if (i && x.flg[i] == x.flg[i - 1]) continue;
            uint32_t q = imap_seq_of(c, x.flg[i]);
            if (q && q <= before) fetch_flags(c, t, x.flg[i]);
        }
    }
    s->feed_pos = now_seq;
    s->nown = 0;
    store_read_end(&t);
    free(x.exp);
    free(x.flg);
    return 0;
}
