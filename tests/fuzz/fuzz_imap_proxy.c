/* fuzz_imap_proxy.c: libFuzzer target: the PROXY protocol v2 header parser and address ranges */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_proxy.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * The input is a connection's first bytes. They are parsed the way the server reads them, in
 * steps of exactly the length the parser asks for (so it never takes a byte past the header),
 * and whole; both must agree, and every promise of imap_proxy.h is checked: a header is never
 * longer than IMAP_PROXY_HEADER_MAX, a complete one is exactly *need bytes, errors come with a
 * reason. The same bytes, as text, go to imap_net_parse: a range it accepts must contain its
 * own address and be printable again.
 */

static void check_info(const imap_proxy_info *info)
{
    if (info->local) return;
    int f = info->src.ss_family;
    CHECK(f == AF_INET || f == AF_INET6);
    CHECK(info->dst.ss_family == f);
}

/* Reads like the server: asks, takes exactly what is asked for (a heap copy of that many bytes,
 * so reading past it is caught), asks again. */
static int stepwise(const uint8_t *data, size_t size, size_t *need, imap_proxy_info *info)
{
    size_t have = 0;
    for (;;) {
        uint8_t *copy = malloc(have ? have : 1);
        CHECK(copy != NULL);
        memcpy(copy, data, have);
        const char *why = NULL;
        int rc = imap_proxy_parse(copy, have, need, info, &why);
        free(copy);
        if (rc < 0) {
            CHECK(rc == -EINVAL || rc == -E2BIG);
            CHECK(why != NULL && why[0] != '\0');
            return rc;
        }
        CHECK(*need >= IMAP_PROXY_FIXED_LEN && *need <= IMAP_PROXY_HEADER_MAX);
        if (rc == 1) {
            CHECK(*need == have);
            return 1;
        }
        CHECK(rc == 0 && *need > have);
        if (have == size) return 0; /* the connection would wait for more */
        /* byte by byte for the fixed part (as a slow proxy sends it), then what is there of
         * the rest, never more than asked for */
        have = have < IMAP_PROXY_FIXED_LEN ? have + 1 : *need;
        if (have > size) have = size;
    }
}

static void fuzz_net(const uint8_t *data, size_t size)
{
    char s[80];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    imap_net net;
    if (imap_net_parse(s, &net) != 0) return;
    CHECK(net.family == AF_INET || net.family == AF_INET6);
    CHECK(net.bits <= (net.family == AF_INET ? 32u : 128u));
    /* the range contains its own (masked) address */
    struct sockaddr_storage ss = {0};
    if (net.family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, net.addr, 4);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, net.addr, 16);
    }
    CHECK(net.family == AF_INET || !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)net.addr) ||
          net.bits < 96);
    CHECK(imap_net_match(&net, 1, (struct sockaddr *)&ss));
    /* and prints back to a range that parses to the same */
    char text[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];
    CHECK(inet_ntop(net.family, net.addr, addr, sizeof(addr)) != NULL);
    snprintf(text, sizeof(text), "%s/%u", addr, net.bits);
    imap_net again;
    CHECK(imap_net_parse(text, &again) == 0);
    CHECK(again.family == net.family && again.bits == net.bits &&
          memcmp(again.addr, net.addr, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t need_whole = 0, need_steps = 0;
    imap_proxy_info whole, steps;
    const char *why = NULL;
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    int rw = imap_proxy_parse(copy, size, &need_whole, &whole, &why);
    free(copy);
    int rs = stepwise(data, size, &need_steps, &steps);
    if (rw == 1) {
        /* bytes after a header do not change it */
        CHECK(need_whole <= size);
        CHECK(rs == 1 && need_steps == need_whole);
        CHECK(whole.local == steps.local && whole.ssl == steps.ssl);
        CHECK(memcmp(&whole.src, &steps.src, sizeof(whole.src)) == 0);
        check_info(&whole);
    } else if (rw == 0) {
        CHECK(need_whole > size && rs == 0);
    } else {
        CHECK(rs == rw);
    }
    fuzz_net(data, size);
    return 0;
}
