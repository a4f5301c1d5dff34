/* cmd_starttls.c: STARTTLS */
#include "imap/imap_int.h"

void imap_cmd_starttls(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                       bool uid)
{
    if (c->tls) {
        imap_bad(c, "TLS is already active");
        return;
    }
    if (!imap_server_has_tls(c->srv)) {
        imap_no(c, "TLS is not available: the server has no certificate");
        return;
    }
    imap_ok(c, "begin TLS negotiation now");
    imap_client_starttls(c);
}
