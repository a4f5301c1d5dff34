/* imap_dispatch.c: a session's commands: parsed from its input, dispatched through the command
 * table, continued in steps or waiting for a line, and completed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "store/log.h"

void imap_command_finish(imap_client *c)
{
    if (c->state == IMAP_ST_SELECTED && !(c->cmd_flags & IMAP_CMD_NOSYNC)) {
        if (imap_notify_sync(c, !(c->cmd_flags & IMAP_CMD_USES_SEQS)) < 0) {
            c->close_after_flush = true;
            return;
        }
    }
    if (!(c->cmd_flags & IMAP_CMD_NOSYNC)) imap_notify_push(c);
    if (c->resp.len == 0) imap_ok(c, "completed");
    mfs_buf_printf(&c->out, "%s %s\r\n", c->tag, c->resp.data);
    c->resp.len = 0;
    c->cmd_flags = 0;
}

static void dispatch(imap_client *c, const imap_command *cmd)
{
    const imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs;
    bool uid = false;
    snprintf(c->tag, sizeof(c->tag), "%s", cmd->tag);
    c->resp.len = 0;
    c->cmd_flags = 0;
    const imap_cmd_def *d = imap_command_find(cmd->name);
    if (d && strcmp(cmd->name, "UID") == 0) {
        if (nargs == 0 || args[0].type != IMAP_ARG_ATOM) {
            imap_bad(c, "UID needs a command");
            goto done;
        }
        char sub[32];
        snprintf(sub, sizeof(sub), "%s", args[0].str);
        for (char *p = sub; *p; p++)
            *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
        d = imap_command_find(sub);
        if (!d || !(d->flags & IMAP_CMD_UID)) {
            imap_bad(c, "unknown UID command '%s'", sub);
            goto done;
        }
        args++;
        nargs--;
        uid = true;
    }
    if (!d) {
        imap_bad(c, "unknown command '%s'", cmd->name);
        goto done;
    }
    if (c->state == IMAP_ST_NOAUTH && !(d->flags & IMAP_CMD_NOAUTH)) {
        imap_bad(c, "%s is not allowed before login", cmd->name);
        goto done;
    }
    if (c->state != IMAP_ST_NOAUTH && !(d->flags & IMAP_CMD_AUTH)) {
        imap_bad(c, "%s is not allowed after login", cmd->name);
        goto done;
    }
    if ((d->flags & IMAP_CMD_SELECTED) && c->state != IMAP_ST_SELECTED) {
        imap_bad(c, "no mailbox selected");
        goto done;
    }
    c->cmd_flags = d->flags;
    if (uid) c->cmd_flags &= ~(unsigned)IMAP_CMD_USES_SEQS;
    d->fn(c, cmd, args, nargs, uid);
    if (c->wait != IMAP_WAIT_NONE || c->cont) return; /* it answers later */
done:
    imap_command_finish(c);
}

static void parse_error(imap_client *c)
{
    const char *msg, *tag;
    imap_parse_error e = imap_parser_error(c->parser, &msg, &tag);
    if (c->noauth && imap_parser_skipping(c->parser) > 0) {
        /* A refused LITERAL+ before login: reading its bytes only to throw them away would let
         * anyone keep the connection busy; RFC 7888 section 4 allows BYE and closing. */
        log_info("imap", "%s sent a literal too big before login (%s); disconnecting", c->addr,
                 msg);
        mfs_buf_printf(&c->out, "* BYE [TOOBIG] before login: %s\r\n", msg);
        c->close_after_flush = true;
        c->in.len = 0;
        return;
    }
    if (e == IMAP_PERR_TOOBIG)
        mfs_buf_printf(&c->out, "%s NO [TOOBIG] %s\r\n", tag, msg);
    else
        mfs_buf_printf(&c->out, "%s BAD %s\r\n", tag, msg);
}

/* A synchronizing literal was announced: invite it, or refuse it if the command cannot run. */
static void literal_invite(imap_client *c)
{
    const char *name = imap_parser_pending_name(c->parser);
    const imap_cmd_def *d = name[0] ? imap_command_find(name) : NULL;
    bool ok = d != NULL;
    if (d && c->state == IMAP_ST_NOAUTH && !(d->flags & IMAP_CMD_NOAUTH)) ok = false;
    if (ok) {
        mfs_buf_puts(&c->out, "+ OK\r\n");
        return;
    }
    mfs_buf_printf(&c->out, "%s BAD %s\r\n",
                   imap_parser_pending_tag(c->parser)[0] ? imap_parser_pending_tag(c->parser) : "*",
                   d ? "command not allowed now" : "unknown command");
    imap_parser_reject_literal(c->parser);
}

/* One line of a waiting command: IDLE's DONE (cmd_idle.c), an AUTHENTICATE response
 * (cmd_authenticate.c). */
static void waiting_line(imap_client *c, char *line)
{
    if (c->wait == IMAP_WAIT_IDLE)
        imap_idle_line(c, line);
    else
        imap_authenticate_line(c, line);
}

void imap_client_process(imap_client *c)
{
    while (!c->dead && !c->close_after_flush && !c->starttls_after_flush && !c->handshaking) {
        if (c->cont) {
            if (c->out.len >= IMAP_OUT_HIGH) return;
            /* one step per pass, so other sessions of the loop get their turn */
            if (c->cont(c, c->cont_ctx) == 1) return;
            if (c->cont_free) c->cont_free(c->cont_ctx);
            c->cont = NULL;
            c->cont_ctx = NULL;
            c->cont_free = NULL;
            imap_command_finish(c);
            continue;
        }
        if (c->wait == IMAP_WAIT_DELAY || c->wait == IMAP_WAIT_AUTHING) return;
        if (c->wait == IMAP_WAIT_IDLE || c->wait == IMAP_WAIT_AUTH) {
            char *lf = memchr(c->in.data ? c->in.data : "", '\n', c->in.len);
            if (!lf) {
                if (c->in.len > (c->noauth ? IMAP_NOAUTH_COMMAND_MAX : 65536)) {
                    imap_client_bye(c, "line too long");
                    return;
                }
                return;
            }
            size_t n = (size_t)(lf - c->in.data);
            char *line = malloc(n + 1); /* not strndup: a NUL inside would shorten it */
            if (!line) abort();
            memcpy(line, c->in.data, n);
            line[n] = '\0';
            if (n > 0 && line[n - 1] == '\r') line[n - 1] = '\0';
            mfs_buf_consume(&c->in, n + 1);
            waiting_line(c, line);
            explicit_bzero(line, n);
            free(line);
            continue;
        }
        if (c->out.len >= imap_client_out_high(c)) return;
        if (c->in.len == 0) {
            imap_parser_trim(c->parser); /* nothing runs: the last command's memory goes */
            return;
        }
        imap_client_state_sync(c); /* a login changes the limits of the next command */
        size_t used = 0;
        imap_parse_result r = imap_parser_feed(c->parser, c->in.data, c->in.len, &used);
        mfs_buf_consume(&c->in, used);
        switch (r) {
        case IMAP_PARSE_MORE:
            return;
        case IMAP_PARSE_CONTINUE:
            literal_invite(c);
            break;
        case IMAP_PARSE_ERROR:
            parse_error(c);
            break;
        case IMAP_PARSE_COMMAND:
            dispatch(c, imap_parser_command(c->parser));
            if (c->starttls_after_flush) {
                /* Bytes pipelined after STARTTLS were sent in the clear: drop them. */
                c->in.len = 0;
                imap_parser_reset(c->parser);
            }
            break;
        }
    }
}
