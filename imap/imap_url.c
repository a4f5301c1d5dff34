/* imap_url.c: IMAP URLs (RFC 5092) naming a message or a part of one, for CATENATE */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_url.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %-decodes S[0, LEN) into OUT (of OUTLEN bytes, NUL-terminated); -1 on a bad escape, a NUL or
 * no room. */
static int pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len) return -1;
            int h = hexval(s[i + 1]), l = h < 0 ? -1 : hexval(s[i + 2]);
            if (l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || n + 1 >= outlen) return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* A decimal number of at most MAXD digits, not starting with 0 unless ZERO; -1 if not. */
static int number(const char *s, size_t len, unsigned maxd, bool zero, uint64_t *out)
{
    if (len == 0 || len > maxd || (!zero && s[0] == '0')) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* If S[0, LEN) starts with ";KEY=" (any case), the length of that prefix; else 0. */
static size_t key(const char *s, size_t len, const char *k)
{
    size_t kl = strlen(k);
    if (len < kl + 2 || s[0] != ';' || strncasecmp(s + 1, k, kl) != 0 || s[kl + 1] != '=') return 0;
    return kl + 2;
}

static int fail(const char **why, const char *w)
{
    *why = w;
    return -1;
}

/* The path after the server part: "mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o.l]" */
static int parse_path(const char *p, size_t len, imap_url *u, const char **why)
{
    /* the mailbox ends at the first ';' (a mailbox name's ';' is %-encoded) */
    const char *semi = memchr(p, ';', len);
    if (!semi) return fail(why, "the URL names no message (no ;UID=)");
    size_t ml = (size_t)(semi - p);
    if (ml && p[ml - 1] == '/') ml--;
    if (ml == 0) return fail(why, "the URL names no mailbox");
    if (pct_decode(p, ml, u->mailbox, sizeof u->mailbox) < 0)
        return fail(why, "the URL's mailbox name is badly %-encoded or too long");
    const char *q = semi, *end = p + len;
    size_t k;
    uint64_t v;
    if ((k = key(q, (size_t)(end - q), "UIDVALIDITY")) != 0) {
        const char *n = q + k, *e = n;
        while (e < end && *e != '/' && *e != ';')
            e++;
        if (number(n, (size_t)(e - n), 10, false, &v) < 0 || v > UINT32_MAX)
            return fail(why, "the URL's UIDVALIDITY is not a number from 1 to 4294967295");
        u->uidvalidity = (uint32_t)v;
        q = e;
    }
    if (q < end && *q == '/') q++;
    if ((k = key(q, (size_t)(end - q), "UID")) == 0)
        return fail(why, "the URL names no message (no ;UID=)");
    const char *n = q + k, *e = n;
    while (e < end && *e != '/' && *e != ';')
        e++;
    if (number(n, (size_t)(e - n), 10, false, &v) < 0 || v > UINT32_MAX)
        return fail(why, "the URL's UID is not a number from 1 to 4294967295");
    u->uid = (uint32_t)v;
    q = e;
    if (q < end && *q == '/' && (k = key(q + 1, (size_t)(end - q - 1), "SECTION")) != 0) {
        n = q + 1 + k;
        e = n;
        while (e < end && *e != '/' && *e != ';')
            e++;
        if (e == n || pct_decode(n, (size_t)(e - n), u->section, sizeof u->section) < 0)
            return fail(why, "the URL's SECTION is empty, badly %-encoded or too long");
        q = e;
    }
    if (q < end && *q == '/' && (k = key(q + 1, (size_t)(end - q - 1), "PARTIAL")) != 0) {
        n = q + 1 + k;
        e = n;
        while (e < end && isdigit((unsigned char)*e))
            e++;
        if (number(n, (size_t)(e - n), 19, true, &u->partial_off) < 0)
            return fail(why, "the URL's PARTIAL needs an offset: ;PARTIAL=offset[.length]");
        if (e < end && *e == '.') {
            n = ++e;
            while (e < end && isdigit((unsigned char)*e))
                e++;
            if (number(n, (size_t)(e - n), 19, true, &u->partial_len) < 0 || !u->partial_len)
                return fail(why, "the URL's PARTIAL length is not a number from 1");
        }
        u->partial = true;
        q = e;
    }
    if (q < end && *q == '/') q++;
    if (q < end) {
        if (key(q, (size_t)(end - q), "EXPIRE") || key(q, (size_t)(end - q), "URLAUTH"))
            return fail(why, "URLAUTH URLs are not supported (mailfs has no URLAUTH)");
        return fail(why, "the URL has something after its UID, SECTION and PARTIAL");
    }
    return 0;
}

int imap_url_parse(const char *s, size_t len, imap_url *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || len > IMAP_URL_MAX) return fail(why, "the URL is empty or too long");
    if (memchr(s, '\0', len)) return fail(why, "the URL holds a NUL");
    const char *p = s;
    size_t n = len;
    if (n > 7 && strncasecmp(p, "imap://", 7) == 0) {
        const char *auth = p + 7, *slash = memchr(auth, '/', n - 7);
        if (!slash) return fail(why, "the URL names no mailbox");
        const char *at = NULL;
        for (const char *c = auth; c < slash; c++)
            if (*c == '@') at = c;
        if (at) {
            const char *ue = memchr(auth, ';', (size_t)(at - auth));
            if (!ue) ue = at;
            if (ue == auth || pct_decode(auth, (size_t)(ue - auth), out->user, sizeof out->user))
                return fail(why, "the URL's user name is empty or badly %-encoded");
        }
        if ((at ? at + 1 : auth) == slash) return fail(why, "the URL names no server");
        n -= (size_t)(slash - p);
        p = slash;
    }
    if (n == 0 || p[0] != '/') return fail(why, "the URL must start with imap:// or /");
    return parse_path(p + 1, n - 1, out, why);
}
