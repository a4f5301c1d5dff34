/* unit_imap_msg.c: message text helpers: CRLF output, header fields, MIME words, encodings */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_msg.h"
#include "tests/imap/unit.h"

static char *crlf(const char *s)
{
    imap_buf b = {0};
    imap_buf_puts(&b, "");
    imap_crlf_append(&b, s, strlen(s));
    return b.data;
}

static char *filter(const char *h, const char *f1, const char *f2, bool not )
{
    char *fields[2] = {(char *)f1, (char *)f2};
    imap_buf b = {0};
    imap_buf_puts(&b, "");
    imap_header_filter(&b, h, strlen(h), fields, f2 ? 2 : 1, not );
    return b.data;
}

static char *words(const char *s)
{
    imap_buf b = {0};
    imap_mime_words_decode(s, strlen(s), &b);
    return b.data;
}

static char *cte(const char *enc, const char *s, int *rc)
{
    imap_buf b = {0};
    *rc = imap_cte_decode(enc, s, strlen(s), &b);
    return b.data ? b.data : strdup("");
}

#define FREE_CHECK(u, expr, want)                                                                  \
    do {                                                                                           \
        char *g = (expr);                                                                          \
        CHECK_STR(u, g, want);                                                                     \
        free(g);                                                                                   \
    } while (0)

int main(void)
{
    unit_ctx u = {0};
    /* bare LF becomes CRLF; CRLF stays; sizes agree */
    FREE_CHECK(&u, crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
    FREE_CHECK(&u, crlf("\n\n"), "\r\n\r\n");
    FREE_CHECK(&u, crlf("no newline"), "no newline");
    CHECK(&u, imap_crlf_len("a\nb\r\nc\n", 7) == 9);
    CHECK(&u, imap_crlf_len("\r\n", 2) == 2);
    /* header/body split */
    {
        size_t hl, bo;
        const char *m = "A: 1\nB: 2\n\nbody\n";
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(&u, hl == 11 && bo == 11);
        m = "A: 1\r\n\r\nbody";
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(&u, hl == 8 && bo == 8);
        m = "A: 1\nB: 2\n"; /* no body at all */
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(&u, hl == strlen(m) && bo == strlen(m));
    }
    /* HEADER.FIELDS keeps folded lines, matches names case-insensitively, ends with CRLF */
    const char *h = "From: a@b\nSubject: one\n two\nTo: c@d\nsubject: again\n\n";
    FREE_CHECK(&u, filter(h, "SUBJECT", NULL, false),
               "Subject: one\r\n two\r\nsubject: again\r\n\r\n");
    FREE_CHECK(&u, filter(h, "subject", "from", true), "To: c@d\r\n\r\n");
    FREE_CHECK(&u, filter(h, "x-none", NULL, false), "\r\n");
    FREE_CHECK(&u, filter("Subj: x", "Subj", NULL, false), "Subj: x\r\n\r\n");
    /* unfolded values */
    {
        imap_buf b = {0};
        CHECK(&u, imap_header_get(h, strlen(h), "Subject", false, &b));
        CHECK_STR(&u, b.data, "one two");
        b.len = 0;
        CHECK(&u, imap_header_get(h, strlen(h), "subject", true, &b));
        CHECK_STR(&u, b.data, "one two\nagain");
        b.len = 0;
        CHECK(&u, !imap_header_get(h, strlen(h), "Cc", false, &b));
        imap_buf_free(&b);
    }
    /* RFC 2047 words, whitespace between adjacent words dropped, charsets via iconv */
    FREE_CHECK(&u, words("=?UTF-8?B?R3LDvMOfZQ==?="),
               "Gr\xc3\xbc\xc3\x9f"
               "e");
    FREE_CHECK(&u, words("=?iso-8859-1?q?caf=E9_au_lait?="), "caf\xc3\xa9 au lait");
    FREE_CHECK(&u, words("=?utf-8?q?a?= =?utf-8?q?b?= c"), "ab c");
    FREE_CHECK(&u, words("plain =?x-unknown?q?z?= text"), "plain z text");
    FREE_CHECK(&u, words("=?broken"), "=?broken");
    FREE_CHECK(&u, words("=?utf-8?B?"), "=?utf-8?B?");
    /* transfer encodings */
    int rc;
    FREE_CHECK(&u, cte("base64", "aGVs\r\nbG8=\r\n", &rc), "hello");
    CHECK(&u, rc == 0);
    FREE_CHECK(&u, cte("quoted-printable", "caf=C3=A9 =\r\nau lait=3D\n", &rc),
               "caf\xc3\xa9 au lait=\r\n");
    FREE_CHECK(&u, cte("7bit", "a\nb", &rc), "a\r\nb");
    FREE_CHECK(&u, cte("binary", "a\nb", &rc), "a\nb");
    free(cte("x-uuencode", "abc", &rc));
    CHECK(&u, rc < 0);
    /* case-insensitive search */
    CHECK(&u, imap_ci_contains("Hello World", 11, "world", 5));
    CHECK(&u, !imap_ci_contains("Hello", 5, "hello!", 6));
    CHECK(&u, imap_ci_contains("x", 1, "", 0));
    CHECK(&u, !imap_ci_contains("abcab", 5, "abd", 3));
    /* the vector scan against a naive one: needles of 1-20 bytes at every offset of haystacks
     * up to 70 bytes (across the 16-byte blocks and the scalar tail), case and non-letters
     * whose OR 0x20 would collide with letters ('@' and '`', 'A' and 'a', 0xC1 and 0xE1) */
    static const char alphabet[] = "aA@`zZ[{\xc1\xe1 1";
    unsigned seed = 7, bad = 0;
    char hay[80], nee[24];
    for (int round = 0; round < 20000; round++) {
        size_t hl = (seed = seed * 1103515245 + 12345) >> 16 & 63;
        hl += 7;
        size_t nl = 1 + ((seed = seed * 1103515245 + 12345) >> 16) % 20;
        for (size_t i = 0; i < hl; i++)
            hay[i] = alphabet[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof alphabet - 1)];
        if (nl <= hl && round % 2) { /* half the time the needle is taken from the haystack */
            size_t at = ((seed = seed * 1103515245 + 12345) >> 16) % (hl - nl + 1);
            for (size_t i = 0; i < nl; i++) {
                char c = hay[at + i];
                nee[i] = (char)(round % 4 == 1 && c >= 'a' && c <= 'z' ? c - 32 : c);
            }
        } else {
            for (size_t i = 0; i < nl; i++)
                nee[i] = alphabet[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof alphabet - 1)];
        }
        bool want = false;
        for (size_t i = 0; !want && i + nl <= hl; i++) {
            size_t k = 0;
            while (k < nl && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)nee[k]))
                k++;
            want = k == nl;
        }
        if (imap_ci_contains(hay, hl, nee, nl) != want && bad++ < 3)
            printf("ci_contains(%.*s, %.*s) != %d\n", (int)hl, hay, (int)nl, nee, want);
    }
    CHECK(&u, bad == 0);
    return unit_finish(&u);
}
