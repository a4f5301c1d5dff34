/* buf.h: the one growable byte buffer of the protocol library, the store, the server and the mount
 */
#ifndef MAILFS_BUF_H
#define MAILFS_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The one byte buffer of every part of mailfs: IMAP responses and input, the store's MIME
 * summaries and name lists, the mount's files being written. Libc only, so the IMAP protocol
 * library builds on it without depending on the store.
 *
 * Lifetime: zero-initialise it ({0}); mfs_buf_free() releases it and leaves it empty and
 * usable again. DATA is NULL until the first byte is added, then always NUL-terminated (so it
 * can be printed) but it may hold NUL bytes inside: LEN counts them. Anything that adds bytes
 * may move DATA: never keep a pointer into it across an append, reserve or resize. The buffer
 * is not thread-safe; whoever owns the structure owning it guards it.
 *
 * Out of memory: the one policy of mailfs, in the server, the mount, the store and the tools.
 * A failed allocation is never ignored. Where the failure can be handed to the one request
 * that needed the memory without losing anything, it is: the "try" functions below return
 * -ENOMEM and leave the buffer as it was, the store's functions return -ENOMEM and leave the
 * store unchanged (store.h), the mount answers ENOMEM to the program writing (fs_int.h), the
 * server answers NO (imap_int.h). Where it cannot, because the memory is the middle of a
 * response or a parse whose half is of no use, the process stops: the mfs_buf_*() functions
 * without "try" print "mailfs: out of memory (...)" and abort, as Dovecot's pools do. Their
 * sizes are bounded by the limits on input (line, literal and message sizes), so they fail
 * only when the machine has no memory left, and systemd or the admin restarts the server;
 * the mount uses only the "try" forms for what it holds unstored (files being written).
 */
typedef struct mfs_buf {
    char *data;
    size_t len;
    size_t cap; /* bytes allocated at DATA, more than LEN once DATA is non-NULL */
} mfs_buf;

/* Makes room for EXTRA more bytes (and the terminating NUL) without moving DATA again. */
void mfs_buf_reserve(mfs_buf *b, size_t extra);
void mfs_buf_append(mfs_buf *b, const void *data, size_t len);
void mfs_buf_puts(mfs_buf *b, const char *s);
void mfs_buf_putc(mfs_buf *b, char c);
void mfs_buf_printf(mfs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mfs_buf_vprintf(mfs_buf *b, const char *fmt, va_list ap);
/* Appends N in decimal (the FETCH loop's numbers, without printf's cost). */
void mfs_buf_put_u64(mfs_buf *b, uint64_t n);
/* Drops the first N bytes. */
void mfs_buf_consume(mfs_buf *b, size_t n);
/* Cuts the buffer to LEN bytes if it is longer. */
void mfs_buf_truncate(mfs_buf *b, size_t len);

/* The "try" forms: 0, or -ENOMEM with the buffer unchanged (see the policy above). */
int mfs_buf_try_reserve(mfs_buf *b, size_t extra);
int mfs_buf_try_append(mfs_buf *b, const void *data, size_t len);
/* Sets the length to LEN: new bytes are zero; a buffer cut to under a quarter of a large
 * allocation gives the rest back. */
int mfs_buf_try_resize(mfs_buf *b, size_t len);

void mfs_buf_free(mfs_buf *b);

#endif
