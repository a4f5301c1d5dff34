/* mime_render.c: IMAP ENVELOPE and BODYSTRUCTURE text of a parsed message */
#include "store/mime_int.h"

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
/* the same with extension data (md5 disposition language location), as Dovecot sends it */
#define EMPTY_BODY_EXT                                                                             \
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

void st_mime_render_envelope(imap_buf *b, const struct ent *e)
{
    const char *const *v = (const char *const *)e->env;
    imap_buf_putc(b, '(');
    buf_nstr(b, v[ENV_DATE]);
    imap_buf_putc(b, ' ');
    buf_nstr(b, v[ENV_SUBJECT]);
    imap_buf_putc(b, ' ');
    buf_nstr(b, v[ENV_FROM]);
    imap_buf_putc(b, ' ');
    buf_nstr(b, v[ENV_SENDER] ? v[ENV_SENDER] : v[ENV_FROM]);
    imap_buf_putc(b, ' ');
    buf_nstr(b, v[ENV_REPLY_TO] ? v[ENV_REPLY_TO] : v[ENV_FROM]);
    for (int k = ENV_TO; k < ENV_N; k++) {
        imap_buf_putc(b, ' ');
        buf_nstr(b, v[k]);
    }
    imap_buf_putc(b, ')');
}

static void render_common_ext(imap_buf *b, const struct ent *e)
{
    imap_buf_putc(b, ' ');
    if (!e->disp) {
        imap_buf_puts(b, "NIL");
    } else {
        imap_buf_putc(b, '(');
        imap_buf_puts(b, e->disp);
        imap_buf_putc(b, ' ');
        if (e->disp_params) {
            imap_buf_putc(b, '(');
            imap_buf_puts(b, e->disp_params);
            imap_buf_putc(b, ')');
        } else {
            imap_buf_puts(b, "NIL");
        }
        imap_buf_putc(b, ')');
    }
    imap_buf_putc(b, ' ');
    if (e->lang) {
        imap_buf_putc(b, '(');
        imap_buf_puts(b, e->lang);
        imap_buf_putc(b, ')');
    } else {
        imap_buf_puts(b, "NIL");
    }
    imap_buf_putc(b, ' ');
    buf_nstr(b, e->loc);
}

void st_mime_render_body(imap_buf *b, const store_mime_parser *p, uint32_t idx, bool ext)
{
    const struct ent *e = &p->ents[idx];
    imap_buf_putc(b, '(');
    if (e->kind == K_MULTIPART) {
        if (e->first_child == MIME_NONE) imap_buf_puts(b, ext ? EMPTY_BODY_EXT : EMPTY_BODY);
        for (uint32_t c = e->first_child; c != MIME_NONE; c = p->ents[c].next)
            st_mime_render_body(b, p, c, ext);
        imap_buf_putc(b, ' ');
        if (e->csubtype)
            buf_istrz(b, e->csubtype);
        else
            imap_buf_puts(b, "\"x-unknown\"");
        if (ext) {
            imap_buf_putc(b, ' ');
            if (e->params) {
                imap_buf_putc(b, '(');
                imap_buf_puts(b, e->params);
                imap_buf_putc(b, ')');
            } else {
                imap_buf_puts(b, "NIL");
            }
            render_common_ext(b, e);
        }
        imap_buf_putc(b, ')');
        return;
    }
    bool text;
    if (e->kind == K_MESSAGE && type_is(e, "message", "rfc822")) {
        /* Dovecot writes a message/rfc822 part's type in lower case, whatever the message says */
        imap_buf_puts(b, "\"message\" \"rfc822\"");
        text = false;
    } else if (e->ctype) {
        buf_istrz(b, e->ctype);
        imap_buf_putc(b, ' ');
        buf_istrz(b, e->csubtype);
        text = strcasecmp(e->ctype, "text") == 0;
    } else if (e->digest_default) {
        imap_buf_puts(b, "\"message\" \"rfc822\"");
        text = false;
    } else {
        imap_buf_puts(b, "\"text\" \"plain\"");
        text = true;
    }
    imap_buf_putc(b, ' ');
    if (!e->params && !text) {
        imap_buf_puts(b, "NIL");
    } else {
        imap_buf_putc(b, '(');
        if (e->params) imap_buf_puts(b, e->params);
        if (text && !e->has_charset)
            imap_buf_puts(b, e->params ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
        imap_buf_putc(b, ')');
    }
    imap_buf_putc(b, ' ');
    buf_nstr(b, e->id);
    imap_buf_putc(b, ' ');
    buf_nstr(b, e->desc);
    imap_buf_putc(b, ' ');
    if (e->cte)
        buf_istrz(b, e->cte);
    else
        imap_buf_puts(b, "\"7bit\"");
    char num[48];
    int k = snprintf(num, sizeof(num), " %llu", (unsigned long long)crlf_len(e->body, e->end));
    imap_buf_append(b, num, (size_t)k);
    uint64_t lines = e->end.lf - e->body.lf;
    if (text) {
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        imap_buf_append(b, num, (size_t)k);
    } else if (e->kind == K_MESSAGE) {
        imap_buf_putc(b, ' ');
        if (e->nested != MIME_NONE) {
            const struct ent *n = &p->ents[e->nested];
            st_mime_render_envelope(b, n);
            imap_buf_putc(b, ' ');
            st_mime_render_body(b, p, e->nested, ext);
        } else {
            imap_buf_puts(b,
                          ext ? EMPTY_ENVELOPE " " EMPTY_BODY_EXT : EMPTY_ENVELOPE " " EMPTY_BODY);
        }
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        imap_buf_append(b, num, (size_t)k);
    }
    if (ext) {
        imap_buf_putc(b, ' ');
        buf_nstr(b, e->md5);
        render_common_ext(b, e);
    }
    imap_buf_putc(b, ')');
}
