"""Issue 10, finding 6: nothing a client sends can write a line of its own into the log."""
import base64

from imapfix import start_server, stop_server

FORGED = b"mailfs: imap: user 'admin' logged in from 198.51.100.7"


def log_after(alice, actions):
    srv = start_server(alice, ["--verbose"])
    try:
        actions(srv)
    finally:
        stop_server(srv)
    return srv.stderr()


def test_login_literal_cannot_forge_a_log_line(alice):
    def go(srv):
        c = srv.conn(login=False)
        user = b"x\n" + FORGED + b"\nz"
        c.send(b"a LOGIN {%d}\r\n" % len(user))
        assert c.line().startswith("+")
        c.send(user + b" wrong\r\n")
        _, t = c.wait("a")
        assert t.startswith("NO"), t
        c.close()

    log = log_after(alice, go)
    lines = log.splitlines()
    assert not any(l.startswith(FORGED.decode()) for l in lines), log
    # the attempt itself is logged, on one line, with the newlines shown escaped
    assert any("login failed for user 'x\\x0amailfs: imap: user 'admin'" in l for l in lines), log


def test_authenticate_plain_cannot_forge_a_log_line(alice):
    def go(srv):
        c = srv.conn(login=False)
        resp = base64.b64encode(b"\0evil\r\n" + FORGED + b"\0wrong").decode()
        c.send(f"a AUTHENTICATE PLAIN {resp}\r\n")
        _, t = c.wait("a")
        assert t.startswith("NO"), t
        c.close()

    log = log_after(alice, go)
    lines = log.splitlines()
    assert not any(l.startswith(FORGED.decode()) for l in lines), log
    assert any("login failed for user 'evil\\x0d\\x0amailfs: imap: user" in l for l in lines), log
