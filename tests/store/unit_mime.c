/* unit_mime.c: tests of the MIME summary (store/mime*.c, imap/imap_envelope.c,
 * imap_bodystructure.c): split feeding, IMAP strings, parts */
#include "store/mime.h"

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_quote.h"
#include "tests/unit.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------- helpers ---------- */

static int summarize_split(const unsigned char *m, size_t n, size_t at, void **b, size_t *bl)
{
    store_mime_parser *p;
    int r = store_mime_parser_new(&p);
    if (r < 0) return r;
    r = store_mime_feed(p, m, at);
    if (r == 0) r = store_mime_feed(p, m + at, n - at);
    if (r == 0) r = store_mime_finish(p, b, bl);
    store_mime_parser_free(&p);
    return r;
}

static int summarize_bytewise(const unsigned char *m, size_t n, void **b, size_t *bl)
{
    store_mime_parser *p;
    int r = store_mime_parser_new(&p);
    if (r < 0) return r;
    for (size_t i = 0; i < n && r == 0; i++)
        r = store_mime_feed(p, m + i, 1);
    if (r == 0) r = store_mime_finish(p, b, bl);
    store_mime_parser_free(&p);
    return r;
}

/* Feeds M split in two at the given points (all of them when STEP is 1) and one byte at a time;
 * returns the number of split points whose blob differs from the one-piece blob. */
static unsigned split_check(const char *name, const unsigned char *m, size_t n, size_t step)
{
    void *ref, *b;
    size_t rl, bl;
    unsigned bad = 0;
    if (store_mime_summarize(m, n, &ref, &rl) != 0) {
        CHECK(0, "%s: summarize failed", name);
        return 1;
    }
    for (size_t at = 0; at <= n; at += step) {
        if (summarize_split(m, n, at, &b, &bl) != 0 || bl != rl || memcmp(b, ref, rl) != 0) {
            if (bad++ == 0) printf("FAIL split: %s: blob differs when split at %zu\n", name, at);
        }
        free(b);
        b = NULL;
        if (step > 1 && at < n && at + step > n)
            at = n - step; /* always include the last split point */
    }
    if (summarize_bytewise(m, n, &b, &bl) != 0 || bl != rl || memcmp(b, ref, rl) != 0) {
        printf("FAIL split: %s: blob differs when fed one byte at a time\n", name);
        bad++;
    }
    free(b);
    free(ref);
    CHECK(bad == 0, "split: %s: %u ways of feeding it gave another blob", name, bad);
    return bad;
}

struct sum {
    void *blob;
    size_t len;
};

static struct sum sum_of(const char *m, size_t n)
{
    struct sum s = {0};
    if (store_mime_summarize(m, n, &s.blob, &s.len) != 0) s.blob = NULL;
    return s;
}

static bool str_is(const char *got, size_t gl, const char *want)
{
    return gl == strlen(want) && memcmp(got, want, gl) == 0;
}

static void check_env(const char *name, struct sum s, const char *want)
{
    const char *o = "";
    size_t ol = 0;
    int r = s.blob ? store_mime_envelope(s.blob, s.len, &o, &ol) : -1;
    CHECK(r == 0 && str_is(o, ol, want), "%s: ENVELOPE\n  got  %.*s\n  want %s", name, (int)ol, o,
          want);
}

static void check_bs(const char *name, struct sum s, bool ext, const char *want)
{
    const char *o = "";
    size_t ol = 0;
    int r = s.blob ? store_mime_bodystructure(s.blob, s.len, ext, &o, &ol) : -1;
    CHECK(r == 0 && str_is(o, ol, want), "%s: %s\n  got  %.*s\n  want %s", name,
          ext ? "BODYSTRUCTURE" : "BODY", (int)ol, o, want);
}

static store_mime_part part_of(struct sum s, const char *sec, int *r)
{
    store_mime_part p;
    memset(&p, 0, sizeof(p));
    *r = s.blob ? store_mime_part_find(s.blob, s.len, sec, &p) : -1;
    return p;
}

/* Checks a part's body against the expected raw text located in message M. */
static void check_part_body(const char *name, struct sum s, const char *m, const char *sec,
                            const char *type, const char *subtype, const char *body)
{
    int r;
    store_mime_part p = part_of(s, sec, &r);
    CHECK(r == 0, "%s: part '%s' not found (%d)", name, sec, r);
    if (r != 0) return;
    CHECK(strcmp(p.type, type) == 0 && strcmp(p.subtype, subtype) == 0,
          "%s: part '%s' is %s/%s, want %s/%s", name, sec, p.type, p.subtype, type, subtype);
    size_t bl = strlen(body);
    bool same = p.body_len == bl && memcmp(m + p.body_off, body, bl) == 0;
    CHECK(same, "%s: part '%s' body is '%.*s', want '%s'", name, sec, (int)p.body_len,
          m + p.body_off, body);
    CHECK(p.header_off + p.header_len == p.body_off, "%s: part '%s' header does not meet body",
          name, sec);
}

static void check_noent(const char *name, struct sum s, const char *sec, int want)
{
    int r;
    (void)part_of(s, sec, &r);
    CHECK(r == want, "%s: part '%s' gave %d, want %d", name, sec, r, want);
}

/* ---------- hand-written messages ---------- */

struct msg {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen */
};

static const char M_SIMPLE[] = "From: Alice <alice@example.com>\r\n"
                               "To: bob@example.org\r\n"
                               "Subject: hello\r\n"
                               "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                               "Message-ID: <1@example.com>\r\n"
                               "\r\n"
                               "Hi Bob\r\n"
                               "Bye\r\n";

static const char M_SIMPLE_LF[] = "From: Alice <alice@example.com>\n"
                                  "To: bob@example.org\n"
                                  "Subject: hello\n"
                                  "Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
                                  "Message-ID: <1@example.com>\n"
                                  "\n"
                                  "Hi Bob\n"
                                  "Bye\n";

static const char M_MIXED[] = "From: a@b.c\n"
                              "Subject: att\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"XX\"\n"
                              "\n"
                              "preamble\n"
                              "--XX\n"
                              "Content-Type: text/plain; charset=UTF-8\n"
                              "Content-Transfer-Encoding: quoted-printable\n"
                              "\n"
                              "Hello=20\n"
                              "--XX\n"
                              "Content-Type: application/pdf; name=\"doc.pdf\"\n"
                              "Content-Disposition: attachment; filename=\"doc.pdf\"\n"
                              "Content-Transfer-Encoding: base64\n"
                              "Content-ID: <pdf1@x>\n"
                              "Content-Description: The \"doc\"\n"
                              "\n"
                              "JVBERi0=\n"
                              "--XX--\n"
                              "epilogue\n";

static const char M_NESTED[] = "Content-Type: multipart/mixed; boundary=outer\n"
                               "\n"
                               "--outer\n"
                               "Content-Type: multipart/alternative; boundary=inner\n"
                               "\n"
                               "--inner\n"
                               "Content-Type: text/plain\n"
                               "\n"
                               "plain\n"
                               "--inner\n"
                               "Content-Type: text/html\n"
                               "\n"
                               "<p>html</p>\n"
                               "--inner--\n"
                               "--outer\n"
                               "Content-Type: image/png\n"
                               "Content-Transfer-Encoding: base64\n"
                               "\n"
                               "iVBO\n"
                               "--outer--\n";

static const char M_RFC822[] = "From: \"Doe, John\" <john@example.com>\n"
                               "Subject: fwd\n"
                               "Content-Type: multipart/mixed; boundary=b1\n"
                               "\n"
                               "--b1\n"
                               "Content-Type: text/plain\n"
                               "\n"
                               "see attached\n"
                               "--b1\n"
                               "Content-Type: message/rfc822\n"
                               "\n"
                               "From: carol@example.net\n"
                               "Subject: inner\n"
                               "Content-Type: multipart/alternative; boundary=b2\n"
                               "\n"
                               "--b2\n"
                               "Content-Type: text/plain\n"
                               "\n"
                               "x\n"
                               "--b2--\n"
                               "--b1--\n";

static const char M_GROUPS[] = "From: =?UTF-8?B?SsO2cmc=?= <joerg@example.com>\n"
                               "To: undisclosed-recipients:;\n"
                               "Cc: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
                               "Sender: user@domain (Real Name)\n"
                               "Reply-To: <@route:user@domain>\n"
                               "Subject: =?ISO-8859-1?Q?caf=E9?=  two \t spaces \n"
                               "In-Reply-To: <reply@to.id>\n"
                               "Message-ID: <msg@id>\n"
                               "\n"
                               "body\n";

static const char M_NOBOUNDARY[] = "Content-Type: multipart/mixed; boundary=zz\n"
                                   "\n"
                                   "no parts here\n";

static const char M_NOFINAL[] = "Content-Type: multipart/mixed; boundary=zz\n"
                                "\n"
                                "--zz\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "abc\n";

static const char M_NOHEADERS[] = "\njust body\n";

static const char M_HEADERONLY[] = "Subject: x\nFrom: y@z";

static const char M_BARECR[] = "Subject: a\rFrom: b@c\r\rbody\r";

static const char M_8BIT[] = "Subject: caf\xc3\xa9\n"
                             "From: \"\\\"q\\\" \\\\ x\" <q@x>\n"
                             "\n"
                             "x\n";

static const char M_DIGEST[] = "Content-Type: multipart/digest; boundary=d\n"
                               "\n"
                               "--d\n"
                               "\n"
                               "From: x@y\n"
                               "Subject: one\n"
                               "\n"
                               "body1\n"
                               "--d--\n";

static const char M_EXT[] = "Subject: NIL\n"
                            "Content-Type: text/html; charset=\"iso-8859-1\"; format=flowed\n"
                            "Content-Language: en, de-DE\n"
                            "Content-Location: http://x/y\n"
                            "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
                            "Content-Disposition: inline\n"
                            "Content-Transfer-Encoding: 8bit\n"
                            "\n"
                            "<b>\r\nx\n";

static const char M_NUL[] = "Subject: a\0b\nContent-Type: text/plain\n\nx\0y\n";

static const struct msg messages[] = {
    {"simple", M_SIMPLE, 0},
    {"simple-lf", M_SIMPLE_LF, 0},
    {"mixed", M_MIXED, 0},
    {"nested", M_NESTED, 0},
    {"rfc822", M_RFC822, 0},
    {"groups", M_GROUPS, 0},
    {"noboundary", M_NOBOUNDARY, 0},
    {"nofinal", M_NOFINAL, 0},
    {"noheaders", M_NOHEADERS, 0},
    {"headeronly", M_HEADERONLY, 0},
    {"empty", "", 0},
    {"barecr", M_BARECR, 0},
    {"8bit", M_8BIT, 0},
    {"digest", M_DIGEST, 0},
    {"ext", M_EXT, 0},
    {"nul", M_NUL, sizeof(M_NUL) - 1},
};

#define PLAIN_DEF "(\"charset\" \"us-ascii\")"
#define EMPTY_ENV "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

static void test_handwritten(void)
{
    struct sum s;

    s = sum_of(M_SIMPLE, strlen(M_SIMPLE));
    check_env("simple", s,
              "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"hello\" ((\"Alice\" NIL \"alice\" "
              "\"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL "
              "\"alice\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL "
              "\"<1@example.com>\")");
    check_bs("simple", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 13 2 NIL NIL NIL NIL)");
    check_bs("simple", s, false, "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 13 2)");
    check_part_body("simple", s, M_SIMPLE, "1", "text", "plain", "Hi Bob\r\nBye\r\n");
    check_part_body("simple", s, M_SIMPLE, "", "text", "plain", "Hi Bob\r\nBye\r\n");
    check_noent("simple", s, "2", -ENOENT);
    check_noent("simple", s, "1.1", -ENOENT);
    check_noent("simple", s, "0", -EINVAL);
    check_noent("simple", s, "1.", -EINVAL);
    check_noent("simple", s, ".1", -EINVAL);
    check_noent("simple", s, "1x", -EINVAL);
    {
        uint64_t sz = 0;
        uint32_t lines = 0;
        int r = store_mime_totals(s.blob, s.len, &sz, &lines);
        CHECK(r == 0 && sz == strlen(M_SIMPLE) && lines == 8, "simple: totals %llu %u",
              (unsigned long long)sz, lines);
        int pr;
        store_mime_part p = part_of(s, "", &pr);
        CHECK(pr == 0 && p.header_off == 0 && p.header_len == strlen(M_SIMPLE) - 13 &&
                  p.header_crlf_len == p.header_len && p.body_lines == 2 && !p.is_multipart &&
                  strcmp(p.encoding, "7bit") == 0 && p.charset[0] == '\0',
              "simple: root part fields");
    }
    free(s.blob);

    s = sum_of(M_SIMPLE_LF, strlen(M_SIMPLE_LF));
    check_bs("simple-lf", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 13 2 NIL NIL NIL NIL)");
    {
        uint64_t sz = 0;
        uint32_t lines = 0;
        store_mime_totals(s.blob, s.len, &sz, &lines);
        CHECK(sz == strlen(M_SIMPLE) && lines == 8, "simple-lf: CRLF size %llu, want %zu",
              (unsigned long long)sz, strlen(M_SIMPLE));
        int r;
        store_mime_part p = part_of(s, "1", &r);
        CHECK(r == 0 && p.body_len == 11 && p.body_crlf_len == 13 && p.body_lines == 2 &&
                  p.header_crlf_len == p.header_len + 6,
              "simple-lf: part 1 sizes %llu/%llu hdr %llu/%llu", (unsigned long long)p.body_len,
              (unsigned long long)p.body_crlf_len, (unsigned long long)p.header_len,
              (unsigned long long)p.header_crlf_len);
    }
    free(s.blob);

    s = sum_of(M_MIXED, strlen(M_MIXED));
    check_env("mixed", s,
              "(NIL \"att\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" "
              "\"b.c\")) NIL NIL NIL NIL NIL)");
    check_bs("mixed", s, true,
             "((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"quoted-printable\" 8 0 NIL "
             "NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"doc.pdf\") \"<pdf1@x>\" \"The "
             "\\\"doc\\\"\" \"base64\" 8 NIL (\"attachment\" (\"filename\" \"doc.pdf\")) NIL NIL) "
             "\"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)");
    check_bs("mixed", s, false,
             "((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL \"quoted-printable\" 8 0)"
             "(\"application\" \"pdf\" (\"name\" \"doc.pdf\") \"<pdf1@x>\" \"The \\\"doc\\\"\" "
             "\"base64\" 8) \"mixed\")");
    check_part_body("mixed", s, M_MIXED, "1", "text", "plain", "Hello=20");
    check_part_body("mixed", s, M_MIXED, "2", "application", "pdf", "JVBERi0=");
    check_part_body("mixed", s, M_MIXED, "", "multipart", "mixed", strstr(M_MIXED, "preamble"));
    {
        int r;
        store_mime_part p = part_of(s, "1", &r);
        CHECK(strcmp(p.encoding, "quoted-printable") == 0 && strcmp(p.charset, "utf-8") == 0,
              "mixed: part 1 encoding '%s' charset '%s'", p.encoding, p.charset);
        CHECK(p.header_off == (uint64_t)(strstr(M_MIXED, "--XX\n") - M_MIXED) + 5,
              "mixed: part 1 header offset %llu", (unsigned long long)p.header_off);
        p = part_of(s, "", &r);
        CHECK(p.is_multipart && p.nparts == 2, "mixed: root is multipart with 2 parts");
    }
    check_noent("mixed", s, "3", -ENOENT);
    check_noent("mixed", s, "1.1", -ENOENT);
    free(s.blob);

    s = sum_of(M_NESTED, strlen(M_NESTED));
    check_env("nested", s, EMPTY_ENV);
    check_bs("nested", s, true,
             "(((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)(\"text\" "
             "\"html\" " PLAIN_DEF " NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) \"alternative\" "
             "(\"boundary\" \"inner\") NIL NIL NIL)(\"image\" \"png\" NIL NIL NIL \"base64\" 4 NIL "
             "NIL NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");
    check_bs("nested", s, false,
             "(((\"text\" \"plain\" " PLAIN_DEF
             " NIL NIL \"7bit\" 5 0)(\"text\" \"html\" " PLAIN_DEF
             " NIL NIL \"7bit\" 11 0) \"alternative\")(\"image\" \"png\" NIL NIL NIL \"base64\" "
             "4) \"mixed\")");
    check_part_body("nested", s, M_NESTED, "1.1", "text", "plain", "plain");
    check_part_body("nested", s, M_NESTED, "1.2", "text", "html", "<p>html</p>");
    check_part_body("nested", s, M_NESTED, "2", "image", "png", "iVBO");
    {
        int r;
        store_mime_part p = part_of(s, "1", &r);
        CHECK(r == 0 && p.is_multipart && p.nparts == 2 && strcmp(p.subtype, "alternative") == 0,
              "nested: part 1 is multipart/alternative with 2 parts");
    }
    check_noent("nested", s, "3", -ENOENT);
    check_noent("nested", s, "1.3", -ENOENT);
    check_noent("nested", s, "2.1", -ENOENT);
    check_noent("nested", s, "1.1.1", -ENOENT);
    free(s.blob);

    s = sum_of(M_RFC822, strlen(M_RFC822));
    check_env("rfc822", s,
              "(NIL \"fwd\" ((\"Doe, John\" NIL \"john\" \"example.com\")) ((\"Doe, John\" NIL "
              "\"john\" \"example.com\")) ((\"Doe, John\" NIL \"john\" \"example.com\")) NIL NIL "
              "NIL NIL NIL)");
    check_bs("rfc822", s, true,
             "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL)"
             "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 136 (NIL \"inner\" ((NIL NIL \"carol\" "
             "\"example.net\")) ((NIL NIL \"carol\" \"example.net\")) ((NIL NIL \"carol\" "
             "\"example.net\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" " PLAIN_DEF " NIL NIL "
             "\"7bit\" 1 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"b2\") NIL NIL NIL) 8 "
             "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)");
    check_bs("rfc822", s, false,
             "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 12 0)(\"message\" \"rfc822\" NIL "
             "NIL NIL \"7bit\" 136 (NIL \"inner\" ((NIL NIL \"carol\" \"example.net\")) ((NIL NIL "
             "\"carol\" \"example.net\")) ((NIL NIL \"carol\" \"example.net\")) NIL NIL NIL NIL "
             "NIL) ((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0) \"alternative\") 8) "
             "\"mixed\")");
    {
        int r;
        store_mime_part p = part_of(s, "2", &r);
        const char *inner = strstr(M_RFC822, "From: carol");
        const char *ibody = strstr(M_RFC822, "--b2\n");
        CHECK(r == 0 && p.is_message && strcmp(p.type, "message") == 0 &&
                  p.body_off == (uint64_t)(inner - M_RFC822) && p.msg_header_off == p.body_off &&
                  p.msg_body_off == (uint64_t)(ibody - M_RFC822) &&
                  p.msg_header_off + p.msg_header_len == p.msg_body_off &&
                  p.msg_body_off + p.msg_body_len == p.body_off + p.body_len && p.body_len == 128 &&
                  p.body_crlf_len == 136,
              "rfc822: part 2 offsets");
    }
    check_part_body("rfc822", s, M_RFC822, "2.1", "text", "plain", "x");
    check_part_body("rfc822", s, M_RFC822, "1", "text", "plain", "see attached");
    check_noent("rfc822", s, "2.2", -ENOENT);
    check_noent("rfc822", s, "2.1.1", -ENOENT);
    check_noent("rfc822", s, "1.1", -ENOENT);
    free(s.blob);

    s = sum_of(M_GROUPS, strlen(M_GROUPS));
    check_env("groups", s,
              "(NIL {34}\r\n=?ISO-8859-1?Q?caf=E9?= two spaces ((\"=?UTF-8?B?SsO2cmc=?=\" NIL "
              "\"joerg\" \"example.com\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((NIL "
              "\"@route\" \"user\" \"domain\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL "
              "NIL NIL)) ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" "
              "\"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL "
              "NIL NIL NIL)) NIL \"<reply@to.id>\" \"<msg@id>\")");
    free(s.blob);

    s = sum_of(M_NOBOUNDARY, strlen(M_NOBOUNDARY));
    check_bs("noboundary", s, true,
             "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" "
             "(\"boundary\" \"zz\") NIL NIL NIL)");
    check_bs("noboundary", s, false,
             "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0) \"mixed\")");
    {
        int r;
        store_mime_part p = part_of(s, "1", &r);
        CHECK(r == 0 && p.body_len == 0 && strcmp(p.type, "text") == 0,
              "noboundary: part 1 is the empty text part");
    }
    check_noent("noboundary", s, "2", -ENOENT);
    free(s.blob);

    s = sum_of(M_NOFINAL, strlen(M_NOFINAL));
    check_bs("nofinal", s, true,
             "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL) \"mixed\" "
             "(\"boundary\" \"zz\") NIL NIL NIL)");
    check_part_body("nofinal", s, M_NOFINAL, "1", "text", "plain", "abc\n");
    free(s.blob);

    s = sum_of(M_NOHEADERS, strlen(M_NOHEADERS));
    check_env("noheaders", s, EMPTY_ENV);
    check_bs("noheaders", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 11 1 NIL NIL NIL NIL)");
    check_part_body("noheaders", s, M_NOHEADERS, "1", "text", "plain", "just body\n");
    free(s.blob);

    s = sum_of(M_HEADERONLY, strlen(M_HEADERONLY));
    check_env("headeronly", s,
              "(NIL \"x\" ((NIL NIL \"y\" \"z\")) ((NIL NIL \"y\" \"z\")) ((NIL NIL \"y\" \"z\")) "
              "NIL NIL NIL NIL NIL)");
    check_bs("headeronly", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
    {
        int r;
        store_mime_part p = part_of(s, "", &r);
        CHECK(r == 0 && p.header_len == strlen(M_HEADERONLY) && p.body_len == 0 &&
                  p.body_off == strlen(M_HEADERONLY),
              "headeronly: header covers the message");
    }
    free(s.blob);

    s = sum_of("", 0);
    check_env("empty", s, EMPTY_ENV);
    check_bs("empty", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
    check_bs("empty", s, false, "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0)");
    {
        uint64_t sz = 1;
        uint32_t lines = 1;
        int r = store_mime_totals(s.blob, s.len, &sz, &lines);
        CHECK(r == 0 && sz == 0 && lines == 0, "empty: totals");
        store_mime_part p = part_of(s, "1", &r);
        CHECK(r == 0 && p.body_len == 0 && p.header_len == 0, "empty: part 1");
    }
    free(s.blob);

    /* a lone CR is not a line end: the whole message is one header line, sizes unchanged */
    s = sum_of(M_BARECR, strlen(M_BARECR));
    check_env("barecr", s, "(NIL {14}\r\naFrom: b@cbody NIL NIL NIL NIL NIL NIL NIL NIL)");
    check_bs("barecr", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
    {
        uint64_t sz = 0;
        uint32_t lines = 0;
        store_mime_totals(s.blob, s.len, &sz, &lines);
        CHECK(sz == strlen(M_BARECR) && lines == 1, "barecr: totals %llu %u",
              (unsigned long long)sz, lines);
    }
    free(s.blob);

    s = sum_of(M_8BIT, strlen(M_8BIT));
    check_env("8bit", s,
              "(NIL {5}\r\ncaf\xc3\xa9 (({7}\r\n\"q\" \\ x NIL \"q\" \"x\")) (({7}\r\n\"q\" \\ x "
              "NIL \"q\" "
              "\"x\")) (({7}\r\n\"q\" \\ x NIL \"q\" \"x\")) NIL NIL NIL NIL NIL)");
    free(s.blob);

    s = sum_of(M_DIGEST, strlen(M_DIGEST));
    check_bs("digest", s, true,
             "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 32 (NIL \"one\" ((NIL NIL \"x\" "
             "\"y\")) ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL) "
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) 3 NIL NIL "
             "NIL NIL) \"digest\" (\"boundary\" \"d\") NIL NIL NIL)");
    {
        int r;
        store_mime_part p = part_of(s, "1", &r);
        CHECK(r == 0 && p.is_message && strcmp(p.type, "message") == 0 &&
                  strcmp(p.subtype, "rfc822") == 0 && p.header_len == 1,
              "digest: part 1 is message/rfc822 by default");
    }
    check_part_body("digest", s, M_DIGEST, "1.1", "text", "plain", "body1");
    free(s.blob);

    s = sum_of(M_EXT, strlen(M_EXT));
    check_env("ext", s, "(NIL \"NIL\" NIL NIL NIL NIL NIL NIL NIL NIL)");
    check_bs("ext", s, true,
             "(\"text\" \"html\" (\"charset\" \"iso-8859-1\" \"format\" \"flowed\") NIL NIL "
             "\"8bit\" 8 2 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" NIL) (\"en\" \"de-DE\") "
             "\"http://x/y\")");
    free(s.blob);

    s = sum_of(M_NUL, sizeof(M_NUL) - 1);
    check_env("nul", s, "(NIL {2}\r\nab NIL NIL NIL NIL NIL NIL NIL NIL)");
    check_bs("nul", s, true,
             "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)");
    free(s.blob);

    /* without MIME-Version and Content-Type a message is not MIME: Content-* fields are ignored */
    {
        const char m1[] = "Content-Transfer-Encoding: base64\nContent-Description: d\n\nx";
        const char m2[] = "MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n"
                          "Content-Description: d\n\nx";
        s = sum_of(m1, strlen(m1));
        check_bs("not-mime", s, true,
                 "(\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)");
        free(s.blob);
        s = sum_of(m2, strlen(m2));
        check_bs("mime-version", s, true,
                 "(\"text\" \"plain\" " PLAIN_DEF " NIL \"d\" \"base64\" 1 0 NIL NIL NIL NIL)");
        free(s.blob);
    }

    /* an RFC 2231 encoded boundary is decoded to find the parts */
    {
        const char m[] = "Content-Type: multipart/signed;\n boundary*=\"us-ascii''a%2Db\"\n\n"
                         "--a-b\n\nx\n--a-b--\n";
        s = sum_of(m, strlen(m));
        check_bs("boundary*", s, false,
                 "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0) \"signed\")");
        free(s.blob);
    }

    /* broken addresses: words without '@' become a name, <> an address with nothing in it */
    {
        const char m[] = "From: MAILER DAEMON <>\nTo: Mary Smith, foo@bar (Foo  Bar), "
                         "\"q\\\"x\" <q@x> (ignored)\n\n";
        s = sum_of(m, strlen(m));
        check_env("broken-addr", s,
                  "(NIL NIL ((\"MAILER DAEMON\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
                  "((\"MAILER DAEMON\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) ((\"MAILER "
                  "DAEMON\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) ((\"Mary Smith\" NIL "
                  "\"MISSING_MAILBOX\" \"MISSING_DOMAIN\")({7}\r\nFoo Bar NIL \"foo\" \"bar\")"
                  "({3}\r\nq\"x NIL \"q\" \"x\")) NIL NIL NIL NIL)");
        free(s.blob);
    }

    /* RFC 2231: sections are merged (values stay encoded), plain parameters come first */
    {
        const char m[] = "Content-Type: application/x-y; name*1=\"b%c\"; name*0*=utf-8''a%41;\n"
                         " title*=us-ascii'en'T; x=1; gap*0=a; gap*2=c; boundary=----=_P\n"
                         "Content-Disposition: attachment; filename*0=\"lo\"; filename*1=ng\n\nz";
        s = sum_of(m, strlen(m));
        check_bs("rfc2231", s, true,
                 "(\"application\" \"x-y\" (\"x\" \"1\" \"boundary\" \"----=_P\" \"gap*0\" "
                 "\"a\" \"gap*2\" \"c\" \"name*\" \"utf-8''a%41b%25c\" \"title*\" "
                 "\"us-ascii'en'T\") NIL NIL \"7bit\" 1 NIL (\"attachment\" (\"filename\" "
                 "\"long\")) NIL NIL)");
        free(s.blob);
    }

    /* quoting: more than 4 characters to escape gives a literal, as Dovecot does */
    {
        const char m[] = "Subject: \\\\\\\"\"\n\n";
        s = sum_of(m, strlen(m));
        check_env("quoting", s, "(NIL {5}\r\n\\\\\\\"\" NIL NIL NIL NIL NIL NIL NIL NIL)");
        free(s.blob);
    }

    /* compared with Dovecot 2.3 (tools/compare_dovecot.py): repeated address fields are merged
     * into one list (cpython/msg_20.txt) */
    {
        const char m[] = "From: <a@x.org>\nCc: c@x.org\nFrom: <b@y.org>\nCC: d@x.org, e@x.org\n\n";
        s = sum_of(m, strlen(m));
        check_env(
            "dovecot-merge", s,
            "(NIL NIL ((NIL NIL \"a\" \"x.org\")(NIL NIL \"b\" \"y.org\")) ((NIL NIL \"a\" "
            "\"x.org\")(NIL NIL \"b\" \"y.org\")) ((NIL NIL \"a\" \"x.org\")(NIL NIL \"b\" "
            "\"y.org\")) NIL ((NIL NIL \"c\" \"x.org\")(NIL NIL \"d\" \"x.org\")(NIL NIL \"e\" "
            "\"x.org\")) NIL NIL NIL)");
        free(s.blob);
    }

    /* a route belongs to its own address only: the angle addresses after it have none */
    {
        const char m[] = "To: <@r1,@r2:a@b>, <c@d>, Name <e@f>\nCc: <@r3:g@h>, i@j\n\n";
        s = sum_of(m, strlen(m));
        check_env("route-once", s,
                  "(NIL NIL NIL NIL NIL ((NIL \"@r1,@r2\" \"a\" \"b\")(NIL NIL \"c\" \"d\")"
                  "(\"Name\" NIL \"e\" \"f\")) ((NIL \"@r3\" \"g\" \"h\")(NIL NIL \"i\" \"j\")) "
                  "NIL NIL NIL)");
        free(s.blob);
    }

    /* a local part without '@' is a mailbox with MISSING_DOMAIN, a comment names it
     * (cpython/msg_15.txt); after a domain, junk up to ',' is skipped ("a@b <c@d>") */
    {
        const char m[] = "From: nsb (Nathaniel Borenstein)\nTo: XX, Two Words\n"
                         "Cc: alice@example.com <bob@example.com>, t@x.org u@y.org, v@z.org\n\n";
        s = sum_of(m, strlen(m));
        check_env(
            "dovecot-noat", s,
            "(NIL NIL ((\"Nathaniel Borenstein\" NIL \"nsb\" \"MISSING_DOMAIN\")) "
            "((\"Nathaniel Borenstein\" NIL \"nsb\" \"MISSING_DOMAIN\")) "
            "((\"Nathaniel Borenstein\" NIL \"nsb\" \"MISSING_DOMAIN\")) "
            "((NIL NIL \"XX\" \"MISSING_DOMAIN\")(\"Two Words\" NIL \"MISSING_MAILBOX\" "
            "\"MISSING_DOMAIN\")) ((NIL NIL \"alice\" \"example.com\")(NIL NIL \"t\" \"x.org\")"
            "(NIL NIL \"v\" \"z.org\")) NIL NIL NIL)");
        free(s.blob);
    }

    /* subjects and names Dovecot changes for humans (folded, doubled or edge blanks, TAB, '"',
     * '\\') are literals; others stay quoted (cpython/msg_27.txt, enmime delayed_dsn.raw) */
    {
        const char m[] = "Subject: a long\r\n subject\r\nFrom: First\" M. \"Last <f@x.org>\r\n"
                         "To: Plain Name <p@x.org>, \"a  b\" <ab@x.org>\r\nCc: \"x\" <t@x.org> "
                         "(c)\r\n\r\n";
        s = sum_of(m, strlen(m));
        check_env("dovecot-literal", s,
                  "(NIL {14}\r\na long subject (({13}\r\nFirst M. Last NIL \"f\" \"x.org\")) "
                  "(({13}\r\nFirst M. Last NIL \"f\" \"x.org\")) (({13}\r\nFirst M. Last NIL \"f\" "
                  "\"x.org\")) "
                  "((\"Plain Name\" NIL \"p\" \"x.org\")({3}\r\na b NIL \"ab\" \"x.org\")) "
                  "((\"x\" NIL \"t\" \"x.org\")) NIL NIL NIL)");
        const char q[] = "Subject: said \"hi\"\n\n";
        free(s.blob);
        s = sum_of(q, strlen(q));
        check_env("dovecot-literal-quote", s,
                  "(NIL {9}\r\nsaid \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL)");
        free(s.blob);
    }

    /* date, in-reply-to and message-id are sent as written: a folded value keeps its blank,
     * trailing blanks stay (mox junk/parse3.eml) */
    {
        const char m[] = "Date:  Wed, 11 Feb 98 11:51 CST\r\n \r\nIn-Reply-To:\r\n <a@b>\r\n"
                         "Message-ID: <c@d>\r\n\r\n";
        s = sum_of(m, strlen(m));
        check_env(
            "dovecot-raw", s,
            "(\"Wed, 11 Feb 98 11:51 CST \" NIL NIL NIL NIL NIL NIL NIL \" <a@b>\" \"<c@d>\")");
        free(s.blob);
    }

    /* a parameter whose quoted value is not closed is dropped (enmime
     * missing-closing-param-quote.raw) */
    {
        const char m[] =
            "Content-Type: text/html; format=x; charset=\"UTF-8 Return-Path: a@b\n\ny\n";
        s = sum_of(m, strlen(m));
        check_bs(
            "dovecot-open-quote", s, false,
            "(\"text\" \"html\" (\"format\" \"x\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 "
            "1)");
        free(s.blob);
    }

    /* a line that starts with the boundary is one, whatever follows (RFC 2046 5.1.1; mime4j
     * ending-boundaries.msg) */
    {
        const char m[] = "Content-Type: multipart/mixed; boundary=b\n\n--b junk\n\nx\n--b-- junk\n";
        s = sum_of(m, strlen(m));
        check_bs("dovecot-boundary-prefix", s, false,
                 "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0) \"mixed\")");
        free(s.blob);
        /* a boundary as the unterminated last line starts no part (rspamd badboundary.eml) */
        const char e[] = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b";
        s = sum_of(e, strlen(e));
        check_bs("dovecot-boundary-eof", s, false,
                 "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0) \"mixed\")");
        free(s.blob);
    }

    /* the last Content-Disposition wins; an empty or unusable one is ("" NIL)
     * (enmime inlinemultipart.raw, mail-gem multiple_invalid_content_dispositions.eml) */
    {
        const char m[] = "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                         "Content-Disposition: inline\nContent-Disposition: attachment; "
                         "filename=t\n\nx\n--b\nContent-Disposition: =?utf-8?q?x?=\n\ny\n--b--\n";
        s = sum_of(m, strlen(m));
        check_bs("dovecot-disposition", s, true,
                 "((\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0 NIL (\"attachment\" "
                 "(\"filename\" \"t\")) NIL NIL)(\"text\" \"plain\" " PLAIN_DEF
                 " NIL NIL \"7bit\" 1 "
                 "0 NIL (\"\" NIL) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)");
        free(s.blob);
    }

    /* message/rfc822 is sent in lower case whatever the message says (cpython/msg_16.txt); a
     * multipart without parts gets extension data for its empty part (cpython/msg_17.txt) */
    {
        const char m[] = "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                         "Content-Type: MESSAGE/RFC822\n\nSubject: s\n\nx\n--b\n"
                         "Content-Type: multipart/alternative\n\n--b--\n";
        s = sum_of(m, strlen(m));
        check_bs("dovecot-case", s, true,
                 "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 15 (NIL \"s\" NIL NIL NIL NIL NIL "
                 "NIL NIL NIL) (\"text\" \"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 1 0 NIL NIL NIL "
                 "NIL) 2 NIL NIL NIL NIL)((\"text\" \"plain\" " PLAIN_DEF
                 " NIL NIL \"7bit\" 0 0 NIL "
                 "NIL NIL NIL) \"alternative\" NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL "
                 "NIL NIL)");
        check_bs("dovecot-case", s, false,
                 "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 15 (NIL \"s\" NIL NIL NIL NIL NIL "
                 "NIL NIL NIL) (\"text\" \"plain\" " PLAIN_DEF
                 " NIL NIL \"7bit\" 1 0) 2)((\"text\" "
                 "\"plain\" " PLAIN_DEF " NIL NIL \"7bit\" 0 0) \"alternative\") \"mixed\")");
        free(s.blob);
    }
}

/* ---------- section contents from dovecot/imaptest (fetch-body-mime, fetch-body-message-*) ---- */

/* WHAT: "" (the part), "MIME", "HEADER" or "TEXT", as in BODY[<sec>.<what>]. */
static void check_section(const char *name, struct sum s, const char *m, const char *sec,
                          const char *what, const char *want)
{
    int r;
    store_mime_part p = part_of(s, sec, &r);
    CHECK(r == 0, "%s: section '%s' not found (%d)", name, sec, r);
    if (r != 0) return;
    uint64_t off, len;
    if (strcmp(what, "MIME") == 0) {
        off = p.header_off;
        len = p.header_len;
    } else if (strcmp(what, "HEADER") == 0 || strcmp(what, "TEXT") == 0) {
        bool hdr = strcmp(what, "HEADER") == 0;
        if (sec[0] == '\0') {
            off = hdr ? p.header_off : p.body_off;
            len = hdr ? p.header_len : p.body_len;
        } else {
            CHECK(p.is_message, "%s: section '%s' is not a message", name, sec);
            off = hdr ? p.msg_header_off : p.msg_body_off;
            len = hdr ? p.msg_header_len : p.msg_body_len;
        }
    } else {
        off = p.body_off;
        len = p.body_len;
    }
    CHECK(len == strlen(want) && memcmp(m + off, want, len) == 0,
          "%s: BODY[%s%s%s]\n  got  '%.*s'\n  want '%s'", name, sec, what[0] && sec[0] ? "." : "",
          what, (int)len, m + off, want);
}

static const char M_IT_MIME[] = "From: user@domain.org\n"
                                "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
                                "Mime-Version: 1.0\n"
                                "Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n"
                                "\n"
                                "Root MIME prologue\n"
                                "\n"
                                "--foo bar\n"
                                "Content-Type: text/x-myown; charset=us-ascii\n"
                                "\n"
                                "hello\n"
                                "\n"
                                "--foo bar\n"
                                "Content-Type: message/rfc822\n"
                                "\n"
                                "From: sub@domain.org\n"
                                "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
                                "Subject: submsg\n"
                                "Content-Type: multipart/alternative; boundary=\"sub1\"\n"
                                "\n"
                                "Sub MIME prologue\n"
                                "--sub1\n"
                                "Content-Type: text/html\n"
                                "\n"
                                "<p>Hello world</p>\n"
                                "\n"
                                "--sub1\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "Hello another world\n"
                                "\n"
                                "--sub1--\n"
                                "Sub MIME epilogue\n"
                                "\n"
                                "--foo bar--\n"
                                "Root MIME epilogue\n"
                                "\n";

static const char M_IT_DIGEST[] = "From: user@domain.org\n"
                                  "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
                                  "Mime-Version: 1.0\n"
                                  "Content-Type: message/rfc822\n"
                                  "\n"
                                  "From: sub@domain.org\n"
                                  "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
                                  "Subject: submsg\n"
                                  "Content-Type: multipart/digest; boundary=\"foo\"\n"
                                  "\n"
                                  "prologue\n"
                                  "\n"
                                  "--foo \n"
                                  "\n"
                                  "From: m1@example.com\n"
                                  "Subject: m1\n"
                                  "\n"
                                  "m1 body\n"
                                  "\n"
                                  "--foo \n"
                                  "X-Mime: m2 header\n"
                                  "\n"
                                  "From: m2@example.com\n"
                                  "Subject: m2\n"
                                  "\n"
                                  "m2 body\n"
                                  "\n"
                                  "--foo--\n"
                                  "\n"
                                  "epilogue\n"
                                  "\n";

static const char M_IT_X2[] = "From: user@domain.org\n"
                              "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
                              "Mime-Version: 1.0\n"
                              "Content-Type: message/rfc822\n"
                              "\n"
                              "From: user2@domain.org\n"
                              "Date: Fri, 23 Mar 2007 11:22:33 +0200\n"
                              "Mime-Version: 1.0\n"
                              "Content-Type: message/rfc822\n"
                              "\n"
                              "From: sub@domain.org\n"
                              "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
                              "Subject: submsg\n"
                              "\n"
                              "Hello world\n"
                              "\n";

/* The protocol library renders a description built by hand, without the store's parser: what
 * the parser hands it is all it needs. */
static void test_rendering_alone(void)
{
    mfs_buf params = {0}, from = {0}, subject = {0}, date = {0}, b = {0};
    imap_bodystructure_param(&params, "charset", 7, "UTF-8", 5);
    imap_bodystructure_param(&params, "name", 4, "a \"b\"", 5);
    imap_envelope_address(&from, &(imap_address){.name = "  Ann   Lee ",
                                                 .name_len = 12,
                                                 .mailbox = "ann",
                                                 .mailbox_len = 3,
                                                 .host = "x.org",
                                                 .host_len = 5});
    imap_envelope_address(&from, &(imap_address){.mailbox = "list", .mailbox_len = 4});
    imap_envelope_address(&from, &(imap_address){.route = "@r",
                                                 .route_len = 2,
                                                 .mailbox = "b",
                                                 .mailbox_len = 1,
                                                 .host = "y",
                                                 .host_len = 1});
    imap_envelope_address(&from, &(imap_address){0});
    imap_envelope_subject(&subject, "re:\r\n  hi", 9);
    imap_quote_string(&date, "1 Jan 2024", 10, false);

    imap_part inner = {.kind = IMAP_PART_LEAF, .size = 3, .lines = 1};
    imap_part nested = {.kind = IMAP_PART_MULTIPART, .subtype = "mixed", .first_child = &inner};
    imap_part text = {.kind = IMAP_PART_LEAF,
                      .type = "TEXT",
                      .subtype = "Plain",
                      .params = params.data,
                      .has_charset = true,
                      .size = 10,
                      .lines = 2};
    imap_part msg = {.kind = IMAP_PART_MESSAGE,
                     .type = "Message",
                     .subtype = "RFC822",
                     .encoding = "8bit",
                     .size = 40,
                     .lines = 4,
                     .message = &nested};
    text.next = &msg;
    nested.envelope.field[IMAP_ENV_SUBJECT] = subject.data;
    imap_part root = {.kind = IMAP_PART_MULTIPART,
                      .subtype = "alternative",
                      .first_child = &text,
                      .disposition = "\"inline\""};
    root.envelope.field[IMAP_ENV_DATE] = date.data;
    root.envelope.field[IMAP_ENV_FROM] = from.data;

    imap_envelope_write(&b, &root.envelope);
    const char *env =
        "(\"1 Jan 2024\" NIL (({7}\r\nAnn Lee NIL \"ann\" \"x.org\")(NIL NIL \"list\" "
        "NIL)(NIL \"@r\" \"b\" \"y\")(NIL NIL NIL NIL)) ((" /* sender = from */;
    CHECK(strncmp(b.data, env, strlen(env)) == 0, "rendering alone: ENVELOPE\n  got  %s", b.data);
    CHECK(strstr(b.data, ")) NIL NIL NIL NIL NIL)") != NULL && b.data[b.len - 1] == ')',
          "rendering alone: ENVELOPE end\n  got  %s", b.data);
    mfs_buf_truncate(&b, 0);
    imap_bodystructure_write(&b, &root, false);
    const char *body = "((\"TEXT\" \"Plain\" (\"charset\" \"UTF-8\" \"name\" \"a \\\"b\\\"\") NIL "
                       "NIL \"7bit\" 10 2)(\"message\" \"rfc822\" NIL NIL NIL \"8bit\" 40 (NIL "
                       "{6}\r\nre: hi NIL NIL NIL NIL NIL NIL NIL NIL) ((\"text\" \"plain\" "
                       "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1) \"mixed\") 4) "
                       "\"alternative\")";
    CHECK(strcmp(b.data, body) == 0, "rendering alone: BODY\n  got  %s\n  want %s", b.data, body);
    mfs_buf_truncate(&b, 0);
    imap_bodystructure_write(&b, &root, true);
    CHECK(strstr(b.data, "\"alternative\" NIL (\"inline\" NIL) NIL NIL)") != NULL,
          "rendering alone: BODYSTRUCTURE\n  got  %s", b.data);
    mfs_buf_free(&params);
    mfs_buf_free(&from);
    mfs_buf_free(&subject);
    mfs_buf_free(&date);
    mfs_buf_free(&b);
}

static void test_imaptest_sections(void)
{
    struct sum s = sum_of(M_IT_MIME, strlen(M_IT_MIME));
    const char *m = M_IT_MIME;
    const char *sub = strstr(m, "From: sub@");
    check_section("it-mime", s, m, "", "TEXT", strstr(m, "Root MIME prologue"));
    check_section("it-mime", s, m, "1", "", "hello\n");
    check_section("it-mime", s, m, "1", "MIME", "Content-Type: text/x-myown; charset=us-ascii\n\n");
    {
        char want[1024];
        size_t n = (size_t)(strstr(m, "\n--foo bar--") - sub);
        snprintf(want, sizeof(want), "%.*s", (int)n, sub);
        check_section("it-mime", s, m, "2", "", want);
        n = (size_t)(strstr(sub, "\n\n") - sub) + 2;
        snprintf(want, sizeof(want), "%.*s", (int)n, sub);
        check_section("it-mime", s, m, "2", "HEADER", want);
    }
    check_section("it-mime", s, m, "2", "MIME", "Content-Type: message/rfc822\n\n");
    check_section("it-mime", s, m, "2", "TEXT",
                  "Sub MIME prologue\n--sub1\nContent-Type: text/html\n\n<p>Hello world</p>\n\n"
                  "--sub1\nContent-Type: text/plain\n\nHello another world\n\n--sub1--\n"
                  "Sub MIME epilogue\n");
    check_section("it-mime", s, m, "2.1", "MIME", "Content-Type: text/html\n\n");
    check_section("it-mime", s, m, "2.1", "", "<p>Hello world</p>\n");
    check_section("it-mime", s, m, "2.2", "MIME", "Content-Type: text/plain\n\n");
    check_section("it-mime", s, m, "2.2", "", "Hello another world\n");
    check_bs("it-mime", s, true,
             "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL "
             "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 298 (\"Sun, 12 Aug 2012 12:34:56 "
             "+0300\" \"submsg\" ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" "
             "\"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) NIL NIL NIL NIL NIL) ((\"text\" "
             "\"html\" " PLAIN_DEF
             " NIL NIL \"7bit\" 20 1 NIL NIL NIL NIL)(\"text\" \"plain\" " PLAIN_DEF
             " NIL NIL \"7bit\" 21 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"sub1\") NIL "
             "NIL NIL) 18 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"foo bar\") NIL NIL NIL)");
    free(s.blob);

    s = sum_of(M_IT_DIGEST, strlen(M_IT_DIGEST));
    m = M_IT_DIGEST;
    sub = strstr(m, "From: sub@");
    check_section("it-digest", s, m, "", "TEXT", sub);
    check_section("it-digest", s, m, "1", "", sub);
    check_section("it-digest", s, m, "1", "HEADER",
                  "From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n"
                  "Content-Type: multipart/digest; boundary=\"foo\"\n\n");
    check_section("it-digest", s, m, "1", "TEXT", strstr(m, "prologue"));
    check_section("it-digest", s, m, "1.1", "", "From: m1@example.com\nSubject: m1\n\nm1 body\n");
    check_section("it-digest", s, m, "1.1", "MIME", "\n");
    check_section("it-digest", s, m, "1.1", "HEADER", "From: m1@example.com\nSubject: m1\n\n");
    check_section("it-digest", s, m, "1.1", "TEXT", "m1 body\n");
    check_section("it-digest", s, m, "1.2", "", "From: m2@example.com\nSubject: m2\n\nm2 body\n");
    check_section("it-digest", s, m, "1.2", "MIME", "X-Mime: m2 header\n\n");
    check_section("it-digest", s, m, "1.2", "HEADER", "From: m2@example.com\nSubject: m2\n\n");
    check_section("it-digest", s, m, "1.2", "TEXT", "m2 body\n");
    free(s.blob);

    s = sum_of(M_IT_X2, strlen(M_IT_X2));
    m = M_IT_X2;
    const char *u2 = strstr(m, "From: user2@");
    sub = strstr(m, "From: sub@");
    check_section("it-x2", s, m, "", "TEXT", u2);
    check_section("it-x2", s, m, "1", "", u2);
    check_section("it-x2", s, m, "1.1", "", sub);
    check_section("it-x2", s, m, "1", "HEADER",
                  "From: user2@domain.org\nDate: Fri, 23 Mar 2007 11:22:33 +0200\nMime-Version: "
                  "1.0\nContent-Type: message/rfc822\n\n");
    check_section("it-x2", s, m, "1", "TEXT", sub);
    check_section("it-x2", s, m, "1.1.1", "", "Hello world\n\n");
    check_section(
        "it-x2", s, m, "1.1", "HEADER",
        "From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n\n");
    check_section("it-x2", s, m, "1.1", "TEXT", "Hello world\n\n");
    check_noent("it-x2", s, "2", -ENOENT);
    check_noent("it-x2", s, "1.2", -ENOENT);
    check_noent("it-x2", s, "1.1.1.1", -ENOENT);
    free(s.blob);
}

/* ---------- structural checks usable on any input ---------- */

/* Validates IMAP syntax of a rendered list: nested parens, quoted strings, literals, atoms. */
static bool imap_syntax_ok(const char *s, size_t n)
{
    int depth = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '(') {
            depth++;
            i++;
        } else if (c == ')') {
            if (--depth < 0) return false;
            i++;
        } else if (c == ' ') {
            i++;
        } else if (c == '"') {
            i++;
            while (i < n && s[i] != '"') {
                unsigned char q = (unsigned char)s[i];
                if (q == '\r' || q == '\n' || q == 0 || q >= 0x80) return false;
                if (q == '\\') {
                    if (i + 1 >= n || (s[i + 1] != '"' && s[i + 1] != '\\')) return false;
                    i++;
                }
                i++;
            }
            if (i >= n) return false;
            i++;
        } else if (c == '{') {
            size_t len = 0;
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                len = len * 10 + (size_t)(s[i++] - '0');
            if (i + 3 > n || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n') return false;
            i += 3;
            if (len > n - i) return false;
            i += len;
        } else if ((c >= '0' && c <= '9') || c == 'N') {
            if (c == 'N') {
                if (i + 3 > n || memcmp(s + i, "NIL", 3) != 0) return false;
                i += 3;
            } else {
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
            if (i < n && s[i] != ' ' && s[i] != ')') return false;
        } else {
            return false;
        }
    }
    return depth == 0 && n > 0 && s[0] == '(' && s[n - 1] == ')';
}

/* Walks every part by section number and checks offsets and sizes against the raw bytes. */
static unsigned walk_parts(const char *name, const unsigned char *m, size_t n, struct sum s,
                           const char *sec, int depth, unsigned *count)
{
    int r;
    store_mime_part p = part_of(s, sec, &r);
    if (r != 0) return 1;
    if (++*count > 20000 || depth > 200) return 0;
    unsigned bad = 0;
    uint64_t hend = p.header_off + p.header_len, bend = p.body_off + p.body_len;
    if (hend != p.body_off || bend > n || p.body_off > n) {
        printf("FAIL corpus: %s: part '%s' offsets %llu+%llu %llu+%llu outside %zu\n", name, sec,
               (unsigned long long)p.header_off, (unsigned long long)p.header_len,
               (unsigned long long)p.body_off, (unsigned long long)p.body_len, n);
        return 1;
    }
    /* recount: bare LF become CRLF, line count = LF count */
    uint64_t bare = 0, lfs = 0;
    for (uint64_t i = p.body_off; i < bend; i++) {
        if (m[i] == '\n') {
            lfs++;
            if (i == 0 || m[i - 1] != '\r') bare++;
        }
    }
    if (p.body_crlf_len != p.body_len + bare || p.body_lines != lfs) {
        printf("FAIL corpus: %s: part '%s' crlf %llu lines %u, recount %llu %llu\n", name, sec,
               (unsigned long long)p.body_crlf_len, p.body_lines,
               (unsigned long long)(p.body_len + bare), (unsigned long long)lfs);
        bad++;
    }
    bare = 0;
    for (uint64_t i = p.header_off; i < hend; i++)
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) bare++;
    if (p.header_crlf_len != p.header_len + bare) {
        printf("FAIL corpus: %s: part '%s' header crlf %llu, recount %llu\n", name, sec,
               (unsigned long long)p.header_crlf_len, (unsigned long long)(p.header_len + bare));
        bad++;
    }
    if (p.is_message &&
        (p.msg_header_off != p.body_off || p.msg_body_off + p.msg_body_len != bend ||
         p.msg_header_off + p.msg_header_len != p.msg_body_off)) {
        printf("FAIL corpus: %s: part '%s' message offsets\n", name, sec);
        bad++;
    }
    char sub[512];
    if (strlen(sec) > 400) return bad;
    if (p.is_multipart) {
        for (uint32_t k = 1; k <= p.nparts; k++) {
            snprintf(sub, sizeof(sub), "%s%s%u", sec, sec[0] ? "." : "", k);
            store_mime_part c = part_of(s, sub, &r);
            if (r != 0 || c.header_off < p.body_off || c.body_off + c.body_len > bend) {
                printf("FAIL corpus: %s: part '%s' outside its parent\n", name, sub);
                bad++;
                continue;
            }
            bad += walk_parts(name, m, n, s, sub, depth + 1, count);
        }
    } else if (p.is_message && !sec[0]) {
        bad += walk_parts(name, m, n, s, "1", depth + 1, count);
    } else if (p.is_message) {
        /* the parts of the encapsulated message: n.1, n.2, ... (just n.1 if not multipart) */
        for (uint32_t k = 1; k <= 5001; k++) {
            snprintf(sub, sizeof(sub), "%s.%u", sec, k);
            store_mime_part c = part_of(s, sub, &r);
            if (r != 0) break;
            if (c.header_off < p.body_off || c.body_off + c.body_len > bend) {
                printf("FAIL corpus: %s: part '%s' outside its message\n", name, sub);
                bad++;
                continue;
            }
            bad += walk_parts(name, m, n, s, sub, depth + 1, count);
        }
    }
    return bad;
}

static unsigned check_any(const char *name, const unsigned char *m, size_t n)
{
    struct sum s = sum_of((const char *)m, n);
    if (!s.blob) {
        printf("FAIL corpus: %s: no summary\n", name);
        return 1;
    }
    unsigned bad = 0;
    const char *o;
    size_t ol;
    if (store_mime_envelope(s.blob, s.len, &o, &ol) != 0 || !imap_syntax_ok(o, ol)) {
        printf("FAIL corpus: %s: ENVELOPE is not valid IMAP\n", name);
        bad++;
    }
    for (int ext = 0; ext < 2; ext++) {
        if (store_mime_bodystructure(s.blob, s.len, ext, &o, &ol) != 0 || !imap_syntax_ok(o, ol)) {
            printf("FAIL corpus: %s: %s is not valid IMAP\n", name, ext ? "BODYSTRUCTURE" : "BODY");
            bad++;
        }
    }
    uint64_t sz;
    uint32_t lines;
    uint64_t bare = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) bare++;
    if (store_mime_totals(s.blob, s.len, &sz, &lines) != 0 || sz != n + bare) {
        printf("FAIL corpus: %s: totals\n", name);
        bad++;
    }
    unsigned count = 0;
    bad += walk_parts(name, m, n, s, "", 0, &count);
    free(s.blob);
    return bad;
}

/* ---------- corpus ---------- */

struct file {
    char *path;
    unsigned char *data;
    size_t len;
};

static struct file *files;
static size_t nfiles, capfiles;

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (strcmp(de->d_name, "MANIFEST.tsv") == 0 || strcmp(de->d_name, "README.md") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            load_dir(path);
            continue;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > 64 * 1024 * 1024) continue;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        unsigned char *buf = malloc((size_t)st.st_size + 1);
        size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (!buf) continue;
        if (nfiles == capfiles) {
            capfiles = capfiles ? capfiles * 2 : 256;
            files = realloc(files, capfiles * sizeof(*files));
            if (!files) {
                fprintf(stderr, "unit_mime: out of memory\n");
                exit(2);
            }
        }
        files[nfiles].path = strdup(path);
        files[nfiles].data = buf;
        files[nfiles].len = got;
        nfiles++;
    }
    closedir(d);
}

static void test_corpus(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("corpus '%s' not found: corpus tests skipped\n", dir);
        return;
    }
    load_dir(dir);
    CHECK(nfiles > 0, "corpus '%s' holds no files", dir);
    clock_t t0 = clock();
    for (size_t i = 0; i < nfiles; i++) {
        unsigned bad = check_any(files[i].path, files[i].data, files[i].len);
        CHECK(bad == 0, "%s: %u structural problems", files[i].path, bad);
    }
    clock_t t1 = clock();
    for (size_t i = 0; i < nfiles; i++) {
        /* every split point for small files, about 300 for bigger ones */
        size_t n = files[i].len;
        size_t step = n <= 4096 ? 1 : n / 300 + 1;
        split_check(files[i].path, files[i].data, n, step);
    }
    clock_t t2 = clock();
    printf("corpus: %zu files, structure %.1fs, splits %.1fs\n", nfiles,
           (double)(t1 - t0) / CLOCKS_PER_SEC, (double)(t2 - t1) / CLOCKS_PER_SEC);
    for (size_t i = 0; i < nfiles; i++) {
        free(files[i].path);
        free(files[i].data);
    }
    free(files);
}

/* Pathological inputs: limits must hold without crashing, offsets must stay exact. */
static void test_limits(void)
{
    /* 100 deep nested multiparts: deeper than the limit becomes opaque */
    size_t cap = 1 << 20, n = 0;
    char *m = malloc(cap);
    if (!m) return;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(m + n, cap - n,
                              "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    n += (size_t)snprintf(m + n, cap - n, "\nleaf\n");
    unsigned bad = check_any("deep", (unsigned char *)m, n);
    CHECK(bad == 0, "deep nesting: %u problems", bad);
    split_check("deep", (unsigned char *)m, n, 7);

    /* 6000 parts: beyond the limit the rest is body of the last part */
    n = (size_t)snprintf(m, cap, "Content-Type: multipart/mixed; boundary=x\n\n");
    for (int i = 0; i < 6000; i++)
        n += (size_t)snprintf(m + n, cap - n, "--x\n\np%d\n", i);
    n += (size_t)snprintf(m + n, cap - n, "--x--\n");
    bad = check_any("many", (unsigned char *)m, n);
    CHECK(bad == 0, "many parts: %u problems", bad);
    struct sum s = sum_of(m, n);
    int r;
    store_mime_part p = part_of(s, "", &r);
    CHECK(r == 0 && p.nparts <= 5000 && p.nparts > 4000, "many parts: %u parts kept", p.nparts);
    free(s.blob);

    /* a 300 KB header line and a 200 KB body line */
    n = (size_t)snprintf(m, cap, "Subject: ");
    memset(m + n, 'a', 300000);
    n += 300000;
    n += (size_t)snprintf(m + n, cap - n, "\nContent-Type: text/plain\n\n");
    memset(m + n, 'b', 200000);
    n += 200000;
    bad = check_any("long", (unsigned char *)m, n);
    CHECK(bad == 0, "long lines: %u problems", bad);
    s = sum_of(m, n);
    const char *o;
    size_t ol;
    r = store_mime_envelope(s.blob, s.len, &o, &ol);
    CHECK(r == 0 && ol < 70000 && ol > 60000, "long header: envelope %zu bytes (field capped)", ol);
    p = part_of(s, "1", &r);
    CHECK(r == 0 && p.body_len == 200000, "long body line: %llu", (unsigned long long)p.body_len);
    free(s.blob);
    split_check("long", (unsigned char *)m, n, 10007);
    free(m);
}

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        const struct msg *mm = &messages[i];
        size_t n = mm->len ? mm->len : strlen(mm->text);
        split_check(mm->name, (const unsigned char *)mm->text, n, 1);
        unsigned bad = check_any(mm->name, (const unsigned char *)mm->text, n);
        CHECK(bad == 0, "%s: %u structural problems", mm->name, bad);
    }
    test_handwritten();
    test_imaptest_sections();
    test_rendering_alone();
    split_check("it-mime", (const unsigned char *)M_IT_MIME, strlen(M_IT_MIME), 1);
    split_check("it-digest", (const unsigned char *)M_IT_DIGEST, strlen(M_IT_DIGEST), 1);
    split_check("it-x2", (const unsigned char *)M_IT_X2, strlen(M_IT_X2), 1);
    test_limits();
    if (argc > 1)
        test_corpus(argv[1]);
    else
        printf("no corpus directory given: corpus tests skipped\n");
    return unit_finish();
}
