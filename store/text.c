/* text.c: names and flags as text: UTF-8 checks, mailbox and file name rules, flag lists */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_utf7.h"
#include "store/internal.h"

bool store_utf8_valid(const char *str, size_t n)
{
    return imap_utf8_check(str, n, true); /* the protocol library's, which the store links */
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return true;
    return false;
}

int store_mailbox_name_check(const char *name, const char **why)
{
    const char *w = NULL;
    size_t n = strlen(name);
    if (n == 0)
        w = "the name is empty";
    else if (n > STORE_NAME_MAX)
        w = "the name is longer than 500 bytes";
    else if (!store_utf8_valid(name, n))
        w = "the name is not valid UTF-8";
    else if (has_control(name, n))
        w = "the name holds a control character";
    else if (strpbrk(name, "*%"))
        w = "the name holds '*' or '%', which IMAP uses as wildcards";
    else if (name[0] == '/' || name[n - 1] == '/')
        w = "the name starts or ends with '/'";
    else {
        for (const char *p = name; *p;) {
            const char *e = strchr(p, '/');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == 0)
                w = "the name holds an empty level ('//')";
            else if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                w = "a level of the name is '.' or '..'";
            else if (len > STORE_COMPONENT_MAX)
                w = "a level of the name is longer than 255 bytes";
            if (w || !e) break;
            p = e + 1;
        }
    }
    if (why) *why = w;
    return w ? -EINVAL : 0;
}

int st_filename_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > STORE_COMPONENT_MAX) return -EINVAL;
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) return -EINVAL;
    if (!store_utf8_valid(name, n)) return -EINVAL;
    return 0;
}

bool store_user_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > STORE_USER_MAX || name[0] == '.') return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._@+-", name[i])) return false;
    return true;
}

static const struct {
    const char *name;
    uint32_t bit;
} sysflags[] = {
    {"\\Seen", STORE_F_SEEN},       {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},
};

bool store_keyword_valid(const char *k, size_t n)
{
    if (n == 0 || n > 200) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c)) return false;
    }
    return true;
}

/* True if the space-separated list KW (length KWN) holds keyword K (case-insensitive). */
static bool kw_has(const char *kw, size_t kwn, const char *k, size_t n)
{
    for (size_t i = 0; i < kwn;) {
        size_t j = i;
        while (j < kwn && kw[j] != ' ')
            j++;
        if (j - i == n && strncasecmp(kw + i, k, n) == 0) return true;
        i = j + 1;
    }
    return false;
}

/* Separators between the tokens of a flags text. */
static bool flag_sep(char c)
{
    return c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '\r';
}

const char *store_sysflag(size_t i, uint32_t *bit)
{
    if (i >= sizeof sysflags / sizeof *sysflags) return NULL;
    if (bit) *bit = sysflags[i].bit;
    return sysflags[i].name;
}

uint32_t store_sysflag_bit(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof sysflags / sizeof *sysflags; i++)
        if (strlen(sysflags[i].name) == n && strncasecmp(sysflags[i].name, p, n) == 0)
            return sysflags[i].bit;
    return 0;
}

int store_flags_parse(const char *text, size_t len, uint32_t *flags, char *kw, size_t kwlen,
                      const char **why)
{
    const char *w = NULL;
    int rc = 0;
    size_t used = 0;
    *flags = 0;
    if (kwlen) kw[0] = 0;
    if (memchr(text, 0, len)) {
        w = "the flags hold a NUL byte";
        rc = -EINVAL;
    }
    for (size_t i = 0; i < len && !rc;) {
        while (i < len && flag_sep(text[i]))
            i++;
        size_t start = i;
        while (i < len && !flag_sep(text[i]))
            i++;
        const char *p = text + start;
        size_t n = i - start;
        if (n == 0) break;
        if (*p == '\\') {
            uint32_t bit = store_sysflag_bit(p, n);
            if (bit)
                *flags |= bit;
            else if (n == 7 && strncasecmp(p, "\\Recent", 7) == 0)
                w = "\\Recent cannot be set: the server gives it to new messages";
            else
                w = "unknown system flag (known: \\Seen \\Answered \\Flagged \\Deleted \\Draft)";
            if (w) rc = -EINVAL;
        } else if (!store_keyword_valid(p, n)) {
            w = "a keyword is empty, longer than 200 bytes or holds a character IMAP does not "
                "allow";
            rc = -EINVAL;
        } else if (!kw_has(kw, used, p, n)) {
            if (used + (used ? 1 : 0) + n + 1 > kwlen) {
                w = "too many keywords";
                rc = -E2BIG;
                break;
            }
            if (used) kw[used++] = ' ';
            memcpy(kw + used, p, n);
            used += n;
            kw[used] = 0;
        }
    }
    if (rc) { /* nothing half-parsed */
        *flags = 0;
        if (kwlen) kw[0] = 0;
    }
    if (why) *why = w;
    return rc;
}

/* Appends word W to the list of N bytes in BUF if it fits; returns the list's length with it. */
static size_t put_word(char *buf, size_t buflen, size_t n, const char *w)
{
    size_t l = strlen(w), sep = n ? 1 : 0;
    if (n + sep + l < buflen) {
        if (sep) buf[n] = ' ';
        memcpy(buf + n + sep, w, l);
    }
    return n + sep + l;
}

size_t store_flags_format(uint32_t flags, const char *keywords, char *buf, size_t buflen)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof sysflags / sizeof *sysflags; i++)
        if (flags & sysflags[i].bit) n = put_word(buf, buflen, n, sysflags[i].name);
    if (keywords && *keywords) n = put_word(buf, buflen, n, keywords);
    if (n < buflen)
        buf[n] = 0;
    else if (buflen)
        buf[0] = 0; /* too small: nothing rather than a cut list */
    return n;
}
