/* imap_seqset.h: IMAP sequence sets ("1:4,7,9:*") for sequence numbers and UIDs */
#ifndef MAILFS_IMAP_SEQSET_H
#define MAILFS_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

#define IMAP_SEQ_STAR 0u /* '*' before imap_seqset_resolve() */
#define IMAP_SEQSET_MAX_RANGES 10000

typedef struct imap_seq_range {
    uint32_t lo, hi;
} imap_seq_range;

typedef struct imap_seqset {
    imap_seq_range *r;
    size_t n;
} imap_seqset;

/* Parses S (LEN bytes) into *OUT, which the caller frees with imap_seqset_free(). Returns 0, or
 * -EINVAL with *why set (a zero, junk, more than MAX_RANGES ranges). '*' is kept as
 * IMAP_SEQ_STAR until imap_seqset_resolve(). */
int imap_seqset_parse(const char *s, size_t len, size_t max_ranges, imap_seqset *out,
                      const char **why);

/* True if S looks like a sequence set (digits, ':', ',', '*'), without validating it. */
bool imap_seqset_syntax(const char *s, size_t len);

/* Replaces '*' by STAR, orders each range low..high, sorts and merges the ranges. */
void imap_seqset_resolve(imap_seqset *set, uint32_t star);

/* After resolve: true if N is in the set (binary search). */
bool imap_seqset_contains(const imap_seqset *set, uint32_t n);

/* After resolve: the number of values in the set. */
uint64_t imap_seqset_count(const imap_seqset *set);

void imap_seqset_free(imap_seqset *set);

/* Appends NUMS (N values, ascending) compressed as "1:3,7" to B. */
void imap_seqset_format(mfs_buf *b, const uint32_t *nums, size_t n);

#endif
