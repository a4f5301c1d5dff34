"""The mount under faults: a full disk under the store, and a change feed that no longer reaches
back to where the mount's watcher stopped (it must rebuild its mirror).

Both mount for real through /dev/fuse as root; everything they set up (the FUSE mount, the small
filesystem and its loop device, servers) is taken down in a finally block even when they fail.
"""
import base64
import contextlib
import errno
import imaplib
import os
import random
import signal
import socket
import subprocess
import time

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
        assert wait_for(lambda: up() or proc.poll() is not None, timeout=10, step=0.05) and \
            proc.poll() is None, "mailfs serve did not start: " + proc.stderr.read().decode()
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
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with small_disk(kind, tmp_path / "disk") as disk:
        try:
            m = Mailfs(disk / "store")
            m.run("init")
            m.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
            m.run("mount", "alice", mnt)
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
        finally:
            unmount(mnt)
            wait_for(lambda: not mountinfo_has(mnt), timeout=5, step=0.05)
