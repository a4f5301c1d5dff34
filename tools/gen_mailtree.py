#!/usr/bin/env python3
"""gen_mailtree.py: generates a synthetic mail tree for benchmarks: COUNT messages in FOLDERS folders.

Writes OUT/<folder>/<0000000001>.eml (names as the mount shows them after an import, so the
native tree and the mount can be compared file for file). Sizes follow a log-normal curve
(median about 3 KB, a tail of base64 attachments up to 2 MB; about 5 KB on average, like a
real mailbox). One message in 100 contains the word WORD (default "zanzibar") for grep.

usage: gen_mailtree.py OUT [--count 50000] [--folders 20] [--seed 1] [--word zanzibar]
"""
import argparse
import base64
import email.utils
import os
import random
import sys

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have "
         "from or one had by word but not what all were we when your can said there use an each "
         "which she do how their if will up other about out many then them these so some her "
         "would make like him into time has look two more write go see number no way could "
         "people my than first water been call who oil its now find long down day did get come "
         "made may part meeting budget report project release deadline invoice review").split()
FOLDERS = ["INBOX", "Sent", "Archive", "Drafts", "Trash", "Junk"] + \
    [f"Work/P{i:02d}" for i in range(1, 100)]


def paragraph(rng, n):
    return "\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(max(1, n)))


def message(rng, i, word):
    size = min(int(rng.lognormvariate(8.0, 1.0)), 2_000_000)
    date = email.utils.formatdate(1_600_000_000 + i * 600 + rng.randrange(600))
    hdr = (f"Return-Path: <user{rng.randrange(500)}@example.org>\n"
           f"Received: from mx{rng.randrange(9)}.example.org (mx.example.org [192.0.2.{rng.randrange(250)}])\n"
           f"\tby mail.example.com with ESMTPS id {rng.getrandbits(48):012x}\n"
           f"\tfor <me@example.com>; {date}\n"
           f"Message-ID: <{rng.getrandbits(64):016x}.{i}@example.org>\n"
           f"Date: {date}\n"
           f"From: User {rng.randrange(500)} <user{rng.randrange(500)}@example.org>\n"
           f"To: Me <me@example.com>\n"
           f"Subject: {' '.join(rng.choice(WORDS) for _ in range(6))}\n"
           "MIME-Version: 1.0\n")
    text = paragraph(rng, min(size, 6000) // 80)
    if i % 100 == 7:
        text += f"\nthe {word} item is on the list\n"
    if size <= 8000:
        return (hdr + "Content-Type: text/plain; charset=utf-8\n\n" + text + "\n").encode()
    blob = base64.encodebytes(rng.randbytes(size * 3 // 4)).decode()
    b = f"b{rng.getrandbits(40):010x}"
    return (hdr + f'Content-Type: multipart/mixed; boundary="{b}"\n\n'
            f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
            f"--{b}\nContent-Type: application/pdf; name=\"doc{i}.pdf\"\n"
            f"Content-Transfer-Encoding: base64\n\n{blob}--{b}--\n").encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--word", default="zanzibar")
    a = ap.parse_args()
    if a.count < 1 or not 1 <= a.folders <= len(FOLDERS):
        sys.exit(f"gen_mailtree.py: --count must be >= 1 and --folders 1..{len(FOLDERS)}")
    rng = random.Random(a.seed)
    folders = FOLDERS[:a.folders]
    uid = {f: 0 for f in folders}
    total = 0
    for i in range(a.count):
        f = folders[i % len(folders)]
        uid[f] += 1
        d = os.path.join(a.out, f)
        os.makedirs(d, exist_ok=True)
        data = message(rng, i, a.word)
        path = os.path.join(d, f"{uid[f]:010d}.eml")
        with open(path, "wb") as fh:
            fh.write(data)
        # INTERNALDATE-like mtimes, so the native tree and the mount look alike
        t = 1_600_000_000 + i * 600
        os.utime(path, (t, t))
        total += len(data)
    print(f"{a.count} messages, {total / 1e6:.1f} MB in {len(folders)} folders under {a.out}")


if __name__ == "__main__":
    main()
