/* cmd_sort.c: SORT and UID SORT (RFC 5256, RFC 5957, ESORT and CONTEXT=SORT of RFC 5267), and the
 * per-message keys that SORT and THREAD read from the stored summaries, remembered per event loop
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_context.h"
#include "imap/imap_envelope.h"
#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_search.h"
#include "store/mime.h"

#define FIELD_MAX (64u << 10)    /* bytes of one header value kept for a key */
#define REFS_MAX (8u << 10)      /* bytes of References kept: the end, where the parent is */
#define POOL_MAX (256u << 20)    /* bytes of keys of one mailbox */
#define KEYCACHE_MAX (64u << 20) /* bytes of remembered keys per event loop */

/* ---- the keys of each message, remembered per event loop -------------------------------- */

/*
 * A message's keys never change (its bytes do not, and a UID is never given again in a
 * mailbox), so each loop remembers them per mailbox: the first SORT or THREAD of a mailbox
 * reads every summary, later ones only those of new messages. This is what Dovecot's cache
 * does for it. With them goes, per string key, the order of all the mailbox's remembered
 * messages (a rank each), made again only when messages were added, so a repeated SORT by
 * SUBJECT compares numbers, not strings. The memory is bounded (KEYCACHE_MAX per loop, least
 * recently used mailboxes go first); a mailbox's keys are kept while a command uses them.
 */

enum { KC_MSGID = IMAP_SORT_NSTR, KC_IRT, KC_REFS, KC_N };

typedef struct kc_ent {
    uint32_t uid;
    bool reply;     /* the subject was a reply or forward */
    bool have_refs; /* KC_REFS was read (only THREAD REFERENCES needs it) */
    int64_t date, arrival;
    uint64_t size;
    uint32_t off[KC_N], len[KC_N]; /* in the box's pool: casemap keys, then raw texts */
} kc_ent;

typedef struct kc_box {
    uint32_t mailbox_id;
    kc_ent *v;
    size_t n, cap;
    uint32_t *slot; /* UID hash: entry index + 1, 0 for empty */
    size_t nslot;
    mfs_buf pool;
    uint32_t *rank[IMAP_SORT_NSTR]; /* per entry: the order of its string key k... */
    size_t rank_n[IMAP_SORT_NSTR];  /* ...as of this many entries (b->n: up to date) */
    uint64_t used;                  /* the cache's tick when a command last took it */
    unsigned pins;                  /* commands using it */
} kc_box;

struct imap_keycache {
    kc_box **box;
    size_t n, cap;
    uint64_t tick;
};

static size_t kc_bytes(const kc_box *b)
{
    size_t ranks = 0;
    for (int k = 0; k < IMAP_SORT_NSTR; k++)
        ranks += b->rank[k] ? b->rank_n[k] * sizeof(uint32_t) : 0;
    return b->pool.cap + b->cap * sizeof(*b->v) + b->nslot * sizeof(*b->slot) + ranks;
}

static void kc_box_free(kc_box *b)
{
    for (int k = 0; k < IMAP_SORT_NSTR; k++)
        free(b->rank[k]);
    free(b->v);
    free(b->slot);
    mfs_buf_free(&b->pool);
    free(b);
}

void imap_keycache_free(imap_keycache **kc)
{
    if (!*kc) return;
    for (size_t i = 0; i < (*kc)->n; i++)
        kc_box_free((*kc)->box[i]);
    free((*kc)->box);
    free(*kc);
    *kc = NULL;
}

/* The box of MAILBOX_ID in C's loop, made if missing, pinned. */
static kc_box *kc_take(imap_client *c, uint32_t mailbox_id)
{
    imap_keycache **kcp = &c->loop->keycache, *kc = *kcp;
    if (!kc) {
        kc = *kcp = calloc(1, sizeof(*kc));
        if (!kc) abort();
    }
    kc_box *b = NULL;
    for (size_t i = 0; i < kc->n && !b; i++)
        if (kc->box[i]->mailbox_id == mailbox_id) b = kc->box[i];
    /* a box that holds far more than the mailbox (expunged messages): start it again */
    if (b && !b->pins && b->n > 2 * c->sel.n + 1024) {
        for (size_t i = 0; i < kc->n; i++)
            if (kc->box[i] == b) kc->box[i] = kc->box[--kc->n];
        kc_box_free(b);
        b = NULL;
    }
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b) abort();
        b->mailbox_id = mailbox_id;
        if (kc->n == kc->cap) {
            kc->cap = kc->cap ? 2 * kc->cap : 8;
            kc_box **g = realloc(kc->box, kc->cap * sizeof(*g));
            if (!g) abort();
            kc->box = g;
        }
        kc->box[kc->n++] = b;
    }
    b->used = ++kc->tick;
    b->pins++;
    return b;
}

/* Unpins B and trims the loop's cache to its bound: the least recently used boxes that no
 * command holds go first. */
static void kc_give(imap_client *c, kc_box *b)
{
    imap_keycache *kc = c->loop->keycache;
    b->pins--;
    size_t total = 0;
    for (size_t i = 0; i < kc->n; i++)
        total += kc_bytes(kc->box[i]);
    while (total > KEYCACHE_MAX) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < kc->n; i++)
            if (!kc->box[i]->pins &&
                (victim == SIZE_MAX || kc->box[i]->used < kc->box[victim]->used))
                victim = i;
        if (victim == SIZE_MAX) break;
        total -= kc_bytes(kc->box[victim]);
        kc_box_free(kc->box[victim]);
        kc->box[victim] = kc->box[--kc->n];
    }
}

static size_t kc_hash(uint32_t uid, size_t mask)
{
    return (size_t)((uid * 2654435761u) & mask);
}

static kc_ent *kc_find(kc_box *b, uint32_t uid)
{
    if (!b->nslot) return NULL;
    size_t mask = b->nslot - 1;
    for (size_t i = kc_hash(uid, mask);; i = (i + 1) & mask) {
        uint32_t s = b->slot[i];
        if (!s) return NULL;
        if (b->v[s - 1].uid == uid) return &b->v[s - 1];
    }
}

static kc_ent *kc_add(kc_box *b, uint32_t uid)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        kc_ent *g = realloc(b->v, b->cap * sizeof(*g));
        if (!g) abort();
        b->v = g;
    }
    if (2 * (b->n + 1) > b->nslot) {
        free(b->slot);
        b->nslot = b->nslot ? 2 * b->nslot : 512;
        b->slot = calloc(b->nslot, sizeof(*b->slot));
        if (!b->slot) abort();
        for (size_t k = 0; k < b->n; k++) {
            size_t i = kc_hash(b->v[k].uid, b->nslot - 1);
            while (b->slot[i])
                i = (i + 1) & (b->nslot - 1);
            b->slot[i] = (uint32_t)k + 1;
        }
    }
    kc_ent *e = &b->v[b->n];
    memset(e, 0, sizeof(*e));
    e->uid = uid;
    size_t i = kc_hash(uid, b->nslot - 1);
    while (b->slot[i])
        i = (i + 1) & (b->nslot - 1);
    b->slot[i] = (uint32_t)++b->n;
    return e;
}

typedef struct rank_ctx {
    const kc_box *b;
    int k;
} rank_ctx;

static int cmp_key(const void *pa, const void *pb, void *arg)
{
    const rank_ctx *x = arg;
    const kc_ent *a = &x->b->v[*(const uint32_t *)pa], *b = &x->b->v[*(const uint32_t *)pb];
    uint32_t la = a->len[x->k], lb = b->len[x->k];
    const char *pool = x->b->pool.data;
    int r = memcmp(pool + a->off[x->k], pool + b->off[x->k], la < lb ? la : lb);
    return r ? r : la < lb ? -1 : la > lb;
}

/* Brings the ranks of string key K up to date with the box's entries: one sort of them all,
 * after which SORT by K compares numbers until new messages come. */
static void kc_ranks(kc_box *b, int k)
{
    if (b->rank[k] && b->rank_n[k] == b->n) return;
    uint32_t *ix = malloc((b->n ? b->n : 1) * sizeof(*ix));
    uint32_t *rank = realloc(b->rank[k], (b->n ? b->n : 1) * sizeof(*rank));
    if (!ix || !rank) abort();
    for (size_t i = 0; i < b->n; i++)
        ix[i] = (uint32_t)i;
    rank_ctx x = {b, k};
    qsort_r(ix, b->n, sizeof(*ix), cmp_key, &x);
    uint32_t r = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (i && cmp_key(&ix[i - 1], &ix[i], &x) != 0) r++;
        rank[ix[i]] = r;
    }
    free(ix);
    b->rank[k] = rank;
    b->rank_n[k] = b->n;
}

/* ---- the command ------------------------------------------------------------------------ */

typedef struct sort_cmd {
    imap_sort_req req;
    bool uid;
    unsigned need; /* bit k: key k of kc_ent (enum imap_sort_key, KC_*) */
    imap_search_run *search;
    bool searched;
    const uint32_t *seqs; /* the hits, ascending (owned by SEARCH) */
    size_t n, pos;
    imap_sort_msg *sm;   /* SORT: per hit */
    uint32_t *ent;       /* SORT: per hit, its entry in the box */
    imap_thread_msg *tm; /* THREAD: per hit */
    kc_box *box;         /* the mailbox's remembered keys (pinned) */
    imap_client *c;
    mfs_buf strs, a, b; /* scratch */
} sort_cmd;

static void sort_cmd_free(void *p)
{
    sort_cmd *s = p;
    imap_search_end(&s->search);
    if (s->box) kc_give(s->c, s->box);
    free(s->sm);
    free(s->ent);
    free(s->tm);
    mfs_buf_free(&s->strs);
    mfs_buf_free(&s->a);
    mfs_buf_free(&s->b);
    free(s);
}

int imap_sort_charset(imap_client *c, const imap_arg *a, const char *cmd)
{
    if (!a || !imap_arg_is_string(a)) {
        imap_bad(c, "%s needs a charset (UTF-8 or US-ASCII) before the search keys", cmd);
        return -1;
    }
    if (strcasecmp(a->str, "UTF-8") != 0 && strcasecmp(a->str, "US-ASCII") != 0) {
        imap_no(c, "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset '%.40s'", a->str);
        return -1;
    }
    return 0;
}

/* Appends the LEN bytes at P (at most FIELD_MAX of them) to POOL, as they are or (KEY) as
 * their casemap key; their place in *OFF and *OUTLEN. */
static void pool_put(mfs_buf *pool, const char *p, size_t len, bool key, uint32_t *off,
                     uint32_t *outlen)
{
    if (len > FIELD_MAX) len = FIELD_MAX;
    *off = (uint32_t)pool->len;
    if (key)
        imap_casemap(pool, p, len);
    else
        mfs_buf_append(pool, p, len);
    *outlen = (uint32_t)(pool->len - *off);
}

static const char *txt(const sort_cmd *s, imap_env_text t, size_t *len)
{
    *len = t.nil ? 0 : t.len;
    return t.nil ? "" : s->strs.data + t.off;
}

/* The RFC 5957 display value of the first address of field K, in s->a. */
static void display_value(sort_cmd *s, const imap_envelope_fields *f, int k)
{
    size_t nl, ml, hl;
    const char *name = txt(s, f->addr[k][0], &nl);
    const char *mbox = txt(s, f->addr[k][2], &ml);
    const char *host = txt(s, f->addr[k][3], &hl);
    mfs_buf_truncate(&s->a, 0);
    mfs_buf_puts(&s->a, "");
    if (nl) imap_mime_words_decode(name, nl, &s->a);
    if (s->a.len == 0 && !f->addr[k][2].nil) {
        mfs_buf_append(&s->a, mbox, ml);
        if (!f->addr[k][3].nil) {
            mfs_buf_putc(&s->a, '@');
            mfs_buf_append(&s->a, host, hl);
        }
    }
}

/* Reads every key but References of message UID from the store into a new entry of the box. */
static kc_ent *compute(imap_client *c, sort_cmd *s, store_txn *t, uint32_t uid)
{
    store_msg m;
    bool have = store_msg_get(t, c->sel.mailbox_id, uid, &m) == 0;
    imap_envelope_fields f;
    mfs_buf_truncate(&s->strs, 0);
    mfs_buf_puts(&s->strs, "");
    const char *env = IMAP_ENVELOPE_EMPTY;
    size_t envlen = strlen(env);
    const void *blob;
    size_t bl;
    if (have && store_msg_summary(t, &m, &blob, &bl) == 0 &&
        store_mime_envelope(blob, bl, &env, &envlen) != 0) {
        env = IMAP_ENVELOPE_EMPTY;
        envlen = strlen(env);
    }
    (void)imap_envelope_parse(env, envlen, &s->strs, &f); /* a broken one: what was read */
    kc_ent *e = kc_add(s->box, uid);
    mfs_buf *pool = &s->box->pool;
    e->arrival = e->date = have ? m.internaldate : 0;
    e->size = have ? m.crlf_size : 0;
    size_t l;
    const char *v = txt(s, f.text[IMAP_ENV_DATE], &l);
    int64_t sent;
    if (l && imap_date_parse_rfc5322(v, l, &sent) == 0) e->date = sent;
    /* the base subject */
    v = txt(s, f.text[IMAP_ENV_SUBJECT], &l);
    mfs_buf_truncate(&s->a, 0);
    mfs_buf_truncate(&s->b, 0);
    imap_mime_words_decode(v, l, &s->a);
    e->reply = imap_base_subject(&s->b, s->a.data ? s->a.data : "", s->a.len);
    pool_put(pool, s->b.data ? s->b.data : "", s->b.len, true, &e->off[IMAP_SORT_SUBJECT],
             &e->len[IMAP_SORT_SUBJECT]);
    /* addresses: the first one's mailbox, and its display value */
    static const int field[IMAP_SORT_NSTR] = {[IMAP_SORT_FROM] = IMAP_ENV_FROM,
                                              [IMAP_SORT_TO] = IMAP_ENV_TO,
                                              [IMAP_SORT_CC] = IMAP_ENV_CC,
                                              [IMAP_SORT_DISPLAYFROM] = IMAP_ENV_FROM,
                                              [IMAP_SORT_DISPLAYTO] = IMAP_ENV_TO};
    for (int k = IMAP_SORT_FROM; k < IMAP_SORT_NSTR; k++) {
        if (k >= IMAP_SORT_DISPLAYFROM) {
            display_value(s, &f, field[k]);
            pool_put(pool, s->a.data, s->a.len, true, &e->off[k], &e->len[k]);
        } else {
            v = txt(s, f.addr[field[k]][2], &l);
            pool_put(pool, v, l, true, &e->off[k], &e->len[k]);
        }
    }
    v = txt(s, f.text[IMAP_ENV_MESSAGE_ID], &l);
    pool_put(pool, v, l, false, &e->off[KC_MSGID], &e->len[KC_MSGID]);
    v = txt(s, f.text[IMAP_ENV_IN_REPLY_TO], &l);
    pool_put(pool, v, l, false, &e->off[KC_IRT], &e->len[KC_IRT]);
    return e;
}

/* Reads the References header of E's message. */
static void load_refs(imap_client *c, sort_cmd *s, store_txn *t, kc_ent *e)
{
    mfs_buf *pool = &s->box->pool;
    e->have_refs = true;
    e->off[KC_REFS] = (uint32_t)pool->len;
    e->len[KC_REFS] = 0;
    store_msg m;
    const char *data;
    size_t dlen;
    if (store_msg_get(t, c->sel.mailbox_id, e->uid, &m) != 0 ||
        store_msg_body(t, &m, &data, &dlen) != 0)
        return;
    size_t hlen, boff;
    imap_msg_split(data, dlen, &hlen, &boff);
    mfs_buf_truncate(&s->a, 0);
    if (imap_header_get(data, hlen, "References", false, &s->a)) {
        /* a longer one loses its start; an id cut in two there is not an id, and is skipped */
        size_t cut = s->a.len > REFS_MAX ? s->a.len - REFS_MAX : 0;
        pool_put(pool, s->a.data + cut, s->a.len - cut, false, &e->off[KC_REFS], &e->len[KC_REFS]);
    }
}

/* Key K of E: its place in the box's pool, which only grows (and the box is pinned) while
 * the command runs, so the place stays good. */
static void take(sort_cmd *s, const kc_ent *e, int k, uint32_t *off, uint32_t *len)
{
    *off = e->off[k];
    *len = e->len[k];
}

/* The keys of hit number I (sequence number SEQ); T is opened when the store must be read. */
static int gather_one(imap_client *c, sort_cmd *s, store_txn **t, size_t i, uint32_t seq)
{
    uint32_t uid = c->sel.uids[seq - 1];
    kc_ent *e = kc_find(s->box, uid);
    bool refs = s->req.thread && s->req.alg == IMAP_THREAD_REFERENCES;
    if (!e || (refs && !e->have_refs)) {
        if (!*t) {
            int rc = store_read_begin(c->srv->st, t);
            if (rc < 0) return rc;
        }
        if (!e) e = compute(c, s, *t, uid);
        if (refs && !e->have_refs) load_refs(c, s, *t, e);
    }
    if (s->req.thread) {
        imap_thread_msg *tm = &s->tm[i];
        memset(tm, 0, sizeof(*tm));
        tm->num = s->uid ? uid : seq;
        tm->date = e->date;
        tm->reply = e->reply;
        take(s, e, KC_MSGID, &tm->msgid_off, &tm->msgid_len);
        take(s, e, KC_IRT, &tm->irt_off, &tm->irt_len);
        if (refs) take(s, e, KC_REFS, &tm->refs_off, &tm->refs_len);
        take(s, e, IMAP_SORT_SUBJECT, &tm->subject_off, &tm->subject_len);
        return 0;
    }
    imap_sort_msg *sm = &s->sm[i];
    memset(sm, 0, sizeof(*sm));
    sm->seq = seq;
    sm->num = s->uid ? uid : seq;
    sm->arrival = e->arrival;
    sm->date = e->date;
    sm->size = e->size;
    s->ent[i] = (uint32_t)(e - s->box->v); /* the string keys: by rank, in answer() */
    return 0;
}

/* Sorts the gathered hits (s->sm) by the request's criteria, string keys by their ranks. */
static void sort_hits(sort_cmd *s)
{
    for (int k = 0; k < IMAP_SORT_NSTR; k++) {
        if (!(s->need & (1u << k))) continue;
        kc_ranks(s->box, k);
        for (size_t i = 0; i < s->n; i++)
            s->sm[i].rank[k] = s->box->rank[k][s->ent[i]];
    }
    imap_sort(s->sm, s->n, s->req.crit, s->req.ncrit, NULL);
}

int imap_sort_uids(imap_client *c, const imap_sort_crit *crit, size_t ncrit, uint32_t *uids,
                   size_t n)
{
    sort_cmd *s = calloc(1, sizeof(*s));
    if (!s) abort();
    s->c = c;
    s->uid = true;
    memcpy(s->req.crit, crit, ncrit * sizeof(*crit));
    s->req.ncrit = ncrit;
    for (size_t k = 0; k < ncrit; k++)
        if (crit[k].key < IMAP_SORT_NSTR) s->need |= 1u << crit[k].key;
    s->n = n;
    s->sm = malloc((n ? n : 1) * sizeof(*s->sm));
    s->ent = malloc((n ? n : 1) * sizeof(*s->ent));
    if (!s->sm || !s->ent) abort();
    s->box = kc_take(c, c->sel.mailbox_id);
    store_txn *t = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t seq = imap_seq_of(c, uids[i]);
        rc = seq ? gather_one(c, s, &t, i, seq) : -ENOENT;
    }
    if (t) store_read_end(&t);
    if (rc == 0) {
        sort_hits(s);
        for (size_t i = 0; i < n; i++)
            uids[i] = s->sm[i].num;
    }
    sort_cmd_free(s);
    return rc;
}

static void answer(imap_client *c, sort_cmd *s)
{
    mfs_buf *o = &c->out;
    const char *pool = s->box->pool.data ? s->box->pool.data : "";
    if (s->req.thread) {
        mfs_buf_puts(o, "* THREAD");
        if (s->n) {
            mfs_buf_putc(o, ' ');
            imap_thread(s->req.alg, s->tm, s->n, pool, o);
        }
        mfs_buf_puts(o, "\r\n");
        imap_ok(c, "THREAD completed");
        return;
    }
    sort_hits(s);
    if (s->req.esort) {
        uint32_t *nums = malloc((s->n ? s->n : 1) * sizeof(*nums));
        if (!nums) abort();
        for (size_t i = 0; i < s->n; i++)
            nums[i] = s->sm[i].num;
        /* a MODSEQ key: the highest of the hits (RFC 7162 3.1.9, 3.1.10) */
        imap_esearch_put(c, o, s->uid, &s->req.ret, nums, s->n, imap_search_modseq(s->search));
        if (s->req.ret.update) { /* kept as UIDs in the sort order */
            for (size_t i = 0; i < s->n; i++)
                nums[i] = c->sel.uids[s->sm[i].seq - 1];
            size_t nslots;
            imap_skey *root = imap_search_tree(s->search, &nslots);
            imap_skey_own(root);
            imap_context_add(c, s->uid, s->req.crit, s->req.ncrit, root, nslots, nums, s->n);
        }
        free(nums);
        imap_ok(c, "SORT completed");
        return;
    } else {
        mfs_buf_puts(o, "* SORT");
        mfs_buf_reserve(o, 11 * s->n); /* " 4294967295" at most, each */
        char *w = o->data + o->len;
        for (size_t i = 0; i < s->n; i++) {
            char d[10];
            int k = 0;
            for (uint32_t v = s->sm[i].num; v || !k; v /= 10)
                d[k++] = (char)('0' + v % 10);
            *w++ = ' ';
            while (k)
                *w++ = d[--k];
        }
        o->len = (size_t)(w - o->data);
        o->data[o->len] = '\0';
    }
    uint64_t ms = imap_search_modseq(s->search); /* a MODSEQ key (RFC 7162 3.1.9) */
    if (ms) mfs_buf_printf(o, " (MODSEQ %llu)", (unsigned long long)ms);
    mfs_buf_puts(o, "\r\n");
    imap_ok(c, "SORT completed");
}

/* One step: the search first, then the keys of the hits, then the answer. */
static int sort_step(imap_client *c, void *ctx)
{
    sort_cmd *s = ctx;
    const char *what = s->req.thread ? "THREAD" : "SORT";
    if (!s->searched) {
        int rc = imap_search_more(c, s->search, what, &s->seqs, &s->n);
        if (rc < 0) return 0;
        if (rc > 0) return 1;
        s->searched = true;
        size_t one = s->req.thread ? sizeof(*s->tm) : sizeof(*s->sm);
        void *v = malloc((s->n ? s->n : 1) * one);
        if (!v) abort();
        if (s->req.thread) {
            s->tm = v;
        } else {
            s->sm = v;
            s->ent = malloc((s->n ? s->n : 1) * sizeof(*s->ent));
            if (!s->ent) abort();
        }
        s->box = kc_take(c, c->sel.mailbox_id);
    }
    if (s->pos < s->n) {
        store_txn *t = NULL;
        int64_t until = imap_now_ms() + IMAP_STEP_MS;
        while (s->pos < s->n) {
            int rc = gather_one(c, s, &t, s->pos, s->seqs[s->pos]);
            if (rc < 0) {
                imap_no_store(c, rc, what);
                return 0;
            }
            s->pos++;
            if (s->box->pool.len > POOL_MAX) {
                if (t) store_read_end(&t);
                imap_no(c,
                        "[LIMIT] %s of %zu messages needs more than %u MiB of keys; narrow the "
                        "search",
                        what, s->n, POOL_MAX >> 20);
                return 0;
            }
            if ((s->pos & 63) == 0 && imap_now_ms() >= until) break;
        }
        if (t) store_read_end(&t);
        if (s->pos < s->n) return 1;
    }
    answer(c, s);
    return 0;
}

void imap_sort_start(imap_client *c, const imap_sort_req *req, const imap_arg *args, size_t nargs,
                     size_t i, bool uid)
{
    imap_search_run *search = imap_search_begin(c, args, nargs, i);
    if (!search) return;
    sort_cmd *s = calloc(1, sizeof(*s));
    if (!s) abort();
    s->c = c;
    s->req = *req;
    s->uid = uid;
    s->search = search;
    for (size_t k = 0; k < req->ncrit; k++) /* the string keys to copy */
        if (req->crit[k].key < IMAP_SORT_NSTR) s->need |= 1u << req->crit[k].key;
    /* in steps, so that a big mailbox does not hold up the loop's other sessions */
    c->cont = sort_step;
    c->cont_ctx = s;
    c->cont_free = sort_cmd_free;
}

void imap_cmd_sort(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    imap_sort_req req = {0};
    size_t i = 0;
    if (i < nargs && imap_arg_is_atom(&args[i], "RETURN")) { /* ESORT (RFC 5267) */
        if (i + 1 >= nargs || args[i + 1].type != IMAP_ARG_LIST) {
            imap_bad(c, "RETURN needs a list of return options");
            return;
        }
        if (imap_search_return(c, &args[i + 1], &req.ret) < 0) return;
        req.esort = true;
        i += 2;
    }
    const char *why, *what;
    if (imap_sort_program_parse(i < nargs ? &args[i] : NULL, req.crit, &req.ncrit, &why, &what) <
        0) {
        if (what)
            imap_bad(c,
                     "%s '%.40s' (known: ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM "
                     "DISPLAYTO, each may follow REVERSE)",
                     why, what);
        else
            imap_bad(c, "%s", why);
        return;
    }
    i++;
    if (imap_sort_charset(c, i < nargs ? &args[i] : NULL, "SORT") < 0) return;
    imap_sort_start(c, &req, args, nargs, i + 1, uid);
}
