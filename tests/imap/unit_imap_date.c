/* unit_imap_date.c: IMAP dates and date-times: parsing, zones, formatting and round trips */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_date.h"
#include "tests/unit.h"

/* T in zone TZ as imap_date_time_put writes it (malloc'ed). */
static char *put(int64_t t, int tz)
{
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    imap_date_time_put(&b, t, tz);
    return b.data;
}

#define PUT(u, t, tz, want)                                                                        \
    do {                                                                                           \
        char *g = put(t, tz);                                                                      \
        CHECK_STR(g, want);                                                                        \
        free(g);                                                                                   \
    } while (0)

/* S parses as a date-time to T in zone TZ. */
static int parses_to(const char *s, int64_t t, int tz)
{
    int64_t got = -1;
    int gz = 12345;
    return imap_date_time_parse(s, &got, &gz) == 0 && got == t && gz == tz;
}

static int rejected(const char *s)
{
    int64_t t = 0;
    int tz = 0;
    return imap_date_time_parse(s, &t, &tz) < 0;
}

/* Formatting T in zone TZ and parsing the text (without its quotes) gives T and TZ back. */
static int round_trip(int64_t t, int tz)
{
    char *s = put(t, tz);
    size_t n = strlen(s);
    int ok = n > 2 && s[0] == '"' && s[n - 1] == '"';
    if (ok) {
        s[n - 1] = '\0';
        ok = parses_to(s + 1, t, tz);
    }
    free(s);
    return ok;
}

static void date_times(void)
{
    /* RFC 3501's example: 02:44:25 at -0700 is 09:44:25 UTC */
    CHECK(parses_to("17-Jul-1996 02:44:25 -0700", 837596665, -420));
    CHECK(parses_to("17-Jul-1996 09:44:25 +0000", 837596665, 0));
    CHECK(parses_to("17-Jul-1996 15:14:25 +0530", 837596665, 330));
    CHECK(parses_to(" 1-Feb-2024 00:00:00 +0000", 1706745600, 0));  /* a space-padded day */
    CHECK(parses_to("01-feb-2024 01:00:00 +0100", 1706745600, 60)); /* month in any case */
    CHECK(parses_to("29-Feb-2024 23:59:59 +0000", 1709251199, 0));  /* a leap day */
    CHECK(parses_to("31-Dec-2023 23:30:00 -0030", 1706745600 - 31 * 86400, -30));
    CHECK(rejected(""));
    CHECK(rejected("17-Jul-1996"));                  /* a date without a time */
    CHECK(rejected("17-Jul-1996 02:44:25"));         /* no zone */
    CHECK(rejected("17-Jul-1996 02:44:25 0700"));    /* a zone without its sign */
    CHECK(rejected("17-Jul-1996 02:44:25 *0700"));   /* nor with another one */
    CHECK(rejected("17-Jly-1996 02:44:25 -0700"));   /* no such month */
    CHECK(rejected("0-Jul-1996 02:44:25 -0700"));    /* day 0 */
    CHECK(rejected("32-Jul-1996 02:44:25 -0700"));   /* day 32 */
    CHECK(rejected("17-Jul-1996 24:00:00 -0700"));   /* hour 24 */
    CHECK(rejected("17-Jul-1996 02:60:00 -0700"));   /* minute 60 */
    CHECK(rejected("17-Jul-1996 02:44:61 -0700"));   /* second 61 */
    CHECK(rejected("17-Jul-1996 02:44:25 +0160"));   /* zone minutes 60 */
    CHECK(rejected("17-Jul-1996 02:44:25 -0700 x")); /* trailing text */
    CHECK(rejected("17/Jul/1996 02:44:25 -0700"));
    CHECK(rejected("31-Feb-2024 10:00:00 +0000")); /* no such day: not 2 March */
    CHECK(rejected("29-Feb-2023 10:00:00 +0000")); /* not a leap year */
    CHECK(rejected("31-Apr-2024 10:00:00 +0000"));
    CHECK(parses_to("29-Feb-2000 00:00:00 +0000", 951782400, 0)); /* 2000 is a leap year */
    CHECK(rejected("17-Jul-1996 -2:44:25 -0700"));                /* a sign inside a field */
    CHECK(rejected("17-Jul-1996 02:-4:25 -0700"));
    CHECK(rejected("17-Jul-1996 02:44:25 +-700"));
    CHECK(rejected("17-Jul-1996 02:44:25 +9959")); /* zone hours past 23 */
    CHECK(parses_to("17-Jul-1996 02:44:25 +2359", 837596665 - 7 * 3600 - 1439 * 60, 1439));
}

static void formatting(void)
{
    PUT(u, 837596665, -420, "\"17-Jul-1996 02:44:25 -0700\"");
    PUT(u, 837596665, 0, "\"17-Jul-1996 09:44:25 +0000\"");
    PUT(u, 837596665, 330, "\"17-Jul-1996 15:14:25 +0530\"");
    PUT(u, 0, 0, "\"01-Jan-1970 00:00:00 +0000\"");
    PUT(u, 1706745600, -60, "\"31-Jan-2024 23:00:00 -0100\""); /* the zone moves the day back */
    PUT(u, 1709251199, 60, "\"01-Mar-2024 00:59:59 +0100\"");  /* and forward, past a leap day */
    int64_t ts[] = {0, 837596665, 1706745600, 1709251199, 4102444799}; /* ... to 2099 */
    int zones[] = {0, 60, -60, 330, -420, 840, -720, -30, 59};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
            CHECK(round_trip(ts[i], zones[z]));
}

static void dates(void)
{
    int64_t t = -1;
    CHECK(imap_date_parse("1-Feb-2024", &t) == 0 && t == 1706745600);
    t = -1;
    CHECK(imap_date_parse("01-FEB-2024", &t) == 0 && t == 1706745600);
    CHECK(imap_date_parse("29-Feb-2024", &t) == 0 && t == 1709251199 - 86399);
    CHECK(imap_date_parse("", &t) < 0);
    CHECK(imap_date_parse("1-Feb-2024 00:00:00 +0000", &t) < 0); /* a date-time is not a date */
    CHECK(imap_date_parse("1-Feb-1899", &t) < 0);
    CHECK(imap_date_parse("1-Fev-2024", &t) < 0);
    CHECK(imap_date_parse("0-Feb-2024", &t) < 0);
    CHECK(imap_date_parse("32-Feb-2024", &t) < 0);
    CHECK(imap_date_parse("30-Feb-2024", &t) < 0);
    CHECK(imap_date_parse("31-Jun-2024", &t) < 0);
    CHECK(imap_date_header_days("Sat, 31 Feb 2024 10:00 GMT") == -1);
    CHECK(imap_date_header_days("Sat, 29 Feb 2024 10:00 GMT") == 19782);
    CHECK(imap_date_parse("1-Feb-2024x", &t) < 0);
    CHECK(imap_date_parse("2024-02-01", &t) < 0);

    /* whole days, rounded towards the past on both sides of the epoch */
    CHECK(imap_date_days(0) == 0);
    CHECK(imap_date_days(86399) == 0);
    CHECK(imap_date_days(86400) == 1);
    CHECK(imap_date_days(-1) == -1);
    CHECK(imap_date_days(-86400) == -1);
    CHECK(imap_date_days(-86401) == -2);
    CHECK(imap_date_days(1706745600) == 19754);

    /* the Date: header's day, in its own zone (SENTON, SENTSINCE, SENTBEFORE) */
    CHECK(imap_date_header_days("Thu, 1 Feb 2024 23:30:00 -0800") == 19754);
    CHECK(imap_date_header_days("1 Feb 2024 00:10:00 +1400") == 19754);
    CHECK(imap_date_header_days("Thu,  1 feb 2024 10:00:00 +0000 (UTC)") == 19754);
    CHECK(imap_date_header_days("1 Feb 24 10:00 GMT") == 19754); /* two-digit years */
    CHECK(imap_date_header_days("1 Feb 99 10:00 GMT") == 10623);
    CHECK(imap_date_header_days("") == -1);
    CHECK(imap_date_header_days("yesterday") == -1);
    CHECK(imap_date_header_days("1 Fbr 2024 10:00 GMT") == -1);
}

int main(void)
{
    date_times();
    formatting();
    dates();
    return unit_finish();
}
