/* log.h: the one logger of the server and the mount: levels, a component tag, stderr or syslog */
#ifndef MAILFS_LOG_H
#define MAILFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Every message the server and the mount write for an administrator goes through log_msg(), as
 * one line: "mailfs: COMPONENT: TEXT" on stderr, or TEXT with the component tag through
 * syslog(3) (which journald collects). Values from outside (user names, addresses, mailbox
 * names, anything a client sent) are safe to pass as %s: the whole formatted line is escaped,
 * control characters and DEL becoming \xNN and backslash \\, so nobody can end a line early
 * and forge the next one. Lines longer than LOG_LINE_MAX bytes are cut and end in "...".
 *
 * The logger is process-wide (set once at start, before threads) and thread-safe: each line is
 * written with a single write(2) or syslog(3) call.
 */

typedef enum log_level {
    LOG_LEVEL_ERROR = 0, /* something failed that an administrator must look at */
    LOG_LEVEL_WARN,      /* something unusual that the program handled */
    LOG_LEVEL_INFO,      /* events: connections, logins, deliveries */
    LOG_LEVEL_DEBUG,     /* detail for developers */
} log_level;

typedef enum log_target {
    LOG_TO_STDERR = 0,
    LOG_TO_SYSLOG,
} log_target;

#define LOG_LINE_MAX 2048

/* Sets where lines go and the most detailed level written (default: stderr, WARN). */
void log_setup(log_target target, log_level level);
/* The level set by log_setup(). */
log_level log_get_level(void);
/* True if a line of LEVEL would be written (to skip costly formatting). */
bool log_enabled(log_level level);

/* Writes one line at LEVEL, tagged with COMPONENT ("imap", "mount", ...). */
void log_msg(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(comp, ...) log_msg(LOG_LEVEL_ERROR, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_LEVEL_WARN, comp, __VA_ARGS__)
#define log_info(comp, ...) log_msg(LOG_LEVEL_INFO, comp, __VA_ARGS__)
#define log_debug(comp, ...) log_msg(LOG_LEVEL_DEBUG, comp, __VA_ARGS__)

/* Escapes SRC (LEN bytes) the way log lines are escaped into DST (DSTLEN bytes, NUL-terminated,
 * cut with "..." if it does not fit); returns DST. For tests and for callers that build texts. */
char *log_escape(char *dst, size_t dstlen, const char *src, size_t len);

#endif
