/* imap_envelope.c: IMAP ENVELOPE text: the list, subjects and names for humans, addresses */
#include "imap/imap_envelope.h"

#include <stdbool.h>

#include "imap/imap_quote.h"

static void put_text(mfs_buf *b, const char *text)
{
    mfs_buf_puts(b, text ? text : "NIL");
}

void imap_envelope_write(mfs_buf *b, const imap_envelope *env)
{
    const char *const *v = env->field;
    mfs_buf_putc(b, '(');
    put_text(b, v[IMAP_ENV_DATE]);
    mfs_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_SUBJECT]);
    for (int k = IMAP_ENV_FROM; k <= IMAP_ENV_BCC; k++) {
        const char *list = v[k];
        if (!list && (k == IMAP_ENV_SENDER || k == IMAP_ENV_REPLY_TO)) list = v[IMAP_ENV_FROM];
        mfs_buf_putc(b, ' ');
        if (list) {
            mfs_buf_putc(b, '(');
            mfs_buf_puts(b, list);
            mfs_buf_putc(b, ')');
        } else {
            mfs_buf_puts(b, "NIL");
        }
    }
    mfs_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_IN_REPLY_TO]);
    mfs_buf_putc(b, ' ');
    put_text(b, v[IMAP_ENV_MESSAGE_ID]);
    mfs_buf_putc(b, ')');
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
static void put_for_humans(mfs_buf *b, const char *s, size_t n, const char *if_empty)
{
    if (!humans_would_modify(s, n)) {
        if (n == 0)
            mfs_buf_puts(b, if_empty);
        else
            imap_quote_string(b, s, n, false);
        return;
    }
    mfs_buf h = {0};
    mfs_buf_reserve(&h, n); /* squeezing never lengthens */
    h.len = squeeze(s, n, h.data);
    h.data[h.len] = '\0';
    if (h.len == 0)
        mfs_buf_puts(b, if_empty);
    else
        imap_quote_literal(b, h.data, h.len);
    mfs_buf_free(&h);
}

void imap_envelope_subject(mfs_buf *b, const char *raw, size_t len)
{
    put_for_humans(b, raw, len, "\"\"");
}

void imap_envelope_address(mfs_buf *b, const imap_address *a)
{
    mfs_buf_putc(b, '(');
    if (a->name && a->name_len > 0)
        put_for_humans(b, a->name, a->name_len, "NIL");
    else
        mfs_buf_puts(b, "NIL");
    mfs_buf_putc(b, ' ');
    if (a->route && a->route_len > 0)
        imap_quote_string(b, a->route, a->route_len, false);
    else
        mfs_buf_puts(b, "NIL");
    mfs_buf_putc(b, ' ');
    if (a->mailbox)
        imap_quote_string(b, a->mailbox, a->mailbox_len, false);
    else
        mfs_buf_puts(b, "NIL");
    mfs_buf_putc(b, ' ');
    if (a->host)
        imap_quote_string(b, a->host, a->host_len, false);
    else
        mfs_buf_puts(b, "NIL");
    mfs_buf_putc(b, ')');
}

/* ---- reading an ENVELOPE back ----------------------------------------------------------- */

typedef struct env_reader {
    const char *s;
    size_t len, i;
    mfs_buf *out;
} env_reader;

static void skip_sp(env_reader *r)
{
    while (r->i < r->len && r->s[r->i] == ' ')
        r->i++;
}

static bool next_is(env_reader *r, char c)
{
    skip_sp(r);
    if (r->i < r->len && r->s[r->i] == c) {
        r->i++;
        return true;
    }
    return false;
}

/* Reads an nstring into *T. */
static int read_nstring(env_reader *r, imap_env_text *t)
{
    skip_sp(r);
    *t = (imap_env_text){.nil = true};
    if (r->i >= r->len) return -1;
    const char *s = r->s;
    if (r->len - r->i >= 3 && (s[r->i] == 'N' || s[r->i] == 'n') &&
        (s[r->i + 1] == 'I' || s[r->i + 1] == 'i') && (s[r->i + 2] == 'L' || s[r->i + 2] == 'l')) {
        r->i += 3;
        return 0;
    }
    size_t start = r->out->len;
    if (s[r->i] == '"') {
        r->i++;
        for (;;) { /* runs between escapes, copied whole */
            size_t j = r->i;
            while (j < r->len && s[j] != '"' && s[j] != '\\')
                j++;
            mfs_buf_append(r->out, s + r->i, j - r->i);
            r->i = j;
            if (j >= r->len) return -1;
            if (s[j] == '"') break;
            if (j + 1 >= r->len) return -1;
            mfs_buf_putc(r->out, s[j + 1]);
            r->i = j + 2;
        }
        r->i++;
    } else if (s[r->i] == '{') {
        size_t n = 0, j = r->i + 1;
        while (j < r->len && s[j] >= '0' && s[j] <= '9' && n < (1u << 30))
            n = n * 10 + (size_t)(s[j++] - '0');
        if (j < r->len && s[j] == '+') j++;
        if (j >= r->len || s[j] != '}') return -1;
        j++;
        if (j < r->len && s[j] == '\r') j++;
        if (j >= r->len || s[j] != '\n') return -1;
        j++;
        if (r->len - j < n) return -1;
        mfs_buf_append(r->out, s + j, n);
        r->i = j + n;
    } else {
        return -1;
    }
    t->nil = false;
    t->off = (uint32_t)start;
    t->len = (uint32_t)(r->out->len - start);
    return 0;
}

int imap_envelope_parse(const char *s, size_t len, mfs_buf *strings, imap_envelope_fields *out)
{
    for (int f = 0; f < IMAP_ENV_N; f++) {
        out->text[f] = (imap_env_text){.nil = true};
        for (int k = 0; k < 4; k++)
            out->addr[f][k] = (imap_env_text){.nil = true};
    }
    env_reader r = {.s = s, .len = len, .out = strings};
    if (!next_is(&r, '(')) return -1;
    for (int f = 0; f < IMAP_ENV_N; f++) {
        if (f < IMAP_ENV_FROM || f > IMAP_ENV_BCC) {
            if (read_nstring(&r, &out->text[f]) < 0) return -1;
            continue;
        }
        if (!next_is(&r, '(')) { /* NIL */
            imap_env_text t;
            if (read_nstring(&r, &t) < 0 || !t.nil) return -1;
            continue;
        }
        bool have = false;
        while (!next_is(&r, ')')) {
            if (!next_is(&r, '(')) return -1;
            imap_env_text a[4];
            for (int k = 0; k < 4; k++)
                if (read_nstring(&r, &a[k]) < 0) return -1;
            if (!next_is(&r, ')')) return -1;
            if (!have) { /* a group's start counts: its name is the mailbox, as in Dovecot */
                for (int k = 0; k < 4; k++)
                    out->addr[f][k] = a[k];
                have = true;
            }
        }
    }
    return next_is(&r, ')') ? 0 : -1;
}
