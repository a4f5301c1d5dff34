"""FETCH PREVIEW (RFC 8970): the start of a message's text as one line, from its first text/plain
part (else text/html without its tags), decoded; NIL when it has no text."""
import re

from conftest import corpus_files
from imapfix import server  # noqa: F401 (fixture)

MSGS = [
    (b"Subject: plain\r\n\r\n  Hello,\r\n\r\n\tthis is\r\n  the  text.\r\n",
     '"Hello, this is the text."'),
    (b"Subject: qp\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
     b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me =\r\nbr=FBl=E9e\r\n",
     "Café crème brûlée"),
    (b"Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
     b"--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n"
     b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n", '"plain version"'),
    (b"Subject: html\r\nContent-Type: text/html\r\n\r\n<html><head><style>p {color: red}</style>"
     b"<script>var x = '<b>';</script></head><body><p>Fish &amp; chips</p><br>&lt;3&nbsp;ok"
     b"</body></html>\r\n", '"Fish & chips <3 ok"'),
    (b"Subject: image\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     b"iVBORw0KGgo=\r\n", "NIL"),
]


def test_preview(server):
    c = server.conn()
    assert " PREVIEW" in c.ok("CAPABILITY")[0]
    for m, _ in MSGS:
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.wait("ap")[1].startswith("OK")
    long = b"Subject: long\r\n\r\n" + b"word " * 300 + b"\r\n"
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(long) + long + b"\r\n")
    assert c.wait("ap")[1].startswith("OK")
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:6 (PREVIEW)")
    for (m, want), line in zip(MSGS, u):
        if want.startswith('"') or want == "NIL":
            assert line.endswith(f"PREVIEW {want})"), (want, line)
        else:  # 8-bit: a literal for a client that has not enabled UTF-8
            assert re.search(r"PREVIEW \{\d+\}\r\n" + want + r"\)$", line), (want, line)
    text = re.search(r'PREVIEW "([^"]*)"', u[5]).group(1)
    assert len(text) <= 200 and text.startswith("word word") and not text.endswith(" "), text
    u = c.ok("FETCH 2 (PREVIEW (LAZY) UID)")
    assert "PREVIEW {" in u[0] and "UID 2" in u[0], u
    c.ok("ENABLE UTF8=ACCEPT")
    assert c.ok("FETCH 2 PREVIEW")[0].endswith('PREVIEW "Café crème brûlée")')
    c.bad("FETCH 1 (PREVIEW (EAGER))")


def test_preview_of_every_corpus_message(server):
    """Every real and broken message gets a preview of at most 256 characters, or NIL."""
    c = server.conn()
    files = corpus_files()[:300]
    for p in files:
        m = p.read_bytes()
        c.send(b"ap APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        c.wait("ap")
    c.ok("ENABLE UTF8=ACCEPT")
    c.ok("SELECT INBOX")
    u = c.ok("FETCH 1:* PREVIEW")
    assert len(u) >= len(files) // 2, len(u)
    for line in u:
        m = re.search(r'PREVIEW (NIL|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\r\n(.*))\)$', line, re.S)
        assert m, line[-300:]
        text = m.group(2) if m.group(2) is not None else (m.group(4) or "")
        assert len(text) <= 256 and "\r" not in text and "\n" not in text, line[-300:]
