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
    return imap_pattern_arg(c, a, out, outlen);
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
    if (npats > IMAP_LIST_PATTERNS_MAX) {
        imap_bad(c, "too many LIST patterns (%zu): at most %d", npats, IMAP_LIST_PATTERNS_MAX);
        return;
    }
    /* build the full patterns: reference + pattern */
    char **full = calloc(npats, sizeof(char *));
    if (!full) abort();
    bool empty_only = true;
    size_t total = 0;
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
        total += need - 1;
        full[k] = malloc(need);
        if (!full[k]) abort();
        snprintf(full[k], need, "%s%s", ref, pat);
        if (strncasecmp(full[k], "INBOX", 5) == 0 && (full[k][5] == '\0' || full[k][5] == '/'))
            memcpy(full[k], "INBOX", 5);
    }
    if (total > IMAP_LIST_PATTERN_BYTES) {
        for (size_t k = 0; k < npats; k++)
            free(full[k]);
        free(full);
        imap_bad(c, "LIST patterns too long (%zu bytes with the reference): at most %d in all",
                 total, IMAP_LIST_PATTERN_BYTES);
        return;
    }
    if (empty_only && npats == 1) {
        /* LIST "" "": the hierarchy delimiter */
        mfs_buf_puts(&c->out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
        free(full[0]);
        free(full);
        imap_ok(c, "LIST completed");
        return;
    }
    imap_list_start(c, full, npats, opts, status_items, false);
}

/* ---- the listing, in steps ------------------------------------------------------------- */

typedef struct list_run {
    imap_mblist l;
    imap_patterns *pats;
    unsigned opts, status_items;
    bool lsub;
    size_t pos;
} list_run;

static void list_run_free(void *p)
{
    list_run *r = p;
    imap_mblist_free(&r->l);
    imap_patterns_free(&r->pats);
    free(r);
}

/* LSUB's line for E, if it gets one. */
static void lsub_put(imap_client *c, const imap_mblist *l, const imap_mbentry *e)
{
    /* RFC 3501 6.3.9: a parent that '%' stops at, with subscribed children, is \Noselect */
    bool subscribed = e->flags & IMAP_MB_SUBSCRIBED;
    bool parent = !subscribed && (e->flags & IMAP_MB_HIDDEN);
    if (!subscribed && !parent) return;
    /* a subscribed name that no mailbox has (deleted, or never made) cannot be selected
     * either: \Noselect, as Dovecot answers with its tb-lsub-flags workaround */
    bool noselect = parent || e->id == 0;
    char name[STORE_NAME_MAX + 1];
    mfs_buf_puts(&c->out, noselect ? "* LSUB (\\Noselect) \"/\" " : "* LSUB () \"/\" ");
    imap_mailbox_put(c, &c->out, imap_mblist_name(l, e, name));
    mfs_buf_puts(&c->out, "\r\n");
}

/* LIST's line for E (and its STATUS), if it gets one; T is a read transaction for STATUS. */
static void list_put(imap_client *c, list_run *r, const imap_mbentry *e, store_txn *t)
{
    unsigned opts = r->opts;
    bool subscribed = e->flags & IMAP_MB_SUBSCRIBED;
    /* RECURSIVEMATCH: a match with a subscribed child the patterns miss gets CHILDINFO */
    bool childinfo =
        (opts & SEL_RECURSIVE) && (opts & SEL_SUBSCRIBED) && (e->flags & IMAP_MB_HIDDEN);
    /* a name only the subscription list knows shows only when SUBSCRIBED selects it (RFC
     * 5258 3.1, 3.5: \Subscribed \NonExistent, or \NonExistent with CHILDINFO) */
    bool nonexistent = e->id == 0 && !(e->flags & IMAP_MB_CHILDREN);
    if ((opts & SEL_SUBSCRIBED) && !subscribed && !childinfo) return;
    if (!(opts & SEL_SUBSCRIBED) && nonexistent) return;
    if ((opts & SEL_SPECIAL) && !e->special_use) return;
    mfs_buf *o = &c->out;
    mfs_buf_puts(o, "* LIST (");
    if (nonexistent)
        mfs_buf_puts(o, "\\NonExistent ");
    else if (e->id == 0)
        mfs_buf_puts(o, "\\Noselect ");
    mfs_buf_puts(o, (e->flags & IMAP_MB_CHILDREN) ? "\\HasChildren" : "\\HasNoChildren");
    if ((opts & RET_SUBSCRIBED) && subscribed) mfs_buf_puts(o, " \\Subscribed");
    for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
        if (e->special_use & special[k].bit) mfs_buf_printf(o, " %s", special[k].name);
    mfs_buf_puts(o, ") \"/\" ");
    char name[STORE_NAME_MAX + 1];
    imap_mailbox_put(c, o, imap_mblist_name(&r->l, e, name));
    if (childinfo) mfs_buf_puts(o, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    mfs_buf_puts(o, "\r\n");
    store_mailbox mb;
    if ((opts & RET_STATUS) && e->id != 0 && t && store_mailbox_get_id(t, e->id, &mb) == 0)
        imap_status_put(c, t, &mb, r->status_items);
}

static int list_step(imap_client *c, void *ctx)
{
    list_run *r = ctx;
    const char *what = r->lsub ? "LSUB" : "LIST";
    int64_t until = imap_now_ms() + IMAP_STEP_MS;
    int rc = imap_mblist_build(c, &r->l, r->pats, until);
    if (rc < 0) {
        imap_no_store(c, rc, what);
        return 0;
    }
    if (rc == 1) return 1;
    store_txn *t = NULL;
    if ((r->opts & RET_STATUS) && r->pos < r->l.n && (rc = store_read_begin(c->srv->st, &t)) < 0) {
        imap_no_store(c, rc, what);
        return 0;
    }
    while (r->pos < r->l.n && c->out.len < IMAP_OUT_HIGH) {
        const imap_mbentry *e = &r->l.v[r->pos++];
        if (r->lsub)
            lsub_put(c, &r->l, e);
        else
            list_put(c, r, e, t);
        if (imap_now_ms() >= until) break;
    }
    if (t) store_read_end(&t);
    if (r->pos < r->l.n) return 1;
    imap_ok(c, "%s completed", what);
    return 0;
}

void imap_list_start(imap_client *c, char **pats, size_t npats, unsigned opts,
                     unsigned status_items, bool lsub)
{
    list_run *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->pats = imap_patterns_new(pats, npats);
    for (size_t k = 0; k < npats; k++)
        free(pats[k]);
    free(pats);
    r->opts = opts;
    r->status_items = status_items;
    r->lsub = lsub;
    /* in steps, so that a long listing gives the loop's other sessions their turn */
    c->cont = list_step;
    c->cont_ctx = r;
    c->cont_free = list_run_free;
}
