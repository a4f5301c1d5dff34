/* cmd_unselect.c: UNSELECT: leave the mailbox without expunging */
#include "imap/imap_int.h"

void imap_cmd_unselect(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                       bool uid)
{
    imap_unselect(c);
    imap_ok(c, "UNSELECT completed");
}
