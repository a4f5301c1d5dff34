/* fuzz_imap_session.c: libFuzzer target: whole client sessions against an in-process server */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap/imap_server.h"
#include "store/store.h"

/*
 * The server runs for the whole fuzzing process in a thread of its own (one event loop) over a
 * store in a temporary directory, with user "fuzz" (password "pw", hashed cheaply) and a few
 * messages appended at start. Each input is one connection:
 *
 *   byte 0      bit 0: the harness logs in first; bit 1: and selects INBOX; bit 2: the session
 *               also reads slowly (at most 512 bytes between records, so answers pile up in the
 *               server); the other bits are unused
 *   then records: OP LEN DATA[LEN]
 *     OP % 4 == 0 or 1  send DATA as it is (a command, part of one, a literal's bytes...)
 *     OP % 4 == 2       send DATA one byte at a time
 *     OP % 4 == 3       wait until the server has answered everything sent so far (a NOOP
 *                       with a tag of the harness's own is sent and waited for)
 *
 * At the end the harness waits for the server once more and closes. Crashes, sanitizer reports
 * and hangs (libFuzzer's -timeout) in the server are the findings. Inputs change the store (an
 * APPEND stays), so a crash may need the inputs before it; replaying the crashing input alone
 * on a fresh store reproduces most.
 */

static int port;

static void *serve(void *arg)
{
    imap_server *srv = arg;
    imap_server_run(srv);
    return NULL;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("fuzz_imap_session: connect");
        abort();
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads what arrives; with WANT, until a line starting with it has been read. Gives up after
 * QUIET_MS without a byte (a command still inside a literal never answers), or when the server
 * closes. LIMIT bounds the bytes read (0: no bound). Returns false once the connection is gone. */
static bool drain(int fd, const char *want, int quiet_ms, size_t limit)
{
    /* WINDOW keeps the last bytes of the previous read, so a line split between reads is seen */
    enum { KEEP = 64, CHUNK = 65536 };
    static char window[KEEP + CHUNK + 1];
    size_t kept = 1, total = 0, wl = want ? strlen(want) : 0;
    window[0] = '\n'; /* the first line counts as following a line break */
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, quiet_ms) <= 0) return true;
        size_t room = CHUNK;
        if (limit && limit - total < room) room = limit - total;
        if (room == 0) return true;
        ssize_t n = recv(fd, window + kept, room, 0);
        if (n <= 0) return false;
        total += (size_t)n;
        size_t len = kept + (size_t)n;
        for (size_t i = 0; want && i + wl < len; i++)
            if (window[i] == '\n' && memcmp(window + i + 1, want, wl) == 0) return true;
        kept = len < KEEP ? len : KEEP;
        memmove(window, window + len - kept, kept);
    }
}

/* Sends a NOOP of the harness's own and waits for its answer. */
static bool sync_server(int fd, unsigned *seq)
{
    char cmd[64], want[32];
    snprintf(want, sizeof(want), "zz%u ", ++*seq);
    /* a line break first ends a command the input left open, where one can be ended */
    int n = snprintf(cmd, sizeof(cmd), "\r\nzz%u NOOP\r\n", *seq);
    if (!send_all(fd, cmd, (size_t)n)) return false;
    return drain(fd, want, 200, 0);
}

static void must(int rc, const char *what, const char *err)
{
    if (rc < 0) {
        fprintf(stderr, "fuzz_imap_session: %s: %s\n", what, err ? err : strerror(-rc));
        abort();
    }
}

static const char *const messages[] = {
    "From: Alice <alice@example.org>\r\nTo: bob@example.org, \"Carol\" <carol@example.org>\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?= plans\r\nDate: Mon, 2 Jan 2023 10:00:00 +0100\r\n"
    "Message-ID: <a1@example.org>\r\n\r\nHello Bob,\r\nsee you at the caf\xc3\xa9.\r\n",
    "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: Re: plans\r\n"
    "In-Reply-To: <a1@example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
    "\r\n\r\nCaf=E9 is fine =\r\nat ten.\r\n--b1\r\nContent-Type: application/octet-stream; "
    "name=\"x.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQoLDA0ODw==\r\n"
    "--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.org\r\nSubject: inner\r\n\r\n"
    "inner body\r\n--b1--\r\nepilogue\r\n",
    "Subject: bare LF\nFrom: x@example.org\n\nline one\nline two\n",
};

static int add_user(store_txn *w, void *ctx)
{
    (void)ctx;
    return store_user_add(w, "fuzz", "pw");
}

/* Logs in on FD (and selects INBOX if SELECT); returns false if the server said no. */
static bool login(int fd, bool select)
{
    static const char cmd[] = "zl LOGIN fuzz pw\r\n", sel[] = "zs SELECT INBOX\r\n";
    if (!send_all(fd, cmd, sizeof(cmd) - 1) || !drain(fd, "zl ", 2000, 0)) return false;
    if (select && (!send_all(fd, sel, sizeof(sel) - 1) || !drain(fd, "zs ", 2000, 0))) return false;
    return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/mailfs-fuzz-session.XXXXXX", err[512] = "";
    if (!mkdtemp(dir)) abort();
    char path[sizeof(dir) + 8];
    snprintf(path, sizeof(path), "%s/store", dir);
    setenv("MAILFS_SCRYPT_LOG_N", "4", 1); /* the harness logs in thousands of times */
    must(store_create(path, err, sizeof(err)), "store_create", err);
    store *s = NULL;
    must(store_open(path, 0, &s, err, sizeof(err)), "store_open", err);
    must(store_write(s, add_user, NULL), "adding the user", NULL);
    imap_server_options opt = {
        .tls_optional = true, .loops = 1, .write_timeout_s = 5, .no_login_penalties = true};
    imap_server *srv = NULL;
    must(imap_server_new(path, &opt, &srv, err, sizeof(err)), "imap_server_new", err);
    must(imap_server_listen(srv, "127.0.0.1:0", false, err, sizeof(err)), "listen", err);
    port = imap_server_listener_port(srv, 0);
    must(imap_server_set_store(srv, s, err, sizeof(err)), "imap_server_set_store", err);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t th;
    if (pthread_create(&th, NULL, serve, srv) != 0) abort();
    /* the mail every session finds: appended through the server itself */
    int fd = connect_server();
    if (!drain(fd, "* OK", 2000, 0) || !login(fd, false)) abort();
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        char cmd[128];
        size_t len = strlen(messages[i]);
        int n = snprintf(cmd, sizeof(cmd), "za APPEND INBOX (%s) {%zu+}\r\n",
                         i == 1 ? "\\Seen $Work" : "", len);
        if (!send_all(fd, cmd, (size_t)n) || !send_all(fd, messages[i], len) ||
            !send_all(fd, "\r\n", 2) || !drain(fd, "za OK", 2000, 0))
            abort();
    }
    close(fd);
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    size_t limit = (mode & 4) ? 512 : 0;
    unsigned seq = 0;
    int fd = connect_server();
    bool up = drain(fd, "* OK", 2000, 0);
    if (up && (mode & 1)) up = login(fd, mode & 2);
    size_t i = 1;
    while (up && i + 2 <= size) {
        uint8_t op = data[i], len = data[i + 1];
        i += 2;
        size_t n = len < size - i ? len : size - i;
        const uint8_t *d = data + i;
        i += n;
        switch (op % 4) {
        case 0:
        case 1:
            up = send_all(fd, d, n);
            break;
        case 2:
            for (size_t k = 0; up && k < n; k++)
                up = send_all(fd, d + k, 1);
            break;
        case 3:
            up = sync_server(fd, &seq);
            continue;
        }
        if (up) up = drain(fd, NULL, 0, limit); /* take what is there, without waiting */
    }
    if (up) sync_server(fd, &seq);
    close(fd);
    return 0;
}
