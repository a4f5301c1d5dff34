/* log.c: the one logger: formats a line, escapes it whole, writes it with one call */
#include "store/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* Set once at start-up, before any thread runs; read-only afterwards. */
static struct {
    log_target target;
    log_level level;
    bool syslog_open;
} logger = {LOG_TO_STDERR, LOG_LEVEL_WARN, false};

void log_setup(log_target target, log_level level)
{
    logger.target = target;
    logger.level = level;
    if (target == LOG_TO_SYSLOG && !logger.syslog_open) {
        openlog("mailfs", LOG_PID | LOG_NDELAY, LOG_MAIL);
        logger.syslog_open = true;
    }
}

log_level log_get_level(void)
{
    return logger.level;
}

bool log_enabled(log_level level)
{
    return level <= logger.level;
}

char *log_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (dstlen < 4) { /* no room for an ellipsis: an empty text is the honest cut */
        if (dstlen) dst[0] = '\0';
        return dst;
    }
    size_t whole = 0; /* the escaped length: when it fits, nothing is cut */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        whole += ch < 0x20 || ch == 0x7f ? 4 : ch == '\\' ? 2 : 1;
    }
    bool fits = whole < dstlen;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        char tmp[4] = {(char)ch};
        size_t n = 1;
        if (ch < 0x20 || ch == 0x7f) {
            tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[ch >> 4], tmp[3] = hex[ch & 15];
            n = 4;
        } else if (ch == '\\') {
            tmp[1] = '\\';
            n = 2;
        }
        /* keep room for "..."; w + 4 <= dstlen holds here */
        if (!fits && w + n + 3 + 1 > dstlen) {
            memcpy(dst + w, "...", 4);
            return dst;
        }
        memcpy(dst + w, tmp, n);
        w += n;
    }
    dst[w] = '\0';
    return dst;
}

static int syslog_priority(log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR:
        return LOG_ERR;
    case LOG_LEVEL_WARN:
        return LOG_WARNING;
    case LOG_LEVEL_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

void log_msg(log_level level, const char *component, const char *fmt, ...)
{
    if (!log_enabled(level)) return;
    char raw[LOG_LINE_MAX], line[LOG_LINE_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    char text[LOG_LINE_MAX];
    log_escape(text, sizeof(text), raw, len);
    if ((size_t)n >= sizeof(raw)) { /* vsnprintf cut it: say so */
        size_t tl = strlen(text);
        if (tl > sizeof(text) - 4) tl = sizeof(text) - 4;
        if (tl < 3 || strcmp(text + tl - 3, "...") != 0) memcpy(text + tl, "...", 4);
    }
    if (logger.target == LOG_TO_SYSLOG) {
        syslog(syslog_priority(level), "%s: %s", component, text);
        return;
    }
    int ll = snprintf(line, sizeof(line), "mailfs: %s: %s\n", component, text);
    if (ll < 0) return;
    if ((size_t)ll >= sizeof(line)) ll = (int)sizeof(line) - 1, line[ll - 1] = '\n';
    ssize_t off = 0;
    while (off < ll) { /* one write per line keeps lines whole between threads */
        ssize_t w = write(STDERR_FILENO, line + off, (size_t)(ll - off));
        if (w <= 0) break;
        off += w;
    }
}
