/* imap_auth.c: password checks, SASL PLAIN, and the budget of failed logins per address and user */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "store/log.h"
#include "imap/imap_sasl.h"

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
 * GATE_HORIZON_MS is refused at once with NO [UNAVAILABLE], without a check. One failure of the
 * budget is forgiven per hour without failures. For a user name that makes at most 5 + 10 (the
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
#define PENALTY_FORGET_MS (15 * 60 * 1000) /* the answer's delay: an episode ends after this */
#define PENALTY_BASE_MS 250
#define PENALTY_MAX_MS 15000
#define PENALTY_DECAY_MS (60 * 60 * 1000)            /* a budget failure forgiven per hour */
#define PENALTY_PASS_MS (30 * 24 * 60 * 60 * 1000LL) /* an address's pass for a user lasts */
#define PENALTY_PASS_FAILS 5                         /* ...unless it fails this often */
#define GATE_HORIZON_MS (30 * 1000) /* a login that would wait longer is refused at once */
#define REFUSAL_HOLD_MS 1000        /* ...and that answer is held back this long */

typedef struct gate {
    const char *what;
    uint32_t free;  /* failures (and checks running) before checks are spaced */
    int64_t cap_ms; /* the longest space between two checks */
} gate;

static const gate gate_user = {"user", 5, 15 * 60 * 1000};
static const gate gate_addr = {"address", 20, 60 * 1000};
/* With imap_server_options.no_login_penalties (the in-process fuzzer): budgets never close */
static const gate gate_user_off = {"user", UINT32_MAX, 0};
static const gate gate_addr_off = {"address", UINT32_MAX, 0};
#define GATE_USER(srv) ((srv)->opt.no_login_penalties ? &gate_user_off : &gate_user)
#define GATE_ADDR(srv) ((srv)->opt.no_login_penalties ? &gate_addr_off : &gate_addr)

bool imap_auth_allowed(const imap_client *c)
{
    return c->tls || c->loopback;
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

static int table_init(imap_penalty_table *t, size_t cap)
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

static void table_free(imap_penalty_table *t)
{
    free(t->recs);
    free(t->slots);
    free(t->free);
    *t = (imap_penalty_table){0};
}

/* Forgets what time has made old: the episode, budget failures (one per quiet hour), passes. */
static void rec_age(imap_penalty *r, int64_t now)
{
    if (r->recent && now - r->last_ms > PENALTY_FORGET_MS) r->recent = 0;
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
static imap_penalty *table_get(imap_server *srv, imap_penalty_table *t, const char *key,
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
static void addr_key(const char *addr, char *out, size_t outlen)
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
static int64_t gate_delay(const gate *g, uint32_t n)
{
    if (n < g->free) return 0;
    uint32_t shift = n - g->free > 20 ? 20 : n - g->free;
    int64_t d = 1000LL << shift;
    return d > g->cap_ms ? g->cap_ms : d;
}

/* True if a job waiting for R may have its check now; else lowers *WAKE to when it may, if that
 * depends on time only (else a running check must end first). */
static bool gate_open(imap_penalty *r, const gate *g, int64_t now, int64_t *wake)
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
static int64_t gate_eta(const imap_penalty *r, const gate *g, int64_t now)
{
    uint32_t n = r->fails, ahead = r->pending + r->queued;
    if (n < g->free) return 0;
    int64_t t = r->next_ms > now ? r->next_ms : now;
    for (uint32_t i = 0; i < ahead && t - now <= GATE_HORIZON_MS; i++)
        t += gate_delay(g, ++n);
    return t - now;
}

/* The pass of the address with hash AH for user record U, or -1. */
static int pass_find(const imap_penalty *u, uint64_t ah)
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
static void gate_account(imap_auth_job *j, int rc, int64_t now)
{
    bool gated = j->pass_slot < 0, failed = rc == -EACCES;
    imap_penalty *recs[2] = {j->pa, j->pu};
    const gate *gates[2] = {GATE_ADDR(j->loop->srv), GATE_USER(j->loop->srv)};
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

/* ---- logins ------------------------------------------------------------------------------- */

static int64_t penalty_delay(unsigned fails)
{
    if (fails == 0) return 0;
    unsigned shift = fails - 1 > 6 ? 6 : fails - 1;
    int64_t d = (int64_t)PENALTY_BASE_MS << shift;
    return d > PENALTY_MAX_MS ? PENALTY_MAX_MS : d;
}

/* The answer once the password check is done (loop thread). */
static void auth_finish(imap_client *c, const imap_auth_job *j)
{
    int64_t now = imap_now_ms();
    c->wait = IMAP_WAIT_NONE;
    if (j->rc == -EAGAIN) {
        if (strcmp(j->refused, "user") == 0)
            imap_no(c,
                    "[UNAVAILABLE] too many failed logins for user '%s'; try again in %ld seconds",
                    j->user, j->retry_s);
        else
            imap_no(c, "[UNAVAILABLE] too many failed logins from %s; try again in %ld seconds",
                    j->addr, j->retry_s);
        /* held back a little, so that a client cannot ask again in a tight loop */
        c->wait = IMAP_WAIT_DELAY;
        c->delay_until_ms = now + REFUSAL_HOLD_MS;
        return;
    }
    if (j->rc < 0) {
        if (j->rc == -EACCES)
            imap_no(c, "[AUTHENTICATIONFAILED] authentication failed");
        else
            imap_no(c, "[UNAVAILABLE] authentication unavailable: %s", store_strerror(j->rc));
        c->wait = IMAP_WAIT_DELAY;
        c->delay_until_ms =
            now + (c->srv->opt.no_login_penalties ? 0 : penalty_delay(j->recent ? j->recent : 1));
        return;
    }
    c->state = IMAP_ST_AUTH;
    c->user_id = j->user_id;
    snprintf(c->user, sizeof(c->user), "%s", j->user);
    imap_buf b = {0};
    imap_capabilities(c, &b);
    imap_ok(c, "[CAPABILITY %s] logged in", b.data);
    imap_buf_free(&b);
    log_info("imap", "user '%s' logged in from %s", j->user, j->addr);
    if (j->recent && !c->srv->opt.no_login_penalties) {
        c->wait = IMAP_WAIT_DELAY;
        c->delay_until_ms = now + penalty_delay(j->recent);
    }
}

/* Takes job J out of the queue (under auth_mu; PREV is the job before it, or NULL). */
static void queue_unlink(imap_server *srv, imap_auth_job *prev, imap_auth_job *j)
{
    if (prev)
        prev->next = j->next;
    else
        srv->auth_todo = j->next;
    if (srv->auth_tail == j) srv->auth_tail = prev;
    j->next = NULL;
    srv->auth_queued--;
}

/* A job leaves without a check: its records forget it (under pen_mu). */
static void job_release(imap_auth_job *j)
{
    imap_penalty *recs[2] = {j->pa, j->pu};
    for (int i = 0; i < 2; i++) {
        if (!recs[i]) continue;
        recs[i]->refs--;
        if (j->pass_slot < 0) recs[i]->queued--;
    }
}

/* Job J will not be checked: the budget of R (for G) is spent for WAIT_MS (under pen_mu).
 * Logged once per episode. */
static void refusal_note(imap_auth_job *j, imap_penalty *r, const gate *g, int64_t wait_ms)
{
    j->rc = -EAGAIN;
    j->refused = g->what;
    j->retry_s = (long)((wait_ms + 999) / 1000);
    j->recent = j->pa->recent;
    if (j->pu && j->pu->recent > j->recent) j->recent = j->pu->recent;
    int64_t now = imap_now_ms();
    if (r->refused_log_ms && now - r->refused_log_ms < PENALTY_FORGET_MS) return;
    r->refused_log_ms = now;
    log_warn("imap", "refusing logins %s '%s' for about %ld s after %u failed logins (%s)",
             strcmp(g->what, "user") == 0 ? "for user" : "from", r->key, j->retry_s, r->fails,
             j->addr);
}

void imap_auth_login(imap_client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    if (!imap_auth_allowed(c)) {
        imap_no(c, "[PRIVACYREQUIRED] use STARTTLS before logging in");
        return;
    }
    imap_auth_job *j = calloc(1, sizeof(*j));
    if (!j) abort();
    j->c = c;
    j->loop = c->loop;
    j->pass_slot = -1;
    snprintf(j->addr, sizeof(j->addr), "%s", c->addr);
    size_t ucopy = ulen < STORE_USER_MAX ? ulen : STORE_USER_MAX;
    memcpy(j->user, user, ucopy);
    j->user[ucopy] = '\0';
    if (memchr(user, '\0', ulen))
        j->why = "a NUL in the user name";
    else if (ulen > STORE_USER_MAX)
        j->why = "a user name longer than 64 bytes";
    else if (memchr(pass, '\0', plen))
        j->why = "a NUL in the password";
    else if (plen >= sizeof(j->pass))
        j->why = "a password longer than 1023 bytes";
    bool name_ok =
        ulen <= STORE_USER_MAX && !memchr(user, '\0', ulen) && store_user_name_valid(j->user);
    if (j->why || !name_ok) {
        j->rc = -EACCES; /* answered by a worker anyway, so it takes as long as a check */
    } else {
        memcpy(j->pass, pass, plen);
        j->pass[plen] = '\0';
        j->rc = 1; /* to check */
    }

    imap_server *srv = c->srv;
    int64_t now = imap_now_ms();
    char akey[sizeof(((imap_penalty *)0)->key)];
    addr_key(c->addr, akey, sizeof(akey));
    pthread_mutex_lock(&srv->auth_mu);
    if (srv->auth_queued >= IMAP_AUTH_QUEUE_MAX) {
        bool log = !srv->auth_full;
        srv->auth_full = true;
        srv->auth_refused++;
        pthread_mutex_unlock(&srv->auth_mu);
        explicit_bzero(j, sizeof(*j));
        free(j);
        imap_no(c,
                "[UNAVAILABLE] the server is busy checking %u other logins; try again in a "
                "few seconds",
                IMAP_AUTH_QUEUE_MAX);
        if (log)
            log_warn("imap",
                     "%u logins are waiting for a password check; answering NO [UNAVAILABLE] "
                     "until the queue drains",
                     IMAP_AUTH_QUEUE_MAX);
        return;
    }
    pthread_mutex_lock(&srv->pen_mu);
    imap_penalty *pa = table_get(srv, &srv->pen_addr, akey, true, now);
    imap_penalty *pu = pa && name_ok ? table_get(srv, &srv->pen_user, j->user, true, now) : NULL;
    if (!pa || (name_ok && !pu)) {
        /* every record is held by a login in flight: only with MAILFS_PENALTY_SLOTS below
         * the queue bound */
        pthread_mutex_unlock(&srv->pen_mu);
        pthread_mutex_unlock(&srv->auth_mu);
        explicit_bzero(j, sizeof(*j));
        free(j);
        imap_no(c, "[UNAVAILABLE] the server is busy; try again in a few seconds");
        return;
    }
    j->pa = pa;
    j->pu = pu;
    if (pu) j->pass_slot = pass_find(pu, pa->hash);
    if (j->pass_slot < 0) {
        const gate *ga = GATE_ADDR(srv), *gu = GATE_USER(srv);
        int64_t eta = gate_eta(pa, ga, now), ueta = pu ? gate_eta(pu, gu, now) : 0;
        if (eta > GATE_HORIZON_MS || ueta > GATE_HORIZON_MS) {
            if (eta > GATE_HORIZON_MS)
                refusal_note(j, pa, ga, eta);
            else
                refusal_note(j, pu, gu, ueta);
            pthread_mutex_unlock(&srv->pen_mu);
            pthread_mutex_unlock(&srv->auth_mu);
            auth_finish(c, j);
            explicit_bzero(j, sizeof(*j));
            free(j);
            return;
        }
        pa->queued++;
        if (pu) pu->queued++;
    }
    pa->refs++;
    if (pu) pu->refs++;
    pthread_mutex_unlock(&srv->pen_mu);
    c->auth_job = j;
    c->wait = IMAP_WAIT_AUTHING;
    if (srv->auth_tail)
        srv->auth_tail->next = j;
    else
        srv->auth_todo = j;
    srv->auth_tail = j;
    srv->auth_queued++;
    pthread_cond_broadcast(&srv->auth_cv);
    pthread_mutex_unlock(&srv->auth_mu);
}

/* How long R (for G) stays closed, if only time opens it (else 0). */
static int64_t gate_closed_for(const imap_penalty *r, const gate *g, int64_t now)
{
    return r->fails >= g->free && !r->pending && r->next_ms > now ? r->next_ms - now : 0;
}

/* Answers job J (out of the queue) without a check: its budgets will not open in time. */
static bool gate_hopeless(imap_auth_job *j, int64_t now)
{
    const gate *ga = GATE_ADDR(j->loop->srv), *gu = GATE_USER(j->loop->srv);
    int64_t wa = gate_closed_for(j->pa, ga, now);
    int64_t wu = j->pu ? gate_closed_for(j->pu, gu, now) : 0;
    if (wa <= GATE_HORIZON_MS && wu <= GATE_HORIZON_MS) return false;
    if (wa > GATE_HORIZON_MS)
        refusal_note(j, j->pa, ga, wa);
    else
        refusal_note(j, j->pu, gu, wu);
    return true;
}

static void done_push(imap_auth_job *j)
{
    imap_loop *loop = j->loop;
    j->next = loop->auth_done;
    loop->auth_done = j;
    uint64_t one = 1;
    ssize_t n = write(loop->auth_fd, &one, sizeof(one));
    (void)n;
}

/* The next job to check (under auth_mu), taken out of the queue; NULL if none may be checked
 * now, with *WAKE lowered to when one may be. Of the jobs whose budgets let them be checked, it
 * is the oldest of the address whose last check started longest ago: first come, first served
 * for each address, and a flood from one address does not make others wait behind it. Jobs
 * whose budgets stay closed past the horizon are answered on the way. */
static imap_auth_job *auth_take(imap_server *srv, int64_t now, int64_t *wake)
{
    imap_auth_job *prev = NULL, *next, *best = NULL, *best_prev = NULL;
    pthread_mutex_lock(&srv->pen_mu);
    for (imap_auth_job *j = srv->auth_todo; j; j = next) {
        next = j->next;
        bool open = j->pass_slot >= 0 || (gate_open(j->pa, GATE_ADDR(srv), now, wake) &&
                                          (!j->pu || gate_open(j->pu, GATE_USER(srv), now, wake)));
        if (!open && gate_hopeless(j, now)) {
            queue_unlink(srv, prev, j);
            job_release(j);
            done_push(j);
            continue;
        }
        if (open && (!best || j->pa->started_ms < best->pa->started_ms)) {
            best = j;
            best_prev = prev;
        }
        prev = j;
    }
    if (best) {
        best->pa->started_ms = now;
        if (best->pass_slot < 0) {
            imap_penalty *recs[2] = {best->pa, best->pu};
            for (int i = 0; i < 2; i++) {
                if (!recs[i]) continue;
                recs[i]->queued--;
                recs[i]->pending++;
            }
        }
        queue_unlink(srv, best_prev, best);
    }
    pthread_mutex_unlock(&srv->pen_mu);
    return best;
}

/* Waits on auth_cv (auth_mu held) until signalled or until WAKE (imap_now_ms() time). */
static void auth_wait(imap_server *srv, int64_t wake)
{
    if (wake == INT64_MAX) {
        pthread_cond_wait(&srv->auth_cv, &srv->auth_mu);
        return;
    }
    int64_t d = wake - imap_now_ms();
    if (d <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the condition variable's clock */
    ts.tv_sec += d / 1000;
    ts.tv_nsec += (d % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&srv->auth_cv, &srv->auth_mu, &ts);
}

static void *auth_worker(void *arg)
{
    imap_server *srv = arg;
    pthread_mutex_lock(&srv->auth_mu);
    for (;;) {
        imap_auth_job *j = NULL;
        while (!srv->auth_quit) {
            int64_t wake = INT64_MAX;
            if ((j = auth_take(srv, imap_now_ms(), &wake)) != NULL) break;
            auth_wait(srv, wake);
        }
        if (srv->auth_quit) break;
        unsigned refused = 0;
        if (srv->auth_full && srv->auth_queued <= IMAP_AUTH_QUEUE_MAX / 2) {
            refused = srv->auth_refused;
            srv->auth_full = false;
            srv->auth_refused = 0;
        }
        pthread_mutex_unlock(&srv->auth_mu);
        if (refused)
            log_warn("imap", "the login queue drained; %u logins were refused while it was full",
                     refused);
        uint32_t uid = 0;
        int rc;
        if (j->rc == 1) {
            rc = store_user_auth(srv->st, j->user, j->pass, &uid);
        } else {
            /* an impossible name: spend the same effort so it cannot be told apart */
            rc = store_user_auth(srv->st, "-", "-", &uid);
            rc = -EACCES;
        }
        explicit_bzero(j->pass, sizeof(j->pass));
        pthread_mutex_lock(&srv->auth_mu);
        pthread_mutex_lock(&srv->pen_mu);
        gate_account(j, rc, imap_now_ms());
        pthread_mutex_unlock(&srv->pen_mu);
        j->rc = rc;
        j->user_id = uid;
        if (rc < 0) {
            /* logged here, so that a client that left at once is in the log too */
            char user[sizeof(j->user)], addr[sizeof(j->addr)];
            const char *why = j->why;
            unsigned recent = j->recent;
            memcpy(user, j->user, sizeof(user));
            memcpy(addr, j->addr, sizeof(addr));
            pthread_mutex_unlock(&srv->auth_mu);
            log_warn("imap", "login failed for user '%s' from %s (%u recent)%s%s", user, addr,
                     recent, why ? ": " : "", why ? why : "");
            pthread_mutex_lock(&srv->auth_mu);
        }
        done_push(j);
        /* a check ended: jobs waiting for it may go now */
        pthread_cond_broadcast(&srv->auth_cv);
    }
    pthread_mutex_unlock(&srv->auth_mu);
    return NULL;
}

static void free_jobs(imap_auth_job **l)
{
    while (*l) {
        imap_auth_job *j = *l;
        *l = j->next;
        explicit_bzero(j, sizeof(*j));
        free(j);
    }
}

int imap_auth_start(imap_server *srv)
{
    /* tests make the tables small to see eviction at work */
    size_t cap = IMAP_PENALTY_SLOTS;
    const char *env = getenv("MAILFS_PENALTY_SLOTS");
    if (env && atol(env) >= 4 && atol(env) <= IMAP_PENALTY_SLOTS) cap = (size_t)atol(env);
    if (table_init(&srv->pen_addr, cap) < 0 || table_init(&srv->pen_user, cap) < 0 ||
        RAND_bytes((unsigned char *)srv->pen_key, sizeof(srv->pen_key)) != 1) {
        table_free(&srv->pen_addr);
        table_free(&srv->pen_user);
        return -ENOMEM;
    }
    /* the workers must not take the signals the loop reads with its signalfd */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < IMAP_AUTH_WORKERS; i++) {
        if (pthread_create(&srv->auth_threads[i], NULL, auth_worker, srv) != 0) break;
        srv->nauth_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    srv->auth_started = true;
    return srv->nauth_threads ? 0 : -EAGAIN;
}

void imap_auth_stop(imap_server *srv)
{
    if (!srv->auth_started) return;
    pthread_mutex_lock(&srv->auth_mu);
    srv->auth_quit = true;
    pthread_cond_broadcast(&srv->auth_cv);
    pthread_mutex_unlock(&srv->auth_mu);
    for (unsigned i = 0; i < srv->nauth_threads; i++)
        pthread_join(srv->auth_threads[i], NULL);
    srv->nauth_threads = 0;
    free_jobs(&srv->auth_todo);
    srv->auth_tail = NULL;
    srv->auth_queued = 0;
    for (unsigned i = 0; i < srv->nloops; i++)
        free_jobs(&srv->loops[i].auth_done);
    table_free(&srv->pen_addr);
    table_free(&srv->pen_user);
    explicit_bzero(srv->pen_key, sizeof(srv->pen_key));
    srv->auth_started = false;
}

void imap_auth_forget(imap_client *c)
{
    imap_auth_job *j = c->auth_job;
    if (!j) return;
    imap_server *srv = c->srv;
    c->auth_job = NULL;
    pthread_mutex_lock(&srv->auth_mu);
    /* still waiting for its check: no check is needed any more */
    imap_auth_job *prev = NULL, *q = srv->auth_todo;
    while (q && q != j)
        prev = q, q = q->next;
    if (q) {
        queue_unlink(srv, prev, j);
        pthread_mutex_lock(&srv->pen_mu);
        job_release(j);
        pthread_mutex_unlock(&srv->pen_mu);
        pthread_mutex_unlock(&srv->auth_mu);
        explicit_bzero(j, sizeof(*j));
        free(j);
        return;
    }
    j->c = NULL; /* being checked, or answered and not yet seen by the loop */
    pthread_mutex_unlock(&srv->auth_mu);
}

void imap_auth_completed(imap_loop *loop)
{
    imap_server *srv = loop->srv;
    uint64_t n;
    ssize_t r = read(loop->auth_fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&srv->auth_mu);
    imap_auth_job *done = loop->auth_done;
    loop->auth_done = NULL;
    pthread_mutex_unlock(&srv->auth_mu);
    while (done) {
        imap_auth_job *j = done;
        done = j->next;
        imap_client *c = j->c;
        if (c) {
            c->auth_job = NULL;
            auth_finish(c, j);
            if (c->wait == IMAP_WAIT_NONE) imap_command_finish(c);
            imap_client_kick(c);
        }
        explicit_bzero(j, sizeof(*j));
        free(j);
    }
}

/* ---- SASL PLAIN --------------------------------------------------------------------------- */

#define SASL_B64_MAX 4096

/* Decodes B64 into BUF (SASL_B64_MAX / 4 * 3 + 1 bytes) and finds the parts of "authzid NUL
 * authcid NUL password" in it, each followed by a NUL in BUF. Returns 0,
 * IMAP_SASL_BAD_BASE64 or IMAP_SASL_MALFORMED. */
static int sasl_split(const char *b64, unsigned char *buf, const char **authz, size_t *al,
                      const char **user, size_t *ul, const char **pass, size_t *pl)
{
    size_t len = strlen(b64);
    if (len > SASL_B64_MAX || len % 4 != 0) return IMAP_SASL_BAD_BASE64;
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len) : 0;
    if (n < 0) return IMAP_SASL_BAD_BASE64;
    if (len >= 1 && b64[len - 1] == '=') n--;
    if (len >= 2 && b64[len - 2] == '=') n--;
    buf[n] = '\0';
    const char *a = (const char *)buf;
    const char *nul1 = memchr(buf, '\0', (size_t)n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - a)) : NULL;
    if (!nul1 || !nul2) return IMAP_SASL_MALFORMED;
    *authz = a;
    *al = (size_t)(nul1 - a);
    *user = nul1 + 1;
    *ul = (size_t)(nul2 - nul1 - 1);
    *pass = nul2 + 1;
    *pl = (size_t)n - (size_t)(nul2 + 1 - a);
    return 0;
}

/* An authzid is allowed only when it names the user. */
static bool sasl_authz_ok(const char *authz, size_t al, const char *user, size_t ul)
{
    return al == 0 || (al == ul && memcmp(authz, user, ul) == 0);
}

int imap_sasl_plain_decode(const char *b64, char *user, size_t userlen, char *pass, size_t passlen)
{
    user[0] = pass[0] = '\0';
    unsigned char buf[SASL_B64_MAX / 4 * 3 + 1];
    const char *a, *u, *p;
    size_t al, ul, pl;
    int rc = sasl_split(b64, buf, &a, &al, &u, &ul, &p, &pl);
    if (rc) goto out;
    if (ul >= userlen || pl >= passlen || memchr(p, '\0', pl)) {
        rc = IMAP_SASL_TOO_LONG;
        goto out;
    }
    if (!sasl_authz_ok(a, al, u, ul)) {
        rc = IMAP_SASL_AUTHZ;
        goto out;
    }
    memcpy(user, u, ul);
    user[ul] = '\0';
    memcpy(pass, p, pl);
    pass[pl] = '\0';
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

void imap_auth_plain_response(imap_client *c, const char *b64)
{
    unsigned char buf[SASL_B64_MAX / 4 * 3 + 1];
    const char *a, *u, *p;
    size_t al, ul, pl;
    int rc = sasl_split(b64, buf, &a, &al, &u, &ul, &p, &pl);
    if (rc == IMAP_SASL_BAD_BASE64)
        imap_bad(c, "invalid base64 in AUTHENTICATE response");
    else if (rc == IMAP_SASL_MALFORMED)
        imap_bad(c, "malformed PLAIN response");
    else if (!sasl_authz_ok(a, al, u, ul))
        imap_no(c, "[AUTHORIZATIONFAILED] cannot log in as another user");
    else
        imap_auth_login(c, u, ul, p, pl); /* too long or with a NUL: a failure like any other */
    explicit_bzero(buf, sizeof(buf));
}
