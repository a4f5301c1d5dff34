/* imap_envelope.h: IMAP ENVELOPE text (RFC 9051 section 7.5.2) from a message's header fields */
#ifndef MAILFS_IMAP_ENVELOPE_H
#define MAILFS_IMAP_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

/*
 * A message parser (the store's MIME summary) reads the header and calls the functions below
 * for each field it keeps, so that it can bound the text it holds by its rendered size; then
 * imap_envelope_write puts the pieces together. Everything is appended to an mfs_buf. The
 * rules follow RFC 9051 and, where the RFC leaves a choice, what Dovecot sends:
 *   - date, in-reply-to and message-id are IMAP strings of the value as written
 *     (imap_quote_string);
 *   - the subject and display names are "for humans": runs of blanks become one space, both
 *     ends are trimmed, and a value that this (or unfolding) changed is sent as a literal;
 *   - a missing Sender or Reply-To is the From list.
 */

/* The ENVELOPE fields, in their order. */
enum {
    IMAP_ENV_DATE,
    IMAP_ENV_SUBJECT,
    IMAP_ENV_FROM,
    IMAP_ENV_SENDER,
    IMAP_ENV_REPLY_TO,
    IMAP_ENV_TO,
    IMAP_ENV_CC,
    IMAP_ENV_BCC,
    IMAP_ENV_IN_REPLY_TO,
    IMAP_ENV_MESSAGE_ID,
    IMAP_ENV_N
};

/* A message's envelope as its parser found it: each field is NUL-terminated IMAP text, or NULL
 * when the message has none. Date, In-Reply-To and Message-ID: an IMAP string; Subject: what
 * imap_envelope_subject made; address fields (From ... Bcc): the addresses of every field of
 * that name, one imap_envelope_address each, without the list's parentheses. The strings
 * belong to the parser. */
typedef struct imap_envelope {
    const char *field[IMAP_ENV_N];
} imap_envelope;

/* The envelope of a message that was not parsed: every field NIL. */
#define IMAP_ENVELOPE_EMPTY "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

/* Appends the ENVELOPE list "(date subject from sender reply-to to cc bcc in-reply-to
 * message-id)" of ENV. */
void imap_envelope_write(mfs_buf *b, const imap_envelope *env);

/* Appends a Subject value for humans (see above). RAW is the value as written: folded, without
 * the blanks after the colon and without the final line end. */
void imap_envelope_subject(mfs_buf *b, const char *raw, size_t len);

/* One address of an address list, as a parser of RFC 5322 found it. The strings need not be
 * NUL-terminated. A group is a start (MAILBOX its name, HOST NULL), its addresses, and an end
 * (everything NULL). */
typedef struct imap_address {
    const char *name; /* display name, unquoted; NULL or empty: none */
    size_t name_len;
    const char *route; /* obsolete source route "@a,@b"; NULL or empty: none */
    size_t route_len;
    const char *mailbox; /* local part, or a group's name; NULL: none */
    size_t mailbox_len;
    const char *host; /* domain; NULL for a group's start and end */
    size_t host_len;
} imap_address;

/* Appends "(name adl mailbox host)" for A. */
void imap_envelope_address(mfs_buf *b, const imap_address *a);

/* ---- reading an ENVELOPE back (SORT and THREAD read the stored summary's) -------------- */

/* A string of a parsed ENVELOPE: LEN bytes at OFF in the buffer given to imap_envelope_parse
 * (unquoted, a literal's bytes as they are); NIL for NIL or a missing field. */
typedef struct imap_env_text {
    uint32_t off, len;
    bool nil;
} imap_env_text;

/* An ENVELOPE as read: the string fields (date, subject, in-reply-to, message-id) in TEXT,
 * and for each address field (from ... bcc) the first address of the list as name, adl,
 * mailbox and host (all NIL if there is none). A group's start is an address too (mailbox:
 * the group's name, host NIL): it is what SORT's "first address" is for "To: team: a, b;". */
typedef struct imap_envelope_fields {
    imap_env_text text[IMAP_ENV_N];
    imap_env_text addr[IMAP_ENV_N][4];
} imap_envelope_fields;

/* Reads the ENVELOPE list S[0, len) that imap_envelope_write made (quoted strings, literals,
 * NIL), appending its strings to STRINGS. Returns 0, or -1 if S is not such a list (OUT then
 * holds what was read before the fault; every field not read is NIL). */
int imap_envelope_parse(const char *s, size_t len, mfs_buf *strings, imap_envelope_fields *out);

#endif
