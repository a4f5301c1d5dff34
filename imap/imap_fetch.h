/* imap_fetch.h: the items a FETCH asks for, as imap_fetch_parse.c parses them for cmd_fetch.c */
#ifndef MAILFS_IMAP_FETCH_H
#define MAILFS_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_int.h"
#include "imap/imap_msg.h"

#define IMAP_FETCH_MAX_ITEMS 64 /* items in one FETCH */

enum imap_fetch_kind {
    IMAP_FI_UID,
    IMAP_FI_FLAGS,
    IMAP_FI_INTERNALDATE,
    IMAP_FI_SIZE,
    IMAP_FI_ENVELOPE,
    IMAP_FI_BODY, /* BODY without a section: the non-extensible BODYSTRUCTURE */
    IMAP_FI_BODYSTRUCTURE,
    IMAP_FI_MODSEQ, /* RFC 7162 */
    IMAP_FI_SECTION,
    /* (the kinds from here on are sections) */ /* BODY[...] and the RFC822 forms */
    IMAP_FI_BINARY,
    IMAP_FI_BINARY_SIZE,
    IMAP_FI_SAVEDATE, /* RFC 8514 */
    IMAP_FI_EMAILID,  /* RFC 8474 */
    IMAP_FI_THREADID,
    IMAP_FI_PREVIEW, /* RFC 8970 */
};

enum imap_fetch_spec {
    IMAP_FS_NONE,
    IMAP_FS_HEADER,
    IMAP_FS_FIELDS,
    IMAP_FS_FIELDS_NOT,
    IMAP_FS_TEXT,
    IMAP_FS_MIME
};

typedef struct imap_fetch_item {
    enum imap_fetch_kind kind;
    bool peek;
    char part[64]; /* "1.2", "" for the whole message */
    enum imap_fetch_spec spec;
    char **fields;
    size_t nfields;
    bool partial;
    uint64_t off, len;
    char *name;  /* how the answer names it, without the <origin> (malloc'ed) */
    size_t same; /* the first item with the same section (they share its length) */
} imap_fetch_item;

/* What one FETCH asks for. */
typedef struct imap_fetch_req {
    imap_fetch_item items[IMAP_FETCH_MAX_ITEMS];
    size_t nitems;
    bool set_seen; /* some item sets \Seen */
    bool need_body, need_summary;
} imap_fetch_req;

/* Parses FETCH's item argument A (one item, a macro or a list) into X (zeroed by the caller),
 * each item's `same` set to the first item with the same section. Returns 0, or -1 after
 * answering BAD; either way X is freed with imap_fetch_req_free(). */
int imap_fetch_parse(imap_client *c, imap_fetch_req *x, const imap_arg *a);
void imap_fetch_req_free(imap_fetch_req *x);

/* Parses a section text ("", "1.2", "HEADER", "1.HEADER.FIELDS (From)", "2.MIME") into IT as a
 * BODY[...] item (zeroed first; free with imap_fetch_item_free); 0, or -1 if it is not one.
 * CATENATE's URLs name sections this way. */
int imap_fetch_section_parse(imap_fetch_item *it, const char *s, size_t len);
void imap_fetch_item_free(imap_fetch_item *it);

/* Finds the bytes the section of IT names in message DATA[0, DLEN) (with its MIME summary BLOB,
 * or NULL) and how they become its text: SRC_OFF and SRC_LEN in the message, CV set up for
 * them. Returns 0, -ENOENT for a missing part, or -EPROTO for an unknown transfer encoding. */
int imap_section_source(const imap_fetch_item *it, const char *data, size_t dlen, const void *blob,
                        size_t bloblen, imap_conv *cv, size_t *src_off, size_t *src_len);

#endif
