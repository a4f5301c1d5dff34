/* imap_msg.c: reading message text: CRLF output, header fields, MIME words, transfer encodings */
#include <ctype.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_msg.h"
#include "imap/imap_utf7.h"

/* ---- converters --------------------------------------------------------------------- */

enum { F_SCAN, F_COPY, F_TERM, F_FINAL, F_DONE }; /* FIELDS phases */

/* Counts the text of S[*I, END) 16 bytes at a time while BUDGET leaves room for a block of
 * bare LFs (S[*I - 1] must exist: a CR before the block counts); advances *I, returns the
 * count. Without SSE2 it does nothing and the callers' scalar loops do all of it. */
static size_t crlf_blocks(const char *s, size_t *pi, size_t end, size_t budget)
{
    size_t i = *pi, n = 0;
#ifdef __SSE2__
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    while (i + 16 <= end && budget - n >= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(s + i - 1));
        unsigned bare = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, lf)) &
                        ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, cr));
        n += 16 + (size_t)__builtin_popcount(bare);
        i += 16;
    }
#else
    (void)s, (void)end, (void)budget;
#endif
    *pi = i;
    return n;
}

size_t imap_crlf_len(const char *s, size_t len)
{
    if (len == 0) return 0;
    size_t i = 1, n = s[0] == '\n' ? 2 : 1;
    n += crlf_blocks(s, &i, len, SIZE_MAX);
    for (; i < len; i++)
        n += s[i] == '\n' && s[i - 1] != '\r' ? 2 : 1;
    return n;
}

void imap_conv_init(imap_conv *cv, imap_conv_kind kind)
{
    memset(cv, 0, sizeof(*cv));
    cv->kind = kind;
}

/* Orders field names by length, then ASCII case-insensitively. */
static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl) return al < bl ? -1 : 1;
    return strncasecmp(a, b, al);
}

static int fields_qsort_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return name_cmp(x, strlen(x), y, strlen(y));
}

void imap_fields_sort(char **fields, size_t n)
{
    if (n > 1) qsort(fields, n, sizeof(*fields), fields_qsort_cmp);
}

/* Whether NAME is one of the converter's (sorted) fields. */
static bool field_named(const imap_conv *cv, const char *name, size_t nlen)
{
    size_t lo = 0, hi = cv->nfields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *f = cv->fields[mid];
        int c = name_cmp(f, strlen(f), name, nlen);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void imap_conv_init_fields(imap_conv *cv, char *const *fields, size_t n, bool not_fields)
{
    imap_conv_init(cv, IMAP_CONV_FIELDS);
    cv->fields = fields;
    cv->nfields = n;
    cv->not_fields = not_fields;
}

int imap_conv_init_cte(imap_conv *cv, const char *enc)
{
    if (!enc || !enc[0] || strcasecmp(enc, "7bit") == 0 || strcasecmp(enc, "8bit") == 0)
        imap_conv_init(cv, IMAP_CONV_CRLF);
    else if (strcasecmp(enc, "binary") == 0)
        imap_conv_init(cv, IMAP_CONV_COPY);
    else if (strcasecmp(enc, "base64") == 0)
        imap_conv_init(cv, IMAP_CONV_BASE64);
    else if (strcasecmp(enc, "quoted-printable") == 0)
        imap_conv_init(cv, IMAP_CONV_QP);
    else
        return -1;
    return 0;
}

/* Where one run's bytes go: W, which has room for MAX, or nowhere (counting). */
typedef struct conv_sink {
    imap_conv *cv;
    char *w;
    size_t n, max;
} conv_sink;

static inline void put(conv_sink *k, const char *p, size_t n)
{
    if (k->w) memcpy(k->w + k->n, p, n);
    if (k->cv->want_nul && !k->cv->nul && memchr(p, '\0', n)) k->cv->nul = true;
    k->n += n;
}

/* Puts a two-byte sequence (K has room for one at least); what MAX cuts off waits in pend. */
static void put_pair(conv_sink *k, const char *pair)
{
    if (k->max - k->n >= 2) {
        put(k, pair, 2);
        return;
    }
    put(k, pair, 1);
    k->cv->pend[0] = pair[1];
    k->cv->npend = 1;
}

/* Where a run over a LEN-byte source stops reading. */
static size_t stop_at(const imap_conv *cv, size_t len)
{
    size_t stop = cv->in_stop && cv->in_stop < len ? cv->in_stop : len;
    return stop < cv->in ? cv->in : stop;
}

/* CRLF conversion of S[cv->in, END); a LF at S[0] counts as bare. */
static void crlf_run(conv_sink *k, const char *s, size_t end)
{
    imap_conv *cv = k->cv;
    if (!k->w && !cv->want_nul && cv->in < end && k->n < k->max) {
        /* counting or skipping: a block at a time */
        if (cv->in == 0) {
            cv->in = 1;
            if (s[0] == '\n')
                put_pair(k, "\r\n");
            else
                k->n++;
        }
        k->n += crlf_blocks(s, &cv->in, end, k->max - k->n);
    }
    while (k->n < k->max && cv->in < end) {
        size_t room = k->max - k->n, avail = end - cv->in;
        size_t span = avail < room ? avail : room;
        const char *p = s + cv->in;
        const char *lf = memchr(p, '\n', span);
        size_t seg = lf ? (size_t)(lf - p) : span;
        put(k, p, seg);
        cv->in += seg;
        if (!lf) continue;
        bool bare = cv->in == 0 || s[cv->in - 1] != '\r';
        cv->in++;
        if (bare)
            put_pair(k, "\r\n");
        else
            put(k, "\n", 1);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = toupper(c);
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void b64_run(conv_sink *k, const char *s, size_t len)
{
    imap_conv *cv = k->cv;
    size_t stop = stop_at(cv, len);
    while (k->n < k->max && cv->in < stop) {
        int c = (unsigned char)s[cv->in++], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            cv->in = len; /* padding: the end */
            break;
        } else
            continue; /* whitespace and junk are skipped */
        cv->acc = ((cv->acc << 6) | (uint32_t)v) & 0xffffff;
        cv->bits += 6;
        if (cv->bits >= 8) {
            cv->bits -= 8;
            char ch = (char)((cv->acc >> cv->bits) & 0xff);
            put(k, &ch, 1);
        }
    }
}

/* RFC 2045 6.7 (3): if S[I, ...) is spaces and tabs up to a line break or the end, where that
 * line break (or the end) starts; else 0. */
static size_t padding_end(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == len || s[i] == '\n' || (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')) return i;
    return 0;
}

/* Past the line break (LF or CRLF) at S[I]. */
static size_t line_next(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '\r') i++;
    return i + 1;
}

static void qp_run(conv_sink *k, const char *s, size_t len)
{
    imap_conv *cv = k->cv;
    bool header = cv->qp_header;
    size_t stop = stop_at(cv, len);
    while (k->n < k->max && cv->in < stop) {
        size_t i = cv->in;
        char ch = s[i];
        cv->in++;
        size_t eol;
        if (header && ch == '_') {
            put(k, " ", 1);
        } else if (!header && (ch == ' ' || ch == '\t') && (eol = padding_end(s, len, i)) > 0) {
            cv->in = eol; /* whitespace before a line break is transport padding: dropped */
        } else if (!header && ch == '=' && (eol = padding_end(s, len, i + 1)) > 0 && eol < len) {
            cv->in = line_next(s, len, eol); /* soft line break, padding allowed before it (a
                                              * '=' that ends the data stays a '=') */
        } else if (ch == '=' && i + 1 < len) {
            if (i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                char o = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                put(k, &o, 1);
                cv->in = i + 3;
            } else {
                put(k, &ch, 1);
            }
        } else if (ch == '\n' && !header && (i == 0 || s[i - 1] != '\r')) {
            put_pair(k, "\r\n");
        } else {
            put(k, &ch, 1);
        }
    }
}

/* The extent of the header field at H[START, ...): its end (folded lines included) and the
 * length of its name (0 without a colon: not a field). */
static size_t field_extent(const char *h, size_t hlen, size_t start, size_t *nlen, bool *colon)
{
    size_t i = start;
    do {
        const char *lf = memchr(h + i, '\n', hlen - i);
        i = lf ? (size_t)(lf - h) + 1 : hlen;
    } while (i < hlen && (h[i] == ' ' || h[i] == '\t'));
    const char *c = memchr(h + start, ':', i - start);
    size_t n = c ? (size_t)(c - (h + start)) : 0;
    while (n && (h[start + n - 1] == ' ' || h[start + n - 1] == '\t'))
        n--;
    *nlen = n;
    *colon = c != NULL;
    return i;
}

static void fields_run(conv_sink *k, const char *h, size_t hlen)
{
    imap_conv *cv = k->cv;
    while (k->n < k->max) {
        switch (cv->phase) {
        case F_SCAN: {
            if (cv->in_stop && cv->in >= cv->in_stop && cv->in < hlen) return;
            if (cv->in >= hlen || h[cv->in] == '\r' || h[cv->in] == '\n') { /* the blank line */
                cv->phase = F_FINAL;
                break;
            }
            size_t nlen;
            bool colon;
            size_t end = field_extent(h, hlen, cv->in, &nlen, &colon);
            if (colon && field_named(cv, h + cv->in, nlen) != cv->not_fields) {
                cv->field_end = end;
                cv->phase = F_COPY;
            } else {
                cv->in = end;
            }
            break;
        }
        case F_COPY:
            crlf_run(k, h, cv->field_end);
            if (cv->in == cv->field_end) cv->phase = h[cv->in - 1] == '\n' ? F_SCAN : F_TERM;
            break;
        case F_TERM:
            put_pair(k, "\r\n");
            cv->phase = F_SCAN;
            break;
        case F_FINAL:
            put_pair(k, "\r\n");
            cv->phase = F_DONE;
            break;
        default:
            return;
        }
    }
}

size_t imap_conv_run(imap_conv *cv, const char *src, size_t len, mfs_buf *out, size_t max)
{
    conv_sink k = {cv, NULL, 0, max};
    if (out) {
        mfs_buf_reserve(out, max);
        k.w = out->data + out->len;
    }
    while (cv->npend && k.n < k.max) {
        put(&k, cv->pend, 1);
        cv->pend[0] = cv->pend[1];
        cv->npend--;
    }
    if (k.n < k.max) {
        switch (cv->kind) {
        case IMAP_CONV_COPY: {
            size_t stop = stop_at(cv, len);
            size_t n = stop - cv->in < k.max - k.n ? stop - cv->in : k.max - k.n;
            put(&k, src + cv->in, n);
            cv->in += n;
            break;
        }
        case IMAP_CONV_CRLF:
            crlf_run(&k, src, stop_at(cv, len));
            break;
        case IMAP_CONV_BASE64:
            b64_run(&k, src, len);
            break;
        case IMAP_CONV_QP:
            qp_run(&k, src, len);
            break;
        case IMAP_CONV_FIELDS:
            fields_run(&k, src, len);
            break;
        }
    }
    if (out) {
        out->len += k.n;
        out->data[out->len] = '\0';
    }
    cv->out += k.n;
    return k.n;
}

bool imap_conv_done(const imap_conv *cv, size_t len)
{
    if (cv->npend) return false;
    return cv->kind == IMAP_CONV_FIELDS ? cv->phase == F_DONE : cv->in >= len;
}

void imap_crlf_append(mfs_buf *b, const char *s, size_t len)
{
    imap_conv cv;
    imap_conv_init(&cv, IMAP_CONV_CRLF);
    imap_conv_run(&cv, s, len, b, imap_crlf_len(s, len));
}

void imap_msg_split(const char *data, size_t len, size_t *hdr_len, size_t *body_off)
{
    /* the header ends at the first empty line; a message without one is all header */
    size_t i = 0;
    while (i < len) {
        const char *lf = memchr(data + i, '\n', len - i);
        if (!lf) break;
        size_t line_start = i;
        i = (size_t)(lf - data) + 1;
        size_t l = i - line_start;
        if (l == 1 || (l == 2 && data[line_start] == '\r')) {
            *hdr_len = i;
            *body_off = i;
            return;
        }
    }
    *hdr_len = len;
    *body_off = len;
}

/* Walks the fields of a header block: calls CB with each field's name and full text (folded
 * lines included). */
static void each_field(const char *h, size_t hlen,
                       bool (*cb)(void *ctx, const char *name, size_t nlen, const char *field,
                                  size_t flen),
                       void *ctx)
{
    size_t i = 0;
    while (i < hlen) {
        size_t start = i, nlen;
        bool colon;
        if (h[i] == '\r' || h[i] == '\n') break; /* the blank line */
        i = field_extent(h, hlen, start, &nlen, &colon);
        if (colon && !cb(ctx, h + start, nlen, h + start, i - start)) return;
    }
}

void imap_header_filter(mfs_buf *out, const char *h, size_t hlen, char **fields, size_t n,
                        bool not )
{
    imap_conv cv;
    imap_fields_sort(fields, n);
    imap_conv_init_fields(&cv, fields, n, not );
    imap_conv_run(&cv, h, hlen, out, 2 * hlen + 4); /* each byte at most twice, 2 CRLF */
}

typedef struct get_ctx {
    const char *name;
    mfs_buf *out;
    bool found;
    bool all;
} get_ctx;

static bool get_cb(void *ctx, const char *name, size_t nlen, const char *field, size_t flen)
{
    get_ctx *x = ctx;
    if (strlen(x->name) != nlen || strncasecmp(x->name, name, nlen) != 0) return true;
    if (x->found) mfs_buf_putc(x->out, '\n');
    x->found = true;
    /* the value: after the colon, unfolded, trimmed */
    const char *v = memchr(field, ':', flen) + 1;
    size_t vl = flen - (size_t)(v - field);
    bool sp = false;
    size_t start = x->out->len;
    for (size_t i = 0; i < vl; i++) {
        char ch = v[i];
        if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t') {
            sp = true;
            continue;
        }
        if (sp && x->out->len > start) mfs_buf_putc(x->out, ' ');
        sp = false;
        mfs_buf_putc(x->out, ch);
    }
    return x->all;
}

bool imap_header_get(const char *h, size_t hlen, const char *name, bool all, mfs_buf *out)
{
    get_ctx x = {name, out, false, all};
    mfs_buf_puts(out, "");
    each_field(h, hlen, get_cb, &x);
    return x.found;
}

static void b64_decode(const char *s, size_t len, mfs_buf *out)
{
    imap_conv cv;
    imap_conv_init(&cv, IMAP_CONV_BASE64);
    imap_conv_run(&cv, s, len, out, len); /* 3 bytes for every 4 */
}

static void qp_decode(const char *s, size_t len, bool header, mfs_buf *out)
{
    imap_conv cv;
    imap_conv_init(&cv, IMAP_CONV_QP);
    cv.qp_header = header;
    imap_conv_run(&cv, s, len, out, 2 * len); /* a bare LF gets a CR */
}

int imap_cte_decode(const char *enc, const char *s, size_t len, mfs_buf *out)
{
    imap_conv cv;
    mfs_buf_puts(out, "");
    if (imap_conv_init_cte(&cv, enc) < 0) return -1;
    size_t max = cv.kind == IMAP_CONV_CRLF ? imap_crlf_len(s, len)
                 : cv.kind == IMAP_CONV_QP ? 2 * len
                                           : len;
    imap_conv_run(&cv, s, len, out, max);
    return 0;
}

/* Converts TEXT in CHARSET to UTF-8; falls back to the bytes when the charset is unknown. */
void imap_charset_to_utf8(const char *charset, const char *s, size_t len, mfs_buf *out)
{
    if (!charset[0] || strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "us-ascii") == 0) {
        mfs_buf_append(out, s, len);
        return;
    }
    iconv_t cd = iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        mfs_buf_append(out, s, len);
        return;
    }
    char *in = (char *)s;
    size_t inleft = len;
    while (inleft > 0) {
        mfs_buf_reserve(out, inleft * 4 + 16);
        char *o = out->data + out->len;
        size_t oleft = out->cap - out->len - 1;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        if (r == (size_t)-1) {
            if (errno == E2BIG) continue;
            /* skip a bad byte */
            in++;
            inleft--;
            mfs_buf_putc(out, '?');
        }
    }
    iconv_close(cd);
}

void imap_mime_words_decode(const char *s, size_t len, mfs_buf *out)
{
    mfs_buf_puts(out, "");
    size_t i = 0;
    bool last_was_word = false;
    size_t ws_start = 0;
    while (i < len) {
        if (i + 1 < len && s[i] == '=' && s[i + 1] == '?') {
            /* =?charset?X?text?= */
            const char *cs = s + i + 2, *end = s + len;
            const char *q1 = memchr(cs, '?', (size_t)(end - cs));
            if (q1 && q1 + 2 < end && q1[2] == '?') {
                char enc = (char)toupper((unsigned char)q1[1]);
                const char *txt = q1 + 3;
                const char *q2 = txt;
                while (q2 + 1 < end && !(q2[0] == '?' && q2[1] == '='))
                    q2++;
                if (q2 + 1 < end && (enc == 'B' || enc == 'Q') && q1 - cs < 64) {
                    char charset[64];
                    memcpy(charset, cs, (size_t)(q1 - cs));
                    charset[q1 - cs] = '\0';
                    char *star = strchr(charset, '*'); /* RFC 2231 language */
                    if (star) *star = '\0';
                    if (last_was_word) /* whitespace between two words is dropped */
                        mfs_buf_truncate(out, ws_start);
                    mfs_buf raw = {0};
                    mfs_buf_puts(&raw, "");
                    if (enc == 'B')
                        b64_decode(txt, (size_t)(q2 - txt), &raw);
                    else
                        qp_decode(txt, (size_t)(q2 - txt), true, &raw);
                    imap_charset_to_utf8(charset, raw.data, raw.len, out);
                    mfs_buf_free(&raw);
                    i = (size_t)(q2 + 2 - s);
                    last_was_word = true;
                    ws_start = out->len;
                    continue;
                }
            }
        }
        if (s[i] != ' ' && s[i] != '\t') last_was_word = false;
        mfs_buf_putc(out, s[i]);
        i++;
    }
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static bool ci_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

/* ASCII case-insensitive substring search. It looks for places where both the first and the
 * last byte of the needle match, 16 places at a time with SSE2, and compares only there: mail
 * is scanned at several GB/s instead of a byte and a tolower() call at a time. */
bool imap_ci_contains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0) return true;
    if (nlen > hlen) return false;
    const unsigned char *h = (const unsigned char *)hay, *n = (const unsigned char *)needle;
    unsigned char first = ascii_lower(n[0]), last = ascii_lower(n[nlen - 1]);
    size_t end = hlen - nlen; /* the last possible start */
    size_t i = 0;
#ifdef __SSE2__
    /* OR 0x20 lower-cases A-Z and maps no other byte onto a-z, so for a letter it folds case;
     * for any other needle byte the mask is 0 and bytes compare as they are */
    const __m128i f = _mm_set1_epi8((char)first), l = _mm_set1_epi8((char)last);
    const __m128i fm = _mm_set1_epi8(first >= 'a' && first <= 'z' ? 0x20 : 0);
    const __m128i lm = _mm_set1_epi8(last >= 'a' && last <= 'z' ? 0x20 : 0);
    for (; i + 16 <= end + 1; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(h + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(h + i + nlen - 1));
        __m128i eq = _mm_and_si128(_mm_cmpeq_epi8(_mm_or_si128(a, fm), f),
                                   _mm_cmpeq_epi8(_mm_or_si128(b, lm), l));
        unsigned mask = (unsigned)_mm_movemask_epi8(eq);
        while (mask) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (ci_equal(h + i + bit + 1, n + 1, nlen > 2 ? nlen - 2 : 0)) return true;
            mask &= mask - 1;
        }
    }
#endif
    for (; i <= end; i++)
        if (ascii_lower(h[i]) == first && ascii_lower(h[i + nlen - 1]) == last &&
            ci_equal(h + i + 1, n + 1, nlen > 2 ? nlen - 2 : 0))
            return true;
    return false;
}
