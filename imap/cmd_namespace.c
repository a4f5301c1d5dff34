/* cmd_namespace.c: NAMESPACE: one personal namespace, "" with '/' */
#include "imap/imap_int.h"

void imap_cmd_namespace(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                        bool uid)
{
    mfs_buf_puts(&c->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    imap_ok(c, "NAMESPACE completed");
}
