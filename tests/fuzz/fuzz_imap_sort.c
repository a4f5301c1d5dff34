/* fuzz_imap_sort.c: libFuzzer target: base subjects, casemap keys, sent dates, ENVELOPE
 * reading, sort programs, SORT order and both THREAD algorithms */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/buf.h"
#include "imap/imap_envelope.h"
#include "imap/imap_parser.h"
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

#define MAX_MSGS 64

/* The thread lists in OUT hold 1..N once each, parenthesized properly, and no list is empty. */
static void check_threads(const mfs_buf *out, size_t n)
{
    bool seen[MAX_MSGS + 1] = {0};
    size_t count = 0;
    long depth = 0;
    const char *s = out->data ? out->data : "";
    for (size_t i = 0; i < out->len; i++) {
        char ch = s[i];
        if (ch == '(') {
            depth++;
            CHECK(i + 1 < out->len && s[i + 1] != ')');
        } else if (ch == ')') {
            CHECK(--depth >= 0);
        } else if (ch >= '1' && ch <= '9') {
            unsigned long v = 0;
            while (i < out->len && s[i] >= '0' && s[i] <= '9')
                v = v * 10 + (unsigned long)(s[i++] - '0');
            i--;
            CHECK(v >= 1 && v <= n && !seen[v]);
            seen[v] = true;
            count++;
        } else {
            CHECK(ch == ' ');
        }
    }
    CHECK(depth == 0 && count == n);
}

/* Splits DATA at '\n' into messages, each "msgid|references|in-reply-to|subject|date|size". */
static void messages(const char *data, size_t len)
{
    imap_thread_msg tm[MAX_MSGS];
    imap_sort_msg sm[MAX_MSGS];
    mfs_buf pool = {0};
    mfs_buf_puts(&pool, "");
    size_t n = 0, i = 0;
    while (i < len && n < MAX_MSGS) {
        const char *line = data + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - line) : len - i;
        i += ll + 1;
        const char *f[6] = {0};
        size_t fl[6] = {0};
        size_t k = 0, at = 0;
        for (size_t j = 0; j <= ll && k < 6; j++)
            if (j == ll || line[j] == '|') {
                f[k] = line + at;
                fl[k++] = j - at;
                at = j + 1;
            }
        imap_thread_msg *t = &tm[n];
        memset(t, 0, sizeof(*t));
        t->num = (uint32_t)n + 1;
        uint32_t off[3], flen[3];
        for (int q = 0; q < 3; q++) {
            off[q] = (uint32_t)pool.len;
            if (f[q]) mfs_buf_append(&pool, f[q], fl[q]);
            flen[q] = (uint32_t)(pool.len - off[q]);
        }
        t->msgid_off = off[0], t->msgid_len = flen[0];
        t->refs_off = off[1], t->refs_len = flen[1];
        t->irt_off = off[2], t->irt_len = flen[2];
        mfs_buf base = {0};
        mfs_buf_puts(&base, "");
        t->reply = f[3] ? imap_base_subject(&base, f[3], fl[3]) : false;
        CHECK(base.len <= (f[3] ? fl[3] : 0));
        t->subject_off = (uint32_t)pool.len;
        imap_casemap(&pool, base.data, base.len);
        t->subject_len = (uint32_t)(pool.len - t->subject_off);
        mfs_buf_free(&base);
        int64_t date = 0;
        if (!f[4] || imap_date_parse_rfc5322(f[4], fl[4], &date) < 0) date = (int64_t)n;
        t->date = date;
        memset(&sm[n], 0, sizeof(sm[n]));
        sm[n].seq = sm[n].num = (uint32_t)n + 1;
        sm[n].date = date;
        sm[n].arrival = -(int64_t)n;
        sm[n].size = f[5] ? fl[5] : 0;
        sm[n].off[IMAP_SORT_SUBJECT] = t->subject_off;
        sm[n].len[IMAP_SORT_SUBJECT] = t->subject_len;
        n++;
    }
    for (int alg = 0; alg < 2; alg++) {
        mfs_buf out = {0};
        imap_thread(alg, tm, n, pool.data, &out);
        check_threads(&out, n);
        mfs_buf_free(&out);
    }
    /* SORT (DATE REVERSE SUBJECT): a permutation, in order */
    imap_sort_crit c[2] = {{IMAP_SORT_DATE, false}, {IMAP_SORT_SUBJECT, true}};
    imap_sort(sm, n, c, 2, pool.data);
    bool seen[MAX_MSGS + 1] = {0};
    for (size_t k = 0; k < n; k++) {
        CHECK(sm[k].seq >= 1 && sm[k].seq <= n && !seen[sm[k].seq]);
        seen[sm[k].seq] = true;
        if (k) CHECK(sm[k - 1].date <= sm[k].date);
    }
    mfs_buf_free(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    /* the whole input as one string: every function that takes one */
    mfs_buf b = {0};
    mfs_buf_puts(&b, "");
    bool reply = imap_base_subject(&b, s, size);
    (void)reply;
    CHECK(b.len <= size);
    mfs_buf k = {0};
    imap_casemap(&k, s, size);
    CHECK(k.len <= 18 * size + 1); /* the longest decomposition is 18 bytes of UTF-8 */
    int64_t t;
    (void)imap_date_parse_rfc5322(s, size, &t);
    mfs_buf strs = {0};
    imap_envelope_fields f;
    (void)imap_envelope_parse(s, size, &strs, &f);
    for (int i = 0; i < IMAP_ENV_N; i++) {
        CHECK(f.text[i].nil || (size_t)f.text[i].off + f.text[i].len <= strs.len);
        for (int j = 0; j < 4; j++)
            CHECK(f.addr[i][j].nil || (size_t)f.addr[i][j].off + f.addr[i][j].len <= strs.len);
    }
    size_t pos = 0;
    mfs_buf id = {0};
    while (imap_msgid_next(s, size, &pos, &id))
        CHECK(id.len > 0 && memchr(id.data, '@', id.len));
    /* a sort program of the input's words */
    imap_arg words[40];
    char *copy = malloc(size + 1);
    memcpy(copy, s, size);
    copy[size] = '\0';
    size_t nw = 0;
    for (char *w = strtok(copy, " \n"); w && nw < 40; w = strtok(NULL, " \n"))
        words[nw++] = (imap_arg){.type = IMAP_ARG_ATOM, .str = w, .len = strlen(w)};
    imap_arg list = {.type = IMAP_ARG_LIST, .list = words, .count = nw};
    imap_sort_crit crit[IMAP_SORT_CRITERIA_MAX];
    size_t nc;
    const char *why, *what;
    if (imap_sort_program_parse(&list, crit, &nc, &why, &what) == 0)
        CHECK(nc >= 1 && nc <= IMAP_SORT_CRITERIA_MAX);
    else
        CHECK(why && why[0]);
    free(copy);
    messages(s, size);
    mfs_buf_free(&b);
    mfs_buf_free(&k);
    mfs_buf_free(&strs);
    mfs_buf_free(&id);
    return 0;
}
