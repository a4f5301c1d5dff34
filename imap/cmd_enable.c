/* cmd_enable.c: ENABLE (IMAP4rev2, UTF8=ACCEPT, CONDSTORE, QRESYNC; others are ignored as RFC
 * 5161 asks) */
#include <strings.h>

#include "imap/imap_int.h"

void imap_cmd_enable(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    if (nargs == 0) {
        imap_bad(c, "ENABLE needs a capability");
        return;
    }
    mfs_buf en = {0};
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].type != IMAP_ARG_ATOM) {
            mfs_buf_free(&en);
            imap_bad(c, "ENABLE takes atoms");
            return;
        }
        if (strcasecmp(args[i].str, "IMAP4rev2") == 0 && !c->rev2) {
            c->rev2 = c->utf8 = true;
            mfs_buf_puts(&en, " IMAP4rev2");
        } else if (strcasecmp(args[i].str, "UTF8=ACCEPT") == 0 && !c->utf8) {
            c->utf8 = true;
            mfs_buf_puts(&en, " UTF8=ACCEPT");
        } else if (strcasecmp(args[i].str, "CONDSTORE") == 0 && !c->condstore) {
            imap_condstore_on(c);
            mfs_buf_puts(&en, " CONDSTORE");
        } else if (strcasecmp(args[i].str, "QRESYNC") == 0 && !c->qresync) {
            c->qresync = true; /* implies CONDSTORE (RFC 7162 3.2.3) */
            imap_condstore_on(c);
            mfs_buf_puts(&en, " QRESYNC");
        }
    }
    mfs_buf_printf(&c->out, "* ENABLED%s\r\n", en.data ? en.data : "");
    mfs_buf_free(&en);
    imap_ok(c, "ENABLE completed");
}
