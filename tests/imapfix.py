"""Helpers for the IMAP protocol tests: a `mailfs serve` fixture and a transcript client (used by
tests/imap and tests/tools/test_sandbox.py, so it sits next to conftest.py)."""
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORD, free_port, mountinfo_has, wait_for



class Server:
    def __init__(self, mailfs, proc, port, sport):
        self.mailfs = mailfs
        self.proc = proc
        self.port = port
        self.sport = sport

    def conn(self, login=True, select=None):
        c = Conn(socket.create_connection(("127.0.0.1", self.port), timeout=10))
        if login:
            c.ok(f'LOGIN alice "{PASSWORD}"')
        if select:
            c.ok(f"SELECT {select}")
        return c

    def deliver(self, data, user="alice", *args):
        self.mailfs.run("deliver", *args, user, input=data)

    def stderr(self):
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""


def start_server(mailfs, extra=()):
    port, sport = free_port(), free_port()
    proc = mailfs.popen("serve", "--imap", f"127.0.0.1:{port}", "--imaps", f"127.0.0.1:{sport}",
                        *extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", sport), timeout=1).close()
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError("mailfs serve did not start: " +
                                     proc.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
    return Server(mailfs, proc, port, sport)


def start_with_mount(mailfs, mnt, user="alice"):
    """`mailfs serve --imap 127.0.0.1:PORT --mount USER:MNT`, once both are up -> (proc, port)."""
    port = free_port()
    proc = mailfs.popen("serve", "--imap", f"127.0.0.1:{port}", "--mount", f"{user}:{mnt}",
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return mountinfo_has(mnt)

    if not wait_for(lambda: up() or proc.poll() is not None, timeout=10, step=0.05) or \
            proc.poll() is not None:
        proc.kill()
        pytest.fail("mailfs serve --mount did not start: " + proc.stderr.read().decode())
    return proc, port


def stop_server(srv):
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            raise AssertionError("mailfs serve ignored SIGTERM")
        assert rc == 0, f"mailfs serve exited {rc}: {srv.stderr()[-4000:]}"


@pytest.fixture
def server(alice):
    srv = start_server(alice)
    yield srv
    stop_server(srv)


class Conn:
    """One IMAP connection driven line by line, in the manner of imaptest's scripts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        # a literal at the end of the line: read it and what follows as part of this line
        m = re.search(rb"\{(\d+)\}$", line)
        while m:
            n = int(m.group(1))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed inside a literal")
                self.buf += chunk
            lit, self.buf = self.buf[:n], self.buf[n:]
            while b"\r\n" not in self.buf:
                self.buf += self.sock.recv(65536)
            rest, self.buf = self.buf.split(b"\r\n", 1)
            line = line + b"\r\n" + lit + rest
            m = re.search(rb"\{(\d+)\}$", rest)
        return line.decode("utf-8", errors="replace")

    def run(self, command, tag=None):
        """Sends TAG COMMAND; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = tag or f"t{self.n}"
        self.send(f"{tag} {command}\r\n")
        return self.wait(tag)

    def wait(self, tag):
        untagged = []
        while True:
            l = self.line()
            if l.startswith(tag + " "):
                return untagged, l[len(tag) + 1:]
            untagged.append(l)

    def ok(self, command):
        u, t = self.run(command)
        assert t.startswith("OK"), f"{command!r} -> {t!r} (untagged {u!r})"
        return u

    def no(self, command, code=None):
        u, t = self.run(command)
        assert t.startswith("NO"), f"{command!r} -> {t!r}"
        if code:
            assert f"[{code}" in t, t
        return u

    def bad(self, command):
        u, t = self.run(command)
        assert t.startswith("BAD"), f"{command!r} -> {t!r}"
        return u

    def close(self):
        self.sock.close()


def expect(lines, *patterns):
    """Every regex in PATTERNS matches one of LINES (any order, each line used once)."""
    left = list(lines)
    for p in patterns:
        for i, l in enumerate(left):
            if re.fullmatch(p, l, re.S):
                del left[i]
                break
        else:
            raise AssertionError(f"no line matches {p!r} in {lines!r}")
    return left


def none_match(lines, pattern):
    for l in lines:
        assert not re.fullmatch(pattern, l, re.S), f"unexpected {l!r}"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
