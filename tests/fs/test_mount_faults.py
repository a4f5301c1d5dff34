"""The mount under faults: a full disk under the store, and a change feed that no longer reaches
back to where the mount's watcher stopped (it must rebuild its mirror).

Both mount for real through /dev/fuse (the full disk needs root too); everything they set up
(FUSE mounts, the small filesystem and its loop device, the IMAP server) is taken down in a
finally block even when they fail.
"""
import base64
import contextlib
import errno
import imaplib
import os
import random
import re
import signal
import socket
import subprocess

import pytest

from conftest import PASSWORD, Mailfs, free_port, mountinfo_has, unmount, wait_for


def need_root_and_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small filesystem under the store")


def message(rng, tag, size):
    """A message of about SIZE bytes with a base64 body of random bytes: distinct per TAG.
    CRLF line ends, so that IMAP gives back the same bytes."""
    head = f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {tag}\r\n\r\n".encode()
    raw = rng.randbytes(max(size - len(head), 60) * 3 // 4)
    return head + base64.encodebytes(raw).replace(b"\n", b"\r\n")


def run(*argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, timeout=60, **kw)


# ---- a full disk ---------------------------------------------------------------------------

@contextlib.contextmanager
def small_disk(kind, where):
    """A fresh 64 MiB ext4 filesystem on a loop device, or a 40 MiB tmpfs, mounted at WHERE."""
    where.mkdir()
    img = where.with_suffix(".img")
    if kind == "ext4":
        run("truncate", "-s", "64M", img, check=True)
        # -m 0: no blocks reserved for root (the mount daemon runs as root and would use them)
        run("mkfs.ext4", "-q", "-F", "-m", "0", img, check=True)
        r = run("mount", "-o", "loop", img, where)
    else:
        r = run("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", where)
    assert r.returncode == 0, f"cannot mount a small {kind}: {r.stderr.decode().strip()}"
    try:
        yield where
    finally:
        # the daemon that held the store may take a moment to exit after its unmount
        if not wait_for(lambda: run("umount", where).returncode == 0, timeout=10, step=0.1):
            run("umount", "-l", where)
        if kind == "ext4":  # a loop device left attached (mount -o loop clears it on umount)
            for line in run("losetup", "-j", img).stdout.decode().splitlines():
                run("losetup", "-d", line.split(":")[0])
            img.unlink(missing_ok=True)


@contextlib.contextmanager
def mounted_on_small_disk(kind, tmp_path):
    """A store on a small_disk with user alice, her mail mounted: yields (Mailfs, mount point)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with small_disk(kind, tmp_path / "disk") as disk:
        try:
            m = Mailfs(disk / "store")
            m.run("init")
            m.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
            m.run("mount", "alice", mnt)
            yield m, mnt
        finally:
            unmount(mnt)
            wait_for(lambda: not mountinfo_has(mnt), timeout=5, step=0.05)


@contextlib.contextmanager
def imap_server(m):
    """`mailfs serve` on store M -> an imaplib connection logged in as alice (None: no IMAP)."""
    if m.run("serve", "--help", check=False).returncode != 0:
        yield None
        return
    port = free_port()
    proc = m.popen("serve", "--imap", f"127.0.0.1:{port}", stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)

    def up():
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        return False

    try:
        if not wait_for(lambda: up() or proc.poll() is not None, timeout=10, step=0.05) or \
                proc.poll() is not None:
            proc.kill()
            proc.wait()
            pytest.fail("mailfs serve did not start: " + proc.stderr.read().decode())
        c = imaplib.IMAP4("127.0.0.1", port)
        c.login("alice", PASSWORD)
        yield c
        c.logout()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def imap_inbox(c):
    """INBOX through IMAP: the bytes of every message."""
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK", data
    if int(data[0]) == 0:
        return []
    typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    return [d[1] for d in data if isinstance(d, tuple)]


@pytest.mark.parametrize("kind", ["ext4", "tmpfs"])
def test_full_disk_gives_enospc_and_leaves_nothing_half_written(tmp_path, kind):
    """cp into the mount until the disk under the store is full: the cp that does not fit fails
    with ENOSPC at close and leaves nothing behind (mount, `mailfs check`, IMAP); everything
    copied before is intact; an edit that does not fit keeps the old version; after `rm` through
    the mount frees space, a new cp works."""
    need_root_and_fuse()
    rng = random.Random(7)
    src = tmp_path / "src"
    src.mkdir()
    with mounted_on_small_disk(kind, tmp_path) as (m, mnt):
        inbox = mnt / "INBOX"

        # fill it: large messages (own packs), medium ones and small ones (shared packs)
        copied, failed = {}, None
        sizes = [1 << 20, 400 << 10, 30 << 10, 3 << 10]
        for i in range(400):
            name = f"m{i:03d}.eml"
            data = message(rng, name, sizes[i % len(sizes)])
            (src / name).write_bytes(data)
            r = run("cp", src / name, inbox)
            if r.returncode != 0:
                failed = (name, r)
                break
            copied[name] = data
        assert failed, "the disk never filled up"
        name, r = failed
        assert b"No space left" in r.stderr, r.stderr
        assert len(copied) > 20, f"only {len(copied)} messages fit on the {kind}"

        # nothing of the failed cp is left; what was copied is there, byte for byte
        assert not os.path.exists(inbox / name)
        assert sorted(os.listdir(inbox)) == sorted(copied)
        for n, data in copied.items():
            assert (inbox / n).read_bytes() == data, n
        rc = m.run("check", check=False)
        assert rc.returncode == 0, rc.stdout.decode() + rc.stderr.decode()
        listed = m.run("mailbox", "list", "alice").stdout.decode().splitlines()
        assert [l.split("\t")[1] for l in listed if l.startswith("INBOX\t")] == [str(len(copied))]

        # an edit that does not fit: close() says ENOSPC, the stored version stays
        victim = sorted(copied)[0]
        with pytest.raises(OSError) as e:
            with open(inbox / victim, "ab") as f:
                f.write(message(rng, "more", 2 << 20))
        assert e.value.errno == errno.ENOSPC
        assert (inbox / victim).read_bytes() == copied[victim]
        assert sorted(os.listdir(inbox)) == sorted(copied)

        # IMAP sees exactly the copied messages
        with imap_server(m) as c:
            if c is not None:
                assert sorted(imap_inbox(c)) == sorted(copied.values())

        # rm through the mount frees space: a new cp works, and so does the one after it
        big = sorted((n for n in copied if len(copied[n]) > 512 << 10))[:1]
        for n in big:
            os.unlink(inbox / n)
            del copied[n]
        for n in ("after1.eml", "after2.eml"):
            data = message(rng, n, 300 << 10)
            (src / n).write_bytes(data)
            r = run("cp", src / n, inbox)
            assert r.returncode == 0, r.stderr.decode()
            copied[n] = data
        assert sorted(os.listdir(inbox)) == sorted(copied)
        for n, data in copied.items():
            assert (inbox / n).read_bytes() == data, n
        rc = m.run("check", check=False)
        assert rc.returncode == 0, rc.stdout.decode() + rc.stderr.decode()


# ---- the change feed no longer reaches back ------------------------------------------------

FEED_KEEP = 50


def feed_store(tmp_path):
    """A store with user alice whose feed keeps FEED_KEEP changes, for every process run on it."""
    m = Mailfs(tmp_path / "store")
    m.env["MAILFS_FEED_KEEP"] = str(FEED_KEEP)
    m.run("init")
    m.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
    return m


def feed_size(m):
    out = m.run("check").stdout.decode()
    return int(out.split(" changes in the feed")[0].rsplit(" ", 1)[1])


def test_parallel_writers_on_a_filling_disk(tmp_path):
    """Eight cp processes at once into a mount whose disk fills up: the mount stores messages
    closed together in one transaction (group commit), and when such a transaction does not
    fit, each message is tried alone. Every cp either stored its file whole or was told
    ENOSPC at close, and the store holds exactly the stored ones."""
    need_root_and_fuse()
    rng = random.Random(11)
    with mounted_on_small_disk("tmpfs", tmp_path) as (m, mnt):
        inbox = mnt / "INBOX"
        sizes = [600 << 10, 90 << 10, 8 << 10, 2 << 10]
        groups, data = [], {}
        for g in range(8):
            src = tmp_path / f"src{g}"
            src.mkdir()
            names = []
            for i in range(40):
                name = f"g{g}m{i:02d}.eml"
                data[name] = message(rng, name, sizes[(g + i) % len(sizes)])
                (src / name).write_bytes(data[name])
                names.append(str(src / name))
            groups.append(names)
        procs = [subprocess.Popen(["cp", *names, str(inbox)], stderr=subprocess.PIPE)
                 for names in groups]
        failed = set()
        for p in procs:
            _, err = p.communicate(timeout=120)
            for line in err.decode().splitlines():
                assert "No space left on device" in line, line
                failed.add(re.search(r"'[^']*/([^/']+)'", line).group(1))
        assert failed, "the disk never filled up"
        stored = sorted(os.listdir(inbox))
        assert stored == sorted(set(data) - failed)
        assert len(stored) > 40, f"only {len(stored)} messages fit"
        for n in stored:
            assert (inbox / n).read_bytes() == data[n], n
        rc = m.run("check", check=False)
        assert rc.returncode == 0, rc.stdout.decode() + rc.stderr.decode()
        listed = m.run("mailbox", "list", "alice").stdout.decode().splitlines()
        assert [l.split("\t")[1] for l in listed if l.startswith("INBOX\t")] == [str(len(stored))]


def test_feed_keep_knob(tmp_path):
    """MAILFS_FEED_KEEP bounds the feed when it is a positive integer, and is ignored otherwise."""
    m = feed_store(tmp_path)
    for i in range(FEED_KEEP + 20):
        m.run("deliver", "alice", input=f"Subject: {i}\n\nx\n".encode())
    assert feed_size(m) == FEED_KEEP
    for bad in ("0", "-5", "abc", "12x", " 7", "99999999999999999999999"):
        m.env["MAILFS_FEED_KEEP"] = bad
        before = feed_size(m)
        m.run("deliver", "alice", input=f"Subject: {bad}\n\nx\n".encode())
        assert feed_size(m) == before + 1, bad


def view(root):
    """What a mount shows: per path, the stat fields mail defines and the flags; the root's own
    times are left out (they are the mount's, not the store's)."""
    seen = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel != ".":
            st = os.stat(d)
            seen[rel + "/"] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            seen[os.path.join(rel, f)] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                          os.getxattr(p, "user.mail.flags"))
    return seen


def test_feed_overrun_rebuilds_the_mirror(tmp_path):
    """A mount whose watcher missed more changes than the feed keeps (it was stopped while
    another mount and `mailfs deliver` made them) rebuilds its mirror: it then shows exactly
    what the store holds, though it had every listing, entry and attribute cached."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")
    m = feed_store(tmp_path)
    for box in ("Work", "Old", "Old/Child", "Gone"):
        m.run("mailbox", "create", "alice", box)
    for i in range(30):
        m.run("deliver", "alice", input=f"Subject: first {i}\n\nbody {i}\n".encode())
    for box in ("Work", "Old/Child"):
        m.run("deliver", "alice", "--mailbox", box, input=f"Subject: in {box}\n\nx\n".encode())

    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    procs, mounts = [], []
    try:
        for d in (a, b):
            d.mkdir()
            p = m.popen("mount", "-f", "alice", d, stderr=subprocess.PIPE)
            procs.append(p)
            mounts.append(d)
            assert wait_for(lambda: mountinfo_has(d) or p.poll() is not None, timeout=10)
            assert p.poll() is None, p.stderr.read().decode()
        watched = procs[0]

        # a's kernel caches everything: listings, entries, attributes, and names not there yet
        before = view(a)
        inbox = sorted(os.listdir(a / "INBOX"))
        assert len(inbox) == 30
        new_names = [f"{c}{i:02d}.eml" for c, k in (("n", 60), ("r", 15), ("k", 15)) for i in range(k)]
        for p in [a / "Renamed", a / "New", a / "Old" / "Later"] + \
                 [a / "INBOX" / n for n in new_names] + [a / "Work" / n for n in inbox[25:]]:
            assert not os.path.exists(p)

        child = a / "Old" / "Child" / os.listdir(a / "Old" / "Child")[0]
        seq_then = int(os.getxattr(child, "user.mail.modseq"))  # the last change so far

        os.kill(watched.pid, signal.SIGSTOP)  # a is not touched until SIGCONT
        try:
            ib = b / "INBOX"
            for i in range(60):  # appends
                (ib / f"n{i:02d}.eml").write_bytes(f"Subject: new {i}\n\nbody\n".encode())
            for n in inbox[:20]:  # flags
                os.setxattr(ib / n, "user.mail.flags", b"\\Seen $Work")
            for n in inbox[20:25]:  # expunges
                os.unlink(ib / n)
            for i, n in enumerate(inbox[25:30]):  # MOVE to another folder
                os.rename(ib / n, b / "Work" / n)
            for i in range(15):  # message renames, of new messages and of ones a knew
                os.rename(ib / f"n{i:02d}.eml", ib / f"r{i:02d}.eml")
            for i, n in enumerate(inbox[10:15]):
                os.rename(ib / n, ib / f"k{i + 10:02d}.eml")
            for i in range(15, 20):  # edits: expunge + append, same name
                with open(ib / f"n{i:02d}.eml", "ab") as f:
                    f.write(b"edited\n")
            for i in range(30, 50):  # more flags
                os.setxattr(ib / f"n{i:02d}.eml", "user.mail.flags", b"\\Flagged")
            os.mkdir(b / "New")
            os.rename(b / "Old", b / "Renamed")  # and its child
            os.rmdir(b / "Gone")
            os.mkdir(b / "Renamed" / "Later")
            for i in range(50):
                m.run("deliver", "alice", "--mailbox", "New",
                      input=f"Subject: later {i}\n\nx\n".encode())
            assert feed_size(m) == FEED_KEEP  # a's position is long gone from the feed
        finally:
            os.kill(watched.pid, signal.SIGCONT)

        # the truth: the store through a fresh mount, and its own counts
        c.mkdir()
        m.run("mount", "alice", c)
        mounts.append(c)
        want = view(c)
        last = max(os.listdir(c / "New"))  # delivered last
        made = int(os.getxattr(c / "New" / last, "user.mail.modseq")) - seq_then
        assert made >= 4 * FEED_KEEP, made  # the feed was overrun four times over
        counts = {l.split("\t")[0]: int(l.split("\t")[1])
                  for l in m.run("mailbox", "list", "alice").stdout.decode().splitlines()}
        assert {k[:-1] for k in want if k.endswith("/")} == set(counts)
        for box, n in counts.items():
            assert sum(1 for k in want if os.path.dirname(k) == box and not k.endswith("/")) == n
        assert "Renamed/Child/" in want and "Renamed/Later/" in want and "New/" in want
        assert not any(k.startswith(("Old/", "Gone/")) for k in want)
        assert want != before

        # checks by name first: a listing would refresh entries and attributes by itself
        # (READDIRPLUS), so only the watcher's invalidations can make these pass
        def by_name():
            bad = [f"{p} is still there" for p in
                   (a / "Old", a / "Gone", a / "INBOX" / inbox[10], a / "INBOX" / inbox[20],
                    a / "INBOX" / inbox[25], a / "INBOX" / "n00.eml")
                   if os.path.exists(p)]
            bad += [f"{p} is missing" for p in
                    (a / "Renamed", a / "Renamed" / "Child", a / "Renamed" / "Later", a / "New",
                     a / "INBOX" / "k10.eml", a / "INBOX" / "r00.eml", a / "INBOX" / "n59.eml",
                     a / "Work" / inbox[25])
                    if not os.path.exists(p)]
            for n in inbox[:10]:  # flags moved ctime, which a had cached
                if os.stat(a / "INBOX" / n).st_ctime_ns != want[f"INBOX/{n}"][3]:
                    bad.append(f"INBOX/{n} has a stale ctime")
            return bad

        wait_for(lambda: not by_name(), timeout=5, step=0.05)
        bad = by_name()
        assert not bad, "\n".join(bad)
        got = view(a)
        assert got == want, sorted(set(got.items()) ^ set(want.items()))[:10]
        assert os.getxattr(a / "INBOX" / inbox[0], "user.mail.flags") == b"\\Seen $Work"
        # and it still follows the feed afterwards
        m.run("deliver", "alice", "--mailbox", "Renamed", input=b"Subject: after\n\nx\n")
        assert wait_for(lambda: len(os.listdir(a / "Renamed")) == 3, timeout=2)
        assert watched.poll() is None
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGCONT)
        for d in mounts:
            unmount(d)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    # the mount that rebuilt ends cleanly when unmounted (and, under ASan, without a report)
    err = procs[0].stderr.read().decode(errors="replace")
    assert procs[0].returncode == 0 and not err, err
