/* fuzz_imap_misc.c: libFuzzer target: sequence sets, modified UTF-7, IMAP quoting and IMAP URLs */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "imap/imap_parser.h"
#include "imap/imap_quote.h"
#include "imap/imap_seqset.h"
#include "imap/imap_url.h"
#include "imap/imap_utf7.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/* Sequence sets: after resolve the ranges are ordered, disjoint and not adjacent; contains()
 * and count() agree with them; formatting a sample and parsing it back gives the sample. */
static void seqset(const char *s, size_t len, uint32_t star)
{
    imap_seqset set;
    const char *why = NULL;
    int rc = imap_seqset_parse(s, len, 64, &set, &why);
    if (rc != 0) {
        CHECK(why != NULL && why[0] != '\0');
        CHECK(set.r == NULL && set.n == 0);
        return;
    }
    CHECK(imap_seqset_syntax(s, len));
    CHECK(set.n >= 1 && set.n <= 64);
    imap_seqset_resolve(&set, star);
    uint64_t count = 0;
    for (size_t i = 0; i < set.n; i++) {
        CHECK(set.r[i].lo >= 1 && set.r[i].lo <= set.r[i].hi);
        if (i) CHECK((uint64_t)set.r[i - 1].hi + 1 < set.r[i].lo);
        count += (uint64_t)set.r[i].hi - set.r[i].lo + 1;
        CHECK(imap_seqset_contains(&set, set.r[i].lo));
        CHECK(imap_seqset_contains(&set, set.r[i].hi));
        if (set.r[i].lo > 1) CHECK(!imap_seqset_contains(&set, set.r[i].lo - 1));
        if (set.r[i].hi < UINT32_MAX) CHECK(!imap_seqset_contains(&set, set.r[i].hi + 1));
    }
    CHECK(imap_seqset_count(&set) == count);

    /* a sample of the members (both ends of every range and a few inside), formatted */
    uint32_t nums[64 * 4];
    size_t n = 0;
    for (size_t i = 0; i < set.n; i++) {
        const imap_seq_range *r = &set.r[i];
        nums[n++] = r->lo;
        if (r->hi - r->lo >= 2) nums[n++] = r->lo + 1;
        if (r->hi - r->lo >= 3) nums[n++] = r->hi - 1;
        if (r->hi != r->lo) nums[n++] = r->hi;
    }
    mfs_buf b = {0};
    imap_seqset_format(&b, nums, n);
    imap_seqset back;
    CHECK(imap_seqset_parse(b.data, b.len, 0, &back, &why) == 0);
    imap_seqset_resolve(&back, 1);
    CHECK(imap_seqset_count(&back) == n);
    for (size_t i = 0; i < n; i++)
        CHECK(imap_seqset_contains(&back, nums[i]));
    imap_seqset_free(&back);
    mfs_buf_free(&b);
    imap_seqset_free(&set);
    CHECK(set.r == NULL && set.n == 0);
}

/* Modified UTF-7: decode(encode(x)) == x for valid UTF-8; the strict decoder accepts only
 * canonical text, so encode(decode(y)) == y; failures leave the output as it was. */
static void utf7(const char *s, size_t len)
{
    bool valid = imap_utf8_valid(s, len);
    mfs_buf enc = {0};
    mfs_buf_puts(&enc, "keep");
    int rc = imap_utf7_encode(s, len, &enc);
    if (rc == 0) {
        CHECK(valid || len == 0);
        CHECK(!imap_has_8bit(enc.data, enc.len));
        mfs_buf dec = {0};
        CHECK(imap_utf7_decode(enc.data + 4, enc.len - 4, &dec) == 0);
        CHECK(dec.len == len && (len == 0 || memcmp(dec.data, s, len) == 0));
        mfs_buf_free(&dec);
    } else {
        CHECK(!valid);
        CHECK(enc.len == 4 && memcmp(enc.data, "keep", 4) == 0);
    }
    mfs_buf_free(&enc);

    mfs_buf dec = {0};
    mfs_buf_puts(&dec, "keep");
    if (imap_utf7_decode(s, len, &dec) == 0) {
        CHECK(!imap_has_8bit(s, len));
        CHECK(imap_utf8_valid(dec.data + 4, dec.len - 4));
        mfs_buf again = {0};
        CHECK(imap_utf7_encode(dec.data + 4, dec.len - 4, &again) == 0);
        CHECK(again.len == len && (len == 0 || memcmp(again.data, s, len) == 0));
        mfs_buf_free(&again);
    } else {
        CHECK(dec.len == 4 && memcmp(dec.data, "keep", 4) == 0);
    }
    mfs_buf_free(&dec);
}

/* Quoting: whatever imap_quote_* writes, the command parser reads back as the same bytes. The
 * string goes last on the line: the parser reads "a[b c" as one fetch-item atom, which an
 * IMAP client would not. */
static void quote(const char *s, size_t len, int how, bool utf8)
{
    mfs_buf line = {0};
    mfs_buf_puts(&line, "q1 X y ");
    if (how == 0)
        imap_quote_string(&line, s, len, utf8);
    else if (how == 1)
        imap_quote_nstring(&line, s, len, utf8);
    else
        imap_quote_astring(&line, s, len, utf8);
    mfs_buf_puts(&line, "\r\n");

    imap_parser_limits lim = {.max_line = 1 << 20, .max_literal = 1 << 20};
    imap_parser *p = imap_parser_new(&lim);
    size_t pos = 0, used;
    const imap_command *c = NULL;
    while (pos < line.len) {
        imap_parse_result r = imap_parser_feed(p, line.data + pos, line.len - pos, &used);
        pos += used;
        if (r == IMAP_PARSE_COMMAND) {
            c = imap_parser_command(p);
            break;
        }
        if (r == IMAP_PARSE_ERROR) {
            const char *msg;
            imap_parser_error(p, &msg, NULL);
            fprintf(stderr, "quoted form of %zu bytes not parsed: %s\n", len, msg);
            CHECK(!"the parser refused quoted output");
        }
        CHECK(r != IMAP_PARSE_MORE || pos == line.len);
    }
    CHECK(c != NULL && pos == line.len);
    CHECK(c->nargs == 2);
    CHECK(imap_arg_is_atom(&c->args[0], "Y"));
    const imap_arg *a = &c->args[1];
    CHECK(imap_arg_is_string(a));
    CHECK(a->len == len && (len == 0 || memcmp(a->str, s, len) == 0));
    CHECK(how == 2 || a->type != IMAP_ARG_ATOM);
    if (a->type == IMAP_ARG_ATOM) CHECK(!imap_arg_is_nil(a));
    imap_parser_free(&p);
    mfs_buf_free(&line);
}

/* IMAP URLs (CATENATE): a URL is taken apart or refused with a reason; what is taken is
 * NUL-terminated in its fields, and names a message (UID 1 or more). */
static void url(const char *s, size_t len)
{
    imap_url u;
    const char *why = NULL;
    if (imap_url_parse(s, len, &u, &why) != 0) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(u.uid >= 1 && u.mailbox[0] != '\0');
    CHECK(memchr(u.mailbox, '\0', sizeof u.mailbox) && memchr(u.section, '\0', sizeof u.section) &&
          memchr(u.user, '\0', sizeof u.user));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* byte 0: options; the rest is the text under test */
    uint8_t opt = data[0];
    char *s = malloc(size);
    CHECK(s != NULL);
    memcpy(s, data + 1, size - 1);
    size_t len = size - 1;

    uint32_t star = opt & 0x80 ? UINT32_MAX - (opt & 0x3f) : 1 + (uint32_t)(opt & 0x7f) * 1000;
    seqset(s, len, star);
    utf7(s, len);
    quote(s, len, opt % 3, (opt & 4) != 0);
    url(s, len);
    free(s);
    return 0;
}
