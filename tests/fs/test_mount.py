"""The mount (mailfs mount): reading, writing, flags, backup/restore, tool write patterns, sync, faults.

Every test mounts for real through /dev/fuse; the fixtures unmount in teardown (fusermount3 -u,
then -uz) so a failing test never leaves a mount behind.
"""
import errno
import hashlib
import os
import pathlib
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from conftest import CORPUS, MAILFS, corpus_files, mountinfo_has, unmount, wait_for

SAMPLE = b"From: a@example.com\nTo: b@example.com\nSubject: hello\n\nbody\n"


# ---- helpers -------------------------------------------------------------------------------




def sha(data):
    return hashlib.sha256(data).hexdigest()


def message_files(root):
    return sorted(p for p in pathlib.Path(root).rglob("*.eml") if p.is_file())


def mailbox_counts(m, user="alice"):
    out = m.run("mailbox", "list", user).stdout.decode()
    return {r.split("\t")[0]: int(r.split("\t")[1]) for r in out.splitlines()}


def single_messages(n):
    """N corpus files holding one message each, no NUL bytes, distinct bytes."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.skip("the shared corpus is missing")
    picked, seen = [], set()
    for line in manifest.read_text().splitlines()[1:]:
        col = line.split("\t")
        if len(col) < 12 or col[11] != "1" or col[8] != "0" or col[7] == "empty":
            continue
        p = CORPUS / col[0]
        data = p.read_bytes()
        if not data or data.startswith(b"From ") or sha(data) in seen:
            continue
        seen.add(sha(data))
        picked.append(p)
        if len(picked) == n:
            break
    return picked


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")


@pytest.fixture
def mount(alice, tmp_path, fuse):
    """mount(*options, user='alice') -> mount point; mounted in the background."""
    mounted = []

    def do(*opts, user="alice", path=None):
        d = path or tmp_path / f"mnt{len(mounted)}"
        d.mkdir(exist_ok=True)
        alice.run("mount", *opts, user, d)
        mounted.append(d)
        assert mountinfo_has(d)
        return d

    yield do
    for d in mounted:
        unmount(d)


@pytest.fixture
def fg_mount(alice, tmp_path, fuse):
    """fg_mount(path) -> Popen of a foreground `mailfs mount -f alice PATH`, once mounted."""
    procs = []

    def do(path):
        path.mkdir(exist_ok=True)
        p = alice.popen("mount", "-f", "alice", path, stderr=subprocess.PIPE)
        procs.append((p, path))
        assert wait_for(lambda: mountinfo_has(path) or p.poll() is not None)
        assert p.poll() is None, p.stderr.read().decode()
        return p

    yield do
    for p, path in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        unmount(path)


@pytest.fixture
def corpus_mount(alice, mount):
    files = single_messages(60)
    alice.run("import", "alice", *files)
    return mount(), files


# ---- reading -------------------------------------------------------------------------------

def test_read_corpus_bytes_stat_ls(corpus_mount, alice):
    mnt, files = corpus_mount
    inbox = mnt / "INBOX"
    want = {sha(p.read_bytes()): p.read_bytes() for p in files}
    names = os.listdir(inbox)
    assert len(names) == len(want)
    got = {}
    for name in names:
        assert re.fullmatch(r"\d{10}\.eml", name)
        data = (inbox / name).read_bytes()
        st = os.stat(inbox / name)
        assert st.st_size == len(data)
        got[sha(data)] = data
    assert got == want
    # names sort in arrival order: UIDs increase with the name
    uids = [int(os.getxattr(inbox / n, "user.mail.uid")) for n in sorted(names)]
    assert uids == sorted(uids)
    # the same stat (inode, size, mtime) after a remount: backups see nothing new
    before = {n: os.stat(inbox / n) for n in names}
    unmount(mnt)
    assert wait_for(lambda: not mountinfo_has(mnt))
    time.sleep(0.2)
    alice.run("mount", "alice", mnt)
    for n in names:
        a, b = before[n], os.stat(inbox / n)
        assert (a.st_ino, a.st_size, a.st_mtime) == (b.st_ino, b.st_size, b.st_mtime)


def test_grep_find_cat(corpus_mount):
    mnt, files = corpus_mount
    want = sum(1 for p in files if b"Subject" in p.read_bytes())
    r = subprocess.run(["grep", "-rl", "Subject", str(mnt)], capture_output=True)
    assert len(r.stdout.splitlines()) == want
    r = subprocess.run(["find", str(mnt), "-type", "f"], capture_output=True, check=True)
    assert len(r.stdout.splitlines()) == len(files)
    r = subprocess.run(["find", str(mnt), "-type", "d"], capture_output=True, check=True)
    dirs = {pathlib.Path(x.decode()).name for x in r.stdout.splitlines()}
    assert {"INBOX", "Sent", "Trash", "Drafts"} <= dirs
    cat = subprocess.run(f"cat {mnt}/INBOX/*.eml", shell=True, capture_output=True, check=True)
    assert len(cat.stdout) == sum(p.stat().st_size for p in files)


def test_df_shows_store_filesystem(mount, alice):
    mnt = mount()
    a, b = os.statvfs(mnt), os.statvfs(alice.store)
    assert a.f_blocks * a.f_frsize == b.f_blocks * b.f_frsize


def test_dir_mtime_changes_with_content(mount, alice):
    mnt = mount()
    before = os.stat(mnt / "INBOX").st_mtime_ns
    time.sleep(0.01)
    (mnt / "INBOX" / "x.eml").write_bytes(SAMPLE)
    assert os.stat(mnt / "INBOX").st_mtime_ns > before


# ---- writing -------------------------------------------------------------------------------

def test_cp_in_is_visible_to_other_processes(mount, alice, tmp_path):
    mnt = mount()
    src = tmp_path / "m.eml"
    src.write_bytes(SAMPLE)
    os.mkdir(mnt / "Work")
    subprocess.run(["cp", str(src), str(mnt / "Work/")], check=True)
    # the moment cp returns, another process sees it in the store
    assert mailbox_counts(alice)["Work"] == 1
    assert (mnt / "Work" / "m.eml").read_bytes() == SAMPLE
    out = tmp_path / "export"
    alice.run("export", "alice", out, "--mailbox", "Work")
    exported = [p.read_bytes() for p in out.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")]
    assert SAMPLE in exported
    # a second mount sees it too
    other = mount()
    assert (other / "Work" / "m.eml").read_bytes() == SAMPLE


def test_mv_rm_within_and_between_folders(mount, alice):
    mnt = mount()
    (mnt / "INBOX" / "a.eml").write_bytes(SAMPLE)
    uid = int(os.getxattr(mnt / "INBOX" / "a.eml", "user.mail.uid"))
    os.setxattr(mnt / "INBOX" / "a.eml", "user.mail.flags", b"\\Flagged")
    os.rename(mnt / "INBOX" / "a.eml", mnt / "INBOX" / "b.eml")
    assert sorted(os.listdir(mnt / "INBOX")) == ["b.eml"]
    assert int(os.getxattr(mnt / "INBOX" / "b.eml", "user.mail.uid")) == uid  # rename keeps UID
    subprocess.run(["mv", str(mnt / "INBOX" / "b.eml"), str(mnt / "Archive/")], check=True)
    assert os.listdir(mnt / "INBOX") == []
    moved = mnt / "Archive" / "b.eml"
    assert moved.read_bytes() == SAMPLE
    assert os.getxattr(moved, "user.mail.flags") == b"\\Flagged"  # MOVE keeps flags
    counts = mailbox_counts(alice)
    assert counts["INBOX"] == 0 and counts["Archive"] == 1
    os.unlink(moved)
    assert mailbox_counts(alice)["Archive"] == 0
    with pytest.raises(FileNotFoundError):
        os.stat(moved)


def test_mkdir_rmdir_rename_dir(mount, alice):
    mnt = mount()
    os.mkdir(mnt / "Work")
    os.mkdir(mnt / "Work" / "Projects")
    assert "Work/Projects" in mailbox_counts(alice)
    (mnt / "Work" / "Projects" / "p.eml").write_bytes(SAMPLE)
    with pytest.raises(OSError) as e:
        os.rmdir(mnt / "Work" / "Projects")
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as e:
        os.rmdir(mnt / "Work")
    assert e.value.errno == errno.ENOTEMPTY
    os.rename(mnt / "Work", mnt / "Job")
    counts = mailbox_counts(alice)
    assert "Job/Projects" in counts and "Work" not in counts
    assert (mnt / "Job" / "Projects" / "p.eml").read_bytes() == SAMPLE
    os.unlink(mnt / "Job" / "Projects" / "p.eml")
    os.rmdir(mnt / "Job" / "Projects")
    os.rmdir(mnt / "Job")
    assert "Job" not in mailbox_counts(alice)
    assert "Job" not in os.listdir(mnt)


def test_xattr_flags_round_trip(mount, alice):
    mnt = mount()
    p = mnt / "INBOX" / "f.eml"
    p.write_bytes(SAMPLE)
    before = os.stat(p)
    # no flags: nothing listed (cp -a and rsync -X copy nothing), the value reads as empty
    assert os.listxattr(p) == [] and os.getxattr(p, "user.mail.flags") == b""
    assert subprocess.run(["setfattr", "-n", "user.mail.flags", "-v", "\\Seen \\Flagged $Work",
                           str(p)]).returncode == 0
    r = subprocess.run(["getfattr", "--absolute-names", "-n", "user.mail.flags", "--only-values",
                        str(p)], capture_output=True, check=True)
    assert r.stdout == b"\\Seen \\Flagged $Work"
    assert os.listxattr(p) == ["user.mail.flags"]
    after = os.stat(p)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
        (before.st_ino, before.st_size, before.st_mtime_ns)
    assert wait_for(lambda: os.stat(p).st_ctime_ns > before.st_ctime_ns, timeout=0.1)
    assert os.listdir(mnt / "INBOX") == ["f.eml"]
    counts = alice.run("mailbox", "list", "alice").stdout.decode()
    inbox = [r.split("\t") for r in counts.splitlines() if r.startswith("INBOX")][0]
    assert inbox[2] == "0"  # no unseen left
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.mail.flags", b"\\Recent")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError):
        os.setxattr(p, "user.other", b"x")
    os.setxattr(p, "user.mail.flags", b"")
    assert os.getxattr(p, "user.mail.flags") == b"" and os.listxattr(p) == []


def test_xattr_flags_read_back_alike_before_and_after_storing(mount):
    """An empty message and one with content read their flags back the same way: each keyword
    once, whatever the case of its repetitions."""
    mnt = mount()
    empty, stored = mnt / "INBOX" / "empty.eml", mnt / "INBOX" / "stored.eml"
    empty.write_bytes(b"")
    stored.write_bytes(SAMPLE)
    for p in (empty, stored):
        os.setxattr(p, "user.mail.flags", b"$a,$A \\seen\n$b $a")
        assert os.getxattr(p, "user.mail.flags") == b"\\Seen $a $b", p.name


def test_edit_replaces_message_keeping_name_and_flags(mount):
    mnt = mount()
    p = mnt / "INBOX" / "e.eml"
    p.write_bytes(SAMPLE)
    os.setxattr(p, "user.mail.flags", b"\\Seen")
    uid = int(os.getxattr(p, "user.mail.uid"))
    subprocess.run(["sed", "-i", "s/hello/edited/", str(p)], check=True)
    assert b"Subject: edited" in p.read_bytes()
    assert int(os.getxattr(p, "user.mail.uid")) > uid
    assert os.getxattr(p, "user.mail.flags") == b"\\Seen"
    assert os.listdir(mnt / "INBOX") == ["e.eml"]
    # written over several open/close cycles, at offsets
    with open(p, "r+b") as f:
        f.seek(0)
        f.write(b"X-A: 1\n")
    with open(p, "ab") as f:
        f.write(b"more\n")
    data = p.read_bytes()
    assert data.startswith(b"X-A: 1\n") and data.endswith(b"body\nmore\n")
    # the shell's "> file": open with O_TRUNC, dup, close the first descriptor, then write
    subprocess.run(f"printf 'Subject: shell\\n\\nnew\\n' > {p}", shell=True, check=True)
    assert p.read_bytes() == b"Subject: shell\n\nnew\n"
    assert os.listdir(mnt / "INBOX") == ["e.eml"]


# ---- tool write patterns -------------------------------------------------------------------

def test_vim_style_swap_backup_rename(mount, alice):
    mnt = mount()
    inbox = mnt / "INBOX"
    p = inbox / "v.eml"
    p.write_bytes(SAMPLE)
    # swap file, the "4913" probe, a backup made by rename, then the new file written
    swap = inbox / ".v.eml.swp"
    with open(swap, "wb") as f:
        f.write(b"\0" * 4096)
    fd = os.open(inbox / "4913", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    os.unlink(inbox / "4913")
    os.rename(p, inbox / "v.eml~")
    assert mailbox_counts(alice)["INBOX"] == 0
    p.write_bytes(SAMPLE.replace(b"hello", b"vim"))
    os.unlink(inbox / "v.eml~")
    os.unlink(swap)
    assert os.listdir(inbox) == ["v.eml"]
    assert b"Subject: vim" in p.read_bytes()
    assert mailbox_counts(alice)["INBOX"] == 1


@pytest.mark.skipif(not shutil.which("vim"), reason="vim is not installed")
def test_real_vim_edit(mount):
    mnt = mount()
    p = mnt / "INBOX" / "r.eml"
    p.write_bytes(SAMPLE)
    subprocess.run(["vim", "-u", "NONE", "-N", "-es", "-c", "%s/hello/vimmed/", "-c", "wq", str(p)],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert b"Subject: vimmed" in p.read_bytes()
    assert os.listdir(mnt / "INBOX") == ["r.eml"]


def test_rsync_style_temp_then_rename(mount, alice):
    mnt = mount()
    inbox = mnt / "INBOX"
    tmp = inbox / ".t.eml.Ab12Cd"
    with open(tmp, "wb") as f:
        f.write(SAMPLE[:10])
        f.write(SAMPLE[10:])
    os.utime(tmp, (1500000000, 1500000000))
    assert mailbox_counts(alice)["INBOX"] == 0  # scratch files never reach the store
    os.rename(tmp, inbox / "t.eml")
    assert mailbox_counts(alice)["INBOX"] == 1
    st = os.stat(inbox / "t.eml")
    assert st.st_mtime == 1500000000 and st.st_size == len(SAMPLE)
    assert os.listdir(inbox) == ["t.eml"]


def test_scratch_files_touch_truncate(mount, alice):
    mnt = mount()
    inbox = mnt / "INBOX"
    subprocess.run(["touch", str(inbox / ".empty.eml.swp")], check=True)
    subprocess.run(["truncate", "-s", "100", str(inbox / ".empty.eml.swp")], check=True)
    assert os.stat(inbox / ".empty.eml.swp").st_size == 100
    with open(inbox / ".empty.eml.swp", "r+b") as f:
        f.seek(50)
        f.write(b"mid")
    data = (inbox / ".empty.eml.swp").read_bytes()
    assert data[50:53] == b"mid" and len(data) == 100
    assert mailbox_counts(alice)["INBOX"] == 0  # scratch files are not messages
    subprocess.run(["touch", str(inbox / "empty.eml")], check=True)
    assert sorted(os.listdir(inbox)) == [".empty.eml.swp", "empty.eml"]
    assert mailbox_counts(alice)["INBOX"] == 1  # an empty message, as APPEND {0} and import make
    (inbox / "empty.eml").write_bytes(SAMPLE)  # written: replaces it
    assert mailbox_counts(alice)["INBOX"] == 1
    assert (inbox / "empty.eml").read_bytes() == SAMPLE
    os.unlink(inbox / ".empty.eml.swp")
    assert os.listdir(inbox) == ["empty.eml"]


# ---- backup and restore --------------------------------------------------------------------

def rsync_transferred(args):
    r = subprocess.run(["rsync", "-a", "--stats", *args], capture_output=True, check=True)
    m = re.search(rb"Number of regular files transferred: ([\d,]+)", r.stdout)
    return int(m.group(1).replace(b",", b""))


def test_rsync_backup_then_restore_twice(corpus_mount, alice, mount, tmp_path):
    mnt, files = corpus_mount
    some = message_files(mnt)[0]
    os.setxattr(some, "user.mail.flags", b"\\Seen $Work")
    backup = tmp_path / "backup"
    assert rsync_transferred(["-X", f"{mnt}/", str(backup)]) == len(files)
    assert rsync_transferred(["-X", f"{mnt}/", str(backup)]) == 0
    assert len(message_files(backup)) == len(files)

    alice.run("user", "add", "bob", input=b"pw\n")
    restored = mount(user="bob")
    assert rsync_transferred(["-X", f"{backup}/", f"{restored}/"]) == len(files)
    assert rsync_transferred(["-X", f"{backup}/", f"{restored}/"]) == 0
    assert mailbox_counts(alice, "bob")["INBOX"] == len(files)
    for p in message_files(backup):
        q = restored / p.relative_to(backup)
        assert q.read_bytes() == p.read_bytes()
        assert int(os.stat(q).st_mtime) == int(os.stat(p).st_mtime)
    rel = some.relative_to(mnt)
    assert os.getxattr(restored / rel, "user.mail.flags") == b"\\Seen $Work"


def flags_or_none(path):
    """user.mail.flags of PATH; b"" where it is absent (a copy of a message without flags)."""
    try:
        return os.getxattr(path, "user.mail.flags")
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        return b""


def assert_same_mail(src, dst):
    """The messages under DST are those under SRC: same paths, bytes, mtime and flags."""
    want = [p.relative_to(src) for p in message_files(src)]
    assert [p.relative_to(dst) for p in message_files(dst)] == want
    for rel in want:
        a, b = src / rel, dst / rel
        assert b.read_bytes() == a.read_bytes(), rel
        assert int(os.stat(b).st_mtime) == int(os.stat(a).st_mtime), rel
        assert flags_or_none(b) == flags_or_none(a), rel


def flagged_corpus(corpus_mount):
    mnt, files = corpus_mount
    msgs = message_files(mnt)
    os.setxattr(msgs[0], "user.mail.flags", b"\\Seen $Work")
    os.setxattr(msgs[-1], "user.mail.flags", b"\\Flagged \\Answered")
    return mnt, files


def test_tar_xattrs_backup_and_restore(corpus_mount, alice, mount, tmp_path):
    mnt, files = flagged_corpus(corpus_mount)
    archive = tmp_path / "mail.tar"
    xattrs = ["--xattrs", "--xattrs-include=user.*"]
    subprocess.run(["tar", *xattrs, "-cf", str(archive), "-C", str(mnt), "."], check=True)
    alice.run("user", "add", "bob", input=b"pw\n")
    restored = mount(user="bob")
    subprocess.run(["tar", *xattrs, "-xf", str(archive), "-C", str(restored)], check=True)
    assert mailbox_counts(alice, "bob")["INBOX"] == len(files)
    assert_same_mail(mnt, restored)


def test_cp_a_backup_and_restore(corpus_mount, alice, mount, tmp_path):
    mnt, files = flagged_corpus(corpus_mount)
    backup = tmp_path / "copy"
    subprocess.run(["cp", "-a", f"{mnt}/.", str(backup)], check=True)
    assert_same_mail(mnt, backup)
    alice.run("user", "add", "bob", input=b"pw\n")
    restored = mount(user="bob")
    subprocess.run(["cp", "-a", f"{backup}/.", str(restored)], check=True)
    assert mailbox_counts(alice, "bob")["INBOX"] == len(files)
    assert_same_mail(mnt, restored)


def test_restic_backup_and_restore(corpus_mount, alice, mount, tmp_path):
    if not shutil.which("restic"):
        pytest.skip("restic is not installed (tools/test installs it)")
    mnt, files = flagged_corpus(corpus_mount)
    env = dict(os.environ, RESTIC_REPOSITORY=str(tmp_path / "repo"), RESTIC_PASSWORD="pw",
               RESTIC_CACHE_DIR=str(tmp_path / "cache"))
    run = lambda *a, cwd=None: subprocess.run(["restic", "-q", *a], env=env, cwd=cwd,
                                              check=True, capture_output=True)
    run("init")
    run("backup", ".", cwd=mnt)
    run("backup", ".", cwd=mnt)  # a second backup of an unchanged mount reads nothing new
    snaps = subprocess.run(["restic", "snapshots", "--json"], env=env, check=True,
                           capture_output=True).stdout
    assert snaps.count(b'"id"') == 2
    alice.run("user", "add", "bob", input=b"pw\n")
    restored = mount(user="bob")
    run("restore", "latest", "--target", str(restored))
    assert mailbox_counts(alice, "bob")["INBOX"] == len(files)
    assert_same_mail(mnt, restored)


def test_borg_backup_and_restore(corpus_mount, alice, mount, tmp_path):
    if not shutil.which("borg"):
        pytest.skip("borg is not installed (tools/test installs it)")
    mnt, files = flagged_corpus(corpus_mount)
    repo = tmp_path / "repo"
    env = dict(os.environ, BORG_BASE_DIR=str(tmp_path / "borg"),
               BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes")
    run = lambda *a, cwd=None: subprocess.run(["borg", *a], env=env, cwd=cwd, check=True,
                                              capture_output=True)
    run("init", "-e", "none", str(repo))
    run("create", f"{repo}::one", ".", cwd=mnt)
    alice.run("user", "add", "bob", input=b"pw\n")
    restored = mount(user="bob")
    run("extract", f"{repo}::one", cwd=restored)
    assert mailbox_counts(alice, "bob")["INBOX"] == len(files)
    assert_same_mail(mnt, restored)


# ---- sync ----------------------------------------------------------------------------------

def test_deliver_from_another_process_shows_at_once(mount, alice):
    mnt = mount()
    inbox = mnt / "INBOX"
    assert os.listdir(inbox) == []  # now cached by the kernel
    os.stat(inbox)
    alice.run("deliver", "alice", input=SAMPLE)
    t = time.monotonic()
    assert wait_for(lambda: len(os.listdir(inbox)) == 1, timeout=1.0, step=0.002)
    assert time.monotonic() - t < 0.5  # pushed, not polled
    name = os.listdir(inbox)[0]
    assert (inbox / name).read_bytes() == SAMPLE
    # and the other way: an expunge and a new mailbox made elsewhere
    alice.run("mailbox", "create", "alice", "Elsewhere")
    assert wait_for(lambda: "Elsewhere" in os.listdir(mnt), timeout=0.1, step=0.002)
    alice.run("mailbox", "rename", "alice", "Elsewhere", "Moved")
    assert wait_for(lambda: "Moved" in os.listdir(mnt) and "Elsewhere" not in os.listdir(mnt)
                    and not os.path.exists(mnt / "Elsewhere"), timeout=0.1, step=0.002)


def test_an_open_file_finds_its_message_however_many_are_stored_after_it(mount):
    """A descriptor of a new file is on the inode the file was created with; once the file is
    stored, requests on that inode reach the message for as long as the kernel holds it, not
    only until 4,096 other files were stored (the table of forwards was a ring)."""
    mnt = mount()
    fd = os.open(mnt / "INBOX" / "first.eml", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.write(fd, SAMPLE)
        os.fsync(fd)  # stored: the inode forwards to the message now
        ino = os.fstat(fd).st_ino
        for i in range(4200):
            (mnt / "INBOX" / f"m{i}.eml").write_bytes(SAMPLE)
        # xattrs are never cached: these reach the mount, on the first inode
        os.setxattr(fd, "user.mail.flags", b"\\Seen")
        assert os.getxattr(fd, "user.mail.uid") == b"1"
        assert os.fstat(fd).st_ino == ino
    finally:
        os.close(fd)
    assert (mnt / "INBOX" / "first.eml").read_bytes() == SAMPLE
    assert os.getxattr(mnt / "INBOX" / "first.eml", "user.mail.flags") == b"\\Seen"


def test_two_mounts_see_each_other(mount):
    a, b = mount(), mount()
    assert os.listdir(b / "INBOX") == []
    (a / "INBOX" / "x.eml").write_bytes(SAMPLE)
    assert wait_for(lambda: os.listdir(b / "INBOX") == ["x.eml"], timeout=0.1, step=0.002)
    os.rename(a / "INBOX" / "x.eml", a / "INBOX" / "y.eml")
    assert wait_for(lambda: os.listdir(b / "INBOX") == ["y.eml"] and
                    not os.path.exists(b / "INBOX" / "x.eml"), timeout=0.1, step=0.002)
    os.setxattr(a / "INBOX" / "y.eml", "user.mail.flags", b"\\Seen")
    assert os.getxattr(b / "INBOX" / "y.eml", "user.mail.flags") == b"\\Seen"
    os.unlink(a / "INBOX" / "y.eml")
    assert wait_for(lambda: os.listdir(b / "INBOX") == [] and
                    not os.path.exists(b / "INBOX" / "y.eml"), timeout=0.1, step=0.002)


# ---- what mail cannot express, bad input ---------------------------------------------------

# an access ACL in the kernel's xattr form (version 2; tag, permissions, id): owner rw, user
# 65534 r, group none, mask r, others none; what `setfacl -m u:nobody:r` sends
ACL_NOBODY_READS = struct.pack("<I" + "HHI" * 5, 2, 0x01, 6, 0xFFFFFFFF, 0x02, 4, 65534,
                               0x04, 0, 0xFFFFFFFF, 0x10, 4, 0xFFFFFFFF, 0x20, 0, 0xFFFFFFFF)


def test_refusals(mount, alice):
    mnt = mount("-o", "msgmax=1000")
    p = mnt / "INBOX" / "m.eml"
    p.write_bytes(SAMPLE)
    for fn, code in [
        (lambda: os.chmod(p, 0o755), errno.EPERM),
        (lambda: os.symlink("m.eml", mnt / "INBOX" / "l.eml"), errno.EPERM),
        (lambda: os.mkfifo(mnt / "INBOX" / "fifo"), errno.EPERM),
        (lambda: os.link(p, mnt / "INBOX" / "h.eml"), errno.EPERM),
        (lambda: open(mnt / "INBOX" / ("x" * 256 + ".eml"), "wb"), errno.ENAMETOOLONG),
        (lambda: open(os.path.join(os.fsencode(mnt / "INBOX"), b"\xff\xfe.eml"), "wb"), errno.EINVAL),
        (lambda: open(mnt / "INBOX" / "a..b.eml", "wb"), errno.EINVAL),
        (lambda: os.mkdir(os.path.join(os.fsencode(mnt), b"bad\xe9")), errno.EINVAL),
        (lambda: os.setxattr(p, "system.posix_acl_access", ACL_NOBODY_READS), errno.ENOTSUP),
    ]:
        with pytest.raises(OSError) as e:
            fn()
        assert e.value.errno == code
    os.chmod(p, 0o600)  # harmless modes are fine
    # over the size limit: EFBIG and nothing stored
    with pytest.raises(OSError) as e:
        with open(mnt / "INBOX" / "big.eml", "wb") as f:
            f.write(b"x" * 2000)
    assert e.value.errno == errno.EFBIG
    assert mailbox_counts(alice)["INBOX"] == 1


def test_read_only_mount(mount, alice):
    alice.run("deliver", "alice", input=SAMPLE)
    mnt = mount("-o", "ro")
    name = os.listdir(mnt / "INBOX")[0]
    assert (mnt / "INBOX" / name).read_bytes() == SAMPLE
    assert (mnt / "INBOX" / name).read_bytes() == SAMPLE
    with pytest.raises(OSError) as e:
        (mnt / "INBOX" / "n.eml").write_bytes(SAMPLE)
    assert e.value.errno == errno.EROFS
    alice.run("deliver", "alice", input=SAMPLE + b"2\n")
    assert wait_for(lambda: len(os.listdir(mnt / "INBOX")) == 2, timeout=0.1, step=0.002)


# ---- the daemon ----------------------------------------------------------------------------

def test_killed_daemon_then_remount(fg_mount, alice, tmp_path):
    mnt = tmp_path / "k"
    p = fg_mount(mnt)
    os.listdir(mnt / "INBOX")
    p.kill()
    p.wait(5)
    with pytest.raises(OSError) as e:
        os.statvfs(mnt)
    assert e.value.errno == errno.ENOTCONN
    t = time.monotonic()
    r = alice.run("mount", "alice", mnt, timeout=10)
    assert time.monotonic() - t < 5
    assert "INBOX" in os.listdir(mnt)
    unmount(mnt)


def test_sigterm_unmounts(fg_mount, tmp_path):
    mnt = tmp_path / "t"
    p = fg_mount(mnt)
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    assert not mountinfo_has(mnt)


def test_usage_errors(alice, tmp_path):
    r = alice.run("mount", "--help")
    assert b"usage: mailfs mount" in r.stdout
    r = alice.run("mount", "alice", tmp_path / "missing", check=False)
    assert r.returncode != 0 and b"mailfs: " in r.stderr and b"missing" in r.stderr
    r = alice.run("mount", "-o", "bogus", "alice", tmp_path, check=False)
    assert r.returncode == 64 and b"'bogus'" in r.stderr
    r = alice.run("mount", "-o", "msgmax=-5", "alice", tmp_path, check=False)
    assert r.returncode == 64 and b"'-5'" in r.stderr
    r = alice.run("mount", "nobody", tmp_path, check=False)
    assert r.returncode == 67 and b"'nobody'" in r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1
