/* imap_preview.c: FETCH PREVIEW (RFC 8970): the start of a message's text, as one line */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"
#include "store/mime.h"

#define PREVIEW_CHARS 200    /* RFC 8970: at most 256 characters */
#define PREVIEW_SOURCE 16384 /* bytes of a part read for it: the work per message is bounded */
#define PREVIEW_PARTS 64     /* parts looked at */
#define PREVIEW_DEPTH 8

/* The first leaf part of type text/SUBTYPE under SEC (depth-first), into *OUT. */
static bool find_text(const void *blob, size_t bl, const char *sec, unsigned depth,
                      const char *subtype, unsigned *seen, store_mime_part *out)
{
    store_mime_part p;
    if (++*seen > PREVIEW_PARTS || depth > PREVIEW_DEPTH ||
        store_mime_part_find(blob, bl, sec, &p) != 0)
        return false;
    if (p.is_multipart || p.is_message) {
        uint32_t n = p.is_multipart ? p.nparts : 1;
        for (uint32_t k = 1; k <= n; k++) {
            char sub[256];
            int w = snprintf(sub, sizeof sub, "%s%s%u", sec, sec[0] ? "." : "", k);
            if (w > 0 && (size_t)w < sizeof sub &&
                find_text(blob, bl, sub, depth + 1, subtype, seen, out))
                return true;
        }
        return false;
    }
    if (strcmp(p.type, "text") != 0 || strcmp(p.subtype, subtype) != 0) return false;
    *out = p;
    return true;
}

/* Past the tag at S[I] ('<'), and for <style> and <script> past their content and end tag. */
static size_t skip_tag(const char *s, size_t n, size_t i)
{
    static const char *const raw[] = {"style", "script"};
    for (size_t r = 0; r < sizeof raw / sizeof *raw; r++) {
        size_t l = strlen(raw[r]);
        if (n - i > l + 1 && strncasecmp(s + i + 1, raw[r], l) == 0 &&
            !isalnum((unsigned char)s[i + 1 + l])) {
            for (size_t j = i + 1 + l; j + l + 2 <= n; j++)
                if (s[j] == '<' && s[j + 1] == '/' && strncasecmp(s + j + 2, raw[r], l) == 0) {
                    i = j;
                    break;
                }
            break;
        }
    }
    const char *gt = memchr(s + i, '>', n - i);
    return gt ? (size_t)(gt - s) + 1 : n;
}

/* HTML's text: tags dropped (and the content of style and script), a few entities decoded. */
static void strip_html(const char *s, size_t n, mfs_buf *out)
{
    static const struct {
        const char *ent, *text;
    } ents[] = {{"&amp;", "&"},   {"&lt;", "<"},  {"&gt;", ">"},
                {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", " "}};
    size_t i = 0;
    while (i < n) {
        if (s[i] == '<') {
            i = skip_tag(s, n, i);
            mfs_buf_putc(out, ' ');
            continue;
        }
        size_t k = 0, el = 0;
        if (s[i] == '&')
            for (; k < sizeof ents / sizeof *ents; k++) {
                el = strlen(ents[k].ent);
                if (n - i >= el && strncmp(s + i, ents[k].ent, el) == 0) break;
            }
        if (s[i] == '&' && k < sizeof ents / sizeof *ents) {
            mfs_buf_puts(out, ents[k].text);
            i += el;
        } else {
            mfs_buf_putc(out, s[i++]);
        }
    }
}

/* TEXT as one line: runs of white space and control characters as one space, trimmed, at most
 * PREVIEW_CHARS characters of valid UTF-8 (a bad byte becomes '?'). */
static void one_line(const char *s, size_t n, mfs_buf *out)
{
    size_t chars = 0, i = 0;
    bool space = true; /* drops leading white space */
    while (i < n && chars < PREVIEW_CHARS) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space) {
                mfs_buf_putc(out, ' ');
                chars++;
            }
            space = true;
            i++;
            continue;
        }
        size_t at = i;
        long cp = imap_utf8_next(s, n, &i);
        if (cp < 0) {
            mfs_buf_putc(out, '?');
            i = at + 1;
        } else if (cp == 0xa0) { /* no-break space */
            if (!space) {
                mfs_buf_putc(out, ' ');
                chars++;
            }
            space = true;
            continue;
        } else {
            mfs_buf_append(out, s + at, i - at);
        }
        space = false;
        chars++;
    }
    while (out->len && out->data[out->len - 1] == ' ')
        out->data[--out->len] = '\0';
}

void imap_preview_put(imap_client *c, mfs_buf *o, const char *data, size_t dlen, const void *blob,
                      size_t bl)
{
    store_mime_part p;
    unsigned seen = 0;
    bool html = false;
    bool found = blob && find_text(blob, bl, "", 0, "plain", &seen, &p);
    if (!found && blob) {
        seen = 0;
        found = html = find_text(blob, bl, "", 0, "html", &seen, &p);
    }
    if (!found || p.body_off > dlen || p.body_len > dlen - p.body_off) {
        mfs_buf_puts(o, "NIL");
        return;
    }
    size_t n = p.body_len < PREVIEW_SOURCE ? (size_t)p.body_len : PREVIEW_SOURCE;
    mfs_buf dec = {0}, utf = {0}, text = {0}, line = {0};
    if (imap_cte_decode(p.encoding, data + p.body_off, n, &dec) < 0) {
        mfs_buf_free(&dec);
        mfs_buf_puts(o, "NIL");
        return;
    }
    imap_charset_to_utf8(p.charset, dec.data ? dec.data : "", dec.len, &utf);
    if (html)
        strip_html(utf.data ? utf.data : "", utf.len, &text);
    else
        mfs_buf_append(&text, utf.data ? utf.data : "", utf.len);
    mfs_buf_puts(&line, "");
    one_line(text.data ? text.data : "", text.len, &line);
    imap_quote_string(o, line.data, line.len, c->utf8);
    mfs_buf_free(&dec);
    mfs_buf_free(&utf);
    mfs_buf_free(&text);
    mfs_buf_free(&line);
}
