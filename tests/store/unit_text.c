/* unit_text.c: flags as text (the one parser and formatter of the store), keywords, UTF-8 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/unit.h"

/* Parses the first LEN bytes of TEXT from a copy of exactly LEN bytes (so that a sanitizer
 * catches a read past the end); returns the parser's result. */
static int parse(const char *text, size_t len, uint32_t *flags, char *kw, size_t kwlen,
                 const char **why)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    int rc = store_flags_parse(copy, len, flags, kw, kwlen, why);
    free(copy);
    return rc;
}

static int parse_str(const char *text, uint32_t *flags, char *kw, size_t kwlen)
{
    const char *why = NULL;
    return parse(text, strlen(text), flags, kw, kwlen, &why);
}

static void test_parse(void)
{
    uint32_t f = 0;
    char kw[STORE_KEYWORDS_MAX + 1];
    const char *why = NULL;

    /* system flags in any case; keywords kept in their first spelling, duplicates dropped */
    CHECK(parse_str("\\seen \\FLAGGED $Work,later $work LATER", &f, kw, sizeof kw) == 0);
    CHECK(f == (STORE_F_SEEN | STORE_F_FLAGGED));
    CHECK_STR(kw, "$Work later");
    /* blanks, commas and newlines between tokens, any number of them, at either end */
    CHECK(parse_str(" ,\\Seen,,\n\t\\Draft\r\n$a,", &f, kw, sizeof kw) == 0);
    CHECK(f == (STORE_F_SEEN | STORE_F_DRAFT));
    CHECK_STR(kw, "$a");
    CHECK(parse_str("\\Answered \\Deleted", &f, kw, sizeof kw) == 0);
    CHECK(f == (STORE_F_ANSWERED | STORE_F_DELETED) && kw[0] == 0);
    CHECK(parse_str("", &f, kw, sizeof kw) == 0 && f == 0 && kw[0] == 0);
    CHECK(parse_str(" \n,", &f, kw, sizeof kw) == 0 && f == 0 && kw[0] == 0);
    /* only LEN bytes count */
    CHECK(parse("\\Seen $Work", 5, &f, kw, sizeof kw, &why) == 0);
    CHECK(f == STORE_F_SEEN && kw[0] == 0);

    /* refused whole, with a reason, and nothing half-parsed left behind */
    static const char *const bad[] = {
        "\\Recent",
        "\\recent $x",
        "\\Bogus",
        "\\",
        "\\Seen \\Seenx",
        "a(b",
        "a\"b",
        "a]b",
        "\\Seen caf\xc3\xa9",
        "a*",
        "x%",
        "{3}",
        "\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = 0xdead;
        strcpy(kw, "junk");
        why = NULL;
        int rc = parse(bad[i], strlen(bad[i]), &f, kw, sizeof kw, &why);
        CHECK(rc == -EINVAL);
        CHECK(f == 0 && kw[0] == 0 && why && why[0]);
        if (rc != -EINVAL) fprintf(stderr, "  accepted: [%s]\n", bad[i]);
    }
    CHECK(parse("\\Recent", 7, &f, kw, sizeof kw, &why) == -EINVAL && strstr(why, "Recent"));
    /* a NUL anywhere in the text, even between tokens or at its end */
    CHECK(parse("\\Seen\0\\Flagged", 14, &f, kw, sizeof kw, &why) == -EINVAL && f == 0);
    CHECK(strstr(why, "NUL") != NULL);
    CHECK(parse("\\Seen \0", 7, &f, kw, sizeof kw, &why) == -EINVAL);
    CHECK(parse("$a\0", 3, &f, kw, sizeof kw, &why) == -EINVAL && kw[0] == 0);

    /* keywords of 1-200 bytes */
    char k[202];
    memset(k, 'k', sizeof k);
    k[200] = 0;
    CHECK(parse_str(k, &f, kw, sizeof kw) == 0 && strlen(kw) == 200);
    k[200] = 'k';
    k[201] = 0;
    CHECK(parse_str(k, &f, kw, sizeof kw) == -EINVAL && kw[0] == 0);

    /* keywords that do not fit: -E2BIG, never a cut list; an exact fit is fine */
    char small[10];
    CHECK(parse_str("abcd efgh", &f, small, sizeof small) == 0);
    CHECK_STR(small, "abcd efgh");
    CHECK(parse("\\Seen abcd efghi", 16, &f, small, sizeof small, &why) == -E2BIG);
    CHECK(f == 0 && small[0] == 0 && why && why[0]);
    /* what a message can hold: STORE_KEYWORDS_MAX bytes */
    char many[STORE_KEYWORDS_MAX + 16];
    size_t n = 0;
    for (int i = 0; n + 10 <= STORE_KEYWORDS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%sk%07d", n ? " " : "", i);
    CHECK(parse(many, n, &f, kw, sizeof kw, &why) == 0 && strlen(kw) == n);
    n += (size_t)snprintf(many + n, sizeof many - n, " %.*s", (int)(STORE_KEYWORDS_MAX - n), k);
    CHECK(n > STORE_KEYWORDS_MAX);
    CHECK(parse(many, n, &f, kw, sizeof kw, &why) == -E2BIG && kw[0] == 0);

    /* every prefix of a text: parsed as far as it goes, or refused, never read past its end */
    const char *text = "\\Seen,$Work \\Flagged later";
    for (size_t cut = 0; cut <= strlen(text); cut++) {
        int rc = parse(text, cut, &f, kw, sizeof kw, &why);
        CHECK(rc == 0 || rc == -EINVAL);
    }
    CHECK(parse(text, 11, &f, kw, sizeof kw, &why) == 0 && f == STORE_F_SEEN);
    CHECK_STR(kw, "$Work");
    CHECK(parse(text, 9, &f, kw, sizeof kw, &why) == 0); /* "$Wo" is a keyword too */
    CHECK_STR(kw, "$Wo");
    CHECK(parse(text, 3, &f, kw, sizeof kw, &why) == -EINVAL); /* "\Se" is no flag */
}

static void test_format(void)
{
    char buf[128];
    size_t n = store_flags_format(STORE_F_SEEN | STORE_F_DRAFT, "$Work later", buf, sizeof buf);
    CHECK_STR(buf, "\\Seen \\Draft $Work later");
    CHECK(n == strlen(buf));
    CHECK(store_flags_format(STORE_F_ALL, NULL, buf, sizeof buf) == 40);
    CHECK_STR(buf, "\\Seen \\Answered \\Flagged \\Deleted \\Draft");
    CHECK(store_flags_format(0, "", buf, sizeof buf) == 0 && buf[0] == 0);
    CHECK(store_flags_format(0, "$a", buf, sizeof buf) == 2);
    CHECK_STR(buf, "$a");

    /* a buffer too small gets nothing, never a cut list, and the length it needs */
    const char *want = "\\Seen \\Flagged $Work";
    size_t len = strlen(want);
    for (size_t size = 0; size <= len + 1; size++) {
        char b[32];
        memset(b, 'x', sizeof b);
        size_t got = store_flags_format(STORE_F_SEEN | STORE_F_FLAGGED, "$Work", b, size);
        CHECK(got == len);
        if (size > len)
            CHECK_STR(b, want);
        else if (size > 0)
            CHECK(b[0] == 0);
        CHECK(b[size] == 'x'); /* nothing written past SIZE bytes */
    }
    CHECK(store_flags_format(STORE_F_SEEN, NULL, NULL, 0) == 5);

    /* what the formatter writes, the parser reads back the same */
    for (uint32_t f = 0; f <= STORE_F_ALL; f++) {
        const char *kws[] = {NULL, "", "$Forwarded", "a b $Junk"};
        for (size_t i = 0; i < sizeof kws / sizeof *kws; i++) {
            uint32_t f2 = 0xdead;
            char kw[64];
            n = store_flags_format(f, kws[i], buf, sizeof buf);
            CHECK(n < sizeof buf && parse(buf, n, &f2, kw, sizeof kw, NULL) == 0);
            CHECK(f2 == f && strcmp(kw, kws[i] ? kws[i] : "") == 0);
        }
    }
}

static void test_keyword_and_utf8(void)
{
    CHECK(store_keyword_valid("$Forwarded", 10) && store_keyword_valid("NonJunk", 7));
    CHECK(!store_keyword_valid("", 0) && !store_keyword_valid("a b", 3));
    CHECK(!store_keyword_valid("\\Seen", 5) && !store_keyword_valid("caf\xc3\xa9", 5));

    /* the one validator the store and the mount use: no overlong forms, no surrogates, nothing
     * past U+10FFFF, no cut sequences */
    CHECK(store_utf8_valid("", 0) && store_utf8_valid("plain", 5));
    CHECK(store_utf8_valid("h\xc3\xa9", 3) && store_utf8_valid("\xe2\x82\xac", 3));
    CHECK(store_utf8_valid("\xf0\x9f\x93\xa7", 4) && store_utf8_valid("\xf4\x8f\xbf\xbf", 4));
    CHECK(store_utf8_valid("a\0b", 3)); /* NUL is valid UTF-8; names refuse it elsewhere */
    static const char *const bad[] = {
        "\xc0\xaf",
        "\xc1\xbf",
        "\xe0\x80\xaf",
        "\xf0\x80\x80\xaf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80",
        "\xff",
        "\x80",
        "\xe2\x82",
        "\xc3",
        "\xf0\x9f\x93",
        "a\xc3(",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!store_utf8_valid(bad[i], strlen(bad[i])));
    /* a valid text cut inside a sequence is invalid, and only there */
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7";
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        bool at_boundary = cut == 0 || cut == 1 || cut == 3 || cut == 6 || cut == 10;
        CHECK(store_utf8_valid(s, cut) == at_boundary);
    }
}

int main(void)
{
    test_parse();
    test_format();
    test_keyword_and_utf8();
    return unit_finish();
}
