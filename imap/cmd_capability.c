/* cmd_capability.c: CAPABILITY */
#include "imap/imap_int.h"

void imap_cmd_capability(imap_client *c, const imap_command *cmd, const imap_arg *args,
                         size_t nargs, bool uid)
{
    if (nargs) {
        imap_bad(c, "CAPABILITY takes no arguments");
        return;
    }
    mfs_buf_puts(&c->out, "* CAPABILITY ");
    imap_capabilities(c, &c->out);
    mfs_buf_puts(&c->out, "\r\n");
    imap_ok(c, "CAPABILITY completed");
}
