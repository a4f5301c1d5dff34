/* fuzz_sasl.c: libFuzzer target: the SASL PLAIN decoder and the base64/QP/RFC 2047 decoders */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "imap/imap_msg.h"
#include "imap/imap_sasl.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * Three uses of the input: as an AUTHENTICATE PLAIN response (it must be decoded or refused,
 * the results always NUL-terminated and in bounds); split into authzid, user and password
 * and base64-encoded the way a client does (then decoding must give them back exactly, or
 * refuse them for the documented reasons); and as base64, quoted-printable and encoded-word
 * text for the FETCH/SEARCH decoders (base64 of the input must decode to the input).
 */

#define USER_LEN 65
#define PASS_LEN 1024

static void b64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static void decode_any(const char *s)
{
    char user[USER_LEN], pass[PASS_LEN];
    memset(user, 'u', sizeof user);
    memset(pass, 'p', sizeof pass);
    int rc = imap_sasl_plain_decode(s, user, sizeof user, pass, sizeof pass);
    CHECK(rc == 0 || rc == IMAP_SASL_BAD_BASE64 || rc == IMAP_SASL_MALFORMED ||
          rc == IMAP_SASL_TOO_LONG || rc == IMAP_SASL_AUTHZ);
    CHECK(memchr(user, '\0', sizeof user) != NULL);
    CHECK(memchr(pass, '\0', sizeof pass) != NULL);
    if (rc != 0) CHECK(user[0] == '\0' && pass[0] == '\0');
}

/* A client's response for AUTHZ NUL USER NUL PASS must decode to exactly USER and PASS. */
static void round_trip(const unsigned char *d, size_t n)
{
    if (n < 2) return;
    size_t a = d[0] % 8, u = d[1] % 80;
    d += 2, n -= 2;
    if (a > n) a = n;
    if (u > n - a) u = n - a;
    bool same_authz = a == 0 && (n & 1); /* sometimes authzid == user */
    const unsigned char *authz = d, *user = d + a, *pass = d + a + u;
    size_t pl = n - a - u;
    if (same_authz) authz = user, a = u;
    unsigned char *plain = malloc(a + u + pl + 2);
    char *b64 = malloc(4 * ((a + u + pl + 2) / 3 + 1) + 1);
    CHECK(plain && b64);
    memcpy(plain, authz, a);
    plain[a] = '\0';
    memcpy(plain + a + 1, user, u);
    plain[a + 1 + u] = '\0';
    memcpy(plain + a + u + 2, pass, pl);
    b64_encode(plain, a + u + pl + 2, b64);

    char ou[USER_LEN], op[PASS_LEN];
    int rc = imap_sasl_plain_decode(b64, ou, sizeof ou, op, sizeof op);
    bool nul_in_authz = memchr(authz, '\0', a) != NULL, nul_in_user = memchr(user, '\0', u) != NULL;
    bool nul_in_pass = memchr(pass, '\0', pl) != NULL;
    if (strlen(b64) > 4096) {
        CHECK(rc == IMAP_SASL_BAD_BASE64);
    } else if (nul_in_authz || nul_in_user) {
        /* the NULs are read as separators: some other split, or refused */
        CHECK(rc != IMAP_SASL_BAD_BASE64);
    } else if (u >= sizeof ou || pl >= sizeof op || nul_in_pass) {
        CHECK(rc == IMAP_SASL_TOO_LONG);
    } else if (a > 0 && (a != u || memcmp(authz, user, u) != 0)) {
        CHECK(rc == IMAP_SASL_AUTHZ);
    } else {
        CHECK(rc == 0);
        CHECK(strlen(ou) == u && memcmp(ou, user, u) == 0);
        CHECK(strlen(op) == pl && memcmp(op, pass, pl) == 0);
    }
    /* every prefix of the response that is a multiple of 4 long decodes or is refused */
    size_t bl = strlen(b64);
    for (size_t cut = 0; cut < bl; cut += 4 * (1 + bl / 32)) {
        char save = b64[cut];
        b64[cut] = '\0';
        decode_any(b64);
        b64[cut] = save;
    }
    free(plain);
    free(b64);
}

static void content_decoders(const unsigned char *d, size_t n)
{
    const char *s = (const char *)d;
    mfs_buf out = {0};
    static const char *const encs[] = {"base64", "quoted-printable", "7bit", "8BIT", "binary",
                                       "",       "x-uuencode"};
    for (size_t i = 0; i < sizeof encs / sizeof *encs; i++) {
        out.len = 0;
        int rc = imap_cte_decode(encs[i], s, n, &out);
        CHECK(rc == 0 || (rc == -1 && i == 6));
        CHECK(out.data != NULL && out.data[out.len] == '\0');
        if (i == 0) CHECK(out.len <= n * 3 / 4 + 3);
        if (i == 1 || i == 2 || i == 3) CHECK(out.len <= 2 * n);
        if (i == 4) CHECK(out.len == n && memcmp(out.data, s, n) == 0);
    }
    /* base64 of the input decodes to the input, also with line breaks every 76 characters */
    char *b64 = malloc(4 * (n / 3 + 1) + 1), *wrapped = malloc(2 * (4 * (n / 3 + 1) + 1));
    CHECK(b64 && wrapped);
    b64_encode(d, n, b64);
    size_t bl = strlen(b64), wl = 0;
    for (size_t i = 0; i < bl; i++) {
        if (i && i % 76 == 0) wrapped[wl++] = '\r', wrapped[wl++] = '\n';
        wrapped[wl++] = b64[i];
    }
    out.len = 0;
    CHECK(imap_cte_decode("BASE64", b64, bl, &out) == 0);
    CHECK(out.len == n && (n == 0 || memcmp(out.data, d, n) == 0));
    out.len = 0;
    CHECK(imap_cte_decode("base64", wrapped, wl, &out) == 0);
    CHECK(out.len == n && (n == 0 || memcmp(out.data, d, n) == 0));
    free(b64);
    free(wrapped);

    /* encoded words: anything goes, the output stays a NUL-terminated buffer */
    if (n <= 4096) {
        out.len = 0;
        imap_mime_words_decode(s, n, &out);
        CHECK(out.data != NULL && out.data[out.len] == '\0');
    }
    mfs_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    decode_any(s);
    free(s);
    round_trip(data, size);
    content_decoders(data, size);
    return 0;
}
