/* imap_date.h: IMAP dates and date-times (INTERNALDATE, APPEND, SEARCH) and the Date: header's day
 */
#ifndef MAILFS_IMAP_DATE_H
#define MAILFS_IMAP_DATE_H

#include <stdint.h>

#include "store/buf.h"

/* Appends T (seconds since the epoch) as a quoted IMAP date-time in the zone TZ_MIN minutes
 * east of UTC: "dd-Mon-yyyy hh:mm:ss +zzzz". */
void imap_date_time_put(mfs_buf *b, int64_t t, int tz_min);
/* Parses an IMAP date-time ("1-Feb-2024 10:00:00 +0100", leading spaces allowed) into T
 * (seconds since the epoch) and *TZ_MIN; returns 0 or -1. */
int imap_date_time_parse(const char *s, int64_t *t, int *tz_min);
/* Parses an IMAP date ("1-Feb-2024"), as the start of that day in UTC; returns 0 or -1. */
int imap_date_parse(const char *s, int64_t *t);
/* The day of an RFC 5322 Date: header's value ("Tue, 1 Feb 2024 ...", two-digit years as
 * RFC 5322 reads them), in its own zone, as days since the epoch; -1 if it has none. */
int64_t imap_date_header_days(const char *value);

/* T (seconds since the epoch) as days since the epoch, rounded towards the past. */
static inline int64_t imap_date_days(int64_t t)
{
    return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

#endif
