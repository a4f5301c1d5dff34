/* imap_utf7.h: modified UTF-7 mailbox names (RFC 3501 5.1.3) and UTF-8 validation */
#ifndef MAILFS_IMAP_UTF7_H
#define MAILFS_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

/* Appends the modified UTF-7 form of UTF-8 text S (LEN bytes) to OUT. Returns 0, or -EINVAL if S
 * is not valid UTF-8 (OUT is then left as it was). */
int imap_utf7_encode(const char *s, size_t len, mfs_buf *out);

/* Appends the UTF-8 form of modified UTF-7 text S to OUT. Strict: returns -EINVAL (OUT left as
 * it was) for 8-bit or control bytes, an unterminated or malformed shift, non-zero padding bits,
 * printable ASCII encoded in base64, broken surrogate pairs, and two encoded runs in a row. */
int imap_utf7_decode(const char *s, size_t len, mfs_buf *out);

/* True if S is well-formed UTF-8 (no overlongs, surrogates or values over U+10FFFF), NUL bytes
 * allowed only with ALLOW_NUL: the one UTF-8 check of mailfs (the store's store_utf8_valid, and
 * through it the mount's, is this with ALLOW_NUL). */
bool imap_utf8_check(const char *s, size_t len, bool allow_nul);
/* The same with no NUL byte allowed. */
bool imap_utf8_valid(const char *s, size_t len);
/* Reads one UTF-8 code point at S[*I, LEN), moving *I past it: its value, or -1 for an invalid
 * sequence (overlong, surrogate, above U+10FFFF, cut short), *I unmoved. */
long imap_utf8_next(const char *s, size_t len, size_t *i);
/* Appends code point CP (at most U+10FFFF) in UTF-8. */
void imap_utf8_put(mfs_buf *b, uint32_t cp);

/* True if S has a byte >= 0x80. */
bool imap_has_8bit(const char *s, size_t len);

#endif
