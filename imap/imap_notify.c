/* imap_notify.c: NOTIFY (RFC 5465): what a registration watches, and the pushes of STATUS, LIST
 * and selected-mailbox changes it asks for */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "imap/imap_notify.h"

void imap_notify_free(struct imap_notify **np)
{
    struct imap_notify *n = *np;
    if (!n) return;
    for (size_t i = 0; i < n->ngroups; i++) {
        for (size_t k = 0; k < n->groups[i].nnames; k++)
            free(n->groups[i].names[k]);
        free(n->groups[i].names);
    }
    free(n->groups);
    for (size_t i = 0; i < n->nmbs; i++)
        free(n->mbs[i].name);
    free(n->mbs);
    for (size_t i = 0; i < n->nsubs; i++)
        free(n->subs[i]);
    free(n->subs);
    free(n->pend);
    free(n);
    *np = NULL;
}

void imap_notify_clear(imap_client *c)
{
    imap_notify_free(&c->notify);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

/* True if NAME is ROOT or below it. */
static bool in_subtree(const char *name, const char *root)
{
    size_t n = strlen(root);
    return strncmp(name, root, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* The events N watches for the (non-selected) mailbox NAME. */
static unsigned events_for(const struct imap_notify *n, const char *name, bool subscribed)
{
    unsigned ev = 0;
    for (size_t i = 0; i < n->ngroups; i++) {
        const imap_notify_group *g = &n->groups[i];
        bool hit = false;
        switch (g->filter) {
        case IMAP_NF_INBOXES:
            hit = in_subtree(name, "INBOX");
            break;
        case IMAP_NF_PERSONAL:
            hit = true;
            break;
        case IMAP_NF_SUBSCRIBED:
            hit = subscribed;
            break;
        case IMAP_NF_SUBTREE:
            for (size_t k = 0; k < g->nnames && !hit; k++)
                hit = in_subtree(name, g->names[k]);
            break;
        case IMAP_NF_MAILBOXES:
            for (size_t k = 0; k < g->nnames && !hit; k++)
                hit = strcmp(name, g->names[k]) == 0;
            break;
        }
        if (hit) ev |= g->events;
    }
    return ev;
}

/* ---- the caches: mailboxes by id, subscribed names ----------------------------------- */

static imap_notify_mb *mb_find(struct imap_notify *n, uint32_t id)
{
    for (size_t i = 0; i < n->nmbs; i++)
        if (n->mbs[i].id == id) return &n->mbs[i];
    return NULL;
}

static void mb_set(struct imap_notify *n, uint32_t id, const char *name)
{
    imap_notify_mb *m = mb_find(n, id);
    if (m) {
        free(m->name);
        m->name = xstrdup(name);
        return;
    }
    if (n->nmbs == n->cap_mbs) {
        n->cap_mbs = n->cap_mbs ? n->cap_mbs * 2 : 16;
        imap_notify_mb *p = realloc(n->mbs, n->cap_mbs * sizeof(*p));
        if (!p) abort();
        n->mbs = p;
    }
    n->mbs[n->nmbs++] = (imap_notify_mb){id, xstrdup(name)};
}

static void mb_forget(struct imap_notify *n, uint32_t id)
{
    imap_notify_mb *m = mb_find(n, id);
    if (!m) return;
    free(m->name);
    *m = n->mbs[--n->nmbs];
}

static bool mb_has_children(const struct imap_notify *n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n->nmbs; i++)
        if (strncmp(n->mbs[i].name, name, len) == 0 && n->mbs[i].name[len] == '/') return true;
    return false;
}

static int mb_list_cb(void *ctx, const store_mailbox *mb)
{
    mb_set(ctx, mb->id, mb->name);
    return 0;
}

typedef struct subs_read {
    char **v;
    size_t n, cap;
} subs_read;

static int subs_cb(void *ctx, const char *name)
{
    subs_read *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        char **p = realloc(r->v, r->cap * sizeof(*p));
        if (!p) abort();
        r->v = p;
    }
    r->v[r->n++] = xstrdup(name);
    return 0;
}

static bool subs_has(char *const *v, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(v[mid], name);
        if (r == 0) return true;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the subscription list; the names come sorted (byte order) from the store, sorted
 * again here so that the binary search never depends on that. */
static int subs_load(imap_client *c, store_txn *t, subs_read *r)
{
    memset(r, 0, sizeof(*r));
    int rc = store_subscription_list(t, c->user_id, subs_cb, r);
    if (r->n > 1) qsort(r->v, r->n, sizeof(*r->v), cmp_str);
    return rc;
}

static void subs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- STATUS and LIST lines --------------------------------------------------------------- */

/* With CONDSTORE on, FlagChange's STATUS carries UIDVALIDITY and HIGHESTMODSEQ, as RFC 5465
 * 5.1 and 5.2 ask. */
static bool condstore_enabled(const imap_client *c)
{
    return c->condstore;
}

/* The items of the STATUS pushed for changes WHAT of a mailbox watched for EVENTS. */
static unsigned push_items(const imap_client *c, unsigned what, unsigned events)
{
    unsigned items = 0;
    if ((what & (IMAP_NEV_NEW | IMAP_NEV_EXPUNGE)) && (events & (IMAP_NEV_NEW | IMAP_NEV_EXPUNGE)))
        items |= IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT | IMAP_STATUS_UNSEEN;
    if ((what & IMAP_NEV_FLAGS) && (events & IMAP_NEV_FLAGS)) {
        items |= IMAP_STATUS_UNSEEN; /* 5.1: without CONDSTORE, UNSEEN is what can be told */
        if (condstore_enabled(c)) items |= IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_HIGHESTMODSEQ;
    }
    return items;
}

/* The items of SET STATUS's first STATUS for a mailbox watched for EVENTS (RFC 5465 3.1). */
static unsigned initial_items(unsigned events)
{
    unsigned items = 0;
    if (events & IMAP_NEV_EXPUNGE) items |= IMAP_STATUS_MESSAGES;
    if (events & IMAP_NEV_NEW)
        items |= IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT | IMAP_STATUS_UIDVALIDITY;
    if (events & IMAP_NEV_FLAGS) items |= IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_HIGHESTMODSEQ;
    return items;
}

/* "* LIST (attrs) "/" name", with OLDNAME when OLD is not NULL. */
static void list_line(imap_client *c, const char *name, bool exists, bool subscribed, bool children,
                      const char *old)
{
    mfs_buf *o = &c->out;
    mfs_buf_puts(o, "* LIST (");
    if (!exists)
        mfs_buf_puts(o, "\\NonExistent");
    else
        mfs_buf_puts(o, children ? "\\HasChildren" : "\\HasNoChildren");
    if (subscribed) mfs_buf_puts(o, " \\Subscribed");
    mfs_buf_puts(o, ") \"/\" ");
    imap_mailbox_put(c, o, name);
    if (old) {
        mfs_buf_puts(o, " (\"OLDNAME\" (");
        imap_mailbox_put(c, o, old);
        mfs_buf_puts(o, "))");
    }
    mfs_buf_puts(o, "\r\n");
}

/* ---- install ------------------------------------------------------------------------ */

typedef struct initial_ctx {
    imap_client *c;
    store_txn *t;
} initial_ctx;

static int initial_cb(void *ctx, const store_mailbox *mb)
{
    initial_ctx *x = ctx;
    imap_client *c = x->c;
    if (c->state == IMAP_ST_SELECTED && mb->id == c->sel.mailbox_id) return 0;
    unsigned items = initial_items(events_for(c->notify, mb->name, mb->subscribed));
    if (items) imap_status_put(c, x->t, mb, items);
    return 0;
}

int imap_notify_install(imap_client *c, struct imap_notify *n, bool status)
{
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        imap_notify_free(&n);
        return rc;
    }
    subs_read r;
    rc = store_mailbox_list(t, c->user_id, mb_list_cb, n);
    if (rc == 0) rc = subs_load(c, t, &r);
    if (rc < 0) {
        store_read_end(&t);
        imap_notify_free(&n);
        return rc;
    }
    n->subs = r.v;
    n->nsubs = r.n;
    n->feed_pos = store_change_seq(t);
    imap_notify_free(&c->notify);
    c->notify = n;
    if (status) {
        initial_ctx x = {c, t};
        store_mailbox_list(t, c->user_id, initial_cb, &x);
    }
    store_read_end(&t);
    return 0;
}

/* ---- pushes ------------------------------------------------------------------------- */

int imap_notify_sync(imap_client *c, bool allow_expunge)
{
    imap_selected *s = &c->sel;
    struct imap_notify *n = c->notify;
    bool fetch = n && n->sel_mode && (n->sel_events & IMAP_NEV_NEW) && n->sel_fetch &&
                 c->state == IMAP_ST_SELECTED;
    uint32_t last = s->n ? s->uids[s->n - 1] : 0;
    int rc = imap_sync(c, allow_expunge);
    if (rc < 0 || !fetch || c->state != IMAP_ST_SELECTED) return rc;
    /* the new messages are at the end of the view, above the highest UID it had */
    size_t i = s->n;
    while (i > 0 && s->uids[i - 1] > last)
        i--;
    if (i == s->n) return rc;
    store_txn *t;
    if (store_read_begin(c->srv->st, &t) < 0) return rc;
    for (; i < s->n; i++) {
        store_msg m;
        if (store_msg_get(t, s->mailbox_id, s->uids[i], &m) < 0) continue;
        if (n->sel_fetch & IMAP_NFETCH_FLAGS) imap_keywords_announce(c, m.keywords);
        mfs_buf_printf(&c->out, "* %zu FETCH (", i + 1);
        const char *sp = "";
        if (n->sel_fetch & IMAP_NFETCH_UID) {
            mfs_buf_printf(&c->out, "UID %u", s->uids[i]);
            sp = " ";
        }
        if (n->sel_fetch & IMAP_NFETCH_FLAGS) {
            mfs_buf_printf(&c->out, "%sFLAGS ", sp);
            imap_flags_put_msg(c, &c->out, s->uids[i], m.flags, m.keywords);
        }
        mfs_buf_puts(&c->out, ")\r\n");
    }
    store_read_end(&t);
    return rc;
}

/* One change of the feed seen by a push; mailbox events are handled in order afterwards. */
typedef struct name_ev {
    uint8_t kind;
    uint32_t id;
} name_ev;

typedef struct push_ctx {
    imap_client *c;
    name_ev *ev;
    size_t nev, cap_ev;
} push_ctx;

static void pend_add(struct imap_notify *n, uint32_t id, unsigned what)
{
    for (size_t i = 0; i < n->npend; i++) {
        if (n->pend[i].id == id) {
            n->pend[i].what |= what;
            return;
        }
    }
    if (n->npend == n->cap_pend) {
        n->cap_pend = n->cap_pend ? n->cap_pend * 2 : 16;
        imap_notify_pend *p = realloc(n->pend, n->cap_pend * sizeof(*p));
        if (!p) abort();
        n->pend = p;
    }
    n->pend[n->npend++] = (imap_notify_pend){id, what};
}

static int push_cb(void *ctx, const store_change *ch)
{
    push_ctx *x = ctx;
    imap_client *c = x->c;
    struct imap_notify *n = c->notify;
    if (ch->user_id != c->user_id) return 0;
    bool selected = c->state == IMAP_ST_SELECTED && ch->mailbox_id == c->sel.mailbox_id;
    switch (ch->kind) {
    case STORE_CH_APPEND:
        if (!selected) pend_add(n, ch->mailbox_id, IMAP_NEV_NEW);
        break;
    case STORE_CH_EXPUNGE:
        if (!selected) pend_add(n, ch->mailbox_id, IMAP_NEV_EXPUNGE);
        break;
    case STORE_CH_FLAGS:
        if (!selected) pend_add(n, ch->mailbox_id, IMAP_NEV_FLAGS);
        break;
    case STORE_CH_MBOX_SUBSCRIBE:
        n->subs_changed = true;
        break;
    case STORE_CH_MBOX_CREATE:
    case STORE_CH_MBOX_DELETE:
    case STORE_CH_MBOX_RENAME:
        if (x->nev == x->cap_ev) {
            x->cap_ev = x->cap_ev ? x->cap_ev * 2 : 16;
            name_ev *p = realloc(x->ev, x->cap_ev * sizeof(*p));
            if (!p) abort();
            x->ev = p;
        }
        x->ev[x->nev++] = (name_ev){ch->kind, ch->mailbox_id};
        break;
    default:
        break;
    }
    return 0;
}

/* A LIST that push_names sends once the cache has every change of the batch. */
typedef struct name_out {
    char *name, *old; /* old: OLDNAME of a rename, else NULL */
    bool exists, subscribed;
} name_out;

/* MailboxName: a LIST for each name created, deleted or renamed (RFC 5465 5.4); a child
 * renamed with its parent gets none of its own. The cache takes the whole batch first, so
 * that \HasChildren is right for a parent whose children follow it in the feed. */
static void push_names(imap_client *c, store_txn *t, push_ctx *x)
{
    struct imap_notify *n = c->notify;
    if (!x->nev) return;
    /* the old names of everything renamed in this batch, to recognise children */
    char **olds = calloc(x->nev, sizeof(*olds));
    name_out *out = calloc(x->nev, sizeof(*out));
    if (!olds || !out) abort();
    size_t nout = 0;
    for (size_t i = 0; i < x->nev; i++) {
        imap_notify_mb *m = x->ev[i].kind == STORE_CH_MBOX_RENAME ? mb_find(n, x->ev[i].id) : NULL;
        if (m) olds[i] = xstrdup(m->name);
    }
    for (size_t i = 0; i < x->nev; i++) {
        const name_ev *e = &x->ev[i];
        store_mailbox mb;
        bool exists = store_mailbox_get_id(t, e->id, &mb) == 0 && mb.user_id == c->user_id;
        if (e->kind == STORE_CH_MBOX_CREATE) {
            if (!exists) continue; /* gone again: its DELETE comes later, unknown to us */
            mb_set(n, e->id, mb.name);
            if (events_for(n, mb.name, mb.subscribed) & IMAP_NEV_NAME)
                out[nout++] = (name_out){xstrdup(mb.name), NULL, true, mb.subscribed};
        } else if (e->kind == STORE_CH_MBOX_DELETE) {
            imap_notify_mb *m = mb_find(n, e->id);
            if (!m) continue;
            char *name = xstrdup(m->name);
            mb_forget(n, e->id);
            bool sub = subs_has(n->subs, n->nsubs, name);
            if (events_for(n, name, sub) & IMAP_NEV_NAME)
                out[nout++] = (name_out){name, NULL, false, sub};
            else
                free(name);
        } else {
            if (!exists) continue; /* renamed, then deleted: the DELETE tells */
            mb_set(n, e->id, mb.name);
            if (!olds[i]) continue;
            bool child = false;
            for (size_t k = 0; k < x->nev && !child; k++)
                child = k != i && olds[k] && strcmp(olds[k], olds[i]) != 0 &&
                        in_subtree(olds[i], olds[k]);
            if (child) continue;
            unsigned ev = events_for(n, mb.name, mb.subscribed) |
                          events_for(n, olds[i], subs_has(n->subs, n->nsubs, olds[i]));
            if (ev & IMAP_NEV_NAME)
                out[nout++] = (name_out){xstrdup(mb.name), xstrdup(olds[i]), true, mb.subscribed};
        }
    }
    for (size_t i = 0; i < nout; i++) {
        list_line(c, out[i].name, out[i].exists, out[i].subscribed,
                  out[i].exists && mb_has_children(n, out[i].name), out[i].old);
        free(out[i].name);
        free(out[i].old);
    }
    for (size_t i = 0; i < x->nev; i++)
        free(olds[i]);
    free(olds);
    free(out);
}

/* SubscriptionChange: a LIST for each name that joined or left the list (RFC 5465 5.5). */
static void push_subs(imap_client *c, store_txn *t)
{
    struct imap_notify *n = c->notify;
    subs_read r;
    if (subs_load(c, t, &r) < 0) {
        subs_free(r.v, r.n);
        return; /* next time */
    }
    n->subs_changed = false;
    /* both sorted: one merge pass */
    size_t i = 0, k = 0;
    while (i < n->nsubs || k < r.n) {
        int cmp = i == n->nsubs ? 1 : k == r.n ? -1 : strcmp(n->subs[i], r.v[k]);
        const char *name = NULL;
        bool now = false;
        if (cmp < 0)
            name = n->subs[i++]; /* unsubscribed */
        else if (cmp > 0)
            name = r.v[k++], now = true; /* subscribed */
        else {
            i++, k++;
            continue;
        }
        store_mailbox mb;
        bool exists = store_mailbox_get(t, c->user_id, name, &mb) == 0;
        /* SUBSCRIBED matches a name subscribed before or after the change */
        if (!(events_for(n, name, true) & IMAP_NEV_SUBS)) continue;
        list_line(c, name, exists, now, exists && mb_has_children(n, name), NULL);
    }
    subs_free(n->subs, n->nsubs);
    n->subs = r.v;
    n->nsubs = r.n;
}

void imap_notify_push(imap_client *c)
{
    struct imap_notify *n = c->notify;
    if (!n || c->state == IMAP_ST_NOAUTH || c->state == IMAP_ST_LOGOUT) return;
    if (c->out.len >= IMAP_OUT_HIGH) return; /* not reading: the feed keeps the changes */
    store_txn *t;
    if (store_read_begin(c->srv->st, &t) < 0) return; /* next time */
    uint64_t now = store_change_seq(t);
    if (now == n->feed_pos) {
        store_read_end(&t);
        return;
    }
    push_ctx x = {.c = c};
    n->npend = 0;
    int rc = store_changes_since(t, n->feed_pos, push_cb, &x);
    if (rc == -ERANGE) {
        /* the feed no longer reaches back: RFC 5465 5.8 */
        store_read_end(&t);
        free(x.ev);
        imap_notify_clear(c);
        mfs_buf_puts(&c->out, "* OK [NOTIFICATIONOVERFLOW] too many changes were missed; "
                              "NOTIFY is off, send NOTIFY SET again\r\n");
        return;
    }
    if (rc < 0) {
        store_read_end(&t);
        free(x.ev);
        return; /* next time */
    }
    n->feed_pos = now;
    for (size_t i = 0; i < n->npend; i++) {
        store_mailbox mb;
        if (store_mailbox_get_id(t, n->pend[i].id, &mb) < 0 || mb.user_id != c->user_id) continue;
        unsigned items = push_items(c, n->pend[i].what, events_for(n, mb.name, mb.subscribed));
        if (items) imap_status_put(c, t, &mb, items);
    }
    n->npend = 0;
    push_names(c, t, &x);
    free(x.ev);
    if (n->subs_changed) push_subs(c, t);
    store_read_end(&t);
}

void imap_notify_wake(imap_client *c)
{
    struct imap_notify *n = c->notify;
    if (!n || c->dead || c->close_after_flush) return;
    if (c->cont) return; /* a command runs: its end pushes */
    if (c->wait == IMAP_WAIT_IDLE) {
        if (c->state == IMAP_ST_SELECTED && imap_notify_sync(c, true) < 0) {
            c->close_after_flush = true;
            return;
        }
    } else if (c->wait != IMAP_WAIT_NONE) {
        return;
    } else if (c->state == IMAP_ST_SELECTED && n->sel_mode && n->sel_events) {
        /* SELECTED: at once; SELECTED-DELAYED: expunges wait for a command that allows them */
        if (imap_notify_sync(c, n->sel_mode == 1) < 0) {
            c->close_after_flush = true;
            return;
        }
    }
    imap_notify_push(c);
}
