"""Hostile and broken input: the server answers or drops the connection, never crashes."""
import random
import socket
import time

from imapfix import server  # noqa: F401 (fixture)

PIECES = [b"a", b"1", b" ", b"(", b")", b"[", b"]", b"{", b"}", b"{5}\r\n", b"{3+}\r\n",
          b"~{2+}\r\n", b'"', b"\\", b"\r\n", b"\n", b"\r", b"*", b"%", b":", b",", b"<", b">",
          b".", b"\x00", b"\xff", b"\xc3\xa4", b"NIL", b"UID", b"FETCH", b"STORE", b"SEARCH",
          b"LOGIN", b"SELECT", b"INBOX", b"BODY[", b"BODY.PEEK[HEADER.FIELDS (", b"1:*",
          b"4294967295", b"0", b"OR", b"NOT", b"IDLE", b"DONE", b"APPEND", b"LIST", b"&AOQ-",
          b"&", b"BINARY[1]<0.", b"RETURN (", b"ENABLE UTF8=ACCEPT", b"STARTTLS", b"LOGOUT"]


def drain(s, seconds):
    s.settimeout(0.05)
    end = time.time() + seconds
    while time.time() < end:
        try:
            if not s.recv(65536):
                return False
        except socket.timeout:
            pass
        except OSError:
            return False
    return True


def test_random_input_does_not_crash(server):
    rnd = random.Random(20261126)
    server.deliver(b"Subject: x\n\nbody\n")
    for n in range(30):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.recv(1000)
        if n % 2:
            s.sendall(b'a LOGIN alice "correct horse"\r\nb SELECT INBOX\r\n')
        data = b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(10, 400)))
        for k in range(0, len(data), 37):
            try:
                s.sendall(data[k:k + 37])
            except OSError:
                break
        drain(s, 0.1)
        s.close()
        assert server.proc.poll() is None, "the server died"
    c = server.conn(select="INBOX")
    u = c.ok("FETCH 1 (FLAGS BODY.PEEK[])")
    assert "body" in u[0]


def test_slow_reader_and_big_answers(server):
    big = b"Subject: big\n\n" + b"x" * 2_000_000 + b"\n"
    for _ in range(3):
        server.deliver(big)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.recv(1000)
    s.sendall(b'a LOGIN alice "correct horse"\r\nb SELECT INBOX\r\n'
              b"c FETCH 1:* BODY.PEEK[]\r\nd FETCH 1:* BODY.PEEK[]\r\ne LOGOUT\r\n")
    time.sleep(0.5)  # the server must hold back instead of buffering everything
    got = b""
    s.settimeout(10)
    while not got.endswith(b"e OK LOGOUT completed\r\n"):
        chunk = s.recv(1 << 16)
        assert chunk, got[-200:]
        got += chunk
    assert got.count(b"x" * 1000) >= 6 * 1999
    assert b"c OK" in got and b"d OK" in got


def test_many_pipelined_commands(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.recv(1000)
    n = 5000
    s.sendall(b"".join(b"t%d NOOP\r\n" % i for i in range(n)))
    got = b""
    while not got.endswith(b"t%d OK NOOP completed\r\n" % (n - 1)):
        chunk = s.recv(1 << 16)
        assert chunk
        got += chunk
    assert got.count(b" OK NOOP completed") == n


def test_clients_that_vanish_mid_login(server):
    """A login finishing on a worker after its client hung up (often in the same loop pass
    as the hang-up itself) must not touch the closed connection."""
    for round_ in range(3):
        socks = []
        for i in range(12):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.recv(1000)
            s.sendall(b'a LOGIN alice "correct horse"\r\nb SELECT INBOX\r\nc IDLE\r\n')
            socks.append(s)
        time.sleep(0.05 * round_)
        for s in socks:
            s.close()
        assert server.proc.poll() is None, "the server died"
    time.sleep(1)
    c = server.conn(select="INBOX")
    c.ok("NOOP")
