/* imap_envelope.c: IMAP ENVELOPE text: the list, subjects and names for humans, addresses */
#include "imap/imap_envelope.h"

#include <stdbool.h>

#include "imap/imap_quote.h"

static void put_text(imap_buf *b, const char *text)
{
    imap_buf_puts(b, text ? text : "NIL");
}

void imap_envelope_write(imap_buf *b, const imap_envelope *env)
{
    const char *const *v = env->field;
    imap_buf_putc(b, '(');
    put_text(b, v[IMAP_ENV_DATE]);
    imap_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_SUBJECT]);
    for (int k = IMAP_ENV_FROM; k <= IMAP_ENV_BCC; k++) {
        const char *list = v[k];
        if (!list && (k == IMAP_ENV_SENDER || k == IMAP_ENV_REPLY_TO)) list = v[IMAP_ENV_FROM];
        imap_buf_putc(b, ' ');
        if (list) {
            imap_buf_putc(b, '(');
            imap_buf_puts(b, list);
            imap_buf_putc(b, ')');
        } else {
            imap_buf_puts(b, "NIL");
        }
    }
    imap_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_IN_REPLY_TO]);
    imap_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_MESSAGE_ID]);
    imap_buf_putc(b, ')');
}

/* True when Dovecot's imap_append_string_for_humans() would change S (NUL, CR, LF, TAB, '"',
 * '\\', 8-bit bytes, leading, trailing or repeated blanks) and so send it as a literal. */
static bool humans_would_modify(const char *s, size_t n)
{
    bool lead = true, last_lwsp = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c == '\r' || c == '\n' || c == '\t' || c == '"' || c == '\\' || c >= 0x80)
            return true;
        if (c == ' ') {
            if (last_lwsp) return true;
            last_lwsp = true;
        } else {
            last_lwsp = false;
            lead = false;
        }
    }
    return last_lwsp && n > 0 && !lead;
}

/* S for humans: unfolded (CR, LF and NUL dropped), runs of blanks squeezed to one space, both
 * ends trimmed. Writes at most N bytes to OUT; returns how many. */
static size_t squeeze(const char *s, size_t n, char *out)
{
    size_t o = 0;
    bool blank = false; /* blanks seen since the last byte written */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\r' || c == '\n' || c == '\0') continue;
        if (c == ' ' || c == '\t') {
            blank = o > 0;
            continue;
        }
        if (blank) out[o++] = ' ';
        blank = false;
        out[o++] = c;
    }
    return o;
}

/* Appends S for humans: as it is when that changes nothing, else squeezed and as a literal, as
 * Dovecot does; IF_EMPTY when nothing is left. */
static void put_for_humans(imap_buf *b, const char *s, size_t n, const char *if_empty)
{
    if (!humans_would_modify(s, n)) {
        if (n == 0)
            imap_buf_puts(b, if_empty);
        else
            imap_quote_string(b, s, n, false);
        return;
    }
    imap_buf h = {0};
    imap_buf_reserve(&h, n); /* squeezing never lengthens */
    h.len = squeeze(s, n, h.data);
    h.data[h.len] = '\0';
    if (h.len == 0)
        imap_buf_puts(b, if_empty);
    else
        imap_quote_literal(b, h.data, h.len);
    imap_buf_free(&h);
}

void imap_envelope_subject(imap_buf *b, const char *raw, size_t len)
{
    put_for_humans(b, raw, len, "\"\"");
}

void imap_envelope_address(imap_buf *b, const imap_address *a)
{
    imap_buf_putc(b, '(');
    if (a->name && a->name_len > 0)
        put_for_humans(b, a->name, a->name_len, "NIL");
    else
        imap_buf_puts(b, "NIL");
    imap_buf_putc(b, ' ');
    if (a->route && a->route_len > 0)
        imap_quote_string(b, a->route, a->route_len, false);
    else
        imap_buf_puts(b, "NIL");
    imap_buf_putc(b, ' ');
    if (a->mailbox)
        imap_quote_string(b, a->mailbox, a->mailbox_len, false);
    else
        imap_buf_puts(b, "NIL");
    imap_buf_putc(b, ' ');
    if (a->host)
        imap_quote_string(b, a->host, a->host_len, false);
    else
        imap_buf_puts(b, "NIL");
    imap_buf_putc(b, ')');
}
