/* cmd_user.c: `mailfs user add|passwd|del|list`: manage users and their passwords */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "tools/cli.h"

#define PASSWORD_MAX 1024

static void user_usage(FILE *f)
{
    fprintf(f, "usage: mailfs user add NAME       add a user (with INBOX, Drafts, Sent, Trash,\n"
               "                                  Junk and Archive, subscribed)\n"
               "       mailfs user passwd NAME    set a user's password\n"
               "       mailfs user del NAME       delete a user and all their mail\n"
               "       mailfs user list           list users\n\n"
               "The password is asked for twice on a terminal; otherwise it is the first line\n"
               "of standard input. User names are 1-64 characters of A-Z a-z 0-9 . _ @ + -\n"
               "(not starting with '.').\n");
}

/* Reads one line from standard input (no echo on a terminal). Returns 0 or an exit code. */
static int read_line(const char *prompt, char *buf, size_t len)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *ok = fgets(buf, (int)len, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!ok) {
        cli_error("no password given: type it at the prompt or pipe it as one line on stdin");
        return EX_DATAERR;
    }
    size_t n = strlen(buf);
    if (n == len - 1 && buf[n - 1] != '\n') {
        cli_error("the password is longer than %d bytes", PASSWORD_MAX - 2);
        return EX_DATAERR;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return 0;
}

static int read_password(char *pw)
{
    int rc = read_line("password: ", pw, PASSWORD_MAX);
    if (rc) return rc;
    if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_MAX];
        if ((rc = read_line("again: ", again, sizeof again)) != 0) return rc;
        if (strcmp(pw, again) != 0) {
            cli_error("the two passwords differ: nothing was changed");
            return EX_DATAERR;
        }
    }
    if (!*pw) {
        cli_error("the password is empty: give a non-empty one");
        return EX_DATAERR;
    }
    return 0;
}

typedef struct user_op {
    int what; /* 'a' add, 'p' passwd, 'd' del */
    const char *name;
    const char *pw;
} user_op;

static int user_write(store_txn *w, void *ctx)
{
    user_op *op = ctx;
    switch (op->what) {
    case 'a':
        return store_user_add(w, op->name, op->pw);
    case 'p':
        return store_user_passwd(w, op->name, op->pw);
    default:
        return store_user_del(w, op->name);
    }
}

static int print_user(void *ctx, const char *name, uint32_t id)
{
    (void)ctx, (void)id;
    printf("%s\n", name);
    return 0;
}

int cmd_user(cli *c, int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1])) {
        user_usage(stdout);
        return EX_OK;
    }
    if (argc < 2) {
        user_usage(stderr);
        return EX_USAGE;
    }
    const char *verb = argv[1];
    bool list = strcmp(verb, "list") == 0;
    int what = strcmp(verb, "add") == 0      ? 'a'
               : strcmp(verb, "passwd") == 0 ? 'p'
               : strcmp(verb, "del") == 0    ? 'd'
                                             : 0;
    if (!list && !what) {
        cli_error("user: unknown action '%s': use add, passwd, del or list", verb);
        return EX_USAGE;
    }
    if ((list && argc != 2) || (!list && argc != 3)) {
        cli_error("user %s: wrong number of arguments: see 'mailfs user --help'", verb);
        return EX_USAGE;
    }
    if (what == 'a' && !store_user_name_valid(argv[2])) {
        cli_error("user add: '%s' is not a valid user name: use 1-64 characters of "
                  "A-Z a-z 0-9 . _ @ + - (not starting with '.')",
                  argv[2]);
        return EX_DATAERR;
    }
    store *s;
    int rc = cli_open_store(c, list ? STORE_OPEN_RDONLY : 0, &s);
    if (rc) return rc;
    if (list) {
        store_txn *t;
        if ((rc = store_read_begin(s, &t)) == 0) {
            rc = store_user_list(t, print_user, NULL);
            store_read_end(&t);
        }
        if (rc) cli_error("user list: %s", store_strerror(rc));
        store_close(&s);
        return cli_exit_code(rc);
    }
    char pw[PASSWORD_MAX] = "";
    user_op op = {what, argv[2], pw};
    if (what != 'd') {
        uint32_t id;
        store_txn *t;
        if ((rc = store_read_begin(s, &t)) == 0) {
            rc = store_user_lookup(t, argv[2], &id);
            store_read_end(&t);
        }
        if (what == 'a' && rc == 0)
            rc = -EEXIST;
        else if (what == 'a' && rc == -ENOENT)
            rc = 0;
        if (rc == 0 && (rc = read_password(pw)) != 0) {
            store_close(&s);
            return rc;
        }
    }
    uint32_t del_id = 0;
    if (what == 'd') { /* its kept files (the mount's files that are not mail) go with it */
        store_txn *t;
        if ((rc = store_read_begin(s, &t)) == 0) {
            rc = store_user_lookup(t, argv[2], &del_id);
            store_read_end(&t);
        }
    }
    if (rc == 0) rc = store_write(s, user_write, &op);
    explicit_bzero(pw, sizeof pw);
    if (rc == 0 && del_id) {
        int frc = store_files_remove(s, del_id, STORE_FILES_USER);
        if (frc)
            cli_error("user del: user '%s' is deleted, but removing its kept files in "
                      "'%s/files/%u' failed: %s: remove that directory by hand",
                      argv[2], store_dir(s), del_id, store_strerror(frc));
    }
    store_close(&s);
    if (rc == -EEXIST) {
        cli_error("user add: user '%s' already exists: use 'mailfs user passwd %s' to change "
                  "the password",
                  argv[2], argv[2]);
        return EX_CANTCREAT;
    }
    if (rc == -ENOENT) {
        cli_error("user %s: no user '%s': see 'mailfs user list'", verb, argv[2]);
        return EX_NOUSER;
    }
    if (rc) {
        cli_error("user %s '%s': %s", verb, argv[2], store_strerror(rc));
        return cli_exit_code(rc);
    }
    return EX_OK;
}
