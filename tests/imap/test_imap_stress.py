"""A small version of imaptest's stress mode: several sessions change one mailbox at random
while each keeps a model of its view from the untagged responses alone; at the end every
model must equal what the server says (UIDs, sequence numbers and flags)."""
import random
import re

from imapfix import server  # noqa: F401 (fixture)

FETCH_RE = re.compile(r"\* (\d+) FETCH \((.*)\)$", re.S)


class Model:
    def __init__(self, conn):
        self.c = conn
        self.uids = []    # index = seq - 1; None while unknown
        self.flags = []   # set or None while unknown

    def apply(self, lines, seq_command):
        for l in lines:
            m = re.fullmatch(r"\* (\d+) EXISTS", l)
            if m:
                n = int(m.group(1))
                assert n >= len(self.uids), f"EXISTS went down: {l} with {len(self.uids)}"
                self.uids += [None] * (n - len(self.uids))
                self.flags += [None] * (n - len(self.flags))
                continue
            m = re.fullmatch(r"\* (\d+) EXPUNGE", l)
            if m:
                assert not seq_command, f"EXPUNGE during a command with sequence numbers: {l}"
                n = int(m.group(1))
                assert 1 <= n <= len(self.uids), l
                del self.uids[n - 1]
                del self.flags[n - 1]
                continue
            m = FETCH_RE.fullmatch(l)
            if m:
                n = int(m.group(1))
                assert 1 <= n <= len(self.uids), f"FETCH for unknown seq: {l}"
                u = re.search(r"UID (\d+)", m.group(2))
                if u:
                    uid = int(u.group(1))
                    assert self.uids[n - 1] in (None, uid), f"UID of {n} changed: {l}"
                    self.uids[n - 1] = uid
                f = re.search(r"FLAGS \(([^)]*)\)", m.group(2))
                if f:
                    self.flags[n - 1] = set(f.group(1).split()) - {"\\Recent"}

    def run(self, command, seq_command=False):
        u, t = self.c.run(command)
        self.apply(u, seq_command)
        return u, t


def test_random_changes_keep_every_view_consistent(server):
    rnd = random.Random(4242)
    for _ in range(5):
        server.deliver(b"Subject: seed\n\nx\n")
    models = []
    for _ in range(4):
        c = server.conn()
        m = Model(c)
        u, t = m.run("SELECT INBOX")
        models.append(m)
    for step in range(400):
        m = rnd.choice(models)
        n = len(m.uids)
        op = rnd.random()
        flag = rnd.choice(["\\Flagged", "\\Seen", "\\Answered", "kw1", "kw2"])
        if op < 0.25 and n:
            seq = rnd.randint(1, n)
            sign = rnd.choice("+-")
            silent = rnd.choice(["", ".SILENT"])
            u, t = m.run(f"STORE {seq} {sign}FLAGS{silent} ({flag})", seq_command=True)
            assert t.startswith("OK"), t  # OK [EXPUNGEISSUED] if the message is gone
            stored = "EXPUNGEISSUED" not in t
            if silent and stored and m.flags[seq - 1] is not None:
                # .SILENT: the client knows what it asked for; nobody tells it
                (m.flags[seq - 1].add if sign == "+" else m.flags[seq - 1].discard)(flag)
        elif op < 0.4 and n:
            uid = rnd.choice([x for x in m.uids if x] or [1])
            u, t = m.run(f"UID STORE {uid} +FLAGS ({flag})")
            assert t.startswith("OK"), t
        elif op < 0.55:
            u, t = m.run("APPEND INBOX (%s) {5+}\r\nhello" % rnd.choice(["", "\\Seen", "kw1"]))
            assert t.startswith("OK"), t
        elif op < 0.65 and n:
            seq = rnd.randint(1, n)
            u, t = m.run(f"STORE {seq} +FLAGS.SILENT (\\Deleted)", seq_command=True)
            if "EXPUNGEISSUED" not in t and m.flags[seq - 1] is not None:
                m.flags[seq - 1].add("\\Deleted")
            u, t = m.run("EXPUNGE")
            assert t.startswith("OK"), t
        elif op < 0.8 and n:
            u, t = m.run("FETCH 1:* (UID FLAGS)", seq_command=True)
            assert t.startswith(("OK", "NO [EXPUNGEISSUED]")), t
        elif op < 0.9:
            u, t = m.run("SEARCH ALL", seq_command=True)
            assert t.startswith("OK"), t
        else:
            m.run("NOOP")
    for m in models:
        m.run("NOOP")
        u, t = m.c.run("UID FETCH 1:* (FLAGS)")
        assert t.startswith("OK"), t
        truth = {}
        for l in u:
            f = FETCH_RE.fullmatch(l)
            if not f:
                continue
            seq = int(f.group(1))
            uid = int(re.search(r"UID (\d+)", f.group(2)).group(1))
            flags = set(re.search(r"FLAGS \(([^)]*)\)", f.group(2)).group(1).split()) - {"\\Recent"}
            truth[seq] = (uid, flags)
        assert len(truth) == len(m.uids), (len(truth), len(m.uids))
        for i, (uid, flags) in enumerate(zip(m.uids, m.flags)):
            tu, tf = truth[i + 1]
            assert uid in (None, tu), f"seq {i + 1}: model UID {uid}, server {tu}"
            assert flags is None or flags == tf, f"seq {i + 1}: model {flags}, server {tf}"
    # all sessions agree with each other
    views = [[int(x) for x in re.findall(r"UID (\d+)", " ".join(m.c.run("FETCH 1:* UID")[0]))]
             for m in models]
    assert all(v == views[0] for v in views), views
