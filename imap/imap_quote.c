/* imap_quote.c: writing strings in IMAP syntax */
#include "imap/imap_quote.h"

#include <string.h>
#include <strings.h>

enum { QUOTED_MAX = 1024 };

static bool needs_literal(const char *s, size_t len, bool utf8)
{
    if (len > QUOTED_MAX) return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == 0 || (c >= 0x80 && !utf8)) return true;
    }
    return false;
}

void imap_quote_string(imap_buf *b, const char *s, size_t len, bool utf8)
{
    if (needs_literal(s, len, utf8)) {
        imap_buf_printf(b, "{%zu}\r\n", len);
        imap_buf_append(b, s, len);
        return;
    }
    imap_buf_reserve(b, len + 2);
    imap_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            imap_buf_append(b, s + run, i - run);
            imap_buf_putc(b, '\\');
            run = i;
        }
    }
    imap_buf_append(b, s + run, len - run);
    imap_buf_putc(b, '"');
}

enum { SUMMARY_QUOTED_MAX = 4096 };

void imap_quote_summary_string(imap_buf *b, const char *s, size_t n)
{
    size_t esc = 0;
    bool lit = n > SUMMARY_QUOTED_MAX;
    for (size_t i = 0; i < n && !lit; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == 0 || c >= 0x80)
            lit = true;
        else if ((c == '"' || c == '\\') && ++esc > 4)
            lit = true;
    }
    if (lit) {
        imap_quote_literal(b, s, n);
        return;
    }
    imap_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') imap_buf_putc(b, '\\');
        imap_buf_putc(b, s[i]);
    }
    imap_buf_putc(b, '"');
}

void imap_quote_literal(imap_buf *b, const char *s, size_t len)
{
    imap_buf_printf(b, "{%zu}\r\n", len);
    imap_buf_append(b, s, len);
}

void imap_quote_nstring(imap_buf *b, const char *s, size_t len, bool utf8)
{
    if (!s)
        imap_buf_puts(b, "NIL");
    else
        imap_quote_string(b, s, len, utf8);
}

void imap_quote_astring(imap_buf *b, const char *s, size_t len, bool utf8)
{
    bool atom = len > 0 && len < 256 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);
    for (size_t i = 0; atom && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c)) atom = false;
    }
    if (atom)
        imap_buf_append(b, s, len);
    else
        imap_quote_string(b, s, len, utf8);
}
