"""Expectations of Dovecot imaptest's scripted tests (src/tests/*), rewritten as transcripts
for this suite: search-sets, expunge, expunge2, fetch-body partials, list, copy, move."""
import re

from imapfix import expect, none_match, server  # noqa: F401 (fixture)


def fill(c, n, box="INBOX"):
    for i in range(1, n + 1):
        msg = (f"From: User{i} <user{i}@domain.org>\nDate: Sat, 24 Mar 2007 23:00:00 +0200\n"
               f"Subject: s{i}\n\nbody{i}\n").encode()
        c.send(b"ap APPEND %s {%d+}\r\n" % (box.encode(), len(msg)) + msg + b"\r\n")
        u, t = c.wait("ap")
        assert t.startswith("OK"), t


def search(c, q):
    u = c.ok(q)
    m = [l for l in u if l.startswith("* SEARCH")]
    assert len(m) == 1, u
    return [int(x) for x in m[0].split()[2:]]


def test_search_sets(server):
    c = server.conn()
    fill(c, 6)
    c.ok("SELECT INBOX")
    uids = search(c, "UID SEARCH ALL")
    assert len(uids) == 6
    uidnext = uids[-1] + 1
    c.ok("STORE 2 +FLAGS \\Deleted")
    u = c.ok("EXPUNGE")
    expect(u, r"\* 2 EXPUNGE")
    u1, u3, u4, u5, u6 = uids[0], uids[2], uids[3], uids[4], uids[5]
    assert search(c, "SEARCH ALL") == [1, 2, 3, 4, 5]
    assert search(c, "UID SEARCH ALL") == [u1, u3, u4, u5, u6]
    assert search(c, "SEARCH 1:3,5") == [1, 2, 3, 5]
    assert search(c, "SEARCH 4:2") == [2, 3, 4]
    assert search(c, f"SEARCH UID {u1}:{u3},{u5}") == [1, 2, 4]
    assert search(c, f"SEARCH UID {u4}:{uids[1]}") == [2, 3]
    assert search(c, f"SEARCH 1:3 NOT UID {u3}") == [1, 3]
    assert search(c, "SEARCH NOT 2,4") == [1, 3, 5]
    assert search(c, f"SEARCH OR 1 UID {u3}") == [1, 2]
    assert search(c, "SEARCH *") == [5]
    assert search(c, "SEARCH UID *") == [5]
    assert search(c, "SEARCH 6:*") == [5]
    assert search(c, "SEARCH *:6") == [5]
    assert search(c, f"SEARCH UID {uidnext}:*") == [5]
    assert search(c, "SEARCH *:3") == [3, 4, 5]
    assert search(c, "SEARCH 1,4,*") == [1, 4, 5]


def test_expunge_two_connections(server):
    c1 = server.conn()
    fill(c1, 3)
    c1.ok("SELECT INBOX")
    c2 = server.conn(select="INBOX")
    u = c1.ok("FETCH * UID")
    expect(u, r"\* 3 FETCH \(UID 3\)")
    u = c1.ok("STORE 3 FLAGS \\Deleted")
    expect(u, r"\* 3 FETCH \(FLAGS \(\\Deleted( \\Recent)?\)\)")
    u = c1.ok("EXPUNGE")
    expect(u, r"\* 3 EXPUNGE")
    u = c2.ok("FETCH 3 UID")   # the session still sees it: its UID is known
    expect(u, r"\* 3 FETCH \(UID 3\)")
    none_match(u, r".*EXPUNGE")
    u = c2.ok("NOOP")
    expect(u, r"\* 3 EXPUNGE")


def test_expunge2_uid_commands_may_expunge(server):
    c1 = server.conn()
    fill(c1, 6)
    c1.ok("SELECT INBOX")
    c2 = server.conn(select="INBOX")
    u = c1.ok("FETCH 2,4 UID")
    expect(u, r"\* 2 FETCH \(UID 2\)", r"\* 4 FETCH \(UID 4\)")
    # 1) UID FETCH
    c1.ok("STORE 1,3 +FLAGS \\Deleted")
    u = c1.ok("EXPUNGE")
    assert u in (["* 1 EXPUNGE", "* 2 EXPUNGE"], ["* 3 EXPUNGE", "* 1 EXPUNGE"]), u
    u = c2.ok("UID FETCH 2,4 UID")
    fetched = [l for l in u if "FETCH" in l]
    assert len(fetched) == 2, u
    c2.ok("NOOP")
    # 2) UID STORE
    c1.ok("STORE 1 +FLAGS \\Deleted")
    u = c1.ok("EXPUNGE")
    expect(u, r"\* 1 EXPUNGE")
    u = c2.ok("UID STORE 4 FLAGS \\Seen")
    expect(u, r"\* \d FETCH \(FLAGS \(\\Seen\) UID 4\)")
    c2.ok("NOOP")
    # CHECK works as NOOP does
    c1.ok("STORE 1 +FLAGS \\Deleted")
    u = c1.ok("EXPUNGE")
    expect(u, r"\* 1 EXPUNGE")
    u = c2.ok("CHECK")
    expect(u, r"\* 1 EXPUNGE")


def test_fetch_body_partials(server):
    c = server.conn()
    fill(c, 4)
    c.ok("SELECT INBOX")
    hdr1 = ("From: User1 <user1@domain.org>\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
            "Subject: s1\r\n\r\n")
    u = c.ok("FETCH 1 RFC822.HEADER")
    assert u[0] == "* 1 FETCH (RFC822.HEADER {%d}\r\n%s)" % (len(hdr1), hdr1)
    u = c.ok("FETCH 1 BODY.PEEK[HEADER]")
    assert u[0] == "* 1 FETCH (BODY[HEADER] {%d}\r\n%s)" % (len(hdr1), hdr1)
    u = c.ok("FETCH 1 (FLAGS BODY.PEEK[TEXT])")
    assert re.fullmatch(r"\* 1 FETCH \(FLAGS \(\\Recent\) BODY\[TEXT\] \{7\}\r\nbody1\r\n\)",
                        u[0]), u
    u = c.ok("FETCH 1 RFC822.TEXT")
    assert "RFC822.TEXT {7}\r\nbody1\r\n" in u[0] and "\\Seen" in u[0]
    u = c.ok("FETCH 3 (BODY[])")
    assert "\\Seen" in u[0]
    # the text is "body3\n" stored, "body3\r\n" sent: partials count the CRLF form
    for spec, want in [("<0.1>", "b"), ("<4.1>", "3"), ("<4.2>", "3\r"), ("<4.3>", "3\r\n"),
                       ("<5.1>", "\r"), ("<5.2>", "\r\n"), ("<6.1>", "\n"), ("<7.5>", "")]:
        u = c.ok(f"FETCH 3 BODY.PEEK[TEXT]{spec}")
        origin = spec[1:].split(".")[0]
        assert u[0] == "* 3 FETCH (BODY[TEXT]<%s> {%d}\r\n%s)" % (origin, len(want), want), \
            (spec, u)
    u = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (from)]")
    assert u[0].endswith("{34}\r\nFrom: User1 <user1@domain.org>\r\n\r\n)"), u
    u = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (from subject)]")
    assert u[0].endswith("From: User1 <user1@domain.org>\r\nSubject: s1\r\n\r\n)"), u
    u = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (date)]")
    assert "Date:" not in u[0] and "Subject: s1" in u[0]
    u = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (xyz)]")
    assert u[0].endswith("{2}\r\n\r\n)"), u


def test_list_patterns(server):
    c1 = server.conn()
    c2 = server.conn()
    c3 = server.conn()
    u = c1.ok('LIST "" ""')
    expect(u, r'\* LIST \(\\Noselect\) "/" ""')
    c1.ok("CREATE box/")
    c1.ok("CREATE box/test")
    u = c2.ok('LIST "" box/%')
    expect(u, r'\* LIST \(.*\) "/" "?box/test"?')
    c2.ok("CREATE box/test2")
    c3.ok("CREATE box/test3/")
    c2.ok("CREATE box/test3/test4/")
    c2.ok("CREATE box/test3/test4/test5")
    names = lambda u: sorted(re.search(r'"/" "?([^"]*)"?$', l).group(1) for l in u)
    assert names(c2.ok('LIST "" box/%')) == ["box/test", "box/test2", "box/test3"]
    assert names(c3.ok('LIST "" box/%/%')) == ["box/test3/test4"]
    assert names(c3.ok('LIST "" box/*')) == ["box/test", "box/test2", "box/test3",
                                             "box/test3/test4", "box/test3/test4/test5"]
    assert names(c3.ok('LIST box/ *')) == names(c3.ok('LIST "" box/*'))
    assert names(c2.ok('LIST "" box/*test4')) == ["box/test3/test4"]
    assert names(c2.ok('LIST "" box/%3/%')) == ["box/test3/test4"]
    assert names(c2.ok('LIST "" box/%3/%4')) == ["box/test3/test4"]
    assert names(c2.ok('LIST "" box/%t*4')) == ["box/test3/test4"]
    c2.ok("DELETE box/test2")
    assert "box/test2" not in names(c1.ok('LIST "" box/*'))
    u = c1.ok('LIST "" inbox')
    expect(u, r'\* LIST \(.*\) "/" "?INBOX"?')


def test_copy_and_move_uidplus(server):
    c = server.conn()
    fill(c, 3)
    c.ok("CREATE dest")
    c.ok("SELECT INBOX")
    u, t = c.run("COPY 1:3 dest")
    m = re.match(r"OK \[COPYUID (\d+) 1:3 1:3\]", t)
    assert m, t
    u, t = c.run("UID MOVE 2 dest")
    expect(u, r"\* OK \[COPYUID %s 2 4\].*" % m.group(1), r"\* 2 EXPUNGE")
    u = c.ok("STATUS dest (MESSAGES UIDNEXT)")
    expect(u, r'\* STATUS "?dest"? \(MESSAGES 4 UIDNEXT 5\)')
    u = c.ok("FETCH 1:* UID")
    expect(u, r"\* 1 FETCH \(UID 1\)", r"\* 2 FETCH \(UID 3\)")


def test_esearch(server):
    c = server.conn()
    fill(c, 7)
    c.ok("SELECT INBOX")
    c.ok("STORE 4 +FLAGS \\Deleted")
    c.ok("EXPUNGE")
    def es(q):
        u = c.ok(q)
        m = [l for l in u if l.startswith("* ESEARCH")]
        assert len(m) == 1, u
        return re.sub(r'^\* ESEARCH \(TAG "t\d+"\) ?', "", m[0])
    assert es("SEARCH RETURN (ALL) ALL") == "ALL 1:6"
    assert es("SEARCH RETURN () ALL") == "ALL 1:6"
    assert es("SEARCH RETURN (MIN) ALL") == "MIN 1"
    assert es("SEARCH RETURN (MAX) ALL") == "MAX 6"
    assert es("SEARCH RETURN (COUNT) ALL") == "COUNT 6"
    assert es("UID SEARCH RETURN (ALL) ALL") == "UID ALL 1:3,5:7"
    assert es("UID SEARCH RETURN (MIN) ALL") == "UID MIN 1"
    assert es("UID SEARCH RETURN (MAX) ALL") == "UID MAX 7"
    c.ok("STORE 2,4 +FLAGS \\Seen")
    assert es("UID SEARCH RETURN (ALL) SEEN") == "UID ALL 2,5"
    assert es("UID SEARCH RETURN (COUNT) SEEN") == "UID COUNT 2"
    assert es("SEARCH RETURN () 1000") == ""
    assert es("SEARCH RETURN (MIN) 1000") == ""
    assert es("SEARCH RETURN (COUNT) 1000") == "COUNT 0"
    assert es("UID SEARCH RETURN () 1000") == "UID"
    assert es("UID SEARCH RETURN (COUNT) 1000") == "UID COUNT 0"


def test_store_two_sessions(server):
    c1 = server.conn()
    fill(c1, 4)
    c1.ok("SELECT INBOX")
    c2 = server.conn(select="INBOX")
    u = c1.ok("STORE 1:3 FLAGS (\\Seen)")
    for n in (1, 2, 3):
        expect(u, r"\* %d FETCH \(FLAGS \(\\Seen( \\Recent)?\)\)" % n)
    u = c2.ok("CHECK")
    for n in (1, 2, 3):
        expect(u, r"\* %d FETCH \(UID %d FLAGS \(\\Seen\)\)" % (n, n))
    c1.ok("STORE 4 -FLAGS \\Seen")
    u = c1.ok("STORE 3 FLAGS (\\Draft)")
    expect(u, r"\* 3 FETCH \(FLAGS \(\\Draft( \\Recent)?\)\)")
    u = c1.ok("STORE 2,4 +FLAGS ($$hello $$world)")
    expect(u, r"\* 2 FETCH \(FLAGS \(\\Seen \$\$hello \$\$world( \\Recent)?\)\)",
           r"\* 4 FETCH \(FLAGS \(\$\$hello \$\$world( \\Recent)?\)\)")
    # two sessions do not overwrite each other's changes
    c1.ok("STORE 1 +FLAGS (\\Draft)")
    c2.ok("STORE 1 -FLAGS (\\Seen)")
    c1.ok("CHECK")
    c2.ok("CHECK")
    for c in (c1, c2):
        u = c.ok("FETCH 1 FLAGS")
        expect(u, r"\* 1 FETCH \(FLAGS \(\\Draft( \\Recent)?\)\)")


def test_append_recent_goes_to_one_session(server):
    c1 = server.conn()
    c1.ok("CREATE box")
    c1.ok("SELECT box")
    c2 = server.conn(select="box")
    c3 = server.conn()
    u = c1.ok("APPEND box (\\Seen \\Flagged) {3+}\r\nabc")
    expect(u, r"\* 1 EXISTS")
    u = c2.ok("NOOP")
    expect(u, r"\* 1 EXISTS")
    u = c3.ok("STATUS box (MESSAGES UNSEEN RECENT)")
    expect(u, r'\* STATUS "?box"? \(MESSAGES 1 UNSEEN 0 RECENT 0\)')
    f1 = c1.ok("FETCH 1 (UID FLAGS)")[0]
    f2 = c2.ok("FETCH 1 (UID FLAGS)")[0]
    assert ("\\Recent" in f1) != ("\\Recent" in f2), (f1, f2)  # exactly one has it
    c3.ok("APPEND box {3+}\r\nxyz")
    u = c3.ok("STATUS box (MESSAGES UNSEEN)")
    expect(u, r'\* STATUS "?box"? \(MESSAGES 2 UNSEEN 1\)')
    expect(c2.ok("NOOP"), r"\* 2 EXISTS")
    expect(c1.ok("NOOP"), r"\* 2 EXISTS")


def _names(lines, kind="LIST"):
    out = {}
    for l in lines:
        m = re.match(r'\* %s \(([^)]*)\) "/" "?([^" ]*)"?(.*)$' % kind, l)
        assert m, l
        out[m.group(2)] = (m.group(1), m.group(3).strip())
    return out


def test_subscribe_lsub(server):
    c1 = server.conn()
    c2 = server.conn()
    for n in ["box/", "box/test", "box/test2/", "box/test3/", "box/test2/test", "box/test3/test3"]:
        c1.ok(f"CREATE {n}")
    c1.ok("SUBSCRIBE box/test")
    c1.ok("SUBSCRIBE box/test2/test")
    c1.ok("SUBSCRIBE box/test3/test3")
    got = _names(c2.ok('LSUB "" box/%'), "LSUB")
    assert got == {"box/test": ("", ""), "box/test2": ("\\Noselect", ""),
                   "box/test3": ("\\Noselect", "")}, got
    got = _names(c2.ok('LSUB "" *test'), "LSUB")
    assert set(got) == {"box/test", "box/test2/test"}, got
    c1.ok("UNSUBSCRIBE box/test")
    assert "box/test" not in _names(c2.ok('LSUB "" box/%'), "LSUB")
    c1.ok("UNSUBSCRIBE box/test2/test")
    got = _names(c2.ok('LSUB "" box/*'), "LSUB")
    assert set(got) == {"box/test3/test3"}, got
    c1.ok("UNSUBSCRIBE box/test3/test3")
    assert _names(c2.ok('LSUB "" box/%'), "LSUB") == {}


def test_list_extended(server):
    c = server.conn()
    for n in ["box/test1", "box/test2/", "box/test2/test1", "box/test3", "box/test4/test5",
              "box/test4/test52", "box/test7/test7", "box/test8/test8", "box/test8/test9"]:
        c.ok(f"CREATE {n}")
    for n in ["box/test1", "box/test2/test1", "box/test7/test7", "box/test8/test8",
              "box/test8/test9"]:
        c.ok(f"SUBSCRIBE {n}")
    got = _names(c.ok('LIST "" (box/*2 box/test3)'))
    assert set(got) == {"box/test2", "box/test3", "box/test4/test52"}, got
    c.bad('LIST (imaptest) "" ""')
    c.bad('LIST (recursivematch) "" ""')
    c.bad('LIST (recursivematch remote) "" ""')
    c.bad('LIST "" "" RETURN (imaptest)')
    c.ok('LIST (remote) "" %')
    got = _names(c.ok('LIST (SUBSCRIBED) "" box/*'))
    assert set(got) == {"box/test1", "box/test2/test1", "box/test7/test7", "box/test8/test8",
                        "box/test8/test9"}, got
    assert all("\\Subscribed" in a for a, _ in got.values())
    got = _names(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" box/test2% RETURN (CHILDREN)'))
    assert set(got) == {"box/test2"}, got
    assert "\\HasChildren" in got["box/test2"][0] and "\\Subscribed" not in got["box/test2"][0]
    assert got["box/test2"][1] == '("CHILDINFO" ("SUBSCRIBED"))'
    got = _names(c.ok('LIST "" box/% RETURN (CHILDREN SUBSCRIBED)'))
    assert "\\Subscribed" in got["box/test1"][0] and "\\HasNoChildren" in got["box/test1"][0]
    assert "\\Subscribed" not in got["box/test2"][0] and "\\HasChildren" in got["box/test2"][0]
    got = _names(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" *test7'))
    assert set(got) == {"box/test7/test7"}, got
    got = _names(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" *test8'))
    assert set(got) == {"box/test8", "box/test8/test8"}, got
    assert got["box/test8"][1] == '("CHILDINFO" ("SUBSCRIBED"))'
    got = _names(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" (box/test2 box/test2/test1)'))
    assert got == {"box/test2/test1": (got["box/test2/test1"][0], "")}, got


MIME_MSG = (b'From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n'
            b'Content-Type: multipart/mixed; boundary="foo\n bar"\n\nRoot MIME prologue\n\n'
            b'--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\nhello\n\n'
            b'--foo bar\nContent-Type: message/rfc822\n\nFrom: sub@domain.org\n'
            b'Date: Sun, 12 Aug 2012 12:34:56 +0300\nSubject: submsg\n'
            b'Content-Type: multipart/alternative; boundary="sub1"\n\nSub MIME prologue\n'
            b'--sub1\nContent-Type: text/html\n\n<p>Hello world</p>\n\n'
            b'--sub1\nContent-Type: text/plain\n\nHello another world\n\n--sub1--\n'
            b'Sub MIME epilogue\n\n--foo bar--\nRoot MIME epilogue\n')


def test_fetch_body_and_binary_mime_sections(server):
    """imaptest fetch-body-mime / fetch-binary-mime: section sizes of a nested message."""
    c = server.conn()
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(MIME_MSG) + MIME_MSG + b"\r\n")
    assert c.wait("ap")[1].startswith("OK")
    c.ok("SELECT INBOX")
    sizes = {"": 602, "TEXT": 466, "1": 7, "1.MIME": 48, "2": 298, "2.MIME": 32,
             "2.HEADER": 134, "2.HEADER.FIELDS (FROM SUBJECT X-FOO)": 41,
             "2.HEADER.FIELDS.NOT (FROM SUBJECT X-FOO)": 95, "2.TEXT": 164, "2.1.MIME": 27,
             "2.1": 20, "2.2.MIME": 28, "2.2": 21}
    for sec, n in sizes.items():
        u = c.ok(f"FETCH 1 (BINARY.SIZE[{sec}] BODY.PEEK[{sec}] BINARY.PEEK[{sec}])")
        assert f"BINARY.SIZE[{sec}] {n}" in u[0], (sec, u)
        assert f"BODY[{sec}] {{{n}}}" in u[0], (sec, u)
        assert f"BINARY[{sec}] {{{n}}}" in u[0], (sec, u)
    u = c.ok("FETCH 1 BODY.PEEK[2.1]")
    assert u[0].endswith("{20}\r\n<p>Hello world</p>\r\n)"), u
    u = c.ok("FETCH 1 BODY.PEEK[2.HEADER.FIELDS (from subject X-foo)]")
    assert u[0].endswith("From: sub@domain.org\r\nSubject: submsg\r\n\r\n)"), u


def test_names_that_cannot_exist_get_no(server):
    """imaptest atoms: a name of atom-specials that is not valid modified UTF-7 is not a syntax
    error: SELECT answers NO and the session goes on; LIST takes such a pattern as written."""
    c = server.conn()
    odd = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    c.ok('LIST "" ~foo')
    c.no("SELECT ~foo", "NONEXISTENT")
    u, t = c.run(f"SELECT {odd}")
    assert t.startswith("NO [CANNOT]") and "modified UTF-7" in t and odd in t, t
    for cmd in (f"EXAMINE {odd}", f"CREATE {odd}", f'STATUS "{odd}" (MESSAGES)',
                f"DELETE {odd}", f"SUBSCRIBE {odd}", "CREATE &Jjo", 'RENAME INBOX "a&b"'):
        c.no(cmd, "CANNOT")
    assert c.ok(f'LIST "" {odd}%*') == []
    c.ok("CREATE a&-b")  # '&' written the right way
    expect(c.ok('LIST "" a&*'), r'\* LIST \(.*\) "/" "?a&-b"?')
    c.ok("NOOP")


def test_move_into_its_own_mailbox(server):
    """imaptest move: MOVE to the selected mailbox gives the message a new UID (COPYUID, then
    EXPUNGE, then EXISTS), as RFC 6851 allows; UID MOVE the same."""
    c = server.conn()
    fill(c, 3)
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS (\\Flagged)")
    u, t = c.run("MOVE 1 INBOX")
    assert t.startswith("OK"), t
    m = re.match(r"\* OK \[COPYUID (\d+) 1 4\]", u[0])
    assert m, u
    assert u[1:3] == ["* 1 EXPUNGE", "* 3 EXISTS"], u
    u, t = c.run("UID MOVE 2 INBOX")
    assert t.startswith("OK") and u[0].startswith(f"* OK [COPYUID {m.group(1)} 2 5]"), (u, t)
    u = c.ok("FETCH 1:* (UID FLAGS)")
    assert [re.search(r"UID (\d+)", l).group(1) for l in u] == ["3", "4", "5"], u
    assert "\\Flagged" in u[1], u  # flags move with the message
    s = c.ok("STATUS INBOX (MESSAGES UIDNEXT)")
    expect(s, r'\* STATUS "?INBOX"? \(MESSAGES 3 UIDNEXT 6\)')


QP_MSG = (b"From: q@example.org\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
          b"Content-Type: text/plain; charset=us-ascii\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
          b"one  \r\n"          # padding before a line break goes
          b"two=\r\n"           # soft break
          b"\r\n"
          b"th\t=\r\n"          # soft break after a tab
          b"ree\r\n"
          b"fo \t= \t\r\n"      # padding after '=' is still a soft break
          b"=75r\r\n"
          b"fi = \r\n"          # padding dropped, so '=' ends the line: soft break
          b"ve\r\n"
          b"a=3Db c_d\r\n"      # '=3D' is '=', '_' stays '_' in a body
          b"--b--\r\n")


def test_binary_of_quoted_printable_with_padding(server):
    """imaptest fetch-binary-mime-qp: RFC 2045 6.7's transport padding and soft line breaks,
    in BINARY[], its partials and BINARY.SIZE (which must agree)."""
    c = server.conn()
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(QP_MSG) + QP_MSG + b"\r\n")
    assert c.wait("ap")[1].startswith("OK")
    c.ok("SELECT INBOX")
    want = b"one\r\ntwo\r\nth\tree\r\nfo \tur\r\nfi ve\r\na=b c_d"  # the last CRLF is the boundary's
    u = c.ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert f"BINARY.SIZE[1] {len(want)} " in u[0], u
    assert u[0].endswith("{%d}\r\n%s)" % (len(want), want.decode())), u
    for start, n in ((0, 10), (3, 7), (10, 10), (17, 30)):
        u = c.ok(f"FETCH 1 BINARY.PEEK[1]<{start}.{n}>")
        part = want[start:start + n]
        assert u[0].endswith("{%d}\r\n%s)" % (len(part), part.decode())), (start, u)


def test_keywords_are_announced_before_use(server):
    """imaptest's "Keyword used without being in FLAGS": a keyword set by STORE or APPEND, here
    or in another session, is in an untagged FLAGS and PERMANENTFLAGS before any FETCH names
    it (RFC 9051 7.3.5); one already announced is not announced again."""
    a = server.conn()
    fill(a, 2)
    a.ok("SELECT INBOX")
    b = server.conn(select="INBOX")

    def flags_then_fetch(u, kw):
        i = next(i for i, l in enumerate(u) if l.startswith("* FLAGS"))
        assert kw in u[i] and kw in u[i + 1] and u[i + 1].startswith("* OK [PERMANENTFLAGS"), u
        j = next(i for i, l in enumerate(u) if "FETCH" in l and kw in l)
        assert i < j, u

    flags_then_fetch(a.ok("STORE 1 +FLAGS (Work)"), "Work")
    flags_then_fetch(b.ok("NOOP"), "Work")  # the other session learns it before the FETCH
    u = a.ok("STORE 2 +FLAGS (work)")  # keywords are case-insensitive: nothing new
    assert not any(l.startswith("* FLAGS") for l in u), u
    msg = b"Subject: k\r\n\r\nx\r\n"
    a.send(b"ap APPEND INBOX (Later $Label1) {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert a.wait("ap")[1].startswith("OK")
    a.ok("NOOP")
    flags_then_fetch(a.ok("FETCH 3 FLAGS"), "$Label1")
    b.ok("NOOP")  # EXISTS (and the FETCH of message 2's flags: "work" was announced already)
    flags_then_fetch(b.ok("FETCH 1:* FLAGS"), "Later")
    u = b.ok("FETCH 1:* FLAGS")
    assert not any(l.startswith("* FLAGS") for l in u), u
    u = b.ok("SELECT INBOX")  # a new SELECT lists them all at once
    expect(u, r"\* FLAGS \(.*Work.*\)", r"\* OK \[PERMANENTFLAGS \(.*Later.*\\\*\)\] .*")


ADDR_MSGS = [
    b"From: pat@example.net\r\nTo: lee@example.org\r\n\r\n1\r\n",
    b"From: Pat Doe <pat@example.net>\r\nCc: \"Lee, L.\" <lee@example.org>\r\n\r\n2\r\n",
    b"From: <pat (home)@ (the lab) example.net>\r\nTo: <lee@example.org>\r\n\r\n3\r\n",
    b"From: pat@example.net (Pat Doe)\r\nBcc: team: lee@example.org, kim@example.org;\r\n\r\n4\r\n",
    b"From: =?utf-8?q?P=C3=A4t?= <pat@example.net>\r\nTo: a@b.c,\r\n  kim@example.org\r\n\r\n5\r\n",
]


def test_search_addresses_without_comments(server):
    """imaptest search-addresses: FROM/TO/CC/BCC match the address as written and in its plain
    form (comments and folding gone), so an address with comments inside is found by its
    plain spelling; names, groups and substrings still match."""
    c = server.conn()
    for m in ADDR_MSGS:
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.wait("ap")[1].startswith("OK")
    c.ok("SELECT INBOX")
    assert search(c, "SEARCH FROM pat@example.net") == [1, 2, 3, 4, 5]
    assert search(c, "SEARCH FROM \"pat doe\"") == [2, 4]
    assert search(c, "SEARCH FROM home") == [3]  # the comment as written still matches
    assert search(c, "SEARCH FROM päT") == [5]  # the name's encoded word, decoded
    assert search(c, "SEARCH TO lee@example.org") == [1, 3]
    assert search(c, "SEARCH CC \"Lee, L.\"") == [2]
    assert search(c, "SEARCH BCC team") == [4]
    assert search(c, "SEARCH BCC kim@example.org") == [4]
    assert search(c, "SEARCH TO \"a@b.c, kim\"") == [5]  # folded: one line
    assert search(c, "SEARCH FROM \"net>\"") == [2, 3, 4, 5]  # 4: its comment names it
    assert search(c, "SEARCH HEADER FROM \"pat@example.net\"") == [1, 2, 3, 4, 5]
    assert search(c, "SEARCH NOT FROM example.net") == []


def append_cat(c, box, parts, tag="ap"):
    """APPEND BOX CATENATE (...) with PARTS: ("TEXT", bytes) or ("URL", str)."""
    out = b"%s APPEND %s CATENATE (" % (tag.encode(), box.encode())
    for i, (kind, v) in enumerate(parts):
        out += b" " if i else b""
        out += (b"TEXT {%d+}\r\n" % len(v) + v) if kind == "TEXT" else b'URL "%s"' % v.encode()
    c.send(out + b")\r\n")
    return c.wait(tag)


def test_catenate(server):
    """imaptest catenate / catenate-multiappend (RFC 4469): a message made of literals and of
    sections of stored messages named by IMAP URLs (RFC 5092), in one APPEND or several; a URL
    that names nothing fails the whole APPEND with NO [BADURL], a missing destination first
    with NO [TRYCREATE]."""
    c = server.conn()
    assert "CATENATE" in c.ok("CAPABILITY")[0]
    c.ok('CREATE "Caf&AOk-"')  # a name that needs modified UTF-7, then %-encoding in a URL
    src = b"From: a@example.org\r\nSubject: one\r\n\r\nbody one\r\n"
    u, t = append_cat(c, '"Caf&AOk-"', [("TEXT", src)])
    m = re.match(r"OK \[APPENDUID (\d+) 1\]", t)
    assert m, t
    uv = m.group(1)
    mime = (b"From: b@example.org\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
            b"Content-Type: text/plain\r\n\r\npart one\r\n--x--\r\n")
    append_cat(c, '"Caf&AOk-"', [("TEXT", mime)])
    url = "/Caf%26AOk-"
    cases = [
        ([("URL", f"{url}/;UID=1/;SECTION=HEADER"), ("TEXT", b"new body\r\n")],
         b"From: a@example.org\r\nSubject: one\r\n\r\nnew body\r\n"),
        ([("URL", f"{url};UIDVALIDITY={uv}/;uid=1/;section=text")], b"body one\r\n"),
        ([("TEXT", b"Subject: wrapped\r\n\r\n"), ("URL", f"{url}/;UID=2/;SECTION=1"),
          ("TEXT", b"\r\nend\r\n")], b"Subject: wrapped\r\n\r\npart one\r\nend\r\n"),
        ([("URL", f"{url}/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)"), ("TEXT", b"x\r\n")],
         b"Subject: one\r\n\r\nx\r\n"),
        ([("URL", f"{url}/;UID=1/;PARTIAL=5.14")], src[5:19]),
        ([("URL", f"{url}/;UID=1/;PARTIAL=100000.1"), ("TEXT", b"H: 1\r\n\r\nb\r\n")],
         b"H: 1\r\n\r\nb\r\n"),
        ([("URL", f"imap://alice@localhost:143{url}/;UID=1")], src),
        ([("URL", f"imap://alice;AUTH=*@localhost{url}/;UID=1")], src),
    ]
    for parts, want in cases:
        u, t = append_cat(c, "INBOX", parts)
        assert t.startswith("OK [APPENDUID"), (parts, t)
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:* BODY.PEEK[]")
    got = [re.search(r"\{\d+\}\r\n(.*)\)$", l, re.S).group(1).encode() for l in u]
    assert got == [w for _, w in cases], got
    # MULTIAPPEND: catenated and plain messages in one command
    c.send(b'm APPEND INBOX CATENATE (URL "%s/;UID=1") (\\Seen) {5+}\r\nplain'
           b' CATENATE (TEXT {3+}\r\nx\r\n)\r\n' % url.encode())
    u, t = c.wait("m")
    assert re.match(r"OK \[APPENDUID \d+ 9:11\]", t), t
    # a URL that names nothing: NO [BADURL], nothing appended, whatever its place
    for bad, why in [(f"{url};UIDVALIDITY=12345/;UID=1", "UIDVALIDITY"),
                     (f"{url}/;UID=99", "message"), ("/Nosuch/;UID=1", "mailbox"),
                     (f"{url}/;UID=1/;SECTION=7", "SECTION"), (f"{url}/;UID=1/;SECTION=FOO", "SECTION"),
                     (f"{url}/;UID=0", "UID"), ("Caf/;UID=1", "imap://"),
                     (f"imap://bob@localhost{url}/;UID=1", "another user"),
                     (f"{url}/;UID=1/;URLAUTH=anonymous:internal:abc", "URLAUTH")]:
        for parts in ([("URL", bad)], [("TEXT", b"h: 1\r\n\r\n"), ("URL", bad)],
                      [("URL", f"{url}/;UID=1"), ("URL", bad), ("TEXT", b"x")]):
            u, t = append_cat(c, "INBOX", parts)
            assert t.startswith("NO [BADURL ") and why in t and "nothing" in t, (bad, t)
    u = c.ok("NOOP")
    assert not any("EXISTS" in l for l in u), u
    # the destination is checked first; then the syntax of the parts
    u, t = append_cat(c, "Nosuch", [("TEXT", b"h: 1\r\n\r\n"), ("URL", f"{url};UIDVALIDITY=1/;UID=1")])
    assert t.startswith("NO [TRYCREATE]"), t
    for bad in ['(TEXT "quoted")', "()", '(URL)', '(BODY {1+}\r\nx)', "(" + 'URL "/a/;UID=1" ' * 101 + ")"]:
        c.send(b"b APPEND INBOX CATENATE %s\r\n" % bad.encode())
        assert c.wait("b")[1].startswith("BAD"), bad
    c.ok("NOOP")
