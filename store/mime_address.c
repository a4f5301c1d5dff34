/* mime_address.c: RFC 5322 address lists of the MIME summary, lexed for ENVELOPE */
#include "store/mime_int.h"

/* ---------- address lists ---------- */

enum { T_END, T_ATOM, T_QUOTED, T_COMMENT, T_SPECIAL };

struct lexer {
    const char *v;
    size_t n, i;
    mfs_buf tok;
    char special;
};

static int lex_next(struct lexer *l)
{
    mfs_buf_truncate(&l->tok, 0);
    while (l->i < l->n && is_wsp((unsigned char)l->v[l->i]))
        l->i++;
    if (l->i >= l->n) return T_END;
    char c = l->v[l->i];
    if (c == '(') {
        int depth = 0;
        while (l->i < l->n) {
            c = l->v[l->i++];
            if (c == '\\' && l->i < l->n) {
                mfs_buf_putc(&l->tok, l->v[l->i++]);
                continue;
            }
            if (c == '(') {
                if (depth++ == 0) continue;
            } else if (c == ')') {
                if (--depth == 0) break;
            }
            mfs_buf_putc(&l->tok, c);
        }
        return T_COMMENT;
    }
    if (c == '"') {
        st_mime_lex_quoted(l->v, l->n, &l->i, &l->tok);
        return T_QUOTED;
    }
    if (c == '[') {
        size_t s = l->i;
        while (l->i < l->n && l->v[l->i] != ']')
            l->i++;
        if (l->i < l->n) l->i++;
        mfs_buf_append(&l->tok, l->v + s, l->i - s);
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
    mfs_buf_append(&l->tok, l->v + s, l->i - s);
    return T_ATOM;
}

/* Appends one address as plain text, for SEARCH: "name <mailbox@host>", "mailbox@host", a group
 * as "name: ... ;"; addresses separated by ", ". */
static void emit_text(mfs_buf *out, const mfs_buf *name, const char *mbox, size_t mlen,
                      const char *host, size_t hlen, bool host_nil)
{
    if (out->len > 0 && out->data[out->len - 1] != ':') mfs_buf_puts(out, ", ");
    if (host_nil) { /* a group's start; MBOX is its name */
        mfs_buf_append(out, mbox, mlen);
        mfs_buf_putc(out, ':');
        return;
    }
    bool named = name && name->len > 0;
    if (named) {
        mfs_buf_append(out, name->data, name->len);
        mfs_buf_puts(out, " <");
    }
    mfs_buf_append(out, mbox, mlen);
    if (host) {
        mfs_buf_putc(out, '@');
        mfs_buf_append(out, host, hlen);
    }
    if (named) mfs_buf_putc(out, '>');
}

/* Appends one address (imap_envelope_address, or with TEXT emit_text). HOST_NIL: a group's
 * start. */
static void emit_addr(mfs_buf *out, bool text, const mfs_buf *name, const char *route,
                      const char *mbox, size_t mlen, const char *host, size_t hlen, bool host_nil)
{
    if (text) {
        emit_text(out, name, mbox, mlen, host, hlen, host_nil);
        return;
    }
    imap_address a = {
        .name = name ? name->data : NULL,
        .name_len = name ? name->len : 0,
        .route = route,
        .route_len = route ? strlen(route) : 0,
        .mailbox = mbox,
        .mailbox_len = mlen,
        .host = host_nil ? NULL : host,
        .host_len = hlen,
    };
    imap_envelope_address(out, &a);
}

/* Appends the end of a group: (NIL NIL NIL NIL), or with TEXT ";". */
static void emit_group_end(mfs_buf *out, bool text)
{
    if (text)
        mfs_buf_putc(out, ';');
    else
        imap_envelope_address(out, &(imap_address){0});
}

/* Reads a domain after '@' until ',', ';', '>' or the end; returns the stopping token. The
 * domain is atoms joined by dots: what follows it up to the stop (as in "a@b <c@d>" or
 * "a@b c@d") is skipped, and the address is a@b, as in Dovecot. */
static int read_domain(struct lexer *l, mfs_buf *dom, mfs_buf *comment, bool angle)
{
    bool junk = false, after_atom = false;
    for (;;) {
        int t = lex_next(l);
        if (t == T_END) return t;
        if (t == T_SPECIAL) {
            if (l->special == ',' || l->special == ';' || (angle && l->special == '>')) return t;
            if (l->special == '.' && !junk) {
                mfs_buf_putc(dom, '.');
                after_atom = false;
            } else if (dom->len > 0) {
                junk = true;
            }
            continue;
        }
        if (t == T_COMMENT) {
            if (comment) {
                mfs_buf_truncate(comment, 0);
                mfs_buf_append(comment, l->tok.data ? l->tok.data : "", l->tok.len);
            }
            continue;
        }
        if (after_atom) junk = true;
        if (junk) continue;
        mfs_buf_append(dom, l->tok.data ? l->tok.data : "", l->tok.len);
        after_atom = true;
    }
}

/* One address list being read: the lexer, what the current address gathered, the output. */
struct addrs {
    struct lexer l;
    mfs_buf phrase, local, comment, dom, route;
    bool local_done; /* the phrase has words not joined by dots: it is no local part */
    bool in_group;
    bool text; /* plain text for SEARCH, not ENVELOPE addresses */
    size_t count;
    mfs_buf *out;
};

static void tok_append(mfs_buf *b, const struct lexer *l)
{
    mfs_buf_append(b, l->tok.data ? l->tok.data : "", l->tok.len);
}

/* Appends an address with NAME, ROUTE, MBOX and HOST (NULL or empty: none); a missing mailbox
 * or host is "MISSING_MAILBOX" / "MISSING_DOMAIN", as in Dovecot. */
static void put_address(struct addrs *a, const mfs_buf *name, const mfs_buf *route,
                        const mfs_buf *mbox, const mfs_buf *host)
{
    bool m = mbox && mbox->len > 0, h = host && host->len > 0;
    emit_addr(a->out, a->text, name && name->len > 0 ? name : NULL,
              route && route->len > 0 ? route->data : NULL, m ? mbox->data : "MISSING_MAILBOX",
              m ? mbox->len : strlen("MISSING_MAILBOX"), h ? host->data : "MISSING_DOMAIN",
              h ? host->len : strlen("MISSING_DOMAIN"), false);
    a->count++;
}

/* Reads words, dots and comments up to one of "<:@,;" or the end; returns the stopping token.
 * The words are the phrase; words joined by dots are also the local part of an addr-spec. */
static int read_phrase(struct addrs *a)
{
    struct lexer *l = &a->l;
    bool pdot = false;
    a->local_done = false;
    for (;;) {
        int t = lex_next(l);
        if (t == T_END) return t;
        if (t == T_ATOM || t == T_QUOTED) {
            if (a->phrase.len > 0 && !pdot) {
                mfs_buf_putc(&a->phrase, ' ');
                a->local_done = true; /* a local part is words joined by dots */
            }
            tok_append(&a->phrase, l);
            if (!a->local_done) tok_append(&a->local, l);
            pdot = false;
            continue;
        }
        if (t == T_COMMENT) {
            mfs_buf_truncate(&a->comment, 0);
            tok_append(&a->comment, l);
            continue;
        }
        if (l->special == '.') {
            mfs_buf_putc(&a->phrase, '.');
            if (!a->local_done) mfs_buf_putc(&a->local, '.');
            pdot = true;
            continue;
        }
        if (strchr("<:@,;", l->special) != NULL) return t;
    }
}

/* Reads a route after its first '@' ("@a,@b:") into a->route; returns the token that ended it:
 * ':', '>' or the end. */
static int read_route(struct addrs *a)
{
    struct lexer *l = &a->l;
    mfs_buf_putc(&a->route, '@');
    for (;;) {
        int t = lex_next(l);
        if (t == T_END || (t == T_SPECIAL && (l->special == ':' || l->special == '>'))) return t;
        if (t == T_SPECIAL)
            mfs_buf_putc(&a->route, l->special);
        else if (t != T_COMMENT)
            tok_append(&a->route, l);
    }
}

/* Reads an angle-addr after '<' ([@route,@route:]local@domain>) and what follows it up to ','
 * or ';', and appends it; returns the token that ended it. The display name is the phrase
 * only (comments do not name an angle address, as in Dovecot). */
static int read_angle(struct addrs *a)
{
    struct lexer *l = &a->l;
    mfs_buf inner_local = {0};
    int st = T_END;
    for (;;) {
        st = lex_next(l);
        if (st == T_END) break;
        if (st == T_SPECIAL && l->special == '>') break;
        if (st == T_SPECIAL && l->special == '@') {
            if (inner_local.len == 0) {
                st = read_route(a);
                if (st == T_END || l->special == '>') break;
                continue;
            }
            st = read_domain(l, &a->dom, NULL, true);
            break;
        }
        if (st == T_SPECIAL) {
            if (l->special == '.') mfs_buf_putc(&inner_local, '.');
            continue;
        }
        if (st == T_COMMENT) continue;
        tok_append(&inner_local, l);
    }
    /* after '>': skip to ',' or ';' */
    int et = st;
    if (st != T_END && !(st == T_SPECIAL && (l->special == ',' || l->special == ';'))) {
        for (;;) {
            et = lex_next(l);
            if (et == T_END) break;
            if (et == T_SPECIAL && (l->special == ',' || l->special == ';')) break;
        }
    }
    put_address(a, &a->phrase, &a->route, &inner_local, &a->dom);
    mfs_buf_free(&inner_local);
    return et;
}

/* Reads the domain of an addr-spec after its '@' and appends the address; returns the token
 * that ended it. Only a comment after the local part names it. */
static int read_addr_spec(struct addrs *a)
{
    mfs_buf_truncate(&a->comment, 0);
    int st = read_domain(&a->l, &a->dom, &a->comment, false);
    put_address(a, &a->comment, NULL, &a->local, &a->dom);
    return st;
}

/* Words that ended at ',', ';' or the end without '@': a local part ("postmaster", "nsb
 * (Nathaniel Borenstein)") is a mailbox without a domain, as in Dovecot; other words are a name
 * without an address. */
static void put_bare_words(struct addrs *a)
{
    if (a->phrase.len > 0 && !a->local_done && a->local.len > 0)
        put_address(a, &a->comment, NULL, &a->local, NULL);
    else if (a->phrase.len > 0)
        put_address(a, &a->phrase, NULL, NULL, NULL);
}

static size_t addresses(const char *v, size_t n, mfs_buf *out, bool text)
{
    struct addrs a = {.l = {.v = v, .n = n}, .out = out, .text = text};
    for (;;) {
        mfs_buf_truncate(&a.phrase, 0);
        mfs_buf_truncate(&a.local, 0);
        mfs_buf_truncate(&a.comment, 0);
        mfs_buf_truncate(&a.dom, 0);
        mfs_buf_truncate(&a.route, 0);
        int t = read_phrase(&a);
        char special = t == T_SPECIAL ? a.l.special : 0;
        if (special == ':') {
            if (!a.in_group) { /* a group's start: (NIL NIL "name" NIL) */
                emit_addr(out, text, NULL, NULL, a.phrase.data ? a.phrase.data : "", a.phrase.len,
                          NULL, 0, true);
                a.count++;
                a.in_group = true;
            }
            continue;
        }
        if (special == '<')
            t = read_angle(&a);
        else if (special == '@')
            t = read_addr_spec(&a);
        else
            put_bare_words(&a);
        if (t == T_SPECIAL && a.l.special == ';' && a.in_group) {
            emit_group_end(out, text);
            a.in_group = false;
        }
        if (t == T_END) break;
    }
    if (a.in_group) emit_group_end(out, text);
    mfs_buf_free(&a.phrase);
    mfs_buf_free(&a.local);
    mfs_buf_free(&a.comment);
    mfs_buf_free(&a.dom);
    mfs_buf_free(&a.route);
    mfs_buf_free(&a.l.tok);
    return a.count;
}

size_t st_mime_addresses(const char *v, size_t n, mfs_buf *out)
{
    return addresses(v, n, out, false);
}

size_t store_mime_addresses_text(const char *v, size_t n, mfs_buf *out)
{
    return addresses(v, n, out, true);
}
