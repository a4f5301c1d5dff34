"""Between users: alice can never read, list or infer bob's mailboxes, through IMAP or her
mount, whatever names she tries."""
import os
import socket
import subprocess
import time

import pytest

from conftest import PASSWORD

SECRET = b"Subject: bob's secret\r\nMessage-ID: <secret@bob>\r\n\r\nthe treasure is buried\r\n"
TRIES = ['"../bob/INBOX"', '"/bob/INBOX"', '"bob/INBOX"', '"bob"', '"../bob"', '"Secret"',
         '"../../bob/Secret"', '"INBOX/../../bob/Secret"', '"%"', '"*"', '"bob/*"', '"~bob"',
         '"#shared/bob"', '"./Secret"', '"INBOX/.."']


def imap(port, user, password):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    n = [0]

    def cmd(text):
        n[0] += 1
        tag = f"i{n[0]}".encode()
        s.sendall(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            line = f.readline()
            assert line, "server closed the connection"
            out.append(line)
            if line.startswith(tag + b" "):
                return b"".join(out)
    cmd(f'LOGIN {user} "{password}"')
    return cmd


@pytest.fixture
def two_users(alice):
    alice.run("user", "add", "bob", input=b"bobpw\n")
    alice.run("mailbox", "create", "bob", "Secret")
    alice.run("deliver", "bob", "--mailbox", "Secret", input=SECRET)
    alice.run("deliver", "bob", input=SECRET)
    return alice


def test_imap_never_shows_another_user(two_users, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = two_users.popen("serve", "--imap", f"127.0.0.1:{port}", stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.05)
        cmd = imap(port, "alice", PASSWORD)
        everything = b""
        for name in TRIES:
            for verb in ("SELECT", "EXAMINE", "STATUS", "DELETE", "SUBSCRIBE"):
                arg = f"{name} (MESSAGES)" if verb == "STATUS" else name
                r = cmd(f"{verb} {arg}")
                everything += r
                if verb in ("SELECT", "EXAMINE") and name != '"INBOX/.."':
                    assert b" OK " not in r.splitlines()[-1], f"{verb} {name}: {r!r}"
            everything += cmd(f'LIST "" {name}')
            everything += cmd(f'LIST {name} "*"')
        everything += cmd('LIST "" "*"') + cmd('LSUB "" "*"') + cmd('LIST (SUBSCRIBED) "" "*"')
        everything += cmd("SELECT INBOX") + cmd("SEARCH TEXT treasure") + cmd("FETCH 1:* BODY[]")
        # no listing names a mailbox of bob's, and no byte of his mail ever comes back. The
        # valid names alice tried are now in her own subscription list (any name may be
        # subscribed, RFC 3501 6.3.6): listed, but only as names no mailbox of hers has
        for line in everything.splitlines():
            if line.startswith(b"* STATUS"):
                assert b"Secret" not in line and b"bob" not in line, line
            if line.startswith((b"* LIST", b"* LSUB")) and (b"Secret" in line or b"bob" in line):
                assert line.startswith((b"* LIST (\\NonExistent ", b"* LSUB (\\Noselect)")), line
        for line in cmd('LIST "" "*"').splitlines():
            assert b"Secret" not in line and b"bob" not in line, line
        assert b"treasure" not in everything
        # bob's own view is intact
        bob = imap(port, "bob", "bobpw")
        # alice's subscriptions are hers alone: bob has what `user add` subscribed
        lsub = {l.rsplit(b" ", 1)[1].strip(b'"') for l in bob('LSUB "" "*"').splitlines()
                if l.startswith(b"* LSUB")}
        assert lsub == {b"INBOX", b"Drafts", b"Sent", b"Trash", b"Junk", b"Archive"}, lsub
        assert b"* 1 EXISTS" in bob("SELECT Secret")
        assert b"treasure" in bob("FETCH 1 BODY.PEEK[]")
        # and alice's names never created anything in bob's space
        out = two_users.run("mailbox", "list", "bob").stdout.decode()
        assert sorted(l.split("\t")[0] for l in out.splitlines()) == sorted(
            ["Archive", "Drafts", "INBOX", "Junk", "Secret", "Sent", "Trash"])
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is absent")
def test_mount_never_shows_another_user(two_users, tmp_path):
    mnt = tmp_path / "alice-mail"
    mnt.mkdir()
    two_users.run("mount", "alice", mnt)
    try:
        names = []
        for root, dirs, files in os.walk(mnt):
            names += dirs + files
        assert "Secret" not in names
        found = subprocess.run(["grep", "-rl", "treasure", str(mnt)], capture_output=True)
        assert found.stdout == b""
        for path in ["bob", "bob/Secret", "Secret", "%", "*", "INBOX/../Secret"]:
            with pytest.raises(OSError):
                open(os.path.join(mnt, path, "0000000001.eml"), "rb")
        # '..' is resolved by the kernel inside alice's tree: it makes her mailbox, never bob's
        os.mkdir(os.path.join(mnt, "INBOX", "..", "bob"))
        assert os.path.isdir(mnt / "bob") and os.listdir(mnt / "bob") == []
        out = two_users.run("mailbox", "list", "bob").stdout.decode()
        assert sorted(l.split("\t")[0] for l in out.splitlines()) == sorted(
            ["Archive", "Drafts", "INBOX", "Junk", "Secret", "Sent", "Trash"])
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
