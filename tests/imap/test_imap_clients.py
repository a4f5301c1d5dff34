"""Real IMAP clients against `mailfs serve`: imaplib (STARTTLS, implicit TLS), curl, openssl
s_client, mbsync; and the server's TLS policy and signals."""
import imaplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORD
from imapfix import server, start_server, stop_server, tls_context  # noqa: F401 (fixture)

MSG = b"From: bob@example.com\nTo: alice@example.com\nSubject: from the suite\n\nhello\n"


def test_imaplib_starttls(server):
    server.deliver(MSG)
    m = imaplib.IMAP4("127.0.0.1", server.port)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=tls_context())
    assert "STARTTLS" not in m.capabilities
    m.login("alice", PASSWORD)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.fetch("1", "(RFC822)")
    assert data[0][1] == MSG.replace(b"\n", b"\r\n")
    typ, data = m.append("Sent", "(\\Seen)", None, b"Subject: sent\r\n\r\nbody\r\n")
    assert typ == "OK" and b"APPENDUID" in data[0]
    m.logout()


def test_imaplib_implicit_tls(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.sport, ssl_context=tls_context())
    assert m.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert "STARTTLS" not in m.capabilities
    m.login("alice", PASSWORD)
    typ, data = m.list()
    assert typ == "OK" and any(b"INBOX" in d for d in data)
    m.logout()


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
def test_tls_below_1_2_refused(server):
    def hello(*args):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.sport}",
                            *args], input=b"", capture_output=True, timeout=30)
        return (r.stdout + r.stderr).decode(errors="replace")
    # the server itself answers TLS 1.1 with a protocol_version alert (70)
    out = hello("-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
    assert "alert protocol version" in out, out
    out = hello("-tls1_2")
    assert re.search(r"Protocol\s*:\s*TLSv1.2", out) and "ECDHE" in out, out
    out = hello("-tls1_3")
    assert "New, TLSv1.3" in out, out


def test_starttls_discards_pipelined_plaintext(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.recv(1000)
    # a command injected after STARTTLS in the same packet must not run inside TLS
    s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert s.recv(1000).startswith(b"a OK")
    t = tls_context().wrap_socket(s)
    t.sendall(b"c NOOP\r\n")
    assert t.recv(1000) == b"c OK NOOP completed\r\n"
    t.close()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_curl(server):
    server.deliver(MSG)
    base = f"imap://127.0.0.1:{server.port}"
    r = subprocess.run(["curl", "-sS", "--user", f"alice:{PASSWORD}", f"{base}/INBOX;UID=1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace(b"\r\n", b"\n") == MSG
    r = subprocess.run(["curl", "-sS", "--user", f"alice:{PASSWORD}", f"{base}/"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and b"INBOX" in r.stdout
    # STARTTLS required by the client
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--user", f"alice:{PASSWORD}",
                        f"{base}/INBOX;UID=1"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"from the suite" in r.stdout
    r = subprocess.run(["curl", "-sS", "-k", "--user", f"alice:{PASSWORD}",
                        f"imaps://127.0.0.1:{server.sport}/INBOX;UID=1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"from the suite" in r.stdout
    r = subprocess.run(["curl", "-sS", "--user", "alice:wrong", f"{base}/INBOX;UID=1"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0


def s_client(args, script):
    p = subprocess.run(["openssl", "s_client", "-quiet", "-verify_quiet", *args],
                       input=script, capture_output=True, timeout=30)
    return p.stdout.decode(errors="replace")


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
def test_openssl_s_client_both_modes(server):
    script = f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\nc LOGOUT\r\n'.encode()
    out = s_client(["-starttls", "imap", "-connect", f"127.0.0.1:{server.port}"], script)
    assert "a OK" in out and "b OK [READ-WRITE]" in out and "c OK" in out, out
    out = s_client(["-connect", f"127.0.0.1:{server.sport}"], script)
    assert "* OK [CAPABILITY" in out and "a OK" in out and "c OK" in out, out


def test_sighup_reloads_certificate_and_keeps_connections(alice, tmp_path):
    srv = start_server(alice)
    try:
        c = imaplib.IMAP4_SSL("127.0.0.1", srv.sport, ssl_context=tls_context())
        c.login("alice", PASSWORD)
        old = ssl.DER_cert_to_PEM_cert(c.sock.getpeercert(binary_form=True))
        # a new certificate in the store's place
        tls = alice.store / "tls"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=reloaded", "-keyout", str(tls / "key.pem"), "-out",
                        str(tls / "cert.pem")], check=True, capture_output=True)
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert c.noop()[0] == "OK"  # the old connection lives on
        d = imaplib.IMAP4_SSL("127.0.0.1", srv.sport, ssl_context=tls_context())
        new = ssl.DER_cert_to_PEM_cert(d.sock.getpeercert(binary_form=True))
        assert new != old
        d.logout()
        c.logout()
    finally:
        stop_server(srv)
    assert "reloaded TLS certificate" in srv.stderr()


def test_serve_rejects_bad_arguments(alice):
    r = alice.run("serve", "--imap", "nonsense", check=False)
    assert r.returncode != 0 and b"needs a port" in r.stderr
    r = alice.run("serve", "--frob", check=False)
    assert r.returncode != 0 and b"unknown argument '--frob'" in r.stderr
    r = alice.run("serve", "--tls-cert", "/nonexistent", "--tls-key", "/nonexistent", check=False)
    assert r.returncode != 0 and b"/nonexistent" in r.stderr
    r = alice.run("serve", "--help")
    assert b"1143" in r.stdout


@pytest.mark.skipif(not shutil.which("mbsync"), reason="mbsync (isync) is not installed")
def test_mbsync_roundtrip(server, tmp_path):
    server.deliver(MSG)
    server.deliver(MSG.replace(b"from the suite", b"second"))
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(f"""IMAPAccount mailfs
Host 127.0.0.1
Port {server.port}
User alice
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {server.mailfs.store / "tls" / "cert.pem"}
AuthMechs LOGIN PLAIN

IMAPStore remote
Account mailfs

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel inbox
Far :remote:INBOX
Near :local:INBOX
Create Both
Expunge Both
SyncState *
""")
    env = dict(os.environ, HOME=str(tmp_path))

    def sync():
        r = subprocess.run(["mbsync", "-c", str(cfg), "inbox"], capture_output=True,
                           timeout=60, env=env)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()

    sync()
    files = sorted((maildir / "INBOX" / "cur").glob("*")) + \
        sorted((maildir / "INBOX" / "new").glob("*"))
    assert len(files) == 2
    # a message made locally goes up to the server
    (maildir / "INBOX" / "new" / "1700000000.local.host").write_bytes(
        b"From: me@example.com\nSubject: made locally\n\nup we go\n")
    sync()
    m = imaplib.IMAP4("127.0.0.1", server.port)
    m.login("alice", PASSWORD)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "locally")
    assert data[0].split() == [b"3"]
    # a flag set on the server comes down; a deletion on the server removes the file
    m.store("1", "+FLAGS", "\\Flagged")
    m.store("2", "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    sync()
    names = [p.name for p in (maildir / "INBOX").rglob("*") if p.is_file() and
             p.parent.name in ("cur", "new")]
    assert len(names) == 2, names
    assert any(":2," in n and "F" in n.split(":2,")[1] for n in names), names
