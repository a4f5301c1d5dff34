/* cmd_thread.c: THREAD and UID THREAD (RFC 5256: ORDEREDSUBJECT and REFERENCES) */
#include "imap/imap_int.h"

void imap_cmd_thread(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    if (nargs < 1 || args[0].type != IMAP_ARG_ATOM) {
        imap_bad(c, "THREAD needs an algorithm (ORDEREDSUBJECT or REFERENCES), a charset and "
                    "search keys");
        return;
    }
    int alg = imap_thread_alg_find(args[0].str);
    if (alg < 0) {
        imap_bad(c, "unknown threading algorithm '%.40s' (ORDEREDSUBJECT and REFERENCES are known)",
                 args[0].str);
        return;
    }
    if (imap_sort_charset(c, nargs > 1 ? &args[1] : NULL, "THREAD") < 0) return;
    imap_sort_req req = {.thread = true, .alg = alg};
    imap_sort_start(c, &req, args, nargs, 2, uid);
}
