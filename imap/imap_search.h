/* imap_search.h: SEARCH keys parsed into a tree: SEARCH matches it, SORT and THREAD will reuse it
 */
#ifndef MAILFS_IMAP_SEARCH_H
#define MAILFS_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_int.h"
#include "imap/imap_seqset.h"

enum imap_skind {
    IMAP_SK_ALL,
    IMAP_SK_NONE,
    IMAP_SK_AND,
    IMAP_SK_OR,
    IMAP_SK_NOT,
    IMAP_SK_FLAG,
    IMAP_SK_KEYWORD,
    IMAP_SK_SEQ,
    IMAP_SK_UID,
    IMAP_SK_LARGER,
    IMAP_SK_SMALLER,
    IMAP_SK_BEFORE,
    IMAP_SK_ON,
    IMAP_SK_SINCE,
    IMAP_SK_SENTBEFORE,
    IMAP_SK_SENTON,
    IMAP_SK_SENTSINCE,
    IMAP_SK_HEADER,
    IMAP_SK_BODY,
    IMAP_SK_TEXT,
    IMAP_SK_RECENT,
};

typedef struct imap_skey {
    enum imap_skind kind;
    bool set; /* IMAP_SK_FLAG/IMAP_SK_KEYWORD: must be set (true) or clear */
    uint32_t flag;
    uint64_t num;    /* LARGER/SMALLER; dates as days since the epoch */
    char field[80];  /* IMAP_SK_HEADER */
    const char *str; /* points into the parsed command */
    size_t slen;
    imap_seqset seqs;
    struct imap_skey **kids; /* AND: children; OR: two; NOT: one */
    size_t nkids;
    size_t slot; /* keys that read the message's text: their answer for the current one */
} imap_skey;

/* Parses the search keys ARGS[I..NARGS) (what follows RETURN and CHARSET) as one AND of them;
 * sequence sets are resolved against C's selected view. Returns the tree (free it with
 * imap_skey_free()) and in *NSLOTS the number of keys that read the message's text, each with
 * its own imap_skey.slot below that; NULL after answering BAD. */
imap_skey *imap_search_parse(imap_client *c, const imap_arg *args, size_t nargs, size_t i,
                             size_t *nslots);
void imap_skey_free(imap_skey *k);

#endif
