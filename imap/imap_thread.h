/* imap_thread.h: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256) without a store */
#ifndef MAILFS_IMAP_THREAD_H
#define MAILFS_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

enum imap_thread_alg { IMAP_THREAD_ORDEREDSUBJECT, IMAP_THREAD_REFERENCES };

/* Looks up a threading algorithm by name (any case); -1 if unknown. */
int imap_thread_alg_find(const char *name);

/* One message to thread, in mailbox order (the array's order is the sequence order). The
 * texts are POOL[off, off + len) of the pool passed to imap_thread:
 *   msgid      the Message-ID header's value as written (NIL: len 0)
 *   refs, irt  the References and In-Reply-To values as written (len 0: none)
 *   subject    the casemap key of the base subject (imap_casemap of imap_base_subject)
 * and REPLY is what imap_base_subject returned. */
typedef struct imap_thread_msg {
    uint32_t num; /* what the answer shows */
    int64_t date; /* sent date (RFC 5256 section 2.2) */
    bool reply;
    uint32_t msgid_off, msgid_len;
    uint32_t refs_off, refs_len;
    uint32_t irt_off, irt_len;
    uint32_t subject_off, subject_len;
} imap_thread_msg;

/* Threads the N messages M with ALG and appends the thread lists ("(1 2)(3 (4)(5))", no
 * leading space, nothing for N == 0) to OUT. Nothing recurses and every step is O(n log n)
 * or linear in the references, except the loop check of RFC 5256 step 1, which walks up
 * from the would-be parent: that walk is skipped when the child has no children (the usual
 * case, whatever the chain's depth), and the walks of one call are capped at
 * IMAP_THREAD_WALK_MAX steps in all, after which a link whose check would need a walk is not
 * made (as for a loop). */
void imap_thread(enum imap_thread_alg alg, const imap_thread_msg *m, size_t n, const char *pool,
                 mfs_buf *out);

#define IMAP_THREAD_WALK_MAX (50u * 1000 * 1000)

/* Finds the next msg-id ("<left@right>", normalized: quotes, backslashes, blanks and comments
 * removed) in S[*pos, len), appending it to OUT without the angle brackets. Returns true, or
 * false when there is none left. Ids without '@' or empty ones are not valid and skipped. */
bool imap_msgid_next(const char *s, size_t len, size_t *pos, mfs_buf *out);

#endif
