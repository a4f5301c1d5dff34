/* cmd_close.c: CLOSE: expunge \Deleted messages silently (unless read-only) and unselect */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"

void imap_cmd_close(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    if (!c->sel.readonly && c->sel.n) {
        /* in steps (cmd_expunge.c), which unselect at the end */
        uint32_t *uids = malloc(c->sel.n * sizeof(uint32_t));
        if (!uids) abort();
        memcpy(uids, c->sel.uids, c->sel.n * sizeof(uint32_t));
        imap_expunge_start(c, uids, c->sel.n, true, true);
        return;
    }
    imap_unselect(c);
    imap_ok(c, "CLOSE completed");
}
