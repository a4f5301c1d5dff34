/* cmd_rename.c: RENAME (children move along; renaming INBOX moves its messages) */
#include <errno.h>

#include "imap/imap_int.h"

typedef struct rename_ctx {
    uint32_t user_id;
    const char *from, *to;
} rename_ctx;

static int rename_tx(store_txn *w, void *ctx)
{
    rename_ctx *x = ctx;
    return store_mailbox_rename(w, x->user_id, x->from, x->to);
}

void imap_cmd_rename(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char from[STORE_NAME_MAX + 1], to[STORE_NAME_MAX + 1];
    if (nargs != 2) {
        imap_bad(c, "usage: RENAME from to");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], from, sizeof(from)) < 0 ||
        imap_mailbox_arg(c, &args[1], to, sizeof(to)) < 0)
        return;
    const char *why;
    if (store_mailbox_name_check(to, &why) < 0) {
        imap_no(c, "[CANNOT] invalid mailbox name: %s", why);
        return;
    }
    rename_ctx x = {c->user_id, from, to};
    int rc = store_write(c->srv->st, rename_tx, &x);
    if (rc < 0) {
        /* -ENAMETOOLONG: a child's new name would pass the limit, NO [LIMIT] naming TO */
        imap_no_store(c, rc, rc == -EEXIST || rc == -ENAMETOOLONG ? to : from);
        return;
    }
    imap_ok(c, "RENAME completed");
}
