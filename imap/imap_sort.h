/* imap_sort.h: what SORT (RFC 5256, RFC 5957) needs without a store: the i;unicode-casemap
 * collation, base subjects, sent dates, the sort program and the sort itself */
#ifndef MAILFS_IMAP_SORT_H
#define MAILFS_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"
#include "imap/imap_parser.h"

/* Appends the i;unicode-casemap key of the LEN bytes at S (RFC 5051): every code point
 * titlecased, then fully decomposed (Hangul syllables too, by the Unicode formula, as NFKD
 * does), as UTF-8; keys compare as octets (memcmp, shorter first). S is UTF-8. A run of bytes
 * that start no valid UTF-8 sequence becomes one U+FFFD and the rest is casemapped: RFC 5051
 * would compare such a string as raw octets, but headers with a stray Latin-1 byte are
 * common, and this way they still sort among their letters, as they do in Dovecot. */
void imap_casemap(mfs_buf *out, const char *s, size_t len);

/* Appends the base subject (RFC 5256 section 2.1, steps 2 to 6) of the LEN bytes at S, which
 * are the subject with its RFC 2047 words already decoded to UTF-8. Returns true if the
 * extraction removed a reply or forward marker ("Re:", "Fwd:", "(fwd)", "[fwd: ...]"): the
 * message counts as a reply or forward for THREAD=REFERENCES. */
bool imap_base_subject(mfs_buf *out, const char *s, size_t len);

/* Parses an RFC 5322 date-time (obsolete forms too: two-digit years, zone names, no seconds)
 * into seconds since the epoch, normalized to UTC (RFC 5256 section 2.2: an unknown zone is
 * UTC, a time that cannot be read is 00:00:00). Returns 0, or -1 when no day, month and year
 * can be read (the caller then uses the internal date). */
int imap_date_parse_rfc5322(const char *s, size_t len, int64_t *t);

/* The sort keys; the string keys are the first ones, in the order of imap_sort_msg.str. */
enum imap_sort_key {
    IMAP_SORT_SUBJECT,                  /* base subject */
    IMAP_SORT_FROM,                     /* addr-mailbox of the first From address */
    IMAP_SORT_TO,                       /* ... To */
    IMAP_SORT_CC,                       /* ... Cc */
    IMAP_SORT_DISPLAYFROM,              /* RFC 5957 display value of the first From address */
    IMAP_SORT_DISPLAYTO,                /* ... To */
    IMAP_SORT_NSTR,                     /* (how many string keys there are) */
    IMAP_SORT_ARRIVAL = IMAP_SORT_NSTR, /* internal date */
    IMAP_SORT_DATE,                     /* sent date, else internal date */
    IMAP_SORT_SIZE,                     /* RFC822.SIZE */
};

#define IMAP_SORT_CRITERIA_MAX 16 /* criteria in one sort program (REVERSE not counted) */

typedef struct imap_sort_crit {
    uint8_t key; /* enum imap_sort_key */
    bool reverse;
} imap_sort_crit;

/* Parses the sort program LIST ("(REVERSE DATE SUBJECT)") into OUT (IMAP_SORT_CRITERIA_MAX
 * entries) and *N. Returns 0, or -1 with *WHY (static text) and *WHAT (the offending atom, or
 * NULL; it points into LIST) set: not a list, empty, an unknown key, REVERSE at the end or
 * twice, too many criteria. Repeating a key is allowed (RFC 5256). */
int imap_sort_program_parse(const imap_arg *list, imap_sort_crit *out, size_t *n, const char **why,
                            const char **what);

/* One message to sort: its string keys are the bytes POOL[off, off + len) of the pool passed
 * to imap_sort (casemap keys, so they compare as octets; missing fields are empty), or, when
 * imap_sort is given no pool, their ranks: numbers that order as the strings do (equal strings,
 * equal ranks), for a caller that keeps them. */
typedef struct imap_sort_msg {
    uint32_t seq; /* the mailbox order: the last tie-break */
    uint32_t num; /* what the answer shows (the sequence number or the UID) */
    int64_t arrival, date;
    uint64_t size;
    uint32_t off[IMAP_SORT_NSTR], len[IMAP_SORT_NSTR];
    uint32_t rank[IMAP_SORT_NSTR];
} imap_sort_msg;

/* Sorts the N messages M by the NC criteria C, then by seq (never reversed); string keys by
 * their bytes in POOL, or by rank if POOL is NULL. A stable radix sort on the first criterion
 * (a string's first 8 bytes), then a comparison sort of each run it left equal. */
void imap_sort(imap_sort_msg *m, size_t n, const imap_sort_crit *c, size_t nc, const char *pool);

#endif
