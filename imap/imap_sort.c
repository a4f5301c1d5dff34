/* imap_sort.c: the i;unicode-casemap collation, base subjects, sent dates and SORT itself */
#include "imap/imap_sort.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_casemap_table.h"
#include "imap/imap_utf7.h"

/* ---- i;unicode-casemap (RFC 5051) ------------------------------------------------------ */

void imap_casemap(mfs_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    mfs_buf_reserve(out, len);
    size_t i = 0;
    bool bad = false; /* the last byte started no valid sequence */
    while (i < len) {
        if (u[i] < 0x80) { /* ASCII: only a-z change, and nothing decomposes */
            size_t j = i;
            while (j < len && u[j] < 0x80)
                j++;
            mfs_buf_reserve(out, j - i);
            char *o = out->data + out->len;
            for (size_t k = i; k < j; k++)
                o[k - i] = (char)(u[k] >= 'a' && u[k] <= 'z' ? u[k] - 32 : u[k]);
            out->len += j - i;
            out->data[out->len] = '\0';
            i = j;
            bad = false;
            continue;
        }
        long cp = imap_utf8_next(s, len, &i);
        if (cp < 0) { /* not UTF-8 (see the header): one U+FFFD for a run of such bytes */
            if (!bad) imap_utf8_put(out, 0xfffd);
            bad = true;
            i++;
            continue;
        }
        bad = false;
        if (cp >= 0xac00 && cp <= 0xd7a3) { /* Hangul syllables decompose by formula */
            uint32_t si = (uint32_t)cp - 0xac00;
            imap_utf8_put(out, 0x1100 + si / 588);
            imap_utf8_put(out, 0x1161 + (si % 588) / 28);
            if (si % 28) imap_utf8_put(out, 0x11a7 + si % 28);
            continue;
        }
        size_t lo = 0, hi = CASEMAP_N;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (casemap_cp[mid] < (uint32_t)cp)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < CASEMAP_N && casemap_cp[lo] == (uint32_t)cp) {
            for (uint32_t k = casemap_at[lo]; k < casemap_at[lo + 1]; k++)
                imap_utf8_put(out, casemap_pool[k]);
        } else {
            imap_utf8_put(out, (uint32_t)cp);
        }
    }
}

/* ---- base subject (RFC 5256 section 2.1) ------------------------------------------------ */

static bool ci_prefix(const char *s, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && strncasecmp(s, p, n) == 0;
}

/* Length of the subj-blob ("[" *BLOBCHAR "]" *WSP) at S, 0 if there is none. */
static size_t blob_len(const char *s, size_t len)
{
    if (len == 0 || s[0] != '[') return 0;
    size_t i = 1;
    while (i < len && s[i] != '[' && s[i] != ']')
        i++;
    if (i >= len || s[i] != ']') return 0;
    i++;
    while (i < len && s[i] == ' ')
        i++;
    return i;
}

/* Length of a subj-leader made of *subj-blob subj-refwd at S, 0 if there is none. */
static size_t refwd_len(const char *s, size_t len)
{
    size_t i = 0, b;
    while ((b = blob_len(s + i, len - i)) > 0)
        i += b;
    if (ci_prefix(s + i, len - i, "re"))
        i += 2;
    else if (ci_prefix(s + i, len - i, "fw")) {
        i += 2;
        if (i < len && (s[i] == 'd' || s[i] == 'D')) i++;
    } else
        return 0;
    while (i < len && s[i] == ' ')
        i++;
    i += blob_len(s + i, len - i);
    if (i >= len || s[i] != ':') return 0;
    return i + 1;
}

bool imap_base_subject(mfs_buf *out, const char *s, size_t len)
{
    /* (1): blanks and line ends as one space each run; *V is the working copy */
    mfs_buf w = {0};
    mfs_buf_reserve(&w, len);
    bool sp = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (!sp) mfs_buf_putc(&w, ' ');
            sp = true;
            continue;
        }
        sp = false;
        mfs_buf_putc(&w, c);
    }
    const char *v = w.data ? w.data : "";
    size_t a = 0, e = w.len; /* the text left is v[a, e) */
    bool reply = false;
    for (;;) {
        /* (2) trailers */
        for (;;) {
            if (e > a && v[e - 1] == ' ')
                e--;
            else if (e - a >= 5 && strncasecmp(v + e - 5, "(fwd)", 5) == 0) {
                e -= 5;
                reply = true;
            } else
                break;
        }
        /* (3) to (5): leaders and blobs */
        for (bool changed = true; changed;) {
            changed = false;
            if (a < e && v[a] == ' ') {
                a++;
                changed = true;
                continue;
            }
            size_t r = refwd_len(v + a, e - a);
            if (r) {
                a += r;
                reply = true;
                changed = true;
                continue;
            }
            size_t b = blob_len(v + a, e - a);
            if (b && a + b < e) {
                a += b;
                changed = true;
            }
        }
        /* (6) "[fwd: ... ]" */
        if (e - a >= 6 && ci_prefix(v + a, e - a, "[fwd:") && v[e - 1] == ']') {
            a += 5;
            e -= 1;
            reply = true;
            continue;
        }
        break;
    }
    mfs_buf_append(out, v + a, e - a);
    mfs_buf_free(&w);
    return reply;
}

/* ---- sent dates (RFC 5322 section 3.3, with its obsolete forms) ------------------------ */

/* Skips blanks, line ends and (nested) comments. */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
    while (i < len) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
            i++;
        } else if (c == '(') {
            int depth = 0;
            while (i < len) {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                else if (s[i] == '(')
                    depth++;
                else if (s[i] == ')' && --depth == 0) {
                    i++;
                    break;
                }
                i++;
            }
        } else {
            break;
        }
    }
    return i;
}

static size_t read_num(const char *s, size_t len, size_t i, int max_digits, int *v, int *ndig)
{
    int n = 0, d = 0;
    while (i < len && d < max_digits && s[i] >= '0' && s[i] <= '9') {
        n = n * 10 + (s[i] - '0');
        i++;
        d++;
    }
    *v = n;
    *ndig = d;
    return i;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int imap_date_parse_rfc5322(const char *s, size_t len, int64_t *t)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    size_t i = skip_cfws(s, len, 0);
    if (i < len && isalpha((unsigned char)s[i])) { /* day-of-week */
        while (i < len && isalpha((unsigned char)s[i]))
            i++;
        i = skip_cfws(s, len, i);
    }
    int day, year, nd;
    i = read_num(s, len, i, 2, &day, &nd);
    if (nd == 0 || day < 1 || day > 31) return -1;
    i = skip_cfws(s, len, i);
    if (i < len && s[i] == '-') i++; /* "1-Jan-2000" is seen too */
    if (len - i < 3) return -1;
    char mon[4] = {(char)tolower((unsigned char)s[i]), (char)tolower((unsigned char)s[i + 1]),
                   (char)tolower((unsigned char)s[i + 2]), 0};
    const char *f = strstr(months, mon);
    if (!f || (f - months) % 3 != 0) return -1;
    int month = (int)(f - months) / 3 + 1;
    i += 3;
    while (i < len && isalpha((unsigned char)s[i])) /* "June", "Sept" */
        i++;
    i = skip_cfws(s, len, i);
    if (i < len && s[i] == '-') i++;
    i = read_num(s, len, i, 4, &year, &nd);
    if (nd == 0) return -1;
    if (nd <= 2) /* RFC 5322 4.3 */
        year += year < 50 ? 2000 : 1900;
    else if (nd == 3)
        year += 1900;
    int64_t secs = 0;
    int zone = 0;
    i = skip_cfws(s, len, i);
    int hh, mm, ss = 0, n1, n2;
    size_t j = read_num(s, len, i, 2, &hh, &n1);
    if (n1 > 0 && j < len && s[j] == ':') {
        j = read_num(s, len, j + 1, 2, &mm, &n2);
        if (n2 > 0 && j < len && s[j] == ':') {
            int n3;
            size_t k = read_num(s, len, j + 1, 2, &ss, &n3);
            if (n3 > 0)
                j = k;
            else
                ss = 0;
        }
        if (n2 > 0 && hh <= 23 && mm <= 59 && ss <= 60) {
            secs = hh * 3600 + mm * 60 + ss;
            i = skip_cfws(s, len, j);
            /* the zone; unknown ones count as UTC */
            if (i < len && (s[i] == '+' || s[i] == '-')) {
                int z, nz;
                read_num(s, len, i + 1, 4, &z, &nz);
                if (nz == 4 && z % 100 < 60)
                    zone = (s[i] == '-' ? -1 : 1) * (z / 100 * 60 + z % 100);
            } else {
                static const struct {
                    const char *name;
                    int min;
                } names[] = {{"EST", -300}, {"EDT", -240}, {"CST", -360}, {"CDT", -300},
                             {"MST", -420}, {"MDT", -360}, {"PST", -480}, {"PDT", -420}};
                for (size_t z = 0; z < sizeof(names) / sizeof(names[0]); z++)
                    if (len - i >= 3 && strncasecmp(s + i, names[z].name, 3) == 0 &&
                        (len - i == 3 || !isalpha((unsigned char)s[i + 3])))
                        zone = names[z].min;
            }
        }
    }
    *t = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 + secs - (int64_t)zone * 60;
    return 0;
}

/* ---- the sort program and the sort ------------------------------------------------------ */

int imap_sort_program_parse(const imap_arg *list, imap_sort_crit *out, size_t *n, const char **why,
                            const char **what)
{
    static const struct {
        const char *name;
        uint8_t key;
    } keys[] = {
        {"ARRIVAL", IMAP_SORT_ARRIVAL},
        {"CC", IMAP_SORT_CC},
        {"DATE", IMAP_SORT_DATE},
        {"FROM", IMAP_SORT_FROM},
        {"SIZE", IMAP_SORT_SIZE},
        {"SUBJECT", IMAP_SORT_SUBJECT},
        {"TO", IMAP_SORT_TO},
        {"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
        {"DISPLAYTO", IMAP_SORT_DISPLAYTO},
    };
    *n = 0;
    *what = NULL;
    if (!list || list->type != IMAP_ARG_LIST) {
        *why = "the sort program must be a parenthesized list of sort keys";
        return -1;
    }
    if (list->count == 0) {
        *why = "the sort program is empty";
        return -1;
    }
    bool reverse = false;
    for (size_t i = 0; i < list->count; i++) {
        const imap_arg *a = &list->list[i];
        if (a->type != IMAP_ARG_ATOM) {
            *why = "a sort key must be an atom";
            return -1;
        }
        if (strcasecmp(a->str, "REVERSE") == 0) {
            if (reverse) {
                *why = "REVERSE must be followed by a sort key, not";
                *what = a->str;
                return -1;
            }
            reverse = true;
            continue;
        }
        size_t k = 0;
        while (k < sizeof(keys) / sizeof(keys[0]) && strcasecmp(a->str, keys[k].name) != 0)
            k++;
        if (k == sizeof(keys) / sizeof(keys[0])) {
            *why = "unknown sort key";
            *what = a->str;
            return -1;
        }
        if (*n == IMAP_SORT_CRITERIA_MAX) {
            *why = "too many sort keys (at most 16)";
            return -1;
        }
        out[*n].key = keys[k].key;
        out[*n].reverse = reverse;
        (*n)++;
        reverse = false;
    }
    if (reverse) {
        *why = "REVERSE must be followed by a sort key";
        return -1;
    }
    return 0;
}

typedef struct sort_ctx {
    const imap_sort_crit *c;
    size_t nc;
    const char *pool;
    const imap_sort_msg *m;
} sort_ctx;

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_msgs(const imap_sort_msg *a, const imap_sort_msg *b, const sort_ctx *x, size_t from)
{
    for (size_t i = from; i < x->nc; i++) {
        int r;
        unsigned k = x->c[i].key;
        if (k < IMAP_SORT_NSTR && !x->pool) {
            r = a->rank[k] < b->rank[k] ? -1 : a->rank[k] > b->rank[k];
        } else if (k < IMAP_SORT_NSTR) {
            uint32_t la = a->len[k], lb = b->len[k];
            r = memcmp(x->pool + a->off[k], x->pool + b->off[k], la < lb ? la : lb);
            if (r == 0) r = la < lb ? -1 : la > lb;
        } else if (k == IMAP_SORT_ARRIVAL) {
            r = cmp_i64(a->arrival, b->arrival);
        } else if (k == IMAP_SORT_DATE) {
            r = cmp_i64(a->date, b->date);
        } else {
            r = a->size < b->size ? -1 : a->size > b->size;
        }
        if (r) return x->c[i].reverse ? -r : r;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* What is sorted: the first criterion as a number that orders as it does (a string key: its
 * first 8 bytes, big-endian, zero-padded), so most comparisons look at nothing else; the
 * message's index for the rest. */
typedef struct sort_item {
    uint64_t key;
    uint32_t ix;
} sort_item;

static int run_cmp(const void *pa, const void *pb, void *arg)
{
    const sort_item *a = pa, *b = pb;
    const sort_ctx *x = arg;
    /* equal keys: a string key's 8 bytes did not decide, so compare it whole; a number is all
     * in its key */
    return cmp_msgs(&x->m[a->ix], &x->m[b->ix], x, x->c[0].key < IMAP_SORT_NSTR && x->pool ? 0 : 1);
}

/* Sorts V by key, keeping the order of equal keys (least significant byte first, one pass
 * per byte in which the keys differ). TMP has room for N items. */
static void radix_sort(sort_item *v, sort_item *tmp, size_t n)
{
    size_t count[8][256] = {{0}};
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 8; d++)
            count[d][(v[i].key >> (8 * d)) & 0xff]++;
    sort_item *from = v, *to = tmp;
    for (int d = 0; d < 8; d++) {
        size_t *c = count[d];
        if (c[(from[0].key >> (8 * d)) & 0xff] == n) continue; /* all the same here */
        size_t at = 0;
        for (int k = 0; k < 256; k++) {
            size_t w = c[k];
            c[k] = at;
            at += w;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i].key >> (8 * d)) & 0xff]++] = from[i];
        sort_item *sw = from;
        from = to;
        to = sw;
    }
    if (from != v) memcpy(v, from, n * sizeof(*v));
}

void imap_sort(imap_sort_msg *m, size_t n, const imap_sort_crit *c, size_t nc, const char *pool)
{
    if (n < 2 || nc == 0) return;
    sort_ctx x = {.c = c, .nc = nc, .pool = pool, .m = m};
    sort_item *v = malloc(n * sizeof(*v));
    imap_sort_msg *tmp = malloc(n * sizeof(*tmp));
    if (!v || !tmp) abort();
    sort_item *work = malloc(n * sizeof(*work));
    if (!work) abort();
    unsigned k0 = c[0].key;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = 0;
        if (k0 < IMAP_SORT_NSTR && !pool) {
            key = m[i].rank[k0];
        } else if (k0 < IMAP_SORT_NSTR) {
            const unsigned char *p = (const unsigned char *)x.pool + m[i].off[k0];
            uint32_t len = m[i].len[k0];
            for (uint32_t j = 0; j < 8; j++)
                key = key << 8 | (j < len ? p[j] : 0);
        } else if (k0 == IMAP_SORT_SIZE) {
            key = m[i].size;
        } else { /* a signed time as an unsigned number of the same order */
            key = (uint64_t)(k0 == IMAP_SORT_ARRIVAL ? m[i].arrival : m[i].date) ^ (1ull << 63);
        }
        v[i] = (sort_item){c[0].reverse ? ~key : key, (uint32_t)i};
    }
    /* by the first key's number (stable: equal ones stay in mailbox order), then the runs of
     * equal numbers by the whole comparison, when anything else can tell them apart */
    radix_sort(v, work, n);
    free(work);
    if ((k0 < IMAP_SORT_NSTR && pool) || nc > 1) {
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && v[j].key == v[i].key)
                j++;
            if (j - i > 1) qsort_r(v + i, j - i, sizeof(*v), run_cmp, &x);
            i = j;
        }
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = m[v[i].ix];
    memcpy(m, tmp, n * sizeof(*m));
    free(v);
    free(tmp);
}
