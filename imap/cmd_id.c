/* cmd_id.c: ID (RFC 2971) */
#include "imap/imap_int.h"

void imap_cmd_id(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                 bool uid)
{
    if (nargs != 1 || (args[0].type != IMAP_ARG_LIST && !imap_arg_is_nil(&args[0]))) {
        imap_bad(c, "usage: ID (field value ...) or ID NIL");
        return;
    }
    if (args[0].type == IMAP_ARG_LIST && (args[0].count % 2 != 0 || args[0].count > 60)) {
        imap_bad(c, "ID needs up to 30 field-value pairs");
        return;
    }
    mfs_buf_puts(&c->out, "* ID (\"name\" \"mailfs\" \"version\" \"0.1.0\")\r\n");
    imap_ok(c, "ID completed");
}
