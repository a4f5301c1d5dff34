/* imap_thread.c: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256), iteratively */
#include "imap/imap_thread.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONE UINT32_MAX

int imap_thread_alg_find(const char *name)
{
    if (strcasecmp(name, "ORDEREDSUBJECT") == 0) return IMAP_THREAD_ORDEREDSUBJECT;
    if (strcasecmp(name, "REFERENCES") == 0) return IMAP_THREAD_REFERENCES;
    return -1;
}

bool imap_msgid_next(const char *s, size_t len, size_t *pos, mfs_buf *out)
{
    size_t i = *pos, start = out->len;
    while (i < len) {
        while (i < len && s[i] != '<')
            i++;
        if (i >= len) break;
        i++;
        mfs_buf_truncate(out, start);
        bool at = false, closed = false;
        while (i < len) {
            char c = s[i];
            if (c == '>') {
                closed = true;
                i++;
                break;
            }
            if (c == '<') break; /* a new start: this one was not an id */
            if (c == '"' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                i++;
                continue;
            }
            if (c == '(') { /* a comment (obsolete syntax) */
                int depth = 0;
                while (i < len) {
                    if (s[i] == '(') depth++;
                    if (s[i] == ')' && --depth == 0) break;
                    i++;
                }
                i++;
                continue;
            }
            if (c == '\\' && i + 1 < len) c = s[++i];
            if (c == '@') at = true;
            mfs_buf_putc(out, c);
            i++;
        }
        if (closed && at && out->len > start) {
            *pos = i;
            return true;
        }
    }
    mfs_buf_truncate(out, start);
    *pos = len;
    return false;
}

/* ---- the tree ------------------------------------------------------------------------- */

typedef struct node {
    uint32_t msg; /* index of the message, NONE for a dummy */
    uint32_t parent, first, last, next, prev;
    uint32_t nkids;
} node;

typedef struct tree {
    const imap_thread_msg *m;
    const char *pool;
    node *v;
    size_t n, cap;
    uint64_t walked; /* loop-check steps so far */
} tree;

static uint32_t node_new(tree *t, uint32_t msg)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        node *g = realloc(t->v, t->cap * sizeof(*g));
        if (!g) abort();
        t->v = g;
    }
    node *x = &t->v[t->n];
    *x =
        (node){.msg = msg, .parent = NONE, .first = NONE, .last = NONE, .next = NONE, .prev = NONE};
    return (uint32_t)t->n++;
}

static void unlink_node(tree *t, uint32_t x)
{
    node *c = &t->v[x];
    if (c->parent == NONE) return;
    node *p = &t->v[c->parent];
    if (c->prev != NONE)
        t->v[c->prev].next = c->next;
    else
        p->first = c->next;
    if (c->next != NONE)
        t->v[c->next].prev = c->prev;
    else
        p->last = c->prev;
    p->nkids--;
    c->parent = c->prev = c->next = NONE;
}

static void add_child(tree *t, uint32_t p, uint32_t x)
{
    node *c = &t->v[x], *pp = &t->v[p];
    c->parent = p;
    c->next = NONE;
    c->prev = pp->last;
    if (pp->last != NONE)
        t->v[pp->last].next = x;
    else
        pp->first = x;
    pp->last = x;
    pp->nkids++;
}

/* Puts the children of X (a child of P) where X is among P's children, and drops X. */
static void splice_up(tree *t, uint32_t x)
{
    node *d = &t->v[x];
    uint32_t p = d->parent, before = d->prev, after = d->next;
    uint32_t first = d->first, last = d->last, nk = d->nkids;
    for (uint32_t k = first; k != NONE; k = t->v[k].next)
        t->v[k].parent = p;
    node *pp = &t->v[p];
    if (first == NONE) { /* no children: just remove it */
        unlink_node(t, x);
        return;
    }
    t->v[first].prev = before;
    t->v[last].next = after;
    if (before != NONE)
        t->v[before].next = first;
    else
        pp->first = first;
    if (after != NONE)
        t->v[after].prev = last;
    else
        pp->last = last;
    pp->nkids += nk - 1;
    d->parent = d->prev = d->next = d->first = d->last = NONE;
    d->nkids = 0;
}

/* True if making A the parent of B would make a loop: A is B or lies below B. */
static bool would_loop(tree *t, uint32_t a, uint32_t b)
{
    if (a == b) return true;
    if (t->v[b].first == NONE) return false; /* B has nothing below it */
    for (uint32_t x = t->v[a].parent; x != NONE; x = t->v[x].parent) {
        if (++t->walked > IMAP_THREAD_WALK_MAX) return true; /* out of budget: no link */
        if (x == b) return true;
    }
    return false;
}

/* ---- the message-id table ------------------------------------------------------------ */

typedef struct idtab {
    uint32_t *slot;      /* node index + 1, 0: empty */
    uint32_t *off, *len; /* per node: its id in IDS (len 0: none) */
    size_t cap, used, ncap;
    mfs_buf ids;
} idtab;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void id_set(idtab *x, uint32_t node_ix, uint32_t off, uint32_t len)
{
    if (node_ix >= x->ncap) {
        size_t nc = x->ncap ? x->ncap : 64;
        while (nc <= node_ix)
            nc *= 2;
        uint32_t *o = realloc(x->off, nc * sizeof(*o)), *l;
        if (!o) abort();
        x->off = o;
        l = realloc(x->len, nc * sizeof(*l));
        if (!l) abort();
        x->len = l;
        memset(x->len + x->ncap, 0, (nc - x->ncap) * sizeof(*l));
        x->ncap = nc;
    }
    x->off[node_ix] = off;
    x->len[node_ix] = len;
}

/* The slot where ID is or would go. */
static size_t id_slot(const idtab *x, const char *id, size_t len)
{
    size_t mask = x->cap - 1, i = (size_t)hash_bytes(id, len) & mask;
    for (;;) {
        uint32_t s = x->slot[i];
        if (s == 0) return i;
        uint32_t nx = s - 1;
        if (x->len[nx] == len && memcmp(x->ids.data + x->off[nx], id, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static void id_grow(idtab *x)
{
    size_t oc = x->cap;
    uint32_t *old = x->slot;
    x->cap = oc ? oc * 2 : 256;
    x->slot = calloc(x->cap, sizeof(*x->slot));
    if (!x->slot) abort();
    for (size_t i = 0; i < oc; i++)
        if (old[i]) {
            uint32_t nx = old[i] - 1;
            x->slot[id_slot(x, x->ids.data + x->off[nx], x->len[nx])] = old[i];
        }
    free(old);
}

/* The node of the id at IDS[off, off + len) (just appended), or NONE; with a table slot for
 * it in *SLOT. */
static uint32_t id_find(idtab *x, uint32_t off, uint32_t len, size_t *slot)
{
    if ((x->used + 1) * 2 > x->cap) id_grow(x);
    *slot = id_slot(x, x->ids.data + off, len);
    return x->slot[*slot] ? x->slot[*slot] - 1 : NONE;
}

static void id_put(idtab *x, size_t slot, uint32_t node_ix, uint32_t off, uint32_t len)
{
    id_set(x, node_ix, off, len);
    x->slot[slot] = node_ix + 1;
    x->used++;
}

/* ---- ordering -------------------------------------------------------------------------- */

/* The message that stands for node X when ordering: X's own, or for a dummy its first
 * child's (the children are sorted first). NONE for a dummy without messages. */
static uint32_t rep_msg(const tree *t, uint32_t x)
{
    for (int guard = 0; guard < 4 && x != NONE; guard++) {
        if (t->v[x].msg != NONE) return t->v[x].msg;
        x = t->v[x].first;
    }
    return NONE;
}

static int cmp_msgs(const imap_thread_msg *m, uint32_t a, uint32_t b)
{
    if (a == b) return 0;
    if (a == NONE) return 1;
    if (b == NONE) return -1;
    if (m[a].date != m[b].date) return m[a].date < m[b].date ? -1 : 1;
    return a < b ? -1 : 1;
}

typedef struct kid_key {
    uint32_t node, msg;
} kid_key;

static int cmp_kids(const void *pa, const void *pb, void *arg)
{
    const kid_key *a = pa, *b = pb;
    return cmp_msgs(arg, a->msg, b->msg);
}

static void sort_children(tree *t, uint32_t p, kid_key **buf, size_t *bufcap)
{
    node *pp = &t->v[p];
    if (pp->nkids < 2) return;
    if (pp->nkids > *bufcap) {
        *bufcap = pp->nkids;
        kid_key *g = realloc(*buf, *bufcap * sizeof(*g));
        if (!g) abort();
        *buf = g;
    }
    size_t k = 0;
    for (uint32_t x = pp->first; x != NONE; x = t->v[x].next)
        (*buf)[k++] = (kid_key){x, rep_msg(t, x)};
    qsort_r(*buf, k, sizeof(**buf), cmp_kids, (void *)t->m);
    uint32_t prev = NONE;
    for (size_t i = 0; i < k; i++) {
        uint32_t x = (*buf)[i].node;
        t->v[x].prev = prev;
        t->v[x].next = NONE;
        if (prev != NONE)
            t->v[prev].next = x;
        else
            pp->first = x;
        prev = x;
    }
    pp->last = prev;
}

/* The nodes below ROOT in preorder (ROOT first). */
static uint32_t *preorder(const tree *t, uint32_t root, size_t *n)
{
    uint32_t *v = malloc(t->n * sizeof(*v)), *stack = malloc(t->n * sizeof(*stack));
    if (!v || !stack) abort();
    size_t k = 0, sp = 0;
    stack[sp++] = root;
    while (sp) {
        uint32_t x = stack[--sp];
        v[k++] = x;
        /* push the children last first, so the first comes out first */
        for (uint32_t c = t->v[x].last; c != NONE; c = t->v[c].prev)
            stack[sp++] = c;
    }
    free(stack);
    *n = k;
    return v;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Appends the thread list of X: "(1 2 (3)(4))" without recursion. */
static void emit(const tree *t, uint32_t x, mfs_buf *out, uint32_t *stack)
{
    size_t sp = 0;
    stack[sp++] = x;
    while (sp) {
        uint32_t top = stack[--sp];
        if (top == NONE) { /* the end of a list */
            mfs_buf_putc(out, ')');
            continue;
        }
        mfs_buf_putc(out, '(');
        bool any = false;
        uint32_t cur = top;
        for (;;) {
            if (t->v[cur].msg != NONE) {
                if (any) mfs_buf_putc(out, ' ');
                mfs_buf_put_u64(out, t->m[t->v[cur].msg].num);
                any = true;
            }
            if (t->v[cur].nkids == 1) {
                cur = t->v[cur].first;
                continue;
            }
            break;
        }
        stack[sp++] = NONE;
        if (t->v[cur].nkids >= 2) {
            if (any) mfs_buf_putc(out, ' ');
            for (uint32_t c = t->v[cur].last; c != NONE; c = t->v[c].prev)
                stack[sp++] = c;
        }
    }
}

/* ---- ORDEREDSUBJECT ------------------------------------------------------------------- */

typedef struct os_ctx {
    const imap_thread_msg *m;
    const char *pool;
} os_ctx;

static int cmp_subject(const imap_thread_msg *a, const imap_thread_msg *b, const char *pool)
{
    uint32_t la = a->subject_len, lb = b->subject_len;
    int r = memcmp(pool + a->subject_off, pool + b->subject_off, la < lb ? la : lb);
    return r ? r : la < lb ? -1 : la > lb;
}

static int cmp_os(const void *pa, const void *pb, void *arg)
{
    const os_ctx *x = arg;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    int r = cmp_subject(&x->m[a], &x->m[b], x->pool);
    return r ? r : cmp_msgs(x->m, a, b);
}

static int cmp_first(const void *pa, const void *pb, void *arg)
{
    const uint32_t *a = pa, *b = pb; /* {start, end} of a thread in the sorted order... */
    const uint32_t *order = ((const uint32_t *const *)arg)[0];
    const imap_thread_msg *m = ((const imap_thread_msg *const *)arg)[1];
    return cmp_msgs(m, order[a[0]], order[b[0]]);
}

static void ordered_subject(const imap_thread_msg *m, size_t n, const char *pool, mfs_buf *out)
{
    uint32_t *order = malloc(n * sizeof(*order)), *threads = malloc(2 * n * sizeof(*threads));
    if (!order || !threads) abort();
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    os_ctx x = {m, pool};
    qsort_r(order, n, sizeof(*order), cmp_os, &x);
    size_t nt = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && cmp_subject(&m[order[i]], &m[order[j]], pool) == 0)
            j++;
        threads[2 * nt] = (uint32_t)i;
        threads[2 * nt + 1] = (uint32_t)j;
        nt++;
        i = j;
    }
    const void *arg[2] = {order, m};
    qsort_r(threads, nt, 2 * sizeof(*threads), cmp_first, (void *)arg);
    for (size_t k = 0; k < nt; k++) {
        uint32_t a = threads[2 * k], b = threads[2 * k + 1];
        mfs_buf_putc(out, '(');
        mfs_buf_put_u64(out, m[order[a]].num);
        if (b - a == 2) {
            mfs_buf_putc(out, ' ');
            mfs_buf_put_u64(out, m[order[a + 1]].num);
        } else if (b - a > 2) {
            mfs_buf_putc(out, ' ');
            for (uint32_t i = a + 1; i < b; i++) {
                mfs_buf_putc(out, '(');
                mfs_buf_put_u64(out, m[order[i]].num);
                mfs_buf_putc(out, ')');
            }
        }
        mfs_buf_putc(out, ')');
    }
    free(order);
    free(threads);
}

/* ---- REFERENCES ------------------------------------------------------------------------ */

/* The subject table of step 5: base subject -> node. */
typedef struct subtab {
    uint32_t *slot; /* node + 1 */
    const char **key;
    uint32_t *klen;
    size_t cap;
} subtab;

static uint32_t *subject_slot(subtab *s, const char *k, uint32_t len)
{
    size_t mask = s->cap - 1, i = (size_t)hash_bytes(k, len) & mask;
    while (s->slot[i] && !(s->klen[i] == len && memcmp(s->key[i], k, len) == 0))
        i = (i + 1) & mask;
    s->key[i] = k;
    s->klen[i] = len;
    return &s->slot[i];
}

static void references(const imap_thread_msg *m, size_t n, const char *pool, mfs_buf *out)
{
    tree t = {.m = m, .pool = pool};
    idtab ids = {0};
    uint32_t *mnode = malloc((n ? n : 1) * sizeof(*mnode));
    if (!mnode) abort();
    /* step 1 */
    for (size_t i = 0; i < n; i++) {
        const imap_thread_msg *mi = &m[i];
        uint32_t self = NONE;
        size_t pos = 0;
        uint32_t off = (uint32_t)ids.ids.len;
        if (imap_msgid_next(pool + mi->msgid_off, mi->msgid_len, &pos, &ids.ids)) {
            uint32_t len = (uint32_t)(ids.ids.len - off);
            size_t slot;
            uint32_t x = id_find(&ids, off, len, &slot);
            if (x == NONE) {
                self = node_new(&t, (uint32_t)i);
                id_put(&ids, slot, self, off, len);
            } else if (t.v[x].msg == NONE) { /* a dummy made for a reference: this is it */
                self = x;
                t.v[x].msg = (uint32_t)i;
                mfs_buf_truncate(&ids.ids, off);
            } else { /* the id is taken by an earlier message: this one gets none */
                mfs_buf_truncate(&ids.ids, off);
            }
        }
        if (self == NONE) self = node_new(&t, (uint32_t)i);
        mnode[i] = self;
        /* the references: References, or else the first id of In-Reply-To */
        uint32_t prev = NONE;
        bool any = false;
        for (int pass = 0; pass < 2 && !any; pass++) {
            const char *s = pool + (pass == 0 ? mi->refs_off : mi->irt_off);
            size_t len = pass == 0 ? mi->refs_len : mi->irt_len;
            pos = 0;
            for (;;) {
                off = (uint32_t)ids.ids.len;
                if (!imap_msgid_next(s, len, &pos, &ids.ids)) break;
                uint32_t rl = (uint32_t)(ids.ids.len - off);
                size_t slot;
                uint32_t r = id_find(&ids, off, rl, &slot);
                if (r == NONE) {
                    r = node_new(&t, NONE);
                    id_put(&ids, slot, r, off, rl);
                } else {
                    mfs_buf_truncate(&ids.ids, off);
                }
                any = true;
                if (prev != NONE && t.v[r].parent == NONE && !would_loop(&t, prev, r))
                    add_child(&t, prev, r); /* (1A) */
                prev = r;
                if (pass == 1) break; /* In-Reply-To: the first id only */
            }
        }
        /* (1B): the old link goes first; the new one only if it makes no loop (so a message
         * whose last reference lies below it ends up with no parent, as in Dovecot) */
        if (t.v[self].parent != prev || prev == NONE) {
            unlink_node(&t, self);
            if (prev != NONE && !would_loop(&t, prev, self)) add_child(&t, prev, self);
        }
    }
    /* step 2: the root */
    uint32_t root = node_new(&t, NONE);
    for (uint32_t x = 0; x < root; x++)
        if (t.v[x].parent == NONE) add_child(&t, root, x);
    /* step 3: prune the dummies, children before parents */
    size_t np;
    uint32_t *pre = preorder(&t, root, &np);
    for (size_t k = np; k-- > 1;) {
        uint32_t x = pre[k];
        if (t.v[x].msg != NONE) continue;
        if (t.v[x].parent != root || t.v[x].nkids <= 1) splice_up(&t, x);
    }
    free(pre);
    /* step 4 */
    kid_key *kb = NULL;
    size_t kcap = 0;
    for (uint32_t x = t.v[root].first; x != NONE; x = t.v[x].next)
        if (t.v[x].msg == NONE) sort_children(&t, x, &kb, &kcap);
    sort_children(&t, root, &kb, &kcap);
    /* step 5: gather by subject */
    subtab st = {0};
    st.cap = 16;
    while (st.cap < 2 * (size_t)t.v[root].nkids + 2)
        st.cap *= 2;
    st.slot = calloc(st.cap, sizeof(*st.slot));
    st.key = calloc(st.cap, sizeof(*st.key));
    st.klen = calloc(st.cap, sizeof(*st.klen));
    if (!st.slot || !st.key || !st.klen) abort();
    for (int phase = 0; phase < 2; phase++) {
        for (uint32_t x = t.v[root].first, nx; x != NONE; x = nx) {
            nx = t.v[x].next;
            uint32_t rm = rep_msg(&t, x);
            if (rm == NONE || m[rm].subject_len == 0) continue;
            uint32_t *sl = subject_slot(&st, pool + m[rm].subject_off, m[rm].subject_len);
            if (phase == 0) { /* (5B) */
                if (*sl == 0) {
                    *sl = x + 1;
                    continue;
                }
                uint32_t have = *sl - 1;
                bool cur_dummy = t.v[x].msg == NONE, have_dummy = t.v[have].msg == NONE;
                if (!have_dummy && (cur_dummy || (m[t.v[have].msg].reply && !m[t.v[x].msg].reply)))
                    *sl = x + 1;
                continue;
            }
            /* (5C) */
            uint32_t have = *sl - 1;
            if (have == x) continue;
            bool cur_dummy = t.v[x].msg == NONE, have_dummy = t.v[have].msg == NONE;
            if (cur_dummy && have_dummy) {
                while (t.v[x].first != NONE) {
                    uint32_t c = t.v[x].first;
                    unlink_node(&t, c);
                    add_child(&t, have, c);
                }
                unlink_node(&t, x);
            } else if (have_dummy && !cur_dummy) {
                unlink_node(&t, x);
                add_child(&t, have, x);
            } else if (!cur_dummy && !have_dummy && m[t.v[x].msg].reply &&
                       !m[t.v[have].msg].reply) {
                unlink_node(&t, x);
                add_child(&t, have, x);
            } else {
                uint32_t d = node_new(&t, NONE);
                /* the dummy takes HAVE's place among the root's children */
                node *h = &t.v[have];
                t.v[d].parent = root;
                t.v[d].prev = h->prev;
                t.v[d].next = h->next;
                if (h->prev != NONE)
                    t.v[h->prev].next = d;
                else
                    t.v[root].first = d;
                if (h->next != NONE)
                    t.v[h->next].prev = d;
                else
                    t.v[root].last = d;
                if (nx == have) nx = d;
                h->parent = h->prev = h->next = NONE;
                add_child(&t, d, have);
                unlink_node(&t, x);
                add_child(&t, d, x);
                *sl = d + 1;
            }
        }
    }
    free(st.slot);
    free(st.key);
    free(st.klen);
    /* step 6: every set of siblings, the deepest first */
    pre = preorder(&t, root, &np);
    for (size_t k = np; k-- > 0;)
        sort_children(&t, pre[k], &kb, &kcap);
    free(pre);
    uint32_t *stack = malloc((t.n + 1) * 2 * sizeof(*stack));
    if (!stack) abort();
    for (uint32_t x = t.v[root].first; x != NONE; x = t.v[x].next)
        emit(&t, x, out, stack);
    free(stack);
    free(kb);
    free(mnode);
    free(ids.slot);
    free(ids.off);
    free(ids.len);
    mfs_buf_free(&ids.ids);
    free(t.v);
}

void imap_thread(enum imap_thread_alg alg, const imap_thread_msg *m, size_t n, const char *pool,
                 mfs_buf *out)
{
    mfs_buf_puts(out, "");
    if (n == 0) return;
    if (!pool) pool = "";
    if (alg == IMAP_THREAD_ORDEREDSUBJECT)
        ordered_subject(m, n, pool, out);
    else
        references(m, n, pool, out);
}
