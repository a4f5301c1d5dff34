/* cmd_logout.c: LOGOUT */
#include "imap/imap_int.h"

void imap_cmd_logout(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    mfs_buf_puts(&c->out, "* BYE logging out\r\n");
    imap_ok(c, "LOGOUT completed");
    c->state = IMAP_ST_LOGOUT;
    c->close_after_flush = true;
}
