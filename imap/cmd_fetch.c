/* cmd_fetch.c: FETCH and UID FETCH, produced in steps so a big answer never sits whole in memory */

/*
 * How an answer is produced. A FETCH runs as a continuation (c->cont): each step opens its own
 * read transaction (LMDB: never across a loop pass), looks the message up again and goes on from
 * a cursor kept here: the message (pos), the item, and for a BODY[]/BINARY[] literal the phase,
 * the converter (imap_conv: source offset, bytes produced, a few bytes of state) and the bytes
 * of the literal still to send. A step stops when IMAP_OUT_HIGH bytes wait for the client,
 * between messages or inside a literal, so what one connection holds is about IMAP_OUT_HIGH
 * plus one FETCH_CHUNK, the scratch buffer (2 * FETCH_SMALL at most) and one message's small
 * items, whatever the message size, the partial or the number of items. Measuring and skipping
 * read about FETCH_COUNT_STEP source bytes per step (a CRLF count, a vector scan, takes a whole
 * source at once), so a step takes little time too.
 *
 * A literal's length comes before its bytes, so a section is measured first without being
 * built: CRLF text by a vector count of bare LFs (imap_crlf_len), a binary copy by its length,
 * and decoded BINARY text or HEADER.FIELDS by running its converter without a buffer
 * (FETCH_COUNT_STEP source bytes per step). Identical sections of one message are measured once,
 * and identical items are sent once. A source of at most FETCH_SMALL bytes that needs decoding is
 * converted whole into a scratch buffer instead (measured and built in one pass); CRLF text of
 * any size is written straight into the output in FETCH_CHUNK pieces, a small message in one.
 *
 * A message expunged by another session while its answer spans steps (only a big one does) can
 * no longer be answered honestly: its literal is announced and its bytes are gone. The session
 * then gets "* BYE" (written inside the unfinished literal, so no client takes it for the
 * message) and is closed, and the server logs it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_fetch.h"
#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "imap/imap_quote.h"
#include "store/log.h"
#include "store/mime.h"

#define FETCH_STEP 500                /* messages per read transaction */
#define FETCH_CHUNK (256u << 10)      /* literal bytes produced at a time */
#define FETCH_SMALL (256u << 10)      /* sources decoded whole into the scratch buffer */
#define FETCH_COUNT_STEP (4ull << 20) /* bytes measured or skipped per step (CPU per pass) */

/* Where the answer to the current item stands. */
enum phase {
    PH_ITEM,  /* not begun */
    PH_COUNT, /* measuring the text, nothing written for the item yet */
    PH_SEND,  /* the literal is announced: skipping to its start, then sending it */
};

typedef struct fetch_ctx {
    imap_fetch_req req; /* the items asked for */
    bool uid;
    bool has_uid;      /* UID is in each answer (UID FETCH, or the UID item) */
    bool changedsince; /* the CHANGEDSINCE modifier: only messages with MODSEQ above */
    uint64_t since;    /* ...this (0, which iOS sends: all of them) */
    uint32_t *uids, *seqs;
    size_t n, pos;
    uint32_t *seen_now; /* messages that got \Seen from this FETCH (ascending UIDs) */
    size_t nseen;
    bool gone;
    bool unknown_cte;
    /* the cursor inside the answer to uids[pos]: it spans steps only inside a section */
    bool in_msg;
    size_t item;
    bool first, flags_done, modseq_done;
    bool msg_seen_now; /* the message got \Seen from this FETCH */
    enum phase phase;
    imap_conv cv, count; /* the literal's converter; a copy of it that measures ahead */
    size_t src_off, src_len;
    bool from_scratch; /* the text is in SCRATCH (small decoded sources) */
    mfs_buf scratch;
    size_t scratch_off;
    uint64_t lit_skip, lit_left; /* text bytes before the literal's start; literal bytes left */
    uint64_t total[IMAP_FETCH_MAX_ITEMS]; /* per section of this message: its length, */
    bool has_nul[IMAP_FETCH_MAX_ITEMS];   /* whether it holds a NUL (BINARY: literal8), */
    bool counted[IMAP_FETCH_MAX_ITEMS];   /* and whether those are known */
} fetch_ctx;

static void fetch_free(void *p)
{
    fetch_ctx *x = p;
    if (!x) return;
    imap_fetch_req_free(&x->req);
    free(x->uids);
    free(x->seqs);
    free(x->seen_now);
    mfs_buf_free(&x->scratch);
    free(x);
}

int imap_section_source(const imap_fetch_item *it, const char *data, size_t dlen, const void *blob,
                        size_t bloblen, imap_conv *cv, size_t *src_off, size_t *src_len)
{
    uint64_t hoff = 0, hlen = 0, boff = 0, blen = 0;
    store_mime_part p;
    bool have = blob && store_mime_part_find(blob, bloblen, it->part, &p) == 0;
    imap_conv_init(cv, IMAP_CONV_CRLF);
    *src_off = *src_len = 0;
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
        if (it->spec == IMAP_FS_NONE) {
            *src_len = dlen; /* BODY[] and BINARY[] alike */
            return 0;
        }
    } else {
        if (!have) return -ENOENT;
        if (it->spec == IMAP_FS_MIME) {
            hoff = p.header_off;
            hlen = p.header_len;
        } else if (it->spec == IMAP_FS_NONE) {
            boff = p.body_off;
            blen = p.body_len;
        } else {
            if (!p.is_message) { /* HEADER/TEXT of a part that is not a message: empty */
                imap_conv_init(cv, IMAP_CONV_COPY);
                return 0;
            }
            hoff = p.msg_header_off;
            hlen = p.msg_header_len;
            boff = p.msg_body_off;
            blen = p.msg_body_len;
        }
    }
    if (hoff + hlen > dlen || boff + blen > dlen) return -ENOENT;
    if (it->kind != IMAP_FI_SECTION && it->spec == IMAP_FS_NONE && !p.is_multipart &&
        !p.is_message) {
        /* BINARY of a leaf part: undo its transfer encoding; anything else is as BODY */
        if (imap_conv_init_cte(cv, p.encoding) < 0) return -EPROTO;
        *src_off = (size_t)boff;
        *src_len = (size_t)blen;
        return 0;
    }
    switch (it->spec) {
    case IMAP_FS_HEADER:
    case IMAP_FS_MIME:
        *src_off = (size_t)hoff;
        *src_len = (size_t)hlen;
        break;
    case IMAP_FS_FIELDS:
    case IMAP_FS_FIELDS_NOT:
        imap_conv_init_fields(cv, it->fields, it->nfields, it->spec == IMAP_FS_FIELDS_NOT);
        *src_off = (size_t)hoff;
        *src_len = (size_t)hlen;
        break;
    case IMAP_FS_TEXT:
    case IMAP_FS_NONE:
        *src_off = (size_t)boff;
        *src_len = (size_t)blen;
        break;
    }
    return 0;
}

static void sep(fetch_ctx *x, mfs_buf *o)
{
    if (!x->first) mfs_buf_putc(o, ' ');
    x->first = false;
}

/* Takes what a run cost from the step's BUDGET: the bytes it made or the bytes it read, the
 * more of the two (a HEADER.FIELDS list that matches nothing still reads the whole header). */
static void charge(uint64_t *budget, size_t made, size_t read)
{
    size_t used = made > read ? made : read;
    *budget -= *budget < used ? *budget : used;
}

#define SECTION_GOES_ON 2 /* section_begin(): the item is set up, to be measured and sent */

/* The start of a section item: finds its source and converter; a small decoded one is built
 * whole into the scratch buffer (and so measured). Returns SECTION_GOES_ON, 0 when the item
 * is answered already (a missing part), or -EPROTO (nothing written). */
static int section_begin(imap_client *c, fetch_ctx *x, const imap_fetch_item *it, const char *data,
                         size_t dlen, const void *blob, size_t bloblen, uint64_t *budget)
{
    mfs_buf *o = &c->out;
    bool binary = it->kind != IMAP_FI_SECTION;
    size_t sec = it->same;
    int rc = imap_section_source(it, data, dlen, blob, bloblen, &x->cv, &x->src_off, &x->src_len);
    if (rc == -EPROTO) return rc;
    if (rc == -ENOENT) {
        sep(x, o);
        if (it->kind == IMAP_FI_BINARY_SIZE) {
            mfs_buf_printf(o, "%s 0", it->name);
            return 0;
        }
        if (it->partial)
            mfs_buf_printf(o, "%s<%llu> ", it->name, (unsigned long long)it->off);
        else
            mfs_buf_printf(o, "%s ", it->name);
        mfs_buf_puts(o, it->kind == IMAP_FI_SECTION ? "NIL" : "{0}\r\n");
        return 0;
    }
    const char *src = data + x->src_off;
    bool cheap = x->cv.kind == IMAP_CONV_CRLF || x->cv.kind == IMAP_CONV_COPY;
    x->from_scratch = false;
    x->phase = PH_COUNT;
    if (!cheap && x->src_len <= FETCH_SMALL) {
        /* small and decoded: build it once, measure what was built */
        x->scratch.len = 0;
        imap_conv_run(&x->cv, src, x->src_len, &x->scratch, 2 * x->src_len + 4);
        charge(budget, x->src_len, 0);
        x->from_scratch = true;
        x->total[sec] = x->scratch.len;
        x->has_nul[sec] = memchr(x->scratch.data, '\0', x->scratch.len) != NULL;
        x->counted[sec] = true;
    } else if (!x->counted[sec] && !cheap) {
        x->count = x->cv;
        x->count.want_nul = binary;
    }
    return SECTION_GOES_ON;
}

/* Measures the section's text SRC (not measured yet): 0 when its length is known, 1 when the
 * step's BUDGET is used up first. */
static int section_measure(fetch_ctx *x, const imap_fetch_item *it, const char *src,
                           uint64_t *budget)
{
    bool binary = it->kind != IMAP_FI_SECTION;
    size_t sec = it->same;
    if (x->cv.kind == IMAP_CONV_CRLF || x->cv.kind == IMAP_CONV_COPY) {
        /* a scan at memory speed, but a step that has used some of its budget leaves a big
         * one to the next */
        if (x->src_len > *budget && *budget < FETCH_COUNT_STEP) return 1;
        x->total[sec] = x->cv.kind == IMAP_CONV_CRLF ? imap_crlf_len(src, x->src_len) : x->src_len;
        x->has_nul[sec] = binary && memchr(src, '\0', x->src_len) != NULL;
        x->counted[sec] = true;
        charge(budget, x->src_len, 0);
        return 0;
    }
    while (!imap_conv_done(&x->count, x->src_len)) {
        if (*budget == 0) return 1; /* the next step goes on */
        size_t step = (size_t)*budget, in = x->count.in;
        x->count.in_stop = in + step;
        size_t got = imap_conv_run(&x->count, src, x->src_len, NULL, step);
        charge(budget, got, x->count.in - in);
    }
    x->total[sec] = x->count.out;
    x->has_nul[sec] = x->count.nul;
    x->counted[sec] = true;
    return 0;
}

/* Announces the measured section: its name, and the literal's length (BINARY.SIZE: the length
 * alone, and the item is complete: returns true). */
static bool section_announce(imap_client *c, fetch_ctx *x, const imap_fetch_item *it,
                             const char *src)
{
    mfs_buf *o = &c->out;
    size_t sec = it->same;
    uint64_t total = x->total[sec];
    sep(x, o);
    if (it->kind == IMAP_FI_BINARY_SIZE) {
        mfs_buf_printf(o, "%s %llu", it->name, (unsigned long long)total);
        return true;
    }
    uint64_t start = 0, n = total;
    if (it->partial) {
        mfs_buf_printf(o, "%s<%llu> ", it->name, (unsigned long long)it->off);
        start = it->off < total ? it->off : total;
        n = total - start < it->len ? total - start : it->len;
    } else {
        mfs_buf_printf(o, "%s ", it->name);
    }
    /* literal8 if the part sent has a NUL (for a partial of a big decoded text: if the
     * text has one) */
    bool nul = it->kind == IMAP_FI_BINARY && x->has_nul[sec];
    if (nul && x->from_scratch) {
        nul = memchr(x->scratch.data + start, '\0', (size_t)n) != NULL;
    } else if (nul && n < total && (x->cv.kind == IMAP_CONV_CRLF || x->cv.kind == IMAP_CONV_COPY)) {
        imap_conv probe = x->cv; /* a scan at memory speed */
        imap_conv_run(&probe, src, x->src_len, NULL, (size_t)start);
        probe.want_nul = true;
        imap_conv_run(&probe, src, x->src_len, NULL, (size_t)n);
        nul = probe.nul;
    }
    mfs_buf_printf(o, "%s{%llu}\r\n", nul ? "~" : "", (unsigned long long)n);
    x->lit_skip = start;
    x->lit_left = n;
    x->scratch_off = (size_t)start;
    x->phase = PH_SEND;
    return false;
}

/* Sends the announced literal, or goes on with it: skips to its start, then sends it in
 * FETCH_CHUNK pieces while the output has room. 0 when sent, 1 to stop, -ESTALE. */
static int section_send(imap_client *c, fetch_ctx *x, const imap_fetch_item *it, const char *src,
                        uint64_t *budget)
{
    mfs_buf *o = &c->out;
    if (!x->from_scratch && x->cv.out < x->lit_skip) {
        while (x->cv.out < x->lit_skip) {
            if (*budget == 0) return 1;
            if (imap_conv_done(&x->cv, x->src_len)) return -ESTALE; /* shorter than measured */
            uint64_t want = x->lit_skip - x->cv.out;
            size_t step = (size_t)(want < *budget ? want : *budget), in = x->cv.in;
            x->cv.in_stop = in + step;
            size_t got = imap_conv_run(&x->cv, src, x->src_len, NULL, step);
            charge(budget, got, x->cv.in - in);
        }
        x->cv.in_stop = 0; /* sending is bounded by the output instead */
    }
    while (x->lit_left > 0) {
        if (o->len >= IMAP_OUT_HIGH) return 1;
        size_t n = x->lit_left < FETCH_CHUNK ? (size_t)x->lit_left : FETCH_CHUNK;
        size_t at = o->len;
        if (x->from_scratch) {
            mfs_buf_append(o, x->scratch.data + x->scratch_off, n);
            x->scratch_off += n;
        } else if (imap_conv_run(&x->cv, src, x->src_len, o, n) != n) {
            return -ESTALE;
        }
        /* NUL may not appear in a literal outside BINARY: send it as 0x80, as Dovecot does */
        if (it->kind == IMAP_FI_SECTION)
            for (char *z = memchr(o->data + at, '\0', n); z;
                 z = memchr(z, '\0', n - (size_t)(z - (o->data + at))))
                *z = (char)0x80;
        x->lit_left -= n;
    }
    return 0;
}

/* Writes the current section item, or goes on with it: returns 0 when it is written, 1 when
 * the step must stop inside it (output full, or BUDGET of measuring used up), -EPROTO for an
 * unknown transfer encoding (nothing written), -ESTALE if the text no longer matches what was
 * announced. */
static int section_step(imap_client *c, fetch_ctx *x, const imap_fetch_item *it, const char *data,
                        size_t dlen, const void *blob, size_t bloblen, uint64_t *budget)
{
    if (x->phase == PH_ITEM) {
        int rc = section_begin(c, x, it, data, dlen, blob, bloblen, budget);
        if (rc != SECTION_GOES_ON) return rc;
    }
    const char *src = data + x->src_off;
    if (x->src_off + x->src_len > dlen) return -ESTALE;
    if (x->phase == PH_COUNT) {
        if (!x->counted[it->same] && section_measure(x, it, src, budget) == 1) return 1;
        if (section_announce(c, x, it, src)) return 0;
    }
    return section_send(c, x, it, src, budget); /* PH_SEND */
}

static bool is_seen_now(const fetch_ctx *x, uint32_t uid)
{
    size_t lo = 0, hi = x->nseen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->seen_now[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->nseen && x->seen_now[lo] == uid;
}

/* Writes the answer for message uids[pos], or goes on with it; returns 0 when it is complete,
 * 1 when the step must stop inside it, -ENOENT if it is gone (nothing written), -EPROTO, or
 * -ESTALE if it vanished in the middle of its answer. */
static int fetch_msg(imap_client *c, fetch_ctx *x, store_txn *t, uint64_t *budget)
{
    uint32_t uid = x->uids[x->pos], seq = x->seqs[x->pos];
    store_msg m;
    int rc = store_msg_get(t, c->sel.mailbox_id, uid, &m);
    if (rc < 0 && x->in_msg) return -ESTALE;
    /* CHANGEDSINCE: the others are left out (an expunged one too: its MODSEQ is gone) */
    if (x->changedsince && !x->in_msg && (rc == -ENOENT || (rc == 0 && m.modseq <= x->since)))
        return 0;
    if (rc == -ENOENT) {
        /* expunged, not yet announced: the UID is still known, nothing else is */
        bool uid_only = true;
        for (size_t i = 0; i < x->req.nitems; i++)
            uid_only = uid_only && x->req.items[i].kind == IMAP_FI_UID;
        if (uid_only) {
            mfs_buf_printf(&c->out, "* %u FETCH (UID %u)\r\n", seq, uid);
            return 0;
        }
    }
    if (rc < 0) return rc;
    const char *data = NULL;
    size_t dlen = 0;
    const void *blob = NULL;
    size_t bloblen = 0;
    if (x->req.need_body && store_msg_body(t, &m, &data, &dlen) < 0)
        return x->in_msg ? -ESTALE : -ENOENT;
    if (x->req.need_summary && store_msg_summary(t, &m, &blob, &bloblen) < 0) blob = NULL;
    mfs_buf *o = &c->out;
    if (!x->in_msg) {
        x->in_msg = true;
        x->item = 0;
        x->first = true;
        x->flags_done = x->modseq_done = false;
        x->phase = PH_ITEM;
        x->msg_seen_now = x->nseen && is_seen_now(x, uid);
        memset(x->counted, 0, sizeof(x->counted));
        imap_keywords_announce(c, m.keywords);
        mfs_buf_puts(o, "* ");
        mfs_buf_put_u64(o, seq);
        mfs_buf_puts(o, " FETCH (");
        if (x->uid) {
            sep(x, o);
            mfs_buf_puts(o, "UID ");
            mfs_buf_put_u64(o, uid);
        }
    }
    for (; x->item < x->req.nitems; x->item++) {
        imap_fetch_item *it = &x->req.items[x->item];
        switch (it->kind) {
        case IMAP_FI_UID:
            if (!x->uid) {
                sep(x, o);
                mfs_buf_puts(o, "UID ");
                mfs_buf_put_u64(o, uid);
            }
            break;
        case IMAP_FI_FLAGS:
            sep(x, o);
            mfs_buf_puts(o, "FLAGS ");
            imap_flags_put_msg(c, o, uid, m.flags, m.keywords);
            x->flags_done = true;
            break;
        case IMAP_FI_MODSEQ:
            sep(x, o);
            mfs_buf_puts(o, "MODSEQ (");
            mfs_buf_put_u64(o, m.modseq);
            mfs_buf_putc(o, ')');
            x->modseq_done = true;
            break;
        case IMAP_FI_INTERNALDATE:
            sep(x, o);
            mfs_buf_puts(o, "INTERNALDATE ");
            imap_date_time_put(o, m.internaldate, m.tz_min);
            break;
        case IMAP_FI_SAVEDATE: /* when it was stored in this mailbox, in UTC */
            sep(x, o);
            mfs_buf_puts(o, "SAVEDATE ");
            imap_date_time_put(o, m.savedate, 0);
            break;
        case IMAP_FI_EMAILID:
            sep(x, o);
            mfs_buf_puts(o, "EMAILID (");
            imap_emailid_put(o, m.body_hash);
            mfs_buf_putc(o, ')');
            break;
        case IMAP_FI_THREADID:
            sep(x, o);
            mfs_buf_puts(o, "THREADID NIL");
            break;
        case IMAP_FI_PREVIEW:
            sep(x, o);
            mfs_buf_puts(o, "PREVIEW ");
            imap_preview_put(c, o, data, dlen, blob, bloblen);
            break;
        case IMAP_FI_SIZE:
            sep(x, o);
            mfs_buf_puts(o, "RFC822.SIZE ");
            mfs_buf_put_u64(o, m.crlf_size);
            break;
        case IMAP_FI_ENVELOPE: {
            const char *e;
            size_t el;
            sep(x, o);
            mfs_buf_puts(o, "ENVELOPE ");
            if (blob && store_mime_envelope(blob, bloblen, &e, &el) == 0)
                mfs_buf_append(o, e, el);
            else
                mfs_buf_puts(o, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
            break;
        }
        case IMAP_FI_BODY:
        case IMAP_FI_BODYSTRUCTURE: {
            const char *e;
            size_t el;
            bool ext = it->kind == IMAP_FI_BODYSTRUCTURE;
            sep(x, o);
            mfs_buf_puts(o, ext ? "BODYSTRUCTURE " : "BODY ");
            if (blob && store_mime_bodystructure(blob, bloblen, ext, &e, &el) == 0)
                mfs_buf_append(o, e, el);
            else
                mfs_buf_printf(o,
                               "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
                               "\"7bit\" %llu %u)",
                               (unsigned long long)m.crlf_size, m.lines);
            break;
        }
        case IMAP_FI_SECTION:
        case IMAP_FI_BINARY:
        case IMAP_FI_BINARY_SIZE:
            rc = section_step(c, x, it, data, dlen, blob, bloblen, budget);
            if (rc == 1 || rc == -ESTALE) return rc;
            x->phase = PH_ITEM;
            if (rc == -EPROTO) {
                /* finish the line so the stream stays well-formed, then fail the command */
                mfs_buf_puts(o, ")\r\n");
                x->in_msg = false;
                return -EPROTO;
            }
            break;
        }
    }
    if (x->msg_seen_now && !x->flags_done) {
        sep(x, o);
        mfs_buf_puts(o, "FLAGS ");
        imap_flags_put_msg(c, o, uid, m.flags, m.keywords);
        x->flags_done = true;
        if (c->condstore && !x->has_uid) { /* RFC 7162 3.2.4: the \Seen it set, with its UID */
            sep(x, o);
            mfs_buf_puts(o, "UID ");
            mfs_buf_put_u64(o, uid);
        }
    }
    /* FLAGS come with their MODSEQ; CHANGEDSINCE asks for it */
    if (c->condstore && (x->flags_done || x->changedsince) && !x->modseq_done) {
        sep(x, o);
        mfs_buf_puts(o, "MODSEQ (");
        mfs_buf_put_u64(o, m.modseq);
        mfs_buf_putc(o, ')');
    }
    mfs_buf_puts(o, ")\r\n");
    x->in_msg = false;
    return 0;
}

/* The message of the answer in progress is gone: nothing true can finish it. */
static void vanished(imap_client *c, fetch_ctx *x)
{
    uint32_t uid = x->uids[x->pos];
    log_warn("imap",
             "message UID %u was expunged while a FETCH answer to %s was being sent; closing "
             "that connection",
             uid, c->addr);
    if (x->phase == PH_SEND && x->lit_left > 0) {
        /* inside an announced literal: the client gets fewer bytes than announced, never a
         * complete wrong literal; the BYE goes in only where the literal cannot end before it */
        static const char bye[] = "\r\n* BYE message expunged while being sent\r\n";
        if (x->lit_left > sizeof(bye) - 1) mfs_buf_puts(&c->out, bye);
        c->close_after_flush = true;
        return;
    }
    mfs_buf_puts(&c->out, ")\r\n");
    imap_client_bye(c, "message expunged while being sent");
}

static int fetch_step(imap_client *c, void *ctx)
{
    fetch_ctx *x = ctx;
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc < 0) {
        if (x->in_msg) {
            vanished(c, x);
            return 1;
        }
        imap_no_store(c, rc, "FETCH");
        return 0;
    }
    size_t done = 0;
    uint64_t budget = FETCH_COUNT_STEP;
    while (x->pos < x->n && done < FETCH_STEP && (x->in_msg || c->out.len < IMAP_OUT_HIGH)) {
        rc = fetch_msg(c, x, t, &budget);
        if (rc == 1) break; /* inside a message: the next step goes on from the cursor */
        if (rc == -ESTALE) {
            store_read_end(&t);
            vanished(c, x);
            return 1; /* kept as the command: the connection closes once the output is sent */
        }
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
        imap_no(c, "[EXPUNGEISSUED] some of the requested messages no longer exist");
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
        if (x->changedsince && m.modseq <= x->since) continue; /* not fetched: left alone */
        store_msg out;
        int rc = store_msg_set_flags(w, s->mailbox_id, x->uids[i], STORE_FLAGS_ADD, STORE_F_SEEN,
                                     NULL, 0, &out);
        if (rc < 0) return rc;
        s->modseqs[x->nseen] = out.modseq;
        x->seen_now[x->nseen++] = x->uids[i];
    }
    return 0;
}

/* Parses FETCH's modifier list A (RFC 4466): CHANGEDSINCE n, and VANISHED with it in a UID
 * FETCH after ENABLE QRESYNC (RFC 7162 3.1.4.1, 3.2.6). Returns 0, or -1 after answering BAD. */
static int fetch_modifiers(imap_client *c, fetch_ctx *x, const imap_arg *a, bool *vanished)
{
    if (a->type != IMAP_ARG_LIST || a->count == 0) {
        imap_bad(c, "FETCH modifiers go in a list: (CHANGEDSINCE modseq [VANISHED])");
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const imap_arg *m = &a->list[i];
        if (imap_arg_is_atom(m, "CHANGEDSINCE") && !x->changedsince) {
            /* RFC 7162 wants 1 or more; iOS Mail sends 0, which is taken as "all" */
            if (i + 1 >= a->count) {
                imap_bad(c, "CHANGEDSINCE needs a mod-sequence");
                return -1;
            }
            if (imap_modseq_arg(c, &a->list[++i], true, "CHANGEDSINCE", &x->since) < 0) return -1;
            x->changedsince = true;
        } else if (imap_arg_is_atom(m, "VANISHED") && !*vanished) {
            *vanished = true;
        } else {
            imap_bad(c, "unknown or repeated FETCH modifier '%.40s'",
                     m->type == IMAP_ARG_LIST ? "(list)" : m->str);
            return -1;
        }
    }
    if (*vanished && !x->uid) {
        imap_bad(c, "VANISHED is a UID FETCH modifier only");
        return -1;
    }
    if (*vanished && !c->qresync) {
        imap_bad(c, "VANISHED needs QRESYNC: send ENABLE QRESYNC first");
        return -1;
    }
    if (*vanished && !x->changedsince) {
        imap_bad(c, "VANISHED needs CHANGEDSINCE");
        return -1;
    }
    return 0;
}

typedef struct vanished_ctx {
    imap_client *c;
    imap_seqset set;
    uint32_t *uids;
    size_t n, cap;
} vanished_ctx;

static int vanished_cb(void *ctx, uint32_t uid, uint64_t modseq)
{
    vanished_ctx *v = ctx;
    (void)modseq;
    /* one still in the view is announced by the sync instead, as an expunge of this session */
    if (!imap_seqset_contains(&v->set, uid) || imap_seq_of(v->c, uid)) return 0;
    imap_u32_push(&v->uids, &v->n, &v->cap, uid);
    return 0;
}

/* UID FETCH (VANISHED): "* VANISHED (EARLIER)" for the UIDs of SET expunged since SINCE, before
 * any FETCH response. Returns 0 or a store error. */
static int fetch_vanished(imap_client *c, const imap_arg *set, uint64_t since)
{
    vanished_ctx v = {.c = c};
    const char *why;
    if (imap_seqset_parse(set->str, set->len, IMAP_SEQSET_MAX_RANGES, &v.set, &why) < 0)
        return 0;                            /* imap_set_resolve took it, so this does not happen */
    imap_seqset_resolve(&v.set, UINT32_MAX); /* "n:*": every UID from n on */
    store_txn *t;
    int rc = store_read_begin(c->srv->st, &t);
    if (rc == 0) {
        rc = store_expunged_list(t, c->sel.mailbox_id, since, vanished_cb, &v);
        store_read_end(&t);
    }
    if (rc == 0) imap_vanished_put(&c->out, v.uids, v.n, true);
    free(v.uids);
    imap_seqset_free(&v.set);
    return rc;
}

void imap_cmd_fetch(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                    bool uid)
{
    if (nargs < 2 || nargs > 3) {
        imap_bad(c, "usage: FETCH set items [(CHANGEDSINCE modseq [VANISHED])]");
        return;
    }
    fetch_ctx *x = calloc(1, sizeof(*x));
    if (!x) abort();
    x->uid = uid;
    bool vanished = false;
    if (imap_fetch_parse(c, &x->req, &args[1]) < 0) goto fail;
    if (nargs == 3 && fetch_modifiers(c, x, &args[2], &vanished) < 0) goto fail;
    if (imap_set_resolve(c, &args[0], uid, &x->uids, &x->seqs, &x->n) < 0) goto fail;
    x->has_uid = uid;
    bool modseq = x->changedsince; /* CHANGEDSINCE adds MODSEQ (RFC 7162 3.1.4.1) */
    for (size_t i = 0; i < x->req.nitems; i++) {
        x->has_uid = x->has_uid || x->req.items[i].kind == IMAP_FI_UID;
        modseq = modseq || x->req.items[i].kind == IMAP_FI_MODSEQ;
    }
    if (modseq) imap_condstore_on(c);
    if (vanished) {
        int rc = fetch_vanished(c, &args[0], x->since);
        if (rc < 0) {
            imap_no_store(c, rc, "FETCH");
            goto fail;
        }
    }
    if (x->req.set_seen && !c->sel.readonly && x->n) {
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
