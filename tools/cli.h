/* cli.h: what the mailfs subcommands share: the command table, store opening, messages */
#ifndef MAILFS_CLI_H
#define MAILFS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What every subcommand gets: the global options. */
typedef struct cli {
    const char *store_dir; /* --store, $MAILFS_STORE or $XDG_DATA_HOME/mailfs */
} cli;

/* Each subcommand: argv[0] is its name; returns the process exit code (sysexits.h). */
int cmd_init(cli *c, int argc, char **argv);
int cmd_user(cli *c, int argc, char **argv);
int cmd_mailbox(cli *c, int argc, char **argv);
int cmd_import(cli *c, int argc, char **argv);
int cmd_export(cli *c, int argc, char **argv);
int cmd_deliver(cli *c, int argc, char **argv);
int cmd_mount(cli *c, int argc, char **argv);
int cmd_serve(cli *c, int argc, char **argv);
int cmd_check(cli *c, int argc, char **argv);
int cmd_backup(cli *c, int argc, char **argv);
int cmd_watch(cli *c, int argc, char **argv);

/* Prints "mailfs: <message>" and a newline to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens the store or prints why not; returns 0 or an exit code (EX_*). */
int cli_open_store(cli *c, int flags, store **out);

/* Looks up USER in S or prints why not; returns 0 or an exit code. */
int cli_user_id(store *s, const char *user, uint32_t *id);

/* Maps a store error code to a sysexits exit code. */
int cli_exit_code(int rc);

/* True if ARG is -h or --help. */
bool cli_is_help(const char *arg);

#endif
