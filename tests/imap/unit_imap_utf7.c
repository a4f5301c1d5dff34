/* unit_imap_utf7.c: modified UTF-7 both ways, strict rejection, UTF-8 validity */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"
#include "tests/unit.h"

static void roundtrip(const char *utf8, const char *utf7)
{
    mfs_buf b = {0};
    CHECK(imap_utf7_encode(utf8, strlen(utf8), &b) == 0);
    CHECK_STR(b.data ? b.data : "", utf7);
    mfs_buf_free(&b);
    CHECK(imap_utf7_decode(utf7, strlen(utf7), &b) == 0);
    CHECK_STR(b.data ? b.data : "", utf8);
    mfs_buf_free(&b);
}

static void bad7(const char *utf7)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, "keep");
    int rc = imap_utf7_decode(utf7, strlen(utf7), &b);
    if (rc == 0) fprintf(stderr, "accepted bad modified UTF-7 [%s] as [%s]\n", utf7, b.data);
    CHECK(rc < 0);
    CHECK_STR(b.data, "keep"); /* left as it was */
    mfs_buf_free(&b);
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
        mfs_buf b = {0};
        CHECK(imap_utf7_encode("\xc3", 1, &b) < 0);
        CHECK(imap_utf7_encode("\xc0\x80", 2, &b) < 0);         /* overlong */
        CHECK(imap_utf7_encode("\xed\xa0\x80", 3, &b) < 0);     /* surrogate */
        CHECK(imap_utf7_encode("\xf4\x90\x80\x80", 4, &b) < 0); /* > U+10FFFF */
        CHECK(b.len == 0);
        mfs_buf_free(&b);
    }
    CHECK(imap_utf8_valid("h\xc3\xa9", 3));
    CHECK(!imap_utf8_valid("a\0b", 3));
    CHECK(imap_has_8bit("h\xc3\xa9", 3));
    CHECK(!imap_has_8bit("abc", 3));
    return unit_finish();
}
