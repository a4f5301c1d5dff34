/* unit_imap_msg.c: message text helpers: CRLF output, header fields, MIME words, encodings */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_msg.h"
#include "tests/unit.h"

static char *crlf(const char *s)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    imap_crlf_append(&b, s, strlen(s));
    return b.data;
}

static char *filter(const char *h, const char *f1, const char *f2, bool not )
{
    char *fields[2] = {(char *)f1, (char *)f2};
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    imap_header_filter(&b, h, strlen(h), fields, f2 ? 2 : 1, not );
    return b.data;
}

static char *words(const char *s)
{
    mfs_buf b = {0};
    imap_mime_words_decode(s, strlen(s), &b);
    return b.data;
}

static char *cte(const char *enc, const char *s, int *rc)
{
    mfs_buf b = {0};
    *rc = imap_cte_decode(enc, s, strlen(s), &b);
    return b.data ? b.data : strdup("");
}

/* The CRLF text of S[0, LEN) a byte at a time: what the converters are checked against. */
static void crlf_ref(const char *s, size_t len, mfs_buf *out)
{
    mfs_buf_puts(out, "");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) mfs_buf_putc(out, '\r');
        mfs_buf_putc(out, s[i]);
    }
}

/* Runs a copy of CV0 over SRC in pieces of at most PIECE bytes (0: all at once), after a first
 * piece of FIRST bytes; appends the text to OUT. Returns false if a run broke the contract
 * (fewer bytes than asked before the end, or done too early or never). */
static bool run_pieces(const imap_conv *cv0, const char *src, size_t len, size_t first,
                       size_t piece, mfs_buf *out)
{
    imap_conv cv = *cv0;
    mfs_buf_puts(out, "");
    size_t max = first;
    for (int guard = 0; guard < 100000; guard++) {
        size_t got = imap_conv_run(&cv, src, len, out, max);
        if (got > max) return false;
        if (got < max) return imap_conv_done(&cv, len) && cv.out == out->len;
        max = piece ? piece : 4 * len + 16;
    }
    return false;
}

/* Every way of cutting the text of SRC gives the same bytes as producing it at once (WANT),
 * counting gives its length, and skipping to any offset then producing gives the rest. */
static void check_conv(const imap_conv *cv0, const char *src, size_t len, const char *want,
                       size_t wlen)
{
    unsigned bad = 0;
    mfs_buf b = {0};
    for (size_t first = 0; first <= wlen + 1; first++) {
        for (size_t piece = 0; piece <= 3; piece++) {
            b.len = 0;
            if (!run_pieces(cv0, src, len, first, piece ? piece : 0, &b) || b.len != wlen ||
                memcmp(b.data, want, wlen) != 0) {
                if (bad++ < 3)
                    fprintf(stderr,
                            "kind %d, %zu-byte source, first piece %zu, then %zu: "
                            "got %zu bytes [%.*s], want %zu\n",
                            cv0->kind, len, first, piece, b.len, (int)b.len, b.data, wlen);
            }
        }
        /* count, then skip FIRST bytes and produce the rest */
        imap_conv cv = *cv0;
        if (imap_conv_run(&cv, src, len, NULL, SIZE_MAX) != wlen) bad++;
        cv = *cv0;
        size_t skip = first < wlen ? first : wlen;
        if (imap_conv_run(&cv, src, len, NULL, skip) != skip) bad++;
        b.len = 0;
        mfs_buf_puts(&b, "");
        imap_conv_run(&cv, src, len, &b, 4 * len + 16);
        if (b.len != wlen - skip || memcmp(b.data, want + skip, b.len) != 0) {
            if (bad++ < 3)
                fprintf(stderr, "kind %d: skipping %zu bytes gave [%.*s]\n", cv0->kind, skip,
                        (int)b.len, b.data);
        }
        /* counting in pieces of FIRST bytes sums to the length */
        cv = *cv0;
        size_t total = 0, got;
        if (first) {
            while ((got = imap_conv_run(&cv, src, len, NULL, first)) == first)
                total += got;
            if (total + got != wlen) bad++;
        }
    }
    /* reading a few source bytes per run (IN_STOP), producing or counting, ends the same */
    for (size_t step = 1; step <= 3; step++) {
        for (int counting = 0; counting < 2; counting++) {
            imap_conv cv = *cv0;
            b.len = 0;
            mfs_buf_puts(&b, "");
            size_t total = 0;
            for (int guard = 0; guard < 10000 && !imap_conv_done(&cv, len); guard++) {
                cv.in_stop = cv.in + step;
                total += imap_conv_run(&cv, src, len, counting ? NULL : &b, 4 * len + 16);
            }
            if (!imap_conv_done(&cv, len) || total != wlen ||
                (!counting && (b.len != wlen || memcmp(b.data, want, wlen) != 0))) {
                if (bad++ < 3)
                    fprintf(stderr, "kind %d, %zu-byte source read %zu at a time: got [%.*s]\n",
                            cv0->kind, len, step, (int)b.len, b.data);
            }
        }
    }
    /* a NUL is noticed when asked for, whether counting or producing */
    bool has_nul = memchr(want, '\0', wlen) != NULL;
    imap_conv cv = *cv0;
    cv.want_nul = true;
    imap_conv_run(&cv, src, len, NULL, SIZE_MAX);
    if (cv.nul != has_nul) bad++;
    cv = *cv0;
    cv.want_nul = true;
    b.len = 0;
    imap_conv_run(&cv, src, len, &b, 4 * len + 16);
    if (cv.nul != has_nul) bad++;
    mfs_buf_free(&b);
    CHECK(bad == 0);
}

static void check_kind(imap_conv_kind kind, const char *src, size_t len, const char *want,
                       size_t wlen)
{
    imap_conv cv;
    imap_conv_init(&cv, kind);
    check_conv(&cv, src, len, want, wlen);
}

#define FREE_CHECK(expr, want)                                                                     \
    do {                                                                                           \
        char *g = (expr);                                                                          \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

int main(void)
{
    /* bare LF becomes CRLF; CRLF stays; sizes agree */
    FREE_CHECK(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
    FREE_CHECK(crlf("\n\n"), "\r\n\r\n");
    FREE_CHECK(crlf("no newline"), "no newline");
    CHECK(imap_crlf_len("a\nb\r\nc\n", 7) == 9);
    CHECK(imap_crlf_len("\r\n", 2) == 2);
    /* header/body split */
    {
        size_t hl, bo;
        const char *m = "A: 1\nB: 2\n\nbody\n";
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(hl == 11 && bo == 11);
        m = "A: 1\r\n\r\nbody";
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(hl == 8 && bo == 8);
        m = "A: 1\nB: 2\n"; /* no body at all */
        imap_msg_split(m, strlen(m), &hl, &bo);
        CHECK(hl == strlen(m) && bo == strlen(m));
    }
    /* HEADER.FIELDS keeps folded lines, matches names case-insensitively, ends with CRLF */
    const char *h = "From: a@b\nSubject: one\n two\nTo: c@d\nsubject: again\n\n";
    FREE_CHECK(filter(h, "SUBJECT", NULL, false), "Subject: one\r\n two\r\nsubject: again\r\n\r\n");
    FREE_CHECK(filter(h, "subject", "from", true), "To: c@d\r\n\r\n");
    FREE_CHECK(filter(h, "x-none", NULL, false), "\r\n");
    FREE_CHECK(filter("Subj: x", "Subj", NULL, false), "Subj: x\r\n\r\n");
    /* unfolded values */
    {
        mfs_buf b = {0};
        CHECK(imap_header_get(h, strlen(h), "Subject", false, &b));
        CHECK_STR(b.data, "one two");
        b.len = 0;
        CHECK(imap_header_get(h, strlen(h), "subject", true, &b));
        CHECK_STR(b.data, "one two\nagain");
        b.len = 0;
        CHECK(!imap_header_get(h, strlen(h), "Cc", false, &b));
        mfs_buf_free(&b);
    }
    /* RFC 2047 words, whitespace between adjacent words dropped, charsets via iconv */
    FREE_CHECK(words("=?UTF-8?B?R3LDvMOfZQ==?="), "Gr\xc3\xbc\xc3\x9f"
                                                  "e");
    FREE_CHECK(words("=?iso-8859-1?q?caf=E9_au_lait?="), "caf\xc3\xa9 au lait");
    FREE_CHECK(words("=?utf-8?q?a?= =?utf-8?q?b?= c"), "ab c");
    FREE_CHECK(words("plain =?x-unknown?q?z?= text"), "plain z text");
    FREE_CHECK(words("=?broken"), "=?broken");
    FREE_CHECK(words("=?utf-8?B?"), "=?utf-8?B?");
    /* transfer encodings */
    int rc;
    FREE_CHECK(cte("base64", "aGVs\r\nbG8=\r\n", &rc), "hello");
    CHECK(rc == 0);
    FREE_CHECK(cte("quoted-printable", "caf=C3=A9 =\r\nau lait=3D\n", &rc),
               "caf\xc3\xa9 au lait=\r\n");
    FREE_CHECK(cte("7bit", "a\nb", &rc), "a\r\nb");
    FREE_CHECK(cte("binary", "a\nb", &rc), "a\nb");
    free(cte("x-uuencode", "abc", &rc));
    CHECK(rc < 0);
    /* the converters behind those, cut at every point */
    {
        static const char *crlf_src[] = {
            "",
            "\n",
            "\r\n",
            "\r",
            "a",
            "\n\n\r\n\n",
            "a\nb\r\nc\n",
            "\r\r\n\n\r",
            "line one\nline two\r\n\nend",
            "x\0y\nz",
        };
        for (size_t i = 0; i < sizeof crlf_src / sizeof crlf_src[0]; i++) {
            size_t l = i == 9 ? 5 : strlen(crlf_src[i]);
            mfs_buf want = {0};
            crlf_ref(crlf_src[i], l, &want);
            check_kind(IMAP_CONV_CRLF, crlf_src[i], l, want.data, want.len);
            CHECK(imap_crlf_len(crlf_src[i], l) == want.len);
            check_kind(IMAP_CONV_COPY, crlf_src[i], l, crlf_src[i], l);
            mfs_buf_free(&want);
        }
#define KIND(k, src, want) check_kind(k, src, sizeof(src) - 1, want, sizeof(want) - 1)
        KIND(IMAP_CONV_BASE64, "aGVs\r\nbG8=\r\nignored", "hello");
        KIND(IMAP_CONV_BASE64, "AAEC", "\0\1\2");
        KIND(IMAP_CONV_BASE64, "!!a*G=", "h");
        KIND(IMAP_CONV_QP, "caf=C3=A9 =\r\nau lait=3D\n=", "caf\xc3\xa9 au lait=\r\n=");
        KIND(IMAP_CONV_QP, "\n=\n=0=00=x\r\n", "\r\n=0\0=x\r\n");
        KIND(IMAP_CONV_QP, "a  \r\nb=  \r\nc \t\nd \t", "a\r\nbc\r\nd"); /* RFC 2045 6.7 padding */
#undef KIND
        const char *hd = "From: a@b\nSubject: one\n two\nTo: c@d\nsubject: again\nbad line\n"
                         "Last: x";
        char *two[] = {"subject", "last"}, *three[] = {"subject", "last", "from"};
        char *one[] = {"subject"};
        imap_fields_sort(two, 2);
        imap_fields_sort(three, 3);
        imap_conv cv;
        imap_conv_init_fields(&cv, two, 2, false);
        const char *w1 = "Subject: one\r\n two\r\nsubject: again\r\nLast: x\r\n\r\n";
        check_conv(&cv, hd, strlen(hd), w1, strlen(w1));
        imap_conv_init_fields(&cv, three, 3, true);
        check_conv(&cv, hd, strlen(hd), "To: c@d\r\n\r\n", 11);
        imap_conv_init_fields(&cv, one, 1, false);
        check_conv(&cv, "\r\nSubject: x\n", 14, "\r\n", 2);
        check_conv(&cv, "", 0, "\r\n", 2);
        CHECK(imap_conv_init_cte(&cv, "x-uuencode") < 0);
        CHECK(imap_conv_init_cte(&cv, "BASE64") == 0 && cv.kind == IMAP_CONV_BASE64);
        CHECK(imap_conv_init_cte(&cv, NULL) == 0 && cv.kind == IMAP_CONV_CRLF);
    }
    /* field names are looked up in a sorted list: every subset of 2-letter names, any case */
    {
        static const char letters[] = "aBc-";
        char names[16][3], *pick[16];
        char hdr[16 * 8 + 1], want[16 * 9 + 3];
        unsigned seed = 5, bad = 0;
        for (int i = 0; i < 16; i++)
            snprintf(names[i], 3, "%c%c", letters[i / 4], letters[i % 4]);
        for (int round = 0; round < 200; round++) {
            unsigned mask = (seed = seed * 1103515245 + 12345) >> 8 & 0xffff;
            size_t n = 0, hl = 0, wl = 0;
            for (int i = 0; i < 16; i++)
                if (mask >> i & 1) {
                    pick[n] = strdup(names[i]);
                    if (round & 1) /* the other case */
                        for (char *p = pick[n]; *p; p++)
                            *p = (char)(isupper((unsigned char)*p) ? tolower(*p) : toupper(*p));
                    n++;
                }
            for (int k = 0; k < 16; k++) { /* the header in a shuffled order */
                int i = (k * 7 + round) % 16;
                hl += (size_t)sprintf(hdr + hl, "%s : v\n", names[i]);
                if (mask >> i & 1) wl += (size_t)sprintf(want + wl, "%s : v\r\n", names[i]);
            }
            wl += (size_t)sprintf(want + wl, "\r\n");
            mfs_buf b = {0};
            mfs_buf_puts(&b, "");
            imap_header_filter(&b, hdr, hl, pick, n, false);
            if (b.len != wl || memcmp(b.data, want, wl) != 0) bad++;
            mfs_buf_free(&b);
            for (size_t i = 0; i < n; i++)
                free(pick[i]);
        }
        CHECK(bad == 0);
    }
    /* longer random text (across the 16-byte blocks of the CRLF count) against the reference */
    {
        static const char abc[] = "\r\n\n\nab";
        unsigned seed = 11, bad = 0;
        char src[300];
        for (int round = 0; round < 300; round++) {
            size_t l = ((seed = seed * 1103515245 + 12345) >> 16) % sizeof src;
            for (size_t i = 0; i < l; i++)
                src[i] = abc[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof abc - 1)];
            mfs_buf want = {0};
            crlf_ref(src, l, &want);
            if (imap_crlf_len(src, l) != want.len) bad++;
            int before = unit_tally.failed;
            if (round < 40) check_kind(IMAP_CONV_CRLF, src, l, want.data, want.len);
            bad += (unsigned)(unit_tally.failed - before);
            /* a skip to every offset then a count gives the rest's length */
            for (size_t off = 0; off <= want.len; off += 7) {
                imap_conv cv;
                imap_conv_init(&cv, IMAP_CONV_CRLF);
                if (imap_conv_run(&cv, src, l, NULL, off) != off ||
                    imap_conv_run(&cv, src, l, NULL, SIZE_MAX) != want.len - off)
                    bad++;
            }
            mfs_buf_free(&want);
        }
        CHECK(bad == 0);
    }
    /* case-insensitive search */
    CHECK(imap_ci_contains("Hello World", 11, "world", 5));
    CHECK(!imap_ci_contains("Hello", 5, "hello!", 6));
    CHECK(imap_ci_contains("x", 1, "", 0));
    CHECK(!imap_ci_contains("abcab", 5, "abd", 3));
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
                nee[i] =
                    alphabet[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof alphabet - 1)];
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
    CHECK(bad == 0);
    return unit_finish();
}
