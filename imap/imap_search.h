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
    IMAP_SK_YOUNGER,     /* WITHIN (RFC 5032): INTERNALDATE after num (seconds since the epoch) */
    IMAP_SK_OLDER,       /* ...at num or before */
    IMAP_SK_MODSEQ,      /* MODSEQ n: the message's MODSEQ is n or more (num) */
    IMAP_SK_SAVEDBEFORE, /* SAVEDATE (RFC 8514): the day it was stored here, in UTC (num) */
    IMAP_SK_SAVEDON,
    IMAP_SK_SAVEDSINCE,
    IMAP_SK_EMAILID, /* OBJECTID (RFC 8474): str */
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
    char *own;   /* after imap_skey_own: the copy STR points to */
} imap_skey;

/* Parses the search keys ARGS[I..NARGS) (what follows RETURN and CHARSET) as one AND of them;
 * sequence sets are resolved against C's selected view. Returns the tree (free it with
 * imap_skey_free()) and in *NSLOTS the number of keys that read the message's text, each with
 * its own imap_skey.slot below that; NULL after answering BAD. */
imap_skey *imap_search_parse(imap_client *c, const imap_arg *args, size_t nargs, size_t i,
                             size_t *nslots);
void imap_skey_free(imap_skey *k);
/* Gives every key of K its own copy of its string, so the tree outlives the command. */
void imap_skey_own(imap_skey *k);
/* True if K has a key of KIND. */
bool imap_skey_has(const imap_skey *k, enum imap_skind kind);

/* ---- SEARCH's matcher, shared with SORT and THREAD (cmd_search.c) ------------------------ */

typedef struct imap_search_run imap_search_run;
/* Parses the search keys ARGS[I..NARGS) (what follows the charset) as SEARCH does; NULL after
 * answering BAD. */
imap_search_run *imap_search_begin(imap_client *c, const imap_arg *args, size_t nargs, size_t i);
/* Matches the next messages of C's view, for a step's time (IMAP_STEP_MS): 1 while messages
 * are left, 0 when all are done, with *SEQS the sequence numbers that matched (ascending, N of
 * them, owned by S), or -1 after answering NO (WHAT names the command in the answer). The view
 * must not change between the calls (changes are pushed only between commands). */
int imap_search_more(imap_client *c, imap_search_run *s, const char *what, const uint32_t **seqs,
                     size_t *n);
/* After the last imap_search_more: the highest MODSEQ of the matches if the keys hold a MODSEQ
 * key and something matched (RFC 7162 3.1.9: SORT then reports it), else 0. */
uint64_t imap_search_modseq(const imap_search_run *s);
void imap_search_end(imap_search_run **s);
/* Takes the parsed tree out of S (which then matches nothing more), with its number of text
 * keys in *NSLOTS; the caller frees it with imap_skey_free(). */
imap_skey *imap_search_tree(imap_search_run *s, size_t *nslots);
/* Evaluates K (NSLOTS text keys) for message UID of C's selected mailbox, read in T, whose
 * sequence number counts as SEQ (0: none) for sequence-set keys. Returns true if it matches;
 * false if not, or if it is gone. Reads the message's text when K asks: the work is bounded by
 * one message. */
bool imap_search_match(imap_client *c, store_txn *t, const imap_skey *k, size_t nslots,
                       uint32_t uid, uint32_t seq);

#endif
