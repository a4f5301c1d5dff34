/* cmd_notify.c: NOTIFY NONE and NOTIFY SET [STATUS] (filter events) ... (RFC 5465) */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_notify.h"

#define SUPPORTED "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)"

typedef struct notify_parse {
    imap_client *c;
    struct imap_notify *n;
    size_t names;           /* mailbox names so far, all groups */
    char unsupported[64];   /* the first event we do not support ("" if none) */
    char fetch_refused[64]; /* the first MessageNew fetch attribute we do not support */
} notify_parse;

/* Parses a filter's mailbox name argument(s) into G. Returns 0, or -1 after answering BAD. */
static int parse_names(notify_parse *p, imap_notify_group *g, const imap_arg *a)
{
    const imap_arg *v = a;
    size_t cnt = 1;
    if (a->type == IMAP_ARG_LIST) {
        v = a->list;
        cnt = a->count;
        if (cnt == 0) {
            imap_bad(p->c, "NOTIFY: an empty list of mailbox names; give at least one");
            return -1;
        }
    }
    if (p->names + cnt > IMAP_NOTIFY_NAMES_MAX) {
        imap_bad(p->c, "NOTIFY: more than %d mailbox names; watch a SUBTREE instead",
                 IMAP_NOTIFY_NAMES_MAX);
        return -1;
    }
    p->names += cnt;
    g->names = calloc(cnt, sizeof(*g->names));
    if (!g->names) abort();
    for (size_t i = 0; i < cnt; i++) {
        if (!imap_arg_is_string(&v[i])) {
            imap_bad(p->c, "NOTIFY: a mailbox name must be an atom or a string");
            return -1;
        }
        char name[STORE_NAME_MAX + 1];
        /* a name that cannot exist is ignored, as one that does not (RFC 5465 3.1) */
        if (imap_mailbox_decode(p->c, v[i].str, v[i].len, false, name, sizeof(name)) < 0) continue;
        g->names[g->nnames] = strdup(name);
        if (!g->names[g->nnames]) abort();
        g->nnames++;
    }
    return 0;
}

static void note(char *buf, size_t len, const char *what, size_t wlen)
{
    if (buf[0]) return;
    if (wlen > len - 1) wlen = len - 1;
    memcpy(buf, what, wlen);
    buf[wlen] = '\0';
}

/* MessageNew's fetch attributes: UID and FLAGS only. */
static int parse_fetch(notify_parse *p, const imap_arg *list, unsigned *fetch)
{
    if (list->count == 0) {
        imap_bad(p->c, "NOTIFY: MessageNew's list of fetch attributes is empty");
        return -1;
    }
    for (size_t i = 0; i < list->count; i++) {
        const imap_arg *a = &list->list[i];
        if (imap_arg_is_atom(a, "UID"))
            *fetch |= IMAP_NFETCH_UID;
        else if (imap_arg_is_atom(a, "FLAGS"))
            *fetch |= IMAP_NFETCH_FLAGS;
        else if (a->type == IMAP_ARG_ATOM)
            note(p->fetch_refused, sizeof(p->fetch_refused), a->str, a->len);
        else {
            imap_bad(p->c, "NOTIFY: MessageNew's fetch attributes must be atoms");
            return -1;
        }
    }
    return 0;
}

/* Parses the events of a group (NONE or a list). Returns 0, or -1 after answering BAD. */
static int parse_events(notify_parse *p, const imap_arg *a, bool selected, unsigned *events,
                        unsigned *fetch)
{
    *events = 0;
    if (imap_arg_is_atom(a, "NONE")) return 0;
    if (a->type != IMAP_ARG_LIST || a->count == 0) {
        imap_bad(p->c, "NOTIFY: events must be NONE or a list such as (MessageNew MessageExpunge)");
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const imap_arg *e = &a->list[i];
        if (e->type != IMAP_ARG_ATOM) {
            imap_bad(p->c, "NOTIFY: an event name must be an atom");
            return -1;
        }
        unsigned bit = 0;
        if (strcasecmp(e->str, "MessageNew") == 0) {
            bit = IMAP_NEV_NEW;
            if (i + 1 < a->count && a->list[i + 1].type == IMAP_ARG_LIST) {
                if (!selected) {
                    imap_bad(p->c, "NOTIFY: fetch attributes after MessageNew are only allowed "
                                   "for SELECTED and SELECTED-DELAYED");
                    return -1;
                }
                if (parse_fetch(p, &a->list[++i], fetch) < 0) return -1;
            }
        } else if (strcasecmp(e->str, "MessageExpunge") == 0) {
            bit = IMAP_NEV_EXPUNGE;
        } else if (strcasecmp(e->str, "FlagChange") == 0) {
            bit = IMAP_NEV_FLAGS;
        } else if (strcasecmp(e->str, "MailboxName") == 0) {
            bit = IMAP_NEV_NAME;
        } else if (strcasecmp(e->str, "SubscriptionChange") == 0) {
            bit = IMAP_NEV_SUBS;
        } else {
            /* AnnotationChange, MailboxMetadataChange, ServerMetadataChange, extensions */
            note(p->unsupported, sizeof(p->unsupported), e->str, e->len);
            continue;
        }
        if (selected && !(bit & IMAP_NEV_MESSAGE)) {
            imap_bad(p->c,
                     "NOTIFY: SELECTED and SELECTED-DELAYED take message events only, "
                     "not %s",
                     e->str);
            return -1;
        }
        *events |= bit;
    }
    return 0;
}

/* Parses one event group into P->n. Returns 0, or -1 after answering BAD. */
static int parse_group(notify_parse *p, const imap_arg *a)
{
    struct imap_notify *n = p->n;
    if (a->type != IMAP_ARG_LIST || a->count < 2 || a->list[0].type != IMAP_ARG_ATOM) {
        imap_bad(p->c, "NOTIFY: each event group is (filter events), e.g. (personal "
                       "(MessageNew MessageExpunge))");
        return -1;
    }
    const char *f = a->list[0].str;
    bool sel = strcasecmp(f, "SELECTED") == 0, delayed = strcasecmp(f, "SELECTED-DELAYED") == 0;
    if (sel || delayed) {
        if (n->sel_mode) {
            imap_bad(p->c, "NOTIFY: only one SELECTED or SELECTED-DELAYED group is allowed");
            return -1;
        }
        if (a->count != 2) {
            imap_bad(p->c, "NOTIFY: %s takes no mailbox names", f);
            return -1;
        }
        n->sel_mode = sel ? 1 : 2;
        return parse_events(p, &a->list[1], true, &n->sel_events, &n->sel_fetch);
    }
    imap_notify_group g = {0};
    bool names = false;
    if (strcasecmp(f, "INBOXES") == 0)
        g.filter = IMAP_NF_INBOXES;
    else if (strcasecmp(f, "PERSONAL") == 0)
        g.filter = IMAP_NF_PERSONAL;
    else if (strcasecmp(f, "SUBSCRIBED") == 0)
        g.filter = IMAP_NF_SUBSCRIBED;
    else if (strcasecmp(f, "SUBTREE") == 0)
        g.filter = IMAP_NF_SUBTREE, names = true;
    else if (strcasecmp(f, "MAILBOXES") == 0)
        g.filter = IMAP_NF_MAILBOXES, names = true;
    else {
        imap_bad(p->c,
                 "NOTIFY: unknown filter '%.40s'; use SELECTED, SELECTED-DELAYED, INBOXES, "
                 "PERSONAL, SUBSCRIBED, SUBTREE or MAILBOXES",
                 f);
        return -1;
    }
    if (a->count != (names ? 3u : 2u)) {
        imap_bad(p->c,
                 names ? "NOTIFY: %s needs mailbox names, then events"
                       : "NOTIFY: %s takes no mailbox names, only events",
                 f);
        return -1;
    }
    /* the group joins N at once, so that N's free releases its names on any error */
    n->groups[n->ngroups++] = g;
    imap_notify_group *gp = &n->groups[n->ngroups - 1];
    if (names && parse_names(p, gp, &a->list[1]) < 0) return -1;
    unsigned fetch = 0;
    return parse_events(p, &a->list[names ? 2 : 1], false, &gp->events, &fetch);
}

void imap_cmd_notify(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    (void)cmd;
    (void)uid;
    if (nargs == 1 && imap_arg_is_atom(&args[0], "NONE")) {
        imap_notify_clear(c);
        imap_ok(c, "NOTIFY completed; no events will be sent");
        return;
    }
    if (nargs < 1 || !imap_arg_is_atom(&args[0], "SET")) {
        imap_bad(c, "usage: NOTIFY NONE, or NOTIFY SET [STATUS] (filter events) ...");
        return;
    }
    size_t i = 1;
    bool status = false;
    if (i < nargs && imap_arg_is_atom(&args[i], "STATUS")) status = true, i++;
    if (i == nargs) {
        imap_bad(c, "NOTIFY SET needs at least one event group, e.g. (personal (MessageNew "
                    "MessageExpunge))");
        return;
    }
    if (nargs - i > IMAP_NOTIFY_GROUPS_MAX) {
        imap_bad(c, "NOTIFY SET: %zu event groups; at most %d are allowed", nargs - i,
                 IMAP_NOTIFY_GROUPS_MAX);
        return;
    }
    notify_parse p = {.c = c};
    p.n = calloc(1, sizeof(*p.n));
    if (!p.n) abort();
    p.n->groups = calloc(nargs - i, sizeof(*p.n->groups));
    if (!p.n->groups) abort();
    for (; i < nargs; i++) {
        if (parse_group(&p, &args[i]) < 0) {
            imap_notify_free(&p.n);
            return;
        }
    }
    if (p.unsupported[0] || p.fetch_refused[0]) {
        if (p.unsupported[0])
            imap_no(c, "[" SUPPORTED "] NOTIFY: event '%s' is not supported", p.unsupported);
        else
            imap_no(c,
                    "[" SUPPORTED "] NOTIFY: MessageNew's fetch attribute '%s' is not "
                    "supported; UID and FLAGS are (FETCH the rest)",
                    p.fetch_refused);
        imap_notify_free(&p.n);
        return;
    }
    int rc = imap_notify_install(c, p.n, status);
    if (rc < 0) {
        imap_no_store(c, rc, "NOTIFY");
        return;
    }
    imap_ok(c, "NOTIFY completed");
}
