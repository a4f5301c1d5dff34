/* buf.c: the one growable byte buffer (see buf.h) */
#include "store/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mfs_buf_try_reserve(mfs_buf *b, size_t extra)
{
    if (b->data && b->cap - b->len > extra) return 0;
    if (extra >= SIZE_MAX / 2 - b->len) return -ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return -ENOMEM;
    if (!b->data) d[0] = '\0';
    b->data = d;
    b->cap = cap;
    return 0;
}

/* The policy of buf.h for working memory: say so and stop. */
static void out_of_memory(size_t len, size_t extra)
{
    fprintf(stderr, "mailfs: out of memory (a buffer of %zu bytes growing by %zu): stopping\n", len,
            extra);
    abort();
}

void mfs_buf_reserve(mfs_buf *b, size_t extra)
{
    if (mfs_buf_try_reserve(b, extra)) out_of_memory(b->len, extra);
}

int mfs_buf_try_append(mfs_buf *b, const void *data, size_t len)
{
    if (mfs_buf_try_reserve(b, len)) return -ENOMEM;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void mfs_buf_append(mfs_buf *b, const void *data, size_t len)
{
    if (mfs_buf_try_append(b, data, len)) out_of_memory(b->len, len);
}

int mfs_buf_try_resize(mfs_buf *b, size_t len)
{
    if (len > b->len) {
        if (mfs_buf_try_reserve(b, len - b->len)) return -ENOMEM;
        memset(b->data + b->len, 0, len - b->len);
    }
    if (b->data) b->data[len] = '\0';
    b->len = len;
    if (b->cap > 65536 && len < b->cap / 4) { /* a large file cut short: give memory back */
        char *d = realloc(b->data, len + 1);
        if (d) {
            b->data = d;
            b->cap = len + 1;
        }
    }
    return 0;
}

void mfs_buf_puts(mfs_buf *b, const char *s)
{
    mfs_buf_append(b, s, strlen(s));
}

void mfs_buf_putc(mfs_buf *b, char c)
{
    mfs_buf_append(b, &c, 1);
}

void mfs_buf_vprintf(mfs_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    mfs_buf_reserve(b, 128);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) abort();
    if ((size_t)n >= b->cap - b->len) {
        mfs_buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void mfs_buf_printf(mfs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mfs_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void mfs_buf_put_u64(mfs_buf *b, uint64_t n)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    mfs_buf_append(b, tmp + i, sizeof tmp - i);
}

void mfs_buf_consume(mfs_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data) b->data[b->len] = '\0';
}

void mfs_buf_truncate(mfs_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void mfs_buf_free(mfs_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
