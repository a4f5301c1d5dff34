/* imap_bodystructure.h: IMAP BODY and BODYSTRUCTURE text (RFC 9051 section 7.5.2) */
#ifndef MAILFS_IMAP_BODYSTRUCTURE_H
#define MAILFS_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"
#include "imap/imap_envelope.h"

/*
 * A message parser (the store's MIME summary) describes each MIME part with an imap_part and
 * hands the root to imap_bodystructure_write. As for the envelope, the values the parser keeps
 * while it reads the header are IMAP text built with the functions below or imap_quote_string
 * (so that it can bound them by their rendered size); the others are as the message wrote them.
 * Where RFC 9051 leaves a choice, the text is what Dovecot sends: types, subtypes and
 * parameters as the message wrote them (RFC 3501's examples show upper case; clients compare
 * case-insensitively), except that a message/rfc822 part is always "message" "rfc822"; defaults
 * in lower case ("text" "plain", ("charset" "us-ascii"), "7bit", "message" "rfc822" inside a
 * multipart/digest); a multipart without parts shows one empty text/plain part.
 */

typedef enum { IMAP_PART_LEAF, IMAP_PART_MULTIPART, IMAP_PART_MESSAGE } imap_part_kind;

typedef struct imap_part imap_part;

/* One MIME part. Strings are NUL-terminated, NULL when absent, and belong to the parser. */
struct imap_part {
    imap_part_kind kind;  /* IMAP_PART_MESSAGE: message/rfc822 or message/global */
    const char *type;     /* Content-Type as written; NULL: none (or unusable) */
    const char *subtype;  /* set whenever TYPE is */
    const char *encoding; /* Content-Transfer-Encoding as written; NULL: "7bit" */
    bool digest_default;  /* in a multipart/digest: no Content-Type means message/rfc822 */
    bool has_charset;     /* PARAMS has a charset (else a text part gets "us-ascii") */
    const char *params;   /* IMAP: Content-Type parameters (imap_bodystructure_param) */
    const char *id, *description, *md5, *location; /* IMAP strings */
    const char *disposition;                       /* IMAP string: the disposition type */
    const char *disposition_params;      /* IMAP: its parameters (imap_bodystructure_param) */
    const char *language;                /* IMAP: imap_bodystructure_list_add items */
    uint64_t size;                       /* body octets with every line ending in CRLF */
    uint64_t lines;                      /* body lines */
    const imap_part *first_child, *next; /* a multipart's parts, in order */
    const imap_part *message;            /* IMAP_PART_MESSAGE: the encapsulated message's root
                                          * part; NULL when it was not parsed */
    imap_envelope envelope;              /* a message's root part: its envelope */
};

/* Appends the BODYSTRUCTURE (EXTENDED) or BODY list of the part tree at ROOT. */
void imap_bodystructure_write(mfs_buf *b, const imap_part *root, bool extended);

/* Appends S as an IMAP string to LIST, the inside of a parenthesised list (items separated by
 * a space). */
void imap_bodystructure_list_add(mfs_buf *list, const char *s, size_t len);

/* Appends a parameter (name, then value) to LIST, as imap_bodystructure_list_add. */
void imap_bodystructure_param(mfs_buf *list, const char *name, size_t name_len, const char *value,
                              size_t value_len);

#endif
