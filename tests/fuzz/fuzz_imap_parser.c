/* fuzz_imap_parser.c: libFuzzer target: the IMAP command parser, fed whole and in random pieces */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "imap/imap_parser.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * The input is fed twice: in one piece, and cut at points derived from the input itself. Both
 * runs must give the same transcript (every command, error and literal invitation, in order):
 * where a client's bytes are split must never change what the server sees. Along the way the
 * promises of imap_parser.h are checked: progress on every call, whole input consumed on MORE,
 * well-formed NUL-terminated arguments, limits respected, errors reported with a tag.
 */

static const imap_parser_limits limits = {
    .max_line = 2048,
    .max_literal = 512,
    .max_append_literal = 4096,
    .max_command = 3000,
    .max_append_command = 6000,
    .max_depth = 8,
    .max_args = 300,
};

static size_t lit_total; /* bytes of literals in the command being walked */

static size_t walk(const imap_arg *a, size_t n, unsigned depth, mfs_buf *t)
{
    size_t nodes = n;
    CHECK(depth <= limits.max_depth);
    for (size_t i = 0; i < n; i++) {
        mfs_buf_printf(t, " %d", (int)a[i].type);
        switch (a[i].type) {
        case IMAP_ARG_LIST:
            CHECK(a[i].count == 0 || a[i].list != NULL);
            mfs_buf_putc(t, '(');
            nodes += walk(a[i].list, a[i].count, depth + 1, t);
            mfs_buf_putc(t, ')');
            break;
        case IMAP_ARG_LITERAL:
            CHECK(a[i].len <= limits.max_append_literal);
            lit_total += a[i].len;
            /* fall through */
        case IMAP_ARG_ATOM:
        case IMAP_ARG_STRING:
            CHECK(a[i].str != NULL);
            CHECK(a[i].str[a[i].len] == '\0');
            CHECK(a[i].type != IMAP_ARG_ATOM || a[i].len > 0);
            CHECK(a[i].type == IMAP_ARG_LITERAL || memchr(a[i].str, '\0', a[i].len) == NULL);
            CHECK(a[i].type == IMAP_ARG_LITERAL || !a[i].literal8);
            CHECK(imap_arg_is_string(&a[i]));
            mfs_buf_printf(t, "%s[%zu]", a[i].literal8 ? "~" : "", a[i].len);
            mfs_buf_append(t, a[i].str, a[i].len);
            (void)imap_arg_is_nil(&a[i]);
            (void)imap_arg_is_atom(&a[i], "BODY[]");
            break;
        default:
            CHECK(!"unknown argument type");
        }
    }
    return nodes;
}

/* Runs the parser over DATA cut at CUTS (sorted offsets); appends the transcript to T. */
static void run(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts,
                uint8_t reject_mask, mfs_buf *t)
{
    imap_parser *p = imap_parser_new(&limits);
    CHECK(p != NULL);
    size_t pos = 0, lits = 0, used = 1;
    /* feeding nothing is allowed and changes nothing */
    CHECK(imap_parser_feed(p, "", 0, &used) == IMAP_PARSE_MORE && used == 0);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : size;
        while (pos < end) {
            size_t left = end - pos;
            used = (size_t)-1;
            imap_parse_result r = imap_parser_feed(p, (const char *)data + pos, left, &used);
            CHECK(used <= left);
            CHECK(used > 0 || r == IMAP_PARSE_MORE);
            pos += used;
            if (r == IMAP_PARSE_MORE) {
                CHECK(pos == end);
                CHECK(imap_parser_command(p) == NULL);
                break;
            }
            if (r == IMAP_PARSE_COMMAND) {
                const imap_command *c = imap_parser_command(p);
                CHECK(c != NULL && c->tag != NULL && c->name != NULL);
                CHECK(c->tag[0] != '\0' && strlen(c->tag) <= 64);
                CHECK(c->name[0] != '\0' && strlen(c->name) <= 32);
                for (const char *s = c->name; *s; s++)
                    CHECK(!(*s >= 'a' && *s <= 'z'));
                CHECK(c->nargs == 0 || c->args != NULL);
                mfs_buf_printf(t, "C %s %s", c->tag, c->name);
                lit_total = 0;
                size_t nodes = walk(c->args, c->nargs, 0, t);
                CHECK(nodes <= limits.max_args);
                /* a whole command, literals included, stays within its limit */
                CHECK(lit_total <= (strcmp(c->name, "APPEND") == 0 ? limits.max_append_command
                                                                   : limits.max_command));
                mfs_buf_putc(t, '\n');
            } else if (r == IMAP_PARSE_ERROR) {
                const char *msg = NULL, *tag = NULL;
                imap_parse_error e = imap_parser_error(p, &msg, &tag);
                CHECK(e != IMAP_PERR_NONE && msg != NULL && tag != NULL);
                CHECK(msg[0] != '\0' && tag[0] != '\0' && strlen(tag) < 80);
                CHECK(imap_parser_command(p) == NULL);
                mfs_buf_printf(t, "E %d %s %s\n", (int)e, tag, msg);
            } else if (r == IMAP_PARSE_CONTINUE) {
                const char *tag = imap_parser_pending_tag(p), *name = imap_parser_pending_name(p);
                CHECK(tag != NULL && name != NULL);
                mfs_buf_printf(t, "L %s %s\n", tag, name);
                /* some servers refuse a literal after seeing the command name */
                if (reject_mask & (1u << (lits++ % 8))) {
                    imap_parser_reject_literal(p);
                    mfs_buf_puts(t, "R\n");
                }
            } else {
                CHECK(!"unknown parse result");
            }
        }
    }
    imap_parser_free(&p);
    CHECK(p == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* byte 0: which synchronizing literals to refuse; byte 1: how to cut; the rest: input */
    uint8_t reject_mask = data[0], cut_seed = data[1];
    data += 2;
    size -= 2;

    mfs_buf whole = {0}, split = {0};
    run(data, size, NULL, 0, reject_mask, &whole);

    /* cut points: a pseudo-random walk seeded from the input, pieces of 1..32 bytes, or every
     * byte when the seed says so */
    size_t *cuts = malloc((size + 1) * sizeof(*cuts)), ncuts = 0;
    CHECK(cuts != NULL);
    uint32_t x = cut_seed * 2654435761u + (uint32_t)size;
    for (size_t i = 0; i < size; i++)
        x = x * 31 + data[i];
    for (size_t pos = 0;;) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t step = cut_seed < 16 ? 1 : 1 + x % 32;
        pos += step;
        if (pos >= size) break;
        cuts[ncuts++] = pos;
    }
    run(data, size, cuts, ncuts, reject_mask, &split);
    free(cuts);

    if (whole.len != split.len || (whole.len && memcmp(whole.data, split.data, whole.len) != 0)) {
        fprintf(stderr, "whole:\n%s\nsplit:\n%s\n", whole.data ? whole.data : "",
                split.data ? split.data : "");
        CHECK(!"splitting the input changed the parse");
    }
    mfs_buf_free(&whole);
    mfs_buf_free(&split);
    return 0;
}
