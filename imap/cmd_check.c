/* cmd_check.c: CHECK, a NOOP here: every write is already durable when it returns */
#include "imap/imap_int.h"

void imap_cmd_check(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    imap_ok(c, "CHECK completed");
}
