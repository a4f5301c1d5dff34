/* imap_buf.h: a growable byte buffer for building IMAP responses and holding input */
#ifndef MAILFS_IMAP_BUF_H
#define MAILFS_IMAP_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A byte buffer. Zero-initialise it ({0}) before use; free it with imap_buf_free(). DATA is
 * always NUL-terminated (when non-NULL) so it can be printed, but may hold NUL bytes inside.
 * Allocation failure aborts the process, as Dovecot's pools do: a half-built response is
 * never useful. */
typedef struct imap_buf {
    char *data;
    size_t len;
    size_t cap;
} imap_buf;

void imap_buf_reserve(imap_buf *b, size_t extra);
void imap_buf_append(imap_buf *b, const void *data, size_t len);
void imap_buf_puts(imap_buf *b, const char *s);
void imap_buf_putc(imap_buf *b, char c);
void imap_buf_printf(imap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_buf_vprintf(imap_buf *b, const char *fmt, va_list ap);
/* Appends N in decimal (the FETCH loop's numbers, without printf's cost). */
void imap_buf_put_u64(imap_buf *b, uint64_t n);
/* Drops the first N bytes. */
void imap_buf_consume(imap_buf *b, size_t n);
void imap_buf_truncate(imap_buf *b, size_t len);
void imap_buf_free(imap_buf *b);

#endif
