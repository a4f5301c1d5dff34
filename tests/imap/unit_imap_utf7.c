/* unit_imap_utf7.c: modified UTF-7 both ways, strict rejection, and IMAP string quoting */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"
#include "tests/unit.h"

static void roundtrip(const char *utf8, const char *utf7)
{
    imap_buf b = {0};
    CHECK(imap_utf7_encode(utf8, strlen(utf8), &b) == 0);
    CHECK_STR(b.data ? b.data : "", utf7);
    imap_buf_free(&b);
    CHECK(imap_utf7_decode(utf7, strlen(utf7), &b) == 0);
    CHECK_STR(b.data ? b.data : "", utf8);
    imap_buf_free(&b);
}

static void bad7(const char *utf7)
{
    imap_buf b = {0};
    imap_buf_puts(&b, "keep");
    int rc = imap_utf7_decode(utf7, strlen(utf7), &b);
    if (rc == 0) fprintf(stderr, "accepted bad modified UTF-7 [%s] as [%s]\n", utf7, b.data);
    CHECK(rc < 0);
    CHECK_STR(b.data, "keep"); /* left as it was */
    imap_buf_free(&b);
}

static void quoted(const char *s, size_t len, bool utf8, const char *want, int kind)
{
    imap_buf b = {0};
    if (kind == 0)
        imap_quote_string(&b, s, len, utf8);
    else if (kind == 1)
        imap_quote_astring(&b, s, len, utf8);
    else
        imap_quote_nstring(&b, s, len, utf8);
    CHECK_STR(b.data, want);
    imap_buf_free(&b);
}

int main(void)
{
    roundtrip("INBOX", "INBOX");
    roundtrip("", "");
    roundtrip("a&b", "a&-b");
    roundtrip("&", "&-");
    roundtrip("Entw\xc3\xbc"
              "rfe",
              "Entw&APw-rfe");
    roundtrip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
              "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    roundtrip("\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-");
    roundtrip("\xf0\x9f\x93\xa7 mail", "&2D3c5w- mail"); /* U+1F4E7, a surrogate pair */
    roundtrip("x\x7fy", "x&AH8-y");
    roundtrip("tab\there", "tab&AAk-here");
    /* strict decoding */
    bad7("&");          /* unterminated */
    bad7("&AOQ");       /* unterminated */
    bad7("&AOQ-&APY-"); /* two runs in a row */
    bad7("&AGE-");      /* 'a' encoded */
    bad7("&AOR-");      /* non-zero padding bits */
    bad7("&AOQA-");     /* a whole spare base64 char */
    bad7("&2D0-");      /* lone high surrogate */
    bad7("&3OcAQQ-");   /* lone low surrogate */
    bad7("&A/Q-");      /* '/' is not modified base64 */
    bad7("\xc3\xa4");   /* 8-bit */
    bad7("a\tb");       /* control */
    bad7("&AAA-");      /* NUL */
    /* invalid UTF-8 refuses to encode */
    {
        imap_buf b = {0};
        CHECK(imap_utf7_encode("\xc3", 1, &b) < 0);
        CHECK(imap_utf7_encode("\xc0\x80", 2, &b) < 0);         /* overlong */
        CHECK(imap_utf7_encode("\xed\xa0\x80", 3, &b) < 0);     /* surrogate */
        CHECK(imap_utf7_encode("\xf4\x90\x80\x80", 4, &b) < 0); /* > U+10FFFF */
        CHECK(b.len == 0);
        imap_buf_free(&b);
    }
    CHECK(imap_utf8_valid("h\xc3\xa9", 3));
    CHECK(!imap_utf8_valid("a\0b", 3));
    CHECK(imap_has_8bit("h\xc3\xa9", 3));
    CHECK(!imap_has_8bit("abc", 3));
    /* quoting */
    quoted("abc", 3, false, "\"abc\"", 0);
    quoted("", 0, false, "\"\"", 0);
    quoted("a\"b\\c", 5, false, "\"a\\\"b\\\\c\"", 0);
    quoted("a\r\nb", 4, false, "{4}\r\na\r\nb", 0);
    quoted("h\xc3\xa9", 3, false, "{3}\r\nh\xc3\xa9", 0);
    quoted("h\xc3\xa9", 3, true, "\"h\xc3\xa9\"", 0);
    quoted("INBOX", 5, false, "INBOX", 1);
    quoted("NIL", 3, false, "\"NIL\"", 1);
    quoted("a b", 3, false, "\"a b\"", 1);
    quoted("", 0, false, "\"\"", 1);
    quoted("50%", 3, false, "\"50%\"", 1);
    quoted(NULL, 0, false, "NIL", 2);
    /* one rule for every IMAP string (imap_quote.c): four characters to escape stay quoted,
     * five make a literal, as Dovecot does and as the MIME summary always did */
    quoted("a\"\"\\\\b", 6, false, "\"a\\\"\\\"\\\\\\\\b\"", 0);
    quoted("\"\"\"\"\"", 5, false, "{5}\r\n\"\"\"\"\"", 0);
    quoted("\"\"\"\"\"", 5, false, "{5}\r\n\"\"\"\"\"", 1);
    /* with UTF-8 enabled only valid UTF-8 may be quoted (RFC 9051 QUOTED-CHAR, RFC 6855) */
    quoted("h\xc3", 2, true, "{2}\r\nh\xc3", 0);
    quoted("\xc0\x80", 2, true, "{2}\r\n\xc0\x80", 0);
    quoted("\xf0\x9f\x93\xa7", 4, true, "\"\xf0\x9f\x93\xa7\"", 0);
    /* up to 4096 bytes are quoted, longer strings are literals */
    {
        static char big[5000];
        memset(big, 'x', sizeof(big));
        imap_buf b = {0};
        imap_quote_string(&b, big, 4096, false);
        CHECK(b.len == 4098 && b.data[0] == '"' && b.data[4097] == '"');
        imap_buf_truncate(&b, 0);
        imap_quote_string(&b, big, 4097, false);
        CHECK(strncmp(b.data, "{4097}\r\n", 8) == 0 && b.len == 4097 + 8);
        imap_buf_free(&b);
    }
    return unit_finish();
}
