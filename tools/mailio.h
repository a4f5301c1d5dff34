/* mailio.h: what import and export share: Maildir flag letters and mbox framing */
#ifndef MAILFS_MAILIO_H
#define MAILFS_MAILIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILIO_KEYWORDS_MAX 26 /* Maildir keyword letters a-z, as Dovecot uses them */

/* The keyword letters of one Maildir (from / for its dovecot-keywords file). */
typedef struct mailio_keywords {
    char *names[MAILIO_KEYWORDS_MAX];
} mailio_keywords;

/* Loads DIR/dovecot-keywords if present (missing file: no keywords). */
void mailio_keywords_load(mailio_keywords *k, const char *dir);
/* Writes DIR/dovecot-keywords; returns 0 or -errno. */
int mailio_keywords_save(const mailio_keywords *k, const char *dir);
void mailio_keywords_free(mailio_keywords *k);

/* Parses the info part of a Maildir file name ("...:2,FRS" or "...!2,FRS") into STORE_F_* bits
 * and a space-separated keyword list in KW (KWLEN bytes). Names without info give 0 and "". */
void mailio_maildir_flags(const char *filename, const mailio_keywords *k, uint32_t *flags, char *kw,
                          size_t kwlen);
/* Formats the ":2,..." suffix for FLAGS and KEYWORDS, adding new keywords to K; returns the
 * number of keywords that did not fit in K's 26 letters (they are left out). */
int mailio_maildir_info(uint32_t flags, const char *keywords, mailio_keywords *k, char *out,
                        size_t outlen);

/* Maildir++ folder names: a mailbox level is written with '.' as "%2E" and '%' as "%25". */
void mailio_folder_encode(const char *mailbox, char *out, size_t outlen);
void mailio_folder_decode(const char *folder, char *out, size_t outlen);

/* One message framed in an mbox. */
typedef struct mailio_mbox_msg {
    const char *data; /* the message, still >From-quoted unless `quoted` is false */
    size_t len;
    bool quoted;  /* mboxrd quoting may be present (no Content-Length framing used) */
    int64_t date; /* from the From_ line; 0 if it does not parse */
} mailio_mbox_msg;

/* True if the LEN bytes at P start like an mbox (a "From " line). */
bool mailio_is_mbox(const char *p, size_t len);
/* Finds the message starting at *POS (which points at its "From " line) and advances *POS to
 * the next "From " line or to LEN. Returns false at the end. A Content-Length field frames the
 * message only if it ends at the start of a From_ line (or the end) and no From_ line with a
 * date lies inside, so a message's own header can neither split it nor swallow the next one. */
bool mailio_mbox_next(const char *map, size_t len, size_t *pos, mailio_mbox_msg *out);
/* Removes one '>' from every line of the form >+From  (mboxrd). OUT must hold LEN bytes;
 * returns the new length. */
size_t mailio_mbox_unquote(const char *in, size_t len, char *out);
/* True if the message holds a line that mboxrd must quote or unquote (^>*From ). */
bool mailio_mbox_needs_quoting(const char *p, size_t len);
/* Reads STORE_F_* flags from mbox Status: and X-Status: headers. */
uint32_t mailio_mbox_status_flags(const char *p, size_t len);

#endif
