#!/usr/bin/env python3
"""compare_dovecot_sort.py: SORT and THREAD answers of mailfs and Dovecot on the same mailboxes.

  sudo tools/compare_dovecot_sort.py [--corpus DIR] [--mailfs BIN] [--show N]

Makes one mailbox per mbox of the corpus's imaptest/ folder (their sort-* and thread* sets, each
message APPENDed with the date of its From_ line as INTERNALDATE) and one of every
single-message file of the corpus, on both servers; then asks each mailbox SORT by every key,
with and without REVERSE, and THREAD by both algorithms, and prints the answers that differ.
Uses tools/bench_imap.py's Dovecot setup (Debian's dovecot-imapd, private config, loopback).
By hand, not in CI. Exit status 0 when every answer is the same.
"""
import argparse
import email.utils
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_imap as b  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEYS = ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def mbox_messages(path):
    """(INTERNALDATE, bytes) of each message of an mbox."""
    out = []
    cur, date = None, None
    for line in path.read_bytes().split(b"\n"):
        if line.startswith(b"From "):
            if cur is not None:
                out.append((date, b"\n".join(cur).rstrip(b"\n") + b"\n"))
            parts = line.decode(errors="replace").split()
            try:  # From user@domain  Fri Feb 22 17:06:23 2008
                mon, day, hms, year = parts[3], int(parts[4]), parts[5], int(parts[6])
                date = f'"{day:02d}-{mon}-{year} {hms} +0000"'
            except (IndexError, ValueError):
                date = None
            cur = []
        elif cur is not None:
            cur.append(line)
    if cur is not None:
        out.append((date, b"\n".join(cur).rstrip(b"\n") + b"\n"))
    return out


def commands():
    for k in KEYS:
        yield f"SORT ({k}) UTF-8 ALL"
        yield f"SORT (REVERSE {k}) UTF-8 ALL"
    yield "SORT (SUBJECT DATE) UTF-8 ALL"
    yield "SORT (FROM REVERSE SIZE) UTF-8 ALL"
    yield "THREAD ORDEREDSUBJECT UTF-8 ALL"
    yield "THREAD REFERENCES UTF-8 ALL"


def answers(port, boxes):
    c = b.Client(port)
    c.login("bench")
    out = {}
    for name, msgs in boxes.items():
        if name != "INBOX":
            c.ok(f"CREATE {name}")
        for date, data in msgs:
            c.ok(f"APPEND {name} {date}" if date else f"APPEND {name}", data)
        c.ok(f"SELECT {name}")
        for cmd in commands():
            t = time.perf_counter()
            data = c.ok(cmd)
            line = [l for l in data.split(b"\r\n") if l.startswith((b"* SORT", b"* THREAD"))]
            out[(name, cmd)] = (line[0] if line else b"", time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--mailfs", default=str(ROOT / "build" / "tools" / "mailfs"))
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--work", default="/tmp/mailfs-compare-sort")
    ap.add_argument("--dump", help="write every answer of both servers to this file (JSON)")
    a = ap.parse_args()
    corpus = pathlib.Path(a.corpus)
    boxes = {}
    for p in sorted((corpus / "imaptest").glob("*.mbox")):
        if p.name.startswith(("sort", "thread")):
            boxes[re.sub(r"[^A-Za-z0-9]", "_", p.stem)] = mbox_messages(p)
    boxes["corpus"] = [('"01-Jan-2020 00:00:00 +0000"', p.read_bytes())
                       for p in b.corpus_messages(corpus)]
    dov, mfs = b.on_both(a.work, a.mailfs, lambda port: answers(port, boxes))
    if a.dump:
        import json
        pathlib.Path(a.dump).write_text(json.dumps(
            [[k[0], k[1], dov[k][0].decode(errors="replace"), mfs[k][0].decode(errors="replace")]
             for k in dov]))
    bad = 0
    for key in dov:
        if dov[key][0] != mfs[key][0]:
            bad += 1
            if bad <= a.show:
                print(f"== {key[0]}: {key[1]}")
                print(f"  dovecot: {dov[key][0][:800].decode(errors='replace')}")
                print(f"  mailfs:  {mfs[key][0][:800].decode(errors='replace')}")
    print(f"{len(dov)} answers compared over {len(boxes)} mailboxes, {len(dov) - bad} identical, "
          f"{bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
