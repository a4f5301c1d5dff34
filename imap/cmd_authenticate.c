/* cmd_authenticate.c: AUTHENTICATE PLAIN, with or without an initial response (SASL-IR), and
 * the client's response to the server's "+" */
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_sasl.h"

void imap_auth_plain_response(imap_client *c, const char *b64)
{
    unsigned char buf[IMAP_SASL_BUF];
    const char *a, *u, *p;
    size_t al, ul, pl;
    int rc = imap_sasl_plain_split(b64, buf, &a, &al, &u, &ul, &p, &pl);
    if (rc == IMAP_SASL_BAD_BASE64)
        imap_bad(c, "invalid base64 in AUTHENTICATE response");
    else if (rc == IMAP_SASL_MALFORMED)
        imap_bad(c, "malformed PLAIN response");
    else if (!imap_sasl_authz_ok(a, al, u, ul))
        imap_no(c, "[AUTHORIZATIONFAILED] cannot log in as another user");
    else
        imap_auth_login(c, u, ul, p, pl); /* too long or with a NUL: a failure like any other */
    explicit_bzero(buf, sizeof(buf));
}

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
    mfs_buf_puts(&c->out, "+ \r\n");
    c->wait = IMAP_WAIT_AUTH;
}

void imap_authenticate_line(imap_client *c, const char *line)
{
    /* AUTHENTICATE PLAIN: base64 of "authzid NUL authcid NUL password" */
    c->wait = IMAP_WAIT_NONE;
    if (strcmp(line, "*") == 0) {
        imap_bad(c, "AUTHENTICATE cancelled");
        imap_command_finish(c);
        return;
    }
    imap_auth_plain_response(c, line);
    if (c->wait == IMAP_WAIT_NONE) imap_command_finish(c);
}
