/* cmd_init.c: `mailfs init`: create a store and its TLS certificate */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tools/cli.h"

static void init_usage(FILE *f)
{
    fprintf(f, "usage: mailfs init [--tls-cert FILE --tls-key FILE]\n\n"
               "Creates an empty store in the --store directory (made if missing, mode 0700)\n"
               "and the TLS certificate the IMAP server uses, as STORE/tls/cert.pem and\n"
               "STORE/tls/key.pem. Without --tls-cert/--tls-key a self-signed certificate for\n"
               "'localhost' (valid 10 years, ECDSA P-256) is made; with them, the given PEM\n"
               "files are copied in.\n");
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex) return -1;
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/* Opens PATH for writing as a file of mode 0600, whatever the umask and whether or not it
 * existed (the store's files are all 0600); NULL with errno set on failure. */
static FILE *create_0600(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

/* Writes a self-signed certificate and its key; returns 0 or -1 with *why set. */
static int make_cert(const char *cert_path, const char *key_path, const char **why)
{
    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    *why = "cannot make a key";
    if (!key || !x) goto out;
    *why = "cannot make the certificate";
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"mailfs", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    if (add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") ||
        add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(x, NID_ext_key_usage, "serverAuth"))
        goto out;
    if (!X509_sign(x, key, EVP_sha256())) goto out;
    *why = "cannot write the key";
    if (!(f = create_0600(key_path))) goto out;
    if (!PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    *why = "cannot write the certificate";
    if (!(f = create_0600(cert_path))) goto out;
    if (!PEM_write_X509(f, x) || fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    rc = 0;
out:
    if (f) fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in) return -errno;
    FILE *out = create_0600(to);
    if (!out) {
        int e = errno;
        fclose(in);
        return -e;
    }
    char buf[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = -EIO;
    if (ferror(in)) rc = -EIO;
    fclose(in);
    if (fclose(out) != 0) rc = -EIO;
    return rc;
}

int cmd_init(cli *c, int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            init_usage(stdout);
            return EX_OK;
        } else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
            cert = argv[++i];
        } else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else {
            cli_error("init: unexpected argument '%s': see 'mailfs init --help'", argv[i]);
            return EX_USAGE;
        }
    }
    if (!cert != !key) {
        cli_error("init: --tls-cert and --tls-key go together: give both or neither");
        return EX_USAGE;
    }
    if (cert && (access(cert, R_OK) != 0 || access(key, R_OK) != 0)) {
        cli_error("init: cannot read '%s': %s", access(cert, R_OK) ? cert : key, strerror(errno));
        return EX_NOINPUT;
    }
    char err[512];
    int rc = store_create(c->store_dir, err, sizeof err);
    if (rc) {
        cli_error("%s", err);
        return rc == -EEXIST ? EX_CANTCREAT : cli_exit_code(rc);
    }
    char dir[4096], cpath[4200], kpath[4200];
    snprintf(dir, sizeof dir, "%s/tls", c->store_dir);
    snprintf(cpath, sizeof cpath, "%s/cert.pem", dir);
    snprintf(kpath, sizeof kpath, "%s/key.pem", dir);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || chmod(dir, 0700) != 0) {
        cli_error("init: cannot create '%s' with mode 0700: %s", dir, strerror(errno));
        return EX_CANTCREAT;
    }
    if (cert) {
        if ((rc = copy_file(cert, cpath)) || (rc = copy_file(key, kpath))) {
            cli_error("init: cannot copy the TLS files into '%s': %s", dir, strerror(-rc));
            return EX_IOERR;
        }
    } else {
        const char *why;
        if (make_cert(cpath, kpath, &why) != 0) {
            unsigned long e = ERR_get_error();
            cli_error("init: %s in '%s': %s", why, dir,
                      e ? ERR_reason_error_string(e) : strerror(errno));
            return EX_SOFTWARE;
        }
    }
    printf("created store '%s'\nTLS certificate: %s\nnext: mailfs --store '%s' user add NAME\n",
           c->store_dir, cpath, c->store_dir);
    return EX_OK;
}
