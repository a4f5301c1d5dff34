/* user.c: users, their default mailboxes and salted scrypt password hashes */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "store/internal.h"

/* scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of ms); stored beside each hash so that it
 * can be raised later without breaking old hashes. */
#define SCRYPT_LOG_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 16
#define HASH_LEN 32
#define HASH_TEXT_MAX 160

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        out[2 * i] = d[b[i] >> 4], out[2 * i + 1] = d[b[i] & 15];
    out[2 * n] = 0;
}

static int unhex(const char *s, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -EINVAL;
        b[i] = (uint8_t)v;
    }
    return s[2 * n] == 0 || s[2 * n] == '$' ? 0 : -EINVAL;
}

static int scrypt(const char *pw, const uint8_t *salt, unsigned log_n, unsigned r, unsigned p,
                  uint8_t *out)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (!kdf) return -EIO;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!ctx) return -ENOMEM;
    uint64_t n = 1ull << log_n;
    uint32_t rr = r, pp = p;
    uint64_t maxmem = 256ull << 20;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, strlen(pw)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_LEN),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, HASH_LEN, params);
    EVP_KDF_CTX_free(ctx);
    return ok == 1 ? 0 : -EIO;
}

/* The cost of new hashes: SCRYPT_LOG_N, or less where $MAILFS_SCRYPT_LOG_N (1-15) asks for it,
 * for fuzzing and tests that log in thousands of times. It can only make new hashes cheaper;
 * verification always uses the cost stored with the hash. */
static unsigned new_hash_log_n(void)
{
    const char *v = getenv("MAILFS_SCRYPT_LOG_N");
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    return v && *end == '\0' && n >= 1 && n < SCRYPT_LOG_N ? (unsigned)n : SCRYPT_LOG_N;
}

/* Makes "scrypt$LOGN$R$P$SALTHEX$HASHHEX". */
static int hash_password(const char *pw, char *out)
{
    uint8_t salt[SALT_LEN], h[HASH_LEN];
    char sh[2 * SALT_LEN + 1], hh[2 * HASH_LEN + 1];
    unsigned log_n = new_hash_log_n();
    if (RAND_bytes(salt, sizeof salt) != 1) return -EIO;
    int rc = scrypt(pw, salt, log_n, SCRYPT_R, SCRYPT_P, h);
    if (rc) return rc;
    hex(salt, sizeof salt, sh);
    hex(h, sizeof h, hh);
    snprintf(out, HASH_TEXT_MAX, "scrypt$%u$%u$%u$%s$%s", log_n, SCRYPT_R, SCRYPT_P, sh, hh);
    return 0;
}

static int verify_password(const char *pw, const char *stored)
{
    unsigned log_n, r, p;
    char sh[2 * SALT_LEN + 1], hh[2 * HASH_LEN + 1];
    uint8_t salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    if (sscanf(stored, "scrypt$%u$%u$%u$%32[0-9a-f]$%64[0-9a-f]", &log_n, &r, &p, sh, hh) != 5 ||
        log_n < 1 || log_n > 24 || r < 1 || r > 64 || p < 1 || p > 16)
        return -EIO;
    if (unhex(sh, salt, SALT_LEN) || unhex(hh, want, HASH_LEN)) return -EIO;
    int rc = scrypt(pw, salt, log_n, r, p, got);
    if (rc) return rc;
    return CRYPTO_memcmp(got, want, HASH_LEN) == 0 ? 0 : -EACCES;
}

static const struct {
    const char *name;
    uint32_t use;
} default_mailboxes[] = {
    {"INBOX", 0},
    {"Drafts", STORE_SU_DRAFTS},
    {"Sent", STORE_SU_SENT},
    {"Trash", STORE_SU_TRASH},
    {"Junk", STORE_SU_JUNK},
    {"Archive", STORE_SU_ARCHIVE},
};

static int user_get(store_txn *t, const char *name, user_rec *rec, const char **hash,
                    size_t *hashlen)
{
    MDB_val v;
    int rc = st_get(t, DB_USERS, name, strlen(name), &v);
    if (rc) return rc;
    if (v.mv_size < sizeof *rec) return -EIO;
    memcpy(rec, v.mv_data, sizeof *rec);
    if (hash) *hash = (const char *)v.mv_data + sizeof *rec, *hashlen = v.mv_size - sizeof *rec;
    return 0;
}

static int user_put(store_txn *t, const char *name, const user_rec *rec, const char *hash)
{
    char buf[sizeof(user_rec) + HASH_TEXT_MAX];
    size_t hl = strlen(hash);
    memcpy(buf, rec, sizeof *rec);
    memcpy(buf + sizeof *rec, hash, hl);
    return st_put(t, DB_USERS, name, strlen(name), buf, sizeof *rec + hl);
}

int store_user_add(store_txn *w, const char *name, const char *password)
{
    if (!store_user_name_valid(name)) return -EINVAL;
    user_rec rec;
    if (user_get(w, name, &rec, NULL, NULL) == 0) return -EEXIST;
    char hash[HASH_TEXT_MAX];
    int rc = hash_password(password, hash);
    if (rc) return rc;
    rec.id = (uint32_t)st_meta_u64(w, "next_user", 1);
    if ((rc = st_meta_put_u64(w, "next_user", rec.id + 1)) != 0) return rc;
    if ((rc = user_put(w, name, &rec, hash)) != 0) return rc;
    for (size_t i = 0; i < sizeof default_mailboxes / sizeof *default_mailboxes; i++) {
        rc = store_mailbox_create(w, rec.id, default_mailboxes[i].name, default_mailboxes[i].use,
                                  NULL);
        /* subscribed too: clients that show subscribed folders only (Thunderbird's default,
         * mutt's imap_list_subscribed) would hide Sent, Drafts and Trash */
        if (rc == 0) rc = store_mailbox_subscribe(w, rec.id, default_mailboxes[i].name, true);
        if (rc) return rc;
    }
    return st_feed_add(w, STORE_CH_USER, rec.id, 0, 0, NULL);
}

int store_user_passwd(store_txn *w, const char *name, const char *password)
{
    user_rec rec;
    int rc = user_get(w, name, &rec, NULL, NULL);
    if (rc) return rc;
    char hash[HASH_TEXT_MAX];
    if ((rc = hash_password(password, hash)) != 0) return rc;
    if ((rc = user_put(w, name, &rec, hash)) != 0) return rc;
    return st_feed_add(w, STORE_CH_USER, rec.id, 0, 0, NULL);
}

static int collect_mbox(void *ctx, const store_mailbox *mb)
{
    /* deepest first, so that children go before parents: collect ids, delete in reverse */
    uint32_t **ids = ctx;
    size_t n = (*ids)[0];
    uint32_t *grown = realloc(*ids, (n + 2) * sizeof **ids);
    if (!grown) return -ENOMEM;
    grown[n + 1] = mb->id;
    grown[0] = (uint32_t)(n + 1);
    *ids = grown;
    return 0;
}

int store_user_del(store_txn *w, const char *name)
{
    user_rec rec;
    int rc = user_get(w, name, &rec, NULL, NULL);
    if (rc) return rc;
    uint32_t *ids = calloc(1, sizeof *ids);
    if (!ids) return -ENOMEM;
    rc = store_mailbox_list(w, rec.id, collect_mbox, &ids);
    for (uint32_t i = ids[0]; rc == 0 && i >= 1; i--) {
        store_mailbox mb;
        rc = store_mailbox_get_id(w, ids[i], &mb);
        if (rc == 0) rc = st_mbox_drop(w, rec.id, mb.name, 0);
    }
    free(ids);
    if (rc == 0) rc = st_subs_purge(w, rec.id);
    if (rc == 0) rc = st_del(w, DB_USERS, name, strlen(name));
    if (rc == 0) rc = st_feed_add(w, STORE_CH_USER, rec.id, 0, 0, NULL);
    return rc;
}

int store_user_lookup(store_txn *t, const char *name, uint32_t *user_id)
{
    user_rec rec;
    if (!store_user_name_valid(name)) return -ENOENT;
    int rc = user_get(t, name, &rec, NULL, NULL);
    if (rc == 0 && user_id) *user_id = rec.id;
    return rc;
}

int store_user_auth(store *s, const char *name, const char *password, uint32_t *user_id)
{
    char stored[HASH_TEXT_MAX] = "";
    user_rec rec = {0};
    bool known = false;
    if (store_user_name_valid(name)) {
        store_txn *t;
        int rc = store_read_begin(s, &t);
        if (rc) return rc;
        const char *h;
        size_t hl;
        if (user_get(t, name, &rec, &h, &hl) == 0 && hl < sizeof stored) {
            memcpy(stored, h, hl);
            stored[hl] = 0;
            known = true;
        }
        store_read_end(&t);
    }
    if (!known) {
        /* spend the same time as a real check, so that timing does not tell who exists */
        char dummy[HASH_TEXT_MAX];
        hash_password(password, dummy);
        return -EACCES;
    }
    int rc = verify_password(password, stored);
    if (rc == 0 && user_id) *user_id = rec.id;
    return rc;
}

int store_user_list(store_txn *t, int (*cb)(void *ctx, const char *name, uint32_t user_id),
                    void *ctx)
{
    st_iter it;
    int rc = st_iter_begin(&it, t, DB_USERS, "", 0, 0);
    if (rc) return rc;
    while (rc == 0 && st_iter_next(&it)) {
        char name[STORE_USER_MAX + 1];
        user_rec rec;
        size_t n = it.k.mv_size < STORE_USER_MAX ? it.k.mv_size : STORE_USER_MAX;
        memcpy(name, it.k.mv_data, n);
        name[n] = 0;
        if (it.v.mv_size < sizeof rec) {
            rc = -EIO;
            break;
        }
        memcpy(&rec, it.v.mv_data, sizeof rec);
        rc = cb(ctx, name, rec.id);
    }
    return st_iter_end(&it, rc);
}
