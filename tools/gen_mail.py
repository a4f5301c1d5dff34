#!/usr/bin/env python3
"""gen_mail.py: generates realistic test mail as an mbox file or a Maildir.

usage: gen_mail.py --count N [--format mbox|maildir] --out PATH [--seed S]

Messages look like everyday mail: Received/Return-Path headers, plain text (most), text+HTML
alternatives (about 1 in 5) and attachments (about 1 in 10, up to ~800 KB); median about
3 KB, mean about 10 KB. mbox output uses mboxrd quoting ('>From '); Maildir output puts 80%
in cur/ with flags in the file names, the rest in new/.

(Re-created by the mount engineer after an accidental overwrite at 07:52 UTC; same options
as the original, see tools/bench_import.sh and tools/demo.)
"""
import argparse
import base64
import os
import random
import sys
import time

PEOPLE = [("Alice Martin", "alice@example.com"), ("Bob Stone", "bob@example.org"),
          ("Lena Vogel", "lena@mail.example.net"), ("Kofi Mensah", "kofi@example.org"),
          ("Gustav Berg", "gustav@example.com"), ("Eve Dupont", "eve@example.com"),
          ("Mia Rossi", "mia@example.net"), ("Yuki Tanaka", "yuki@example.org")]
WORDS = ("the of and to in is you that it he was for on are as with his they at be this have "
         "from or one had by but not what all were we when your can said there use an each which "
         "she do how their if will up other about out many then them these so some her would make "
         "like him into time has look two more go see number no way could people my than first "
         "water been call who its now find long down day did get come made may part meeting "
         "budget report project release deadline invoice review draft schedule proposal contract "
         "travel lunch server mailbox filesystem kernel backup patch build quarterly very just "
         "only over after where most little know").split()


def sentence(rng):
    w = [rng.choice(WORDS) for _ in range(rng.randint(5, 13))]
    return " ".join(w).capitalize() + "."


def text_body(rng, target):
    paras, size = [], 0
    while size < target:
        p = "\n".join(sentence(rng) for _ in range(rng.randint(1, 6)))
        paras.append(p)
        size += len(p) + 2
    return "\n\n".join(paras) + "\n"


def message(rng, i, when):
    frm, to = rng.sample(PEOPLE, 2)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    hdr = (f"Return-Path: <{frm[1]}>\n"
           f"Received: from mx{rng.randrange(10)}.example.net (mx.example.net "
           f"[192.0.2.{rng.randrange(1, 255)}])\n"
           f"\tby mail.example.com with ESMTPS id {rng.getrandbits(40):010x}\n"
           f"\tfor <{to[1]}>; {date}\n"
           f"From: {frm[0]} <{frm[1]}>\nTo: {to[0]} <{to[1]}>\n")
    if rng.random() < 0.2:
        cc = rng.choice(PEOPLE)
        hdr += f"Cc: {cc[0]} <{cc[1]}>\n"
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()
    hdr += (f"Subject: {subject}\nDate: {date}\nMessage-ID: <{i}.{rng.getrandbits(32):08x}"
            f"@example.com>\nMIME-Version: 1.0\n")
    target = int(min(rng.lognormvariate(7.8, 0.9), 60000))
    body = text_body(rng, target)
    kind = rng.random()
    if kind < 0.68:
        return hdr + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body
    b = f"=_{'alt' if kind < 0.9 else 'mix'}_{rng.getrandbits(48):012x}"
    if kind < 0.9:
        html = "<html><body>" + "".join(f"<p>{p}</p>" for p in body.split("\n\n")) + "</body></html>\n"
        return (hdr + f'Content-Type: multipart/alternative; boundary="{b}"\n\n'
                "This is a multi-part message in MIME format.\n\n"
                f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
                f"--{b}\nContent-Type: text/html; charset=utf-8\n\n{html}\n--{b}--\n")
    blob = base64.encodebytes(rng.randbytes(int(min(rng.lognormvariate(10.5, 1.2), 600000))))
    return (hdr + f'Content-Type: multipart/mixed; boundary="{b}"\n\n'
            "This is a multi-part message in MIME format.\n\n"
            f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
            f"--{b}\nContent-Type: application/octet-stream; name=\"file{i}.bin\"\n"
            f"Content-Disposition: attachment; filename=\"file{i}.bin\"\n"
            f"Content-Transfer-Encoding: base64\n\n{blob.decode()}\n--{b}--\n")


def main():
    ap = argparse.ArgumentParser(description="generate realistic test mail")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--format", choices=("mbox", "maildir"), default="mbox")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.count < 0:
        sys.exit("gen_mail.py: --count must be >= 0")
    rng = random.Random(a.seed)
    start = 1700000000
    if a.format == "mbox":
        with open(a.out, "wb") as f:
            for i in range(a.count):
                when = start + i * 97
                msg = message(rng, i, when)
                lines = []
                for line in msg.split("\n")[:-1]:
                    if line.lstrip(">").startswith("From "):
                        line = ">" + line
                    lines.append(line)
                f.write(("From gen@example.com " + time.asctime(time.gmtime(when)) + "\n"
                         + "\n".join(lines) + "\n\n").encode())
    else:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(a.out, sub), exist_ok=True)
        for i in range(a.count):
            when = start + i * 97
            msg = message(rng, i, when).encode()
            base = f"{when}.M{i}P{os.getpid()}.gen"
            if rng.random() < 0.8:
                flags = "".join(f for f, p in (("F", 0.05), ("R", 0.2), ("S", 0.9)) if rng.random() < p)
                path = os.path.join(a.out, "cur", f"{base}:2,{flags}")
            else:
                path = os.path.join(a.out, "new", base)
            with open(path, "wb") as f:
                f.write(msg)
            os.utime(path, (when, when))


if __name__ == "__main__":
    main()
