/* imap_parser.c: the incremental IMAP command parser, a byte-at-a-time state machine */
#include "imap/imap_parser.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/buf.h"

enum state {
    ST_TAG,
    ST_NAME,
    ST_ARGS, /* between tokens */
    ST_ATOM,
    ST_QUOTED,
    ST_QUOTED_ESC,
    ST_LITHDR, /* after '{': digits, optional '+' or '-'... then '}' */
    ST_LIT_CR, /* after '}': CR or LF */
    ST_LIT_LF, /* after '}' CR: LF */
    ST_LITDATA,
    ST_EOL_LF,   /* after CR at the end of a line */
    ST_SKIP,     /* discarding the rest of a bad line */
    ST_SKIP_LIT, /* discarding a non-synchronizing literal of a bad line */
};

typedef struct node {
    imap_arg_type type;
    bool lit8;
    size_t off, len;
    long parent, first, last, next;
    size_t count;
} node;

struct imap_parser {
    imap_parser_limits lim;
    enum state st;
    mfs_buf sb; /* tag NUL name NUL tokens... */
    size_t name_off;
    node *nodes;
    size_t nnodes, cap_nodes;
    long cur; /* the list being filled */
    unsigned depth;
    size_t line_bytes, lit_bytes;
    bool is_append; /* the command name is APPEND: its own limits */
    bool is_id;     /* ... or ID */
    /* the token in progress */
    size_t tok_off;
    unsigned bracket;
    bool bracket_quote, bracket_esc;
    uint64_t lit_size;
    bool lit_plus, lit_minus, lit8, lit_digits;
    /* the command handed out */
    imap_arg *out;
    imap_command cmd;
    bool have_cmd;
    /* the last error */
    imap_parse_error err;
    const char *errmsg;
    char errtag[80];
    char errbuf[128]; /* errmsg with numbers in it */
    /* skipping */
    unsigned char cur_c; /* the byte being looked at, for fail_at */
    int skip_st;
    uint64_t skip_n;
    bool skip_plus;
};

static const imap_parser_limits defaults = {
    .max_line = 65536,
    .max_literal = 65536,
    .max_append_literal = 64u << 20,
    .max_command = 1u << 20,        /* raised to max_line + max_literal if that is more */
    .max_append_command = 1u << 20, /* added to max_append_literal */
    .max_depth = 32,
    .max_args = 100000,
};

/* Buffers grown past these by one big command are given back between commands. */
#define KEEP_BUF 16384
#define KEEP_NODES 256

void imap_parser_set_limits(imap_parser *p, const imap_parser_limits *limits)
{
    imap_parser_limits l = defaults;
    l.max_command = 0;
    l.max_append_command = 0;
    if (limits) {
        if (limits->max_line) l.max_line = limits->max_line;
        if (limits->max_literal) l.max_literal = limits->max_literal;
        if (limits->max_append_literal) l.max_append_literal = limits->max_append_literal;
        if (limits->max_command) l.max_command = limits->max_command;
        if (limits->max_append_command) l.max_append_command = limits->max_append_command;
        if (limits->max_id_command) l.max_id_command = limits->max_id_command;
        if (limits->max_depth) l.max_depth = limits->max_depth;
        if (limits->max_args) l.max_args = limits->max_args;
    }
    if (!l.max_command) {
        l.max_command = defaults.max_command;
        if (l.max_command < l.max_line + l.max_literal) l.max_command = l.max_line + l.max_literal;
    }
    if (!l.max_append_command)
        l.max_append_command = l.max_append_literal + defaults.max_append_command;
    if (!l.max_id_command) l.max_id_command = l.max_command;
    p->lim = l;
}

const imap_parser_limits *imap_parser_get_limits(const imap_parser *p)
{
    return &p->lim;
}

imap_parser *imap_parser_new(const imap_parser_limits *limits)
{
    imap_parser *p = calloc(1, sizeof(*p));
    if (!p) abort();
    imap_parser_set_limits(p, limits);
    imap_parser_reset(p);
    return p;
}

void imap_parser_free(imap_parser **pp)
{
    imap_parser *p = *pp;
    if (!p) return;
    mfs_buf_free(&p->sb);
    free(p->nodes);
    free(p->out);
    free(p);
    *pp = NULL;
}

static void root_init(imap_parser *p)
{
    p->nnodes = 0;
    if (p->cap_nodes == 0) {
        p->cap_nodes = 64;
        p->nodes = malloc(p->cap_nodes * sizeof(node));
        if (!p->nodes) abort();
    }
    p->nodes[0] = (node){.type = IMAP_ARG_LIST, .parent = -1, .first = -1, .last = -1, .next = -1};
    p->nnodes = 1;
    p->cur = 0;
    p->depth = 0;
}

void imap_parser_reset(imap_parser *p)
{
    p->st = ST_TAG;
    p->sb.len = 0;
    mfs_buf_reserve(&p->sb, 64);
    p->sb.data[0] = '\0';
    p->name_off = 0;
    p->line_bytes = p->lit_bytes = 0;
    p->is_append = false;
    p->is_id = false;
    root_init(p);
}

static void drop_command(imap_parser *p)
{
    if (p->have_cmd) {
        p->have_cmd = false;
        free(p->out);
        p->out = NULL;
        imap_parser_reset(p);
    }
}

/* Adds a token node to the current list; returns its index or -1 over the limit. */
static long add_node(imap_parser *p, imap_arg_type type)
{
    if (p->nnodes >= p->lim.max_args + 1) return -1;
    if (p->nnodes == p->cap_nodes) {
        p->cap_nodes *= 2;
        node *n = realloc(p->nodes, p->cap_nodes * sizeof(node));
        if (!n) abort();
        p->nodes = n;
    }
    long i = (long)p->nnodes++;
    p->nodes[i] = (node){
        .type = type, .parent = p->cur, .first = -1, .last = -1, .next = -1, .off = p->sb.len};
    node *par = &p->nodes[p->cur];
    if (par->last >= 0)
        p->nodes[par->last].next = i;
    else
        par->first = i;
    par->last = i;
    par->count++;
    return i;
}

/* One byte of a bad line being discarded: recognises a trailing {n+} CR LF, so that the
 * literal's bytes are skipped and never read as commands. */
static void skip_char(imap_parser *p, unsigned char c)
{
    if (c == '\n') {
        if (p->skip_st >= 3 && p->skip_plus && p->skip_n > 0) {
            p->st = ST_SKIP_LIT;
        } else {
            imap_parser_reset(p);
        }
        return;
    }
    if (c == '{') {
        p->skip_st = 1;
        p->skip_n = 0;
        p->skip_plus = false;
    } else if (p->skip_st == 1 && isdigit(c)) {
        if (p->skip_n < (1ull << 50)) p->skip_n = p->skip_n * 10 + (c - '0');
    } else if (p->skip_st == 1 && c == '+') {
        p->skip_plus = true;
        p->skip_st = 2;
    } else if ((p->skip_st == 1 || p->skip_st == 2) && c == '}') {
        p->skip_st = 3;
    } else if (p->skip_st == 3 && c == '\r') {
        p->skip_st = 4;
    } else {
        p->skip_st = 0;
    }
}

/* Reports an error found at byte p->cur_c (already counted as used). AT_EOL: that byte ended
 * the line, parsing starts afresh; otherwise the rest of the line is discarded, and a literal
 * header the error interrupted ({12+ ...) is handed to the skipper, so its bytes are skipped. */
static imap_parse_result fail_at(imap_parser *p, imap_parse_error kind, const char *msg,
                                 bool at_eol)
{
    enum state was = p->st;
    p->err = kind;
    p->errmsg = msg;
    if (p->st == ST_TAG || p->sb.len == 0) {
        strcpy(p->errtag, "*");
    } else {
        size_t n = strlen(p->sb.data);
        if (n >= sizeof(p->errtag)) n = sizeof(p->errtag) - 1;
        memcpy(p->errtag, p->sb.data, n);
        p->errtag[n] = '\0';
    }
    imap_parser_reset(p);
    if (!at_eol) {
        p->st = ST_SKIP;
        p->skip_st = 0;
        p->skip_n = 0;
        p->skip_plus = false;
        if (was == ST_LITHDR || was == ST_LIT_CR || was == ST_LIT_LF) {
            p->skip_st = was == ST_LITHDR ? (p->lit_plus ? 2 : 1) : was == ST_LIT_CR ? 3 : 4;
            p->skip_n = p->lit_size;
            p->skip_plus = p->lit_plus;
        }
        skip_char(p, p->cur_c);
    }
    return IMAP_PARSE_ERROR;
}

static bool is_tag_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){\"\\%*+", c);
}

static bool is_name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* Lays the node tree out as imap_arg arrays with contiguous children. */
static void place(imap_parser *p, long list, imap_arg *slots, size_t *used)
{
    size_t k = 0;
    for (long i = p->nodes[list].first; i >= 0; i = p->nodes[i].next, k++) {
        node *n = &p->nodes[i];
        imap_arg *a = &slots[k];
        memset(a, 0, sizeof(*a));
        a->type = n->type;
        a->literal8 = n->lit8;
        if (n->type == IMAP_ARG_LIST) {
            a->count = n->count;
            a->list = p->out + *used;
            a->str = "";
            *used += n->count;
        } else {
            a->str = p->sb.data + n->off;
            a->len = n->len;
        }
    }
    k = 0;
    for (long i = p->nodes[list].first; i >= 0; i = p->nodes[i].next, k++)
        if (p->nodes[i].type == IMAP_ARG_LIST) place(p, i, slots[k].list, used);
}

static void finish_command(imap_parser *p)
{
    size_t total = p->nnodes; /* >= children of all lists */
    p->out = calloc(total ? total : 1, sizeof(imap_arg));
    if (!p->out) abort();
    size_t used = p->nodes[0].count;
    place(p, 0, p->out, &used);
    p->cmd.tag = p->sb.data;
    p->cmd.name = p->sb.data + p->name_off;
    p->cmd.args = p->out;
    p->cmd.nargs = p->nodes[0].count;
    p->have_cmd = true;
}

static void tok_end(imap_parser *p, long idx)
{
    p->nodes[idx].len = p->sb.len - p->nodes[idx].off;
    mfs_buf_putc(&p->sb, '\0'); /* keep the NUL as a separator */
}

static size_t literal_limit(const imap_parser *p)
{
    return p->is_append ? p->lim.max_append_literal : p->lim.max_literal;
}

/* What the whole command, text and literals, may take. */
static size_t command_limit(const imap_parser *p)
{
    return p->is_append ? p->lim.max_append_command
           : p->is_id   ? p->lim.max_id_command
                        : p->lim.max_command;
}

/* What its text may take (ID's long values may all be quoted strings). */
static size_t line_limit(const imap_parser *p)
{
    return p->is_id && p->lim.max_id_command > p->lim.max_line ? p->lim.max_id_command
                                                               : p->lim.max_line;
}

/* The end of a line while reading arguments: the command is complete if every list closed. */
static imap_parse_result end_of_line(imap_parser *p)
{
    if (p->depth > 0) return fail_at(p, IMAP_PERR_SYNTAX, "missing ')'", true);
    finish_command(p);
    return IMAP_PARSE_COMMAND;
}

/* ---- the state machine ------------------------------------------------------------------
 * imap_parser_feed() hands each byte to the handler of the current state. A handler looks at
 * C, the byte at *I of the input, and moves *I past what it used: past C, or not at all when
 * the state it enters must read C again. It returns IMAP_PARSE_MORE to go on with the next
 * byte, or the result that ends this feed (never MORE: fail_at() gives IMAP_PARSE_ERROR). */

/* C is used, and R ends the feed. */
static imap_parse_result done(size_t *i, imap_parse_result r)
{
    (*i)++;
    return r;
}

/* The states that take many bytes at once (a literal's data, a bad line or literal being
 * skipped): true if one of them took what it could from DATA at *I. */
static bool bulk_bytes(imap_parser *p, const char *data, size_t len, size_t *i)
{
    if (p->st == ST_LITDATA) {
        node *n = &p->nodes[p->nnodes - 1];
        size_t want = (size_t)p->lit_size - (p->sb.len - n->off);
        size_t take = len - *i < want ? len - *i : want;
        mfs_buf_append(&p->sb, data + *i, take);
        *i += take;
        if (take == want) {
            tok_end(p, (long)p->nnodes - 1);
            p->st = ST_ARGS;
        }
        return true;
    }
    if (p->st == ST_SKIP_LIT) {
        size_t take = len - *i < p->skip_n ? len - *i : (size_t)p->skip_n;
        *i += take;
        p->skip_n -= take;
        if (p->skip_n == 0) {
            p->st = ST_SKIP;
            p->skip_st = 0;
        }
        return true;
    }
    if (p->st == ST_SKIP) {
        skip_char(p, (unsigned char)data[(*i)++]);
        return true;
    }
    return false;
}

/* The line and command bounds, checked for every byte of a line (C just counted). */
static imap_parse_result over_limits(imap_parser *p, unsigned char c, size_t *i)
{
    /* the LF after a literal's {n} does not end the line: the literal's bytes follow it */
    bool in_lithdr = p->st == ST_LIT_CR || p->st == ST_LIT_LF;
    bool eol = c == '\n' && !in_lithdr;
    if (p->line_bytes > line_limit(p))
        return done(i, fail_at(p, IMAP_PERR_TOOLONG, "line too long", eol));
    if (p->line_bytes + p->lit_bytes > command_limit(p)) {
        size_t max = command_limit(p);
        snprintf(p->errbuf, sizeof(p->errbuf), "command too long: more than %zu bytes", max);
        return done(i, fail_at(p, IMAP_PERR_TOOLONG, p->errbuf, eol));
    }
    return IMAP_PARSE_MORE;
}

static imap_parse_result st_tag(imap_parser *p, unsigned char c, size_t *i)
{
    if (c == '\r' || c == '\n') {
        if (p->sb.len == 0) { /* empty line: ignore */
            p->line_bytes = 0;
            (*i)++;
            return IMAP_PARSE_MORE;
        }
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "missing command", c == '\n'));
    }
    if (c == ' ') {
        if (p->sb.len == 0) return done(i, fail_at(p, IMAP_PERR_SYNTAX, "missing tag", false));
        mfs_buf_putc(&p->sb, '\0');
        p->name_off = p->sb.len;
        p->st = ST_NAME;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (!is_tag_char(c))
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "invalid character in tag", false));
    if (p->sb.len >= 64) {
        /* a tag longer than this is garbage; errtag copies only the start */
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "tag too long", false));
    }
    mfs_buf_putc(&p->sb, (char)c);
    (*i)++;
    return IMAP_PARSE_MORE;
}

static imap_parse_result st_name(imap_parser *p, unsigned char c, size_t *i)
{
    if (c == ' ' || c == '\r' || c == '\n') {
        if (p->sb.len == p->name_off)
            return done(i, fail_at(p, IMAP_PERR_SYNTAX, "missing command", c == '\n'));
        mfs_buf_putc(&p->sb, '\0');
        p->is_append = strcmp(p->sb.data + p->name_off, "APPEND") == 0;
        p->is_id = strcmp(p->sb.data + p->name_off, "ID") == 0;
        if (c == '\n') return done(i, end_of_line(p));
        p->st = c == ' ' ? ST_ARGS : ST_EOL_LF;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (!is_name_char(c) || p->sb.len - p->name_off >= 32)
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "invalid command name", false));
    mfs_buf_putc(&p->sb, (char)toupper(c));
    (*i)++;
    return IMAP_PARSE_MORE;
}

/* '{' (or "~{" with LIT8) seen: a literal's header follows. */
static imap_parse_result start_literal(imap_parser *p, size_t *i, bool lit8)
{
    p->lit8 = lit8;
    if (add_node(p, IMAP_ARG_LITERAL) < 0)
        return done(i, fail_at(p, IMAP_PERR_TOOLONG, "too many arguments", false));
    p->nodes[p->nnodes - 1].lit8 = p->lit8;
    p->lit_size = 0;
    p->lit_plus = p->lit_minus = p->lit_digits = false;
    p->st = ST_LITHDR;
    (*i)++;
    return IMAP_PARSE_MORE;
}

/* Between arguments: a space, the line's end, a list's start or end, or a token's start. */
static imap_parse_result st_args(imap_parser *p, unsigned char c, size_t *i)
{
    if (c == ' ') {
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '\r') {
        p->st = ST_EOL_LF;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '\n') return done(i, end_of_line(p));
    if (c == '(') {
        if (p->depth >= p->lim.max_depth)
            return done(i, fail_at(p, IMAP_PERR_TOODEEP, "lists nested too deep", false));
        long n = add_node(p, IMAP_ARG_LIST);
        if (n < 0) return done(i, fail_at(p, IMAP_PERR_TOOLONG, "too many arguments", false));
        p->cur = n;
        p->depth++;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == ')') {
        if (p->depth == 0) return done(i, fail_at(p, IMAP_PERR_SYNTAX, "unexpected ')'", false));
        p->cur = p->nodes[p->cur].parent;
        p->depth--;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '"') {
        if (add_node(p, IMAP_ARG_STRING) < 0)
            return done(i, fail_at(p, IMAP_PERR_TOOLONG, "too many arguments", false));
        p->st = ST_QUOTED;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '{') return start_literal(p, i, false);
    if (c < 0x20 || c == 0x7f)
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "control character in command", false));
    if (add_node(p, IMAP_ARG_ATOM) < 0)
        return done(i, fail_at(p, IMAP_PERR_TOOLONG, "too many arguments", false));
    p->bracket = 0;
    p->bracket_quote = p->bracket_esc = false;
    p->st = ST_ATOM;
    p->line_bytes--;
    return IMAP_PARSE_MORE; /* reprocess c as the atom's first byte */
}

/* Inside brackets of an atom (BODY[HEADER.FIELDS (A B)]): spaces and quotes belong to it. */
static imap_parse_result atom_bracketed(imap_parser *p, unsigned char c, size_t *i, long idx)
{
    if (c == '\r' || c == '\n') {
        tok_end(p, idx);
        p->st = ST_ARGS;
        p->line_bytes--;
        return IMAP_PARSE_MORE; /* lenient: the line ends the atom */
    }
    if (c == 0 || c == 0x7f)
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "control character in command", false));
    if (p->bracket_quote) {
        if (p->bracket_esc)
            p->bracket_esc = false;
        else if (c == '\\')
            p->bracket_esc = true;
        else if (c == '"')
            p->bracket_quote = false;
    } else if (c == '"') {
        p->bracket_quote = true;
    } else if (c == '[') {
        p->bracket++;
    } else if (c == ']') {
        p->bracket--;
    }
    mfs_buf_putc(&p->sb, (char)c);
    (*i)++;
    return IMAP_PARSE_MORE;
}

/* Takes back the atom IDX ("~", the start of "~{n}"): it was the last token of its list. */
static void atom_unadd(imap_parser *p, long idx)
{
    p->nnodes--;
    node *par = &p->nodes[p->cur];
    par->count--;
    if (par->first == idx) {
        par->first = par->last = -1;
    } else {
        long j = par->first;
        while (p->nodes[j].next != idx)
            j = p->nodes[j].next;
        p->nodes[j].next = -1;
        par->last = j;
    }
    p->sb.len = p->nodes[idx].off;
}

static imap_parse_result st_atom(imap_parser *p, unsigned char c, size_t *i)
{
    long idx = (long)p->nnodes - 1;
    if (p->bracket > 0) return atom_bracketed(p, c, i, idx);
    if (c == ' ' || c == ')' || c == '(' || c == '\r' || c == '\n') {
        tok_end(p, idx);
        p->st = ST_ARGS;
        p->line_bytes--;
        return IMAP_PARSE_MORE; /* ST_ARGS handles the delimiter */
    }
    if (c == '{' && p->sb.len - p->nodes[idx].off == 1 && p->sb.data[p->nodes[idx].off] == '~') {
        atom_unadd(p, idx); /* ~{n}: literal8 */
        p->st = ST_ARGS;
        return start_literal(p, i, true);
    }
    if (c < 0x20 || c == 0x7f || c == '"')
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "invalid character in atom", false));
    if (c == '[') p->bracket++;
    mfs_buf_putc(&p->sb, (char)c);
    (*i)++;
    return IMAP_PARSE_MORE;
}

static imap_parse_result st_quoted(imap_parser *p, unsigned char c, size_t *i)
{
    if (c == '"') {
        tok_end(p, (long)p->nnodes - 1);
        p->st = ST_ARGS;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '\\') {
        p->st = ST_QUOTED_ESC;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '\r' || c == '\n' || c == 0)
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "unterminated quoted string", c == '\n'));
    mfs_buf_putc(&p->sb, (char)c);
    (*i)++;
    return IMAP_PARSE_MORE;
}

static imap_parse_result st_quoted_esc(imap_parser *p, unsigned char c, size_t *i)
{
    if (c != '"' && c != '\\')
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "invalid escape in quoted string", c == '\n'));
    mfs_buf_putc(&p->sb, (char)c);
    p->st = ST_QUOTED;
    (*i)++;
    return IMAP_PARSE_MORE;
}

/* After '{': the digits of the size, an optional '+', then '}'. */
static imap_parse_result st_lithdr(imap_parser *p, unsigned char c, size_t *i)
{
    if (isdigit(c) && !p->lit_plus && !p->lit_minus) {
        if (p->lit_size > (1ull << 40))
            return done(i, fail_at(p, IMAP_PERR_TOOBIG, "literal too large", false));
        p->lit_size = p->lit_size * 10 + (c - '0');
        p->lit_digits = true;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '+' && p->lit_digits && !p->lit_plus) {
        p->lit_plus = true;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c == '}' && p->lit_digits) {
        p->st = ST_LIT_CR;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    return done(i, fail_at(p, IMAP_PERR_SYNTAX, "invalid literal size", c == '\n'));
}

/* The literal of the header just read is too large (for a literal, or for the command with
 * it): the error's kind, with the text in p->errbuf; IMAP_PERR_NONE if it fits. */
static imap_parse_error literal_too_large(imap_parser *p)
{
    if (p->lit_size > literal_limit(p)) {
        snprintf(p->errbuf, sizeof(p->errbuf), "literal too large: %llu bytes, at most %zu",
                 (unsigned long long)p->lit_size, literal_limit(p));
        return IMAP_PERR_TOOBIG;
    }
    if (p->line_bytes + p->lit_bytes + p->lit_size > command_limit(p)) {
        snprintf(p->errbuf, sizeof(p->errbuf),
                 "command too large: %llu bytes with this literal, at most %zu",
                 (unsigned long long)(p->line_bytes + p->lit_bytes + p->lit_size),
                 command_limit(p));
        return IMAP_PERR_TOOBIG;
    }
    return IMAP_PERR_NONE;
}

/* After '}': the line's end, then the literal's bytes (a synchronizing one asks for them). */
static imap_parse_result st_lit_eol(imap_parser *p, unsigned char c, size_t *i)
{
    if (c == '\r' && p->st == ST_LIT_CR) {
        p->st = ST_LIT_LF;
        (*i)++;
        return IMAP_PARSE_MORE;
    }
    if (c != '\n')
        return done(i, fail_at(p, IMAP_PERR_SYNTAX, "literal size not at end of line", false));
    (*i)++;
    imap_parse_error kind = literal_too_large(p);
    if (kind != IMAP_PERR_NONE) {
        if (!p->lit_plus)
            return fail_at(p, kind, p->errbuf, true); /* the client sends nothing more */
        /* its bytes are on the way: skip them, never read them as commands */
        uint64_t n = p->lit_size;
        imap_parse_result r = fail_at(p, kind, p->errbuf, false);
        p->st = ST_SKIP_LIT;
        p->skip_n = n;
        p->skip_st = 0;
        return r;
    }
    p->lit_bytes += p->lit_size;
    mfs_buf_reserve(&p->sb, (size_t)p->lit_size + 1);
    if (p->lit_size == 0) {
        tok_end(p, (long)p->nnodes - 1);
        p->st = ST_ARGS;
    } else {
        p->st = ST_LITDATA;
    }
    return p->lit_plus ? IMAP_PARSE_MORE : IMAP_PARSE_CONTINUE;
}

/* C, in a state that reads a byte at a time. */
static imap_parse_result state_byte(imap_parser *p, unsigned char c, size_t *i)
{
    switch (p->st) {
    case ST_TAG:
        return st_tag(p, c, i);
    case ST_NAME:
        return st_name(p, c, i);
    case ST_EOL_LF:
        if (c != '\n') return done(i, fail_at(p, IMAP_PERR_SYNTAX, "CR without LF", false));
        return done(i, end_of_line(p));
    case ST_ARGS:
        return st_args(p, c, i);
    case ST_ATOM:
        return st_atom(p, c, i);
    case ST_QUOTED:
        return st_quoted(p, c, i);
    case ST_QUOTED_ESC:
        return st_quoted_esc(p, c, i);
    case ST_LITHDR:
        return st_lithdr(p, c, i);
    case ST_LIT_CR:
    case ST_LIT_LF:
        return st_lit_eol(p, c, i);
    default: /* the bulk states: bulk_bytes() took them */
        (*i)++;
        return IMAP_PARSE_MORE;
    }
}

imap_parse_result imap_parser_feed(imap_parser *p, const char *data, size_t len, size_t *consumed)
{
    drop_command(p);
    p->err = IMAP_PERR_NONE;
    size_t i = 0;
    imap_parse_result r = IMAP_PARSE_MORE;
    while (i < len && r == IMAP_PARSE_MORE) {
        if (bulk_bytes(p, data, len, &i)) continue;
        unsigned char c = (unsigned char)data[i];
        p->cur_c = c;
        p->line_bytes++;
        r = over_limits(p, c, &i);
        if (r == IMAP_PARSE_MORE) r = state_byte(p, c, &i);
    }
    *consumed = i;
    return r;
}

const imap_command *imap_parser_command(imap_parser *p)
{
    return p->have_cmd ? &p->cmd : NULL;
}

imap_parse_error imap_parser_error(imap_parser *p, const char **msg, const char **tag)
{
    if (msg) *msg = p->errmsg ? p->errmsg : "";
    if (tag) *tag = p->errtag[0] ? p->errtag : "*";
    return p->err;
}

const char *imap_parser_pending_tag(imap_parser *p)
{
    return p->st == ST_TAG ? "" : p->sb.data;
}

const char *imap_parser_pending_name(imap_parser *p)
{
    return p->name_off ? p->sb.data + p->name_off : "";
}

void imap_parser_reject_literal(imap_parser *p)
{
    imap_parser_reset(p);
}

void imap_parser_trim(imap_parser *p)
{
    drop_command(p);
    if (p->st != ST_TAG || p->sb.len != 0) return; /* a command is coming in */
    if (p->sb.cap > KEEP_BUF) {
        mfs_buf_free(&p->sb);
        mfs_buf_reserve(&p->sb, 64);
        p->sb.data[0] = '\0';
    }
    if (p->cap_nodes > KEEP_NODES) {
        free(p->nodes);
        p->nodes = NULL;
        p->cap_nodes = 0;
        root_init(p);
    }
}

uint64_t imap_parser_skipping(const imap_parser *p)
{
    return p->st == ST_SKIP_LIT ? p->skip_n : 0;
}
