/* cmd_move.c: MOVE and UID MOVE (RFC 6851): COPY's steps, then EXPUNGE (cmd_copy.c does both) */
#include "imap/imap_int.h"

void imap_cmd_move(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    imap_cmd_copy(c, cmd, args, nargs, uid); /* it moves when CMD is MOVE or UID MOVE */
}
