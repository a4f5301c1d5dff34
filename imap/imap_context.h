/* imap_context.h: RFC 5267 contexts: SEARCH and SORT return options (PARTIAL, UPDATE), and the
 * live results that UPDATE keeps, with their ADDTO and REMOVEFROM updates */
#ifndef MAILFS_IMAP_CONTEXT_H
#define MAILFS_IMAP_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_int.h"
#include "imap/imap_search.h"

#define IMAP_CONTEXTS_MAX 10 /* live UPDATE contexts per session; more get NO [NOUPDATE] */

/* Parses the RETURN list LIST of SEARCH or SORT into *R (MIN MAX COUNT ALL, PARTIAL m:n,
 * UPDATE, CONTEXT; an empty list means ALL). Returns 0, or -1 after answering BAD: an unknown
 * option, PARTIAL without a range of two non-zero numbers, PARTIAL with ALL, repeats, or UPDATE
 * under a tag that a live context already has. */
int imap_search_return(imap_client *c, const imap_arg *list, imap_search_ret *r);

/* Appends the ESEARCH response of the command with C's tag for R to O: NUMS are the N results
 * (sequence numbers or, with UID, UIDs) in the requested order (ascending for SEARCH, the sort
 * order for SORT). */
void imap_esearch_put(imap_client *c, mfs_buf *o, bool uid, const imap_search_ret *r,
                      const uint32_t *nums, size_t n, uint64_t modseq);

/* Appends NUMS (N values, in their order) as a sequence set, ascending runs as ranges. */
void imap_context_put_set(mfs_buf *o, const uint32_t *nums, size_t n);

/* Starts a live context for C's running command (its tag): ROOT (taken over, freed here; its
 * strings must be its own: imap_skey_own) with NSLOTS text keys, the current result UIDS (N,
 * in the requested order: ascending, or sorted by the NCRIT criteria CRIT when SORT). When the
 * session has IMAP_CONTEXTS_MAX already, appends "* NO [NOUPDATE ...]" instead. */
void imap_context_add(imap_client *c, bool uid, const imap_sort_crit *crit, size_t ncrit,
                      imap_skey *root, size_t nslots, const uint32_t *uids, size_t n);

/* ---- the selected mailbox's hooks (imap_sync.c, cmd_expunge.c, cmd_copy.c) --------------- */

/* The flags of UID changed (by anyone): its contexts look at it at the next imap_context_sync. */
void imap_context_touch(imap_selected *s, uint32_t uid);
/* Every message may have changed (the change feed no longer reached back). */
void imap_context_touch_all(imap_selected *s);
/* The N UIDS (ascending) are about to be announced as expunged: appends the REMOVEFROM of
 * every context that had any of them, with the numbers they have before the EXPUNGEs (their
 * number in the view less SHIFT: EXPUNGEs already sent for messages below them). */
void imap_context_expunge(imap_client *c, const uint32_t *uids, size_t n, uint32_t shift);
/* After EXISTS and the flag FETCHes: each context looks again at the touched and the new
 * messages (read in T) and appends its ADDTO and REMOVEFROM. */
void imap_context_sync(imap_client *c, store_txn *t);
/* Forgets every context (the mailbox is no longer selected). */
void imap_context_clear(imap_selected *s);

#endif
