/* imap_list_match.c: LIST patterns matched against mailbox names, many patterns at once */
#include "imap/imap_list_match.h"

#include <stdlib.h>
#include <string.h>

/* The automaton: pattern K's bytes, with each run of wildcards made one ('*' if it holds a
 * '*', else '%'), are states BASE_K + 0, 1, ...; state BASE_K + M_K accepts. A set state
 * means "the pattern matched up to there". On a byte, a literal state moves on if it is that
 * byte, a '*' state stays, a '%' state stays unless the byte is '/'; then every wildcard
 * state also sets the state after it (the wildcard may match nothing more). */
struct imap_patterns {
    size_t nw;        /* 64-bit words per set of states */
    uint64_t *star;   /* '*' states */
    uint64_t *wild;   /* '*' and '%' states */
    uint64_t *accept; /* the last state of each pattern */
    uint64_t *init;   /* the first state of each pattern, and what it reaches for free */
    uint64_t *cur, *next;
    uint64_t *lit;      /* per byte in use: the literal states of that byte */
    uint16_t slot[256]; /* 0: no state takes the byte; else 1 + its row in LIT */
};

#define BIT_SET(v, i) ((v)[(i) / 64] |= 1ull << ((i) % 64))

/* Sets in V (NW words) every state after a wildcard state set in V. */
static void close_wild(uint64_t *v, const uint64_t *wild, size_t nw)
{
    uint64_t carry = 0;
    for (size_t w = 0; w < nw; w++) {
        uint64_t e = v[w] & wild[w];
        v[w] |= (e << 1) | carry;
        carry = e >> 63;
    }
}

imap_patterns *imap_patterns_new(char *const *pats, size_t n)
{
    /* tokens: wildcard runs collapsed */
    size_t states = 0;
    bool used[256] = {false};
    size_t nused = 0;
    for (size_t k = 0; k < n; k++) {
        for (const unsigned char *q = (const unsigned char *)pats[k]; *q; q++) {
            bool wc = *q == '*' || *q == '%';
            if (wc && q != (const unsigned char *)pats[k] && (q[-1] == '*' || q[-1] == '%'))
                continue;
            states++;
            if (!wc && !used[*q]) used[*q] = true, nused++;
        }
        states++; /* accept */
    }
    size_t nw = (states + 63) / 64;
    if (nw == 0) nw = 1;
    imap_patterns *p = calloc(1, sizeof(*p));
    uint64_t *mem = calloc((6 + nused) * nw, sizeof(uint64_t));
    if (!p || !mem) abort();
    p->nw = nw;
    p->star = mem, p->wild = mem + nw, p->accept = mem + 2 * nw, p->init = mem + 3 * nw;
    p->cur = mem + 4 * nw, p->next = mem + 5 * nw, p->lit = mem + 6 * nw;
    uint16_t row = 0;
    for (int c = 0; c < 256; c++)
        if (used[c]) p->slot[c] = ++row;
    size_t st = 0;
    for (size_t k = 0; k < n; k++) {
        BIT_SET(p->init, st);
        for (const unsigned char *q = (const unsigned char *)pats[k]; *q; q++) {
            bool wc = *q == '*' || *q == '%';
            if (wc && q != (const unsigned char *)pats[k] && (q[-1] == '*' || q[-1] == '%')) {
                if (*q == '*') BIT_SET(p->star, st - 1); /* "%*" is "*" */
                continue;
            }
            if (wc) {
                BIT_SET(p->wild, st);
                if (*q == '*') BIT_SET(p->star, st);
            } else {
                BIT_SET(p->lit + (size_t)(p->slot[*q] - 1) * nw, st);
            }
            st++;
        }
        BIT_SET(p->accept, st);
        st++;
    }
    close_wild(p->init, p->wild, nw);
    return p;
}

void imap_patterns_free(imap_patterns **pp)
{
    imap_patterns *p = *pp;
    if (!p) return;
    free(p->star); /* the one block of masks */
    free(p);
    *pp = NULL;
}

static bool any_common(const uint64_t *a, const uint64_t *b, size_t nw)
{
    for (size_t w = 0; w < nw; w++)
        if (a[w] & b[w]) return true;
    return false;
}

bool imap_patterns_match(imap_patterns *p, const char *name, size_t len, uint16_t *prefixes,
                         size_t cap, size_t *nprefixes)
{
    size_t nw = p->nw;
    uint64_t *cur = p->cur, *next = p->next;
    memcpy(cur, p->init, nw * sizeof(uint64_t));
    if (nprefixes) *nprefixes = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' && prefixes && *nprefixes < cap && any_common(cur, p->accept, nw))
            prefixes[(*nprefixes)++] = (uint16_t)i;
        const uint64_t *keep = ch == '/' ? p->star : p->wild;
        const uint64_t *lit = p->slot[ch] ? p->lit + (size_t)(p->slot[ch] - 1) * nw : NULL;
        uint64_t carry = 0, any = 0;
        for (size_t w = 0; w < nw; w++) {
            uint64_t d = cur[w], adv = lit ? d & lit[w] : 0;
            next[w] = (d & keep[w]) | (adv << 1) | carry;
            carry = adv >> 63;
        }
        close_wild(next, p->wild, nw);
        for (size_t w = 0; w < nw; w++)
            any |= next[w];
        if (!any) return false; /* every pattern failed: no longer name matches either */
        uint64_t *t = cur;
        cur = next;
        next = t;
    }
    return any_common(cur, p->accept, nw);
}

bool imap_pattern_match(const char *pat, const char *name)
{
    char *pats[1] = {(char *)pat};
    imap_patterns *p = imap_patterns_new(pats, 1);
    bool r = imap_patterns_match(p, name, strlen(name), NULL, 0, NULL);
    imap_patterns_free(&p);
    return r;
}
