/* cmd_subscribe.c: SUBSCRIBE and UNSUBSCRIBE: the user's list of names, mailboxes or not */
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

/* Any valid name may be subscribed, whether a mailbox has it or not (RFC 3501 6.3.6 allows
 * either; a name stays subscribed after its mailbox is deleted, so refusing names without a
 * mailbox would make the list inconsistent). Subscribing a subscribed name and unsubscribing
 * one that is not subscribed are OK (RFC 9051 6.3.7, 6.3.8). */
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
    size_t l = strlen(name);
    if (l > 1 && name[l - 1] == '/') name[l - 1] = '\0'; /* "foo/" names foo, as in CREATE */
    const char *why;
    if (store_mailbox_name_check(name, &why) < 0) {
        imap_no(c, "[CANNOT] invalid mailbox name: %s", why);
        return;
    }
    sub_ctx x = {c->user_id, name, on};
    int rc = store_write(c->srv->st, sub_tx, &x);
    if (rc == -EDQUOT) {
        uint32_t most;
        store_user_limits(c->srv->st, NULL, &most);
        imap_no(c, "[LIMIT] too many subscriptions: at most %u per user; unsubscribe some first",
                most);
        return;
    }
    if (rc < 0) {
        imap_no_store(c, rc, name);
        return;
    }
    imap_ok(c, "%s completed", cmd->name);
}
