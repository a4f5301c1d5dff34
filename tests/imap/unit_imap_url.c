/* unit_imap_url.c: IMAP URLs (RFC 5092) as CATENATE reads them, taken apart or refused */
#include <stdint.h>
#include <string.h>

#include "imap/imap_url.h"
#include "tests/unit.h"

static imap_url u;
static const char *why;

static int parse(const char *s)
{
    why = NULL;
    return imap_url_parse(s, strlen(s), &u, &why);
}

static void good(void)
{
    CHECK(parse("/INBOX/;UID=7") == 0, "%s", why ? why : "");
    CHECK_STR(u.mailbox, "INBOX");
    CHECK(u.uid == 7 && u.uidvalidity == 0 && !u.partial && u.section[0] == '\0' && !u.user[0]);
    CHECK(parse("/Caf%26AOk-;uidvalidity=12345/;uid=3/;section=1.HEADER.FIELDS%20(From)/"
                ";partial=5.10") == 0);
    CHECK_STR(u.mailbox, "Caf&AOk-");
    CHECK(u.uidvalidity == 12345 && u.uid == 3);
    CHECK_STR(u.section, "1.HEADER.FIELDS (From)");
    CHECK(u.partial && u.partial_off == 5 && u.partial_len == 10);
    CHECK(parse("/a/b;UID=4/;PARTIAL=0") == 0 && u.uid == 4 && u.partial && !u.partial_len);
    CHECK_STR(u.mailbox, "a/b");
    CHECK(parse("imap://alice;AUTH=*@mail.example.org:143/Sent/;UID=2") == 0);
    CHECK_STR(u.user, "alice");
    CHECK_STR(u.mailbox, "Sent");
    CHECK(parse("IMAP://host/x/;UID=4294967295") == 0 && u.uid == 4294967295u && !u.user[0]);
}

static void bad(void)
{
    static const struct {
        const char *url, *why; /* a word the reason must hold */
    } cases[] = {
        {"", "empty"},
        {"INBOX/;UID=1", "imap://"},
        {"/INBOX", "no message"},
        {"/;UID=1", "no mailbox"},
        {"/INBOX/;UID=0", "UID"},
        {"/INBOX/;UID=4294967296", "UID"},
        {"/INBOX/;UID=x", "UID"},
        {"/INBOX;UIDVALIDITY=0/;UID=1", "UIDVALIDITY"},
        {"/IN%2BOX%4/;UID=1", "%-encoded"},
        {"/IN%00BOX/;UID=1", "%-encoded"},
        {"/INBOX/;UID=1/;SECTION=", "SECTION"},
        {"/INBOX/;UID=1/;PARTIAL=", "PARTIAL"},
        {"/INBOX/;UID=1/;PARTIAL=1.0", "PARTIAL"},
        {"/INBOX/;UID=1/;URLAUTH=anonymous:internal:01", "URLAUTH"},
        {"/INBOX/;UID=1/;EXPIRE=2030-01-01T00:00:00Z", "URLAUTH"},
        {"/INBOX/;UID=1/junk", "after"},
        {"imap://@host/INBOX/;UID=1", "user"},
        {"imap:///INBOX/;UID=1", "server"},
        {"imap://host", "mailbox"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = parse(cases[i].url);
        CHECK(rc == -1 && why && strstr(why, cases[i].why), "%s: %s", cases[i].url,
              why ? why : "accepted");
    }
    char big[IMAP_URL_MAX + 16];
    memset(big, 'a', sizeof big);
    memcpy(big, "/INBOX/;UID=1/;SECTION=", 23);
    CHECK(imap_url_parse(big, sizeof big, &u, &why) == -1, "an over-long URL");
    CHECK(imap_url_parse("/a\0b/;UID=1", 11, &u, &why) == -1, "a NUL");
}

int main(void)
{
    good();
    bad();
    return unit_finish();
}
