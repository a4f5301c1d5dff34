/* names.c: which file names are messages, name checks, and the text of user.mail.flags */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/fs_int.h"

/* A message is "*.eml" not starting with '.'; everything else is a scratch file. */
bool fs_name_is_message(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && name[0] != '.' && memcmp(name + n - 4, ".eml", 4) == 0;
}

bool fs_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        int more;
        unsigned min;
        if (c < 0x80) continue;
        if ((c & 0xe0) == 0xc0) {
            more = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (end - p < more) return false;
        while (more--) {
            if ((*p & 0xc0) != 0x80) return false;
            c = (c << 6) | (*p++ & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    }
    return true;
}

int fs_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n > STORE_COMPONENT_MAX) return -ENAMETOOLONG;
    if (n == 0 || strcmp(name, ".") == 0 || strstr(name, "..")) return -EINVAL;
    if (n > STORE_COMPONENT_MAX) return -ENAMETOOLONG;
    if (!fs_utf8_valid(name, n)) return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return -EINVAL;
    return 0;
}

static const struct {
    const char *name;
    uint32_t bit;
} system_flags[] = {
    {"\\Seen", STORE_F_SEEN},       {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},
};

size_t fs_flags_format(uint32_t flags, const char *keywords, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof system_flags / sizeof system_flags[0]; i++) {
        if (!(flags & system_flags[i].bit)) continue;
        size_t l = strlen(system_flags[i].name);
        if (n + l + 2 > size) break;
        if (n) buf[n++] = ' ';
        memcpy(buf + n, system_flags[i].name, l);
        n += l;
    }
    if (keywords && *keywords) {
        size_t l = strlen(keywords);
        if (n + l + 2 <= size) {
            if (n) buf[n++] = ' ';
            memcpy(buf + n, keywords, l);
            n += l;
        }
    }
    buf[n] = 0;
    return n;
}

/*
 * Tokens are separated by blanks, commas or newlines (so `setfattr -v "\Seen,\Flagged"` works).
 * The value is taken whole or refused with EINVAL, never cut: a NUL inside it (one at the very
 * end is a C string's terminator, which some callers count), an unknown or \Recent system
 * flag, a keyword IMAP does not allow (store_keyword_valid: an atom of 1-200 bytes), or more
 * keywords than a message can hold.
 */
int fs_flags_parse(const char *text, size_t len, uint32_t *flags, char **keywords)
{
    *flags = 0;
    *keywords = NULL;
    if (len && text[len - 1] == 0) len--;
    if (len && memchr(text, 0, len)) return -EINVAL;
    char *kw = malloc(len + 1);
    size_t kn = 0;
    if (!kw) return -ENOMEM;
    size_t i = 0;
    while (i < len) {
        while (i < len && strchr(" \t\r\n,", text[i]))
            i++;
        size_t start = i;
        while (i < len && !strchr(" \t\r\n,", text[i]))
            i++;
        size_t l = i - start;
        if (l == 0) continue;
        const char *tok = text + start;
        if (tok[0] == '\\') {
            size_t j;
            for (j = 0; j < sizeof system_flags / sizeof system_flags[0]; j++)
                if (strlen(system_flags[j].name) == l &&
                    strncasecmp(system_flags[j].name, tok, l) == 0)
                    break;
            if (j == sizeof system_flags / sizeof system_flags[0]) {
                free(kw);
                return -EINVAL; /* \Recent and unknown system flags cannot be set */
            }
            *flags |= system_flags[j].bit;
            continue;
        }
        if (!store_keyword_valid(tok, l)) {
            free(kw);
            return -EINVAL;
        }
        if (kn) kw[kn++] = ' ';
        memcpy(kw + kn, tok, l);
        kn += l;
    }
    kw[kn] = 0;
    if (kn > STORE_KEYWORDS_MAX) {
        free(kw);
        *flags = 0;
        return -EINVAL;
    }
    *keywords = kw;
    return 0;
}

int64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
