"""The two views never disagree: seeded random operations, half through the mount and half
through IMAP, checked against a model of what should be there.

Four workers run in parallel, each on mailboxes of its own (so each worker's model is exact):
append, copy, move, expunge and flag changes on messages; create, rename and delete of
mailboxes. Each operation picks the mount or IMAP at random; flag changes and expunges through
the mount use the Maildir view (cur/ renames and unlinks) half the time. Every 50 operations a
worker stops and compares the mount (names, xattr flags, bytes, the names in cur/) and IMAP
(LIST, FETCH FLAGS and Message-ID) with its model. 10,000 operations in all; MAILFS_MODEL_OPS and MAILFS_MODEL_SEED
change that, and a failure prints the seed."""
import os
import random
import re
import socket
import subprocess
import threading
import time
import traceback

import pytest

from conftest import PASSWORD

OPS = int(os.environ.get("MAILFS_MODEL_OPS", "10000"))
SEED = int(os.environ.get("MAILFS_MODEL_SEED", "7"))
WORKERS = 4
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Work"]
MD_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "$Forwarded": "P", "\\Answered": "R",
              "\\Seen": "S", "\\Deleted": "T"}


def md_name(fn, flags):
    """The name in cur/ of the message file FN with FLAGS."""
    return fn[:-4] + ":2," + "".join(sorted(MD_LETTERS[f] for f in flags if f in MD_LETTERS))


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.n = 0

    def cmd(self, text, literal=None):
        self.n += 1
        tag = f"m{self.n}".encode()
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + b" {%d+}\r\n" % len(literal) + literal
                           + b"\r\n")
        lines = []
        while True:
            line = self.f.readline()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            while m:  # a literal inside an untagged response
                line += self.f.read(int(m.group(1)))
                more = self.f.readline()
                line += more
                m = re.search(rb"\{(\d+)\}\r\n$", more)
            if line.startswith(tag + b" "):
                assert b" OK " in line, f"{text!r}: {line!r}"
                return lines
            lines.append(line)


class Worker:
    def __init__(self, k, port, mnt, seed):
        self.k, self.mnt, self.rng = k, mnt, random.Random(seed)
        self.imap = Imap(port)
        self.imap.cmd(f'LOGIN alice "{PASSWORD}"')
        self.model = {}  # mailbox -> {message-id: set of flags}
        self.serial = 0
        self.ops = 0
        for i in range(2):
            self.create(f"w{k}/box{i}")

    # ---- helpers ------------------------------------------------------------------------
    def mid(self):
        self.serial += 1
        return f"<w{self.k}-{self.serial}@model>"

    def files(self, box, want=None):
        """{message-id: file name} of a mailbox directory in the mount. With WANT, waits (up to
        a second) until WANT is listed: a change made through IMAP reaches the mount through
        the change feed, within milliseconds but not synchronously."""
        d = os.path.join(self.mnt, box)
        deadline = time.monotonic() + 1.0
        while True:
            out = {}
            for fn in os.listdir(d):
                if fn.endswith(".eml") and not fn.startswith("."):
                    try:
                        with open(os.path.join(d, fn), "rb") as f:
                            m = re.search(rb"Message-ID: (<[^>]+>)", f.read(200))
                    except FileNotFoundError:
                        continue  # listed a moment before it went
                    assert m, f"{box}/{fn} holds no Message-ID"
                    out[m.group(1).decode()] = fn
            if want is None or want in out or time.monotonic() > deadline:
                return out
            time.sleep(0.005)

    def uid(self, box, mid):
        self.imap.cmd(f'SELECT "{box}"')
        lines = self.imap.cmd(f'UID SEARCH HEADER Message-ID "{mid}"')
        uids = [u for l in lines if l.startswith(b"* SEARCH") for u in l.split()[2:]]
        assert len(uids) == 1, f"{mid} in {box}: {lines!r}"
        return uids[0].decode()

    def pick(self):
        boxes = [b for b in self.model if self.model[b]]
        if not boxes:
            return None, None
        box = self.rng.choice(sorted(boxes))
        return box, self.rng.choice(sorted(self.model[box]))

    def create(self, box):
        if self.rng.random() < 0.5:
            os.makedirs(os.path.join(self.mnt, box), exist_ok=False)
        else:
            self.imap.cmd(f'CREATE "{box}"')
        self.model[box] = {}

    # ---- operations ---------------------------------------------------------------------
    def op_append(self, via_fs):
        box = self.rng.choice(sorted(self.model))
        mid = self.mid()
        body = f"Message-ID: {mid}\r\nSubject: model\r\n\r\n{'z' * self.rng.randint(0, 500)}\r\n"
        if via_fs:
            with open(os.path.join(self.mnt, box, f"m{self.serial}.eml"), "wb") as f:
                f.write(body.encode())
        else:
            self.imap.cmd(f'APPEND "{box}"', body.encode())
        self.model[box][mid] = set()

    def op_flags(self, via_fs):
        box, mid = self.pick()
        if not box:
            return
        flags = set(self.rng.sample(FLAGS, self.rng.randint(0, 3)))
        if via_fs and self.rng.random() < 0.5:  # a Maildir reader renames it in cur/
            fn = self.files(box, mid)[mid]
            cur = os.path.join(self.mnt, box, "cur")
            flags = {f for f in flags if f in MD_LETTERS} | (self.model[box][mid] - set(MD_LETTERS))
            os.rename(os.path.join(cur, md_name(fn, self.model[box][mid])),
                      os.path.join(cur, md_name(fn, flags)))
        elif via_fs:
            path = os.path.join(self.mnt, box, self.files(box, mid)[mid])
            os.setxattr(path, "user.mail.flags", " ".join(sorted(flags)).encode())
        else:
            uid = self.uid(box, mid)
            self.imap.cmd(f"UID STORE {uid} FLAGS.SILENT ({' '.join(sorted(flags))})")
        self.model[box][mid] = flags

    def op_move(self, via_fs, copy=False):
        box, mid = self.pick()
        others = [b for b in self.model if b != box and mid not in self.model[b]]
        if not box or not others:
            return
        dst = self.rng.choice(sorted(others))
        flags = self.model[box][mid]
        if via_fs:
            src = os.path.join(self.mnt, box, self.files(box, mid)[mid])
            target = os.path.join(self.mnt, dst, os.path.basename(src))
            if os.path.exists(target):
                return
            if copy:
                with open(src, "rb") as f:
                    data = f.read()
                with open(target, "wb") as f:
                    f.write(data)
                flags = set()  # a plain copy of the bytes carries no flags
            else:
                os.rename(src, target)
        else:
            uid = self.uid(box, mid)
            self.imap.cmd(f'UID {"COPY" if copy else "MOVE"} {uid} "{dst}"')
        self.model[dst][mid] = set(flags)
        if not copy:
            del self.model[box][mid]

    def op_expunge(self, via_fs):
        box, mid = self.pick()
        if not box:
            return
        if via_fs and self.rng.random() < 0.5:
            fn = self.files(box, mid)[mid]
            os.unlink(os.path.join(self.mnt, box, "cur", md_name(fn, self.model[box][mid])))
        elif via_fs:
            os.unlink(os.path.join(self.mnt, box, self.files(box, mid)[mid]))
        else:
            uid = self.uid(box, mid)
            self.imap.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
            self.imap.cmd(f"UID EXPUNGE {uid}")
        del self.model[box][mid]

    def op_mailbox(self, via_fs):
        r = self.rng.random()
        if r < 0.4 or len(self.model) < 2:
            self.serial += 1
            self.create(f"w{self.k}/new{self.serial}")
        elif r < 0.8:
            box = self.rng.choice(sorted(b for b in self.model if "/" in b))
            if any(b.startswith(box + "/") for b in self.model):
                return
            self.serial += 1
            new = f"w{self.k}/ren{self.serial}"
            self.imap.cmd("SELECT INBOX")  # leave the mailbox before it changes name
            if via_fs:
                os.rename(os.path.join(self.mnt, box), os.path.join(self.mnt, new))
            else:
                self.imap.cmd(f'RENAME "{box}" "{new}"')
            self.model[new] = self.model.pop(box)
        else:
            empty = [b for b in self.model if not self.model[b] and
                     not any(o.startswith(b + "/") for o in self.model)]
            if not empty or len(self.model) < 3:
                return
            box = self.rng.choice(sorted(empty))
            self.imap.cmd("SELECT INBOX")
            if via_fs:
                os.rmdir(os.path.join(self.mnt, box))
            else:
                self.imap.cmd(f'DELETE "{box}"')
            del self.model[box]

    # ---- the comparison -----------------------------------------------------------------
    def verify(self):
        """Compares both views with the model, allowing a second for the views to settle."""
        deadline = time.monotonic() + 1.0
        while True:
            try:
                return self.compare()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def compare(self):
        want = {b: {m: set(f) for m, f in msgs.items()} for b, msgs in self.model.items()}
        # the mount
        top = os.path.join(self.mnt, f"w{self.k}")
        seen = set()
        for root, dirs, _ in os.walk(top):
            for d in dirs:
                seen.add(os.path.relpath(os.path.join(root, d), self.mnt))
        assert seen == set(want), f"mount mailboxes {sorted(seen)} != model {sorted(want)}"
        for box, msgs in want.items():
            files = self.files(box)
            assert set(files) == set(msgs), f"mount {box}: {sorted(files)} != {sorted(msgs)}"
            for mid, fn in files.items():
                got = os.getxattr(os.path.join(self.mnt, box, fn), "user.mail.flags").decode()
                assert set(got.split()) == msgs[mid], f"mount {box} {mid}: flags {got!r}"
            cur = sorted(os.listdir(os.path.join(self.mnt, box, "cur")))
            names = sorted(md_name(fn, msgs[mid]) for mid, fn in files.items())
            assert cur == names, f"mount {box}/cur: {cur} != {names}"
        # IMAP
        lines = self.imap.cmd(f'LIST "" "w{self.k}/*"')
        names = {re.search(rb'"/" "?([^"\r]+)"?\r\n', l).group(1).decode() for l in lines
                 if l.startswith(b"* LIST ")}
        assert names == set(want), f"IMAP mailboxes {sorted(names)} != model {sorted(want)}"
        for box, msgs in want.items():
            self.imap.cmd(f'EXAMINE "{box}"')
            got = {}
            if msgs:
                for l in self.imap.cmd("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
                    m = re.search(rb"Message-ID: (<[^>]+>)", l)
                    fl = re.search(rb"FLAGS \(([^)]*)\)", l)
                    if m and fl:
                        got[m.group(1).decode()] = set(fl.group(1).decode().split()) - {"\\Recent"}
            assert got == msgs, f"IMAP {box}: {got} != model {msgs}"
        self.imap.cmd("SELECT INBOX")

    def run(self, n):
        ops = [self.op_append] * 4 + [self.op_flags] * 3 + [self.op_move] * 2 + \
              [lambda v: self.op_move(v, copy=True)] + [self.op_expunge] * 2 + [self.op_mailbox]
        for i in range(n):
            self.rng.choice(ops)(self.rng.random() < 0.5)
            self.ops += 1
            if i % 50 == 49:
                self.verify()
        self.verify()


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is absent")
def test_views_match_a_model(alice, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = alice.popen("serve", "--imap", f"127.0.0.1:{port}", "--mount", f"alice:{mnt}",
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while not (mnt / "INBOX").is_dir():
            assert proc.poll() is None and time.time() < deadline, "serve did not start"
            time.sleep(0.02)
        time.sleep(0.2)
        errors = []
        workers = []

        def run(k):
            try:
                w = Worker(k, port, str(mnt), SEED * 100 + k)
                workers.append(w)
                w.run(OPS // WORKERS)
            except Exception:  # reported with the seed below
                errors.append(f"worker {k}:\n{traceback.format_exc()}")

        threads = [threading.Thread(target=run, args=(k,)) for k in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        assert not errors, f"seed {SEED}: views diverged:\n" + "\n".join(errors)
        done = sum(w.ops for w in workers)
        assert done == OPS // WORKERS * WORKERS, f"seed {SEED}: only {done} operations ran"
        print(f"seed {SEED}: {done} operations, both views equal the model at every check")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
