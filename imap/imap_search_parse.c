/* imap_search_parse.c: SEARCH keys parsed into the tree of imap_search.h (SEARCH, later
 * SORT/THREAD) */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_search.h"

#define MAX_KEYS 1000
#define MAX_SEARCH_DEPTH 32

typedef struct search_ctx {
    imap_client *c;
    size_t nkeys;
    size_t nslots; /* keys that read text (HEADER, BODY, TEXT, SENT*) */
    bool bad;
} search_ctx;

void imap_skey_free(imap_skey *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->nkids; i++)
        imap_skey_free(k->kids[i]);
    free(k->kids);
    imap_seqset_free(&k->seqs);
    free(k->own);
    free(k);
}

void imap_skey_own(imap_skey *k)
{
    for (size_t i = 0; i < k->nkids; i++)
        imap_skey_own(k->kids[i]);
    if (k->str && !k->own) {
        k->own = malloc(k->slen + 1);
        if (!k->own) abort();
        memcpy(k->own, k->str, k->slen);
        k->own[k->slen] = '\0';
        k->str = k->own;
    }
}

bool imap_skey_has(const imap_skey *k, enum imap_skind kind)
{
    if (k->kind == kind) return true;
    for (size_t i = 0; i < k->nkids; i++)
        if (imap_skey_has(k->kids[i], kind)) return true;
    return false;
}

static bool reads_text(enum imap_skind kind)
{
    return kind == IMAP_SK_HEADER || kind == IMAP_SK_BODY || kind == IMAP_SK_TEXT ||
           kind == IMAP_SK_SENTBEFORE || kind == IMAP_SK_SENTON || kind == IMAP_SK_SENTSINCE;
}

static imap_skey *fail(search_ctx *x, imap_skey *k, const char *why, const char *what)
{
    if (!x->bad)
        imap_bad(x->c, "%s%s%.60s%s", why, what ? " '" : "", what ? what : "", what ? "'" : "");
    x->bad = true;
    imap_skey_free(k);
    return NULL;
}

/* A new key; NULL after answering BAD past MAX_KEYS (whichever key it is: ALL, RECENT and the
 * nodes of OLD and NEW too). */
static imap_skey *skey_new(search_ctx *x, enum imap_skind kind)
{
    if (++x->nkeys > MAX_KEYS) {
        char why[64];
        snprintf(why, sizeof why, "too many search keys: at most %d", MAX_KEYS);
        return fail(x, NULL, why, NULL);
    }
    imap_skey *k = calloc(1, sizeof(*k));
    if (!k) abort();
    k->kind = kind;
    if (reads_text(kind)) k->slot = x->nslots++;
    return k;
}

static void kid_add(imap_skey *k, imap_skey *kid)
{
    imap_skey **v = realloc(k->kids, (k->nkids + 1) * sizeof(*v));
    if (!v) abort();
    k->kids = v;
    k->kids[k->nkids++] = kid;
}

static imap_skey *parse_key(search_ctx *x, const imap_arg *a, size_t n, size_t *i, unsigned depth);

static const imap_arg *need_arg(const imap_arg *a, size_t n, size_t *i)
{
    if (*i >= n) return NULL;
    return &a[(*i)++];
}

/* One family of keys: parses the arguments that follow the key word W (from A[*I], N in all)
 * into a key of kind KIND (the family's entry below). NULL after fail(). */
typedef imap_skey *key_parser(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                              size_t n, size_t *i, unsigned depth);

/* "(key key ...)": an AND of the keys in the list K. */
static imap_skey *key_list(search_ctx *x, const imap_arg *k, unsigned depth)
{
    imap_skey *r;
    if (!(r = skey_new(x, IMAP_SK_AND))) return fail(x, NULL, "too many search keys", NULL);
    size_t j = 0;
    if (k->count == 0) return fail(x, r, "empty search key list", NULL);
    while (j < k->count) {
        imap_skey *kid = parse_key(x, k->list, k->count, &j, depth + 1);
        if (!kid) return fail(x, r, "", NULL);
        kid_add(r, kid);
    }
    return r;
}

/* ANSWERED, UNSEEN, ...: a system flag that must be set or clear. NULL if W is none. */
static imap_skey *key_flag(search_ctx *x, const char *w, bool *known)
{
    static const struct {
        const char *name;
        uint32_t flag;
        bool set;
    } flags[] = {
        {"ANSWERED", STORE_F_ANSWERED, true},  {"DELETED", STORE_F_DELETED, true},
        {"DRAFT", STORE_F_DRAFT, true},        {"FLAGGED", STORE_F_FLAGGED, true},
        {"SEEN", STORE_F_SEEN, true},          {"UNANSWERED", STORE_F_ANSWERED, false},
        {"UNDELETED", STORE_F_DELETED, false}, {"UNDRAFT", STORE_F_DRAFT, false},
        {"UNFLAGGED", STORE_F_FLAGGED, false}, {"UNSEEN", STORE_F_SEEN, false},
    };
    imap_skey *r;
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        if (strcasecmp(w, flags[f].name) == 0) {
            *known = true;
            if (!(r = skey_new(x, IMAP_SK_FLAG)))
                return fail(x, NULL, "too many search keys", NULL);
            r->flag = flags[f].flag;
            r->set = flags[f].set;
            return r;
        }
    }
    *known = false;
    return NULL;
}

/* RECENT, OLD (NOT RECENT) and NEW (RECENT UNSEEN). */
static imap_skey *key_recent(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                             size_t n, size_t *i, unsigned depth)
{
    (void)kind, (void)a, (void)n, (void)i, (void)depth;
    imap_skey *r;
    imap_skey *rk = skey_new(x, IMAP_SK_RECENT);
    if (!rk || toupper((unsigned char)w[0]) == 'R') return rk;
    if (!(r = skey_new(x, toupper((unsigned char)w[0]) == 'O' ? IMAP_SK_NOT : IMAP_SK_AND))) {
        imap_skey_free(rk);
        return NULL;
    }
    kid_add(r, rk);
    if (r->kind == IMAP_SK_AND) {
        imap_skey *unseen = skey_new(x, IMAP_SK_FLAG);
        if (!unseen) {
            imap_skey_free(r);
            return NULL;
        }
        unseen->flag = STORE_F_SEEN;
        unseen->set = false;
        kid_add(r, unseen);
    }
    return r;
}

/* NOT key, OR key key. */
static imap_skey *key_not_or(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                             size_t n, size_t *i, unsigned depth)
{
    (void)w;
    imap_skey *r;
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    for (int m = 0; m < (kind == IMAP_SK_OR ? 2 : 1); m++) {
        imap_skey *kid = parse_key(x, a, n, i, depth + 1);
        if (!kid) return fail(x, r, "", NULL);
        kid_add(r, kid);
    }
    return r;
}

/* KEYWORD flag, UNKEYWORD flag; a system flag given as a keyword becomes a flag key. */
static imap_skey *key_keyword(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                              size_t n, size_t *i, unsigned depth)
{
    (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    if (!v || v->type != IMAP_ARG_ATOM) return fail(x, NULL, "KEYWORD needs a flag", NULL);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->set = toupper((unsigned char)w[0]) == 'K';
    r->str = v->str;
    r->slen = v->len;
    uint32_t bit = v->str[0] == '\\' ? store_sysflag_bit(v->str, v->len) : 0;
    if (bit) { /* a system flag given as a keyword */
        r->kind = IMAP_SK_FLAG;
        r->flag = bit;
    }
    return r;
}

/* LARGER n, SMALLER n. */
static imap_skey *key_size(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                           size_t n, size_t *i, unsigned depth)
{
    (void)w, (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    uint64_t num;
    if (!v || imap_arg_number(v, &num) < 0)
        return fail(x, NULL, "LARGER and SMALLER need a number", NULL);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->num = num;
    return r;
}

/* YOUNGER n, OLDER n (RFC 5032): n seconds before now, kept as the moment they end. */
static imap_skey *key_within(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                             size_t n, size_t *i, unsigned depth)
{
    (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    uint64_t secs;
    if (!v || imap_arg_number(v, &secs) < 0 || secs == 0 || secs > UINT32_MAX)
        return fail(x, NULL, "YOUNGER and OLDER need a number of seconds (1 to 4294967295) after",
                    w);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->num = (uint64_t)((int64_t)time(NULL) - (int64_t)secs);
    return r;
}

/* BEFORE, ON, SINCE and their SENT* twins: a date, kept as days since the epoch. */
static imap_skey *key_date(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                           size_t n, size_t *i, unsigned depth)
{
    (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    int64_t t;
    if (!v || !imap_arg_is_string(v) || imap_date_parse(v->str, &t) < 0)
        return fail(x, NULL, "invalid date for", w);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->num = (uint64_t)imap_date_days(t);
    return r;
}

/* A key without arguments (SAVEDATESUPPORTED). */
static imap_skey *key_bare(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                           size_t n, size_t *i, unsigned depth)
{
    (void)w, (void)a, (void)n, (void)i, (void)depth;
    return skey_new(x, kind);
}

/* EMAILID id, THREADID id (RFC 8474: 1-255 of A-Z a-z 0-9 _ -). */
static imap_skey *key_objectid(search_ctx *x, const char *w, enum imap_skind kind,
                               const imap_arg *a, size_t n, size_t *i, unsigned depth)
{
    (void)depth;
    const imap_arg *v = need_arg(a, n, i);
    bool ok = v && v->type == IMAP_ARG_ATOM && v->len >= 1 && v->len <= 255;
    for (size_t k = 0; ok && k < v->len; k++)
        ok = isalnum((unsigned char)v->str[k]) || v->str[k] == '_' || v->str[k] == '-';
    if (!ok) return fail(x, NULL, "an object id (1-255 of A-Z a-z 0-9 _ -) must follow", w);
    imap_skey *r = skey_new(x, kind);
    if (!r) return NULL;
    r->str = v->str;
    r->slen = v->len;
    return r;
}

/* FROM, TO, CC, BCC, SUBJECT string: a header key for the field named like the key. */
static imap_skey *key_address(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                              size_t n, size_t *i, unsigned depth)
{
    (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    if (!v || !imap_arg_is_string(v)) return fail(x, NULL, "missing string for", w);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    snprintf(r->field, sizeof(r->field), "%s", w);
    for (char *p = r->field; *p; p++) /* named as in the table: upper case */
        *p = (char)toupper((unsigned char)*p);
    r->str = v->str;
    r->slen = v->len;
    return r;
}

/* HEADER field-name string. */
static imap_skey *key_header(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                             size_t n, size_t *i, unsigned depth)
{
    (void)w, (void)depth;
    imap_skey *r;
    const imap_arg *f = need_arg(a, n, i), *v = need_arg(a, n, i);
    if (!f || !v || !imap_arg_is_string(f) || !imap_arg_is_string(v) || f->len == 0 || f->len >= 80)
        return fail(x, NULL, "HEADER needs a field name and a string", NULL);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    snprintf(r->field, sizeof(r->field), "%s", f->str);
    r->str = v->str;
    r->slen = v->len;
    return r;
}

/* BODY string, TEXT string. */
static imap_skey *key_text(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                           size_t n, size_t *i, unsigned depth)
{
    imap_skey *r;
    (void)depth;
    const imap_arg *v = need_arg(a, n, i);
    if (!v || !imap_arg_is_string(v)) return fail(x, NULL, "missing string for", w);
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->str = v->str;
    r->slen = v->len;
    return r;
}

/* MODSEQ [entry-name entry-type] n (RFC 7162 3.1.5): one MODSEQ per message is kept, so the
 * entry ("/flags/..." and priv, shared or all) is checked and then ignored, as 3.1.5 asks. */
static imap_skey *key_modseq(search_ctx *x, const char *w, enum imap_skind kind, const imap_arg *a,
                             size_t n, size_t *i, unsigned depth)
{
    (void)w, (void)depth;
    imap_skey *r;
    const imap_arg *v = need_arg(a, n, i);
    if (v && v->type != IMAP_ARG_ATOM && imap_arg_is_string(v)) {
        const imap_arg *type = need_arg(a, n, i);
        if (v->len <= 7 || strncasecmp(v->str, "/flags/", 7) != 0)
            return fail(x, NULL, "MODSEQ's entry name is \"/flags/<flag>\", not", v->str);
        if (!type || !(imap_arg_is_atom(type, "priv") || imap_arg_is_atom(type, "shared") ||
                       imap_arg_is_atom(type, "all")))
            return fail(x, NULL, "MODSEQ's entry type is priv, shared or all, not",
                        type && type->str ? type->str : "");
        v = need_arg(a, n, i);
    }
    uint64_t num;
    if (imap_modseq_arg(x->c, v, true, "MODSEQ", &num) < 0) {
        x->bad = true;
        return NULL;
    }
    if (!(r = skey_new(x, kind))) return fail(x, NULL, "too many search keys", NULL);
    r->num = num;
    imap_condstore_on(x->c); /* an enabling command (RFC 7162 3.1) */
    return r;
}

/* A sequence set (the atom K itself), or UID and a UID set; resolved against the view. */
static imap_skey *key_seqset(search_ctx *x, const imap_arg *k, const imap_arg *a, size_t n,
                             size_t *i)
{
    const char *w = k->str;
    imap_skey *r;
    bool is_uid = strcasecmp(w, "UID") == 0;
    const imap_arg *sv = is_uid ? need_arg(a, n, i) : k;
    if (sv && sv->type == IMAP_ARG_ATOM && sv->len == 1 && sv->str[0] == '$') {
        /* SEARCHRES: the saved result, as UIDs (with UID or without: RFC 5182 2.1) */
        const imap_selected *s = &x->c->sel;
        if (!s->nsaved) return skey_new(x, IMAP_SK_NONE);
        if (!(r = skey_new(x, IMAP_SK_UID))) return NULL;
        mfs_buf set = {0};
        imap_seqset_format(&set, s->saved, s->nsaved);
        const char *why;
        int rc = imap_seqset_parse(set.data, set.len, 0, &r->seqs, &why);
        mfs_buf_free(&set);
        if (rc < 0) return fail(x, r, why, NULL);
        imap_seqset_resolve(&r->seqs, s->saved[s->nsaved - 1]);
        return r;
    }
    if (sv && sv->type == IMAP_ARG_ATOM && imap_seqset_syntax(sv->str, sv->len)) {
        if (!(r = skey_new(x, is_uid ? IMAP_SK_UID : IMAP_SK_SEQ)))
            return fail(x, NULL, "too many search keys", NULL);
        const char *why;
        if (imap_seqset_parse(sv->str, sv->len, 0, &r->seqs, &why) < 0)
            return fail(x, r, why, NULL);
        const imap_selected *s = &x->c->sel;
        imap_seqset_resolve(&r->seqs, is_uid ? (s->n ? s->uids[s->n - 1] : 0) : (uint32_t)s->n);
        return r;
    }
    return fail(x, NULL, "unknown search key", w);
}

/* The keys that take arguments or stand for several keys, by family. */
static const struct {
    const char *name;
    key_parser *parse;
    enum imap_skind kind;
} families[] = {
    {"RECENT", key_recent, IMAP_SK_RECENT},
    {"OLD", key_recent, IMAP_SK_NOT},
    {"NEW", key_recent, IMAP_SK_AND},
    {"NOT", key_not_or, IMAP_SK_NOT},
    {"OR", key_not_or, IMAP_SK_OR},
    {"KEYWORD", key_keyword, IMAP_SK_KEYWORD},
    {"UNKEYWORD", key_keyword, IMAP_SK_KEYWORD},
    {"YOUNGER", key_within, IMAP_SK_YOUNGER},
    {"OLDER", key_within, IMAP_SK_OLDER},
    {"LARGER", key_size, IMAP_SK_LARGER},
    {"SMALLER", key_size, IMAP_SK_SMALLER},
    {"BEFORE", key_date, IMAP_SK_BEFORE},
    {"ON", key_date, IMAP_SK_ON},
    {"SINCE", key_date, IMAP_SK_SINCE},
    {"SENTBEFORE", key_date, IMAP_SK_SENTBEFORE},
    {"SENTON", key_date, IMAP_SK_SENTON},
    {"SENTSINCE", key_date, IMAP_SK_SENTSINCE},
    {"FROM", key_address, IMAP_SK_HEADER},
    {"TO", key_address, IMAP_SK_HEADER},
    {"CC", key_address, IMAP_SK_HEADER},
    {"BCC", key_address, IMAP_SK_HEADER},
    {"SUBJECT", key_address, IMAP_SK_HEADER},
    {"HEADER", key_header, IMAP_SK_HEADER},
    {"BODY", key_text, IMAP_SK_BODY},
    {"TEXT", key_text, IMAP_SK_TEXT},
    {"MODSEQ", key_modseq, IMAP_SK_MODSEQ},
    {"SAVEDBEFORE", key_date, IMAP_SK_SAVEDBEFORE},
    {"SAVEDON", key_date, IMAP_SK_SAVEDON},
    {"SAVEDSINCE", key_date, IMAP_SK_SAVEDSINCE},
    {"SAVEDATESUPPORTED", key_bare, IMAP_SK_ALL}, /* every mailbox keeps save dates */
    {"EMAILID", key_objectid, IMAP_SK_EMAILID},
    {"THREADID", key_objectid, IMAP_SK_NONE}, /* no message has one (THREADID NIL) */
};

/* One search key from A[*I] (N in all), with its arguments; NULL after answering BAD (or,
 * past MAX_KEYS for ALL and RECENT/OLD/NEW, without an answer, as before the split). */
static imap_skey *parse_key(search_ctx *x, const imap_arg *a, size_t n, size_t *i, unsigned depth)
{
    if (depth > MAX_SEARCH_DEPTH) return fail(x, NULL, "search keys nested too deep", NULL);
    const imap_arg *k = need_arg(a, n, i);
    if (!k) return fail(x, NULL, "missing search key", NULL);
    if (k->type == IMAP_ARG_LIST) return key_list(x, k, depth);
    if (k->type != IMAP_ARG_ATOM) return fail(x, NULL, "invalid search key", k->str);
    const char *w = k->str;
    bool known;
    imap_skey *r = key_flag(x, w, &known);
    if (known) return r;
    if (strcasecmp(w, "ALL") == 0) return skey_new(x, IMAP_SK_ALL);
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        if (strcasecmp(w, families[f].name) == 0)
            return families[f].parse(x, w, families[f].kind, a, n, i, depth);
    return key_seqset(x, k, a, n, i);
}

imap_skey *imap_search_parse(imap_client *c, const imap_arg *args, size_t nargs, size_t i,
                             size_t *nslots)
{
    search_ctx x = {.c = c};
    imap_skey *root = skey_new(&x, IMAP_SK_AND);
    while (i < nargs) {
        imap_skey *k = parse_key(&x, args, nargs, &i, 0);
        if (!k) {
            if (!x.bad) imap_bad(c, "invalid search");
            imap_skey_free(root);
            return NULL;
        }
        kid_add(root, k);
    }
    if (root->nkids == 0) {
        imap_skey_free(root);
        imap_bad(c, "missing search keys");
        return NULL;
    }
    *nslots = x.nslots;
    return root;
}
