"""Security findings 2 and 8 of issue 10: what one FETCH makes the server hold, and slow readers.

A FETCH answer is produced as the client reads it, inside a literal too: the server's memory per
connection stays bounded whatever the items, partials and message size, a client that reads
slowly gets the whole answer, one that never reads is dropped by --write-timeout, and a message
expunged in the middle of its literal ends the connection with BYE instead of wrong bytes.
"""
import base64
import hashlib
import pathlib
import re
import socket
import time

import pytest

from imapfix import start_server, stop_server

from conftest import BUILD, PASSWORD

MiB = 1 << 20
WRITE_TIMEOUT = 3
# AddressSanitizer's quarantine keeps up to 256 MiB of freed memory mapped: the sanitizer build
# gets a looser bound (still far below the gigabytes the old code took); the plain one the real
SANITIZED = pathlib.Path(BUILD).name.endswith("asan")
RSS_BOUND = (400 if SANITIZED else 64) * MiB


def status(pid):
    """The server's memory figures from /proc/PID/status, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def crlf(data):
    """The CRLF text IMAP sends for DATA (every bare LF as CRLF)."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


@pytest.fixture
def srv(alice):
    # one event loop, so the second connection's NOOP waits behind the big FETCH if it stalls
    s = start_server(alice, ["--loops", "1", "--write-timeout", str(WRITE_TIMEOUT), "--verbose"])
    yield s
    stop_server(s)


def login(srv, rcvbuf=None):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    r = Reader(s)
    r.line()
    s.sendall(f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    r.until_tag(b"b")
    return s, r


class Reader:
    """Reads an answer as a client would, at a chosen pace; hashes literals instead of keeping
    them, so the test itself stays small."""

    def __init__(self, sock, chunk=1 << 16, pause=0.0):
        self.s = sock
        self.buf = bytearray()
        self.chunk = chunk
        self.pause = pause
        self.received = 0
        self.on_read = None  # called after every read (memory sampling, NOOPs)

    def fill(self):
        if self.pause:
            time.sleep(self.pause)
        data = self.s.recv(self.chunk)
        if not data:
            raise EOFError("connection closed")
        self.received += len(data)
        self.buf += data
        if self.on_read:
            self.on_read()

    def line(self):
        while (i := self.buf.find(b"\r\n")) < 0:
            self.fill()
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def literal(self, n, keep=0):
        """Reads N literal bytes; returns (sha256 hex, the first KEEP bytes)."""
        h = hashlib.sha256()
        head = bytearray()
        left = n
        while left:
            if not self.buf:
                self.fill()
            take = min(left, len(self.buf))
            piece = self.buf[:take]
            h.update(piece)
            if len(head) < keep:
                head += piece[:keep - len(head)]
            del self.buf[:take]
            left -= take
        return h.hexdigest(), bytes(head)

    def answer(self, tag):
        """Reads to the tagged line; returns (literals as (name, length, sha256), tagged line)."""
        lits = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return lits, line
            while (m := re.search(rb"~?\{(\d+)\}$", line)):
                name = line[-80:]
                n = int(m.group(1))
                digest, _ = self.literal(n)
                lits.append((name, n, digest))
                line = self.line()

    def until_tag(self, tag):
        while not self.line().startswith(tag + b" "):
            pass


def noop_latency(s, r, tag):
    t = time.perf_counter()
    s.sendall(tag + b" NOOP\r\n")
    r.until_tag(tag)
    return time.perf_counter() - t


def big_text_message(size):
    """About SIZE bytes of ordinary mail text with LF line ends."""
    line = b"%08d the quick brown fox jumps over the lazy dog, again and again and again\n"
    n = size // len(line % 0)
    body = b"".join(line % i for i in range(n))
    return b"From: a@example.com\nTo: b@example.com\nSubject: big\n\n" + body


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_sixty_four_times_body_of_a_big_message_is_streamed(srv):
    msg = big_text_message(60 * MiB)
    srv.deliver(msg)
    want = crlf(msg)
    pid = srv.proc.pid
    s, r = login(srv)
    s2, r2 = login(srv)
    # the message's pages of the store's map count in the server's RSS once read: read them
    # (BINARY.SIZE measures the whole text) before taking the baseline
    s.sendall(b"w FETCH 1 BINARY.SIZE[]\r\n")
    line = r.line()
    assert line == b"* 1 FETCH (BINARY.SIZE[] %d)" % len(want), line
    r.until_tag(b"w")
    base = status(pid)
    peak_anon = [base["RssAnon"]]
    noops = []

    def sample():
        peak_anon[0] = max(peak_anon[0], status(pid)["RssAnon"])
        if len(noops) < 10 and r.received > (len(noops) + 1) * 5 * MiB:
            noops.append(noop_latency(s2, r2, b"n%d" % len(noops)))

    s.sendall(b"f FETCH 1 (" + b" ".join([b"BODY.PEEK[]"] * 64) + b")\r\n")
    time.sleep(0.5)
    r.pause, r.chunk, r.on_read = 0.001, 1 << 17, sample
    lits, tagged = r.answer(b"f")
    after = status(pid)
    assert tagged.startswith(b"f OK"), tagged
    assert lits and all(n == len(want) and d == sha(want) for _, n, d in lits), lits[:3]
    grew = after["VmHWM"] - base["VmHWM"]
    assert grew < RSS_BOUND, f"the server's peak RSS grew by {grew >> 20} MiB for one FETCH"
    assert peak_anon[0] - base["RssAnon"] < RSS_BOUND // 2, (peak_anon[0] - base["RssAnon"]) >> 20
    assert len(noops) >= 5 and max(noops) < 0.5, noops
    s.close()
    s2.close()


def test_no_item_or_partial_makes_the_server_hold_a_message(srv):
    """The bound does not rest on merging repeated items: 22 different sections and partials of
    a 20 MiB message, a 16 MiB base64 part and a 10 MiB header, each sent exactly."""
    text = big_text_message(20 * MiB)
    srv.deliver(text)
    blob = bytes(range(256)) * (12 * MiB // 256)  # NUL bytes too: BINARY sends literal8
    b64 = base64.encodebytes(blob)  # LF-ended 76-column lines
    fields = b"".join(b"X-Filler-%07d: %s\n" % (i, b"v" * 60) for i in range(10 * MiB // 80))
    hdr = (b"From: a@example.com\nSubject: parts\n" + fields + b"X-Wanted: yes\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n")
    mime = (hdr + b"\n--BB\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + b64 + b"--BB--\n")
    srv.deliver(mime)
    pid = srv.proc.pid
    s, r = login(srv)
    s.sendall(b"w FETCH 1:2 (BINARY.SIZE[] BINARY.SIZE[1])\r\n")  # reads the map's pages
    r.until_tag(b"w")
    base = status(pid)
    t = crlf(text)
    hd = crlf(hdr) + b"\r\n"
    hfields = crlf(fields)
    items1 = [(b"BODY.PEEK[]<%d.%d>" % (o, n), t[o:o + n])
              for o, n in [(0, 10 * MiB), (1, 10 * MiB), (3, 25 * MiB), (5 * MiB + 1, 1 << 40),
                           (len(t) - 3, 100), (len(t) + 5, 10)]]
    items1 += [(b"BINARY.PEEK[]", t), (b"BODY.PEEK[TEXT]", t[t.index(b"\r\n\r\n") + 4:]),
               (b"RFC822", t), (b"BINARY.PEEK[]<7.11>", t[7:18]),
               (b"BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]",
                b"From: a@example.com\r\nTo: b@example.com\r\n\r\n")]
    items2 = [(b"BINARY.PEEK[1]", blob), (b"BINARY.PEEK[1]<1000.5000000>", blob[1000:5001000]),
              (b"BODY.PEEK[1]", crlf(b64[:-1])),  # the last LF belongs to the boundary
              (b"BODY.PEEK[HEADER.FIELDS (X-WANTED)]", b"X-Wanted: yes\r\n\r\n"),
              (b"BODY.PEEK[HEADER.FIELDS.NOT (X-WANTED FROM SUBJECT MIME-VERSION CONTENT-TYPE)]",
               hfields + b"\r\n"),
              (b"BODY.PEEK[HEADER]", hd), (b"RFC822.HEADER", hd),
              (b"BODY.PEEK[HEADER]<100.%d>" % (9 * MiB), hd[100:100 + 9 * MiB]),
              (b"BODY.PEEK[1.MIME]",
               b"Content-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"),
              (b"BINARY.PEEK[HEADER.FIELDS (X-WANTED)]", b"X-Wanted: yes\r\n\r\n")]
    peak_anon = [0]

    def sample():
        peak_anon[0] = max(peak_anon[0], status(pid)["RssAnon"])

    for seq, items in ((1, items1), (2, items2)):
        tag = b"f%d" % seq
        s.sendall(b"%s FETCH %d (%s)\r\n" % (tag, seq, b" ".join(i for i, _ in items)))
        r.on_read, r.chunk = sample, 1 << 18
        lits, tagged = r.answer(tag)
        assert tagged.startswith(tag + b" OK"), tagged
        assert len(lits) == len(items), [l[:2] for l in lits]
        for (item, want), (name, n, digest) in zip(items, lits):
            assert n == len(want) and digest == sha(want), (item, name, n, len(want))
    grew = status(pid)["VmHWM"] - base["VmHWM"]
    assert grew < RSS_BOUND, f"the server's peak RSS grew by {grew >> 20} MiB"
    assert peak_anon[0] - base["RssAnon"] < RSS_BOUND // 2, (peak_anon[0] - base["RssAnon"]) >> 20


def bare_lf_message():
    """64 MiB (the store's limit) of short LF-ended lines: its CRLF text is 68 MiB."""
    head = b"Subject: short lines\n\n"
    line = b"0123456789abcde\n"
    n = (64 * MiB - len(head)) // len(line)
    return head + line * n


def test_slow_reader_gets_a_big_bare_lf_message(srv):
    msg = bare_lf_message()
    srv.deliver(msg)
    want = crlf(msg)
    s, r = login(srv)
    s.sendall(b"f FETCH 1 BODY.PEEK[]\r\n")
    time.sleep(0.5)  # a client slower than loopback
    r.pause, r.chunk = 0.002, 1 << 18
    lits, tagged = r.answer(b"f")
    assert tagged.startswith(b"f OK"), tagged
    assert [(n, d) for _, n, d in lits] == [(len(want), sha(want))]
    s.sendall(b"g NOOP\r\n")
    r.until_tag(b"g")
    s.close()


def test_client_that_never_reads_is_dropped_after_the_write_timeout(srv):
    msg = bare_lf_message()
    srv.deliver(msg)
    s, r = login(srv, rcvbuf=65536)
    s.sendall(b"f FETCH 1 BODY.PEEK[]\r\n")
    t0 = time.monotonic()
    time.sleep(WRITE_TIMEOUT + 2)
    r.chunk = 1 << 20
    with pytest.raises(EOFError):
        r.answer(b"f")  # what was in the socket buffers, then the end
    assert r.received < len(crlf(msg)), "the client got everything it never read"
    assert time.monotonic() - t0 < WRITE_TIMEOUT + 10
    # others are served all along
    s2, r2 = login(srv)
    assert noop_latency(s2, r2, b"n") < 0.5
    s2.close()


def test_expunge_in_the_middle_of_a_literal_ends_in_bye(srv):
    msg = big_text_message(40 * MiB)
    srv.deliver(msg)
    want = crlf(msg)
    s, r = login(srv)
    s.sendall(b"f FETCH 1 BODY.PEEK[]\r\n")
    line = r.line()
    assert line == b"* 1 FETCH (BODY[] {%d}" % len(want), line
    first, head = r.literal(MiB, keep=MiB)  # a part of it, then the client stalls
    assert head == want[:MiB]
    # another session expunges the message while the answer waits for the client
    s2, r2 = login(srv)
    s2.sendall(b"x STORE 1 +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n")
    r2.until_tag(b"x")
    r2.until_tag(b"y")
    s2.close()
    rest = bytearray(r.buf)
    r.buf.clear()
    s.settimeout(10)
    while True:
        data = s.recv(1 << 20)
        if not data:
            break
        rest += data
    got = head + rest
    assert len(got) < len(want), "the literal was completed after its message was expunged"
    i = got.find(b"\r\n* BYE ")
    assert i >= 0, got[-200:]
    assert got[:i] == want[:i], "bytes that are not the message's were sent as its text"
    assert got[i:].endswith(b"\r\n") and got[i:].count(b"\r\n") == 2, got[i:]
    stop_server(srv)
    assert "was expunged while a FETCH answer" in srv.stderr()


def test_many_header_field_lists_over_a_huge_header_do_not_stall_others(srv):
    """64 HEADER.FIELDS lists that match nothing read a 40 MiB header 64 times: the work is
    spread over steps, so another session's NOOP is answered meanwhile."""
    fields = b"".join(b"X-Filler-%07d: %s\n" % (i, b"v" * 60) for i in range(40 * MiB // 80))
    srv.deliver(b"From: a@example.com\n" + fields + b"\nbody\n")
    s, r = login(srv)
    s2, r2 = login(srv)
    items = b" ".join(b"BODY.PEEK[HEADER.FIELDS (X-NONE-%d)]" % i for i in range(64))
    t = time.perf_counter()
    s.sendall(b"f FETCH 1 (" + items + b")\r\n")
    worst = 0.0
    s.setblocking(False)
    done = False
    while not done:
        worst = max(worst, noop_latency(s2, r2, b"n"))
        try:
            while True:
                data = s.recv(1 << 16)
                if not data:
                    raise EOFError("connection closed")
                r.buf += data
        except BlockingIOError:
            pass
        done = b"\r\nf OK" in r.buf
        assert time.perf_counter() - t < 60, "the FETCH did not finish"
    took = time.perf_counter() - t
    answer = bytes(r.buf)
    assert answer.count(b"] {2}\r\n\r\n") == 64, answer[:300]
    assert worst < 0.25, f"a NOOP waited {worst:.2f} s while the FETCH ran ({took:.2f} s)"


def test_partials_that_are_not_numbers64_are_bad(srv):
    """Issue 10 (low): <1.-5> was taken and <18446744073709551616.1> clamped; both are BAD."""
    srv.deliver(b"Subject: p\r\n\r\n0123456789\r\n")
    c = srv.conn(select="INBOX")
    for bad in ("<1.-5>", "<-1.5>", "<18446744073709551616.1>", "<9223372036854775808.1>",
                "<0.18446744073709551617>", "<1. 5>", "<+1.5>", "<1.0>", "<>", "<1.>",
                "<1.5>x"):
        _, t = c.run(f"FETCH 1 BODY.PEEK[]{bad}")
        assert t.startswith("BAD") and "invalid partial" in t, (bad, t)
    u, t = c.run("FETCH 1 BODY.PEEK[]<9223372036854775807.1>")
    assert t.startswith("OK") and any("BODY[]<9223372036854775807> {0}" in l for l in u), (u, t)
    u, t = c.run("FETCH 1 BODY.PEEK[TEXT]<2.3>")
    assert t.startswith("OK") and any(l.endswith("{3}\r\n234)") for l in u), (u, t)
    c.close()
