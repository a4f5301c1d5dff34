/* cmd_examine.c: EXAMINE: SELECT read-only; the work is imap_cmd_select's (cmd_select.c) */
#include "imap/imap_int.h"

void imap_cmd_examine(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                      bool uid)
{
    imap_cmd_select(c, cmd, args, nargs, uid); /* it opens read-only when CMD is EXAMINE */
}
