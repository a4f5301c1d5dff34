/* cmd_idle.c: IDLE: push changes at once until DONE, with a keepalive every few minutes */
#include <strings.h>

#include "imap/imap_int.h"

void imap_cmd_idle(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    if (nargs) {
        imap_bad(c, "IDLE takes no arguments");
        return;
    }
    if (c->state == IMAP_ST_SELECTED && imap_sync(c, true) < 0) {
        c->close_after_flush = true;
        imap_no(c, "mailbox gone");
        return;
    }
    mfs_buf_puts(&c->out, "+ idling\r\n");
    imap_client_idle_start(c);
}

void imap_idle_line(imap_client *c, const char *line)
{
    c->wait = IMAP_WAIT_NONE;
    if (strcasecmp(line, "DONE") == 0)
        imap_ok(c, "IDLE terminated");
    else
        imap_bad(c, "expected DONE");
    imap_command_finish(c);
}
