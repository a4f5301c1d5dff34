/* cmd_mailbox.c: `mailfs mailbox list|create|delete|rename`: a user's mailboxes */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "tools/cli.h"

static void mailbox_usage(FILE *f)
{
    fprintf(f, "usage: mailfs mailbox list USER              name, messages, unseen, bytes,\n"
               "                                            special use\n"
               "       mailfs mailbox create USER NAME\n"
               "       mailfs mailbox delete USER NAME      (deletes its messages too)\n"
               "       mailfs mailbox rename USER OLD NEW   (children move along)\n\n"
               "Names are UTF-8 with '/' between levels, e.g. Work/Projects. Missing parents\n"
               "are created.\n");
}

static const char *special_use_name(uint32_t su)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } t[] = {{STORE_SU_ALL, "\\All"},       {STORE_SU_ARCHIVE, "\\Archive"},
             {STORE_SU_DRAFTS, "\\Drafts"}, {STORE_SU_FLAGGED, "\\Flagged"},
             {STORE_SU_JUNK, "\\Junk"},     {STORE_SU_SENT, "\\Sent"},
             {STORE_SU_TRASH, "\\Trash"}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (su & t[i].bit) return t[i].name;
    return "-";
}

static int print_mailbox(void *ctx, const store_mailbox *mb)
{
    (void)ctx;
    printf("%s\t%" PRIu32 "\t%" PRIu32 "\t%" PRIu64 "\t%s\n", mb->name, mb->messages, mb->unseen,
           mb->bytes, special_use_name(mb->special_use));
    return 0;
}

typedef struct mailbox_op {
    char what;
    uint32_t user;
    const char *a, *b;
} mailbox_op;

static int mailbox_write(store_txn *w, void *ctx)
{
    mailbox_op *op = ctx;
    switch (op->what) {
    case 'c':
        return store_mailbox_create(w, op->user, op->a, 0, NULL);
    case 'd':
        return store_mailbox_delete(w, op->user, op->a, 0);
    default:
        return store_mailbox_rename(w, op->user, op->a, op->b);
    }
}

int cmd_mailbox(cli *c, int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1])) {
        mailbox_usage(stdout);
        return EX_OK;
    }
    static const struct {
        const char *verb;
        char what;
        int args;
    } verbs[] = {{"list", 'l', 3}, {"create", 'c', 4}, {"delete", 'd', 4}, {"rename", 'r', 5}};
    size_t v = 0;
    while (argc >= 2 && v < sizeof verbs / sizeof *verbs && strcmp(verbs[v].verb, argv[1]))
        v++;
    if (argc < 2 || v == sizeof verbs / sizeof *verbs) {
        if (argc >= 2)
            cli_error("mailbox: unknown action '%s': use list, create, delete or rename", argv[1]);
        else
            mailbox_usage(stderr);
        return EX_USAGE;
    }
    if (argc != verbs[v].args) {
        cli_error("mailbox %s: wrong number of arguments: see 'mailfs mailbox --help'", argv[1]);
        return EX_USAGE;
    }
    const char *why;
    for (int i = 3; i < argc; i++) {
        if (store_mailbox_name_check(argv[i], &why) != 0) {
            cli_error("mailbox %s: bad mailbox name '%s': %s", argv[1], argv[i], why);
            return EX_DATAERR;
        }
    }
    store *s;
    uint32_t user;
    int rc = cli_open_store(c, verbs[v].what == 'l' ? STORE_OPEN_RDONLY : 0, &s);
    if (rc) return rc;
    if ((rc = cli_user_id(s, argv[2], &user)) != 0) {
        store_close(&s);
        return rc;
    }
    if (verbs[v].what == 'l') {
        store_txn *t;
        if ((rc = store_read_begin(s, &t)) == 0) {
            rc = store_mailbox_list(t, user, print_mailbox, NULL);
            store_read_end(&t);
        }
    } else {
        mailbox_op op = {verbs[v].what, user, argv[3], argc > 4 ? argv[4] : NULL};
        rc = store_write(s, mailbox_write, &op);
    }
    uint64_t kept = 0;
    if (rc == -ENOTEMPTY) { /* child mailboxes, or kept files of the mount */
        store_txn *t;
        store_mailbox mb;
        if (store_read_begin(s, &t) == 0) {
            if (store_mailbox_get(t, user, argv[3], &mb) == 0)
                store_files_count(s, user, mb.id, &kept);
            store_read_end(&t);
        }
    }
    store_close(&s);
    if (rc == -ENOTEMPTY && kept) {
        cli_error("mailbox %s: '%s' holds %llu files that are not mail, kept through the mount: "
                  "remove them through the mount first",
                  argv[1], argv[3], (unsigned long long)kept);
        return cli_exit_code(rc);
    }
    switch (rc) {
    case 0:
        return EX_OK;
    case -ENOENT:
        cli_error("mailbox %s: user '%s' has no mailbox '%s'", argv[1], argv[2], argv[3]);
        break;
    case -EEXIST:
        cli_error("mailbox %s: mailbox '%s' already exists", argv[1], argc > 4 ? argv[4] : argv[3]);
        break;
    case -ENOTEMPTY:
        cli_error("mailbox %s: '%s' has child mailboxes: delete or move them first", argv[1],
                  argv[3]);
        break;
    case -EPERM:
        cli_error("mailbox %s: INBOX cannot be deleted", argv[1]);
        break;
    case -EINVAL:
        cli_error("mailbox %s: cannot move '%s' into itself", argv[1], argv[3]);
        break;
    case -EDQUOT:
        cli_error("mailbox %s: user '%s' would have more than %u mailboxes (the per-user "
                  "limit, parents counted): delete some first",
                  argv[1], argv[2], STORE_MAILBOXES_MAX_DEFAULT);
        return EX_CANTCREAT;
    default:
        cli_error("mailbox %s: %s", argv[1], store_strerror(rc));
    }
    return cli_exit_code(rc);
}
