"""Every message of the shared corpus through APPEND and FETCH: the answers must parse under
the IMAP grammar, sizes must agree, and the server must survive all of it."""
import re
import socket

import pytest

from conftest import PASSWORD, corpus_files
from imapfix import server  # noqa: F401 (fixture)

FILES = [p for p in corpus_files() if p.stat().st_size < (8 << 20)]


class Reader:
    """A strict reader of IMAP responses (RFC 9051 section 9 shapes) straight off the socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _need(self, n):
        while len(self.buf) - self.pos < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0

    def peek(self):
        self._need(1)
        return self.buf[self.pos:self.pos + 1]

    def take(self, n):
        self._need(n)
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def expect(self, s):
        got = self.take(len(s))
        assert got == s, f"expected {s!r}, got {got!r} + {self.buf[self.pos:self.pos + 60]!r}"

    def value(self):
        c = self.peek()
        if c == b"(":
            self.take(1)
            items = []
            while self.peek() != b")":
                # body-type-mpart is 1*body: nested bodies follow each other without a space
                if items and not (isinstance(items[-1], list) and self.peek() == b"("):
                    self.expect(b" ")
                items.append(self.value())
            self.take(1)
            return items
        if c == b'"':
            self.take(1)
            out = b""
            while True:
                ch = self.take(1)
                if ch == b"\\":
                    esc = self.take(1)
                    assert esc in (b'"', b"\\"), esc
                    out += esc
                elif ch == b'"':
                    return out
                else:
                    assert ch not in (b"\r", b"\n"), "CR/LF in a quoted string"
                    out += ch
        if c in (b"{", b"~"):
            if c == b"~":
                self.take(1)
            self.expect(b"{")
            n = b""
            while self.peek() != b"}":
                n += self.take(1)
            self.take(1)
            self.expect(b"\r\n")
            return self.take(int(n))
        atom = b""
        while True:
            ch = self.peek()
            if ch in (b" ", b")", b"\r"):
                break
            if ch == b"[":  # section specs such as BODY[HEADER.FIELDS (A B)]
                while self.peek() != b"]":
                    atom += self.take(1)
            atom += self.take(1)
        assert atom, f"empty atom at {self.buf[self.pos:self.pos + 40]!r}"
        return atom

    def line_rest(self):
        out = b""
        while not out.endswith(b"\r\n"):
            out += self.take(1)
        return out[:-2]

    def response(self):
        """Returns ('fetch', seq, {name: value}), ('tagged', tag, text) or ('other', text)."""
        first = self.value()
        if first == b"*":
            self.expect(b" ")
            n = self.value()
            if n.isdigit() and self.peek() == b" ":
                self.expect(b" ")
                kind = self.value()
                if kind.upper() == b"FETCH":
                    self.expect(b" ")
                    items = self.value()
                    self.expect(b"\r\n")
                    assert len(items) % 2 == 0, items
                    return ("fetch", int(n), {items[i].upper(): items[i + 1]
                                              for i in range(0, len(items), 2)})
                return ("other", n + b" " + kind + self.line_rest())
            return ("other", n + self.line_rest())
        self.expect(b" ")
        return ("tagged", first, self.line_rest())


def body_sizes_ok(bs):
    """BODYSTRUCTURE shape: a leaf is a list starting with two strings, a multipart a list
    starting with a list."""
    assert isinstance(bs, list) and bs, bs
    if isinstance(bs[0], list):
        i = 0
        while i < len(bs) and isinstance(bs[i], list):
            body_sizes_ok(bs[i])
            i += 1
        assert i < len(bs) and isinstance(bs[i], bytes), bs  # the subtype
    else:
        assert isinstance(bs[0], bytes) and isinstance(bs[1], bytes), bs
        assert bs[6].isdigit(), bs  # body-fld-octets


@pytest.mark.skipif(not FILES, reason="the shared corpus is not there")
def test_corpus_append_and_fetch(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    r = Reader(s)
    r.line_rest()
    s.sendall(f'l LOGIN alice "{PASSWORD}"\r\ns SELECT INBOX\r\n'.encode())
    while r.response()[0] != "tagged":
        pass
    while r.response()[0] != "tagged":
        pass
    sizes = []
    for i, p in enumerate(FILES):
        data = p.read_bytes()
        if not data:
            continue
        s.sendall(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(data)) + data + b"\r\n")
        while True:
            kind, *rest = r.response()
            if kind == "tagged":
                assert rest[1].startswith(b"OK"), (p, rest)
                break
        crlf = re.sub(rb"(?<!\r)\n", b"\r\n", data)
        sizes.append((p, len(crlf)))
    s.sendall(b"f FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE ENVELOPE BODYSTRUCTURE BODY "
              b"BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[1] "
              b"BINARY.SIZE[1] BODY.PEEK[TEXT]<0.100>)\r\n")
    seen = unknown_cte = 0
    while True:
        kind, *rest = r.response()
        if kind == "tagged":
            assert rest[1].startswith(b"NO [UNKNOWN-CTE]" if unknown_cte else b"OK"), rest
            break
        if kind != "fetch":
            continue
        seq, items = rest
        p, size = sizes[seq - 1]
        assert int(items[b"RFC822.SIZE"]) == size, p
        assert len(items[b"BODY[]"]) == size, p
        env = items[b"ENVELOPE"]
        assert isinstance(env, list) and len(env) == 10, (p, env)
        body_sizes_ok(items[b"BODYSTRUCTURE"])
        body_sizes_ok(items[b"BODY"])
        assert items[b"BODY[HEADER.FIELDS (SUBJECT FROM)]"].endswith(b"\r\n"), p
        if b"BINARY.SIZE[1]" not in items:
            unknown_cte += 1  # RFC 3516: NO [UNKNOWN-CTE]; the rest of that answer is cut
            seen += 1
            continue
        assert len(items[b"BODY[TEXT]<0>"]) <= 100, p
        seen += 1
    assert seen == len(sizes)
    # searching the whole corpus works and the session is still fine
    s.sendall(b"x SEARCH TEXT the\r\ny UID SEARCH BODY zzzzzznothing\r\nz LOGOUT\r\n")
    tags = []
    while len(tags) < 3:
        kind, *rest = r.response()
        if kind == "tagged":
            tags.append(rest[1][:2])
    assert tags == [b"OK", b"OK", b"OK"]
