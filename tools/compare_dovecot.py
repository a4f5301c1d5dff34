#!/usr/bin/env python3
"""compare_dovecot.py: ENVELOPE, BODYSTRUCTURE and BODY of every corpus message, mailfs vs Dovecot.

  sudo tools/compare_dovecot.py [--corpus DIR] [--mailfs BIN] [--show N]

APPENDs every single-message file of the corpus (files not starting with "From ") to both
servers, then fetches ENVELOPE, BODYSTRUCTURE and BODY from each and prints the messages whose
answers differ, item by item. Uses tools/bench_imap.py's Dovecot setup (Debian's
dovecot-imapd, private config, loopback). Exit status 0 when everything matches.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_imap as b  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fetch_all(port, files):
    c = b.Client(port)
    c.login("bench")
    c.ok("SELECT INBOX")
    for f in files:
        data = f.read_bytes()
        c.ok("APPEND INBOX", data)
    c.ok("SELECT INBOX")
    out = {}
    for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
        data = c.ok(f"UID FETCH 1:* ({item})")
        # split per message: "* N FETCH (UID u ITEM ...)\r\n"
        for m in re.finditer(rb"\* \d+ FETCH \((.*?)\)\r\n(?=\* \d+ FETCH|\Z)", data, re.S):
            body = m.group(1)
            uid = int(re.search(rb"UID (\d+)", body).group(1))
            val = re.sub(rb"UID \d+ ?", b"", body).strip()
            out.setdefault(uid, {})[item] = val
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--mailfs", default=str(ROOT / "build" / "tools" / "mailfs"))
    ap.add_argument("--show", type=int, default=10)
    ap.add_argument("--work", default="/tmp/mailfs-compare")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("compare_dovecot.py: run as root (Dovecot's privilege separation needs it)")
    files = b.corpus_messages(a.corpus)
    dov, mfs = b.on_both(a.work, a.mailfs, lambda port: fetch_all(port, files))
    bad = 0
    for i, f in enumerate(files, 1):
        diffs = [item for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY")
                 if dov.get(i, {}).get(item) != mfs.get(i, {}).get(item)]
        if diffs:
            bad += 1
            if bad <= a.show:
                print(f"== {f.relative_to(a.corpus)}: {', '.join(diffs)}")
                for item in diffs:
                    print(f"  dovecot {item}: {dov.get(i, {}).get(item, b'')[:600]!r}")
                    print(f"  mailfs  {item}: {mfs.get(i, {}).get(item, b'')[:600]!r}")
    print(f"{len(files)} messages compared, {len(files) - bad} identical, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
