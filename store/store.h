/* store.h: the mailfs message store, the only code that touches LMDB */
#ifndef MAILFS_STORE_H
#define MAILFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Conventions of this API
 *
 * Errors. Every function that can fail returns 0 or a negative errno; predicates return bool
 * and never fail. Nothing else carries an error: no errno, no global, no sticky state. The codes:
 *     -ENOENT     no such user, mailbox or message
 *     -EEXIST     the name is taken (or, for a duplicate-skipping append, the same body is there)
 *     -ENOTEMPTY  a mailbox that must be empty is not (or has children)
 *     -EINVAL     a name or argument is malformed
 *     -ENAMETOOLONG  a path or a renamed child's name would be too long
 *     -E2BIG      flags as text do not fit the caller's buffer (store_flags_parse)
 *     -EACCES     authentication failed, or the store's files are not this process's to open
 *     -EPERM      the operation is never allowed (deleting INBOX)
 *     -EFBIG      a message is larger than the store accepts
 *     -ENOSPC     the disk is full, or a counter (UIDs, mailbox ids) is exhausted; nothing
 *                 was written
 *     -EDQUOT     a per-user limit is reached: mailboxes or subscriptions (store_set_user_limits)
 *     -ESTALE     a message changed after the caller's UNCHANGEDSINCE (store_msg_set_flags)
 *     -ERANGE     a change feed position is older than the feed keeps (do a full resync)
 *     -EPROTO     the store has a schema version this build does not know, or is not a store
 *     -EIO        the store is damaged, or LMDB reported an unexpected error
 *     -EROFS      the store was opened read-only
 *     -EAGAIN     every LMDB reader slot is taken (too many threads and processes at once)
 *     -ETIMEDOUT  store_wait_change's time passed with no change
 *     -ENOMEM     out of memory (see below)
 *   and a system call's own errno where one failed (inotify for store_watch_open, mkdir and
 *   open for store_create and store_backup). store_strerror() turns a code into text. Where a
 *   person needs more than a code, the function says so and gives it one way only: a sentence
 *   in a caller's ERR buffer (store_open, store_create, store_backup), a static reason in
 *   *why (store_mailbox_name_check, store_flags_parse), or a sentence per problem to a
 *   callback (store_check). A callback's non-zero return stops a walk and is returned as is.
 *
 * Out of memory (the one policy of mailfs is in store/buf.h). The store's own code returns
 * -ENOMEM when an allocation fails and leaves nothing half done: inside store_write the
 * transaction is aborted, so nothing is written; a caller may retry or give up. The one
 * exception is the MIME summary (store_msg_prepare, and store_msg_append without a prepared
 * summary): a parse whose half is of no use, it builds its strings with mfs_buf's aborting
 * functions.
 *
 * Names. Mailbox names are UTF-8 with '/' as the hierarchy delimiter. "INBOX" is matched
 * case-insensitively and always stored as "INBOX".
 *
 * Pointers. A store_txn is a read or a write transaction. Pointers returned inside one
 * (message bytes, summaries, file names, keywords) point into LMDB's memory map or the
 * transaction's own memory; the store owns them and the caller never frees them. In a read
 * transaction they stay valid until it ends. In a write transaction they stay valid only
 * until the next change made in it (LMDB may move the page; a body appended in the same
 * transaction sits in memory that the next append may move) or its end: copy what must live
 * longer. Structs filled in for the caller (store_mailbox, store_stats, ...) are the caller's.
 * Never keep a read transaction open across an event-loop pass or a long FUSE call.
 *
 * Threads. One `store` may be used from many threads at once. A store_txn belongs to one
 * thread.
 *
 * Writes happen only inside store_write(), which runs a callback in one LMDB write transaction
 * and commits it durably (fsync) before returning. If the memory map fills, the transaction is
 * aborted, the map grown, and the callback run again from the start: the callback must have no
 * effect outside the transaction.
 */

#define STORE_SCHEMA_VERSION                                                                       \
    4 /* 2: bodies in packs; 3: summary blob version 3; 4: a table of                              \
         subscriptions instead of a flag on each mailbox */
#define STORE_NAME_MAX                                                                             \
    500 /* bytes in a full mailbox name (+ a 4-byte id: under LMDB's 511-byte key) */
#define STORE_COMPONENT_MAX 255 /* bytes in one mailbox name component or message file name */
#define STORE_USER_MAX 64       /* bytes in a user name */
#define STORE_KEYWORDS_MAX 2000 /* bytes of space-separated keywords on one message */
#define STORE_MSG_MAX_DEFAULT (64ull << 20)   /* largest message accepted by default */
#define STORE_MAILBOXES_MAX_DEFAULT 10000     /* mailboxes per user, by default */
#define STORE_SUBSCRIPTIONS_MAX_DEFAULT 10000 /* subscribed names per user, by default */
#define STORE_MAILBOXES_MIN 10 /* the least limit allowed: a new user gets 6 mailboxes */

typedef struct store store;
typedef struct store_txn store_txn;

/* System flags of a message (bits of store_msg.flags). */
enum {
    STORE_F_SEEN = 1u << 0,
    STORE_F_ANSWERED = 1u << 1,
    STORE_F_FLAGGED = 1u << 2,
    STORE_F_DELETED = 1u << 3,
    STORE_F_DRAFT = 1u << 4,
    STORE_F_ALL = 0x1f,
};

/* Special-use attributes of a mailbox (RFC 6154), bits of store_mailbox.special_use. */
enum {
    STORE_SU_ALL = 1u << 0,
    STORE_SU_ARCHIVE = 1u << 1,
    STORE_SU_DRAFTS = 1u << 2,
    STORE_SU_FLAGGED = 1u << 3,
    STORE_SU_JUNK = 1u << 4,
    STORE_SU_SENT = 1u << 5,
    STORE_SU_TRASH = 1u << 6,
};

/* ---- opening ---------------------------------------------------------------------------- */

enum { STORE_OPEN_RDONLY = 1 };

/* Creates an empty store in DIR (made if missing, mode 0700). Fails with -EEXIST if DIR already
 * holds a store. On failure *err (ERRLEN bytes) gets a sentence for a person. */
int store_create(const char *dir, char *err, size_t errlen);

/* Opens the store in DIR. *out is owned by the caller; free it with store_close(). Call it after
 * any fork(). Fails with -ENOENT (no store there), -EPROTO (unknown schema version) and so on;
 * *err says what went wrong and what to do. */
int store_open(const char *dir, int flags, store **out, char *err, size_t errlen);
/* Closes *S (every transaction on it must have ended) and sets *S to NULL; NULL is a no-op. */
void store_close(store **s);

/* The store's directory, valid while S is open. */
const char *store_dir(const store *s);

/* Text for a code returned by this API (static storage). */
const char *store_strerror(int rc);

/* Largest message append accepts; default STORE_MSG_MAX_DEFAULT. */
void store_set_msg_max(store *s, uint64_t bytes);
uint64_t store_msg_max(const store *s);

/* Per-user bounds, for this handle (every write through it: IMAP, the mount, the tools):
 * a user may have at most MAILBOXES mailboxes (INBOX and the parents a create or rename
 * makes included; MAILBOXES is raised to STORE_MAILBOXES_MIN if lower) and SUBSCRIPTIONS
 * names in the subscription list. What would pass one fails with -EDQUOT and changes
 * nothing; what is there already stays. Counting costs a walk over the user's names (at most
 * the limit) per create or subscribe. Defaults: STORE_MAILBOXES_MAX_DEFAULT and
 * STORE_SUBSCRIPTIONS_MAX_DEFAULT. */
void store_set_user_limits(store *s, uint32_t mailboxes, uint32_t subscriptions);
void store_user_limits(const store *s, uint32_t *mailboxes, uint32_t *subscriptions);

/* ---- transactions ----------------------------------------------------------------------- */

/* Begins a read transaction: a consistent snapshot. *out belongs to the calling thread until
 * store_read_end(), which ends it and sets *t to NULL (NULL is a no-op). Fails with -ENOMEM,
 * -EAGAIN (no reader slot) or -EIO. */
int store_read_begin(store *s, store_txn **out);
void store_read_end(store_txn **t);

/* Runs FN(w, CTX) in one write transaction. FN returns 0 to commit or a negative code to abort;
 * that code is returned. After a successful commit the change is on disk and every watcher of
 * the store (in any process) is woken. */
int store_write(store *s, int (*fn)(store_txn *w, void *ctx), void *ctx);

/* The store-wide change counter as of this transaction (0 in an empty store). */
uint64_t store_change_seq(store_txn *t);

/* ---- users ------------------------------------------------------------------------------ */

/* User names: 1..STORE_USER_MAX bytes of [A-Za-z0-9._@+-], not starting with '.' */
bool store_user_name_valid(const char *name);

/* Adds a user with INBOX, Drafts, Sent, Trash, Junk and Archive, all subscribed. The password
 * is stored only as a salted scrypt hash. -EINVAL for an invalid name, -EEXIST for a taken
 * one. */
int store_user_add(store_txn *w, const char *name, const char *password);
/* Sets a user's password (-ENOENT: no such user). */
int store_user_passwd(store_txn *w, const char *name, const char *password);
/* Deletes a user with every mailbox, message and subscription (-ENOENT: no such user). */
int store_user_del(store_txn *w, const char *name);
/* Finds a user's id (USER_ID may be NULL); -ENOENT for an unknown or invalid name. */
int store_user_lookup(store_txn *t, const char *name, uint32_t *user_id);
/* Checks a password. -EACCES for a wrong password or an unknown user (same cost for both). */
int store_user_auth(store *s, const char *name, const char *password, uint32_t *user_id);
/* Calls CB for each user in name order; a non-zero return from CB stops and is returned. */
int store_user_list(store_txn *t, int (*cb)(void *ctx, const char *name, uint32_t user_id),
                    void *ctx);

/* ---- mailboxes -------------------------------------------------------------------------- */

typedef struct store_mailbox {
    uint32_t id; /* store-wide, never reused */
    uint32_t user_id;
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq; /* >= 1 always */
    uint32_t messages;
    uint32_t unseen;
    uint32_t deleted;    /* messages with \Deleted */
    uint64_t bytes;      /* raw bytes of all messages */
    uint64_t crlf_bytes; /* their sizes with bare LF counted as CRLF: sum of RFC822.SIZE */
    uint32_t special_use;
    bool subscribed;  /* the name is in the user's subscription list */
    int64_t mtime_ns; /* last change to the set of messages or their names */
    int64_t ctime_ns; /* last change of anything, flags included */
    char name[STORE_NAME_MAX + 1];
} store_mailbox;

/* Checks a mailbox name; returns 0 or -EINVAL with *why set to a static reason. */
int store_mailbox_name_check(const char *name, const char **why);

/* Creates mailbox NAME of the user with the STORE_SU_* bits SPECIAL_USE, and any parent
 * that is missing (as plain mailboxes). *out (may be NULL) gets the new mailbox. -EINVAL for a
 * malformed name (store_mailbox_name_check), -EEXIST if it exists, -EDQUOT past the user's
 * limit of mailboxes (the parents count), -ENOSPC when mailbox ids are exhausted. */
int store_mailbox_create(store_txn *w, uint32_t user_id, const char *name, uint32_t special_use,
                         store_mailbox *out);
/* Deletes a mailbox and its messages; its name stays subscribed. With STORE_DEL_IF_EMPTY,
 * -ENOTEMPTY when it holds messages. Always -ENOTEMPTY when it has child mailboxes. INBOX cannot
 * be deleted (-EPERM). A mailbox holding kept files (store_files_count) is -ENOTEMPTY too: they are
 * removed through the mount first. */
enum { STORE_DEL_IF_EMPTY = 1 };
int store_mailbox_delete(store_txn *w, uint32_t user_id, const char *name, int flags);
/* Renames a mailbox and all its children. Renaming INBOX moves its messages to a new mailbox
 * and leaves INBOX empty (RFC 9051). Subscriptions follow (see "subscriptions" below).
 * -ENAMETOOLONG if a child's new name would pass STORE_NAME_MAX. */
int store_mailbox_rename(store_txn *w, uint32_t user_id, const char *from, const char *to);
/* Fills *out (may be NULL: only whether it exists) with the user's mailbox NAME (INBOX in any
 * case), or the mailbox MAILBOX_ID of any user. -ENOENT if there is none (a malformed name
 * included). *out is a copy: it stays valid after T ends. */
int store_mailbox_get(store_txn *t, uint32_t user_id, const char *name, store_mailbox *out);
int store_mailbox_get_id(store_txn *t, uint32_t mailbox_id, store_mailbox *out);
/* Calls CB for each mailbox of the user, in byte order of name (parents before children); MB
 * is valid during the call. A non-zero return from CB stops and is returned. */
int store_mailbox_list(store_txn *t, uint32_t user_id,
                       int (*cb)(void *ctx, const store_mailbox *mb), void *ctx);

/* As store_mailbox_list, but only the mailboxes whose names come after AFTER in byte order
 * ("" or NULL: all), so that a long listing can go on in a later transaction where a
 * callback that returned non-zero stopped it. */
int store_mailbox_list_after(store_txn *t, uint32_t user_id, const char *after,
                             int (*cb)(void *ctx, const store_mailbox *mb), void *ctx);

/* ---- subscriptions ---------------------------------------------------------------------- */

/* A user's subscription list (RFC 3501 6.3.6, RFC 9051 6.3.7) is a set of mailbox names kept
 * apart from the mailboxes: a name may be subscribed whether or not a mailbox has it, deleting
 * a mailbox leaves its name subscribed, renaming a mailbox moves the subscriptions of it and
 * everything below it to the new names (renaming INBOX subscribes the new mailbox if INBOX
 * is), and deleting the user removes the list. Names are checked and normalized like mailbox
 * names (INBOX in any case is "INBOX"). store_mailbox.subscribed says whether a mailbox's name
 * is in the list. */

/* Adds NAME to the list (ON) or removes it. -EINVAL (a malformed name) is the only failure
 * besides store errors: subscribing a subscribed name or unsubscribing one that is not
 * subscribed returns 0 and changes nothing. A change is recorded in the feed as
 * STORE_CH_MBOX_SUBSCRIBE with the id of the mailbox of that name, or 0 if there is none. */
int store_mailbox_subscribe(store_txn *w, uint32_t user_id, const char *name, bool on);
/* Calls CB for each subscribed name of the user in byte order of name (parents before
 * children); NAME is valid during the call. A non-zero return from CB stops and is returned. */
int store_subscription_list(store_txn *t, uint32_t user_id, int (*cb)(void *ctx, const char *name),
                            void *ctx);

/* As store_subscription_list, from the first name after AFTER ("" or NULL: all). */
int store_subscription_list_after(store_txn *t, uint32_t user_id, const char *after,
                                  int (*cb)(void *ctx, const char *name), void *ctx);

/* ---- messages --------------------------------------------------------------------------- */

typedef struct store_msg {
    uint32_t mailbox_id;
    uint32_t uid;
    uint32_t flags; /* STORE_F_* */
    int16_t tz_min; /* INTERNALDATE's zone, minutes east of UTC */
    uint64_t modseq;
    int64_t internaldate;  /* seconds since the epoch */
    int64_t savedate;      /* seconds since the epoch */
    int64_t ctime_ns;      /* last change of anything about the message (flags included) */
    uint64_t size;         /* raw bytes, as stored */
    uint64_t crlf_size;    /* bytes when every bare LF is sent as CRLF (RFC822.SIZE) */
    uint32_t lines;        /* lines in the whole message */
    uint8_t body_hash[32]; /* SHA-256 of the bytes */
    uint64_t body_id;      /* the shared body's id in the store */
    const char *filename;  /* the .eml name in the mount; valid until the txn ends */
    const char *keywords;  /* space-separated, "" if none; valid until the txn ends */
} store_msg;

/* What an append computes from the bytes alone: made by store_msg_prepare() outside any
 * transaction (on another thread, say, while a write runs) and handed to store_msg_append(). */
typedef struct store_prepared {
    uint8_t hash[32];
    void *summary; /* malloc'ed MIME summary; store_prepared_clear() frees it */
    size_t summary_len;
    uint64_t crlf_size;
    uint32_t lines;
} store_prepared;

/* Hashes and summarizes LEN bytes at DATA into *OUT. Thread-safe; no store needed. */
int store_msg_prepare(const void *data, size_t len, store_prepared *out);
void store_prepared_clear(store_prepared *p);

typedef struct store_append {
    uint32_t flags;
    const char *keywords; /* space-separated or NULL */
    int64_t internaldate; /* 0: now */
    int16_t tz_min;
    const char *filename;           /* NULL: generated from the UID */
    bool skip_duplicate;            /* -EEXIST if the mailbox already holds the same bytes */
    const store_prepared *prepared; /* store_msg_prepare() of the same bytes, or NULL */
} store_append;

/* Appends a message. DATA is copied into the store (once per distinct body). *out (may be NULL)
 * describes the new message (its pointers: see "Pointers" above). -EFBIG over the size limit,
 * -EEXIST for a taken file name or a skipped duplicate, -EINVAL for a malformed file name or
 * keyword (-E2BIG: keywords past STORE_KEYWORDS_MAX), -ENOSPC when the mailbox's UIDs are
 * exhausted, -ENOENT for no such mailbox. */
int store_msg_append(store_txn *w, uint32_t mailbox_id, const void *data, size_t len,
                     const store_append *opt, store_msg *out);
/* Copies a message to another mailbox (sharing the body); the copy gets a new UID and the same
 * flags. FILENAME NULL: generated from the new UID. *out (may be NULL) describes the copy.
 * -ENOENT (no such message or mailbox), -EEXIST (FILENAME taken), -EINVAL (a malformed
 * FILENAME), -ENOSPC (the destination's UIDs are exhausted). */
int store_msg_copy(store_txn *w, uint32_t mailbox_id, uint32_t uid, uint32_t dst_mailbox_id,
                   const char *filename, store_msg *out);
/* Copy + expunge in one step (IMAP MOVE); the codes of both. Into its own mailbox too: the
 * message gets a new UID there, as RFC 6851 allows and Dovecot does (the mount renames in
 * place with store_msg_rename). */
int store_msg_move(store_txn *w, uint32_t mailbox_id, uint32_t uid, uint32_t dst_mailbox_id,
                   const char *filename, store_msg *out);
/* Removes a message for good: its record and file name go, the body loses a reference (and its
 * bytes once none is left), the feed gets a STORE_CH_EXPUNGE and the mailbox remembers the
 * UID for QRESYNC (store_expunged_list). -ENOENT if there is no such message. */
int store_msg_expunge(store_txn *w, uint32_t mailbox_id, uint32_t uid);
/* Renames a message's file (same mailbox, same UID). -EEXIST if taken. */
int store_msg_rename(store_txn *w, uint32_t mailbox_id, uint32_t uid, const char *filename);

enum { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_DEL };
/* Changes flags and keywords (KEYWORDS space-separated or NULL). If the message's MODSEQ is
 * greater than UNCHANGEDSINCE (0: no check) returns -ESTALE and changes nothing. A call that
 * changes nothing returns 0 without a new MODSEQ. *out may be NULL. The new MODSEQ in *out is
 * the seq of the STORE_CH_FLAGS change the feed records for it (so a session can recognise its
 * own change in the feed). */
int store_msg_set_flags(store_txn *w, uint32_t mailbox_id, uint32_t uid, int op, uint32_t flags,
                        const char *keywords, uint64_t unchangedsince, store_msg *out);

/* Fills *out with message UID of the mailbox, or the one whose file name is FILENAME. -ENOENT
 * if there is none (an invalid file name included), -EIO for a damaged record. out->filename
 * and out->keywords point into the store (see "Pointers" above). */
int store_msg_get(store_txn *t, uint32_t mailbox_id, uint32_t uid, store_msg *out);
int store_msg_by_name(store_txn *t, uint32_t mailbox_id, const char *filename, store_msg *out);
/* Calls CB for each message with UID >= FIRST_UID, in UID order; M is valid during the call.
 * A non-zero return from CB stops the walk and is returned. */
int store_msg_list(store_txn *t, uint32_t mailbox_id, uint32_t first_uid,
                   int (*cb)(void *ctx, const store_msg *m), void *ctx);
/* The message's raw bytes, owned by the store. In a read transaction they stay valid until T
 * ends. In a write transaction only until T's next change: a body appended in T sits in the
 * pending pack, which the next append reallocates (pack.c). -EIO if the body is missing. */
int store_msg_body(store_txn *t, const store_msg *m, const char **data, size_t *len);
/* The parsed summary made at append (see store/mime.h for reading it), owned by the store;
 * valid as the pointers above ("Pointers"). -EIO if it is missing. */
int store_msg_summary(store_txn *t, const store_msg *m, const void **blob, size_t *len);
/* Calls CB for each UID expunged from the mailbox with MODSEQ > SINCE (for QRESYNC), in UID
 * order. A non-zero return from CB stops the walk and is returned. */
int store_expunged_list(store_txn *t, uint32_t mailbox_id, uint64_t since,
                        int (*cb)(void *ctx, uint32_t uid, uint64_t modseq), void *ctx);

/* ---- flags as text ---------------------------------------------------------------------- */

/* Parses the LEN bytes at TEXT, flags as text ("\Seen \Flagged $Work"): tokens separated by
 * blanks, commas or newlines, system flags in any case. Sets *FLAGS to the STORE_F_* bits and
 * writes the keywords, space-separated, without duplicates (compared in any case), to KW
 * (KWLEN bytes). The text is taken whole or refused, never cut: -EINVAL (with *why) for a NUL
 * byte, an unknown system flag or \Recent (which cannot be set), a keyword IMAP does not allow
 * (store_keyword_valid); -E2BIG if the keywords do not fit in KWLEN. On failure *FLAGS is 0
 * and KW empty. WHY may be NULL; *why is a static string. */
int store_flags_parse(const char *text, size_t len, uint32_t *flags, char *kw, size_t kwlen,
                      const char **why);
/* Formats flags and keywords as "\Seen \Flagged $Work" into BUF (BUFLEN bytes). Returns the
 * length of the text (without its NUL); if that is BUFLEN or more, BUF did not hold it and
 * holds "" instead: the text is never cut. */
size_t store_flags_format(uint32_t flags, const char *keywords, char *buf, size_t buflen);

/* The one table of system flags, for every view: the I-th one's name ("\Seen", ...) and its
 * STORE_F_* bit in *BIT (may be NULL), or NULL past the last; and the bit of the system flag
 * named by the N bytes at P (any case), 0 if it is none (\Recent is none: it is no stored
 * flag). */
const char *store_sysflag(size_t i, uint32_t *bit);
uint32_t store_sysflag_bit(const char *p, size_t n);

/* True if the N bytes at K make a keyword IMAP allows (an atom: 1-200 bytes, no specials,
 * no control or 8-bit bytes, not starting with '\'). */
bool store_keyword_valid(const char *k, size_t n);

/* True if S[0..N) is valid UTF-8 (no overlongs, no surrogates). */
bool store_utf8_valid(const char *s, size_t n);

/* ---- change feed ------------------------------------------------------------------------ */

enum store_change_kind {
    STORE_CH_APPEND = 1, /* uid arrived in mailbox */
    STORE_CH_EXPUNGE,    /* uid left mailbox */
    STORE_CH_FLAGS,      /* flags or keywords of uid changed */
    STORE_CH_RENAME_MSG, /* file name of uid changed */
    STORE_CH_MBOX_CREATE,
    STORE_CH_MBOX_DELETE,
    STORE_CH_MBOX_RENAME,    /* mailbox_id now has another name (children each get one too) */
    STORE_CH_MBOX_SUBSCRIBE, /* a name joined or left the subscription list (mailbox_id: the
                                mailbox of that name, 0 if none) */
    STORE_CH_USER,           /* a user was added, deleted or changed password */
};

typedef struct store_change {
    uint64_t seq; /* store-wide, increasing; also the MODSEQ of what it changed */
    uint8_t kind; /* enum store_change_kind */
    uint32_t user_id;
    uint32_t mailbox_id;
    uint32_t uid;
} store_change;

/* Calls CB for each change with seq > AFTER, oldest first; C is valid during the call. A
 * non-zero return from CB stops and is returned. -ERANGE if the feed no longer holds
 * everything after AFTER (the caller must resync from scratch). */
int store_changes_since(store_txn *t, uint64_t after, int (*cb)(void *ctx, const store_change *c),
                        void *ctx);
/* The oldest position AFTER that store_changes_since still takes: the feed holds every change
 * after it (0 until the feed is first trimmed). */
uint64_t store_changes_oldest(store_txn *t);

/* A file descriptor that becomes readable (poll/epoll) after any commit to the store, from any
 * process. The caller owns it (close() it). After it wakes, call store_watch_drain() and then
 * read the feed with store_changes_since(). Fails with inotify's errno: -EMFILE, or -ENOSPC
 * when the user's inotify watches are used up (not the disk: say so to a person). */
int store_watch_open(store *s, int *fd);
void store_watch_drain(int fd);
/* Blocks until the change counter exceeds AFTER or TIMEOUT_MS passes (-1: forever).
 * Returns 0 on a change, -ETIMEDOUT when the time passed, or store_watch_open's error. */
int store_wait_change(store *s, uint64_t after, int timeout_ms);

/* ---- maintenance ------------------------------------------------------------------------ */

typedef struct store_stats {
    uint64_t map_bytes;  /* bytes of the data file in use */
    uint64_t file_bytes; /* size of the data file */
    uint64_t bodies;     /* distinct bodies */
    uint64_t body_bytes; /* their raw bytes */
} store_stats;
/* Fills *out (in one read transaction of its own). Fails as store_read_begin does. */
int store_get_stats(store *s, store_stats *out);

/* Unmaps this process's view of the store's pages (they stay in the kernel's page cache and
 * map back in on the next touch). A long writer such as import calls it between batches:
 * the kernel maps up to 16 neighbouring cached pages around every page LMDB reads, so without
 * it the writer's RSS grows with the store although it needs none of those pages. */
void store_release_map(store *s);

typedef struct store_check_counts {
    uint64_t users, mailboxes, messages, bodies, changes, subscriptions;
} store_check_counts;

/* Verifies every invariant of the store in one read snapshot: per-mailbox counts, UIDNEXT above
 * every UID, MODSEQs within HIGHESTMODSEQ and the change counter, the file-name and duplicate
 * indexes, body reference counts and sizes, a readable summary for every body, a change
 * feed that never goes backwards, and subscriptions that are valid names of existing users.
 * Calls PROBLEM once per broken invariant with a sentence (valid during the call). Returns 0 if
 * all hold, -EIO if any failed (or another error). */
int store_check(store *s, void (*problem)(void *ctx, const char *text), void *ctx,
                store_check_counts *counts);

/* Writes a consistent, compacted copy of the store (its tls/ directory and its kept files too)
 * into DEST, which must not exist or be empty. The kept files are copied after the snapshot, as
 * they are then. Safe while other processes write. *err gets a sentence. */
int store_backup(store *s, const char *dest, char *err, size_t errlen);


/*
 * Kept files (docs/mount.md, "Which names are messages"): what is written through the mount
 * under a name that is not a message lives as ordinary files in a directory tree per mailbox,
 * STORE/files/USER_ID/MAILBOX_ID/, and STORE/files/USER_ID/top/ for the mount's top
 * directory. Mailbox ids never change and are never reused, so a renamed mailbox keeps its
 * tree where it is. IMAP never sees these files; mailfs backup copies them.
 */
#define STORE_FILES_TOP 0xfffffffeu  /* the mount's top directory */
#define STORE_FILES_USER 0xffffffffu /* the user's whole tree (store_files_remove) */
/* Into *fd: an O_DIRECTORY descriptor (the caller closes it) of the kept tree of MAILBOX_ID
 * (or STORE_FILES_TOP) of USER_ID, made first if CREATE; -ENOENT if it does not exist and not
 * CREATE, or another -errno. */
int store_files_dir(store *s, uint32_t user_id, uint32_t mailbox_id, bool create, int *fd);
/* Into *n: how many files and directories the tree of MAILBOX_ID holds (0 when it has none). */
int store_files_count(store *s, uint32_t user_id, uint32_t mailbox_id, uint64_t *n);
/* Removes the tree of MAILBOX_ID (STORE_FILES_USER: all of the user's); 0 if there is none. */
int store_files_remove(store *s, uint32_t user_id, uint32_t mailbox_id);

#endif
