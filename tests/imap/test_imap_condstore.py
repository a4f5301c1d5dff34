"""CONDSTORE and QRESYNC (RFC 7162) transcripts against `mailfs serve`, with the client quirks
of ../shared/LESSONS.md (iOS's CHANGEDSINCE 0, no HIGHESTMODSEQ 0, MODSEQ in .SILENT replies)."""
import os
import re
import subprocess

import pytest

from conftest import mountinfo_has
from imapfix import Server, expect, none_match, server, start_with_mount, stop_server  # noqa: F401

MODSEQ_MAX = 2**63 - 1


def msg(n):
    return (b"From: bob@example.com\r\nTo: alice@example.com\r\n"
            b"Subject: message %d\r\nMessage-ID: <c%d@example.com>\r\n\r\nbody %d\r\n" % (n, n, n))


def fill(srv, n):
    for i in range(1, n + 1):
        srv.deliver(msg(i))


def code(lines, name):
    """The number in the first `* OK [NAME n]` of LINES (None if there is none)."""
    for l in lines:
        m = re.match(r"\* OK \[%s (\d+)\]" % name, l)
        if m:
            return int(m.group(1))
    return None


def modseqs(lines):
    """{uid: modseq} from FETCH responses carrying UID and MODSEQ."""
    out = {}
    for l in lines:
        u, m = re.search(r"UID (\d+)", l), re.search(r"MODSEQ \((\d+)\)", l)
        if u and m:
            out[int(u.group(1))] = int(m.group(1))
    return out


def qresync_session(srv):
    c = srv.conn()
    u = c.ok("ENABLE QRESYNC")
    expect(u, r"\* ENABLED QRESYNC")
    return c


def test_capabilities_and_enable(server):
    c = server.conn()
    caps = c.ok("CAPABILITY")[0].split()
    assert "CONDSTORE" in caps and "QRESYNC" in caps
    expect(c.ok("ENABLE CONDSTORE"), r"\* ENABLED CONDSTORE")
    expect(c.ok("ENABLE CONDSTORE"), r"\* ENABLED")  # already on: not listed again
    expect(c.ok("ENABLE QRESYNC CONDSTORE"), r"\* ENABLED QRESYNC")
    d = server.conn()
    expect(d.ok("ENABLE QRESYNC"), r"\* ENABLED QRESYNC")  # implies CONDSTORE...
    expect(d.ok("ENABLE CONDSTORE"), r"\* ENABLED")  # ...so this one adds nothing


def test_highestmodseq_is_never_zero(server):
    c = server.conn()
    c.ok("CREATE Empty")
    u = c.ok("SELECT Empty")
    hms = code(u, "HIGHESTMODSEQ")
    assert hms is not None and hms >= 1, u
    u = c.ok("STATUS Empty (HIGHESTMODSEQ MESSAGES)")
    expect(u, r"\* STATUS \"Empty\" \(MESSAGES 0 HIGHESTMODSEQ [1-9]\d*\)")
    u = c.ok("EXAMINE Empty (CONDSTORE)")
    assert code(u, "HIGHESTMODSEQ") == hms
    # a change moves it on, in SELECT and STATUS alike
    fill(server, 1)
    c.ok('APPEND Empty {5+}\r\nx\r\ny')
    u = c.ok("STATUS Empty (HIGHESTMODSEQ)")
    later = int(re.search(r"HIGHESTMODSEQ (\d+)", u[0]).group(1))
    assert later > hms
    assert code(c.ok("SELECT Empty"), "HIGHESTMODSEQ") == later


def test_fetch_modseq_and_changedsince(server):
    fill(server, 3)
    c = server.conn(select="INBOX")
    u = c.ok("FETCH 1:3 (MODSEQ)")
    ms = [int(x) for x in re.findall(r"\* \d FETCH \(MODSEQ \((\d+)\)\)", " ".join(u))]
    assert len(ms) == 3 and ms == sorted(ms), u
    u = c.ok("STORE 2 +FLAGS (\\Flagged)")
    new = modseqs(u)[2]
    assert new > ms[2], u  # CONDSTORE is on (FETCH MODSEQ): STORE's reply has UID and MODSEQ
    u = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {ms[2]})")
    expect(u, rf"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged \\Recent\) MODSEQ \({new}\)\)")
    assert len(u) == 1, u
    # CHANGEDSINCE adds MODSEQ even when not asked for, sequence FETCH included
    u = c.ok(f"FETCH 1:* (UID) (CHANGEDSINCE {new - 1})")
    assert u == [f"* 2 FETCH (UID 2 MODSEQ ({new}))"], u
    # iOS sends CHANGEDSINCE 0 (RFC 7162 wants 1 or more): taken as "everything"
    u = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert len(u) == 3 and all("MODSEQ" in l for l in u), u
    # nothing changed since the highest: nothing
    assert c.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {new})") == []
    # a FETCH that sets \Seen sets it only on the messages CHANGEDSINCE lets through
    u = c.ok(f"FETCH 1:3 (BODY[]) (CHANGEDSINCE {new - 1})")
    assert len(u) == 1 and u[0].startswith("* 2 FETCH ") and "\\Seen" in u[0], u
    none_match(c.ok("FETCH 1,3 (FLAGS)"), r".*\\Seen.*")


def test_bad_modseq_arguments(server):
    fill(server, 1)
    c = server.conn(select="INBOX")
    for bad in [str(MODSEQ_MAX + 1), "99999999999999999999", "-1", "12a", "(1)"]:
        u, t = c.run(f"FETCH 1 (FLAGS) (CHANGEDSINCE {bad})")
        assert t.startswith("BAD") and "CHANGEDSINCE" in t and "mod-sequence" in t, t
        u, t = c.run(f"STORE 1 (UNCHANGEDSINCE {bad}) +FLAGS (\\Seen)")
        assert t.startswith("BAD") and "UNCHANGEDSINCE" in t, t
        u, t = c.run(f"SEARCH MODSEQ {bad}")
        assert t.startswith("BAD") and "MODSEQ" in t, t
    c.ok(f"FETCH 1 (FLAGS) (CHANGEDSINCE {MODSEQ_MAX})")
    c.bad("FETCH 1 (FLAGS) (CHANGEDSINCE)")
    c.bad("FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)")
    c.bad("FETCH 1 (FLAGS) (FOO 1)")
    c.bad("FETCH 1 (FLAGS) CHANGEDSINCE")
    c.bad("STORE 1 (UNCHANGEDSINCE 1 FOO 2) +FLAGS (\\Seen)")
    c.bad("STORE 1 (FOO 1) +FLAGS (\\Seen)")
    # VANISHED: UID FETCH only, after ENABLE QRESYNC, with CHANGEDSINCE
    u, t = c.run("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert t.startswith("BAD") and "ENABLE QRESYNC" in t, t
    c.ok("ENABLE QRESYNC")
    c.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    c.bad("UID FETCH 1:* (FLAGS) (VANISHED)")
    # SEARCH MODSEQ's entry name and type
    c.bad('SEARCH MODSEQ "/other/x" all 1')
    c.bad('SEARCH MODSEQ "/flags/\\\\seen" none 1')
    c.bad('SEARCH MODSEQ "/flags/\\\\seen" all')


@pytest.mark.parametrize("enable", [
    "SELECT INBOX (CONDSTORE)", "EXAMINE INBOX (CONDSTORE)", "FETCH 1 (MODSEQ)",
    "FETCH 1 (UID) (CHANGEDSINCE 1)", "SEARCH MODSEQ 1", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (x)",
    "STATUS INBOX (HIGHESTMODSEQ)", "ENABLE CONDSTORE"])
def test_condstore_enabling_commands(server, enable):
    fill(server, 1)
    plain = server.conn(select="INBOX")
    u = plain.ok("FETCH 1 (FLAGS)")
    none_match(u, r".*MODSEQ.*")
    c = server.conn(select="INBOX")
    hms = code(c.ok("NOOP") + c.ok("SELECT INBOX"), "HIGHESTMODSEQ")
    u = c.ok(enable)
    if not enable.startswith(("SELECT", "EXAMINE")):
        # the first enabling command with a mailbox selected tells its HIGHESTMODSEQ
        assert code(u, "HIGHESTMODSEQ") == hms, u
    u = c.ok("FETCH 1 (FLAGS)")
    expect(u, r"\* 1 FETCH \(FLAGS \(.*\) MODSEQ \(\d+\)\)")
    # and the other session's changes reach it with MODSEQ
    plain.ok("STORE 1 +FLAGS.SILENT ($Other)")
    u = c.ok("NOOP")
    expect(u, r"\* 1 FETCH \(UID 1 FLAGS \(.*\$Other.*\) MODSEQ \(\d+\)\)")


def test_store_unchangedsince(server):
    fill(server, 4)
    c = server.conn(select="INBOX")
    ms = modseqs(c.ok("UID FETCH 1:4 (MODSEQ)"))
    # .SILENT replies still carry MODSEQ (and UID) once CONDSTORE is on
    u = c.ok(f"STORE 1 (UNCHANGEDSINCE {ms[1]}) +FLAGS.SILENT (\\Seen)")
    assert len(u) == 1 and re.fullmatch(r"\* 1 FETCH \(UID 1 MODSEQ \((\d+)\)\)", u[0]), u
    m1 = modseqs(u)[1]
    assert m1 > ms[4]
    u = c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")  # no UNCHANGEDSINCE: the same
    assert re.fullmatch(r"\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)", u[0]), u
    # message 1 changed after ms[4]; 3 and 4 did not: only 1 fails, and is named
    u, t = c.run(f"STORE 1,3:4 (UNCHANGEDSINCE {ms[4]}) +FLAGS (\\Answered)")
    assert t.startswith("OK [MODIFIED 1]"), t
    expect(u, r"\* 3 FETCH \(FLAGS \(\\Answered \\Recent\) UID 3 MODSEQ \(\d+\)\)",
           r"\* 4 FETCH \(FLAGS \(\\Answered \\Recent\) UID 4 MODSEQ \(\d+\)\)")
    assert len(u) == 2, u
    assert "\\Answered" not in c.ok("FETCH 1 (FLAGS)")[0]
    # UID STORE names UIDs
    u, t = c.run(f"UID STORE 1:2 (UNCHANGEDSINCE {ms[1]}) -FLAGS (\\Seen)")
    assert t.startswith("OK [MODIFIED 1:2]") and u == [], (u, t)
    # UNCHANGEDSINCE 0 always fails (RFC 7162 example 7)
    u, t = c.run("STORE 1:4 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert t.startswith("OK [MODIFIED 1:4]") and u == [], (u, t)
    none_match(c.ok("FETCH 1:4 (FLAGS)"), r".*\$MDNSent.*")
    # a sequence STORE over a message another session expunged meanwhile: NO [MODIFIED]
    # (RFC 7162 example 11), the others stored
    other = server.conn(select="INBOX")
    other.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    u, t = c.run(f"STORE 1:4 (UNCHANGEDSINCE {m1}) +FLAGS (\\Flagged)")
    assert t.startswith("NO [MODIFIED 2:3]"), t
    expect(u, r"\* 1 FETCH \(FLAGS \(\\Seen \\Flagged \\Recent\) UID 1 MODSEQ \(\d+\)\)")
    u = c.ok("NOOP")
    expect(u, r"\* 4 EXPUNGE")


def test_search_modseq(server):
    fill(server, 4)
    c = server.conn(select="INBOX")
    ms = modseqs(c.ok("UID FETCH 1:4 (MODSEQ)"))
    u = c.ok(f"SEARCH MODSEQ {ms[3]}")
    assert u == [f"* SEARCH 3 4 (MODSEQ {ms[4]})"], u
    u = c.ok(f'UID SEARCH MODSEQ "/flags/\\\\draft" all {ms[2]} NOT UID 4')
    assert u == [f"* SEARCH 2 3 (MODSEQ {ms[3]})"], u
    u = c.ok(f"SEARCH RETURN (ALL COUNT) MODSEQ {ms[2]}")
    assert re.fullmatch(rf'\* ESEARCH \(TAG "t\d+"\) COUNT 3 ALL 2:4 MODSEQ {ms[4]}', u[0]), u
    # MIN and MAX: the MODSEQ of the messages they return (RFC 4731, imaptest's esearch-condstore)
    c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")  # now the highest
    m1 = modseqs(c.ok("UID FETCH 1 (MODSEQ)"))[1]
    for ret, want in [("MIN", m1), ("MAX", ms[3]), ("MIN MAX", m1), ("ALL", m1), ("COUNT", m1)]:
        u = c.ok(f"SEARCH RETURN ({ret}) 1:3 MODSEQ 1")
        assert u[0].endswith(f" MODSEQ {want}"), (ret, u)
    u = c.ok("SEARCH RETURN (MAX) 2:4 MODSEQ 1")
    assert u[0].endswith(f"MAX 4 MODSEQ {ms[4]}"), u
    # no match: no MODSEQ
    assert c.ok(f"SEARCH MODSEQ {m1 + 1000}") == ["* SEARCH"]
    u = c.ok(f"SEARCH RETURN (ALL) MODSEQ {m1 + 1000}")
    none_match(u, r".*MODSEQ.*")
    c.ok("SEARCH MODSEQ 0")  # mod-sequence-valzer: 0 is allowed here
    # SORT says it too (RFC 7162 3.1.9); THREAD does not
    assert c.ok(f"SORT (SUBJECT) UTF-8 MODSEQ {ms[3]}") == [f"* SORT 1 3 4 (MODSEQ {m1})"]
    assert c.ok(f"SORT (SUBJECT) UTF-8 MODSEQ {ms[3]} NOT 1") == [f"* SORT 3 4 (MODSEQ {ms[4]})"]
    u = c.ok(f"SORT RETURN (ALL) (SUBJECT) UTF-8 MODSEQ {ms[3]}")
    assert u[0].endswith(f" ALL 1,3:4 MODSEQ {m1}"), u
    assert c.ok(f"SORT (ARRIVAL) UTF-8 MODSEQ {m1 + 1000}") == ["* SORT"]
    none_match(c.ok(f"THREAD REFERENCES UTF-8 MODSEQ {ms[3]}"), r".*MODSEQ.*")


def test_two_sessions_see_modseqs(server):
    fill(server, 2)
    a = server.conn()
    a.ok("ENABLE CONDSTORE")
    a.ok("SELECT INBOX")
    b = server.conn(select="INBOX")
    u = b.ok("STORE 2 (UNCHANGEDSINCE %d) +FLAGS ($Work)" % MODSEQ_MAX)
    new = modseqs(u)[2]
    u = a.ok("NOOP")
    expect(u, r"\* FLAGS \(.*\$Work.*\)", rf"\* 2 FETCH \(UID 2 FLAGS \(\$Work( \\Recent)?\) MODSEQ \({new}\)\)")
    # a's cached MODSEQ now fails b's change check, and the other way round
    u, t = a.run(f"UID STORE 2 (UNCHANGEDSINCE {new - 1}) +FLAGS ($Late)")
    assert t.startswith("OK [MODIFIED 2]"), t
    u = a.ok(f"UID STORE 2 (UNCHANGEDSINCE {new}) +FLAGS ($Late)")
    newer = modseqs(u)[2]
    u, t = b.run(f"UID STORE 2 (UNCHANGEDSINCE {new}) -FLAGS ($Work)")
    assert t.startswith("OK [MODIFIED 2]"), t
    # the change that made it fail comes with the answer (RFC 7162 example 10)
    expect(u, rf"\* 2 FETCH \(UID 2 FLAGS \(.*\$Late.*\) MODSEQ \({newer}\)\)")


def test_select_qresync(server):
    fill(server, 6)
    c = server.conn()
    u, t = c.run("SELECT INBOX (QRESYNC (1 1))")
    assert t.startswith("BAD") and "ENABLE QRESYNC" in t, t
    c = qresync_session(server)
    u = c.ok("SELECT INBOX")
    uv, hms = code(u, "UIDVALIDITY"), code(u, "HIGHESTMODSEQ")
    # changes while "away": 2 and 5 expunged, 3 flagged, 7 arrives
    o = server.conn(select="INBOX")
    o.ok("STORE 2,5 +FLAGS.SILENT (\\Deleted)")
    o.ok("EXPUNGE")
    o.ok("STORE 3 +FLAGS.SILENT (\\Flagged)")  # UID 4 now (2 is gone)
    server.deliver(msg(7))
    c.ok("UNSELECT")
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms}))")
    assert "* 5 EXISTS" in u and "* VANISHED (EARLIER) 2,5" in u, u
    expect(u, r"\* 3 FETCH \(UID 4 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)")
    # the new message 7 (seq 5) is new since hms too: it is reported like any change
    fetches = [l for l in u if " FETCH " in l]
    assert [re.search(r"UID (\d+)", l).group(1) for l in fetches] == ["4", "7"], u
    assert u.index("* VANISHED (EARLIER) 2,5") < u.index(fetches[0])
    # known-uids restrict both
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:3))")
    expect(u, r"\* OK \[CLOSED\].*", r"\* VANISHED \(EARLIER\) 2")
    none_match(u, r".* FETCH .*")
    # sequence match data: (seq 2 = UID 3) matches, so nothing up to UID 3 is reported
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:7 (2,3 3,4)))")
    none_match(u, r"\* VANISHED \(EARLIER\) 2.*")
    expect(u, r"\* VANISHED \(EARLIER\) 5")
    # a mismatching pair stops the floor before it
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:7 (1,2 1,9)))")
    expect(u, r"\* VANISHED \(EARLIER\) 2,5")
    # nothing changed since now
    now = code(u, "HIGHESTMODSEQ")
    u = c.ok(f"EXAMINE INBOX (QRESYNC ({uv} {now}))")
    none_match(u, r".*(VANISHED|FETCH).*")
    # another UIDVALIDITY: a plain SELECT
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv + 1} {hms}))")
    none_match(u, r".*(VANISHED|FETCH).*")
    assert code(u, "HIGHESTMODSEQ") == now
    # malformed parameters: BAD, and the selected mailbox stays selected
    for bad in [f"({uv})", f"({uv} {hms} 1:*)", f"(0 {hms})", f"({uv} {hms} 1:5 (1:2 1))",
                f"({uv} {hms} 1:5 (1 1) 3)", f"({uv} {MODSEQ_MAX + 1})", f"({uv} x)",
                f"({uv} {hms} 0)", "x"]:
        u, t = c.run(f"SELECT INBOX (QRESYNC {bad})")
        assert t.startswith("BAD"), (bad, t)
    c.bad("SELECT INBOX (FOO)")
    c.bad("SELECT INBOX CONDSTORE")
    c.ok("FETCH 1 (FLAGS)")


def test_uid_fetch_vanished(server):
    fill(server, 5)
    c = qresync_session(server)
    u = c.ok("SELECT INBOX")
    hms = code(u, "HIGHESTMODSEQ")
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    u, t = c.run("EXPUNGE")
    assert u == ["* VANISHED 2,4"] and t.startswith("OK [HIGHESTMODSEQ "), (u, t)
    c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    u = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert u[0] == "* VANISHED (EARLIER) 2,4", u
    expect(u[1:], r"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)")
    # only the UIDs asked about
    u = c.ok(f"UID FETCH 3:5 (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert u == ["* VANISHED (EARLIER) 4"], u


def test_vanished_replaces_expunge(server):
    fill(server, 6)
    q = qresync_session(server)
    q.ok("SELECT INBOX")
    plain = server.conn(select="INBOX")
    plain.ok("ENABLE CONDSTORE")
    # another session's expunge: VANISHED for q, EXPUNGE for the CONDSTORE-only one
    o = server.conn(select="INBOX")
    o.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    o.ok("EXPUNGE")
    assert q.ok("NOOP") == ["* VANISHED 1"]
    assert plain.ok("NOOP") == ["* 1 EXPUNGE"]
    # UID EXPUNGE
    q.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")  # UIDs 2, 3
    u, t = q.run("UID EXPUNGE 3")
    assert u == ["* VANISHED 3"] and t.startswith("OK [HIGHESTMODSEQ"), (u, t)
    # MOVE
    q.ok("CREATE Dest")
    u, t = q.run("MOVE 2:3 Dest")  # UIDs 4, 5
    assert t.startswith("OK"), t
    assert "* VANISHED 4:5" in u and not any("EXPUNGE" in l for l in u), u
    # plain's view is UIDs 2:6: 3, 4 and 5 are its numbers 2 to 4, announced highest first
    u = plain.ok("NOOP")
    assert [l for l in u if "EXPUNGE" in l] == ["* 4 EXPUNGE", "* 3 EXPUNGE", "* 2 EXPUNGE"], u
    expect(u, r"\* 1 FETCH \(UID 2 FLAGS \(\\Deleted\) MODSEQ \(\d+\)\)")
    # CLOSE: nothing, and no HIGHESTMODSEQ in its answer (RFC 7162 3.2.8)
    u, t = q.run("CLOSE")
    assert u == [] and "HIGHESTMODSEQ" not in t and t.startswith("OK"), (u, t)


@pytest.fixture
def served_mount(alice, tmp_path):
    """`mailfs serve --imap ... --mount alice:DIR` -> (server, DIR)."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount needs FUSE")
    mnt = tmp_path / "served"
    mnt.mkdir()
    proc, port = start_with_mount(alice, mnt)
    srv = Server(alice, proc, port, None)
    try:
        yield srv, mnt
    finally:
        stop_server(srv)
        for opt in ("-u", "-uz"):
            if not mountinfo_has(mnt):
                break
            subprocess.run(["fusermount3", opt, str(mnt)], capture_output=True)


def test_qresync_resync_like_thunderbird_and_k9(served_mount):
    """The client caches UIDVALIDITY, HIGHESTMODSEQ and its UIDs, goes away; flags change
    through the mount, messages are expunged over IMAP and new mail is delivered; then one
    SELECT (QRESYNC ...) brings it all, and UID FETCH of the new UIDs completes the cache."""
    srv, mnt = served_mount
    fill(srv, 5)
    c = qresync_session(srv)
    u = c.ok("SELECT INBOX")
    uv, hms = code(u, "UIDVALIDITY"), code(u, "HIGHESTMODSEQ")
    cache = {}
    for l in c.ok("UID FETCH 1:* (UID FLAGS MODSEQ)"):
        m = re.search(r"UID (\d+) FLAGS \((.*?)\)", l)
        cache[int(m.group(1))] = set(m.group(2).split())
    c.ok("LOGOUT")
    assert sorted(cache) == [1, 2, 3, 4, 5]
    # away: flags through the mount (on UID 2's file), expunges over IMAP, new mail
    names = sorted(os.listdir(mnt / "INBOX"))
    assert len(names) == 5
    o = srv.conn(select="INBOX")
    name2 = next(n for n in names
                 if "body 2" in (mnt / "INBOX" / n).read_text(errors="replace"))
    os.setxattr(mnt / "INBOX" / name2, "user.mail.flags", b"\\Flagged $Work")
    o.ok("UID STORE 4,5 +FLAGS.SILENT (\\Deleted)")
    o.ok("UID EXPUNGE 4,5")
    srv.deliver(msg(6))
    srv.deliver(msg(7))
    # back: one SELECT
    c = qresync_session(srv)
    known = ",".join(str(x) for x in sorted(cache))
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} {known}))")
    assert code(u, "UIDVALIDITY") == uv
    assert "* 5 EXISTS" in u, u
    assert code(u, "UIDNEXT") == 8
    expect(u, r"\* VANISHED \(EARLIER\) 4:5",
           r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged \$Work\) MODSEQ \(\d+\)\)",
           r"\* FLAGS \(.*\$Work.*\)")
    none_match(u, r"\* \d+ FETCH \(UID [13] .*")  # unchanged: not sent
    for uid in (4, 5):
        del cache[uid]
    cache[2] = {"\\Flagged", "$Work"}
    # new mail: the UIDs above the cache's
    u = c.ok(f"UID FETCH {max(cache) + 1}:* (UID FLAGS)")
    assert sorted(int(re.search(r"UID (\d+)", l).group(1)) for l in u) == [6, 7], u
    new_hms = code(c.ok("SELECT INBOX"), "HIGHESTMODSEQ")
    assert new_hms > hms
    # a second resync from the new point: nothing
    u = c.ok(f"SELECT INBOX (QRESYNC ({uv} {new_hms} 1:7))")
    none_match(u, r".*(VANISHED|FETCH \().*")


def test_held_back_expunge_lowers_highestmodseq(server):
    """A FETCH by sequence number may not announce another session's expunge, but shows a
    later flag change's MODSEQ: it also says a HIGHESTMODSEQ below the expunge (RFC 7162 3.2),
    so a client cut off then does not skip the expunge at its next QRESYNC."""
    fill(server, 3)
    q = qresync_session(server)
    q.ok("SELECT INBOX")
    o = server.conn(select="INBOX")
    o.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    o.ok("EXPUNGE")
    hms = code(o.ok("SELECT INBOX"), "HIGHESTMODSEQ")  # the expunge's MODSEQ
    o.ok("STORE 1 +FLAGS (\\Flagged)")
    u = q.ok("FETCH 1 (FLAGS)")
    assert modseqs(u)[1] > hms, u  # the pushed change, after the expunge
    none_match(u, r"\* VANISHED.*")
    low = code(u, "HIGHESTMODSEQ")
    assert low is not None and low < hms, u
    assert q.ok("NOOP") == ["* VANISHED 3"]
    none_match(q.ok("NOOP"), r".*HIGHESTMODSEQ.*")
