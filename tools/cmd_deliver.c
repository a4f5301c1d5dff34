/* cmd_deliver.c: `mailfs deliver`: a local delivery agent reading one message on stdin */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tools/cli.h"

static void deliver_usage(FILE *f)
{
    fprintf(f, "usage: mailfs deliver USER [--mailbox NAME]\n\n"
               "Reads one message on standard input and stores it in USER's mailbox NAME\n"
               "(default INBOX; created if missing). A leading mbox 'From ' line is dropped.\n"
               "For Postfix: mailbox_command = /usr/local/bin/mailfs deliver \"$USER\"\n"
               "For fetchmail: mda \"mailfs deliver %%T\"; procmail: | mailfs deliver USER\n\n"
               "Exit codes follow sysexits.h: 0 delivered, 67 no such user, 65 bad input\n"
               "(message too large), 75 temporary failure (the MTA should retry).\n");
}

typedef struct deliver_op {
    uint32_t user;
    const char *mailbox;
    const char *data;
    size_t len;
} deliver_op;

static int deliver_write(store_txn *w, void *ctx)
{
    deliver_op *op = ctx;
    store_mailbox mb;
    int rc = store_mailbox_get(w, op->user, op->mailbox, &mb);
    if (rc == -ENOENT) rc = store_mailbox_create(w, op->user, op->mailbox, 0, &mb);
    if (rc) return rc;
    return store_msg_append(w, mb.id, op->data, op->len, NULL, NULL);
}

int cmd_deliver(cli *c, int argc, char **argv)
{
    const char *user = NULL, *mailbox = "INBOX";
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            deliver_usage(stdout);
            return EX_OK;
        } else if (strcmp(argv[i], "--mailbox") == 0 || strcmp(argv[i], "-m") == 0) {
            if (++i >= argc) {
                cli_error("deliver: --mailbox needs a name");
                return EX_USAGE;
            }
            mailbox = argv[i];
        } else if (!user && argv[i][0] != '-') {
            user = argv[i];
        } else {
            cli_error("deliver: unexpected argument '%s': see 'mailfs deliver --help'", argv[i]);
            return EX_USAGE;
        }
    }
    if (!user) {
        cli_error("deliver: no user given: mailfs deliver USER");
        return EX_USAGE;
    }
    const char *why;
    if (store_mailbox_name_check(mailbox, &why) != 0) {
        cli_error("deliver: bad mailbox name '%s': %s", mailbox, why);
        return EX_DATAERR;
    }
    store *s;
    int rc = cli_open_store(c, 0, &s);
    if (rc) return rc == EX_NOINPUT || rc == EX_IOERR ? EX_TEMPFAIL : rc;
    uint32_t uid;
    if ((rc = cli_user_id(s, user, &uid)) != 0) {
        store_close(&s);
        return rc;
    }
    /* read the whole message: it must be whole before one transaction stores it */
    uint64_t max = store_msg_max(s);
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while (buf && (n = read(STDIN_FILENO, buf + len, cap - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            cli_error("deliver: cannot read standard input: %s", strerror(errno));
            free(buf);
            store_close(&s);
            return EX_TEMPFAIL;
        }
        len += (size_t)n;
        if (len > max) {
            cli_error("deliver: message is larger than the limit of %llu bytes",
                      (unsigned long long)max);
            free(buf);
            store_close(&s);
            return EX_DATAERR;
        }
        if (len == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    if (!buf) {
        cli_error("deliver: out of memory");
        store_close(&s);
        return EX_TEMPFAIL;
    }
    const char *data = buf;
    if (len >= 5 && memcmp(buf, "From ", 5) == 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t skip = nl ? (size_t)(nl - buf) + 1 : len;
        data += skip, len -= skip;
    }
    deliver_op op = {uid, mailbox, data, len};
    rc = store_write(s, deliver_write, &op);
    free(buf);
    store_close(&s);
    if (rc == 0) return EX_OK;
    cli_error("deliver: cannot store the message for '%s' in '%s': %s", user, mailbox,
              store_strerror(rc));
    if (rc == -EFBIG) return EX_DATAERR;
    if (rc == -EINVAL) return EX_DATAERR;
    return EX_TEMPFAIL;
}
