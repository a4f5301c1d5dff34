#!/usr/bin/env python3
"""bench_imap.py: mailfs serve against Dovecot on this machine, same mailbox, same run.

  sudo tools/bench_imap.py [--count 20000] [--idle 200] [--appends 2000] [--mailfs BIN]

Generates COUNT messages (tools/gen_mail.py, Maildir), gives Dovecot (Debian's dovecot-imapd,
installed if missing, run from a private directory with its own config, loopback only) the
Maildir as its INBOX and imports the same Maildir into a fresh mailfs store. Then, for each
server, over plain IMAP on loopback with a raw socket client (so that client parsing costs the
same for both):
  SELECT INBOX                                         (after one warm-up SELECT)
  UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)
  UID FETCH 1:* BODYSTRUCTURE
  UID SEARCH TEXT <rare word>                          (1 message in 1000 has it)
  SORT (DATE), SORT (SUBJECT), SORT (FROM) and THREAD REFERENCES over ALL (after one warm-up
                                                       each: Dovecot's cache holds the fields)
  SELECT INBOX (QRESYNC (...)) after 10 flag changes   (its time and the bytes of its answer;
                                                       issue 12: <= 1 ms, <= 2 KB)
  APPEND throughput                                    (APPENDS messages, one at a time)
  memory per idle connection                           (IDLE connections, logged in, in IDLE)
Each timing is the median of 5 runs. Prints a table with Dovecot / mailfs ratios (above 1:
mailfs is faster or smaller). Goals (issue 4): every ratio >= 2, and >= 10 for SEARCH TEXT;
issue 12 asks the same 2 of SORT and THREAD.
Needs root (Dovecot's privilege separation).
"""
import argparse
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORD = "xylophonequartz"
PASSWORD = "benchpw"
BENCH_USER = "mailfsbench"  # the system user Dovecot's mail processes run as


def sh(*args, **kw):
    return subprocess.run(list(map(str, args)), check=True, **kw)


class Client:
    """A minimal IMAP client: sends a command, reads to its tagged reply, counts bytes."""

    def __init__(self, port, source="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=300,
                                          source_address=(source, 0))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self.read_until(b"\r\n")

    def read_until(self, marker):
        while marker not in self.buf:
            data = self.s.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, text, literal=None):
        self.n += 1
        tag = f"b{self.n}".encode()
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            self.read_until(b"\r\n")  # the continuation request
            self.s.sendall(literal + b"\r\n")
        marker = b"\r\n" + tag + b" "
        data = bytearray(self.buf)
        self.buf = b""
        pos = 0
        while True:
            j = 0 if data.startswith(tag + b" ") else data.find(marker, pos)
            if j > 0:
                j += 2
            if j >= 0:
                e = data.find(b"\r\n", j)
                if e >= 0:
                    self.buf = bytes(data[e + 2:])
                    return bytes(data[:j]), bytes(data[j:e + 2])
            pos = max(0, len(data) - len(marker))
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data.extend(chunk)

    def ok(self, text, literal=None):
        data, line = self.cmd(text, literal)
        if b" OK" not in line[:12]:
            raise RuntimeError(f"{text!r} -> {line!r}")
        return data

    def login(self, user):
        self.ok(f'LOGIN {user} "{PASSWORD}"')


def median_time(fn, runs=5):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def family(root):
    """ROOT and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_dovecot(work, maildir, user):
    if not shutil.which("dovecot"):
        sh("apt-get", "install", "-y", "-qq", "dovecot-imapd", stdout=subprocess.DEVNULL,
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    d = work / "dovecot"
    home = d / "home" / user
    if d.exists():
        shutil.rmtree(d)
    (home).mkdir(parents=True)
    shutil.copytree(maildir, home / "Maildir")
    for sub in ("run", "state", "log"):
        (d / sub).mkdir()
    port = free_port()
    conf = d / "dovecot.conf"
    conf.write_text(f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={BENCH_USER} gid={BENCH_USER} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap {{
  process_limit = 2000
}}
default_process_limit = 2000
protocol imap {{
  mail_max_userip_connections = 100000
}}
default_client_limit = 4000
""")
    # Dovecot will not run mail processes as root: a system user owns the bench mail
    if subprocess.run(["id", BENCH_USER], capture_output=True).returncode != 0:
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BENCH_USER)
    sh("chown", "-R", f"{BENCH_USER}:{BENCH_USER}", d / "home")
    # Dovecot daemonizes: keep it off our pipes
    sh("dovecot", "-c", conf, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
       stderr=subprocess.DEVNULL)
    wait_port(port)
    master = int(subprocess.run(["pgrep", "-o", "-f", f"dovecot -c {conf}"], capture_output=True,
                                text=True, check=True).stdout.split()[0])
    return port, lambda: subprocess.run(["dovecot", "-c", str(conf), "stop"],
                                        capture_output=True), master


def start_mailfs(work, mailfs, maildir, user):
    store = work / "mailfs-store"
    if store.exists():
        shutil.rmtree(store)
    env = dict(os.environ, MAILFS_STORE=str(store))
    sh(mailfs, "init", env=env, stdout=subprocess.DEVNULL)
    sh(mailfs, "user", "add", user, input=(PASSWORD + "\n").encode(), env=env)
    sh(mailfs, "import", user, maildir, env=env, stdout=subprocess.DEVNULL)
    port = free_port()
    cmd = [str(mailfs), "serve", "--imap", f"127.0.0.1:{port}"]
    if os.geteuid() == 0:
        # like Dovecot's mail processes, serve drops root for the bench's system user
        sh("chown", "-R", f"{BENCH_USER}:{BENCH_USER}", store)
        cmd += ["--user", BENCH_USER]
    p = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    wait_port(port)

    def stop():
        p.terminate()
        p.wait(timeout=30)
    return port, stop, p.pid


def corpus_messages(corpus):
    """The single-message files of the shared corpus (no mbox, no NUL, not empty), sorted."""
    skip = {"MANIFEST.tsv", "README.md", ".gitattributes"}
    return sorted(p for p in pathlib.Path(corpus).rglob("*") if p.is_file()
                  and p.name not in skip and not p.read_bytes().startswith(b"From ")
                  and b"\0" not in p.read_bytes() and p.stat().st_size > 0)


def on_both(work, mailfs, ask):
    """Runs ASK(port) against a fresh Dovecot, then a fresh mailfs, with an empty maildir under
    WORK; returns (Dovecot's answer, mailfs's)."""
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    empty = work / "empty-maildir"
    for sub in ("cur", "new", "tmp"):
        (empty / sub).mkdir(parents=True, exist_ok=True)
    got = []
    for start in (lambda: start_dovecot(work, empty, "bench"),
                  lambda: start_mailfs(work, mailfs, empty, "bench")):
        port, stop, _ = start()
        try:
            got.append(ask(port))
        finally:
            stop()
    return got[0], got[1]


def measure(port, user, appends, idle, server_pids):
    res = {}
    c = Client(port)
    c.login(user)
    c.ok("SELECT INBOX")  # warm-up: Dovecot builds its index here
    c.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    c.ok(f"UID SEARCH TEXT {WORD}")
    res["SELECT"] = median_time(lambda: c.ok("SELECT INBOX"))
    res["FETCH envelope"] = median_time(
        lambda: c.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"))
    res["FETCH bodystructure"] = median_time(lambda: c.ok("UID FETCH 1:* BODYSTRUCTURE"))
    hits = c.ok(f"UID SEARCH TEXT {WORD}")
    res["SEARCH TEXT"] = median_time(lambda: c.ok(f"UID SEARCH TEXT {WORD}"))
    for cmd in ("SORT (DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL", "SORT (FROM) UTF-8 ALL",
                "THREAD REFERENCES UTF-8 ALL"):
        c.ok(cmd)  # warm-up: Dovecot adds the fields to its cache here
        res[cmd.replace(" UTF-8 ALL", "")] = median_time(lambda cmd=cmd: c.ok(cmd))
    # QRESYNC (issue 12: <= 1 ms and <= 2 KB): a client away while 10 flags changed resyncs
    # with one SELECT; another session makes the changes, the same ones each run
    c.ok("ENABLE QRESYNC")
    sel = c.ok("SELECT INBOX")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", sel).group(1))
    hm = int(re.search(rb"HIGHESTMODSEQ (\d+)", sel).group(1))
    o = Client(port)
    o.login(user)
    o.ok("SELECT INBOX")
    for i in range(10):
        o.ok(f"STORE {1 + i * 997} +FLAGS.SILENT (\\Flagged)")
    o.ok("LOGOUT")
    resync = f"SELECT INBOX (QRESYNC ({uv} {hm}))"
    res["QRESYNC SELECT"] = median_time(lambda: c.ok(resync))
    res["QRESYNC SELECT KB"] = len(c.ok(resync)) / 1024
    msg = (b"From: bench@example.com\r\nTo: you@example.com\r\nSubject: append bench\r\n"
           b"Message-ID: <x@bench>\r\n\r\n" + b"Hello, this is a benchmark message.\r\n" * 40)
    t = time.perf_counter()
    for _ in range(appends):
        c.ok("APPEND INBOX", msg)
    res["APPEND msgs/s"] = appends / (time.perf_counter() - t)
    c.ok("LOGOUT")
    # memory per idle connection: log in, select, IDLE
    pids = server_pids()
    before = rss_kb(pids)
    conns = []
    for i in range(idle):
        # 40 connections per source address (all of 127/8 is loopback): mailfs limits
        # connections per client address (100, shared between its event loops)
        k = Client(port, source=f"127.0.0.{2 + i // 40}")
        k.login(user)
        k.ok("SELECT INBOX")
        k.s.sendall(b"i IDLE\r\n")
        k.read_until(b"\r\n")
        conns.append(k)
    time.sleep(1)
    after = rss_kb(server_pids())
    res["KB per idle connection"] = (after - before) / idle
    for k in conns:
        k.s.close()
    return res, len(hits.split()) - 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--mailfs", default=str(ROOT / "build" / "tools" / "mailfs"))
    ap.add_argument("--work", default="/tmp/mailfs-bench-imap")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_imap.py: run as root (Dovecot's privilege separation needs it)")
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    maildir = work / f"maildir-{a.count}"
    if not maildir.exists():
        sh(sys.executable, ROOT / "tools" / "gen_mail.py", "--count", a.count, "--format",
           "maildir", "--out", maildir, "--word", WORD, "--word-every", 1000,
           stderr=subprocess.DEVNULL)
    user = "bench"
    results = {}
    port, stop, master = start_dovecot(work, maildir, user)
    try:
        results["dovecot"] = measure(port, user, a.appends, a.idle, lambda: family(master))
    finally:
        stop()
    port, stop, pid = start_mailfs(work, a.mailfs, maildir, user)
    try:
        results["mailfs"] = measure(port, user, a.appends, a.idle, lambda: [pid])
    finally:
        stop()
    d, m = results["dovecot"][0], results["mailfs"][0]
    print(f"{a.count} messages; SEARCH TEXT matched {results['dovecot'][1]} (Dovecot) and "
          f"{results['mailfs'][1]} (mailfs) messages")
    print(f"{'measure':<26} {'Dovecot':>12} {'mailfs':>12} {'ratio':>8}  goal")
    for k in d:
        higher_better = k.endswith("/s")
        ratio = m[k] / d[k] if higher_better else (d[k] / m[k] if m[k] else float("inf"))
        unit = "" if higher_better or "KB" in k else " s"
        if k.startswith("QRESYNC"):  # issue 12's goals are absolute: <= 1 ms, <= 2 KB
            limit, what = (2, "KB") if k.endswith("KB") else (0.001, "s")
            print(f"{k:<26} {d[k]:>10.4g}{unit:2} {m[k]:>10.4g}{unit:2} {ratio:>8.2f}  "
                  f"mailfs <= {limit:g} {what} {'met' if m[k] <= limit else 'NOT met'}")
            continue
        goal = 10 if k == "SEARCH TEXT" else 2
        print(f"{k:<26} {d[k]:>10.4g}{unit:2} {m[k]:>10.4g}{unit:2} {ratio:>8.2f}  "
              f">= {goal} {'met' if ratio >= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
