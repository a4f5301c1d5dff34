/* cmd_fetch.c: FETCH and UID FETCH, produced in steps so a big answer never sits whole in memory */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_quote.h"
#include "store/mime.h"

enum item_kind {
    I_UID,
    I_FLAGS,
    I_INTERNALDATE,
    I_SIZE,
    I_ENVELOPE,
    I_BODY, /* BODY without a section: the non-extensible BODYSTRUCTURE */
    I_BODYSTRUCTURE,
    I_SECTION, /* BODY[...] and the RFC822 forms */
    I_BINARY,
    I_BINARY_SIZE,
};

enum spec { SP_NONE, SP_HEADER, SP_FIELDS, SP_FIELDS_NOT, SP_TEXT, SP_MIME };

#define MAX_ITEMS 64
#define MAX_FIELDS 1000 /* header field names in one HEADER.FIELDS list */
#define FETCH_STEP 500 /* messages per read transaction */

typedef struct fetch_item {
    enum item_kind kind;
    bool peek;
    char part[64]; /* "1.2", "" for the whole message */
    enum spec spec;
    char **fields;
    size_t nfields;
    bool partial;
    uint64_t off, len;
    char *name; /* how the answer names it, without the <origin> (malloc'ed) */
} fetch_item;

typedef struct fetch_ctx {
    fetch_item items[MAX_ITEMS];
    size_t nitems;
    bool uid;
    bool set_seen; /* some item sets \Seen */
    bool need_body, need_summary;
    uint32_t *uids, *seqs;
    size_t n, pos;
    uint32_t *seen_now; /* messages that got \Seen from this FETCH (ascending UIDs) */
    size_t nseen;
    bool gone;
    bool unknown_cte;
} fetch_ctx;

static void fetch_free(void *p)
{
    fetch_ctx *x = p;
    if (!x) return;
    for (size_t i = 0; i < x->nitems; i++) {
        for (size_t k = 0; k < x->items[i].nfields; k++)
            free(x->items[i].fields[k]);
        free(x->items[i].fields);
        free(x->items[i].name);
    }
    free(x->uids);
    free(x->seqs);
    free(x->seen_now);
    free(x);
}

static fetch_item *add_item(fetch_ctx *x, enum item_kind k, const char *name)
{
    for (size_t i = 0; i < x->nitems; i++)
        if (x->items[i].kind == k && k != I_SECTION && k != I_BINARY && k != I_BINARY_SIZE)
            return &x->items[i];
    if (x->nitems == MAX_ITEMS) return NULL;
    fetch_item *it = &x->items[x->nitems];
    memset(it, 0, sizeof(*it));
    if (!(it->name = strdup(name))) abort(); /* as imap_buf does: no half-built answer */
    it->kind = k;
    x->nitems++;
    return it;
}

/* Parses the section text between brackets into IT; returns 0 or -1. */
static int parse_section(fetch_item *it, const char *s, size_t len, bool binary)
{
    size_t i = 0, pl = 0;
    /* part numbers */
    while (i < len && isdigit((unsigned char)s[i])) {
        size_t j = i;
        while (j < len && isdigit((unsigned char)s[j]))
            j++;
        if (s[i] == '0' || j - i > 5) return -1;
        if (pl + (j - i) + 2 > sizeof(it->part)) return -1;
        if (pl) it->part[pl++] = '.';
        memcpy(it->part + pl, s + i, j - i);
        pl += j - i;
        it->part[pl] = '\0';
        i = j;
        if (i < len && s[i] == '.')
            i++;
        else
            break;
    }
    const char *rest = s + i;
    size_t rl = len - i;
    if (rl == 0) {
        it->spec = SP_NONE;
        return 0;
    }
    (void)binary; /* BINARY takes the same section texts (as Dovecot does) */
    if (rl == 6 && strncasecmp(rest, "HEADER", 6) == 0) {
        it->spec = SP_HEADER;
        return 0;
    }
    if (rl == 4 && strncasecmp(rest, "TEXT", 4) == 0) {
        it->spec = SP_TEXT;
        return 0;
    }
    if (rl == 4 && strncasecmp(rest, "MIME", 4) == 0) {
        if (!pl) return -1;
        it->spec = SP_MIME;
        return 0;
    }
    size_t kl;
    if (rl > 18 && strncasecmp(rest, "HEADER.FIELDS.NOT ", 18) == 0) {
        it->spec = SP_FIELDS_NOT;
        kl = 18;
    } else if (rl > 14 && strncasecmp(rest, "HEADER.FIELDS ", 14) == 0) {
        it->spec = SP_FIELDS;
        kl = 14;
    } else {
        return -1;
    }
    const char *f = rest + kl, *end = rest + rl;
    while (f < end && *f == ' ')
        f++;
    if (f >= end || *f != '(' || end[-1] != ')') return -1;
    f++;
    end--;
    it->fields = calloc(MAX_FIELDS, sizeof(char *));
    if (!it->fields) abort();
    while (f < end) {
        while (f < end && *f == ' ')
            f++;
        if (f >= end) break;
        const char *st = f;
        size_t fl;
        if (*f == '"') {
            st = ++f;
            while (f < end && *f != '"')
                f++;
            fl = (size_t)(f - st);
            if (f < end) f++;
        } else {
            while (f < end && *f != ' ')
                f++;
            fl = (size_t)(f - st);
        }
        if (it->nfields == MAX_FIELDS || fl == 0 || fl > 200) return -1;
        it->fields[it->nfields++] = strndup(st, fl);
    }
    return it->nfields ? 0 : -1;
}

/* Parses one fetch attribute; returns 0 or -1 after answering BAD. */
static int parse_att(imap_client *c, fetch_ctx *x, const imap_arg *a)
{
    if (a->type != IMAP_ARG_ATOM) {
        imap_bad(c, "invalid FETCH item");
        return -1;
    }
    const char *s = a->str;
    static const struct {
        const char *name;
        enum item_kind kind;
    } simple[] = {
        {"UID", I_UID},
        {"FLAGS", I_FLAGS},
        {"INTERNALDATE", I_INTERNALDATE},
        {"RFC822.SIZE", I_SIZE},
        {"ENVELOPE", I_ENVELOPE},
        {"BODY", I_BODY},
        {"BODYSTRUCTURE", I_BODYSTRUCTURE},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (strcasecmp(s, simple[i].name) == 0) {
            if (!add_item(x, simple[i].kind, simple[i].name)) goto toomany;
            if (simple[i].kind == I_ENVELOPE || simple[i].kind == I_BODY ||
                simple[i].kind == I_BODYSTRUCTURE)
                x->need_summary = true;
            return 0;
        }
    }
    if (strcasecmp(s, "ALL") == 0 || strcasecmp(s, "FAST") == 0 || strcasecmp(s, "FULL") == 0) {
        add_item(x, I_FLAGS, "FLAGS");
        add_item(x, I_INTERNALDATE, "INTERNALDATE");
        add_item(x, I_SIZE, "RFC822.SIZE");
        if (strcasecmp(s, "FAST") != 0) {
            add_item(x, I_ENVELOPE, "ENVELOPE");
            x->need_summary = true;
        }
        if (strcasecmp(s, "FULL") == 0) add_item(x, I_BODY, "BODY");
        return 0;
    }
    fetch_item *it;
    if (strcasecmp(s, "RFC822") == 0 || strcasecmp(s, "RFC822.HEADER") == 0 ||
        strcasecmp(s, "RFC822.TEXT") == 0) {
        if (!(it = add_item(x, I_SECTION, s))) goto toomany;
        for (char *p = it->name; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        it->spec = s[6] == '\0'                          ? SP_NONE
                   : toupper((unsigned char)s[7]) == 'H' ? SP_HEADER
                                                         : SP_TEXT;
        it->peek = it->spec == SP_HEADER;
        x->need_body = true;
        if (!it->peek) x->set_seen = true;
        return 0;
    }
    const char *br = strchr(s, '[');
    if (!br) goto unknown;
    size_t pre = (size_t)(br - s);
    enum item_kind k;
    bool peek = false;
    const char *resp;
    if (pre == 4 && strncasecmp(s, "BODY", 4) == 0) {
        k = I_SECTION;
        resp = "BODY";
    } else if (pre == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0) {
        k = I_SECTION;
        peek = true;
        resp = "BODY";
    } else if (pre == 6 && strncasecmp(s, "BINARY", 6) == 0) {
        k = I_BINARY;
        resp = "BINARY";
    } else if (pre == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
        k = I_BINARY;
        peek = true;
        resp = "BINARY";
    } else if (pre == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0) {
        k = I_BINARY_SIZE;
        peek = true;
        resp = "BINARY.SIZE";
    } else {
        goto unknown;
    }
    const char *close = strrchr(s, ']');
    if (!close || close < br) {
        imap_bad(c, "missing ']' in FETCH item");
        return -1;
    }
    if (!(it = add_item(x, k, resp))) goto toomany;
    it->peek = peek;
    if (parse_section(it, br + 1, (size_t)(close - br - 1), k != I_SECTION) < 0) {
        imap_bad(c, "invalid section in '%.60s'", s);
        return -1;
    }
    /* the answer repeats the section as given, whole, upper-cased outside quotes */
    size_t rl = strlen(resp), sl = (size_t)(close - br - 1);
    char *nm = malloc(rl + sl + 3);
    if (!nm) abort();
    memcpy(nm, resp, rl);
    size_t w = rl;
    nm[w++] = '[';
    bool q = false;
    for (const char *p = br + 1; p < close; p++) {
        if (*p == '"') q = !q;
        nm[w++] = q ? *p : (char)toupper((unsigned char)*p);
    }
    nm[w++] = ']';
    nm[w] = '\0';
    free(it->name);
    it->name = nm;
    const char *part = close + 1;
    if (*part == '<') {
        unsigned long long o = 0, l = UINT64_MAX;
        int n = 0, m = 0;
        /* <origin.length>, and <origin> (to the end) as Dovecot also takes it */
        bool two = sscanf(part, "<%llu.%llu>%n", &o, &l, &n) == 2 && part[n] == '\0';
        bool one = !two && sscanf(part, "<%llu>%n", &o, &m) == 1 && part[m] == '\0';
        if (!one)
            l = two ? l : 0;
        else
            l = UINT64_MAX;
        if (k == I_BINARY_SIZE || (!two && !one) || l == 0 || !isdigit((unsigned char)part[1])) {
            imap_bad(c, "invalid partial in '%.60s'", s);
            return -1;
        }
        it->partial = true;
        it->off = o;
        it->len = l;
    } else if (*part) {
        goto unknown;
    }
    x->need_body = true;
    x->need_summary = true;
    if (!it->peek) x->set_seen = true;
    return 0;
unknown:
    imap_bad(c, "unknown FETCH item '%.60s'", s);
    return -1;
toomany:
    imap_bad(c, "too many FETCH items");
    return -1;
}

/* The bytes a section names, CRLF-converted (or decoded for BINARY); returns 0, -ENOENT for a
 * missing part, or -EPROTO for an unknown transfer encoding. */
static int section_text(const fetch_item *it, const char *data, size_t dlen, const void *blob,
                        size_t bloblen, imap_buf *out)
{
    imap_buf_puts(out, "");
    uint64_t hoff = 0, hlen = 0, boff = 0, blen = 0;
    store_mime_part p;
    bool have = blob && store_mime_part_find(blob, bloblen, it->part, &p) == 0;
    if (it->part[0] == '\0') {
        size_t hl, bo;
        if (have) {
            hoff = p.header_off;
            hlen = p.header_len;
            boff = p.body_off;
            blen = p.body_len;
        } else {
            imap_msg_split(data, dlen, &hl, &bo);
            hlen = hl;
            boff = bo;
            blen = dlen - bo;
        }
        if (it->spec == SP_NONE) {
            imap_crlf_append(out, data, dlen); /* BODY[] and BINARY[] alike */
            return 0;
        }
    } else {
        if (!have) return -ENOENT;
        if (it->spec == SP_MIME) {
            hoff = p.header_off;
            hlen = p.header_len;
        } else if (it->spec == SP_NONE) {
            boff = p.body_off;
            blen = p.body_len;
        } else {
            if (!p.is_message) return 0; /* HEADER/TEXT of a part that is not a message: empty */
            hoff = p.msg_header_off;
            hlen = p.msg_header_len;
            boff = p.msg_body_off;
            blen = p.msg_body_len;
        }
    }
    if (hoff + hlen > dlen || boff + blen > dlen) return -ENOENT;
    if (it->kind != I_SECTION && it->spec == SP_NONE && !p.is_multipart && !p.is_message) {
        /* BINARY of a leaf part: undo its transfer encoding; anything else is as BODY */
        return imap_cte_decode(p.encoding, data + boff, blen, out) < 0 ? -EPROTO : 0;
    }
    switch (it->spec) {
    case SP_HEADER:
    case SP_MIME:
        imap_crlf_append(out, data + hoff, hlen);
        break;
    case SP_FIELDS:
    case SP_FIELDS_NOT:
        imap_header_filter(out, data + hoff, hlen, it->fields, it->nfields,
                           it->spec == SP_FIELDS_NOT);
        break;
    case SP_TEXT:
    case SP_NONE:
        imap_crlf_append(out, data + boff, blen);
        break;
    }
    return 0;
}

static void put_literal(imap_buf *o, const char *s, size_t len, bool binary)
{
    bool nul = binary && memchr(s, '\0', len) != NULL;
    imap_buf_printf(o, "%s{%zu}\r\n", nul ? "~" : "", len);
    imap_buf_append(o, s, len);
}

/* Writes one message's FETCH answer; returns 0, -ENOENT if it is gone, or -EPROTO. */
static int fetch_one(imap_client *c, fetch_ctx *x, store_txn *t, uint32_t uid, uint32_t seq,
                     bool seen_now)
{
    store_msg m;
    int rc = store_msg_get(t, c->sel.mailbox_id, uid, &m);
    if (rc == -ENOENT) {
        /* expunged, not yet announced: the UID is still known, nothing else is */
        bool uid_only = true;
        for (size_t i = 0; i < x->nitems; i++)
            uid_only = uid_only && x->items[i].kind == I_UID;
        if (uid_only) {
            imap_buf_printf(&c->out, "* %u FETCH (UID %u)\r\n", seq, uid);
            return 0;
        }
    }
    if (rc < 0) return rc;
    const char *data = NULL;
    size_t dlen = 0;
    const void *blob = NULL;
    size_t bloblen = 0;
    if (x->need_body && store_msg_body(t, &m, &data, &dlen) < 0) return -ENOENT;
    if (x->need_summary && store_msg_summary(t, &m, &blob, &bloblen) < 0) blob = NULL;
    imap_buf *o = &c->out;
    imap_buf_puts(o, "* ");
    imap_buf_put_u64(o, seq);
    imap_buf_puts(o, " FETCH (");
    bool first = true, flags_done = false;
#define SEP()                                                                                      \
    do {                                                                                           \
        if (!first) imap_buf_putc(o, ' ');                                                         \
        first = false;                                                                             \
    } while (0)
    if (x->uid) {
        SEP();
        imap_buf_puts(o, "UID ");
        imap_buf_put_u64(o, uid);
    }
    for (size_t i = 0; i < x->nitems; i++) {
        fetch_item *it = &x->items[i];
        switch (it->kind) {
        case I_UID:
            if (!x->uid) {
                SEP();
                imap_buf_puts(o, "UID ");
                imap_buf_put_u64(o, uid);
            }
            break;
        case I_FLAGS:
            SEP();
            imap_buf_puts(o, "FLAGS ");
            imap_flags_put_msg(c, o, uid, m.flags, m.keywords);
            flags_done = true;
            break;
        case I_INTERNALDATE:
            SEP();
            imap_buf_puts(o, "INTERNALDATE ");
            imap_date_time_put(o, m.internaldate, m.tz_min);
            break;
        case I_SIZE:
            SEP();
            imap_buf_puts(o, "RFC822.SIZE ");
            imap_buf_put_u64(o, m.crlf_size);
            break;
        case I_ENVELOPE: {
            const char *e;
            size_t el;
            SEP();
            imap_buf_puts(o, "ENVELOPE ");
            if (blob && store_mime_envelope(blob, bloblen, &e, &el) == 0)
                imap_buf_append(o, e, el);
            else
                imap_buf_puts(o, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
            break;
        }
        case I_BODY:
        case I_BODYSTRUCTURE: {
            const char *e;
            size_t el;
            bool ext = it->kind == I_BODYSTRUCTURE;
            SEP();
            imap_buf_puts(o, ext ? "BODYSTRUCTURE " : "BODY ");
            if (blob && store_mime_bodystructure(blob, bloblen, ext, &e, &el) == 0)
                imap_buf_append(o, e, el);
            else
                imap_buf_printf(o,
                                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
                                "\"7bit\" %llu %u)",
                                (unsigned long long)m.crlf_size, m.lines);
            break;
        }
        case I_SECTION:
        case I_BINARY:
        case I_BINARY_SIZE: {
            imap_buf text = {0};
            rc = section_text(it, data, dlen, blob, bloblen, &text);
            if (rc == -EPROTO) {
                imap_buf_free(&text);
                /* finish the line so the stream stays well-formed, then fail the command */
                imap_buf_puts(o, ")\r\n");
                return -EPROTO;
            }
            size_t tl = rc == 0 ? text.len : 0;
            SEP();
            if (it->kind == I_BINARY_SIZE) {
                imap_buf_printf(o, "%s %zu", it->name, tl);
                imap_buf_free(&text);
                break;
            }
            const char *tp = text.data ? text.data : "";
            if (it->partial) {
                imap_buf_printf(o, "%s<%llu> ", it->name, (unsigned long long)it->off);
                if (it->off >= tl) {
                    tp = "";
                    tl = 0;
                } else {
                    tp += it->off;
                    tl -= (size_t)it->off;
                    if (tl > it->len) tl = (size_t)it->len;
                }
            } else {
                imap_buf_printf(o, "%s ", it->name);
            }
            if (rc == -ENOENT && it->kind == I_SECTION)
                imap_buf_puts(o, "NIL");
            else {
                /* NUL may not appear in a literal outside BINARY: send it as 0x80, as
                 * Dovecot does */
                if (it->kind == I_SECTION && text.data)
                    for (char *z = memchr(text.data, '\0', text.len); z;
                         z = memchr(z, '\0', text.len - (size_t)(z - text.data)))
                        *z = (char)0x80;
                put_literal(o, tp, tl, it->kind == I_BINARY);
            }
            imap_buf_free(&text);
            break;
        }
        }
    }
    if (seen_now && !flags_done) {
        SEP();
        imap_buf_puts(o, "FLAGS ");
        imap_flags_put_msg(c, o, uid, m.flags, m.keywords);
    }
#undef SEP
    imap_buf_puts(o, ")\r\n");
    return 0;
}

static int fetch_step(imap_client *c, void *ctx)
{
    fetch_ctx *x = ctx;
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        imap_no_store(c, rc, "FETCH");
        return 0;
    }
    size_t done = 0;
    while (x->pos < x->n && done < FETCH_STEP && c->out.len < IMAP_OUT_HIGH) {
        uint32_t uid = x->uids[x->pos], seq = x->seqs[x->pos];
        bool seen_now = false;
        if (x->nseen) {
            size_t lo = 0, hi = x->nseen;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (x->seen_now[mid] < uid)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            seen_now = lo < x->nseen && x->seen_now[lo] == uid;
        }
        rc = fetch_one(c, x, t, uid, seq, seen_now);
        x->pos++;
        done++;
        if (rc == -ENOENT) {
            x->gone = true;
        } else if (rc == -EPROTO) {
            x->unknown_cte = true; /* that message's answer stopped short; go on */
        }
    }
    store_read_end(&t);
    if (x->pos < x->n) return 1;
    if (x->unknown_cte)
        imap_no(c, "[UNKNOWN-CTE] cannot decode a part's transfer encoding");
    else if (x->gone && !x->uid)
        imap_no(c, "[EXPUNGEISSUED] some messages were expunged");
    else
        imap_ok(c, "FETCH completed");
    return 0;
}

typedef struct seen_ctx {
    fetch_ctx *x;
    uint32_t mailbox_id;
    uint64_t *modseqs;
} seen_ctx;

static int seen_tx(store_txn *w, void *ctx)
{
    seen_ctx *s = ctx;
    fetch_ctx *x = s->x;
    x->nseen = 0;
    for (size_t i = 0; i < x->n; i++) {
        store_msg m;
        if (store_msg_get(w, s->mailbox_id, x->uids[i], &m) < 0 || (m.flags & STORE_F_SEEN))
            continue;
        store_msg out;
        int rc = store_msg_set_flags(w, s->mailbox_id, x->uids[i], STORE_FLAGS_ADD, STORE_F_SEEN,
                                     NULL, 0, &out);
        if (rc < 0) return rc;
        s->modseqs[x->nseen] = out.modseq;
        x->seen_now[x->nseen++] = x->uids[i];
    }
    return 0;
}

void imap_cmd_fetch(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    if (nargs < 2 || nargs > 3) {
        imap_bad(c, "usage: FETCH set items");
        return;
    }
    fetch_ctx *x = calloc(1, sizeof(*x));
    if (!x) abort();
    x->uid = uid;
    if (args[1].type == IMAP_ARG_LIST) {
        if (args[1].count == 0) {
            imap_bad(c, "empty FETCH item list");
            goto fail;
        }
        for (size_t i = 0; i < args[1].count; i++)
            if (parse_att(c, x, &args[1].list[i]) < 0) goto fail;
    } else if (parse_att(c, x, &args[1]) < 0) {
        goto fail;
    }
    if (imap_set_resolve(c, &args[0], uid, &x->uids, &x->seqs, &x->n) < 0) goto fail;
    if (x->set_seen && !c->sel.readonly && x->n) {
        x->seen_now = malloc(x->n * sizeof(uint32_t));
        seen_ctx s = {x, c->sel.mailbox_id, malloc(x->n * sizeof(uint64_t))};
        if (!x->seen_now || !s.modseqs) abort();
        if (store_write(c->srv->st, seen_tx, &s) == 0) {
            for (size_t i = 0; i < x->nseen; i++)
                imap_sync_own(c, s.modseqs[i]);
        } else {
            x->nseen = 0;
        }
        free(s.modseqs);
    }
    c->cont = fetch_step;
    c->cont_ctx = x;
    c->cont_free = fetch_free;
    return;
fail:
    fetch_free(x);
}
