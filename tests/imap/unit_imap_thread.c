/* unit_imap_thread.c: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES over made-up messages */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "tests/unit.h"

/* A message of a test: message-id, References, In-Reply-To, Subject (raw), date. */
typedef struct tmsg {
    const char *id, *refs, *irt, *subject;
    int64_t date;
} tmsg;

static uint32_t put(mfs_buf *pool, const char *s, uint32_t *len)
{
    uint32_t off = (uint32_t)pool->len;
    if (s) mfs_buf_puts(pool, s);
    *len = (uint32_t)(pool->len - off);
    return off;
}

static char *threaded(int alg, const tmsg *t, size_t n)
{
    mfs_buf pool = {0};
    mfs_buf_puts(&pool, "");
    imap_thread_msg *m = calloc(n ? n : 1, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        m[i].num = (uint32_t)i + 1;
        m[i].date = t[i].date;
        m[i].msgid_off = put(&pool, t[i].id, &m[i].msgid_len);
        m[i].refs_off = put(&pool, t[i].refs, &m[i].refs_len);
        m[i].irt_off = put(&pool, t[i].irt, &m[i].irt_len);
        mfs_buf b = {0};
        mfs_buf_puts(&b, "");
        const char *s = t[i].subject ? t[i].subject : "";
        m[i].reply = imap_base_subject(&b, s, strlen(s));
        m[i].subject_off = (uint32_t)pool.len;
        imap_casemap(&pool, b.data, b.len);
        m[i].subject_len = (uint32_t)(pool.len - m[i].subject_off);
        mfs_buf_free(&b);
    }
    mfs_buf out = {0};
    imap_thread(alg, m, n, pool.data, &out);
    free(m);
    mfs_buf_free(&pool);
    return out.data;
}

/* True if OUT is a well-formed thread list holding 1..N each once. */
static bool well_formed(const char *out, size_t n)
{
    unsigned char *seen = calloc(n + 1, 1);
    long depth = 0;
    bool ok = true;
    size_t count = 0;
    for (const char *p = out; *p && ok; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            ok = --depth >= 0;
        else if (*p >= '0' && *p <= '9') {
            unsigned long v = strtoul(p, (char **)&p, 10);
            p--;
            ok = v >= 1 && v <= n && !seen[v];
            if (ok) seen[v] = 1;
            count++;
        } else
            ok = *p == ' ';
    }
    free(seen);
    return ok && depth == 0 && count == n;
}

#define THREAD(alg, msgs, want)                                                                    \
    do {                                                                                           \
        size_t n_ = sizeof(msgs) / sizeof(msgs[0]);                                                \
        char *g = threaded(alg, msgs, n_);                                                         \
        CHECK_STR(g, want);                                                                        \
        CHECK(well_formed(g, n_));                                                                 \
        free(g);                                                                                   \
    } while (0)

#define REFS IMAP_THREAD_REFERENCES
#define OS IMAP_THREAD_ORDEREDSUBJECT

/* A chain of N messages, each a reply to the one before (REVERSED: delivered newest first),
 * threaded by REFERENCES; returns the seconds it took, and checks the answer. */
static double chain(size_t n, bool reversed, bool full_refs)
{
    mfs_buf pool = {0};
    mfs_buf_puts(&pool, "");
    imap_thread_msg *m = calloc(n, sizeof(*m));
    for (size_t k = 0; k < n; k++) {
        size_t pos = reversed ? n - 1 - k : k; /* K is the mailbox order, POS the chain's */
        m[k].num = (uint32_t)k + 1;
        m[k].date = (int64_t)pos;
        m[k].msgid_off = (uint32_t)pool.len;
        mfs_buf_printf(&pool, "<m%zu@x>", pos);
        m[k].msgid_len = (uint32_t)(pool.len - m[k].msgid_off);
        if (pos > 0) {
            m[k].refs_off = (uint32_t)pool.len;
            if (full_refs && pos > 1) mfs_buf_printf(&pool, "<m%zu@x> ", pos - 2);
            mfs_buf_printf(&pool, "<m%zu@x>", pos - 1);
            m[k].refs_len = (uint32_t)(pool.len - m[k].refs_off);
        }
        m[k].subject_off = (uint32_t)pool.len;
        mfs_buf_puts(&pool, "SAME");
        m[k].subject_len = 4;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    mfs_buf out = {0};
    imap_thread(REFS, m, n, pool.data, &out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(well_formed(out.data, n));
    /* one list, every number in chain order */
    mfs_buf want = {0};
    mfs_buf_putc(&want, '(');
    for (size_t pos = 0; pos < n; pos++)
        mfs_buf_printf(&want, "%s%zu", pos ? " " : "", reversed ? n - pos : pos + 1);
    mfs_buf_putc(&want, ')');
    CHECK(out.len == want.len && memcmp(out.data, want.data, want.len) == 0);
    mfs_buf_free(&out);
    mfs_buf_free(&want);
    mfs_buf_free(&pool);
    free(m);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(void)
{

    /* message-ids: normalized, invalid ones skipped */
    {
        const char *s = "junk <a@b> <\"x y\"@c.d> <noat> <> <e\\@f@g> <h@i";
        size_t pos = 0;
        mfs_buf b = {0};
        mfs_buf_puts(&b, "");
        CHECK(imap_msgid_next(s, strlen(s), &pos, &b));
        CHECK_STR(b.data, "a@b");
        mfs_buf_truncate(&b, 0);
        CHECK(imap_msgid_next(s, strlen(s), &pos, &b));
        CHECK_STR(b.data, "xy@c.d");
        mfs_buf_truncate(&b, 0);
        CHECK(imap_msgid_next(s, strlen(s), &pos, &b));
        CHECK_STR(b.data, "e@f@g");
        mfs_buf_truncate(&b, 0);
        CHECK(!imap_msgid_next(s, strlen(s), &pos, &b));
        CHECK(b.len == 0);
        mfs_buf_free(&b);
        CHECK(imap_thread_alg_find("references") == REFS);
        CHECK(imap_thread_alg_find("OrderedSubject") == OS);
        CHECK(imap_thread_alg_find("REFS") == -1);
    }

    /* nothing */
    {
        mfs_buf out = {0};
        imap_thread(REFS, NULL, 0, NULL, &out);
        CHECK_STR(out.data, "");
        mfs_buf_free(&out);
    }

    /* a chain, and a message with two replies */
    static const tmsg chain3[] = {
        {"<a@x>", NULL, NULL, "hello", 1},
        {"<b@x>", "<a@x>", NULL, "Re: hello", 2},
        {"<c@x>", "<a@x> <b@x>", NULL, "Re: hello", 3},
    };
    THREAD(REFS, chain3, "(1 2 3)");
    THREAD(OS, chain3, "(1 (2)(3))");
    static const tmsg two[] = {
        {"<a@x>", NULL, NULL, "q", 1},
        {"<b@x>", "<a@x>", NULL, "Re: q", 3},
        {"<c@x>", NULL, "<a@x> (sent by c)", "Re: q", 2},
        {"<d@x>", "<a@x> <c@x>", NULL, "Re: q", 4},
    };
    THREAD(REFS, two, "(1 (3 4)(2))");
    THREAD(OS, two, "(1 (3)(2)(4))");

    /* References wins over In-Reply-To; In-Reply-To's first id only */
    static const tmsg irt[] = {
        {"<a@x>", NULL, NULL, "s1", 1},
        {"<b@x>", NULL, NULL, "s2", 2},
        {"<c@x>", "<b@x>", "<a@x>", "s3", 3},
        {"<d@x>", NULL, "<a@x> <b@x>", "s4", 4},
        {"<e@x>", "no ids here", "<b@x>", "s5", 5},
    };
    THREAD(REFS, irt, "(1 4)(2 (3)(5))");

    /* missing parents: two children of a dummy stay under it; a single child is promoted */
    static const tmsg missing[] = {
        {"<b@x>", "<gone@x>", NULL, "x", 2},
        {"<c@x>", "<gone@x>", NULL, "y", 1},
        {"<d@x>", "<gone2@x> <gone3@x>", NULL, "z", 3},
    };
    THREAD(REFS, missing, "((2)(1))(3)");
    /* a missing message in the middle of a chain: its child hangs on the grandparent */
    static const tmsg middle[] = {
        {"<a@x>", NULL, NULL, "m", 1},
        {"<c@x>", "<a@x> <b@x>", NULL, "Re: m", 3},
        {"<d@x>", "<a@x> <b@x>", NULL, "Re: m", 4},
    };
    THREAD(REFS, middle, "(1 (2)(3))");

    /* subjects: a reply joins its original; two originals get a dummy; empty ones stay apart */
    static const tmsg subj[] = {
        {"<a@x>", NULL, NULL, "Lunch", 1},   {"<b@x>", NULL, NULL, "Re: lunch", 2},
        {"<c@x>", NULL, NULL, "meeting", 3}, {"<d@x>", NULL, NULL, "[list] MEETING", 4},
        {"<e@x>", NULL, NULL, "", 5},        {"<f@x>", NULL, NULL, "", 6},
    };
    THREAD(REFS, subj, "(1 2)((3)(4))(5)(6)");
    THREAD(OS, subj, "(1 2)(3 4)(5 6)");
    /* a reply seen before its original is made its child all the same */
    static const tmsg early[] = {
        {"<b@x>", NULL, NULL, "Re: plan", 1},
        {"<a@x>", NULL, NULL, "plan", 2},
    };
    THREAD(REFS, early, "(2 1)");

    /* loops: A says B is its parent and B says A; a message that references itself */
    static const tmsg loop[] = {
        {"<a@x>", "<b@x>", NULL, "l1", 1},
        {"<b@x>", "<a@x>", NULL, "l2", 2},
        {"<s@x>", "<s@x>", NULL, "l3", 3},
        {"<t@x>", "<t@x> <u@x> <t@x>", NULL, "l4", 4},
        {"<v@x>", "<w@x> <v@x> <w@x>", NULL, "l5", 5},
    };
    {
        char *g = threaded(REFS, loop, 5);
        CHECK(well_formed(g, 5));
        CHECK_STR(g, "(2 1)(3)(4)(5)");
        free(g);
    }

    /* 1B breaks the link a truncated References made before it checks for a loop: C's own
     * reference is B, which hangs below C, so C ends up with no parent (imaptest's thread.mbox;
     * Dovecot answers the same) */
    static const tmsg broken[] = {
        {"<a@b>", NULL, NULL, NULL, 3},
        {"<b@b>", "<a@b> <c@b>", NULL, NULL, 1},
        {"<c@b>", "<b@b>", NULL, NULL, 2},
    };
    THREAD(REFS, broken, "(3 2)(1)");

    /* a message-id shared by two messages: only the first keeps it */
    static const tmsg dup[] = {
        {"<a@x>", NULL, NULL, "d1", 1},
        {"<a@x>", NULL, NULL, "d2", 2},
        {"<c@x>", "<a@x>", NULL, "d3", 3},
    };
    THREAD(REFS, dup, "(1 3)(2)");
    /* no message-ids at all */
    static const tmsg noid[] = {
        {NULL, NULL, NULL, "n", 2},
        {"garbage", "<>", "nope", "n", 1},
    };
    THREAD(REFS, noid, "((2)(1))");
    THREAD(OS, noid, "(2 1)");

    /* equal dates: mailbox order */
    static const tmsg same[] = {{"<a@x>", NULL, NULL, "s", 5},
                                {"<b@x>", "<a@x>", NULL, "s", 5},
                                {"<c@x>", "<a@x>", NULL, "s", 5},
                                {"<d@x>", NULL, NULL, "t", 5}};
    THREAD(REFS, same, "(1 (2)(3))(4)");

    /* 100,000 messages in one chain, either delivery order, with short or two-id References:
     * no deep recursion and no quadratic walk (each takes milliseconds; 2 s is a wide bound) */
    CHECK(chain(100000, false, false) < 2.0);
    CHECK(chain(100000, true, false) < 2.0);
    CHECK(chain(100000, false, true) < 2.0);
    CHECK(chain(100000, true, true) < 2.0);

    return unit_finish();
}
