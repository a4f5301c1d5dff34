/* mime_header.c: header fields of the MIME summary: lexing, parameters, kept strings */
#include "store/mime_int.h"

/* ---------- bounded storage of rendered strings ---------- */

/* Takes B's string (B is left empty), or frees it and returns NULL when it would exceed the
 * message's budget of kept text. */
static char *keep(store_mime_parser *p, mfs_buf *b)
{
    if (!b->data) mfs_buf_append(b, "", 0);
    if (p->text_used + b->len > MIME_TEXT_BUDGET) {
        mfs_buf_free(b);
        return NULL;
    }
    p->text_used += b->len;
    /* kept until the parse ends: give back what the buffer reserved beyond the string */
    char *s = realloc(b->data, b->len + 1);
    if (!s) s = b->data;
    *b = (mfs_buf){0};
    return s;
}

static char *keep_istr(store_mime_parser *p, const char *s, size_t n)
{
    mfs_buf b = {0};
    imap_quote_string(&b, s, n, false);
    return keep(p, &b);
}

static char *keep_raw(store_mime_parser *p, const char *s, size_t n)
{
    mfs_buf b = {0};
    mfs_buf_append(&b, s, n);
    return keep(p, &b);
}

/* ---------- header value lexing (RFC 5322 / RFC 2045) ---------- */

static bool is_tspecial(unsigned char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != 0;
}

static bool is_token(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !is_tspecial(c);
}

static void skip_cfws(const char *v, size_t n, size_t *i)
{
    while (*i < n) {
        unsigned char c = (unsigned char)v[*i];
        if (is_wsp(c)) {
            (*i)++;
        } else if (c == '(') {
            int depth = 0;
            while (*i < n) {
                c = (unsigned char)v[*i];
                if (c == '\\' && *i + 1 < n) {
                    *i += 2;
                    continue;
                }
                (*i)++;
                if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
        } else {
            break;
        }
    }
}

static size_t lex_token(const char *v, size_t n, size_t *i)
{
    size_t s = *i;
    while (*i < n && is_token((unsigned char)v[*i]))
        (*i)++;
    return *i - s;
}

bool st_mime_lex_quoted(const char *v, size_t n, size_t *i, mfs_buf *out)
{
    (*i)++;
    while (*i < n) {
        char c = v[*i];
        (*i)++;
        if (c == '"') return true;
        if (c == '\\' && *i < n) {
            c = v[*i];
            (*i)++;
        }
        mfs_buf_putc(out, c);
    }
    return false;
}

#define MIME_MAX_PARAMS 128

struct param {
    size_t name_off, name_len, val_off, val_len; /* into the collected text */
    size_t base_len;                             /* RFC 2231: the name before '*' */
    unsigned idx;
    bool ext, is2231;
};

struct param_out {
    mfs_buf *out;
    bool *has_charset;
    char *charset;
    size_t charset_sz;
    char **boundary;
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void emit_param(struct param_out *po, const char *name, size_t nl, const char *val,
                       size_t vl)
{
    imap_bodystructure_param(po->out, name, nl, val, vl);
    if (nl == 7 && strncasecmp(name, "charset", 7) == 0 && po->has_charset) {
        if (!*po->has_charset && po->charset) {
            size_t k;
            for (k = 0; k + 1 < po->charset_sz && k < vl; k++) {
                char c = val[k];
                po->charset[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            po->charset[k] = '\0';
        }
        *po->has_charset = true;
    }
    char dec[MIME_MAX_BOUNDARY];
    if (po->boundary && !*po->boundary && nl == 9 && strncasecmp(name, "boundary*", 9) == 0 &&
        vl <= sizeof(dec)) {
        /* RFC 2231 boundary*=charset'lang'value (Dovecot ignores it; decoding is kinder) */
        const char *q1 = memchr(val, '\'', vl);
        const char *q2 = q1 ? memchr(q1 + 1, '\'', vl - (size_t)(q1 + 1 - val)) : NULL;
        if (q2) {
            size_t o = 0;
            for (const char *c = q2 + 1; c < val + vl && o < sizeof(dec); c++) {
                int hi, lo;
                if (*c == '%' && c + 2 < val + vl && (hi = hexval(c[1])) >= 0 &&
                    (lo = hexval(c[2])) >= 0) {
                    dec[o++] = (char)(hi * 16 + lo);
                    c += 2;
                } else {
                    dec[o++] = *c;
                }
            }
            val = dec;
            vl = o;
            nl = 8;
        }
    }
    if (po->boundary && !*po->boundary && nl == 8 && strncasecmp(name, "boundary", 8) == 0 &&
        vl > 0 && vl <= MIME_MAX_BOUNDARY && memchr(val, 0, vl) == NULL) {
        *po->boundary = malloc(vl + 1);
        if (*po->boundary) {
            memcpy(*po->boundary, val, vl);
            (*po->boundary)[vl] = '\0';
        }
    }
}

/* Orders RFC 2231 sections by name (byte order) and then by section number. */
static int param_cmp(const char *t, const struct param *a, const struct param *b)
{
    size_t l = a->base_len < b->base_len ? a->base_len : b->base_len;
    int r = memcmp(t + a->name_off, t + b->name_off, l);
    if (r != 0) return r;
    if (a->base_len != b->base_len) return a->base_len < b->base_len ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

/* Merges RFC 2231 sections name*0, name*1*, ... into one "name" or "name*" parameter as
 * Dovecot does: values stay encoded; with any extended section the result is "name*" and the
 * plain sections get their '%' escaped. With a gap in the numbering the sections are passed
 * through one by one. */
static void emit_2231(struct param_out *po, const char *t, struct param *ps, size_t np)
{
    mfs_buf val = {0}, key = {0};
    for (size_t i = 1; i < np; i++) { /* insertion sort: np is small */
        struct param x = ps[i];
        size_t j = i;
        while (j > 0 && param_cmp(t, &ps[j - 1], &x) > 0) {
            ps[j] = ps[j - 1];
            j--;
        }
        ps[j] = x;
    }
    for (size_t i = 0, next; i < np; i = next) {
        bool ok = true, have_ext = false;
        unsigned want = 0;
        for (next = i; next < np; next++) {
            if (ps[next].base_len != ps[i].base_len ||
                strncasecmp(t + ps[next].name_off, t + ps[i].name_off, ps[i].base_len) != 0)
                break;
            if (ps[next].idx != want++) ok = false;
            if (ps[next].ext) have_ext = true;
        }
        if (!ok) {
            for (size_t j = i; j < next; j++) {
                char num[24];
                int k = snprintf(num, sizeof(num), "*%u%s", ps[j].idx, ps[j].ext ? "*" : "");
                mfs_buf_truncate(&key, 0);
                mfs_buf_append(&key, t + ps[j].name_off, ps[j].base_len);
                mfs_buf_append(&key, num, (size_t)k);
                emit_param(po, key.data ? key.data : "", key.len, t + ps[j].val_off, ps[j].val_len);
            }
            continue;
        }
        mfs_buf_truncate(&val, 0);
        mfs_buf_append(&val, "", 0);
        if (!ps[i].ext && have_ext) mfs_buf_puts(&val, "''");
        for (size_t j = i; j < next; j++) {
            const char *vs = t + ps[j].val_off;
            if (!ps[j].ext && have_ext) {
                for (size_t k = 0; k < ps[j].val_len; k++) {
                    if (vs[k] == '%')
                        mfs_buf_puts(&val, "%25");
                    else
                        mfs_buf_putc(&val, vs[k]);
                }
            } else {
                mfs_buf_append(&val, vs, ps[j].val_len);
            }
        }
        mfs_buf_truncate(&key, 0);
        mfs_buf_append(&key, t + ps[i].name_off, ps[i].base_len);
        if (have_ext) mfs_buf_putc(&key, '*');
        emit_param(po, key.data ? key.data : "", key.len, val.data ? val.data : "", val.len);
    }
    mfs_buf_free(&val);
    mfs_buf_free(&key);
}

/* Parses "; name=value" parameters into rendered IMAP items "name" "value" ... Values are a
 * quoted string or, leniently, everything up to ';' or a blank (so an unquoted
 * boundary=----=_Part_1 works; Dovecot would stop at '='). RFC 2231 sections are merged. */
static void parse_params(const char *v, size_t n, size_t i, mfs_buf *out, bool *has_charset,
                         char *charset, size_t charset_sz, char **boundary)
{
    struct param ps[MIME_MAX_PARAMS];
    size_t np = 0;
    mfs_buf text = {0};
    while (i < n && np < MIME_MAX_PARAMS) {
        skip_cfws(v, n, &i);
        if (i >= n) break;
        if (v[i] != ';') {
            while (i < n && v[i] != ';')
                i++;
            continue;
        }
        i++;
        skip_cfws(v, n, &i);
        size_t ns = i;
        size_t nl = lex_token(v, n, &i);
        if (nl == 0) continue;
        skip_cfws(v, n, &i);
        if (i >= n || v[i] != '=') continue;
        i++;
        skip_cfws(v, n, &i);
        struct param *p = &ps[np++];
        memset(p, 0, sizeof(*p));
        p->name_off = text.len;
        p->name_len = nl;
        mfs_buf_append(&text, v + ns, nl);
        p->val_off = text.len;
        if (i < n && v[i] == '"') {
            if (!st_mime_lex_quoted(v, n, &i, &text)) { /* not closed: no value, as in Dovecot */
                mfs_buf_truncate(&text, p->name_off);
                np--;
                break;
            }
        } else {
            size_t vs = i;
            while (i < n && v[i] != ';' && !is_wsp((unsigned char)v[i]))
                i++;
            mfs_buf_append(&text, v + vs, i - vs);
        }
        p->val_len = text.len - p->val_off;
        /* name*, name*N or name*N*: an RFC 2231 section */
        const char *star = memchr(v + ns, '*', nl);
        if (star) {
            size_t k = (size_t)(star - (v + ns)) + 1;
            unsigned idx = 0;
            while (k < nl && v[ns + k] >= '0' && v[ns + k] <= '9' && idx < 100000)
                idx = idx * 10 + (unsigned)(v[ns + k++] - '0');
            bool ext = k < nl && v[ns + k] == '*';
            if (ext) k++;
            if (k == nl && k == (size_t)(star - (v + ns)) + 1) ext = true; /* "name*" */
            if (k == nl && star > v + ns) {
                p->is2231 = true;
                p->base_len = (size_t)(star - (v + ns));
                p->idx = idx;
                p->ext = ext;
            }
        }
    }
    const char *t = text.data ? text.data : "";
    struct param_out po = {out, has_charset, charset, charset_sz, boundary};
    struct param sec[MIME_MAX_PARAMS];
    size_t nsec = 0;
    for (size_t k = 0; k < np; k++) {
        if (ps[k].is2231)
            sec[nsec++] = ps[k];
        else
            emit_param(&po, t + ps[k].name_off, ps[k].name_len, t + ps[k].val_off, ps[k].val_len);
    }
    if (nsec > 0) emit_2231(&po, t, sec, nsec);
    mfs_buf_free(&text);
}

/* ---------- header fields ---------- */

static void field_content(store_mime_parser *p, struct ent *e, const char *name, size_t nlen,
                          const char *v, size_t n)
{
    size_t i = 0;
    if (nlen == 4 && strncasecmp(name, "type", 4) == 0) {
        if (e->seen_ctype) return;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        if (tl == 0) return; /* unusable: keep the default */
        e->seen_ctype = true;
        e->ctype = keep_raw(p, v + ts, tl);
        skip_cfws(v, n, &i);
        size_t ss = i, sl = 0;
        bool ok = false;
        if (i < n && v[i] == '/') {
            i++;
            skip_cfws(v, n, &i);
            ss = i;
            sl = lex_token(v, n, &i);
            ok = sl > 0;
        }
        e->csubtype = keep_raw(p, v + ss, sl);
        if (!e->ctype || !e->csubtype) {
            free(e->ctype);
            free(e->csubtype);
            e->ctype = e->csubtype = NULL;
            return;
        }
        if (!ok) return; /* broken: no parameters, as Dovecot */
        mfs_buf b = {0};
        parse_params(v, n, i, &b, &e->has_charset, e->charset, sizeof(e->charset), &e->boundary);
        if (b.len > 0)
            e->params = keep(p, &b);
        else
            mfs_buf_free(&b);
    } else if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
        if (e->seen_cte) return;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        skip_cfws(v, n, &i);
        if (tl == 0 || i != n) return;
        e->seen_cte = true;
        e->cte = keep_raw(p, v + ts, tl);
    } else if (nlen == 2 && strncasecmp(name, "id", 2) == 0) {
        if (!e->id) e->id = keep_istr(p, v, n);
    } else if (nlen == 11 && strncasecmp(name, "description", 11) == 0) {
        if (!e->desc) e->desc = keep_istr(p, v, n);
    } else if (nlen == 3 && strncasecmp(name, "md5", 3) == 0) {
        if (!e->md5) e->md5 = keep_istr(p, v, n);
    } else if (nlen == 8 && strncasecmp(name, "location", 8) == 0) {
        if (!e->loc) e->loc = keep_istr(p, v, n);
    } else if (nlen == 11 && strncasecmp(name, "disposition", 11) == 0) {
        /* as in Dovecot, the last Content-Disposition wins, and one without a usable token
         * (empty, an encoded word) is ("" NIL) */
        if (e->seen_disp) {
            p->text_used -=
                (e->disp ? strlen(e->disp) : 0) + (e->disp_params ? strlen(e->disp_params) : 0);
            free(e->disp);
            free(e->disp_params);
            e->disp = e->disp_params = NULL;
        }
        e->seen_disp = true;
        skip_cfws(v, n, &i);
        size_t ts = i, tl = lex_token(v, n, &i);
        e->disp = keep_istr(p, v + ts, tl);
        if (tl == 0) return;
        mfs_buf b = {0};
        parse_params(v, n, i, &b, NULL, NULL, 0, NULL);
        if (b.len > 0)
            e->disp_params = keep(p, &b);
        else
            mfs_buf_free(&b);
    } else if (nlen == 8 && strncasecmp(name, "language", 8) == 0) {
        if (e->seen_lang) return;
        e->seen_lang = true;
        mfs_buf b = {0};
        for (;;) {
            skip_cfws(v, n, &i);
            size_t s = i;
            while (i < n &&
                   (is_token((unsigned char)v[i]) || v[i] == '/' || v[i] == '?' || v[i] == '='))
                i++;
            if (i == s) break;
            imap_bodystructure_list_add(&b, v + s, i - s);
            skip_cfws(v, n, &i);
            if (i >= n || v[i] != ',') break;
            i++;
        }
        if (b.len > 0)
            e->lang = keep(p, &b);
        else
            mfs_buf_free(&b);
    }
}

static int env_field(const char *name, size_t nlen)
{
    static const char *const names[IMAP_ENV_N] = {"date",        "subject",   "from", "sender",
                                                  "reply-to",    "to",        "cc",   "bcc",
                                                  "in-reply-to", "message-id"};
    for (int k = 0; k < IMAP_ENV_N; k++)
        if (strlen(names[k]) == nlen && strncasecmp(names[k], name, nlen) == 0) return k;
    return -1;
}

/* Keeps envelope field K of E from value V: the subject as written (folded), the others
 * unfolded. */
static void field_envelope(store_mime_parser *p, struct ent *e, int k, const char *v, size_t n)
{
    bool addr = k >= IMAP_ENV_FROM && k <= IMAP_ENV_BCC;
    if ((e->env_seen & (1u << k)) && !addr) return;
    e->env_seen |= (uint16_t)(1u << k);
    mfs_buf b = {0};
    if (!addr) {
        if (k == IMAP_ENV_SUBJECT)
            imap_envelope_subject(&b, v, n);
        else
            imap_quote_string(&b, v, n, false);
        e->env[k] = keep(p, &b);
        return;
    }
    /* a repeated address field adds its addresses to the list, as in Dovecot */
    char *old = e->env[k];
    size_t oldlen = old ? strlen(old) : 0;
    mfs_buf_append(&b, old, oldlen);
    if (st_mime_addresses(v, n, &b) == 0) {
        mfs_buf_free(&b);
        return;
    }
    if (old) {
        p->text_used -= oldlen + 2;
        free(old);
        e->env[k] = NULL;
    }
    /* counted with the parentheses that imap_envelope_write puts around the list */
    p->text_used += 2;
    e->env[k] = keep(p, &b);
    if (!e->env[k]) p->text_used -= 2;
}

void st_mime_field_process(store_mime_parser *p, struct ent *e)
{
    if (!p->field_active) return;
    p->field_active = false;
    char *f = (char *)p->field;
    size_t n = p->field_len;
    char *colon = memchr(f, ':', n);
    if (!colon) return;
    size_t nlen = (size_t)(colon - f);
    while (nlen > 0 && is_wsp((unsigned char)f[nlen - 1]))
        nlen--;
    if (nlen == 0) return;
    if (e->is_msg && nlen == 12 && strncasecmp(f, "mime-version", 12) == 0) e->seen_mimever = true;
    bool content = nlen > 8 && strncasecmp(f, "content-", 8) == 0;
    int ek = e->is_msg ? env_field(f, nlen) : -1;
    if (!content && ek < 0) return;
    char *v = colon + 1;
    size_t vn = n - (size_t)(v - f), o = 0;
    if (ek == IMAP_ENV_SUBJECT) {
        /* as written (imap_envelope_subject unfolds it), as Dovecot's header parser gives it:
         * leading blanks and the final line end cut */
        size_t a = 0, z = vn;
        while (a < z && is_wsp((unsigned char)v[a]))
            a++;
        if (z > a && v[z - 1] == '\n') z--;
        if (z > a && v[z - 1] == '\r') z--;
        field_envelope(p, e, ek, v + a, z - a);
        return;
    }
    size_t lead = 0; /* blanks before the value on the field's first line */
    while (lead < vn && is_wsp((unsigned char)v[lead]))
        lead++;
    /* unfold in place: drop CR, LF and NUL, trim blanks */
    for (size_t i = 0; i < vn; i++) {
        char c = v[i];
        if (c != '\r' && c != '\n' && c != '\0') v[o++] = c;
    }
    size_t s = 0, full = o;
    while (s < o && is_wsp((unsigned char)v[s]))
        s++;
    while (o > s && is_wsp((unsigned char)v[o - 1]))
        o--;
    if (content)
        field_content(p, e, f + 8, nlen - 8, v + s, o - s);
    else if (ek == IMAP_ENV_DATE || ek == IMAP_ENV_IN_REPLY_TO || ek == IMAP_ENV_MESSAGE_ID)
        /* sent as written, as Dovecot does: only the first line's leading blanks go, so a
         * folded "In-Reply-To:\r\n <id>" keeps its blank and trailing blanks stay */
        field_envelope(p, e, ek, v + lead, full > lead ? full - lead : 0);
    else
        field_envelope(p, e, ek, v + s, o - s);
}
