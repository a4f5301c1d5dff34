/* imap_msg.h: reading message text for FETCH and SEARCH (no store access) */
#ifndef MAILFS_IMAP_MSG_H
#define MAILFS_IMAP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/buf.h"

/* A converter from a section's source bytes to the text FETCH sends, producing it in pieces:
 * the text of a big part can be counted without being built, and sent a window at a time
 * across event-loop passes. The source is passed whole to every call (it is a range of a
 * message in the store's map, whose address may change between calls); the converter keeps
 * only offsets and a few bytes of state, so it can be copied (to count ahead) and resumed.
 * Running it in pieces of any size gives the same bytes as running it at once. */
typedef enum imap_conv_kind {
    IMAP_CONV_COPY,   /* the bytes as they are */
    IMAP_CONV_CRLF,   /* every bare LF as CRLF (BODY[...], 7bit and 8bit parts) */
    IMAP_CONV_BASE64, /* base64 decoded; junk skipped, stops at '=' */
    IMAP_CONV_QP,     /* quoted-printable decoded, bare LF as CRLF */
    IMAP_CONV_FIELDS, /* header fields named (or with NOT, not named) in FIELDS, CRLF, then a
                       * blank line (BODY[HEADER.FIELDS ...]) */
} imap_conv_kind;

typedef struct imap_conv {
    imap_conv_kind kind;
    char *const *fields; /* FIELDS: the names (not copied: they must outlive the converter) */
    size_t nfields;
    bool not_fields; /* FIELDS: keep the fields that are not named */
    bool qp_header;  /* QP: RFC 2047 Q form ('_' is a space, line ends kept) */
    bool want_nul;   /* set NUL when a NUL byte is produced (checking costs a scan) */
    bool nul;
    size_t in;      /* source bytes consumed */
    size_t in_stop; /* if not 0: a run stops reading near this source offset (bounds its work) */
    uint64_t out;   /* bytes produced */
    /* private */
    uint32_t acc;     /* BASE64: bits not yet produced */
    int bits;         /* BASE64: how many */
    int phase;        /* FIELDS: where the walk is */
    size_t field_end; /* FIELDS: end of the field being copied */
    char pend[2];     /* produced but not yet delivered (the LF of a CRLF cut by MAX) */
    unsigned npend;
} imap_conv;

/* Starts a converter of kind KIND at the start of its source. */
void imap_conv_init(imap_conv *cv, imap_conv_kind kind);
/* Sorts header field names for imap_conv_init_fields (by length, then ASCII case-insensitively),
 * so that each field of a header is looked up in log N steps, not N. */
void imap_fields_sort(char **fields, size_t n);
/* Starts a FIELDS converter; FIELDS is sorted (imap_fields_sort) and must stay valid while the
 * converter is used. */
void imap_conv_init_fields(imap_conv *cv, char *const *fields, size_t n, bool not_fields);
/* Starts the decoder of Content-Transfer-Encoding ENC (none, 7bit and 8bit: CRLF; binary:
 * COPY); returns 0, or -1 if ENC is unknown. */
int imap_conv_init_cte(imap_conv *cv, const char *enc);
/* Produces up to MAX more bytes of the text of SRC[0, LEN) (LEN and SRC's content the same at
 * every call) and appends them to OUT, which it grows by MAX first; with OUT NULL it only
 * counts them (to measure the text, or to skip to an offset in it). Returns how many bytes it
 * produced: fewer than MAX only when the text is complete, or when it stopped reading at
 * IN_STOP (a header field or a CRLF pair is finished first); imap_conv_done() tells which. */
size_t imap_conv_run(imap_conv *cv, const char *src, size_t len, mfs_buf *out, size_t max);
/* True once the whole text of a LEN-byte source has been produced. */
bool imap_conv_done(const imap_conv *cv, size_t len);

/* Length of S with every bare LF counted as CRLF. */
size_t imap_crlf_len(const char *s, size_t len);
/* Appends S with every bare LF written as CRLF. */
void imap_crlf_append(mfs_buf *b, const char *s, size_t len);
/* Splits a message at its first empty line: the header block (blank line included) is
 * DATA[0, *hdr_len), the body starts at *body_off. */
void imap_msg_split(const char *data, size_t len, size_t *hdr_len, size_t *body_off);
/* Appends the fields of header block H that are (or, with NOT, are not) in FIELDS, with CRLF
 * line ends, then the blank line (BODY[HEADER.FIELDS ...]). Sorts FIELDS (imap_fields_sort). */
void imap_header_filter(mfs_buf *out, const char *h, size_t hlen, char **fields, size_t n,
                        bool not );
/* Appends the unfolded value of field NAME (every such field, newline-separated, with ALL);
 * returns true if there was one. */
bool imap_header_get(const char *h, size_t hlen, const char *name, bool all, mfs_buf *out);
/* Decodes RFC 2047 encoded words into UTF-8 (iconv for other charsets). */
void imap_mime_words_decode(const char *s, size_t len, mfs_buf *out);
/* Decodes a body in Content-Transfer-Encoding ENC; -1 if ENC is unknown. 7bit/8bit text gets
 * CRLF line ends. */
int imap_cte_decode(const char *enc, const char *s, size_t len, mfs_buf *out);
/* Appends S converted from CHARSET to UTF-8 (the bytes as they are if iconv does not know it). */
void imap_charset_to_utf8(const char *charset, const char *s, size_t len, mfs_buf *out);
/* ASCII case-insensitive substring search. */
bool imap_ci_contains(const char *hay, size_t hlen, const char *needle, size_t nlen);

#endif
