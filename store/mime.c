/* mime.c: the MIME summary parser's state machine: lines, boundaries, entities */
#include "store/mime_int.h"

#include <errno.h>

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
 *   trimmed, except in ENVELOPE's date, in-reply-to and message-id, which are kept as written
 *   (less the blanks after the colon), as Dovecot does. Encoded words (RFC 2047) are passed
 *   through undecoded. RFC 2231 parameter sections (name*0, name*1*) are merged into one
 *   parameter but stay encoded, as in Dovecot.
 * - Addresses follow RFC 5322 with groups ((NIL NIL "group" NIL) ... (NIL NIL NIL NIL)), routes
 *   and obsolete forms. As in Dovecot, a missing mailbox or domain is filled in as
 *   "MISSING_MAILBOX" / "MISSING_DOMAIN" (so a NIL host always means a group), a local part
 *   without '@' is a mailbox without domain, other words without '@' become a display name, a
 *   comment after a bare addr-spec is its display name, what follows a domain up to the next
 *   ',' is skipped, and an empty Sender or Reply-To falls back to From.
 * - The IMAP text (ENVELOPE, BODYSTRUCTURE) is made by imap/imap_envelope.c and
 *   imap/imap_bodystructure.c, whose headers give its rules (case as written, Dovecot's
 *   defaults, subjects and names "for humans"); every string is quoted by imap/imap_quote.c's
 *   one rule, as for a client that has not enabled UTF-8, since it is rendered once for all.
 * - Limits: a header field is kept up to MIME_MAX_FIELD bytes for the summary (the rest is
 *   ignored, offsets stay exact); boundaries nest MIME_MAX_DEPTH deep (deeper multiparts are
 *   opaque leaves); at most MIME_MAX_PARTS parts (then boundaries are no longer recognised and the
 *   rest of the message is body of the part being read); rendered strings kept per message are
 *   capped at MIME_TEXT_BUDGET bytes in total (beyond it optional strings become NIL).
 */

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
        st_mime_field_process(p, e);
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
    for (int k = 0; k < IMAP_ENV_N; k++)
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
    if (cur->state == ST_HEADER) st_mime_field_process(p, cur);
    struct cnt eof = {p->pos, p->lf, p->bare};
    for (uint32_t i = p->cur; i != MIME_NONE; i = p->ents[i].parent)
        (void)ent_close(p, i, eof, eof, eof);
    stack_clear_from(p, 0);
    if (p->err) return p->err;
    return st_mime_blob_write(p, blob, bloblen);
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
