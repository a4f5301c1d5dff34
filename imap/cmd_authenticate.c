/* cmd_authenticate.c: AUTHENTICATE PLAIN, with or without an initial response (SASL-IR) */
#include <strings.h>

#include "imap/imap_int.h"

void imap_cmd_authenticate(imap_client *c, const imap_command *cmd, const imap_arg *args,
                           size_t nargs, bool uid)
{
    if (nargs < 1 || nargs > 2 || args[0].type != IMAP_ARG_ATOM) {
        imap_bad(c, "usage: AUTHENTICATE mechanism [initial-response]");
        return;
    }
    if (strcasecmp(args[0].str, "PLAIN") != 0) {
        imap_no(c, "unsupported authentication mechanism '%.40s'", args[0].str);
        return;
    }
    if (!imap_auth_allowed(c)) {
        imap_no(c, "[PRIVACYREQUIRED] use STARTTLS before logging in");
        return;
    }
    if (nargs == 2) {
        if (!imap_arg_is_string(&args[1])) {
            imap_bad(c, "invalid initial response");
            return;
        }
        /* "=" is an empty initial response */
        imap_auth_plain_response(c, args[1].len == 1 && args[1].str[0] == '=' ? "" : args[1].str);
        return;
    }
    imap_buf_puts(&c->out, "+ \r\n");
    c->wait = IMAP_WAIT_AUTH;
}
