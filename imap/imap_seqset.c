/* imap_seqset.c: parsing, resolving and printing IMAP sequence sets */
#include "imap/imap_seqset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_num(const char *s, size_t len, size_t *i, uint32_t *out, const char **why)
{
    if (*i < len && s[*i] == '*') {
        (*i)++;
        *out = IMAP_SEQ_STAR;
        return 0;
    }
    if (*i >= len || s[*i] < '1' || s[*i] > '9') {
        *why = (*i < len && s[*i] == '0') ? "sequence numbers start at 1" : "invalid sequence set";
        return -EINVAL;
    }
    uint64_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (uint64_t)(s[*i] - '0');
        if (v > UINT32_MAX) {
            *why = "sequence number too large";
            return -EINVAL;
        }
        (*i)++;
    }
    *out = (uint32_t)v;
    return 0;
}

int imap_seqset_parse(const char *s, size_t len, size_t max_ranges, imap_seqset *out,
                      const char **why)
{
    out->r = NULL;
    out->n = 0;
    size_t cap = 0, i = 0;
    if (max_ranges == 0) max_ranges = IMAP_SEQSET_MAX_RANGES;
    if (len == 0) {
        *why = "empty sequence set";
        return -EINVAL;
    }
    for (;;) {
        imap_seq_range r;
        if (parse_num(s, len, &i, &r.lo, why) < 0) goto err;
        r.hi = r.lo;
        if (i < len && s[i] == ':') {
            i++;
            if (parse_num(s, len, &i, &r.hi, why) < 0) goto err;
        }
        if (out->n == max_ranges) {
            *why = "too many ranges in sequence set";
            goto err;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            imap_seq_range *n = realloc(out->r, cap * sizeof(*n));
            if (!n) abort();
            out->r = n;
        }
        out->r[out->n++] = r;
        if (i == len) return 0;
        if (s[i] != ',') {
            *why = "invalid sequence set";
            goto err;
        }
        i++;
    }
err:
    imap_seqset_free(out);
    return -EINVAL;
}

bool imap_seqset_syntax(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789:,*", s[i]) || s[i] == '\0') return false;
    return true;
}

static int cmp_range(const void *a, const void *b)
{
    const imap_seq_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void imap_seqset_resolve(imap_seqset *set, uint32_t star)
{
    for (size_t i = 0; i < set->n; i++) {
        imap_seq_range *r = &set->r[i];
        if (r->lo == IMAP_SEQ_STAR) r->lo = star;
        if (r->hi == IMAP_SEQ_STAR) r->hi = star;
        if (r->lo > r->hi) {
            uint32_t t = r->lo;
            r->lo = r->hi;
            r->hi = t;
        }
    }
    if (set->n < 2) return;
    qsort(set->r, set->n, sizeof(*set->r), cmp_range);
    size_t w = 0;
    for (size_t i = 1; i < set->n; i++) {
        if ((uint64_t)set->r[i].lo <= (uint64_t)set->r[w].hi + 1) {
            if (set->r[i].hi > set->r[w].hi) set->r[w].hi = set->r[i].hi;
        } else {
            set->r[++w] = set->r[i];
        }
    }
    set->n = w + 1;
}

bool imap_seqset_contains(const imap_seqset *set, uint32_t n)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n < set->r[mid].lo)
            hi = mid;
        else if (n > set->r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

uint64_t imap_seqset_count(const imap_seqset *set)
{
    uint64_t c = 0;
    for (size_t i = 0; i < set->n; i++)
        c += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
    return c;
}

void imap_seqset_free(imap_seqset *set)
{
    free(set->r);
    set->r = NULL;
    set->n = 0;
}

void imap_seqset_format(mfs_buf *b, const uint32_t *nums, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && nums[j + 1] == nums[j] + 1)
            j++;
        if (i > 0) mfs_buf_putc(b, ',');
        if (j == i)
            mfs_buf_printf(b, "%u", nums[i]);
        else
            mfs_buf_printf(b, "%u:%u", nums[i], nums[j]);
        i = j + 1;
    }
}
