/* unit_log.c: the logger escapes every line whole and cuts long ones visibly */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/log.h"
#include "tests/unit.h"

/* Runs log_msg with stderr redirected to a temporary file; returns what was written. */
static char *captured(log_level level, const char *user)
{
    char path[] = "/tmp/unit_log_XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_msg(level, "imap", "login failed for user '%s' from %s", user, "192.0.2.1");
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)n + 1);
    pread(fd, out, (size_t)n, 0);
    close(fd);
    unlink(path);
    return out;
}

int main(void)
{
    char b[64];

    CHECK_STR(log_escape(b, sizeof(b), "plain", 5), "plain");
    CHECK_STR(log_escape(b, sizeof(b), "a\nb\r\tc", 6), "a\\x0ab\\x0d\\x09c");
    CHECK_STR(log_escape(b, sizeof(b), "x\\y", 3), "x\\\\y");
    CHECK_STR(log_escape(b, sizeof(b), "\x7f\x1b[2J", 5), "\\x7f\\x1b[2J");
    CHECK_STR(log_escape(b, sizeof(b), "a\0b", 3), "a\\x00b");
    CHECK_STR(log_escape(b, sizeof(b), "caf\xc3\xa9", 5), "caf\xc3\xa9"); /* UTF-8 stays */
    /* a cut is visible, and exact fits are not cut */
    CHECK_STR(log_escape(b, 8, "abcdefghij", 10), "abcd...");
    CHECK_STR(log_escape(b, 8, "abcdefg", 7), "abcdefg");
    CHECK_STR(log_escape(b, 8, "abcd\nefg", 8), "abcd...");
    CHECK_STR(log_escape(b, 4, "abcdef", 6), "...");
    CHECK_STR(log_escape(b, 3, "abcdef", 6), "");

    /* a forged line stays inside the one it was put in */
    log_setup(LOG_TO_STDERR, LOG_LEVEL_INFO);
    char *s = captured(LOG_LEVEL_WARN, "x' from 1.2.3.4\nmailfs: imap: user 'admin' logged in");
    CHECK_STR(s, "mailfs: imap: login failed for user 'x' from 1.2.3.4\\x0amailfs: imap: user "
                 "'admin' logged in' from 192.0.2.1\n");
    free(s);
    /* levels above the one set are not written */
    log_setup(LOG_TO_STDERR, LOG_LEVEL_WARN);
    s = captured(LOG_LEVEL_INFO, "bob");
    CHECK_STR(s, "");
    free(s);
    CHECK(log_enabled(LOG_LEVEL_ERROR) && !log_enabled(LOG_LEVEL_DEBUG));
    /* a line longer than the limit ends in "..." and one newline */
    char big[3 * LOG_LINE_MAX];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = captured(LOG_LEVEL_ERROR, big);
    size_t n = strlen(s);
    CHECK(n > 100 && n <= LOG_LINE_MAX + 32 && strcmp(s + n - 4, "...\n") == 0);
    CHECK(strchr(s, '\n') == s + n - 1);
    free(s);
    return unit_finish();
}
