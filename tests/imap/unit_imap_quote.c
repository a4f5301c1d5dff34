/* unit_imap_quote.c: the one IMAP quoting rule (imap_quote.c): quoted or literal, atom, NIL */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/buf.h"
#include "imap/imap_parser.h"
#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"
#include "tests/unit.h"

enum how { STRING, NSTRING, ASTRING, LITERAL };

/* What a client reads back from one rendered string. */
enum form { QUOTED, LIT, ATOM, NIL };

static const char *const form_names[] = {"quoted", "literal", "atom", "NIL"};

/* S rendered by imap_quote_* HOW, appended after PREFIX (so appending is checked too). */
static mfs_buf render(const char *prefix, const char *s, size_t len, enum how how, bool utf8)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, prefix);
    if (how == STRING)
        imap_quote_string(&b, s, len, utf8);
    else if (how == NSTRING)
        imap_quote_nstring(&b, s, len, utf8);
    else if (how == ASTRING)
        imap_quote_astring(&b, s, len, utf8);
    else
        imap_quote_literal(&b, s, len);
    return b;
}

/* S with every byte outside printable ASCII as \xHH, for failure messages (static buffer). */
static const char *shown(const char *s, size_t len)
{
    static char out[4][200];
    static int next;
    char *o = out[next++ % 4];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof out[0] - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        n += (size_t)(c >= 0x20 && c < 0x7f && c != '\\' ? snprintf(o + n, 5, "%c", c)
                                                         : snprintf(o + n, 5, "\\x%02x", c));
    }
    if (len > 0 && n >= sizeof out[0] - 8) n += (size_t)snprintf(o + n, 4, "...");
    o[n] = '\0';
    return o;
}

/* The exact bytes imap_quote_* HOW writes for S. */
static void exact(const char *s, size_t len, enum how how, bool utf8, const char *want,
                  size_t want_len, int line)
{
    mfs_buf b = render("", s, len, how, utf8);
    CHECK(b.len == want_len && memcmp(b.data, want, want_len) == 0,
          "line %d: [%s] gave [%s], want [%s]", line, shown(s, len), shown(b.data, b.len),
          shown(want, want_len));
    mfs_buf_free(&b);
}
#define EXACT(s, how, utf8, want)                                                                  \
    exact(s, sizeof(s) - 1, how, utf8, want, sizeof(want) - 1, __LINE__)

/* Renders S as the last argument of a command line and reads it back with the IMAP parser, as a
 * peer would: the bytes must come back unchanged, in the form FORM. Also checks what any
 * client relies on: text before the string is kept, and a quoted string holds no CR, LF or NUL,
 * and no 8-bit byte unless UTF8. */
static void reads_back(const char *s, size_t len, enum how how, bool utf8, enum form form, int line)
{
    mfs_buf b = render("q1 X y ", s, len, how, utf8);
    CHECK(b.len >= 7 && memcmp(b.data, "q1 X y ", 7) == 0, "line %d: the prefix was overwritten",
          line);
    const char *out = b.data + 7;
    size_t out_len = b.len - 7;
    if (out_len > 0 && out[0] == '"') {
        bool clean = true;
        for (size_t i = 0; i < out_len; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c == '\r' || c == '\n' || c == 0 || (c >= 0x80 && !utf8)) clean = false;
        }
        CHECK(clean, "line %d: quoted [%s] holds CR, LF, NUL or a forbidden 8-bit byte", line,
              shown(out, out_len));
    }
    mfs_buf_puts(&b, "\r\n");

    imap_parser_limits lim = {.max_line = 1 << 20, .max_literal = 1 << 20};
    imap_parser *p = imap_parser_new(&lim);
    const imap_command *c = NULL;
    size_t pos = 0, used;
    while (pos < b.len && !c) {
        imap_parse_result r = imap_parser_feed(p, b.data + pos, b.len - pos, &used);
        pos += used;
        if (r == IMAP_PARSE_COMMAND) c = imap_parser_command(p);
        if (r == IMAP_PARSE_ERROR) {
            const char *msg;
            imap_parser_error(p, &msg, NULL);
            CHECK(0, "line %d: [%s] does not parse: %s", line, shown(out, out_len), msg);
            break;
        }
        if (r == IMAP_PARSE_MORE) break;
    }
    CHECK(c && c->nargs == 2 && pos == b.len, "line %d: [%s] is not one argument", line,
          shown(out, out_len));
    if (c && c->nargs == 2) {
        const imap_arg *a = &c->args[1];
        enum form got = a->type == IMAP_ARG_LITERAL  ? LIT
                        : a->type == IMAP_ARG_STRING ? QUOTED
                        : imap_arg_is_nil(a)         ? NIL
                                                     : ATOM;
        CHECK(a->type != IMAP_ARG_LIST && got == form, "line %d: [%s] came as %s [%s], want %s",
              line, shown(s, len), form_names[got], shown(out, out_len), form_names[form]);
        if (form != NIL)
            CHECK(a->len == len && memcmp(a->str, s, len) == 0,
                  "line %d: [%s] was read back as [%s]", line, shown(s, len),
                  shown(a->str, a->len));
        if (got == LIT) CHECK(!a->literal8, "line %d: a literal8 (~{n}) was written", line);
    }
    imap_parser_free(&p);
    mfs_buf_free(&b);
}
#define READS(s, how, utf8, form) reads_back(s, sizeof(s) - 1, how, utf8, form, __LINE__)

static void test_exact_forms(void)
{
    /* quoted: '"' and '\' escaped with a backslash, nothing else touched */
    EXACT("abc", STRING, false, "\"abc\"");
    EXACT("a\"b\\c", STRING, false, "\"a\\\"b\\\\c\"");
    EXACT("tab\there \x01 del\x7f", STRING, false, "\"tab\there \x01 del\x7f\"");
    EXACT("50% (of) {3} * ]", STRING, false, "\"50% (of) {3} * ]\"");
    /* the empty string is "" in each form that takes a string, never NIL or an empty atom */
    EXACT("", STRING, false, "\"\"");
    EXACT("", NSTRING, false, "\"\"");
    EXACT("", ASTRING, false, "\"\"");
    EXACT("", LITERAL, false, "{0}\r\n");
    /* CR, LF and NUL: a literal, the count in bytes and the bytes as they are */
    EXACT("a\r\nb", STRING, false, "{4}\r\na\r\nb");
    EXACT("a\rb", STRING, false, "{3}\r\na\rb");
    EXACT("a\nb", STRING, false, "{3}\r\na\nb");
    EXACT("a\0b", STRING, false, "{3}\r\na\0b");
    EXACT("\0", ASTRING, false, "{1}\r\n\0");
    EXACT("a\nb", NSTRING, true, "{3}\r\na\nb");
    /* 8-bit: a literal unless the client enabled UTF-8 and the bytes are UTF-8 */
    EXACT("h\xc3\xa9", STRING, false, "{3}\r\nh\xc3\xa9");
    EXACT("h\xc3\xa9", STRING, true, "\"h\xc3\xa9\"");
    EXACT("h\xc3\xa9", ASTRING, true, "\"h\xc3\xa9\"");
    EXACT("\xf0\x9f\x93\xa7", STRING, true, "\"\xf0\x9f\x93\xa7\"");
    EXACT("h\xc3", STRING, true, "{2}\r\nh\xc3");                       /* cut short */
    EXACT("\xc0\x80", STRING, true, "{2}\r\n\xc0\x80");                 /* overlong NUL */
    EXACT("\xed\xa0\x80", STRING, true, "{3}\r\n\xed\xa0\x80");         /* a surrogate */
    EXACT("\xf4\x90\x80\x80", STRING, true, "{4}\r\n\xf4\x90\x80\x80"); /* over U+10FFFF */
    EXACT("\xff", STRING, true, "{1}\r\n\xff");
    EXACT("\xc3\xa9\r\n", STRING, true, "{4}\r\n\xc3\xa9\r\n"); /* UTF-8, but a line break */
    /* up to four characters to escape stay quoted, a fifth makes a literal ('"' and '\'
     * counted together), as Dovecot does */
    EXACT("\"\"\\\\", STRING, false, "\"\\\"\\\"\\\\\\\\\"");
    EXACT("a\"\"\\\\b", STRING, false, "\"a\\\"\\\"\\\\\\\\b\"");
    EXACT("\"\"\"\"\"", STRING, false, "{5}\r\n\"\"\"\"\"");
    EXACT("\\\\\\\\\\", STRING, false, "{5}\r\n\\\\\\\\\\");
    EXACT("\"\\\"\\\"", STRING, false, "{5}\r\n\"\\\"\\\"");
    EXACT("\"\"\"\"\"", ASTRING, false, "{5}\r\n\"\"\"\"\"");
    EXACT("\"\"\"\"\"", NSTRING, false, "{5}\r\n\"\"\"\"\"");
    /* a literal whatever the bytes, when asked for one */
    EXACT("abc", LITERAL, false, "{3}\r\nabc");
    EXACT("a\"b", LITERAL, true, "{3}\r\na\"b");
}

static void test_nil_and_atoms(void)
{
    /* NIL only for no string at all; the word NIL as text is quoted in every form */
    {
        mfs_buf b = render("", NULL, 0, NSTRING, false);
        CHECK(b.len == 3 && memcmp(b.data, "NIL", 3) == 0, "NULL nstring gave [%s]",
              shown(b.data, b.len));
        mfs_buf_free(&b);
        b = render("", NULL, 0, NSTRING, true);
        CHECK(b.len == 3 && memcmp(b.data, "NIL", 3) == 0, "NULL nstring (UTF-8) gave [%s]",
              shown(b.data, b.len));
        mfs_buf_free(&b);
    }
    EXACT("NIL", NSTRING, false, "\"NIL\"");
    EXACT("NIL", STRING, false, "\"NIL\"");
    EXACT("NIL", ASTRING, false, "\"NIL\"");
    EXACT("nil", ASTRING, false, "\"nil\"");
    EXACT("Nil", ASTRING, true, "\"Nil\"");
    EXACT("NILS", ASTRING, false, "NILS");
    EXACT("NI", ASTRING, false, "NI");
    /* astring: a bare atom when the text is one */
    EXACT("INBOX", ASTRING, false, "INBOX");
    EXACT("Work/Projects.2024-x_y+z~&-", ASTRING, false, "Work/Projects.2024-x_y+z~&-");
    EXACT("a[b", ASTRING, false, "a[b");
    EXACT("a b", ASTRING, false, "\"a b\"");
    EXACT("a(b", ASTRING, false, "\"a(b\"");
    EXACT("a)b", ASTRING, false, "\"a)b\"");
    EXACT("a{b", ASTRING, false, "\"a{b\"");
    EXACT("50%", ASTRING, false, "\"50%\"");
    EXACT("a*", ASTRING, false, "\"a*\"");
    EXACT("a\"b", ASTRING, false, "\"a\\\"b\"");
    EXACT("a\\b", ASTRING, false, "\"a\\\\b\"");
    EXACT("a]b", ASTRING, false, "\"a]b\""); /* resp-special: legal, but kept quoted */
    EXACT("a\tb", ASTRING, false, "\"a\tb\"");
    EXACT("a\x7f", ASTRING, false, "\"a\x7f\"");
    EXACT("h\xc3\xa9", ASTRING, false, "{3}\r\nh\xc3\xa9");
    /* an atom of 255 bytes is bare, 256 are quoted */
    {
        char name[257];
        memset(name, 'm', sizeof name);
        mfs_buf b = render("", name, 255, ASTRING, false);
        CHECK(b.len == 255 && b.data[0] == 'm', "255-byte atom gave %zu bytes", b.len);
        mfs_buf_free(&b);
        b = render("", name, 256, ASTRING, false);
        CHECK(b.len == 258 && b.data[0] == '"' && b.data[257] == '"',
              "256-byte atom gave %zu bytes starting [%.8s]", b.len, b.data);
        mfs_buf_free(&b);
    }
}

/* Quoted up to 4096 bytes of text, a literal from 4097; escapes do not count in the bound. */
static void test_length_bound(void)
{
    static char big[5000];
    memset(big, 'x', sizeof big);
    mfs_buf b = render("", big, 4096, STRING, false);
    CHECK(b.len == 4098 && b.data[0] == '"' && b.data[4097] == '"', "4096 bytes gave %zu [%.10s]",
          b.len, b.data);
    mfs_buf_free(&b);
    b = render("", big, 4097, STRING, false);
    CHECK(b.len == 4097 + 8 && memcmp(b.data, "{4097}\r\n", 8) == 0, "4097 bytes gave %zu [%.10s]",
          b.len, b.data);
    mfs_buf_free(&b);
    b = render("", big, 4097, ASTRING, false);
    CHECK(memcmp(b.data, "{4097}\r\n", 8) == 0, "4097-byte astring gave [%.10s]", b.data);
    mfs_buf_free(&b);
    memcpy(big, "\"\\\"\\", 4);
    b = render("", big, 4096, STRING, false);
    CHECK(b.len == 4096 + 4 + 2 && b.data[0] == '"', "4096 bytes, 4 escaped, gave %zu [%.10s]",
          b.len, b.data);
    mfs_buf_free(&b);
    memset(big, 'x', 4);
    /* in UTF-8 the bound is in bytes: 2,049 two-byte characters are a literal */
    for (size_t i = 0; i < 4098; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    b = render("", big, 4096, STRING, true);
    CHECK(b.len == 4098 && b.data[0] == '"', "4096 bytes of UTF-8 gave %zu [%.10s]", b.len, b.data);
    mfs_buf_free(&b);
    b = render("", big, 4098, STRING, true);
    CHECK(memcmp(b.data, "{4098}\r\n", 8) == 0, "4098 bytes of UTF-8 gave [%.10s]", b.data);
    mfs_buf_free(&b);
    memset(big, 'x', sizeof big);
    reads_back(big, 4096, STRING, false, QUOTED, __LINE__);
    reads_back(big, 4097, STRING, false, LIT, __LINE__);
}

/* What a client reads back, for the cases above and the boundaries between forms. */
static void test_read_back(void)
{
    READS("abc", STRING, false, QUOTED);
    READS("", STRING, false, QUOTED);
    READS("", ASTRING, false, QUOTED);
    READS("", NSTRING, false, QUOTED);
    READS("a\"b\\c", STRING, false, QUOTED);
    READS("\"\"\\\\", STRING, false, QUOTED);
    READS("\"\"\"\"\"", STRING, false, LIT);
    READS("a\r\nb", STRING, false, LIT);
    READS("a\0b", NSTRING, false, LIT);
    READS("h\xc3\xa9", STRING, false, LIT);
    READS("h\xc3\xa9", STRING, true, QUOTED);
    READS("h\xc3", STRING, true, LIT);
    READS("INBOX", ASTRING, false, ATOM);
    READS("NIL", ASTRING, false, QUOTED);
    READS("NIL", NSTRING, false, QUOTED);
    READS("a b", ASTRING, false, QUOTED);
    READS("abc", LITERAL, false, LIT);
    reads_back(NULL, 0, NSTRING, false, NIL, __LINE__);
}

/* Random strings over the bytes that matter (quoted-specials, CR, LF, NUL, 8-bit, UTF-8, atom
 * specials), around each bound: every one reads back as it was, quoted exactly when the rule
 * (restated here from RFC 9051 4.3 and imap_quote.h) says so, and an astring bare exactly when
 * it is an atom other than NIL of under 256 bytes. */
static void test_random(void)
{
    static const char *const pieces[] = {
        "a",    "Z",    " ",  "\"", "\\", "\r", "\n",   "\r\n",     "%",
        "*",    "(",    ")",  "{",  "]",  "\t", "\x7f", "\xc3\xa9", "\xf0\x9f\x93\xa7",
        "\xc3", "\xff", "NIL"};
    static char s[4200];
    unsigned seed = 5;
    for (int round = 0; round < 3000; round++) {
        size_t target = round % 10 == 9 ? 4090 + ((seed = seed * 1103515245 + 12345) >> 16) % 12
                                        : ((seed = seed * 1103515245 + 12345) >> 16) % 24;
        size_t len = 0;
        bool plain = ((seed = seed * 1103515245 + 12345) >> 16) % 4 == 0;
        while (len < target) {
            const char *pc = plain ? "x"
                                   : pieces[((seed = seed * 1103515245 + 12345) >> 16) %
                                            (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(pc);
            if (len + pl > target) pl = target - len;
            memcpy(s + len, pc, pl);
            len += pl;
            if (round % 50 == 0 && len < target) s[len++] = '\0';
        }
        bool utf8 = round % 2;
        size_t escapes = 0;
        bool ctl = false, high = false;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            escapes += c == '"' || c == '\\';
            ctl |= c == '\r' || c == '\n' || c == 0;
            high |= c >= 0x80;
        }
        bool literal =
            len > 4096 || escapes > 4 || ctl || (high && (!utf8 || !imap_utf8_valid(s, len)));
        reads_back(s, len, STRING, utf8, literal ? LIT : QUOTED, __LINE__);
        reads_back(s, len, NSTRING, utf8, literal ? LIT : QUOTED, __LINE__);
        reads_back(s, len, LITERAL, utf8, LIT, __LINE__);
        bool atom = len > 0 && len < 256 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);
        for (size_t i = 0; atom && i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c)) atom = false;
        }
        reads_back(s, len, ASTRING, utf8, atom ? ATOM : literal ? LIT : QUOTED, __LINE__);
    }
}

int main(void)
{
    test_exact_forms();
    test_nil_and_atoms();
    test_length_bound();
    test_read_back();
    test_random();
    return unit_finish();
}
