/* imap_bodystructure.c: IMAP BODY and BODYSTRUCTURE text of a described part tree */
#include "imap/imap_bodystructure.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_quote.h"

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
/* the same with extension data (md5 disposition language location), as Dovecot sends it */
#define EMPTY_BODY_EXT                                                                             \
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"

void imap_bodystructure_list_add(mfs_buf *list, const char *s, size_t len)
{
    if (list->len > 0) mfs_buf_putc(list, ' ');
    imap_quote_string(list, s, len, false);
}

void imap_bodystructure_param(mfs_buf *list, const char *name, size_t name_len, const char *value,
                              size_t value_len)
{
    imap_bodystructure_list_add(list, name, name_len);
    imap_bodystructure_list_add(list, value, value_len);
}

static void put_text(mfs_buf *b, const char *text)
{
    mfs_buf_puts(b, text ? text : "NIL");
}

static void put_string(mfs_buf *b, const char *s)
{
    imap_quote_string(b, s, strlen(s), false);
}

/* "(" LIST ")", or NIL */
static void put_list(mfs_buf *b, const char *list)
{
    if (list) {
        mfs_buf_putc(b, '(');
        mfs_buf_puts(b, list);
        mfs_buf_putc(b, ')');
    } else {
        mfs_buf_puts(b, "NIL");
    }
}

static bool type_is(const imap_part *e, const char *t, const char *st)
{
    if (!e->type) return false;
    if (strcasecmp(e->type, t) != 0) return false;
    return st == NULL || strcasecmp(e->subtype, st) == 0;
}

static void render_common_ext(mfs_buf *b, const imap_part *e)
{
    mfs_buf_putc(b, ' ');
    if (!e->disposition) {
        mfs_buf_puts(b, "NIL");
    } else {
        mfs_buf_putc(b, '(');
        mfs_buf_puts(b, e->disposition);
        mfs_buf_putc(b, ' ');
        put_list(b, e->disposition_params);
        mfs_buf_putc(b, ')');
    }
    mfs_buf_putc(b, ' ');
    put_list(b, e->language);
    mfs_buf_putc(b, ' ');
    put_text(b, e->location);
}

void imap_bodystructure_write(mfs_buf *b, const imap_part *e, bool ext)
{
    mfs_buf_putc(b, '(');
    if (e->kind == IMAP_PART_MULTIPART) {
        if (!e->first_child) mfs_buf_puts(b, ext ? EMPTY_BODY_EXT : EMPTY_BODY);
        for (const imap_part *c = e->first_child; c; c = c->next)
            imap_bodystructure_write(b, c, ext);
        mfs_buf_putc(b, ' ');
        if (e->subtype)
            put_string(b, e->subtype);
        else
            mfs_buf_puts(b, "\"x-unknown\"");
        if (ext) {
            mfs_buf_putc(b, ' ');
            put_list(b, e->params);
            render_common_ext(b, e);
        }
        mfs_buf_putc(b, ')');
        return;
    }
    bool text;
    if (e->kind == IMAP_PART_MESSAGE && type_is(e, "message", "rfc822")) {
        /* Dovecot writes a message/rfc822 part's type in lower case, whatever the message says */
        mfs_buf_puts(b, "\"message\" \"rfc822\"");
        text = false;
    } else if (e->type) {
        put_string(b, e->type);
        mfs_buf_putc(b, ' ');
        put_string(b, e->subtype);
        text = strcasecmp(e->type, "text") == 0;
    } else if (e->digest_default) {
        mfs_buf_puts(b, "\"message\" \"rfc822\"");
        text = false;
    } else {
        mfs_buf_puts(b, "\"text\" \"plain\"");
        text = true;
    }
    mfs_buf_putc(b, ' ');
    if (!e->params && !text) {
        mfs_buf_puts(b, "NIL");
    } else {
        mfs_buf_putc(b, '(');
        if (e->params) mfs_buf_puts(b, e->params);
        if (text && !e->has_charset)
            mfs_buf_puts(b, e->params ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
        mfs_buf_putc(b, ')');
    }
    mfs_buf_putc(b, ' ');
    put_text(b, e->id);
    mfs_buf_putc(b, ' ');
    put_text(b, e->description);
    mfs_buf_putc(b, ' ');
    if (e->encoding)
        put_string(b, e->encoding);
    else
        mfs_buf_puts(b, "\"7bit\"");
    char num[48];
    int k = snprintf(num, sizeof(num), " %llu", (unsigned long long)e->size);
    mfs_buf_append(b, num, (size_t)k);
    uint64_t lines = e->lines;
    if (text) {
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        mfs_buf_append(b, num, (size_t)k);
    } else if (e->kind == IMAP_PART_MESSAGE) {
        mfs_buf_putc(b, ' ');
        if (e->message) {
            imap_envelope_write(b, &e->message->envelope);
            mfs_buf_putc(b, ' ');
            imap_bodystructure_write(b, e->message, ext);
        } else {
            mfs_buf_puts(b, ext ? IMAP_ENVELOPE_EMPTY " " EMPTY_BODY_EXT
                                : IMAP_ENVELOPE_EMPTY " " EMPTY_BODY);
        }
        k = snprintf(num, sizeof(num), " %llu", (unsigned long long)lines);
        mfs_buf_append(b, num, (size_t)k);
    }
    if (ext) {
        mfs_buf_putc(b, ' ');
        put_text(b, e->md5);
        render_common_ext(b, e);
    }
    mfs_buf_putc(b, ')');
}
