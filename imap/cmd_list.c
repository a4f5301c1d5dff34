/* cmd_list.c: LIST with LIST-EXTENDED selection and return options, LIST-STATUS, SPECIAL-USE */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"

enum {
    SEL_SUBSCRIBED = 1,
    SEL_SPECIAL = 2,
    RET_SUBSCRIBED = 4,
    RET_CHILDREN = 8,
    RET_SPECIAL = 16,
    RET_STATUS = 32,
    SEL_RECURSIVE = 64,
};

/* True if MBS[M] has a subscribed descendant that none of the patterns matches (so the
 * client would not see it without CHILDINFO, or an LSUB \Noselect parent). */
bool imap_hidden_subscribed_child(const store_mailbox *mbs, size_t n, size_t m, char **pats,
                                  size_t npats)
{
    size_t l = strlen(mbs[m].name);
    for (size_t k = 0; k < n; k++) {
        if (!mbs[k].subscribed || strncmp(mbs[k].name, mbs[m].name, l) != 0 ||
            mbs[k].name[l] != '/')
            continue;
        bool seen = false;
        for (size_t p = 0; p < npats && !seen; p++)
            seen = imap_pattern_match(pats[p], mbs[k].name);
        if (!seen) return true;
    }
    return false;
}

static const struct {
    unsigned bit;
    const char *name;
} special[] = {
    {STORE_SU_ALL, "\\All"},         {STORE_SU_ARCHIVE, "\\Archive"}, {STORE_SU_DRAFTS, "\\Drafts"},
    {STORE_SU_FLAGGED, "\\Flagged"}, {STORE_SU_JUNK, "\\Junk"},       {STORE_SU_SENT, "\\Sent"},
    {STORE_SU_TRASH, "\\Trash"},
};

static int get_pattern(imap_client *c, const imap_arg *a, char *out, size_t outlen)
{
    return imap_mailbox_arg(c, a, out, outlen);
}

void imap_cmd_list(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    size_t i = 0;
    unsigned opts = 0, status_items = 0;
    if (i < nargs && args[i].type == IMAP_ARG_LIST) {
        for (size_t k = 0; k < args[i].count; k++) {
            const imap_arg *o = &args[i].list[k];
            if (imap_arg_is_atom(o, "SUBSCRIBED"))
                opts |= SEL_SUBSCRIBED | RET_SUBSCRIBED;
            else if (imap_arg_is_atom(o, "SPECIAL-USE"))
                opts |= SEL_SPECIAL | RET_SPECIAL;
            else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
                opts |= SEL_RECURSIVE;
            else if (imap_arg_is_atom(o, "REMOTE"))
                ;
            else {
                imap_bad(c, "unknown LIST selection option");
                return;
            }
        }
        i++;
        if ((opts & SEL_RECURSIVE) && !(opts & (SEL_SUBSCRIBED | SEL_SPECIAL))) {
            imap_bad(c, "RECURSIVEMATCH needs another selection option (RFC 5258)");
            return;
        }
    }
    if (nargs - i < 2 || !imap_arg_is_string(&args[i])) {
        imap_bad(c, "usage: LIST reference pattern");
        return;
    }
    char ref[STORE_NAME_MAX + 1];
    if (get_pattern(c, &args[i], ref, sizeof(ref)) < 0) return;
    i++;
    const imap_arg *pats = &args[i];
    size_t npats = 1;
    if (args[i].type == IMAP_ARG_LIST) {
        pats = args[i].list;
        npats = args[i].count;
        if (npats == 0) {
            imap_bad(c, "empty pattern list");
            return;
        }
    }
    i++;
    if (i < nargs) {
        if (!imap_arg_is_atom(&args[i], "RETURN") || i + 1 >= nargs ||
            args[i + 1].type != IMAP_ARG_LIST) {
            imap_bad(c, "usage: LIST reference pattern RETURN (options)");
            return;
        }
        const imap_arg *r = &args[i + 1];
        for (size_t k = 0; k < r->count; k++) {
            const imap_arg *o = &r->list[k];
            if (imap_arg_is_atom(o, "SUBSCRIBED")) {
                opts |= RET_SUBSCRIBED;
            } else if (imap_arg_is_atom(o, "CHILDREN")) {
                opts |= RET_CHILDREN;
            } else if (imap_arg_is_atom(o, "SPECIAL-USE")) {
                opts |= RET_SPECIAL;
            } else if (imap_arg_is_atom(o, "STATUS") && k + 1 < r->count) {
                if (imap_status_items(c, &r->list[++k], &status_items) < 0) return;
                opts |= RET_STATUS;
            } else {
                imap_bad(c, "unknown LIST return option");
                return;
            }
        }
        i += 2;
    }
    if (i != nargs) {
        imap_bad(c, "too many arguments to LIST");
        return;
    }
    /* build the full patterns: reference + pattern */
    char **full = calloc(npats, sizeof(char *));
    if (!full) abort();
    bool empty_only = true;
    for (size_t k = 0; k < npats; k++) {
        char pat[STORE_NAME_MAX + 1];
        if (get_pattern(c, &pats[k], pat, sizeof(pat)) < 0) {
            for (size_t j = 0; j < k; j++)
                free(full[j]);
            free(full);
            return;
        }
        if (pat[0]) empty_only = false;
        size_t need = strlen(ref) + strlen(pat) + 1;
        full[k] = malloc(need);
        if (!full[k]) abort();
        snprintf(full[k], need, "%s%s", ref, pat);
        if (strncasecmp(full[k], "INBOX", 5) == 0 && (full[k][5] == '\0' || full[k][5] == '/'))
            memcpy(full[k], "INBOX", 5);
    }
    if (empty_only && npats == 1) {
        /* LIST "" "": the hierarchy delimiter */
        imap_buf_puts(&c->out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
        free(full[0]);
        free(full);
        imap_ok(c, "LIST completed");
        return;
    }
    store_txn *t;
    store_mailbox *mbs = NULL;
    size_t n = 0;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc == 0) {
        rc = imap_mailboxes(c, t, &mbs, &n);
        if (rc < 0) store_read_end(&t);
    }
    if (rc < 0) {
        for (size_t k = 0; k < npats; k++)
            free(full[k]);
        free(full);
        imap_no_store(c, rc, "LIST");
        return;
    }
    for (size_t m = 0; m < n; m++) {
        const store_mailbox *mb = &mbs[m];
        bool match = false;
        for (size_t k = 0; k < npats && !match; k++)
            match = imap_pattern_match(full[k], mb->name);
        if (!match) continue;
        /* RECURSIVEMATCH: a match with a subscribed child the patterns miss gets CHILDINFO */
        bool childinfo = (opts & SEL_RECURSIVE) && (opts & SEL_SUBSCRIBED) &&
                         imap_hidden_subscribed_child(mbs, n, m, full, npats);
        /* a name only the subscription list knows shows only when SUBSCRIBED selects it (RFC
         * 5258 3.1, 3.5: \Subscribed \NonExistent, or \NonExistent with CHILDINFO) */
        bool nonexistent = imap_mailbox_nonexistent(mbs, n, m);
        if ((opts & SEL_SUBSCRIBED) && !mb->subscribed && !childinfo) continue;
        if (!(opts & SEL_SUBSCRIBED) && nonexistent) continue;
        if ((opts & SEL_SPECIAL) && !mb->special_use) continue;
        imap_buf *o = &c->out;
        imap_buf_puts(o, "* LIST (");
        if (nonexistent)
            imap_buf_puts(o, "\\NonExistent ");
        else if (mb->id == 0)
            imap_buf_puts(o, "\\Noselect ");
        imap_buf_puts(o,
                      imap_mailbox_has_children(mbs, n, m) ? "\\HasChildren" : "\\HasNoChildren");
        if ((opts & RET_SUBSCRIBED) && mb->subscribed) imap_buf_puts(o, " \\Subscribed");
        for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
            if (mb->special_use & special[k].bit) imap_buf_printf(o, " %s", special[k].name);
        imap_buf_puts(o, ") \"/\" ");
        imap_mailbox_put(c, o, mb->name);
        if (childinfo) imap_buf_puts(o, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        imap_buf_puts(o, "\r\n");
        if ((opts & RET_STATUS) && mb->id != 0) imap_status_put(c, t, mb, status_items);
    }
    store_read_end(&t);
    free(mbs);
    for (size_t k = 0; k < npats; k++)
        free(full[k]);
    free(full);
    imap_ok(c, "LIST completed");
}
