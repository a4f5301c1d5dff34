/* fuzz_mbox.c: libFuzzer target: mbox framing, mboxrd quoting, Maildir flags and folder names */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store.h"
#include "tools/mailio.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * The input is an mbox (or anything). Framing must always advance and keep every message inside
 * the file; unquoting never grows a message and undoes mboxrd quoting exactly; Maildir info
 * suffixes and Maildir++ folder names survive a round trip.
 */

#define ALL_FLAGS                                                                                  \
    (STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)

/* mboxrd quoting, as an exporter writes it: one more '>' before every ^>*From line. */
static size_t quote(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && in[j] == '>')
            j++;
        if (len - j >= 5 && memcmp(in + j, "From ", 5) == 0) out[o++] = '>';
        const char *eol = memchr(in + i, '\n', len - i);
        size_t l = eol ? (size_t)(eol - in) + 1 - i : len - i;
        memcpy(out + o, in + i, l);
        o += l, i += l;
    }
    return o;
}

static void message(const char *m, size_t len)
{
    char *u = malloc(len ? len : 1), *q = malloc(2 * len + 1), *uq = malloc(2 * len + 1);
    CHECK(u && q && uq);
    size_t ul = mailio_mbox_unquote(m, len, u);
    CHECK(ul <= len);
    if (!mailio_mbox_needs_quoting(m, len)) CHECK(ul == len && memcmp(u, m, len) == 0);
    /* quoting then unquoting gives back the message */
    size_t ql = quote(m, len, q);
    CHECK(ql >= len && ql <= 2 * len);
    CHECK(ql == len || mailio_mbox_needs_quoting(m, len));
    size_t uql = mailio_mbox_unquote(q, ql, uq);
    CHECK(uql == len && memcmp(uq, m, len) == 0);
    CHECK((mailio_mbox_status_flags(m, len) & ~(uint32_t)ALL_FLAGS) == 0);
    free(u);
    free(q);
    free(uq);
}

static void framing(const char *map, size_t len)
{
    CHECK(mailio_is_mbox(map, len) == (len >= 5 && memcmp(map, "From ", 5) == 0));
    if (!mailio_is_mbox(map, len)) return;
    size_t pos = 0, count = 0;
    mailio_mbox_msg msg;
    while (mailio_mbox_next(map, len, &pos, &msg)) {
        CHECK(pos <= len);
        CHECK(msg.data >= map && msg.data <= map + len);
        CHECK(msg.len <= (size_t)(map + len - msg.data));
        CHECK(msg.data + msg.len <= map + pos);
        CHECK(pos == len || mailio_is_mbox(map + pos, len - pos));
        CHECK(++count <= len); /* each message takes at least its From_ line */
        message(msg.data, msg.len);
    }
    CHECK(pos == len);
}

/* Progress: every call must move POS forward (checked apart, so a stuck loop aborts early). */
static void progress(const char *map, size_t len)
{
    if (!mailio_is_mbox(map, len)) return;
    size_t pos = 0;
    mailio_mbox_msg msg;
    for (;;) {
        size_t before = pos;
        if (!mailio_mbox_next(map, len, &pos, &msg)) break;
        CHECK(pos > before);
    }
}

static void maildir(const char *s, size_t len)
{
    /* the input as a file name, with a few keyword letters known */
    mailio_keywords k;
    memset(&k, 0, sizeof k);
    k.names[0] = strdup("$Work");
    k.names[2] = strdup("Junk");
    k.names[25] = strdup("NonJunk");
    char *name = strndup(s, len);
    uint32_t flags = 0;
    char kw[64];
    memset(kw, 'x', sizeof kw);
    mailio_maildir_flags(name, &k, &flags, kw, sizeof kw);
    CHECK((flags & ~(uint32_t)ALL_FLAGS) == 0);
    CHECK(memchr(kw, '\0', sizeof kw) != NULL);
    free(name);
    mailio_keywords_free(&k);

    /* flags and keywords from the input: info suffix, then back */
    memset(&k, 0, sizeof k);
    uint32_t want = len ? (uint32_t)(unsigned char)s[0] & ALL_FLAGS : 0;
    char words[2048] = "";
    size_t wl = 0, nwords = 0;
    for (size_t i = 1; i < len && nwords < 40;) {
        size_t j = i;
        while (j < len && j - i < 40 &&
               (s[j] == '$' || s[j] == '_' || s[j] == '-' || (s[j] >= 'a' && s[j] <= 'z') ||
                (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')))
            j++;
        if (j > i) {
            if (wl) words[wl++] = ' ';
            memcpy(words + wl, s + i, j - i);
            wl += j - i;
            words[wl] = 0;
            nwords++;
        }
        i = j + 1;
    }
    char info[128];
    int lost = mailio_maildir_info(want, words, &k, info, sizeof info);
    CHECK(lost >= 0 && strncmp(info, ":2,", 3) == 0);
    char back[4096];
    uint32_t got = 0;
    mailio_maildir_flags(info, &k, &got, back, sizeof back);
    CHECK(got == want);
    /* every keyword that came back was asked for; all came back unless some were lost */
    size_t found = 0;
    for (char *w = back; *w;) {
        char *e = strchr(w, ' ');
        size_t l = e ? (size_t)(e - w) : strlen(w);
        bool asked = false;
        for (char *a = words; *a;) {
            char *ae = strchr(a, ' ');
            size_t al = ae ? (size_t)(ae - a) : strlen(a);
            if (al == l &&
                (memcmp(a, w, l) == 0 ||
                 (l == 10 && strncasecmp(w, "$Forwarded", 10) == 0 && strncasecmp(a, w, l) == 0)))
                asked = true;
            a = ae ? ae + 1 : a + al;
        }
        CHECK(asked);
        found++;
        w = e ? e + 1 : w + l;
    }
    if (lost == 0 && nwords > 0 && nwords <= 26) CHECK(found >= 1);
    mailio_keywords_free(&k);

    /* Maildir++ folder names */
    char *mb = strndup(s, len);
    size_t ml = strlen(mb);
    char *enc = malloc(3 * ml + 5), *dec = malloc(3 * ml + 5);
    CHECK(mb && enc && dec);
    mailio_folder_encode(mb, enc, 3 * ml + 5);
    CHECK(strlen(enc) <= 3 * ml);
    mailio_folder_decode(enc, dec, 3 * ml + 5);
    CHECK(strcmp(dec, mb) == 0);
    /* decoding anything stays inside the buffer and never grows */
    mailio_folder_decode(mb, dec, ml + 1);
    CHECK(strlen(dec) <= ml);
    free(mb);
    free(enc);
    free(dec);
}

/* Export then import: messages written as `mailfs export --mbox` writes them (From_ line with
 * the date, mboxrd quoting, a newline added if missing, a blank line) must come back exactly,
 * each with its date, however their bytes look (Content-Length fields included). The input is
 * cut into messages at 0xff bytes. */
static void round_trip(const char *in, size_t len)
{
    const char *msgs[16];
    size_t lens[16], n = 0;
    int64_t dates[16];
    for (size_t i = 0; n < 16;) {
        const char *e = memchr(in + i, 0xff, len - i);
        size_t l = e ? (size_t)(e - in) - i : len - i;
        msgs[n] = in + i, lens[n] = l;
        uint32_t h = 2166136261u;
        for (size_t k = 0; k < l && k < 64; k++)
            h = (h ^ (unsigned char)in[i + k]) * 16777619u;
        dates[n++] = (int64_t)(h % 4102444800u); /* 1970..2099 */
        if (!e) break;
        i += l + 1;
    }
    char *mbox = malloc(2 * len + 80 * n + 1);
    CHECK(mbox != NULL);
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        char date[64];
        time_t t = (time_t)dates[k];
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
        o += (size_t)sprintf(mbox + o, "From MAILER-DAEMON %s\n", date);
        o += quote(msgs[k], lens[k], mbox + o);
        if (lens[k] == 0 || msgs[k][lens[k] - 1] != '\n') mbox[o++] = '\n';
        mbox[o++] = '\n';
    }
    size_t pos = 0, k = 0;
    mailio_mbox_msg m;
    while (mailio_mbox_next(mbox, o, &pos, &m)) {
        CHECK(k < n);
        char *u = malloc(m.len ? m.len : 1);
        CHECK(u != NULL);
        size_t ul = m.len;
        memcpy(u, m.data, m.len);
        if (m.quoted && mailio_mbox_needs_quoting(m.data, m.len))
            ul = mailio_mbox_unquote(m.data, m.len, u);
        size_t want = lens[k] + (lens[k] == 0 || msgs[k][lens[k] - 1] != '\n');
        bool same = ul == want && memcmp(u, msgs[k], lens[k]) == 0;
        if (!same && !m.quoted) {
            /* framed by its own Content-Length field, which counted the quoted text and maybe
             * the blank line after it: the message comes back still quoted, perhaps with one
             * more newline (only a lying field can do that, and only to its own message) */
            char *q = malloc(2 * want + 2);
            CHECK(q != NULL);
            size_t ql = quote(msgs[k], lens[k], q);
            if (lens[k] == 0 || msgs[k][lens[k] - 1] != '\n') q[ql++] = '\n';
            same = (ul == ql || (ul == ql + 1 && u[ql] == '\n')) && memcmp(u, q, ql) == 0;
            free(q);
        }
        if (!same)
            fprintf(stderr, "message %zu of %zu: exported %zu bytes, imported %zu\n", k + 1, n,
                    want, ul);
        CHECK(same);
        CHECK(m.date == dates[k]);
        free(u);
        k++;
    }
    CHECK(k == n);
    free(mbox);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so reading past the end is caught */
    char *map = malloc(size ? size : 1);
    CHECK(map != NULL);
    memcpy(map, data, size);
    progress(map, size);
    framing(map, size);
    message(map, size);
    maildir(map, size < 512 ? size : 512);
    round_trip(map, size);
    free(map);
    return 0;
}
