/* imap_tls.c: the OpenSSL 3 server context: TLS 1.2+ only, modern ciphers, reloadable */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_int.h"

static void ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "cannot load TLS %s '%s'%s%s", what, file, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

/* Makes a context from the configured files; returns 0 or a negative errno with *err set. */
static int tls_ctx_new(imap_server *srv, SSL_CTX **out, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only; TLS 1.3 suites are OpenSSL's defaults */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20");
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* the key is checked too: OpenSSL's message for an unreadable file does not say why */
    const char *what = "certificate", *file = srv->cert_file;
    if (access(file, R_OK) == 0) what = "key", file = srv->key_file;
    if (access(file, R_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read TLS %s '%s': %s%s", what, file, strerror(e),
                 e == EACCES && geteuid() != 0 ? ": make it readable by the user the server runs as"
                                               : "");
        SSL_CTX_free(ctx);
        /* -ENOENT means "no certificate" (TLS may be optional); a certificate without its key
         * is an error */
        return e == ENOENT && file == srv->key_file ? -EINVAL : -e;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, srv->cert_file) != 1) {
        ssl_err(err, errlen, "certificate", srv->cert_file);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, srv->key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, errlen, "key", srv->key_file);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS key '%s' does not match certificate '%s'", srv->key_file,
                 srv->cert_file);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    *out = ctx;
    return 0;
}

int imap_server_reload_tls(imap_server *srv, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    int rc = tls_ctx_new(srv, &ctx, err, errlen);
    if (rc < 0) return rc;
    /* Live connections hold their own reference to the old context. */
    pthread_mutex_lock(&srv->tls_mu);
    SSL_CTX *old = srv->tls;
    srv->tls = ctx;
    pthread_mutex_unlock(&srv->tls_mu);
    SSL_CTX_free(old);
    return 0;
}

bool imap_server_has_tls(imap_server *srv)
{
    pthread_mutex_lock(&srv->tls_mu);
    bool r = srv->tls != NULL;
    pthread_mutex_unlock(&srv->tls_mu);
    return r;
}

SSL *imap_tls_new_ssl(imap_server *srv)
{
    pthread_mutex_lock(&srv->tls_mu);
    SSL *ssl = srv->tls ? SSL_new(srv->tls) : NULL;
    pthread_mutex_unlock(&srv->tls_mu);
    return ssl;
}
