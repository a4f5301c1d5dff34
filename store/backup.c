/* backup.c: a hot, compacted copy of the store and its TLS files (mailfs backup) */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

int store_backup(store *s, const char *dest, char *err, size_t errlen)
{
    struct stat st;
    char path[PATH_MAX];
    if (stat(dest, &st) == 0) {
        snprintf(path, sizeof path, "%s/data.mdb", dest);
        if (!S_ISDIR(st.st_mode) || access(path, F_OK) == 0) {
            snprintf(err, errlen, "'%s' exists and is not an empty directory: pick a new one",
                     dest);
            return -EEXIST;
        }
    } else if (mkdir(dest, 0700) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create '%s': %s", dest, strerror(e));
        return -e;
    }
    /* a copy made from one read snapshot; free pages are left out (MDB_CP_COMPACT) */
    int rc = mdb_env_copy2(s->env, dest, MDB_CP_COMPACT);
    if (rc) {
        snprintf(err, errlen, "cannot copy the store into '%s': %s", dest, mdb_strerror(rc));
        return st_err(NULL, rc);
    }
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    chmod(path, 0600);
    static const char *const files[] = {"tls/cert.pem", "tls/key.pem"};
    char tls[PATH_MAX];
    snprintf(tls, sizeof tls, "%s/tls", dest);
    mkdir(tls, 0700);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", s->dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", dest, files[i]);
        FILE *in = fopen(from, "rb");
        if (!in) continue; /* a store without TLS files: nothing to copy */
        FILE *out = fopen(to, "wb");
        if (!out) {
            int e = errno;
            fclose(in);
            snprintf(err, errlen, "cannot write '%s': %s", to, strerror(e));
            return -e;
        }
        chmod(to, 0600);
        char buf[8192];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0 && fwrite(buf, 1, got, out) == got) {
        }
        /* a copy cut short by a read or write error is no backup of the key */
        int e = errno;
        bool rerr = ferror(in), werr = ferror(out);
        fclose(in);
        if (fclose(out) != 0 || werr) {
            snprintf(err, errlen, "cannot write '%s': %s", to, strerror(werr ? e : errno));
            return -EIO;
        }
        if (rerr) {
            snprintf(err, errlen, "cannot read '%s': %s", from, strerror(e));
            return -EIO;
        }
    }
    return st_files_backup(s, dest, err, errlen);
}
