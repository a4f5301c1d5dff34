/* imap_notify.h: what NOTIFY SET registered, shared by cmd_notify.c and imap_notify.c */
#ifndef MAILFS_IMAP_NOTIFY_H
#define MAILFS_IMAP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_NOTIFY_GROUPS_MAX 100 /* event groups in one NOTIFY SET */
#define IMAP_NOTIFY_NAMES_MAX 1000 /* mailbox names in one NOTIFY SET, all groups together */

/* The events mailfs supports (RFC 5465 section 5); the others get NO [BADEVENT]. */
enum {
    IMAP_NEV_NEW = 1u << 0,     /* MessageNew */
    IMAP_NEV_EXPUNGE = 1u << 1, /* MessageExpunge */
    IMAP_NEV_FLAGS = 1u << 2,   /* FlagChange */
    IMAP_NEV_NAME = 1u << 3,    /* MailboxName */
    IMAP_NEV_SUBS = 1u << 4,    /* SubscriptionChange */
};
#define IMAP_NEV_MESSAGE (IMAP_NEV_NEW | IMAP_NEV_EXPUNGE | IMAP_NEV_FLAGS)

/* MessageNew's fetch attributes for the selected mailbox (only these are supported) */
enum { IMAP_NFETCH_UID = 1u << 0, IMAP_NFETCH_FLAGS = 1u << 1 };

enum imap_notify_filter {
    IMAP_NF_INBOXES,    /* INBOX and the mailboxes below it */
    IMAP_NF_PERSONAL,   /* every mailbox of the user */
    IMAP_NF_SUBSCRIBED, /* the mailboxes whose names are subscribed (now, not at SET) */
    IMAP_NF_SUBTREE,    /* the names and everything below them */
    IMAP_NF_MAILBOXES,  /* exactly the names */
};

typedef struct imap_notify_group {
    enum imap_notify_filter filter;
    unsigned events; /* IMAP_NEV_* */
    char **names;    /* SUBTREE, MAILBOXES: store names (UTF-8, INBOX folded) */
    size_t nnames;
} imap_notify_group;

typedef struct imap_notify_mb {
    uint32_t id;
    char *name;
} imap_notify_mb;

typedef struct imap_notify_pend {
    uint32_t id;
    unsigned what; /* IMAP_NEV_* of the changes seen */
} imap_notify_pend;

struct imap_notify {
    int sel_mode;        /* 0: no SELECTED filter, 1: SELECTED, 2: SELECTED-DELAYED */
    unsigned sel_events; /* IMAP_NEV_MESSAGE bits for the selected mailbox */
    unsigned sel_fetch;  /* IMAP_NFETCH_* sent for each new message of the selected mailbox */
    imap_notify_group *groups;
    size_t ngroups;
    uint64_t feed_pos; /* the change feed is pushed up to here */
    /* the user's mailboxes by id, so that a deleted or renamed one's old name is known */
    imap_notify_mb *mbs;
    size_t nmbs, cap_mbs;
    /* the subscribed names (sorted), so that a change of the list can be told name by name */
    char **subs;
    size_t nsubs;
    /* changes of other mailboxes seen in one push, one entry per mailbox */
    imap_notify_pend *pend;
    size_t npend, cap_pend;
    bool subs_changed;
};

struct imap_client;
void imap_notify_free(struct imap_notify **n);
/* Makes N (taken over) C's registration in place of the one before: reads the user's
 * mailboxes and subscriptions, starts the feed at now and, with STATUS, sends the STATUS of
 * each mailbox other than the selected one that N watches for message events. Returns 0, or
 * a store error (N is then freed and the old registration stays). */
int imap_notify_install(struct imap_client *c, struct imap_notify *n, bool status);

#endif
