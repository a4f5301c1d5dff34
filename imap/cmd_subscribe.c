/* cmd_subscribe.c: SUBSCRIBE and UNSUBSCRIBE */
#include <errno.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct sub_ctx {
    uint32_t user_id;
    const char *name;
    bool on;
} sub_ctx;

static int sub_tx(store_txn *w, void *ctx)
{
    sub_ctx *x = ctx;
    return store_mailbox_subscribe(w, x->user_id, x->name, x->on);
}

void imap_cmd_subscribe(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                        bool uid)
{
    char name[STORE_NAME_MAX + 1];
    bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
    if (nargs != 1) {
        imap_bad(c, "usage: %s mailbox", cmd->name);
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    sub_ctx x = {c->user_id, name, on};
    int rc = store_write(c->srv->st, sub_tx, &x);
    if (rc < 0 && !(rc == -ENOENT && !on)) {
        imap_no_store(c, rc, name);
        return;
    }
    imap_ok(c, "%s completed", cmd->name);
}
