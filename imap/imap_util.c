/* imap_util.c: helpers the commands share: mailbox names, flags, sequence sets, the mailbox list */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_int.h"
#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"

int imap_mailbox_decode(const imap_client *c, const char *s, size_t len, bool pattern, char *out,
                        size_t outlen)
{
    mfs_buf b = {0};
    int rc = 0;
    if (imap_has_8bit(s, len)) {
        /* UTF-8: what UTF8=ACCEPT clients send; tolerated from others when well-formed */
        if (!imap_utf8_valid(s, len)) return -EILSEQ;
        mfs_buf_append(&b, s, len);
    } else if (c->utf8) {
        mfs_buf_append(&b, s, len);
    } else if (imap_utf7_decode(s, len, &b) < 0) {
        b.len = 0;
        bool printable = true;
        for (size_t i = 0; i < len; i++)
            printable = printable && s[i] >= 0x20 && s[i] < 0x7f;
        if (!pattern || !printable) {
            mfs_buf_free(&b);
            return -EINVAL;
        }
        mfs_buf_append(&b, s, len);
    }
    if (b.len == 0) mfs_buf_puts(&b, "");
    if (b.len >= outlen || memchr(b.data, '\0', b.len)) {
        rc = -ENAMETOOLONG;
    } else {
        memcpy(out, b.data, b.len + 1);
        if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
            memcpy(out, "INBOX", 5);
    }
    mfs_buf_free(&b);
    return rc;
}

/* A mailbox name, or with 'pattern' a LIST pattern. A string that is not a valid name is not a
 * syntax error: SELECT and the rest answer NO (imaptest's atoms script, as Dovecot does), and a
 * LIST pattern that is not valid modified UTF-7 is taken as written. */
static int mailbox_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen, bool pattern)
{
    if (!imap_arg_is_string(a)) {
        imap_bad(c, "missing mailbox name");
        return -1;
    }
    int rc = imap_mailbox_decode(c, a->str, a->len, pattern, out, outlen);
    if (rc == -EILSEQ) {
        imap_no(c, "[CANNOT] mailbox name is not valid UTF-8; send it in UTF-8 or in "
                   "modified UTF-7 (RFC 3501 5.1.3)");
    } else if (rc == -EINVAL) {
        mfs_buf q = {0};
        imap_quote_string(&q, a->str, a->len < 200 ? a->len : 200, false);
        imap_no(c,
                "[CANNOT] mailbox name %s is not valid modified UTF-7 (RFC 3501 5.1.3): "
                "write '&' as \"&-\", other non-ASCII as \"&...-\" runs",
                q.data ? q.data : "");
        mfs_buf_free(&q);
    } else if (rc < 0) {
        imap_bad(c, "mailbox name too long");
    }
    return rc < 0 ? -1 : 0;
}

int imap_mailbox_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen)
{
    return mailbox_arg(c, a, out, outlen, false);
}

int imap_pattern_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen)
{
    return mailbox_arg(c, a, out, outlen, true);
}

void imap_mailbox_put(imap_client *c, mfs_buf *b, const char *name)
{
    size_t len = strlen(name);
    if (c->utf8 || !imap_has_8bit(name, len)) {
        if (!c->utf8 && strchr(name, '&')) {
            mfs_buf e = {0};
            imap_utf7_encode(name, len, &e);
            imap_quote_string(b, e.data ? e.data : "", e.len, false);
            mfs_buf_free(&e);
            return;
        }
        imap_quote_string(b, name, len, c->utf8);
        return;
    }
    mfs_buf e = {0};
    if (imap_utf7_encode(name, len, &e) < 0) {
        imap_quote_string(b, name, len, true); /* not UTF-8: send as is rather than hide it */
    } else {
        imap_quote_string(b, e.data, e.len, false);
    }
    mfs_buf_free(&e);
}

void imap_flags_put(mfs_buf *b, uint32_t flags, const char *keywords)
{
    mfs_buf_putc(b, '(');
    bool first = true;
    uint32_t bit;
    const char *name;
    for (size_t i = 0; (name = store_sysflag(i, &bit)) != NULL; i++) {
        if (flags & bit) {
            if (!first) mfs_buf_putc(b, ' ');
            mfs_buf_puts(b, name);
            first = false;
        }
    }
    /* keywords may come from other writers (the mount): send only those that are atoms */
    while (keywords && *keywords) {
        const char *sp = strchr(keywords, ' ');
        size_t l = sp ? (size_t)(sp - keywords) : strlen(keywords);
        if (store_keyword_valid(keywords, l)) {
            if (!first) mfs_buf_putc(b, ' ');
            mfs_buf_append(b, keywords, l);
            first = false;
        }
        keywords = sp ? sp + 1 : keywords + l;
    }
    mfs_buf_putc(b, ')');
}

bool imap_keywords_add(imap_selected *s, const char *kws)
{
    bool added = false;
    while (kws && *kws && s->nkeywords < IMAP_KEYWORDS_MAX) {
        const char *sp = strchr(kws, ' ');
        size_t l = sp ? (size_t)(sp - kws) : strlen(kws);
        if (l) {
            char key[STORE_KEYWORDS_MAX + 3];
            if (l + 3 > sizeof(key)) l = sizeof(key) - 3;
            key[0] = ' ';
            memcpy(key + 1, kws, l);
            key[l + 1] = ' ';
            key[l + 2] = '\0';
            if (!s->keywords.data || !strcasestr(s->keywords.data, key)) {
                if (!s->keywords.len) mfs_buf_putc(&s->keywords, ' ');
                mfs_buf_append(&s->keywords, key + 1, l + 1);
                s->nkeywords++;
                added = true;
            }
        }
        kws = sp ? sp + 1 : kws + l;
    }
    return added;
}

void imap_keywords_put(imap_client *c)
{
    const mfs_buf *k = &c->sel.keywords;
    const char *kw = k->len ? k->data : "";
    int kwl = k->len ? (int)k->len - 1 : 0; /* without the trailing space */
    mfs_buf_printf(&c->out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%.*s)\r\n", kwl,
                   kw);
    mfs_buf_printf(&c->out,
                   "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%.*s "
                   "\\*)] flags permitted\r\n",
                   kwl, kw);
}

void imap_keywords_announce(imap_client *c, const char *keywords)
{
    if (c->state == IMAP_ST_SELECTED && keywords && keywords[0] &&
        imap_keywords_add(&c->sel, keywords))
        imap_keywords_put(c);
}

void imap_flags_put_msg(imap_client *c, mfs_buf *b, uint32_t uid, uint32_t flags,
                        const char *keywords)
{
    if (!imap_is_recent(c, uid)) {
        imap_flags_put(b, flags, keywords);
        return;
    }
    imap_flags_put(b, flags, keywords);
    b->len--; /* reopen the list */
    mfs_buf_puts(b, b->data[b->len - 1] == '(' ? "\\Recent)" : " \\Recent)");
}

static int flag_one(imap_client *c, const imap_arg *a, uint32_t *flags, mfs_buf *kw)
{
    if (a->type != IMAP_ARG_ATOM) {
        imap_bad(c, "flags must be atoms");
        return -1;
    }
    if (a->str[0] == '\\') {
        uint32_t bit = store_sysflag_bit(a->str, a->len);
        if (bit) {
            *flags |= bit;
            return 0;
        }
        /* \Recent cannot be set: IMAP clients send it back now and then, so it is ignored (the
         * mount, where it is nobody's habit, refuses it: store_flags_parse) */
        if (strcasecmp(a->str, "\\Recent") == 0) return 0;
        imap_bad(c, "unknown system flag '%.40s'", a->str);
        return -1;
    }
    if (!store_keyword_valid(a->str, a->len)) {
        imap_bad(c, "invalid keyword '%.40s'", a->str);
        return -1;
    }
    /* skip duplicates (case-insensitive, as IMAP compares keywords) */
    const char *p = kw->data;
    while (p && *p) {
        const char *sp = strchr(p, ' ');
        size_t l = sp ? (size_t)(sp - p) : strlen(p);
        if (l == a->len && strncasecmp(p, a->str, l) == 0) return 0;
        p = sp ? sp + 1 : p + l;
    }
    if (kw->len + a->len + 1 > STORE_KEYWORDS_MAX) {
        imap_no(c, "[LIMIT] too many keywords");
        return -1;
    }
    if (kw->len) mfs_buf_putc(kw, ' ');
    mfs_buf_append(kw, a->str, a->len);
    return 0;
}

int imap_flags_parse(imap_client *c, const imap_arg *a, uint32_t *flags, mfs_buf *kw)
{
    *flags = 0;
    kw->len = 0;
    mfs_buf_puts(kw, "");
    if (a->type == IMAP_ARG_LIST) {
        for (size_t i = 0; i < a->count; i++)
            if (flag_one(c, &a->list[i], flags, kw) < 0) return -1;
        return 0;
    }
    return flag_one(c, a, flags, kw);
}

int imap_arg_number(const imap_arg *a, uint64_t *out)
{
    if (!a || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < a->len; i++) {
        if (!isdigit((unsigned char)a->str[i])) return -1;
        v = v * 10 + (uint64_t)(a->str[i] - '0');
    }
    *out = v;
    return 0;
}

uint32_t imap_seq_of(const imap_client *c, uint32_t uid)
{
    size_t lo = 0, hi = c->sel.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->sel.uids[mid] < uid)
            lo = mid + 1;
        else if (c->sel.uids[mid] > uid)
            hi = mid;
        else
            return (uint32_t)mid + 1;
    }
    return 0;
}

int imap_set_resolve(imap_client *c, const imap_arg *a, bool uid, uint32_t **uids, uint32_t **seqs,
                     size_t *n)
{
    *uids = *seqs = NULL;
    *n = 0;
    if (!a || a->type != IMAP_ARG_ATOM) {
        imap_bad(c, "missing sequence set");
        return -1;
    }
    const imap_selected *s = &c->sel;
    if (a->len == 1 && a->str[0] == '$') { /* SEARCHRES: the saved UIDs still in the view */
        *uids = malloc((s->nsaved ? s->nsaved : 1) * sizeof(uint32_t));
        *seqs = malloc((s->nsaved ? s->nsaved : 1) * sizeof(uint32_t));
        if (!*uids || !*seqs) abort();
        for (size_t k = 0; k < s->nsaved; k++) {
            uint32_t seq = imap_seq_of(c, s->saved[k]);
            if (!seq) continue;
            (*seqs)[*n] = seq;
            (*uids)[(*n)++] = s->saved[k];
        }
        (void)uid; /* "$" names the same messages with UID or without */
        return 0;
    }
    imap_seqset set;
    const char *why;
    if (imap_seqset_parse(a->str, a->len, 0, &set, &why) < 0) {
        imap_bad(c, "%s", why);
        return -1;
    }
    if (!uid) {
        /* '*' on an empty mailbox, or numbers past the end, are errors (RFC 9051 6.4.8) */
        imap_seqset_resolve(&set, (uint32_t)s->n);
        if (set.n && (set.r[set.n - 1].hi > s->n || set.r[0].lo == 0)) {
            imap_seqset_free(&set);
            imap_bad(c, "invalid sequence number: the mailbox has %zu messages", s->n);
            return -1;
        }
    } else {
        imap_seqset_resolve(&set, s->n ? s->uids[s->n - 1] : 0);
    }
    size_t cap = 0;
    if (!uid) {
        cap = (size_t)imap_seqset_count(&set);
    } else {
        cap = s->n < imap_seqset_count(&set) ? s->n : (size_t)imap_seqset_count(&set);
    }
    *uids = malloc((cap ? cap : 1) * sizeof(uint32_t));
    *seqs = malloc((cap ? cap : 1) * sizeof(uint32_t));
    if (!*uids || !*seqs) abort();
    if (!uid) {
        for (size_t r = 0; r < set.n; r++)
            for (uint64_t q = set.r[r].lo; q <= set.r[r].hi; q++) {
                (*seqs)[*n] = (uint32_t)q;
                (*uids)[*n] = s->uids[q - 1];
                (*n)++;
            }
    } else {
        for (size_t i = 0; i < s->n; i++)
            if (imap_seqset_contains(&set, s->uids[i])) {
                (*seqs)[*n] = (uint32_t)i + 1;
                (*uids)[*n] = s->uids[i];
                (*n)++;
            }
    }
    imap_seqset_free(&set);
    return 0;
}

void imap_batch_start(imap_batch *b)
{
    /* the first batch is small: how long this disk takes to commit is not known yet */
    if (!b->max) b->max = 64;
    b->until = imap_now_ms() + IMAP_STEP_MS;
    b->items = 0;
    b->work_end = 0;
}

bool imap_batch_more(const imap_batch *b, size_t done)
{
    return done < b->max && imap_now_ms() < b->until;
}

void imap_batch_worked(imap_batch *b, size_t done)
{
    b->items = done;
    b->work_end = imap_now_ms();
}

void imap_batch_done(imap_batch *b)
{
    if (!b->work_end || !b->items) return;
    int64_t commit = imap_now_ms() - b->work_end;
    if (commit > IMAP_COMMIT_MS) {
        size_t fit = (size_t)((int64_t)b->items * IMAP_COMMIT_MS / commit);
        b->max = fit > 8 ? fit : 8;
    } else if (commit < IMAP_COMMIT_MS / 2 && b->items >= b->max) {
        b->max *= 2; /* the time still bounds it */
    }
}

/* ---- the mailbox list of LIST and LSUB ------------------------------------------------ */

enum { MBL_MAILBOXES, MBL_SUBSCRIPTIONS, MBL_SORT, MBL_SCAN, MBL_DONE };

/* An ancestor of the name being scanned: an entry of the list, or a missing parent that some
 * pattern matches (LEN bytes of entry GEN's name). */
typedef struct imap_mbstack {
    uint32_t idx; /* the entry; UINT32_MAX for a missing parent */
    uint32_t gen; /* the entry whose name it is a prefix of */
    uint16_t len;
    uint8_t flags;
} imap_mbstack;

static const char *mb_name(const imap_mblist *l, const imap_mbentry *e)
{
    return l->names.data + e->name;
}

const char *imap_mblist_name(const imap_mblist *l, const imap_mbentry *e, char *buf)
{
    memcpy(buf, mb_name(l, e), e->len);
    buf[e->len] = '\0';
    return buf;
}

void imap_mblist_free(imap_mblist *l)
{
    free(l->v);
    free(l->stack);
    free(l->extra);
    mfs_buf_free(&l->names);
    memset(l, 0, sizeof(*l));
}

static imap_mbentry *mb_push(imap_mbentry **v, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        imap_mbentry *g = realloc(*v, *cap * sizeof(**v));
        if (!g) abort();
        *v = g;
    }
    imap_mbentry *e = &(*v)[(*n)++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void mb_add(imap_mblist *l, const char *name, uint32_t id, uint32_t su, uint8_t flags)
{
    size_t len = strlen(name);
    imap_mbentry *e = mb_push(&l->v, &l->n, &l->cap);
    e->name = (uint32_t)l->names.len;
    e->len = (uint16_t)len;
    e->id = id;
    e->special_use = (uint8_t)su;
    e->flags = flags;
    mfs_buf_append(&l->names, name, len + 1);
}

typedef struct mbl_read {
    imap_mblist *l;
    int64_t until;
} mbl_read;

static int read_mailbox(void *ctx, const store_mailbox *mb)
{
    mbl_read *r = ctx;
    mb_add(r->l, mb->name, mb->id, mb->special_use, 0);
    snprintf(r->l->after, sizeof(r->l->after), "%s", mb->name);
    return imap_now_ms() >= r->until ? 1 : 0;
}

/* The subscriptions come in byte order, as the mailboxes did: one merge marks the
 * mailboxes subscribed and adds the names no mailbox has. */
static int read_subscription(void *ctx, const char *name)
{
    mbl_read *r = ctx;
    imap_mblist *l = r->l;
    int cmp = 1;
    while (l->merge < l->pos && (cmp = strcmp(mb_name(l, &l->v[l->merge]), name)) < 0)
        l->merge++;
    if (l->merge < l->pos && cmp == 0)
        l->v[l->merge].flags |= IMAP_MB_SUBSCRIBED;
    else
        mb_add(l, name, 0, 0, IMAP_MB_SUBSCRIBED);
    snprintf(l->after, sizeof(l->after), "%s", name);
    return imap_now_ms() >= r->until ? 1 : 0;
}

/* Byte order with '/' below every other byte: a name's descendants follow it directly
 * ("a", "a/b", "a b" rather than "a", "a b", "a/b"). NAMES: the list's names. */
static int path_cmp(const void *pa, const void *pb, void *names)
{
    const imap_mbentry *a = pa, *b = pb;
    const unsigned char *x = (const unsigned char *)names + a->name,
                        *y = (const unsigned char *)names + b->name;
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
        int cx = x[i] == '/' ? 0 : x[i], cy = y[i] == '/' ? 0 : y[i];
        if (cx != cy) return cx - cy;
    }
    return (a->len > b->len) - (a->len < b->len);
}

static const char *stack_name(const imap_mblist *l, const imap_mbstack *s)
{
    return mb_name(l, &l->v[s->gen]);
}

/* Pops the top of the stack: its flags are final; they go to its entry (or, for a missing
 * parent worth showing, to a new entry) and what it says about descendants to its parent. */
static void stack_pop(imap_mblist *l)
{
    imap_mbstack *s = &l->stack[--l->nstack];
    uint8_t up = s->flags & (IMAP_MB_CHILDREN | IMAP_MB_HIDDEN);
    if (s->idx != UINT32_MAX) {
        l->v[s->idx].flags = s->flags;
        if (l->v[s->idx].id) up |= IMAP_MB_CHILDREN;
    } else if (s->flags & (IMAP_MB_CHILDREN | IMAP_MB_HIDDEN)) {
        /* a missing parent with something below it: LIST may show it as \Noselect, LSUB as a
         * parent of hidden subscriptions; one with nothing below is never shown */
        imap_mbentry *e = mb_push(&l->extra, &l->nextra, &l->cap_extra);
        e->name = s->gen; /* for now: the entry it goes before */
        e->len = s->len;
        e->flags = s->flags;
    }
    if ((s->flags & (IMAP_MB_SUBSCRIBED | IMAP_MB_MATCHED)) == IMAP_MB_SUBSCRIBED)
        up |= IMAP_MB_HIDDEN;
    if (l->nstack) l->stack[l->nstack - 1].flags |= up;
}

static void stack_push(imap_mblist *l, uint32_t idx, uint32_t gen, uint16_t len, uint8_t flags)
{
    if (l->nstack == l->cap_stack) {
        l->cap_stack = l->cap_stack ? l->cap_stack * 2 : 32;
        imap_mbstack *g = realloc(l->stack, l->cap_stack * sizeof(*g));
        if (!g) abort();
        l->stack = g;
    }
    l->stack[l->nstack++] = (imap_mbstack){idx, gen, len, flags};
}

/* Scans entry J: pops what is not its ancestor, matches it and its missing parents. */
static void scan_one(imap_mblist *l, imap_patterns *p, size_t j)
{
    imap_mbentry *e = &l->v[j];
    const char *name = mb_name(l, e);
    while (l->nstack) {
        const imap_mbstack *top = &l->stack[l->nstack - 1];
        if (top->len < e->len && name[top->len] == '/' &&
            memcmp(stack_name(l, top), name, top->len) == 0)
            break;
        stack_pop(l);
    }
    uint16_t pre[STORE_NAME_MAX];
    size_t npre = 0;
    if (imap_patterns_match(p, name, e->len, pre, sizeof(pre) / sizeof(pre[0]), &npre))
        e->flags |= IMAP_MB_MATCHED;
    /* ancestors deeper than the stack's top are no entries: those that match are pushed */
    size_t have = l->nstack ? l->stack[l->nstack - 1].len : 0;
    for (size_t k = 0; k < npre; k++)
        if (pre[k] > have) stack_push(l, UINT32_MAX, (uint32_t)j, pre[k], IMAP_MB_MATCHED);
    stack_push(l, (uint32_t)j, (uint32_t)j, e->len, e->flags);
}

static int cmp_extra(const void *pa, const void *pb)
{
    const imap_mbentry *a = pa, *b = pb;
    if (a->name != b->name) return a->name < b->name ? -1 : 1;
    return (a->len > b->len) - (a->len < b->len);
}

/* Keeps the matched entries, with the missing parents worth showing before their entries. */
static void finish(imap_mblist *l)
{
    if (l->nextra) qsort(l->extra, l->nextra, sizeof(*l->extra), cmp_extra);
    size_t nout = 0, x = 0;
    for (size_t j = 0; j < l->n; j++)
        if (l->v[j].flags & IMAP_MB_MATCHED) nout++;
    imap_mbentry *out = malloc((nout + l->nextra + 1) * sizeof(*out));
    if (!out) abort();
    size_t o = 0;
    for (size_t j = 0; j < l->n; j++) {
        for (; x < l->nextra && l->extra[x].name == j; x++) {
            out[o] = l->extra[x];
            out[o++].name = l->v[j].name;
        }
        if (l->v[j].flags & IMAP_MB_MATCHED) out[o++] = l->v[j];
    }
    free(l->v);
    free(l->extra);
    free(l->stack);
    l->extra = NULL, l->stack = NULL;
    l->nextra = l->cap_extra = l->nstack = l->cap_stack = 0;
    l->v = out;
    l->n = l->cap = o;
}

void imap_mblist_add(imap_mblist *l, const char *name, uint32_t id, uint32_t special_use,
                     uint8_t flags)
{
    mb_add(l, name, id, special_use, flags);
}

int imap_mblist_scan(imap_mblist *l, imap_patterns *p, int64_t until_ms)
{
    if (l->phase < MBL_SORT) l->phase = MBL_SORT;
    if (l->phase == MBL_SORT) {
        if (l->n) qsort_r(l->v, l->n, sizeof(*l->v), path_cmp, l->names.data);
        l->pos = 0;
        l->phase = MBL_SCAN;
        if (imap_now_ms() >= until_ms) return 1;
    }
    if (l->phase == MBL_SCAN) {
        while (l->pos < l->n) {
            scan_one(l, p, l->pos++);
            if (imap_now_ms() >= until_ms && l->pos < l->n) return 1;
        }
        while (l->nstack)
            stack_pop(l);
        finish(l);
        l->phase = MBL_DONE;
    }
    return 0;
}

int imap_mblist_build(imap_client *c, imap_mblist *l, imap_patterns *p, int64_t until_ms)
{
    mbl_read r = {l, until_ms};
    while (l->phase == MBL_MAILBOXES || l->phase == MBL_SUBSCRIPTIONS) {
        store_txn *t;
        int rc = store_read_begin(c->srv->st, &t);
        if (rc < 0) return rc;
        if (l->phase == MBL_MAILBOXES)
            rc = store_mailbox_list_after(t, c->user_id, l->after, read_mailbox, &r);
        else
            rc = store_subscription_list_after(t, c->user_id, l->after, read_subscription, &r);
        store_read_end(&t);
        if (rc < 0) return rc;
        if (rc == 1) return 1; /* time is up; the next step goes on after l->after */
        if (l->phase == MBL_MAILBOXES) l->pos = l->n; /* the mailboxes, for the merge */
        l->after[0] = '\0';
        l->phase++;
    }
    return imap_mblist_scan(l, p, until_ms);
}

void imap_mailboxid_put(mfs_buf *b, uint32_t mailbox_id, uint32_t uidvalidity)
{
    mfs_buf_printf(b, "M%08x%08x", mailbox_id, uidvalidity);
}

void imap_emailid_put(mfs_buf *b, const uint8_t body_hash[32])
{
    mfs_buf_putc(b, 'E');
    for (int i = 0; i < 16; i++)
        mfs_buf_printf(b, "%02x", body_hash[i]);
}
