"""Real IMAP clients against `mailfs serve`: imaplib (STARTTLS, implicit TLS), curl, openssl
s_client, mbsync, offlineimap, neomutt (on a pseudo-terminal); and the server's TLS policy and
signals."""
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

from conftest import PASSWORD, wait_for
from terminal import Terminal, index_line, neomutt_env, pyte
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


# --- offlineimap -------------------------------------------------------------------------------

# IMAP system flags and the Maildir letters offlineimap gives them
MAILDIR_FLAG = {"\\Seen": "S", "\\Answered": "R", "\\Flagged": "F", "\\Deleted": "T",
                "\\Draft": "D"}

OI_MESSAGES = {  # mailbox: [(message, IMAP flags)]; delivered in this order, so UID = index + 1
    "INBOX": [
        (b"From: Bob <bob@example.com>\nTo: alice@example.com\nSubject: plain, unread\n"
         b"Date: Mon, 13 Nov 2023 10:00:00 +0100\nMessage-ID: <oi-1@example.com>\n\n"
         b"first line\n\nlast line\n", ()),
        (b"From: carol@example.com\nTo: alice@example.com\nSubject: read and answered\n"
         b"Date: Tue, 14 Nov 2023 11:30:00 +0000\nMessage-ID: <oi-2@example.com>\n"
         b"References: <a@example.com>\n <b@example.com>\n\nalready seen\n",
         ("\\Seen", "\\Answered")),
        (b"From: dave@example.com\nTo: alice@example.com\nSubject: to be deleted locally\n"
         b"Date: Wed, 15 Nov 2023 12:00:00 +0000\nMessage-ID: <oi-3@example.com>\n\n"
         b"delete me\n", ("\\Seen",)),
        (b"From: erin@example.com\nTo: alice@example.com\nSubject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\n"
         b"Date: Thu, 16 Nov 2023 09:15:00 -0500\nMessage-ID: <oi-4@example.com>\n"
         b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
         b"preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n"
         b"Content-Transfer-Encoding: 8bit\n\ngr\xc3\xbc\xc3\x9fe aus M\xc3\xbcnchen\n--b1\n"
         b"Content-Type: application/octet-stream; name=\"x.bin\"\n"
         b"Content-Transfer-Encoding: base64\n\nAAECAwQFBgcICQoLDA0ODw==\n--b1--\n",
         ("\\Flagged",)),
    ],
    "Sent": [
        (b"From: alice@example.com\nTo: bob@example.com\nSubject: sent one\n"
         b"Date: Fri, 17 Nov 2023 08:00:00 +0000\nMessage-ID: <oi-5@example.com>\n\nsent\n",
         ("\\Seen",)),
    ],
    "Work": [
        (b"From: boss@example.com\nTo: alice@example.com\nSubject: work draft\n"
         b"Date: Sat, 18 Nov 2023 08:00:00 +0000\nMessage-ID: <oi-6@example.com>\n\ndraft\n",
         ("\\Draft", "\\Seen")),
    ],
    "Work/Projects": [
        (b"From: pm@example.com\nTo: alice@example.com\nSubject: project one\n"
         b"Date: Sun, 19 Nov 2023 08:00:00 +0000\nMessage-ID: <oi-7@example.com>\n\np1\n",
         ("\\Seen", "\\Flagged")),
        (b"From: pm@example.com\nTo: alice@example.com\nSubject: project two\n"
         b"Date: Mon, 20 Nov 2023 08:00:00 +0000\nMessage-ID: <oi-8@example.com>\n\np2\n", ()),
    ],
}
OI_ALL_MAILBOXES = ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work",
                    "Work/Projects"]


def imap_state(port, mailboxes):
    """{mailbox: (UIDVALIDITY, UIDNEXT, {uid: (flags without \\Recent, BODY[], INTERNALDATE)})}
    as imaplib sees it over STARTTLS; nothing is marked seen."""
    m = imaplib.IMAP4("127.0.0.1", port)
    m.starttls(ssl_context=tls_context())
    m.login("alice", PASSWORD)
    state = {}
    for box in mailboxes:
        typ, data = m.status(f'"{box}"', "(UIDVALIDITY UIDNEXT)")
        assert typ == "OK", (box, data)
        st = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT) (\d+)", data[0]))
        typ, data = m.select(f'"{box}"', readonly=True)
        assert typ == "OK", (box, data)
        msgs = {}
        if int(data[0]) > 0:
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
            assert typ == "OK", data
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode()
                uid = int(re.search(r"UID (\d+)", head).group(1))
                flags = frozenset(re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()) - \
                    {"\\Recent"}
                date = re.search(r'INTERNALDATE "([^"]+)"', head).group(1)
                msgs[uid] = (flags, item[1], date)
        state[box] = (int(st[b"UIDVALIDITY"]), int(st[b"UIDNEXT"]), msgs)
        m.unselect()
    m.logout()
    return state


def maildir_state(root):
    """{folder: {file name: bytes}} of a Maildir tree (folders nested with '/'), names with
    their cur/ or new/ directory."""
    out = {}
    for sub in ("cur", "new"):
        for f in sorted(root.rglob(f"{sub}/*")):
            folder = str(f.parent.parent.relative_to(root))
            out.setdefault(folder, {})[f"{sub}/{f.name}"] = f.read_bytes()
    return out


def maildir_info(name):
    """(uid or None, flag letters) from an offlineimap Maildir file name 'cur/NAME,U=7,...:2,FS'."""
    m = re.search(r",U=(\d+)", name)
    flags = name.split(":2,", 1)[1] if ":2," in name else ""
    return (int(m.group(1)) if m else None), flags


@pytest.mark.skipif(not shutil.which("offlineimap"),
                    reason="offlineimap (offlineimap3) is not installed")
def test_offlineimap_roundtrip(server, tmp_path):
    """offlineimap syncs every mailbox (a nested one too) to a Maildir over verified implicit TLS,
    byte for byte with flags in the file names; local reads, deletions and new files go up; a
    third run changes nothing on either side."""
    server.mailfs.run("mailbox", "create", "alice", "Work/Projects")
    for box, msgs in OI_MESSAGES.items():
        for msg, _ in msgs:
            server.deliver(msg, "alice", "--mailbox", box)
    c = imaplib.IMAP4("127.0.0.1", server.port)
    c.login("alice", PASSWORD)
    for box, msgs in OI_MESSAGES.items():
        c.select(f'"{box}"')
        for uid, (_, flags) in enumerate(msgs, 1):
            if flags:
                assert c.uid("STORE", str(uid), "+FLAGS.SILENT", f"({' '.join(flags)})")[0] == "OK"
        c.unselect()
    c.logout()

    maildir, meta = tmp_path / "Mail", tmp_path / "offlineimap"
    maildir.mkdir()
    meta.mkdir()
    cfg = tmp_path / "offlineimaprc"
    # Implicit TLS, verified: the store's self-signed certificate is the CA, and offlineimap
    # checks the name 'localhost' against it (ipv6 = no: localhost may be ::1 first elsewhere).
    # Its STARTTLS path would not verify the certificate at all, so IMAPS it is.
    cfg.write_text(f"""[general]
accounts = mailfs
metadata = {meta}
fsync = false

[Account mailfs]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {maildir}
sep = /

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.sport}
ipv6 = no
ssl = yes
sslcacertfile = {server.mailfs.store / "tls" / "cert.pem"}
remoteuser = alice
remotepass = {PASSWORD}
maxconnections = 1
expunge = yes
""")
    env = dict(os.environ, HOME=str(tmp_path), TZ="UTC")

    def sync():
        r = subprocess.run(["offlineimap", "-c", str(cfg), "-u", "basic", "-o"],
                           capture_output=True, timeout=60, env=env, cwd=tmp_path)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        assert r.returncode == 0, out
        assert "ERROR" not in out and "WARNING" not in out, out
        return out

    # 1. server -> Maildir
    out = sync()
    before = imap_state(server.port, OI_ALL_MAILBOXES)
    local = maildir_state(maildir)
    assert sorted(local) == sorted(OI_MESSAGES), (sorted(local), out)
    assert all((maildir / b / d).is_dir() for b in OI_ALL_MAILBOXES for d in ("cur", "new")), out
    for box, msgs in OI_MESSAGES.items():
        files = local[box]
        assert len(files) == len(msgs), (box, files.keys())
        by_uid = {maildir_info(n)[0]: (n, data) for n, data in files.items()}
        assert sorted(by_uid) == list(range(1, len(msgs) + 1)), (box, files.keys())
        for uid, (msg, flags) in enumerate(msgs, 1):
            name, data = by_uid[uid]
            assert data == msg, (box, uid, name, data)  # byte for byte, no added header
            letters = "".join(sorted(MAILDIR_FLAG[f] for f in flags))
            assert maildir_info(name)[1] == letters, (box, uid, name, flags)
            assert name.startswith("cur/" if "S" in letters else "new/"), name

    # 2. local changes: read one, delete one, a new message in the nested folder, a flag there
    inbox = {maildir_info(n)[0]: n for n in local["INBOX"]}
    assert inbox[1].startswith("new/") and inbox[1].endswith(":2,")
    (maildir / "INBOX" / inbox[1]).rename(maildir / "INBOX" / ("cur/" + inbox[1][4:] + "S"))
    (maildir / "INBOX" / inbox[3]).unlink()
    proj = {maildir_info(n)[0]: n for n in local["Work/Projects"]}
    (maildir / "Work/Projects" / proj[2]).rename(
        maildir / "Work/Projects" / ("cur/" + proj[2][4:] + "F"))
    new_msg = (b"From: alice@example.com\nTo: pm@example.com\nSubject: written offline\n"
               b"Date: Tue, 21 Nov 2023 08:00:00 +0000\nMessage-ID: <oi-new@example.com>\n\n"
               b"made in the Maildir\n")
    new_file = maildir / "Work/Projects" / "new" / "1700550000.M1P1.offline"
    new_file.write_bytes(new_msg)
    os.utime(new_file, (1700550000, 1700550000))
    out = sync()
    after = imap_state(server.port, OI_ALL_MAILBOXES)
    for box in OI_ALL_MAILBOXES:
        if box not in ("INBOX", "Work/Projects"):
            assert after[box] == before[box], box
    uv, nxt, msgs = after["INBOX"]
    assert (uv, nxt) == before["INBOX"][:2]
    assert sorted(msgs) == [1, 2, 4], (msgs.keys(), out)  # 3 is expunged, not just \Deleted
    assert msgs[1][0] == {"\\Seen"}, out
    assert {u: v for u, v in msgs.items() if u != 1} == \
        {u: v for u, v in before["INBOX"][2].items() if u in (2, 4)}
    uv, nxt, msgs = after["Work/Projects"]
    assert uv == before["Work/Projects"][0] and nxt == 4, (nxt, out)
    assert msgs[1] == before["Work/Projects"][2][1]
    assert msgs[2][0] == {"\\Flagged"}, out
    flags, body, date = msgs[3]
    assert body == new_msg.replace(b"\n", b"\r\n"), body  # no X-OfflineIMAP header: UIDPLUS
    assert flags == frozenset(), flags
    assert imaplib.Internaldate2tuple(f'INTERNALDATE "{date}"'.encode()) == \
        time.localtime(1700550000), date
    # the local file now carries the UID the server gave (APPENDUID)
    local = maildir_state(maildir)
    names = [n for n in local["Work/Projects"] if local["Work/Projects"][n] == new_msg]
    assert len(names) == 1 and maildir_info(names[0])[0] == 3, local["Work/Projects"].keys()
    assert len(local["INBOX"]) == 3

    # 3. nothing to do: neither side changes
    out = sync()
    assert imap_state(server.port, OI_ALL_MAILBOXES) == after
    assert maildir_state(maildir) == local
    assert not re.search(r"Copy message|Deleting|Adding flag|Removing flag", out), out


# --- neomutt -----------------------------------------------------------------------------------

NM_MSGS = [
    b"From: Bob <bob@example.com>\nTo: alice@example.com\nSubject: nm alpha\n"
    b"Date: Mon, 13 Nov 2023 10:00:00 +0000\nMessage-ID: <nm-1@example.com>\n\nbody of alpha\n",
    b"From: Carol <carol@example.com>\nTo: alice@example.com\nSubject: nm bravo\n"
    b"Date: Tue, 14 Nov 2023 10:00:00 +0000\nMessage-ID: <nm-2@example.com>\n\nbody of bravo\n",
    b"From: Dave <dave@example.com>\nTo: alice@example.com\nSubject: nm charlie\n"
    b"Date: Wed, 15 Nov 2023 10:00:00 +0000\nMessage-ID: <nm-3@example.com>\n\n"
    b"body of charlie\nsecond line\n",
]


@pytest.mark.skipif(not shutil.which("neomutt"), reason="neomutt is not installed")
@pytest.mark.skipif(pyte is None, reason="python3-pyte is not installed")
def test_neomutt_keys(server, tmp_path):
    """neomutt on a terminal over implicit TLS (the store's certificate trusted through
    certificate_file, so no prompt): it lists INBOX, shows a message, flags one, deletes one, copies one to
    another folder, syncs, sees new mail arrive through IDLE and quits; imaplib then sees all of
    it. neomutt's debug log gives the IMAP transcript, in which no command may fail."""
    for msg in NM_MSGS:
        server.deliver(msg)
    cert = tmp_path / "cert.pem"  # neomutt would add certificates it is told to keep here
    shutil.copy(server.mailfs.store / "tls" / "cert.pem", cert)
    rc = tmp_path / "neomuttrc"
    rc.write_text(f"""set folder="imaps://alice@127.0.0.1:{server.sport}/"
set imap_pass="{PASSWORD}"
set spoolfile="+INBOX"
set certificate_file="{cert}"
set ssl_force_tls=yes
set header_cache="" message_cachedir=""
set sort=mailbox-order
set delete=yes quit=yes confirmappend=no move=no mark_old=no wait_key=no beep=no
set imap_idle=yes timeout=1 mail_check=1
set record="" postponed="{tmp_path}/postponed" mbox="{tmp_path}/mbox"
""")
    env = neomutt_env(tmp_path)
    # level 5 logs every line sent and read; neomutt appends a 0 to the name
    log = tmp_path / "neomutt.log"

    def transcript():
        logs = sorted(tmp_path.glob("neomutt.log*"))
        text = logs[-1].read_text(errors="replace") if logs else ""
        return "\n".join(m.group(1) for m in
                         re.finditer(r"mutt_socket_(?:readln|write)_d\(\) \d+([<>] .*)", text))



    archive = imaplib.IMAP4("127.0.0.1", server.port)
    archive.login("alice", PASSWORD)
    t = Terminal(["neomutt", "-n", "-F", str(rc), "-d", "5", "-l", str(log)], env)
    try:
        t.wait(r"NeoMutt: \+INBOX \[Msgs:3 New:3", what="the index of INBOX")
        for i, subject in enumerate(("nm alpha", "nm bravo", "nm charlie"), 1):
            t.wait(index_line(i, subject, "N"), what=f"{subject} as new message {i}")
        # read charlie in the pager, back to the index
        t.jump(3)
        t.send("\r")
        t.wait(r"^second line$", what="charlie's body in the pager")
        t.wait(r"3/3: Dave", what="the pager's status line")
        t.send("q")
        t.wait(index_line(3, "nm charlie"), what="the index again")
        assert not re.search(index_line(3, "nm charlie", "N"), t.text(), re.M), t.text()
        # flag alpha, delete bravo (both only marked in neomutt until the sync)
        t.jump(1)
        t.send("F")
        t.wait(index_line(1, "nm alpha", "!"), what="alpha flagged")
        t.jump(2)
        t.send("d")
        t.wait(index_line(2, "nm bravo", "D"), what="bravo marked deleted")
        # copy charlie to Archive (^U empties the name neomutt suggests)
        t.jump(3)
        t.send("C")
        t.wait(r"Copy to mailbox", what="the copy prompt")
        t.send("\x15=Archive\r")
        assert wait_for(lambda: archive.status("Archive", "(MESSAGES)")[1][0].endswith(
            b"(MESSAGES 1)"), timeout=10, step=0.05), t.text()
        # sync: the flags are stored, bravo is expunged
        t.send("$")
        t.wait(r"NeoMutt: \+INBOX \[Msgs:2 .*Flag:1", what="INBOX synced")
        assert "nm bravo" not in t.text()
        # new mail shows without a key press
        server.deliver(b"From: erin@example.com\nSubject: nm delta\n\nnew while open\n")
        t.wait(index_line(3, "nm delta", "N"), timeout=15, what="the new message")
        t.send("q")
        assert t.wait_exit() == 0, t.text()
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- IMAP transcript (neomutt's log) ---\n"
                             f"{transcript()[-6000:]}") from None
    finally:
        t.close()
        archive.logout()

    imap = transcript()
    assert "> a0000 AUTHENTICATE PLAIN" in imap and "< a0000 OK" in imap, imap[-6000:]
    assert not re.search(r"^< a\d+ (BAD|NO)\b", imap, re.M), imap[-6000:]

    m = imaplib.IMAP4("127.0.0.1", server.port)
    m.starttls(ssl_context=tls_context())
    m.login("alice", PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    got = {int(re.search(rb"UID (\d+)", d[0]).group(1)):
           (set(re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).decode().split()) - {"\\Recent"},
            d[1]) for d in data if isinstance(d, tuple)}
    assert sorted(got) == [1, 3, 4], got  # bravo is expunged
    assert got[1] == ({"\\Flagged"}, NM_MSGS[0].replace(b"\n", b"\r\n")), got[1]
    assert got[3] == ({"\\Seen"}, NM_MSGS[2].replace(b"\n", b"\r\n")), got[3]
    assert got[4][0] == set(), got[4]
    m.select("Archive", readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
    copies = [d for d in data if isinstance(d, tuple)]
    assert len(copies) == 1 and copies[0][1] == NM_MSGS[2].replace(b"\n", b"\r\n"), data
    assert b"\\Seen" in copies[0][0], copies[0][0]
    m.logout()


# neomutt 20220429 (Debian 12) fetches the headers for its index with this, from its transcript
NEOMUTT_INDEX_FETCH = ("UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM "
                       "SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE "
                       "CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST LIST-SUBSCRIBE "
                       "LIST-UNSUBSCRIBE X-LABEL X-ORIGINAL-TO)]")


def test_neomutt_index_fetch_names_the_section(server):
    """The answer repeats the section as it was asked (RFC 9051 7.5.2, section-msgtext has a
    whole header-list): neomutt survives the cut name, a client that checks it would not."""
    server.deliver(NM_MSGS[0])
    c = server.conn(select="INBOX")
    u = c.ok(f"FETCH 1 ({NEOMUTT_INDEX_FETCH})")
    assert len(u) == 1, u
    head = u[0].split("\r\n", 1)[0]
    # the header fields came back whole, whatever the name says
    assert "Subject: nm alpha\r\nDate: " in u[0] and "Message-ID: <nm-1@example.com>" in u[0]
    section = NEOMUTT_INDEX_FETCH.split("BODY.PEEK", 1)[1]
    assert f" BODY{section} {{" in head, head
    c.close()


def test_fetch_names_a_long_section_whole(server):
    """A long section (151 field names, 1,800 bytes) is echoed whole in the answer."""
    server.deliver(NM_MSGS[0])
    c = server.conn(select="INBOX")
    fields = " ".join(f"X-FIELD-{i}" for i in range(150)) + " SUBJECT"
    u = c.ok(f"FETCH 1 (BODY.PEEK[HEADER.FIELDS ({fields})])")
    head = u[0].split("\r\n", 1)[0]
    assert f"(BODY[HEADER.FIELDS ({fields})] {{" in head, head[:200]
    assert "Subject: nm alpha" in u[0]
    c.close()
