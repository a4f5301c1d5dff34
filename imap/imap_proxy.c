/* imap_proxy.c: address ranges (CIDR) and the PROXY protocol v2 header */
#include "imap/imap_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- address ranges -------------------------------------------------------------------- */

int imap_net_parse(const char *s, imap_net *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host)) return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    imap_net n = {0};
    unsigned max;
    if (inet_pton(AF_INET, host, n.addr) == 1) {
        n.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, n.addr) == 1) {
        n.family = AF_INET6;
        max = 128;
    } else {
        return -EINVAL;
    }
    n.bits = max;
    if (slash) {
        const char *d = slash + 1;
        if (*d < '0' || *d > '9' || strlen(d) > 3) return -EINVAL;
        char *end;
        unsigned long b = strtoul(d, &end, 10);
        if (*end || b > max) return -EINVAL;
        n.bits = (unsigned)b;
    }
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = n.bits > i * 8 ? n.bits - i * 8 : 0;
        if (keep < 8) n.addr[i] &= (unsigned char)(0xff00u >> keep);
    }
    if (n.family == AF_INET6 && n.bits >= 96 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)n.addr)) {
        /* ::ffff:10.0.0.0/104 is 10.0.0.0/8: matched as IPv4, as mapped addresses are */
        n.family = AF_INET;
        memmove(n.addr, n.addr + 12, 4);
        memset(n.addr + 4, 0, 12);
        n.bits -= 96;
    }
    *out = n;
    return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff00u >> rest);
    return (a[whole] & mask) == (b[whole] & mask);
}

bool imap_net_match(const imap_net *nets, size_t n, const struct sockaddr *sa)
{
    int family;
    const unsigned char *a;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = AF_INET6;
        a = a6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            a += 12;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (nets[i].family == family && prefix_equal(nets[i].addr, a, nets[i].bits)) return true;
    return false;
}

/* ---- PROXY protocol v2 ------------------------------------------------------------------ */

static const unsigned char sig[IMAP_PROXY_SIG_LEN] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

enum {
    CMD_LOCAL = 0x0,
    CMD_PROXY = 0x1,
    FAM_INET = 0x1,
    FAM_INET6 = 0x2,
    PROTO_STREAM = 0x1,
    TLV_SSL = 0x20,
    CLIENT_SSL = 0x01,
};

static int bad(const char **why, const char *text, int rc)
{
    if (why) *why = text;
    return rc;
}

int imap_proxy_parse(const void *buf, size_t len, size_t *need, imap_proxy_info *info,
                     const char **why)
{
    const unsigned char *b = buf;
    *need = IMAP_PROXY_FIXED_LEN;
    size_t n = len < IMAP_PROXY_SIG_LEN ? len : IMAP_PROXY_SIG_LEN;
    if (memcmp(b, sig, n) != 0) return bad(why, "no PROXY protocol v2 signature", -EINVAL);
    if (len > IMAP_PROXY_SIG_LEN && (b[12] >> 4) != 2)
        return bad(why, "not PROXY protocol version 2", -EINVAL);
    if (len > IMAP_PROXY_SIG_LEN && (b[12] & 0xf) != CMD_LOCAL && (b[12] & 0xf) != CMD_PROXY)
        return bad(why, "unknown PROXY command", -EINVAL);
    if (len < IMAP_PROXY_FIXED_LEN) return 0;
    size_t body = (size_t)b[14] << 8 | b[15];
    if (IMAP_PROXY_FIXED_LEN + body > IMAP_PROXY_HEADER_MAX)
        return bad(why, "PROXY header too long", -E2BIG);
    *need = IMAP_PROXY_FIXED_LEN + body;
    if (len < *need) return 0;

    memset(info, 0, sizeof(*info));
    if ((b[12] & 0xf) == CMD_LOCAL) { /* the proxy itself: the block is ignored */
        info->local = true;
        return 1;
    }
    unsigned fam = b[13] >> 4, proto = b[13] & 0xf;
    const unsigned char *p = b + IMAP_PROXY_FIXED_LEN, *end = p + body;
    if (proto != PROTO_STREAM || (fam != FAM_INET && fam != FAM_INET6))
        return bad(why, "PROXY header names no TCP over IPv4 or IPv6", -EINVAL);
    if (fam == FAM_INET) {
        if (body < 12) return bad(why, "PROXY header too short for IPv4 addresses", -EINVAL);
        struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
        p += 12;
    } else {
        if (body < 36) return bad(why, "PROXY header too short for IPv6 addresses", -EINVAL);
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
        p += 36;
    }
    /* type-length-value fields: each must fit exactly */
    while (p < end) {
        if (end - p < 3) return bad(why, "truncated PROXY header field", -EINVAL);
        unsigned type = p[0];
        size_t vlen = (size_t)p[1] << 8 | p[2];
        p += 3;
        if ((size_t)(end - p) < vlen) return bad(why, "truncated PROXY header field", -EINVAL);
        if (type == TLV_SSL) {
            if (vlen < 5) return bad(why, "PROXY SSL field too short", -EINVAL);
            if (p[0] & CLIENT_SSL) info->ssl = true;
        }
        p += vlen;
    }
    return 1;
}
