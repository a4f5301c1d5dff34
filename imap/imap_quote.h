/* imap_quote.h: writing strings in IMAP syntax (quoted, literal, atom, NIL) */
#ifndef MAILFS_IMAP_QUOTE_H
#define MAILFS_IMAP_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/buf.h"

/* Appends S as an IMAP string: quoted when it can be, a literal {n} otherwise: for CR, LF or
 * NUL, for 8-bit bytes unless UTF8 is true and S is valid UTF-8, for more than 4 characters to
 * escape ('"', '\\') or more than 4096 bytes (the reasons are at the top of imap_quote.c).
 * UTF8: the client enabled UTF-8 (UTF8=ACCEPT); text rendered for every client (the MIME
 * summary) passes false. */
void imap_quote_string(mfs_buf *b, const char *s, size_t len, bool utf8);

/* Appends S as a literal ({n} CRLF, then S), whatever it holds. */
void imap_quote_literal(mfs_buf *b, const char *s, size_t len);

/* As imap_quote_string, but NIL when S is NULL. */
void imap_quote_nstring(mfs_buf *b, const char *s, size_t len, bool utf8);

/* As imap_quote_string, but a bare atom when S is one (not NIL, not empty). */
void imap_quote_astring(mfs_buf *b, const char *s, size_t len, bool utf8);

#endif
