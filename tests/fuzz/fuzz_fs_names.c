/* fuzz_fs_names.c: libFuzzer target: the mount's name checks, Maildir-view names and flags as
 * text (user.mail.flags, parsed and formatted by the store) */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs/fs_int.h"
#include "imap/imap_utf7.h"
#include "store/store.h"

#define UNIT_FUZZ /* a failed CHECK abort()s: libFuzzer keeps the input */
#include "tests/unit.h"

/*
 * The input is a file name as the kernel hands it over (no '/', no NUL) or the value of a
 * setfattr. Name checks must agree with what they promise (and the store's UTF-8 validator,
 * which the mount uses, with the IMAP library's); flags text must parse, format and parse again
 * to the same flags and keywords, and a formatter short of room must say so, not cut.
 */

#define ALL_FLAGS                                                                                  \
    (STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)

static void names(const char *name, size_t n)
{
    /* store_utf8_valid and imap_utf8_valid (which also refuses NUL) agree */
    bool v = store_utf8_valid(name, n);
    if (!memchr(name, '\0', n)) CHECK(v == imap_utf8_valid(name, n));
    for (size_t cut = 0; cut < n; cut += 1 + n / 5)
        if (!memchr(name, '\0', cut))
            CHECK(store_utf8_valid(name, cut) == imap_utf8_valid(name, cut));

    char *z = strndup(name, n);
    CHECK(z != NULL);
    size_t zl = strlen(z);
    bool msg = fs_name_is_message(z);
    CHECK(msg == (zl > 4 && z[0] != '.' && strcasecmp(z + zl - 4, ".eml") == 0));
    int rc = fs_name_check(z);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG);
    if (zl > STORE_COMPONENT_MAX) CHECK(rc == -ENAMETOOLONG);
    if (rc == 0) {
        /* what a checked name may never be */
        CHECK(zl >= 1 && zl <= STORE_COMPONENT_MAX);
        CHECK(strcmp(z, ".") != 0 && strcmp(z, "..") != 0 && !strstr(z, ".."));
        CHECK(store_utf8_valid(z, zl) && imap_utf8_valid(z, zl));
        for (size_t i = 0; i < zl; i++)
            CHECK((unsigned char)z[i] >= 0x20 && z[i] != 0x7f);
    }
    /* what a new file of that name becomes: a message in a folder exactly when it is a
     * message name; nothing is a file in the root; anything goes in tmp/ */
    fs_name_kind fk = fs_name_kind_in(fs_ino_dir(1), z);
    if (zl <= STORE_COMPONENT_MAX) CHECK((fk == FS_NAME_MESSAGE) == msg); /* longer: never a name */
    CHECK(fs_name_kind_in(FS_INO_ROOT, z) == FS_NAME_REFUSED);
    CHECK(fs_name_kind_in(fs_ino_mdir(1, FS_MD_TMP), z) == FS_NAME_TEMP);
    fs_name_kind ck = fs_name_kind_in(fs_ino_mdir(1, FS_MD_CUR), z);
    CHECK(ck == FS_NAME_MESSAGE || ck == FS_NAME_TEMP || ck == FS_NAME_REFUSED);
    /* a Maildir-view name: BASE.eml comes out a valid message name, and the message's cur/
     * name formats back to the name with its flags letters in order */
    char file[STORE_COMPONENT_MAX + 8];
    uint32_t mf = 0xdeadbeef;
    bool passed = true;
    int prc = fs_md_parse(z, file, sizeof file, &mf, &passed);
    CHECK(prc == 0 || prc == -EINVAL || prc == -ENAMETOOLONG);
    if (prc == 0) {
        CHECK(fs_name_is_message(file) && fs_name_check(file) == 0);
        if (zl <= STORE_COMPONENT_MAX) CHECK(ck == FS_NAME_MESSAGE);
        CHECK((mf & ~(uint32_t)ALL_FLAGS) == 0);
        char *kw = fs_md_keywords("$Work $Forwarded", passed);
        CHECK(kw != NULL);
        store_msg m = {.filename = file, .flags = mf, .keywords = kw};
        char back[STORE_COMPONENT_MAX + 16];
        size_t bl = fs_md_name(&m, back, sizeof back);
        CHECK(bl == strlen(back));
        uint32_t mf2 = 0;
        bool passed2 = false;
        char file2[STORE_COMPONENT_MAX + 8];
        CHECK(fs_md_parse(back, file2, sizeof file2, &mf2, &passed2) == 0);
        CHECK(strcmp(file, file2) == 0 && mf2 == mf && passed2 == passed);
        free(kw);
    }
    /* mkdir asks the store too (it may be stricter): it answers, with a reason when it refuses */
    const char *why = NULL;
    int mrc = store_mailbox_name_check(z, &why);
    CHECK(mrc == 0 || (mrc < 0 && why != NULL && why[0] != '\0'));
    free(z);
}

static void flags_text(const char *text, size_t n)
{
    uint32_t f = 0xdeadbeef;
    char kw[STORE_KEYWORDS_MAX + 1];
    const char *why = NULL;
    int rc = store_flags_parse(text, n, &f, kw, sizeof kw, &why);
    CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    if (rc != 0) { /* refused whole: a reason, nothing half-parsed */
        CHECK(f == 0 && kw[0] == '\0' && why != NULL && why[0] != '\0');
        return;
    }
    CHECK((f & ~(uint32_t)ALL_FLAGS) == 0 && strlen(kw) <= STORE_KEYWORDS_MAX);
    CHECK(!memchr(text, '\0', n));
    char buf[STORE_KEYWORDS_MAX + 128];
    size_t len = store_flags_format(f, kw, buf, sizeof buf);
    CHECK(len == strlen(buf) && len < sizeof buf);
    uint32_t f2 = 0;
    char kw2[STORE_KEYWORDS_MAX + 1];
    CHECK(store_flags_parse(buf, len, &f2, kw2, sizeof kw2, NULL) == 0);
    CHECK(f2 == f && strcmp(kw, kw2) == 0);
    /* a small buffer gets the whole text or nothing, and the length it needs */
    char small[16];
    size_t sl = store_flags_format(f, kw, small, sizeof small);
    CHECK(sl == len);
    CHECK(sl < sizeof small ? strcmp(small, buf) == 0 : small[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    names(s, size);
    flags_text(s, size);
    free(s);
    return 0;
}
