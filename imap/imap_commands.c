/* imap_commands.c: every IMAP command in one table, with the states it may run in */
#include <string.h>

#include "imap/imap_int.h"

#define ANY (IMAP_CMD_NOAUTH | IMAP_CMD_AUTH)
#define AUTH IMAP_CMD_AUTH
#define SEL (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

static const imap_cmd_def commands[] = {
    {"APPEND", imap_cmd_append, AUTH},
    {"AUTHENTICATE", imap_cmd_authenticate, IMAP_CMD_NOAUTH},
    {"CANCELUPDATE", imap_cmd_cancelupdate, SEL},
    {"CAPABILITY", imap_cmd_capability, ANY},
    {"CHECK", imap_cmd_check, SEL},
    {"CLOSE", imap_cmd_close, SEL | IMAP_CMD_NOSYNC},
    {"COPY", imap_cmd_copy, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"CREATE", imap_cmd_create, AUTH},
    {"DELETE", imap_cmd_delete, AUTH},
    {"ENABLE", imap_cmd_enable, AUTH},
    {"EXAMINE", imap_cmd_examine, AUTH},
    {"EXPUNGE", imap_cmd_expunge, SEL | IMAP_CMD_UID},
    {"FETCH", imap_cmd_fetch, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"ID", imap_cmd_id, ANY},
    {"IDLE", imap_cmd_idle, AUTH},
    {"LIST", imap_cmd_list, AUTH},
    {"LOGIN", imap_cmd_login, IMAP_CMD_NOAUTH},
    {"LOGOUT", imap_cmd_logout, ANY | IMAP_CMD_NOSYNC},
    {"LSUB", imap_cmd_lsub, AUTH},
    {"MOVE", imap_cmd_move, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"NAMESPACE", imap_cmd_namespace, AUTH},
    {"NOOP", imap_cmd_noop, ANY},
    {"NOTIFY", imap_cmd_notify, AUTH},
    {"RENAME", imap_cmd_rename, AUTH},
    {"SEARCH", imap_cmd_search, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"SELECT", imap_cmd_select, AUTH},
    {"SORT", imap_cmd_sort, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"STARTTLS", imap_cmd_starttls, IMAP_CMD_NOAUTH | IMAP_CMD_NOSYNC},
    {"STATUS", imap_cmd_status, AUTH},
    {"STORE", imap_cmd_store, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"SUBSCRIBE", imap_cmd_subscribe, AUTH},
    {"THREAD", imap_cmd_thread, SEL | IMAP_CMD_USES_SEQS | IMAP_CMD_UID},
    {"UID", NULL, SEL}, /* resolved to its subcommand by the dispatcher */
    {"UNSELECT", imap_cmd_unselect, SEL | IMAP_CMD_NOSYNC},
    {"UNSUBSCRIBE", imap_cmd_unsubscribe, AUTH},
};

const imap_cmd_def *imap_command_find(const char *name)
{
    size_t lo = 0, hi = sizeof(commands) / sizeof(commands[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(name, commands[mid].name);
        if (r == 0) return &commands[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
