/* mime.h: the parsed summary of a message, computed once at append and read at FETCH */
#ifndef MAILFS_MIME_H
#define MAILFS_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

/*
 * A summary is a self-contained byte blob (no pointers inside), made by the parser below from
 * the raw message bytes and stored beside the body. It holds, for the message and for every
 * MIME part (nested multiparts and message/rfc822 included):
 *   - offsets and lengths of the part's header block and body in the raw bytes,
 *   - the same sizes counted with every bare LF as CRLF, and line counts,
 *   - what IMAP's ENVELOPE and BODYSTRUCTURE need, pre-rendered as IMAP text.
 * Malformed input never fails: the parser describes what it can and never crashes.
 *
 * Details (see the comment at the top of store/mime.c for the full list):
 *   - Lines end at LF (CRLF or bare LF). A lone CR is an ordinary byte. "crlf" sizes count each
 *     bare LF as two bytes and leave a lone CR as one: what a client gets once the server turns
 *     bare LF into CRLF. Line counts are numbers of LF.
 *   - The blob is little-endian and versioned; the readers below return -EINVAL for a blob they
 *     do not understand (recompute it with store_mime_summarize then).
 *   - Memory is bounded by limits, not by message size: 64 KiB per header field, 64 levels of
 *     nesting, 5000 parts, 8 MiB of rendered strings. Offsets stay exact beyond the limits.
 *   - Out of memory: the strings are built in mfs_buf (imap/mfs_buf.h), which aborts the
 *     process as the IMAP code does; the parser's own tables report -ENOMEM.
 */

typedef struct store_mime_parser store_mime_parser;

/* Incremental parser: feed the message in pieces of any size (one byte at a time gives the same
 * summary as one piece). */
int store_mime_parser_new(store_mime_parser **out);
/* 0, or -ENOMEM (the parser is then unusable), or -EINVAL after store_mime_finish. */
int store_mime_feed(store_mime_parser *p, const void *data, size_t len);
/* Ends the input; *blob is malloc'ed and owned by the caller. 0, -ENOMEM or -EINVAL (called
 * twice). The parser must still be freed with store_mime_parser_free. */
int store_mime_finish(store_mime_parser *p, void **blob, size_t *bloblen);
void store_mime_parser_free(store_mime_parser **p);

/* One-shot convenience around the three calls above. */
int store_mime_summarize(const void *msg, size_t len, void **blob, size_t *bloblen);

/* Whole-message totals: bytes with CRLF line endings (RFC822.SIZE), and line count (number of LF,
 * plus one for an unterminated last line). Either pointer may be NULL. */
int store_mime_totals(const void *blob, size_t bloblen, uint64_t *crlf_size, uint32_t *lines);

/* Pre-rendered IMAP ENVELOPE (the parenthesised list, without the "ENVELOPE " prefix).
 * *out points into BLOB. */
int store_mime_envelope(const void *blob, size_t bloblen, const char **out, size_t *outlen);

/* Pre-rendered IMAP BODYSTRUCTURE (EXTENDED true) or BODY (false), without the item name: the
 * parenthesised list. *out points into BLOB and is not NUL-terminated; it may hold literals
 * ({n}CRLF...) for strings with 8-bit bytes. Same for store_mime_envelope. */
int store_mime_bodystructure(const void *blob, size_t bloblen, bool extended, const char **out,
                             size_t *outlen);

/* Appends the addresses of the address-list header value V[0, N) to OUT as the parser reads
 * them, in plain text: "name <mailbox@host>" (or "mailbox@host"), groups as "name: ... ;",
 * separated by ", ", with comments and folding gone ("<a (x)@ (y) b.org>" is "a@b.org").
 * Encoded words in names stay as they are. Returns how many addresses (group marks included)
 * it appended. SEARCH FROM/TO/CC/BCC match this besides the raw field, as Dovecot does. */
size_t store_mime_addresses_text(const char *v, size_t n, mfs_buf *out);

typedef struct store_mime_part {
    uint64_t header_off, header_len; /* the header block, blank line included */
    uint64_t body_off, body_len;     /* the body (for a multipart: preamble to epilogue) */
    uint64_t header_crlf_len, body_crlf_len;
    uint32_t body_lines;
    bool is_multipart;
    bool is_message; /* message/rfc822 (or message/global): has a nested message */
    uint32_t nparts; /* children of a multipart */
    /* for is_message: the encapsulated message's header block and body (for HEADER, TEXT) */
    uint64_t msg_header_off, msg_header_len, msg_header_crlf_len;
    uint64_t msg_body_off, msg_body_len, msg_body_crlf_len;
    char type[64];     /* lower-case, e.g. "text" */
    char subtype[64];  /* lower-case, e.g. "plain" */
    char encoding[32]; /* lower-case Content-Transfer-Encoding, "7bit" if absent */
    char charset[64];  /* lower-case charset parameter, "" if absent */
} store_mime_part;

/* Finds a part by IMAP section number: "" is the whole message, "1.2" the second child of the
 * first part. As in IMAP, a non-multipart message has part "1" (its body), and the parts of a
 * message/rfc822 part are numbered inside it. -ENOENT if there is no such part, -EINVAL if
 * SECTION is not digits separated by single dots (strip ".HEADER", ".MIME" etc. first).
 *
 * How FETCH uses the result (raw offsets; convert bare LF to CRLF when sending):
 *   BODY[]             the whole message; BODY[HEADER]/BODY[TEXT]: section "" header_* / body_*
 *   BODY[n]            body_* of part n. For "1" of a non-multipart message this is the message
 *                      body; for a message/rfc822 part it is the whole encapsulated message
 *   BODY[n.MIME]       header_* of part n (the part's MIME header, blank line included)
 *   BODY[n.HEADER]     msg_header_* and BODY[n.TEXT] msg_body_*: only when is_message
 * Section "n.1" of a message/rfc822 part n whose message is not multipart is that message itself
 * (its header_* is the encapsulated header, its body_* the encapsulated body). A multipart
 * without parts (no boundary found) shows one empty text/plain part "1" (all lengths 0), as its
 * BODYSTRUCTURE does. is_message is false for a message/rfc822 part not parsed because of the
 * limits; its BODYSTRUCTURE then shows an empty envelope and an empty text/plain body. */
int store_mime_part_find(const void *blob, size_t bloblen, const char *section,
                         store_mime_part *out);

#endif
