/* unit_imap_list.c: LIST pattern matching and the flags of the mailbox list (no store) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "tests/unit.h"

/* The obvious backtracking matcher: exponential, but right, for short inputs. */
static bool ref_match(const char *p, const char *n)
{
    if (*p == '\0') return *n == '\0';
    if (*p == '*' || *p == '%') {
        for (const char *q = n;; q++) {
            if (ref_match(p + 1, q)) return true;
            if (*q == '\0' || (*p == '%' && *q == '/')) return false;
        }
    }
    return *n == *p && ref_match(p + 1, n + 1);
}

static bool ref_any(char **pats, size_t np, const char *name)
{
    for (size_t k = 0; k < np; k++)
        if (ref_match(pats[k], name)) return true;
    return false;
}

static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static void rnd_str(char *out, size_t maxlen, const char *alphabet)
{
    size_t len = rnd((unsigned)maxlen + 1), na = strlen(alphabet);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd((unsigned)na)];
    out[len] = '\0';
}

static void test_examples(void)
{
    CHECK(imap_pattern_match("*", ""));
    CHECK(imap_pattern_match("%", ""));
    CHECK(imap_pattern_match("", ""));
    CHECK(!imap_pattern_match("", "a"));
    CHECK(imap_pattern_match("*", "a/b/c"));
    CHECK(!imap_pattern_match("%", "a/b"));
    CHECK(imap_pattern_match("%", "Sent Items"));
    CHECK(imap_pattern_match("a/%", "a/b"));
    CHECK(!imap_pattern_match("a/%", "a/b/c"));
    CHECK(imap_pattern_match("a/*", "a/b/c"));
    CHECK(imap_pattern_match("%/%", "a/b"));
    CHECK(imap_pattern_match("*/c", "a/b/c"));
    CHECK(!imap_pattern_match("%/c", "a/b/c"));
    CHECK(imap_pattern_match("a%", "abc"));
    CHECK(imap_pattern_match("a%c", "abc"));
    CHECK(!imap_pattern_match("a%c", "ab/c"));
    CHECK(imap_pattern_match("a*c", "ab/c"));
    CHECK(imap_pattern_match("%*%", "x/y")); /* a run with '*' is '*' */
    CHECK(imap_pattern_match("%%%", "xyz")); /* a run of '%' is '%' */
    CHECK(!imap_pattern_match("%%%", "x/z"));
    CHECK(imap_pattern_match("INBOX", "INBOX"));
    CHECK(!imap_pattern_match("INBOX", "INBOX/x"));
    CHECK(!imap_pattern_match("INBOX", "INBOXES"));
    CHECK(imap_pattern_match("Caf\xc3\xa9/%", "Caf\xc3\xa9/x"));
    CHECK(imap_pattern_match("*b", "aaaaab"));
    CHECK(!imap_pattern_match("*b", "aaaaaba"));

    /* many patterns at once: any may match; prefixes report matching ancestors */
    char *pats[] = {"x", "a/%", "*z"};
    imap_patterns *p = imap_patterns_new(pats, 3);
    CHECK(imap_patterns_match(p, "x", 1, NULL, 0, NULL));
    CHECK(imap_patterns_match(p, "a/q", 3, NULL, 0, NULL));
    CHECK(imap_patterns_match(p, "q/q/z", 5, NULL, 0, NULL));
    CHECK(!imap_patterns_match(p, "xx", 2, NULL, 0, NULL));
    CHECK(!imap_patterns_match(p, "a/q/r", 5, NULL, 0, NULL));
    uint16_t pre[16];
    size_t npre = 99;
    CHECK(!imap_patterns_match(p, "x/a/b/c", 7, pre, 16, &npre));
    CHECK(npre == 1 && pre[0] == 1); /* "x" */
    CHECK(!imap_patterns_match(p, "a/b/c", 5, pre, 16, &npre));
    CHECK(npre == 1 && pre[0] == 3); /* "a/b" */
    CHECK(imap_patterns_match(p, "z/z/z", 5, pre, 16, &npre));
    CHECK(npre == 2 && pre[0] == 1 && pre[1] == 3);
    imap_patterns_free(&p);
    CHECK(p == NULL);
}

/* Random patterns and names over a small alphabet, against the reference. */
static void test_random(void)
{
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        char pats[3][12], name[14], *pv[3];
        size_t np = 1 + rnd(3);
        for (size_t k = 0; k < np; k++) {
            rnd_str(pats[k], 10, "ab/*%%");
            pv[k] = pats[k];
        }
        rnd_str(name, 12, "ab//");
        imap_patterns *p = imap_patterns_new(pv, np);
        uint16_t pre[16];
        size_t npre;
        bool got = imap_patterns_match(p, name, strlen(name), pre, 16, &npre);
        bool want = ref_any(pv, np, name);
        if (got != want && bad++ < 5)
            fprintf(stderr, "patterns [%s] [%s] [%s] (%zu) name [%s]: got %d want %d\n", pats[0],
                    np > 1 ? pats[1] : "", np > 2 ? pats[2] : "", np, name, got, want);
        CHECK(got == want);
        /* the reported prefixes are exactly the matching ancestors (when the walk got there) */
        size_t k = 0;
        for (size_t i = 0; name[i]; i++) {
            if (name[i] != '/') continue;
            char anc[14];
            memcpy(anc, name, i);
            anc[i] = '\0';
            if (ref_any(pv, np, anc)) {
                bool listed = k < npre && pre[k] == i;
                /* the walk stops once no pattern can match a longer name: nothing after */
                bool stopped = !listed && k == npre;
                CHECK(listed || (stopped && !got));
                if (listed) k++;
            }
        }
        CHECK(k == npre);
        imap_patterns_free(&p);
    }
}

/* Patterns that cost the old matcher O(pattern x name) per pair cost one pass now; this only
 * checks the answers (tests/imap/test_security_slow.py measures the time). */
static void test_big(void)
{
    char *pats[IMAP_LIST_PATTERNS_MAX];
    for (size_t k = 0; k < IMAP_LIST_PATTERNS_MAX; k++) {
        pats[k] = malloc(64);
        memset(pats[k], k % 2 ? '*' : '%', 62);
        pats[k][62] = 'b';
        pats[k][63] = '\0';
    }
    char name[251];
    memset(name, 'x', 250);
    name[250] = '\0';
    imap_patterns *p = imap_patterns_new(pats, IMAP_LIST_PATTERNS_MAX);
    CHECK(!imap_patterns_match(p, name, 250, NULL, 0, NULL));
    name[249] = 'b';
    CHECK(imap_patterns_match(p, name, 250, NULL, 0, NULL));
    name[100] = '/';
    CHECK(imap_patterns_match(p, name, 250, NULL, 0, NULL)); /* the '*' ones */
    imap_patterns_free(&p);
    for (size_t k = 0; k < IMAP_LIST_PATTERNS_MAX; k++)
        free(pats[k]);
}

/* ---- the list's flags -------------------------------------------------------------------- */

typedef struct ref_ent {
    char name[64];
    uint32_t id;
    bool subscribed;
} ref_ent;

static bool below(const char *anc, const char *name)
{
    size_t l = strlen(anc);
    return strncmp(anc, name, l) == 0 && name[l] == '/';
}

/* The expected answer, by brute force: "name flags" lines in path order. */
static void ref_list(const ref_ent *v, size_t n, char **pats, size_t np, mfs_buf *out)
{
    /* every name, and every missing parent */
    ref_ent all[400];
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        all[na++] = v[i];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; v[i].name[j]; j++) {
            if (v[i].name[j] != '/') continue;
            ref_ent e = {.id = 0};
            memcpy(e.name, v[i].name, j);
            e.name[j] = '\0';
            bool have = false;
            for (size_t k = 0; k < na && !have; k++)
                have = strcmp(all[k].name, e.name) == 0;
            if (!have) all[na++] = e;
        }
    }
    /* path order: selection sort with '/' first */
    for (size_t i = 0; i < na; i++) {
        for (size_t j = i + 1; j < na; j++) {
            const unsigned char *a = (unsigned char *)all[i].name,
                                *b = (unsigned char *)all[j].name;
            while (*a && *a == *b)
                a++, b++;
            int ca = *a == '/' ? 1 : *a ? *a + 1 : 0, cb = *b == '/' ? 1 : *b ? *b + 1 : 0;
            if (cb < ca) {
                ref_ent t = all[i];
                all[i] = all[j];
                all[j] = t;
            }
        }
    }
    for (size_t i = 0; i < na; i++) {
        if (!ref_any(pats, np, all[i].name)) continue;
        bool children = false, hidden = false;
        for (size_t k = 0; k < na; k++) {
            if (!below(all[i].name, all[k].name)) continue;
            if (all[k].id) children = true;
            if (all[k].subscribed && !ref_any(pats, np, all[k].name)) hidden = true;
        }
        bool listed = false;
        for (size_t k = 0; k < n && !listed; k++)
            listed = strcmp(v[k].name, all[i].name) == 0;
        /* a missing parent with nothing below it is never shown: left out */
        if (!listed && !children && !hidden) continue;
        mfs_buf_printf(out, "%s %u%s%s%s\n", all[i].name, all[i].id,
                       all[i].subscribed ? " sub" : "", children ? " children" : "",
                       hidden ? " hidden" : "");
    }
}

static void got_list(imap_mblist *l, mfs_buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const imap_mbentry *e = &l->v[i];
        char name[STORE_NAME_MAX + 1];
        mfs_buf_printf(out, "%s %u%s%s%s\n", imap_mblist_name(l, e, name), e->id,
                       (e->flags & IMAP_MB_SUBSCRIBED) ? " sub" : "",
                       (e->flags & IMAP_MB_CHILDREN) ? " children" : "",
                       (e->flags & IMAP_MB_HIDDEN) ? " hidden" : "");
    }
}

static void test_list_random(void)
{
    int bad = 0;
    for (int round = 0; round < 3000; round++) {
        ref_ent v[40];
        size_t n = rnd(12);
        for (size_t i = 0; i < n; i++) {
            do {
                rnd_str(v[i].name, 7, "ab /");
            } while (!v[i].name[0] || v[i].name[0] == '/' || strstr(v[i].name, "//") ||
                     v[i].name[strlen(v[i].name) - 1] == '/');
            bool dup = false;
            for (size_t k = 0; k < i && !dup; k++)
                dup = strcmp(v[k].name, v[i].name) == 0;
            if (dup) {
                i--;
                continue;
            }
            v[i].subscribed = rnd(3) == 0;
            v[i].id = v[i].subscribed && rnd(2) ? 0 : (uint32_t)i + 1;
        }
        char pbuf[3][10], *pats[3];
        size_t np = 1 + rnd(2);
        for (size_t k = 0; k < np; k++) {
            rnd_str(pbuf[k], 6, "ab/*%%");
            pats[k] = pbuf[k];
        }
        imap_patterns *p = imap_patterns_new(pats, np);
        imap_mblist l = {0};
        for (size_t i = 0; i < n; i++)
            imap_mblist_add(&l, v[i].name, v[i].id, 0, v[i].subscribed ? IMAP_MB_SUBSCRIBED : 0);
        /* half the time with no time at all: the build goes on one name per step */
        int rc, steps = 0;
        while ((rc = imap_mblist_scan(&l, p, round % 2 ? 0 : INT64_MAX)) == 1)
            steps++;
        CHECK(rc == 0);
        CHECK(round % 2 || steps == 0);
        mfs_buf want = {0}, got = {0};
        mfs_buf_puts(&want, "");
        mfs_buf_puts(&got, "");
        ref_list(v, n, pats, np, &want);
        got_list(&l, &got);
        if (strcmp(want.data, got.data) != 0 && bad++ < 3)
            fprintf(stderr, "patterns '%s' '%s':\n got:\n%s want:\n%s", pats[0],
                    np > 1 ? pats[1] : "", got.data, want.data);
        CHECK(strcmp(want.data, got.data) == 0);
        mfs_buf_free(&want);
        mfs_buf_free(&got);
        imap_mblist_free(&l);
        imap_patterns_free(&p);
    }
}

static void test_list_cases(void)
{
    /* "a b" sorts after "a/x" in path order, so the parent "a" comes right before its child */
    char *pats[] = {"*"};
    imap_patterns *p = imap_patterns_new(pats, 1);
    imap_mblist l = {0};
    imap_mblist_add(&l, "a b", 1, 0, 0);
    imap_mblist_add(&l, "a/x/y", 2, 0, IMAP_MB_SUBSCRIBED);
    imap_mblist_add(&l, "INBOX", 3, 0, 0);
    CHECK(imap_mblist_scan(&l, p, INT64_MAX) == 0);
    mfs_buf got = {0};
    mfs_buf_puts(&got, "");
    got_list(&l, &got);
    CHECK_STR(got.data, "INBOX 3\na 0 children\na/x 0 children\na/x/y 2 sub\na b 1\n");
    mfs_buf_free(&got);
    imap_mblist_free(&l);
    imap_patterns_free(&p);

    /* LSUB "%" over deep subscriptions: each top level shown once, as a parent of hidden
     * subscriptions; no entry for the levels between */
    char *pct[] = {"%"};
    p = imap_patterns_new(pct, 1);
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof(name), "s%d/b/b/b/b/b/b/b", i);
        imap_mblist_add(&l, name, 0, 0, IMAP_MB_SUBSCRIBED);
    }
    CHECK(imap_mblist_scan(&l, p, INT64_MAX) == 0);
    mfs_buf_puts(&got, "");
    got_list(&l, &got);
    CHECK_STR(got.data, "s0 0 hidden\ns1 0 hidden\ns2 0 hidden\n");
    mfs_buf_free(&got);
    imap_mblist_free(&l);
    imap_patterns_free(&p);
}

int main(void)
{
    test_examples();
    test_random();
    test_big();
    test_list_cases();
    test_list_random();
    return unit_finish();
}
