/* cmd_check.c: `mailfs check`: verify every invariant of the store */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "tools/cli.h"

static void check_usage(FILE *f)
{
    fprintf(f, "usage: mailfs check\n\n"
               "Verifies the store in one consistent snapshot (safe while mailfs serves):\n"
               "mailbox counts, UIDNEXT above every UID, MODSEQs, the file-name and\n"
               "duplicate indexes, body reference counts, SHA-256 of every body, a summary\n"
               "for every body, a change feed that never goes backwards, and subscriptions\n"
               "that are valid mailbox names of existing users.\n"
               "Prints one line per problem and exits 65 if any invariant fails.\n");
}

static void print_problem(void *ctx, const char *text)
{
    (void)ctx;
    printf("problem: %s\n", text);
}

int cmd_check(cli *c, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        check_usage(stdout);
        return EX_OK;
    }
    if (argc > 1) {
        cli_error("check: unexpected argument '%s': see 'mailfs check --help'", argv[1]);
        return EX_USAGE;
    }
    store *s;
    int rc = cli_open_store(c, STORE_OPEN_RDONLY, &s);
    if (rc) return rc;
    store_check_counts n;
    rc = store_check(s, print_problem, NULL, &n);
    store_close(&s);
    if (rc == 0) {
        printf("store '%s' is consistent: %llu users, %llu mailboxes, %llu messages, %llu bodies, "
               "%llu subscriptions, %llu changes in the feed\n",
               c->store_dir, (unsigned long long)n.users, (unsigned long long)n.mailboxes,
               (unsigned long long)n.messages, (unsigned long long)n.bodies,
               (unsigned long long)n.subscriptions, (unsigned long long)n.changes);
        return EX_OK;
    }
    if (rc == -EIO) {
        cli_error("check: store '%s' is damaged: see the problems above; a backup made with "
                  "'mailfs backup' before the damage can replace it",
                  c->store_dir);
        return EX_DATAERR;
    }
    cli_error("check: cannot read store '%s': %s", c->store_dir, store_strerror(rc));
    return cli_exit_code(rc);
}
