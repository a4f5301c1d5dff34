/* unit_imap_parser.c: the command parser fed whole, split at every byte boundary, and bytewise */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_buf.h"
#include "imap/imap_parser.h"
#include "tests/imap/unit.h"

static void render_args(imap_buf *b, const imap_arg *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) imap_buf_putc(b, ' ');
        switch (a[i].type) {
        case IMAP_ARG_ATOM:
            imap_buf_append(b, a[i].str, a[i].len);
            break;
        case IMAP_ARG_STRING:
            imap_buf_putc(b, '"');
            imap_buf_append(b, a[i].str, a[i].len);
            imap_buf_putc(b, '"');
            break;
        case IMAP_ARG_LITERAL:
            imap_buf_printf(b, "%s{%zu}", a[i].literal8 ? "~" : "", a[i].len);
            imap_buf_append(b, a[i].str, a[i].len);
            break;
        case IMAP_ARG_LIST:
            imap_buf_putc(b, '(');
            render_args(b, a[i].list, a[i].count);
            imap_buf_putc(b, ')');
            break;
        }
    }
}

/* Feeds IN in pieces of the given sizes (0 = the rest) and renders every event on a line. */
static char *run(const char *in, size_t inlen, const size_t *pieces, size_t npieces,
                 const imap_parser_limits *lim)
{
    imap_parser *p = imap_parser_new(lim);
    imap_buf out = {0};
    imap_buf_puts(&out, "");
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
                imap_buf_printf(&out, "%s %s", c->tag, c->name);
                if (c->nargs) {
                    imap_buf_putc(&out, ' ');
                    render_args(&out, c->args, c->nargs);
                }
                imap_buf_putc(&out, '\n');
            } else if (r == IMAP_PARSE_CONTINUE) {
                imap_buf_printf(&out, "+ %s\n", imap_parser_pending_name(p));
            } else if (r == IMAP_PARSE_ERROR) {
                const char *msg, *tag;
                imap_parse_error e = imap_parser_error(p, &msg, &tag);
                imap_buf_printf(&out, "%s ERR%d %s\n", tag, (int)e, msg);
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
static void expect(unit_ctx *u, const char *in, const char *want, const imap_parser_limits *lim)
{
    size_t len = strlen(in);
    char *got = run(in, len, NULL, 0, lim);
    CHECK_STR(u, got, want);
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
    CHECK(u, bad == 0);
}

int main(void)
{
    unit_ctx u = {0};
    /* simple commands, pipelining, case of the name */
    expect(&u, "a1 noop\r\n", "a1 NOOP\n", NULL);
    expect(&u, "a1 NOOP\r\na2 capability\r\na3 LOGOUT\r\n", "a1 NOOP\na2 CAPABILITY\na3 LOGOUT\n",
           NULL);
    expect(&u, "a1 NOOP\n", "a1 NOOP\n", NULL);       /* bare LF tolerated */
    expect(&u, "\r\na1 NOOP\r\n", "a1 NOOP\n", NULL); /* empty line ignored */
    /* atoms, quoted strings with escapes, NIL, lists */
    expect(&u, "t LOGIN alice \"pa ss\\\"w\\\\d\"\r\n", "t LOGIN alice \"pa ss\"w\\d\"\n", NULL);
    expect(&u, "t STORE 1:* +FLAGS (\\Seen \\Deleted)\r\n",
           "t STORE 1:* +FLAGS (\\Seen \\Deleted)\n", NULL);
    expect(&u, "t LIST \"\" %\r\n", "t LIST \"\" %\n", NULL);
    expect(&u, "t SEARCH (OR (SEEN) (UNSEEN)) NOT DELETED\r\n",
           "t SEARCH (OR (SEEN) (UNSEEN)) NOT DELETED\n", NULL);
    expect(&u, "t SELECT \"\"\r\n", "t SELECT \"\"\n", NULL);
    expect(&u, "t X ()\r\n", "t X ()\n", NULL);
    /* fetch items with brackets stay one atom */
    expect(&u, "t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\r\n",
           "t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\n", NULL);
    expect(&u, "t FETCH 1 BODY[]\r\n", "t FETCH 1 BODY[]\n", NULL);
    expect(&u, "t FETCH 1 (BODY[HEADER.FIELDS (\"X-A]\")])\r\n",
           "t FETCH 1 (BODY[HEADER.FIELDS (\"X-A]\")])\n", NULL);
    /* literals: synchronizing, non-synchronizing, empty, literal8, with CRLF inside */
    expect(&u, "t LOGIN {5}\r\nalice {3}\r\nx y\r\n", "+ LOGIN\n+ LOGIN\nt LOGIN {5}alice {3}x y\n",
           NULL);
    expect(&u, "t LOGIN {5+}\r\nalice {0+}\r\n\r\n", "t LOGIN {5}alice {0}\n", NULL);
    expect(&u, "t APPEND INBOX {4}\r\na\r\nb\r\n", "+ APPEND\nt APPEND INBOX {4}a\r\nb\n", NULL);
    expect(&u, "t APPEND INBOX ~{3+}\r\na\001b\r\n", "t APPEND INBOX ~{3}a\001b\n", NULL);
    expect(&u, "t APPEND INBOX (\\Seen) {2+}\r\nab {2+}\r\ncd\r\n",
           "t APPEND INBOX (\\Seen) {2}ab {2}cd\n", NULL);
    /* errors, and recovery on the next line */
    expect(&u, "t FOO )\r\nu NOOP\r\n", "t ERR1 unexpected ')'\nu NOOP\n", NULL);
    expect(&u, "t FOO (a\r\nu NOOP\r\n", "t ERR1 missing ')'\nu NOOP\n", NULL);
    expect(&u, "t FOO \"abc\r\nu NOOP\r\n", "t ERR1 unterminated quoted string\nu NOOP\n", NULL);
    expect(&u, "t FOO \"a\\qb\"\r\nu NOOP\r\n", "t ERR1 invalid escape in quoted string\nu NOOP\n",
           NULL);
    expect(&u, "t+x NOOP\r\nu NOOP\r\n", "* ERR1 invalid character in tag\nu NOOP\n", NULL);
    expect(&u, "t\r\nu NOOP\r\n", "* ERR1 missing command\nu NOOP\n", NULL);
    expect(&u, "t FOO {x}\r\nu NOOP\r\n", "t ERR1 invalid literal size\nu NOOP\n", NULL);
    /* limits */
    imap_parser_limits lim = {
        .max_line = 40, .max_literal = 10, .max_append_literal = 20, .max_depth = 3};
    expect(&u, "t NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nu NOOP\r\n",
           "t ERR2 line too long\nu NOOP\n", &lim);
    expect(&u, "t X (((a)))\r\nu X ((((a))))\r\nv NOOP\r\n",
           "t X (((a)))\nu ERR4 lists nested too deep\nv NOOP\n", &lim);
    /* a synchronizing literal over the limit is refused; the client sends nothing more */
    expect(&u, "t LOGIN {11}\r\nu NOOP\r\n", "t ERR3 literal too large\nu NOOP\n", &lim);
    /* APPEND has its own limit */
    expect(&u, "t APPEND x {11+}\r\n01234567890\r\nu NOOP\r\n",
           "t APPEND x {11}01234567890\nu NOOP\n", &lim);
    /* a non-synchronizing literal over the limit is skipped without reading it as commands */
    expect(&u, "t APPEND x {21+}\r\nv NOOP\r\nv NOOP\r\nvvv\r\n\r\nu NOOP\r\n",
           "t ERR3 literal too large\nu NOOP\n", &lim);
    expect(&u, "t X (a) {2+}\r\nab {30+}\r\nw NOOP\r\nw NOOP\r\nw NOOP\r\nwwww\r\n\r\nu NOOP\r\n",
           "t ERR3 literal too large\nu NOOP\n", &lim);
    /* a long line that contains a non-synchronizing literal is skipped whole */
    expect(&u, "t NOOP aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {5+}\r\nw NOO\r\nu NOOP\r\n",
           "t ERR2 line too long\nu NOOP\n", &lim);
    /* the reject path: server refuses a synchronizing literal */
    {
        imap_parser *p = imap_parser_new(NULL);
        const char *in = "t LOGIN {5}\r\n";
        size_t used;
        CHECK(&u, imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_CONTINUE);
        CHECK_STR(&u, imap_parser_pending_tag(p), "t");
        CHECK_STR(&u, imap_parser_pending_name(p), "LOGIN");
        imap_parser_reject_literal(p);
        in = "u NOOP\r\n";
        CHECK(&u, imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_COMMAND);
        CHECK_STR(&u, imap_parser_command(p)->tag, "u");
        imap_parser_free(&p);
        CHECK(&u, p == NULL);
    }
    /* arg helpers */
    {
        imap_parser *p = imap_parser_new(NULL);
        const char *in = "t X nil NILS \"NIL\" abc\r\n";
        size_t used;
        CHECK(&u, imap_parser_feed(p, in, strlen(in), &used) == IMAP_PARSE_COMMAND);
        const imap_command *c = imap_parser_command(p);
        CHECK(&u, c->nargs == 4);
        CHECK(&u, imap_arg_is_nil(&c->args[0]));
        CHECK(&u, !imap_arg_is_nil(&c->args[1]));
        CHECK(&u, !imap_arg_is_nil(&c->args[2]));
        CHECK(&u, imap_arg_is_string(&c->args[2]));
        CHECK(&u, imap_arg_is_atom(&c->args[3], "ABC"));
        imap_parser_free(&p);
    }
    return unit_finish(&u);
}
