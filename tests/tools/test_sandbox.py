"""Issue 10, low item: `mailfs serve` runs with no_new_privs and a seccomp allow-list, and still
serves IMAP (STARTTLS, APPEND, FETCH, IDLE), its mount and deliveries, and reloads on SIGHUP."""
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import MAILFS, PASSWORD, free_port, mountinfo_has, wait_for
from imapfix import Conn, start_with_mount, tls_context

MSG = b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: %s\r\n\r\nbody %s\r\n"


def sanitized():
    """True for a build with AddressSanitizer: it runs without the filter (LeakSanitizer cannot
    work under one), with no_new_privs all the same."""
    r = subprocess.run(["ldd", str(MAILFS)], capture_output=True)
    return b"libasan" in r.stdout


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def start(m, mnt, env=None):
    if env:
        m.env.update(env)
    return start_with_mount(m, mnt)


def stop(proc, mnt):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for opt in ("-u", "-uz"):
            if mountinfo_has(mnt):
                subprocess.run(["fusermount3", opt, str(mnt)], capture_output=True)
    err = proc.stderr.read().decode(errors="replace")
    # killed by the filter: -31 (SIGSYS)
    assert rc == 0, f"mailfs serve exited {rc}: {err[-3000:]}"
    assert not mountinfo_has(mnt), "SIGTERM left the mount behind"
    return err


@pytest.fixture
def mnt(tmp_path):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: the mount tests need FUSE")
    d = tmp_path / "mnt"
    d.mkdir()
    return d


def test_the_running_server_is_filtered_and_still_serves_everything(alice, mnt):
    proc, port = start(alice, mnt)
    try:
        st = status(proc.pid)
        mode = "0" if sanitized() else "2"  # 2: a filter
        assert st["NoNewPrivs"] == "1", st
        assert st["Seccomp"] == mode, st
        # every thread has it: the event loops, the login workers, the FUSE threads
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            with open(f"/proc/{proc.pid}/task/{tid}/status") as f:
                assert f"Seccomp:\t{mode}" in f.read(), tid

        # STARTTLS, login, APPEND, FETCH (TLS on every step)
        c = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
        c.ok("STARTTLS")
        c.sock = tls_context().wrap_socket(c.sock, server_hostname="localhost")
        c.ok(f'LOGIN alice "{PASSWORD}"')
        c.ok("SELECT INBOX")
        body = MSG % (b"appended", b"1")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        _, t = c.wait("a")
        assert t.startswith("OK"), t
        u = c.ok("FETCH 1 BODY[]")
        assert any("body 1" in l for l in u), u

        # a delivery reaches the IDLE session through the change feed
        c.send("i IDLE\r\n")
        assert c.line().startswith("+")
        alice.run("deliver", "alice", input=MSG % (b"delivered", b"2"))
        assert c.line(timeout=5) == "* 2 EXISTS"
        c.send("DONE\r\n")
        _, t = c.wait("i")
        assert t.startswith("OK"), t

        # the mount: both messages are files; a file copied in becomes a message
        inbox = mnt / "INBOX"
        assert wait_for(lambda: len(os.listdir(inbox)) == 2, timeout=5), os.listdir(inbox)
        (mnt / "Drafts" / "new.eml").write_bytes(MSG % (b"written", b"3"))
        u = c.ok("STATUS Drafts (MESSAGES)")
        assert any("MESSAGES 1" in l for l in u), u

        # SIGHUP reloads the certificate; a new TLS connection works after it
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        d = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
        d.ok("STARTTLS")
        d.sock = tls_context().wrap_socket(d.sock, server_hostname="localhost")
        d.ok(f'LOGIN alice "{PASSWORD}"')
        d.close()
        c.close()
        assert proc.poll() is None, "the server died"
    finally:
        err = stop(proc, mnt)
    assert "reloaded TLS certificate" in err, err


def test_the_filter_can_be_turned_off_for_debugging(alice, mnt):
    proc, port = start(alice, mnt, {"MAILFS_SECCOMP": "off"})
    try:
        st = status(proc.pid)
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "0", st
    finally:
        err = stop(proc, mnt)
    assert "MAILFS_SECCOMP=off" in err, err
    alice.env["MAILFS_SECCOMP"] = "loose"
    r = alice.run("serve", "--imap", f"127.0.0.1:{free_port()}", check=False, timeout=20)
    assert r.returncode != 0
    assert b"MAILFS_SECCOMP='loose' is not a mode" in r.stderr, r.stderr
