/* cmd_create.c: CREATE, making missing superiors too (RFC 9051 6.3.4) */
#include <errno.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct create_ctx {
    uint32_t user_id;
    char *name;
} create_ctx;

static int create_tx(store_txn *w, void *ctx)
{
    create_ctx *x = ctx;
    return store_mailbox_create(w, x->user_id, x->name, 0, NULL); /* parents too */
}

void imap_cmd_create(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    if (nargs < 1 || nargs > 2) {
        imap_bad(c, "usage: CREATE mailbox");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    size_t l = strlen(name);
    if (l > 1 && name[l - 1] == '/')
        name[l - 1] = '\0'; /* "foo/" asks for a mailbox that will hold others */
    const char *why;
    if (store_mailbox_name_check(name, &why) < 0) {
        imap_no(c, "[CANNOT] invalid mailbox name: %s", why);
        return;
    }
    if (strcmp(name, "INBOX") == 0) {
        imap_no(c, "[ALREADYEXISTS] INBOX always exists");
        return;
    }
    create_ctx x = {c->user_id, name};
    int rc = store_write(c->srv->st, create_tx, &x);
    if (rc == -EDQUOT) {
        uint32_t most;
        store_user_limits(c->srv->st, &most, NULL);
        imap_no(c,
                "[LIMIT] too many mailboxes: at most %u per user (with the parents a name "
                "needs); delete some first",
                most);
        return;
    }
    if (rc < 0) {
        imap_no_store(c, rc, name);
        return;
    }
    imap_ok(c, "CREATE completed");
}
