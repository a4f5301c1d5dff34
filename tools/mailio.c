/* mailio.c: Maildir flag letters, dovecot-keywords files and mbox framing for import/export */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store.h"
#include "tools/mailio.h"

void mailio_keywords_load(mailio_keywords *k, const char *dir)
{
    memset(k, 0, sizeof *k);
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/dovecot-keywords", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        int idx;
        char name[256];
        if (sscanf(line, "%d %255s", &idx, name) == 2 && idx >= 0 && idx < MAILIO_KEYWORDS_MAX &&
            !k->names[idx])
            k->names[idx] = strdup(name);
    }
    fclose(f);
}

int mailio_keywords_save(const mailio_keywords *k, const char *dir)
{
    bool any = false;
    for (int i = 0; i < MAILIO_KEYWORDS_MAX; i++)
        any |= k->names[i] != NULL;
    if (!any) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/dovecot-keywords", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    for (int i = 0; i < MAILIO_KEYWORDS_MAX; i++)
        if (k->names[i]) fprintf(f, "%d %s\n", i, k->names[i]);
    return fclose(f) == 0 ? 0 : -errno;
}

void mailio_keywords_free(mailio_keywords *k)
{
    for (int i = 0; i < MAILIO_KEYWORDS_MAX; i++)
        free(k->names[i]);
    memset(k, 0, sizeof *k);
}

static void kw_append(char *kw, size_t kwlen, const char *name)
{
    size_t n = strlen(kw), l = strlen(name);
    if (n + l + 2 > kwlen) return;
    if (n) kw[n++] = ' ';
    memcpy(kw + n, name, l + 1);
}

void mailio_maildir_flags(const char *filename, const mailio_keywords *k, uint32_t *flags, char *kw,
                          size_t kwlen)
{
    *flags = 0;
    kw[0] = 0;
    const char *info = strstr(filename, ":2,");
    if (!info) info = strstr(filename, "!2,");
    if (!info) return;
    for (const char *p = info + 3; *p; p++) {
        switch (*p) {
        case 'D':
            *flags |= STORE_F_DRAFT;
            break;
        case 'F':
            *flags |= STORE_F_FLAGGED;
            break;
        case 'P':
            kw_append(kw, kwlen, "$Forwarded");
            break;
        case 'R':
            *flags |= STORE_F_ANSWERED;
            break;
        case 'S':
            *flags |= STORE_F_SEEN;
            break;
        case 'T':
            *flags |= STORE_F_DELETED;
            break;
        default:
            if (*p >= 'a' && *p <= 'z' && k->names[*p - 'a'])
                kw_append(kw, kwlen, k->names[*p - 'a']);
        }
    }
}

int mailio_maildir_info(uint32_t flags, const char *keywords, mailio_keywords *k, char *out,
                        size_t outlen)
{
    char letters[64] = "";
    size_t n = 0;
    int lost = 0;
    bool forwarded = false, used[MAILIO_KEYWORDS_MAX] = {0};
    for (const char *p = keywords; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        p = e ? e + 1 : p + len;
        if (strcasecmp(name, "$Forwarded") == 0) {
            forwarded = true;
            continue;
        }
        int idx = -1;
        for (int i = 0; i < MAILIO_KEYWORDS_MAX; i++) {
            if (k->names[i] && strcmp(k->names[i], name) == 0)
                idx = i;
            else if (!k->names[i] && idx < 0) {
                k->names[i] = strdup(name);
                idx = i;
            }
            if (idx >= 0 && k->names[idx] && strcmp(k->names[idx], name) == 0) break;
        }
        if (idx < 0)
            lost++;
        else
            used[idx] = true;
    }
    /* Maildir wants the letters in ASCII order: upper case first */
    if (flags & STORE_F_DRAFT) letters[n++] = 'D';
    if (flags & STORE_F_FLAGGED) letters[n++] = 'F';
    if (forwarded) letters[n++] = 'P';
    if (flags & STORE_F_ANSWERED) letters[n++] = 'R';
    if (flags & STORE_F_SEEN) letters[n++] = 'S';
    if (flags & STORE_F_DELETED) letters[n++] = 'T';
    for (int i = 0; i < MAILIO_KEYWORDS_MAX; i++)
        if (used[i]) letters[n++] = (char)('a' + i);
    letters[n] = 0;
    snprintf(out, outlen, ":2,%s", letters);
    return lost;
}

void mailio_folder_encode(const char *mailbox, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = mailbox; *p && n + 4 < outlen; p++) {
        if (*p == '.')
            memcpy(out + n, "%2E", 3), n += 3;
        else if (*p == '%')
            memcpy(out + n, "%25", 3), n += 3;
        else if (*p == '/')
            out[n++] = '.';
        else
            out[n++] = *p;
    }
    out[n] = 0;
}

void mailio_folder_decode(const char *folder, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = folder; *p && n + 1 < outlen; p++) {
        if (p[0] == '%' && p[1] == '2' && (p[2] == 'E' || p[2] == 'e'))
            out[n++] = '.', p += 2;
        else if (p[0] == '%' && p[1] == '2' && p[2] == '5')
            out[n++] = '%', p += 2;
        else if (*p == '.')
            out[n++] = '/';
        else
            out[n++] = *p;
    }
    out[n] = 0;
}

bool mailio_is_mbox(const char *p, size_t len)
{
    return len >= 5 && memcmp(p, "From ", 5) == 0;
}

/* Parses the date of a From_ line: "From SENDER Tue Jan  1 00:00:00 2000" (asctime). */
static int64_t from_line_date(const char *p, size_t len)
{
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), p);
    char *rest = strchr(line + 5, ' ');
    while (rest && *rest == ' ')
        rest++;
    if (!rest) return 0;
    struct tm tm = {0};
    const char *end = strptime(rest, "%a %b %d %H:%M:%S %Y", &tm);
    if (!end) return 0;
    tm.tm_isdst = 0;
    return (int64_t)timegm(&tm);
}

/* The value of header NAME in the header block of the message at P (first occurrence). */
static bool header_value(const char *p, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len;) {
        const char *eol = memchr(p + i, '\n', len - i);
        size_t line_end = eol ? (size_t)(eol - p) : len;
        size_t l = line_end - i;
        if (l == 0 || (l == 1 && p[i] == '\r')) return false; /* end of the header block */
        if (l > nl && strncasecmp(p + i, name, nl) == 0 && p[i + nl] == ':') {
            size_t s = i + nl + 1;
            while (s < line_end && (p[s] == ' ' || p[s] == '\t'))
                s++;
            size_t e = line_end;
            while (e > s && (p[e - 1] == '\r' || p[e - 1] == ' '))
                e--;
            *v = p + s, *vlen = e - s;
            return true;
        }
        i = line_end + 1;
    }
    return false;
}

/* True if the line after the one at P starts like a header field ("Name:"). */
static bool next_line_is_header(const char *p, size_t len)
{
    const char *eol = memchr(p, '\n', len);
    if (!eol) return false;
    size_t i = (size_t)(eol - p) + 1, s = i;
    while (i < len && (isalnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '_'))
        i++;
    return i > s && i < len && p[i] == ':';
}

/* True if the line at P looks like a real From_ line: followed by a header field, or
 * "From SENDER Www Mmm dd hh:mm" */
static bool from_line_valid(const char *p, size_t len)
{
    if (next_line_is_header(p, len)) return true;
    size_t i = 5;
    if (len < 5 || memcmp(p, "From ", 5) != 0) return false;
    while (i < len && p[i] != ' ' && p[i] != '\n')
        i++; /* the sender */
    while (i < len && p[i] == ' ')
        i++;
    /* weekday and month: three letters each, then the day and a time */
    for (int word = 0; word < 2; word++) {
        if (len - i < 4 || !isupper((unsigned char)p[i]) || !islower((unsigned char)p[i + 1]) ||
            !islower((unsigned char)p[i + 2]) || p[i + 3] != ' ')
            return false;
        i += 4;
    }
    while (i < len && p[i] == ' ')
        i++;
    size_t d = i;
    while (i < len && isdigit((unsigned char)p[i]))
        i++;
    if (i == d || i - d > 2 || i >= len || p[i] != ' ') return false;
    i++;
    return len - i >= 5 && isdigit((unsigned char)p[i]) && isdigit((unsigned char)p[i + 1]) &&
           p[i + 2] == ':' && isdigit((unsigned char)p[i + 3]);
}

/* True if a From_ line that looks real (a date, or a header line after it) starts inside the
 * message text MAP[START, END). */
static bool crosses_from_line(const char *map, size_t len, size_t start, size_t end)
{
    for (size_t q = start; q < end;) {
        const char *hit = memmem(map + q, end - q, "\nFrom ", 6);
        if (!hit) return false;
        size_t nl = (size_t)(hit - map);
        if (nl + 1 < end && from_line_valid(map + nl + 1, len - nl - 1)) return true;
        q = nl + 1;
    }
    return false;
}

bool mailio_mbox_next(const char *map, size_t len, size_t *pos, mailio_mbox_msg *out)
{
    size_t p = *pos;
    if (p >= len) return false;
    const char *eol = memchr(map + p, '\n', len - p);
    size_t start = eol ? (size_t)(eol - map) + 1 : len;
    memset(out, 0, sizeof *out);
    out->date = from_line_date(map + p, start - p);
    out->data = map + start;
    out->quoted = true;
    /* Content-Length framing (Solaris-style mboxes), used only if it lands on a From_ line at
     * the start of a line (or the end) and does not reach past a From_ line with a date: a
     * message's own header must not split it or swallow the next one. */
    const char *v;
    size_t vl;
    if (header_value(map + start, len - start, "Content-Length", &v, &vl) && vl > 0 && vl < 20) {
        char num[24];
        snprintf(num, sizeof num, "%.*s", (int)vl, v);
        char *endp;
        unsigned long long cl = strtoull(num, &endp, 10);
        const char *hdr_end = NULL;
        for (size_t i = start; i + 1 < len; i++) {
            if (map[i] == '\n' &&
                (map[i + 1] == '\n' || (map[i + 1] == '\r' && i + 2 < len && map[i + 2] == '\n'))) {
                hdr_end = map + i + (map[i + 1] == '\n' ? 2 : 3);
                break;
            }
        }
        if (isdigit((unsigned char)num[0]) && *endp == 0 && hdr_end &&
            cl <= (unsigned long long)(map + len - hdr_end)) {
            size_t end = (size_t)(hdr_end - map) + (size_t)cl, next = end;
            if (next < len && map[next] == '\n')
                next++;
            else if (next + 1 < len && map[next] == '\r' && map[next + 1] == '\n')
                next += 2;
            bool line_start = next == len || (next > start && map[next - 1] == '\n');
            if (line_start && !crosses_from_line(map, len, start, end) &&
                (next == len || mailio_is_mbox(map + next, len - next))) {
                out->len = end - start;
                out->quoted = false;
                *pos = next;
                return true;
            }
        }
    }
    /* otherwise: the next "From " line that follows a blank line or has a From_ line's date
     * (an unquoted "From " in a body, after text, stays in the body) */
    size_t q = start;
    for (;;) {
        const char *hit = q < len ? memmem(map + q, len - q, "\nFrom ", 6) : NULL;
        if (!hit) {
            size_t end = len;
            /* the blank line that ends the last message belongs to the mbox */
            if (end - start >= 2 && map[end - 1] == '\n' && map[end - 2] == '\n')
                end--;
            else if (end - start >= 4 && !memcmp(map + end - 4, "\r\n\r\n", 4))
                end -= 2;
            out->len = end - start;
            *pos = len;
            return true;
        }
        size_t nl = (size_t)(hit - map); /* the '\n' before "From " */
        if (nl > start && map[nl - 1] == '\n') {
            out->len = nl - start; /* keeps the message's own last '\n' */
            *pos = nl + 1;
            return true;
        }
        if (nl > start + 1 && map[nl - 1] == '\r' && map[nl - 2] == '\n') {
            out->len = nl - 1 - start;
            *pos = nl + 1;
            return true;
        }
        if (nl == start) { /* an empty message: From_ line right after From_ line */
            out->len = 0;
            *pos = nl + 1;
            return true;
        }
        if (from_line_valid(map + nl + 1, len - nl - 1)) {
            out->len = nl + 1 - start; /* no blank line before it: the '\n' is the message's */
            *pos = nl + 1;
            return true;
        }
        q = nl + 1;
    }
}

/* True if the line at P (LEN bytes left) is >+From  */
static bool quoted_from(const char *p, size_t len)
{
    size_t i = 0;
    while (i < len && p[i] == '>')
        i++;
    return i > 0 && len - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

bool mailio_mbox_needs_quoting(const char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        if ((p[i] == '>' && quoted_from(p + i, len - i)) ||
            (len - i >= 5 && memcmp(p + i, "From ", 5) == 0))
            return true;
        const char *eol = memchr(p + i, '\n', len - i);
        if (!eol) break;
        i = (size_t)(eol - p) + 1;
    }
    return false;
}

size_t mailio_mbox_unquote(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (in[i] == '>' && quoted_from(in + i, len - i)) i++;
        const char *eol = memchr(in + i, '\n', len - i);
        size_t l = eol ? (size_t)(eol - in) + 1 - i : len - i;
        memcpy(out + o, in + i, l);
        o += l, i += l;
    }
    return o;
}

uint32_t mailio_mbox_status_flags(const char *p, size_t len)
{
    uint32_t f = 0;
    const char *v;
    size_t vl;
    if (header_value(p, len, "Status", &v, &vl))
        for (size_t i = 0; i < vl; i++)
            if (v[i] == 'R') f |= STORE_F_SEEN;
    if (header_value(p, len, "X-Status", &v, &vl))
        for (size_t i = 0; i < vl; i++) {
            if (v[i] == 'A') f |= STORE_F_ANSWERED;
            if (v[i] == 'F') f |= STORE_F_FLAGGED;
            if (v[i] == 'D') f |= STORE_F_DELETED;
            if (v[i] == 'T') f |= STORE_F_DRAFT;
        }
    return f;
}
