/* imap_int.h: what the IMAP server's files share: the client, the selected mailbox, commands */
#ifndef MAILFS_IMAP_INT_H
#define MAILFS_IMAP_INT_H

/*
 * How the server's code reports trouble (one idiom per layer; store.h has the store's):
 * - A command handler (imap_cmd_*) returns nothing: it answers the client exactly once, with
 *   imap_ok / imap_no / imap_bad (or imap_no_store for a store error code), naming the bad
 *   value and what to do. A stepped command answers from its last step.
 * - Other functions return 0 or a negative errno (the store's codes pass through unchanged);
 *   parsers that answer BAD themselves return -1 and say so in their comment.
 * - Out of memory: the one policy is in store/buf.h. For the server: building a response or
 *   parsing a command aborts on allocation failure (mfs_buf, the growable arrays): the server
 *   holds nothing that is not in the store and a half-built answer is of no use. The store's
 *   -ENOMEM (store.h) is answered as NO.
 * - Messages for the log go through store/log.h (log_warn("imap", ...)), never stderr directly.
 */

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/buf.h"
#include "imap/imap_date.h"
#include "imap/imap_list_match.h"
#include "imap/imap_parser.h"
#include "imap/imap_proxy.h"
#include "imap/imap_seqset.h"
#include "imap/imap_server.h"
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "store/store.h"

#define IMAP_OUT_HIGH (1u << 20) /* stop running commands while this much output waits */
#define IMAP_OUT_MAX (64u << 20) /* past this, the write-timeout clock is checked at once */
#define IMAP_IN_MAX (256u << 10) /* stop reading while this much unparsed input waits */
#define IMAP_PENALTY_SLOTS 8192  /* login-failure records per table (addresses, user names) */
#define IMAP_PENALTY_PASSES 4    /* addresses remembered per user name as having logged in */
#define IMAP_AUTOLOGOUT_MS (30 * 60 * 1000) /* idle limit before login */
#define IMAP_IDLE_LIMIT_MS (60 * 60 * 1000) /* idle limit after login when not in IDLE */
/* What a client that has not logged in may make the server hold: commands of a few KiB (a
 * LOGIN or AUTHENTICATE with a long password fits), and an ID as large as RFC 2971 allows
 * (30 pairs of 30 + 1024 bytes, quoted: ~32 KiB; imaptest's id script sends one, Dovecot
 * takes it) */
#define IMAP_NOAUTH_COMMAND_MAX 8192     /* one command, text and literals */
#define IMAP_NOAUTH_ID_MAX 40960         /* one ID command */
#define IMAP_NOAUTH_ARGS 128             /* tokens in one command (ID has up to 61) */
#define IMAP_NOAUTH_DEPTH 4              /* list nesting */
#define IMAP_NOAUTH_IN_MAX 16384         /* unparsed input */
#define IMAP_NOAUTH_OUT_HIGH (64u << 10) /* answers waiting before commands stop running */
/* ... and one that has: */
#define IMAP_COMMAND_MAX (1u << 20) /* one command other than APPEND, text and literals */
#define IMAP_APPEND_SLACK                                                                          \
    (1u << 20)                   /* one APPEND: the store's message limit plus this, for           \
                                    all the messages of a MULTIAPPEND together */
#define IMAP_ACCEPT_RETRY_MS 100 /* out of file descriptors: try accepting again then */

typedef struct imap_client imap_client;

enum imap_state { IMAP_ST_NOAUTH, IMAP_ST_AUTH, IMAP_ST_SELECTED, IMAP_ST_LOGOUT };

enum imap_wait {
    IMAP_WAIT_NONE,
    IMAP_WAIT_IDLE,    /* in IDLE: waiting for DONE */
    IMAP_WAIT_AUTH,    /* AUTHENTICATE: waiting for the client's response line */
    IMAP_WAIT_DELAY,   /* a login failure: holding the answer back */
    IMAP_WAIT_AUTHING, /* a password is being checked by an auth worker */
};

#define IMAP_AUTH_WORKERS 2     /* threads that run the (deliberately slow) password hash */
#define IMAP_AUTH_QUEUE_MAX 128 /* logins waiting for a check; more get NO [UNAVAILABLE] */

typedef struct imap_penalty imap_penalty;

typedef struct imap_auth_job {
    struct imap_auth_job *next;
    struct imap_loop *loop; /* where the answer goes */
    imap_client *c;         /* NULL once the client is gone (set by its loop thread only) */
    char user[STORE_USER_MAX + 1];
    char addr[64];
    char pass[1024];
    const char *why; /* why the login cannot succeed (checked anyway, for the time), or NULL */
    int rc;
    uint32_t user_id;
    imap_penalty *pa, *pu; /* the address's and the user name's records (pu NULL: no such name) */
    int pass_slot;         /* the address has logged in as the user: pu's slot, else -1 */
    unsigned recent;       /* failures that count for the answer's delay (set by the worker) */
    const char *refused;   /* rc -EAGAIN: "user" or "address", whose budget is spent */
    long retry_s;          /* ...until about then */
} imap_auth_job;

/* The selected mailbox as this session sees it: sequence number i+1 is uids[i]. */
typedef struct imap_selected {
    uint32_t mailbox_id;
    uint32_t uidvalidity;
    bool readonly;
    uint32_t *uids;
    size_t n, cap;
    uint64_t feed_pos;     /* change feed read up to here */
    uint32_t *pending_exp; /* expunged in the store, not yet announced */
    size_t npending, cap_pending;
    uint64_t pending_exp_seq; /* a MODSEQ at or below theirs (0: none pending) */
    uint32_t *pending_flg;    /* flags changed by others, not yet announced */
    size_t npending_flg, cap_pending_flg;
    bool pending_new;  /* the feed moved: look for new messages */
    bool pending_full; /* the feed no longer reached back: compare the whole mailbox */
    bool pending_gone; /* the mailbox was deleted */
    uint64_t *own;     /* modseqs of our own flag changes (not echoed back), ascending */
    size_t nown, cap_own;
    uint32_t *recent; /* UIDs that are \Recent in this session (ascending) */
    size_t nrecent, cap_recent;
    mfs_buf keywords; /* keywords announced in FLAGS: " kw1 kw2 " (empty: none yet) */
    size_t nkeywords;
    uint64_t highestmodseq;  /* the mailbox's HIGHESTMODSEQ when it was selected */
    struct imap_ctxset *ctx; /* live SEARCH/SORT RETURN (UPDATE) results (imap_context.c) */
    uint32_t *saved;         /* SEARCHRES (RFC 5182): the UIDs "$" names, ascending */
    size_t nsaved;
} imap_selected;

/* Which UIDs some session has already seen as \Recent, per mailbox (this process only). */
typedef struct imap_recent_mark {
    uint32_t mailbox_id;
    uint32_t claimed; /* highest UID claimed as recent */
} imap_recent_mark;

/* What the server remembers about failed logins of one address or one user name
 * (imap_auth_budget.c). */
struct imap_penalty {
    char key[STORE_USER_MAX + 1];
    uint64_t hash;
    uint32_t fails;         /* failures that count for the budget; one forgiven per quiet hour */
    uint32_t recent;        /* failures of this episode, for the answer's delay */
    int64_t last_ms;        /* the last failure */
    int64_t decay_ms;       /* fails were last lowered (or raised) then */
    int64_t next_ms;        /* over the free allowance: the next check may not start before */
    int64_t started_ms;     /* addresses: when the last check started (the workers take turns) */
    uint32_t queued;        /* jobs waiting for this record's gate */
    uint32_t pending;       /* jobs admitted by this record's gate and not finished */
    uint32_t refs;          /* jobs pointing here: the record is not evicted while > 0 */
    int64_t refused_log_ms; /* "refusing logins" was last logged then (once per episode) */
    struct {                /* user names: addresses that logged in as this user */
        uint64_t addr;      /* keyed hash of the address's record key, 0 for none */
        int64_t ms;         /* last success */
        uint32_t fails;
    } passes[IMAP_PENALTY_PASSES];
};

/* A hash table of penalty records with a fixed number of them (imap_auth_budget.c). */
typedef struct imap_penalty_table {
    imap_penalty *recs; /* cap records; free ones have key[0] == '\0' */
    uint32_t *slots;    /* open addressing: record index + 1, 0 for empty */
    uint32_t *free;     /* indexes of free records */
    size_t cap, nslots, nfree;
} imap_penalty_table;

typedef struct imap_listener {
    int *fds; /* one socket per loop, all bound to the address (SO_REUSEPORT) */
    bool implicit_tls;
    int port;
} imap_listener;

/* What one loop's epoll knows a listening socket by. */
typedef struct imap_lsock {
    int fd;
    bool implicit_tls;
} imap_lsock;

typedef struct imap_loop imap_loop;
typedef struct imap_keycache imap_keycache; /* SORT's and THREAD's keys (cmd_sort.c) */

/* One event loop (one thread); the kernel spreads new connections over the loops. */
struct imap_loop {
    imap_server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    int ep;         /* epoll */
    int stop_fd;    /* eventfd: stop */
    int watch_fd;   /* store change notifications */
    int auth_fd;    /* eventfd: a password check for a client of this loop finished */
    imap_lsock *ls; /* this loop's listening sockets */
    size_t nls;
    imap_client *clients; /* doubly linked */
    unsigned nclients;
    imap_auth_job *auth_done; /* guarded by srv->auth_mu */
    imap_client *graveyard;   /* closed clients, freed when the loop pass ends */
    imap_keycache *keycache;  /* the sort keys of messages, per mailbox (cmd_sort.c) */
    bool stopping;
    unsigned nnoauth;        /* clients not logged in (c->noauth) */
    bool accept_paused;      /* out of file descriptors: listeners out of epoll... */
    int64_t accept_retry_ms; /* ...until then */
    bool accept_kick;        /* a client closed while paused: retry at the end of the pass */
};

struct imap_server {
    store *st;
    imap_server_options opt;
    char cert_file[4096], key_file[4096];
    pthread_mutex_t tls_mu; /* guards tls: SIGHUP swaps it while loops make connections */
    SSL_CTX *tls;
    int sig_fd; /* signalfd: SIGTERM, SIGINT, SIGHUP (read by loop 0) */
    imap_listener *listeners;
    size_t nlisteners;
    imap_loop *loops;
    unsigned nloops;
    pthread_mutex_t pen_mu; /* guards pen_addr, pen_user (taken inside auth_mu) */
    imap_penalty_table pen_addr, pen_user;
    uint64_t pen_key[2]; /* random SipHash key: names cannot be aimed at one part of a table */
    pthread_mutex_t recent_mu; /* guards recent */
    imap_recent_mark *recent;
    size_t nrecent, cap_recent;
    /* password checks run on worker threads so no loop ever waits for scrypt */
    pthread_t auth_threads[IMAP_AUTH_WORKERS];
    unsigned nauth_threads;
    pthread_mutex_t auth_mu;
    pthread_cond_t auth_cv;
    imap_auth_job *auth_todo, *auth_tail; /* first come, first served */
    unsigned auth_queued;
    unsigned auth_refused; /* refused because the queue was full, in this episode */
    bool auth_full;        /* the queue filled up and that was logged */
    bool auth_quit;
    bool auth_started;
    imap_net *trusted; /* opt.trusted_nets, parsed */
    size_t ntrusted;
    imap_net *proxies; /* opt.proxy_nets, parsed */
    size_t nproxies;
    atomic_bool fd_short;         /* accepting stopped for want of file descriptors */
    atomic_bool fd_announced;     /* ...and that was logged */
    _Atomic int64_t fd_logged_ms; /* when it was last logged */
};

/* A command that produces output in steps (a big FETCH): called again while it returns 1. */
typedef int imap_cont_fn(imap_client *c, void *ctx);

struct imap_client {
    imap_server *srv;
    imap_loop *loop;
    imap_client *prev, *next;
    int fd;
    SSL *ssl;
    bool tls; /* TLS is on (or being negotiated) */
    bool handshaking;
    bool ssl_read_wants_write, ssl_write_wants_read;
    bool starttls_after_flush;
    bool close_after_flush;
    bool dead;
    bool reaped; /* closed; only the struct is left, in the loop's graveyard */
    bool loopback;
    bool want_out; /* EPOLLOUT armed */
    bool reading;  /* EPOLLIN armed */
    char addr[64];
    mfs_buf in, out;
    mfs_buf resp; /* the tagged answer of the running command, without the tag */
    imap_parser *parser;
    enum imap_state state;
    enum imap_wait wait;
    uint32_t user_id;
    char user[STORE_USER_MAX + 1];
    bool utf8; /* IMAP4rev2 or UTF8=ACCEPT enabled */
    bool rev2;
    bool condstore; /* a CONDSTORE enabling command ran: FETCH responses carry MODSEQ */
    bool qresync;   /* ENABLE QRESYNC ran: VANISHED instead of EXPUNGE */
    imap_selected sel;
    /* NOTIFY SET's events (imap_notify.c); NULL: none asked */
    struct imap_notify *notify;
    char tag[80];       /* the tag of the command that waits (IDLE, AUTHENTICATE, delay) */
    unsigned cmd_flags; /* the flags of the waiting or running command */
    int64_t delay_until_ms;
    int64_t keepalive_ms;          /* next "* OK Still here" in IDLE */
    int64_t handshake_deadline_ms; /* a TLS handshake still going then is dropped */
    bool out_waiting;              /* output is pending... */
    int64_t out_progress_ms;       /* ...and the client last took some of it then */
    int64_t last_input_ms;
    imap_auth_job *auth_job; /* the password check in flight */
    imap_cont_fn *cont;
    void *cont_ctx;
    void (*cont_free)(void *ctx);
    int64_t connected_ms; /* the login timeout counts from here */
    bool noauth;          /* counted in loop->nnoauth; parser has the pre-login limits */
    bool proxy_wait;      /* from a proxy: its PROXY header has not been read yet */
    bool proxy_tls;       /* ...and then implicit TLS starts */
    char via[64];         /* the proxy's address ("" if direct) */
};

/* ---- the command table (imap_commands.c) --------------------------------------------- */

enum {
    IMAP_CMD_NOAUTH = 1u << 0,    /* allowed before login */
    IMAP_CMD_AUTH = 1u << 1,      /* allowed after login */
    IMAP_CMD_SELECTED = 1u << 2,  /* needs a selected mailbox */
    IMAP_CMD_USES_SEQS = 1u << 3, /* no EXPUNGE may be sent while it runs (sequence numbers) */
    IMAP_CMD_UID = 1u << 4,       /* may follow UID */
    IMAP_CMD_NOSYNC = 1u << 5,    /* do not push changes after it (LOGOUT, STARTTLS) */
};

/* ARGS/NARGS are the arguments after the command name (after the subcommand for UID). The
 * handler writes untagged responses to c->out and the tagged answer with imap_ok/no/bad. */
typedef void imap_cmd_fn(imap_client *c, const imap_command *cmd, const imap_arg *args,
                         size_t nargs, bool uid);

typedef struct imap_cmd_def {
    const char *name;
    imap_cmd_fn *fn;
    unsigned flags;
} imap_cmd_def;

const imap_cmd_def *imap_command_find(const char *name);

imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_starttls,
    imap_cmd_authenticate, imap_cmd_login, imap_cmd_enable, imap_cmd_id, imap_cmd_idle,
    imap_cmd_select, imap_cmd_create, imap_cmd_delete, imap_cmd_rename, imap_cmd_subscribe,
    imap_cmd_lsub, imap_cmd_namespace, imap_cmd_status, imap_cmd_list, imap_cmd_append,
    imap_cmd_check, imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge, imap_cmd_search,
    imap_cmd_fetch, imap_cmd_store, imap_cmd_copy, imap_cmd_examine, imap_cmd_move,
    imap_cmd_unsubscribe, imap_cmd_sort, imap_cmd_thread, imap_cmd_cancelupdate, imap_cmd_notify;

/* ---- connections (imap_client.c) ----------------------------------------------------- */

struct sockaddr;
/* Takes over FD (a non-blocking accepted socket) and sends the greeting (after the handshake
 * for implicit TLS). NULL if out of resources (FD is then closed). */
imap_client *imap_client_new(imap_loop *loop, int fd, const struct sockaddr *sa, bool implicit_tls);
/* Handles epoll EVENTS for C; C may be freed on return. */
void imap_client_event(imap_client *c, uint32_t events);
/* Runs what can run now (pending input, output), then re-arms epoll; may free C. */
void imap_client_kick(imap_client *c);
/* Fires C's due timers (login delay, IDLE keepalive, autologout); lowers *NEXT to its next
 * deadline. May free C. */
void imap_client_timers(imap_client *c, int64_t now, int64_t *next);
/* Sends "* BYE TEXT", flushes what it can and frees C. */
void imap_client_bye(imap_client *c, const char *text);
/* Sends "* BYE TEXT" if it can go out at once and closes C now (a slot is needed back). */
void imap_client_drop(imap_client *c, const char *text);
/* Closes C; its memory goes when the loop pass ends (imap_loop_reap). */
void imap_client_free(imap_client *c);
/* Frees the clients closed during this loop pass. */
void imap_loop_reap(imap_loop *l);
/* Enters IDLE: waits for DONE, sends keepalives. */
void imap_client_idle_start(imap_client *c);
/* Ends the running command: pushes changes (unless forbidden) and writes the tagged answer
 * (imap_dispatch.c). */
void imap_command_finish(imap_client *c);
/* Runs C's commands while it can: the step of a continuation, a waiting command's line, or
 * the next parsed commands (imap_dispatch.c; imap_client_kick calls it). */
void imap_client_process(imap_client *c);
/* Notices a login (or LOGOUT): the client leaves the pre-login count and gets the limits of a
 * logged-in client. */
void imap_client_state_sync(imap_client *c);
/* The output above which C's commands wait for the client to read (lower before login). */
size_t imap_client_out_high(const imap_client *c);

/* ---- answers (imap_client.c) --------------------------------------------------------- */

void imap_ok(imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_no(imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_bad(imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NO (or BAD for -EINVAL) with a text for store error RC, naming what failed. */
void imap_no_store(imap_client *c, int rc, const char *what);
/* The capability list for the client's state, without "* CAPABILITY ". */
void imap_capabilities(imap_client *c, mfs_buf *b);
/* Starts TLS on the connection once the output is flushed. */
void imap_client_starttls(imap_client *c);
int64_t imap_now_ms(void);
/* Pushes pending mailbox changes as untagged responses (imap_sync.c). EXPUNGEs only when
 * ALLOW_EXPUNGE; others wait. Returns 0, or -1 if the connection must close. */
int imap_sync(imap_client *c, bool allow_expunge);
/* Forgets the selected mailbox. */
void imap_unselect(imap_client *c);
/* Reads the change feed up to now without sending anything: what it finds waits for the
 * next imap_sync. A command that commits in steps calls it after each, so that the sync at
 * its end has little left to read and its own changes are recognised batch by batch. */
void imap_sync_absorb(imap_client *c);
/* Notes a modseq produced by our own flag change so the push does not echo it. */
void imap_sync_own(imap_client *c, uint64_t modseq);
/* Removes the N UIDS (ascending; ones not in the view are skipped) from the view after our
 * own EXPUNGE or MOVE, appending "* seq EXPUNGE" for each to OUT unless it is NULL (highest
 * first, so every number is right when it is read), or after ENABLE QRESYNC one "* VANISHED
 * uid-set". O(view + N). */
void imap_sync_remove(imap_client *c, const uint32_t *uids, size_t n, mfs_buf *out);
/* \Recent: a session that sees UID first (and may change the mailbox) takes it as recent. */
void imap_recent_claim(imap_client *c, uint32_t uid);
/* True if UID is \Recent in this session (never for IMAP4rev2 sessions). */
bool imap_is_recent(const imap_client *c, uint32_t uid);
/* The highest UID of MAILBOX_ID some session took as recent (0: none). */
uint32_t imap_recent_claimed(imap_server *srv, uint32_t mailbox_id);
/* The sequence number of UID in the view, 0 if not there. */
uint32_t imap_seq_of(const imap_client *c, uint32_t uid);

/* Starts expunging the \Deleted messages among the NCAND UIDs CAND (ascending; taken over
 * and freed) as the running command's continuation, a batch of one write transaction per
 * step; announced batch by batch unless SILENT. With CLOSE, the mailbox is unselected at the
 * end and the answer is CLOSE's (cmd_expunge.c). */
void imap_expunge_start(imap_client *c, uint32_t *cand, size_t ncand, bool silent, bool close);

/* ---- CONDSTORE and QRESYNC, RFC 7162 (imap_condstore.c) ------------------------------ */

#define IMAP_MODSEQ_MAX 9223372036854775807ull /* mod-sequence-value: 63 bits */

/* Parses a mod-sequence argument A: 1 to IMAP_MODSEQ_MAX, and 0 too when ZERO_OK. Returns 0,
 * or -1 after answering BAD with WHAT (the command or modifier) and the value. */
int imap_modseq_arg(imap_client *c, const imap_arg *a, bool zero_ok, const char *what,
                    uint64_t *out);
/* Turns CONDSTORE on for the session (RFC 7162 3.1, any enabling command); the first time,
 * with a mailbox selected, appends its HIGHESTMODSEQ as of the SELECT. */
void imap_condstore_on(imap_client *c);
/* Appends "* VANISHED [(EARLIER) ]uid-set" for the N ascending UIDS (nothing if N is 0). */
void imap_vanished_put(mfs_buf *b, const uint32_t *uids, size_t n, bool earlier);

/* SELECT's QRESYNC parameter (RFC 7162 3.2.5), and what the mailbox walk found for it. */
typedef struct imap_qresync {
    uint32_t uidvalidity;
    uint64_t modseq;
    bool has_known, has_match;
    imap_seqset known;                  /* known-uids (resolved) */
    imap_seqset match_seqs, match_uids; /* the sequence match data */
    struct {
        uint32_t uid, seq;
    } * changed; /* known messages with a MODSEQ above MODSEQ, in view order */
    size_t nchanged, cap_changed;
} imap_qresync;
/* Parses the list after QRESYNC into *Q; BAD (-1) if QRESYNC is not enabled or A is malformed
 * (known-uids and the match sets use the sequence-set parser and its limits; '*' is refused). */
int imap_qresync_parse(imap_client *c, const imap_arg *a, imap_qresync *q);
/* Notes message M (sequence number SEQ) of the mailbox walk of SELECT if it changed since. */
void imap_qresync_note(imap_qresync *q, const store_msg *m, uint32_t seq);
/* Appends "* VANISHED (EARLIER) ..." for the known UIDs expunged since Q's modseq (above the
 * match data's floor), then "* n FETCH (UID FLAGS MODSEQ)" for the noted messages. */
int imap_qresync_answer(imap_client *c, store_txn *t, const imap_qresync *q);
void imap_qresync_free(imap_qresync *q);

/* ---- STATUS items, shared with LIST-STATUS (cmd_status.c) ----------------------------- */

enum {
    IMAP_STATUS_MESSAGES = 1u << 0,
    IMAP_STATUS_UIDNEXT = 1u << 1,
    IMAP_STATUS_UIDVALIDITY = 1u << 2,
    IMAP_STATUS_UNSEEN = 1u << 3,
    IMAP_STATUS_RECENT = 1u << 4,
    IMAP_STATUS_SIZE = 1u << 5,
    IMAP_STATUS_DELETED = 1u << 6,
    IMAP_STATUS_HIGHESTMODSEQ = 1u << 7,
    IMAP_STATUS_MAILBOXID = 1u << 8, /* RFC 8474 */
};
/* OBJECTID (RFC 8474). A mailbox's MAILBOXID: "M" and the store's mailbox id and UIDVALIDITY in
 * hex (ids are never reused, and RENAME keeps both, so it stays the mailbox's for its life). A
 * message's EMAILID: "E" and 32 hex digits of its body's SHA-256, so every copy of the same
 * bytes (COPY, MOVE, a second delivery) has the same one, as the shared body in the store.
 * THREADID is NIL: mailfs keeps no threads (THREAD computes them per command). */
void imap_mailboxid_put(mfs_buf *b, uint32_t mailbox_id, uint32_t uidvalidity);
void imap_emailid_put(mfs_buf *b, const uint8_t body_hash[32]);
/* Appends FETCH PREVIEW's value (RFC 8970) for message DATA[0, DLEN) with summary BLOB: the
 * first text/plain part's text (else text/html's, its tags dropped), decoded, as one line of at
 * most 200 characters, quoted; NIL when there is none (imap_preview.c). */
void imap_preview_put(imap_client *c, mfs_buf *o, const char *data, size_t dlen, const void *blob,
                      size_t bloblen);
/* Parses a STATUS item list; returns 0, or -1 after answering BAD. */
int imap_status_items(imap_client *c, const imap_arg *list, unsigned *items);
/* Appends "* STATUS name (...)\r\n" for MB; T (a read transaction) is used for SIZE. */
void imap_status_put(imap_client *c, store_txn *t, const store_mailbox *mb, unsigned items);

/* ---- NOTIFY (RFC 5465: imap_notify.c, cmd_notify.c) ----------------------------------- */

/* The selected mailbox's changes, as imap_sync, followed by the FETCH of each new message a
 * NOTIFY SET asked for (MessageNew's fetch attributes). Returns imap_sync's result. */
int imap_notify_sync(imap_client *c, bool allow_expunge);
/* What happened to other mailboxes since the last push, as NOTIFY SET asked: STATUS (one per
 * mailbox however many changes it had), LIST for names created, deleted, renamed or
 * (un)subscribed. Called when a command ends (before its tagged answer) and, between
 * commands or in IDLE, when the store changes (imap_notify_wake). Nothing is sent while the
 * client leaves IMAP_OUT_HIGH unread: the changes wait in the feed. */
void imap_notify_push(imap_client *c);
/* The store changed: pushes now if C asked for it and no command of C is running. */
void imap_notify_wake(imap_client *c);
/* Forgets C's NOTIFY registration (NOTIFY NONE, logout). */
void imap_notify_clear(imap_client *c);

/* ---- login (imap_auth.c) ------------------------------------------------------------- */

/* Checks USER/PASS (ULEN and PLEN bytes: a NUL inside makes the login fail, as does a user
 * name or password too long), then answers (delayed after failures) and moves to the
 * authenticated state. */
void imap_auth_login(imap_client *c, const char *user, size_t ulen, const char *pass, size_t plen);
/* Starts and stops the auth workers (imap_server_new / imap_server_free). */
int imap_auth_start(imap_server *srv);
void imap_auth_stop(imap_server *srv);
/* The loop's side: answers the clients whose checks finished (auth_fd became readable). */
void imap_auth_completed(imap_loop *loop);
/* A new SSL object from the current context (NULL without a certificate). */
SSL *imap_tls_new_ssl(imap_server *srv);
/* A client goes away: forget its check in flight. */
void imap_auth_forget(imap_client *c);
/* Handles the client's AUTHENTICATE PLAIN response (base64), as imap_auth_login
 * (cmd_authenticate.c). */
void imap_auth_plain_response(imap_client *c, const char *b64);
/* The line a client sends while its command waits for it: AUTHENTICATE's response, IDLE's DONE
 * (cmd_authenticate.c, cmd_idle.c). */
void imap_authenticate_line(imap_client *c, const char *line);
void imap_idle_line(imap_client *c, const char *line);
/* True if plaintext logins are allowed on this connection (TLS or loopback). */
bool imap_auth_allowed(const imap_client *c);

/* ---- helpers (imap_util.c) ----------------------------------------------------------- */

/* Converts a mailbox name argument to the store's UTF-8 name ('/' delimited, INBOX folded).
 * Returns 0, or -1 after answering: BAD for a missing or too long name, NO [CANNOT] for one
 * that is not valid modified UTF-7 / UTF-8 (a name that cannot exist, not a syntax error). */
int imap_mailbox_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen);
/* The decoding itself, answering nothing: S[0, LEN) (modified UTF-7, or UTF-8) into OUT; 0, or
 * -EILSEQ (bad UTF-8), -EINVAL (bad modified UTF-7; with PATTERN only for a non-printable
 * one, else it is taken as written) or -ENAMETOOLONG. */
int imap_mailbox_decode(const imap_client *c, const char *s, size_t len, bool pattern, char *out,
                        size_t outlen);
/* The same for a LIST/LSUB reference or pattern, which may be anything printable: one that is
 * not valid modified UTF-7 is matched as written. */
int imap_pattern_arg(imap_client *c, const imap_arg *a, char *out, size_t outlen);
/* Appends a mailbox name as the client wants it (modified UTF-7 or UTF-8), quoted. */
void imap_mailbox_put(imap_client *c, mfs_buf *b, const char *name);
/* The selected mailbox's keywords, as FLAGS and PERMANENTFLAGS announce them (RFC 9051 7.3.5).
 * imap_keywords_add adds those of space-separated KEYWORDS the session has not been told of and
 * returns whether there were any; imap_keywords_put writes the two untagged responses;
 * imap_keywords_announce does both, and is called before any FETCH response that names
 * keywords, so a client never meets a keyword its FLAGS list lacks. At most
 * IMAP_KEYWORDS_MAX are announced; a mailbox with more (the store allows it) gets the first
 * ones only. */
enum { IMAP_KEYWORDS_MAX = 1000 };
bool imap_keywords_add(imap_selected *s, const char *keywords);
void imap_keywords_put(imap_client *c);
void imap_keywords_announce(imap_client *c, const char *keywords);
/* Appends "(\Seen kw ...)" for system flags and space-separated keywords. */
void imap_flags_put(mfs_buf *b, uint32_t flags, const char *keywords);
/* The same with \Recent for a message that is recent in C's session. */
void imap_flags_put_msg(imap_client *c, mfs_buf *b, uint32_t uid, uint32_t flags,
                        const char *keywords);
/* Parses a flag list (or a single flag): system flags into *flags, keywords into KW
 * (space-separated). Returns 0 or -1 after answering BAD. */
int imap_flags_parse(imap_client *c, const imap_arg *a, uint32_t *flags, mfs_buf *kw);
/* Appends X to the growable array *V of *N values (*CAP allocated), growing it by doubling. */
void imap_u32_push(uint32_t **v, size_t *n, size_t *cap, uint32_t x);
/* Resolves a sequence set argument to the UIDs of the view (ascending, each once) with their
 * sequence numbers. Returns 0, or -1 after answering BAD. *uids and *seqs are malloc'ed. */
int imap_set_resolve(imap_client *c, const imap_arg *a, bool uid, uint32_t **uids, uint32_t **seqs,
                     size_t *n);
/* ---- LIST and LSUB: the user's mailbox list (imap_util.c; patterns: imap_list_match.h) -- */

#define IMAP_LIST_PATTERNS_MAX 64    /* patterns in one LIST */
#define IMAP_LIST_PATTERN_BYTES 4096 /* their bytes in all, the reference counted with each */
#define IMAP_STEP_MS 5    /* a command that runs in steps gives the loop back after this long */
#define IMAP_COMMIT_MS 25 /* what a batch's commit should take at most, roughly */

/* A command that commits in batches (STORE, EXPUNGE, COPY, MOVE) works at most IMAP_STEP_MS
 * per batch, and does fewer items when commits are slow: a commit writes every page the
 * batch touched (messages of random bodies touch a page each) and waits for the disk, which
 * can take far longer than the work. The first batch does 64 items; after a commit over
 * IMAP_COMMIT_MS the next batch is cut down in proportion, after a fast one it may double. The
 * transaction asks imap_batch_more before each item after the first and calls imap_batch_worked
 * when it stops; imap_batch_start and imap_batch_done go around store_write. */
typedef struct imap_batch {
    int64_t until;    /* the running batch works until then (imap_now_ms clock) */
    size_t max;       /* items a batch may do (0: not started; the first does 64) */
    size_t items;     /* what the running batch did */
    int64_t work_end; /* when its work stopped */
} imap_batch;
void imap_batch_start(imap_batch *b);
/* True if the batch may do one more item after the DONE it did. */
bool imap_batch_more(const imap_batch *b, size_t done);
void imap_batch_worked(imap_batch *b, size_t done);
void imap_batch_done(imap_batch *b);

enum {
    IMAP_MB_SUBSCRIBED = 1u << 0, /* the name is in the subscription list */
    IMAP_MB_MATCHED = 1u << 1,    /* some pattern matches it */
    IMAP_MB_CHILDREN = 1u << 2,   /* a mailbox exists below it (at any depth) */
    IMAP_MB_HIDDEN = 1u << 3,     /* a subscribed name below it matches no pattern */
};

/* One name of the list: a mailbox, a name only the subscription list has, or (id 0, not
 * subscribed) a missing parent of one of those. */
typedef struct imap_mbentry {
    uint32_t name; /* offset of the name in the list's NAMES (a parent: a prefix of a name) */
    uint32_t id;   /* the mailbox; 0 if no mailbox has the name */
    uint16_t len;  /* the name's length */
    uint8_t flags; /* IMAP_MB_* */
    uint8_t special_use;
} imap_mbentry;

/* The names LIST or LSUB reports on, built in steps (imap_mblist_build) so that a user with
 * many mailboxes or subscriptions never holds up the loop: the mailboxes and subscriptions
 * are read (in several read transactions if need be), sorted so that every name's
 * descendants follow it directly ('/' sorts first), and walked once with a stack of
 * ancestors, which matches every name and its missing parents against the patterns and
 * gives each name its IMAP_MB_* flags. O(n log n) in the names, plus one automaton pass per
 * name; only the names some pattern matches are kept for the answer. */
typedef struct imap_mblist {
    imap_mbentry *v; /* after the build: the matched names, parents before children */
    size_t n, cap;
    mfs_buf names;
    /* build state (imap_util.c) */
    int phase;
    size_t pos, merge;
    char after[STORE_NAME_MAX + 1];
    struct imap_mbstack *stack;
    size_t nstack, cap_stack;
    imap_mbentry *extra; /* matched missing parents, to be merged into V */
    size_t nextra, cap_extra;
} imap_mblist;

/* Does the next part of the build of C's list; stops at UNTIL_MS (imap_now_ms clock).
 * Returns 1 while work is left (call again in a later step), 0 when L->v holds the answer,
 * or a store error. */
int imap_mblist_build(imap_client *c, imap_mblist *l, imap_patterns *p, int64_t until_ms);
/* The parts of the build that need no store, for tests: adds a name (any order) with
 * IMAP_MB_SUBSCRIBED or 0 in FLAGS; then sorts and scans as imap_mblist_build does. */
void imap_mblist_add(imap_mblist *l, const char *name, uint32_t id, uint32_t special_use,
                     uint8_t flags);
int imap_mblist_scan(imap_mblist *l, imap_patterns *p, int64_t until_ms);
/* The name of entry E of L (NUL-terminated copy in BUF, STORE_NAME_MAX + 1 bytes). */
const char *imap_mblist_name(const imap_mblist *l, const imap_mbentry *e, char *buf);
void imap_mblist_free(imap_mblist *l);

/* Starts LIST or (LSUB) the listing of cmd_list.c over the full patterns PATS (reference
 * and pattern joined, INBOX folded; taken over and freed), as the command's continuation. */
void imap_list_start(imap_client *c, char **pats, size_t npats, unsigned opts,
                     unsigned status_items, bool lsub);

/* ---- SORT and THREAD (cmd_sort.c) ---------------------------------------------------- */

/* The RETURN options of SEARCH and SORT (ESEARCH, ESORT, RFC 5267 contexts). */
enum { IMAP_RET_MIN = 1, IMAP_RET_MAX = 2, IMAP_RET_COUNT = 4, IMAP_RET_ALL = 8 };
typedef struct imap_search_ret {
    unsigned ret;      /* IMAP_RET_* */
    uint32_t plo, phi; /* PARTIAL plo:phi (plo <= phi), 0:0 for none */
    bool update;       /* UPDATE: keep the result live */
    bool save;         /* SAVE (RFC 5182): the result becomes "$" */
} imap_search_ret;

/* What a SORT or THREAD command asks for. */
typedef struct imap_sort_req {
    bool thread; /* THREAD with ALG; else SORT by CRIT */
    int alg;     /* enum imap_thread_alg */
    imap_sort_crit crit[IMAP_SORT_CRITERIA_MAX];
    size_t ncrit;
    bool esort;          /* SORT RETURN (...): answered with ESEARCH */
    imap_search_ret ret; /* ...these return options */
} imap_sort_req;
/* Checks the charset argument A of CMD (UTF-8 or US-ASCII); 0, or -1 after answering BAD or
 * NO [BADCHARSET]. */
int imap_sort_charset(imap_client *c, const imap_arg *a, const char *cmd);
/* Parses the search keys ARGS[I..NARGS) and starts REQ as the command's continuation: the
 * search, then the keys of the hits read from the stored summaries (and, for THREAD
 * REFERENCES, the References header) in steps, then the answer. */
void imap_sort_start(imap_client *c, const imap_sort_req *req, const imap_arg *args, size_t nargs,
                     size_t i, bool uid);
/* Sorts the N UIDS of C's view in place by the NCRIT criteria CRIT (then mailbox order), at
 * once, with the keys remembered per loop (read from the store for messages not yet seen).
 * Returns 0 or a store error (UIDS then unchanged). */
int imap_sort_uids(imap_client *c, const imap_sort_crit *crit, size_t ncrit, uint32_t *uids,
                   size_t n);
/* Frees a loop's remembered sort keys (when the loop goes). */
void imap_keycache_free(imap_keycache **kc);

/* Parses a number argument; returns 0 or -1 (no answer). */
int imap_arg_number(const imap_arg *a, uint64_t *out);

#endif
