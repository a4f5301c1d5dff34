/* imap_auth.c: password checks, SASL PLAIN, and the delay after failed logins */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "store/log.h"
#include "imap/imap_sasl.h"

#define PENALTY_FORGET_MS (15 * 60 * 1000) /* failures older than this are forgotten */
#define PENALTY_BASE_MS 250
#define PENALTY_MAX_MS 15000

bool imap_auth_allowed(const imap_client *c)
{
    return c->tls || c->loopback;
}

static imap_penalty *penalty_find(imap_server *srv, const char *key, bool create, int64_t now)
{
    imap_penalty *empty = NULL, *oldest = NULL;
    for (size_t i = 0; i < IMAP_PENALTY_SLOTS; i++) {
        imap_penalty *p = &srv->penalties[i];
        if (p->fails && now - p->last_ms > PENALTY_FORGET_MS) p->fails = 0;
        if (!p->fails) {
            if (!empty) empty = p;
            continue;
        }
        if (strcmp(p->key, key) == 0) return p;
        if (!oldest || p->last_ms < oldest->last_ms) oldest = p;
    }
    if (!create) return NULL;
    imap_penalty *p = empty ? empty : oldest;
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->fails = 0;
    p->last_ms = now;
    return p;
}

static int64_t penalty_delay(unsigned fails)
{
    if (fails == 0) return 0;
    unsigned shift = fails - 1 > 6 ? 6 : fails - 1;
    int64_t d = (int64_t)PENALTY_BASE_MS << shift;
    return d > PENALTY_MAX_MS ? PENALTY_MAX_MS : d;
}

/* The answer once the password check is done (loop thread). */
static void auth_finish(imap_client *c, const char *user, int rc, uint32_t uid)
{
    imap_server *srv = c->srv;
    int64_t now = imap_now_ms();
    char akey[STORE_USER_MAX + 8], ukey[STORE_USER_MAX + 8];
    snprintf(akey, sizeof(akey), "a:%.60s", c->addr);
    snprintf(ukey, sizeof(ukey), "u:%.64s", user);
    bool valid_name = store_user_name_valid(user);
    /* the records are shared by every loop */
    pthread_mutex_lock(&srv->pen_mu);
    imap_penalty *pa = penalty_find(srv, akey, rc < 0, now);
    imap_penalty *pu = valid_name ? penalty_find(srv, ukey, rc < 0, now) : NULL;
    unsigned fails = 0;
    if (rc < 0) {
        if (pa) {
            pa->fails++;
            pa->last_ms = now;
        }
        if (pu) {
            pu->fails++;
            pu->last_ms = now;
        }
    }
    fails = pa ? pa->fails : (rc < 0 ? 1u : 0u);
    if (pu && pu->fails > fails) fails = pu->fails;
    if (rc == 0 && pu) pu->fails = 0;
    pthread_mutex_unlock(&srv->pen_mu);
    c->wait = IMAP_WAIT_NONE;
    if (rc < 0) {
        log_warn("imap", "login failed for user '%.64s' from %s (%u recent)", user, c->addr,
                 fails);
        if (rc == -EACCES)
            imap_no(c, "[AUTHENTICATIONFAILED] authentication failed");
        else
            imap_no(c, "[UNAVAILABLE] authentication unavailable: %s", store_strerror(rc));
        c->wait = IMAP_WAIT_DELAY;
        c->delay_until_ms = now + penalty_delay(fails);
        return;
    }
    /* A right password after failures is answered as late as a wrong one would have been. */
    c->state = IMAP_ST_AUTH;
    c->user_id = uid;
    snprintf(c->user, sizeof(c->user), "%s", user);
    imap_buf b = {0};
    imap_capabilities(c, &b);
    imap_ok(c, "[CAPABILITY %s] logged in", b.data);
    imap_buf_free(&b);
    log_info("imap", "user '%s' logged in from %s", user, c->addr);
    if (fails) {
        c->wait = IMAP_WAIT_DELAY;
        c->delay_until_ms = now + penalty_delay(fails);
    }
}

void imap_auth_login(imap_client *c, const char *user, const char *pass)
{
    if (!imap_auth_allowed(c)) {
        imap_no(c, "[PRIVACYREQUIRED] use STARTTLS before logging in");
        return;
    }
    imap_auth_job *j = calloc(1, sizeof(*j));
    if (!j) abort();
    j->c = c;
    j->loop = c->loop;
    snprintf(j->user, sizeof(j->user), "%s", user);
    if (strlen(user) > STORE_USER_MAX || strlen(pass) >= sizeof(j->pass) ||
        !store_user_name_valid(user)) {
        j->rc = -EACCES; /* answered by a worker anyway, so it takes as long as a check */
        j->pass[0] = '\0';
    } else {
        snprintf(j->pass, sizeof(j->pass), "%s", pass);
        j->rc = 1; /* to check */
    }
    imap_server *srv = c->srv;
    c->auth_job = j;
    c->wait = IMAP_WAIT_AUTHING;
    pthread_mutex_lock(&srv->auth_mu);
    j->next = srv->auth_todo;
    srv->auth_todo = j;
    pthread_cond_signal(&srv->auth_cv);
    pthread_mutex_unlock(&srv->auth_mu);
}

static void *auth_worker(void *arg)
{
    imap_server *srv = arg;
    pthread_mutex_lock(&srv->auth_mu);
    for (;;) {
        while (!srv->auth_todo && !srv->auth_quit)
            pthread_cond_wait(&srv->auth_cv, &srv->auth_mu);
        if (srv->auth_quit) break;
        imap_auth_job *j = srv->auth_todo;
        srv->auth_todo = j->next;
        pthread_mutex_unlock(&srv->auth_mu);
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
        j->rc = rc;
        j->user_id = uid;
        imap_loop *loop = j->loop;
        j->next = loop->auth_done;
        loop->auth_done = j;
        uint64_t one = 1;
        ssize_t n = write(loop->auth_fd, &one, sizeof(one));
        (void)n;
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
    for (unsigned i = 0; i < srv->nloops; i++)
        free_jobs(&srv->loops[i].auth_done);
    srv->auth_started = false;
}

void imap_auth_forget(imap_client *c)
{
    if (c->auth_job) {
        pthread_mutex_lock(&c->srv->auth_mu);
        c->auth_job->c = NULL;
        pthread_mutex_unlock(&c->srv->auth_mu);
        c->auth_job = NULL;
    }
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
            auth_finish(c, j->user, j->rc, j->user_id);
            if (c->wait == IMAP_WAIT_NONE) imap_command_finish(c);
            imap_client_kick(c);
        }
        explicit_bzero(j, sizeof(*j));
        free(j);
    }
}

int imap_sasl_plain_decode(const char *b64, char *user, size_t userlen, char *pass, size_t passlen)
{
    size_t len = strlen(b64);
    user[0] = pass[0] = '\0';
    if (len > 4096 || len % 4 != 0) return IMAP_SASL_BAD_BASE64;
    unsigned char buf[3100];
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len) : 0;
    if (n < 0) return IMAP_SASL_BAD_BASE64;
    if (len >= 1 && b64[len - 1] == '=') n--;
    if (len >= 2 && b64[len - 2] == '=') n--;
    /* authzid NUL authcid NUL password */
    int rc = 0;
    const char *authz = (const char *)buf;
    const char *nul1 = memchr(buf, '\0', (size_t)n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)n - (size_t)(nul1 + 1 - authz)) : NULL;
    if (!nul1 || !nul2) {
        rc = IMAP_SASL_MALFORMED;
        goto out;
    }
    size_t ul = (size_t)(nul2 - nul1 - 1), pl = (size_t)n - (size_t)(nul2 + 1 - authz);
    if (ul >= userlen || pl >= passlen || memchr(nul2 + 1, '\0', pl)) {
        rc = IMAP_SASL_TOO_LONG;
        goto out;
    }
    /* an authzid is allowed only when it names the user */
    if (nul1 != authz && ((size_t)(nul1 - authz) != ul || memcmp(authz, nul1 + 1, ul) != 0)) {
        rc = IMAP_SASL_AUTHZ;
        goto out;
    }
    memcpy(user, nul1 + 1, ul);
    user[ul] = '\0';
    memcpy(pass, nul2 + 1, pl);
    pass[pl] = '\0';
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

void imap_auth_plain_response(imap_client *c, const char *b64)
{
    char user[STORE_USER_MAX + 2], pass[1024];
    int rc = imap_sasl_plain_decode(b64, user, STORE_USER_MAX + 1, pass, sizeof(pass));
    if (rc == IMAP_SASL_BAD_BASE64)
        imap_bad(c, "invalid base64 in AUTHENTICATE response");
    else if (rc == IMAP_SASL_MALFORMED)
        imap_bad(c, "malformed PLAIN response");
    else if (rc == IMAP_SASL_TOO_LONG)
        imap_no(c, "[AUTHENTICATIONFAILED] authentication failed");
    else if (rc == IMAP_SASL_AUTHZ)
        imap_no(c, "[AUTHORIZATIONFAILED] cannot log in as another user");
    else
        imap_auth_login(c, user, pass);
    explicit_bzero(pass, sizeof(pass));
}
