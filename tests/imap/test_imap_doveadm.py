"""Dovecot's doveadm as an IMAP client of mailfs (its imapc backend with mod-sequences): a full
backup of a user out of mailfs, an incremental one after changes on both of mailfs's sides
(the mount and IMAP) and through deliver, then a two-way sync; each time the copy is compared
with mailfs message by message (bytes, flags, keywords, INTERNALDATE). Dovecot runs privately:
its own config in a temporary directory, no listener, only its auth service for doveadm."""
import email.utils
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import PASSWORD, wait_for
from imapfix import Conn, start_with_mount

DOVEADM = "/usr/bin/doveadm"
DOVECOT = "/usr/sbin/dovecot"


def ensure_dovecot():
    if os.path.exists(DOVEADM) and os.path.exists(DOVECOT):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("doveadm is not installed and cannot be installed here (needs root and apt)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dovecot-core"], env=env, check=True,
                   capture_output=True, timeout=600)


class Dovecot:
    """A private Dovecot whose only job is doveadm's: imapc to mailfs's PORT as alice."""

    def __init__(self, port):
        # Dovecot drops to the mail user, who cannot enter pytest's 0700 tmp_path
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mailfs-dovecot-"))
        self.home = self.dir / "home"
        for d in ("base", "state", "home"):
            (self.dir / d).mkdir(parents=True)
        shutil.chown(self.home, "mail", "mail")
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(f"""base_dir = {self.dir}/base
state_dir = {self.dir}/state
log_path = {self.dir}/log
protocols =
ssl = no
first_valid_uid = 1
mail_home = {self.home}/%u
mail_location = maildir:~/Maildir
mail_uid = mail
mail_gid = mail
imapc_host = 127.0.0.1
imapc_port = {port}
imapc_user = alice
imapc_password = {PASSWORD}
imapc_features = modseq rfc822.size fetch-headers
imapc_ssl = no
passdb {{
  driver = static
  args = password=unused
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={self.home}/%u
}}
namespace inbox {{
  inbox = yes
  prefix =
  separator = /
}}
service anvil {{
  chroot =
}}
""")
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True, timeout=30)
        assert wait_for(lambda: (self.dir / "base" / "auth-userdb").exists(), timeout=10)

    def stop(self):
        subprocess.run([DOVECOT, "-c", str(self.conf), "stop"], timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def doveadm(self, *args, check=True):
        r = subprocess.run([DOVEADM, "-c", str(self.conf), *args], capture_output=True,
                           timeout=300)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        assert not check or r.returncode == 0, f"doveadm {' '.join(args)} exited {r.returncode}:\n{out}\n" \
            + (self.dir / "log").read_text(errors="replace")[-3000:]
        return r

    def messages(self):
        """{(mailbox, Message-ID): (bytes, flags, date)} of the local copy."""
        out = {}
        for mb in self.doveadm("mailbox", "list", "-u", "alice").stdout.decode().split():
            r = self.doveadm("fetch", "-u", "alice", "hdr.message-id flags date.received text",
                             "mailbox", mb, "all")
            for rec in r.stdout.decode("utf-8", errors="surrogateescape").split("\f\n"):
                if not rec.strip():
                    continue
                m = re.match(r"hdr\.message-id: (.*)\nflags: (.*)\ndate\.received: (.*)\ntext:\n"
                             r"(.*)", rec, re.S)
                assert m, rec[:300]
                text = m.group(4).encode("utf-8", errors="surrogateescape")
                out[(mb, m.group(1).strip())] = (norm(text), flagset(m.group(2)), m.group(3))
        return out


def norm(b):
    return b.replace(b"\r\n", b"\n").rstrip(b"\n")


def flagset(s):
    return frozenset(f for f in s.split() if f != "\\Recent")


def mailfs_messages(c):
    """The same from mailfs over IMAP, every mailbox."""
    out = {}
    boxes = [re.search(r'"/" "?([^"]*)"?$', l).group(1) for l in c.ok('LIST "" "*"')
             if l.startswith("* LIST")]
    for mb in boxes:
        if any(l.startswith("* 0 EXISTS") for l in c.ok(f'EXAMINE "{mb}"')):
            continue
        for l in c.ok("FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[])"):
            if " FETCH " not in l:
                continue
            flags = re.search(r"FLAGS \(([^)]*)\)", l).group(1)
            date = re.search(r'INTERNALDATE "([^"]*)"', l).group(1)
            mid = re.search(r"Message-ID: *(\S+)", l, re.I).group(1)
            body = l[l.rindex("BODY[] {"):]
            body = body[body.index("}\r\n") + 3:-1].encode()
            out[(mb, mid)] = (norm(body), flagset(flags), date)
    return out


def same_dates(dovecot_date, imap_date):
    """doveadm prints the received date in local time 'YYYY-MM-DD HH:MM:SS'; IMAP with zone."""
    t_imap = email.utils.mktime_tz(email.utils.parsedate_tz(
        re.sub(r"^(\d+)-(\w+)-(\d+)", r"\1 \2 \3", imap_date)))
    t_dov = time.mktime(time.strptime(dovecot_date, "%Y-%m-%d %H:%M:%S"))
    return abs(t_imap - t_dov) < 1


def compare(dov, c):
    got = mailfs_messages(c)
    local = dov.messages()
    assert set(local) == set(got), (sorted(set(got) - set(local)), sorted(set(local) - set(got)))
    for k, (body, flags, date) in got.items():
        lb, lf, ld = local[k]
        assert lb == body, (k, lb[:200], body[:200])
        assert lf == flags, (k, lf, flags)
        assert same_dates(ld, date), (k, ld, date)
    return got


def msg(n, extra=""):
    return (f"From: sender{n}@example.org\nTo: alice@example.org\nSubject: message {n}\n"
            f"Message-ID: <m{n}@example.org>\nDate: Mon, 1 Jul 2024 10:0{n % 10}:00 +0000\n"
            f"{extra}\nbody of message {n}\n").encode()


@pytest.fixture
def served(alice, tmp_path):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: this test changes mail through the mount too")
    ensure_dovecot()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc, port = start_with_mount(alice, mnt)
    dov = Dovecot(port)
    yield alice, mnt, port, dov
    dov.stop()
    proc.terminate()
    proc.wait(10)


def test_doveadm_backup_incremental_and_sync(served):
    alice, mnt, port, dov = served
    c = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
    c.ok(f'LOGIN alice "{PASSWORD}"')
    for n in range(1, 6):
        alice.run("deliver", "alice", input=msg(n))
    c.ok("CREATE Work")
    for n in range(6, 8):
        m = msg(n).replace(b"\n", b"\r\n")
        c.send(b'a APPEND Work (\\Flagged $Project) "02-Jul-2024 09:30:00 +0200" {%d+}\r\n'
               % len(m) + m + b"\r\n")
        assert c.wait("a")[1].startswith("OK")
    c.ok("SELECT INBOX")
    c.ok("STORE 2 +FLAGS (\\Seen $Later)")

    # 1. a full backup
    dov.doveadm("backup", "-R", "-u", "alice", "imapc:")
    assert len(compare(dov, c)) == 7

    # 2. changes on every side of mailfs, then an incremental backup
    inbox = mnt / "INBOX"
    names = sorted(os.listdir(inbox))
    os.setxattr(inbox / names[0], "user.mail.flags", b"\\Answered $Done")  # the mount
    (mnt / "Work" / "new.eml").write_bytes(msg(8))                         # the mount
    c.ok("SELECT INBOX")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")                             # IMAP
    c.ok("EXPUNGE")
    c.ok("STORE 1 -FLAGS (\\Seen)")
    alice.run("deliver", "alice", input=msg(9))                           # deliver
    dov.doveadm("backup", "-R", "-u", "alice", "imapc:")
    got = compare(dov, c)
    assert len(got) == 8 and ("INBOX", "<m3@example.org>") not in got
    assert got[("Work", "<m8@example.org>")][0] == norm(msg(8))

    # 3. a two-way sync: changes in the copy reach mailfs, and mailfs's reach the copy
    dov.doveadm("flags", "add", "-u", "alice", "\\Flagged", "mailbox", "INBOX",
                "header", "Message-ID", "<m4@example.org>")
    dov.doveadm("expunge", "-u", "alice", "mailbox", "Work", "header", "Message-ID",
                "<m6@example.org>")
    alice.run("deliver", "alice", input=msg(10))
    c.ok("SELECT Work")
    c.ok("STORE 1:* +FLAGS (\\Seen)")
    r = dov.doveadm("sync", "-R", "-u", "alice", "imapc:", check=False)
    if r.returncode != 0:
        pytest.fail("doveadm sync (two-way) failed:\n" + r.stdout.decode(errors="replace") +
                    r.stderr.decode(errors="replace"))
    got = compare(dov, c)
    assert "\\Flagged" in got[("INBOX", "<m4@example.org>")][1]
    assert ("Work", "<m6@example.org>") not in got and ("INBOX", "<m10@example.org>") in got
    assert all("\\Seen" in f for (mb, _), (_, f, _) in got.items() if mb == "Work")
    out = alice.run("check").stdout.decode()
    assert "is consistent" in out, out
