/* imap_server.c: listeners, the epoll loop, signals, timers and the store's change feed */
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap/imap_int.h"

int imap_server_new(store *s, const imap_server_options *opt, imap_server **out, char *err,
                    size_t errlen)
{
    imap_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    srv->st = s;
    if (opt) srv->opt = *opt;
    if (!srv->opt.max_clients) srv->opt.max_clients = 10000;
    if (!srv->opt.max_clients_per_addr) srv->opt.max_clients_per_addr = 100;
    srv->ep = srv->sig_fd = srv->stop_fd = srv->watch_fd = srv->auth_fd = -1;
    bool named = srv->opt.cert_file || srv->opt.key_file;
    snprintf(srv->cert_file, sizeof(srv->cert_file), "%s",
             srv->opt.cert_file ? srv->opt.cert_file : "");
    snprintf(srv->key_file, sizeof(srv->key_file), "%s",
             srv->opt.key_file ? srv->opt.key_file : "");
    if (!srv->opt.cert_file)
        snprintf(srv->cert_file, sizeof(srv->cert_file), "%s/tls/cert.pem", store_dir(s));
    if (!srv->opt.key_file)
        snprintf(srv->key_file, sizeof(srv->key_file), "%s/tls/key.pem", store_dir(s));
    srv->opt.cert_file = srv->opt.key_file = NULL; /* the copies above are used */

    int rc = imap_server_reload_tls(srv, err, errlen);
    if (rc < 0 && (named || !srv->opt.tls_optional || rc != -ENOENT)) goto fail;
    err[0] = '\0';

    srv->ep = epoll_create1(EPOLL_CLOEXEC);
    srv->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->ep < 0 || srv->stop_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
        goto fail;
    }
    rc = store_watch_open(s, &srv->watch_fd);
    if (rc < 0) {
        snprintf(err, errlen, "cannot watch the store for changes: %s", store_strerror(rc));
        goto fail;
    }
    rc = imap_auth_start(srv);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the login workers: %s", strerror(-rc));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->auth_fd};
    epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->auth_fd, &ev);
    ev.data.ptr = &srv->stop_fd;
    epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->stop_fd, &ev);
    ev.data.ptr = &srv->watch_fd;
    epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->watch_fd, &ev);
    *out = srv;
    return 0;
fail:
    imap_server_free(&srv);
    return rc < 0 ? rc : -EINVAL;
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
    if (implicit_tls && !srv->tls) {
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
    int rc = 0, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            rc = 0;
            break;
        }
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on '%s': %s", spec, strerror(-rc));
        return rc ? rc : -EINVAL;
    }
    imap_listener *l = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*l));
    if (!l) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    srv->listeners = l;
    /* the epoll data of listeners are their indexes, kept apart from pointers by being small */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    l[srv->nlisteners] = (imap_listener){.fd = fd, .implicit_tls = implicit_tls, .port = port};
    srv->nlisteners++;
    return 0;
}

int imap_server_listener_port(imap_server *srv, unsigned index)
{
    return index < srv->nlisteners ? srv->listeners[index].port : 0;
}

void imap_server_stop(imap_server *srv)
{
    uint64_t one = 1;
    ssize_t n = write(srv->stop_fd, &one, sizeof(one));
    (void)n;
}

static unsigned clients_from(imap_server *srv, const struct sockaddr_storage *ss)
{
    unsigned n = 0;
    char addr[64] = "";
    (void)ss;
    /* compare by printed address, as the clients keep it */
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, addr, sizeof(addr));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, addr, sizeof(addr));
    for (imap_client *c = srv->clients; c; c = c->next)
        if (strcmp(c->addr, addr) == 0) n++;
    return n;
}

static void accept_all(imap_server *srv, imap_listener *l)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "mailfs: imap: cannot accept: %s\n", strerror(errno));
            return;
        }
        if (srv->nclients >= srv->opt.max_clients ||
            clients_from(srv, &ss) >= srv->opt.max_clients_per_addr) {
            static const char msg[] = "* BYE too many connections\r\n";
            if (!l->implicit_tls) {
                ssize_t n = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)n;
            }
            close(fd);
            continue;
        }
        if (l->implicit_tls && !srv->tls) {
            close(fd);
            continue;
        }
        imap_client *c = imap_client_new(srv, fd, (struct sockaddr *)&ss, l->implicit_tls);
        if (c) imap_client_kick(c);
    }
}

/* The store changed: push to every session waiting in IDLE. */
static void store_changed(imap_server *srv)
{
    store_watch_drain(srv->watch_fd);
    imap_client *next;
    for (imap_client *c = srv->clients; c; c = next) {
        next = c->next;
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
                fprintf(stderr, "mailfs: imap: keeping the old certificate: %s\n", err);
            else
                fprintf(stderr, "mailfs: imap: reloaded TLS certificate '%s'\n", srv->cert_file);
        } else {
            srv->stopping = true;
        }
    }
}

int imap_server_run(imap_server *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (srv->sig_fd < 0) {
        srv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (srv->sig_fd < 0) return -errno;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->sig_fd};
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->sig_fd, &ev);
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->listeners[i]};
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listeners[i].fd, &ev);
    }
    int64_t next_timer = imap_now_ms() + 1000;
    while (!srv->stopping) {
        int64_t now = imap_now_ms();
        int timeout = next_timer > now ? (int)(next_timer - now) : 0;
        struct epoll_event evs[64];
        int n = epoll_wait(srv->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR) return -errno;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &srv->sig_fd) {
                handle_signal(srv);
            } else if (p == &srv->stop_fd) {
                srv->stopping = true;
            } else if (p == &srv->auth_fd) {
                imap_auth_completed(srv);
            } else if (p == &srv->watch_fd) {
                store_changed(srv);
            } else if (srv->nlisteners && (imap_listener *)p >= srv->listeners &&
                       (imap_listener *)p < srv->listeners + srv->nlisteners) {
                accept_all(srv, p);
            } else {
                imap_client_event(p, evs[i].events);
            }
        }
        now = imap_now_ms();
        if (now >= next_timer) {
            next_timer = now + 1000;
            imap_client *next;
            for (imap_client *c = srv->clients; c; c = next) {
                next = c->next;
                imap_client_timers(c, now, &next_timer);
            }
        } else {
            /* a login delay may be due sooner than the next tick */
            for (imap_client *c = srv->clients; c; c = c->next)
                if (c->wait == IMAP_WAIT_DELAY && c->delay_until_ms < next_timer)
                    next_timer = c->delay_until_ms;
        }
    }
    return 0;
}

void imap_server_free(imap_server **psrv)
{
    imap_server *srv = *psrv;
    if (!srv) return;
    while (srv->clients) {
        imap_client *c = srv->clients;
        imap_buf_puts(&c->out, "* BYE server shutting down\r\n");
        c->close_after_flush = true;
        imap_client_kick(c); /* best effort; frees c once flushed */
        if (srv->clients == c) imap_client_free(c);
    }
    imap_auth_stop(srv);
    free(srv->recent);
    for (size_t i = 0; i < srv->nlisteners; i++)
        close(srv->listeners[i].fd);
    free(srv->listeners);
    if (srv->ep >= 0) close(srv->ep);
    if (srv->sig_fd >= 0) close(srv->sig_fd);
    if (srv->stop_fd >= 0) close(srv->stop_fd);
    if (srv->watch_fd >= 0) close(srv->watch_fd);
    SSL_CTX_free(srv->tls);
    free(srv);
    *psrv = NULL;
}
