/* cmd_noop.c: NOOP (pending changes are pushed by the dispatcher after every command) */
#include "imap/imap_int.h"

void imap_cmd_noop(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    imap_ok(c, "NOOP completed");
}
