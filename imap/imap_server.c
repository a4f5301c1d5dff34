/* imap_server.c: listeners, the event loops (one per core), signals, timers, the change feed */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "store/log.h"

#define MAX_LOOPS 16
#define FD_LOG_EVERY_MS (60 * 1000) /* "out of file descriptors" at most this often */

/* Parses N ranges of SPECS into *OUT (malloc'ed). Returns 0 or -EINVAL with *err set. */
static int nets_parse(const char *what, const char *const *specs, size_t n, imap_net **out,
                      size_t *nout, char *err, size_t errlen)
{
    *out = calloc(n ? n : 1, sizeof(imap_net));
    if (!*out) abort();
    for (size_t i = 0; i < n; i++) {
        if (imap_net_parse(specs[i], &(*out)[i]) < 0) {
            snprintf(err, errlen,
                     "bad %s '%s': give an address or ADDRESS/BITS, such as 10.0.0.0/8 or ::1",
                     what, specs[i]);
            return -EINVAL;
        }
    }
    *nout = n;
    return 0;
}

static int loop_init(imap_server *srv, imap_loop *l, unsigned index, char *err, size_t errlen)
{
    l->srv = srv;
    l->index = index;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->auth_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->ep < 0 || l->stop_fd < 0 || l->auth_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create an event loop: %s", strerror(e));
        return -e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->auth_fd};
    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->auth_fd, &ev);
    ev.data.ptr = &l->stop_fd;
    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->stop_fd, &ev);
    return 0;
}

int imap_server_new(const char *store_dir, const imap_server_options *opt, imap_server **out,
                    char *err, size_t errlen)
{
    imap_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (opt) srv->opt = *opt;
    if (!srv->opt.max_clients) srv->opt.max_clients = 10000;
    if (!srv->opt.keepalive_s) srv->opt.keepalive_s = 150; /* NAT drops silent flows in 5-15 min */
    if (!srv->opt.tls_timeout_s) srv->opt.tls_timeout_s = 30;
    if (!srv->opt.write_timeout_s) srv->opt.write_timeout_s = 120;
    if (!srv->opt.max_clients_per_addr) srv->opt.max_clients_per_addr = 100;
    if (!srv->opt.login_timeout_s) srv->opt.login_timeout_s = 60;
    if (!srv->opt.max_noauth_clients) srv->opt.max_noauth_clients = srv->opt.max_clients / 2;
    if (!srv->opt.max_noauth_clients) srv->opt.max_noauth_clients = 1;
    if (srv->opt.max_noauth_clients > srv->opt.max_clients)
        srv->opt.max_noauth_clients = srv->opt.max_clients;
    if (!srv->opt.loops) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        srv->opt.loops = n > 0 ? (unsigned)n : 1;
    }
    if (srv->opt.loops > MAX_LOOPS) srv->opt.loops = MAX_LOOPS;
    srv->sig_fd = -1;
    pthread_mutex_init(&srv->tls_mu, NULL);
    pthread_mutex_init(&srv->pen_mu, NULL);
    pthread_mutex_init(&srv->recent_mu, NULL);
    pthread_mutex_init(&srv->auth_mu, NULL);
    pthread_cond_init(&srv->auth_cv, NULL);
    srv->loops = calloc(srv->opt.loops, sizeof(imap_loop));
    if (!srv->loops) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < srv->opt.loops; i++)
        srv->loops[i].ep = srv->loops[i].stop_fd = srv->loops[i].auth_fd = srv->loops[i].watch_fd =
            -1;
    srv->nloops = srv->opt.loops;

    bool named = srv->opt.cert_file || srv->opt.key_file;
    snprintf(srv->cert_file, sizeof(srv->cert_file), "%s",
             srv->opt.cert_file ? srv->opt.cert_file : "");
    snprintf(srv->key_file, sizeof(srv->key_file), "%s",
             srv->opt.key_file ? srv->opt.key_file : "");
    if (!srv->opt.cert_file)
        snprintf(srv->cert_file, sizeof(srv->cert_file), "%s/tls/cert.pem", store_dir);
    if (!srv->opt.key_file)
        snprintf(srv->key_file, sizeof(srv->key_file), "%s/tls/key.pem", store_dir);
    srv->opt.cert_file = srv->opt.key_file = NULL; /* the copies above are used */

    int rc;
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    if (srv->opt.trusted_nets)
        rc = nets_parse("trusted network", srv->opt.trusted_nets, srv->opt.ntrusted_nets,
                        &srv->trusted, &srv->ntrusted, err, errlen);
    else
        rc = nets_parse("trusted network", loopback, 2, &srv->trusted, &srv->ntrusted, err, errlen);
    if (rc == 0)
        rc = nets_parse("proxy network", srv->opt.proxy_nets, srv->opt.nproxy_nets, &srv->proxies,
                        &srv->nproxies, err, errlen);
    srv->opt.trusted_nets = srv->opt.proxy_nets = NULL; /* parsed: the caller's may go */
    if (rc < 0) goto fail;

    rc = imap_server_reload_tls(srv, err, errlen);
    if (rc < 0 && (named || !srv->opt.tls_optional || rc != -ENOENT)) goto fail;
    err[0] = '\0';
    for (unsigned i = 0; i < srv->nloops; i++) {
        rc = loop_init(srv, &srv->loops[i], i, err, errlen);
        if (rc < 0) goto fail;
    }
    *out = srv;
    return 0;
fail:
    imap_server_free(&srv);
    return rc < 0 ? rc : -EINVAL;
}

int imap_server_set_store(imap_server *srv, store *s, char *err, size_t errlen)
{
    if (srv->st) {
        snprintf(err, errlen, "the server has a store already");
        return -EINVAL;
    }
    srv->st = s;
    for (unsigned i = 0; i < srv->nloops; i++) {
        imap_loop *l = &srv->loops[i];
        int rc = store_watch_open(s, &l->watch_fd);
        if (rc < 0) {
            l->watch_fd = -1;
            snprintf(err, errlen, "cannot watch the store for changes: %s", store_strerror(rc));
            return rc;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->watch_fd};
        epoll_ctl(l->ep, EPOLL_CTL_ADD, l->watch_fd, &ev);
    }
    int rc = imap_auth_start(srv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the login workers: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

/* A listening socket on AI's address and PORT (0: AI's own); with SHARED, one of several on
 * the address (SO_REUSEPORT). */
static int listen_one(const struct addrinfo *ai, int port, bool shared, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* every loop has its own socket on the address; the kernel spreads connections */
    if (shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (port) {
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 || (out && listen(fd, 128) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!out) {
        close(fd);
        return 0;
    }
    *out = fd;
    return 0;
}

/* Whether nobody listens on AI's address: SO_REUSEPORT would let a second server (another
 * store, same uid) share the port with this one without an error, each getting some of the
 * connections. A socket bound without it finds any listener there, as a plain bind would. */
static int address_free(const struct addrinfo *ai)
{
    const struct sockaddr *sa = ai->ai_addr;
    int port = sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
                                        : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return port == 0 ? 0 : listen_one(ai, 0, false, NULL); /* port 0: a fresh one */
}

static int sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int imap_server_listen(imap_server *srv, const char *spec, bool implicit_tls, char *err,
                       size_t errlen)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon[1] == '\0') {
        snprintf(err, errlen, "listen address '%s' needs a port: use ADDR:PORT", spec);
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - spec);
    if (hl >= sizeof(host)) {
        snprintf(err, errlen, "listen address '%s' is too long", spec);
        return -EINVAL;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (implicit_tls && !imap_server_has_tls(srv)) {
        snprintf(err, errlen,
                 "--imaps '%s' needs a TLS certificate ('%s'): run 'mailfs init' "
                 "or pass --tls-cert and --tls-key",
                 spec, srv->cert_file);
        return -ENOENT;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", spec, gai_strerror(g));
        return -EINVAL;
    }
    int *fds = calloc(srv->nloops, sizeof(int));
    if (!fds) abort();
    int rc = -EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = address_free(ai);
        if (rc == 0) rc = listen_one(ai, 0, true, &fds[0]);
        if (rc < 0) continue;
        int port = sock_port(fds[0]);
        unsigned k;
        for (k = 1; k < srv->nloops; k++) {
            rc = listen_one(ai, port, true, &fds[k]);
            if (rc < 0) break;
        }
        if (rc == 0) break;
        while (k-- > 0)
            close(fds[k]);
    }
    freeaddrinfo(res);
    if (rc < 0) {
        free(fds);
        if (rc == -EADDRINUSE)
            snprintf(err, errlen,
                     "cannot listen on '%s': the address is in use by another server (stop it, "
                     "or choose another port)",
                     spec);
        else
            snprintf(err, errlen, "cannot listen on '%s': %s", spec, strerror(-rc));
        return rc;
    }
    imap_listener *l = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*l));
    if (!l) abort();
    srv->listeners = l;
    l[srv->nlisteners++] =
        (imap_listener){.fds = fds, .implicit_tls = implicit_tls, .port = sock_port(fds[0])};
    return 0;
}

int imap_server_listener_port(imap_server *srv, unsigned index)
{
    return index < srv->nlisteners ? srv->listeners[index].port : 0;
}

unsigned imap_server_files_needed(const imap_server *srv)
{
    /* per loop: epoll, two eventfds, the store watch, one socket per listener; then the
     * signalfd, standard streams, the store's files and what OpenSSL and the auth workers open
     * now and then, with room to spare */
    unsigned per_loop = 4 + (unsigned)srv->nlisteners;
    return srv->opt.max_clients + srv->nloops * per_loop + 64;
}

const imap_server_options *imap_server_get_options(const imap_server *srv)
{
    return &srv->opt;
}

void imap_server_stop(imap_server *srv)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < srv->nloops; i++) {
        ssize_t n = write(srv->loops[i].stop_fd, &one, sizeof(one));
        (void)n;
    }
}

static unsigned clients_from(imap_loop *l, const struct sockaddr_storage *ss)
{
    unsigned n = 0;
    char addr[64] = "";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, addr, sizeof(addr));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, addr, sizeof(addr));
    for (imap_client *c = l->clients; c; c = c->next)
        if (strcmp(c->addr, addr) == 0) n++;
    return n;
}

/* Out of file descriptors: the listeners stay readable, so they leave epoll until a client
 * closes or IMAP_ACCEPT_RETRY_MS pass (loop_run puts them back). Logged once per episode (and
 * at most once a minute), not once per attempt. */
static void accept_pause(imap_loop *l, int err)
{
    imap_server *srv = l->srv;
    for (size_t i = 0; i < l->nls; i++)
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->ls[i].fd, NULL);
    l->accept_paused = true;
    l->accept_kick = false;
    int64_t now = imap_now_ms();
    l->accept_retry_ms = now + IMAP_ACCEPT_RETRY_MS;
    if (atomic_exchange(&srv->fd_short, true)) return;
    int64_t last = atomic_load(&srv->fd_logged_ms);
    if (last && now - last < FD_LOG_EVERY_MS) return;
    atomic_store(&srv->fd_logged_ms, now);
    atomic_store(&srv->fd_announced, true);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    log_error("imap",
              "cannot accept connections: %s (%u clients, open-file limit %llu); new "
              "connections wait until some close: raise the limit (ulimit -n, LimitNOFILE=) "
              "or lower --max-clients",
              strerror(err), l->nclients, (unsigned long long)rl.rlim_cur);
}

static void accept_resume(imap_loop *l)
{
    for (size_t i = 0; i < l->nls; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->ls[i]};
        epoll_ctl(l->ep, EPOLL_CTL_ADD, l->ls[i].fd, &ev);
    }
    l->accept_paused = false;
    l->accept_kick = false;
}

/* The connection not logged in that has waited longest, not counting those whose password
 * is being checked (their answer is near); NULL if none. */
static imap_client *oldest_noauth(imap_loop *l)
{
    imap_client *old = NULL;
    for (imap_client *c = l->clients; c; c = c->next)
        if (c->noauth && c->wait != IMAP_WAIT_AUTHING && !c->close_after_flush &&
            (!old || c->connected_ms <= old->connected_ms))
            old = c;
    return old;
}

static void refuse(int fd, bool implicit_tls, const char *msg)
{
    if (!implicit_tls) {
        ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    close(fd);
}

static void accept_all(imap_loop *l, imap_lsock *ls)
{
    imap_server *srv = l->srv;
    /* the limits are kept per loop: each loop gets its share */
    unsigned max = (srv->opt.max_clients + srv->nloops - 1) / srv->nloops;
    unsigned max_addr = (srv->opt.max_clients_per_addr + srv->nloops - 1) / srv->nloops;
    unsigned max_noauth = (srv->opt.max_noauth_clients + srv->nloops - 1) / srv->nloops;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(l, errno);
            return;
        }
        if (atomic_load(&srv->fd_short) && atomic_exchange(&srv->fd_short, false) &&
            atomic_exchange(&srv->fd_announced, false))
            log_warn("imap", "accepting connections again");
        /* a proxy's connections are counted by the address in their PROXY header */
        bool proxied = imap_net_match(srv->proxies, srv->nproxies, (struct sockaddr *)&ss);
        if (!proxied && clients_from(l, &ss) >= max_addr) {
            refuse(fd, ls->implicit_tls, "* BYE too many connections from your address\r\n");
            continue;
        }
        if (l->nclients >= max || l->nnoauth >= max_noauth) {
            /* logged-in clients keep their slots: the longest waiting for a login goes */
            imap_client *old = oldest_noauth(l);
            if (!old) {
                refuse(fd, ls->implicit_tls, "* BYE too many connections\r\n");
                continue;
            }
            log_info("imap", "%s: dropping the oldest connection not logged in (%s, %lld s old)",
                     l->nclients >= max ? "all connection slots taken"
                                        : "all slots for connections not logged in taken",
                     old->addr, (long long)((imap_now_ms() - old->connected_ms) / 1000));
            imap_client_drop(old, "too many connections waiting for a login; this one waited "
                                  "longest");
        }
        if (ls->implicit_tls && !imap_server_has_tls(srv)) {
            close(fd);
            continue;
        }
        imap_client *c = imap_client_new(l, fd, (struct sockaddr *)&ss, ls->implicit_tls);
        if (c) imap_client_kick(c);
    }
}

/* The store changed: push to every session of this loop waiting in IDLE, and to those that
 * asked for it with NOTIFY (imap_notify_wake). */
static void store_changed(imap_loop *l)
{
    store_watch_drain(l->watch_fd);
    imap_client *next;
    for (imap_client *c = l->clients; c; c = next) {
        next = c->next;
        if (c->notify) {
            imap_notify_wake(c);
            imap_client_kick(c);
            continue;
        }
        if (c->wait != IMAP_WAIT_IDLE || c->state != IMAP_ST_SELECTED) continue;
        if (imap_sync(c, true) < 0) c->close_after_flush = true;
        imap_client_kick(c);
    }
}

static void handle_signal(imap_server *srv)
{
    struct signalfd_siginfo si;
    while (read(srv->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            char err[512];
            if (imap_server_reload_tls(srv, err, sizeof(err)) < 0)
                log_error("imap", "keeping the old certificate: %s", err);
            else
                log_warn("imap", "reloaded TLS certificate '%s'", srv->cert_file);
        } else {
            imap_server_stop(srv);
        }
    }
}

static int loop_run(imap_loop *l)
{
    imap_server *srv = l->srv;
    int64_t next_timer = imap_now_ms() + 1000;
    while (!l->stopping) {
        int64_t now = imap_now_ms();
        int timeout = next_timer > now ? (int)(next_timer - now) : 0;
        struct epoll_event evs[64];
        int n = epoll_wait(l->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR) return -errno;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &srv->sig_fd) {
                handle_signal(srv);
            } else if (p == &l->stop_fd) {
                l->stopping = true;
            } else if (p == &l->auth_fd) {
                imap_auth_completed(l);
            } else if (p == &l->watch_fd) {
                store_changed(l);
            } else if (l->nls && (imap_lsock *)p >= l->ls && (imap_lsock *)p < l->ls + l->nls) {
                accept_all(l, p);
            } else {
                imap_client_event(p, evs[i].events);
            }
        }
        imap_loop_reap(l);
        now = imap_now_ms();
        if (now >= next_timer) {
            next_timer = now + 1000;
            imap_client *next;
            for (imap_client *c = l->clients; c; c = next) {
                next = c->next;
                imap_client_timers(c, now, &next_timer);
            }
        } else {
            /* a login delay may be due sooner than the next tick */
            for (imap_client *c = l->clients; c; c = c->next)
                if (c->wait == IMAP_WAIT_DELAY && c->delay_until_ms < next_timer)
                    next_timer = c->delay_until_ms;
        }
        if (l->accept_paused) {
            if (l->accept_kick || now >= l->accept_retry_ms)
                accept_resume(l); /* a listener still full of waiting clients wakes us */
            else if (l->accept_retry_ms < next_timer)
                next_timer = l->accept_retry_ms;
        }
    }
    return 0;
}

static void *loop_thread(void *arg)
{
    imap_loop *l = arg;
    int rc = loop_run(l);
    if (rc < 0) log_error("imap", "event loop %u failed: %s", l->index, strerror(-rc));
    return NULL;
}

int imap_server_run(imap_server *srv)
{
    if (!srv->st) return -EINVAL; /* imap_server_set_store first */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (srv->sig_fd < 0) {
        srv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (srv->sig_fd < 0) return -errno;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->sig_fd};
        epoll_ctl(srv->loops[0].ep, EPOLL_CTL_ADD, srv->sig_fd, &ev);
    }
    for (unsigned k = 0; k < srv->nloops; k++) {
        imap_loop *l = &srv->loops[k];
        free(l->ls);
        l->ls = calloc(srv->nlisteners ? srv->nlisteners : 1, sizeof(imap_lsock));
        if (!l->ls) abort();
        l->nls = srv->nlisteners;
        for (size_t i = 0; i < srv->nlisteners; i++) {
            l->ls[i] = (imap_lsock){srv->listeners[i].fds[k], srv->listeners[i].implicit_tls};
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->ls[i]};
            epoll_ctl(l->ep, EPOLL_CTL_ADD, l->ls[i].fd, &ev);
        }
    }
    /* loops 1.. on their own threads, with every signal blocked (loop 0 reads them) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned k = 1; k < srv->nloops; k++)
        srv->loops[k].started =
            pthread_create(&srv->loops[k].thread, NULL, loop_thread, &srv->loops[k]) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int rc = loop_run(&srv->loops[0]);
    imap_server_stop(srv);
    for (unsigned k = 1; k < srv->nloops; k++) {
        if (srv->loops[k].started) pthread_join(srv->loops[k].thread, NULL);
        srv->loops[k].started = false;
    }
    return rc;
}

void imap_server_free(imap_server **psrv)
{
    imap_server *srv = *psrv;
    if (!srv) return;
    for (unsigned k = 0; k < srv->nloops; k++) {
        imap_loop *l = &srv->loops[k];
        while (l->clients) {
            imap_client *c = l->clients;
            mfs_buf_puts(&c->out, "* BYE server shutting down\r\n");
            c->close_after_flush = true;
            imap_client_kick(c); /* best effort; frees c once flushed */
            if (l->clients == c) imap_client_free(c);
        }
        imap_loop_reap(l);
    }
    imap_auth_stop(srv);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        for (unsigned k = 0; k < srv->nloops; k++)
            close(srv->listeners[i].fds[k]);
        free(srv->listeners[i].fds);
    }
    free(srv->listeners);
    for (unsigned k = 0; k < srv->nloops; k++) {
        imap_loop *l = &srv->loops[k];
        if (l->ep >= 0) close(l->ep);
        if (l->stop_fd >= 0) close(l->stop_fd);
        if (l->auth_fd >= 0) close(l->auth_fd);
        if (l->watch_fd >= 0) close(l->watch_fd);
        free(l->ls);
        imap_keycache_free(&l->keycache);
    }
    free(srv->loops);
    free(srv->trusted);
    free(srv->proxies);
    if (srv->sig_fd >= 0) close(srv->sig_fd);
    free(srv->recent);
    pthread_mutex_lock(&srv->tls_mu);
    SSL_CTX_free(srv->tls);
    srv->tls = NULL;
    pthread_mutex_unlock(&srv->tls_mu);
    pthread_mutex_destroy(&srv->tls_mu);
    pthread_mutex_destroy(&srv->pen_mu);
    pthread_mutex_destroy(&srv->recent_mu);
    pthread_mutex_destroy(&srv->auth_mu);
    pthread_cond_destroy(&srv->auth_cv);
    free(srv);
    *psrv = NULL;
}
