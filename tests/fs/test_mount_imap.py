"""The mount alongside IMAP: `mailfs serve --mount` and a separate mount, both ways, at once."""
import imaplib
import os
import signal
import subprocess
import time

import pytest

from conftest import PASSWORD, mountinfo_has, wait_for
from imapfix import start_with_mount

SAMPLE = b"From: a@example.com\r\nSubject: via mount\r\n\r\nbody\r\n"





@pytest.fixture
def serve(alice, tmp_path):
    """`mailfs serve --imap 127.0.0.1:PORT --mount alice:DIR` -> (imap port, DIR)."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")
    if alice.run("serve", "--help", check=False).returncode != 0:
        pytest.skip("this build has no IMAP server")
    mnt = tmp_path / "served"
    mnt.mkdir()
    proc, port = start_with_mount(alice, mnt)
    yield port, mnt
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    for opt in ("-u", "-uz"):
        if not mountinfo_has(mnt):
            break
        subprocess.run(["fusermount3", opt, str(mnt)], capture_output=True)
    assert rc == 0, "mailfs serve did not stop cleanly on SIGTERM"
    assert not mountinfo_has(mnt), "SIGTERM left the mount behind"


def imap(port):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", PASSWORD)
    return c


def exists(c, mailbox="INBOX"):
    typ, data = c.select(mailbox)
    assert typ == "OK", data
    return int(data[0])


def test_cp_into_served_mount_is_seen_by_imap(serve, tmp_path):
    port, mnt = serve
    c = imap(port)
    assert exists(c) == 0
    src = tmp_path / "m.eml"
    src.write_bytes(SAMPLE)
    subprocess.run(["cp", str(src), str(mnt / "INBOX/")], check=True)
    # the moment cp returns: SELECT and STATUS see it, the bytes are the same
    assert exists(c) == 1
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == SAMPLE
    # flags set through the mount are IMAP flags
    os.setxattr(mnt / "INBOX" / "m.eml", "user.mail.flags", b"\\Flagged $Work")
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"$Work" in data[0]
    # mv between folders is an IMAP MOVE; rm an expunge
    os.rename(mnt / "INBOX" / "m.eml", mnt / "Archive" / "m.eml")
    assert exists(c) == 0 and exists(c, "Archive") == 1
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0]
    os.unlink(mnt / "Archive" / "m.eml")
    assert exists(c, "Archive") == 0
    # scratch files never reach IMAP
    (mnt / "INBOX" / ".m.eml.XyZ123").write_bytes(SAMPLE)
    assert exists(c) == 0
    os.rename(mnt / "INBOX" / ".m.eml.XyZ123", mnt / "INBOX" / "r.eml")
    assert exists(c) == 1
    c.logout()


def test_imap_changes_show_in_mounts_at_once(serve, mount):
    port, served = serve
    other = mount()  # a separate mount process too
    for m in (served, other):
        assert os.listdir(m / "INBOX") == []
    c = imap(port)
    t = time.monotonic()
    typ, _ = c.append("INBOX", "(\\Seen)", None, SAMPLE)
    assert typ == "OK"
    for m in (served, other):
        assert wait_for(lambda: len(os.listdir(m / "INBOX")) == 1, timeout=0.5)
    assert time.monotonic() - t < 0.6
    name = os.listdir(other / "INBOX")[0]
    assert (other / "INBOX" / name).read_bytes() == SAMPLE
    assert os.getxattr(other / "INBOX" / name, "user.mail.flags") == b"\\Seen"
    c.select("INBOX")
    c.store("1", "+FLAGS", "(\\Answered)")
    assert wait_for(lambda: b"\\Answered" in os.getxattr(other / "INBOX" / name,
                                                           "user.mail.flags"), timeout=0.1)
    c.create("Projects")
    assert wait_for(lambda: "Projects" in os.listdir(other), timeout=0.1)
    typ, data = c.uid("MOVE", "1:*", "Projects")
    assert typ == "OK", data
    for m in (served, other):
        assert wait_for(lambda: os.listdir(m / "INBOX") == [] and
                        os.listdir(m / "Projects") == [name], timeout=0.1)
    c.select("Projects")
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()
    assert wait_for(lambda: os.listdir(other / "Projects") == [] and
                    not os.path.exists(other / "Projects" / name), timeout=0.1)
    c.logout()


@pytest.fixture
def mount(alice, tmp_path):
    made = []

    def do():
        d = tmp_path / f"m{len(made)}"
        d.mkdir()
        alice.run("mount", "alice", d)
        made.append(d)
        return d

    yield do
    for d in made:
        for opt in ("-u", "-uz"):
            if not mountinfo_has(d):
                break
            subprocess.run(["fusermount3", opt, str(d)], capture_output=True)


def test_mount_rename_and_rmdir_keep_imap_subscriptions(serve):
    """A folder renamed with mv in the mount takes its subscriptions (and its children's) along;
    one removed with rmdir stays subscribed, as after an IMAP DELETE (RFC 3501 6.3.6)."""
    port, mnt = serve
    c = imap(port)
    for name in ("Work/Deep", "Empty"):
        assert c.create(name)[0] == "OK"
    for name in ("Work", "Work/Deep", "Empty"):
        assert c.subscribe(name)[0] == "OK"
    os.rename(mnt / "Work", mnt / "Job")
    os.rmdir(mnt / "Empty")
    typ, data = c.lsub()
    assert typ == "OK", data
    defaults = (b"INBOX", b"Drafts", b"Sent", b"Trash", b"Junk", b"Archive")  # by `user add`
    got = [d.replace(b'"', b"") for d in data]
    assert sorted(d for d in got if not d.endswith(defaults)) == [
        b"() / Job", b"() / Job/Deep", b"(\\Noselect) / Empty"], data
    typ, data = c.list()
    assert not any(b"Empty" in l or b"Work" in l for l in data), data
