/* imap_date.c: IMAP dates and date-times, parsed and formatted, and the day of a Date: header */
#include "imap/imap_date.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void imap_date_time_put(mfs_buf *b, int64_t t, int tz_min)
{
    time_t lt = (time_t)(t + (int64_t)tz_min * 60);
    struct tm tm;
    gmtime_r(&lt, &tm);
    int z = tz_min < 0 ? -tz_min : tz_min;
    mfs_buf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", tm.tm_mday, months[tm.tm_mon],
                   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tz_min < 0 ? '-' : '+',
                   z / 60, z % 60);
}

/* Whether day D (1-based) exists in month M (0-11) of year Y: "31-Feb-2024" is no date (timegm
 * would make it 2 March). */
static bool day_exists(int d, int m, int y)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d >= 1 && d <= len[m] + (m == 1 && leap);
}

static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, months[i], 3) == 0) return i;
    return -1;
}

int imap_date_parse(const char *s, int64_t *t)
{
    int d, y;
    char mon[4];
    int n = 0;
    if (sscanf(s, "%2d-%3[A-Za-z]-%4d%n", &d, mon, &y, &n) != 3 || s[n] != '\0') return -1;
    int m = month_of(mon);
    if (m < 0 || y < 1900 || !day_exists(d, m, y)) return -1;
    struct tm tm = {.tm_mday = d, .tm_mon = m, .tm_year = y - 1900};
    *t = (int64_t)timegm(&tm);
    return 0;
}

int imap_date_time_parse(const char *s, int64_t *t, int *tz_min)
{
    int d, y, hh, mm, ss, zone, n = 0;
    char mon[4], sign;
    while (*s == ' ')
        s++;
    if (sscanf(s, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &hh, &mm, &ss, &sign,
               &zone, &n) != 8 ||
        s[n] != '\0' || (sign != '+' && sign != '-'))
        return -1;
    int m = month_of(mon);
    /* %d takes a sign too: each field must be in its range, the zone within +-23:59 */
    if (m < 0 || y < 0 || !day_exists(d, m, y) || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || zone < 0 || zone / 100 > 23 || zone % 100 > 59)
        return -1;
    struct tm tm = {
        .tm_mday = d, .tm_mon = m, .tm_year = y - 1900, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    int z = (zone / 100) * 60 + zone % 100;
    if (sign == '-') z = -z;
    *t = (int64_t)timegm(&tm) - (int64_t)z * 60;
    *tz_min = z;
    return 0;
}

int64_t imap_date_header_days(const char *value)
{
    const char *p = value;
    const char *comma = strchr(p, ',');
    if (comma) p = comma + 1;
    int day, year;
    char mon[4];
    if (sscanf(p, " %d %3s %d", &day, mon, &year) == 3) {
        static const char *ms = "JanFebMarAprMayJunJulAugSepOctNovDec";
        const char *f = strcasestr(ms, mon);
        if (f && strlen(mon) == 3 && (f - ms) % 3 == 0) {
            if (year < 50)
                year += 2000;
            else if (year < 1000)
                year += 1900;
            int m = (int)(f - ms) / 3;
            if (year < 1900 || year > 9999 || !day_exists(day, m, year)) return -1;
            struct tm tm = {.tm_mday = day, .tm_mon = m, .tm_year = year - 1900};
            return imap_date_days((int64_t)timegm(&tm));
        }
    }
    return -1;
}
