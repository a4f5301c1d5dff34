/* cmd_sort.c: SORT and UID SORT (RFC 5256, RFC 5957, ESORT of RFC 5267), and the per-message
 * keys that SORT and THREAD read from the stored summaries */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_envelope.h"
#include "imap/imap_int.h"
#include "imap/imap_msg.h"
#include "store/mime.h"

#define FIELD_MAX (64u << 10)  /* bytes of one header value kept for a key */
#define POOL_MAX (1024u << 20) /* bytes of keys for one command */
#define ESORT_RET_MIN 1u
#define ESORT_RET_MAX 2u
#define ESORT_RET_COUNT 4u
#define ESORT_RET_ALL 8u

typedef struct sort_cmd {
    imap_sort_req req;
    bool uid;
    unsigned need; /* bit k: string key k (enum imap_sort_key); NEED_* */
    imap_search_run *search;
    bool searched;
    const uint32_t *seqs; /* the hits, ascending (owned by SEARCH) */
    size_t n, pos;
    imap_sort_msg *sm;   /* SORT: per hit */
    imap_thread_msg *tm; /* THREAD: per hit */
    imap_buf pool;       /* the keys' bytes */
    imap_buf strs, a, b; /* scratch */
} sort_cmd;

enum { NEED_DATE = 1u << 8, NEED_ARRIVAL = 1u << 9, NEED_SIZE = 1u << 10, NEED_THREAD = 1u << 11 };

static void sort_cmd_free(void *p)
{
    sort_cmd *s = p;
    imap_search_end(&s->search);
    free(s->sm);
    free(s->tm);
    imap_buf_free(&s->pool);
    imap_buf_free(&s->strs);
    imap_buf_free(&s->a);
    imap_buf_free(&s->b);
    free(s);
}

int imap_sort_charset(imap_client *c, const imap_arg *a, const char *cmd)
{
    if (!a || !imap_arg_is_string(a)) {
        imap_bad(c, "%s needs a charset (UTF-8 or US-ASCII) before the search keys", cmd);
        return -1;
    }
    if (strcasecmp(a->str, "UTF-8") != 0 && strcasecmp(a->str, "US-ASCII") != 0) {
        imap_no(c, "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset '%.40s'", a->str);
        return -1;
    }
    return 0;
}

/* Appends the LEN bytes at S to the pool (at most FIELD_MAX of them); their place in *OFF. */
static void pool_raw(sort_cmd *s, const char *p, size_t len, uint32_t *off, uint32_t *outlen)
{
    if (len > FIELD_MAX) len = FIELD_MAX;
    *off = (uint32_t)s->pool.len;
    imap_buf_append(&s->pool, p, len);
    *outlen = (uint32_t)(s->pool.len - *off);
}

/* The casemap key of the LEN bytes at P, into the pool. */
static void pool_key(sort_cmd *s, const char *p, size_t len, uint32_t *off, uint32_t *outlen)
{
    if (len > FIELD_MAX) len = FIELD_MAX;
    *off = (uint32_t)s->pool.len;
    imap_casemap(&s->pool, p, len);
    *outlen = (uint32_t)(s->pool.len - *off);
}

static const char *txt(const sort_cmd *s, imap_env_text t, size_t *len)
{
    *len = t.nil ? 0 : t.len;
    return t.nil ? "" : s->strs.data + t.off;
}

/* The base subject's key of envelope F into the pool; true if it was a reply or forward. */
static bool subject_key(sort_cmd *s, const imap_envelope_fields *f, uint32_t *off, uint32_t *len)
{
    size_t l;
    const char *subj = txt(s, f->text[IMAP_ENV_SUBJECT], &l);
    imap_buf_truncate(&s->a, 0);
    imap_buf_truncate(&s->b, 0);
    imap_mime_words_decode(subj, l, &s->a);
    bool reply = imap_base_subject(&s->b, s->a.data ? s->a.data : "", s->a.len);
    pool_key(s, s->b.data ? s->b.data : "", s->b.len, off, len);
    return reply;
}

/* The RFC 5957 display value of the first address of field K. */
static void display_key(sort_cmd *s, const imap_envelope_fields *f, int k, uint32_t *off,
                        uint32_t *len)
{
    size_t nl, ml, hl;
    const char *name = txt(s, f->addr[k][0], &nl);
    const char *mbox = txt(s, f->addr[k][2], &ml);
    const char *host = txt(s, f->addr[k][3], &hl);
    imap_buf_truncate(&s->a, 0);
    imap_buf_puts(&s->a, "");
    if (nl) imap_mime_words_decode(name, nl, &s->a);
    if (s->a.len == 0 && !f->addr[k][2].nil) {
        imap_buf_append(&s->a, mbox, ml);
        if (!f->addr[k][3].nil) {
            imap_buf_putc(&s->a, '@');
            imap_buf_append(&s->a, host, hl);
        }
    }
    pool_key(s, s->a.data, s->a.len, off, len);
}

/* Reads the keys of hit number I (sequence number SEQ) in T. */
static void gather_one(imap_client *c, sort_cmd *s, store_txn *t, size_t i, uint32_t seq)
{
    uint32_t uid = c->sel.uids[seq - 1];
    store_msg m;
    bool have = store_msg_get(t, c->sel.mailbox_id, uid, &m) == 0;
    imap_envelope_fields f;
    imap_buf_truncate(&s->strs, 0);
    imap_buf_puts(&s->strs, "");
    const char *env = IMAP_ENVELOPE_EMPTY;
    size_t envlen = strlen(env);
    const void *blob;
    size_t bl;
    if (have && store_msg_summary(t, &m, &blob, &bl) == 0 &&
        store_mime_envelope(blob, bl, &env, &envlen) != 0) {
        env = IMAP_ENVELOPE_EMPTY;
        envlen = strlen(env);
    }
    (void)imap_envelope_parse(env, envlen, &s->strs, &f); /* a broken one: what was read */
    int64_t internal = have ? m.internaldate : 0, date = internal;
    if (s->need & (NEED_DATE | NEED_THREAD)) {
        size_t l;
        const char *d = txt(s, f.text[IMAP_ENV_DATE], &l);
        int64_t sent;
        if (l && imap_date_parse_rfc5322(d, l, &sent) == 0) date = sent;
    }
    if (s->req.thread) {
        imap_thread_msg *tm = &s->tm[i];
        memset(tm, 0, sizeof(*tm));
        tm->num = s->uid ? uid : seq;
        tm->date = date;
        size_t l;
        const char *v = txt(s, f.text[IMAP_ENV_MESSAGE_ID], &l);
        pool_raw(s, v, l, &tm->msgid_off, &tm->msgid_len);
        v = txt(s, f.text[IMAP_ENV_IN_REPLY_TO], &l);
        pool_raw(s, v, l, &tm->irt_off, &tm->irt_len);
        tm->refs_off = (uint32_t)s->pool.len;
        const char *data;
        size_t dlen;
        if (s->req.alg == IMAP_THREAD_REFERENCES && have &&
            store_msg_body(t, &m, &data, &dlen) == 0) {
            size_t hlen, boff;
            imap_msg_split(data, dlen, &hlen, &boff);
            imap_buf_truncate(&s->a, 0);
            if (imap_header_get(data, hlen, "References", false, &s->a))
                pool_raw(s, s->a.data, s->a.len, &tm->refs_off, &tm->refs_len);
        }
        tm->reply = subject_key(s, &f, &tm->subject_off, &tm->subject_len);
        return;
    }
    imap_sort_msg *sm = &s->sm[i];
    memset(sm, 0, sizeof(*sm));
    sm->seq = seq;
    sm->num = s->uid ? uid : seq;
    sm->arrival = internal;
    sm->date = date;
    sm->size = have ? m.crlf_size : 0;
    if (s->need & (1u << IMAP_SORT_SUBJECT))
        subject_key(s, &f, &sm->off[IMAP_SORT_SUBJECT], &sm->len[IMAP_SORT_SUBJECT]);
    static const int addr_field[IMAP_SORT_NSTR] = {[IMAP_SORT_FROM] = IMAP_ENV_FROM,
                                                   [IMAP_SORT_TO] = IMAP_ENV_TO,
                                                   [IMAP_SORT_CC] = IMAP_ENV_CC,
                                                   [IMAP_SORT_DISPLAYFROM] = IMAP_ENV_FROM,
                                                   [IMAP_SORT_DISPLAYTO] = IMAP_ENV_TO};
    for (int k = IMAP_SORT_FROM; k < IMAP_SORT_NSTR; k++) {
        if (!(s->need & (1u << k))) continue;
        if (k >= IMAP_SORT_DISPLAYFROM) {
            display_key(s, &f, addr_field[k], &sm->off[k], &sm->len[k]);
        } else {
            size_t l;
            const char *mb = txt(s, f.addr[addr_field[k]][2], &l);
            pool_key(s, mb, l, &sm->off[k], &sm->len[k]);
        }
    }
}

/* Appends the sorted numbers as a sequence set in their order: ascending runs as ranges. */
static void put_sorted_set(imap_buf *o, const imap_sort_msg *m, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && m[j + 1].num == m[j].num + 1)
            j++;
        if (i) imap_buf_putc(o, ',');
        imap_buf_put_u64(o, m[i].num);
        if (j > i) {
            imap_buf_putc(o, ':');
            imap_buf_put_u64(o, m[j].num);
        }
        i = j + 1;
    }
}

static void answer(imap_client *c, sort_cmd *s)
{
    imap_buf *o = &c->out;
    const char *pool = s->pool.data ? s->pool.data : "";
    if (s->req.thread) {
        imap_buf_puts(o, "* THREAD");
        if (s->n) {
            imap_buf_putc(o, ' ');
            imap_thread(s->req.alg, s->tm, s->n, pool, o);
        }
        imap_buf_puts(o, "\r\n");
        imap_ok(c, "THREAD completed");
        return;
    }
    imap_sort(s->sm, s->n, s->req.crit, s->req.ncrit, pool);
    if (s->req.esort) {
        imap_buf_printf(o, "* ESEARCH (TAG \"%s\")", c->tag);
        if (s->uid) imap_buf_puts(o, " UID");
        unsigned ret = s->req.ret;
        if (s->n && (ret & ESORT_RET_MIN)) imap_buf_printf(o, " MIN %u", s->sm[0].num);
        if (s->n && (ret & ESORT_RET_MAX)) imap_buf_printf(o, " MAX %u", s->sm[s->n - 1].num);
        if (ret & ESORT_RET_COUNT) imap_buf_printf(o, " COUNT %zu", s->n);
        if (s->n && (ret & ESORT_RET_ALL)) {
            imap_buf_puts(o, " ALL ");
            put_sorted_set(o, s->sm, s->n);
        }
    } else {
        imap_buf_puts(o, "* SORT");
        for (size_t i = 0; i < s->n; i++) {
            imap_buf_putc(o, ' ');
            imap_buf_put_u64(o, s->sm[i].num);
        }
    }
    imap_buf_puts(o, "\r\n");
    imap_ok(c, "SORT completed");
}

/* One step: the search first, then the keys of the hits, then the answer. */
static int sort_step(imap_client *c, void *ctx)
{
    sort_cmd *s = ctx;
    const char *what = s->req.thread ? "THREAD" : "SORT";
    if (!s->searched) {
        int rc = imap_search_more(c, s->search, what, &s->seqs, &s->n);
        if (rc < 0) return 0;
        if (rc > 0) return 1;
        s->searched = true;
        size_t one = s->req.thread ? sizeof(*s->tm) : sizeof(*s->sm);
        void *v = malloc((s->n ? s->n : 1) * one);
        if (!v) abort();
        if (s->req.thread)
            s->tm = v;
        else
            s->sm = v;
    }
    if (s->pos < s->n) {
        store_txn *t;
        int rc = store_read_begin(c->srv->st, &t);
        if (rc < 0) {
            imap_no_store(c, rc, what);
            return 0;
        }
        int64_t until = imap_now_ms() + IMAP_STEP_MS;
        while (s->pos < s->n) {
            gather_one(c, s, t, s->pos, s->seqs[s->pos]);
            s->pos++;
            if (s->pool.len > POOL_MAX) {
                store_read_end(&t);
                imap_no(c,
                        "[LIMIT] %s of %zu messages needs more than %u MiB of keys; narrow the "
                        "search",
                        what, s->n, POOL_MAX >> 20);
                return 0;
            }
            if ((s->pos & 15) == 0 && imap_now_ms() >= until) break;
        }
        store_read_end(&t);
        if (s->pos < s->n) return 1;
    }
    answer(c, s);
    return 0;
}

void imap_sort_start(imap_client *c, const imap_sort_req *req, const imap_arg *args, size_t nargs,
                     size_t i, bool uid)
{
    imap_search_run *search = imap_search_begin(c, args, nargs, i);
    if (!search) return;
    sort_cmd *s = calloc(1, sizeof(*s));
    if (!s) abort();
    s->req = *req;
    s->uid = uid;
    s->search = search;
    if (req->thread) {
        s->need = NEED_THREAD;
    } else {
        for (size_t k = 0; k < req->ncrit; k++) {
            unsigned key = req->crit[k].key;
            s->need |= key < IMAP_SORT_NSTR       ? 1u << key
                       : key == IMAP_SORT_DATE    ? NEED_DATE
                       : key == IMAP_SORT_ARRIVAL ? NEED_ARRIVAL
                                                  : NEED_SIZE;
        }
    }
    /* in steps, so that a big mailbox does not hold up the loop's other sessions */
    c->cont = sort_step;
    c->cont_ctx = s;
    c->cont_free = sort_cmd_free;
}

void imap_cmd_sort(imap_client *c, const imap_command *cmd, const imap_arg *args, size_t nargs,
                   bool uid)
{
    imap_sort_req req = {0};
    size_t i = 0;
    if (i < nargs && imap_arg_is_atom(&args[i], "RETURN")) { /* ESORT (RFC 5267) */
        if (i + 1 >= nargs || args[i + 1].type != IMAP_ARG_LIST) {
            imap_bad(c, "RETURN needs a list of return options");
            return;
        }
        const imap_arg *r = &args[i + 1];
        for (size_t k = 0; k < r->count; k++) {
            const imap_arg *o = &r->list[k];
            if (imap_arg_is_atom(o, "MIN"))
                req.ret |= ESORT_RET_MIN;
            else if (imap_arg_is_atom(o, "MAX"))
                req.ret |= ESORT_RET_MAX;
            else if (imap_arg_is_atom(o, "COUNT"))
                req.ret |= ESORT_RET_COUNT;
            else if (imap_arg_is_atom(o, "ALL"))
                req.ret |= ESORT_RET_ALL;
            else {
                imap_bad(c, "unknown RETURN option '%.40s' (MIN, MAX, COUNT and ALL are known)",
                         o->type == IMAP_ARG_LIST ? "(...)" : o->str);
                return;
            }
        }
        if (!req.ret) req.ret = ESORT_RET_ALL;
        req.esort = true;
        i += 2;
    }
    const char *why, *what;
    if (imap_sort_program_parse(i < nargs ? &args[i] : NULL, req.crit, &req.ncrit, &why, &what) <
        0) {
        if (what)
            imap_bad(c,
                     "%s '%.40s' (known: ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM "
                     "DISPLAYTO, each may follow REVERSE)",
                     why, what);
        else
            imap_bad(c, "%s", why);
        return;
    }
    i++;
    if (imap_sort_charset(c, i < nargs ? &args[i] : NULL, "SORT") < 0) return;
    imap_sort_start(c, &req, args, nargs, i + 1, uid);
}
