"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267): RETURN (PARTIAL m:n), RETURN (UPDATE) with its live
ADDTO/REMOVEFROM updates, and CANCELUPDATE, as imaptest's search-partial, sort-partial and
search-context-update* scripts expect them, against `mailfs serve`."""
import re

from imapfix import expect, none_match, server  # noqa: F401 (fixture)


def append(c, box, subject, body="hello", flags="", date="01-Feb-2025 00:00:00 +0000"):
    msg = (f"From: a@b.example\r\nSubject: {subject}\r\n\r\n{body}\r\n").encode()
    fl = f"({flags}) " if flags else ""
    c.send(b'ap APPEND %s %s"%s" {%d+}\r\n' % (box.encode(), fl.encode(), date.encode(), len(msg)) +
           msg + b"\r\n")
    u, t = c.wait("ap")
    assert t.startswith("OK"), t
    return u


def fill(c, n, sizes=None):
    for i in range(n):
        body = "x" * (sizes[i] if sizes else 10)
        append(c, "INBOX", f"s{i + 1}", body, date=f"0{i + 1}-Feb-2025 00:00:00 +0000")
    c.ok("SELECT INBOX")


def esearch(lines):
    return [l for l in lines if l.startswith("* ESEARCH")]


def test_capabilities(server):
    c = server.conn()
    u = c.ok("CAPABILITY")
    caps = u[0].split()
    assert "CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps and "ESORT" in caps


def test_search_partial(server):
    c = server.conn()
    fill(c, 5)
    p = lambda ret, keys="ALL", cmd="SEARCH": esearch(c.ok(f"{cmd} RETURN ({ret}) {keys}"))  # noqa
    assert re.fullmatch(r'\* ESEARCH \(TAG "t\d+"\) PARTIAL \(1:1 1\)', p("PARTIAL 1:1")[0])
    assert p("PARTIAL 2:4")[0].endswith(" PARTIAL (2:4 2:4)")
    # a reversed range is the same range, shown the usual way round
    assert p("PARTIAL 4:2")[0].endswith(" PARTIAL (2:4 2:4)")
    assert p("PARTIAL 1:6")[0].endswith(" PARTIAL (1:6 1:5)")
    assert p("PARTIAL 6:6")[0].endswith(" PARTIAL (6:6 NIL)")
    # positions count results, not messages
    assert p("PARTIAL 1:3", "1:2,4:5")[0].endswith(" PARTIAL (1:3 1:2,4)")
    assert p("PARTIAL 2:3", "1:2,4:5")[0].endswith(" PARTIAL (2:3 2,4)")
    assert p("PARTIAL 2:10", "1:2,4:5")[0].endswith(" PARTIAL (2:10 2,4:5)")
    # with the other options, which see the whole result
    assert p("MIN MAX COUNT PARTIAL 2:3")[0].endswith(" MIN 1 MAX 5 COUNT 5 PARTIAL (2:3 2:3)")
    # UID: the range is of results, the set of UIDs; an expunge shifts it
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    assert p("PARTIAL 2:2", cmd="UID SEARCH")[0].endswith(" UID PARTIAL (2:2 3)")
    assert p("PARTIAL 5:10", cmd="UID SEARCH")[0].endswith(" UID PARTIAL (5:10 NIL)")
    # no result at all
    assert p("PARTIAL 1:10", "SUBJECT nothing-like-it")[0].endswith(" PARTIAL (1:10 NIL)")


def test_sort_partial(server):
    c = server.conn()
    fill(c, 5, sizes=[50, 10, 40, 30, 20])
    p = lambda ret, prog: esearch(c.ok(f"SORT RETURN ({ret}) ({prog}) US-ASCII ALL"))[0]  # noqa
    assert p("PARTIAL 1:1", "ARRIVAL").endswith(" PARTIAL (1:1 1)")
    assert p("PARTIAL 4:2", "ARRIVAL").endswith(" PARTIAL (2:4 2:4)")
    # the range is of sort positions; the set is in the sort order
    assert p("PARTIAL 1:6", "REVERSE ARRIVAL").endswith(" PARTIAL (1:6 5,4,3,2,1)")
    assert p("PARTIAL 2:4", "SIZE").endswith(" PARTIAL (2:4 5,4,3)")
    assert p("PARTIAL 6:9", "SIZE").endswith(" PARTIAL (6:9 NIL)")
    u = esearch(c.ok("UID SORT RETURN (PARTIAL 1:2 COUNT) (SIZE) US-ASCII ALL"))
    assert u[0].endswith(" UID COUNT 5 PARTIAL (1:2 2,5)")


def test_return_bad_syntax(server):
    c = server.conn()
    fill(c, 3)
    for ret in ["PARTIAL 1", "PARTIAL 1:*", "PARTIAL *:1", "PARTIAL 0:3", "PARTIAL",
                "PARTIAL (1:2)", "PARTIAL 1:2 PARTIAL 3:4", "PARTIAL 1:2 ALL", "PARTIAL 1:99999999999",
                "PARTIAL -1:2", "NEWEST"]:
        c.bad(f"SEARCH RETURN ({ret}) ALL")
        c.bad(f"SORT RETURN ({ret}) (ARRIVAL) US-ASCII ALL")
    # CONTEXT is a hint: alone it means ALL, as an empty list does
    assert esearch(c.ok("SEARCH RETURN (CONTEXT) ALL"))[0].endswith(" ALL 1:3")
    assert esearch(c.ok("SEARCH RETURN (CONTEXT COUNT) ALL"))[0].endswith(" COUNT 3")
    c.bad("CANCELUPDATE")
    c.bad('CANCELUPDATE "never-used"')
    c.bad("CANCELUPDATE (x)")


def test_update_one_session(server):
    """imaptest's search-context-update, with its order: REMOVEFROM before the EXPUNGEs."""
    c = server.conn()
    fill(c, 5)
    u, t = c.run("SEARCH RETURN (UPDATE) BODY x SEEN", tag="S1")
    assert t.startswith("OK") and esearch(u) == ['* ESEARCH (TAG "S1")']
    u = c.ok("STORE 1,2,4 +FLAGS (\\Seen)")
    assert esearch(u) == ['* ESEARCH (TAG "S1") ADDTO (0 1:2,4)']
    assert u.index(esearch(u)[0]) > max(i for i, l in enumerate(u) if " FETCH " in l)
    u = c.ok("STORE 1,2 -FLAGS (\\Seen)")
    assert esearch(u) == ['* ESEARCH (TAG "S1") REMOVEFROM (0 1:2)']
    c.ok("STORE 3:5 +FLAGS.SILENT (\\Deleted)")
    u = c.ok("EXPUNGE")
    assert u == ['* ESEARCH (TAG "S1") REMOVEFROM (0 4)', "* 5 EXPUNGE", "* 4 EXPUNGE",
                 "* 3 EXPUNGE"]
    u = append(c, "INBOX", "new", "x", flags="\\Seen")
    assert u.index("* 3 EXISTS") < u.index('* ESEARCH (TAG "S1") ADDTO (0 3)'), u
    u, t = c.run('CANCELUPDATE "S1"')
    assert t.startswith("OK"), t
    u = c.ok("STORE 1 +FLAGS (\\Seen)")
    assert esearch(u) == []
    # the tag is free again, and a cancelled one cannot be cancelled twice
    c.bad('CANCELUPDATE "S1"')


def test_update_with_all_and_uid(server):
    """imaptest's search-context-update2 and -update3: UPDATE ALL, by numbers and by UIDs."""
    c = server.conn()
    fill(c, 6)
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")  # UIDs 2..6 are numbers 1..5
    c.ok("STORE 1,2 +FLAGS.SILENT (\\Seen)")
    u, _ = c.run("UID SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT s33", tag="U1")
    assert esearch(u) == ['* ESEARCH (TAG "U1") UID ALL 2:3']
    u, _ = c.run("SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT s33", tag="S1")
    assert esearch(u) == ['* ESEARCH (TAG "S1") ALL 1:2']
    u = c.ok("STORE 3:5 +FLAGS.SILENT (\\Seen)")
    expect(esearch(u), r'\* ESEARCH \(TAG "U1"\) UID ADDTO \(0 4:6\)',
           r'\* ESEARCH \(TAG "S1"\) ADDTO \(0 3:5\)')
    u = c.ok("STORE 1:5 -FLAGS.SILENT (\\Seen)")
    expect(esearch(u), r'\* ESEARCH \(TAG "U1"\) UID REMOVEFROM \(0 2:6\)',
           r'\* ESEARCH \(TAG "S1"\) REMOVEFROM \(0 1:5\)')
    c.ok("UID STORE 4,5 +FLAGS.SILENT (\\Seen)")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    u = c.ok("EXPUNGE")
    assert u.index('* ESEARCH (TAG "S1") REMOVEFROM (0 3)') < u.index("* 3 EXPUNGE"), u
    expect(u, r'\* ESEARCH \(TAG "U1"\) UID REMOVEFROM \(0 4\)')
    # the tag of a live search cannot be used again for one
    u, t = c.run("SEARCH RETURN (UPDATE) ALL", tag="S1")
    assert t.startswith("BAD"), t


def test_update_from_another_session(server):
    c = server.conn()
    fill(c, 4)
    u, _ = c.run("UID SEARCH RETURN (UPDATE COUNT) FLAGGED", tag="F1")
    assert esearch(u) == ['* ESEARCH (TAG "F1") UID COUNT 0']
    d = server.conn(select="INBOX")
    d.ok("STORE 2:3 +FLAGS (\\Flagged)")
    u = c.ok("NOOP")
    # the FETCH of the change, then the update (not a new COUNT)
    assert esearch(u) == ['* ESEARCH (TAG "F1") UID ADDTO (0 2:3)'], u
    assert u.index(esearch(u)[0]) > u.index(next(l for l in u if l.startswith("* 2 FETCH")))
    # an expunge by the other session: REMOVEFROM, then the EXPUNGE, at the next NOOP
    d.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    d.ok("EXPUNGE")
    u = c.ok("NOOP")
    assert u.index('* ESEARCH (TAG "F1") UID REMOVEFROM (0 2)') < u.index("* 2 EXPUNGE"), u
    # new mail that matches: EXISTS first, then ADDTO; mail that does not: nothing
    append(d, "INBOX", "flagged one", flags="\\Flagged")
    append(d, "INBOX", "plain one")
    u = c.ok("NOOP")
    assert u.index("* 5 EXISTS") < u.index('* ESEARCH (TAG "F1") UID ADDTO (0 5)'), u
    assert len(esearch(u)) == 1
    # a message that stops matching because another session changed its keyword
    d.ok("STORE 1 +FLAGS (\\Flagged)")
    d.ok("STORE 1 -FLAGS (\\Flagged)")
    u = c.ok("NOOP")
    assert esearch(u) == []  # matched and stopped matching between two looks: no change
    d.ok("UID STORE 3 -FLAGS (\\Flagged)")
    u = c.ok("NOOP")
    assert esearch(u) == ['* ESEARCH (TAG "F1") UID REMOVEFROM (0 3)'], u


def test_update_text_keys_and_sequence_sets(server):
    c = server.conn()
    fill(c, 3)
    # a BODY key is matched against the new message's text
    u, _ = c.run("SEARCH RETURN (UPDATE) BODY needle", tag="B1")
    # sequence numbers in the keys are those of the command's time (RFC 5267 4.3)
    u, _ = c.run("SEARCH RETURN (UPDATE ALL) 2:* UNSEEN", tag="Q1")
    assert esearch(u) == ['* ESEARCH (TAG "Q1") ALL 2:3']
    u = append(c, "INBOX", "hay", "there is a needle here")
    expect(esearch(u), r'\* ESEARCH \(TAG "B1"\) ADDTO \(0 4\)')
    none_match(u, r'.*TAG "Q1".*')  # message 4 had no number when Q1 came
    u = c.ok("STORE 2 +FLAGS (\\Seen)")
    assert esearch(u) == ['* ESEARCH (TAG "Q1") REMOVEFROM (0 2)']
    u = c.ok("STORE 1 -FLAGS (\\Seen)")
    assert esearch(u) == []  # message 1 was not in 2:* then


def test_sort_update_positions(server):
    """CONTEXT=SORT: positions are sort positions; a set is a run of them."""
    c = server.conn()
    fill(c, 5, sizes=[50, 10, 40, 30, 20])  # by SIZE: 2 5 4 3 1
    u, _ = c.run("SORT RETURN (UPDATE ALL) (SIZE) US-ASCII UNSEEN", tag="Z1")
    assert esearch(u) == ['* ESEARCH (TAG "Z1") ALL 2,5,4,3,1']
    # 5 and 3 are positions 2 and 4: two runs, the second at 3 once the first is gone
    u = c.ok("STORE 5,3 +FLAGS (\\Seen)")
    assert esearch(u) == ['* ESEARCH (TAG "Z1") REMOVEFROM (2 5 3 3)'], u
    # back in: at their final positions, in ascending order
    u = c.ok("STORE 3,5 -FLAGS (\\Seen)")
    assert esearch(u) == ['* ESEARCH (TAG "Z1") ADDTO (2 5 4 3)'], u
    # a new message of 35 bytes sorts between 4 (30) and 3 (40): position 4
    u = append(c, "INBOX", "s6", "x" * 35)
    assert u.index("* 6 EXISTS") < u.index('* ESEARCH (TAG "Z1") ADDTO (4 6)'), u
    # an expunge: the positions before it, then the EXPUNGE
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    u = c.ok("EXPUNGE")
    assert u == ['* ESEARCH (TAG "Z1") REMOVEFROM (3 4)', "* 4 EXPUNGE"], u
    # UID SORT with UPDATE
    u, _ = c.run("UID SORT RETURN (UPDATE) (REVERSE SIZE) US-ASCII SEEN", tag="Z2")
    u = c.ok("STORE 1 +FLAGS (\\Seen)")
    expect(esearch(u), r'\* ESEARCH \(TAG "Z2"\) UID ADDTO \(1 1\)',
           r'\* ESEARCH \(TAG "Z1"\) REMOVEFROM \(5 1\)')


def test_update_limit_cancel_and_unselect(server):
    c = server.conn()
    fill(c, 2)
    for i in range(10):
        u, t = c.run("SEARCH RETURN (UPDATE) SEEN", tag=f"L{i}")
        assert t.startswith("OK") and not any("NOUPDATE" in l for l in u), u
    # the eleventh is answered, but not kept up to date
    u, t = c.run("SEARCH RETURN (UPDATE COUNT) SEEN", tag="L10")
    assert t.startswith("OK"), t
    expect(u, r'\* ESEARCH \(TAG "L10"\) COUNT 0', r'\* NO \[NOUPDATE "L10"\] .*10.*')
    u, t = c.run('CANCELUPDATE "L0" "L1"')
    assert t.startswith("OK"), t
    u, t = c.run("SORT RETURN (UPDATE) (ARRIVAL) US-ASCII SEEN", tag="L11")
    assert not any("NOUPDATE" in l for l in u), u
    u = c.ok("STORE 1 +FLAGS (\\Seen)")
    tags = sorted(re.search(r'TAG "(\w+)"', l).group(1) for l in esearch(u))
    assert tags == sorted([f"L{i}" for i in range(2, 10)] + ["L11"]), u
    # no update survives the mailbox: after a new SELECT, nothing is sent
    c.ok("SELECT INBOX")
    u = c.ok("STORE 2 +FLAGS (\\Seen)")
    assert esearch(u) == []
    c.bad('CANCELUPDATE "L2"')
