/* cmd_search.c: SEARCH and UID SEARCH, with ESEARCH return options (MIN MAX COUNT ALL) and
 * RFC 5267's (PARTIAL, UPDATE), and the matcher shared with SORT, THREAD and live contexts */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_search.h"
#include "imap/imap_seqset.h"
#include "store/mime.h"

/* ---- evaluation ------------------------------------------------------------------------ */

#define PENDING (-1) /* a key's answer waits for the next step */

/* A decoded block of the current message: a part's body as UTF-8 text, or a header block
 * with its RFC 2047 words decoded. A big body is decoded a slice at a time, over as many
 * steps as it takes. */
typedef struct text_block {
    uint64_t key; /* 2 x its offset in the message, + 1 for a header block */
    bool ok;      /* the encoding is known (else there is nothing to search) */
    bool done;    /* TEXT holds all of it */
    uint64_t at;  /* bytes of the encoded body decoded so far */
    mfs_buf raw;  /* decoded bytes after the last line end, waiting for the charset step */
    mfs_buf text;
} text_block;

#define DECODE_SLICE (16u << 10) /* encoded bytes decoded at a time (about a ms) */
#define SCAN_CHUNK (1u << 20)    /* text bytes searched at a time */

/* What is known about the message being evaluated; it outlives a step, so that a message
 * whose keys take longer than a step is taken up again where it stopped. Each block is
 * decoded once per message, whatever the number of keys that search it. */
typedef struct msg_memo {
    uint32_t uid;   /* the message (0: none yet) */
    int8_t *answer; /* per text key (imap_skey.slot): -1 not known yet, else 0 or 1 */
    size_t nslots;
    text_block *blocks; /* ascending key */
    size_t nblocks, cap;
    /* a key whose search of a big text stopped at the end of a step: where it goes on */
    size_t resume_slot; /* SIZE_MAX: none */
    uint64_t resume_key, resume_off;
} msg_memo;

static void memo_reset(msg_memo *m, uint32_t uid)
{
    for (size_t i = 0; i < m->nblocks; i++) {
        mfs_buf_free(&m->blocks[i].text);
        mfs_buf_free(&m->blocks[i].raw);
    }
    m->nblocks = 0;
    if (m->cap > 64) { /* a message with many parts gave it this size: do not keep it */
        free(m->blocks);
        m->blocks = NULL;
        m->cap = 0;
    }
    memset(m->answer, -1, m->nslots);
    m->uid = uid;
    m->resume_slot = SIZE_MAX;
}

/* The block with KEY, or NULL; *AT is where it would go. */
static text_block *block_find(msg_memo *m, uint64_t key, size_t *at)
{
    size_t lo = 0, hi = m->nblocks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->blocks[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < m->nblocks && m->blocks[lo].key == key ? &m->blocks[lo] : NULL;
}

static text_block *block_add(msg_memo *m, uint64_t key, size_t at)
{
    if (m->nblocks == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        text_block *g = realloc(m->blocks, m->cap * sizeof(*g));
        if (!g) abort();
        m->blocks = g;
    }
    /* blocks come in message order, so this is almost always an append */
    memmove(&m->blocks[at + 1], &m->blocks[at], (m->nblocks - at) * sizeof(*m->blocks));
    m->nblocks++;
    text_block *b = &m->blocks[at];
    memset(b, 0, sizeof(*b));
    b->key = key;
    return b;
}

typedef struct msg_view {
    const imap_client *c;
    store_txn *t;
    const store_msg *m;
    uint32_t seq;
    const char *data;
    size_t dlen;
    bool loaded;
    size_t hlen, boff;
    msg_memo *memo;
    int64_t until; /* the step's end */
    bool *spent;   /* a text key was evaluated in this step */
    size_t slot;   /* the text key being evaluated */
} msg_view;

static bool load(msg_view *v)
{
    if (!v->loaded) {
        if (store_msg_body(v->t, v->m, &v->data, &v->dlen) < 0) {
            v->data = "";
            v->dlen = 0;
        }
        imap_msg_split(v->data, v->dlen, &v->hlen, &v->boff);
        v->loaded = true;
    }
    return v->dlen > 0;
}

/* True if the header block HDR (raw) holds S, as it is or with its RFC 2047 words decoded.
 * A block of the message itself (at OFF; UINT64_MAX for any other text) is decoded once. */
static bool header_block_has(msg_view *v, uint64_t off, const char *hdr, size_t hlen, const char *s,
                             size_t sl)
{
    if (imap_ci_contains(hdr, hlen, s, sl)) return true;
    if (!memmem(hdr, hlen, "=?", 2)) return false; /* no encoded word: nothing to decode */
    if (off == UINT64_MAX) {
        mfs_buf dec = {0};
        imap_mime_words_decode(hdr, hlen, &dec);
        bool hit = imap_ci_contains(dec.data, dec.len, s, sl);
        mfs_buf_free(&dec);
        return hit;
    }
    size_t at;
    text_block *b = block_find(v->memo, 2 * off + 1, &at);
    if (!b) {
        b = block_add(v->memo, 2 * off + 1, at);
        imap_mime_words_decode(hdr, hlen, &b->text);
        b->ok = b->done = true;
    }
    return imap_ci_contains(b->text.data, b->text.len, s, sl);
}

static bool is_address_field(const char *field)
{
    static const char *const names[] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(field, names[i]) == 0) return true;
    return false;
}

/* The field FIELD holds S: as written, with its encoded words decoded, or for an address field
 * in the addresses' plain form, where "<a (note)@ b.org>" is "a@b.org" (imaptest's
 * search-addresses, as Dovecot answers). */
static bool header_has(msg_view *v, const char *field, const char *s, size_t sl)
{
    load(v);
    mfs_buf raw = {0};
    bool r = imap_header_get(v->data, v->hlen, field, true, &raw);
    if (r && !header_block_has(v, UINT64_MAX, raw.data, raw.len, s, sl)) {
        r = false;
        if (is_address_field(field)) {
            mfs_buf addrs = {0};
            store_mime_addresses_text(raw.data, raw.len, &addrs);
            r = addrs.len > 0 && header_block_has(v, UINT64_MAX, addrs.data, addrs.len, s, sl);
            mfs_buf_free(&addrs);
        }
    }
    mfs_buf_free(&raw);
    return r;
}

/* True if OFF + LEN lies inside the message. */
static bool in_msg(const msg_view *v, uint64_t off, uint64_t len)
{
    return off <= v->dlen && len <= v->dlen - off;
}

/* Searches HAY (the text of the block with KEY) for S, a chunk at a time: 1, 0, or PENDING
 * when the step is over first; the next step's evaluation of the same key skips the blocks
 * searched before and goes on in this one where it stopped. */
static int scan(msg_view *v, uint64_t key, const char *hay, size_t hlen, const char *s, size_t sl)
{
    msg_memo *m = v->memo;
    uint64_t off = 0;
    if (m->resume_slot == v->slot) {
        if (key < m->resume_key) return 0; /* searched already, without a hit */
        if (key == m->resume_key) off = m->resume_off;
    }
    while (off < hlen) {
        size_t n = hlen - off > SCAN_CHUNK ? SCAN_CHUNK : hlen - off;
        /* the chunks overlap by SL - 1 bytes, so a match across a boundary is found */
        size_t with = n + (sl > 1 ? sl - 1 : 0);
        if (with > hlen - off) with = hlen - off;
        if (imap_ci_contains(hay + off, with, s, sl)) return 1;
        off += n;
        if (off < hlen && imap_now_ms() >= v->until) {
            m->resume_slot = v->slot;
            m->resume_key = key;
            m->resume_off = off;
            return PENDING;
        }
    }
    return sl == 0;
}

/* Charsets in which a line end byte may be part of a character, or a state runs across
 * lines: converted in one go at the end rather than line by line. */
static bool charset_whole(const char *cs)
{
    return strncasecmp(cs, "utf-16", 6) == 0 || strncasecmp(cs, "utf-32", 6) == 0 ||
           strncasecmp(cs, "ucs-", 4) == 0 || strncasecmp(cs, "utf-7", 5) == 0 ||
           strncasecmp(cs, "iso-2022", 8) == 0 || strncasecmp(cs, "hz", 2) == 0;
}

/* Where the slice of ENC-encoded S (LEN bytes) that starts at AT may end: after about
 * DECODE_SLICE bytes, at a point where decoding the slices one by one gives the bytes that
 * decoding the whole would (base64: after a whole number of quads, or after the '=' that
 * ends the data; otherwise after a line end). *LAST: nothing after the slice is decoded. */
static size_t slice_end(const char *enc, const char *s, size_t len, size_t at, bool *last)
{
    *last = true;
    if (len - at <= DECODE_SLICE) return len;
    size_t i = at + DECODE_SLICE;
    if (strcasecmp(enc, "base64") == 0) {
        size_t quad = 0; /* alphabet characters since AT, mod 4 */
        for (size_t k = at; k < len; k++) {
            unsigned char ch = (unsigned char)s[k];
            if (ch == '=') return k + 1; /* the decoder stops there */
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
                continue;
            quad = (quad + 1) % 4;
            if (quad == 0 && k + 1 >= i) {
                *last = false;
                return k + 1;
            }
        }
        return len;
    }
    const char *lf = memchr(s + i, '\n', len - i);
    if (!lf || (size_t)(lf + 1 - s) >= len) return len;
    *last = false;
    return (size_t)(lf + 1 - s);
}

/* Makes the body of part P UTF-8 text in block B (transfer encoding, then charset, undone),
 * one slice after another until V's step is over. Returns 1 when B->text holds it all, 0 if
 * its encoding is unknown, PENDING if the next step must go on. */
static int part_decode(msg_view *v, const store_mime_part *p, bool utf8, text_block *b)
{
    const char *body = v->data + p->body_off;
    bool whole = !utf8 && charset_whole(p->charset);
    while (!b->done) {
        if (*v->spent && imap_now_ms() >= v->until) return PENDING;
        *v->spent = true;
        bool last;
        size_t end = slice_end(p->encoding, body, p->body_len, b->at, &last);
        mfs_buf *to = utf8 ? &b->text : &b->raw;
        if (imap_cte_decode(p->encoding, body + b->at, end - b->at, to) != 0) {
            b->done = true;
            return 0;
        }
        b->ok = true;
        b->at = end;
        b->done = last;
        if (utf8) continue;
        /* convert the complete lines; the rest waits for the next slice */
        size_t upto = b->raw.len;
        if (!b->done) {
            const char *lf = b->raw.len ? memrchr(b->raw.data, '\n', b->raw.len) : NULL;
            upto = whole ? 0 : lf ? (size_t)(lf + 1 - b->raw.data) : 0;
            if (!whole && upto == 0 && b->raw.len > 4 * DECODE_SLICE) upto = b->raw.len;
        }
        if (upto) {
            imap_charset_to_utf8(p->charset, b->raw.data, upto, &b->text);
            mfs_buf_consume(&b->raw, upto);
        }
    }
    return b->ok;
}

/* The body of part P as UTF-8 text, decoded (once per message) the first time a key asks:
 * 1 and *OUT, 0 if its encoding is unknown, PENDING if decoding goes on in the next step. */
static int part_text(msg_view *v, const store_mime_part *p, bool utf8, const mfs_buf **out)
{
    size_t at;
    text_block *b = block_find(v->memo, 2 * p->body_off, &at);
    if (!b) b = block_add(v->memo, 2 * p->body_off, at);
    int r = b->done ? b->ok : part_decode(v, p, utf8, b);
    *out = &b->text;
    return r;
}

/* Searches the text of part SEC and the parts inside it, as Dovecot does: MIME headers, and
 * the bodies of text and message parts decoded (transfer encoding, then charset to UTF-8);
 * other parts' bodies (attachments) and multipart preambles are not text. A 7bit/8bit part in
 * UTF-8 or US-ASCII is searched where it lies, without a copy. 1, 0 or PENDING. */
static int parts_have(msg_view *v, const void *blob, size_t bl, const char *sec, unsigned depth,
                      const char *s, size_t sl)
{
    store_mime_part p;
    if (depth > 20 || store_mime_part_find(blob, bl, sec, &p) < 0) return 0;
    if (sec[0] && in_msg(v, p.header_off, p.header_len) &&
        header_block_has(v, p.header_off, v->data + p.header_off, p.header_len, s, sl))
        return 1;
    if (p.is_multipart || p.is_message) {
        if (p.is_message && in_msg(v, p.msg_header_off, p.msg_header_len) &&
            header_block_has(v, p.msg_header_off, v->data + p.msg_header_off, p.msg_header_len, s,
                             sl))
            return 1;
        for (uint32_t k = 1; k <= (p.is_multipart ? p.nparts : 1) && k <= 500; k++) {
            char sub[256];
            int w = snprintf(sub, sizeof(sub), "%s%s%u", sec, sec[0] ? "." : "", k);
            if (w <= 0 || (size_t)w >= sizeof(sub)) continue;
            int r = parts_have(v, blob, bl, sub, depth + 1, s, sl);
            if (r != 0) return r;
        }
        return 0;
    }
    if (strcmp(p.type, "text") != 0 && strcmp(p.type, "message") != 0) return 0;
    if (!in_msg(v, p.body_off, p.body_len)) return 0;
    bool plain_enc = !p.encoding[0] || strcmp(p.encoding, "7bit") == 0 ||
                     strcmp(p.encoding, "8bit") == 0 || strcmp(p.encoding, "binary") == 0;
    bool utf8 =
        !p.charset[0] || strcmp(p.charset, "utf-8") == 0 || strcmp(p.charset, "us-ascii") == 0;
    if (plain_enc && utf8) return scan(v, 2 * p.body_off, v->data + p.body_off, p.body_len, s, sl);
    const mfs_buf *text;
    int r = part_text(v, &p, utf8, &text);
    return r == 1 ? scan(v, 2 * p.body_off, text->data, text->len, s, sl) : r;
}

static int body_has(msg_view *v, const char *s, size_t sl)
{
    if (!load(v)) return sl == 0;
    const void *blob;
    size_t bl;
    if (store_msg_summary(v->t, v->m, &blob, &bl) != 0) /* no summary: the raw bytes */
        return scan(v, 2 * v->boff, v->data + v->boff, v->dlen - v->boff, s, sl);
    return parts_have(v, blob, bl, "", 0, s, sl);
}

/* The date of the Date: header in its own zone, as days since the epoch; -1 if none. */
static int64_t sent_days(msg_view *v)
{
    load(v);
    mfs_buf d = {0};
    int64_t r = -1;
    if (imap_header_get(v->data, v->hlen, "Date", false, &d)) r = imap_date_header_days(d.data);
    mfs_buf_free(&d);
    return r;
}

static bool keyword_has(const char *kws, const char *k, size_t kl)
{
    while (kws && *kws) {
        const char *sp = strchr(kws, ' ');
        size_t l = sp ? (size_t)(sp - kws) : strlen(kws);
        if (l == kl && strncasecmp(kws, k, l) == 0) return true;
        kws = sp ? sp + 1 : kws + l;
    }
    return false;
}

/* A key that reads the message's text: its answer is kept for the message; once the step's
 * time is used up (and one such key ran in it), the rest wait for the next step. */
static int text_key(const imap_skey *k, msg_view *v)
{
    int8_t *a = &v->memo->answer[k->slot];
    if (*a >= 0) return *a;
    if (*v->spent && imap_now_ms() >= v->until) return PENDING;
    *v->spent = true;
    v->slot = k->slot;
    int r = 0;
    switch (k->kind) {
    case IMAP_SK_HEADER:
        r = header_has(v, k->field, k->str, k->slen);
        break;
    case IMAP_SK_BODY:
        r = body_has(v, k->str, k->slen);
        break;
    case IMAP_SK_TEXT:
        load(v);
        r = header_block_has(v, 0, v->data, v->hlen, k->str, k->slen)
                ? 1
                : body_has(v, k->str, k->slen);
        break;
    default: { /* SENT* */
        int64_t d = sent_days(v), want = (int64_t)k->num;
        r = d >= 0 && (k->kind == IMAP_SK_SENTBEFORE ? d < want
                       : k->kind == IMAP_SK_SENTON   ? d == want
                                                     : d >= want);
        break;
    }
    }
    if (r != PENDING) {
        *a = (int8_t)r;
        if (v->memo->resume_slot == k->slot) v->memo->resume_slot = SIZE_MAX;
    }
    return r;
}

/* 1 or 0, or PENDING: the message must be taken up again in the next step. */
static int eval(const imap_skey *k, msg_view *v)
{
    const store_msg *m = v->m;
    switch (k->kind) {
    case IMAP_SK_ALL:
        return 1;
    case IMAP_SK_RECENT:
        return imap_is_recent(v->c, m->uid);
    case IMAP_SK_NONE:
        return 0;
    case IMAP_SK_AND:
        for (size_t i = 0; i < k->nkids; i++) {
            int r = eval(k->kids[i], v);
            if (r != 1) return r;
        }
        return 1;
    case IMAP_SK_OR: {
        int r = eval(k->kids[0], v);
        return r != 0 ? r : eval(k->kids[1], v);
    }
    case IMAP_SK_NOT: {
        int r = eval(k->kids[0], v);
        return r == PENDING ? r : !r;
    }
    case IMAP_SK_FLAG:
        return ((m->flags & k->flag) != 0) == k->set;
    case IMAP_SK_KEYWORD:
        return keyword_has(m->keywords, k->str, k->slen) == k->set;
    case IMAP_SK_SEQ:
        return imap_seqset_contains(&k->seqs, v->seq);
    case IMAP_SK_UID:
        return imap_seqset_contains(&k->seqs, m->uid);
    case IMAP_SK_YOUNGER:
        return m->internaldate > (int64_t)k->num;
    case IMAP_SK_OLDER:
        return m->internaldate <= (int64_t)k->num;
    case IMAP_SK_MODSEQ:
        return m->modseq >= k->num;
    case IMAP_SK_SAVEDBEFORE:
    case IMAP_SK_SAVEDON:
    case IMAP_SK_SAVEDSINCE: {
        int64_t d = imap_date_days(m->savedate), want = (int64_t)k->num;
        return k->kind == IMAP_SK_SAVEDBEFORE ? d < want
               : k->kind == IMAP_SK_SAVEDON   ? d == want
                                              : d >= want;
    }
    case IMAP_SK_EMAILID: {
        mfs_buf id = {0};
        imap_emailid_put(&id, m->body_hash);
        bool same = id.len == k->slen && memcmp(id.data, k->str, id.len) == 0;
        mfs_buf_free(&id);
        return same;
    }
    case IMAP_SK_LARGER:
        return m->crlf_size > k->num;
    case IMAP_SK_SMALLER:
        return m->crlf_size < k->num;
    case IMAP_SK_BEFORE:
    case IMAP_SK_ON:
    case IMAP_SK_SINCE: {
        int64_t d = imap_date_days(m->internaldate + (int64_t)m->tz_min * 60);
        int64_t want = (int64_t)k->num;
        return k->kind == IMAP_SK_BEFORE ? d < want : k->kind == IMAP_SK_ON ? d == want : d >= want;
    }
    case IMAP_SK_SENTBEFORE:
    case IMAP_SK_SENTON:
    case IMAP_SK_SENTSINCE:
    case IMAP_SK_HEADER:
    case IMAP_SK_BODY:
    case IMAP_SK_TEXT:
        return text_key(k, v);
    }
    return 0;
}

typedef struct search_run {
    imap_skey *root;
    bool uid, esearch;
    imap_search_ret ret;
    size_t nslots;
    uint32_t *hits;
    size_t nhits, pos;
    msg_memo memo;
    bool modseq;          /* a MODSEQ key: the answer tells the highest MODSEQ of the hits */
    uint64_t max_modseq;  /* ...which is this */
    uint64_t *hit_modseq; /* with a MODSEQ key: each hit's (MIN and MAX name theirs only) */
} search_run;

static bool has_modseq(const imap_skey *k)
{
    if (k->kind == IMAP_SK_MODSEQ) return true;
    for (size_t i = 0; i < k->nkids; i++)
        if (has_modseq(k->kids[i])) return true;
    return false;
}

static void search_run_free(void *p)
{
    search_run *r = p;
    imap_skey_free(r->root);
    free(r->hits);
    free(r->hit_modseq);
    memo_reset(&r->memo, 0);
    free(r->memo.blocks);
    free(r->memo.answer);
    free(r);
}

/* Matches the next messages of the view, for a step's time: 1 while messages are left, 0 when
 * all are done, -1 after answering NO (WHAT names the command). */
static int search_eval(imap_client *c, search_run *r, const char *what)
{
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        imap_no_store(c, rc, what);
        return -1;
    }
    int64_t until = imap_now_ms() + IMAP_STEP_MS;
    bool spent = false;
    while (r->pos < c->sel.n) {
        size_t s = r->pos;
        uint32_t uid = c->sel.uids[s];
        store_msg m;
        if (store_msg_get(t, c->sel.mailbox_id, uid, &m) == 0) {
            if (r->memo.uid != uid) memo_reset(&r->memo, uid);
            msg_view v = {.c = c,
                          .t = t,
                          .m = &m,
                          .seq = (uint32_t)s + 1,
                          .memo = &r->memo,
                          .until = until,
                          .spent = &spent};
            int hit = eval(r->root, &v);
            if (hit == PENDING) break; /* this message again, in the next step */
            if (hit) {
                r->hits[r->nhits++] = r->uid ? m.uid : (uint32_t)s + 1;
                if (m.modseq > r->max_modseq) r->max_modseq = m.modseq;
                if (r->hit_modseq) r->hit_modseq[r->nhits - 1] = m.modseq;
            }
        }
        r->pos++;
        if (imap_now_ms() >= until) break;
    }
    store_read_end(&t);
    if (r->pos < c->sel.n) return 1;
    memo_reset(&r->memo, 0);
    return 0;
}

/* SEARCHRES (RFC 5182): "$" becomes the hits of R (with only MIN and/or MAX asked, those), or
 * nothing when R is NULL (the SEARCH failed). */
static void save_result(imap_client *c, const search_run *r)
{
    imap_selected *s = &c->sel;
    free(s->saved);
    s->saved = NULL;
    s->nsaved = 0;
    if (!r || !r->nhits) return;
    s->saved = malloc(r->nhits * sizeof(uint32_t));
    if (!s->saved) abort();
    bool ends = (r->ret.ret & (IMAP_RET_MIN | IMAP_RET_MAX)) &&
                !(r->ret.ret & (IMAP_RET_ALL | IMAP_RET_COUNT)) && !r->ret.plo;
    for (size_t k = 0; k < r->nhits; k++) {
        if (ends && !((k == 0 && (r->ret.ret & IMAP_RET_MIN)) ||
                      (k == r->nhits - 1 && (r->ret.ret & IMAP_RET_MAX))))
            continue;
        s->saved[s->nsaved++] = r->uid ? r->hits[k] : s->uids[r->hits[k] - 1];
    }
}

static int search_step(imap_client *c, void *ctx)
{
    search_run *r = ctx;
    int rc = search_eval(c, r, "SEARCH");
    if (rc < 0 && r->ret.save) save_result(c, NULL);
    if (rc != 0) return rc > 0;
    if (r->ret.save) save_result(c, r);
    mfs_buf *o = &c->out;
    if (r->ret.save && !r->ret.ret && !r->ret.plo && !r->ret.update) {
        /* RETURN (SAVE) alone: nothing but OK */
    } else if (!r->esearch) {
        mfs_buf_puts(o, "* SEARCH");
        for (size_t k = 0; k < r->nhits; k++)
            mfs_buf_printf(o, " %u", r->hits[k]);
        if (r->modseq && r->nhits) /* RFC 7162 3.1.6 */
            mfs_buf_printf(o, " (MODSEQ %llu)", (unsigned long long)r->max_modseq);
        mfs_buf_puts(o, "\r\n");
    } else {
        uint64_t ms = 0;
        if (r->modseq && r->nhits) { /* RFC 7162 3.1.10: of the messages returned (RFC 4731) */
            ms = r->max_modseq;
            if (!(r->ret.ret & (IMAP_RET_ALL | IMAP_RET_COUNT)) && !r->ret.plo) {
                uint64_t lo = r->hit_modseq[0], hi = r->hit_modseq[r->nhits - 1];
                ms = !(r->ret.ret & IMAP_RET_MAX)   ? lo
                     : !(r->ret.ret & IMAP_RET_MIN) ? hi
                     : lo > hi                      ? lo
                                                    : hi;
            }
        }
        imap_esearch_put(c, o, r->uid, &r->ret, r->hits, r->nhits, ms);
    }
    if (r->ret.update) {
        /* the live result is kept as UIDs, whatever the command shows */
        uint32_t *uids = malloc((r->nhits ? r->nhits : 1) * sizeof(*uids));
        if (!uids) abort();
        for (size_t k = 0; k < r->nhits; k++)
            uids[k] = r->uid ? r->hits[k] : c->sel.uids[r->hits[k] - 1];
        imap_skey_own(r->root);
        imap_context_add(c, r->uid, NULL, 0, r->root, r->nslots, uids, r->nhits);
        r->root = NULL;
        free(uids);
    }
    imap_ok(c, "SEARCH completed");
    return 0;
}

/* Parses the keys ARGS[I..NARGS) into a run that reports sequence numbers; NULL after
 * answering BAD. */
static search_run *search_new(imap_client *c, const imap_arg *args, size_t nargs, size_t i)
{
    size_t nslots;
    imap_skey *root = imap_search_parse(c, args, nargs, i, &nslots);
    if (!root) return NULL;
    search_run *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->root = root;
    r->modseq = has_modseq(root);
    r->hits = malloc((c->sel.n ? c->sel.n : 1) * sizeof(uint32_t));
    if (r->modseq && !(r->hit_modseq = malloc((c->sel.n ? c->sel.n : 1) * sizeof(uint64_t))))
        abort();
    r->memo.nslots = nslots;
    r->nslots = nslots;
    r->memo.answer = malloc(nslots ? nslots : 1);
    if (!r->hits || !r->memo.answer) abort();
    return r;
}

void imap_cmd_search(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                     bool uid)
{
    size_t i = 0;
    imap_search_ret ret = {0};
    bool esearch = false;
    if (i < nargs && imap_arg_is_atom(&args[i], "RETURN")) {
        if (i + 1 >= nargs || args[i + 1].type != IMAP_ARG_LIST) {
            imap_bad(c, "RETURN needs a list");
            return;
        }
        if (imap_search_return(c, &args[i + 1], &ret) < 0) {
            for (size_t k = 0; k < args[i + 1].count; k++) /* a failed SAVE empties "$" */
                if (imap_arg_is_atom(&args[i + 1].list[k], "SAVE")) save_result(c, NULL);
            return;
        }
        esearch = true;
        i += 2;
    }
    if (i < nargs && imap_arg_is_atom(&args[i], "CHARSET")) {
        if (i + 1 >= nargs || !imap_arg_is_string(&args[i + 1])) {
            imap_bad(c, "CHARSET needs a name");
            return;
        }
        const char *cs = args[i + 1].str;
        if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
            imap_no(c, "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset '%.40s'", cs);
            if (ret.save) save_result(c, NULL);
            return;
        }
        i += 2;
    }
    if (!esearch && c->rev2) {
        esearch = true;
        ret.ret = IMAP_RET_ALL;
    }
    search_run *r = search_new(c, args, nargs, i);
    if (!r) {
        if (ret.save) save_result(c, NULL);
        return;
    }
    r->uid = uid;
    r->esearch = esearch;
    r->ret = ret;
    /* evaluated in steps so one big SEARCH does not hold up the loop's other sessions; the
     * view cannot change meanwhile (changes are pushed only between commands) */
    c->cont = search_step;
    c->cont_ctx = r;
    c->cont_free = search_run_free;
}

/* ---- the matcher for SORT and THREAD (imap_int.h) ---------------------------------------- */

struct imap_search_run {
    search_run r;
};

imap_search_run *imap_search_begin(imap_client *c, const imap_arg *args, size_t nargs, size_t i)
{
    return (imap_search_run *)search_new(c, args, nargs, i);
}

int imap_search_more(imap_client *c, imap_search_run *s, const char *what, const uint32_t **seqs,
                     size_t *n)
{
    const imap_skey *k = s->r.root;
    int rc;
    if (s->r.pos == 0 && k->kind == IMAP_SK_AND && k->nkids == 1 &&
        k->kids[0]->kind == IMAP_SK_ALL) { /* ALL: the whole view, without reading the store */
        for (size_t i = 0; i < c->sel.n; i++)
            s->r.hits[i] = (uint32_t)i + 1;
        s->r.nhits = s->r.pos = c->sel.n;
        rc = 0;
    } else {
        rc = search_eval(c, &s->r, what);
    }
    *seqs = s->r.hits;
    *n = s->r.nhits;
    return rc;
}

uint64_t imap_search_modseq(const imap_search_run *s)
{
    return s->r.modseq && s->r.nhits ? s->r.max_modseq : 0;
}

imap_skey *imap_search_tree(imap_search_run *s, size_t *nslots)
{
    imap_skey *k = s->r.root;
    *nslots = s->r.nslots;
    s->r.root = NULL;
    return k;
}

bool imap_search_match(imap_client *c, store_txn *t, const imap_skey *k, size_t nslots,
                       uint32_t uid, uint32_t seq)
{
    store_msg m;
    if (store_msg_get(t, c->sel.mailbox_id, uid, &m) != 0) return false;
    msg_memo memo = {.nslots = nslots, .answer = malloc(nslots ? nslots : 1)};
    if (!memo.answer) abort();
    memo_reset(&memo, uid);
    bool spent = false;
    /* no step limit: one message's keys are evaluated to the end */
    msg_view v = {
        .c = c, .t = t, .m = &m, .seq = seq, .memo = &memo, .until = INT64_MAX, .spent = &spent};
    int hit = eval(k, &v);
    memo_reset(&memo, 0);
    free(memo.blocks);
    free(memo.answer);
    return hit == 1;
}

void imap_search_end(imap_search_run **s)
{
    if (!*s) return;
    search_run_free(&(*s)->r);
    *s = NULL;
}
