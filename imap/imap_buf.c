/* imap_buf.c: a growable byte buffer */
#include "imap/imap_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void imap_buf_reserve(imap_buf *b, size_t extra)
{
    if (b->cap - b->len > extra && b->data) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) abort();
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) abort();
    b->data = d;
    b->cap = cap;
}

void imap_buf_append(imap_buf *b, const void *data, size_t len)
{
    imap_buf_reserve(b, len);
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void imap_buf_puts(imap_buf *b, const char *s)
{
    imap_buf_append(b, s, strlen(s));
}

void imap_buf_putc(imap_buf *b, char c)
{
    imap_buf_append(b, &c, 1);
}

void imap_buf_vprintf(imap_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    imap_buf_reserve(b, 128);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) abort();
    if ((size_t)n >= b->cap - b->len) {
        imap_buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void imap_buf_printf(imap_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    imap_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void imap_buf_put_u64(imap_buf *b, uint64_t n)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    imap_buf_append(b, tmp + i, sizeof tmp - i);
}

void imap_buf_consume(imap_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data) b->data[b->len] = '\0';
}

void imap_buf_truncate(imap_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void imap_buf_free(imap_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
