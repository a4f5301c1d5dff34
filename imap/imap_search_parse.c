/* imap_search_parse.c: SEARCH keys parsed into the tree of imap_search.h (SEARCH, later
 * SORT/THREAD) */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    free(k);
}

static bool reads_text(enum imap_skind kind)
{
    return kind == IMAP_SK_HEADER || kind == IMAP_SK_BODY || kind == IMAP_SK_TEXT ||
           kind == IMAP_SK_SENTBEFORE || kind == IMAP_SK_SENTON || kind == IMAP_SK_SENTSINCE;
}

static imap_skey *skey_new(search_ctx *x, enum imap_skind kind)
{
    if (++x->nkeys > MAX_KEYS) return NULL;
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

static imap_skey *fail(search_ctx *x, imap_skey *k, const char *why, const char *what)
{
    if (!x->bad)
        imap_bad(x->c, "%s%s%.60s%s", why, what ? " '" : "", what ? what : "", what ? "'" : "");
    x->bad = true;
    imap_skey_free(k);
    return NULL;
}

static const imap_arg *need_arg(const imap_arg *a, size_t n, size_t *i)
{
    if (*i >= n) return NULL;
    return &a[(*i)++];
}

static imap_skey *parse_key(search_ctx *x, const imap_arg *a, size_t n, size_t *i, unsigned depth)
{
    if (depth > MAX_SEARCH_DEPTH) return fail(x, NULL, "search keys nested too deep", NULL);
    const imap_arg *k = need_arg(a, n, i);
    if (!k) return fail(x, NULL, "missing search key", NULL);
    imap_skey *r;
    if (k->type == IMAP_ARG_LIST) {
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
    if (k->type != IMAP_ARG_ATOM) return fail(x, NULL, "invalid search key", k->str);
    const char *w = k->str;
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
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        if (strcasecmp(w, flags[f].name) == 0) {
            if (!(r = skey_new(x, IMAP_SK_FLAG)))
                return fail(x, NULL, "too many search keys", NULL);
            r->flag = flags[f].flag;
            r->set = flags[f].set;
            return r;
        }
    }
    if (strcasecmp(w, "ALL") == 0) return skey_new(x, IMAP_SK_ALL);
    if (strcasecmp(w, "RECENT") == 0 || strcasecmp(w, "OLD") == 0 || strcasecmp(w, "NEW") == 0) {
        /* OLD is NOT RECENT; NEW is RECENT UNSEEN */
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
    if (strcasecmp(w, "NOT") == 0 || strcasecmp(w, "OR") == 0) {
        bool or = toupper((unsigned char)w[0]) == 'O';
        if (!(r = skey_new(x, or ? IMAP_SK_OR : IMAP_SK_NOT)))
            return fail(x, NULL, "too many search keys", NULL);
        for (int m = 0; m < (or ? 2 : 1); m++) {
            imap_skey *kid = parse_key(x, a, n, i, depth + 1);
            if (!kid) return fail(x, r, "", NULL);
            kid_add(r, kid);
        }
        return r;
    }
    if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
        const imap_arg *v = need_arg(a, n, i);
        if (!v || v->type != IMAP_ARG_ATOM) return fail(x, NULL, "KEYWORD needs a flag", NULL);
        if (!(r = skey_new(x, IMAP_SK_KEYWORD))) return fail(x, NULL, "too many search keys", NULL);
        r->set = toupper((unsigned char)w[0]) == 'K';
        r->str = v->str;
        r->slen = v->len;
        if (v->str[0] == '\\') { /* a system flag given as a keyword */
            static const char *sys[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                        "\\Draft"};
            for (int s = 0; s < 5; s++)
                if (strcasecmp(v->str, sys[s]) == 0) {
                    r->kind = IMAP_SK_FLAG;
                    r->flag = 1u << s;
                }
        }
        return r;
    }
    if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
        const imap_arg *v = need_arg(a, n, i);
        uint64_t num;
        if (!v || imap_arg_number(v, &num) < 0)
            return fail(x, NULL, "LARGER and SMALLER need a number", NULL);
        if (!(r = skey_new(x,
                           toupper((unsigned char)w[0]) == 'L' ? IMAP_SK_LARGER : IMAP_SK_SMALLER)))
            return fail(x, NULL, "too many search keys", NULL);
        r->num = num;
        return r;
    }
    static const struct {
        const char *name;
        enum imap_skind kind;
    } dates[] = {
        {"BEFORE", IMAP_SK_BEFORE}, {"ON", IMAP_SK_ON},
        {"SINCE", IMAP_SK_SINCE},   {"SENTBEFORE", IMAP_SK_SENTBEFORE},
        {"SENTON", IMAP_SK_SENTON}, {"SENTSINCE", IMAP_SK_SENTSINCE},
    };
    for (size_t d = 0; d < sizeof(dates) / sizeof(dates[0]); d++) {
        if (strcasecmp(w, dates[d].name) == 0) {
            const imap_arg *v = need_arg(a, n, i);
            int64_t t;
            if (!v || !imap_arg_is_string(v) || imap_date_parse(v->str, &t) < 0)
                return fail(x, NULL, "invalid date for", w);
            if (!(r = skey_new(x, dates[d].kind)))
                return fail(x, NULL, "too many search keys", NULL);
            r->num = (uint64_t)imap_search_days(t);
            return r;
        }
    }
    static const char *hdrs[] = {"FROM", "TO", "CC", "BCC", "SUBJECT"};
    for (size_t h = 0; h < 5; h++) {
        if (strcasecmp(w, hdrs[h]) == 0) {
            const imap_arg *v = need_arg(a, n, i);
            if (!v || !imap_arg_is_string(v)) return fail(x, NULL, "missing string for", w);
            if (!(r = skey_new(x, IMAP_SK_HEADER)))
                return fail(x, NULL, "too many search keys", NULL);
            snprintf(r->field, sizeof(r->field), "%s", hdrs[h]);
            r->str = v->str;
            r->slen = v->len;
            return r;
        }
    }
    if (strcasecmp(w, "HEADER") == 0) {
        const imap_arg *f = need_arg(a, n, i), *v = need_arg(a, n, i);
        if (!f || !v || !imap_arg_is_string(f) || !imap_arg_is_string(v) || f->len == 0 ||
            f->len >= 80)
            return fail(x, NULL, "HEADER needs a field name and a string", NULL);
        if (!(r = skey_new(x, IMAP_SK_HEADER))) return fail(x, NULL, "too many search keys", NULL);
        snprintf(r->field, sizeof(r->field), "%s", f->str);
        r->str = v->str;
        r->slen = v->len;
        return r;
    }
    if (strcasecmp(w, "BODY") == 0 || strcasecmp(w, "TEXT") == 0) {
        const imap_arg *v = need_arg(a, n, i);
        if (!v || !imap_arg_is_string(v)) return fail(x, NULL, "missing string for", w);
        if (!(r = skey_new(x, toupper((unsigned char)w[0]) == 'B' ? IMAP_SK_BODY : IMAP_SK_TEXT)))
            return fail(x, NULL, "too many search keys", NULL);
        r->str = v->str;
        r->slen = v->len;
        return r;
    }
    bool is_uid = strcasecmp(w, "UID") == 0;
    const imap_arg *sv = is_uid ? need_arg(a, n, i) : k;
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
