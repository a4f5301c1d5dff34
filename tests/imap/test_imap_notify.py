"""NOTIFY (RFC 5465): pushes between commands, for the selected and other mailboxes."""
import re
import socket
import time

from imapfix import expect, none_match, server  # noqa: F401 (fixture)

MSG = (b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ping\r\n"
       b"Date: Mon, 3 Feb 2025 10:00:00 +0000\r\n\r\nhello\r\n")


def quiet(c, secs=0.4):
    """Nothing arrives for SECS."""
    try:
        l = c.line(timeout=secs)
    except (socket.timeout, TimeoutError):
        return
    raise AssertionError(f"unexpected {l!r}")


def append(o, mailbox, flags=""):
    o.send(f"a1 APPEND {mailbox} {flags}{{{len(MSG)}+}}\r\n".encode() + MSG + b"\r\n")
    _, t = o.wait("a1")
    assert t.startswith("OK"), t


def test_capability_and_usage(server):
    c = server.conn()
    u = c.ok("CAPABILITY")
    assert "NOTIFY" in u[0].split()
    c.ok("NOTIFY NONE")
    c.bad("NOTIFY")
    c.bad("NOTIFY SET")
    c.bad("NOTIFY SET STATUS")
    c.bad("NOTIFY BOGUS")
    c.bad("NOTIFY SET (personal)")                        # no events
    c.bad("NOTIFY SET (nosuchfilter (MessageNew MessageExpunge))")
    c.bad("NOTIFY SET personal (MessageNew)")             # groups are lists
    c.bad("NOTIFY SET (personal ())")
    c.bad("NOTIFY SET (selected (MailboxName))")          # message events only
    c.bad("NOTIFY SET (selected (MessageNew)) (selected-delayed (MessageNew))")
    c.bad("NOTIFY SET (personal (MessageNew (UID)))")      # fetch-atts only for SELECTED
    c.bad("NOTIFY SET (mailboxes (MessageNew))")           # names missing
    c.bad("NOTIFY SET (mailboxes () (MessageNew))")
    c.bad("NOTIFY SET (personal INBOX (MessageNew))")
    _, t = c.run("NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))")
    assert re.match(r"NO \[BADEVENT \(MessageNew MessageExpunge FlagChange MailboxName "
                    r"SubscriptionChange\)\] .*AnnotationChange", t), t
    c.no("NOTIFY SET (personal (MailboxMetadataChange))", "BADEVENT")
    c.no("NOTIFY SET (personal (SomeFutureEvent))", "BADEVENT")
    c.no("NOTIFY SET (selected (MessageNew (UID ENVELOPE) MessageExpunge))", "BADEVENT")
    # bounds
    groups = " ".join(["(personal (MailboxName))"] * 101)
    _, t = c.run("NOTIFY SET " + groups)
    assert t.startswith("BAD") and "100" in t, t
    names = " ".join(f"m{i}" for i in range(1001))
    _, t = c.run(f"NOTIFY SET (mailboxes ({names}) (MessageNew MessageExpunge))")
    assert t.startswith("BAD") and "1000" in t, t
    c.ok(f"NOTIFY SET (mailboxes ({' '.join(f'm{i}' for i in range(1000))}) (MessageNew "
         "MessageExpunge))")
    c.ok("NOTIFY SET (personal NONE)")


def test_initial_status_as_imaptest_expects(server):
    """imaptest's notify script: which items SET STATUS sends per event kind."""
    c = server.conn()
    c.ok("CREATE box2")
    append(c, "box2")
    u = c.ok("NOTIFY SET STATUS (mailboxes box2 (MessageExpunge))")
    assert u == ['* STATUS "box2" (MESSAGES 1)'], u
    u = c.ok("NOTIFY SET STATUS (mailboxes box2 (MessageNew))")
    assert len(u) == 1 and re.fullmatch(
        r'\* STATUS "box2" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)', u[0]), u
    u = c.ok("NOTIFY SET STATUS (mailboxes box2 (FlagChange))")
    assert len(u) == 1 and re.fullmatch(r'\* STATUS "box2" \(UIDVALIDITY \d+ HIGHESTMODSEQ [1-9]\d*\)', u[0]), u
    u = c.ok("NOTIFY SET (mailboxes box2 (MessageNew MessageExpunge FlagChange))")
    assert u == [], u
    # the selected mailbox gets no STATUS; names that do not exist are ignored
    c.ok("SELECT box2")
    u = c.ok("NOTIFY SET STATUS (mailboxes (box2 nosuch INBOX) (MessageNew MessageExpunge))")
    assert len(u) == 1 and u[0].startswith('* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1'), u


def test_new_mail_in_another_folder_arrives_unasked(server):
    """A phone with one connection learns about new mail in every folder."""
    c = server.conn(select="INBOX")
    c.ok("CREATE Lists")
    c.ok("NOTIFY SET (selected (MessageNew (UID) MessageExpunge)) "
         "(personal (MessageNew MessageExpunge FlagChange))")
    t0 = time.monotonic()
    o = server.conn()
    append(o, "Lists")
    l = c.line(timeout=3)
    assert l == '* STATUS "Lists" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)', l
    assert time.monotonic() - t0 < 2
    # several changes of one mailbox, seen in one push, give one STATUS
    o.ok("SELECT Lists")
    o.ok("STORE 1 +FLAGS (\\Seen)")
    l = c.line(timeout=3)
    assert l == '* STATUS "Lists" (UNSEEN 0)', l
    o.ok("STORE 1 +FLAGS (\\Deleted)")
    assert c.line(timeout=3) == '* STATUS "Lists" (UNSEEN 0)'
    o.ok("EXPUNGE")
    assert c.line(timeout=3) == '* STATUS "Lists" (MESSAGES 0 UIDNEXT 2 UNSEEN 0)'
    # the selected mailbox: EXISTS and the FETCH asked for, at once, without a command
    server.deliver(MSG)
    assert c.line(timeout=3) == "* 1 EXISTS"
    assert c.line(timeout=3) == "* 1 RECENT"
    assert c.line(timeout=3) == "* 1 FETCH (UID 1)"
    o.ok("SELECT INBOX")
    o.ok("STORE 1 +FLAGS (\\Flagged)")
    assert c.line(timeout=3) == "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
    o.ok("STORE 1 +FLAGS (\\Deleted)")
    c.line(timeout=3)
    o.ok("EXPUNGE")
    assert c.line(timeout=3) == "* 1 EXPUNGE"
    # NOTIFY NONE stops it
    c.ok("NOTIFY NONE")
    append(o, "Lists")
    server.deliver(MSG)
    quiet(c)
    u = c.ok("NOOP")  # the base protocol still reports the selected mailbox
    expect(u, r"\* 1 EXISTS")
    none_match(u, r"\* STATUS .*")


def test_flag_change_with_condstore_tells_highestmodseq(server):
    """With CONDSTORE on, a flag change elsewhere is pushed with UIDVALIDITY and HIGHESTMODSEQ
    (RFC 5465 5.2), the HIGHESTMODSEQ STATUS would give."""
    c = server.conn()
    c.ok("CREATE Lists")
    c.ok("ENABLE CONDSTORE")
    c.ok("NOTIFY SET (personal (FlagChange))")
    o = server.conn()
    append(o, "Lists")
    o.ok("SELECT Lists")
    o.ok("STORE 1 +FLAGS (\\Flagged)")
    l = c.line(timeout=3)
    m = re.fullmatch(r'\* STATUS "Lists" \(UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ (\d+)\)', l)
    assert m, l
    s = o.ok('STATUS Lists (HIGHESTMODSEQ)')
    assert any(x.startswith("* STATUS") and f"HIGHESTMODSEQ {m.group(1)})" in x for x in s), (l, s)


def test_inboxes_and_subtree_filters(server):
    c = server.conn()
    c.ok("CREATE INBOX/sub")
    c.ok("CREATE Work/a")
    c.ok("CREATE Other")
    c.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge)) (subtree Work (MessageNew "
         "MessageExpunge))")
    o = server.conn()
    append(o, "Other")
    quiet(c)
    append(o, "INBOX/sub")
    assert c.line(timeout=3).startswith('* STATUS "INBOX/sub" (MESSAGES 1 ')
    append(o, "Work/a")
    assert c.line(timeout=3).startswith('* STATUS "Work/a" (MESSAGES 1 ')
    server.deliver(MSG)
    assert c.line(timeout=3).startswith('* STATUS "INBOX" (MESSAGES 1 ')
    # flag changes are not asked for here
    o.ok("SELECT Work/a")
    o.ok("STORE 1 +FLAGS (\\Seen)")
    quiet(c)


def test_subscribed_filter_follows_the_list(server):
    c = server.conn()
    c.ok("CREATE Fav")
    c.ok("NOTIFY SET (subscribed (MessageNew MessageExpunge))")
    o = server.conn()
    append(o, "Fav")
    quiet(c)
    o.ok("SUBSCRIBE Fav")
    append(o, "Fav")
    assert c.line(timeout=3).startswith('* STATUS "Fav" (MESSAGES 2 ')


def test_mailbox_names_as_list(server):
    c = server.conn()
    c.ok("CREATE Keep")
    c.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))")
    o = server.conn()
    o.ok("CREATE Fresh")
    assert c.line(timeout=3) == '* LIST (\\HasNoChildren) "/" "Fresh"'
    o.ok("CREATE Fresh/kid")
    assert c.line(timeout=3) == '* LIST (\\HasNoChildren) "/" "Fresh/kid"'
    o.ok("RENAME Fresh Renamed")
    # one LIST for the renamed mailbox, none for its child
    assert c.line(timeout=3) == '* LIST (\\HasChildren) "/" "Renamed" ("OLDNAME" ("Fresh"))'
    quiet(c)
    o.ok("DELETE Renamed/kid")
    assert c.line(timeout=3) == '* LIST (\\NonExistent) "/" "Renamed/kid"'
    o.ok("SUBSCRIBE Keep")
    assert c.line(timeout=3) == '* LIST (\\HasNoChildren \\Subscribed) "/" "Keep"'
    o.ok("UNSUBSCRIBE Keep")
    assert c.line(timeout=3) == '* LIST (\\HasNoChildren) "/" "Keep"'
    # a message event is not asked for
    append(o, "Keep")
    quiet(c)
    # NOTIFY NONE: nothing more
    c.ok("NOTIFY NONE")
    o.ok("CREATE Later")
    quiet(c)


def test_selected_delayed_holds_expunges(server):
    c = server.conn(select="INBOX")
    server.deliver(MSG)
    server.deliver(MSG)
    c.ok("NOOP")
    c.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
    o = server.conn(select="INBOX")
    o.ok("STORE 1 +FLAGS (\\Deleted)")
    assert c.line(timeout=3).startswith("* 1 FETCH (UID 1 FLAGS (\\Deleted")
    o.ok("EXPUNGE")
    quiet(c)
    u = c.ok("NOOP")
    assert u == ["* 1 EXPUNGE"], u
    # pushes also come during IDLE
    c.ok("NOTIFY SET (personal (MailboxName))")
    c.send("i IDLE\r\n")
    assert c.line().startswith("+")
    o.ok("CREATE DuringIdle")
    assert c.line(timeout=3) == '* LIST (\\HasNoChildren) "/" "DuringIdle"'
    c.send("DONE\r\n")
    assert c.line().startswith("i OK")


def test_push_waits_for_a_running_command_and_before_its_answer(server):
    """Pushes come before a command's tagged answer, never inside its output."""
    c = server.conn()
    c.ok("NOTIFY SET (personal (MailboxName))")
    o = server.conn()
    o.ok("CREATE X1")
    time.sleep(0.2)
    u, t = c.run("LIST \"\" X1")
    assert t.startswith("OK")
    # the push came first (between commands), the LIST answer after it
    assert u[0] == '* LIST (\\HasNoChildren) "/" "X1"', u
