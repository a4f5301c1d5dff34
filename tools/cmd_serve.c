/* cmd_serve.c: `mailfs serve`: the IMAP server (and optionally mounts) in the foreground */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "fs/fs.h"
#include "imap/imap_proxy.h"
#include "imap/imap_server.h"
#include "store/log.h"
#include "tools/cli.h"
#include "tools/privdrop.h"
#include "tools/sandbox.h"

#define MAX_LISTEN 32
#define MAX_MOUNTS 16
#define MAX_NETS 32

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: mailfs serve [--imap ADDR:PORT]... [--imaps ADDR:PORT]...\n"
            "                    [--tls-cert FILE --tls-key FILE] [--mount USER:DIR]...\n"
            "                    [--loops N] [--idle-keepalive SECONDS] [--tls-timeout SECONDS]\n"
            "                    [--write-timeout SECONDS] [--user NAME] [--verbose]\n"
            "                    [--max-clients N] [--login-timeout SECONDS]\n"
            "                    [--trusted-net CIDR]... [--proxy-from CIDR]...\n"
            "                    [--max-mailboxes N] [--max-subscriptions N]\n\n"
            "Runs the IMAP server in the foreground until SIGTERM (or Ctrl-C); SIGHUP reloads\n"
            "the TLS certificate without dropping connections.\n\n"
            "options:\n"
            "  --imap ADDR:PORT   plain IMAP with STARTTLS (repeatable; [::1]:143 for IPv6)\n"
            "  --imaps ADDR:PORT  IMAP over TLS (repeatable)\n"
            "  --tls-cert FILE    certificate chain (PEM); default STORE/tls/cert.pem\n"
            "  --tls-key FILE     private key (PEM); default STORE/tls/key.pem\n"
            "  --mount USER:DIR   also show USER's mail on DIR (repeatable)\n"
            "  --idle-keepalive SECONDS  \"* OK Still here\" interval in IDLE (default 150)\n"
            "  --tls-timeout SECONDS  drop a client whose TLS handshake takes longer (default 30)\n"
            "  --write-timeout SECONDS  drop a client that takes none of its pending answers\n"
            "                     for that long (default 120)\n"
            "  --loops N          event loops (threads); default one per CPU\n"
            "  --max-mailboxes N  mailboxes a user may have, INBOX and parents included\n"
            "                     (default %u, at least %u); CREATE, RENAME, the mount's\n"
            "                     mkdir past it get NO [LIMIT] / EDQUOT\n"
            "  --max-subscriptions N  names a user may subscribe to (default %u);\n"
            "                     SUBSCRIBE past it gets NO [LIMIT]; the other commands\n"
            "                     (mount, mailbox, import, deliver) use the defaults\n"
            "  --user NAME        started as root, run as this account (default 'mailfs');\n"
            "                     'root' keeps root (not recommended)\n"
            "  --verbose          log connections and logins\n"
            "  --max-clients N    connections at a time (default 10000); at most half of\n"
            "                     them may be waiting for a login\n"
            "  --login-timeout SECONDS  drop a client not logged in that long after it\n"
            "                     connected (default 60)\n"
            "  --trusted-net CIDR  clients from here may log in without TLS (repeatable;\n"
            "                     default 127.0.0.0/8 and ::1; 'none': TLS everywhere)\n"
            "  --proxy-from CIDR  connections from here come from a proxy and start with a\n"
            "                     PROXY protocol v2 header; the client address in it is used\n"
            "                     for limits, logs, --trusted-net and the login delay\n"
            "                     (repeatable; a client that reached the proxy over TLS counts\n"
            "                     as TLS)\n"
            "  --help             this text\n\n"
            "Without --imap/--imaps it listens on 127.0.0.1 and ::1, ports 143 and 993 when\n"
            "run as root, 1143 and 1993 otherwise. Logins need TLS except from a trusted\n"
            "network (--trusted-net).\n\n"
            "Bounds: 100 connections per client address; before login a command may hold\n"
            "8 KiB (literals included; a bigger LITERAL+ ends the connection) and the\n"
            "connection 16 KiB of input and 64 KiB of answers; after login 1 MiB per command,\n"
            "an APPEND the store's message limit (64 MiB) plus 1 MiB for all its messages.\n"
            "The open-file limit is raised to what --max-clients needs, up to the hard limit;\n"
            "when descriptors run out new connections wait (logged once). See docs/imap.md.\n\n"
            "Started as root, it binds its ports, reads the TLS key and makes the mounts,\n"
            "then becomes the --user account for good and only then opens the store, which\n"
            "must belong to that account (chown -R NAME: STORE) and be reachable by it. A\n"
            "child left as root unmounts the mounts when the server ends. SIGHUP then reads\n"
            "the certificate and key as that account. See docs/imap.md.\n",
            STORE_MAILBOXES_MAX_DEFAULT, STORE_MAILBOXES_MIN, STORE_SUBSCRIPTIONS_MAX_DEFAULT);
}

/* Parses a whole number from MIN to MAX for option OPT; 0 or EX_USAGE after saying why. */
static int number_arg(const char *opt, const char *v, long min, long max, const char *unit,
                      unsigned *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        cli_error("serve: bad %s '%s': give %s from %ld to %ld", opt, v, unit, min, max);
        return EX_USAGE;
    }
    *out = (unsigned)n;
    return 0;
}

/* Connection bounds and networks: --max-clients, --login-timeout, --trusted-net,
 * --proxy-from. Returns 1 if ARGV[*I] is one of them (taking its value), 0 if not, or -EX_USAGE
 * after an error. */
static int conn_option(int argc, char **argv, int *i, imap_server_options *opt,
                       const char **trusted, size_t *ntrusted, bool *trust_none,
                       const char **proxies, size_t *nproxies)
{
    const char *a = argv[*i];
    bool max = strcmp(a, "--max-clients") == 0, lt = strcmp(a, "--login-timeout") == 0;
    bool tn = strcmp(a, "--trusted-net") == 0, pf = strcmp(a, "--proxy-from") == 0;
    if (!max && !lt && !tn && !pf) return 0;
    if (*i + 1 >= argc) {
        cli_error("serve: '%s' needs a value: see 'mailfs serve --help'", a);
        return -EX_USAGE;
    }
    const char *v = argv[++*i];
    if (max) return number_arg(a, v, 1, 1000000, "a number", &opt->max_clients) ? -EX_USAGE : 1;
    if (lt) return number_arg(a, v, 1, 3600, "seconds", &opt->login_timeout_s) ? -EX_USAGE : 1;
    if (tn && strcmp(v, "none") == 0) {
        *trust_none = true;
        return 1;
    }
    imap_net net;
    if (imap_net_parse(v, &net) < 0) {
        cli_error("serve: bad %s '%s': give an address or ADDRESS/BITS, such as 10.0.0.0/8, "
                  "192.0.2.7 or ::1%s",
                  a, v, tn ? ", or 'none'" : "");
        return -EX_USAGE;
    }
    size_t *n = tn ? ntrusted : nproxies;
    if (*n == MAX_NETS) {
        cli_error("serve: at most %d %s options", MAX_NETS, a);
        return -EX_USAGE;
    }
    (tn ? trusted : proxies)[(*n)++] = v;
    return 1;
}

/* Raises the soft open-file limit to what the server needs, up to the hard limit, or says
 * that it is too low and what to do. */
static void files_limit(imap_server *srv, size_t nmounts)
{
    rlim_t need = (rlim_t)imap_server_files_needed(srv) + (rlim_t)nmounts * 8;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = was;
    if (rl.rlim_cur >= need) return;
    unsigned max = imap_server_get_options(srv)->max_clients;
    cli_error("serve: warning: the open-file limit is %llu (hard limit %llu), too low for "
              "%u clients (--max-clients), which need about %llu: raise it (ulimit -n %llu, or "
              "LimitNOFILE=%llu for systemd) or lower --max-clients; until then new clients "
              "wait while it is reached",
              (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, max,
              (unsigned long long)need, (unsigned long long)need, (unsigned long long)need);
}

int cmd_serve(cli *c, int argc, char **argv)
{
    const char *imap[MAX_LISTEN], *imaps[MAX_LISTEN], *mounts[MAX_MOUNTS];
    size_t nimap = 0, nimaps = 0, nmounts = 0;
    imap_server_options opt = {0};
    const char *run_as = NULL;
    const char *trusted[MAX_NETS], *proxies[MAX_NETS];
    size_t ntrusted = 0, nproxies = 0;
    bool trust_none = false;
    uint32_t max_mailboxes = STORE_MAILBOXES_MAX_DEFAULT;
    uint32_t max_subscriptions = STORE_SUBSCRIPTIONS_MAX_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        int k =
            conn_option(argc, argv, &i, &opt, trusted, &ntrusted, &trust_none, proxies, &nproxies);
        if (k < 0) return -k;
        if (k > 0) continue;
        if (cli_is_help(a)) {
            serve_usage(stdout);
            return 0;
        } else if (strcmp(a, "--verbose") == 0) {
            log_setup(LOG_TO_STDERR, LOG_LEVEL_INFO);
        } else if (strcmp(a, "--loops") == 0 && has_val) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 16) {
                cli_error("serve: bad --loops '%s': give a number from 1 to 16", argv[i]);
                return EX_USAGE;
            }
            opt.loops = (unsigned)v;
        } else if ((strcmp(a, "--max-mailboxes") == 0 || strcmp(a, "--max-subscriptions") == 0) &&
                   has_val) {
            bool mb = a[6] == 'm';
            long min = mb ? STORE_MAILBOXES_MIN : 0;
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || !*argv[i] || v < min || v > 10000000) {
                cli_error("serve: bad %s '%s': give a number from %ld to 10000000", a, argv[i],
                          min);
                return EX_USAGE;
            }
            if (mb)
                max_mailboxes = (uint32_t)v;
            else
                max_subscriptions = (uint32_t)v;
        } else if (strcmp(a, "--idle-keepalive") == 0 && has_val) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 3600) {
                cli_error("serve: bad --idle-keepalive '%s': give seconds from 1 to 3600", argv[i]);
                return EX_USAGE;
            }
            opt.keepalive_s = (unsigned)v;
        } else if (strcmp(a, "--tls-timeout") == 0 && has_val) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 3600) {
                cli_error("serve: bad --tls-timeout '%s': give seconds from 1 to 3600", argv[i]);
                return EX_USAGE;
            }
            opt.tls_timeout_s = (unsigned)v;
        } else if (strcmp(a, "--write-timeout") == 0 && has_val) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 3600) {
                cli_error("serve: bad --write-timeout '%s': give seconds from 1 to 3600", argv[i]);
                return EX_USAGE;
            }
            opt.write_timeout_s = (unsigned)v;
        } else if (!has_val &&
                   (strcmp(a, "--imap") == 0 || strcmp(a, "--imaps") == 0 ||
                    strcmp(a, "--tls-cert") == 0 || strcmp(a, "--tls-key") == 0 ||
                    strcmp(a, "--mount") == 0 || strcmp(a, "--user") == 0 ||
                    strcmp(a, "--max-mailboxes") == 0 || strcmp(a, "--max-subscriptions") == 0)) {
            cli_error("serve: '%s' needs a value: see 'mailfs serve --help'", a);
            return EX_USAGE;
        } else if (strcmp(a, "--imap") == 0 || strcmp(a, "--imaps") == 0) {
            bool tls = a[6] == 's';
            if ((tls ? nimaps : nimap) == MAX_LISTEN) {
                cli_error("serve: at most %d %s listeners", MAX_LISTEN, a);
                return EX_USAGE;
            }
            if (tls)
                imaps[nimaps++] = argv[++i];
            else
                imap[nimap++] = argv[++i];
        } else if (strcmp(a, "--tls-cert") == 0) {
            opt.cert_file = argv[++i];
        } else if (strcmp(a, "--tls-key") == 0) {
            opt.key_file = argv[++i];
        } else if (strcmp(a, "--user") == 0) {
            run_as = argv[++i];
        } else if (strcmp(a, "--mount") == 0) {
            if (nmounts == MAX_MOUNTS) {
                cli_error("serve: at most %d mounts", MAX_MOUNTS);
                return EX_USAGE;
            }
            mounts[nmounts++] = argv[++i];
            const char *m = mounts[nmounts - 1], *colon = strchr(m, ':');
            if (!colon) {
                cli_error("serve: bad --mount '%s': use USER:DIR", m);
                return EX_USAGE;
            }
            /* the name reaches FUSE's mount options (fsname=mailfs:USER): only a valid one */
            char user[STORE_USER_MAX + 1];
            size_t ul = (size_t)(colon - m);
            snprintf(user, sizeof(user), "%.*s", (int)(ul < sizeof(user) ? ul : sizeof(user) - 1),
                     m);
            if (ul > STORE_USER_MAX || !store_user_name_valid(user)) {
                cli_error("serve: bad --mount '%s': '%.*s' is not a valid user name (up to %d "
                          "letters, digits and . _ @ + -, not starting with '.'): use USER:DIR",
                          m, (int)ul, m, STORE_USER_MAX);
                return EX_USAGE;
            }
        } else {
            cli_error("serve: unknown argument '%s': see 'mailfs serve --help'", a);
            return EX_USAGE;
        }
    }
    if (!opt.cert_file != !opt.key_file) {
        cli_error("serve: --tls-cert and --tls-key go together");
        return EX_USAGE;
    }
    if (trust_none && ntrusted) {
        cli_error("serve: --trusted-net none excludes other --trusted-net options");
        return EX_USAGE;
    }
    if (trust_none || ntrusted) {
        opt.trusted_nets = trusted;
        opt.ntrusted_nets = ntrusted;
    }
    opt.proxy_nets = proxies;
    opt.nproxy_nets = nproxies;
    privdrop_target as;
    int ex = privdrop_resolve(run_as, &as);
    if (ex == 0 && as.drop) ex = privdrop_check_store(&as, c->store_dir);
    if (ex) return ex;
    bool defaults = nimap == 0 && nimaps == 0;
    static char defs[4][64];
    if (defaults) {
        int p = geteuid() == 0 ? 143 : 1143, ps = geteuid() == 0 ? 993 : 1993;
        snprintf(defs[0], sizeof(defs[0]), "127.0.0.1:%d", p);
        snprintf(defs[1], sizeof(defs[1]), "[::1]:%d", p);
        snprintf(defs[2], sizeof(defs[2]), "127.0.0.1:%d", ps);
        snprintf(defs[3], sizeof(defs[3]), "[::1]:%d", ps);
        imap[nimap++] = defs[0];
        imap[nimap++] = defs[1];
        imaps[nimaps++] = defs[2];
        imaps[nimaps++] = defs[3];
        opt.tls_optional = true; /* without a certificate, default --imaps are skipped */
    }

    /* Signals are read by the server's signalfd: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Started as root, the store is opened only after the drop, so that what it creates belongs
     * to the account; otherwise first, as before, so that a missing store is named first. */
    store *s = NULL;
    privdrop_guard guard = {0};
    if (!as.drop)
        ex = cli_open_store(c, 0, &s);
    else if (nmounts)
        ex = privdrop_guard_start(&guard); /* before any thread */
    /* not root: unmounting takes fusermount3, which no_new_privs (sandbox.c) keeps from
     * working in the server itself */
    if (ex == 0 && !as.drop && nmounts && geteuid() != 0) ex = privdrop_guard_start(&guard);
    if (ex) return ex;
    char err[1024] = "";
    imap_server *srv = NULL;
    fs_mount *fsm[MAX_MOUNTS] = {0};
    int rc = imap_server_new(c->store_dir, &opt, &srv, err, sizeof(err));
    if (rc < 0) {
        cli_error("serve: %s", err);
        ex = cli_exit_code(rc);
        if (ex == 0) ex = EX_CONFIG;
        goto out;
    }
    if (!imap_server_has_tls(srv))
        cli_error("serve: no TLS certificate ('mailfs init' makes one): STARTTLS and IMAPS "
                  "are off, logins work on loopback only");
    for (size_t i = 0; i < nimap + nimaps; i++) {
        bool tls = i >= nimap;
        const char *spec = tls ? imaps[i - nimap] : imap[i];
        if (tls && defaults && !imap_server_has_tls(srv)) continue;
        rc = imap_server_listen(srv, spec, tls, err, sizeof(err));
        if (rc < 0) {
            /* a default IPv6 address may be missing on this host: skip it quietly */
            if (defaults && strchr(spec, '[') && rc == -EADDRNOTAVAIL) continue;
            cli_error("serve: %s", err);
            ex = rc == -EADDRINUSE || rc == -EACCES ? EX_UNAVAILABLE : EX_USAGE;
            goto out;
        }
        fprintf(stderr, "mailfs: serving %s on %s\n", tls ? "IMAPS" : "IMAP", spec);
    }
    files_limit(srv, nmounts);
    /* the kernel mounts need root; serving them needs the store */
    for (size_t i = 0; i < nmounts; i++) {
        char user[256];
        const char *colon = strchr(mounts[i], ':');
        snprintf(user, sizeof(user), "%.*s", (int)(colon - mounts[i]), mounts[i]);
        fs_options fo = {0};
        rc = fs_mount_begin(user, colon + 1, &fo, &fsm[i], err, sizeof(err));
        if (rc == 0 && guard.pid > 0 && privdrop_guard_add(&guard, fs_mount_point(fsm[i])) < 0) {
            snprintf(err, sizeof(err), "the unmount guard has gone");
            rc = -EIO;
        }
        if (rc < 0) {
            cli_error("serve: cannot mount '%s' on '%s': %s", user, colon + 1, err);
            ex = cli_exit_code(rc);
            if (ex == 0) ex = EX_UNAVAILABLE;
            goto out;
        }
    }
    if (as.drop) {
        if ((ex = privdrop_drop(&as)) != 0) goto out;
        fprintf(stderr, "mailfs: running as user '%s'\n", as.name);
        if (access(c->store_dir, R_OK | W_OK | X_OK) != 0) {
            cli_error("serve: user '%s' cannot reach store '%s' (%s): move the store where it "
                      "can, e.g. /var/lib/mailfs, or let it through every directory above",
                      as.name, c->store_dir, strerror(errno));
            ex = EX_NOPERM;
            goto out;
        }
        if ((ex = cli_open_store(c, 0, &s)) != 0) goto out;
        /* SIGHUP reads the files as this user from now on: say so now if it cannot */
        if (imap_server_has_tls(srv) && imap_server_reload_tls(srv, err, sizeof(err)) < 0)
            cli_error("serve: warning: as user '%s', %s; SIGHUP keeps the current certificate "
                      "until it can read them",
                      as.name, err);
    }
    /* the store applies them to every write through this handle: IMAP and the mounts */
    store_set_user_limits(s, max_mailboxes, max_subscriptions);
    rc = imap_server_set_store(srv, s, err, sizeof(err));
    if (rc < 0) {
        cli_error("serve: %s", err);
        ex = EX_OSERR;
        goto out;
    }
    for (size_t i = 0; i < nmounts; i++) {
        const char *colon = strchr(mounts[i], ':');
        rc = fs_mount_serve(fsm[i], s, err, sizeof(err));
        if (rc < 0) {
            cli_error("serve: cannot mount '%.*s' on '%s': %s", (int)(colon - mounts[i]), mounts[i],
                      colon + 1, err);
            ex = cli_exit_code(rc);
            if (ex == 0) ex = EX_UNAVAILABLE;
            goto out;
        }
        fprintf(stderr, "mailfs: mounted %.*s on %s\n", (int)(colon - mounts[i]), mounts[i],
                colon + 1);
    }
    fflush(stderr);
    if ((ex = sandbox_enter()) != 0) goto out;
    rc = imap_server_run(srv);
    if (rc < 0) {
        cli_error("serve: event loop failed: %s", strerror(-rc));
        ex = EX_SOFTWARE;
    }
out:
    /* after the drop only the guard can unmount; the mounts' threads end when it has */
    privdrop_guard_end(&guard);
    for (size_t i = 0; i < nmounts; i++)
        if (fsm[i]) fs_mount_stop(&fsm[i]);
    imap_server_free(&srv);
    store_close(&s);
    return ex;
}
