/* imap_sasl.h: decoding the SASL PLAIN response of AUTHENTICATE (RFC 4616), in the protocol library
 */
#ifndef MAILFS_IMAP_SASL_H
#define MAILFS_IMAP_SASL_H

#include <stdbool.h>
#include <stddef.h>

enum {
    IMAP_SASL_BAD_BASE64 = -1, /* not base64 (or longer than 4096 characters): BAD */
    IMAP_SASL_MALFORMED = -2,  /* not "authzid NUL authcid NUL password": BAD */
    IMAP_SASL_TOO_LONG = -3,   /* the user or password does not fit, or a NUL in the password */
    IMAP_SASL_AUTHZ = -4,      /* an authorization identity other than the user */
};

/* Decodes B64 (NUL-terminated) into USER (USERLEN bytes) and PASS (PASSLEN bytes), each
 * NUL-terminated. Returns 0 or one of the IMAP_SASL_* codes; on failure USER and PASS hold
 * nothing secret. */
int imap_sasl_plain_decode(const char *b64, char *user, size_t userlen, char *pass, size_t passlen);

#define IMAP_SASL_B64_MAX 4096                        /* base64 characters in a response */
#define IMAP_SASL_BUF (IMAP_SASL_B64_MAX / 4 * 3 + 1) /* bytes to decode one into */

/* Decodes B64 into BUF (IMAP_SASL_BUF bytes) and finds the parts of "authzid NUL authcid NUL
 * password" in it, each pointing into BUF and followed by a NUL there. Returns 0,
 * IMAP_SASL_BAD_BASE64 or IMAP_SASL_MALFORMED. The caller wipes BUF. */
int imap_sasl_plain_split(const char *b64, unsigned char *buf, const char **authz, size_t *al,
                          const char **user, size_t *ul, const char **pass, size_t *pl);
/* Whether the authorization identity AUTHZ (AL bytes) is allowed for USER: only when it is
 * empty or names the user. */
bool imap_sasl_authz_ok(const char *authz, size_t al, const char *user, size_t ul);

#endif
