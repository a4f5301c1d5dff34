/* imap_list_match.h: LIST patterns ('*', '%') compiled into one automaton and matched */
#ifndef MAILFS_IMAP_LIST_MATCH_H
#define MAILFS_IMAP_LIST_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A set of LIST patterns compiled for matching many names ('*' anything, '%' anything but
 * '/'): one automaton whose states are bits, so a name is read once, left to right, with
 * ceil(states / 64) word operations per byte (states: the patterns' bytes plus one each),
 * however the patterns are made. No backtracking, no allocation while matching. */
typedef struct imap_patterns imap_patterns;

/* Compiles the N patterns PATS (NUL-terminated). Never fails (allocation failure aborts). */
imap_patterns *imap_patterns_new(char *const *pats, size_t n);
void imap_patterns_free(imap_patterns **p);
/* True if some pattern matches all LEN bytes of NAME. If PREFIXES is not NULL, the lengths i
 * (ascending) at which NAME[i] is '/' and some pattern matches NAME[0, i) are stored there,
 * at most CAP of them, and counted in *NPREFIXES: the ancestors of NAME that match. */
bool imap_patterns_match(imap_patterns *p, const char *name, size_t len, uint16_t *prefixes,
                         size_t cap, size_t *nprefixes);
/* True if mailbox NAME matches LIST pattern PAT (one pattern: compiles it, so not for loops). */
bool imap_pattern_match(const char *pat, const char *name);

#endif
