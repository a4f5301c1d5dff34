"""Issue 10, findings 1, 7 and 10 and two Low items: what a connection may make the server hold,
before and after login; running out of file descriptors; slots held by clients that never log
in; user names reaching FUSE's options; trusted networks and the PROXY protocol v2."""
import os
import pathlib
import resource
import select
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD, PASSWORD, free_port
from imapfix import start_server, stop_server, tls_context

MiB = 1 << 20
# AddressSanitizer keeps freed memory in quarantine and adds its own: the sanitizer run checks
# these paths for memory errors, the plain run checks how much memory they keep
SANITIZED = pathlib.Path(BUILD).name.endswith("asan")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss(pid):
    return status_kb(pid, "VmRSS") * 1024


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def connect(port, source="127.0.0.1", timeout=10, greet=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    if greet:
        assert read_line(s).startswith(b"* OK"), "no greeting"
    return s


def read_line(s, timeout=10):
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        buf += c
    return buf


def tagged(s, tag, timeout=10):
    while True:
        line = read_line(s, timeout)
        assert line, f"connection closed waiting for {tag!r}"
        if line.startswith(tag + b" "):
            return line


def login(s, tag=b"L"):
    s.sendall(tag + b' LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
    line = tagged(s, tag)
    assert line.startswith(tag + b" OK"), line
    return line


def send_all_or_reset(s, data):
    """Sends DATA; a server that closed the connection meanwhile is fine (returns False)."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def closed_or_bye(s, timeout=5):
    """Everything the server still sends until it closes: b"" after a reset."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return out
            out += c
    except ConnectionResetError:
        return out


def drain(s):
    """What the server sent so far, without waiting, and whether it closed the connection."""
    s.setblocking(False)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return out, True
            out += c
    except BlockingIOError:
        return out, False
    except ConnectionResetError:
        return out, True
    finally:
        s.setblocking(True)


def rss_anon(pid):
    """Heap and other anonymous memory: leaves out the store's file mapping."""
    return status_kb(pid, "RssAnon") * 1024


def settle(pid, secs=0.3):
    time.sleep(secs)
    return rss(pid)


@pytest.fixture
def srv(alice):
    s = start_server(alice, ["--loops", "1"])
    yield s
    stop_server(s)


# ---- finding 1: memory per connection ------------------------------------------------------

def test_prelogin_literal_plus_is_refused_with_bye(srv):
    s = connect(srv.port)
    s.sendall(b"a APPEND INBOX {100000+}\r\n")
    out = closed_or_bye(s)
    assert out.startswith(b"* BYE [TOOBIG] before login: literal too large: 100000 bytes, "
                          b"at most 8192"), out


def test_prelogin_big_literals_hold_no_memory(srv):
    """Four 64 MiB LITERAL+ once held 256 MiB per connection; now before login nothing big."""
    pid = srv.proc.pid
    conns = [connect(srv.port) for _ in range(6)]
    base = settle(pid)
    chunk = b"x" * (8 * MiB)
    for s in conns:
        if send_all_or_reset(s, b"a APPEND INBOX {8388608+}\r\n"):
            send_all_or_reset(s, chunk)  # and never the end of the command
    grown = settle(pid, 0.5) - base
    assert grown / len(conns) < 1 * MiB, f"{grown / len(conns) / MiB:.1f} MiB per connection"
    for s in conns:
        s.close()


def test_prelogin_many_small_literals_hold_no_memory(srv):
    """Literals under the limit each, adding up: the whole command is bounded too."""
    pid = srv.proc.pid
    conns = [connect(srv.port) for _ in range(4)]
    base = settle(pid)
    piece = b" {4000+}\r\n" + b"y" * 4000
    for s in conns:
        if send_all_or_reset(s, b"a LOGIN {4000+}\r\n" + b"y" * 4000):
            send_all_or_reset(s, piece * 2000)  # 8 MB, no end of line
    grown = settle(pid, 0.5) - base
    assert grown / len(conns) < 1 * MiB, f"{grown / len(conns) / MiB:.1f} MiB per connection"
    out = closed_or_bye(conns[0])
    assert out == b"" or out.startswith(b"* BYE [TOOBIG] before login: command too"), out
    for s in conns:
        s.close()


def test_login_with_long_password_still_fits(srv):
    s = connect(srv.port)
    pw = b"p" * 3000
    s.sendall(b"a LOGIN {5+}\r\nalice {%d+}\r\n%s\r\n" % (len(pw), pw))
    line = tagged(s, b"a")
    assert line.startswith(b"a NO [AUTHENTICATIONFAILED]"), line  # wrong, but heard out
    login(s, b"b")


def test_prelogin_id_as_large_as_rfc_2971_allows(srv):
    """ID before login may carry 30 pairs of 30 + 1024 bytes (imaptest's id script, ~32 KiB);
    other commands keep the few-KiB bound, and an ID past 40 KiB is refused."""
    s = connect(srv.port)
    pairs = b" ".join(b'"%s" "%s"' % (b"f%029d" % i, b"v" * 1024) for i in range(30))
    s.sendall(b"a ID (" + pairs + b")\r\n")
    line = tagged(s, b"a")
    assert line.startswith(b"a OK"), line
    login(s, b"b")  # the session goes on
    s = connect(srv.port)
    s.sendall(b"c NOOP " + b"x" * 9000 + b"\r\n")
    assert tagged(s, b"c").startswith(b"c BAD line too long"), "a long NOOP before login"
    s.sendall(b"d ID (" + b" ".join([b'"%s" "%s"' % (b"f" * 30, b"v" * 1400)] * 30) + b")\r\n")
    assert tagged(s, b"d").startswith(b"d BAD line too long"), "an ID over 40 KiB"
    s.sendall(b"e NOOP\r\n")
    assert tagged(s, b"e").startswith(b"e OK"), "the session goes on"


def test_after_login_one_command_is_bounded(srv):
    """After login 2,000 LITERAL+ of 64 KiB once added 144 MB; a command now holds 1 MiB."""
    pid = srv.proc.pid
    s = connect(srv.port)
    login(s)
    base = settle(pid)
    data = b"a STATUS {60000+}\r\n" + b"z" * 60000
    data += (b" {60000+}\r\n" + b"z" * 60000) * 300 + b" (MESSAGES)\r\n"  # 18 MB
    s.sendall(data)
    line = tagged(s, b"a")
    # the 18th literal would pass 1 MiB: refused (and skipped) at its header
    assert line.startswith(b"a NO [TOOBIG] command too large: 1080206 bytes with this literal, "
                           b"at most 1048576"), line
    grown = settle(pid) - base
    assert SANITIZED or grown < 4 * MiB, f"grew {grown / MiB:.1f} MiB"
    s.sendall(b"b NOOP\r\n")  # the rest was skipped, not run
    assert tagged(s, b"b").startswith(b"b OK")


def test_multiappend_is_bounded_in_total(srv):
    s = connect(srv.port)
    login(s)
    msg = b"Subject: part\r\n\r\n" + b"m" * (24 * MiB - 17) + b"\r\n"
    lit = b"{%d+}\r\n" % len(msg)
    s.sendall(b"a APPEND INBOX " + lit + msg + b" " + lit + msg + b" " + lit + msg + b"\r\n")
    line = tagged(s, b"a", timeout=60)
    assert line.startswith(b"a NO [TOOBIG] command too large:"), line
    assert b"at most %d" % (65 * MiB) in line, line
    s.sendall(b"b STATUS INBOX (MESSAGES)\r\n")
    assert b"MESSAGES 0" in read_line(s)
    assert tagged(s, b"b").startswith(b"b OK")
    small = b"Subject: small\r\n\r\nhello\r\n"
    lit = b"{%d+}\r\n" % len(small)
    s.sendall(b"c APPEND INBOX " + lit + small + b" " + lit + small + b"\r\n")
    line = tagged(s, b"c")
    assert line.startswith(b"c OK [APPENDUID ") and b" 1:2]" in line, line


def test_idle_connection_gives_back_its_last_append(srv):
    """The parser's buffer no longer keeps a 30 MiB APPEND after the command ran."""
    pid = srv.proc.pid
    conns = []
    for i in range(3):
        s = connect(srv.port)
        login(s)
        conns.append(s)
    time.sleep(0.3)
    base = rss_anon(pid)
    msg = b"Subject: big\r\n\r\n" + b"b" * (30 * MiB) + b"\r\n"
    for i, s in enumerate(conns):
        s.sendall(b"a APPEND Drafts {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert tagged(s, b"a", timeout=60).startswith(b"a OK")
    time.sleep(0.5)
    grown = rss_anon(pid) - base
    assert SANITIZED or grown < 16 * MiB, f"kept {grown / MiB:.0f} MiB after three 30 MiB APPENDs"


# ---- finding 7: out of file descriptors ---------------------------------------------------

def test_out_of_file_descriptors_does_not_spin(alice, tmp_path):
    port = free_port()
    errlog = tmp_path / "stderr"
    limit = 48

    def small_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    with open(errlog, "wb") as err:
        proc = alice.popen("serve", "--imap", f"127.0.0.1:{port}", "--loops", "1",
                           stdout=subprocess.DEVNULL, stderr=err, preexec_fn=small_limit)
    conns, pending = [], None
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, errlog.read_text()
                time.sleep(0.05)
        start = errlog.read_text()
        assert f"the open-file limit is {limit} (hard limit {limit}), too low for 10000 " \
               "clients" in start, start
        assert "ulimit -n" in start and "--max-clients" in start, start
        for i in range(limit + 10):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            r, _, _ = select.select([s], [], [], 1.0)
            if not r:  # no greeting: the server is out of descriptors
                pending = s
                break
            assert read_line(s).startswith(b"* OK")
            conns.append(s)
        assert pending is not None, "never ran out of descriptors"
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(3)
        used = cpu_seconds(proc.pid) - cpu0
        assert used < 0.3, f"the server used {used:.2f} s of CPU in 3 s while at the limit"
        lines = [l for l in errlog.read_text().splitlines() if "cannot accept" in l]
        assert len(lines) == 1, lines[:5]
        assert "Too many open files" in lines[0] and "new connections wait" in lines[0], lines
        for s in conns[:5]:
            s.close()
        # the one that waited is served, and so is a new one
        assert read_line(pending, timeout=3).startswith(b"* OK")
        fresh = connect(port, timeout=3)
        login(fresh)
        fresh.close()
    finally:
        for s in conns + ([pending] if pending else []):
            s.close()
        proc.terminate()
        rc = proc.wait(10)
    assert rc == 0, errlog.read_text()[-4000:]


# ---- finding 10: slots held without logging in --------------------------------------------

def test_silent_clients_cannot_hold_every_slot(alice):
    srv = start_server(alice, ["--loops", "1", "--max-clients", "200", "--login-timeout", "60"])
    users, silent = [], []
    try:
        for i in range(20):
            s = connect(srv.port)
            login(s)
            users.append(s)
        # 300 connections that never log in, from four addresses (75 each)
        for i in range(300):
            silent.append(connect(srv.port, source=f"127.0.0.{2 + i % 4}", greet=False))
        time.sleep(0.5)
        open_ = 0
        for s in silent:
            data, closed = drain(s)
            if closed:
                assert b"* BYE too many connections waiting for a login" in data, data
            else:
                open_ += 1
        assert open_ <= 100, f"{open_} connections not logged in held (at most half of 200)"
        # the logged-in users are still served, and a newcomer can still log in
        for i, s in enumerate(users):
            s.sendall(b"n NOOP\r\n")
            assert tagged(s, b"n").startswith(b"n OK")
        late = connect(srv.port)
        login(late)
        late.close()
    finally:
        for s in users + silent:
            s.close()
        stop_server(srv)


def test_login_timeout(alice):
    srv = start_server(alice, ["--loops", "1", "--login-timeout", "2"])
    try:
        user = connect(srv.port)
        login(user)
        t = time.monotonic()
        quiet = connect(srv.port)
        out = closed_or_bye(quiet, timeout=6)
        waited = time.monotonic() - t
        assert out == b"* BYE no login within 2 seconds; disconnecting\r\n", out
        assert 1.8 < waited < 4, f"dropped after {waited:.1f} s"
        user.sendall(b"n NOOP\r\n")  # logged in: not subject to it
        assert tagged(user, b"n").startswith(b"n OK")
        user.close()
    finally:
        stop_server(srv)


# ---- Low: the user name of --mount --------------------------------------------------------

def test_mount_user_name_is_validated(alice, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = alice.run("serve", "--imap", f"127.0.0.1:{free_port()}", "--mount",
                  f"bob,allow_other:{mnt}", check=False, timeout=20)
    assert r.returncode == 64, r
    assert b"bad --mount 'bob,allow_other:" in r.stderr, r.stderr
    assert b"'bob,allow_other' is not a valid user name" in r.stderr, r.stderr
    r = alice.run("mount", "-f", "bob,allow_other", str(mnt), check=False, timeout=20)
    assert r.returncode == 64, r
    assert b"bad user name 'bob,allow_other'" in r.stderr, r.stderr


# ---- Low: trusted networks and the PROXY protocol -----------------------------------------

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header(src="198.51.100.7", sport=40000, dst=None, dport=143, tls=False,
                 local=False):
    if local:
        return SIG + b"\x20\x00" + struct.pack("!H", 0)
    v6 = ":" in src
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    dst = dst or ("::1" if v6 else "127.0.0.1")
    body = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack("!HH", sport,
                                                                                   dport)
    if tls:  # PP2_TYPE_SSL: client flags (PP2_CLIENT_SSL), verify, then a version sub-field
        version = b"TLSv1.3"
        ssl_value = b"\x01" + struct.pack("!I", 0) + b"\x21" + struct.pack("!H", len(version))
        body += b"\x20" + struct.pack("!H", len(ssl_value) + len(version)) + ssl_value + version
    return SIG + b"\x21" + (b"\x21" if v6 else b"\x11") + struct.pack("!H", len(body)) + body


def test_trusted_net_none_requires_tls_everywhere(alice):
    srv = start_server(alice, ["--loops", "1", "--trusted-net", "none"])
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        greeting = read_line(s)
        assert b"LOGINDISABLED" in greeting and b"AUTH=PLAIN" not in greeting, greeting
        s.sendall(b'a LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
        assert tagged(s, b"a").startswith(b"a NO [PRIVACYREQUIRED]")
        s.close()
        # over TLS it works
        t = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", srv.sport),
                                                               timeout=10))
        assert read_line(t).startswith(b"* OK")
        login(t)
        t.close()
    finally:
        stop_server(srv)


def test_trusted_net_chooses_who_may_log_in_without_tls(alice):
    srv = start_server(alice, ["--loops", "1", "--trusted-net", "127.0.0.2/32"])
    try:
        login(connect(srv.port, source="127.0.0.2"))
        s = connect(srv.port, source="127.0.0.3")
        s.sendall(b'a LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
        assert tagged(s, b"a").startswith(b"a NO [PRIVACYREQUIRED]")
    finally:
        stop_server(srv)


def test_bad_trusted_net_is_refused(alice):
    for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/", "::1/129"]:
        r = alice.run("serve", "--trusted-net", bad, check=False, timeout=20)
        assert r.returncode == 64, (bad, r)
        assert f"bad --trusted-net '{bad}'".encode() in r.stderr, r.stderr


@pytest.fixture
def proxied(alice):
    srv = start_server(alice, ["--loops", "1", "--verbose", "--proxy-from", "127.0.0.1",
                               "--trusted-net", "10.0.0.0/8"])
    yield srv
    stop_server(srv)


def test_proxy_header_sets_the_client_address(proxied):
    srv = proxied
    # an untrusted client behind the proxy: no plaintext login
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(proxy_header("198.51.100.7"))
    greeting = read_line(s)
    assert greeting.startswith(b"* OK") and b"LOGINDISABLED" in greeting, greeting
    s.sendall(b'a LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
    assert tagged(s, b"a").startswith(b"a NO [PRIVACYREQUIRED]")
    s.close()
    # a trusted one, the header sent a byte at a time and a command right behind it
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    for b in proxy_header("10.1.2.3"):
        s.sendall(bytes([b]))
        time.sleep(0.001)
    s.sendall(b'a LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
    assert read_line(s).startswith(b"* OK")
    assert tagged(s, b"a").startswith(b"a OK")
    s.close()
    # one that reached the proxy over TLS
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(proxy_header("2001:db8::5", tls=True))
    assert b"AUTH=PLAIN" in read_line(s)
    login(s)
    s.close()
    # the proxy's own health check (LOCAL): the proxy's address stands
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(proxy_header(local=True) + b"a NOOP\r\n")
    assert read_line(s).startswith(b"* OK")
    assert tagged(s, b"a").startswith(b"a OK")
    s.close()
    stop_server(srv)
    log = srv.stderr()
    assert "connection from 198.51.100.7 via proxy 127.0.0.1" in log, log
    assert "user 'alice' logged in from 10.1.2.3" in log, log
    assert "user 'alice' logged in from 2001:db8::5" in log, log


def test_proxy_connection_without_header_is_closed(proxied):
    for junk in [b"a LOGIN alice x\r\n", SIG[:6] + b"X" * 10,
                 SIG + b"\x11\x11\x00\x0c" + b"\x00" * 12,  # version 1 in a v2 header
                 SIG + b"\x21\x11\x00\x04" + b"\x00" * 4,  # too short for IPv4 addresses
                 SIG + b"\x21\x11\x04\x00"]:  # 1,024 bytes of addresses: too long
        s = socket.create_connection(("127.0.0.1", proxied.port), timeout=10)
        s.sendall(junk)
        assert closed_or_bye(s) == b"", junk  # no greeting, no IMAP at all
        s.close()
    # a good one still works
    s = socket.create_connection(("127.0.0.1", proxied.port), timeout=10)
    s.sendall(proxy_header("10.9.9.9"))
    assert read_line(s).startswith(b"* OK")
    login(s)
    stop_server(proxied)
    assert proxied.stderr().count("no PROXY protocol v2 signature; closing it") == 2


def test_proxy_header_before_implicit_tls(proxied):
    raw = socket.create_connection(("127.0.0.1", proxied.sport), timeout=10)
    raw.sendall(proxy_header("203.0.113.9", dport=993))
    t = tls_context().wrap_socket(raw)
    assert read_line(t).startswith(b"* OK")
    login(t)
    t.close()
    stop_server(proxied)
    assert "user 'alice' logged in from 203.0.113.9" in proxied.stderr()


def test_proxied_clients_are_limited_by_their_own_address(proxied):
    conns = []
    try:
        # 150 clients of the proxy from different addresses: more than 100 per address is fine
        for i in range(150):
            s = socket.create_connection(("127.0.0.1", proxied.port), timeout=10)
            s.sendall(proxy_header(f"10.0.{i // 200}.{1 + i % 200}"))
            assert read_line(s).startswith(b"* OK"), i
            conns.append(s)
        # but one address behind it gets 100
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", proxied.port), timeout=10)
            s.sendall(proxy_header("10.5.5.5"))
            assert read_line(s).startswith(b"* OK"), i
            conns.append(s)
        s = socket.create_connection(("127.0.0.1", proxied.port), timeout=10)
        s.sendall(proxy_header("10.5.5.5"))
        assert closed_or_bye(s) == b"* BYE too many connections\r\n"
        s.close()
    finally:
        for s in conns:
            s.close()


def test_second_server_on_a_taken_port_is_refused(srv, tmp_path):
    """Each event loop has its own socket (SO_REUSEPORT), which would let a second server, on
    another store, share the port without a word and take some of the connections."""
    from conftest import Mailfs
    other = Mailfs(tmp_path / "other")
    other.run("init")
    for spec in (f"127.0.0.1:{srv.port}", f"127.0.0.1:{srv.sport}"):
        r = other.run("serve", "--imap", spec, "--loops", "2", check=False, timeout=10)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0 and f"cannot listen on '{spec}'" in err, err
        assert "in use" in err, err
    s = connect(srv.port)  # the first server still has every connection
    login(s)
