/* cmd_delete.c: DELETE */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "imap/imap_int.h"

typedef struct delete_ctx {
    uint32_t user_id;
    const char *name;
    uint32_t id;
    store *st;
    uint64_t kept; /* kept files of the mount in it (store_files_count) */
} delete_ctx;

static int delete_tx(store_txn *w, void *ctx)
{
    delete_ctx *x = ctx;
    store_mailbox mb;
    int rc = store_mailbox_get(w, x->user_id, x->name, &mb);
    if (rc < 0) return rc;
    x->id = mb.id;
    rc = store_files_count(x->st, x->user_id, mb.id, &x->kept);
    if (rc < 0) return rc;
    if (x->kept) return -ENOTEMPTY;
    return store_mailbox_delete(w, x->user_id, x->name, 0);
}

void imap_cmd_delete(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    if (nargs != 1) {
        imap_bad(c, "usage: DELETE mailbox");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    if (strcmp(name, "INBOX") == 0) {
        imap_no(c, "[CANNOT] INBOX cannot be deleted");
        return;
    }
    delete_ctx x = {c->user_id, name, 0, c->srv->st, 0};
    int rc = store_write(c->srv->st, delete_tx, &x);
    if (rc == -ENOTEMPTY && x.kept) {
        imap_no(c,
                "[INUSE] %s holds %" PRIu64 " files that are not mail, kept through the mount: "
                "remove them through the mount first",
                name, x.kept);
        return;
    }
    if (rc < 0) {
        imap_no_store(c, rc, name);
        return;
    }
    if (c->state == IMAP_ST_SELECTED && c->sel.mailbox_id == x.id) {
        imap_unselect(c);
        mfs_buf_puts(&c->out, "* OK [CLOSED] the selected mailbox was deleted\r\n");
    }
    imap_ok(c, "DELETE completed");
}
