"""OBJECTID (RFC 8474) and SAVEDATE (RFC 8514): ids that follow a mailbox through RENAME and a
message's bytes through COPY and MOVE, and the date a message was stored in its mailbox."""
import re
import time

from imapfix import expect, server  # noqa: F401 (fixture)

MSG = b"From: a@example.org\r\nSubject: ids\r\n\r\nsame bytes\r\n"
OTHER = b"From: b@example.org\r\nSubject: other\r\n\r\nother bytes\r\n"


def append(c, box, data, date=None):
    d = f' "{date}"' if date else ""
    c.send(b"ap APPEND %s%s {%d+}\r\n" % (box.encode(), d.encode(), len(data)) + data + b"\r\n")
    u, t = c.wait("ap")
    assert t.startswith("OK"), t


def ids(lines, item):
    return [re.search(item + r" \(([A-Za-z0-9_-]+)\)", l).group(1) for l in lines if "FETCH" in l]


def test_mailboxid(server):
    c = server.conn()
    caps = c.ok("CAPABILITY")[0]
    assert " OBJECTID" in caps and " SAVEDATE" in caps, caps
    u, t = c.run("CREATE Work")
    m = re.match(r"OK \[MAILBOXID \(([A-Za-z0-9_-]{1,255})\)\]", t)
    assert m, t
    work = m.group(1)
    u = c.ok("SELECT Work")
    expect(u, r"\* OK \[MAILBOXID \(%s\)\] .*" % work)
    s = c.ok("STATUS INBOX (MAILBOXID MESSAGES)")
    inbox = re.search(r"MAILBOXID \(([^)]+)\)", s[0]).group(1)
    assert inbox != work
    c.ok("UNSELECT")
    c.ok("RENAME Work Job")  # the id stays with the mailbox
    assert f"MAILBOXID ({work})" in c.ok("STATUS Job (MAILBOXID)")[0]
    c.ok("DELETE Job")
    c.ok("CREATE Job")  # a new mailbox of the same name is another mailbox
    assert f"MAILBOXID ({work})" not in c.ok("STATUS Job (MAILBOXID)")[0]
    u = c.ok('LIST "" "INBOX" RETURN (STATUS (MAILBOXID))')
    assert any(f"MAILBOXID ({inbox})" in l for l in u), u


def test_emailid_threadid_and_search(server):
    c = server.conn()
    c.ok("CREATE Dest")
    append(c, "INBOX", MSG)
    append(c, "INBOX", OTHER)
    append(c, "INBOX", MSG)  # the same bytes again: the same EMAILID
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:3 (EMAILID THREADID)")
    e = ids(u, "EMAILID")
    assert e[0] == e[2] != e[1], e
    assert all("THREADID NIL" in l for l in u if "FETCH" in l), u
    c.ok("COPY 1 Dest")
    c.ok("MOVE 2 Dest")
    c.ok("SELECT Dest")
    assert ids(c.ok("FETCH 1:* EMAILID"), "EMAILID") == [e[0], e[1]]
    c.ok("SELECT INBOX")
    assert re.search(r"\* SEARCH 1 2$", c.ok(f"SEARCH EMAILID {e[0]}")[0])
    assert c.ok("SEARCH EMAILID Enosuchid")[0] == "* SEARCH"
    assert c.ok(f"SEARCH THREADID T{e[0][1:]}")[0] == "* SEARCH"
    for bad in ("SEARCH EMAILID", 'SEARCH EMAILID "a b"', "SEARCH EMAILID " + "x" * 256,
                "SEARCH EMAILID a+b"):
        c.bad(bad)


def test_savedate(server):
    c = server.conn()
    append(c, "INBOX", MSG, "01-Jan-2001 10:00:00 +0000")  # INTERNALDATE long ago
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1 (SAVEDATE INTERNALDATE)")
    m = re.search(r'SAVEDATE "(\d+)-(\w+)-(\d{4}) \d\d:\d\d:\d\d \+0000"', u[0])
    assert m, u
    today = time.strftime("%d-%b-%Y", time.gmtime())
    assert time.strftime("%Y", time.gmtime()) == m.group(3), u
    assert 'INTERNALDATE "01-Jan-2001' in u[0]
    assert c.ok(f"SEARCH SAVEDON {today}")[0] == "* SEARCH 1"
    assert c.ok(f"SEARCH SAVEDSINCE {today}")[0] == "* SEARCH 1"
    assert c.ok(f"SEARCH SAVEDBEFORE {today}")[0] == "* SEARCH"
    assert c.ok("SEARCH SAVEDBEFORE 1-Jan-2100 SINCE 1-Jan-2000 BEFORE 2-Jan-2001")[0] == \
        "* SEARCH 1"
    assert c.ok("SEARCH SAVEDATESUPPORTED")[0] == "* SEARCH 1"
    c.bad("SEARCH SAVEDON 31-Feb-2024")
