/* imap_url.h: IMAP URLs (RFC 5092) that name a message or a part of one, for CATENATE */
#ifndef MAILFS_IMAP_URL_H
#define MAILFS_IMAP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_URL_MAX 2048 /* bytes of one URL */

/* One URL, taken apart and %-decoded. Every string is NUL-terminated. */
typedef struct imap_url {
    char user[256];       /* "imap://USER@host/..." (may carry ";AUTH=..." stripped); "" if none */
    char mailbox[1024];   /* the mailbox as IMAP names it (modified UTF-7 or UTF-8), %-decoded */
    uint32_t uidvalidity; /* 0: not given */
    uint32_t uid;
    char section[512]; /* "" for the whole message, else e.g. "1.2.MIME", "HEADER" */
    bool partial;
    uint64_t partial_off, partial_len; /* partial_len 0: to the end */
} imap_url;

/* Parses S[0, LEN): an absolute URL "imap://[user[;AUTH=...]@]host[:port]/PATH" or a path
 * relative to this server "/PATH", PATH being
 * "mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]" (keys in any case; RFC 5092
 * also allows ";UID=n" right after the mailbox without a '/', and that is taken too). Returns 0,
 * or -1 with *WHY saying what is wrong (a static string). URLAUTH parts (";EXPIRE=", ";URLAUTH=")
 * are refused: mailfs has no URLAUTH. */
int imap_url_parse(const char *s, size_t len, imap_url *out, const char **why);

#endif
