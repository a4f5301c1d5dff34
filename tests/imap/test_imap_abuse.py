"""Abuse (issue 5): each case gets a clear answer and does no harm to other clients."""
import socket
import time

import pytest

from imapfix import start_server, stop_server

from conftest import PASSWORD


def connect(port, source="127.0.0.1", timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return s, f


def tagged(f, tag):
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(tag + b" "):
            return line


def healthy(port):
    """A normal client still logs in and answers NOOP quickly; returns the NOOP latency."""
    s, f = connect(port)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\n'.encode())
    assert b"a OK" in tagged(f, b"a")
    t = time.perf_counter()
    s.sendall(b"b NOOP\r\n")
    assert b"b OK" in tagged(f, b"b")
    latency = time.perf_counter() - t
    s.close()
    return latency


@pytest.fixture
def srv(alice):
    s = start_server(alice, ["--tls-timeout", "1", "--write-timeout", "2"])
    yield s
    stop_server(s)


def test_endless_line(srv):
    s, f = connect(srv.port)
    s.sendall(b"a NOOP " + b"x" * (1 << 20))  # 1 MiB and no end of line
    line = f.readline()
    assert b"BAD" in line or b"BYE" in line, line
    s.close()
    healthy(srv.port)


def test_ten_gigabyte_literal(srv):
    s, f = connect(srv.port)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\n'.encode())
    tagged(f, b"a")
    s.sendall(b"b APPEND INBOX {10000000000}\r\n")  # synchronizing: refused before any byte
    line = f.readline()
    assert line.startswith(b"b NO") and b"TOOBIG" in line, line
    s.sendall(b"c NOOP\r\n")
    assert b"c OK" in tagged(f, b"c")
    s.close()
    healthy(srv.port)


def test_ten_thousand_nested_parentheses(srv):
    s, f = connect(srv.port)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\n'.encode())
    tagged(f, b"a")
    s.sendall(b"b SELECT INBOX\r\n")
    tagged(f, b"b")
    s.sendall(b"c SEARCH " + b"(" * 10000 + b"ALL" + b")" * 10000 + b"\r\n")
    line = tagged(f, b"c")
    assert line.startswith(b"c BAD"), line
    healthy(srv.port)


def test_a_million_ranges(srv):
    s, f = connect(srv.port)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    tagged(f, b"b")
    seqset = b",".join(b"%d:%d" % (i, i + 1) for i in range(1, 2000000, 2))  # 1e6 ranges
    s.sendall(b"c FETCH " + seqset + b" FLAGS\r\n")
    line = tagged(f, b"c")
    assert line.startswith(b"c BAD") or line.startswith(b"c NO"), line
    healthy(srv.port)


@pytest.mark.parametrize("name", [b'"bad&AGE-"', b'"bad&AOQ"', b'"&-&"', b'"a&Jjo"',
                                  b'"\xff\xfe"', b'"\xc0\xaf"', b'"a/../b"', b'"a//b"'])
def test_bad_mailbox_names(srv, name):
    s, f = connect(srv.port)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\n'.encode())
    tagged(f, b"a")
    s.sendall(b"b CREATE " + name + b"\r\n")
    line = tagged(f, b"b")
    assert line.startswith(b"b BAD") or line.startswith(b"b NO"), line
    s.sendall(b'c LIST "" "*"\r\n')
    out = b""
    while True:
        l = f.readline()
        out += l
        if l.startswith(b"c "):
            break
    assert b"bad" not in out and b"a/b" not in out


def test_slow_tls_handshake_times_out(srv):
    s = socket.create_connection(("127.0.0.1", srv.sport), timeout=10)
    s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
    t = time.monotonic()
    assert s.recv(100) == b"", "the server should close the connection"
    waited = time.monotonic() - t
    assert waited < 5, f"closed only after {waited:.1f} s (--tls-timeout 1)"
    healthy(srv.port)


def test_client_that_never_reads(srv):
    srv.deliver(b"Subject: big\r\n\r\n" + b"x" * 2_000_000 + b"\r\n")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    s.settimeout(60)
    closed = False
    try:
        for i in range(400):  # asks for 800 MB of answers and reads none of them
            s.sendall(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i)
            time.sleep(0.005)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:  # the server stopped reading; it must close us soon
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                s.sendall(b"x NOOP\r\n")
                time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert closed, "a client that never reads is not disconnected"
    assert healthy(srv.port) < 0.5


def test_a_thousand_idle_connections(srv):
    conns = []
    try:
        for i in range(1000):
            # 90 per source address: the server allows 100 per client address
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                         source_address=(f"127.0.1.{1 + i // 90}", 0))
            conns.append(s)
        for s in conns[:50]:
            s.sendall(f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
        latencies = sorted(healthy(srv.port) for _ in range(20))
        assert latencies[10] < 0.05, f"NOOP median {latencies[10] * 1000:.1f} ms with 1,000 idle"
    finally:
        for s in conns:
            s.close()
