/* imap_msg.h: reading message text for FETCH and SEARCH (no store access) */
#ifndef MAILFS_IMAP_MSG_H
#define MAILFS_IMAP_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "imap/imap_buf.h"

/* Length of S with every bare LF counted as CRLF. */
size_t imap_crlf_len(const char *s, size_t len);
/* Appends S with every bare LF written as CRLF. */
void imap_crlf_append(imap_buf *b, const char *s, size_t len);
/* Splits a message at its first empty line: the header block (blank line included) is
 * DATA[0, *hdr_len), the body starts at *body_off. */
void imap_msg_split(const char *data, size_t len, size_t *hdr_len, size_t *body_off);
/* Appends the fields of header block H that are (or, with NOT, are not) in FIELDS, with CRLF
 * line ends, then the blank line (BODY[HEADER.FIELDS ...]). */
void imap_header_filter(imap_buf *out, const char *h, size_t hlen, char **fields, size_t n,
                        bool not );
/* Appends the unfolded value of field NAME (every such field, newline-separated, with ALL);
 * returns true if there was one. */
bool imap_header_get(const char *h, size_t hlen, const char *name, bool all, imap_buf *out);
/* Decodes RFC 2047 encoded words into UTF-8 (iconv for other charsets). */
void imap_mime_words_decode(const char *s, size_t len, imap_buf *out);
/* Decodes a body in Content-Transfer-Encoding ENC; -1 if ENC is unknown. 7bit/8bit text gets
 * CRLF line ends. */
int imap_cte_decode(const char *enc, const char *s, size_t len, imap_buf *out);
/* Appends S converted from CHARSET to UTF-8 (the bytes as they are if iconv does not know it). */
void imap_charset_to_utf8(const char *charset, const char *s, size_t len, imap_buf *out);
/* ASCII case-insensitive substring search. */
bool imap_ci_contains(const char *hay, size_t hlen, const char *needle, size_t nlen);

#endif
