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

size_t imap_crlf_len(const char *s, size_t len)
{
    size_t n = len;
    for (const char *p = s; (p = memchr(p, '\n', len - (size_t)(p - s))); p++)
        if (p == s || p[-1] != '\r') n++;
    return n;
}

void imap_crlf_append(imap_buf *b, const char *s, size_t len)
{
    imap_buf_reserve(b, len + len / 16 + 16);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
            imap_buf_append(b, s + run, i - run);
            imap_buf_append(b, "\r\n", 2);
            run = i + 1;
        }
    }
    imap_buf_append(b, s + run, len - run);
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
        size_t start = i;
        if (h[i] == '\r' || h[i] == '\n') break; /* the blank line */
        do {
            const char *lf = memchr(h + i, '\n', hlen - i);
            i = lf ? (size_t)(lf - h) + 1 : hlen;
        } while (i < hlen && (h[i] == ' ' || h[i] == '\t'));
        const char *colon = memchr(h + start, ':', i - start);
        size_t nlen = colon ? (size_t)(colon - (h + start)) : 0;
        while (nlen && (h[start + nlen - 1] == ' ' || h[start + nlen - 1] == '\t'))
            nlen--;
        if (colon && !cb(ctx, h + start, nlen, h + start, i - start)) return;
    }
}

typedef struct filter_ctx {
    imap_buf *out;
    char **fields;
    size_t n;
    bool not ;
} filter_ctx;

static bool filter_cb(void *ctx, const char *name, size_t nlen, const char *field, size_t flen)
{
    filter_ctx *x = ctx;
    bool hit = false;
    for (size_t k = 0; k < x->n && !hit; k++)
        hit = strlen(x->fields[k]) == nlen && strncasecmp(x->fields[k], name, nlen) == 0;
    if (hit != x->not ) {
        imap_crlf_append(x->out, field, flen);
        if (flen && field[flen - 1] != '\n') imap_buf_append(x->out, "\r\n", 2);
    }
    return true;
}

void imap_header_filter(imap_buf *out, const char *h, size_t hlen, char **fields, size_t n,
                        bool not )
{
    filter_ctx x = {out, fields, n, not };
    each_field(h, hlen, filter_cb, &x);
    imap_buf_append(out, "\r\n", 2);
}

typedef struct get_ctx {
    const char *name;
    imap_buf *out;
    bool found;
    bool all;
} get_ctx;

static bool get_cb(void *ctx, const char *name, size_t nlen, const char *field, size_t flen)
{
    get_ctx *x = ctx;
    if (strlen(x->name) != nlen || strncasecmp(x->name, name, nlen) != 0) return true;
    if (x->found) imap_buf_putc(x->out, '\n');
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
        if (sp && x->out->len > start) imap_buf_putc(x->out, ' ');
        sp = false;
        imap_buf_putc(x->out, ch);
    }
    return x->all;
}

bool imap_header_get(const char *h, size_t hlen, const char *name, bool all, imap_buf *out)
{
    get_ctx x = {name, out, false, all};
    imap_buf_puts(out, "");
    each_field(h, hlen, get_cb, &x);
    return x.found;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = toupper(c);
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void b64_decode(const char *s, size_t len, imap_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i], v;
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
        else if (c == '=')
            break;
        else
            continue; /* whitespace and junk are skipped */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            imap_buf_putc(out, (char)((acc >> bits) & 0xff));
        }
    }
}

static void qp_decode(const char *s, size_t len, bool header, imap_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (header && ch == '_') {
            imap_buf_putc(out, ' ');
        } else if (ch == '=' && i + 1 < len) {
            if (s[i + 1] == '\n') {
                i += 1; /* soft line break */
            } else if (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n') {
                i += 2;
            } else if (i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                imap_buf_putc(out, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
                i += 2;
            } else {
                imap_buf_putc(out, ch);
            }
        } else if (ch == '\n' && !header && (i == 0 || s[i - 1] != '\r')) {
            imap_buf_append(out, "\r\n", 2);
        } else {
            imap_buf_putc(out, ch);
        }
    }
}

int imap_cte_decode(const char *enc, const char *s, size_t len, imap_buf *out)
{
    imap_buf_puts(out, "");
    if (!enc || !enc[0] || strcasecmp(enc, "7bit") == 0 || strcasecmp(enc, "8bit") == 0) {
        imap_crlf_append(out, s, len);
        return 0;
    }
    if (strcasecmp(enc, "binary") == 0) {
        imap_buf_append(out, s, len);
        return 0;
    }
    if (strcasecmp(enc, "base64") == 0) {
        b64_decode(s, len, out);
        return 0;
    }
    if (strcasecmp(enc, "quoted-printable") == 0) {
        qp_decode(s, len, false, out);
        return 0;
    }
    return -1;
}

/* Converts TEXT in CHARSET to UTF-8; falls back to the bytes when the charset is unknown. */
void imap_charset_to_utf8(const char *charset, const char *s, size_t len, imap_buf *out)
{
    if (!charset[0] || strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "us-ascii") == 0) {
        imap_buf_append(out, s, len);
        return;
    }
    iconv_t cd = iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        imap_buf_append(out, s, len);
        return;
    }
    char *in = (char *)s;
    size_t inleft = len;
    while (inleft > 0) {
        imap_buf_reserve(out, inleft * 4 + 16);
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
            imap_buf_putc(out, '?');
        }
    }
    iconv_close(cd);
}

void imap_mime_words_decode(const char *s, size_t len, imap_buf *out)
{
    imap_buf_puts(out, "");
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
                        imap_buf_truncate(out, ws_start);
                    imap_buf raw = {0};
                    imap_buf_puts(&raw, "");
                    if (enc == 'B')
                        b64_decode(txt, (size_t)(q2 - txt), &raw);
                    else
                        qp_decode(txt, (size_t)(q2 - txt), true, &raw);
                    imap_charset_to_utf8(charset, raw.data, raw.len, out);
                    imap_buf_free(&raw);
                    i = (size_t)(q2 + 2 - s);
                    last_was_word = true;
                    ws_start = out->len;
                    continue;
                }
            }
        }
        if (s[i] != ' ' && s[i] != '\t') last_was_word = false;
        imap_buf_putc(out, s[i]);
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
