"""The mount's Maildir view: cur/, new/ and tmp/ inside every mailbox directory, unlisted, for
mutt -f, neomutt and other Maildir readers; flags are part of the names in cur/."""
import errno
import mailbox
import os
import re
import shutil
import subprocess

import pytest

from conftest import mountinfo_has, unmount, wait_for
from terminal import Terminal, index_line, neomutt_env, pyte

MSGS = [
    b"From: Bob <bob@example.com>\nTo: alice@example.com\nSubject: md alpha\n"
    b"Date: Mon, 13 Nov 2023 10:00:00 +0000\nMessage-ID: <md-1@example.com>\n\nbody of alpha\n",
    b"From: Carol <carol@example.com>\nTo: alice@example.com\nSubject: md bravo\n"
    b"Date: Tue, 14 Nov 2023 10:00:00 +0000\nMessage-ID: <md-2@example.com>\n\nbody of bravo\n",
    b"From: Dave <dave@example.com>\nTo: alice@example.com\nSubject: md charlie\n"
    b"Date: Wed, 15 Nov 2023 10:00:00 +0000\nMessage-ID: <md-3@example.com>\n\n"
    b"body of charlie\nsecond line\n",
]


@pytest.fixture
def mnt(alice, tmp_path):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")
    for msg in MSGS:
        alice.run("deliver", "alice", input=msg)
    d = tmp_path / "mnt"
    d.mkdir()
    alice.run("mount", "alice", d)
    assert mountinfo_has(d)
    yield d
    unmount(d)


def flags_of(path):
    return os.getxattr(path, "user.mail.flags").decode()


def test_view_is_unlisted_and_names_carry_flags(mnt, alice):
    inbox = mnt / "INBOX"
    assert sorted(os.listdir(inbox)) == ["0000000001.eml", "0000000002.eml", "0000000003.eml"]
    files = subprocess.run(["find", str(mnt), "-type", "f"], capture_output=True,
                           check=True).stdout.decode().split()
    assert len(files) == 3  # find, grep -r, tar and rsync see each message once
    for d in ("cur", "new", "tmp"):
        assert (inbox / d).is_dir()
    assert sorted(os.listdir(inbox / "cur")) == ["0000000001:2,", "0000000002:2,",
                                                 "0000000003:2,"]
    assert os.listdir(inbox / "new") == [] and os.listdir(inbox / "tmp") == []
    # the same message under both names
    a, b = os.stat(inbox / "0000000002.eml"), os.stat(inbox / "cur" / "0000000002:2,")
    assert (a.st_ino, a.st_size, a.st_mtime) == (b.st_ino, b.st_size, b.st_mtime)
    assert (inbox / "cur" / "0000000002:2,").read_bytes() == MSGS[1]

    # a flag change through the .eml view (or IMAP) renames it in cur/ at once
    os.setxattr(inbox / "0000000001.eml", "user.mail.flags", b"\\Seen \\Flagged $Forwarded")
    assert wait_for(lambda: "0000000001:2,FPS" in os.listdir(inbox / "cur"), timeout=0.1)
    assert not (inbox / "cur" / "0000000001:2,").exists()  # the old name is gone
    # a rename in cur/ sets the flags; keywords other than $Forwarded stay
    os.setxattr(inbox / "0000000002.eml", "user.mail.flags", b"$Work")
    wait_for(lambda: "0000000002:2," in os.listdir(inbox / "cur"), timeout=0.1)
    os.rename(inbox / "cur" / "0000000002:2,", inbox / "cur" / "0000000002:2,RST")
    assert set(flags_of(inbox / "0000000002.eml").split()) == \
        {"\\Answered", "\\Seen", "\\Deleted", "$Work"}
    counts = alice.run("mailbox", "list", "alice").stdout.decode()
    assert re.search(r"^INBOX\t3\t1\t", counts, re.M), counts  # one unseen left
    # a delivery by another process shows in a cur/ listing the kernel already holds
    os.listdir(inbox / "cur")
    alice.run("deliver", "alice", input=b"From: z@example.com\nSubject: late\n\nlate\n")
    assert wait_for(lambda: "0000000004:2," in os.listdir(inbox / "cur"), timeout=0.1)
    # unlink in cur/ expunges
    os.unlink(inbox / "cur" / "0000000003:2,")
    assert wait_for(lambda: not (inbox / "0000000003.eml").exists(), timeout=0.1)
    assert re.search(r"^INBOX\t3\t", alice.run("mailbox", "list", "alice").stdout.decode(), re.M)


def test_renames_across_views_and_folders(mnt, alice):
    inbox, archive = mnt / "INBOX", mnt / "Archive"
    os.setxattr(inbox / "0000000001.eml", "user.mail.flags", b"\\Seen $Work")
    # into another folder's cur/: IMAP MOVE, with the flags of the new name
    os.rename(inbox / "cur" / "0000000001:2,S", archive / "cur" / "0000000001:2,FS")
    assert sorted(os.listdir(inbox)) == ["0000000002.eml", "0000000003.eml"]
    assert (archive / "0000000001.eml").read_bytes() == MSGS[0]
    assert set(flags_of(archive / "0000000001.eml").split()) == {"\\Seen", "\\Flagged", "$Work"}
    # from the .eml view into cur/ under another base name: renamed, flags from the name
    os.rename(inbox / "0000000002.eml", inbox / "cur" / "renamed:2,R")
    assert sorted(os.listdir(inbox)) == ["0000000003.eml", "renamed.eml"]
    assert flags_of(inbox / "renamed.eml") == "\\Answered"
    # out of cur/ to a message name in the .eml view: a plain rename, flags kept
    os.rename(inbox / "cur" / "renamed:2,R", inbox / "again.eml")
    assert flags_of(inbox / "again.eml") == "\\Answered"
    # a file written in INBOX/tmp/ and renamed into Archive/new/
    (inbox / "tmp" / "42.M1.host").write_bytes(b"Subject: from tmp\n\nx\n")
    os.rename(inbox / "tmp" / "42.M1.host", archive / "new" / "42.M1.host")
    assert (archive / "42.M1.host.eml").read_bytes() == b"Subject: from tmp\n\nx\n"
    assert os.listdir(inbox / "tmp") == [] and os.listdir(archive / "new") == []
    assert "42.M1.host:2," in os.listdir(archive / "cur")
    # rename over an existing message replaces it, as rename(2) does
    os.rename(inbox / "cur" / "0000000003:2,", inbox / "cur" / "again:2,S")
    assert sorted(os.listdir(inbox)) == ["again.eml"]
    assert (inbox / "again.eml").read_bytes() == MSGS[2] and flags_of(inbox / "again.eml") == "\\Seen"
    counts = alice.run("mailbox", "list", "alice").stdout.decode()
    assert re.search(r"^INBOX\t1\t", counts, re.M) and re.search(r"^Archive\t2\t", counts, re.M)


def test_copying_maildir_files_into_cur_and_new(mnt, alice, tmp_path):
    """cp and rsync from another Maildir straight into cur/ or new/: each file becomes the
    message BASE.eml with the flags of its name once it is closed; dot names (rsync's
    temporary files) are scratch files until renamed."""
    src = tmp_path / "Maildir" / "cur"
    src.mkdir(parents=True)
    files = {"1700000001.M1P1.host:2,SF": b"Subject: one\n\n1\n",
             "1700000002.M2P1.host:2,": b"Subject: two\n\n2\n",
             "1700000003.M3P1.host:2,RS": b"Subject: three\n\n3\n"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    inbox = mnt / "INBOX"
    subprocess.run(["cp", str(src / "1700000001.M1P1.host:2,SF"), str(inbox / "cur")], check=True)
    assert (inbox / "1700000001.M1P1.host.eml").read_bytes() == b"Subject: one\n\n1\n"
    assert set(flags_of(inbox / "1700000001.M1P1.host.eml").split()) == {"\\Seen", "\\Flagged"}
    assert (inbox / "cur" / "1700000001.M1P1.host:2,SF").exists()  # flags in any order
    assert "1700000001.M1P1.host:2,FS" in os.listdir(inbox / "cur")  # listed in Maildir's order
    # rsync writes .NAME.XXXXXX in cur/ and renames it
    r = subprocess.run(["rsync", "-a", f"{src}/", f"{inbox / 'cur'}/"], capture_output=True)
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        base = name.split(":2,")[0]
        assert (inbox / f"{base}.eml").read_bytes() == data
    assert flags_of(inbox / "1700000003.M3P1.host.eml") in ("\\Seen \\Answered",
                                                             "\\Answered \\Seen")
    # a plain file name in new/: a message without flags (listed in cur/ from then on)
    (inbox / "new" / "1700000004.M4P1.host").write_bytes(b"Subject: four\n\n4\n")
    assert flags_of(inbox / "1700000004.M4P1.host.eml") == ""
    assert "1700000004.M4P1.host:2," in os.listdir(inbox / "cur")
    # rsync's temporary name in cur/ is a scratch file: never stored, gone when removed
    (inbox / "cur" / ".1700000005.M5P1.host:2,S.Ab12Cd").write_bytes(b"not mail")
    assert ".1700000005.M5P1.host:2,S.Ab12Cd" in os.listdir(inbox / "cur")
    os.unlink(inbox / "cur" / ".1700000005.M5P1.host:2,S.Ab12Cd")
    # a 255-byte file name: in cur/ while its name there fits in 255 bytes, left out when
    # three flag letters would make it longer
    long = "L" * 251 + ".eml"
    (inbox / long).write_bytes(b"Subject: long\n\nl\n")
    assert "L" * 251 + ":2," in os.listdir(inbox / "cur")
    os.setxattr(inbox / long, "user.mail.flags", b"\\Seen \\Flagged \\Answered")
    assert wait_for(lambda: not any(n.startswith("LLLL") for n in os.listdir(inbox / "cur")),
                    timeout=0.1)
    assert long in os.listdir(inbox)
    counts = alice.run("mailbox", "list", "alice").stdout.decode()
    assert re.search(r"^INBOX\t8\t", counts, re.M), counts


def test_python_maildir_reads_adds_and_removes(mnt, alice):
    box = mailbox.Maildir(str(mnt / "INBOX"), factory=None, create=False)
    assert sorted(box.keys()) == ["0000000001", "0000000002", "0000000003"]
    assert box["0000000003"]["subject"] == "md charlie"
    assert box.get_bytes("0000000001") == MSGS[0]
    # add: written in tmp/ (a scratch file, never seen by IMAP), then renamed into new/ or cur/
    msg = mailbox.MaildirMessage(b"From: x@example.com\nSubject: added\n\nhello\n")
    msg.set_subdir("cur")
    msg.set_flags("FS")
    key = box.add(msg)
    assert os.listdir(mnt / "INBOX" / "tmp") == []
    eml = mnt / "INBOX" / f"{key}.eml"
    assert eml.read_bytes() == b"From: x@example.com\nSubject: added\n\nhello\n"
    assert set(flags_of(eml).split()) == {"\\Seen", "\\Flagged"}
    box.add(b"From: y@example.com\nSubject: plain\n\nto new/\n")  # into new/: no flags
    box.remove("0000000002")
    box = mailbox.Maildir(str(mnt / "INBOX"), factory=None, create=False)
    assert len(box) == 4
    assert sorted(m["subject"] for m in box) == ["added", "md alpha", "md charlie", "plain"]
    assert re.search(r"^INBOX\t4\t3\t", alice.run("mailbox", "list", "alice").stdout.decode(),
                     re.M)


def test_view_refusals(mnt, alice):
    inbox = mnt / "INBOX"
    for what, call, err in [
        ("mkdir in cur/", lambda: os.mkdir(inbox / "cur" / "sub"), errno.EPERM),
        ("rmdir cur", lambda: os.rmdir(inbox / "cur"), errno.EPERM),
        ("rename cur", lambda: os.rename(inbox / "cur", inbox / "cur2"), errno.EPERM),
        ("a stale name", lambda: os.stat(inbox / "cur" / "0000000001:2,S"), errno.ENOENT),
        ("a name without .eml form", lambda: os.rename(inbox / "cur" / "0000000001:2,",
                                                      inbox / "cur" / ".hidden:2,S"),
         errno.EINVAL),
        ("a stored message into tmp/", lambda: os.rename(inbox / "0000000001.eml",
                                                         inbox / "tmp" / "x"), errno.EXDEV),
    ]:
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == err, what
    assert sorted(os.listdir(inbox)) == ["0000000001.eml", "0000000002.eml", "0000000003.eml"]
    # a file being written in tmp/ keeps its folder from being removed
    os.mkdir(mnt / "Work")
    (mnt / "Work" / "tmp" / "123.M1P2.host").write_bytes(b"Subject: half\n")
    with pytest.raises(OSError) as e:
        os.rmdir(mnt / "Work")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(mnt / "Work" / "tmp" / "123.M1P2.host")
    os.rmdir(mnt / "Work")
    # a real mailbox named cur hides the view's cur/ in that mailbox (made over IMAP or here)
    alice.run("mailbox", "create", "alice", "INBOX/cur")
    assert wait_for(lambda: os.listdir(inbox / "cur") == [], timeout=0.1)
    assert "cur" in os.listdir(inbox)


@pytest.mark.skipif(not shutil.which("neomutt"), reason="neomutt is not installed")
@pytest.mark.skipif(pyte is None, reason="python3-pyte is not installed")
def test_neomutt_on_the_maildir_view(mnt, alice, tmp_path):
    """neomutt -f MNT/INBOX on a terminal: reads a message, flags one, deletes one, copies one
    to another folder of the mount, syncs, sees a delivery and quits; the store has all of it."""
    rc = tmp_path / "neomuttrc"
    rc.write_text(f"""set folder="{mnt}"
set spoolfile="{mnt}/INBOX"
set mbox_type=Maildir
set header_cache="" message_cachedir=""
set sort=mailbox-order
set delete=yes quit=yes confirmappend=no move=no mark_old=no wait_key=no beep=no
set maildir_trash=no timeout=1 mail_check=1
set record="" postponed="{tmp_path}/postponed" mbox="{tmp_path}/mbox"
""")
    env = neomutt_env(tmp_path)



    t = Terminal(["neomutt", "-n", "-F", str(rc), "-f", str(mnt / "INBOX")], env)
    try:
        t.wait(r"\[Msgs:3 ", what="the index of INBOX")
        for i, subject in enumerate(("md alpha", "md bravo", "md charlie"), 1):
            t.wait(index_line(i, subject), what=f"{subject} as message {i}")
        t.jump(3)
        t.send("\r")
        t.wait(r"^second line$", what="charlie's body in the pager")
        t.send("q")
        t.wait(index_line(3, "md charlie"), what="the index again")
        t.jump(1)
        t.send("F")
        t.wait(index_line(1, "md alpha", "!"), what="alpha flagged")
        t.jump(2)
        t.send("d")
        t.wait(index_line(2, "md bravo", "D"), what="bravo marked deleted")
        t.jump(3)
        t.send("C")
        t.wait(r"Copy to mailbox", what="the copy prompt")
        t.send(f"\x15{mnt}/Archive\r")
        assert wait_for(lambda: len(os.listdir(mnt / "Archive")) == 1, timeout=10), t.text()
        t.send("$")
        t.wait(r"\[Msgs:2 .*Flag:1", what="INBOX synced")
        assert "md bravo" not in t.text()
        alice.run("deliver", "alice", input=b"From: erin@example.com\nSubject: md delta\n\nnew\n")
        t.wait(index_line(3, "md delta"), timeout=15, what="the delivered message")
        t.send("q")
        assert t.wait_exit() == 0, t.text()
    finally:
        t.close()

    inbox = mnt / "INBOX"
    assert sorted(os.listdir(inbox)) == ["0000000001.eml", "0000000003.eml", "0000000004.eml"]
    assert flags_of(inbox / "0000000001.eml") == "\\Flagged"
    assert flags_of(inbox / "0000000003.eml") == "\\Seen"
    assert (inbox / "0000000003.eml").read_bytes() == MSGS[2]
    copies = os.listdir(mnt / "Archive")
    copy = (mnt / "Archive" / copies[0]).read_bytes() if len(copies) == 1 else b""
    head, body = MSGS[2].split(b"\n\n", 1)
    # neomutt's copy keeps the header and body, and may add header fields of its own
    assert copy.startswith(head + b"\n") and copy.endswith(b"\n\n" + body), copy
    assert "\\Seen" in flags_of(mnt / "Archive" / copies[0])
