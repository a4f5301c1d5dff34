/* imap_sasl.c: decoding SASL PLAIN responses (RFC 4616): base64, then authzid, user, password */
#include "imap/imap_sasl.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

int imap_sasl_plain_split(const char *b64, unsigned char *buf, const char **authz, size_t *al,
                          const char **user, size_t *ul, const char **pass, size_t *pl)
{
    size_t len = strlen(b64);
    if (len > IMAP_SASL_B64_MAX || len % 4 != 0) return IMAP_SASL_BAD_BASE64;
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len) : 0;
    if (n < 0) return IMAP_SASL_BAD_BASE64;
    if (len >= 1 && b64[len - 1] == '=') n--;
    if (len >= 2 && b64[len - 2] == '=') n--;
    buf[n] = '\0';
    const char *a = (const char *)buf;
    const char *nul1 = memchr(buf, '\0', (size_t)n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - a)) : NULL;
    if (!nul1 || !nul2) return IMAP_SASL_MALFORMED;
    *authz = a;
    *al = (size_t)(nul1 - a);
    *user = nul1 + 1;
    *ul = (size_t)(nul2 - nul1 - 1);
    *pass = nul2 + 1;
    *pl = (size_t)n - (size_t)(nul2 + 1 - a);
    return 0;
}

bool imap_sasl_authz_ok(const char *authz, size_t al, const char *user, size_t ul)
{
    return al == 0 || (al == ul && memcmp(authz, user, ul) == 0);
}

int imap_sasl_plain_decode(const char *b64, char *user, size_t userlen, char *pass, size_t passlen)
{
    user[0] = pass[0] = '\0';
    unsigned char buf[IMAP_SASL_BUF];
    const char *a, *u, *p;
    size_t al, ul, pl;
    int rc = imap_sasl_plain_split(b64, buf, &a, &al, &u, &ul, &p, &pl);
    if (rc) goto out;
    if (ul >= userlen || pl >= passlen || memchr(p, '\0', pl)) {
        rc = IMAP_SASL_TOO_LONG;
        goto out;
    }
    if (!imap_sasl_authz_ok(a, al, u, ul)) {
        rc = IMAP_SASL_AUTHZ;
        goto out;
    }
    memcpy(user, u, ul);
    user[ul] = '\0';
    memcpy(pass, p, pl);
    pass[pl] = '\0';
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}
