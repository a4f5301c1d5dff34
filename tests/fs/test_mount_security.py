"""The mount refuses what it cannot keep, and a write that fails stores nothing (issue 10: finding
5 and the mount's Low items).

- A write, truncation or append past `msgmax`, or past the memory for files being written
  (`scratchmax`), fails, and so does the close: nothing is stored, a stored message keeps its
  exact bytes and UID, a new file leaves no entry.
- A file name that is neither a message (`*.eml`, any case) nor a known tool's temporary file
  is kept as an ordinary file (issue 14); what cannot be kept (a message in the top directory,
  a non-Maildir name in the Maildir view) is refused at creation (EPERM) and logged.
- `user.mail.flags` is taken whole or refused (EINVAL), never cut at a NUL.
- A folder rename whose children's names would pass 500 bytes is ENAMETOOLONG on the mount and
  `NO [LIMIT]` over IMAP.

Every test mounts for real (the fixtures of test_mount.py and test_mount_imap.py) with a small
`-o msgmax` so that a write over the limit takes a few MB, not 64 MiB.
"""
import errno
import os
import signal
import subprocess

import pytest

from conftest import wait_for
from test_mount import SAMPLE, fg_mount, fuse, mailbox_counts, mount  # noqa: F401 (fixtures)
from test_mount_imap import imap, serve  # noqa: F401 (fixture)

LIMIT = 1 << 20  # -o msgmax=1M


def big(tmp_path, size, name="big.eml"):
    """A file of SIZE bytes that starts like a message."""
    p = tmp_path / name
    head = b"From: a@example.com\nSubject: big\n\n"
    p.write_bytes(head + b"x" * (size - len(head)))
    return p


def inbox_state(alice, mnt, name):
    """What a user notices of message INBOX/NAME: its bytes, its UID, the INBOX row of
    `mailfs mailbox list` (messages, unseen, bytes) and the folder's names."""
    p = mnt / "INBOX" / name
    row = [r for r in alice.run("mailbox", "list", "alice").stdout.decode().splitlines()
           if r.startswith("INBOX\t")][0]
    return (p.read_bytes(), os.getxattr(p, "user.mail.uid"), row, sorted(os.listdir(mnt / "INBOX")))


def delivered(alice, data=SAMPLE):
    alice.run("deliver", "alice", input=data)
    return "0000000001.eml"


# ---- a write that fails stores nothing -----------------------------------------------------

def test_cp_over_the_limit_leaves_no_message(mount, alice, tmp_path):
    mnt = mount("-o", "msgmax=1M")
    src = big(tmp_path, 3 * LIMIT)
    r = subprocess.run(["cp", str(src), str(mnt / "Drafts/")], capture_output=True)
    assert r.returncode != 0 and b"File too large" in r.stderr
    assert mailbox_counts(alice)["Drafts"] == 0
    assert os.listdir(mnt / "Drafts") == []
    # the same through a temporary file renamed into place (rsync): the rename fails too
    r = subprocess.run(["rsync", str(src), str(mnt / "Drafts/")], capture_output=True)
    assert r.returncode != 0
    assert mailbox_counts(alice)["Drafts"] == 0 and os.listdir(mnt / "Drafts") == []
    # a file that fits is stored as ever
    subprocess.run(["cp", str(big(tmp_path, LIMIT // 2, "fits.eml")), str(mnt / "Drafts/")],
                   check=True)
    assert mailbox_counts(alice)["Drafts"] == 1


def test_append_over_the_limit_keeps_the_message(mount, alice, tmp_path):
    name = delivered(alice)
    mnt = mount("-o", "msgmax=1M")
    before = inbox_state(alice, mnt, name)
    src = big(tmp_path, 3 * LIMIT)
    r = subprocess.run(f"cat {src} >> {mnt / 'INBOX' / name}", shell=True, capture_output=True)
    assert r.returncode != 0 and b"File too large" in r.stderr
    # the kernel cached the appended pages: they are dropped once the failed file is closed
    assert wait_for(lambda: inbox_state(alice, mnt, name) == before, timeout=1)
    assert (mount("-o", "ro") / "INBOX" / name).read_bytes() == SAMPLE  # the store's copy


def test_overwrite_then_write_at_a_huge_offset_keeps_the_message(mount, alice):
    name = delivered(alice)
    mnt = mount("-o", "msgmax=1M")
    before = inbox_state(alice, mnt, name)
    fd = os.open(mnt / "INBOX" / name, os.O_RDWR)
    try:
        os.pwrite(fd, b"JUNKJUNK", 0)  # fine on its own
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"x", 1 << 40)
        assert e.value.errno == errno.EFBIG
        with pytest.raises(OSError) as e:  # the file failed: later writes fail the same way
            os.pwrite(fd, b"more", 8)
        assert e.value.errno == errno.EFBIG
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)  # close reports it, and stores nothing
    assert e.value.errno == errno.EFBIG
    assert wait_for(lambda: inbox_state(alice, mnt, name) == before, timeout=1)


def test_truncate_past_the_limit(mount, alice):
    name = delivered(alice)
    mnt = mount("-o", "msgmax=1M")
    before = inbox_state(alice, mnt, name)
    p = mnt / "INBOX" / name
    # truncate(1) opens the file and truncates the descriptor
    r = subprocess.run(["truncate", "-s", "2M", str(p)], capture_output=True)
    assert r.returncode != 0 and b"File too large" in r.stderr
    # truncate(2) by path
    with pytest.raises(OSError) as e:
        os.truncate(p, 2 * LIMIT)
    assert e.value.errno == errno.EFBIG
    assert wait_for(lambda: inbox_state(alice, mnt, name) == before, timeout=1)
    # a new file truncated past the limit leaves no entry
    r = subprocess.run(["truncate", "-s", "2M", str(mnt / "Drafts" / "t.eml")], capture_output=True)
    assert r.returncode != 0
    assert os.listdir(mnt / "Drafts") == [] and mailbox_counts(alice)["Drafts"] == 0
    # written, then truncated past the limit through its descriptor: fails at close
    with pytest.raises(OSError) as e:
        with open(mnt / "Drafts" / "w.eml", "wb") as f:
            f.write(SAMPLE)
            f.flush()
            try:
                os.ftruncate(f.fileno(), 2 * LIMIT)
            except OSError as first:
                assert first.errno == errno.EFBIG
            f.write(b"more")
    assert e.value.errno == errno.EFBIG
    assert os.listdir(mnt / "Drafts") == [] and mailbox_counts(alice)["Drafts"] == 0


def test_scratch_memory_limit(mount, alice, tmp_path):
    """Files being written share -o scratchmax: past it writes fail with ENOSPC, and that
    failure stores nothing either."""
    alice.run("deliver", "alice", input=SAMPLE)
    large = b"From: a@example.com\nSubject: large\n\n" + b"y" * (LIMIT // 2)
    alice.run("deliver", "alice", input=large)
    small, second = "0000000001.eml", "0000000002.eml"
    mnt = mount("-o", "msgmax=1M,scratchmax=2M")
    inbox = mnt / "INBOX"
    # two swap files hold 1.8 MB of the 2 MiB
    swaps = [inbox / ".a.eml.swp", inbox / ".b.eml.swp"]
    for s in swaps:
        s.write_bytes(b"\0" * (900 * 1024))
    before = inbox_state(alice, mnt, small)
    before2 = inbox_state(alice, mnt, second)
    src = big(tmp_path, 900 * 1024)
    # an append to a stored message
    r = subprocess.run(f"cat {src} >> {inbox / small}", shell=True, capture_output=True)
    assert r.returncode != 0 and b"No space left on device" in r.stderr
    # a message too large to be copied into memory for an edit: the append fails at once
    r = subprocess.run(f"/bin/echo more >> {inbox / second}", shell=True, capture_output=True)
    assert r.returncode != 0 and b"No space left on device" in r.stderr
    # a new file
    r = subprocess.run(["cp", str(src), str(inbox / "new.eml")], capture_output=True)
    assert r.returncode != 0 and b"No space left on device" in r.stderr
    assert wait_for(lambda: inbox_state(alice, mnt, small) == before, timeout=1)
    assert inbox_state(alice, mnt, second) == before2
    assert before[3] == sorted([small, second, ".a.eml.swp", ".b.eml.swp"])
    # the failed files gave their memory back: with the swap files gone all of it is free
    for s in swaps:
        s.unlink()
    subprocess.run(["cp", str(src), str(inbox / "new.eml")], check=True)
    subprocess.run(f"/bin/echo more >> {inbox / second}", shell=True, check=True)
    assert mailbox_counts(alice)["INBOX"] == 3
    assert (inbox / second).read_bytes() == large + b"more\n"


# ---- names that are not mail are kept; what cannot be kept is refused ----------------------

def test_names_that_are_not_mail_are_kept_or_refused(fg_mount, alice, tmp_path):
    mnt = tmp_path / "m"
    p = fg_mount(mnt)
    inbox = mnt / "INBOX"
    (inbox / "a.eml").write_bytes(SAMPLE)
    # a message renamed to a kept name: EXDEV (mv copies, then removes it); into the top
    # directory as a message: refused. The message stays.
    for to, err in ((inbox / "a.txt", errno.EXDEV), (mnt / "a.eml", errno.EPERM),
                    (inbox / "a.eml ", errno.EXDEV)):
        with pytest.raises(OSError) as e:
            os.rename(inbox / "a.eml", to)
        assert e.value.errno == err, to
    tmp = inbox / ".a.eml.Ab12Cd"  # rsync's temporary file, renamed to a kept name: kept
    tmp.write_bytes(SAMPLE)
    os.rename(tmp, inbox / "b.txt")
    assert not tmp.exists() and (inbox / "b.txt").read_bytes() == SAMPLE
    # names that are no message are kept files, by open(O_CREAT) and by mknod
    kept = [inbox / "x.eml ", inbox / ".eml", inbox / "notes.txt", inbox / ".x.eml", mnt / "top.txt"]
    for path in kept:
        path.write_bytes(SAMPLE)
        assert path.read_bytes() == SAMPLE
    os.mknod(inbox / "empty.txt")
    # refused: a message in the top directory, a non-Maildir name in the Maildir view
    for path in (mnt / "top.eml", inbox / "cur" / ".scratch"):
        with pytest.raises(OSError) as e:
            path.write_bytes(SAMPLE)
        assert e.value.errno == errno.EPERM, path
        with pytest.raises(OSError) as e:
            os.mknod(path)
        assert e.value.errno == errno.EPERM, path
    # "x.EML" is a message like "x.eml": stored; the kept files are no messages
    (inbox / "x.EML").write_bytes(SAMPLE)
    names = ["a.eml", "x.EML", "b.txt", "empty.txt"] + [k.name for k in kept if k.parent == inbox]
    assert sorted(os.listdir(inbox)) == sorted(names)
    assert "top.eml" not in os.listdir(mnt) and "top.txt" in os.listdir(mnt)
    assert mailbox_counts(alice)["INBOX"] == 2
    # each refusal is one line in the log, naming the file and the folder
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    log = p.stderr.read().decode()
    assert "refused to create 'top.eml' in the top directory" in log, log
    assert "refused to create '.scratch' in 'INBOX/cur'" in log, log
    assert "notes.txt" not in log, log
    # all of it is there after a remount
    again = fg_mount(tmp_path / "again")
    inbox2 = tmp_path / "again" / "INBOX"
    assert sorted(os.listdir(inbox2)) == sorted(names)
    assert (inbox2 / "x.EML").read_bytes() == SAMPLE
    for k in kept:
        assert (tmp_path / "again" / k.relative_to(mnt)).read_bytes() == SAMPLE
    again.terminate()


def test_tools_temporary_files_still_work(mount, alice, tmp_path):
    """sed -i, perl -i, rsync and vim's backup write temporary files beside the message and
    rename them over it: those names are accepted."""
    mnt = mount()
    p = mnt / "INBOX" / "t.eml"
    p.write_bytes(SAMPLE)
    subprocess.run(["sed", "-i", "s/hello/sed/", str(p)], check=True)
    assert b"Subject: sed" in p.read_bytes()
    subprocess.run(["perl", "-pi", "-e", "s/sed/perl/", str(p)], check=True)
    assert b"Subject: perl" in p.read_bytes()
    src = tmp_path / "t.eml"
    src.write_bytes(SAMPLE.replace(b"hello", b"rsync"))
    subprocess.run(["rsync", "--checksum", str(src), str(mnt / "INBOX/")], check=True)
    assert b"Subject: rsync" in p.read_bytes()
    # emacs' auto-save file and backup
    (mnt / "INBOX" / "#t.eml#").write_bytes(SAMPLE)
    os.rename(p, mnt / "INBOX" / "t.eml~")
    os.rename(mnt / "INBOX" / "t.eml~", p)
    os.unlink(mnt / "INBOX" / "#t.eml#")
    assert os.listdir(mnt / "INBOX") == ["t.eml"]
    assert mailbox_counts(alice)["INBOX"] == 1


# ---- flags are taken whole ------------------------------------------------------------------

def test_flags_with_a_nul_or_a_bad_keyword_are_refused(mount):
    mnt = mount()
    p = mnt / "INBOX" / "f.eml"
    p.write_bytes(SAMPLE)
    os.setxattr(p, "user.mail.flags", b"\\Flagged $Work")
    for value in (b"\\Seen\0$Evil", b"\\Seen\0\0", b"\0\\Seen", b"a\\b", b"k" * 201,
                  b" ".join(b"k%04d" % i for i in range(400))):
        with pytest.raises(OSError) as e:
            os.setxattr(p, "user.mail.flags", value)
        assert e.value.errno == errno.EINVAL, value[:40]
        assert os.getxattr(p, "user.mail.flags") == b"\\Flagged $Work"
    os.setxattr(p, "user.mail.flags", b"\\Seen $Ok\0")  # a C string's terminator is no part
    assert os.getxattr(p, "user.mail.flags") == b"\\Seen $Ok"


# ---- long folder names -----------------------------------------------------------------------

def test_rename_whose_children_would_be_too_long(serve, alice):
    port, mnt = serve
    os.makedirs(mnt / "a" / ("b" * 200) / ("c" * 200))
    r = subprocess.run(["mv", str(mnt / "a"), str(mnt / ("x" * 255))], capture_output=True)
    assert r.returncode != 0 and b"File name too long" in r.stderr, r.stderr
    with pytest.raises(OSError) as e:
        os.rename(mnt / "a", mnt / ("x" * 255))
    assert e.value.errno == errno.ENAMETOOLONG
    assert os.path.isdir(mnt / "a" / ("b" * 200) / ("c" * 200))
    c = imap(port)
    typ, data = c._simple_command("RENAME", "a", "y" * 255)
    assert typ == "NO" and data[-1].startswith(b"[LIMIT]"), (typ, data)
    c.logout()
    names = mailbox_counts(alice)
    assert "a" in names and f"a/{'b' * 200}/{'c' * 200}" in names and "y" * 255 not in names
