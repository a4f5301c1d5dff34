"""SORT, SORT=DISPLAY, ESORT and THREAD (RFC 5256, 5957, 5267) transcripts against `mailfs serve`."""
import pathlib
import re

from imapfix import expect, none_match, server  # noqa: F401 (fixture)

CORPUS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpus"


def append(c, box, msg, date):
    if isinstance(msg, str):
        msg = msg.replace("\n", "\r\n").encode()
    c.send(b'ap APPEND %s "%s" {%d+}\r\n' % (box.encode(), date.encode(), len(msg)) + msg +
           b"\r\n")
    u, t = c.wait("ap")
    assert t.startswith("OK"), t


def nums(c, cmd, word="SORT"):
    u = c.ok(cmd)
    m = [l for l in u if l.startswith(f"* {word}")]
    assert len(m) == 1, u
    return [int(x) for x in m[0].split()[2:]]


def thread(c, cmd):
    u = c.ok(cmd)
    m = [l for l in u if l.startswith("* THREAD")]
    assert len(m) == 1, u
    return m[0][len("* THREAD"):].strip()


# Five messages; the comment of each key's test says how it orders them.
MSGS = [
    ("From: Zoe <zoe@z.example>\nTo: bob@b.example\nCc: carl@c.example\nSubject: Re: apples\n"
     "Date: Mon, 3 Feb 2025 10:00:00 +0000\nMessage-ID: <m1@x>\n\n" + "a" * 3000 + "\n",
     "05-Feb-2025 00:00:00 +0000"),
    ("From: =?UTF-8?Q?=C3=89mile?= <emile@e.example>\nTo: Anna <anna@a.example>\n"
     "Subject: =?UTF-8?B?YmFuYW5hcw==?=\nDate: Sat, 1 Feb 2025 10:00:00 -0800\n\n" + "b" * 1000 + "\n",
     "01-Feb-2025 00:00:00 +0000"),
    ("From: adam@a.example\nCc: bea@b.example\nSubject: [list] Cherries\n\n" + "c" * 2000 + "\n",
     "02-Feb-2025 12:00:00 +0000"),
    ("From: Aaron <mike@m.example>\nTo: Al <zed@z.example>\nSubject: apples\n"
     "Date: 2 Feb 2025 09:00:00 +0000\n\n" + "d" * 4000 + "\n",
     "03-Feb-2025 00:00:00 +0000"),
    ("To: yan@y.example\nDate: garbage\n\n" + "e" * 10000 + "\n", "04-Feb-2025 00:00:00 +0000"),
]


def fill(c, box="INBOX"):
    for msg, date in MSGS:
        append(c, box, msg, date)
    c.ok(f"SELECT {box}")


def test_sort_every_key(server):
    c = server.conn()
    fill(c)
    s = lambda prog: nums(c, f"SORT ({prog}) UTF-8 ALL")  # noqa: E731
    # sent date (UTC), else INTERNALDATE: 2 is Feb 1 18:00 UTC; 3 has no Date, 5 a broken one
    assert s("DATE") == [2, 4, 3, 1, 5]
    assert s("REVERSE DATE") == [5, 1, 3, 4, 2]
    assert s("ARRIVAL") == [2, 3, 4, 5, 1]
    assert s("REVERSE ARRIVAL") == [1, 5, 4, 3, 2]
    assert s("SIZE") == [2, 3, 1, 4, 5]
    assert s("REVERSE SIZE") == [5, 4, 1, 3, 2]
    # base subjects: "", APPLES (1 and 4), BANANAS (encoded word), CHERRIES ("[list]" dropped)
    assert s("SUBJECT") == [5, 1, 4, 2, 3]
    # REVERSE reverses the key, not the tie-break by sequence number
    assert s("REVERSE SUBJECT") == [3, 2, 1, 4, 5]
    # addr-mailbox of the first address; none sorts first
    assert s("FROM") == [5, 3, 2, 4, 1]
    assert s("TO") == [3, 2, 1, 5, 4]
    assert s("CC") == [2, 4, 5, 3, 1]
    assert s("REVERSE CC") == [1, 3, 2, 4, 5]
    # RFC 5957: the display name (decoded), else mailbox@host
    assert s("DISPLAYFROM") == [5, 4, 3, 2, 1]
    assert s("DISPLAYTO") == [3, 4, 2, 1, 5]
    assert s("REVERSE DISPLAYTO") == [5, 1, 2, 4, 3]


def test_sort_combined_keys_and_search(server):
    c = server.conn()
    fill(c)
    assert nums(c, "SORT (SUBJECT DATE) UTF-8 ALL") == [5, 4, 1, 2, 3]
    assert nums(c, "SORT (SUBJECT REVERSE DATE) UTF-8 ALL") == [5, 1, 4, 2, 3]
    assert nums(c, "sort (subject reverse date) utf-8 all") == [5, 1, 4, 2, 3]
    assert nums(c, "SORT (SUBJECT SUBJECT REVERSE ARRIVAL) UTF-8 ALL") == [5, 1, 4, 2, 3]
    # the search keys are SEARCH's
    assert nums(c, "SORT (SUBJECT) UTF-8 SINCE 3-Feb-2025") == [5, 1, 4]
    assert nums(c, "SORT (DATE) US-ASCII FROM mike") == [4]
    assert nums(c, 'SORT (DATE) "UTF-8" OR TO anna CC bea') == [2, 3]
    assert nums(c, "SORT (REVERSE SIZE) UTF-8 2:4") == [4, 3, 2]
    assert nums(c, "SORT (DATE) UTF-8 SUBJECT nothing-like-this") == []
    c.ok("STORE 2 +FLAGS \\Deleted")
    assert nums(c, "SORT (DATE) UTF-8 UNDELETED") == [4, 3, 1, 5]


def test_uid_sort_and_esort(server):
    c = server.conn()
    append(c, "INBOX", "Subject: gone\n\nx\n", "01-Jan-2025 00:00:00 +0000")
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS \\Deleted")
    c.ok("EXPUNGE")
    fill(c)  # UIDs 2..6 are sequence numbers 1..5
    assert nums(c, "UID SORT (DATE) UTF-8 ALL") == [3, 5, 4, 2, 6]
    assert nums(c, "SORT (DATE) UTF-8 UID 3:4") == [2, 3]
    assert nums(c, "UID SORT (DATE) UTF-8 UID 3:4") == [3, 4]
    # ESORT: an ESEARCH answer in the sort order; ALL as a sequence set of the sorted numbers
    u = c.ok("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) MIN 2 MAX 5 COUNT 5')
    u = c.ok("SORT RETURN () (DATE) UTF-8 ALL")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) ALL 2,4,3,1,5')
    u = c.ok("UID SORT RETURN (ALL COUNT) (ARRIVAL) UTF-8 ALL")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) UID COUNT 5 ALL 3:6,2')
    u = c.ok("SORT RETURN (COUNT ALL) (DATE) UTF-8 SUBJECT nothing-like-this")
    expect(u, r'\* ESEARCH \(TAG "t\d+"\) COUNT 0')
    # an EXPUNGE by another session is not announced with a SORT by sequence numbers: the
    # numbers stay as they were, and ALL is still the whole view (its keys are remembered)
    d = server.conn(select="INBOX")
    d.ok("STORE 1 +FLAGS \\Deleted")
    d.ok("EXPUNGE")
    u = c.ok("SORT (DATE) UTF-8 ALL")
    expect(u, r"\* SORT 2 4 3 1 5")
    none_match(u, r"\* \d+ EXPUNGE")
    u = c.ok("NOOP")
    expect(u, r"\* 1 EXPUNGE")
    assert nums(c, "SORT (DATE) UTF-8 ALL") == [1, 3, 2, 4]


def test_sort_bad_arguments(server):
    c = server.conn()
    c.bad("SORT (DATE) UTF-8 ALL")  # nothing selected
    fill(c)
    u, t = c.run("SORT (FOO) UTF-8 ALL")
    assert t.startswith("BAD") and "'FOO'" in t, t
    u, t = c.run("SORT DATE UTF-8 ALL")
    assert t.startswith("BAD") and "list" in t, t
    c.bad("SORT () UTF-8 ALL")
    c.bad("SORT (REVERSE) UTF-8 ALL")
    c.bad("SORT (REVERSE REVERSE DATE) UTF-8 ALL")
    c.bad("SORT (DATE) UTF-8")
    c.bad("SORT (DATE)")
    c.bad("SORT")
    c.bad("SORT (DATE) UTF-8 NOSUCHKEY")
    c.bad("SORT RETURN (FIRST) (DATE) UTF-8 ALL")
    c.bad("SORT RETURN DATE UTF-8 ALL")
    u, t = c.run("SORT (" + " ".join(["SIZE"] * 17) + ") UTF-8 ALL")
    assert t.startswith("BAD") and "16" in t, t
    assert nums(c, "SORT (" + " ".join(["SIZE"] * 16) + ") UTF-8 ALL") == [2, 3, 1, 4, 5]
    u, t = c.run("SORT (DATE) ISO-8859-1 ALL")
    assert t.startswith("NO [BADCHARSET (UTF-8 US-ASCII)]"), t
    c.ok("NOOP")  # the session goes on


# A realistic set: a discussion with replies (one by In-Reply-To only), a late reply whose
# References reach three levels down, a thread whose first message is missing, a reply found
# by its subject alone, and two messages that share only a subject.
THREAD_MSGS = [
    ("<t1@x>", "", "Plan"),
    ("<t2@x>", "In-Reply-To: <t1@x>\n", "Re: Plan"),
    ("<t3@x>", "References: <t1@x> <t2@x>\n", "Re: Plan"),
    ("<t4@x>", "References: <missing@x>\n", "Lost"),
    ("<t5@x>", "References: <missing@x>\n", "Re: Lost"),
    ("<t6@x>", "", "Re: Plan"),
    ("<t7@x>", "", "Lunch"),
    ("<t8@x>", "", "Lunch"),
    ("<t9@x>", "References: <t1@x> <t2@x> <t3@x>\n", "RE: [team] plan"),
]


def fill_threads(c, box):
    c.ok(f"CREATE {box}")
    for i, (mid, refs, subj) in enumerate(THREAD_MSGS, 1):
        msg = (f"From: u{i}@x\nMessage-ID: {mid}\n{refs}Subject: {subj}\n"
               f"Date: {i} Mar 2025 10:00:00 +0000\n\nbody {i}\n")
        append(c, box, msg, "01-Apr-2025 00:00:00 +0000")
    c.ok(f"SELECT {box}")


def test_thread_references_and_orderedsubject(server):
    c = server.conn()
    fill_threads(c, "Threads")
    assert thread(c, "THREAD REFERENCES UTF-8 ALL") == "(1 (2 3 9)(6))((4)(5))((7)(8))"
    assert thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL") == "(1 (2)(3)(6)(9))(4 5)(7 8)"
    assert thread(c, "thread references us-ascii ALL") == "(1 (2 3 9)(6))((4)(5))((7)(8))"
    # only what the search finds is threaded
    # without 1 and 2, 3 and 6 are both replies to a missing "Plan": a dummy holds them
    assert thread(c, "THREAD REFERENCES UTF-8 3:9") == "((3 9)(6))((4)(5))((7)(8))"
    assert thread(c, "THREAD REFERENCES UTF-8 SUBJECT nothing-like-this") == ""
    # UID THREAD: the same trees, by UID
    c.ok("STORE 1 +FLAGS \\Deleted")
    c.ok("EXPUNGE")
    assert thread(c, "THREAD REFERENCES UTF-8 ALL") == "((1 2 8)(5))((3)(4))((6)(7))"
    assert thread(c, "UID THREAD REFERENCES UTF-8 ALL") == "((2 3 9)(6))((4)(5))((7)(8))"
    assert thread(c, "UID THREAD ORDEREDSUBJECT UTF-8 ALL") == "(2 (3)(6)(9))(4 5)(7 8)"


def test_thread_bad_arguments(server):
    c = server.conn()
    fill_threads(c, "Threads")
    u, t = c.run("THREAD REFS UTF-8 ALL")
    assert t.startswith("BAD") and "'REFS'" in t, t
    c.bad("THREAD (REFERENCES) UTF-8 ALL")
    c.bad("THREAD REFERENCES UTF-8")
    c.bad("THREAD REFERENCES")
    c.bad("THREAD")
    u, t = c.run("THREAD REFERENCES KOI8-R ALL")
    assert t.startswith("NO [BADCHARSET (UTF-8 US-ASCII)]"), t


def mbox_messages(path):
    """(INTERNALDATE, bytes) of each message of an imaptest mbox (dates from the From_ lines)."""
    out = []
    for chunk in re.split(rb"(?m)^From ", path.read_bytes())[1:]:
        first, _, body = chunk.partition(b"\n")
        p = first.decode().split()
        date = f"{int(p[3]):02d}-{p[2]}-{p[5]} {p[4]} +0000"
        out.append((date, body.rstrip(b"\n") + b"\n"))
    return out


# Answers of Dovecot 2.3.19 for imaptest's own sets (checked by hand with
# tools/compare_dovecot_sort.py, which compares every key on these and on the whole corpus)
IMAPTEST = {
    "thread.mbox": [("THREAD REFERENCES UTF-8 ALL", "(3 2)(1)"),
                    ("THREAD ORDEREDSUBJECT UTF-8 ALL", "(2 (3)(1))")],
    "sort-addresses.mbox": [("SORT (CC) UTF-8 ALL", [3, 1, 2]),
                            ("SORT (REVERSE CC) UTF-8 ALL", [1, 2, 3])],
    "sort-display-to.mbox": [("SORT (TO) UTF-8 ALL", [1, 6, 2, 3, 4, 8, 5, 7]),
                             ("SORT (DISPLAYTO) UTF-8 ALL", [6, 2, 3, 8, 4, 1, 5, 7]),
                             ("SORT (REVERSE DISPLAYTO) UTF-8 ALL", [7, 5, 1, 4, 8, 3, 2, 6])],
}


def test_imaptest_sets_answer_as_dovecot_does(server):
    c = server.conn()
    for name, checks in IMAPTEST.items():
        box = name.split(".")[0].replace("-", "_")
        c.ok(f"CREATE {box}")
        for date, data in mbox_messages(CORPUS / "imaptest" / name):
            append(c, box, data, date)
        c.ok(f"SELECT {box}")
        for cmd, want in checks:
            got = thread(c, cmd) if cmd.startswith("THREAD") else nums(c, cmd)
            assert got == want, (name, cmd, got)


def well_formed(text, n):
    """The thread lists hold 1..N once each, with balanced parentheses."""
    depth = 0
    for ch in re.sub(r"\d+", "", text):
        depth += {"(": 1, ")": -1, " ": 0}[ch]
        assert depth >= 0, text
    assert depth == 0
    found = sorted(int(x) for x in re.findall(r"\d+", text))
    assert found == list(range(1, n + 1))


def test_corpus_sorts_and_threads(server):
    """Every message of the corpus's mboxes in one mailbox: every key and both algorithms
    answer with each message once, and sorting agrees with itself under REVERSE."""
    c = server.conn()
    c.ok("CREATE Corpus")
    n = 0
    for p in sorted(CORPUS.rglob("*.mbox")):
        for date, data in mbox_messages(p) if p.parent.name == "imaptest" else []:
            append(c, "Corpus", data, date)
            n += 1
    for p in sorted(CORPUS.rglob("*.eml"))[:150]:
        append(c, "Corpus", p.read_bytes(), "01-Jan-2020 00:00:00 +0000")
        n += 1
    c.ok("SELECT Corpus")
    for key in ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM",
                "DISPLAYTO"]:
        fwd = nums(c, f"SORT ({key}) UTF-8 ALL")
        assert sorted(fwd) == list(range(1, n + 1)), key
        rev = nums(c, f"SORT (REVERSE {key} REVERSE ARRIVAL) UTF-8 ALL")
        assert sorted(rev) == sorted(fwd)
    for alg in ["REFERENCES", "ORDEREDSUBJECT"]:
        well_formed(thread(c, f"THREAD {alg} UTF-8 ALL"), n)


def test_sort_keys_are_remembered_and_follow_changes(server):
    """The keys read for one SORT serve the next ones (any session, any key): new mail, expunges
    and another mailbox give the answers a fresh read would."""
    c = server.conn()
    fill(c)
    assert nums(c, "SORT (SUBJECT) UTF-8 ALL") == [5, 1, 4, 2, 3]
    append(c, "INBOX", "From: aa@a.example\nSubject: Re: [x] aardvark\nDate: 1 Jan 2000 00:00 "
           "+0000\nMessage-ID: <new@x>\nReferences: <m1@x>\n\nnew\n", "06-Feb-2025 00:00:00 +0000")
    c.ok("NOOP")
    assert nums(c, "SORT (SUBJECT) UTF-8 ALL") == [5, 6, 1, 4, 2, 3]
    assert nums(c, "SORT (DATE) UTF-8 ALL") == [6, 2, 4, 3, 1, 5]
    assert nums(c, "SORT (FROM) UTF-8 ALL") == [5, 6, 3, 2, 4, 1]
    assert thread(c, "THREAD REFERENCES UTF-8 ALL") == "(2)(4 1 6)(3)(5)"  # 1 is a reply to 4
    c.ok("STORE 1 +FLAGS \\Deleted")
    c.ok("EXPUNGE")
    assert nums(c, "SORT (SUBJECT) UTF-8 ALL") == [4, 5, 3, 1, 2]
    d = server.conn()
    fill_threads(d, "Other")
    assert thread(d, "THREAD REFERENCES UTF-8 ALL") == "(1 (2 3 9)(6))((4)(5))((7)(8))"
    d.ok("SELECT INBOX")
    assert nums(d, "SORT (SUBJECT) UTF-8 ALL") == [4, 5, 3, 1, 2]


def test_within_younger_older(server):
    """WITHIN (RFC 5032): YOUNGER and OLDER count seconds back from now on INTERNALDATE."""
    c = server.conn()
    append(c, "INBOX", "Subject: old\n\nx\n", "01-Jan-2020 00:00:00 +0000")
    c.send(b"ap APPEND INBOX {16+}\r\nSubject: new\n\nx\n\r\n")  # INTERNALDATE: now
    u, t = c.wait("ap")
    assert t.startswith("OK"), t
    c.ok("SELECT INBOX")
    caps = c.ok("CAPABILITY")[0].split()
    assert "WITHIN" in caps
    assert nums(c, "SEARCH YOUNGER 3600", "SEARCH") == [2]
    assert nums(c, "SEARCH OLDER 3600", "SEARCH") == [1]
    assert nums(c, "SEARCH OR YOUNGER 3600 OLDER 3600", "SEARCH") == [1, 2]
    assert nums(c, "SEARCH NOT YOUNGER 3600", "SEARCH") == [1]
    assert nums(c, "SEARCH YOUNGER 4294967295", "SEARCH") == [1, 2]
    assert nums(c, "SORT (REVERSE ARRIVAL) UTF-8 YOUNGER 4294967295") == [2, 1]
    for bad in ["YOUNGER", "YOUNGER 0", "OLDER -5", "OLDER x", "YOUNGER 4294967296"]:
        u, t = c.run(f"SEARCH {bad}")
        assert t.startswith("BAD") and "seconds" in t, (bad, t)
