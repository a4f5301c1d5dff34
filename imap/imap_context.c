/* imap_context.c: RFC 5267 contexts: RETURN options of SEARCH and SORT (PARTIAL, UPDATE), the
 * live results UPDATE keeps, their ADDTO/REMOVEFROM updates, and CANCELUPDATE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_context.h"

typedef struct imap_ctxset imap_ctxset;

/* One live result. */
typedef struct imap_ctx {
    char tag[80];
    bool uid;  /* UID SEARCH / UID SORT: updates carry UIDs, else sequence numbers */
    bool sort; /* SORT: positions are sort positions */
    imap_sort_crit crit[IMAP_SORT_CRITERIA_MAX];
    size_t ncrit;
    imap_skey *root;
    size_t nslots;
    uint32_t *res; /* the result as UIDs, in the requested order */
    size_t n;
    uint32_t *seq_uids; /* the view when the command came (ROOT has sequence-set keys): */
    size_t nseq;        /* ...those keys name the messages that had the numbers then */
    uint32_t max_uid;   /* messages of the view above it are new to the context */
} imap_ctx;

struct imap_ctxset {
    imap_ctx *v[IMAP_CONTEXTS_MAX];
    size_t n;
    uint32_t *dirty; /* UIDs whose flags changed since the last imap_context_sync */
    size_t ndirty, cap;
    bool all; /* look at every message */
};

/* ---- RETURN options and the ESEARCH answer ---------------------------------------------- */

static imap_ctx *ctx_find(const imap_selected *s, const char *tag, size_t *at)
{
    for (size_t i = 0; s->ctx && i < s->ctx->n; i++) {
        if (strcmp(s->ctx->v[i]->tag, tag) == 0) {
            if (at) *at = i;
            return s->ctx->v[i];
        }
    }
    return NULL;
}

/* Parses "m:n" (two non-zero 32-bit numbers; either order) into *LO <= *HI. */
static int partial_range(const char *s, uint32_t *lo, uint32_t *hi)
{
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (*s < '0' || *s > '9') return -1;
        while (*s >= '0' && *s <= '9') {
            v[k] = v[k] * 10 + (uint64_t)(*s++ - '0');
            if (v[k] > UINT32_MAX) return -1;
        }
        if (v[k] == 0) return -1;
        if (k == 0 && *s++ != ':') return -1;
    }
    if (*s) return -1;
    *lo = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
    *hi = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
    return 0;
}

int imap_search_return(imap_client *c, const imap_arg *list, imap_search_ret *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t k = 0; k < list->count; k++) {
        const imap_arg *o = &list->list[k];
        if (imap_arg_is_atom(o, "MIN")) {
            r->ret |= IMAP_RET_MIN;
        } else if (imap_arg_is_atom(o, "MAX")) {
            r->ret |= IMAP_RET_MAX;
        } else if (imap_arg_is_atom(o, "COUNT")) {
            r->ret |= IMAP_RET_COUNT;
        } else if (imap_arg_is_atom(o, "ALL")) {
            r->ret |= IMAP_RET_ALL;
        } else if (imap_arg_is_atom(o, "UPDATE")) {
            r->update = true;
        } else if (imap_arg_is_atom(o, "SAVE")) {
            r->save = true;
        } else if (imap_arg_is_atom(o, "CONTEXT")) {
            /* a hint (RFC 5267 4.2): every search is evaluated afresh anyway */
        } else if (imap_arg_is_atom(o, "PARTIAL")) {
            if (r->plo) {
                imap_bad(c, "PARTIAL may be given once");
                return -1;
            }
            const imap_arg *a = k + 1 < list->count ? &list->list[k + 1] : NULL;
            if (!a || a->type != IMAP_ARG_ATOM || partial_range(a->str, &r->plo, &r->phi) < 0) {
                imap_bad(c,
                         "PARTIAL needs a range of two non-zero numbers such as 1:100, not '%.40s'",
                         a && a->type != IMAP_ARG_LIST ? a->str : "");
                return -1;
            }
            k++;
        } else {
            imap_bad(c,
                     "unknown RETURN option '%.40s' (known: MIN MAX COUNT ALL PARTIAL UPDATE "
                     "CONTEXT SAVE)",
                     o->type == IMAP_ARG_LIST ? "(...)" : o->str);
            return -1;
        }
    }
    if ((r->ret & IMAP_RET_ALL) && r->plo) {
        imap_bad(c, "RETURN may not have both ALL and PARTIAL (RFC 5267 4.4)");
        return -1;
    }
    /* () or (CONTEXT): ALL; (SAVE) alone answers nothing but OK (RFC 5182 2.1) */
    if (!r->ret && !r->plo && !r->update && !r->save) r->ret = IMAP_RET_ALL;
    if (r->update && ctx_find(&c->sel, c->tag, NULL)) {
        imap_bad(c, "tag '%s' already names a search with UPDATE: use a new tag", c->tag);
        return -1;
    }
    return 0;
}

void imap_context_put_set(mfs_buf *o, const uint32_t *nums, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && nums[j + 1] == nums[j] + 1)
            j++;
        if (i) mfs_buf_putc(o, ',');
        mfs_buf_put_u64(o, nums[i]);
        if (j > i) {
            mfs_buf_putc(o, ':');
            mfs_buf_put_u64(o, nums[j]);
        }
        i = j + 1;
    }
}

void imap_esearch_put(imap_client *c, mfs_buf *o, bool uid, const imap_search_ret *r,
                      const uint32_t *nums, size_t n, uint64_t modseq)
{
    mfs_buf_printf(o, "* ESEARCH (TAG \"%s\")", c->tag);
    if (uid) mfs_buf_puts(o, " UID");
    if (n && (r->ret & IMAP_RET_MIN)) mfs_buf_printf(o, " MIN %u", nums[0]);
    if (n && (r->ret & IMAP_RET_MAX)) mfs_buf_printf(o, " MAX %u", nums[n - 1]);
    if (r->ret & IMAP_RET_COUNT) mfs_buf_printf(o, " COUNT %zu", n);
    if (n && (r->ret & IMAP_RET_ALL)) {
        mfs_buf_puts(o, " ALL ");
        imap_context_put_set(o, nums, n);
    }
    if (r->plo) {
        mfs_buf_printf(o, " PARTIAL (%u:%u ", r->plo, r->phi);
        if (r->plo > n) {
            mfs_buf_puts(o, "NIL");
        } else {
            size_t end = r->phi < n ? r->phi : n;
            imap_context_put_set(o, nums + r->plo - 1, end - (r->plo - 1));
        }
        mfs_buf_putc(o, ')');
    }
    if (modseq) mfs_buf_printf(o, " MODSEQ %llu", (unsigned long long)modseq); /* RFC 7162 */
    mfs_buf_puts(o, "\r\n");
}

/* ---- the contexts ----------------------------------------------------------------------- */

static void ctx_free(imap_ctx *x)
{
    imap_skey_free(x->root);
    free(x->res);
    free(x->seq_uids);
    free(x);
}

void imap_context_clear(imap_selected *s)
{
    if (!s->ctx) return;
    for (size_t i = 0; i < s->ctx->n; i++)
        ctx_free(s->ctx->v[i]);
    free(s->ctx->dirty);
    free(s->ctx);
    s->ctx = NULL;
}

static uint32_t *dup_u32(const uint32_t *v, size_t n)
{
    uint32_t *p = malloc((n ? n : 1) * sizeof(*p));
    if (!p) abort();
    if (n) memcpy(p, v, n * sizeof(*p));
    return p;
}

void imap_context_add(imap_client *c, bool uid, const imap_sort_crit *crit, size_t ncrit,
                      imap_skey *root, size_t nslots, const uint32_t *uids, size_t n)
{
    imap_selected *s = &c->sel;
    if (!s->ctx) {
        s->ctx = calloc(1, sizeof(*s->ctx));
        if (!s->ctx) abort();
    }
    if (s->ctx->n >= IMAP_CONTEXTS_MAX) {
        mfs_buf_printf(&c->out,
                       "* NO [NOUPDATE \"%s\"] at most %d searches are kept up to date per "
                       "session: CANCELUPDATE one first\r\n",
                       c->tag, IMAP_CONTEXTS_MAX);
        imap_skey_free(root);
        return;
    }
    imap_ctx *x = calloc(1, sizeof(*x));
    if (!x) abort();
    snprintf(x->tag, sizeof(x->tag), "%s", c->tag);
    x->uid = uid;
    x->sort = crit != NULL;
    if (crit) memcpy(x->crit, crit, ncrit * sizeof(*crit));
    x->ncrit = ncrit;
    x->root = root;
    x->nslots = nslots;
    x->res = dup_u32(uids, n);
    x->n = n;
    if (imap_skey_has(root, IMAP_SK_SEQ)) {
        x->seq_uids = dup_u32(s->uids, s->n);
        x->nseq = s->n;
    }
    x->max_uid = s->n ? s->uids[s->n - 1] : 0;
    s->ctx->v[s->ctx->n++] = x;
}

void imap_context_touch(imap_selected *s, uint32_t uid)
{
    imap_ctxset *cs = s->ctx;
    if (!cs || !cs->n || cs->all) return;
    if (cs->ndirty > 2 * s->n + 64) { /* more changes than messages: look at them all */
        cs->all = true;
        cs->ndirty = 0;
        return;
    }
    if (cs->ndirty == cs->cap) {
        cs->cap = cs->cap ? 2 * cs->cap : 64;
        uint32_t *p = realloc(cs->dirty, cs->cap * sizeof(*p));
        if (!p) abort();
        cs->dirty = p;
    }
    cs->dirty[cs->ndirty++] = uid;
}

void imap_context_touch_all(imap_selected *s)
{
    if (s->ctx && s->ctx->n) s->ctx->all = true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool has(const uint32_t *v, size_t n, uint32_t x)
{
    return n && bsearch(&x, v, n, sizeof(*v), cmp_u32) != NULL;
}

/* What the client is shown for UID: the UID, or its sequence number less SHIFT (EXPUNGEs
 * already announced below it). */
static uint32_t shown(const imap_client *c, const imap_ctx *x, uint32_t uid, uint32_t shift)
{
    return x->uid ? uid : imap_seq_of(c, uid) - shift;
}

static void line_start(imap_client *c, const imap_ctx *x, const char *item)
{
    mfs_buf_printf(&c->out, "* ESEARCH (TAG \"%s\")%s %s (", x->tag, x->uid ? " UID" : "", item);
}

/* Appends the set of the N UIDS as the client is shown them. */
static void put_shown(imap_client *c, const imap_ctx *x, const uint32_t *uids, size_t n,
                      uint32_t shift, uint32_t *scratch)
{
    for (size_t i = 0; i < n; i++)
        scratch[i] = shown(c, x, uids[i], shift);
    imap_context_put_set(&c->out, scratch, n);
}

/* Removes the members of X found in sorted GONE (NG UIDs) and appends their REMOVEFROM:
 * position 0 and the set in mailbox order for SEARCH, runs at their sort positions for SORT. */
static void ctx_remove(imap_client *c, imap_ctx *x, const uint32_t *gone, size_t ng, uint32_t shift)
{
    size_t nd = 0;
    for (size_t i = 0; i < x->n; i++)
        nd += has(gone, ng, x->res[i]);
    if (!nd) return;
    uint32_t *scratch = malloc(x->n * sizeof(*scratch));
    if (!scratch) abort();
    line_start(c, x, "REMOVEFROM");
    if (!x->sort) {
        mfs_buf_puts(&c->out, "0 ");
        size_t k = 0;
        for (size_t i = 0; i < x->n; i++)
            if (has(gone, ng, x->res[i])) scratch[k++] = shown(c, x, x->res[i], shift);
        imap_context_put_set(&c->out, scratch, k);
    } else {
        size_t removed = 0;
        for (size_t i = 0; i < x->n;) {
            if (!has(gone, ng, x->res[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < x->n && has(gone, ng, x->res[j]))
                j++;
            if (removed) mfs_buf_putc(&c->out, ' ');
            mfs_buf_printf(&c->out, "%zu ", i + 1 - removed);
            put_shown(c, x, x->res + i, j - i, shift, scratch);
            removed += j - i;
            i = j;
        }
    }
    mfs_buf_puts(&c->out, ")\r\n");
    size_t w = 0;
    for (size_t i = 0; i < x->n; i++)
        if (!has(gone, ng, x->res[i])) x->res[w++] = x->res[i];
    x->n = w;
    free(scratch);
}

/* Adds the NA UIDS ADDS (ascending, none of them members) to X in the requested order and
 * appends their ADDTO: position 0 for SEARCH, runs at their sort positions for SORT. */
static void ctx_add(imap_client *c, imap_ctx *x, const uint32_t *adds, size_t na)
{
    if (!na) return;
    uint32_t *res = malloc((x->n + na) * sizeof(*res));
    if (!res) abort();
    if (x->n) memcpy(res, x->res, x->n * sizeof(*res));
    memcpy(res + x->n, adds, na * sizeof(*res));
    size_t n = x->n + na;
    if (!x->sort || imap_sort_uids(c, x->crit, x->ncrit, res, n) != 0)
        qsort(res, n, sizeof(*res), cmp_u32); /* (a store error: mailbox order, as SEARCH) */
    uint32_t *scratch = malloc(n * sizeof(*scratch));
    if (!scratch) abort();
    line_start(c, x, "ADDTO");
    if (!x->sort) {
        mfs_buf_puts(&c->out, "0 ");
        put_shown(c, x, adds, na, 0, scratch);
    } else {
        bool first = true;
        for (size_t i = 0; i < n;) {
            if (!has(adds, na, res[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && has(adds, na, res[j]))
                j++;
            mfs_buf_printf(&c->out, "%s%zu ", first ? "" : " ", i + 1);
            put_shown(c, x, res + i, j - i, 0, scratch);
            first = false;
            i = j;
        }
    }
    mfs_buf_puts(&c->out, ")\r\n");
    free(x->res);
    x->res = res;
    x->n = n;
    free(scratch);
}

void imap_context_expunge(imap_client *c, const uint32_t *uids, size_t n, uint32_t shift)
{
    imap_ctxset *cs = c->sel.ctx;
    for (size_t i = 0; cs && i < cs->n; i++)
        ctx_remove(c, cs->v[i], uids, n, shift);
}

/* The number UID had in the view when X's command came (0: none then). */
static uint32_t seq_then(const imap_client *c, const imap_ctx *x, uint32_t uid)
{
    if (!x->seq_uids) return imap_seq_of(c, uid);
    const uint32_t *p = x->nseq ? bsearch(&uid, x->seq_uids, x->nseq, sizeof(uid), cmp_u32) : NULL;
    return p ? (uint32_t)(p - x->seq_uids) + 1 : 0;
}

static void push(uint32_t **v, size_t *n, uint32_t x)
{
    uint32_t *p = realloc(*v, (*n + 1) * sizeof(*p));
    if (!p) abort();
    *v = p;
    p[(*n)++] = x;
}

/* Looks again at the message UID for X: into *DELS or *ADDS when it stopped or started
 * matching. MEMBERS is X's result, sorted. */
static void recheck(imap_client *c, store_txn *t, imap_ctx *x, const uint32_t *members,
                    uint32_t uid, uint32_t **dels, size_t *nd, uint32_t **adds, size_t *na)
{
    if (!imap_seq_of(c, uid)) return;
    bool was = has(members, x->n, uid);
    bool now = imap_search_match(c, t, x->root, x->nslots, uid, seq_then(c, x, uid));
    if (was && !now) push(dels, nd, uid);
    if (!was && now) push(adds, na, uid);
}

void imap_context_sync(imap_client *c, store_txn *t)
{
    imap_selected *s = &c->sel;
    imap_ctxset *cs = s->ctx;
    if (!cs) return;
    if (cs->ndirty) qsort(cs->dirty, cs->ndirty, sizeof(uint32_t), cmp_u32); /* NULL when 0 */
    size_t w = 0;
    for (size_t i = 0; i < cs->ndirty; i++)
        if (!w || cs->dirty[i] != cs->dirty[w - 1]) cs->dirty[w++] = cs->dirty[i];
    cs->ndirty = w;
    uint32_t top = s->n ? s->uids[s->n - 1] : 0;
    for (size_t k = 0; k < cs->n; k++) {
        imap_ctx *x = cs->v[k];
        if (!cs->all && !cs->ndirty && x->max_uid >= top) continue;
        uint32_t *members = dup_u32(x->res, x->n);
        if (x->n > 1) qsort(members, x->n, sizeof(*members), cmp_u32);
        uint32_t *dels = NULL, *adds = NULL;
        size_t nd = 0, na = 0;
        if (cs->all) {
            for (size_t i = 0; i < s->n; i++)
                recheck(c, t, x, members, s->uids[i], &dels, &nd, &adds, &na);
        } else {
            for (size_t i = 0; i < cs->ndirty; i++)
                if (cs->dirty[i] <= x->max_uid)
                    recheck(c, t, x, members, cs->dirty[i], &dels, &nd, &adds, &na);
            /* the new messages, after the EXISTS that made their numbers valid */
            for (size_t i = 0; i < s->n; i++)
                if (s->uids[i] > x->max_uid)
                    recheck(c, t, x, members, s->uids[i], &dels, &nd, &adds, &na);
        }
        x->max_uid = top > x->max_uid ? top : x->max_uid;
        free(members);
        if (nd > 1) qsort(dels, nd, sizeof(uint32_t), cmp_u32);
        if (na > 1) qsort(adds, na, sizeof(uint32_t), cmp_u32);
        ctx_remove(c, x, dels, nd, 0);
        ctx_add(c, x, adds, na);
        free(dels);
        free(adds);
    }
    cs->ndirty = 0;
    cs->all = false;
}

/* ---- CANCELUPDATE "tag" ... (RFC 5267 4.3.5) -------------------------------------------- */

void imap_cmd_cancelupdate(imap_client *c, const imap_command *cmd, const imap_arg *args,
                           size_t nargs, bool uid)
{
    (void)cmd;
    (void)uid;
    if (nargs == 0) {
        imap_bad(c, "CANCELUPDATE needs the tags of the searches to stop updating");
        return;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (!imap_arg_is_string(&args[i])) {
            imap_bad(c, "CANCELUPDATE takes quoted tags");
            return;
        }
        if (!ctx_find(&c->sel, args[i].str, NULL)) {
            imap_bad(c, "no search with UPDATE has the tag '%.40s'", args[i].str);
            return;
        }
    }
    for (size_t i = 0; i < nargs; i++) {
        size_t at;
        imap_ctx *x = ctx_find(&c->sel, args[i].str, &at);
        if (!x) continue; /* named twice */
        ctx_free(x);
        c->sel.ctx->v[at] = c->sel.ctx->v[--c->sel.ctx->n];
    }
    imap_ok(c, "no further updates");
}
