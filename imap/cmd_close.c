/* cmd_close.c: CLOSE: expunge \Deleted messages silently (unless read-only) and unselect */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

void imap_cmd_close(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    int rc = 0;
    if (!c->sel.readonly && c->sel.n) rc = imap_expunge_run(c, c->sel.uids, c->sel.n, true);
    imap_unselect(c);
    if (rc < 0)
        imap_no_store(c, rc, "CLOSE");
    else
        imap_ok(c, "CLOSE completed");
}
