/* mime_int.h: what the files of the MIME summary parser share (store/mime*.c only) */
#ifndef MAILFS_MIME_INT_H
#define MAILFS_MIME_INT_H

#include "store/mime.h"

#include "imap/imap_bodystructure.h"
#include "store/buf.h"
#include "imap/imap_envelope.h"
#include "imap/imap_quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIME_MAX_FIELD (64 * 1024)
#define MIME_MAX_DEPTH 64
#define MIME_MAX_PARTS 5000
#define MIME_MAX_BOUNDARY 4096
#define MIME_LINE_CAP (MIME_MAX_BOUNDARY + 256)
#define MIME_TEXT_BUDGET (8u << 20)
#define MIME_NONE UINT32_MAX

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
    /* what imap_part (imap/imap_bodystructure.h) and imap_envelope describe, NULL if absent */
    char *ctype, *csubtype; /* as written */
    char *params;           /* IMAP text: list items without parens */
    bool has_charset;
    char *boundary;                  /* until the header ends */
    char *id, *desc, *md5, *loc;     /* IMAP strings */
    char *cte;                       /* as written */
    char *disp, *disp_params, *lang; /* IMAP text */
    char *env[IMAP_ENV_N];           /* IMAP text; address lists without parens */
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

static inline bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline void set_lower(char *dst, size_t sz, const char *s, size_t n)
{
    size_t k;
    for (k = 0; k + 1 < sz && k < n; k++) {
        char c = s[k];
        dst[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    dst[k] = '\0';
}

static inline bool type_is(const struct ent *e, const char *t, const char *st)
{
    if (!e->ctype) return false;
    if (strcasecmp(e->ctype, t) != 0) return false;
    return st == NULL || strcasecmp(e->csubtype, st) == 0;
}

static inline uint64_t crlf_len(struct cnt a, struct cnt b)
{
    return (b.off - a.off) + (b.bare - a.bare);
}

/* mime_header.c: processes the header field collected in p->field for entity E. */
void st_mime_field_process(store_mime_parser *p, struct ent *e);
/* mime_header.c: reads a quoted string at v[*i] == '"' into OUT (unescaped); false when it is
 * not closed. */
bool st_mime_lex_quoted(const char *v, size_t n, size_t *i, mfs_buf *out);
/* mime_address.c: appends the addresses of address list V to OUT as ENVELOPE addresses
 * (imap_envelope_address); returns how many. */
size_t st_mime_addresses(const char *v, size_t n, mfs_buf *out);
/* mime_blob.c: the blob of a finished parse (see store_mime_finish). */
int st_mime_blob_write(store_mime_parser *p, void **blob, size_t *bloblen);

#endif
