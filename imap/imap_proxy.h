/* imap_proxy.h: address ranges (CIDR) and the PROXY protocol v2 header (no store, no sockets) */
#ifndef MAILFS_IMAP_PROXY_H
#define MAILFS_IMAP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- address ranges -------------------------------------------------------------------- */

/* An IPv4 or IPv6 network: the first BITS bits of ADDR (the rest are zero). */
typedef struct imap_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
} imap_net;

/* Parses "10.0.0.0/8", "2001:db8::/32" or a single address ("192.0.2.7", "::1"). Bits past the
 * prefix are cleared. Returns 0, or -EINVAL if S is not such a range. */
int imap_net_parse(const char *s, imap_net *out);

/* True if SA (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as IPv4) lies in one of
 * the N networks of NETS. */
bool imap_net_match(const imap_net *nets, size_t n, const struct sockaddr *sa);

/* ---- PROXY protocol v2 ------------------------------------------------------------------ */

/* A proxy in front of the server (a TLS terminator, a load balancer) starts each connection
 * with a binary header naming the client's address (haproxy's proxy-protocol.txt, section
 * 2.2): a 12-byte signature, version and command, family and transport, the length of what
 * follows, the addresses, then optional type-length-value fields. */

#define IMAP_PROXY_SIG_LEN 12
#define IMAP_PROXY_FIXED_LEN 16    /* signature, version/command, family, length */
#define IMAP_PROXY_HEADER_MAX 1024 /* longer headers are refused (inet needs 16 + 36 + TLVs) */

typedef struct imap_proxy_info {
    /* LOCAL command (the proxy's own health check) or a family other than TCP over IPv4/IPv6:
     * the connection's own addresses stand; SRC and DST are not set */
    bool local;
    struct sockaddr_storage src, dst; /* the client and the address it connected to */
    bool ssl; /* a PP2_TYPE_SSL field says the client reached the proxy over TLS */
} imap_proxy_info;

/* Parses the LEN bytes of BUF received so far. Returns 1 when a whole valid header is there:
 * it is *NEED bytes long and *INFO describes it. Returns 0 when more is needed: *NEED is the
 * header's length as far as it is known (16 until the fixed part is in), so the caller can read
 * exactly that much and never takes a byte that follows the header. Returns -EINVAL when the
 * bytes cannot start a valid header (checked as early as possible: a wrong first byte is
 * enough), -E2BIG when it would be longer than IMAP_PROXY_HEADER_MAX. *WHY (if not NULL) is
 * set to a static text for errors. */
int imap_proxy_parse(const void *buf, size_t len, size_t *need, imap_proxy_info *info,
                     const char **why);

#endif
