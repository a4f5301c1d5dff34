/* imap_sasl.h: decoding the SASL PLAIN response of AUTHENTICATE (RFC 4616) */
#ifndef MAILFS_IMAP_SASL_H
#define MAILFS_IMAP_SASL_H

#include <stddef.h>

enum {
    IMAP_SASL_BAD_BASE64 = -1, /* not base64 (or longer than 4096 characters): BAD */
    IMAP_SASL_MALFORMED = -2,  /* not "authzid NUL authcid NUL password": BAD */
    IMAP_SASL_TOO_LONG = -3,   /* the user or password does not fit, or a NUL in the password */
    IMAP_SASL_AUTHZ = -4,      /* an authorization identity other than the user */
};

/* Decodes B64 (NUL-terminated) into USER (USERLEN bytes) and PASS (PASSLEN bytes), each
 * NUL-terminated. Returns 0 or one of the IMAP_SASL_* codes; on failure USER and PASS hold
 * nothing secret. Defined in imap_auth.c. */
int imap_sasl_plain_decode(const char *b64, char *user, size_t userlen, char *pass, size_t passlen);

#endif
