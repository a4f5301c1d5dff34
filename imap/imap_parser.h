/* imap_parser.h: the incremental IMAP command parser (no store, no sockets) */
#ifndef MAILFS_IMAP_PARSER_H
#define MAILFS_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/*
 * The parser takes a client's bytes in pieces of any size (one byte at a time or many pipelined
 * commands in one packet) and returns whole commands: a tag, an upper-cased command name and a
 * tree of arguments. It stops after each command so the server can run it before parsing the
 * next one; unconsumed bytes stay with the caller.
 *
 * Tokens: atoms (flags such as \Seen, wildcards % and *, and fetch items with brackets such as
 * BODY[HEADER.FIELDS (From To)]<0.100> are one atom), quoted strings, literals {n}, {n+} and
 * literal8 ~{n}, and parenthesised lists nested up to max_depth.
 */

typedef enum imap_arg_type {
    IMAP_ARG_ATOM = 1,
    IMAP_ARG_STRING,  /* quoted string, unescaped */
    IMAP_ARG_LITERAL, /* {n} / {n+} / ~{n} */
    IMAP_ARG_LIST,
} imap_arg_type;

typedef struct imap_arg {
    imap_arg_type type;
    bool literal8;         /* ~{n} */
    const char *str;       /* ATOM/STRING/LITERAL: the bytes, NUL-terminated (may hold NULs) */
    size_t len;            /* their length */
    struct imap_arg *list; /* LIST: the children */
    size_t count;          /* LIST: how many */
} imap_arg;

typedef struct imap_command {
    const char *tag;
    const char *name; /* upper case */
    imap_arg *args;   /* the arguments after the name */
    size_t nargs;
} imap_command;

/* What one command may make the parser hold. The server keeps one set for clients that have
 * not logged in (a few KiB) and one for those that have, and switches with
 * imap_parser_set_limits() when the login state changes. */
typedef struct imap_parser_limits {
    size_t max_line;           /* bytes of command text, literals not counted (default 65536) */
    size_t max_literal;        /* one literal outside APPEND (default 65536) */
    size_t max_append_literal; /* one literal in APPEND (default 64 MiB) */
    size_t max_command;        /* one command outside APPEND, text and literals together
                                  (default 1 MiB, at least max_line + max_literal) */
    size_t max_append_command; /* one APPEND, text and every message of a MULTIAPPEND together
                                  (default max_append_literal + 1 MiB) */
    size_t max_id_command;     /* one ID command, its line included (default max_command):
                                  RFC 2971 lets a client send ~32 KiB */
    unsigned max_depth;        /* list nesting (default 32) */
    size_t max_args;           /* tokens in one command (default 100000) */
} imap_parser_limits;

typedef enum imap_parse_result {
    IMAP_PARSE_MORE = 0, /* everything consumed; feed more */
    IMAP_PARSE_COMMAND,  /* a command is complete: imap_parser_command() */
    IMAP_PARSE_CONTINUE, /* a synchronizing literal was announced: send "+ ..." (or reject it
                            with imap_parser_reject_literal) and feed on */
    IMAP_PARSE_ERROR,    /* answer with imap_parser_error(); parsing resumes by itself */
} imap_parse_result;

typedef enum imap_parse_error {
    IMAP_PERR_NONE = 0,
    IMAP_PERR_SYNTAX,  /* tagged BAD */
    IMAP_PERR_TOOLONG, /* line or command too long: BAD */
    IMAP_PERR_TOOBIG,  /* literal (or the command with it) too large: NO [TOOBIG]; a
                          synchronizing one is forgotten, a non-synchronizing one is skipped
                          (imap_parser_skipping) */
    IMAP_PERR_TOODEEP, /* lists nested too deep: BAD */
} imap_parse_error;

typedef struct imap_parser imap_parser;

/* Creates a parser; LIMITS NULL or zero fields take the defaults. Free with imap_parser_free(). */
imap_parser *imap_parser_new(const imap_parser_limits *limits);
void imap_parser_free(imap_parser **p);

/* Replaces the limits (NULL or zero fields: the defaults), e.g. after a login. Meant to be
 * called between commands; a command in progress is held to the new limits from here on. */
void imap_parser_set_limits(imap_parser *p, const imap_parser_limits *limits);

/* The limits in force, defaults filled in. */
const imap_parser_limits *imap_parser_get_limits(const imap_parser *p);

/* Between commands (after the one handed out has run): forgets it and gives back buffers a big
 * command grew, so an idle connection holds a few hundred bytes, not its last APPEND. Does
 * nothing while a command is only partly read. */
void imap_parser_trim(imap_parser *p);

/* Bytes of a refused non-synchronizing literal still to be skipped (0 if none). */
uint64_t imap_parser_skipping(const imap_parser *p);

/* Feeds LEN bytes; *CONSUMED (always set) says how many were used. On IMAP_PARSE_COMMAND the
 * command stays valid until the next call of imap_parser_feed(). Feeding 0 bytes is allowed
 * (it returns MORE). */
imap_parse_result imap_parser_feed(imap_parser *p, const char *data, size_t len, size_t *consumed);

/* The complete command after IMAP_PARSE_COMMAND. */
const imap_command *imap_parser_command(imap_parser *p);

/* After IMAP_PARSE_ERROR: the kind, a message for the client (static or parser-owned, valid
 * until the next feed) and the tag ("*" when the tag itself was not complete). */
imap_parse_error imap_parser_error(imap_parser *p, const char **msg, const char **tag);

/* During IMAP_PARSE_CONTINUE: the tag and upper-cased command name read so far ("" if not yet),
 * so the server can refuse the literal instead of inviting it. */
const char *imap_parser_pending_tag(imap_parser *p);
const char *imap_parser_pending_name(imap_parser *p);

/* Refuses the synchronizing literal just announced: the client will not send it, so the
 * parser forgets the command and starts afresh with the next line. */
void imap_parser_reject_literal(imap_parser *p);

/* Forgets any partial command. */
void imap_parser_reset(imap_parser *p);

/* Helpers over arguments. */
/* True for an ATOM, STRING or LITERAL (an astring). */
static inline bool imap_arg_is_string(const imap_arg *a)
{
    return a &&
           (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING || a->type == IMAP_ARG_LITERAL);
}
/* True if A is an atom equal to WORD, ignoring case. */
static inline bool imap_arg_is_atom(const imap_arg *a, const char *word)
{
    return a && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0 && strlen(word) == a->len;
}
/* True if A is the atom NIL. */
static inline bool imap_arg_is_nil(const imap_arg *a)
{
    return imap_arg_is_atom(a, "NIL");
}

#endif
