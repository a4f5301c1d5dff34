/* imap_auth_budget.c: the budget of failed logins per address and user, and the passes */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_auth_int.h"
#include "imap/imap_int.h"
#include "store/log.h"

/*
 * Two things hold back password guessing.
 *
 * The answer to a failed login is held back, longer after each failure of the address or the
 * user name (250 ms doubling to 15 s; an episode ends after 15 quiet minutes). That slows one
 * connection; it is what the client sees.
 *
 * The budget bounds the checks themselves, across all connections and loops: every address
 * (an IPv6 address by its /64) and every user name (known or not, so that nobody learns which
 * exist) has a record of its failures. Below the record's free allowance a check starts at
 * once; above it, checks for that record run one at a time, each starting a delay after the
 * previous one ended (1 s doubling to the cap). This is enforced before the password is
 * checked, so a right password waits like a wrong one. A login that would wait longer than
 * IMAP_GATE_HORIZON_MS is refused at once with NO [UNAVAILABLE], without a check. One failure of
 * the budget is forgiven per hour without failures. For a user name that makes at most 5 + 10 (the
 * doubling up to 15 minutes) + 24 (forgiven) + 96 (one per 15 minutes) = 135 checks a day.
 *
 * An address that logged in as a user keeps a pass for that user (30 days, or until it fails 5
 * times): its logins as that user skip both budgets, so an attack on an account from elsewhere
 * does not lock its owner out at home.
 *
 * The records live in two hash tables (keyed SipHash, so names cannot be aimed at one part of
 * a table) of IMAP_PENALTY_SLOTS records each. A full table first drops the records with
 * nothing left to remember, else the one with the fewest failures (oldest first): wiping a
 * record with F failures takes IMAP_PENALTY_SLOTS x F failed checks.
 */

#define PENALTY_DECAY_MS (60 * 60 * 1000)            /* a budget failure forgiven per hour */
#define PENALTY_PASS_MS (30 * 24 * 60 * 60 * 1000LL) /* an address's pass for a user lasts */
#define PENALTY_PASS_FAILS 5                         /* ...unless it fails this often */

static const imap_gate gate_user = {"user", 5, 15 * 60 * 1000};
static const imap_gate gate_addr = {"address", 20, 60 * 1000};
/* With imap_server_options.no_login_penalties (the in-process fuzzer): budgets never close */
static const imap_gate gate_user_off = {"user", UINT32_MAX, 0};
static const imap_gate gate_addr_off = {"address", UINT32_MAX, 0};

const imap_gate *imap_gate_user(const imap_server *srv)
{
    return srv->opt.no_login_penalties ? &gate_user_off : &gate_user;
}

const imap_gate *imap_gate_addr(const imap_server *srv)
{
    return srv->opt.no_login_penalties ? &gate_addr_off : &gate_addr;
}

/* ---- keyed hashing (SipHash-2-4) ---------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                                  \
        v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                                  \
    } while (0)

static uint64_t siphash(const uint64_t k[2], const char *s, size_t len)
{
    uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
    uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int b = 7; b >= 0; b--)
            m = m << 8 | p[i + (size_t)b];
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t m = (uint64_t)len << 56;
    for (size_t b = 0; i + b < len; b++)
        m |= (uint64_t)p[i + b] << (8 * b);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the tables of records ---------------------------------------------------------------- */

int imap_penalty_table_init(imap_penalty_table *t, size_t cap)
{
    size_t n = 16;
    while (n < 2 * cap)
        n *= 2;
    t->recs = calloc(cap, sizeof(*t->recs));
    t->slots = calloc(n, sizeof(*t->slots));
    t->free = calloc(cap, sizeof(*t->free));
    if (!t->recs || !t->slots || !t->free) return -ENOMEM;
    t->cap = cap;
    t->nslots = n;
    for (size_t i = 0; i < cap; i++)
        t->free[i] = (uint32_t)(cap - 1 - i);
    t->nfree = cap;
    return 0;
}

void imap_penalty_table_free(imap_penalty_table *t)
{
    free(t->recs);
    free(t->slots);
    free(t->free);
    *t = (imap_penalty_table){0};
}

/* Forgets what time has made old: the episode, budget failures (one per quiet hour), passes. */
static void rec_age(imap_penalty *r, int64_t now)
{
    if (r->recent && now - r->last_ms > IMAP_PENALTY_FORGET_MS) r->recent = 0;
    if (r->fails && now - r->decay_ms >= PENALTY_DECAY_MS) {
        int64_t k = (now - r->decay_ms) / PENALTY_DECAY_MS;
        r->fails = k >= r->fails ? 0 : r->fails - (uint32_t)k;
        r->decay_ms += k * PENALTY_DECAY_MS;
    }
    for (int i = 0; i < IMAP_PENALTY_PASSES; i++)
        if (r->passes[i].addr && now - r->passes[i].ms > PENALTY_PASS_MS) r->passes[i].addr = 0;
}

/* True if R has nothing left to remember. */
static bool rec_idle(const imap_penalty *r)
{
    if (r->fails || r->recent || r->refs) return false;
    for (int i = 0; i < IMAP_PENALTY_PASSES; i++)
        if (r->passes[i].addr) return false;
    return true;
}

static void table_remove(imap_penalty_table *t, imap_penalty *r)
{
    uint32_t idx = (uint32_t)(r - t->recs) + 1;
    size_t mask = t->nslots - 1, s = r->hash & mask;
    while (t->slots[s] != idx)
        s = (s + 1) & mask;
    /* backward shift: the records after it in the run move up, so no lookup stops short */
    t->slots[s] = 0;
    for (size_t j = (s + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = t->recs[t->slots[j] - 1].hash & mask;
        bool stays = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (stays) continue;
        t->slots[s] = t->slots[j];
        t->slots[j] = 0;
        s = j;
    }
    memset(r, 0, sizeof(*r));
    t->free[t->nfree++] = idx - 1;
}

/* Makes room in a full table: drops every record with nothing to remember, or else the one with
 * the fewest failures (the oldest of those). Records that jobs point to stay. */
static void table_evict(imap_penalty_table *t, int64_t now)
{
    imap_penalty *victim = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        imap_penalty *r = &t->recs[i];
        if (!r->key[0]) continue;
        rec_age(r, now);
        if (r->refs) continue;
        if (rec_idle(r)) {
            table_remove(t, r);
            continue;
        }
        if (!victim || r->fails < victim->fails ||
            (r->fails == victim->fails && r->last_ms < victim->last_ms))
            victim = r;
    }
    if (t->nfree == 0 && victim) table_remove(t, victim);
}

/* The record for KEY, made if CREATE (NULL if not there, or if every record is in use). */
imap_penalty *imap_penalty_get(imap_server *srv, imap_penalty_table *t, const char *key,
                               bool create, int64_t now)
{
    size_t len = strlen(key), mask = t->nslots - 1;
    uint64_t h = siphash(srv->pen_key, key, len);
    if (h == 0) h = 1; /* 0 marks an unused pass */
    size_t s = h & mask;
    for (; t->slots[s]; s = (s + 1) & mask) {
        imap_penalty *r = &t->recs[t->slots[s] - 1];
        if (r->hash == h && strcmp(r->key, key) == 0) {
            rec_age(r, now);
            return r;
        }
    }
    if (!create) return NULL;
    if (t->nfree == 0) {
        table_evict(t, now);
        if (t->nfree == 0) return NULL;
        for (s = h & mask; t->slots[s]; s = (s + 1) & mask) /* the eviction moved slots */
            ;
    }
    uint32_t idx = t->free[--t->nfree];
    imap_penalty *r = &t->recs[idx];
    memset(r, 0, sizeof(*r));
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->hash = h;
    t->slots[s] = idx + 1;
    return r;
}

/* The key of an address's record: IPv4 as it is, IPv6 by its /64 (what one site gets). */
void imap_penalty_addr_key(const char *addr, char *out, size_t outlen)
{
    struct in6_addr a;
    char buf[INET6_ADDRSTRLEN];
    if (strchr(addr, ':') && inet_pton(AF_INET6, addr, &a) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a) && inet_ntop(AF_INET, a.s6_addr + 12, buf, sizeof(buf))) {
            snprintf(out, outlen, "%s", buf);
            return;
        }
        memset(a.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a, buf, sizeof(buf))) {
            snprintf(out, outlen, "%s/64", buf);
            return;
        }
    }
    snprintf(out, outlen, "%s", addr);
}

/* ---- the budget --------------------------------------------------------------------------- */

/* The space before the check that follows failure number N. */
static int64_t gate_delay(const imap_gate *g, uint32_t n)
{
    if (n < g->free) return 0;
    uint32_t shift = n - g->free > 20 ? 20 : n - g->free;
    int64_t d = 1000LL << shift;
    return d > g->cap_ms ? g->cap_ms : d;
}

/* True if a job waiting for R may have its check now; else lowers *WAKE to when it may, if that
 * depends on time only (else a running check must end first). */
bool imap_gate_open(imap_penalty *r, const imap_gate *g, int64_t now, int64_t *wake)
{
    rec_age(r, now);
    if (r->fails + r->pending < g->free) return true;
    if (r->fails < g->free || r->pending) return false;
    if (now >= r->next_ms) return true;
    if (r->next_ms < *wake) *wake = r->next_ms;
    return false;
}

/* How long a new login would wait for R if every check before it failed; 0 below the free
 * allowance (the logins ahead may well be right: a client opening many connections). */
int64_t imap_gate_eta(const imap_penalty *r, const imap_gate *g, int64_t now)
{
    uint32_t n = r->fails, ahead = r->pending + r->queued;
    if (n < g->free) return 0;
    int64_t t = r->next_ms > now ? r->next_ms : now;
    for (uint32_t i = 0; i < ahead && t - now <= IMAP_GATE_HORIZON_MS; i++)
        t += gate_delay(g, ++n);
    return t - now;
}

/* The pass of the address with hash AH for user record U, or -1. */
int imap_penalty_pass_find(const imap_penalty *u, uint64_t ah)
{
    for (int i = 0; i < IMAP_PENALTY_PASSES; i++)
        if (u->passes[i].addr == ah && u->passes[i].fails < PENALTY_PASS_FAILS) return i;
    return -1;
}

static void pass_grant(imap_penalty *u, uint64_t ah, int64_t now)
{
    int slot = 0;
    for (int i = 0; i < IMAP_PENALTY_PASSES; i++) {
        if (u->passes[i].addr == ah) {
            slot = i;
            break;
        }
        if (u->passes[i].ms < u->passes[slot].ms) slot = i; /* unused ones have ms 0 */
    }
    u->passes[slot].addr = ah;
    u->passes[slot].ms = now;
    u->passes[slot].fails = 0;
}

/* A check of job J ended with RC: counts it in the records (worker, under pen_mu). */
void imap_gate_account(imap_auth_job *j, int rc, int64_t now)
{
    bool gated = j->pass_slot < 0, failed = rc == -EACCES;
    imap_penalty *recs[2] = {j->pa, j->pu};
    const imap_gate *gates[2] = {imap_gate_addr(j->loop->srv), imap_gate_user(j->loop->srv)};
    unsigned recent = 0;
    for (int i = 0; i < 2; i++) {
        imap_penalty *r = recs[i];
        if (!r) continue;
        rec_age(r, now);
        r->refs--;
        if (gated) r->pending--;
        if (failed) {
            r->fails++;
            r->recent++;
            r->last_ms = r->decay_ms = now;
        }
        if (r->fails >= gates[i]->free) {
            int64_t next = now + gate_delay(gates[i], r->fails);
            if (gated || next > r->next_ms) r->next_ms = next;
        }
        /* with a pass, failures of the user name elsewhere do not slow the answer */
        if ((gated || r == j->pa) && r->recent > recent) recent = r->recent;
    }
    imap_penalty *u = j->pu;
    if (!gated) {
        uint32_t *pf = &u->passes[j->pass_slot].fails;
        if (failed) ++*pf;
        if (*pf > recent) recent = *pf;
        if (!failed) u->passes[j->pass_slot].ms = now;
    } else if (rc == 0 && u) {
        pass_grant(u, j->pa->hash, now);
    }
    /* RECENT holds this answer back, a right password's too (as late as a wrong one would have
     * been); once the owner is in, the name's next answers start from no delay again */
    if (rc == 0 && u) u->recent = 0;
    if (rc == 0 && !gated) u->passes[j->pass_slot].fails = 0;
    j->recent = recent;
}
