/* unit_imap_parser.c: the command parser fed whole, split at every byte boundary, and bytewise */
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "imap/imap_parser.h"
#include "tests/unit.h"

static void render_args(mfs_buf *b, const imap_arg *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) mfs_buf_putc(b, ' ');
        switch (a[i].type) {
        case IMAP_ARG_ATOM:
            mfs_buf_append(b, a[i].str, a[i].len);
            break;
        case IMAP_ARG_STRING:
            mfs_buf_putc(b, '"');
            mfs_buf_append(b, a[i].str, a[i].len);
            mfs_buf_putc(b, '"');
            break;
        case IMAP_ARG_LITERAL:
            mfs_buf_printf(b, "%s{%zu}", a[i].literal8 ? "~" : "", a[i].len);
            mfs_buf_append(b, a[i].str, a[i].len);
            break;
        case IMAP_ARG_LIST:
            mfs_buf_putc(b, '(');
            render_args(b, a[i].list, a[i].count);
            mfs_buf_putc(b, ')');
            break;
        }
    }
}

/* Feeds IN in pieces of the given sizes (0 = the rest) and renders every event on a line. */
static char *run(const char *in, size_t inlen, const size_t *pieces, size_t npieces,
                 const imap_parser_limits *lim)
{
    imap_parser *p = imap_parser_new(lim);
    mfs_buf out = {0};
    mfs_buf_puts(&out, "");
    size_t pos = 0, pi = 0;
    while (pos < inlen) {
        size_t n = inlen - pos;
        if (pi < npieces && pieces[pi] && pieces[pi] < n) n = pieces[pi];
        pi++;
        const char *d = in + pos;
        size_t left = n;
        for (;;) {
            size_t used = 0;
            imap_parse_result r = imap_parser_feed(p, d, left, &used);
            if (used > left) abort();
            d += used;
            left -= used;
            if (r == IMAP_PARSE_COMMAND) {
                const imap_command *c = imap_parser_command(p);
                mfs_buf_printf(&out, "%s %s", c->tag, c->name);
                if (c->nargs) {
                    mfs_buf_putc(&out, ' ');
                    render_args(&out, c->args, c->nargs);
                }
                mfs_buf_putc(&out, '\n');
            } else if (r == IMAP_PARSE_CONTINUE) {
                mfs_buf_printf(&out, "+ %s\n", imap_parser_pending_name(p));
            } else if (r == IMAP_PARSE_ERROR) {
                const char *msg, *tag;
                imap_parse_error e = imap_parser_error(p, &msg, &tag);
                mfs_buf_printf(&out, "%s ERR%d %s\n", tag, (int)e, msg);
            } else if (left == 0) {
                break;
            }
            if (left == 0 && r == IMAP_PARSE_MORE) break;
        }
        pos += n;
    }
    imap_parser_free(&p);
    return out.data;
}

/* Feeds IN whole, split in two at every boundary, in three at a few, and bytewise: every way
 * must give WANT. */
static void expect(const char *in, const char *want, const imap_parser_limits *lim)
{
    size_t len = strlen(in);
    char *got = run(in, len, NULL, 0, lim);
    CHECK_STR(got, want);
    free(got);
    int bad = 0;
    for (size_t k = 1; k < len; k++) {
        size_t pieces[2] = {k, 0};
        got = run(in, len, pieces, 2, lim);
        if (strcmp(got, want) != 0 && bad++ == 0) {
            fprintf(stderr, "split at %zu of [%s]:\n got: [%s]\n", k, in, got);
        }
        free(got);
        for (size_t m = 1; m + k < len && len < 200; m += 7) {
            size_t p3[3] = {k, m, 0};
            got = run(in, len, p3, 3, lim);
            if (strcmp(got, want) != 0 && bad++ == 0)
                fprintf(stderr, "split at %zu+%zu of [%s]:\n got: [%s]\n", k, m, in, got);
            free(got);
        }
    }
    size_t *ones = calloc(len + 1, sizeof(size_t));
    for (size_t k = 0; k < len + 1; k++)
        ones[k] = 1;
    got = run(in, len, ones, len, lim);
    if (strcmp(got, want) != 0 && bad++ == 0)
        fprintf(stderr, "bytewise [%s]:\n got: [%s]\n", in, got);
    free(got);
    free(ones);
    CHECK(bad == 0);
}

int main(void)
{
    /* simple commands, pipelining, case of the name */
    expect("a1 noop\r\n", "a1 NOOP\n", NULL);
    expect("a1 NOOP\r\na2 capability\r\na3 LOGOUT\r\n", "a1 NOOP\na2 CAPABILITY\na3 LOGOUT\n",
           NULL);
    expect("a1 NOOP\n", "a1 NOOP\n", NULL);       /* bare LF tolerated */
    expect("\r\na1 NOOP\r\n", "a1 NOOP\n", NULL); /* empty line ignored */
    /* atoms, quoted strings with escapes, NIL, lists */
    expect("t LOGIN alice \"pa ss\\\"w\\\\d\"\r\n", "t LOGIN alice \"pa ss\"w\\d\"\n", NULL);
    expect("t STORE 1:* +FLAGS (\\Seen \\Deleted)\r\n", "t STORE 1:* +FLAGS (\\Seen \\Deleted)\n",
           NULL);
    expect("t LIST \"\" %\r\n", "t LIST \"\" %\n", NULL);
    expect("t SEARCH (OR (SEEN) (UNSEEN)) NOT DELETED\r\n",
           "t SEARCH (OR (SEEN) (UNSEEN)) NOT DELETED\n", NULL);
    expect("t SELECT \"\"\r\n", "t SELECT \"\"\n", NULL);
    expect("t X ()\r\n", "t X ()\n", NULL);
    /* fetch items with brackets stay one atom */
    expect("t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\r\n",
           "t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\n", NULL);
    expect("t FETCH 1 BODY[]\r\n", "t FETCH 1 BODY[]\n", NULL);
    expect("t FETCH 1 (BODY[HEADER.FIELDS (\"X-A]\")])\r\n",
           "t FETCH 1 (BODY[HEADER.FIELDS (\"X-A]\")])\n", NULL);
    /* literals: synchronizing, non-synchronizing, empty, literal8, with CRLF inside */
    expect("t LOGIN {5}\r\nalice {3}\r\nx y\r\n", "+ LOGIN\n+ LOGIN\nt LOGIN {5}alice {3}x y\n",
           NULL);
    expect("t LOGIN {5+}\r\nalice {0+}\r\n\r\n", "t LOGIN {5}alice {0}\n", NULL);
    expect("t APPEND INBOX {4}\r\na\r\nb\r\n", "+ APPEND\nt APPEND INBOX {4}a\r\nb\n", NULL);
    expect("t APPEND INBOX ~{3+}\r\na\001b\r\n", "t APPEND INBOX ~{3}a\001b\n", NULL);
    expect("t APPEND INBOX (\\Seen) {2+}\r\nab {2+}\r\ncd\r\n",
           "t APPEND INBOX (\\Seen) {2}ab {2}cd\n", NULL);
    /* errors, and recovery on the next line */
    expect("t FOO )\r\nu NOOP\r\n", "t ERR1 unexpected ')'\nu NOOP\n", NULL);
    expect("t FOO (a\r\nu NOOP\r\n", "t ERR1 missing ')'\nu NOOP\n", NULL);
    expect("t FOO \"abc\r\nu NOOP\r\n", "t ERR1 unterminated quoted string\nu NOOP\n", NULL);
    expect("t FOO \"a\\qb\"\r\nu NOOP\r\n", "t ERR1 invalid escape in quoted string\nu NOOP\n",
           NULL);
    expect("t+x NOOP\r\nu NOOP\r\n", "* ERR1 invalid character in tag\nu NOOP\n", NULL);
    expect("t\r\nu NOOP\r\n", "* ERR1 missing command\nu NOOP\n", NULL);
    expect("t FOO {x}\r\nu NOOP\r\n", "t ERR1 invalid literal size\nu NOOP\n", NULL);
    /* limits */
    imap_parser_limits lim = {
        .max_line = 40, .max_literal = 10, .max_append_literal = 20, .max_depth = 3};
    expect("t NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nu NOOP\r\n",
           "t ERR2 line too long\nu NOOP\n", &lim);
    expect("t X (((a)))\r\nu X ((((a))))\r\nv NOOP\r\n",
           "t X (((a)))\nu ERR4 lists nested too deep\nv NOOP\n", &lim);
    /* a synchronizing literal over the limit is refused; the client sends nothing more */
    expect("t LOGIN {11}\r\nu NOOP\r\n", "t ERR3 literal too large: 11 bytes, at most 10\nu NOOP\n",
           &lim);
    /* APPEND has its own limit */
    expect("t APPEND x {11+}\r\n01234567890\r\nu NOOP\r\n", "t APPEND x {11}01234567890\nu NOOP\n",
           &lim);
    /* a non-synchronizing literal over the limit is skipped without reading it as commands */
    expect("t APPEND x {21+}\r\nv NOOP\r\nv NOOP\r\nvvv\r\n\r\nu NOOP\r\n",
           "t ERR3 literal too large: 21 bytes, at most 20\nu NOOP\n", &lim);
    expect("t X (a) {2+}\r\nab {30+}\r\nw NOOP\r\nw NOOP\r\nw NOOP\r\nwwww\r\n\r\nu NOOP\r\n",
           "t ERR3 literal too large: 30 bytes, at most 10\nu NOOP\n", &lim);
    /* a long line that contains a non-synchronizing literal is skipped whole */
    expect("t NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {5+}\r\nw NOO\r\nu NOOP\r\n",
           "t ERR2 line too long\nu NOOP\n", &lim);
    /* limits of the kind a server sets before login: every command small, literals included,
     * non-synchronizing ones too */
    imap_parser_limits pre = {.max_line = 64,
                              .max_literal = 32,
                              .max_append_literal = 32,
                              .max_command = 64,
                              .max_append_command = 64};
    expect("t LOGIN {5+}\r\nalice {8+}\r\npassword\r\n", "t LOGIN {5}alice {8}password\n", &pre);
    /* one literal over its limit */
    expect("t LOGIN {33+}\r\n012345678901234567890123456789012\r\nu NOOP\r\n",
           "t ERR3 literal too large: 33 bytes, at most 32\nu NOOP\n", &pre);
    /* literals each under the limit, the command over it: refused at the byte that passes it
     * (the '{' of the third), and that literal is skipped, never read as commands */
    expect("t LOGIN {20+}\r\n01234567890123456789 {20+}\r\n01234567890123456789 {20+}\r\n"
           "01234567890123456789\r\nu NOOP\r\n",
           "t ERR2 command too long: more than 64 bytes\nu NOOP\n", &pre);
    /* the same with synchronizing literals: the third is refused, the client sends no more */
    expect("t LOGIN {20}\r\n01234567890123456789 {20}\r\n01234567890123456789 {20}\r\n"
           "u NOOP\r\n",
           "+ LOGIN\n+ LOGIN\nt ERR2 command too long: more than 64 bytes\nu NOOP\n", &pre);
    /* text after the literals counts too */
    expect("t LOGIN {30+}\r\n012345678901234567890123456789 aaaaaaaaaaaaaaaaaaaaaaaa\r\n"
           "u NOOP\r\n",
           "t ERR2 command too long: more than 64 bytes\nu NOOP\n", &pre);
    /* APPEND gets no more than the others here */
    expect("t APPEND INBOX {33+}\r\n012345678901234567890123456789012\r\nu NOOP\r\n",
           "t ERR3 literal too large: 33 bytes, at most 32\nu NOOP\n", &pre);
    /* after login: one MULTIAPPEND may carry at most max_append_command in all */
    imap_parser_limits post = {.max_line = 200,
                               .max_literal = 10,
                               .max_append_literal = 20,
                               .max_command = 100,
                               .max_append_command = 50};
    expect("t APPEND x {15+}\r\n012345678901234 {15+}\r\n012345678901234\r\nu NOOP\r\n",
           "t ERR3 command too large: 56 bytes with this literal, at most 50\nu NOOP\n", &post);
    expect("t APPEND x {15+}\r\n012345678901234\r\nu NOOP\r\n",
           "t APPEND x {15}012345678901234\nu NOOP\n", &post);
    /* outside APPEND, many small literals add up to max_command */
    expect("t X {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n"
           "0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789\r\nu NOOP\r\n",
           "t ERR2 command too long: more than 100 bytes\nu NOOP\n", &post);
    /* a literal that passes the total itself */
    expect("t X {10+}\r\n0123456789 {8+}\r\n01234567\r\nu NOOP\r\n",
           "t X {10}0123456789 {8}01234567\n"
           "u NOOP\n",
           &post);
    expect("t X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
           "{10+}\r\n"
           "w NOOP\r\nab\r\nu NOOP\r\n",
           "t ERR3 command too large: 102 bytes with this literal, at most 100\nu NOOP\n", &post);
    /* a limit reached inside a literal's header, or at the LF that ends it: the literal is
     * still skipped (its bytes are data, not commands) */
    for (size_t pad = 20; pad < 40; pad++) {
        mfs_buf in = {0}, want = {0};
        mfs_buf_puts(&in, "t NOOP ");
        for (size_t k = 0; k < pad; k++)
            mfs_buf_putc(&in, 'a');
        mfs_buf_puts(&in, " {8+}\r\nw LOGOUT\r\nu NOOP\r\n");
        /* 7 + pad + 7 bytes of text up to the literal, 2 after it: over 40 from pad 25 on */
        if (pad + 16 > 40) {
            mfs_buf_puts(&want, "t ERR2 line too long\nu NOOP\n");
        } else {
            mfs_buf_puts(&want, "t NOOP ");
            for (size_t k = 0; k < pad; k++)
                mfs_buf_putc(&want, 'a');
            mfs_buf_puts(&want, " {8}w LOGOUT\nu NOOP\n");
        }
        expect(in.data, want.data, &lim);
        mfs_buf_free(&in);
        mfs_buf_free(&want);
    }
    /* a refused non-synchronizing literal: the parser says how much it still skips */
    {
        imap_parser *p = imap_parser_new(&pre);
        const char *in = "t APPEND INBOX {67108864+}\r\nabc";
        size_t used, len = strlen(in);
        CHECK(imap_parser_feed(p, in, len, &used) == IMAP_PARSE_ERROR);
        const char *msg;
        CHECK(imap_parser_error(p, &msg, NULL) == IMAP_PERR_TOOBIG);
        CHECK_STR(msg, "literal too large: 67108864 bytes, at most 32");
        CHECK(imap_parser_skipping(p) == 67108864);
        CHECK(imap_parser_feed(p, in + used, len - used, &used) == IMAP_PARSE_MORE);
        CHECK(imap_parser_skipping(p) == 67108864 - 3);
        imap_parser_free(&p);
    }
    /* the limits change with the login state: the same command is refused before and taken
     * after, fed whole and one byte at a time */
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        imap_parser *p = imap_parser_new(&pre);
        CHECK(imap_parser_get_limits(p)->max_command == 64);
        const char *cmd = "t STATUS {40+}\r\n0123456789012345678901234567890123456789 (MESSAGES)"
                          "\r\n";
        const char *seen[2] = {NULL, NULL};
        imap_parse_error errs[2] = {IMAP_PERR_NONE, IMAP_PERR_NONE};
        for (int round = 0; round < 2; round++) {
            size_t len = strlen(cmd), pos = 0;
            while (pos < len) {
                size_t used, n = bytewise ? 1 : len - pos;
                imap_parse_result r = imap_parser_feed(p, cmd + pos, n, &used);
                pos += used;
                if (r == IMAP_PARSE_COMMAND) seen[round] = imap_parser_command(p)->name;
                if (r == IMAP_PARSE_ERROR) errs[round] = imap_parser_error(p, NULL, NULL);
            }
            if (round == 0) imap_parser_set_limits(p, &post);
            CHECK(round == 1 || imap_parser_get_limits(p)->max_literal == 10);
            if (round == 0) imap_parser_set_limits(p, NULL); /* defaults: 64 KiB literals */
        }
        CHECK(errs[0] == IMAP_PERR_TOOBIG && seen[0] == NULL);
        CHECK(errs[1] == IMAP_PERR_NONE && seen[1] != NULL && strcmp(seen[1], "STATUS") == 0);
        /* defaults: zero fields are filled in, the command limits from the others */
        const imap_parser_limits *d = imap_parser_get_limits(p);
        CHECK(d->max_line == 65536 && d->max_literal == 65536 && d->max_depth == 32);
        CHECK(d->max_command == (1u << 20));
        CHECK(d->max_append_command == d->max_append_literal + (1u << 20));
        imap_parser_free(&p);
    }
    /* trimming between commands forgets nothing of a command still coming in */
    {
        imap_parser *p = imap_parser_new(NULL);
        mfs_buf big = {0};
        mfs_buf_puts(&big, "t APPEND INBOX {100000+}\r\n");
        for (int i = 0; i < 100000; i++)
            mfs_buf_putc(&big, (char)('a' + i % 26));
        mfs_buf_puts(&big, "\r\n");
        size_t used;
        CHECK(imap_parser_feed(p, big.data, big.len, &used) == IMAP_PARSE_COMMAND);
        CHECK(used == big.len && imap_parser_command(p)->args[1].len == 100000);
        imap_parser_trim(p);
        CHECK(imap_parser_command(p) == NULL);
        const char *half = "u LOGIN {5+}\r\nal", *rest = "ice bob\r\n";
        CHECK(imap_parser_feed(p, half, strlen(half), &used) == IMAP_PARSE_MORE);
        imap_parser_trim(p);
        CHECK(imap_parser_feed(p, rest, strlen(rest), &used) == IMAP_PARSE_COMMAND);
        const imap_command *c = imap_parser_command(p);
        CHECK(c->nargs == 2 && strcmp(c->args[0].str, "alice") == 0);
        mfs_buf_free(&big);
        imap_parser_free(&p);
    }
    /* the reject path: server refuses a synchronizing literal */
    {
        imap_parser *p = imap_parser_new(NULL);
        const char *in = "t LOGIN {5}\r\n";
        size_t used;
        CHECK(imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_CONTINUE);
        CHECK_STR(imap_parser_pending_tag(p), "t");
        CHECK_STR(imap_parser_pending_name(p), "LOGIN");
        imap_parser_reject_literal(p);
        in = "u NOOP\r\n";
        CHECK(imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_COMMAND);
        CHECK_STR(imap_parser_command(p)->tag, "u");
        imap_parser_free(&p);
        CHECK(p == NULL);
    }
    /* arg helpers */
    {
        imap_parser *p = imap_parser_new(NULL);
        const char *in = "t X nil NILS \"NIL\" abc\r\n";
        size_t used;
        CHECK(imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_COMMAND);
        const imap_command *c = imap_parser_command(p);
        CHECK(c->nargs == 4);
        CHECK(imap_arg_is_nil(&c->args[0]));
        CHECK(!imap_arg_is_nil(&c->args[1]));
        CHECK(!imap_arg_is_nil(&c->args[2]));
        CHECK(imap_arg_is_string(&c->args[2]));
        CHECK(imap_arg_is_atom(&c->args[3], "ABC"));
        imap_parser_free(&p);
    }
    return unit_finish();
}
