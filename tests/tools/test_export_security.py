"""Issue 10, low item: mbox export makes private files, never writes through a symbolic link or
over an existing file, and lays out names so that no mailbox's directory is another's file."""
import os
import stat

MSG = b"From: a@example.com\nSubject: %s\n\nbody %s\n"


def deliver(m, mailbox, tag):
    m.run("deliver", "alice", "--mailbox", mailbox, input=MSG % (tag, tag))


def mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_mbox_export_files_are_private(alice, tmp_path):
    deliver(alice, "INBOX", b"one")
    deliver(alice, "Work/Projects", b"two")
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        alice.run("export", "alice", out, "--format", "mbox")
        single = tmp_path / "single.mbox"
        alice.run("export", "alice", single, "--format", "mbox", "--mailbox", "INBOX")
    finally:
        os.umask(old)
    assert mode(out / "INBOX.mbox") == 0o600
    assert mode(out / "Work" / "Projects.mbox") == 0o600
    assert mode(out / "Work") == 0o700
    assert mode(single) == 0o600
    assert b"body two" in (out / "Work" / "Projects.mbox").read_bytes()


def test_a_mailbox_and_a_child_of_its_file_name_both_export(alice, tmp_path):
    """'a' is the file a.mbox; 'a.mbox/b' needs a directory of that name: it is a%2Embox."""
    deliver(alice, "a", b"parent")
    deliver(alice, "a.mbox/b", b"child")
    out = tmp_path / "out"
    r = alice.run("export", "alice", out, "--format", "mbox")
    assert b"from 9 mailboxes" in r.stdout, r.stdout  # 6 default, a, a.mbox, a.mbox/b
    assert b"body parent" in (out / "a.mbox").read_bytes()
    assert b"body child" in (out / "a%2Embox" / "b.mbox").read_bytes()
    assert (out / "a%2Embox.mbox").is_file()  # the mailbox a.mbox itself (empty)
    # and it reads back: a stays a
    alice.run("import", "alice", out / "a.mbox", "--mailbox", "back")
    r = alice.run("mailbox", "list", "alice")
    assert b"back" in r.stdout


def test_an_existing_file_is_not_overwritten(alice, tmp_path):
    deliver(alice, "INBOX", b"one")
    out = tmp_path / "out"
    out.mkdir()
    (out / "INBOX.mbox").write_bytes(b"precious\n")
    r = alice.run("export", "alice", out, "--format", "mbox", check=False)
    assert r.returncode == 73, r
    err = r.stderr.decode()
    assert f"'{out}/INBOX.mbox' exists already" in err, err
    assert (out / "INBOX.mbox").read_bytes() == b"precious\n"
    single = tmp_path / "single.mbox"
    single.write_bytes(b"precious\n")
    r = alice.run("export", "alice", single, "--format", "mbox", "--mailbox", "INBOX",
                  check=False)
    assert r.returncode == 73 and b"exists already" in r.stderr, r
    assert single.read_bytes() == b"precious\n"


def test_symbolic_links_are_not_followed(alice, tmp_path):
    deliver(alice, "INBOX", b"one")
    deliver(alice, "Work/Projects", b"two")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a link where a file goes
    out = tmp_path / "out"
    out.mkdir()
    (out / "INBOX.mbox").symlink_to(victim)
    r = alice.run("export", "alice", out, "--format", "mbox", check=False)
    assert r.returncode != 0 and b"INBOX.mbox' exists already" in r.stderr, r
    assert victim.read_bytes() == b"precious\n"
    # a link where a directory goes
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "Work").symlink_to(elsewhere)
    r = alice.run("export", "alice", out2, "--format", "mbox", check=False)
    assert r.returncode != 0, r
    assert f"'{out2}/Work' is a symbolic link".encode() in r.stderr, r.stderr
    assert not list(elsewhere.iterdir())
    # --mailbox: DEST itself a link
    link = tmp_path / "link.mbox"
    link.symlink_to(victim)
    r = alice.run("export", "alice", link, "--format", "mbox", "--mailbox", "INBOX",
                  check=False)
    assert r.returncode != 0 and victim.read_bytes() == b"precious\n", r
