"""The mailfs command: init, user, mailbox, import, export, deliver, and their bad input."""
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import CORPUS, MAILFS, PASSWORD, Mailfs, corpus_files


def err_line(r):
    return r.stderr.decode(errors="replace").strip()


def mailbox_counts(m, user="alice"):
    out = m.run("mailbox", "list", user).stdout.decode()
    rows = [line.split("\t") for line in out.splitlines()]
    return {r[0]: int(r[1]) for r in rows}


def maildir_messages(root):
    """{sha256: (bytes, flags-suffix)} of every message file under a maildir's cur/ and new/."""
    found = {}
    for sub in ("cur", "new"):
        d = pathlib.Path(root) / sub
        for p in sorted(d.iterdir()) if d.is_dir() else []:
            data = p.read_bytes()
            flags = p.name.split(":2,")[1] if ":2," in p.name else ""
            found.setdefault(hashlib.sha256(data).hexdigest(), []).append((data, flags))
    return found


# ---- init, user, mailbox ----------------------------------------------------------------

def test_init_makes_store_and_certificate(mailfs):
    assert (mailfs.store / "data.mdb").exists()
    assert (mailfs.store / "tls" / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE")
    assert oct((mailfs.store / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct(mailfs.store.stat().st_mode & 0o777) == "0o700"
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                          str(mailfs.store / "tls" / "cert.pem")], capture_output=True)
    assert b"localhost" in out.stdout


def test_init_modes(tmp_path):
    """The store directory is 0700 and its files 0600; parents it had to make are 0755 (what
    mkdir -p makes), so the account serve drops to can reach a store it owns."""
    old = os.umask(0o022)
    try:
        m = Mailfs(tmp_path / "a" / "b" / "store")
        m.run("init")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o755
    assert m.store.stat().st_mode & 0o777 == 0o700
    for f in ("data.mdb", "lock.mdb"):
        assert (m.store / f).stat().st_mode & 0o777 == 0o600, f


def test_init_tightens_an_existing_directory(tmp_path):
    """An existing empty directory (and tls/ in it) is made 0700 like a new one."""
    d = tmp_path / "store"
    (d / "tls").mkdir(parents=True)
    d.chmod(0o755)
    (d / "tls").chmod(0o777)
    Mailfs(d).run("init")
    assert d.stat().st_mode & 0o777 == 0o700
    assert (d / "tls").stat().st_mode & 0o777 == 0o700


def test_init_twice_refuses(mailfs):
    r = mailfs.run("init", check=False)
    assert r.returncode != 0
    assert "already holds a store" in err_line(r)


def test_init_with_given_certificate(tmp_path, mailfs):
    m2 = Mailfs(tmp_path / "other")
    cert, key = mailfs.store / "tls" / "cert.pem", mailfs.store / "tls" / "key.pem"
    m2.run("init", "--tls-cert", cert, "--tls-key", key)
    assert (m2.store / "tls" / "cert.pem").read_bytes() == cert.read_bytes()
    r = Mailfs(tmp_path / "third").run("init", "--tls-cert", cert, check=False)
    assert r.returncode != 0 and "go together" in err_line(r)
    assert not (tmp_path / "third").exists(), "a refused init must not leave a half store"


def test_missing_store_is_explained(tmp_path):
    r = Mailfs(tmp_path / "nothing").run("user", "list", check=False)
    assert r.returncode != 0
    assert "mailfs init" in err_line(r) and str(tmp_path / "nothing") in err_line(r)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user")
def test_unreadable_store_names_its_owner(tmp_path):
    """A store another user cannot open is not "no store": the error says why and what to do."""
    def as_nobody(store):
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(MAILFS), "--store", str(store), "user", "list"],
                           capture_output=True)
        assert r.returncode != 0
        line = err_line(r)
        assert "Permission denied" in line and "no store" not in line, line
        assert len(line.splitlines()) == 1, line
        return line
    # behind a parent nobody may enter (pytest's own directory is 0700)
    hidden = Mailfs(tmp_path / "store")
    hidden.run("init")
    assert "parents" in as_nobody(hidden.store)
    # reachable, but the store directory is root's (0700)
    top = pathlib.Path(tempfile.mkdtemp(prefix="mailfs-perm-", dir="/tmp"))
    try:
        top.chmod(0o755)
        m = Mailfs(top / "store")
        m.run("init")
        line = as_nobody(m.store)
        assert "belongs to uid 0" in line and "chown -R" in line, line
    finally:
        shutil.rmtree(top)


@pytest.mark.parametrize("args", [["bogus"], ["user"], ["user", "frob", "x"], ["mailbox", "list"],
                                  ["import", "alice"], ["export", "alice"], ["--store"],
                                  ["--nope"], ["deliver"]])
def test_bad_command_lines_give_one_line(alice, args):
    r = alice.run(*args, check=False)
    assert r.returncode != 0
    lines = err_line(r).splitlines()
    assert lines and (len(lines) == 1 or lines[0].startswith("usage")), lines
    assert b"Sanitizer" not in r.stderr


def test_help_everywhere(alice):
    assert b"import" in alice.run("--help").stdout
    for cmd in ("init", "user", "mailbox", "import", "export", "deliver"):
        assert b"usage: mailfs " + cmd.encode() in alice.run(cmd, "--help").stdout


def test_users(alice):
    assert alice.run("user", "list").stdout == b"alice\n"
    r = alice.run("user", "add", "alice", input=b"x\n", check=False)
    assert r.returncode != 0 and "already exists" in err_line(r)
    r = alice.run("user", "add", "../evil", input=b"x\n", check=False)
    assert r.returncode != 0 and "not a valid user name" in err_line(r)
    r = alice.run("user", "add", "bob", input=b"", check=False)
    assert r.returncode != 0 and "no password" in err_line(r)
    r = alice.run("user", "add", "bob", input=b"\n", check=False)
    assert r.returncode != 0 and "empty" in err_line(r)
    alice.run("user", "add", "bob", input=b"pw\n")
    alice.run("user", "passwd", "bob", input=b"pw2\n")
    assert alice.run("user", "list").stdout == b"alice\nbob\n"
    alice.run("user", "del", "bob")
    assert alice.run("user", "list").stdout == b"alice\n"
    r = alice.run("user", "del", "bob", check=False)
    assert r.returncode != 0 and "no user 'bob'" in err_line(r)
    # the password is never stored in clear
    assert PASSWORD.encode() not in (alice.store / "data.mdb").read_bytes()


def test_default_mailboxes_and_changes(alice):
    counts = mailbox_counts(alice)
    assert set(counts) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    out = alice.run("mailbox", "list", "alice").stdout.decode()
    assert "Sent\t0\t0\t0\t\\Sent" in out
    alice.run("mailbox", "create", "alice", "Work/Projects")
    alice.run("mailbox", "rename", "alice", "Work", "Job")
    assert {"Job", "Job/Projects"} <= set(mailbox_counts(alice))
    r = alice.run("mailbox", "delete", "alice", "Job", check=False)
    assert r.returncode != 0 and "child" in err_line(r)
    r = alice.run("mailbox", "create", "alice", "a//b", check=False)
    assert r.returncode != 0 and "a//b" in err_line(r)
    r = alice.run("mailbox", "delete", "alice", "INBOX", check=False)
    assert r.returncode != 0
    alice.run("mailbox", "delete", "alice", "Job/Projects")
    r = alice.run("mailbox", "list", "nobody", check=False)
    assert r.returncode != 0 and "no user 'nobody'" in err_line(r)


# ---- deliver ----------------------------------------------------------------------------

def test_deliver(alice):
    msg = b"From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\n\nhello\n"
    alice.run("deliver", "alice", input=msg)
    alice.run("deliver", "alice", "--mailbox", "Lists/new", input=b"Subject: x\n\ny\n")
    counts = mailbox_counts(alice)
    assert counts["INBOX"] == 1 and counts["Lists/new"] == 1
    out = alice.store.parent / "out"
    alice.run("export", "alice", out, "--mailbox", "INBOX")
    (only,) = maildir_messages(out).values()
    assert only[0][0] == b"Subject: hi\n\nhello\n", "the From_ line is dropped, the rest kept"
    r = alice.run("deliver", "nobody", input=b"x", check=False)
    assert r.returncode == 67, "EX_NOUSER"
    r = alice.run("deliver", "alice", "--mailbox", "a//b", input=b"x", check=False)
    assert r.returncode == 65


def test_deliver_temporary_failure_is_75(tmp_path):
    r = Mailfs(tmp_path / "none").run("deliver", "alice", input=b"x", check=False)
    assert r.returncode == 75, "a missing store is temporary for the MTA"


# ---- import and export ------------------------------------------------------------------

def test_import_maildir_with_flags_and_subfolders(alice, tmp_path):
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Work.Projects/cur",
                "Nested/cur", "Nested/new"):
        (md / sub).mkdir(parents=True)
    (md / "dovecot-keywords").write_text("0 $Work\n1 Later\n")
    (md / "cur" / "1.M1.host:2,FSa").write_bytes(b"Subject: 1\n\none\n")
    (md / "new" / "2.M2.host").write_bytes(b"Subject: 2\n\ntwo\n")
    (md / ".Sent" / "cur" / "3.M3.host:2,S").write_bytes(b"Subject: 3\n\nthree\n")
    (md / ".Work.Projects" / "cur" / "4.M4.host:2,RT").write_bytes(b"Subject: 4\n\nfour\n")
    (md / "Nested" / "cur" / "5.M5.host:2,").write_bytes(b"Subject: 5\n\nfive\n")
    r = alice.run("import", "alice", md)
    assert b"imported 5 messages" in r.stdout
    counts = mailbox_counts(alice)
    assert counts["INBOX"] == 2 and counts["Sent"] == 1 and counts["Work/Projects"] == 1
    assert counts["INBOX/Nested"] == 1
    out = tmp_path / "out"
    alice.run("export", "alice", out)
    inbox = maildir_messages(out)
    flags = {v[0][0]: v[0][1] for v in inbox.values()}
    assert flags[b"Subject: 1\n\none\n"] == "FSa"
    assert (out / "dovecot-keywords").read_text().split() == ["0", "$Work"]
    assert maildir_messages(out / ".Work.Projects")
    assert [v[0][1] for v in maildir_messages(out / ".Work.Projects").values()] == ["RT"]
    # the same input again adds nothing
    r = alice.run("import", "alice", md)
    assert b"imported 0 messages" in r.stdout and b"5 already in the mailbox" in r.stdout


def test_import_options_anywhere_and_bad_paths(alice, tmp_path):
    f = tmp_path / "a.eml"
    f.write_bytes(b"Subject: a\n\na\n")
    alice.run("import", "--mailbox", "X", "alice", f)
    alice.run("import", "alice", f, "--mailbox", "Y")
    counts = mailbox_counts(alice)
    assert counts["X"] == 1 and counts["Y"] == 1
    r = alice.run("import", "alice", tmp_path / "missing", check=False)
    assert r.returncode != 0 and "missing" in err_line(r)
    r = alice.run("import", "alice", f, "--mailbox", "bad//name", check=False)
    assert r.returncode != 0 and "bad//name" in err_line(r)


def test_mbox_quoting_and_content_length(alice, tmp_path):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\n>From here\n>>From there\n\n"
                     b"From c@d Tue Jan  2 00:00:00 2024\nSubject: 2\nStatus: RO\nX-Status: F\n\nbye\n")
    alice.run("import", "alice", mbox, "--mailbox", "M")
    out = tmp_path / "out"
    alice.run("export", "alice", out, "--mailbox", "M")
    msgs = {v[0][0]: v[0][1] for v in maildir_messages(out).values()}
    assert msgs[b"Subject: 1\n\nFrom here\n>From there\n"] == ""
    assert msgs[b"Subject: 2\nStatus: RO\nX-Status: F\n\nbye\n"] == "FS"
    # mbox export quotes again, and the file reads back to the same messages
    back = tmp_path / "back.mbox"
    alice.run("export", "alice", back, "--format", "mbox", "--mailbox", "M")
    assert b"\n>From here\n>>From there\n" in back.read_bytes()
    alice.run("import", "alice", back, "--mailbox", "M2")
    out2 = tmp_path / "out2"
    alice.run("export", "alice", out2, "--mailbox", "M2")
    assert set(maildir_messages(out2)) == set(maildir_messages(out))

    cl = tmp_path / "cl.mbox"
    cl.write_bytes(b"From x Mon Jan  1 00:00:00 2024\nContent-Length: 12\n\nFrom inside\n\n"
                   b"From y Mon Jan  1 00:00:00 2024\nSubject: y\n\ny\n")
    alice.run("import", "alice", cl, "--mailbox", "CL")
    assert mailbox_counts(alice)["CL"] == 2


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_corpus_round_trip(alice, tmp_path):
    """Every corpus file imports; every single message exports byte-identically; a second
    round trip (export -> import -> export) changes nothing, flags included."""
    files = corpus_files()
    assert len(files) > 600
    r = alice.run("import", "alice", CORPUS, "--mailbox", "Corpus", timeout=600)
    assert r.returncode == 0, err_line(r)
    out1 = tmp_path / "out1"
    alice.run("export", "alice", out1, "--mailbox", "Corpus", timeout=600)
    exported = maildir_messages(out1)
    singles = [f for f in files if not f.read_bytes().startswith(b"From ")]
    missing = [str(f) for f in singles if hashlib.sha256(f.read_bytes()).hexdigest() not in exported]
    assert not missing, f"not exported byte-identically: {missing[:5]}"
    assert len(exported) >= len(singles)
    # and again: the same bytes with the same flags (mbox Status: headers gave some)
    alice.run("import", "alice", out1, "--mailbox", "Corpus2", timeout=600)
    out2 = tmp_path / "out2"
    alice.run("export", "alice", out2, "--mailbox", "Corpus2", timeout=600)
    assert maildir_messages(out2) == exported
    counts = mailbox_counts(alice)
    assert counts["Corpus"] == counts["Corpus2"] == sum(len(v) for v in exported.values())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_corpus_mbox_files_split(alice, tmp_path):
    """Known mbox files of the corpus split into the right number of messages."""
    # content-length.mbox.txt: 29 messages; some Content-Length values are wrong and some From_
    # lines have no date and no blank line before them, but a header line after them
    cases = {"imaptest/fetch-body.mbox": 4, "imaptest/search-date.mbox": 16,
             "mimekit/mbox/content-length.mbox.txt": 29, "laminas-mail/test.mbox/INBOX": 7,
             "sisimai/mailbox/mbox-0": 37, "mox/imaptest/imaptest.mbox": 48}
    for rel, n in cases.items():
        name = rel.replace("/", "-").replace(".", "-")
        alice.run("import", "alice", CORPUS / rel, "--mailbox", name)
        got = mailbox_counts(alice)[name]
        assert got == n, f"{rel}: {got} messages, expected {n}"


def make_mbox(path, count, size=2000):
    with open(path, "wb") as f:
        for i in range(count):
            body = (f"line {i} of the body, some words to fill it up\n" * (size // 48)).encode()
            f.write(b"From gen@example.com Mon Jan  1 00:00:00 2024\n")
            f.write(f"Subject: message {i}\nMessage-ID: <{i}@gen>\n\n".encode() + body + b"\n")


def test_kill_during_import_loses_nothing_reported(alice, tmp_path):
    src = tmp_path / "big.mbox"
    make_mbox(src, 40000)
    p = alice.popen("import", "alice", src, "--mailbox", "Big", "--verbose",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reported = 0
    for line in p.stdout:
        if line.startswith(b"committed"):
            reported = int(line.split(b"(")[1].split()[0])
            if reported >= 8000:
                break
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert reported >= 8000, "the import finished before it could be killed"
    got = mailbox_counts(alice)["Big"]
    assert got >= reported, f"{reported} reported imported but only {got} in the store"
    # running it again completes the import without doubling anything
    r = alice.run("import", "alice", src, "--mailbox", "Big", timeout=600)
    assert mailbox_counts(alice)["Big"] == 40000, r.stdout


def test_import_shows_progress_on_a_terminal(alice, tmp_path):
    src = tmp_path / "p.mbox"
    make_mbox(src, 300)
    cmd = f"'{MAILFS}' import alice '{src}' --mailbox P"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=alice.env, capture_output=True,
                       timeout=120)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out
    assert "100.0%" in out and "300 messages" in out and "[####" in out, out
    assert "msg/s" in out and "MB/s" in out and "elapsed" in out, out
    # the line is redrawn in place (carriage return, erase to the end) and ended once
    assert "\r\x1b[K" in out and out.count("imported 300 messages") == 1, out


def test_import_and_export_progress_lines_when_not_a_terminal(alice, tmp_path):
    """Without a terminal (a log, a pipe, cron): plain lines on stderr, never carriage returns,
    the first batch always; stdout keeps only the summary."""
    src = tmp_path / "p.mbox"
    make_mbox(src, 1200)
    r = alice.run("import", "alice", src, "--mailbox", "P")
    err = r.stderr.decode()
    lines = err.splitlines()
    assert lines and all(l.startswith("mailfs: import: ") for l in lines), err
    assert "\r" not in err and "messages" in lines[0] and "% " in lines[0], err
    assert r.stdout.decode().startswith("imported 1200 messages"), r.stdout
    r = alice.run("export", "alice", tmp_path / "out", "--mailbox", "P")
    err = r.stderr.decode()
    lines = err.splitlines()
    assert lines and lines[0].startswith("mailfs: export: ") and "512 messages" in lines[0], err
    assert "elapsed" in lines[0] and "\r" not in err, err
    assert r.stdout.decode().startswith("exported 1200 messages"), r.stdout


def test_full_disk_gives_clear_error_and_keeps_the_store(tmp_path):
    """On a 24 MiB filesystem an import runs out of space: a clear error, and the store still
    opens with every message it reported committed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "small"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        m = Mailfs(disk / "store")
        m.run("init")
        m.run("user", "add", "alice", input=b"pw\n")
        src = tmp_path / "big.mbox"
        make_mbox(src, 12000, size=4000)  # ~50 MB: twice the disk
        r = m.run("import", "alice", src, "--verbose", check=False, timeout=600)
        assert r.returncode != 0
        err = err_line(r)
        assert "no space left" in err, err
        reported = sum(int(l.split()[1]) for l in r.stdout.decode().splitlines()
                       if l.startswith("committed"))
        got = mailbox_counts(m)["INBOX"]
        assert got == reported > 0, (got, reported)
        # and the store still takes a small write once space is freed elsewhere: here it just
        # must not be damaged
        m.run("mailbox", "list", "alice")
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_check_after_everything(alice, tmp_path):
    """After imports, deliveries, copies of the same bytes, mailbox renames and deletes, and a
    user deletion, every invariant holds."""
    src = tmp_path / "m.mbox"
    make_mbox(src, 500)
    alice.run("import", "alice", src, "--mailbox", "A/B")
    alice.run("import", "alice", src, "--mailbox", "C")  # same bodies, shared
    alice.run("deliver", "alice", input=b"Subject: x\n\ny\n")
    alice.run("mailbox", "rename", "alice", "A", "Z")
    alice.run("mailbox", "delete", "alice", "C")
    alice.run("user", "add", "bob", input=b"pw\n")
    alice.run("import", "bob", src)
    alice.run("user", "del", "bob")
    r = alice.run("check")
    assert b"is consistent" in r.stdout and b"501 messages" in r.stdout, r.stdout
    r = alice.run("check", "extra", check=False)
    assert r.returncode != 0 and "unexpected argument" in err_line(r)


def test_hot_backup_while_importing(alice, tmp_path):
    src = tmp_path / "big.mbox"
    make_mbox(src, 20000)
    p = alice.popen("import", "alice", src, "--mailbox", "Big", "--verbose",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in p.stdout:
        if line.startswith(b"committed"):
            break
    dest = tmp_path / "backup"
    alice.run("backup", dest)
    p.wait(timeout=300)
    copy = Mailfs(dest)
    r = copy.run("check")
    assert b"is consistent" in r.stdout
    n = mailbox_counts(copy)["Big"]
    assert 0 < n <= 20000
    assert (dest / "tls" / "key.pem").exists()
    # the copy is compacted: no larger than the live store
    assert (dest / "data.mdb").stat().st_size <= (alice.store / "data.mdb").stat().st_size
    r = alice.run("backup", dest, check=False)
    assert r.returncode != 0 and "not an empty directory" in err_line(r)
