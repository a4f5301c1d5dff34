/* unit.h: the tiny assertion harness of the imap unit tests */
#ifndef MAILFS_TESTS_IMAP_UNIT_H
#define MAILFS_TESTS_IMAP_UNIT_H

#include <stdio.h>
#include <string.h>

typedef struct unit_ctx {
    int passed, failed;
} unit_ctx;

#define CHECK(u, cond)                                                                             \
    do {                                                                                           \
        if (cond) {                                                                                \
            (u)->passed++;                                                                         \
        } else {                                                                                   \
            (u)->failed++;                                                                         \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);                     \
        }                                                                                          \
    } while (0)

#define CHECK_STR(u, got, want)                                                                    \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                                     \
            (u)->passed++;                                                                         \
        } else {                                                                                   \
            (u)->failed++;                                                                         \
            fprintf(stderr, "%s:%d: FAILED: %s\n  got:  [%s]\n  want: [%s]\n", __FILE__, __LINE__, \
                    #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                 \
        }                                                                                          \
    } while (0)

static inline int unit_finish(unit_ctx *u)
{
    printf("%d passed, %d failed\n", u->passed, u->failed);
    return u->failed ? 1 : 0;
}

#endif
