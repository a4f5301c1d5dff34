"""Kept files (issue 14, "No write is ever lost"): names that are not messages are kept as ordinary
files in the store's kept trees (STORE/files/USER_ID/MAILBOX_ID/), across unmounts, in
`mailfs backup`, never shown to IMAP; dot-directories made through the mount are kept
directories, not mailboxes. Real tools drive it: git, notmuch, sed -i, vim, rsync.

Every test mounts for real (the fixtures of test_mount.py and test_mount_imap.py).
"""
import errno
import os
import shutil
import subprocess

import pytest

from conftest import Mailfs, unmount, wait_for
from test_mount import SAMPLE, fuse, mailbox_counts, mount  # noqa: F401 (fixtures)
from test_mount_imap import imap, serve  # noqa: F401 (fixture)


def daemons_of(mnt):
    """Pids of the mailfs processes serving MNT (their command line names it)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if str(mnt).encode() in argv and any(a.endswith(b"mailfs") for a in argv[:1]):
            pids.append(int(pid))
    return pids


def remount(mount, mnt):
    """Unmounts, waits for the old daemon to end (it writes what it still holds in memory to
    the kept trees as it ends, just after the unmount returns), and mounts again."""
    unmount(mnt)
    assert wait_for(lambda: not daemons_of(mnt), timeout=10), daemons_of(mnt)
    return mount(path=mnt)


def imap_names(c):
    typ, data = c.list('""', "*")
    assert typ == "OK", data
    return [d.decode().rsplit(" ", 1)[-1].strip('"') for d in data]


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@example.com",
               GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@example.com",
               GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd))
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)


def test_notes_txt_survives_a_remount_and_is_no_message(mount, alice):
    mnt = mount()
    notes = mnt / "INBOX" / "notes.txt"
    notes.write_text("one\n")
    with open(notes, "a") as f:
        f.write("two\n")
    os.truncate(notes, 8)
    os.utime(notes, (1_600_000_000, 1_600_000_000))
    os.chmod(notes, 0o640)
    (mnt / ".profile").write_text("top\n")  # files in the top directory are kept too
    assert mailbox_counts(alice)["INBOX"] == 0
    mnt = remount(mount, mnt)
    notes = mnt / "INBOX" / "notes.txt"
    assert notes.read_text() == "one\ntwo\n"
    st = notes.stat()
    assert st.st_mtime == 1_600_000_000 and st.st_mode & 0o777 == 0o640
    assert (mnt / ".profile").read_text() == "top\n"
    assert os.listdir(mnt / "INBOX") == ["notes.txt"]
    # inode numbers of kept files are their own kind (bits 62 and 63), stable across remounts
    assert st.st_ino >> 62 == 3
    assert remount(mount, mnt).joinpath("INBOX", "notes.txt").stat().st_ino == st.st_ino
    # removed: gone for good
    os.unlink(mnt / "INBOX" / "notes.txt")
    assert os.listdir(remount(mount, mnt) / "INBOX") == []


def test_git_in_a_folder_survives_and_imap_lists_no_git_mailboxes(serve, mount, alice):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    port, served = serve
    work = served / "Work"
    work.mkdir()
    (work / "README").write_text("mail and notes\n")
    git(work, "init", "-q")
    git(work, "add", "README")
    git(work, "commit", "-qm", "first")
    (work / "README").write_text("changed\n")
    git(work, "commit", "-qam", "second")
    c = imap(port)
    names = imap_names(c)
    assert "Work" in names and not [n for n in names if ".git" in n], names
    assert c.status("Work", "(MESSAGES)")[0] == "OK"
    c.logout()
    # mounted again on its own: the repository is whole
    mnt = mount()
    work = mnt / "Work"
    log = git(work, "log", "--format=%s").stdout.decode().split()
    assert log == ["second", "first"]
    assert git(work, "status", "--porcelain").stdout == b""
    git(work, "fsck", "--no-progress")
    assert "Work/.git" not in mailbox_counts(alice)


def test_notmuch_database_in_the_mount_root_survives(mount, alice, tmp_path):
    if not shutil.which("notmuch"):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("notmuch is not installed")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "notmuch"], env=env,
                           capture_output=True, timeout=900)
        if r.returncode != 0 or not shutil.which("notmuch"):
            pytest.skip("notmuch could not be installed: " + r.stderr.decode()[-300:])
    for i in range(20):
        alice.run("deliver", "alice", input=SAMPLE.replace(b"hello", f"hello {i}".encode()))
    mnt = mount()
    cfg = tmp_path / "notmuch-config"
    cfg.write_text(f"[database]\npath={mnt}\n[new]\ntags=unread;inbox\n")
    env = dict(os.environ, NOTMUCH_CONFIG=str(cfg))
    r = subprocess.run(["notmuch", "new"], env=env, capture_output=True, check=True)
    assert b"20" in r.stdout, r.stdout
    assert (mnt / ".notmuch").is_dir()
    assert not [n for n in mailbox_counts(alice) if "notmuch" in n]
    mnt = remount(mount, mnt)
    n = subprocess.run(["notmuch", "count", "subject:hello"], env=env, capture_output=True,
                       check=True)
    assert n.stdout.strip() == b"20"
    assert not [n for n in mailbox_counts(alice) if "notmuch" in n]


def test_sed_vim_rsync_on_kept_files_and_messages(mount, alice, tmp_path):
    mnt = mount()
    inbox = mnt / "INBOX"
    (inbox / "notes.txt").write_text("hello\n")
    (inbox / "m.eml").write_bytes(SAMPLE)
    # sed -i writes sedXXXXXX (a scratch file) and renames it over the kept file
    subprocess.run(["sed", "-i", "s/hello/bye/", str(inbox / "notes.txt")], check=True)
    assert (inbox / "notes.txt").read_text() == "bye\n"
    subprocess.run(["sed", "-i", "s/body/text/", str(inbox / "m.eml")], check=True)
    assert b"text" in (inbox / "m.eml").read_bytes()
    if shutil.which("vim"):
        for f in ("notes.txt", "m.eml"):
            subprocess.run(["vim", "-Nu", "NONE", "-es", "-c", "%s/e/E/", "-c", "wq",
                            str(inbox / f)], check=True, timeout=30)
        assert (inbox / "notes.txt").read_text() == "byE\n"
    if shutil.which("rsync"):
        src = tmp_path / "src"
        src.mkdir()
        (src / "todo.txt").write_text("todo\n")
        (src / "n.eml").write_bytes(SAMPLE)
        subprocess.run(["rsync", "-a", f"{src}/", f"{inbox}/"], check=True)
        assert (inbox / "todo.txt").read_text() == "todo\n"
        assert (inbox / "n.eml").read_bytes() == SAMPLE
    # mv between the kinds copies (EXDEV): a message becomes a kept file and back
    subprocess.run(["mv", str(inbox / "m.eml"), str(inbox / "m.txt")], check=True)
    subprocess.run(["mv", str(inbox / "notes.txt"), str(inbox / "notes.eml")], check=True)
    assert sorted(os.listdir(inbox)) == sorted(["m.txt", "notes.eml", "todo.txt", "n.eml"]
                                               if shutil.which("rsync") else ["m.txt", "notes.eml"])
    assert mailbox_counts(alice)["INBOX"] == (2 if shutil.which("rsync") else 1)
    with pytest.raises(OSError) as e:
        os.rename(inbox / "m.txt", inbox / "m2.eml")
    assert e.value.errno == errno.EXDEV
    # symbolic and hard links stay refused
    with pytest.raises(OSError) as e:
        os.link(inbox / "m.txt", inbox / "m3.txt")
    assert e.value.errno == errno.EPERM


def test_backup_and_restore_keep_the_kept_files(mount, alice, tmp_path):
    mnt = mount()
    (mnt / "Drafts" / ".cfg").mkdir()
    (mnt / "Drafts" / ".cfg" / "a.txt").write_text("kept\n")
    (mnt / "INBOX" / "m.eml").write_bytes(SAMPLE)
    alice.run("backup", tmp_path / "bak")
    assert (tmp_path / "bak" / "files").is_dir()
    restored = Mailfs(tmp_path / "bak")
    restored.run("check")
    dst = tmp_path / "rmnt"
    dst.mkdir()
    restored.run("mount", "alice", dst)
    try:
        assert (dst / "Drafts" / ".cfg" / "a.txt").read_text() == "kept\n"
        assert (dst / "INBOX" / "m.eml").read_bytes() == SAMPLE
    finally:
        unmount(dst)


def test_rename_and_delete_of_a_folder_with_kept_files(serve, alice):
    port, mnt = serve
    (mnt / "Work").mkdir()
    (mnt / "Work" / "notes.txt").write_text("n\n")
    (mnt / "Work" / ".git").mkdir()
    os.rename(mnt / "Work", mnt / "Job")  # through the mount
    assert (mnt / "Job" / "notes.txt").read_text() == "n\n"
    c = imap(port)
    assert c.rename("Job", "Task")[0] == "OK"  # through IMAP
    assert (mnt / "Task" / "notes.txt").read_text() == "n\n"
    # deleting: rmdir ENOTEMPTY, IMAP DELETE and mailfs mailbox delete say what is in the way
    with pytest.raises(OSError) as e:
        os.rmdir(mnt / "Task")
    assert e.value.errno == errno.ENOTEMPTY
    typ, data = c.delete("Task")
    assert typ == "NO" and b"2 files that are not mail" in data[0], data
    r = alice.run("mailbox", "delete", "alice", "Task", check=False)
    assert r.returncode != 0 and b"files that are not mail" in r.stderr, r.stderr
    os.unlink(mnt / "Task" / "notes.txt")
    os.rmdir(mnt / "Task" / ".git")
    os.rmdir(mnt / "Task")
    assert "Task" not in imap_names(c)
    c.logout()


def test_user_delete_removes_its_tree_and_check_notices_strays(mount, alice):
    mnt = mount()
    (mnt / "INBOX" / "notes.txt").write_text("n\n")
    files = alice.store / "files"
    stray = files / "1" / "999"
    stray.mkdir()
    (stray / "x").write_text("x")
    r = alice.run("check", check=False)
    assert r.returncode != 0 and b"mailbox 999" in r.stdout + r.stderr
    shutil.rmtree(stray)
    alice.run("check")
    unmount(mnt)
    alice.run("user", "del", "alice")
    assert not (files / "1").exists()


def test_files_with_temporary_names_are_kept_at_unmount(mount, alice):
    """A name that matches a tool's temporary-file pattern lives in memory until it is renamed
    to a message; one that never is (perl -i's eight characters also match "Makefile", a vim
    swap file left behind) is written to the kept tree when the mount ends, not dropped."""
    mnt = mount()
    (mnt / "INBOX" / "Makefile").write_text("all:\n\ttrue\n")
    (mnt / "INBOX" / ".draft.eml.swp").write_bytes(b"\x00swap")
    (mnt / ".notes.eml.AbC123").write_text("rsync left this\n")
    assert mailbox_counts(alice)["INBOX"] == 0
    mnt = remount(mount, mnt)
    assert (mnt / "INBOX" / "Makefile").read_text() == "all:\n\ttrue\n"
    assert (mnt / "INBOX" / ".draft.eml.swp").read_bytes() == b"\x00swap"
    assert (mnt / ".notes.eml.AbC123").read_text() == "rsync left this\n"
    assert mailbox_counts(alice)["INBOX"] == 0
    # and a temporary file that did become a message is not kept twice
    tmp = mnt / "INBOX" / ".x.eml.Zz9999"
    tmp.write_bytes(SAMPLE)
    os.rename(tmp, mnt / "INBOX" / "x.eml")
    mnt = remount(mount, mnt)
    assert sorted(os.listdir(mnt / "INBOX")) == [".draft.eml.swp", "Makefile", "x.eml"]
