/* imap_auth.c: password checks: the queue of logins, the worker threads, and their answers */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_auth_int.h"
#include "imap/imap_int.h"
#include "store/log.h"

/* How failed logins are held back (the delay of the answer, the budget of checks): see
 * imap_auth_budget.c. This file runs the checks: the queue, the workers, the answers. */
#define PENALTY_BASE_MS 250 /* the answer's delay after a failure, doubling */
#define PENALTY_MAX_MS 15000
#define REFUSAL_HOLD_MS                                                                            \
    1000 /* a login refused by the budget: that answer is held back this long                      \
          */

bool imap_auth_allowed(const imap_client *c)
{
    return c->tls || c->loopback;
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
    mfs_buf b = {0};
    imap_capabilities(c, &b);
    imap_ok(c, "[CAPABILITY %s] logged in", b.data);
    mfs_buf_free(&b);
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
static void refusal_note(imap_auth_job *j, imap_penalty *r, const imap_gate *g, int64_t wait_ms)
{
    j->rc = -EAGAIN;
    j->refused = g->what;
    j->retry_s = (long)((wait_ms + 999) / 1000);
    j->recent = j->pa->recent;
    if (j->pu && j->pu->recent > j->recent) j->recent = j->pu->recent;
    int64_t now = imap_now_ms();
    if (r->refused_log_ms && now - r->refused_log_ms < IMAP_PENALTY_FORGET_MS) return;
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
    imap_penalty_addr_key(c->addr, akey, sizeof(akey));
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
    imap_penalty *pa = imap_penalty_get(srv, &srv->pen_addr, akey, true, now);
    imap_penalty *pu =
        pa && name_ok ? imap_penalty_get(srv, &srv->pen_user, j->user, true, now) : NULL;
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
    if (pu) j->pass_slot = imap_penalty_pass_find(pu, pa->hash);
    if (j->pass_slot < 0) {
        const imap_gate *ga = imap_gate_addr(srv), *gu = imap_gate_user(srv);
        int64_t eta = imap_gate_eta(pa, ga, now), ueta = pu ? imap_gate_eta(pu, gu, now) : 0;
        if (eta > IMAP_GATE_HORIZON_MS || ueta > IMAP_GATE_HORIZON_MS) {
            if (eta > IMAP_GATE_HORIZON_MS)
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
static int64_t gate_closed_for(const imap_penalty *r, const imap_gate *g, int64_t now)
{
    return r->fails >= g->free && !r->pending && r->next_ms > now ? r->next_ms - now : 0;
}

/* Answers job J (out of the queue) without a check: its budgets will not open in time. */
static bool gate_hopeless(imap_auth_job *j, int64_t now)
{
    const imap_gate *ga = imap_gate_addr(j->loop->srv), *gu = imap_gate_user(j->loop->srv);
    int64_t wa = gate_closed_for(j->pa, ga, now);
    int64_t wu = j->pu ? gate_closed_for(j->pu, gu, now) : 0;
    if (wa <= IMAP_GATE_HORIZON_MS && wu <= IMAP_GATE_HORIZON_MS) return false;
    if (wa > IMAP_GATE_HORIZON_MS)
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
        bool open = j->pass_slot >= 0 ||
                    (imap_gate_open(j->pa, imap_gate_addr(srv), now, wake) &&
                     (!j->pu || imap_gate_open(j->pu, imap_gate_user(srv), now, wake)));
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
        imap_gate_account(j, rc, imap_now_ms());
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
    if (imap_penalty_table_init(&srv->pen_addr, cap) < 0 ||
        imap_penalty_table_init(&srv->pen_user, cap) < 0 ||
        RAND_bytes((unsigned char *)srv->pen_key, sizeof(srv->pen_key)) != 1) {
        imap_penalty_table_free(&srv->pen_addr);
        imap_penalty_table_free(&srv->pen_user);
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
    imap_penalty_table_free(&srv->pen_addr);
    imap_penalty_table_free(&srv->pen_user);
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
