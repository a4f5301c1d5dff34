/* cmd_lsub.c: LSUB (IMAP4rev1): the subscribed mailboxes matching a pattern (cmd_list.c lists) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

void imap_cmd_lsub(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    char ref[STORE_NAME_MAX + 1], pat[STORE_NAME_MAX + 1], full[2 * STORE_NAME_MAX + 2];
    if (nargs != 2) {
        imap_bad(c, "usage: LSUB reference pattern");
        return;
    }
    if (imap_pattern_arg(c, &args[0], ref, sizeof(ref)) < 0 ||
        imap_pattern_arg(c, &args[1], pat, sizeof(pat)) < 0)
        return;
    snprintf(full, sizeof(full), "%s%s", ref, pat);
    if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == '/'))
        memcpy(full, "INBOX", 5);
    char **pats = malloc(sizeof(char *));
    if (!pats || !(pats[0] = strdup(full))) abort();
    imap_list_start(c, pats, 1, 0, 0, true);
}
