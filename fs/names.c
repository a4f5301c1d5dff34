/* names.c: which file names are messages or known temporary files, and the checks of names */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/fs_int.h"

/* A message is "*.eml" in any case ("x.EML" is one too), not starting with '.'. */
bool fs_name_is_message(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && name[0] != '.' && strcasecmp(name + n - 4, ".eml") == 0;
}

/* Whether the LEN bytes at NAME are a message's name: in a folder "x.eml", in cur/ or new/
 * of the Maildir view (MAILDIR) a Maildir name "x" or "x:2,FLAGS". */
static bool names_message(bool maildir, const char *name, size_t len)
{
    char t[STORE_COMPONENT_MAX + 1], file[STORE_COMPONENT_MAX + 8];
    uint32_t flags;
    bool passed;
    if (len == 0 || len > STORE_COMPONENT_MAX) return false;
    memcpy(t, name, len);
    t[len] = 0;
    if (!maildir) return fs_name_is_message(t);
    return fs_md_parse(t, file, sizeof file, &flags, &passed) == 0;
}

static bool all_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

/* The temporary files that tools write beside a message and rename over it (or rename it to,
 * for a backup), named after that message, or with a fixed pattern of their own. */
static bool is_temporary(bool maildir, const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.') {
        /* rsync ".NAME.XXXXXX" (NAME cut to 246 bytes when longer), vim's and nano's swap
         * files ".NAME.swp" (.swo, .swn, ...), kate's ".NAME.kate-swp" */
        const char *dot = strrchr(name, '.');
        size_t base = (size_t)(dot - name) - 1;
        if (dot > name + 1 && dot[1] && names_message(maildir, name + 1, base)) return true;
        if (base == 246 && n == 1 + base + 7 && all_alnum(dot + 1, 6)) return true;
        return false;
    }
    /* backups of vim, emacs, nano, joe, cp/mv --backup: "NAME~" */
    if (n > 1 && name[n - 1] == '~') return names_message(maildir, name, n - 1);
    /* emacs auto-save: "#NAME#" */
    if (n > 2 && name[0] == '#' && name[n - 1] == '#')
        return names_message(maildir, name + 1, n - 2);
    /* sed -i: "sedXXXXXX"; perl -i: "XXXXXXXX" */
    if (n == 9 && memcmp(name, "sed", 3) == 0 && all_alnum(name + 3, 6)) return true;
    if (n == 8 && all_alnum(name, 8)) return true;
    /* vim's probe whether it may create files here: "4913", then 4913 + 123 k while taken */
    if (n >= 4 && n <= 9 && strspn(name, "0123456789") == n) {
        long v = strtol(name, NULL, 10);
        return v >= 4913 && (v - 4913) % 123 == 0;
    }
    return false;
}

fs_name_kind fs_name_kind_in(uint64_t parent, const char *name)
{
    enum fs_ino_kind k = fs_ino_kind(parent);
    if (k == FS_K_MDIR && fs_ino_md_which(parent) == FS_MD_TMP) return FS_NAME_TEMP;
    if (k != FS_K_DIR && k != FS_K_MDIR) return FS_NAME_REFUSED; /* the root holds folders only */
    bool maildir = k == FS_K_MDIR;
    if (names_message(maildir, name, strlen(name))) return FS_NAME_MESSAGE;
    return is_temporary(maildir, name) ? FS_NAME_TEMP : FS_NAME_REFUSED;
}

int fs_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n > STORE_COMPONENT_MAX) return -ENAMETOOLONG;
    if (n == 0 || strcmp(name, ".") == 0 || strstr(name, "..")) return -EINVAL;
    if (!store_utf8_valid(name, n)) return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return -EINVAL;
    return 0;
}
