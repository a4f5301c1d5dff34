/* cmd_serve.c: `mailfs serve`: the IMAP server (and optionally mounts) in the foreground */
#include <errno.h>
#include <stddef.h>
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

/* What the options ask for. Lives as long as cmd_serve: the server keeps pointers into it. */
typedef struct serve_args {
    const char *imap[MAX_LISTEN], *imaps[MAX_LISTEN], *mounts[MAX_MOUNTS];
    size_t nimap, nimaps, nmounts;
    imap_server_options opt;
    const char *run_as;
    const char *trusted[MAX_NETS], *proxies[MAX_NETS];
    size_t ntrusted, nproxies;
    bool trust_none;
    unsigned max_mailboxes, max_subscriptions;
    bool defaults;    /* no --imap/--imaps: the default listeners below */
    char defs[4][64]; /* their addresses */
} serve_args;

/* The options that take a value; --help and --verbose are the two that do not. */
enum { OPT_NUMBER, OPT_STRING, OPT_LISTEN, OPT_NET, OPT_MOUNT };
typedef struct serve_option {
    const char *name;
    int kind;
    size_t off;       /* OPT_NUMBER (unsigned) and OPT_STRING (const char *): where in serve_args */
    long min, max;    /* OPT_NUMBER: the allowed range */
    const char *unit; /* OPT_NUMBER: what the number counts, for the error */
} serve_option;

#define NUM(n, field, lo, hi, what)                                                                \
    {                                                                                              \
        .name = n, .kind = OPT_NUMBER, .off = offsetof(serve_args, field), .min = lo, .max = hi,   \
        .unit = what                                                                               \
    }
#define STR(n, field)                                                                              \
    {                                                                                              \
        .name = n, .kind = OPT_STRING, .off = offsetof(serve_args, field)                          \
    }
static const serve_option serve_options[] = {
    {.name = "--imap", .kind = OPT_LISTEN},
    {.name = "--imaps", .kind = OPT_LISTEN},
    STR("--tls-cert", opt.cert_file),
    STR("--tls-key", opt.key_file),
    {.name = "--mount", .kind = OPT_MOUNT},
    STR("--user", run_as),
    NUM("--loops", opt.loops, 1, 16, "a number"),
    NUM("--idle-keepalive", opt.keepalive_s, 1, 3600, "seconds"),
    NUM("--tls-timeout", opt.tls_timeout_s, 1, 3600, "seconds"),
    NUM("--write-timeout", opt.write_timeout_s, 1, 3600, "seconds"),
    NUM("--max-clients", opt.max_clients, 1, 1000000, "a number"),
    NUM("--login-timeout", opt.login_timeout_s, 1, 3600, "seconds"),
    NUM("--max-mailboxes", max_mailboxes, STORE_MAILBOXES_MIN, 10000000, "a number"),
    NUM("--max-subscriptions", max_subscriptions, 0, 10000000, "a number"),
    {.name = "--trusted-net", .kind = OPT_NET},
    {.name = "--proxy-from", .kind = OPT_NET},
};
#undef NUM
#undef STR

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

/* --imap or --imaps V (OPT names which). */
static int listen_arg(serve_args *a, const char *opt, const char *v)
{
    bool tls = opt[6] == 's';
    size_t *n = tls ? &a->nimaps : &a->nimap;
    if (*n == MAX_LISTEN) {
        cli_error("serve: at most %d %s listeners", MAX_LISTEN, opt);
        return EX_USAGE;
    }
    (tls ? a->imaps : a->imap)[(*n)++] = v;
    return 0;
}

/* --trusted-net or --proxy-from V: an address or ADDRESS/BITS ("none" for --trusted-net). */
static int net_arg(serve_args *a, const char *opt, const char *v)
{
    bool tn = strcmp(opt, "--trusted-net") == 0;
    if (tn && strcmp(v, "none") == 0) {
        a->trust_none = true;
        return 0;
    }
    imap_net net;
    if (imap_net_parse(v, &net) < 0) {
        cli_error("serve: bad %s '%s': give an address or ADDRESS/BITS, such as 10.0.0.0/8, "
                  "192.0.2.7 or ::1%s",
                  opt, v, tn ? ", or 'none'" : "");
        return EX_USAGE;
    }
    size_t *n = tn ? &a->ntrusted : &a->nproxies;
    if (*n == MAX_NETS) {
        cli_error("serve: at most %d %s options", MAX_NETS, opt);
        return EX_USAGE;
    }
    (tn ? a->trusted : a->proxies)[(*n)++] = v;
    return 0;
}

/* --mount USER:DIR. */
static int mount_arg(serve_args *a, const char *m)
{
    if (a->nmounts == MAX_MOUNTS) {
        cli_error("serve: at most %d mounts", MAX_MOUNTS);
        return EX_USAGE;
    }
    a->mounts[a->nmounts++] = m;
    const char *colon = strchr(m, ':');
    if (!colon) {
        cli_error("serve: bad --mount '%s': use USER:DIR", m);
        return EX_USAGE;
    }
    /* the name reaches FUSE's mount options (fsname=mailfs:USER): only a valid one */
    char user[STORE_USER_MAX + 1];
    size_t ul = (size_t)(colon - m);
    snprintf(user, sizeof(user), "%.*s", (int)(ul < sizeof(user) ? ul : sizeof(user) - 1), m);
    if (ul > STORE_USER_MAX || !store_user_name_valid(user)) {
        cli_error("serve: bad --mount '%s': '%.*s' is not a valid user name (up to %d "
                  "letters, digits and . _ @ + -, not starting with '.'): use USER:DIR",
                  m, (int)ul, m, STORE_USER_MAX);
        return EX_USAGE;
    }
    return 0;
}

/* Option O with its value V. */
static int option_arg(serve_args *a, const serve_option *o, const char *v)
{
    char *field = (char *)a + o->off;
    switch (o->kind) {
    case OPT_NUMBER:
        return number_arg(o->name, v, o->min, o->max, o->unit, (unsigned *)(void *)field);
    case OPT_STRING:
        *(const char **)(void *)field = v;
        return 0;
    case OPT_LISTEN:
        return listen_arg(a, o->name, v);
    case OPT_NET:
        return net_arg(a, o->name, v);
    default:
        return mount_arg(a, v);
    }
}

/* Checks what the options say together and fills in what they leave to the defaults. */
static int finish_args(serve_args *a)
{
    imap_server_options *opt = &a->opt;
    if (!opt->cert_file != !opt->key_file) {
        cli_error("serve: --tls-cert and --tls-key go together");
        return EX_USAGE;
    }
    if (a->trust_none && a->ntrusted) {
        cli_error("serve: --trusted-net none excludes other --trusted-net options");
        return EX_USAGE;
    }
    if (a->trust_none || a->ntrusted) {
        opt->trusted_nets = a->trusted;
        opt->ntrusted_nets = a->ntrusted;
    }
    opt->proxy_nets = a->proxies;
    opt->nproxy_nets = a->nproxies;
    a->defaults = a->nimap == 0 && a->nimaps == 0;
    if (a->defaults) {
        int p = geteuid() == 0 ? 143 : 1143, ps = geteuid() == 0 ? 993 : 1993;
        snprintf(a->defs[0], sizeof(a->defs[0]), "127.0.0.1:%d", p);
        snprintf(a->defs[1], sizeof(a->defs[1]), "[::1]:%d", p);
        snprintf(a->defs[2], sizeof(a->defs[2]), "127.0.0.1:%d", ps);
        snprintf(a->defs[3], sizeof(a->defs[3]), "[::1]:%d", ps);
        a->imap[a->nimap++] = a->defs[0];
        a->imap[a->nimap++] = a->defs[1];
        a->imaps[a->nimaps++] = a->defs[2];
        a->imaps[a->nimaps++] = a->defs[3];
        opt->tls_optional = true; /* without a certificate, default --imaps are skipped */
    }
    return 0;
}

/* Reads the options into *A: 0, EX_USAGE after saying why, or -1 after printing --help. */
static int parse_args(int argc, char **argv, serve_args *a)
{
    *a = (serve_args){.max_mailboxes = STORE_MAILBOXES_MAX_DEFAULT,
                      .max_subscriptions = STORE_SUBSCRIPTIONS_MAX_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (cli_is_help(name)) {
            serve_usage(stdout);
            return -1;
        }
        if (strcmp(name, "--verbose") == 0) {
            log_setup(LOG_TO_STDERR, LOG_LEVEL_INFO);
            continue;
        }
        const serve_option *o = NULL;
        for (size_t k = 0; !o && k < sizeof serve_options / sizeof *serve_options; k++)
            if (strcmp(name, serve_options[k].name) == 0) o = &serve_options[k];
        if (!o) {
            cli_error("serve: unknown argument '%s': see 'mailfs serve --help'", name);
            return EX_USAGE;
        }
        if (i + 1 >= argc) {
            cli_error("serve: '%s' needs a value: see 'mailfs serve --help'", name);
            return EX_USAGE;
        }
        int ex = option_arg(a, o, argv[++i]);
        if (ex) return ex;
    }
    return finish_args(a);
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

/* What the start-up steps make, for the steps after them and the clean-up. */
typedef struct serve_run {
    cli *c;
    serve_args *a;
    privdrop_target as;
    privdrop_guard guard;
    store *s;
    imap_server *srv;
    fs_mount *fsm[MAX_MOUNTS];
    char err[1024];
} serve_run;

/* Signals are read by the server's signalfd: block them before any thread starts. */
static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Who the server runs as, and what must happen before any thread: started as root, the store
 * is opened only after the drop, so that what it creates belongs to the account; otherwise
 * first, as before, so that a missing store is named first. The unmount guard forks here. */
static int prepare_identity(serve_run *r)
{
    int ex = privdrop_resolve(r->a->run_as, &r->as);
    if (ex == 0 && r->as.drop) ex = privdrop_check_store(&r->as, r->c->store_dir);
    if (ex) return ex;
    block_signals();
    size_t nmounts = r->a->nmounts;
    if (!r->as.drop)
        ex = cli_open_store(r->c, 0, &r->s);
    else if (nmounts)
        ex = privdrop_guard_start(&r->guard); /* before any thread */
    /* not root: unmounting takes fusermount3, which no_new_privs (sandbox.c) keeps from
     * working in the server itself */
    if (ex == 0 && !r->as.drop && nmounts && geteuid() != 0) ex = privdrop_guard_start(&r->guard);
    return ex;
}

/* Makes the server (reading the TLS files) and binds its listeners. */
static int start_server(serve_run *r)
{
    serve_args *a = r->a;
    int rc = imap_server_new(r->c->store_dir, &a->opt, &r->srv, r->err, sizeof(r->err));
    if (rc < 0) {
        cli_error("serve: %s", r->err);
        int ex = cli_exit_code(rc);
        return ex ? ex : EX_CONFIG;
    }
    if (!imap_server_has_tls(r->srv))
        cli_error("serve: no TLS certificate ('mailfs init' makes one): STARTTLS and IMAPS "
                  "are off, logins work on loopback only");
    for (size_t i = 0; i < a->nimap + a->nimaps; i++) {
        bool tls = i >= a->nimap;
        const char *spec = tls ? a->imaps[i - a->nimap] : a->imap[i];
        if (tls && a->defaults && !imap_server_has_tls(r->srv)) continue;
        rc = imap_server_listen(r->srv, spec, tls, r->err, sizeof(r->err));
        if (rc < 0) {
            /* a default IPv6 address may be missing on this host: skip it quietly */
            if (a->defaults && strchr(spec, '[') && rc == -EADDRNOTAVAIL) continue;
            cli_error("serve: %s", r->err);
            return rc == -EADDRINUSE || rc == -EACCES ? EX_UNAVAILABLE : EX_USAGE;
        }
        fprintf(stderr, "mailfs: serving %s on %s\n", tls ? "IMAPS" : "IMAP", spec);
    }
    files_limit(r->srv, a->nmounts);
    return 0;
}

/* Makes the kernel mounts (they need root; serving them needs the store). */
static int begin_mounts(serve_run *r)
{
    for (size_t i = 0; i < r->a->nmounts; i++) {
        const char *m = r->a->mounts[i], *colon = strchr(m, ':');
        char user[256];
        snprintf(user, sizeof(user), "%.*s", (int)(colon - m), m);
        fs_options fo = {0};
        int rc = fs_mount_begin(user, colon + 1, &fo, &r->fsm[i], r->err, sizeof(r->err));
        if (rc == 0 && r->guard.pid > 0 &&
            privdrop_guard_add(&r->guard, fs_mount_point(r->fsm[i])) < 0) {
            snprintf(r->err, sizeof(r->err), "the unmount guard has gone");
            rc = -EIO;
        }
        if (rc < 0) {
            cli_error("serve: cannot mount '%s' on '%s': %s", user, colon + 1, r->err);
            int ex = cli_exit_code(rc);
            return ex ? ex : EX_UNAVAILABLE;
        }
    }
    return 0;
}

/* Started as root: becomes the --user account for good, then opens the store as it. */
static int drop_privileges(serve_run *r)
{
    if (!r->as.drop) return 0;
    int ex = privdrop_drop(&r->as);
    if (ex) return ex;
    const char *name = r->as.name, *dir = r->c->store_dir;
    fprintf(stderr, "mailfs: running as user '%s'\n", name);
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        cli_error("serve: user '%s' cannot reach store '%s' (%s): move the store where it "
                  "can, e.g. /var/lib/mailfs, or let it through every directory above",
                  name, dir, strerror(errno));
        return EX_NOPERM;
    }
    if ((ex = cli_open_store(r->c, 0, &r->s)) != 0) return ex;
    /* SIGHUP reads the files as this user from now on: say so now if it cannot */
    if (imap_server_has_tls(r->srv) && imap_server_reload_tls(r->srv, r->err, sizeof(r->err)) < 0)
        cli_error("serve: warning: as user '%s', %s; SIGHUP keeps the current certificate "
                  "until it can read them",
                  name, r->err);
    return 0;
}

/* Hands the store to the server and the mounts. */
static int attach_store(serve_run *r)
{
    /* the store applies them to every write through this handle: IMAP and the mounts */
    store_set_user_limits(r->s, r->a->max_mailboxes, r->a->max_subscriptions);
    int rc = imap_server_set_store(r->srv, r->s, r->err, sizeof(r->err));
    if (rc < 0) {
        cli_error("serve: %s", r->err);
        return EX_OSERR;
    }
    for (size_t i = 0; i < r->a->nmounts; i++) {
        const char *m = r->a->mounts[i], *colon = strchr(m, ':');
        rc = fs_mount_serve(r->fsm[i], r->s, r->err, sizeof(r->err));
        if (rc < 0) {
            cli_error("serve: cannot mount '%.*s' on '%s': %s", (int)(colon - m), m, colon + 1,
                      r->err);
            int ex = cli_exit_code(rc);
            return ex ? ex : EX_UNAVAILABLE;
        }
        fprintf(stderr, "mailfs: mounted %.*s on %s\n", (int)(colon - m), m, colon + 1);
    }
    return 0;
}

/* Enters the sandbox and runs the event loops until a signal ends them. */
static int run_server(serve_run *r)
{
    fflush(stderr);
    int ex = sandbox_enter();
    if (ex) return ex;
    int rc = imap_server_run(r->srv);
    if (rc < 0) {
        cli_error("serve: event loop failed: %s", strerror(-rc));
        return EX_SOFTWARE;
    }
    return 0;
}

int cmd_serve(cli *c, int argc, char **argv)
{
    serve_args a;
    int ex = parse_args(argc, argv, &a);
    if (ex) return ex < 0 ? 0 : ex;
    serve_run r = {.c = c, .a = &a};
    if ((ex = prepare_identity(&r)) != 0) return ex;
    if ((ex = start_server(&r)) == 0 && (ex = begin_mounts(&r)) == 0 &&
        (ex = drop_privileges(&r)) == 0 && (ex = attach_store(&r)) == 0)
        ex = run_server(&r);
    /* after the drop only the guard can unmount; the mounts' threads end when it has */
    privdrop_guard_end(&r.guard);
    for (size_t i = 0; i < a.nmounts; i++)
        if (r.fsm[i]) fs_mount_stop(&r.fsm[i]);
    imap_server_free(&r.srv);
    store_close(&r.s);
    return ex;
}
