/* imap_fetch_parse.c: FETCH's items (attributes, sections, partials) parsed into imap_fetch_req */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_fetch.h"
#include "imap/imap_msg.h"

#define MAX_FIELDS 1000 /* header field names in one HEADER.FIELDS list */

static imap_fetch_item *add_item(imap_fetch_req *x, enum imap_fetch_kind k, const char *name)
{
    for (size_t i = 0; i < x->nitems; i++)
        if (x->items[i].kind == k && k != IMAP_FI_SECTION && k != IMAP_FI_BINARY &&
            k != IMAP_FI_BINARY_SIZE)
            return &x->items[i];
    if (x->nitems == IMAP_FETCH_MAX_ITEMS) return NULL;
    imap_fetch_item *it = &x->items[x->nitems];
    memset(it, 0, sizeof(*it));
    if (!(it->name = strdup(name))) abort(); /* as mfs_buf does: no half-built answer */
    it->kind = k;
    x->nitems++;
    return it;
}

/* Whether A and B name the same text (BINARY sections are decoded, BODY ones are not). */
static bool same_section(const imap_fetch_item *a, const imap_fetch_item *b)
{
    if (a->kind < IMAP_FI_SECTION || b->kind < IMAP_FI_SECTION)
        return false; /* not sections at all */
    if ((a->kind == IMAP_FI_SECTION) != (b->kind == IMAP_FI_SECTION) || a->spec != b->spec ||
        strcmp(a->part, b->part) != 0 || a->nfields != b->nfields)
        return false;
    for (size_t i = 0; i < a->nfields; i++)
        if (strcasecmp(a->fields[i], b->fields[i]) != 0) return false;
    return true;
}

/* Drops the last item if an earlier one asks for the same answer: it would repeat the same
 * bytes (BODY[] and BODY.PEEK[] answer alike; \Seen is set for the whole command). */
static void drop_repeat(imap_fetch_req *x)
{
    imap_fetch_item *it = &x->items[x->nitems - 1];
    for (size_t i = 0; i + 1 < x->nitems; i++) {
        const imap_fetch_item *e = &x->items[i];
        if (e->kind == it->kind && strcmp(e->name, it->name) == 0 && e->partial == it->partial &&
            e->off == it->off && e->len == it->len && same_section(e, it)) {
            for (size_t k = 0; k < it->nfields; k++)
                free(it->fields[k]);
            free(it->fields);
            free(it->name);
            x->nitems--;
            return;
        }
    }
}

/* Parses the section text between brackets into IT; returns 0 or -1. */
static int parse_section(imap_fetch_item *it, const char *s, size_t len, bool binary)
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
        it->spec = IMAP_FS_NONE;
        return 0;
    }
    (void)binary; /* BINARY takes the same section texts (as Dovecot does) */
    if (rl == 6 && strncasecmp(rest, "HEADER", 6) == 0) {
        it->spec = IMAP_FS_HEADER;
        return 0;
    }
    if (rl == 4 && strncasecmp(rest, "TEXT", 4) == 0) {
        it->spec = IMAP_FS_TEXT;
        return 0;
    }
    if (rl == 4 && strncasecmp(rest, "MIME", 4) == 0) {
        if (!pl) return -1;
        it->spec = IMAP_FS_MIME;
        return 0;
    }
    size_t kl;
    if (rl > 18 && strncasecmp(rest, "HEADER.FIELDS.NOT ", 18) == 0) {
        it->spec = IMAP_FS_FIELDS_NOT;
        kl = 18;
    } else if (rl > 14 && strncasecmp(rest, "HEADER.FIELDS ", 14) == 0) {
        it->spec = IMAP_FS_FIELDS;
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
        if (!(it->fields[it->nfields++] = strndup(st, fl))) abort();
    }
    imap_fields_sort(it->fields, it->nfields); /* each header field is looked up in log n */
    return it->nfields ? 0 : -1;
}

/* Reads a number64 (RFC 9051: 1*DIGIT, at most 2^63-1) at *P, moving *P past it; false if there
 * are no digits or the number is too big. */
static bool parse_number64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s)) return false;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*s - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

/* What att_*() return besides 0 (parsed) and -1 (answered BAD). */
#define ATT_NOT_MINE 1 /* S is not one of the items this helper parses */
#define ATT_TOO_MANY 2 /* S is, but there is no room for another item */
#define ATT_UNKNOWN 3  /* S looks like one, but is not a FETCH item */

/* UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, MODSEQ, and the macros
 * ALL, FAST and FULL. */
static int att_simple(imap_fetch_req *x, const char *s)
{
    static const struct {
        const char *name;
        enum imap_fetch_kind kind;
    } simple[] = {
        {"UID", IMAP_FI_UID},
        {"FLAGS", IMAP_FI_FLAGS},
        {"INTERNALDATE", IMAP_FI_INTERNALDATE},
        {"RFC822.SIZE", IMAP_FI_SIZE},
        {"ENVELOPE", IMAP_FI_ENVELOPE},
        {"BODY", IMAP_FI_BODY},
        {"BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE},
        {"MODSEQ", IMAP_FI_MODSEQ},
        {"SAVEDATE", IMAP_FI_SAVEDATE},
        {"EMAILID", IMAP_FI_EMAILID},
        {"THREADID", IMAP_FI_THREADID},
        {"PREVIEW", IMAP_FI_PREVIEW},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (strcasecmp(s, simple[i].name) == 0) {
            if (!add_item(x, simple[i].kind, simple[i].name)) return ATT_TOO_MANY;
            if (simple[i].kind == IMAP_FI_ENVELOPE || simple[i].kind == IMAP_FI_BODY ||
                simple[i].kind == IMAP_FI_BODYSTRUCTURE || simple[i].kind == IMAP_FI_PREVIEW)
                x->need_summary = true;
            if (simple[i].kind == IMAP_FI_PREVIEW) x->need_body = true;
            return 0;
        }
    }
    if (strcasecmp(s, "ALL") == 0 || strcasecmp(s, "FAST") == 0 || strcasecmp(s, "FULL") == 0) {
        add_item(x, IMAP_FI_FLAGS, "FLAGS");
        add_item(x, IMAP_FI_INTERNALDATE, "INTERNALDATE");
        add_item(x, IMAP_FI_SIZE, "RFC822.SIZE");
        if (strcasecmp(s, "FAST") != 0) {
            add_item(x, IMAP_FI_ENVELOPE, "ENVELOPE");
            x->need_summary = true;
        }
        if (strcasecmp(s, "FULL") == 0) add_item(x, IMAP_FI_BODY, "BODY");
        return 0;
    }
    return ATT_NOT_MINE;
}

/* RFC822, RFC822.HEADER, RFC822.TEXT: the old names of BODY[], BODY.PEEK[HEADER], BODY[TEXT]. */
static int att_rfc822(imap_fetch_req *x, const char *s)
{
    imap_fetch_item *it;
    if (strcasecmp(s, "RFC822") != 0 && strcasecmp(s, "RFC822.HEADER") != 0 &&
        strcasecmp(s, "RFC822.TEXT") != 0)
        return ATT_NOT_MINE;
    if (!(it = add_item(x, IMAP_FI_SECTION, s))) return ATT_TOO_MANY;
    for (char *p = it->name; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    it->spec = s[6] == '\0'                          ? IMAP_FS_NONE
               : toupper((unsigned char)s[7]) == 'H' ? IMAP_FS_HEADER
                                                     : IMAP_FS_TEXT;
    it->peek = it->spec == IMAP_FS_HEADER;
    x->need_body = true;
    if (!it->peek) x->set_seen = true;
    drop_repeat(x);
    return 0;
}

/* The name of a section item in the answer: RESP and the section between BR and CLOSE as
 * given, whole, upper-cased outside quotes (malloc'ed). */
static char *section_name(const char *resp, const char *br, const char *close)
{
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
    return nm;
}

/* The partial after a section, "<origin.length>" at PART (RFC 9051: number64 "."
 * nz-number64), and <origin> (to the end) as Dovecot also takes it; digits only, no sign, no
 * overflow. Returns 0 with IT's partial set, or -1. */
static int parse_partial(imap_fetch_item *it, const char *part)
{
    const char *r = part + 1;
    uint64_t o = 0, l = UINT64_MAX;
    bool ok = it->kind != IMAP_FI_BINARY_SIZE && parse_number64(&r, &o);
    if (ok && *r == '.') {
        r++;
        ok = parse_number64(&r, &l) && l > 0;
    }
    if (!ok || r[0] != '>' || r[1] != '\0') return -1;
    it->partial = true;
    it->off = o;
    it->len = l;
    return 0;
}

/* BODY[...], BODY.PEEK[...], BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...], each but the
 * last with an optional partial. */
static int att_section(imap_client *c, imap_fetch_req *x, const char *s)
{
    static const struct {
        const char *prefix;
        enum imap_fetch_kind kind;
        bool peek;
        const char *resp;
    } forms[] = {
        {"BODY", IMAP_FI_SECTION, false, "BODY"},
        {"BODY.PEEK", IMAP_FI_SECTION, true, "BODY"},
        {"BINARY", IMAP_FI_BINARY, false, "BINARY"},
        {"BINARY.PEEK", IMAP_FI_BINARY, true, "BINARY"},
        {"BINARY.SIZE", IMAP_FI_BINARY_SIZE, true, "BINARY.SIZE"},
    };
    const char *br = strchr(s, '[');
    if (!br) return ATT_UNKNOWN;
    size_t pre = (size_t)(br - s), f = 0;
    while (f < sizeof(forms) / sizeof(forms[0]) &&
           (strlen(forms[f].prefix) != pre || strncasecmp(s, forms[f].prefix, pre) != 0))
        f++;
    if (f == sizeof(forms) / sizeof(forms[0])) return ATT_UNKNOWN;
    enum imap_fetch_kind k = forms[f].kind;
    const char *close = strrchr(s, ']');
    if (!close || close < br) {
        imap_bad(c, "missing ']' in FETCH item");
        return -1;
    }
    imap_fetch_item *it;
    if (!(it = add_item(x, k, forms[f].resp))) return ATT_TOO_MANY;
    it->peek = forms[f].peek;
    if (parse_section(it, br + 1, (size_t)(close - br - 1), k != IMAP_FI_SECTION) < 0) {
        imap_bad(c, "invalid section in '%.60s'", s);
        return -1;
    }
    free(it->name);
    it->name = section_name(forms[f].resp, br, close);
    const char *part = close + 1;
    if (*part == '<') {
        if (parse_partial(it, part) < 0) {
            imap_bad(c, "invalid partial in '%.60s': give <origin.length>, numbers below 2^63", s);
            return -1;
        }
    } else if (*part) {
        return ATT_UNKNOWN;
    }
    x->need_body = true;
    x->need_summary = true;
    if (!it->peek) x->set_seen = true;
    drop_repeat(x);
    return 0;
}

/* Parses one fetch attribute; returns 0 or -1 after answering BAD. */
static int parse_att(imap_client *c, imap_fetch_req *x, const imap_arg *a)
{
    if (a->type != IMAP_ARG_ATOM) {
        imap_bad(c, "invalid FETCH item");
        return -1;
    }
    const char *s = a->str;
    int r = att_simple(x, s);
    if (r == ATT_NOT_MINE) r = att_rfc822(x, s);
    if (r == ATT_NOT_MINE) r = att_section(c, x, s);
    if (r == ATT_UNKNOWN) imap_bad(c, "unknown FETCH item '%.60s'", s);
    if (r == ATT_TOO_MANY) imap_bad(c, "too many FETCH items");
    return r == 0 ? 0 : -1;
}

int imap_fetch_parse(imap_client *c, imap_fetch_req *x, const imap_arg *a)
{
    if (a->type == IMAP_ARG_LIST) {
        if (a->count == 0) {
            imap_bad(c, "empty FETCH item list");
            return -1;
        }
        for (size_t i = 0; i < a->count; i++) {
            if (parse_att(c, x, &a->list[i]) < 0) return -1;
            /* PREVIEW (LAZY) (RFC 8970): the preview is made at once, so LAZY changes nothing */
            if (imap_arg_is_atom(&a->list[i], "PREVIEW") && i + 1 < a->count &&
                a->list[i + 1].type == IMAP_ARG_LIST) {
                const imap_arg *mods = &a->list[++i];
                for (size_t k = 0; k < mods->count; k++)
                    if (!imap_arg_is_atom(&mods->list[k], "LAZY")) {
                        imap_bad(c, "unknown PREVIEW modifier: only LAZY (RFC 8970)");
                        return -1;
                    }
            }
        }
    } else if (parse_att(c, x, a) < 0) {
        return -1;
    }
    for (size_t i = 0; i < x->nitems; i++) {
        x->items[i].same = i;
        for (size_t j = 0; j < i; j++)
            if (same_section(&x->items[j], &x->items[i])) {
                x->items[i].same = j;
                break;
            }
    }
    return 0;
}

int imap_fetch_section_parse(imap_fetch_item *it, const char *s, size_t len)
{
    memset(it, 0, sizeof *it);
    it->kind = IMAP_FI_SECTION;
    return parse_section(it, s, len, false);
}

void imap_fetch_item_free(imap_fetch_item *it)
{
    for (size_t k = 0; k < it->nfields; k++)
        free(it->fields[k]);
    free(it->fields);
    free(it->name);
    it->fields = NULL;
    it->nfields = 0;
    it->name = NULL;
}

void imap_fetch_req_free(imap_fetch_req *x)
{
    for (size_t i = 0; i < x->nitems; i++)
        imap_fetch_item_free(&x->items[i]);
    x->nitems = 0;
}
