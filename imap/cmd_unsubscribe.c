/* cmd_unsubscribe.c: UNSUBSCRIBE: SUBSCRIBE's opposite; the work is in cmd_subscribe.c */
#include "imap/imap_int.h"

void imap_cmd_unsubscribe(imap_client *c, const imap_command *cmd, const imap_arg *args,
                          size_t nargs, bool uid)
{
    imap_cmd_subscribe(c, cmd, args, nargs, uid); /* it removes the name when CMD is UNSUBSCRIBE */
}
