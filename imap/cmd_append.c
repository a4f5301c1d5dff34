/* cmd_append.c: APPEND and MULTIAPPEND (all messages in one transaction), with APPENDUID */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "imap/imap_seqset.h"

typedef struct append_one {
    const char *data;
    size_t len;
    uint32_t flags;
    char *keywords;
    int64_t date;
    int tz;
} append_one;

typedef struct append_ctx {
    uint32_t user_id;
    const char *name;
    append_one *msgs;
    size_t n;
    uint32_t *uids;
    uint32_t uidvalidity;
    size_t failed_at;
} append_ctx;

static int append_tx(store_txn *w, void *ctx)
{
    append_ctx *x = ctx;
    store_mailbox mb;
    int rc = store_mailbox_get(w, x->user_id, x->name, &mb);
    if (rc < 0) return rc;
    x->uidvalidity = mb.uidvalidity;
    for (size_t i = 0; i < x->n; i++) {
        append_one *m = &x->msgs[i];
        store_append opt = {.flags = m->flags,
                            .keywords = m->keywords[0] ? m->keywords : NULL,
                            .internaldate = m->date,
                            .tz_min = (int16_t)m->tz};
        store_msg out;
        rc = store_msg_append(w, mb.id, m->data, m->len, &opt, &out);
        if (rc < 0) {
            x->failed_at = i;
            return rc;
        }
        x->uids[i] = out.uid;
    }
    return 0;
}

void imap_cmd_append(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    char name[STORE_NAME_MAX + 1];
    if (nargs < 2) {
        imap_bad(c, "usage: APPEND mailbox [(flags)] [date-time] literal");
        return;
    }
    if (imap_mailbox_arg(c, &args[0], name, sizeof(name)) < 0) return;
    append_ctx x = {.user_id = c->user_id, .name = name};
    x.msgs = calloc(nargs, sizeof(append_one));
    x.uids = calloc(nargs, sizeof(uint32_t));
    if (!x.msgs || !x.uids) abort();
    size_t i = 1;
    while (i < nargs) {
        append_one *m = &x.msgs[x.n];
        imap_buf kw = {0};
        imap_buf_puts(&kw, "");
        if (args[i].type == IMAP_ARG_LIST) {
            if (imap_flags_parse(c, &args[i], &m->flags, &kw) < 0) {
                imap_buf_free(&kw);
                goto out;
            }
            i++;
        }
        m->keywords = kw.data;
        x.n++;
        if (i < nargs && args[i].type == IMAP_ARG_STRING) {
            if (imap_date_time_parse(args[i].str, &m->date, &m->tz) < 0) {
                imap_bad(c, "invalid date-time '%.40s'", args[i].str);
                goto out;
            }
            i++;
        }
        /* RFC 6855: UTF8 (~{n}) from UTF8=ACCEPT clients */
        const imap_arg *lit = i < nargs ? &args[i] : NULL;
        if (lit && imap_arg_is_atom(lit, "UTF8") && i + 1 < nargs &&
            args[i + 1].type == IMAP_ARG_LIST && args[i + 1].count == 1) {
            lit = &args[i + 1].list[0];
            i++;
        }
        if (!lit || lit->type != IMAP_ARG_LITERAL) {
            imap_bad(c, "APPEND needs the message as a literal");
            goto out;
        }
        m->data = lit->str;
        m->len = lit->len;
        i++;
    }
    int rc = store_write(c->srv->st, append_tx, &x);
    if (rc == -ENOENT) {
        imap_no(c, "[TRYCREATE] no such mailbox '%.200s'", name);
    } else if (rc < 0) {
        imap_no_store(c, rc, name);
    } else {
        imap_buf set = {0};
        /* UIDs of one transaction are ascending */
        imap_seqset_format(&set, x.uids, x.n);
        imap_ok(c, "[APPENDUID %u %s] APPEND completed", x.uidvalidity, set.data);
        imap_buf_free(&set);
    }
out:
    for (size_t k = 0; k < x.n; k++)
        free(x.msgs[k].keywords);
    free(x.msgs);
    free(x.uids);
}
