/* imap_utf7.c: modified UTF-7 encoding and strict decoding */
#include "imap/imap_utf7.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

long imap_utf8_next(const char *str, size_t len, size_t *i)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[*i];
    long cp;
    size_t n;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xe0) == 0xc0) {
        cp = c & 0x1f;
        n = 1;
    } else if ((c & 0xf0) == 0xe0) {
        cp = c & 0x0f;
        n = 2;
    } else if ((c & 0xf8) == 0xf0) {
        cp = c & 0x07;
        n = 3;
    } else {
        return -1;
    }
    if (*i + n >= len) return -1;
    for (size_t k = 1; k <= n; k++) {
        if (*i + k >= len || (s[*i + k] & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }
    static const long min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *i += n + 1;
    return cp;
}

bool imap_utf8_check(const char *s, size_t len, bool allow_nul)
{
    size_t i = 0;
    while (i < len) {
        long cp = imap_utf8_next(s, len, &i);
        if (cp < 0 || (cp == 0 && !allow_nul)) return false;
    }
    return true;
}

bool imap_utf8_valid(const char *s, size_t len)
{
    return imap_utf8_check(s, len, false);
}

bool imap_has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] & 0x80) return true;
    return false;
}

void imap_utf8_put(mfs_buf *b, uint32_t cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xc0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        t[0] = (char)(0xf0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    mfs_buf_append(b, t, n);
}

int imap_utf7_encode(const char *s, size_t len, mfs_buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start = out->len, i = 0;
    bool shifted = false;
    uint32_t bits = 0;
    int nbits = 0;
    while (i < len) {
        long cp = imap_utf8_next((const char *)u, len, &i);
        if (cp <= 0) {
            mfs_buf_truncate(out, start);
            return -EINVAL;
        }
        if (cp >= 0x20 && cp <= 0x7e) {
            if (shifted) {
                if (nbits > 0) mfs_buf_putc(out, b64[(bits << (6 - nbits)) & 0x3f]);
                mfs_buf_putc(out, '-');
                shifted = false;
                nbits = 0;
                bits = 0;
            }
            if (cp == '&')
                mfs_buf_append(out, "&-", 2);
            else
                mfs_buf_putc(out, (char)cp);
            continue;
        }
        if (!shifted) {
            mfs_buf_putc(out, '&');
            shifted = true;
        }
        uint16_t units[2];
        int nu = 1;
        if (cp >= 0x10000) {
            long v = cp - 0x10000;
            units[0] = (uint16_t)(0xd800 | (v >> 10));
            units[1] = (uint16_t)(0xdc00 | (v & 0x3ff));
            nu = 2;
        } else {
            units[0] = (uint16_t)cp;
        }
        for (int k = 0; k < nu; k++) {
            bits = (bits << 16) | units[k];
            nbits += 16;
            while (nbits >= 6) {
                nbits -= 6;
                mfs_buf_putc(out, b64[(bits >> nbits) & 0x3f]);
            }
            bits &= (1u << nbits) - 1;
        }
    }
    if (shifted) {
        if (nbits > 0) mfs_buf_putc(out, b64[(bits << (6 - nbits)) & 0x3f]);
        mfs_buf_putc(out, '-');
    }
    return 0;
}

static int b64_val(unsigned char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int imap_utf7_decode(const char *s, size_t len, mfs_buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start = out->len, i = 0;
    bool after_run = false; /* the previous thing was an encoded run */
    while (i < len) {
        unsigned char c = u[i];
        if (c < 0x20 || c > 0x7e) goto bad;
        if (c != '&') {
            mfs_buf_putc(out, (char)c);
            i++;
            after_run = false;
            continue;
        }
        i++;
        if (i < len && u[i] == '-') {
            mfs_buf_putc(out, '&');
            i++;
            after_run = false;
            continue;
        }
        if (after_run) goto bad; /* "&AOQ-&AOQ-" must be written as one run */
        uint32_t bits = 0;
        int nbits = 0;
        long high = -1;
        bool any = false;
        for (;;) {
            if (i >= len) goto bad; /* unterminated */
            c = u[i++];
            if (c == '-') break;
            int v = b64_val(c);
            if (v < 0) goto bad;
            bits = (bits << 6) | (uint32_t)v;
            nbits += 6;
            if (nbits >= 16) {
                nbits -= 16;
                uint32_t unit = (bits >> nbits) & 0xffff;
                bits &= (1u << nbits) - 1;
                any = true;
                if (high >= 0) {
                    if (unit < 0xdc00 || unit > 0xdfff) goto bad;
                    imap_utf8_put(out, 0x10000 + (((high - 0xd800) << 10) | (unit - 0xdc00)));
                    high = -1;
                } else if (unit >= 0xd800 && unit <= 0xdbff) {
                    high = unit;
                } else if (unit >= 0xdc00 && unit <= 0xdfff) {
                    goto bad;
                } else if (unit >= 0x20 && unit <= 0x7e) {
                    goto bad; /* printable ASCII must be sent as itself */
                } else if (unit == 0) {
                    goto bad;
                } else {
                    imap_utf8_put(out, unit);
                }
            }
        }
        if (!any || high >= 0 || nbits >= 6 || bits != 0) goto bad;
        after_run = true;
    }
    return 0;
bad:
    mfs_buf_truncate(out, start);
    return -EINVAL;
}
