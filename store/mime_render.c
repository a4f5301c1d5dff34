/* mime_render.c: IMAP ENVELOPE and BODYSTRUCTURE text of a parsed message */
#include "store/mime_int.h"

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
/* the same with extension data (md5 disposition language location), as Dovecot sends it */
#define EMPTY_BODY_EXT                                                                             \
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

void st_mime_render_envelope(struct buf *b, const struct ent *e)
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

void st_mime_render_body(struct buf *b, const store_mime_parser *p, uint32_t idx, bool ext)
{
    const struct ent *e = &p->ents[idx];
    buf_addc(b, '(');
    if (e->kind == K_MULTIPART) {
        if (e->first_child == MIME_NONE) buf_adds(b, ext ? EMPTY_BODY_EXT : EMPTY_BODY);
        for (uint32_t c = e->first_child; c != MIME_NONE; c = p->ents[c].next)
            st_mime_render_body(b, p, c, ext);
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
            st_mime_render_envelope(b, n);
            buf_addc(b, ' ');
            st_mime_render_body(b, p, e->nested, ext);
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
