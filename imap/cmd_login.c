/* cmd_login.c: LOGIN */
#include "imap/imap_int.h"

void imap_cmd_login(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    if (nargs != 2 || !imap_arg_is_string(&args[0]) || !imap_arg_is_string(&args[1])) {
        imap_bad(c, "usage: LOGIN user password");
        return;
    }
    if (!imap_auth_allowed(c)) {
        imap_no(c, "[PRIVACYREQUIRED] use STARTTLS before logging in");
        return;
    }
    /* a NUL inside either (a literal may hold one) fails like a wrong password, counted */
    imap_auth_login(c, args[0].str, args[0].len, args[1].str, args[1].len);
}
