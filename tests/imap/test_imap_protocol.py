"""IMAP protocol transcripts against `mailfs serve` (in the manner of imaptest's scripts)."""
import re
import socket
import time

from imapfix import Conn, expect, none_match, server  # noqa: F401 (fixture)

MSG1 = (b"From: Bob Example <bob@example.com>\n"
        b"To: alice@example.com\n"
        b"Subject: hello there\n"
        b"Date: Mon, 3 Feb 2025 10:00:00 +0000\n"
        b"Message-ID: <m1@example.com>\n"
        b"\n"
        b"body line one\n"
        b"rareword here\n")
MSG2 = (b"From: carol@example.org\r\n"
        b"To: alice@example.com\r\n"
        b"Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"
        b"Date: Tue, 4 Feb 2025 11:00:00 +0100\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"caf=C3=A9 au lait\r\n"
        b"--b1\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"AAECAwQ=\r\n"
        b"--b1--\r\n")


def test_greeting_and_capabilities(server):
    c = server.conn(login=False)
    assert c.greeting.startswith("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert "STARTTLS" in c.greeting and "AUTH=PLAIN" in c.greeting  # loopback: allowed
    u = c.ok("CAPABILITY")
    expect(u, r"\* CAPABILITY .*LITERAL\+.*SASL-IR.*")
    c.bad("SELECT INBOX")  # not before login
    u, t = c.run('LOGIN alice "correct horse"')
    assert t.startswith("OK [CAPABILITY ") and "UIDPLUS" in t and "MOVE" in t
    u = c.ok("CAPABILITY")
    caps = u[0].split()[2:]
    for cap in ["IDLE", "UIDPLUS", "MOVE", "LITERAL+", "SASL-IR", "ENABLE", "ID", "NAMESPACE",
                "UNSELECT", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "BINARY",
                "CHILDREN", "STATUS=SIZE", "MULTIAPPEND"]:
        assert cap in caps, cap
    assert "STARTTLS" not in caps
    c.bad('LOGIN alice "correct horse"')  # already logged in
    u, t = c.run("LOGOUT")
    expect(u, r"\* BYE .*")
    assert t.startswith("OK")


def test_login_failures_are_delayed_and_logged(server):
    c = server.conn(login=False)
    t0 = time.time()
    c.no('LOGIN alice wrong', "AUTHENTICATIONFAILED")
    c.no('LOGIN alice wrong2', "AUTHENTICATIONFAILED")
    c.no('LOGIN nosuchuser x', "AUTHENTICATIONFAILED")
    elapsed = time.time() - t0
    assert elapsed >= 0.25 + 0.5, elapsed  # the second failure waits longer than the first
    # the right password still works (after the penalty)
    c.ok('LOGIN alice "correct horse"')
    # another connection from the same address is slowed too
    d = server.conn(login=False)
    t0 = time.time()
    d.no("LOGIN alice nope")
    assert time.time() - t0 >= 0.9
    c.close()
    d.close()
    server.proc.send_signal(15)
    server.proc.wait(10)
    log = server.stderr()
    assert "login failed for user 'alice' from 127.0.0.1" in log
    assert "login failed for user 'nosuchuser'" in log


def test_authenticate_plain(server):
    import base64
    c = server.conn(login=False)
    ir = base64.b64encode(b"\0alice\0correct horse").decode()
    c.ok(f"AUTHENTICATE PLAIN {ir}")
    d = server.conn(login=False)
    d.send("a AUTHENTICATE PLAIN\r\n")
    assert d.line().startswith("+")
    d.send(ir + "\r\n")
    assert d.line().startswith("a OK")
    e = server.conn(login=False)
    e.send("a AUTHENTICATE PLAIN\r\n")
    assert e.line().startswith("+")
    e.send("*\r\n")
    assert e.line().startswith("a BAD")
    bad = base64.b64encode(b"bob\0alice\0correct horse").decode()
    e.no(f"AUTHENTICATE PLAIN {bad}")
    e.no("AUTHENTICATE CRAM-MD5")


def test_pipelining_and_bytewise_input(server):
    c = server.conn(login=False)
    c.send('a1 NOOP\r\na2 LOGIN alice "correct horse"\r\na3 SELECT INBOX\r\na4 NOOP\r\n')
    for tag in ["a1", "a2", "a3", "a4"]:
        u, t = c.wait(tag)
        assert t.startswith("OK"), (tag, t)
    for ch in b"b1 STATUS INBOX (MESSAGES)\r\n":
        c.send(bytes([ch]))
        time.sleep(0.001)
    u, t = c.wait("b1")
    expect(u, r'\* STATUS "?INBOX"? \(MESSAGES 0\)')


def test_literals_and_limits(server):
    c = server.conn(login=False)
    c.send("a LOGIN {5}\r\n")
    assert c.line().startswith("+ ")
    c.send('alice "correct horse"\r\n')
    assert c.line().startswith("a OK")
    c.send("b STATUS {5+}\r\nINBOX (MESSAGES)\r\n")
    u, t = c.wait("b")
    assert t.startswith("OK")
    # a synchronizing literal over the limit is refused before it is sent
    c.send("c STATUS {100000000}\r\n")
    assert re.match(r"c NO \[TOOBIG\]", c.line())
    c.ok("NOOP")
    # a line over the limit
    c.send("d NOOP " + "x" * 70000 + "\r\n")
    assert c.line().startswith("d BAD")
    c.ok("NOOP")
    # nesting over the limit
    c.bad("SEARCH " + "(" * 40 + "ALL" + ")" * 40)
    c.ok("NOOP")
    # a non-synchronizing literal over the limit is skipped, not run as commands
    big = b"x NOOP\r\n" * 20000
    c.send(b"e STATUS {%d+}\r\n" % len(big) + big + b"\r\n")
    assert re.match(r"e NO \[TOOBIG\]", c.line())
    u, t = c.run("NOOP")
    assert t.startswith("OK") and not u
    c.bad("FROBNICATE")
    c.bad("UID FROBNICATE 1")


def test_mailboxes(server):
    c = server.conn()
    u = c.ok('LIST "" "*"')
    expect(u, r'\* LIST \(\\HasNoChildren\) "/" "?INBOX"?', r'\* LIST \(.*\\Sent.*\) "/" "?Sent"?',
           r'\* LIST \(.*\\Trash.*\) "/" "?Trash"?', r'\* LIST \(.*\\Drafts.*\) "/" "?Drafts"?',
           r'\* LIST \(.*\\Junk.*\) "/" "?Junk"?', r'\* LIST \(.*\\Archive.*\) "/" "?Archive"?')
    u = c.ok('LIST "" ""')
    expect(u, r'\* LIST \(\\Noselect\) "/" ""')
    c.ok("CREATE work/projects/mailfs")
    c.no("CREATE work", "ALREADYEXISTS")
    u = c.ok('LIST "" "work/%"')
    expect(u, r'\* LIST \(\\HasChildren\) "/" "?work/projects"?')
    assert len(u) == 1
    u = c.ok('LIST "" "w*"')
    assert len(u) == 3
    # modified UTF-7 for IMAP4rev1 clients
    c.ok('CREATE "Entw&APw-rfe"')
    u = c.ok('LIST "" "Entw*"')
    expect(u, r'\* LIST \(\\HasNoChildren\) "/" "?Entw&APw-rfe"?')
    c.no('CREATE "bad&AGE-"', "CANNOT")  # 'a' must not be encoded
    c.no('CREATE "bad&AOQ"', "CANNOT")  # unterminated
    c.ok('RENAME "Entw&APw-rfe" "Papierkorb-&AOQ-"')
    _, t = c.run('CREATE "Papierkorb-&AOQ-"')  # the NO names it as the client does, 7-bit
    assert t.startswith("NO [ALREADYEXISTS] Papierkorb-&AOQ-:") and t.isascii(), t
    u = c.ok('LIST "" "Papier*"')
    expect(u, r'.*"?Papierkorb-&AOQ-"?')
    c.ok("SUBSCRIBE work")
    u = c.ok('LSUB "" "*"')
    expect(u, r'\* LSUB \(\) "/" "?work"?')
    u = c.ok('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
    expect(u, r'\* LIST \(\\HasChildren \\Subscribed\) "/" "?work"?')
    c.ok("UNSUBSCRIBE work")
    u = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert len(u) == 5
    u = c.ok('LIST "" "INBOX" RETURN (STATUS (MESSAGES UIDNEXT SIZE))')
    expect(u, r'\* LIST .*INBOX"?', r'\* STATUS "?INBOX"? \(MESSAGES 0 UIDNEXT 1 SIZE 0\)')
    c.no("DELETE work", "HASCHILDREN")
    c.ok("DELETE work/projects/mailfs")
    c.no("DELETE nosuch", "NONEXISTENT")
    c.no("DELETE INBOX")
    u = c.ok("NAMESPACE")
    expect(u, r'\* NAMESPACE \(\(\"\" \"/\"\)\) NIL NIL')
    # UTF-8 names after ENABLE UTF8=ACCEPT
    u = c.ok("ENABLE UTF8=ACCEPT")
    expect(u, r"\* ENABLED UTF8=ACCEPT")
    u = c.ok('LIST "" "Papier*"')
    expect(u, r'.*"Papierkorb-ä"')
    c.ok('CREATE "Grüße"')
    d = server.conn()
    u = d.ok('LIST "" "Gr*"')
    expect(u, r'.*"?Gr&APwA3w-e"?')


def test_empty_message_is_a_message_every_way_in(server):
    """One rule for APPEND, deliver and the importer: a zero-byte message is stored and served
    (a backup restored through IMAP, doveadm import, failed a whole mailbox on it)."""
    c = server.conn()
    c.send(b"a APPEND INBOX {0}\r\n")
    assert c.line().startswith("+")
    c.send(b"\r\n")
    u, t = c.wait("a")
    assert t.startswith("OK [APPENDUID"), t
    c.send(b"b APPEND INBOX (\\Seen) {0+}\r\n\r\n")
    assert c.wait("b")[1].startswith("OK [APPENDUID"), t
    server.deliver(b"")
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:* (RFC822.SIZE BODY.PEEK[] BINARY.SIZE[1])")
    assert len(u) == 3 and all("RFC822.SIZE 0 BODY[] {0}" in l and "BINARY.SIZE[1] 0" in l
                               for l in u), u


def test_append_and_fetch(server):
    c = server.conn(select="INBOX")
    # with LITERAL+ the literal follows at once
    c.send(b'ap APPEND INBOX (\\Seen $Important) "03-Feb-2025 10:00:00 +0100" {%d+}\r\n' %
           len(MSG1) + MSG1 + b"\r\n")
    u, t = c.wait("ap")
    m = re.match(r"OK \[APPENDUID (\d+) 1\]", t)
    assert m, t
    uidvalidity = m.group(1)
    expect(u, r"\* 1 EXISTS")
    c.send(b"m APPEND INBOX {%d}\r\n" % len(MSG2))
    assert c.line().startswith("+")
    c.send(MSG2 + b" {3}\r\n")
    assert c.line().startswith("+")
    c.send(b"abc\r\n")  # MULTIAPPEND: a second message in the same command
    u, t = c.wait("m")
    assert re.match(rf"OK \[APPENDUID {uidvalidity} 2:3\]", t), t
    c.no("APPEND nosuch {1+}\r\nx", "TRYCREATE")
    u, t = c.run("APPEND Drafts UTF8 (~{5+}\r\nSu: x)")   # RFC 6855 form
    assert t.startswith("OK [APPENDUID"), t
    u = c.ok("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
    size = len(MSG1.replace(b"\n", b"\r\n"))
    expect(u, r'\* 1 FETCH \(UID 1 FLAGS \(\\Seen \$Important \\Recent\) INTERNALDATE '
              r'"03-Feb-2025 10:00:00 \+0100" RFC822.SIZE %d\)' % size)
    u = c.ok("FETCH 1 ENVELOPE")
    expect(u, r'\* 1 FETCH \(ENVELOPE \("Mon, 3 Feb 2025 10:00:00 \+0000" "hello there" '
              r'\(\("Bob Example" NIL "bob" "example.com"\)\) .*"<m1@example.com>"\)\)')
    # bare LF is sent as CRLF, and sizes count CRLF
    u = c.ok("FETCH 1 BODY.PEEK[]")
    assert u[0].endswith(MSG1.replace(b"\n", b"\r\n").decode() + ")")
    assert "{%d}" % size in u[0]
    u = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject FROM)])")
    assert "BODY[HEADER.FIELDS (SUBJECT FROM)] {" in u[0]
    assert u[0].endswith("From: Bob Example <bob@example.com>\r\nSubject: hello there\r\n\r\n)")
    u = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date Message-ID)])")
    assert u[0].endswith("{2}\r\n\r\n)"), u
    u = c.ok("FETCH 1 BODY.PEEK[TEXT]<5.9>")
    assert u[0].endswith("BODY[TEXT]<5> {9}\r\nline one\r)"), u
    u = c.ok("FETCH 1 RFC822.HEADER")
    assert "RFC822.HEADER {" in u[0]
    u = c.ok("FETCH 2 (BODYSTRUCTURE)")
    assert re.search(r'BODYSTRUCTURE \(\("text" "plain" \("charset" "utf-8"\) NIL NIL '
                     r'"quoted-printable" \d+ \d+.*"mixed"', u[0], re.I), u
    u = c.ok("FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[1] BINARY.SIZE[2])")
    assert "BODY[1] {" in u[0] and "caf=C3=A9 au lait" in u[0]
    assert "BINARY[1] {" in u[0] and "café au lait" in u[0]
    assert "BINARY.SIZE[2] 5" in u[0]
    assert "BODY[2.MIME] {" in u[0] and "application/octet-stream" in u[0]
    u = c.ok("FETCH 2 BINARY.PEEK[1]<5>")   # origin only: to the end (as Dovecot takes it)
    assert u[0].endswith("BINARY[1]<5> {8}\r\n au lait)"), u  # "café" is 5 bytes
    c.bad("FETCH 2 BINARY.PEEK[1]<x>")
    u = c.ok("FETCH 2 BINARY.PEEK[2]")
    assert "BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04" in u[0]
    # FETCH without PEEK sets \Seen and says so
    u = c.ok("FETCH 3 BODY[]")
    assert "FLAGS (\\Seen \\Recent)" in u[0]
    u = c.ok("UID FETCH 1:* (FLAGS)")
    assert len(u) == 3 and all("UID" in l for l in u)
    c.bad("FETCH 1 (FROB)")
    c.bad("FETCH 0 FLAGS")
    c.bad("FETCH 9 FLAGS")
    u = c.ok("UID FETCH 9:* FLAGS")   # n:* with n past the end: the last message
    assert len(u) == 1 and "UID 3" in u[0]
    u = c.ok("FETCH 1:* FAST")
    assert len(u) == 3


def test_store_search_copy_move_expunge(server):
    c = server.conn(select="INBOX")
    server.deliver(MSG1)
    server.deliver(MSG2)
    server.deliver(b"Subject: third\n\nnothing to see\n")
    u = c.ok("NOOP")
    expect(u, r"\* 3 EXISTS")
    c.ok("UNSELECT")
    c.ok("SELECT INBOX")  # the first SELECT took them as \Recent; now they are not
    u = c.ok("STORE 1 +FLAGS (\\Flagged)")
    expect(u, r"\* 1 FETCH \(FLAGS \(\\Flagged\)\)")
    u = c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert not u
    u = c.ok("UID STORE 3 FLAGS (\\Deleted custom)")
    expect(u, r"\* 3 FETCH \(FLAGS \(\\Deleted custom\) UID 3\)")
    u = c.ok("STORE 1:3 -FLAGS (custom)")
    assert len(u) == 3
    def search(q):
        u = c.ok("SEARCH " + q)
        m = [l for l in u if l.startswith("* SEARCH")]
        assert len(m) == 1, u
        return m[0][len("* SEARCH"):].split()
    assert search("ALL") == ["1", "2", "3"]
    assert search("FLAGGED") == ["1"]
    assert search("UNSEEN") == ["1", "3"]
    assert search("DELETED") == ["3"]
    assert search("NOT DELETED") == ["1", "2"]
    assert search("OR FLAGGED SEEN") == ["1", "2"]
    assert search("FROM bob") == ["1"]
    assert search("SUBJECT grüße".encode("latin-1", "replace").decode("latin-1")) in ([], ["2"])
    assert search('CHARSET UTF-8 SUBJECT "Grüße"') == ["2"]   # RFC 2047 decoded
    assert search("BODY rareword") == ["1"]
    assert search("BODY café") == ["2"]                       # quoted-printable decoded
    assert search("TEXT hello") == ["1"]
    assert search('HEADER Message-ID "<m1@"') == ["1"]
    assert search("SENTON 3-Feb-2025") == ["1"]
    assert search("SENTSINCE 4-Feb-2025") == ["2"]
    assert search("SENTBEFORE 4-Feb-2025") == ["1"]
    assert search("LARGER 100 SMALLER 200") == ["1"]
    assert search("2:3") == ["2", "3"]
    assert search("UID 1,3") == ["1", "3"]
    assert search("(FLAGGED) (NOT SEEN)") == ["1"]
    assert search("SINCE 1-Jan-2020") == ["1", "2", "3"]
    assert search("BEFORE 1-Jan-2020") == []
    assert search("NEW") == []
    u = c.ok("SEARCH RETURN (MIN MAX COUNT ALL) NOT DELETED")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) MIN 1 MAX 2 COUNT 2 ALL 1:2')
    u = c.ok("UID SEARCH RETURN () ALL")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) UID ALL 1:3')
    u = c.ok("SEARCH RETURN (COUNT) KEYWORD nosuch")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) COUNT 0')
    c.no("SEARCH CHARSET KOI8-R ALL", "BADCHARSET")
    c.bad("SEARCH FROB")
    c.bad("SEARCH OR FLAGGED")
    u, t = c.run("COPY 1:2 Archive")
    assert re.match(r"OK \[COPYUID \d+ 1:2 1:2\]", t), t
    u, t = c.run("MOVE 2 Trash")
    expect(u, r"\* OK \[COPYUID \d+ 2 1\] .*", r"\* 2 EXPUNGE")
    c.no("COPY 1 nosuch", "TRYCREATE")
    u = c.ok("EXPUNGE")
    expect(u, r"\* 2 EXPUNGE")   # the message with \Deleted (was 3, now 2)
    u = c.ok("FETCH 1:* UID")
    assert len(u) == 1 and "UID 1" in u[0]
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    u = c.ok("UID EXPUNGE 5:9")
    assert not u
    u = c.ok("UID EXPUNGE 1")
    expect(u, r"\* 1 EXPUNGE")
    u = c.ok("STATUS Archive (MESSAGES UNSEEN DELETED)")
    expect(u, r'\* STATUS "?Archive"? \(MESSAGES 2 UNSEEN 1 DELETED 0\)')
    # EXAMINE is read-only
    u, t = c.run("EXAMINE Archive")
    assert "[READ-ONLY]" in t
    c.no("STORE 1 +FLAGS (\\Seen)")
    u = c.ok("FETCH 1 BODY[]")
    assert "FLAGS" not in u[0]    # no implicit \Seen when read-only
    c.ok("CLOSE")
    c.bad("FETCH 1 FLAGS")


def test_close_expunges_unselect_does_not(server):
    server.deliver(MSG1)
    server.deliver(MSG1)
    c = server.conn(select="INBOX")
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("UNSELECT")
    u = c.ok("STATUS INBOX (MESSAGES)")
    expect(u, r".*MESSAGES 2\)")
    c.ok("SELECT INBOX")
    c.ok("CLOSE")
    u = c.ok("STATUS INBOX (MESSAGES)")
    expect(u, r".*MESSAGES 1\)")


def test_two_sessions_see_each_others_changes(server):
    server.deliver(MSG1)
    server.deliver(MSG1)
    server.deliver(MSG1)
    a = server.conn(select="INBOX")
    b = server.conn(select="INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    u = b.ok("NOOP")
    expect(u, r"\* 2 FETCH \(UID 2 FLAGS \(\\Answered\)\)")
    u = a.ok("NOOP")
    none_match(u, r".*FETCH.*")  # no echo of our own change
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    # b may not hear of the expunge during FETCH/STORE/SEARCH by sequence number
    u = b.ok("FETCH 1:* UID")   # the UID of an unannounced expunge is still known
    none_match(u, r"\* \d+ EXPUNGE")
    expect(u, r"\* 1 FETCH \(UID 1\)", r"\* 2 FETCH \(UID 2\)", r"\* 3 FETCH \(UID 3\)")
    u, t = b.run("FETCH 1:* FLAGS")
    assert t.startswith("NO [EXPUNGEISSUED] some of the requested messages no longer exist"), t
    u, t = b.run("STORE 1:* +FLAGS.SILENT (\\Flagged)")  # the others' flags are stored
    assert t.startswith("OK [EXPUNGEISSUED]"), t
    none_match(u, r"\* \d+ EXPUNGE")
    u = b.ok("SEARCH ALL")
    none_match(u, r"\* \d+ EXPUNGE")
    expect(u, r"\* SEARCH 1 2 3|\* SEARCH 2 3")
    # ... but UID commands and NOOP may send it
    u = b.ok("NOOP")
    expect(u, r"\* 1 EXPUNGE")
    u = b.ok("FETCH 1:* UID")
    assert len(u) == 2
    a.ok("APPEND INBOX {3+}\r\nxyz")
    u = b.ok("NOOP")
    expect(u, r"\* 3 EXISTS")


def test_deleted_selected_mailbox(server):
    a = server.conn()
    a.ok("CREATE tmp")
    b = server.conn(select="tmp")
    a.ok("DELETE tmp")
    b.send("x NOOP\r\n")
    l = b.line()
    assert l.startswith("* BYE")


def test_id_enable_and_rev2(server):
    c = server.conn()
    u = c.ok('ID ("name" "pytest")')
    expect(u, r'\* ID \("name" "mailfs" .*\)')
    u = c.ok("ENABLE IMAP4rev2")
    expect(u, r"\* ENABLED IMAP4rev2")
    server.deliver(MSG1)
    u = c.ok("SELECT INBOX")
    none_match(u, r"\* \d+ RECENT")
    u = c.ok("SEARCH ALL")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) ALL 1')


def test_idle_push_is_prompt(server):
    c = server.conn(select="INBOX")
    c.send("i IDLE\r\n")
    assert c.line().startswith("+")
    for n in range(1, 4):
        t0 = time.monotonic()
        server.deliver(MSG1)
        t1 = time.monotonic()
        l = c.line(timeout=5)
        t2 = time.monotonic()
        assert l == f"* {n} EXISTS", l
        assert c.line() == f"* {n} RECENT"
        assert t2 - t1 < 0.5, f"EXISTS came {1000 * (t2 - t1):.1f} ms after deliver returned"
    # flags and expunges from another session arrive during IDLE too
    o = server.conn(select="INBOX")
    o.ok("STORE 2 +FLAGS (\\Flagged)")
    assert c.line(timeout=2) == "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    o.ok("STORE 1 +FLAGS (\\Deleted)")
    assert c.line(timeout=2).startswith("* 1 FETCH")
    o.ok("EXPUNGE")
    assert c.line(timeout=2) == "* 1 EXPUNGE"
    c.send("DONE\r\n")
    assert c.line().startswith("i OK")


def test_examine_then_select_closed_code(server):
    c = server.conn()
    c.ok("EXAMINE INBOX")
    u = c.ok("SELECT INBOX")
    expect(u, r"\* OK \[CLOSED\].*", r"\* 0 EXISTS", r"\* OK \[UIDVALIDITY \d+\].*",
           r"\* OK \[UIDNEXT 1\].*", r"\* FLAGS \(.*\)", r"\* OK \[PERMANENTFLAGS \(.*\\\*\)\].*")


def test_many_connections(server):
    conns = [server.conn(select="INBOX") for _ in range(30)]
    server.deliver(MSG1)
    for c in conns:
        u = c.ok("NOOP")
        expect(u, r"\* 1 EXISTS")
    for c in conns:
        c.close()


def test_plain_login_refused_off_loopback_is_documented():
    # The listeners in these tests are on loopback, where logins are allowed without TLS.
    # Off loopback, LOGINDISABLED is advertised and LOGIN answers NO [PRIVACYREQUIRED]:
    # covered by reading imap_auth_allowed(); a non-loopback address is not available here.
    pass


def test_recent(server):
    """Ported from imaptest's 'select' script: the first session to see a message has it as
    \\Recent (this server keeps that per process)."""
    c = server.conn()
    c.ok("CREATE box")
    c.ok("APPEND box {3+}\r\nabc")
    c.ok("APPEND box (\\Seen) {3+}\r\nabc")
    u = c.ok("SELECT box")
    expect(u, r"\* 2 EXISTS", r"\* 2 RECENT", r"\* OK \[UNSEEN 1\].*")
    u = c.ok("FETCH 1:2 FLAGS")
    expect(u, r"\* 1 FETCH \(FLAGS \(\\Recent\)\)", r"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\)\)")
    u = c.ok("SEARCH NEW")
    expect(u, r"\* SEARCH 1")
    d = server.conn()
    u = d.ok("STATUS box (RECENT)")
    expect(u, r'\* STATUS "?box"? \(RECENT 0\)')
    u = d.ok("SELECT box")
    expect(u, r"\* 0 RECENT")
    u = d.ok("SEARCH OLD")
    expect(u, r"\* SEARCH 1 2")
    u = d.ok("APPEND box {3+}\r\nxyz")
    expect(u, r"\* 3 EXISTS", r"\* 1 RECENT")
    u = c.ok("NOOP")
    expect(u, r"\* 3 EXISTS", r"\* 2 RECENT")


def test_idle_keepalive(alice):
    from imapfix import start_server, stop_server
    srv = start_server(alice, extra=("--idle-keepalive", "1"))
    try:
        c = srv.conn(select="INBOX")
        c.send("i IDLE\r\n")
        assert c.line().startswith("+")
        t0 = time.monotonic()
        assert c.line(timeout=4) == "* OK Still here"
        assert c.line(timeout=4) == "* OK Still here"
        assert 1.5 < time.monotonic() - t0 < 4
        c.send("DONE\r\n")
        assert c.line().startswith("i OK")
    finally:
        stop_server(srv)


def test_idle_push_not_delayed_by_logins(server):
    """Password hashing runs off the event loop: logins in flight do not hold up a push."""
    c = server.conn(select="INBOX")
    c.send("i IDLE\r\n")
    assert c.line().startswith("+")
    others = [server.conn(login=False) for _ in range(6)]
    for o in others:
        o.send('l LOGIN alice "correct horse"\r\n')
    time.sleep(0.01)
    server.deliver(MSG1)
    t1 = time.monotonic()
    assert c.line(timeout=5) == "* 1 EXISTS"
    assert time.monotonic() - t1 < 0.5
    for o in others:
        assert o.wait("l")[1].startswith("OK")


def test_error_texts_cannot_forge_responses(server):
    c = server.conn(select="INBOX")
    c.send(b"a SEARCH CHARSET {14+}\r\nX\r\n* 99 EXISTS ALL\r\n")
    u, t = c.wait("a")
    assert t.startswith("NO [BADCHARSET"), t
    assert "\r" not in t and "\n" not in t
    none_match(u, r"\* 99 EXISTS")
    c.send(b"b STATUS INBOX ({9+}\r\nX\r\nb OK x)\r\n")
    u, t = c.wait("b")
    assert t.startswith("BAD"), t
    u = c.ok("NOOP")
    assert not u


def test_push_reaches_idle_sessions_on_every_loop(alice):
    """With several event loops, a change reaches IDLE sessions on all of them."""
    from imapfix import start_server, stop_server
    srv = start_server(alice, extra=("--loops", "3"))
    try:
        conns = [srv.conn(select="INBOX") for _ in range(12)]
        for c in conns:
            c.send("i IDLE\r\n")
            assert c.line().startswith("+")
        srv.deliver(MSG1)
        t1 = time.monotonic()
        for c in conns:
            assert c.line(timeout=5) == "* 1 EXISTS"
        assert time.monotonic() - t1 < 0.5
        # STORE on one session shows as FETCH on all the others
        a = srv.conn(select="INBOX")
        a.ok("STORE 1 +FLAGS (\\Flagged)")
        for c in conns:
            l = c.line(timeout=5)
            if l.endswith("RECENT"):
                l = c.line(timeout=5)
            assert re.fullmatch(r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged( \\Recent)?\)\)", l), l
        for c in conns:
            c.send("DONE\r\n")
            assert c.wait("i")[1].startswith("OK")
    finally:
        stop_server(srv)


def test_status_size_counts_crlf(server):
    """STATUS SIZE is the sum of RFC822.SIZE: a bare-LF message counts each LF as CRLF, and the
    total follows appends and expunges without rescanning the mailbox."""
    server.deliver(b"Subject: lf\n\none\ntwo\n")            # 21 bytes, 4 LF -> 25
    server.deliver(b"Subject: crlf\r\n\r\nbody\r\n")          # 23 bytes already CRLF
    c = server.conn()
    u = c.ok("STATUS INBOX (MESSAGES SIZE)")
    expect(u, r'\* STATUS "?INBOX"? \(MESSAGES 2 SIZE 48\)')
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:* RFC822.SIZE")
    expect(u, r'\* 1 FETCH \(RFC822.SIZE 25\)', r'\* 2 FETCH \(RFC822.SIZE 23\)')
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    u = c.ok("STATUS INBOX (SIZE)")
    expect(u, r'\* STATUS "?INBOX"? \(SIZE 23\)')


MSG_PARTS = (b"From: dave@example.net\r\n"
             b"To: alice@example.com\r\n"
             b"Subject: parts\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"pp\"\r\n"
             b"\r\n"
             b"preamble-only-word\r\n"
             b"--pp\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             # "the base64wordinside text"
             b"dGhlIGJhc2U2NHdvcmRpbnNpZGUgdGV4dA==\r\n"
             b"--pp\r\n"
             b"Content-Type: text/plain; charset=iso-8859-1\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n"
             b"\r\n"
             b"na\xefve latin\r\n"
             b"--pp\r\n"
             b"Content-Type: message/rfc822\r\n"
             b"\r\n"
             b"Subject: =?utf-8?q?innersubj=C3=A9ct?=\r\n"
             b"\r\n"
             b"inner body word\r\n"
             b"--pp\r\n"
             b"Content-Type: application/octet-stream; name=\"report-q3.pdf\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"\r\n"
             # "attachmentsecret" in base64, and a raw word that is not text
             b"YXR0YWNobWVudHNlY3JldA==\r\n"
             b"--pp--\r\n"
             b"epilogue-only-word\r\n")


def test_search_text_walks_mime_parts(server):
    """BODY and TEXT search what a reader sees: text parts decoded (base64, charsets), MIME
    and nested message headers (RFC 2047 decoded); not attachments' bodies, preambles or
    epilogues (as Dovecot does)."""
    c = server.conn(select="INBOX")
    server.deliver(MSG_PARTS)
    server.deliver(b"Subject: other\n\nnothing\n")
    c.ok("NOOP")

    def search(q):
        u = c.ok("UID SEARCH " + q)
        m = [l for l in u if l.startswith("* SEARCH")]
        assert len(m) == 1, u
        return m[0][len("* SEARCH"):].split()
    assert search("BODY base64wordinside") == ["1"]           # base64 text part, decoded
    assert search("TEXT BASE64WORDINSIDE") == ["1"]           # any case
    assert search('CHARSET UTF-8 BODY "naïve"') == ["1"]      # latin-1 converted to UTF-8
    assert search("BODY innersubj") == ["1"]                  # nested message header
    assert search('CHARSET UTF-8 TEXT "innersubjéct"') == ["1"]  # ... RFC 2047 decoded
    assert search("BODY report-q3") == ["1"]                  # a MIME header of a part
    assert search("BODY attachmentsecret") == []              # an attachment is not text
    assert search("BODY YXR0YWNobWVudHNlY3JldA") == []        # nor its encoded bytes
    assert search("BODY preamble-only-word") == []
    assert search("TEXT dave@example") == ["1"]               # the message header
    assert search("BODY dave@example") == []                  # BODY: not the header
    assert search("TEXT nothing") == ["2"]


def test_create_special_use(server):
    """CREATE-SPECIAL-USE (RFC 6154 3): a real mailbox with a use; virtual ones (\\All,
    \\Flagged) and unknown uses get NO [USE], malformed parameters BAD."""
    c = server.conn()
    u, t = c.run("CAPABILITY")
    assert " CREATE-SPECIAL-USE" in u[0], u
    c.ok('CREATE "Sent Items" (USE (\\Sent))')
    c.ok("CREATE Old/Bin (use (\\trash \\Archive))")
    u = c.ok('LIST "" "*" RETURN (SPECIAL-USE)')
    expect(u, r'\* LIST \(.*\\Sent.*\) "/" "Sent Items"', r'\* LIST \(.*\\Trash.*\) "/" "?Old/Bin"?')
    assert any("Old/Bin" in l and "\\Archive" in l for l in u), u
    assert any(l.endswith('"Old"') or l.endswith(" Old") for l in u), u  # the parent, no use
    assert not any(("Old\"" in l or l.endswith(" Old")) and "\\Trash" in l for l in u), u
    for bad_use in ("\\All", "\\Flagged", "\\Important", "Sent"):
        c.no(f"CREATE v1 (USE ({bad_use}))", "USE")
    for bad in ("CREATE v2 (USE \\Sent)", "CREATE v2 (FOO (bar))", "CREATE v2 (USE)",
                "CREATE v2 USE"):
        c.bad(bad)
    assert not any("v1" in l or "v2" in l for l in c.ok('LIST "" "*"'))


def test_search_key_limit_is_named(server):
    """Past 1,000 search keys SEARCH answers BAD saying so, whichever key goes over (ALL, NEW,
    nested lists included), and the session goes on."""
    c = server.conn(select="INBOX")
    for keys in ("ALL " * 1001, "NEW " * 400, "(" + "SEEN " * 1001 + ")", "OR ALL (" + "OLD " * 600 + ")"):
        u, t = c.run("SEARCH " + keys.strip())
        assert t.startswith("BAD too many search keys: at most 1000"), (keys[:20], t)
    c.ok("SEARCH " + ("ALL " * 999).strip())


def test_a_store_that_changes_nothing_does_not_hide_another_sessions_change(server):
    """A STORE that finds the message as asked makes no change of its own, so the change
    another session made meanwhile is still pushed to it."""
    server.deliver(MSG1)
    a = server.conn(select="INBOX")
    b = server.conn(select="INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged $Work)")
    u = a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")  # already so: nothing to do
    u += a.ok("NOOP")
    expect(u, r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \$Work( \\Recent)?\)\)")
