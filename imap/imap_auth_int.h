/* imap_auth_int.h: the budget of failed logins (imap_auth_budget.c), as imap_auth.c uses it */
#ifndef MAILFS_IMAP_AUTH_INT_H
#define MAILFS_IMAP_AUTH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_int.h"

#define IMAP_PENALTY_FORGET_MS                                                                     \
    (15 * 60 * 1000)                     /* the answer's delay: an episode ends after this         \
                                          */
#define IMAP_GATE_HORIZON_MS (30 * 1000) /* a login that would wait longer is refused at once */

/* A budget: for users or for addresses. */
typedef struct imap_gate {
    const char *what; /* "user" or "address" */
    uint32_t free;    /* failures (and checks running) before checks are spaced */
    int64_t cap_ms;   /* the longest space between two checks */
} imap_gate;

/* The budgets of SRV (they never close with imap_server_options.no_login_penalties). */
const imap_gate *imap_gate_user(const imap_server *srv);
const imap_gate *imap_gate_addr(const imap_server *srv);

/* A table of CAP records, empty: 0 or -ENOMEM. */
int imap_penalty_table_init(imap_penalty_table *t, size_t cap);
void imap_penalty_table_free(imap_penalty_table *t);
/* The record of KEY in T, aged to NOW (made if CREATE; a full table first drops the records
 * with the least to remember), or NULL. The caller holds pen_mu. */
imap_penalty *imap_penalty_get(imap_server *srv, imap_penalty_table *t, const char *key,
                               bool create, int64_t now);
/* The record key of the address ADDR: an IPv6 address by its /64. */
void imap_penalty_addr_key(const char *addr, char *out, size_t outlen);
/* The pass of U for the address with hash AH: its slot, or -1. */
int imap_penalty_pass_find(const imap_penalty *u, uint64_t ah);

/* Whether a check of R may start now under G; if it must wait for its turn, *WAKE is lowered
 * to that time. */
bool imap_gate_open(imap_penalty *r, const imap_gate *g, int64_t now, int64_t *wake);
/* About how long a check queued now for R would wait under G. */
int64_t imap_gate_eta(const imap_penalty *r, const imap_gate *g, int64_t now);
/* The check of J ended with RC: its records count the failure or grant the pass (pen_mu). */
void imap_gate_account(imap_auth_job *j, int rc, int64_t now);

#endif
