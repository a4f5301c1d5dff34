/* unit.h: the one assertion macro of the C unit tests (tests/DIR/unit_*.c) and fuzz targets */
#ifndef MAILFS_TESTS_UNIT_H
#define MAILFS_TESTS_UNIT_H

/*
 * CHECK(cond) or CHECK(cond, "format", args...) checks one thing a user would notice;
 * CHECK_STR(got, want) checks that two strings are equal (a NULL one is never equal).
 *
 * In a unit test a failure prints "FILE:LINE: FAILED: COND: MESSAGE" on stderr and the test goes
 * on, so one run shows every failure; unit_finish() prints "N passed, M failed" (what
 * tests/test_unit.py looks for) and returns the exit status for main. A fuzz target defines
 * UNIT_FUZZ before including this header: a failure prints "FILE:LINE: check failed: COND:
 * MESSAGE" and abort()s, so libFuzzer keeps the input that caused it; nothing is counted.
 *
 * Each test is one program of one test file, so the tally is static to it. The message, when
 * given, must start with a string literal; CHECK(cond) with none relies on the GNU/C23 reading
 * of an empty variadic argument, which gcc and clang accept without -pedantic.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            unit_pass_();                                                                          \
        else                                                                                       \
            unit_fail_(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                                \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *unit_g_ = (got), *unit_w_ = (want);                                            \
        if (unit_g_ && unit_w_ && strcmp(unit_g_, unit_w_) == 0)                                   \
            unit_pass_();                                                                          \
        else                                                                                       \
            unit_fail_(__FILE__, __LINE__, #got, "\n  got:  [%s]\n  want: [%s]",                   \
                       unit_g_ ? unit_g_ : "(null)", unit_w_ ? unit_w_ : "(null)");                \
    } while (0)

#ifdef UNIT_FUZZ

static inline void unit_pass_(void) {}

/* FMT is " " when CHECK was given no message, else what follows "COND:". */
__attribute__((format(printf, 4, 5), noreturn)) static inline void
unit_fail_(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: check failed: %s", file, line, cond);
    if (strcmp(fmt, " ") != 0) {
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    abort();
}

#else

static struct unit_tally {
    unsigned passed, failed;
} unit_tally;

static inline void unit_pass_(void)
{
    unit_tally.passed++;
}

/* FMT is " " when CHECK was given no message, else what follows "COND:". */
__attribute__((format(printf, 4, 5))) static inline void
unit_fail_(const char *file, int line, const char *cond, const char *fmt, ...)
{
    unit_tally.failed++;
    fflush(stdout); /* what the test printed before comes first */
    fprintf(stderr, "%s:%d: FAILED: %s", file, line, cond);
    if (strcmp(fmt, " ") != 0) {
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

/* Prints the tally; returns main's exit status: 0 if nothing failed, else 1. */
static inline int unit_finish(void)
{
    printf("%u passed, %u failed\n", unit_tally.passed, unit_tally.failed);
    return unit_tally.failed ? 1 : 0;
}

#endif

#endif
