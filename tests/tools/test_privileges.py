"""`mailfs serve` started as root: it binds a port below 1024, mounts, then runs as an unprivileged
account for good; a root child unmounts when it ends, even after kill -9; refusals are one line."""
import imaplib
import os
import pathlib
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import MAILFS, PASSWORD, Mailfs, mountinfo_has, unmount, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="dropping privileges needs root (CI runs as root)")

MSG = b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: %s\r\n\r\nbody\r\n"


def low_port():
    """A port below 1024 on 127.0.0.1 that nothing listens on now (only root may bind it)."""
    for port in range(900, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port between 900 and 999")


@pytest.fixture(scope="module")
def account():
    """A throwaway system account (removed at the end): its pwd entry."""
    if not shutil.which("useradd"):
        pytest.skip("useradd is not installed")
    name = f"mailfs-t{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def base():
    """A directory every account can pass through (pytest's own tmp_path is root's alone)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="mailfs-priv-"))
    d.chmod(0o755)
    yield d
    unmount(d / "mnt")
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store(base):
    """A store with user alice, made by root (so owned by root): a Mailfs."""
    m = Mailfs(base / "store")
    m.run("init")
    m.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
    return m


@pytest.fixture
def owned(store, account):
    """The store, handed to the account."""
    subprocess.run(["chown", "-R", f"{account.pw_name}:", str(store.store)], check=True)
    return store


def start(m, account, port, mnt):
    proc = m.popen("serve", "--user", account.pw_name, "--imap", f"127.0.0.1:{port}",
                   "--mount", f"alice:{mnt}", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        assert proc.poll() is None, "serve exited: " + proc.stderr.read().decode(errors="replace")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return os.path.isdir(mnt / "INBOX")

    assert wait_for(up, timeout=15, step=0.02), "serve did not start"
    return proc


def ids(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def imap_messages(port):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("alice", PASSWORD)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    n = int(data[0])
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if n else ("OK", [])
    subjects = sorted(p[1].decode().strip() for p in data if isinstance(p, tuple))
    m.logout()
    return subjects


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is absent")
def test_serve_drops_to_the_account_and_still_works(owned, account, base):
    mnt = base / "mnt"
    mnt.mkdir()
    port = low_port()
    proc = start(owned, account, port, mnt)
    try:
        # every uid and gid (real, effective, saved, filesystem) is the account's; no root group
        assert ids(proc.pid, "Uid") == [account.pw_uid] * 4
        assert ids(proc.pid, "Gid") == [account.pw_gid] * 4
        assert 0 not in ids(proc.pid, "Groups")
        # the guard: a root child holding only /dev/null, its stderr and its pipe, not the store
        guards = [int(p) for p in pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                  .read_text().split()]
        assert len(guards) == 1
        assert ids(guards[0], "Uid") == [0] * 4
        fds = {fd.name: os.readlink(fd) for fd in pathlib.Path(f"/proc/{guards[0]}/fd").iterdir()}
        assert sorted(fds) == ["0", "1", "2", "3"], fds
        assert not any(str(owned.store) in t or "fuse" in t for t in fds.values()), fds

        # IMAP: LOGIN, APPEND, SELECT
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login("alice", PASSWORD)
        typ, data = m.append("INBOX", None, None, MSG % b"appended")
        assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        m.logout()
        # the mount: a message copied in is seen by IMAP
        src = base / "in.eml"
        src.write_bytes(MSG % b"copied")
        shutil.copy(src, mnt / "INBOX" / "new.eml")
        assert imap_messages(port) == ["Subject: appended", "Subject: copied"]

        # everything in the store belongs to the account: files 0600, directories 0700
        for p in [owned.store, *owned.store.rglob("*")]:
            st = p.lstat()
            assert (st.st_uid, st.st_gid) == (account.pw_uid, account.pw_gid), p
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            assert stat.S_IMODE(st.st_mode) == want, f"{p}: {oct(st.st_mode)}"

        # SIGHUP reads the certificate as the account: it owns it, so that works
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    err = proc.stderr.read().decode(errors="replace")
    assert rc == 0, err
    # the server waited for the guard: the mount is gone by the time it exits
    assert not mountinfo_has(mnt), "SIGTERM left the mount behind"
    assert f"running as user '{account.pw_name}'" in err
    assert "reloaded TLS certificate" in err, err


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is absent")
def test_kill_9_leaves_no_mount(owned, account, base):
    mnt = base / "mnt"
    mnt.mkdir()
    port = low_port()
    proc = start(owned, account, port, mnt)
    proc.kill()
    proc.wait(10)
    assert wait_for(lambda: not mountinfo_has(mnt), timeout=2), "kill -9 left the mount behind"
    # and the next server mounts on the same place
    proc = start(owned, account, port, mnt)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not mountinfo_has(mnt)


def one_line_error(r):
    err = r.stderr.decode(errors="replace").strip()
    assert r.returncode != 0
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_account_is_refused(owned):
    r = owned.run("serve", "--user", "nonexistent-user", "--imap", "127.0.0.1:0", check=False)
    err = one_line_error(r)
    assert "no account 'nonexistent-user'" in err and "useradd" in err, err


def test_root_without_user_needs_an_account(owned):
    # the test fixture adds --user root to serve: run the command itself
    r = subprocess.run([str(MAILFS), "serve", "--imap", "127.0.0.1:0"], env=owned.env,
                       capture_output=True, timeout=60)
    err = one_line_error(r)
    try:
        pwd.getpwnam("mailfs")
    except KeyError:  # no account to drop to: refused, with how to make one
        assert "useradd --system mailfs" in err and "--user NAME" in err, err
    else:  # the default account exists but does not own this store
        assert f"chown -R mailfs: {owned.store}" in err, err


def test_store_of_another_owner_is_refused(store, account):
    r = store.run("serve", "--user", account.pw_name, "--imap", "127.0.0.1:0", check=False)
    err = one_line_error(r)
    assert r.returncode == 77  # EX_NOPERM
    assert f"chown -R {account.pw_name}: {store.store}" in err, err


def test_store_the_account_cannot_reach_is_refused(account, tmp_path):
    # tmp_path is inside root's 0700 directory: owning the store is not enough
    m = Mailfs(tmp_path / "store")
    m.run("init")
    subprocess.run(["chown", "-R", f"{account.pw_name}:", str(m.store)], check=True)
    r = m.run("serve", "--user", account.pw_name, "--imap", "127.0.0.1:0", check=False)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 77, err
    assert f"user '{account.pw_name}' cannot reach store" in err, err


def test_only_root_switches_users(owned, account):
    def become():
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    r = subprocess.run([str(MAILFS), "serve", "--user", "root", "--imap", "127.0.0.1:0"],
                       env=owned.env, capture_output=True, timeout=60, preexec_fn=become)
    err = one_line_error(r)
    assert "only root can switch users" in err, err
