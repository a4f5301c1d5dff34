/* mime_blob.c: the MIME summary blob: writing it at the end of a parse, reading it, finding parts
 */
#include "store/mime_int.h"

#include <errno.h>

#define BLOB_MAGIC "MFSM"
#define BLOB_VERSION 3 /* 3: the rendered strings first, part records after them */
#define BLOB_HDR 56
#define BLOB_REC 96 /* 72 bytes of numbers, then 4 strings as (u32 offset, u16 length) */

/* ---------- blob ---------- */

static void put_u32(unsigned char *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *d)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | d[i];
    return v;
}

static uint64_t get_u64(const unsigned char *d)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | d[i];
    return v;
}

/* What imap/ renders ENVELOPE and BODYSTRUCTURE from: one imap_part per entity, linked as the
 * entities are; the strings stay the parser's. NULL when out of memory. */
static imap_part *describe(const store_mime_parser *p)
{
    imap_part *parts = calloc(p->nents, sizeof *parts);
    for (uint32_t i = 0; parts && i < p->nents; i++) {
        const struct ent *e = &p->ents[i];
        imap_part *d = &parts[i];
        d->kind = e->kind == K_MULTIPART ? IMAP_PART_MULTIPART
                  : e->kind == K_MESSAGE ? IMAP_PART_MESSAGE
                                         : IMAP_PART_LEAF;
        d->type = e->ctype;
        d->subtype = e->csubtype;
        d->encoding = e->cte;
        d->digest_default = e->digest_default;
        d->has_charset = e->has_charset;
        d->params = e->params;
        d->id = e->id;
        d->description = e->desc;
        d->md5 = e->md5;
        d->location = e->loc;
        d->disposition = e->disp;
        d->disposition_params = e->disp_params;
        d->language = e->lang;
        d->size = crlf_len(e->body, e->end);
        d->lines = e->end.lf - e->body.lf;
        d->first_child = e->first_child != MIME_NONE ? &parts[e->first_child] : NULL;
        d->next = e->next != MIME_NONE ? &parts[e->next] : NULL;
        d->message = e->nested != MIME_NONE ? &parts[e->nested] : NULL;
        for (int k = 0; k < IMAP_ENV_N; k++)
            d->envelope.field[k] = e->env[k];
    }
    return parts;
}

int st_mime_blob_write(store_mime_parser *p, void **blob, size_t *bloblen)
{
    imap_part *parts = describe(p);
    if (!parts) return -ENOMEM;
    mfs_buf env = {0}, bs = {0}, body = {0};
    imap_envelope_write(&env, &parts[0].envelope);
    imap_bodystructure_write(&bs, &parts[0], true);
    imap_bodystructure_write(&body, &parts[0], false);
    free(parts);
    if (env.len > UINT32_MAX / 4 || bs.len > UINT32_MAX / 4 || body.len > UINT32_MAX / 4) {
        mfs_buf_free(&env);
        mfs_buf_free(&bs);
        mfs_buf_free(&body);
        return -ENOMEM;
    }
    size_t recs = (size_t)p->nents * BLOB_REC;
    /* the part strings (type, subtype, encoding, charset) go to a pool after the rendered text */
    mfs_buf pool = {0};
    uint32_t *refs = calloc((size_t)p->nents * 4 + 1, sizeof *refs);
    for (uint32_t i = 0; refs && i < p->nents; i++) {
        const struct ent *e = &p->ents[i];
        char tmp[4][64];
        if (e->ctype) {
            set_lower(tmp[0], sizeof tmp[0], e->ctype, strlen(e->ctype));
            set_lower(tmp[1], sizeof tmp[1], e->csubtype, strlen(e->csubtype));
        } else {
            snprintf(tmp[0], sizeof tmp[0], "%s", e->digest_default ? "message" : "text");
            snprintf(tmp[1], sizeof tmp[1], "%s", e->digest_default ? "rfc822" : "plain");
        }
        if (e->cte)
            set_lower(tmp[2], 32, e->cte, strlen(e->cte));
        else
            snprintf(tmp[2], 32, "7bit");
        snprintf(tmp[3], sizeof tmp[3], "%s", e->charset);
        for (int k = 0; k < 4; k++) {
            refs[i * 4 + k] = (uint32_t)pool.len;
            mfs_buf_append(&pool, tmp[k], strlen(tmp[k]) + 1);
        }
    }
    size_t total = BLOB_HDR + recs + env.len + bs.len + body.len + pool.len;
    unsigned char *out = NULL;
    if (!refs || pool.len > UINT32_MAX / 4 || !(out = calloc(1, total))) {
        free(refs);
        mfs_buf_free(&pool);
        mfs_buf_free(&env);
        mfs_buf_free(&bs);
        mfs_buf_free(&body);
        return -ENOMEM;
    }
    memcpy(out, BLOB_MAGIC, 4);
    put_u32(out + 4, BLOB_VERSION);
    put_u32(out + 8, p->nents);
    uint64_t lines = p->lf + ((p->pos > 0 && p->last != '\n') ? 1 : 0);
    put_u64(out + 16, p->pos + p->bare);
    put_u32(out + 24, lines > UINT32_MAX ? UINT32_MAX : (uint32_t)lines);
    /* BODYSTRUCTURE, then ENVELOPE right after the header: a FETCH of either reads the first
     * few cache lines of the record, next to the index entry that found it */
    size_t so = BLOB_HDR;
    put_u32(out + 36, (uint32_t)so);
    put_u32(out + 40, (uint32_t)bs.len);
    memcpy(out + so, bs.data, bs.len);
    so += bs.len;
    put_u32(out + 28, (uint32_t)so);
    put_u32(out + 32, (uint32_t)env.len);
    memcpy(out + so, env.data, env.len);
    so += env.len;
    put_u32(out + 44, (uint32_t)so);
    put_u32(out + 48, (uint32_t)body.len);
    memcpy(out + so, body.data, body.len);
    so += body.len;
    size_t recs_at = so;
    put_u32(out + 52, (uint32_t)recs_at);
    so += recs;
    size_t pool_at = so;
    if (pool.len) memcpy(out + so, pool.data, pool.len);
    mfs_buf_free(&pool);
    mfs_buf_free(&env);
    mfs_buf_free(&bs);
    mfs_buf_free(&body);

    for (uint32_t i = 0; i < p->nents; i++) {
        const struct ent *e = &p->ents[i];
        unsigned char *r = out + recs_at + (size_t)i * BLOB_REC;
        put_u64(r + 0, e->hdr.off);
        put_u64(r + 8, e->body.off - e->hdr.off);
        put_u64(r + 16, crlf_len(e->hdr, e->body));
        put_u64(r + 24, e->body.off);
        put_u64(r + 32, e->end.off - e->body.off);
        put_u64(r + 40, crlf_len(e->body, e->end));
        uint64_t bl = e->end.lf - e->body.lf;
        put_u32(r + 48, bl > UINT32_MAX ? UINT32_MAX : (uint32_t)bl);
        put_u32(r + 52, (uint32_t)e->kind);
        put_u32(r + 56, e->nchildren);
        put_u32(r + 60, e->first_child);
        put_u32(r + 64, e->next);
        put_u32(r + 68, e->nested);
        for (int k = 0; k < 4; k++) {
            uint32_t at = (uint32_t)pool_at + refs[i * 4 + k];
            put_u32(r + 72 + 6 * k, at);
            size_t sl = strlen((const char *)out + at);
            r[72 + 6 * k + 4] = (unsigned char)sl;
            r[72 + 6 * k + 5] = (unsigned char)(sl >> 8);
        }
    }
    free(refs);
    *blob = out;
    *bloblen = total;
    return 0;
}

/* ---------- blob readers ---------- */

static int blob_check(const void *blob, size_t len, uint32_t *nparts)
{
    const unsigned char *b = blob;
    if (!blob || len < BLOB_HDR || memcmp(b, BLOB_MAGIC, 4) != 0 || get_u32(b + 4) != BLOB_VERSION)
        return -EINVAL;
    uint32_t n = get_u32(b + 8), recs_at = get_u32(b + 52);
    if (n == 0 || recs_at < BLOB_HDR || recs_at > len || (uint64_t)n * BLOB_REC > len - recs_at)
        return -EINVAL;
    *nparts = n;
    return 0;
}

static int blob_str(const void *blob, size_t len, size_t at, const char **out, size_t *outlen)
{
    uint32_t n;
    int r = blob_check(blob, len, &n);
    if (r < 0) return r;
    const unsigned char *b = blob;
    uint32_t off = get_u32(b + at), sl = get_u32(b + at + 4);
    if (off > len || sl > len - off) return -EINVAL;
    *out = (const char *)b + off;
    *outlen = sl;
    return 0;
}

int store_mime_totals(const void *blob, size_t bloblen, uint64_t *crlf_size, uint32_t *lines)
{
    uint32_t n;
    int r = blob_check(blob, bloblen, &n);
    if (r < 0) return r;
    const unsigned char *b = blob;
    if (crlf_size) *crlf_size = get_u64(b + 16);
    if (lines) *lines = get_u32(b + 24);
    return 0;
}

int store_mime_envelope(const void *blob, size_t bloblen, const char **out, size_t *outlen)
{
    return blob_str(blob, bloblen, 28, out, outlen);
}

int store_mime_bodystructure(const void *blob, size_t bloblen, bool extended, const char **out,
                             size_t *outlen)
{
    return blob_str(blob, bloblen, extended ? 36 : 44, out, outlen);
}

/* Copies string K of part record R (a pool reference) into OUT, "" if it is out of bounds. */
static void rec_str(const void *blob, size_t len, const unsigned char *r, int k, char *out,
                    size_t outlen)
{
    uint32_t at = get_u32(r + 72 + 6 * k);
    size_t sl = (size_t)r[72 + 6 * k + 4] | (size_t)r[72 + 6 * k + 5] << 8;
    out[0] = 0;
    if (at > len || sl > len - at) return;
    if (sl >= outlen) sl = outlen - 1;
    memcpy(out, (const char *)blob + at, sl);
    out[sl] = 0;
}

struct ent_view {
    uint64_t hoff, hlen, hcrlf, boff, blen, bcrlf;
    uint32_t lines, kind, nchildren, first_child, next, nested;
    const unsigned char *r;
};

static void rec_get(const unsigned char *r, struct ent_view *v)
{
    v->hoff = get_u64(r);
    v->hlen = get_u64(r + 8);
    v->hcrlf = get_u64(r + 16);
    v->boff = get_u64(r + 24);
    v->blen = get_u64(r + 32);
    v->bcrlf = get_u64(r + 40);
    v->lines = get_u32(r + 48);
    v->kind = get_u32(r + 52);
    v->nchildren = get_u32(r + 56);
    v->first_child = get_u32(r + 60);
    v->next = get_u32(r + 64);
    v->nested = get_u32(r + 68);
    v->r = r;
}

int store_mime_part_find(const void *blob, size_t bloblen, const char *section,
                         store_mime_part *out)
{
    uint32_t n;
    int r = blob_check(blob, bloblen, &n);
    if (r < 0) return r;
    if (!section || !out) return -EINVAL;
    const unsigned char *base =
        (const unsigned char *)blob + get_u32((const unsigned char *)blob + 52);
    struct ent_view v;
    uint32_t idx = 0;
    rec_get(base, &v);
    bool at_message = true; /* the number applies to the body of a message */
    const char *s = section;
    unsigned steps = 0;
    while (*s) {
        if (*s < '1' || *s > '9') return -EINVAL;
        unsigned long num = 0;
        while (*s >= '0' && *s <= '9') {
            num = num * 10 + (unsigned long)(*s - '0');
            if (num > MIME_MAX_PARTS) return -ENOENT;
            s++;
        }
        if (*s == '.') {
            s++;
            if (*s == '\0') return -EINVAL;
        } else if (*s != '\0') {
            return -EINVAL;
        }
        if (++steps > 2 * MIME_MAX_DEPTH + 2) return -ENOENT;
        if (!at_message) {
            if (v.kind == K_MESSAGE) {
                if (v.nested == MIME_NONE || v.nested >= n || v.nested <= idx) return -ENOENT;
                idx = v.nested;
                rec_get(base + (size_t)idx * BLOB_REC, &v);
            } else if (v.kind != K_MULTIPART) {
                return -ENOENT;
            }
        }
        if (v.kind == K_MULTIPART && v.first_child == MIME_NONE) {
            /* the empty text/plain part shown for a childless multipart */
            if (num != 1 || *s != '\0') return -ENOENT;
            memset(out, 0, sizeof(*out));
            out->header_off = out->body_off = v.boff;
            strcpy(out->type, "text");
            strcpy(out->subtype, "plain");
            strcpy(out->encoding, "7bit");
            return 0;
        }
        if (v.kind == K_MULTIPART) {
            uint32_t c = v.first_child;
            for (unsigned long k = 1; k < num && c != MIME_NONE && c < n; k++)
                c = get_u32(base + (size_t)c * BLOB_REC + 64);
            if (c == MIME_NONE || c >= n || c <= idx) return -ENOENT;
            idx = c;
            rec_get(base + (size_t)idx * BLOB_REC, &v);
        } else if (num != 1) {
            return -ENOENT;
        }
        at_message = false;
    }
    memset(out, 0, sizeof(*out));
    out->header_off = v.hoff;
    out->header_len = v.hlen;
    out->header_crlf_len = v.hcrlf;
    out->body_off = v.boff;
    out->body_len = v.blen;
    out->body_crlf_len = v.bcrlf;
    out->body_lines = v.lines;
    out->is_multipart = v.kind == K_MULTIPART;
    out->nparts = v.nchildren;
    if (v.kind == K_MESSAGE && v.nested != MIME_NONE && v.nested < n && v.nested > idx) {
        struct ent_view m;
        rec_get(base + (size_t)v.nested * BLOB_REC, &m);
        out->is_message = true;
        out->msg_header_off = m.hoff;
        out->msg_header_len = m.hlen;
        out->msg_header_crlf_len = m.hcrlf;
        out->msg_body_off = m.boff;
        out->msg_body_len = m.blen;
        out->msg_body_crlf_len = m.bcrlf;
    }
    rec_str(blob, bloblen, v.r, 0, out->type, sizeof out->type);
    rec_str(blob, bloblen, v.r, 1, out->subtype, sizeof out->subtype);
    rec_str(blob, bloblen, v.r, 2, out->encoding, sizeof out->encoding);
    rec_str(blob, bloblen, v.r, 3, out->charset, sizeof out->charset);
    return 0;
}
