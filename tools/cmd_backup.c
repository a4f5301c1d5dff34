/* cmd_backup.c: `mailfs backup`: a consistent, compacted hot copy of the store */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "tools/cli.h"

static void backup_usage(FILE *f)
{
    fprintf(f, "usage: mailfs backup DEST\n\n"
               "Writes a consistent copy of the store into DEST (a new or empty directory)\n"
               "while mailfs keeps serving: one snapshot, free pages left out, with the TLS\n"
               "certificate and key. DEST opens as a store: mailfs --store DEST check.\n");
}

int cmd_backup(cli *c, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        backup_usage(stdout);
        return EX_OK;
    }
    if (argc != 2) {
        cli_error("backup: give one destination directory: mailfs backup DEST");
        return EX_USAGE;
    }
    store *s;
    int rc = cli_open_store(c, STORE_OPEN_RDONLY, &s);
    if (rc) return rc;
    char err[512];
    /* the copy holds the mail and the TLS key: nothing in it is for other users, not even for
     * the moment between creating a file and setting its mode */
    umask(077);
    rc = store_backup(s, argv[1], err, sizeof err);
    store_close(&s);
    if (rc) {
        cli_error("backup: %s", err);
        return rc == -EEXIST ? EX_CANTCREAT : cli_exit_code(rc);
    }
    printf("backed up store '%s' to '%s'\n", c->store_dir, argv[1]);
    return EX_OK;
}
