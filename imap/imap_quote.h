/* imap_quote.h: writing strings in IMAP syntax (quoted, literal, atom, NIL) */
#ifndef MAILFS_IMAP_QUOTE_H
#define MAILFS_IMAP_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "imap/imap_buf.h"

/* Appends S as an IMAP string: quoted when it can be, a literal {n} otherwise (CR, LF, NUL,
 * 8-bit bytes when UTF8 is false, or longer than 1024 bytes). */
void imap_quote_string(imap_buf *b, const char *s, size_t len, bool utf8);

/* Appends S as the MIME summary quotes it (imap/imap_envelope.c, imap_bodystructure.c): quoted,
 * or a literal for CR, LF, NUL or 8-bit bytes, more than 4 characters to escape, or more than
 * 4096 bytes. A second rule beside imap_quote_string until the two are merged. */
void imap_quote_summary_string(imap_buf *b, const char *s, size_t len);

/* Appends S as a literal ({n} CRLF, then S), whatever it holds. */
void imap_quote_literal(imap_buf *b, const char *s, size_t len);

/* As imap_quote_string, but NIL when S is NULL. */
void imap_quote_nstring(imap_buf *b, const char *s, size_t len, bool utf8);

/* As imap_quote_string, but a bare atom when S is one (not NIL, not empty). */
void imap_quote_astring(imap_buf *b, const char *s, size_t len, bool utf8);

#endif
