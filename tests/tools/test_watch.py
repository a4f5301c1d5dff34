"""`mailfs watch`: the change feed as a stream of lines, for scripts that would use inotify
(which on a FUSE mount sees only the mount's own writes)."""
import json
import os
import queue
import subprocess
import threading

import pytest

from conftest import CORPUS, corpus_files, unmount, wait_for
from imapfix import start_server, start_with_mount, stop_server

MSG = b"From: a@example.org\r\nSubject: watched\r\n\r\nbody\r\n"


class Watch:
    """`mailfs watch ARGS` in the background; lines() collects what it printed so far."""

    def __init__(self, m, *args):
        self.proc = m.popen("watch", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # it names its starting position on stderr once it has read it: changes made from then
        # on are in what it prints
        self.started = self.proc.stderr.readline().decode()
        assert "after position" in self.started, self.started + self.proc.stderr.read().decode()
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.got = []

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line.decode())

    def until(self, pred, timeout=10):
        """Collects lines until PRED(lines) holds; returns the lines."""
        def more():
            while not self.q.empty():
                self.got.append(self.q.get())
            return pred(self.got)
        assert wait_for(more, timeout=timeout, step=0.01), f"watch printed only {self.got}"
        return self.got

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        return self.proc.stderr.read().decode()


def records(lines):
    return [json.loads(x) for x in lines]


def kinds(lines):
    return [r["kind"] for r in records(lines)]


def test_watch_sees_every_kind_of_change_with_paths(alice, tmp_path):
    """Each change by IMAP, deliver and the CLI is one line with its mailbox, UID and the path
    the file has in the mount; the expunge line still names the file that went."""
    srv = start_server(alice)
    try:
        w = Watch(alice, "--json", "alice")
        c = srv.conn(select="INBOX")
        srv.deliver(MSG)
        w.until(lambda g: len(g) >= 1)
        c.ok("NOOP")  # the session learns of message 1
        # each step waits for its line: watch reads the feed's changes with the names and flags
        # as they are when it reads them, so two steps read together would show the later state
        steps = [('STORE 1 +FLAGS (\\Seen $Work)', 2), ("CREATE Work", 3), ("RENAME Work Job", 4),
                 ("STORE 1 +FLAGS (\\Deleted)", 5), ("EXPUNGE", 6), ("DELETE Job", 7)]
        for command, lines in steps:
            c.ok(command)
            w.until(lambda g, n=lines: len(g) >= n)
        got = records(w.got)
        c.close()
        err = w.stop()
    finally:
        stop_server(srv)
    k = [r["kind"] for r in got]
    assert k == ["append", "flags", "mailbox-create", "mailbox-rename", "flags", "expunge",
                 "mailbox-delete"], (k, err)
    app = got[0]
    assert app["mailbox"] == "INBOX" and app["uid"] == 1
    assert app["path"] == "INBOX/0000000001.eml" and app["flags"] == ""
    fl = got[1]
    assert fl["uid"] == 1 and fl["flags"] == "\\Seen $Work"
    assert got[2]["mailbox"] == "Work" and got[2]["path"] == "Work"
    assert got[3]["mailbox"] == "Job" and got[3]["from"] == "Work"
    assert got[6]["mailbox"] == "Job" and got[6]["path"] == "Job"
    exp = next(r for r in got if r["kind"] == "expunge")
    assert exp["path"] == "INBOX/0000000001.eml" and exp["uid"] == 1
    seqs = [r["seq"] for r in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_watch_paths_exist_in_the_mount(alice, tmp_path):
    """A message that came over IMAP: the path watch prints (with --mount) is the file in the
    mount, there at once. This is what inotify on the mount cannot tell."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc, port = start_with_mount(alice, mnt)
    try:
        w = Watch(alice, "--json", "--mount", str(mnt), "alice")
        import socket

        from imapfix import Conn
        from conftest import PASSWORD
        c = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
        c.ok(f'LOGIN alice "{PASSWORD}"')
        c.send(b"a APPEND INBOX {%d}\r\n" % len(MSG))
        c.line()
        c.send(MSG + b"\r\n")
        c.wait("a")
        rec = records(w.until(lambda g: len(g) >= 1))[0]
        assert rec["kind"] == "append"
        assert rec["path"] == f"{mnt}/INBOX/0000000001.eml"
        with open(rec["path"], "rb") as f:
            assert f.read() == MSG
        # a rename in the mount is a rename line with the old path
        os.rename(rec["path"], mnt / "INBOX" / "kept.eml")
        ren = records(w.until(lambda g: len(g) >= 2))[1]
        assert ren["kind"] == "rename" and ren["path"] == f"{mnt}/INBOX/kept.eml"
        assert ren["from"] == "0000000001.eml"
        c.close()
        w.stop()
    finally:
        proc.terminate()
        proc.wait(10)
        unmount(mnt)


def test_watch_text_form_and_mailbox_filter(alice):
    """Without --json: tab-separated fields; --mailbox keeps only that mailbox's changes."""
    alice.run("mailbox", "create", "alice", "Work")
    w = Watch(alice, "--mailbox", "Work", "alice")
    alice.run("deliver", "alice", input=MSG)              # INBOX: not shown
    alice.run("deliver", "--mailbox", "Work", "alice", input=MSG)
    lines = w.until(lambda g: len(g) >= 1)
    w.stop()
    f = lines[0].rstrip("\n").split("\t")
    assert f[1:5] == ["append", "Work", "1", "Work/0000000001.eml"], f
    assert int(f[0]) > 0 and len(lines) == 1


def test_watch_resumes_since_a_position(alice):
    """--since N prints what happened after N first (a script restarted where it stopped),
    then goes on with new changes."""
    w = Watch(alice, "--json", "alice")
    alice.run("deliver", "alice", input=MSG)
    first = records(w.until(lambda g: len(g) >= 1))[0]
    w.stop()
    for _ in range(3):
        alice.run("deliver", "alice", input=MSG)
    w = Watch(alice, "--json", "--since", str(first["seq"]), "alice")
    got = records(w.until(lambda g: len(g) >= 3))
    assert [r["uid"] for r in got] == [2, 3, 4]
    assert all(r["seq"] > first["seq"] for r in got)
    alice.run("deliver", "alice", input=MSG)
    got = records(w.until(lambda g: len(g) >= 4))
    assert got[3]["uid"] == 5
    w.stop()


def test_watch_says_when_the_feed_was_trimmed(tmp_path):
    """A position older than the feed keeps: a 'trimmed' line naming where it now starts and a
    message on stderr, then the changes still held."""
    from conftest import Mailfs, PASSWORD
    m = Mailfs(tmp_path / "store")
    m.env["MAILFS_FEED_KEEP"] = "20"
    m.run("init")
    m.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
    for _ in range(30):
        m.run("deliver", "alice", input=MSG)
    w = Watch(m, "--json", "--since", "1", "alice")
    got = records(w.until(lambda g: len(g) >= 2))
    err = w.stop()
    assert got[0]["kind"] == "trimmed" and got[0]["seq"] > 1
    assert got[1]["seq"] == got[0]["seq"] + 1
    assert "no longer holds the changes after 1" in err


@pytest.mark.parametrize("args,code,text", [
    (["nobody"], 67, "no user 'nobody'"),
    (["--mailbox", "Nope", "alice"], 66, "has no mailbox 'Nope'"),
    (["--since", "x", "alice"], 64, "not 'x'"),
    (["--since", "99999999", "alice"], 64, "past the newest change"),
    (["--frobnicate", "alice"], 64, "unknown option '--frobnicate'"),
    ([], 64, "give the user"),
])
def test_watch_bad_arguments(alice, args, code, text):
    r = alice.run("watch", *args, check=False, timeout=10)
    assert r.returncode == code and text in r.stderr.decode(), r.stderr


def test_watch_ends_when_the_user_is_deleted(alice):
    w = Watch(alice, "--json", "alice")
    alice.run("deliver", "alice", input=MSG)
    w.until(lambda g: len(g) >= 1)
    alice.run("user", "del", "alice")
    assert w.proc.wait(10) == 67
    assert "was deleted" in w.proc.stderr.read().decode()


def test_watch_escapes_names_in_text(alice):
    """One change is one line whatever the mailbox name holds."""
    w = Watch(alice, "alice")
    alice.run("mailbox", "create", "alice", "a\\b")
    lines = w.until(lambda g: len(g) >= 1)
    w.stop()
    assert lines[0].split("\t")[2] == "a\\\\b"
