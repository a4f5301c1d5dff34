/* imap_util.c: helpers the commands share: mailbox names, flags, dates, sequence sets */
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

int imap_mailbox_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen)
{
    if (!imap_arg_is_string(a)) {
        imap_bad(c, "missing mailbox name");
        return -1;
    }
    imap_buf b = {0};
    if (imap_has_8bit(a->str, a->len)) {
        /* UTF-8: what UTF8=ACCEPT clients send; tolerated from others when well-formed */
        if (!imap_utf8_valid(a->str, a->len)) {
            imap_bad(c, "mailbox name is not valid UTF-8");
            return -1;
        }
        imap_buf_append(&b, a->str, a->len);
    } else if (c->utf8) {
        imap_buf_append(&b, a->str, a->len);
    } else if (imap_utf7_decode(a->str, a->len, &b) < 0) {
        imap_bad(c, "mailbox name is not valid modified UTF-7");
        imap_buf_free(&b);
        return -1;
    }
    if (b.len == 0) imap_buf_puts(&b, "");
    if (b.len >= outlen || memchr(b.data, '\0', b.len)) {
        imap_bad(c, "mailbox name too long");
        imap_buf_free(&b);
        return -1;
    }
    memcpy(out, b.data, b.len + 1);
    imap_buf_free(&b);
    if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
        memcpy(out, "INBOX", 5);
    return 0;
}

void imap_mailbox_put(imap_client *c, imap_buf *b, const char *name)
{
    size_t len = strlen(name);
    if (c->utf8 || !imap_has_8bit(name, len)) {
        if (!c->utf8 && strchr(name, '&')) {
            imap_buf e = {0};
            imap_utf7_encode(name, len, &e);
            imap_quote_string(b, e.data ? e.data : "", e.len, false);
            imap_buf_free(&e);
            return;
        }
        imap_quote_string(b, name, len, c->utf8);
        return;
    }
    imap_buf e = {0};
    if (imap_utf7_encode(name, len, &e) < 0) {
        imap_quote_string(b, name, len, true); /* not UTF-8: send as is rather than hide it */
    } else {
        imap_quote_string(b, e.data, e.len, false);
    }
    imap_buf_free(&e);
}

static const struct {
    const char *name;
    uint32_t bit;
} sysflags[] = {
    {"\\Seen", STORE_F_SEEN},       {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},
};


void imap_flags_put(imap_buf *b, uint32_t flags, const char *keywords)
{
    imap_buf_putc(b, '(');
    bool first = true;
    for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++) {
        if (flags & sysflags[i].bit) {
            if (!first) imap_buf_putc(b, ' ');
            imap_buf_puts(b, sysflags[i].name);
            first = false;
        }
    }
    /* keywords may come from other writers (the mount): send only those that are atoms */
    while (keywords && *keywords) {
        const char *sp = strchr(keywords, ' ');
        size_t l = sp ? (size_t)(sp - keywords) : strlen(keywords);
        if (store_keyword_valid(keywords, l)) {
            if (!first) imap_buf_putc(b, ' ');
            imap_buf_append(b, keywords, l);
            first = false;
        }
        keywords = sp ? sp + 1 : keywords + l;
    }
    imap_buf_putc(b, ')');
}

void imap_flags_put_msg(imap_client *c, imap_buf *b, uint32_t uid, uint32_t flags,
                        const char *keywords)
{
    if (!imap_is_recent(c, uid)) {
        imap_flags_put(b, flags, keywords);
        return;
    }
    imap_flags_put(b, flags, keywords);
    b->len--; /* reopen the list */
    imap_buf_puts(b, b->data[b->len - 1] == '(' ? "\\Recent)" : " \\Recent)");
}

static int flag_one(imap_client *c, const imap_arg *a, uint32_t *flags, imap_buf *kw)
{
    if (a->type != IMAP_ARG_ATOM) {
        imap_bad(c, "flags must be atoms");
        return -1;
    }
    if (a->str[0] == '\\') {
        for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++) {
            if (strcasecmp(a->str, sysflags[i].name) == 0) {
                *flags |= sysflags[i].bit;
                return 0;
            }
        }
        if (strcasecmp(a->str, "\\Recent") == 0) return 0; /* cannot be set; ignored */
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
    if (kw->len) imap_buf_putc(kw, ' ');
    imap_buf_append(kw, a->str, a->len);
    return 0;
}

int imap_flags_parse(imap_client *c, const imap_arg *a, uint32_t *flags, imap_buf *kw)
{
    *flags = 0;
    kw->len = 0;
    imap_buf_puts(kw, "");
    if (a->type == IMAP_ARG_LIST) {
        for (size_t i = 0; i < a->count; i++)
            if (flag_one(c, &a->list[i], flags, kw) < 0) return -1;
        return 0;
    }
    return flag_one(c, a, flags, kw);
}

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void imap_date_time_put(imap_buf *b, int64_t t, int tz_min)
{
    time_t lt = (time_t)(t + (int64_t)tz_min * 60);
    struct tm tm;
    gmtime_r(&lt, &tm);
    int z = tz_min < 0 ? -tz_min : tz_min;
    imap_buf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", tm.tm_mday, months[tm.tm_mon],
                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tz_min < 0 ? '-' : '+',
                    z / 60, z % 60);
}

static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, months[i], 3) == 0) return i;
    return -1;
}

int imap_date_parse(const char *s, int64_t *t)
{
    int d, y;
    char mon[4];
    int n = 0;
    if (sscanf(s, "%2d-%3[A-Za-z]-%4d%n", &d, mon, &y, &n) != 3 || s[n] != '\0') return -1;
    int m = month_of(mon);
    if (m < 0 || d < 1 || d > 31 || y < 1900) return -1;
    struct tm tm = {.tm_mday = d, .tm_mon = m, .tm_year = y - 1900};
    *t = (int64_t)timegm(&tm);
    return 0;
}

int imap_date_time_parse(const char *s, int64_t *t, int *tz_min)
{
    int d, y, hh, mm, ss, zone, n = 0;
    char mon[4], sign;
    while (*s == ' ')
        s++;
    if (sscanf(s, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &hh, &mm, &ss, &sign,
               &zone, &n) != 8 ||
        s[n] != '\0' || (sign != '+' && sign != '-'))
        return -1;
    int m = month_of(mon);
    if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || zone % 100 > 59) return -1;
    struct tm tm = {
        .tm_mday = d, .tm_mon = m, .tm_year = y - 1900, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    int z = (zone / 100) * 60 + zone % 100;
    if (sign == '-') z = -z;
    *t = (int64_t)timegm(&tm) - (int64_t)z * 60;
    *tz_min = z;
    return 0;
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
    imap_seqset set;
    const char *why;
    if (imap_seqset_parse(a->str, a->len, 0, &set, &why) < 0) {
        imap_bad(c, "%s", why);
        return -1;
    }
    const imap_selected *s = &c->sel;
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

bool imap_pattern_match(const char *pat, const char *name)
{
    /* dynamic programming over (pattern position, name position): no exponential backtracking */
    size_t pl = strlen(pat), nl = strlen(name);
    bool *prev = calloc(nl + 1, sizeof(bool)), *cur = calloc(nl + 1, sizeof(bool));
    if (!prev || !cur) abort();
    prev[0] = true; /* empty pattern matches empty name */
    for (size_t i = 1; i <= pl; i++) {
        char pc = pat[i - 1];
        cur[0] = prev[0] && (pc == '*' || pc == '%');
        for (size_t j = 1; j <= nl; j++) {
            if (pc == '*')
                cur[j] = prev[j] || cur[j - 1];
            else if (pc == '%')
                cur[j] = prev[j] || (cur[j - 1] && name[j - 1] != '/');
            else
                cur[j] = prev[j - 1] && pc == name[j - 1];
        }
        bool *t = prev;
        prev = cur;
        cur = t;
    }
    bool r = prev[nl];
    free(prev);
    free(cur);
    return r;
}

static int cmp_mailbox(const void *a, const void *b)
{
    return strcmp(((const store_mailbox *)a)->name, ((const store_mailbox *)b)->name);
}

typedef struct mbl_ctx {
    store_mailbox *v;
    size_t n, cap;
} mbl_ctx;

static int mbl_cb(void *ctx, const store_mailbox *mb)
{
    mbl_ctx *x = ctx;
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 16;
        store_mailbox *p = realloc(x->v, x->cap * sizeof(*p));
        if (!p) abort();
        x->v = p;
    }
    x->v[x->n++] = *mb;
    return 0;
}

/* The entry of X named NAME: the first REAL entries are sorted by name (bsearch), the few
 * added after them are searched one by one. NULL if there is none. */
static store_mailbox *mbl_find(mbl_ctx *x, size_t real, const char *name)
{
    store_mailbox key;
    memcpy(key.name, name, strlen(name) + 1);
    store_mailbox *hit = bsearch(&key, x->v, real, sizeof(*x->v), cmp_mailbox);
    for (size_t k = real; k < x->n && !hit; k++)
        if (strcmp(x->v[k].name, name) == 0) hit = &x->v[k];
    return hit;
}

/* Adds each missing parent of the entries FROM..TO of X as an entry with id 0. */
static void mbl_add_parents(mbl_ctx *x, size_t real, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char name[STORE_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", x->v[i].name);
        for (char *slash = strrchr(name, '/'); slash; slash = strrchr(name, '/')) {
            *slash = '\0';
            if (mbl_find(x, real, name)) break; /* its own parents were handled with it */
            store_mailbox v = {0};
            snprintf(v.name, sizeof(v.name), "%s", name);
            mbl_cb(x, &v);
        }
    }
}

typedef struct subs_ctx {
    mbl_ctx *x;
    size_t real;
} subs_ctx;

static int subs_cb(void *ctx, const char *name)
{
    subs_ctx *s = ctx;
    store_mailbox *have = mbl_find(s->x, s->real, name);
    if (have) {
        have->subscribed = true; /* a mailbox (the store said so already) or a missing parent */
        return 0;
    }
    store_mailbox v = {.subscribed = true};
    snprintf(v.name, sizeof(v.name), "%s", name);
    return mbl_cb(s->x, &v);
}

int imap_mailboxes(imap_client *c, store_txn *t, store_mailbox **out, size_t *n)
{
    mbl_ctx x = {0};
    int rc = store_mailbox_list(t, c->user_id, mbl_cb, &x);
    /* A mailbox whose parent is missing (made through the mount, say) still needs its parent
     * listed, as \Noselect (id 0), or clients cannot reach it with '%'. The store lists in byte
     * order of name, so the first REAL entries can be searched with bsearch. */
    size_t real = x.n;
    if (rc == 0) mbl_add_parents(&x, real, 0, real);
    /* Subscribed names no mailbox has, and their missing parents (for LSUB's \Noselect and
     * CHILDINFO), come after them with id 0 as well. */
    size_t subs = x.n;
    if (rc == 0) rc = store_subscription_list(t, c->user_id, subs_cb, &(subs_ctx){&x, real});
    if (rc < 0) {
        free(x.v);
        return rc;
    }
    mbl_add_parents(&x, real, subs, x.n);
    if (x.n > real) qsort(x.v, x.n, sizeof(*x.v), cmp_mailbox);
    *out = x.v;
    *n = x.n;
    return 0;
}

bool imap_mailbox_nonexistent(const store_mailbox *mbs, size_t n, size_t i)
{
    return mbs[i].id == 0 && !imap_mailbox_has_children(mbs, n, i);
}

bool imap_mailbox_has_children(const store_mailbox *mbs, size_t n, size_t i)
{
    size_t l = strlen(mbs[i].name);
    for (size_t k = 0; k < n; k++)
        if (mbs[k].id != 0 && strncmp(mbs[k].name, mbs[i].name, l) == 0 && mbs[k].name[l] == '/')
            return true;
    return false;
}
