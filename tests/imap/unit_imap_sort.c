/* unit_imap_sort.c: i;unicode-casemap, base subjects, sent dates, sort programs and SORT order */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_envelope.h"
#include "imap/imap_sort.h"
#include "tests/unit.h"

static char *casemap(const char *s)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    imap_casemap(&b, s, strlen(s));
    return b.data;
}

#define CASEMAP(in, want)                                                                          \
    do {                                                                                           \
        char *g = casemap(in);                                                                     \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

static char *base(const char *s, bool *reply)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    *reply = imap_base_subject(&b, s, strlen(s));
    return b.data;
}

#define BASE(in, want, want_reply)                                                                 \
    do {                                                                                           \
        bool r_;                                                                                   \
        char *g = base(in, &r_);                                                                   \
        CHECK_STR(g, want);                                                                        \
        CHECK(r_ == (want_reply));                                                                 \
        free(g);                                                                                   \
    } while (0)

static int64_t date(const char *s)
{
    int64_t t;
    return imap_date_parse_rfc5322(s, strlen(s), &t) == 0 ? t : -1;
}

/* A sort program from space-separated words; returns the error text or "" (and *n). */
static const char *program(const char *words, imap_sort_crit *c, size_t *n, char *err)
{
    imap_arg items[64];
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", words);
    size_t k = 0;
    for (char *w = strtok(copy, " "); w && k < 64; w = strtok(NULL, " "))
        items[k++] = (imap_arg){.type = IMAP_ARG_ATOM, .str = w, .len = strlen(w)};
    imap_arg list = {.type = IMAP_ARG_LIST, .list = items, .count = k};
    const char *why, *what;
    if (imap_sort_program_parse(&list, c, n, &why, &what) == 0) return "";
    snprintf(err, 200, "%s%s%s", why, what ? " " : "", what ? what : "");
    return err;
}

/* Sorts messages whose subject keys are SUBJ[i] and dates DATES[i] by PROG; the numbers. */
static char *sorted(const char *prog, const char *const *subj, const int64_t *dates,
                    const uint64_t *sizes, size_t n)
{
    imap_sort_crit c[IMAP_SORT_CRITERIA_MAX];
    size_t nc;
    char err[200];
    if (program(prog, c, &nc, err)[0]) return strdup(err);
    mfs_buf pool = {0};
    mfs_buf_puts(&pool, "");
    imap_sort_msg *m = calloc(n, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        m[i].seq = (uint32_t)i + 1;
        m[i].num = (uint32_t)(100 + i);
        m[i].date = dates ? dates[i] : 0;
        m[i].arrival = -(int64_t)i;
        m[i].size = sizes ? sizes[i] : 0;
        bool r;
        mfs_buf bs = {0};
        mfs_buf_puts(&bs, "");
        r = imap_base_subject(&bs, subj[i], strlen(subj[i]));
        (void)r;
        m[i].off[IMAP_SORT_SUBJECT] = (uint32_t)pool.len;
        imap_casemap(&pool, bs.data, bs.len);
        m[i].len[IMAP_SORT_SUBJECT] = (uint32_t)(pool.len - m[i].off[IMAP_SORT_SUBJECT]);
        mfs_buf_free(&bs);
    }
    /* the same messages with ranks instead of strings (as cmd_sort.c gives them) */
    imap_sort_msg *r = calloc(n, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i] = m[i];
        for (size_t j = 0; j < n; j++) {
            uint32_t li = m[i].len[IMAP_SORT_SUBJECT], lj = m[j].len[IMAP_SORT_SUBJECT];
            int d = memcmp(pool.data + m[j].off[IMAP_SORT_SUBJECT],
                           pool.data + m[i].off[IMAP_SORT_SUBJECT], li < lj ? li : lj);
            if (d < 0 || (d == 0 && lj < li)) r[i].rank[IMAP_SORT_SUBJECT]++; /* j sorts first */
        }
    }
    imap_sort(m, n, c, nc, pool.data);
    imap_sort(r, n, c, nc, NULL);
    mfs_buf out = {0};
    mfs_buf_puts(&out, "");
    for (size_t i = 0; i < n; i++) {
        mfs_buf_printf(&out, "%s%u", i ? " " : "", m[i].num);
        CHECK(r[i].num == m[i].num, "by rank, place %zu holds %u, not %u", i, r[i].num, m[i].num);
    }
    free(r);
    free(m);
    mfs_buf_free(&pool);
    return out.data;
}

#define SORTED(prog, subj, dates, sizes, want)                                                     \
    do {                                                                                           \
        char *g = sorted(prog, subj, dates, sizes, sizeof(subj) / sizeof(subj[0]));                \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

static char *field(const mfs_buf *b, imap_env_text t)
{
    if (t.nil) return strdup("NIL");
    return strndup(b->data + t.off, t.len);
}

#define FIELD(b, t, want)                                                                          \
    do {                                                                                           \
        char *g = field(b, t);                                                                     \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

/* ENVELOPE text written by imap_envelope_write reads back */
static void envelope(void)
{
    mfs_buf from = {0}, to = {0}, env = {0}, strings = {0};
    imap_envelope_address(&from, &(imap_address){.name = "Ann  \"A\" Lee",
                                                 .name_len = 12,
                                                 .mailbox = "ann",
                                                 .mailbox_len = 3,
                                                 .host = "x.org",
                                                 .host_len = 5});
    /* To: grp: bob@y.org; -- the group's start is the first address */
    imap_envelope_address(&to, &(imap_address){.mailbox = "grp", .mailbox_len = 3});
    imap_envelope_address(
        &to, &(imap_address){.mailbox = "bob", .mailbox_len = 3, .host = "y.org", .host_len = 5});
    imap_envelope_address(&to, &(imap_address){0});
    imap_envelope e = {0};
    e.field[IMAP_ENV_DATE] = "\"1 Jan 2001 00:00:00 +0000\"";
    e.field[IMAP_ENV_SUBJECT] = "{9}\r\nRe:\r\n  x\"";
    e.field[IMAP_ENV_FROM] = from.data;
    e.field[IMAP_ENV_TO] = to.data;
    e.field[IMAP_ENV_MESSAGE_ID] = "\"<a@b>\"";
    imap_envelope_write(&env, &e);
    imap_envelope_fields f;
    mfs_buf_puts(&strings, "");
    CHECK(imap_envelope_parse(env.data, env.len, &strings, &f) == 0);
    FIELD(&strings, f.text[IMAP_ENV_DATE], "1 Jan 2001 00:00:00 +0000");
    FIELD(&strings, f.text[IMAP_ENV_SUBJECT], "Re:\r\n  x\"");
    FIELD(&strings, f.text[IMAP_ENV_IN_REPLY_TO], "NIL");
    FIELD(&strings, f.text[IMAP_ENV_MESSAGE_ID], "<a@b>");
    FIELD(&strings, f.addr[IMAP_ENV_FROM][0], "Ann \"A\" Lee");
    FIELD(&strings, f.addr[IMAP_ENV_FROM][2], "ann");
    FIELD(&strings, f.addr[IMAP_ENV_FROM][3], "x.org");
    FIELD(&strings, f.addr[IMAP_ENV_SENDER][2], "ann"); /* a missing Sender is From */
    FIELD(&strings, f.addr[IMAP_ENV_TO][0], "NIL");
    FIELD(&strings, f.addr[IMAP_ENV_TO][2], "grp");
    FIELD(&strings, f.addr[IMAP_ENV_TO][3], "NIL");
    FIELD(&strings, f.addr[IMAP_ENV_CC][2], "NIL");
    CHECK(imap_envelope_parse(IMAP_ENVELOPE_EMPTY, strlen(IMAP_ENVELOPE_EMPTY), &strings, &f) == 0);
    CHECK(f.text[IMAP_ENV_SUBJECT].nil && f.addr[IMAP_ENV_FROM][2].nil);
    /* broken text: every prefix fails, and nothing is read past the end */
    for (size_t cut = 0; cut < env.len; cut++) {
        char *part = malloc(cut ? cut : 1);
        memcpy(part, env.data, cut);
        CHECK(imap_envelope_parse(part, cut, &strings, &f) < 0);
        free(part);
    }
    CHECK(imap_envelope_parse("(NIL {99}\r\nab", 14, &strings, &f) < 0);
    CHECK(imap_envelope_parse("(x)", 3, &strings, &f) < 0);
    mfs_buf_free(&from);
    mfs_buf_free(&to);
    mfs_buf_free(&env);
    mfs_buf_free(&strings);
}

int main(void)
{

    envelope();

    /* i;unicode-casemap: titlecase, then full decomposition (RFC 5051's own example) */
    CASEMAP("", "");
    CASEMAP("abc XYZ 123 [x]", "ABC XYZ 123 [X]");
    CASEMAP("\xc7\x84", "Dz\xcc\x8c");               /* U+01C4 -> D z U+030C */
    CASEMAP("\xc7\x86", "Dz\xcc\x8c");               /* U+01C6 too (titlecase U+01C5) */
    CASEMAP("\xc3\xa9", "E\xcc\x81");                /* é -> E + combining acute */
    CASEMAP("\xc3\x89", "E\xcc\x81");                /* É the same */
    CASEMAP("\xef\xac\x81", "fi");                   /* U+FB01 ligature: compatibility form */
    CASEMAP("\xce\xb1\xce\x92", "\xce\x91\xce\x92"); /* Greek αΒ -> ΑΒ */
    CASEMAP("\xe6\x97\xa5", "\xe6\x97\xa5");         /* CJK: unchanged */
    /* not UTF-8: one U+FFFD for a run of bytes that start no valid sequence */
    CASEMAP("a\xff"
            "b",
            "A\xef\xbf\xbd"
            "B");
    CASEMAP("Forma\xe7\xe3o \xe7", "FORMA\xef\xbf\xbdO \xef\xbf\xbd"); /* Latin-1 */
    CASEMAP("\xc0\xaf", "\xef\xbf\xbd");                               /* overlong */
    CASEMAP("\xed\xa0\x80", "\xef\xbf\xbd");                           /* a surrogate */
    CASEMAP("\xff\xc3\xa9\xff", "\xef\xbf\xbd"
                                "E\xcc\x81\xef\xbf\xbd");
    CASEMAP("x\xc3", "X\xef\xbf\xbd"); /* cut short */
    /* Hangul: U+D55C is U+1112 U+1161 U+11AB; U+AC00 has no final consonant */
    CASEMAP("\xed\x95\x9c", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
    CASEMAP("\xea\xb0\x80", "\xe1\x84\x80\xe1\x85\xa1");
    {
        char *a = casemap("Stra\xc3\x9f"
                          "e"),
             *b = casemap("STRASSE");
        CHECK(strcmp(a, b) != 0); /* ß has no single-character titlecase */
        free(a);
        free(b);
    }

    /* base subjects (RFC 5256 section 2.1) */
    BASE("", "", false);
    BASE("foo", "foo", false);
    BASE("  foo \t  bar  ", "foo bar", false);
    BASE("foo\r\n bar", "foo bar", false);
    BASE("Re: foo", "foo", true);
    BASE("RE: Re: re:foo", "foo", true);
    BASE("Fw: foo", "foo", true);
    BASE("FWD: foo", "foo", true);
    BASE("Re [2]: foo", "foo", true);
    BASE("Re[2]:foo", "foo", true);
    BASE("[list] Re: foo", "foo", true);
    BASE("Re: [list] foo", "foo", true);
    BASE("[a] [b] foo", "foo", false);
    BASE("[list]", "[list]", false); /* the blob is all there is */
    BASE("Re: [list]", "[list]", true);
    BASE("[a] [b]", "[b]", false); /* the last blob stays */
    BASE("foo (fwd)", "foo", true);
    BASE("foo (FWD) (fwd)  ", "foo", true);
    BASE("[fwd: foo]", "foo", true);
    BASE("[Fwd: Re: foo (fwd)]", "foo", true);
    BASE("[fwd: [fwd: foo]]", "foo", true);
    BASE("Re:", "", true);
    BASE("Re: ", "", true);
    BASE("fwd foo", "fwd foo", false); /* no colon: not a leader */
    BASE("Refoo: x", "Refoo: x", false);
    BASE("Re: foo (fwd) bar", "foo (fwd) bar", true);
    BASE("[unclosed Re: foo", "[unclosed Re: foo", false);
    BASE("(fwd)", "", true);
    BASE("[fwd: ]", "", true); /* the subject inside may be empty */

    /* sent dates, in UTC */
    CHECK(date("Sun, 31 Dec 2000 16:01:33 -0800") == date("1 Jan 2001 00:01:33 +0000"));
    CHECK(date("1 Jan 2001 00:01:33 +0000") == 978307293);
    CHECK(date("Thu, 1 Jan 1970 00:00:00 GMT") == 0);
    CHECK(date("1 Jan 70 00:00:00 +0000") == 0);          /* two-digit year */
    CHECK(date("1 Jan 49 00:00:00 +0000") == 2493072000); /* 2049 */
    CHECK(date("1 jan 2001 00:00 EST") == 978307200 + 5 * 3600);
    CHECK(date("1 Jan 2001 12:00:00 XYZ") == 978307200 + 12 * 3600); /* unknown zone: UTC */
    CHECK(date("1 Jan 2001 99:99:99 +0100") == 978307200);           /* bad time: midnight */
    CHECK(date(" (comment) Mon, 1 January 2001 01:02:03 +0100 (CET)") == 978307200 + 3723 - 3600);
    CHECK(date("1-Jan-2001 00:00:00 +0000") == 978307200);
    CHECK(date("garbage") == -1);
    CHECK(date("") == -1);
    CHECK(date("Mon, 32 Jan 2001") == -1);
    CHECK(date("1 Foo 2001") == -1);
    CHECK(date("1 Jan") == -1);

    /* sort programs */
    imap_sort_crit c[IMAP_SORT_CRITERIA_MAX];
    size_t nc;
    char err[200];
    CHECK_STR(program("REVERSE DATE subject", c, &nc, err), "");
    CHECK(nc == 2 && c[0].key == IMAP_SORT_DATE && c[0].reverse && c[1].key == IMAP_SORT_SUBJECT &&
          !c[1].reverse);
    CHECK_STR(program("ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO", c, &nc, err),
              "");
    CHECK(nc == 9);
    CHECK_STR(program("DATE DATE", c, &nc, err), ""); /* repeats are allowed */
    CHECK_STR(program("FOO", c, &nc, err), "unknown sort key FOO");
    CHECK_STR(program("", c, &nc, err), "the sort program is empty");
    CHECK_STR(program("REVERSE", c, &nc, err), "REVERSE must be followed by a sort key");
    CHECK_STR(program("REVERSE REVERSE DATE", c, &nc, err),
              "REVERSE must be followed by a sort key, not REVERSE");
    CHECK_STR(program("A A A A A A A A A A A A A A A A", c, &nc, err), "unknown sort key A");
    CHECK_STR(program("SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE "
                      "REVERSE SIZE",
                      c, &nc, err),
              "");
    CHECK(nc == 16);
    CHECK_STR(program("SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE SIZE "
                      "SIZE SIZE",
                      c, &nc, err),
              "too many sort keys (at most 16)");
    {
        const char *why, *what;
        imap_arg notlist = {.type = IMAP_ARG_ATOM, .str = "DATE", .len = 4};
        CHECK(imap_sort_program_parse(&notlist, c, &nc, &why, &what) < 0);
        imap_arg q = {.type = IMAP_ARG_STRING, .str = "DATE", .len = 4};
        imap_arg l = {.type = IMAP_ARG_LIST, .list = &q, .count = 1};
        CHECK(imap_sort_program_parse(&l, c, &nc, &why, &what) < 0);
    }

    /* the sort: ties fall back to mailbox order, which REVERSE does not reverse */
    static const char *subj[] = {"b", "Re: a", "A", "[x] b", "c", ""};
    static const int64_t dates[] = {5, 3, 3, 1, 9, 2};
    static const uint64_t sizes[] = {10, 30, 20, 10, 50, 20};
    SORTED("SUBJECT", subj, dates, sizes, "105 101 102 100 103 104");
    SORTED("REVERSE SUBJECT", subj, dates, sizes, "104 100 103 101 102 105");
    SORTED("DATE", subj, dates, sizes, "103 105 101 102 100 104");
    SORTED("REVERSE DATE", subj, dates, sizes, "104 100 101 102 105 103");
    SORTED("SUBJECT REVERSE DATE", subj, dates, sizes, "105 101 102 100 103 104");
    SORTED("SIZE", subj, dates, sizes, "100 103 102 105 101 104");
    SORTED("REVERSE SIZE SUBJECT", subj, dates, sizes, "104 101 105 102 100 103");
    SORTED("ARRIVAL", subj, dates, sizes, "105 104 103 102 101 100");
    SORTED("REVERSE ARRIVAL", subj, dates, sizes, "100 101 102 103 104 105");
    SORTED("SIZE SIZE DATE", subj, dates, sizes, "103 100 105 102 101 104");

    return unit_finish();
}
