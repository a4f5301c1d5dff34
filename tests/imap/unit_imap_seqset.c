/* unit_imap_seqset.c: sequence set parsing, resolving, limits and printing */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"
#include "tests/unit.h"

static char *resolved(const char *s, uint32_t star)
{
    imap_seqset set;
    const char *why;
    if (imap_seqset_parse(s, strlen(s), 0, &set, &why) < 0) return strdup(why);
    imap_seqset_resolve(&set, star);
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    for (size_t i = 0; i < set.n; i++)
        mfs_buf_printf(&b, "%s%u-%u", i ? "," : "", set.r[i].lo, set.r[i].hi);
    imap_seqset_free(&set);
    return b.data;
}

#define EXPECT(in, star, want)                                                                     \
    do {                                                                                           \
        char *g = resolved(in, star);                                                              \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

int main(void)
{
    EXPECT("1", 10, "1-1");
    EXPECT("1:3,5", 10, "1-3,5-5");
    EXPECT("5,1:3", 10, "1-3,5-5");
    EXPECT("3:1", 10, "1-3");
    EXPECT("1:*", 10, "1-10");
    EXPECT("*", 7, "7-7");
    EXPECT("20:*", 7, "7-20"); /* n:* with n beyond the end includes the last */
    EXPECT("1:4,3:8,9,12", 20, "1-9,12-12");
    EXPECT("4294967295", 1, "4294967295-4294967295");
    EXPECT("0", 1, "sequence numbers start at 1");
    EXPECT("1:0", 1, "sequence numbers start at 1");
    EXPECT("4294967296", 1, "sequence number too large");
    EXPECT("", 1, "empty sequence set");
    EXPECT("1,", 1, "invalid sequence set");
    EXPECT("1::2", 1, "invalid sequence set");
    EXPECT("a", 1, "invalid sequence set");
    EXPECT("1 2", 1, "invalid sequence set");

    /* the range limit */
    {
        mfs_buf b = {0};
        for (int i = 1; i <= 101; i++)
            mfs_buf_printf(&b, "%s%d", i > 1 ? "," : "", i * 2);
        imap_seqset set;
        const char *why = NULL;
        CHECK(imap_seqset_parse(b.data, b.len, 100, &set, &why) < 0);
        CHECK_STR(why, "too many ranges in sequence set");
        CHECK(imap_seqset_parse(b.data, b.len, 101, &set, &why) == 0);
        imap_seqset_resolve(&set, 1000);
        CHECK(imap_seqset_count(&set) == 101);
        CHECK(imap_seqset_contains(&set, 2));
        CHECK(imap_seqset_contains(&set, 202));
        CHECK(!imap_seqset_contains(&set, 3));
        CHECK(!imap_seqset_contains(&set, 204));
        imap_seqset_free(&set);
        mfs_buf_free(&b);
    }
    /* huge ranges are cheap */
    {
        imap_seqset set;
        const char *why;
        CHECK(imap_seqset_parse("1:4294967295", 12, 0, &set, &why) == 0);
        imap_seqset_resolve(&set, 5);
        CHECK(imap_seqset_count(&set) == 4294967295ull);
        imap_seqset_free(&set);
    }
    CHECK(imap_seqset_syntax("1:*,4", 5));
    CHECK(!imap_seqset_syntax("ALL", 3));
    /* printing */
    {
        uint32_t v[] = {1, 2, 3, 5, 7, 8, 10};
        mfs_buf b = {0};
        imap_seqset_format(&b, v, 7);
        CHECK_STR(b.data, "1:3,5,7:8,10");
        mfs_buf_free(&b);
    }
    return unit_finish();
}
