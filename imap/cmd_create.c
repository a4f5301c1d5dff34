/* cmd_create.c: CREATE, making missing superiors too (RFC 9051 6.3.4), with CREATE-SPECIAL-USE
 * (RFC 6154 3) */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

typedef struct create_ctx {
    uint32_t user_id;
    char *name;
    uint32_t use;     /* STORE_SU_* */
    store_mailbox mb; /* what was made */
} create_ctx;

static int create_tx(store_txn *w, void *ctx)
{
    create_ctx *x = ctx;
    return store_mailbox_create(w, x->user_id, x->name, x->use, &x->mb); /* parents too */
}

/* The special uses a mailbox can be made with: real mailboxes only (\All and \Flagged would be
 * virtual ones, which mailfs does not make). */
static const struct {
    const char *name;
    uint32_t bit;
} uses[] = {
    {"\\Archive", STORE_SU_ARCHIVE}, {"\\Drafts", STORE_SU_DRAFTS}, {"\\Junk", STORE_SU_JUNK},
    {"\\Sent", STORE_SU_SENT},       {"\\Trash", STORE_SU_TRASH},
};

/* The parameter list "(USE (\Sent ...))" (RFC 4466 create-param) into *USE; -1 after answering
 * BAD or NO [USE]. */
static int parse_params(imap_client *c, const imap_arg *a, uint32_t *use)
{
    if (a->type != IMAP_ARG_LIST || a->count % 2 != 0) {
        imap_bad(c, "CREATE parameters are a list of names and values: (USE (\\Sent))");
        return -1;
    }
    for (size_t i = 0; i < a->count; i += 2) {
        const imap_arg *name = &a->list[i], *v = &a->list[i + 1];
        if (!imap_arg_is_atom(name, "USE")) {
            imap_bad(c, "unknown CREATE parameter '%.40s': only USE (RFC 6154)",
                     name->str ? name->str : "(list)");
            return -1;
        }
        if (v->type != IMAP_ARG_LIST) {
            imap_bad(c, "USE takes a list of special-use attributes: USE (\\Sent)");
            return -1;
        }
        for (size_t k = 0; k < v->count; k++) {
            const imap_arg *f = &v->list[k];
            size_t u = 0;
            while (u < sizeof uses / sizeof *uses &&
                   !(f->type == IMAP_ARG_ATOM && strcasecmp(f->str, uses[u].name) == 0))
                u++;
            if (u == sizeof uses / sizeof *uses) {
                imap_no(c,
                        "[USE] cannot make a mailbox with special use '%.40s': mailfs makes "
                        "\\Archive, \\Drafts, \\Junk, \\Sent and \\Trash",
                        f->str ? f->str : "(list)");
                return -1;
            }
            *use |= uses[u].bit;
        }
    }
    return 0;
}

void imap_cmd_create(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    if (nargs < 1 || nargs > 2) {
        imap_bad(c, "usage: CREATE mailbox [(USE (\\Sent ...))]");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    uint32_t use = 0;
    if (nargs == 2 && parse_params(c, &args[1], &use) < 0) return;
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
    create_ctx x = {.user_id = c->user_id, .name = name, .use = use};
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
    mfs_buf id = {0};
    imap_mailboxid_put(&id, x.mb.id, x.mb.uidvalidity);
    imap_ok(c, "[MAILBOXID (%s)] CREATE completed", id.data); /* RFC 8474 */
    mfs_buf_free(&id);
}
