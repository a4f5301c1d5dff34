/* imap_client.c: one connection: non-blocking socket and TLS I/O, parsing, dispatch, answers */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_int.h"
#include "store/log.h"
#include "imap/imap_utf7.h"

#define KEEPALIVE_MS(c) ((int64_t)(c)->srv->opt.keepalive_s * 1000)

int64_t imap_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_resp(imap_client *c, const char *status, const char *fmt, va_list ap)
{
    c->resp.len = 0;
    mfs_buf_puts(&c->resp, status);
    mfs_buf_putc(&c->resp, ' ');
    mfs_buf_vprintf(&c->resp, fmt, ap);
    /* texts may quote what the client sent (a literal can hold CR LF): never let that end the
     * line early and forge a response */
    for (size_t i = 0; i < c->resp.len; i++)
        if ((unsigned char)c->resp.data[i] < 0x20 || c->resp.data[i] == 0x7f) c->resp.data[i] = '?';
}

void imap_ok(imap_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_resp(c, "OK", fmt, ap);
    va_end(ap);
}

void imap_no(imap_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_resp(c, "NO", fmt, ap);
    va_end(ap);
}

void imap_bad(imap_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_resp(c, "BAD", fmt, ap);
    va_end(ap);
}

void imap_no_store(imap_client *c, int rc, const char *what)
{
    /* the text of a tagged response is 7-bit unless the client enabled UTF-8: name a mailbox
     * the way the client names it, in modified UTF-7 */
    mfs_buf name = {0};
    if (!c->utf8 && imap_has_8bit(what, strlen(what))) {
        if (imap_utf7_encode(what, strlen(what), &name) != 0) {
            for (const char *p = what; *p; p++)
                mfs_buf_putc(&name, (unsigned char)*p < 0x80 ? *p : '?');
        }
        what = name.data;
    }
    switch (rc) {
    case -ENOENT:
        imap_no(c, "[NONEXISTENT] %s: no such mailbox", what);
        break;
    case -EEXIST:
        imap_no(c, "[ALREADYEXISTS] %s: mailbox already exists", what);
        break;
    case -EINVAL:
        imap_bad(c, "%s: invalid name or argument", what);
        break;
    case -EPERM:
        imap_no(c, "[CANNOT] %s: not allowed", what);
        break;
    case -ENOTEMPTY:
        imap_no(c, "[HASCHILDREN] %s: mailbox has children", what);
        break;
    case -EFBIG:
        imap_no(c, "[TOOBIG] %s: message too large", what);
        break;
    case -ENAMETOOLONG:
        imap_no(c,
                "[LIMIT] %s: the name of this mailbox or of a child would be longer than %d "
                "bytes: choose a shorter name",
                what, STORE_NAME_MAX);
        break;
    case -ENOSPC:
        imap_no(c, "[OVERQUOTA] %s: disk full", what);
        break;
    case -EROFS:
        imap_no(c, "[CANNOT] %s: store is read-only", what);
        break;
    case -EDQUOT: {
        uint32_t mb, subs;
        store_user_limits(c->srv->st, &mb, &subs);
        imap_no(c, "[LIMIT] %s: would pass the limit of %u mailboxes or %u subscriptions per user",
                what, mb, subs);
        break;
    }
    default:
        imap_no(c, "[SERVERBUG] %s: %s", what, store_strerror(rc));
        break;
    }
    mfs_buf_free(&name);
}

void imap_capabilities(imap_client *c, mfs_buf *b)
{
    mfs_buf_puts(b, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE");
    if (c->state == IMAP_ST_NOAUTH) {
        if (!c->tls && imap_server_has_tls(c->srv)) mfs_buf_puts(b, " STARTTLS");
        if (imap_auth_allowed(c))
            mfs_buf_puts(b, " AUTH=PLAIN");
        else
            mfs_buf_puts(b, " LOGINDISABLED");
        return;
    }
    mfs_buf_puts(
        b,
        " UIDPLUS MOVE NAMESPACE UNSELECT SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED"
        " LIST-STATUS ESEARCH BINARY CHILDREN STATUS=SIZE MULTIAPPEND CATENATE UTF8=ACCEPT"
        " SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT THREAD=ORDEREDSUBJECT"
        " THREAD=REFERENCES WITHIN CONDSTORE QRESYNC NOTIFY OBJECTID SAVEDATE PREVIEW SEARCHRES");
}

/* ---- I/O ---------------------------------------------------------------------------- */

/* The client's address as text, and whether it may log in without TLS (the field auth reads is
 * called loopback: by default only loopback is trusted, see --trusted-net). */
static void set_address(imap_client *c, const struct sockaddr *sa)
{
    c->loopback = imap_net_match(c->srv->trusted, c->srv->ntrusted, sa);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->addr, sizeof(c->addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->addr,
                  sizeof(c->addr));
    else
        strcpy(c->addr, "unknown");
}

static void greet(imap_client *c)
{
    mfs_buf_puts(&c->out, "* OK [CAPABILITY ");
    imap_capabilities(c, &c->out);
    mfs_buf_puts(&c->out, "] mailfs ready\r\n");
}

/* What a command may make the parser hold, by login state (see IMAP_NOAUTH_*). */
static void parser_limits(imap_client *c, bool authed, imap_parser_limits *l)
{
    if (!authed) {
        *l = (imap_parser_limits){.max_line = IMAP_NOAUTH_COMMAND_MAX,
                                  .max_literal = IMAP_NOAUTH_COMMAND_MAX,
                                  .max_append_literal = IMAP_NOAUTH_COMMAND_MAX,
                                  .max_command = IMAP_NOAUTH_COMMAND_MAX,
                                  .max_append_command = IMAP_NOAUTH_COMMAND_MAX,
                                  .max_id_command = IMAP_NOAUTH_ID_MAX,
                                  .max_depth = IMAP_NOAUTH_DEPTH,
                                  .max_args = IMAP_NOAUTH_ARGS};
        return;
    }
    size_t msg = (size_t)store_msg_max(c->srv->st);
    *l = (imap_parser_limits){.max_append_literal = msg,
                              .max_append_command = msg + IMAP_APPEND_SLACK,
                              .max_command = IMAP_COMMAND_MAX};
}

/* Notices a login (or LOGOUT): the client leaves the pre-login count and gets the limits of a
 * logged-in client. */
void imap_client_state_sync(imap_client *c)
{
    if (!c->noauth || c->state == IMAP_ST_NOAUTH) return;
    c->noauth = false;
    c->loop->nnoauth--;
    if (c->state == IMAP_ST_AUTH || c->state == IMAP_ST_SELECTED) {
        imap_parser_limits l;
        parser_limits(c, true, &l);
        imap_parser_set_limits(c->parser, &l);
    }
}

static size_t in_max(const imap_client *c)
{
    return c->noauth ? IMAP_NOAUTH_IN_MAX : IMAP_IN_MAX;
}

size_t imap_client_out_high(const imap_client *c)
{
    return c->noauth ? IMAP_NOAUTH_OUT_HIGH : IMAP_OUT_HIGH;
}

/* Starts TLS on a connection to an implicit-TLS port. Returns 0 or -1. */
static int implicit_tls_start(imap_client *c)
{
    c->ssl = imap_tls_new_ssl(c->srv);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) return -1;
    SSL_set_accept_state(c->ssl);
    c->tls = c->handshaking = true;
    c->handshake_deadline_ms = imap_now_ms() + (int64_t)c->srv->opt.tls_timeout_s * 1000;
    return 0;
}

imap_client *imap_client_new(imap_loop *loop, int fd, const struct sockaddr *sa, bool implicit_tls)
{
    imap_server *srv = loop->srv;
    imap_client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->loop = loop;
    c->fd = fd;
    set_address(c, sa);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    imap_parser_limits lim;
    parser_limits(c, false, &lim);
    c->parser = imap_parser_new(&lim);
    c->last_input_ms = c->connected_ms = imap_now_ms();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(loop->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        imap_parser_free(&c->parser);
        close(fd);
        free(c);
        return NULL;
    }
    c->reading = true;
    c->next = loop->clients;
    if (loop->clients) loop->clients->prev = c;
    loop->clients = c;
    loop->nclients++;
    c->noauth = true;
    loop->nnoauth++;
    if (imap_net_match(srv->proxies, srv->nproxies, sa)) {
        /* the greeting (and TLS) wait for the proxy's header and the client's address */
        c->proxy_wait = true;
        c->proxy_tls = implicit_tls;
        snprintf(c->via, sizeof(c->via), "%s", c->addr);
        return c;
    }
    if (implicit_tls && implicit_tls_start(c) < 0) {
        imap_client_free(c);
        return NULL;
    }
    greet(c);
    log_info("imap", "connection from %s%s", c->addr, implicit_tls ? " (TLS)" : "");
    return c;
}

/* Reads the PROXY protocol v2 header, byte-exact (what follows may be a TLS handshake), then
 * takes the client's address from it and greets. Returns 0, or -1 to close the connection. */
static int proxy_read(imap_client *c)
{
    for (;;) {
        size_t need = 0;
        imap_proxy_info info;
        const char *why = "";
        int rc = imap_proxy_parse(c->in.data ? c->in.data : "", c->in.len, &need, &info, &why);
        if (rc < 0) {
            log_warn("imap", "connection from proxy %s: %s; closing it", c->via, why);
            return -1;
        }
        if (rc == 1) {
            c->in.len = 0;
            c->proxy_wait = false;
            if (!info.local) {
                set_address(c, (const struct sockaddr *)&info.src);
                if (info.ssl) c->loopback = true; /* TLS ended at the proxy */
            }
            imap_server *srv = c->srv;
            unsigned max_addr = (srv->opt.max_clients_per_addr + srv->nloops - 1) / srv->nloops;
            unsigned same = 0;
            for (imap_client *o = c->loop->clients; o; o = o->next)
                if (o != c && !o->proxy_wait && strcmp(o->addr, c->addr) == 0) same++;
            if (same >= max_addr) {
                log_info("imap", "refused %s via proxy %s: %u connections from that address",
                         c->addr, c->via, same);
                if (!c->proxy_tls) mfs_buf_puts(&c->out, "* BYE too many connections\r\n");
                c->close_after_flush = true;
                return 0;
            }
            if (c->proxy_tls && implicit_tls_start(c) < 0) return -1;
            greet(c);
            log_info("imap", "connection from %s via proxy %s%s%s", c->addr, c->via,
                     c->proxy_tls ? " (TLS)" : "", info.ssl ? " (TLS at the proxy)" : "");
            return 0;
        }
        mfs_buf_reserve(&c->in, need);
        ssize_t n = recv(c->fd, c->in.data + c->in.len, need - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

void imap_client_free(imap_client *c)
{
    if (c->reaped) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->loop->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    c->loop->nclients--;
    if (c->noauth) c->loop->nnoauth--;
    c->noauth = false;
    if (c->loop->accept_paused) c->loop->accept_kick = true; /* a descriptor is free */
    if (c->cont_free && c->cont_ctx) c->cont_free(c->cont_ctx);
    imap_auth_forget(c);
    if (c->ssl) {
        if (!c->handshaking) SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    epoll_ctl(c->loop->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    imap_unselect(c);
    imap_notify_clear(c);
    mfs_buf_free(&c->in);
    mfs_buf_free(&c->out);
    mfs_buf_free(&c->resp);
    imap_parser_free(&c->parser);
    /* The struct lives until the loop pass ends: events already fetched for it in this pass
     * (or a kick from another path) must find it marked, not freed. */
    c->dead = c->reaped = true;
    c->cont = NULL;
    c->prev = NULL;
    c->next = c->loop->graveyard;
    c->loop->graveyard = c;
}

void imap_loop_reap(imap_loop *l)
{
    while (l->graveyard) {
        imap_client *c = l->graveyard;
        l->graveyard = c->next;
        free(c);
    }
}

static int tls_error(imap_client *c, int n, const char *what)
{
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return e;
    if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL && log_enabled(LOG_LEVEL_INFO)) {
        char buf[256];
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
        log_info("imap", "TLS %s failed for %s: %s", what, c->addr, buf);
    }
    ERR_clear_error();
    return -1;
}

/* Reads what is there; returns 0, or -1 when the connection is gone. */
static int client_fill(imap_client *c)
{
    c->ssl_read_wants_write = false;
    while (c->in.len < in_max(c)) {
        mfs_buf_reserve(&c->in, 16384);
        size_t room = c->in.cap - c->in.len - 1;
        if (c->ssl) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, c->in.data + c->in.len, (int)room);
            if (n > 0) {
                c->in.len += (size_t)n;
                c->in.data[c->in.len] = '\0';
                c->last_input_ms = imap_now_ms();
                continue;
            }
            int e = tls_error(c, n, "read");
            if (e == SSL_ERROR_WANT_READ) return 0;
            if (e == SSL_ERROR_WANT_WRITE) {
                c->ssl_read_wants_write = true;
                return 0;
            }
            return -1;
        }
        ssize_t n = read(c->fd, c->in.data + c->in.len, room);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            c->last_input_ms = imap_now_ms();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    return 0;
}

/* Sends what it can from OUT, from *OFF on (advanced past what was sent): 0 when the socket
 * is full or OUT is sent, -1 when the connection is gone. */
static int send_out(imap_client *c, size_t *off)
{
    while (*off < c->out.len) {
        size_t left = c->out.len - *off, chunk = left > (1u << 20) ? (1u << 20) : left;
        const char *p = c->out.data + *off;
        if (c->ssl) {
            ERR_clear_error();
            int n = SSL_write(c->ssl, p, (int)chunk);
            if (n > 0) {
                *off += (size_t)n;
                continue;
            }
            int e = tls_error(c, n, "write");
            if (e == SSL_ERROR_WANT_WRITE) return 0;
            if (e == SSL_ERROR_WANT_READ) {
                c->ssl_write_wants_read = true;
                return 0;
            }
            return -1;
        }
        ssize_t n = send(c->fd, p, chunk, MSG_NOSIGNAL);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    return 0;
}

/* Writes what it can; returns 0, or -1 when the connection is gone. What was sent leaves the
 * buffer once at the end: TLS sends a 16 KiB record per call, and moving the rest of a
 * megabyte forward after each one cost more than the FETCH that made it. */
static int flush_out(imap_client *c)
{
    c->ssl_write_wants_read = false;
    size_t off = 0;
    int rc = send_out(c, &off);
    mfs_buf_consume(&c->out, off);
    if (rc < 0 || c->out.len > 0) return rc;
    if (c->out.cap > (4u << 20)) { /* give back a big FETCH's buffer */
        mfs_buf_free(&c->out);
    }
    return 0;
}

/* Sends what it can; keeps the clock of output that waits for a client that does not read. */
static int client_flush(imap_client *c)
{
    size_t before = c->out.len;
    int64_t now = imap_now_ms();
    if (!c->out_waiting && before > 0) c->out_waiting = true, c->out_progress_ms = now;
    int rc = flush_out(c);
    if (c->out.len < before) c->out_progress_ms = now;
    if (c->out.len == 0) c->out_waiting = false;
    return rc;
}

static void rearm(imap_client *c, bool hs_wants_write)
{
    bool want_in = c->in.len < in_max(c) || c->ssl_write_wants_read || c->handshaking;
    bool want_out = c->out.len > 0 || c->ssl_read_wants_write || hs_wants_write;
    if (want_in == c->reading && want_out == c->want_out) return;
    struct epoll_event ev = {.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->reading = want_in;
    c->want_out = want_out;
}

void imap_client_starttls(imap_client *c)
{
    c->starttls_after_flush = true;
}

static void start_tls_now(imap_client *c)
{
    c->starttls_after_flush = false;
    c->ssl = imap_tls_new_ssl(c->srv);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        c->dead = true;
        return;
    }
    SSL_set_accept_state(c->ssl);
    c->tls = c->handshaking = true;
    c->handshake_deadline_ms = imap_now_ms() + (int64_t)c->srv->opt.tls_timeout_s * 1000;
    c->in.len = 0;
}

void imap_client_kick(imap_client *c)
{
    if (c->reaped) return;
    imap_client_state_sync(c);
    if (c->proxy_wait && !c->dead && proxy_read(c) < 0) c->dead = true;
    if (c->proxy_wait && !c->dead) {
        rearm(c, false);
        return;
    }
    bool hs_wants_write = false;
    int round;
    for (round = 0; round < 32 && !c->dead; round++) {
        if (c->handshaking) {
            ERR_clear_error();
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->handshaking = false;
            } else {
                int e = tls_error(c, r, "handshake");
                if (e == SSL_ERROR_WANT_WRITE) hs_wants_write = true;
                if (e < 0) c->dead = true;
                break;
            }
        }
        size_t in0 = c->in.len;
        if (!c->close_after_flush && client_fill(c) < 0) {
            c->dead = true;
            break;
        }
        size_t in1 = c->in.len, out1 = c->out.len;
        imap_client_process(c);
        bool moved = c->in.len != in1 || c->out.len != out1 || in1 != in0;
        size_t out2 = c->out.len;
        if (client_flush(c) < 0) {
            c->dead = true;
            break;
        }
        moved = moved || c->out.len != out2;
        if (c->out.len == 0 && c->close_after_flush) {
            c->dead = true;
            break;
        }
        if (c->out.len == 0 && c->starttls_after_flush) {
            start_tls_now(c);
            continue;
        }
        /* one step of a long command per loop pass, the others go next. The next step waits
         * for a writable socket, so the write-timeout clock runs even when the step's output
         * all fitted: a client that stops reading just then is still dropped */
        if (c->cont) {
            if (!c->out_waiting) c->out_waiting = true, c->out_progress_ms = imap_now_ms();
            break;
        }
        if (!moved) break;
    }
    /* A client is dropped for taking nothing for --write-timeout (here and in
     * imap_client_timers), never for the size of what waits alone: commands pause at
     * IMAP_OUT_HIGH and FETCH streams its literals, so a slow reader that makes progress holds
     * little and keeps its connection. IMAP_OUT_MAX is the safety limit for output made
     * without pausing (pushes): past it, the same clock is checked at every wake-up. */
    if (c->out.len > IMAP_OUT_MAX && !c->dead &&
        imap_now_ms() - c->out_progress_ms >= (int64_t)c->srv->opt.write_timeout_s * 1000) {
        log_info("imap", "%s took no output for %u s with %zu MiB waiting; disconnecting", c->addr,
                 c->srv->opt.write_timeout_s, c->out.len >> 20);
        c->dead = true;
    }
    if (c->dead) {
        imap_client_free(c);
        return;
    }
    /* idle sessions keep no big buffers: thousands of them sit in IDLE */
    if (c->in.len == 0 && c->in.cap > 4096) mfs_buf_free(&c->in);
    if (c->out.len == 0 && c->out.cap > 4096) mfs_buf_free(&c->out);
    /* a command with steps left: a writable socket wakes us at once, after the others */
    if (c->cont && c->out.len < IMAP_OUT_HIGH) hs_wants_write = true;
    if (round == 32)
        hs_wants_write = true; /* more to do: a writable socket brings us back at once */
    rearm(c, hs_wants_write);
}

void imap_client_event(imap_client *c, uint32_t events)
{
    if (c->reaped) return; /* closed earlier in this loop pass */
    if (events & (EPOLLERR | EPOLLHUP)) {
        if (!(events & EPOLLIN)) {
            imap_client_free(c);
            return;
        }
    }
    imap_client_kick(c);
}

void imap_client_bye(imap_client *c, const char *text)
{
    mfs_buf_printf(&c->out, "* BYE %s\r\n", text);
    c->close_after_flush = true;
}

void imap_client_drop(imap_client *c, const char *text)
{
    if (c->reaped) return;
    if (!c->handshaking && !c->proxy_wait) {
        mfs_buf_printf(&c->out, "* BYE %s\r\n", text);
        c->close_after_flush = true;
        imap_client_kick(c); /* sends what the socket takes; frees C once it is out */
    }
    if (!c->reaped) imap_client_free(c);
}

void imap_client_timers(imap_client *c, int64_t now, int64_t *next)
{
    if (c->noauth && c->wait != IMAP_WAIT_AUTHING) {
        /* a connection that does not log in soon gives its slot back (a password check in
         * flight finishes first) */
        int64_t deadline = c->connected_ms + (int64_t)c->srv->opt.login_timeout_s * 1000;
        if (now >= deadline) {
            log_info("imap", "%s did not log in within %u s; disconnecting", c->addr,
                     c->srv->opt.login_timeout_s);
            char bye[96];
            snprintf(bye, sizeof(bye), "no login within %u seconds; disconnecting",
                     c->srv->opt.login_timeout_s);
            imap_client_drop(c, bye);
            return;
        }
        if (deadline < *next) *next = deadline;
    }
    if (c->handshaking) {
        /* a client that trickles its handshake must not hold a connection for long */
        if (now >= c->handshake_deadline_ms) {
            log_info("imap", "%s did not finish its TLS handshake in %u s; disconnecting", c->addr,
                     c->srv->opt.tls_timeout_s);
            c->dead = true;
            imap_client_kick(c);
            return;
        }
        if (c->handshake_deadline_ms < *next) *next = c->handshake_deadline_ms;
        return;
    }
    if (c->out_waiting) {
        /* answers pile up (capped by the output limit) and the client takes none of them */
        int64_t limit = c->out_progress_ms + (int64_t)c->srv->opt.write_timeout_s * 1000;
        if (now >= limit) {
            log_info("imap", "%s took no output for %u s; disconnecting", c->addr,
                     c->srv->opt.write_timeout_s);
            c->dead = true;
            imap_client_kick(c);
            return;
        }
        if (limit < *next) *next = limit;
    }
    if (c->wait == IMAP_WAIT_AUTHING) return;
    if (c->wait == IMAP_WAIT_DELAY) {
        if (now >= c->delay_until_ms) {
            c->wait = IMAP_WAIT_NONE;
            imap_command_finish(c);
            imap_client_kick(c);
            return;
        }
        if (c->delay_until_ms < *next) *next = c->delay_until_ms;
        return;
    }
    if (c->wait == IMAP_WAIT_IDLE) {
        if (now >= c->keepalive_ms) {
            mfs_buf_puts(&c->out, "* OK Still here\r\n");
            c->keepalive_ms = now + KEEPALIVE_MS(c);
            imap_client_kick(c);
            return;
        }
        if (c->keepalive_ms < *next) *next = c->keepalive_ms;
        return;
    }
    int64_t limit = c->state == IMAP_ST_NOAUTH ? IMAP_AUTOLOGOUT_MS : IMAP_IDLE_LIMIT_MS;
    if (now - c->last_input_ms > limit && !c->cont) {
        imap_client_bye(c, "autologout; idle for too long");
        imap_client_kick(c);
        return;
    }
}

/* Called by IDLE: the keepalive clock starts now. */
void imap_client_idle_start(imap_client *c)
{
    c->wait = IMAP_WAIT_IDLE;
    c->keepalive_ms = imap_now_ms() + KEEPALIVE_MS(c);
}
