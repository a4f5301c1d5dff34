/* mime_address.c: RFC 5322 address lists of the MIME summary, lexed for ENVELOPE */
#include "store/mime_int.h"

/* ---------- address lists ---------- */

enum { T_END, T_ATOM, T_QUOTED, T_COMMENT, T_SPECIAL };

struct lexer {
    const char *v;
    size_t n, i;
    imap_buf tok;
    char special;
};

static int lex_next(struct lexer *l)
{
    imap_buf_truncate(&l->tok, 0);
    while (l->i < l->n && is_wsp((unsigned char)l->v[l->i]))
        l->i++;
    if (l->i >= l->n) return T_END;
    char c = l->v[l->i];
    if (c == '(') {
        int depth = 0;
        while (l->i < l->n) {
            c = l->v[l->i++];
            if (c == '\\' && l->i < l->n) {
                imap_buf_putc(&l->tok, l->v[l->i++]);
                continue;
            }
            if (c == '(') {
                if (depth++ == 0) continue;
            } else if (c == ')') {
                if (--depth == 0) break;
            }
            imap_buf_putc(&l->tok, c);
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
        imap_buf_append(&l->tok, l->v + s, l->i - s);
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
    imap_buf_append(&l->tok, l->v + s, l->i - s);
    return T_ATOM;
}

/* Appends one address (imap_envelope_address). HOST_NIL: a group's start. */
static void emit_addr(imap_buf *out, const imap_buf *name, const char *route, const char *mbox,
                      size_t mlen, const char *host, size_t hlen, bool host_nil)
{
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

/* Appends the end of a group: (NIL NIL NIL NIL). */
static void emit_group_end(imap_buf *out)
{
    imap_envelope_address(out, &(imap_address){0});
}

/* Reads a domain after '@' until ',', ';', '>' or the end; returns the stopping token. The
 * domain is atoms joined by dots: what follows it up to the stop (as in "a@b <c@d>" or
 * "a@b c@d") is skipped, and the address is a@b, as in Dovecot. */
static int read_domain(struct lexer *l, imap_buf *dom, imap_buf *comment, bool angle)
{
    bool junk = false, after_atom = false;
    for (;;) {
        int t = lex_next(l);
        if (t == T_END) return t;
        if (t == T_SPECIAL) {
            if (l->special == ',' || l->special == ';' || (angle && l->special == '>')) return t;
            if (l->special == '.' && !junk) {
                imap_buf_putc(dom, '.');
                after_atom = false;
            } else if (dom->len > 0) {
                junk = true;
            }
            continue;
        }
        if (t == T_COMMENT) {
            if (comment) {
                imap_buf_truncate(comment, 0);
                imap_buf_append(comment, l->tok.data ? l->tok.data : "", l->tok.len);
            }
            continue;
        }
        if (after_atom) junk = true;
        if (junk) continue;
        imap_buf_append(dom, l->tok.data ? l->tok.data : "", l->tok.len);
        after_atom = true;
    }
}

size_t st_mime_addresses(const char *v, size_t n, imap_buf *out)
{
    struct lexer l = {.v = v, .n = n};
    imap_buf phrase = {0}, local = {0}, comment = {0}, dom = {0}, route = {0};
    size_t count = 0;
    bool in_group = false;
    for (;;) {
        imap_buf_truncate(&phrase, 0);
        imap_buf_truncate(&local, 0);
        imap_buf_truncate(&comment, 0);
        imap_buf_truncate(&dom, 0);
        imap_buf_truncate(&route, 0);
        bool pdot = false, local_done = false;
        int t;
        for (;;) {
            t = lex_next(&l);
            if (t == T_END) break;
            if (t == T_ATOM || t == T_QUOTED) {
                if (phrase.len > 0 && !pdot) {
                    imap_buf_putc(&phrase, ' ');
                    local_done = true; /* a local part is words joined by dots */
                }
                imap_buf_append(&phrase, l.tok.data ? l.tok.data : "", l.tok.len);
                if (!local_done) imap_buf_append(&local, l.tok.data ? l.tok.data : "", l.tok.len);
                pdot = false;
                continue;
            }
            if (t == T_COMMENT) {
                imap_buf_truncate(&comment, 0);
                imap_buf_append(&comment, l.tok.data ? l.tok.data : "", l.tok.len);
                continue;
            }
            if (l.special == '.') {
                imap_buf_putc(&phrase, '.');
                if (!local_done) imap_buf_putc(&local, '.');
                pdot = true;
                continue;
            }
            if (strchr("<:@,;", l.special) != NULL) break;
        }
        if (t == T_SPECIAL && l.special == ':') {
            if (!in_group) {
                emit_addr(out, NULL, NULL, phrase.data ? phrase.data : "", phrase.len, NULL, 0,
                          true);
                count++;
                in_group = true;
            }
            continue;
        }
        if (t == T_SPECIAL && l.special == '<') {
            /* angle-addr: [@route,@route:]local@domain */
            imap_buf inner_local = {0};
            int st = T_END;
            for (;;) {
                st = lex_next(&l);
                if (st == T_END) break;
                if (st == T_SPECIAL && l.special == '>') break;
                if (st == T_SPECIAL && l.special == '@') {
                    if (inner_local.len == 0) {
                        /* start of a route */
                        imap_buf_putc(&route, '@');
                        for (;;) {
                            st = lex_next(&l);
                            if (st == T_END ||
                                (st == T_SPECIAL && (l.special == ':' || l.special == '>')))
                                break;
                            if (st == T_SPECIAL)
                                imap_buf_putc(&route, l.special);
                            else if (st != T_COMMENT)
                                imap_buf_append(&route, l.tok.data ? l.tok.data : "", l.tok.len);
                        }
                        if (st == T_END || l.special == '>') break;
                        continue;
                    }
                    st = read_domain(&l, &dom, NULL, true);
                    break;
                }
                if (st == T_SPECIAL) {
                    if (l.special == '.') imap_buf_putc(&inner_local, '.');
                    continue;
                }
                if (st == T_COMMENT) continue;
                imap_buf_append(&inner_local, l.tok.data ? l.tok.data : "", l.tok.len);
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
            const imap_buf *name = phrase.len > 0 ? &phrase : NULL;
            const char *mb = inner_local.len ? inner_local.data : "MISSING_MAILBOX";
            size_t ml = inner_local.len ? inner_local.len : strlen("MISSING_MAILBOX");
            const char *hd = dom.len ? dom.data : "MISSING_DOMAIN";
            size_t hl = dom.len ? dom.len : strlen("MISSING_DOMAIN");
            emit_addr(out, name, route.len ? route.data : NULL, mb, ml, hd, hl, false);
            count++;
            imap_buf_free(&inner_local);
            if (et == T_SPECIAL && l.special == ';' && in_group) {
                emit_group_end(out);
                in_group = false;
            }
            if (et == T_END) break;
            continue;
        }
        if (t == T_SPECIAL && l.special == '@') {
            imap_buf_truncate(&comment, 0); /* only a comment after the local part names it */
            int st = read_domain(&l, &dom, &comment, false);
            const imap_buf *name = comment.len ? &comment : NULL;
            const char *mb = local.len ? local.data : "MISSING_MAILBOX";
            size_t ml = local.len ? local.len : strlen("MISSING_MAILBOX");
            const char *hd = dom.len ? dom.data : "MISSING_DOMAIN";
            size_t hl = dom.len ? dom.len : strlen("MISSING_DOMAIN");
            emit_addr(out, name, NULL, mb, ml, hd, hl, false);
            count++;
            if (st == T_SPECIAL && l.special == ';' && in_group) {
                emit_group_end(out);
                in_group = false;
            }
            if (st == T_END) break;
            continue;
        }
        /* ',' ';' or the end: a local part without '@' ("postmaster", "nsb (Nathaniel
         * Borenstein)") is a mailbox without a domain, as in Dovecot; other words without '@'
         * are a name without an address */
        if (phrase.len > 0 && !local_done && local.len > 0) {
            emit_addr(out, comment.len ? &comment : NULL, NULL, local.data, local.len,
                      "MISSING_DOMAIN", strlen("MISSING_DOMAIN"), false);
            count++;
        } else if (phrase.len > 0) {
            emit_addr(out, &phrase, NULL, "MISSING_MAILBOX", strlen("MISSING_MAILBOX"),
                      "MISSING_DOMAIN", strlen("MISSING_DOMAIN"), false);
            count++;
        }
        if (t == T_SPECIAL && l.special == ';' && in_group) {
            emit_group_end(out);
            in_group = false;
        }
        if (t == T_END) break;
    }
    if (in_group) emit_group_end(out);
    imap_buf_free(&phrase);
    imap_buf_free(&local);
    imap_buf_free(&comment);
    imap_buf_free(&dom);
    imap_buf_free(&route);
    imap_buf_free(&l.tok);
    return count;
}
