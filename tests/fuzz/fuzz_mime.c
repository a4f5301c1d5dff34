/* fuzz_mime.c: libFuzzer target: the MIME summary parser and every reader of its blob */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_parser.h"
#include "store/mime.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * The whole input is the message. Its summary must not depend on how the message is cut (two
 * pieces at a point derived from the input, then many small pieces), and every reader must
 * answer within bounds: parts lie inside the message, CRLF sizes are at least the raw sizes,
 * rendered strings lie inside the blob and are IMAP syntax a client can read (checked with our
 * own command parser). Truncated and corrupted blobs give errors, not crashes.
 */

static const char *const sections[] = {
    "",         "1",
    "2",        "3",
    "1.1",      "1.2",
    "2.1",      "2.2",
    "1.1.1",    "1.2.3",
    "2.2.1",    "1.1.2",
    "3.1",      "1.3",
    "4",        "1.1.1.1",
    "2.1.1.1",  "10",
    "0",        "1.",
    ".1",       "1..2",
    "01",       "1.0",
    "a",        "1.2.3.4.5.6.7.8.9.1.2.3.4.5.6.7.8",
    "99999999",
};

static size_t nonzero_strlen(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    CHECK(n < max); /* NUL-terminated inside its array */
    return n;
}

static void check_strings(const void *blob, size_t bloblen, size_t msglen, bool valid)
{
    const char *s;
    size_t sl;
    const char *lo = blob, *hi = (const char *)blob + bloblen;
    uint64_t crlf = 0;
    uint32_t lines = 0;
    int rc = store_mime_totals(blob, bloblen, &crlf, &lines);
    if (valid) {
        CHECK(rc == 0);
        CHECK(crlf >= msglen && crlf <= 2 * (uint64_t)msglen);
        CHECK(lines <= msglen + 1);
        CHECK(store_mime_totals(blob, bloblen, NULL, NULL) == 0);
    }
    rc = store_mime_envelope(blob, bloblen, &s, &sl);
    CHECK(!valid || rc == 0);
    if (rc == 0) CHECK(s >= lo && s + sl <= hi);
    if (valid) CHECK(sl >= 2 && s[0] == '(' && s[sl - 1] == ')');
    for (int ext = 0; ext < 2; ext++) {
        rc = store_mime_bodystructure(blob, bloblen, ext, &s, &sl);
        CHECK(!valid || rc == 0);
        if (rc == 0) CHECK(s >= lo && s + sl <= hi);
        if (valid) CHECK(sl >= 2 && s[0] == '(' && s[sl - 1] == ')');
    }
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        store_mime_part pp;
        rc = store_mime_part_find(blob, bloblen, sections[i], &pp);
        CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
        if (valid && i == 0) CHECK(rc == 0); /* the whole message always exists */
        if (rc != 0) continue;
        nonzero_strlen(pp.type, sizeof pp.type);
        nonzero_strlen(pp.subtype, sizeof pp.subtype);
        nonzero_strlen(pp.encoding, sizeof pp.encoding);
        nonzero_strlen(pp.charset, sizeof pp.charset);
        if (!valid) continue;
        CHECK(pp.header_off <= msglen && pp.header_len <= msglen - pp.header_off);
        CHECK(pp.body_off <= msglen && pp.body_len <= msglen - pp.body_off);
        CHECK(pp.header_crlf_len >= pp.header_len && pp.header_crlf_len <= 2 * pp.header_len);
        CHECK(pp.body_crlf_len >= pp.body_len && pp.body_crlf_len <= 2 * pp.body_len);
        CHECK(pp.body_lines <= pp.body_len);
        CHECK(pp.header_len == 0 || pp.header_off + pp.header_len <= pp.body_off);
        if (pp.is_message) {
            CHECK(pp.msg_header_off <= msglen && pp.msg_header_len <= msglen - pp.msg_header_off);
            CHECK(pp.msg_body_off <= msglen && pp.msg_body_len <= msglen - pp.msg_body_off);
            CHECK(pp.msg_header_off >= pp.body_off);
            CHECK(pp.msg_body_off + pp.msg_body_len <= pp.body_off + pp.body_len);
            CHECK(pp.msg_header_crlf_len >= pp.msg_header_len);
            CHECK(pp.msg_body_crlf_len >= pp.msg_body_len);
        }
        if (i == 0) {
            CHECK(pp.header_off == 0);
            CHECK(pp.header_crlf_len + pp.body_crlf_len <= crlf);
        }
    }
}

/* Parses IMAP text (a parenthesised list, possibly with literals) with the command parser;
 * returns the parser holding the command, whose single argument is the list. */
static imap_parser *parse_list(const char *text, size_t len, const char *what)
{
    static const imap_parser_limits lim = {.max_line = 64u << 20,
                                           .max_literal = 64u << 20,
                                           .max_command = 256u << 20,
                                           .max_depth = 100000,
                                           .max_args = 100000000};
    imap_parser *p = imap_parser_new(&lim);
    const char *parts[3] = {"t1 X ", text, "\r\n"};
    size_t lens[3] = {5, len, 2};
    for (int k = 0; k < 3; k++) {
        size_t pos = 0, used;
        while (pos < lens[k]) {
            imap_parse_result r = imap_parser_feed(p, parts[k] + pos, lens[k] - pos, &used);
            pos += used;
            if (r == IMAP_PARSE_ERROR) {
                const char *msg;
                imap_parser_error(p, &msg, NULL);
                fprintf(stderr, "%s is not IMAP syntax (%s): %.*s\n", what, msg,
                        (int)(len < 2000 ? len : 2000), text);
                CHECK(!"rendered text does not parse");
            }
            if (r == IMAP_PARSE_COMMAND) {
                CHECK(k == 2 && pos == lens[k]);
                const imap_command *c = imap_parser_command(p);
                if (c->nargs != 1 || c->args[0].type != IMAP_ARG_LIST)
                    fprintf(stderr, "%s is not one list: %.*s\n", what,
                            (int)(len < 2000 ? len : 2000), text);
                CHECK(c->nargs == 1 && c->args[0].type == IMAP_ARG_LIST);
                return p;
            }
        }
    }
    CHECK(!"rendered text left the parser waiting");
    return NULL;
}

static bool is_nstring(const imap_arg *a)
{
    return imap_arg_is_nil(a) || a->type == IMAP_ARG_STRING || a->type == IMAP_ARG_LITERAL;
}

/* ENVELOPE: date subject from sender reply-to to cc bcc in-reply-to message-id */
static void check_envelope(const imap_arg *env)
{
    CHECK(env->type == IMAP_ARG_LIST && env->count == 10);
    for (size_t i = 0; i < 10; i++) {
        const imap_arg *a = &env->list[i];
        if (i < 2 || i > 7) {
            CHECK(is_nstring(a));
            continue;
        }
        CHECK(imap_arg_is_nil(a) || (a->type == IMAP_ARG_LIST && a->count > 0));
        for (size_t k = 0; a->type == IMAP_ARG_LIST && k < a->count; k++) {
            const imap_arg *ad = &a->list[k];
            CHECK(ad->type == IMAP_ARG_LIST && ad->count == 4);
            for (size_t j = 0; j < 4; j++)
                CHECK(is_nstring(&ad->list[j]));
        }
    }
}

/* BODY / BODYSTRUCTURE: (part) or ((part)(part) subtype [extensions]) */
static void check_body(const imap_arg *b, unsigned depth)
{
    CHECK(b->type == IMAP_ARG_LIST && b->count >= 2 && depth < 1000);
    if (b->list[0].type == IMAP_ARG_LIST) {
        size_t k = 0;
        while (k < b->count && b->list[k].type == IMAP_ARG_LIST)
            check_body(&b->list[k++], depth + 1);
        CHECK(k < b->count && imap_arg_is_string(&b->list[k])); /* the subtype */
        return;
    }
    /* type subtype (params) id description encoding size */
    CHECK(b->count >= 7);
    CHECK(imap_arg_is_string(&b->list[0]) && imap_arg_is_string(&b->list[1]));
    CHECK(imap_arg_is_nil(&b->list[2]) || b->list[2].type == IMAP_ARG_LIST);
    CHECK(is_nstring(&b->list[3]) && is_nstring(&b->list[4]));
    CHECK(imap_arg_is_string(&b->list[5]) && b->list[6].type == IMAP_ARG_ATOM);
    bool text = b->list[0].len == 4 && strncasecmp(b->list[0].str, "text", 4) == 0;
    bool msg = b->list[0].len == 7 && strncasecmp(b->list[0].str, "message", 7) == 0 &&
               b->list[1].len == 6 && strncasecmp(b->list[1].str, "rfc822", 6) == 0;
    if (text) CHECK(b->count >= 8 && b->list[7].type == IMAP_ARG_ATOM); /* lines */
    if (msg && b->count >= 10) {
        check_envelope(&b->list[7]);
        check_body(&b->list[8], depth + 1);
        CHECK(b->list[9].type == IMAP_ARG_ATOM);
    }
}

static void check_syntax(const void *blob, size_t bloblen)
{
    const char *s;
    size_t sl;
    CHECK(store_mime_envelope(blob, bloblen, &s, &sl) == 0);
    imap_parser *p = parse_list(s, sl, "ENVELOPE");
    check_envelope(&imap_parser_command(p)->args[0]);
    imap_parser_free(&p);
    for (int ext = 0; ext < 2; ext++) {
        CHECK(store_mime_bodystructure(blob, bloblen, ext, &s, &sl) == 0);
        p = parse_list(s, sl, ext ? "BODYSTRUCTURE" : "BODY");
        check_body(&imap_parser_command(p)->args[0], 0);
        imap_parser_free(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    void *b = NULL, *b2 = NULL;
    size_t bl = 0, bl2 = 0;
    CHECK(store_mime_summarize(d, n, &b, &bl) == 0);
    CHECK(b != NULL && bl > 0);

    /* two pieces at a point derived from the input */
    size_t at = n ? (d[0] * 131u + d[n - 1] * 7u + n) % (n + 1) : 0;
    store_mime_parser *p = NULL;
    CHECK(store_mime_parser_new(&p) == 0);
    CHECK(store_mime_feed(p, d, at) == 0);
    CHECK(store_mime_feed(p, d + at, n - at) == 0);
    CHECK(store_mime_finish(p, &b2, &bl2) == 0);
    CHECK(store_mime_feed(p, d, n) == -EINVAL); /* no feeding after finish */
    void *b3 = NULL;
    size_t bl3 = 0;
    CHECK(store_mime_finish(p, &b3, &bl3) == -EINVAL);
    store_mime_parser_free(&p);
    CHECK(p == NULL);
    CHECK(bl == bl2 && memcmp(b, b2, bl) == 0);
    free(b2);

    /* many small pieces (1..16 bytes), sizes derived from the input */
    CHECK(store_mime_parser_new(&p) == 0);
    uint32_t x = (uint32_t)n * 2654435761u + (n ? d[n / 2] : 0);
    for (size_t pos = 0; pos < n;) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t step = 1 + x % 16;
        if (step > n - pos) step = n - pos;
        CHECK(store_mime_feed(p, d + pos, step) == 0);
        pos += step;
    }
    CHECK(store_mime_finish(p, &b2, &bl2) == 0);
    store_mime_parser_free(&p);
    CHECK(bl == bl2 && memcmp(b, b2, bl) == 0);
    free(b2);

    check_strings(b, bl, n, true);
    check_syntax(b, bl);

    /* truncated blobs: the readers refuse or stay inside what they were given */
    for (size_t cut = 0; cut < bl; cut += 1 + bl / 7) {
        void *t = malloc(cut ? cut : 1);
        CHECK(t != NULL);
        memcpy(t, b, cut);
        check_strings(t, cut, n, false);
        free(t);
    }
    /* corrupted blobs: a few bytes changed at places derived from the input */
    unsigned char *c = malloc(bl);
    CHECK(c != NULL);
    memcpy(c, b, bl);
    for (size_t k = 0; k < 4; k++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        c[x % bl] ^= (unsigned char)(x >> 24 | 1);
    }
    check_strings(c, bl, n, false);
    free(c);
    free(b);
    return 0;
}
