/* mime.c: incremental MIME summary parser and IMAP ENVELOPE/BODYSTRUCTURE renderer */
#include "store/mime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * How the parser sees a message
 *
 * - A line ends at LF. CRLF and bare LF both end a line; a lone CR (not followed by LF) is an
 *   ordinary byte, never a line end. The "CRLF" sizes count every bare LF as two bytes (LF
 *   becomes CRLF) and leave a lone CR as one byte: this is what a client receives when the IMAP
 *   server converts bare LF to CRLF and passes everything else through. So a message that uses
 *   only bare CR line endings is one long header line without a body, as in Dovecot.
 * - Line counts are numbers of LF in the body (an unterminated last line is not counted, as in
 *   Dovecot). The CRLF (or LF) before a boundary line belongs to the boundary, not to the part.
 * - A message (the top level or an encapsulated one) is MIME when it has MIME-Version or
 *   Content-Type (Dovecot's default); otherwise its Content-* fields are ignored. Parts of a
 *   multipart are always MIME. For every field the first occurrence wins, except that repeated
 *   address fields of ENVELOPE (From, To, Cc...) are merged into one list and the last
 *   Content-Disposition wins, as in Dovecot.
 * - Header values are unfolded by dropping CR, LF and NUL bytes; leading and trailing blanks are
 *   trimmed, except in ENVELOPE's date, in-reply-to and message-id, which are sent as written
 *   (less the blanks after the colon), as Dovecot does. Encoded words (RFC 2047) are passed
 *   through undecoded. RFC 2231 parameter sections (name*0, name*1*) are merged into one
 *   parameter but stay encoded, as in Dovecot.
 * - Addresses follow RFC 5322 with groups ((NIL NIL "group" NIL) ... (NIL NIL NIL NIL)), routes
 *   and obsolete forms. As in Dovecot, a missing mailbox or domain is filled in as
 *   "MISSING_MAILBOX" / "MISSING_DOMAIN" (so a NIL host always means a group), a local part
 *   without '@' is a mailbox without domain, other words without '@' become a display name, a
 *   comment after a bare addr-spec is its display name, what follows a domain up to the next
 *   ',' is skipped, and an empty Sender or Reply-To falls back to From.
 * - Case: types, subtypes, parameter names and values are rendered as written in the message
 *   (RFC 3501's examples show upper case, but Dovecot sends what the message says; clients must
 *   compare case-insensitively), except that a message/rfc822 part is always "message" "rfc822"
 *   (Dovecot's rule). Defaults are written in lower case as Dovecot does:
 *   "text" "plain", ("charset" "us-ascii"), "7bit", "message" "rfc822" inside multipart/digest.
 * - Strings are quoted ("..." with \" and \\) unless they contain CR, LF, NUL or 8-bit bytes,
 *   have more than 4 characters to escape, or are longer than MIME_QUOTED_MAX: then a literal
 *   {n}\r\n is used. Subjects and display names have runs of blanks squeezed to one space first
 *   and, like Dovecot, are literals whenever that or anything else changed them (NUL, CR, LF,
 *   TAB, '"', '\\', 8-bit, leading, trailing or doubled blanks: see humans_would_modify).
 * - Limits: a header field is kept up to MIME_MAX_FIELD bytes for the summary (the rest is
 *   ignored, offsets stay exact); boundaries nest MIME_MAX_DEPTH deep (deeper multiparts are
 *   opaque leaves); at most MIME_MAX_PARTS parts (then boundaries are no longer recognised and the
 *   rest of the message is body of the part being read); rendered strings kept per message are
 *   capped at MIME_TEXT_BUDGET bytes in total (beyond it optional strings become NIL).
 */

#define MIME_MAX_FIELD (64 * 1024)
#define MIME_MAX_DEPTH 64
#define MIME_MAX_PARTS 5000
#define MIME_MAX_BOUNDARY 4096
#define MIME_LINE_CAP (MIME_MAX_BOUNDARY + 256)
#define MIME_TEXT_BUDGET (8u << 20)
#define MIME_QUOTED_MAX 4096
#define MIME_NONE UINT32_MAX

#define BLOB_MAGIC "MFSM"
#define BLOB_VERSION 3 /* 3: the rendered strings first, part records after them */
#define BLOB_HDR 56
#define BLOB_REC 96 /* 72 bytes of numbers, then 4 strings as (u32 offset, u16 length) */

enum {
    ENV_DATE,
    ENV_SUBJECT,
    ENV_FROM,
    ENV_SENDER,
    ENV_REPLY_TO,
    ENV_TO,
    ENV_CC,
    ENV_BCC,
    ENV_IRT,
    ENV_MSGID,
    ENV_N
};

enum { ST_HEADER, ST_BODY, ST_CLOSED };
enum { K_LEAF, K_MULTIPART, K_MESSAGE };

struct cnt {
    uint64_t off, lf, bare; /* a position and the LF / bare-LF counts before it */
};

struct ent {
    struct cnt hdr, body, end;
    uint32_t parent, first_child, last_child, next, nchildren, nested;
    uint16_t depth;
    uint8_t kind, state;
    bool digest_default; /* child of multipart/digest: default type message/rfc822 */
    bool is_msg;         /* a message (root or encapsulated): collects the envelope */
    bool seen_ctype, seen_cte, seen_disp, seen_lang, seen_mimever;
    uint16_t env_seen;
    char *ctype, *csubtype; /* as written */
    char *params;           /* rendered list items without parens, NULL if none */
    bool has_charset;
    char *boundary;                  /* until the header ends */
    char *id, *desc, *md5, *loc;     /* rendered IMAP strings */
    char *cte;                       /* as written */
    char *disp, *disp_params, *lang; /* rendered */
    char *env[ENV_N];                /* rendered */
    char charset[64];                /* lower case */
};

struct stack_ent {
    char *b;
    size_t len;
    uint32_t owner;
};

struct store_mime_parser {
    struct ent *ents;
    uint32_t nents, cap;
    uint32_t cur;
    struct stack_ent stack[MIME_MAX_DEPTH];
    uint32_t nstack;
    bool parts_full;
    uint64_t pos, lf, bare; /* bytes consumed; LF and bare LF before the current line */
    uint64_t line_start;
    uint64_t line_len;
    unsigned char linebuf[MIME_LINE_CAP];
    size_t linebuf_len;
    bool line_dash, line_overflow_nonws;
    unsigned char last, prev_last;
    uint8_t prev_term; /* terminator length of the previous line: 2 CRLF, 1 LF, 0 none */
    bool prev_bare;
    unsigned char *field;
    size_t field_len;
    bool field_active;
    size_t text_used;
    int err;
    bool finished;
};

/* ---------- growable strings ---------- */

struct buf {
    char *d;
    size_t len, cap;
    bool oom;
};

static void buf_grow(struct buf *b, size_t more)
{
    if (b->oom) return;
    if (b->len + more + 1 <= b->cap) return;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    char *n = realloc(b->d, ncap);
    if (!n) {
        b->oom = true;
        return;
    }
    b->d = n;
    b->cap = ncap;
}

static void buf_add(struct buf *b, const void *s, size_t n)
{
    buf_grow(b, n);
    if (b->oom) return;
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

/* Appends S as an IMAP string: quoted when allowed (and not FORCE_LIT), a literal otherwise. */
static void buf_istr_lit(struct buf *b, const char *s, size_t n, bool force_lit)
{
    size_t esc = 0;
    bool lit = n > MIME_QUOTED_MAX || (force_lit && n > 0);
    for (size_t i = 0; i < n && !lit; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == 0 || c >= 0x80)
            lit = true;
        else if ((c == '"' || c == '\\') && ++esc > 4)
            lit = true;
    }
    if (lit) {
        char hdr[32];
        int k = snprintf(hdr, sizeof(hdr), "{%zu}\r\n", n);
        buf_add(b, hdr, (size_t)k);
        buf_add(b, s, n);
        return;
    }
    buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') buf_addc(b, '\\');
        buf_addc(b, s[i]);
    }
    buf_addc(b, '"');
}

static void buf_istr(struct buf *b, const char *s, size_t n)
{
    buf_istr_lit(b, s, n, false);
}

static void buf_istrz(struct buf *b, const char *s)
{
    buf_istr(b, s, strlen(s));
}

static void buf_nstr(struct buf *b, const char *rendered)
{
    buf_adds(b, rendered ? rendered : "NIL");
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

/* Squeezes runs of blanks to one space and trims both ends ("for humans"). */
static size_t humanize(char *s, size_t n)
{
    size_t o = 0;
    bool blank = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t') {
            if (!blank) s[o++] = ' ';
            blank = true;
        } else {
            s[o++] = c;
            blank = false;
        }
    }
    if (o > 0 && s[o - 1] == ' ') o--;
    return o;
}

/* ---------- bounded storage of rendered strings ---------- */

static char *keep(store_mime_parser *p, struct buf *b)
{
    if (b->oom) {
        free(b->d);
        p->err = -ENOMEM;
        return NULL;
    }
    if (!b->d) {
        b->d = malloc(1);
        if (!b->d) {
            p->err = -ENOMEM;
            return NULL;
        }
        b->d[0] = '\0';
    }
    if (p->text_used + b->len > MIME_TEXT_BUDGET) {
        free(b->d);
        return NULL;
    }
    p->text_used += b->len;
    return b->d;
}

static char *keep_istr(store_mime_parser *p, const char *s, size_t n)
{
    struct buf b = {0};
    buf_istr(&b, s, n);
    return keep(p, &b);
}

static char *keep_raw(store_mime_parser *p, const char *s, size_t n)
{
    struct buf b = {0};
    buf_add(&b, s, n);
    return keep(p, &b);
}

/* ---------- header value lexing (RFC 5322 / RFC 2045) ---------- */

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool is_tspecial(unsigned char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != 0;
}

static bool is_token(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !is_tspecial(c);
}

static void skip_cfws(const char *v, size_t n, size_t *i)
{
    while (*i < n) {
        unsigned char c = (unsigned char)v[*i];
        if (is_wsp(c)) {
            (*i)++;
        } else if (c == '(') {
            int depth = 0;
            while (*i < n) {
                c = (unsigned char)v[*i];
                if (c == '\\' && *i + 1 < n) {
                    *i += 2;
                    continue;
                }
                (*i)++;
                if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
        } else {
            break;
        }
    }
}

static size_t lex_token(const char *v, size_t n, size_t *i)
{
    size_t s = *i;
    while (*i < n && is_token((unsigned char)v[*i]))
        (*i)++;
    return *i - s;
}

/* Reads a quoted string at v[*i] == '"' into OUT (unescaped); false when it is not closed. */
static bool lex_quoted(const char *v, size_t n, size_t *i, struct buf *out)
{
    (*i)++;
    while (*i < n) {
        char c = v[*i];
        (*i)++;
        if (c == '"') return true;
        if (c == '\\' && *i < n) {
            c = v[*i];
            (*i)++;
        }
        buf_addc(out, c);
    }
    return false;
}

#define MIME_MAX_PARAMS 128

struct param {
    size_t name_off, name_len, val_off, val_len; /* into the collected text */
    size_t base_len;                             /* RFC 2231: the name before '*' */
    unsigned idx;
    bool ext, is2231;
};

struct param_out {
    struct buf *out;
    bool *has_charset;
    char *charset;
    size_t charset_sz;
    char **boundary;
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void emit_param(struct param_out *po, const char *name, size_t nl, const char *val,
                       size_t vl)
{
    if (po->out->len > 0) buf_addc(po->out, ' ');
    buf_istr(po->out, name, nl);
    buf_addc(po->out, ' ');
    buf_istr(po->out, val, vl);
    if (nl == 7 && strncasecmp(name, "charset", 7) == 0 && po->has_charset) {
        if (!*po->has_charset && po->charset) {
            size_t k;
            for (k = 0; k + 1 < po->charset_sz && k < vl; k++) {
                char c = val[k];
                po->charset[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            po->charset[k] = '\0';
        }
        *po->has_charset = true;
    }
    char dec[MIME_MAX_BOUNDARY];
    if (po->boundary && !*po->boundary && nl == 9 && strncasecmp(name, "boundary*", 9) == 0 &&
        vl <= sizeof(dec)) {
        /* RFC 2231 boundary*=charset'lang'value (Dovecot ignores it; decoding is kinder) */
        const char *q1 = memchr(val, '\'', vl);
        const char *q2 = q1 ? memchr(q1 + 1, '\'', vl - (size_t)(q1 + 1 - val)) : NULL;
        if (q2) {
            size_t o = 0;
            for (const char *c = q2 + 1; c < val + vl && o < sizeof(dec); c++) {
                int hi, lo;
                if (*c == '%' && c + 2 < val + vl && (hi = hexval(c[1])) >= 0 &&
                    (lo = hexval(c[2])) >= 0) {
                    dec[o++] = (char)(hi * 16 + lo);
                    c += 2;
                } else {
                    dec[o++] = *c;
                }
            }
            val = dec;
            vl = o;
            nl = 8;
        }
    }
    if (po->boundary && !*po->boundary && nl == 8 && strncasecmp(name, "boundary", 8) == 0 &&
        vl > 0 && vl <= MIME_MAX_BOUNDARY && memchr(val, 0, vl) == NULL) {
        *po->boundary = malloc(vl + 1);
        if (*po->boundary) {
            memcpy(*po->boundary, val, vl);
            (*po->boundary)[vl] = '\0';
        }
    }
}

/* Orders RFC 2231 sections by name (byte order) and then by section number. */
static int param_cmp(const char *t, const struct param *a, const struct param *b)
{
    size_t l = a->base_len < b->base_len ? a->base_len : b->base_len;
    int r = memcmp(t + a->name_off, t + b->name_off, l);
    if (r != 0) return r;
    if (a->base_len != b->base_len) return a->base_len < b->base_len ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

/* Merges RFC 2231 sections name*0, name*1*, ... into one "name" or "name*" parameter as
 * Dovecot does: values stay encoded; with any extended section the result is "name*" and the
 * plain sections get their '%' escaped. With a gap in the numbering the sections are passed
 * through one by one. */
static void emit_2231(struct param_out *po, const char *t, struct param *ps, size_t np)
{
    struct buf val = {0}, key = {0};
    for (size_t i = 1; i < np; i++) { /* insertion sort: np is small */
        struct param x = ps[i];
        size_t j = i;
        while (j > 0 && param_cmp(t, &ps[j - 1], &x) > 0) {
            ps[j] = ps[j - 1];
            j--;
        }
        ps[j] = x;
    }
    for (size_t i = 0, next; i < np; i = next) {
        bool ok = true, have_ext = false;
        unsigned want = 0;
        for (next = i; next < np; next++) {
            if (ps[next].base_len != ps[i].base_len ||
                strncasecmp(t + ps[next].name_off, t + ps[i].name_off, ps[i].base_len) != 0)
                break;
            if (ps[next].idx != want++) ok = false;
            if (ps[next].ext) have_ext = true;
        }
        if (!ok) {
            for (size_t j = i; j < next; j++) {
                char num[24];
                int k = snprintf(num, sizeof(num), "*%u%s", ps[j].idx, ps[j].ext ? "*" : "");
                key.len = 0;
                buf_add(&key, t + ps[j].name_off, ps[j].base_len);
                buf_add(&key, num, (size_t)k);
                emit_param(po, key.d ? key.d : "", key.len, t + ps[j].val_off, ps[j].val_len);
            }
            continue;
        }
        val.len = 0;
        buf_add(&val, "", 0);
        if (!ps[i].ext && have_ext) buf_adds(&val, "''");
        for (size_t j = i; j < next; j++) {
            const char *vs = t + ps[j].val_off;
            if (!ps[j].ext && have_ext) {
                for (size_t k = 0; k < ps[j].val_len; k++) {
                    if (vs[k] == '%')
                        buf_adds(&val, "%25");
                    else
                        buf_addc(&val, vs[k]);
                }
            } else {
                buf_add(&val, vs, ps[j].val_len);
            }
        }
        key.len = 0;
        buf_add(&key, t + ps[i].name_off, ps[i].base_len);
        if (have_ext) buf_addc(&key, '*');
        emit_param(po, key.d ? key.d : "", key.len, val.d ? val.d : "", val.len);
    }
    if (val.oom || key.oom) po->out->oom = true;
    free(val.d);
    free(key.d);
}

/* Parses "; name=value" parameters into rendered IMAP items "name" "value" ... Values are a
 * quoted string or, leniently, everything up to ';' or a blank (so an unquoted
 * boundary=----=_Part_1 works; Dovecot would stop at '='). RFC 2231 sections are merged. */
static void parse_params(const char *v, size_t n, size_t i, struct buf *out, bool *has_charset,
                         char *charset, size_t charset_sz, char **boundary)
{
    struct param ps[MIME_MAX_PARAMS];
    size_t np = 0;
    struct buf text = {0};
    while (i < n && np < MIME_MAX_PARAMS) {
        skip_cfws(v, n, &i);
        if (i >= n) break;
        if (v[i] != ';') {
            while (i < n && v[i] != ';')
                i++;
            continue;
        }
        i++;
        skip_cfws(v, n, &i);
        size_t ns = i;
        size_t nl = lex_token(v, n, &i);
        if (nl == 0) continue;
        skip_cfws(v, n, &i);
        if (i >= n || v[i] != '=') continue;
        i++;
        skip_cfws(v, n, &i);
        struct param *p = &ps[np++];
        memset(p, 0, sizeof(*p));
        p->name_off = text.len;
        p->name_len = nl;
        buf_add(&text, v + ns, nl);
        p->val_off = text.len;
        if (i < n && v[i] == '"') {
            if (!lex_quoted(v, n, &i, &text)) { /* not closed: no value, as in Dovecot */
                text.len = p->name_off;
                np--;
                break;
            }
        } else {
            size_t vs = i;
            while (i < n && v[i] != ';' && !is_wsp((unsigned char)v[i]))
                i++;
            buf_add(&text, v + vs, i - vs);
        }
        p->val_len = text.len - p->val_off;
        /* name*, name*N or name*N*: an RFC 2231 section */
        const char *star = memchr(v + ns, '*', nl);
        if (star) {
            size_t k = (size_t)(star - (v + ns)) + 1;
            unsigned idx = 0;
            while (k < nl && v[ns + k] >= '0' && v[ns + k] <= '9' && idx < 100000)
                idx = idx * 10 + (unsigned)(v[ns + k++] - '0');
            bool ext = k < nl && v[ns + k] == '*';
            if (ext) k++;
            if (k == nl && k == (size_t)(star - (v + ns)) + 1) ext = true; /* "name*" */
            if (k == nl && star > v + ns) {
                p->is2231 = true;
                p->base_len = (size_t)(star - (v + ns));
                p->idx = idx;
                p->ext = ext;
            }
        }
    }
    if (text.oom) {
        out->oom = true;
        free(text.d);
        return;
    }
    const char *t = text.d ? text.d : "";
    struct param_out po = {out, has_charset, charset, charset_sz, boundary};
    struct param sec[MIME_MAX_PARAMS];
    size_t nsec = 0;
    for (size_t k = 0; k < np; k++) {
        if (ps[k].is2231)
            sec[nsec++] = ps[k];
        else
            emit_param(&po, t + ps[k].name_off, ps[k].name_len, t + ps[k].val_off, ps[k].val_len);
    }
    if (nsec > 0) emit_2231(&po, t, sec, nsec);
    free(text.d);
}

/* ---------- address lists ---------- */

enum { T_END, T_ATOM, T_QUOTED, T_COMMENT, T_SPECIAL };

struct lexer {
    const char *v;
    size_t n, i;
    struct buf tok;
    char special;
};

static int lex_next(struct lexer *l)
{
    l->tok.len = 0;
    if (l->tok.d) l->tok.d[0] = '\0';
    while (l->i < l->n && is_wsp((unsigned char)l->v[l->i]))
        l->i++;
    if (l->i >= l->n) return T_END;
    char c = l->v[l->i];
    if (c == '(') {
        int depth = 0;
        while (l->i < l->n) {
            c = l->v[l->i++];
            if (c == '\\' && l->i < l->n) {
                buf_addc(&l->tok, l->v[l->i++]);
                continue;
            }
            if (c == '(') {
                if (depth++ == 0) continue;
            } else if (c == ')') {
                if (--depth == 0) break;
            }
            buf_addc(&l->tok, c);
        }
        return T_COMMENT;
    }
    if (c == '"') {
        lex_quoted(l->v, l->n, &l->i, &l->tok);
        return T_QUOTED;
    }
    if (c == '[') {
        size_t s = l->i;
        while (l->i < l->n && l->v[l->i] != ']')
            l->i++;
        if (l->i < l->n) l->i++;
        buf_add(&l->tok, l->v + s, l->i - s);
        return T_ATOM;
    }
    if (strchr("()<>[]:;@\\,.", c) != NULL) {
        l->special = c;
        l->i++;
        return T_SPECIAL;
    }
    size_t s = l->i;
    while (l->i < l->n) {
        c = l->v[l->i];
        if (is_wsp((unsigned char)c) || strchr("()<>[]:;@\\,.\"", c) != NULL) break;
        l->i++;
    }
    buf_add(&l->tok, l->v + s, l->i - s);
    return T_ATOM;
}

static void emit_addr(struct buf *out, const struct buf *name, const char *route, const char *mbox,
                      size_t mlen, const char *host, size_t hlen, bool host_nil)
{
    buf_addc(out, '(');
    if (name && name->len > 0) {
        struct buf h = {0};
        buf_add(&h, name->d, name->len);
        if (!h.oom) {
            bool lit = humans_would_modify(h.d, h.len);
            h.len = humanize(h.d, h.len);
            if (h.len > 0)
                buf_istr_lit(out, h.d, h.len, lit);
            else
                buf_adds(out, "NIL");
        } else {
            out->oom = true;
        }
        free(h.d);
    } else {
        buf_adds(out, "NIL");
    }
    buf_addc(out, ' ');
    if (route && route[0])
        buf_istrz(out, route);
    else
        buf_adds(out, "NIL");
    buf_addc(out, ' ');
    if (mbox)
        buf_istr(out, mbox, mlen);
    else
        buf_adds(out, "NIL");
    buf_addc(out, ' ');
    if (host_nil)
        buf_adds(out, "NIL");
    else
        buf_istr(out, host, hlen);
    buf_addc(out, ')');
}

/* Reads a domain after '@' until ',', ';', '>' or the end; returns the stopping token. The
 * domain is atoms joined by dots: what follows it up to the stop (as in "a@b <c@d>" or
 * "a@b c@d") is skipped, and the address is a@b, as in Dovecot. */
static int read_domain(struct lexer *l, struct buf *dom, struct buf *comment, bool angle)
{
    bool junk = false, after_atom = false;
    for (;;) {
        int t = lex_next(l);
        if (t == T_END) return t;
        if (t == T_SPECIAL) {
            if (l->special == ',' || l->special == ';' || (angle && l->special == '>')) return t;
            if (l->special == '.' && !junk) {
                buf_addc(dom, '.');
                after_atom = false;
            } else if (dom->len > 0) {
                junk = true;
            }
            continue;
        }
        if (t == T_COMMENT) {
            if (comment) {
                comment->len = 0;
                buf_add(comment, l->tok.d ? l->tok.d : "", l->tok.len);
            }
            continue;
        }
        if (after_atom) junk = true;
        if (junk) continue;
        buf_add(dom, l->tok.d ? l->tok.d : "", l->tok.len);
        after_atom = true;
    }
}

/* Renders an address list ((name adl mailbox host) ...) into OUT; returns the address count. */
static size_t render_addresses(const char *v, size_t n, struct buf *out)
{
    struct lexer l = {.v = v, .n = n};
    struct buf phrase = {0}, local = {0}, comment = {0}, dom = {0}, route = {0};
    size_t count = 0;
    bool in_group = false;
    buf_addc(out, '(');
    for (;;) {
        phrase.len = local.len = comment.len = dom.len = route.len = 0;
        bool pdot = false, local_done = false;
        int t;
        for (;;) {
            t = lex_next(&l);
            if (t == T_END) break;
            if (t == T_ATOM || t == T_QUOTED) {
                if (phrase.len > 0 && !pdot) {
                    buf_addc(&phrase, ' ');
                    local_done = true; /* a local part is words joined by dots */
                }
                buf_add(&phrase, l.tok.d ? l.tok.d : "", l.tok.len);
                if (!local_done) buf_add(&local, l.tok.d ? l.tok.d : "", l.tok.len);
                pdot = false;
                continue;
            }
            if (t == T_COMMENT) {
                comment.len = 0;
                buf_add(&comment, l.tok.d ? l.tok.d : "", l.tok.len);
                continue;
            }
            if (l.special == '.') {
                buf_addc(&phrase, '.');
                if (!local_done) buf_addc(&local, '.');
                pdot = true;
                continue;
            }
            if (strchr("<:@,;", l.special) != NULL) break;
        }
        if (t == T_SPECIAL && l.special == ':') {
            if (!in_group) {
                emit_addr(out, NULL, NULL, phrase.d ? phrase.d : "", phrase.len, NULL, 0, true);
                count++;
                in_group = true;
            }
            continue;
        }
        if (t == T_SPECIAL && l.special == '<') {
            /* angle-addr: [@route,@route:]local@domain */
            struct buf inner_local = {0};
            int st = T_END;
            for (;;) {
                st = lex_next(&l);
                if (st == T_END) break;
                if (st == T_SPECIAL && l.special == '>') break;
                if (st == T_SPECIAL && l.special == '@') {
                    if (inner_local.len == 0) {
                        /* start of a route */
                        buf_addc(&route, '@');
                        for (;;) {
                            st = lex_next(&l);
                            if (st == T_END ||
                                (st == T_SPECIAL && (l.special == ':' || l.special == '>')))
                                break;
                            if (st == T_SPECIAL)
                                buf_addc(&route, l.special);
                            else if (st != T_COMMENT)
                                buf_add(&route, l.tok.d ? l.tok.d : "", l.tok.len);
                        }
                        if (st == T_END || l.special == '>') break;
                        continue;
                    }
                    st = read_domain(&l, &dom, NULL, true);
                    break;
                }
                if (st == T_SPECIAL) {
                    if (l.special == '.') buf_addc(&inner_local, '.');
                    continue;
                }
                if (st == T_COMMENT) continue;
                buf_add(&inner_local, l.tok.d ? l.tok.d : "", l.tok.len);
            }
            /* after '>': skip to ',' or ';'. The display name is the phrase only (comments do
             * not name an angle address, as in Dovecot) */
            int et = st;
            if (st != T_END && !(st == T_SPECIAL && (l.special == ',' || l.special == ';'))) {
                for (;;) {
                    et = lex_next(&l);
                    if (et == T_END) break;
                    if (et == T_SPECIAL && (l.special == ',' || l.special == ';')) break;
                }
            }
            const struct buf *name = phrase.len > 0 ? &phrase : NULL;
            const char *mb = inner_local.len ? inner_local.d : "MISSING_MAILBOX";
            size_t ml = inner_local.len ? inner_local.len : strlen("MISSING_MAILBOX");
            const char *hd = dom.len ? dom.d : "MISSING_DOMAIN";
            size_t hl = dom.len ? dom.len : strlen("MISSING_DOMAIN");
            emit_addr(out, name, route.d, mb, ml, hd, hl, false);
            count++;
            if (inner_local.oom) out->oom = true;
            free(inner_local.d);
            if (et == T_SPECIAL && l.special == ';' && in_group) {
                buf_adds(out, "(NIL NIL NIL NIL)");
                in_group = false;
            }
            if (et == T_END) break;
            continue;
        }
        if (t == T_SPECIAL && l.special == '@') {
            comment.len = 0; /* only a comment after the local part names it */
            int st = read_domain(&l, &dom, &comment, false);
            const struct buf *name = comment.len ? &comment : NULL;
            const char *mb = local.len ? local.d : "MISSING_MAILBOX";
            size_t ml = local.len ? local.len : strlen("MISSING_MAILBOX");
            const char *hd = dom.len ? dom.d : "MISSING_DOMAIN";
            size_t hl = dom.len ? dom.len : strlen("MISSING_DOMAIN");
            emit_addr(out, name, NULL, mb, ml, hd, hl, false);
            count++;
            if (st == T_SPECIAL && l.special == ';' && in_group) {
                buf_adds(out, "(NIL NIL NIL NIL)");
                in_group = false;
            }
            if (st == T_END) break;
            continue;
        }
        /* ',' ';' or the end: a local part without '@' ("postmaster", "nsb (Nathaniel
         * Borenstein)") is a mailbox without a domain, as in Dovecot; other words without '@'
         * are a name without an address */
        if (phrase.len > 0 && !local_done && local.len > 0) {
            emit_addr(out, comment.len ? &comment : NULL, NULL, local.d, local.len,
                      "MISSING_DOMAIN", strlen("MISSING_DOMAIN"), false);
            count++;
        } else if (phrase.len > 0) {
            emit_addr(out, &phrase, NULL, "MISSING_MAILBOX", strlen("MISSING_MAILBOX"),
                      "MISSING_DOMAIN", strlen("MISSING_DOMAIN"), false);
            count++;
        }
        if (t == T_SPECIAL && l.special == ';' && in_group) {
            buf_adds(out, "(NIL NIL NIL NIL)");
            in_group = false;
        }
        if (t == T_END) break;
    }
    if (in_group) buf_adds(out, "(NIL NIL NIL NIL)");
    buf_addc(out, ')');
    if (phrase.oom || local.oom || comment.oom || dom.oom || route.oom || l.tok.oom)
        out->oom = true;
    free(phrase.d);
    free(local.d);
    free(comment.d);
    free(dom.d);
    free(route.d);
    free(l.tok.d);
    return count;
}

/* ---------- header fields ---------- */

static void set_lower(char *dst, size_t sz, const char *s, size_t n)
{
    size_t k;
    for (k = 0; k + 1 < sz && k < n; k++) {
        char c = s[k];
        dst[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    dst[k] = '\0';
}

static void field_content(store_mime_parser *p, struct ent *e, const char *name, size_t nlen,
                          const char *v, size_t n)
{
    size_t i = 0;
    if (nlen == 4 && strncasecmp(name, "type", 4) == 0) {
        if (e->seen_ctype) return;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        if (tl == 0) return; /* unusable: keep the default */
        e->seen_ctype = true;
        e->ctype = keep_raw(p, v + ts, tl);
        skip_cfws(v, n, &i);
        size_t ss = i, sl = 0;
        bool ok = false;
        if (i < n && v[i] == '/') {
            i++;
            skip_cfws(v, n, &i);
            ss = i;
            sl = lex_token(v, n, &i);
            ok = sl > 0;
        }
        e->csubtype = keep_raw(p, v + ss, sl);
        if (!e->ctype || !e->csubtype) {
            free(e->ctype);
            free(e->csubtype);
            e->ctype = e->csubtype = NULL;
            return;
        }
        if (!ok) return; /* broken: no parameters, as Dovecot */
        struct buf b = {0};
        parse_params(v, n, i, &b, &e->has_charset, e->charset, sizeof(e->charset), &e->boundary);
        if (b.len > 0)
            e->params = keep(p, &b);
        else
            free(b.d);
    } else if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
        if (e->seen_cte) return;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        skip_cfws(v, n, &i);
        if (tl == 0 || i != n) return;
        e->seen_cte = true;
        e->cte = keep_raw(p, v + ts, tl);
    } else if (nlen == 2 && strncasecmp(name, "id", 2) == 0) {
        if (!e->id) e->id = keep_istr(p, v, n);
    } else if (nlen == 11 && strncasecmp(name, "description", 11) == 0) {
        if (!e->desc) e->desc = keep_istr(p, v, n);
    } else if (nlen == 3 && strncasecmp(name, "md5", 3) == 0) {
        if (!e->md5) e->md5 = keep_istr(p, v, n);
    } else if (nlen == 8 && strncasecmp(name, "location", 8) == 0) {
        if (!e->loc) e->loc = keep_istr(p, v, n);
    } else if (nlen == 11 && strncasecmp(name, "disposition", 11) == 0) {
        /* as in Dovecot, the last Content-Disposition wins, and one without a usable token
         * (empty, an encoded word) is ("" NIL) */
        if (e->seen_disp) {
            p->text_used -=
                (e->disp ? strlen(e->disp) : 0) + (e->disp_params ? strlen(e->disp_params) : 0);
            free(e->disp);
            free(e->disp_params);
            e->disp = e->disp_params = NULL;
        }
        e->seen_disp = true;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        e->disp = keep_istr(p, v + ts, tl);
        if (tl == 0) return;
        struct buf b = {0};
        parse_params(v, n, i, &b, NULL, NULL, 0, NULL);
        if (b.len > 0)
            e->disp_params = keep(p, &b);
        else
            free(b.d);
    } else if (nlen == 8 && strncasecmp(name, "language", 8) == 0) {
        if (e->seen_lang) return;
        e->seen_lang = true;
        struct buf b = {0};
        for (;;) {
            skip_cfws(v, n, &i);
            size_t s = i;
            while (i < n &&
                   (is_token((unsigned char)v[i]) || v[i] == '/' || v[i] == '?' || v[i] == '='))
                i++;
            if (i == s) break;
            if (b.len > 0) buf_addc(&b, ' ');
            buf_istr(&b, v + s, i - s);
            skip_cfws(v, n, &i);
            if (i >= n || v[i] != ',') break;
            i++;
        }
        if (b.len > 0)
            e->lang = keep(p, &b);
        else
            free(b.d);
    }
}

static int env_field(const char *name, size_t nlen)
{
    static const char *const names[ENV_N] = {"date",        "subject",   "from", "sender",
                                             "reply-to",    "to",        "cc",   "bcc",
                                             "in-reply-to", "message-id"};
    for (int k = 0; k < ENV_N; k++)
        if (strlen(names[k]) == nlen && strncasecmp(names[k], name, nlen) == 0) return k;
    return -1;
}

/* RAW_MOD: the value as written (folded) is one Dovecot changes for humans (see
 * humans_would_modify); the subject is then sent as a literal, as Dovecot does. */
static void field_envelope(store_mime_parser *p, struct ent *e, int k, char *v, size_t n,
                           bool raw_mod)
{
    bool addr = k == ENV_FROM || k == ENV_SENDER || k == ENV_REPLY_TO || k == ENV_TO ||
                k == ENV_CC || k == ENV_BCC;
    if ((e->env_seen & (1u << k)) && !addr) return;
    e->env_seen |= (uint16_t)(1u << k);
    struct buf b = {0};
    if (addr) {
        /* a repeated address field adds its addresses to the list, as in Dovecot */
        const char *old = e->env[k];
        size_t oldlen = old ? strlen(old) : 0;
        if (oldlen >= 2) buf_add(&b, old, oldlen - 1); /* without its ')' */
        size_t start = b.len;
        if (render_addresses(v, n, &b) == 0) {
            free(b.d);
            if (b.oom) p->err = -ENOMEM;
            return;
        }
        if (oldlen >= 2 && !b.oom) { /* drop the new list's '(' */
            memmove(b.d + start, b.d + start + 1, b.len - start);
            b.len--;
        }
        if (old) {
            p->text_used -= oldlen;
            free(e->env[k]);
            e->env[k] = NULL;
        }
    } else if (k == ENV_SUBJECT) {
        n = humanize(v, n);
        buf_istr_lit(&b, v, n, raw_mod);
    } else {
        buf_istr(&b, v, n);
    }
    e->env[k] = keep(p, &b);
}

/* Processes the header field collected in p->field for entity E. */
static void field_process(store_mime_parser *p, struct ent *e)
{
    if (!p->field_active) return;
    p->field_active = false;
    char *f = (char *)p->field;
    size_t n = p->field_len;
    char *colon = memchr(f, ':', n);
    if (!colon) return;
    size_t nlen = (size_t)(colon - f);
    while (nlen > 0 && is_wsp((unsigned char)f[nlen - 1]))
        nlen--;
    if (nlen == 0) return;
    if (e->is_msg && nlen == 12 && strncasecmp(f, "mime-version", 12) == 0) e->seen_mimever = true;
    bool content = nlen > 8 && strncasecmp(f, "content-", 8) == 0;
    int ek = e->is_msg ? env_field(f, nlen) : -1;
    if (!content && ek < 0) return;
    char *v = colon + 1;
    size_t vn = n - (size_t)(v - f), o = 0;
    bool raw_mod = false;
    if (ek == ENV_SUBJECT) {
        /* as Dovecot's header parser gives it: leading blanks and the final line end cut */
        size_t a = 0, z = vn;
        while (a < z && is_wsp((unsigned char)v[a]))
            a++;
        if (z > a && v[z - 1] == '\n') z--;
        if (z > a && v[z - 1] == '\r') z--;
        raw_mod = humans_would_modify(v + a, z - a);
    }
    size_t lead = 0; /* blanks before the value on the field's first line */
    while (lead < vn && is_wsp((unsigned char)v[lead]))
        lead++;
    /* unfold in place: drop CR, LF and NUL, trim blanks */
    for (size_t i = 0; i < vn; i++) {
        char c = v[i];
        if (c != '\r' && c != '\n' && c != '\0') v[o++] = c;
    }
    size_t s = 0, full = o;
    while (s < o && is_wsp((unsigned char)v[s]))
        s++;
    while (o > s && is_wsp((unsigned char)v[o - 1]))
        o--;
    if (content)
        field_content(p, e, f + 8, nlen - 8, v + s, o - s);
    else if (ek == ENV_DATE || ek == ENV_IRT || ek == ENV_MSGID)
        /* sent as written, as Dovecot does: only the first line's leading blanks go, so a
         * folded "In-Reply-To:\r\n <id>" keeps its blank and trailing blanks stay */
        field_envelope(p, e, ek, v + lead, full > lead ? full - lead : 0, false);
    else
        field_envelope(p, e, ek, v + s, o - s, raw_mod);
}

/* ---------- entities ---------- */

static int ent_new(store_mime_parser *p, uint32_t parent, uint32_t *out)
{
    if (p->nents >= MIME_MAX_PARTS) {
        p->parts_full = true;
        return -ENOSPC;
    }
    if (p->nents == p->cap) {
        uint32_t ncap = p->cap ? p->cap * 2 : 8;
        struct ent *n = realloc(p->ents, (size_t)ncap * sizeof(*n));
        if (!n) {
            p->err = -ENOMEM;
            return -ENOMEM;
        }
        p->ents = n;
        p->cap = ncap;
    }
    uint32_t idx = p->nents++;
    struct ent *e = &p->ents[idx];
    memset(e, 0, sizeof(*e));
    e->parent = parent;
    e->first_child = e->last_child = e->next = e->nested = MIME_NONE;
    e->state = ST_HEADER;
    if (parent != MIME_NONE) e->depth = (uint16_t)(p->ents[parent].depth + 1);
    *out = idx;
    return 0;
}

static void stack_clear_from(store_mime_parser *p, uint32_t k)
{
    while (p->nstack > k) {
        p->nstack--;
        free(p->stack[p->nstack].b);
        p->stack[p->nstack].b = NULL;
    }
}

/* A message with neither MIME-Version nor Content-Type is not MIME: its other Content-* fields
 * are ignored (Dovecot does the same; a Content-Type alone makes a message MIME). */
static void ent_forget_content(struct ent *e)
{
    free(e->params);
    free(e->boundary);
    free(e->id);
    free(e->desc);
    free(e->md5);
    free(e->loc);
    free(e->cte);
    free(e->disp);
    free(e->disp_params);
    free(e->lang);
    e->params = e->boundary = e->id = e->desc = e->md5 = e->loc = NULL;
    e->cte = e->disp = e->disp_params = e->lang = NULL;
    e->has_charset = false;
    e->charset[0] = '\0';
}

static bool type_is(const struct ent *e, const char *t, const char *st)
{
    if (!e->ctype) return false;
    if (strcasecmp(e->ctype, t) != 0) return false;
    return st == NULL || strcasecmp(e->csubtype, st) == 0;
}

/* The header of E ended at AT (the body starts there). With OPEN, the body follows and may hold
 * children; otherwise E was cut off (boundary or end of input) and has an empty body. */
static void header_end(store_mime_parser *p, uint32_t idx, struct cnt at, bool open)
{
    struct ent *e = &p->ents[idx];
    e->body = at;
    e->state = ST_BODY;
    if (e->is_msg && !e->seen_mimever && !e->seen_ctype) ent_forget_content(e);
    bool message = type_is(e, "message", "rfc822") || type_is(e, "message", "global") ||
                   (!e->ctype && e->digest_default);
    if (open && type_is(e, "multipart", NULL) && e->boundary && !p->parts_full &&
        e->depth < MIME_MAX_DEPTH && p->nstack < MIME_MAX_DEPTH) {
        e->kind = K_MULTIPART;
        p->stack[p->nstack].b = e->boundary;
        p->stack[p->nstack].len = strlen(e->boundary);
        p->stack[p->nstack].owner = idx;
        p->nstack++;
        e->boundary = NULL;
        return;
    }
    free(e->boundary);
    e->boundary = NULL;
    if (type_is(e, "multipart", NULL)) {
        /* no usable boundary, cut off or too deep: a multipart without children, rendered
         * with one empty text/plain part as Dovecot does */
        e->kind = K_MULTIPART;
        return;
    }
    if (message) {
        e->kind = K_MESSAGE;
        uint32_t n;
        if (open && !p->parts_full && e->depth < MIME_MAX_DEPTH && ent_new(p, idx, &n) == 0) {
            e = &p->ents[idx];
            e->nested = n;
            p->ents[n].hdr = at;
            p->ents[n].is_msg = true;
            p->cur = n;
        } else if (p->parts_full) {
            stack_clear_from(p, 0);
        }
    }
}

/* Ends entity IDX at CAND (the position before the line end that precedes a boundary), or at
 * FALLBACK (the boundary line itself) when CAND lies before the entity's body. FLOOR is the end
 * of an already closed child: a parent never ends before its children (this happens when a
 * header's blank line is directly followed by a boundary: the LF is then both the header's end
 * and the boundary's leading line end, and the header keeps it). */
static struct cnt ent_close(store_mime_parser *p, uint32_t idx, struct cnt cand,
                            struct cnt fallback, struct cnt floor)
{
    struct ent *e = &p->ents[idx];
    if (e->state == ST_HEADER) {
        struct cnt at = cand.off >= e->hdr.off ? cand : fallback;
        if (at.off < e->hdr.off) at = e->hdr;
        if (at.off < floor.off) at = floor;
        header_end(p, idx, at, false);
        e = &p->ents[idx];
    }
    struct cnt at = cand.off >= e->body.off ? cand : fallback;
    if (at.off < e->body.off) at = e->body;
    if (at.off < floor.off) at = floor;
    e->end = at;
    e->state = ST_CLOSED;
    return at;
}

static int boundary_match(store_mime_parser *p, uint64_t content_len, bool *is_close)
{
    if (p->linebuf_len < 2 || p->linebuf[0] != '-' || p->linebuf[1] != '-') return -1;
    for (uint32_t k = p->nstack; k-- > 0;) {
        const struct stack_ent *s = &p->stack[k];
        if (content_len < 2 + s->len || p->linebuf_len < 2 + s->len) continue;
        if (memcmp(p->linebuf + 2, s->b, s->len) != 0) continue;
        size_t r = 2 + s->len;
        size_t avail = p->linebuf_len < content_len ? p->linebuf_len : (size_t)content_len;
        if (avail >= r + 2 && p->linebuf[r] == '-' && p->linebuf[r + 1] == '-') {
            *is_close = true;
            return (int)k;
        }
        /* RFC 2046 5.1.1: "it is sufficient that the boundary appear in its entirety following
         * the CRLF"; what follows it on the line is ignored (Dovecot does the same) */
        *is_close = false;
        return (int)k;
    }
    return -1;
}

static void boundary_hit(store_mime_parser *p, int k, bool is_close, struct cnt next)
{
    uint32_t owner = p->stack[k].owner;
    struct cnt atl = {p->line_start, p->lf, p->bare};
    struct cnt cand = atl;
    if (p->line_start > 0 && p->prev_term > 0) {
        cand.off = p->line_start - p->prev_term;
        cand.lf = p->lf - 1;
        cand.bare = p->bare - (p->prev_bare ? 1 : 0);
    }
    p->field_active = false; /* the boundary line is not a header field */
    struct cnt floor = {0, 0, 0};
    for (uint32_t i = p->cur; i != owner && i != MIME_NONE; i = p->ents[i].parent)
        floor = ent_close(p, i, cand, atl, floor);
    p->cur = owner;
    if (is_close) {
        stack_clear_from(p, (uint32_t)k);
        return;
    }
    stack_clear_from(p, (uint32_t)k + 1);
    uint32_t c;
    if (ent_new(p, owner, &c) != 0) {
        stack_clear_from(p, 0);
        return;
    }
    struct ent *m = &p->ents[owner];
    struct ent *ce = &p->ents[c];
    ce->hdr = next;
    ce->digest_default = m->csubtype && strcasecmp(m->csubtype, "digest") == 0;
    if (m->last_child == MIME_NONE)
        m->first_child = c;
    else
        p->ents[m->last_child].next = c;
    m->last_child = c;
    m->nchildren++;
    p->cur = c;
}

/* A complete line (HAS_LF) or the unterminated last line. */
static void handle_line(store_mime_parser *p, bool has_lf, bool crlf)
{
    uint64_t content_len = p->line_len - (has_lf ? 1 : 0) - (crlf ? 1 : 0);
    struct cnt next = {p->line_start + p->line_len, p->lf + (has_lf ? 1 : 0),
                       p->bare + ((has_lf && !crlf) ? 1 : 0)};
    if (p->nstack > 0 && p->line_dash) {
        bool is_close = false;
        int k = boundary_match(p, content_len, &is_close);
        if (k >= 0) {
            /* a boundary as the unterminated last line starts no part (as in Dovecot) */
            boundary_hit(p, k, is_close || !has_lf, next);
            return;
        }
    }
    struct ent *e = &p->ents[p->cur];
    if (e->state == ST_HEADER && content_len == 0 && has_lf) {
        p->field_active = false;
        header_end(p, p->cur, next, true);
    }
}

static void line_begin(store_mime_parser *p, unsigned char c)
{
    p->line_start = p->pos;
    p->linebuf_len = 0;
    p->line_overflow_nonws = false;
    p->line_dash = c == '-';
    struct ent *e = &p->ents[p->cur];
    if (e->state == ST_HEADER) {
        if (is_wsp(c) && p->field_active) return; /* continuation of the current field */
        field_process(p, e);
        p->field_len = 0;
        p->field_active = !is_wsp(c);
    }
}

static void line_append(store_mime_parser *p, const unsigned char *d, size_t n)
{
    if (p->line_dash && p->nstack > 0) {
        size_t room = MIME_LINE_CAP - p->linebuf_len;
        size_t k = n < room ? n : room;
        memcpy(p->linebuf + p->linebuf_len, d, k);
        p->linebuf_len += k;
        for (size_t j = k; j < n && !p->line_overflow_nonws; j++)
            if (d[j] != ' ' && d[j] != '\t' && d[j] != '\r' && d[j] != '\n')
                p->line_overflow_nonws = true;
    }
    if (p->field_active && p->ents[p->cur].state == ST_HEADER) {
        size_t room = MIME_MAX_FIELD - p->field_len;
        size_t k = n < room ? n : room;
        memcpy(p->field + p->field_len, d, k);
        p->field_len += k;
    }
    if (n >= 2) {
        p->prev_last = d[n - 2];
        p->last = d[n - 1];
    } else {
        p->prev_last = p->last;
        p->last = d[0];
    }
    p->line_len += n;
    p->pos += n;
}

static void line_end(store_mime_parser *p)
{
    bool crlf = p->line_len >= 2 && p->prev_last == '\r';
    handle_line(p, true, crlf);
    p->lf++;
    if (!crlf) p->bare++;
    p->prev_term = crlf ? 2 : 1;
    p->prev_bare = !crlf;
    p->line_len = 0;
}

/* ---------- public parser API ---------- */

int store_mime_parser_new(store_mime_parser **out)
{
    *out = NULL;
    store_mime_parser *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->field = malloc(MIME_MAX_FIELD);
    uint32_t root;
    if (!p->field || ent_new(p, MIME_NONE, &root) != 0) {
        free(p->field);
        free(p->ents);
        free(p);
        return -ENOMEM;
    }
    p->ents[root].is_msg = true;
    p->cur = root;
    *out = p;
    return 0;
}

int store_mime_feed(store_mime_parser *p, const void *data, size_t len)
{
    if (!p || (!data && len > 0)) return -EINVAL;
    if (p->finished) return -EINVAL;
    if (p->err) return p->err;
    const unsigned char *d = data;
    while (len > 0) {
        if (p->line_len == 0) line_begin(p, d[0]);
        const unsigned char *nl = memchr(d, '\n', len);
        size_t n = nl ? (size_t)(nl - d) + 1 : len;
        line_append(p, d, n);
        if (nl) line_end(p);
        d += n;
        len -= n;
    }
    return p->err;
}

static void ent_free_strings(struct ent *e)
{
    free(e->ctype);
    free(e->csubtype);
    free(e->params);
    free(e->boundary);
    free(e->id);
    free(e->desc);
    free(e->md5);
    free(e->loc);
    free(e->cte);
    free(e->disp);
    free(e->disp_params);
    free(e->lang);
    for (int k = 0; k < ENV_N; k++)
        free(e->env[k]);
}

void store_mime_parser_free(store_mime_parser **pp)
{
    if (!pp || !*pp) return;
    store_mime_parser *p = *pp;
    for (uint32_t i = 0; i < p->nents; i++)
        ent_free_strings(&p->ents[i]);
    stack_clear_from(p, 0);
    free(p->ents);
    free(p->field);
    free(p);
    *pp = NULL;
}

/* ---------- rendering ---------- */

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
/* the same with extension data (md5 disposition language location), as Dovecot sends it */
#define EMPTY_BODY_EXT                                                                             \
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

static void render_envelope(struct buf *b, const struct ent *e)
{
    const char *const *v = (const char *const *)e->env;
    buf_addc(b, '(');
    buf_nstr(b, v[ENV_DATE]);
    buf_addc(b, ' ');
    buf_nstr(b, v[ENV_SUBJECT]);
    buf_addc(b, ' ');
    buf_nstr(b, v[ENV_FROM]);
    buf_addc(b, ' ');
    buf_nstr(b, v[ENV_SENDER] ? v[ENV_SENDER] : v[ENV_FROM]);
    buf_addc(b, ' ');
    buf_nstr(b, v[ENV_REPLY_TO] ? v[ENV_REPLY_TO] : v[ENV_FROM]);
    for (int k = ENV_TO; k < ENV_N; k++) {
        buf_addc(b, ' ');
        buf_nstr(b, v[k]);
    }
    buf_addc(b, ')');
}

static uint64_t crlf_len(struct cnt a, struct cnt b)
{
    return (b.off - a.off) + (b.bare - a.bare);
}

static void render_common_ext(struct buf *b, const struct ent *e)
{
    buf_addc(b, ' ');
    if (!e->disp) {
        buf_adds(b, "NIL");
    } else {
        buf_addc(b, '(');
        buf_adds(b, e->disp);
        buf_addc(b, ' ');
        if (e->disp_params) {
            buf_addc(b, '(');
            buf_adds(b, e->disp_params);
            buf_addc(b, ')');
        } else {
            buf_adds(b, "NIL");
        }
        buf_addc(b, ')');
    }
    buf_addc(b, ' ');
    if (e->lang) {
        buf_addc(b, '(');
        buf_adds(b, e->lang);
        buf_addc(b, ')');
    } else {
        buf_adds(b, "NIL");
    }
    buf_addc(b, ' ');
    buf_nstr(b, e->loc);
}

static void render_body(struct buf *b, const store_mime_parser *p, uint32_t idx, bool ext)
{
    const struct ent *e = &p->ents[idx];
    buf_addc(b, '(');
    if (e->kind == K_MULTIPART) {
        if (e->first_child == MIME_NONE) buf_adds(b, ext ? EMPTY_BODY_EXT : EMPTY_BODY);
        for (uint32_t c = e->first_child; c != MIME_NONE; c = p->ents[c].next)
            render_body(b, p, c, ext);
        buf_addc(b, ' ');
        if (e->csubtype)
            buf_istrz(b, e->csubtype);
        else
            buf_adds(b, "\"x-unknown\"");
        if (ext) {
            buf_addc(b, ' ');
            if (e->params) {
                buf_addc(b, '(');
                buf_adds(b, e->params);
                buf_addc(b, ')');
            } else {
                buf_adds(b, "NIL");
            }
            render_common_ext(b, e);
        }
        buf_addc(b, ')');
        return;
    }
    bool text;
    if (e->kind == K_MESSAGE && type_is(e, "message", "rfc822")) {
        /* Dovecot writes a message/rfc822 part's type in lower case, whatever the message says */
        buf_adds(b, "\"message\" \"rfc822\"");
        text = false;
    } else if (e->ctype) {
        buf_istrz(b, e->ctype);
        buf_addc(b, ' ');
        buf_istrz(b, e->csubtype);
        text = strcasecmp(e->ctype, "text") == 0;
    } else if (e->digest_default) {
        buf_adds(b, "\"message\" \"rfc822\"");
        text = false;
    } else {
        buf_adds(b, "\"text\" \"plain\"");
        text = true;
    }
    buf_addc(b, ' ');
    if (!e->params && !text) {
        buf_adds(b, "NIL");
    } else {
        buf_addc(b, '(');
        if (e->params) buf_adds(b, e->params);
        if (text && !e->has_charset)
            buf_adds(b, e->params ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
        buf_addc(b, ')');
    }
    buf_addc(b, ' ');
    buf_nstr(b, e->id);
    buf_addc(b, ' ');
    buf_nstr(b, e->desc);
    buf_addc(b, ' ');
    if (e->cte)
        buf_istrz(b, e->cte);
    else
        buf_adds(b, "\"7bit\"");
    char num[48];
    int k = snprintf(num, sizeof(num), " %llu", (unsigned long long)crlf_len(e->body, e->end));
    buf_add(b, num, (size_t)k);
    uint64_t lines = e->end.lf - e->body.lf;
    if (text) {
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        buf_add(b, num, (size_t)k);
    } else if (e->kind == K_MESSAGE) {
        buf_addc(b, ' ');
        if (e->nested != MIME_NONE) {
            const struct ent *n = &p->ents[e->nested];
            render_envelope(b, n);
            buf_addc(b, ' ');
            render_body(b, p, e->nested, ext);
        } else {
            buf_adds(b, ext ? EMPTY_ENVELOPE " " EMPTY_BODY_EXT : EMPTY_ENVELOPE " " EMPTY_BODY);
        }
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        buf_add(b, num, (size_t)k);
    }
    if (ext) {
        buf_addc(b, ' ');
        buf_nstr(b, e->md5);
        render_common_ext(b, e);
    }
    buf_addc(b, ')');
}

/* ---------- blob ---------- */

static void put_u32(unsigned char *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *d)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | d[i];
    return v;
}

static uint64_t get_u64(const unsigned char *d)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | d[i];
    return v;
}

int store_mime_finish(store_mime_parser *p, void **blob, size_t *bloblen)
{
    if (!p || !blob || !bloblen) return -EINVAL;
    *blob = NULL;
    *bloblen = 0;
    if (p->finished) return -EINVAL;
    if (p->err) return p->err;
    p->finished = true;
    if (p->line_len > 0) {
        handle_line(p, false, false);
        p->line_len = 0;
    }
    struct ent *cur = &p->ents[p->cur];
    if (cur->state == ST_HEADER) field_process(p, cur);
    struct cnt eof = {p->pos, p->lf, p->bare};
    for (uint32_t i = p->cur; i != MIME_NONE; i = p->ents[i].parent)
        (void)ent_close(p, i, eof, eof, eof);
    stack_clear_from(p, 0);
    if (p->err) return p->err;

    struct buf env = {0}, bs = {0}, body = {0};
    render_envelope(&env, &p->ents[0]);
    render_body(&bs, p, 0, true);
    render_body(&body, p, 0, false);
    if (env.oom || bs.oom || body.oom || env.len > UINT32_MAX / 4 || bs.len > UINT32_MAX / 4 ||
        body.len > UINT32_MAX / 4) {
        free(env.d);
        free(bs.d);
        free(body.d);
        return -ENOMEM;
    }
    size_t recs = (size_t)p->nents * BLOB_REC;
    /* the part strings (type, subtype, encoding, charset) go to a pool after the rendered text */
    struct buf pool = {0};
    uint32_t *refs = calloc((size_t)p->nents * 4 + 1, sizeof *refs);
    for (uint32_t i = 0; refs && i < p->nents; i++) {
        const struct ent *e = &p->ents[i];
        char tmp[4][64];
        if (e->ctype) {
            set_lower(tmp[0], sizeof tmp[0], e->ctype, strlen(e->ctype));
            set_lower(tmp[1], sizeof tmp[1], e->csubtype, strlen(e->csubtype));
        } else {
            snprintf(tmp[0], sizeof tmp[0], "%s", e->digest_default ? "message" : "text");
            snprintf(tmp[1], sizeof tmp[1], "%s", e->digest_default ? "rfc822" : "plain");
        }
        if (e->cte) set_lower(tmp[2], 32, e->cte, strlen(e->cte));
        else snprintf(tmp[2], 32, "7bit");
        snprintf(tmp[3], sizeof tmp[3], "%s", e->charset);
        for (int k = 0; k < 4; k++) {
            refs[i * 4 + k] = (uint32_t)pool.len;
            buf_add(&pool, tmp[k], strlen(tmp[k]) + 1);
        }
    }
    size_t total = BLOB_HDR + recs + env.len + bs.len + body.len + pool.len;
    unsigned char *out = NULL;
    if (!refs || pool.oom || pool.len > UINT32_MAX / 4 || !(out = calloc(1, total))) {
        free(refs);
        free(pool.d);
        free(env.d);
        free(bs.d);
        free(body.d);
        return -ENOMEM;
    }
    memcpy(out, BLOB_MAGIC, 4);
    put_u32(out + 4, BLOB_VERSION);
    put_u32(out + 8, p->nents);
    uint64_t lines = p->lf + ((p->pos > 0 && p->last != '\n') ? 1 : 0);
    put_u64(out + 16, p->pos + p->bare);
    put_u32(out + 24, lines > UINT32_MAX ? UINT32_MAX : (uint32_t)lines);
    /* BODYSTRUCTURE, then ENVELOPE right after the header: a FETCH of either reads the first
     * few cache lines of the record, next to the index entry that found it */
    size_t so = BLOB_HDR;
    put_u32(out + 36, (uint32_t)so);
    put_u32(out + 40, (uint32_t)bs.len);
    memcpy(out + so, bs.d, bs.len);
    so += bs.len;
    put_u32(out + 28, (uint32_t)so);
    put_u32(out + 32, (uint32_t)env.len);
    memcpy(out + so, env.d, env.len);
    so += env.len;
    put_u32(out + 44, (uint32_t)so);
    put_u32(out + 48, (uint32_t)body.len);
    memcpy(out + so, body.d, body.len);
    so += body.len;
    size_t recs_at = so;
    put_u32(out + 52, (uint32_t)recs_at);
    so += recs;
    size_t pool_at = so;
    if (pool.len) memcpy(out + so, pool.d, pool.len);
    free(pool.d);
    free(env.d);
    free(bs.d);
    free(body.d);

    for (uint32_t i = 0; i < p->nents; i++) {
        const struct ent *e = &p->ents[i];
        unsigned char *r = out + recs_at + (size_t)i * BLOB_REC;
        put_u64(r + 0, e->hdr.off);
        put_u64(r + 8, e->body.off - e->hdr.off);
        put_u64(r + 16, crlf_len(e->hdr, e->body));
        put_u64(r + 24, e->body.off);
        put_u64(r + 32, e->end.off - e->body.off);
        put_u64(r + 40, crlf_len(e->body, e->end));
        uint64_t bl = e->end.lf - e->body.lf;
        put_u32(r + 48, bl > UINT32_MAX ? UINT32_MAX : (uint32_t)bl);
        put_u32(r + 52, (uint32_t)e->kind);
        put_u32(r + 56, e->nchildren);
        put_u32(r + 60, e->first_child);
        put_u32(r + 64, e->next);
        put_u32(r + 68, e->nested);
        for (int k = 0; k < 4; k++) {
            uint32_t at = (uint32_t)pool_at + refs[i * 4 + k];
            put_u32(r + 72 + 6 * k, at);
            size_t sl = strlen((const char *)out + at);
            r[72 + 6 * k + 4] = (unsigned char)sl;
            r[72 + 6 * k + 5] = (unsigned char)(sl >> 8);
        }
    }
    free(refs);
    *blob = out;
    *bloblen = total;
    return 0;
}

int store_mime_summarize(const void *msg, size_t len, void **blob, size_t *bloblen)
{
    store_mime_parser *p;
    int r = store_mime_parser_new(&p);
    if (r < 0) return r;
    r = store_mime_feed(p, msg, len);
    if (r == 0) r = store_mime_finish(p, blob, bloblen);
    store_mime_parser_free(&p);
    return r;
}

/* ---------- blob readers ---------- */

static int blob_check(const void *blob, size_t len, uint32_t *nparts)
{
    const unsigned char *b = blob;
    if (!blob || len < BLOB_HDR || memcmp(b, BLOB_MAGIC, 4) != 0 || get_u32(b + 4) != BLOB_VERSION)
        return -EINVAL;
    uint32_t n = get_u32(b + 8), recs_at = get_u32(b + 52);
    if (n == 0 || recs_at < BLOB_HDR || recs_at > len ||
        (uint64_t)n * BLOB_REC > len - recs_at)
        return -EINVAL;
    *nparts = n;
    return 0;
}

static int blob_str(const void *blob, size_t len, size_t at, const char **out, size_t *outlen)
{
    uint32_t n;
    int r = blob_check(blob, len, &n);
    if (r < 0) return r;
    const unsigned char *b = blob;
    uint32_t off = get_u32(b + at), sl = get_u32(b + at + 4);
    if (off > len || sl > len - off) return -EINVAL;
    *out = (const char *)b + off;
    *outlen = sl;
    return 0;
}

int store_mime_totals(const void *blob, size_t bloblen, uint64_t *crlf_size, uint32_t *lines)
{
    uint32_t n;
    int r = blob_check(blob, bloblen, &n);
    if (r < 0) return r;
    const unsigned char *b = blob;
    if (crlf_size) *crlf_size = get_u64(b + 16);
    if (lines) *lines = get_u32(b + 24);
    return 0;
}

int store_mime_envelope(const void *blob, size_t bloblen, const char **out, size_t *outlen)
{
    return blob_str(blob, bloblen, 28, out, outlen);
}

int store_mime_bodystructure(const void *blob, size_t bloblen, bool extended, const char **out,
                             size_t *outlen)
{
    return blob_str(blob, bloblen, extended ? 36 : 44, out, outlen);
}

/* Copies string K of part record R (a pool reference) into OUT, "" if it is out of bounds. */
static void rec_str(const void *blob, size_t len, const unsigned char *r, int k, char *out,
                    size_t outlen)
{
    uint32_t at = get_u32(r + 72 + 6 * k);
    size_t sl = (size_t)r[72 + 6 * k + 4] | (size_t)r[72 + 6 * k + 5] << 8;
    out[0] = 0;
    if (at > len || sl > len - at) return;
    if (sl >= outlen) sl = outlen - 1;
    memcpy(out, (const char *)blob + at, sl);
    out[sl] = 0;
}

struct ent_view {
    uint64_t hoff, hlen, hcrlf, boff, blen, bcrlf;
    uint32_t lines, kind, nchildren, first_child, next, nested;
    const unsigned char *r;
};

static void rec_get(const unsigned char *r, struct ent_view *v)
{
    v->hoff = get_u64(r);
    v->hlen = get_u64(r + 8);
    v->hcrlf = get_u64(r + 16);
    v->boff = get_u64(r + 24);
    v->blen = get_u64(r + 32);
    v->bcrlf = get_u64(r + 40);
    v->lines = get_u32(r + 48);
    v->kind = get_u32(r + 52);
    v->nchildren = get_u32(r + 56);
    v->first_child = get_u32(r + 60);
    v->next = get_u32(r + 64);
    v->nested = get_u32(r + 68);
    v->r = r;
}

int store_mime_part_find(const void *blob, size_t bloblen, const char *section,
                         store_mime_part *out)
{
    uint32_t n;
    int r = blob_check(blob, bloblen, &n);
    if (r < 0) return r;
    if (!section || !out) return -EINVAL;
    const unsigned char *base = (const unsigned char *)blob + get_u32((const unsigned char *)blob + 52);
    struct ent_view v;
    uint32_t idx = 0;
    rec_get(base, &v);
    bool at_message = true; /* the number applies to the body of a message */
    const char *s = section;
    unsigned steps = 0;
    while (*s) {
        if (*s < '1' || *s > '9') return -EINVAL;
        unsigned long num = 0;
        while (*s >= '0' && *s <= '9') {
            num = num * 10 + (unsigned long)(*s - '0');
            if (num > MIME_MAX_PARTS) return -ENOENT;
            s++;
        }
        if (*s == '.') {
            s++;
            if (*s == '\0') return -EINVAL;
        } else if (*s != '\0') {
            return -EINVAL;
        }
        if (++steps > 2 * MIME_MAX_DEPTH + 2) return -ENOENT;
        if (!at_message) {
            if (v.kind == K_MESSAGE) {
                if (v.nested == MIME_NONE || v.nested >= n || v.nested <= idx) return -ENOENT;
                idx = v.nested;
                rec_get(base + (size_t)idx * BLOB_REC, &v);
            } else if (v.kind != K_MULTIPART) {
                return -ENOENT;
            }
        }
        if (v.kind == K_MULTIPART && v.first_child == MIME_NONE) {
            /* the empty text/plain part shown for a childless multipart */
            if (num != 1 || *s != '\0') return -ENOENT;
            memset(out, 0, sizeof(*out));
            out->header_off = out->body_off = v.boff;
            strcpy(out->type, "text");
            strcpy(out->subtype, "plain");
            strcpy(out->encoding, "7bit");
            return 0;
        }
        if (v.kind == K_MULTIPART) {
            uint32_t c = v.first_child;
            for (unsigned long k = 1; k < num && c != MIME_NONE && c < n; k++)
                c = get_u32(base + (size_t)c * BLOB_REC + 64);
            if (c == MIME_NONE || c >= n || c <= idx) return -ENOENT;
            idx = c;
            rec_get(base + (size_t)idx * BLOB_REC, &v);
        } else if (num != 1) {
            return -ENOENT;
        }
        at_message = false;
    }
    memset(out, 0, sizeof(*out));
    out->header_off = v.hoff;
    out->header_len = v.hlen;
    out->header_crlf_len = v.hcrlf;
    out->body_off = v.boff;
    out->body_len = v.blen;
    out->body_crlf_len = v.bcrlf;
    out->body_lines = v.lines;
    out->is_multipart = v.kind == K_MULTIPART;
    out->nparts = v.nchildren;
    if (v.kind == K_MESSAGE && v.nested != MIME_NONE && v.nested < n && v.nested > idx) {
        struct ent_view m;
        rec_get(base + (size_t)v.nested * BLOB_REC, &m);
        out->is_message = true;
        out->msg_header_off = m.hoff;
        out->msg_header_len = m.hlen;
        out->msg_header_crlf_len = m.hcrlf;
        out->msg_body_off = m.boff;
        out->msg_body_len = m.blen;
        out->msg_body_crlf_len = m.bcrlf;
    }
    rec_str(blob, bloblen, v.r, 0, out->type, sizeof out->type);
    rec_str(blob, bloblen, v.r, 1, out->subtype, sizeof out->subtype);
    rec_str(blob, bloblen, v.r, 2, out->encoding, sizeof out->encoding);
    rec_str(blob, bloblen, v.r, 3, out->charset, sizeof out->charset);
    return 0;
}
