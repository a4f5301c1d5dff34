/* mailfs.c: the mailfs command: global options and the table of subcommands */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "tools/cli.h"

static const struct command {
    const char *name;
    int (*fn)(cli *c, int argc, char **argv);
    const char *summary;
} commands[] = {
    {"init", cmd_init, "create a store (and a self-signed TLS certificate)"},
    {"user", cmd_user, "add, delete, list users and set passwords"},
    {"mailbox", cmd_mailbox, "list, create, delete and rename a user's mailboxes"},
    {"import", cmd_import, "import Maildir, mbox and .eml files"},
    {"export", cmd_export, "export mail as Maildir or mbox"},
    {"deliver", cmd_deliver, "deliver one message from standard input (for an MTA)"},
    {"mount", cmd_mount, "mount a user's mail as a filesystem"},
    {"serve", cmd_serve, "run the IMAP server"},
    {"check", cmd_check, "verify every invariant of the store"},
    {"watch", cmd_watch, "print each change to a user's mail as it happens"},
    {"backup", cmd_backup, "make a consistent, compacted copy of the store while it runs"},
};

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mailfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_is_help(const char *arg)
{
    return arg && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0);
}

int cli_exit_code(int rc)
{
    switch (rc) {
    case 0:
        return EX_OK;
    case -ENOENT:
        return EX_NOINPUT;
    case -EINVAL:
        return EX_DATAERR;
    case -EEXIST:
        return EX_CANTCREAT;
    case -EACCES:
    case -EPERM:
        return EX_NOPERM;
    case -EPROTO:
        return EX_CONFIG;
    case -ENOSPC:
    case -EAGAIN:
    case -ENOMEM:
        return EX_TEMPFAIL;
    case -EIO:
        return EX_IOERR;
    default:
        return EX_SOFTWARE;
    }
}

int cli_open_store(cli *c, int flags, store **out)
{
    char err[512];
    int rc = store_open(c->store_dir, flags, out, err, sizeof err);
    if (rc) {
        cli_error("%s", err);
        return rc == -ENOENT ? EX_NOINPUT : rc == -EPROTO ? EX_CONFIG : cli_exit_code(rc);
    }
    return 0;
}

int cli_user_id(store *s, const char *user, uint32_t *id)
{
    store_txn *t;
    int rc = store_read_begin(s, &t);
    if (rc == 0) {
        rc = store_user_lookup(t, user, id);
        store_read_end(&t);
    }
    if (rc == -ENOENT) {
        cli_error("no user '%s' in store '%s': add one with 'mailfs user add %s'", user,
                  store_dir(s), user);
        return EX_NOUSER;
    }
    if (rc) {
        cli_error("cannot look up user '%s': %s", user, store_strerror(rc));
        return cli_exit_code(rc);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mailfs [--store DIR] COMMAND [ARGS...]\n\n"
               "mailfs keeps mail in one store and shows it as an IMAP server and as a\n"
               "filesystem. 'mailfs COMMAND --help' documents each command.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions:\n"
               "  --store DIR  the store (default: $MAILFS_STORE, else $XDG_DATA_HOME/mailfs,\n"
               "               else ~/.local/share/mailfs)\n"
               "  --version    print the version\n"
               "  --help       this text\n");
}

static char *default_store(void)
{
    const char *env = getenv("MAILFS_STORE");
    if (env && *env) return strdup(env);
    char buf[4096];
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg) {
        snprintf(buf, sizeof buf, "%s/mailfs", xdg);
        return strdup(buf);
    }
    const char *home = getenv("HOME");
    snprintf(buf, sizeof buf, "%s/.local/share/mailfs", home && *home ? home : ".");
    return strdup(buf);
}

int main(int argc, char **argv)
{
    cli c = {0};
    char *dflt = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--store") == 0) {
            if (i + 1 >= argc) {
                cli_error("--store needs a directory");
                return EX_USAGE;
            }
            c.store_dir = argv[++i];
        } else if (strncmp(argv[i], "--store=", 8) == 0) {
            c.store_dir = argv[i] + 8;
        } else if (cli_is_help(argv[i])) {
            usage(stdout);
            return EX_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("mailfs 0.1.0 (store schema %d)\n", STORE_SCHEMA_VERSION);
            return EX_OK;
        } else {
            cli_error("unknown option '%s': see 'mailfs --help'", argv[i]);
            return EX_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    if (!c.store_dir) c.store_dir = dflt = default_store();
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++) {
        if (strcmp(commands[k].name, argv[i]) == 0) {
            int rc = commands[k].fn(&c, argc - i, argv + i);
            free(dflt);
            return rc;
        }
    }
    cli_error("unknown command '%s': see 'mailfs --help'", argv[i]);
    free(dflt);
    return EX_USAGE;
}
