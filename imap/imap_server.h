/* imap_server.h: the IMAP server: listeners, TLS, the event loop and the sessions */
#ifndef MAILFS_IMAP_SERVER_H
#define MAILFS_IMAP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

typedef struct imap_server imap_server;

typedef struct imap_server_options {
    const char *cert_file; /* PEM certificate chain; NULL: <store>/tls/cert.pem */
    const char *key_file;  /* PEM private key; NULL: <store>/tls/key.pem */
    /* If the default certificate files are missing, run without TLS (no STARTTLS, no --imaps)
     * instead of failing. Explicitly named files must always load. */
    bool tls_optional;
    unsigned max_clients;          /* 0: 10000 */
    unsigned max_clients_per_addr; /* 0: 100 */
    unsigned keepalive_s;          /* "* OK Still here" interval in IDLE; 0: 150 s */
    unsigned tls_timeout_s;        /* a TLS handshake not done by then is dropped; 0: 30 s */
    unsigned write_timeout_s;      /* a client taking no output that long is dropped; 0: 120 s */
    unsigned loops;                /* event loops (threads); 0: one per online CPU, at most 16 */
    /* No budget of failed logins and no held answers: for the in-process fuzzer, whose every
     * input may fail logins from one address. mailfs serve never sets it. */
    bool no_login_penalties;
    /* Connections not logged in yet: dropped after login_timeout_s (0: 60 s); at most
     * max_noauth_clients of them at a time (0: half of max_clients), and when that many are
     * waiting the oldest of them (not in a password check) is dropped for a new one. */
    unsigned login_timeout_s;
    unsigned max_noauth_clients;
    /* Networks (CIDR, "10.0.0.0/8", "::1") whose clients may log in without TLS. NULL: the
     * loopback networks 127.0.0.0/8 and ::1; non-NULL with ntrusted_nets 0: none. */
    const char *const *trusted_nets;
    size_t ntrusted_nets;
    /* Connections from these networks come from a proxy: each must start with a PROXY
     * protocol v2 header, whose client address then counts (limits, logs, trust, login
     * throttle). Connections from anywhere else never may. */
    const char *const *proxy_nets;
    size_t nproxy_nets;
} imap_server_options;

/* Creates a server for the store in STORE_DIR, which need not be open yet: loads the TLS
 * certificate (by default from STORE_DIR/tls) and takes listeners; imap_server_set_store gives
 * it the open store before imap_server_run. The split lets a process started as root bind its
 * ports and read the key, then drop privileges and open the store as the unprivileged user.
 * Starts no thread. On failure returns a negative errno and *err (ERRLEN bytes) says why. */
int imap_server_new(const char *store_dir, const imap_server_options *opt, imap_server **out,
                    char *err, size_t errlen);

/* Gives the server its store S (which must stay open until imap_server_free) and starts the
 * login workers. Call it once, before imap_server_run. On failure *err says why. */
int imap_server_set_store(imap_server *srv, store *s, char *err, size_t errlen);

/* Listens on SPEC, "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (every local address), for plain
 * IMAP with STARTTLS or, with IMPLICIT_TLS, IMAP over TLS. -EADDRINUSE and the like on failure,
 * with *err set. */
int imap_server_listen(imap_server *srv, const char *spec, bool implicit_tls, char *err,
                       size_t errlen);

/* The port a listener got (useful after listening on port 0); 0 if there is no such listener. */
int imap_server_listener_port(imap_server *srv, unsigned index);

/* True if the server has a TLS certificate loaded. */
bool imap_server_has_tls(imap_server *srv);

/* Re-reads the certificate and key (with the privileges the process has now: after a drop
 * from root, the files must be readable by the new user); connections keep the old ones, new
 * ones get the new. On failure the old certificate stays and *err says why. */
int imap_server_reload_tls(imap_server *srv, char *err, size_t errlen);

/* Open files the server may need at once: one per client (max_clients), those it holds
 * itself (listeners and event loops, per loop) and a margin for the store and the auth
 * workers. Out of descriptors it stops accepting until some close (and says so once). */
unsigned imap_server_files_needed(const imap_server *srv);

/* The limits in force after the defaults are applied. */
const imap_server_options *imap_server_get_options(const imap_server *srv);

/* Runs the event loop until SIGTERM or SIGINT; SIGHUP reloads the certificate. The caller must
 * have blocked SIGTERM, SIGINT and SIGHUP in every thread (they are read with a signalfd).
 * Returns 0 after a clean stop; -EINVAL without a store (imap_server_set_store). */
int imap_server_run(imap_server *srv);

/* Asks a running loop to stop (async-signal-safe, callable from any thread). */
void imap_server_stop(imap_server *srv);

/* Closes every connection and listener and frees SRV; sets *srv to NULL. */
void imap_server_free(imap_server **srv);

#endif
