/* imap_quote.c: writing strings in IMAP syntax: the one rule for quoted versus literal */
#include "imap/imap_quote.h"

#include <string.h>
#include <strings.h>

#include "imap/imap_utf7.h"

/*
 * RFC 9051 4.3 decides when a string must be a literal: a quoted string holds no CR or LF and
 * no NUL, and 8-bit bytes only as UTF-8 to a client that enabled it (IMAP4rev2, UTF8=ACCEPT;
 * then valid UTF-8 only, since QUOTED-CHAR is UTF8-2 / UTF8-3 / UTF8-4). NUL is in no string but
 * BINARY's literal8: a literal is the least wrong form for it. Where the RFC leaves the choice,
 * mailfs does what Dovecot does, so that the MIME summary's ENVELOPE and BODYSTRUCTURE text is
 * Dovecot's: a literal for more than QUOTED_MAX_ESCAPES characters to escape or more than
 * QUOTED_MAX bytes.
 */
enum { QUOTED_MAX = 4096, QUOTED_MAX_ESCAPES = 4 };

static bool needs_literal(const char *s, size_t len, bool utf8)
{
    if (len > QUOTED_MAX) return true;
    size_t escapes = 0;
    bool high = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == 0) return true;
        if (c == '"' || c == '\\') {
            if (++escapes > QUOTED_MAX_ESCAPES) return true;
        } else if (c >= 0x80) {
            if (!utf8) return true;
            high = true;
        }
    }
    return high && !imap_utf8_valid(s, len);
}

void imap_quote_literal(mfs_buf *b, const char *s, size_t len)
{
    mfs_buf_printf(b, "{%zu}\r\n", len);
    mfs_buf_append(b, s, len);
}

void imap_quote_string(mfs_buf *b, const char *s, size_t len, bool utf8)
{
    if (needs_literal(s, len, utf8)) {
        imap_quote_literal(b, s, len);
        return;
    }
    mfs_buf_reserve(b, len + 2);
    mfs_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            mfs_buf_append(b, s + run, i - run);
            mfs_buf_putc(b, '\\');
            run = i;
        }
    }
    mfs_buf_append(b, s + run, len - run);
    mfs_buf_putc(b, '"');
}

void imap_quote_nstring(mfs_buf *b, const char *s, size_t len, bool utf8)
{
    if (!s)
        mfs_buf_puts(b, "NIL");
    else
        imap_quote_string(b, s, len, utf8);
}

void imap_quote_astring(mfs_buf *b, const char *s, size_t len, bool utf8)
{
    bool atom = len > 0 && len < 256 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);
    for (size_t i = 0; atom && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c)) atom = false;
    }
    if (atom)
        mfs_buf_append(b, s, len);
    else
        imap_quote_string(b, s, len, utf8);
}
