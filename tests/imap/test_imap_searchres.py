"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps the result as "$", which FETCH, STORE, COPY,
MOVE and SEARCH take as a sequence set, with UID or without."""
import re

from imapfix import server  # noqa: F401 (fixture)


def fill(c, n):
    for i in range(1, n + 1):
        m = b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.wait("ap")[1].startswith("OK")


def uids_of(lines):
    return [int(re.search(r"UID (\d+)", l).group(1)) for l in lines if " FETCH " in l]


def test_searchres(server):
    c = server.conn()
    assert " SEARCHRES" in c.ok("CAPABILITY")[0]
    fill(c, 6)
    c.ok("CREATE Dest")
    c.ok("SELECT INBOX")
    c.ok("STORE 2,4,5 +FLAGS.SILENT (\\Flagged)")
    u = c.ok("SEARCH RETURN (SAVE) FLAGGED")
    assert u == [], u  # SAVE alone: no ESEARCH, only OK
    assert uids_of(c.ok("FETCH $ UID")) == [2, 4, 5]
    assert uids_of(c.ok("UID FETCH $ UID")) == [2, 4, 5]  # the same messages with UID
    assert c.ok("SEARCH $")[0] == "* SEARCH 2 4 5"
    assert c.ok("SEARCH UID $ NOT 4")[0] == "* SEARCH 2 5"
    assert c.ok("SEARCH NOT $")[0] == "* SEARCH 1 3 6"
    c.ok("STORE $ +FLAGS.SILENT (\\Seen)")
    assert c.ok("SEARCH SEEN")[0] == "* SEARCH 2 4 5"
    c.ok("COPY $ Dest")
    assert "MESSAGES 3" in c.ok("STATUS Dest (MESSAGES)")[0]
    # the saved result follows expunges: what is gone is no longer in it
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    assert uids_of(c.ok("FETCH $ UID")) == [2, 5]
    # with MIN and MAX only, those are saved; with ALL the ESEARCH comes too
    u = c.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
    assert re.match(r"\* ESEARCH \(TAG \"\w+\"\) MIN 1 MAX 5", u[0]), u
    assert uids_of(c.ok("FETCH $ UID")) == [1, 6]
    u = c.ok("UID SEARCH RETURN (SAVE ALL) UID $ NOT SEEN")  # "$": the result before this one
    assert re.match(r"\* ESEARCH \(TAG \"\w+\"\) UID ALL 1,6$", u[0]), u
    assert uids_of(c.ok("FETCH $ UID")) == [1, 6]
    c.ok("SEARCH RETURN (SAVE) $ SEEN")  # neither is \Seen: an empty result
    assert c.ok("FETCH $ UID") == []
    c.ok("SEARCH RETURN (SAVE) ALL")
    # a failed SEARCH with SAVE leaves "$" empty; commands on an empty "$" do nothing
    c.bad("SEARCH RETURN (SAVE) FROBNICATE")
    assert c.ok("FETCH $ UID") == []
    c.ok("STORE $ +FLAGS (\\Answered)")
    assert c.ok("SEARCH ANSWERED")[0] == "* SEARCH"
    c.ok("SEARCH RETURN (SAVE) ALL")
    assert len(uids_of(c.ok("FETCH $ UID"))) == 5
    c.ok("MOVE $ Dest")
    assert c.ok("SEARCH ALL")[0] == "* SEARCH"
    c.ok("SELECT Dest")  # a new SELECT: "$" is empty again
    assert c.ok("FETCH $ UID") == []
