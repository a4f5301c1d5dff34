#!/usr/bin/env python3
"""gen_mail.py: makes a reproducible corpus of realistic mail for demos and benchmarks.

Sizes and structure follow what a typical mailbox holds: mostly short plain-text mail, some
multipart/alternative (text + HTML), some with base64 attachments (lognormal sizes, a long tail
up to 4 MiB), threads with In-Reply-To and References, encoded-word subjects, a few
mailing-list messages. The same seed gives the same bytes. One message in --word-every
(default 1000) contains --word (default "xylophonequartz"), for grep and SEARCH benchmarks.

  gen_mail.py --count N --out PATH [--format mbox|maildir|tree] [--folders K] [--seed S]
              [--word W] [--word-every N]

  mbox     one mbox file at PATH (mboxrd quoting)
  maildir  a Maildir at PATH (cur/ with flags in the names)
  tree     PATH/FOLDER/%010d.eml in K folders (INBOX, Sent, Archive, Drafts, Trash, Junk,
           Work/P01, ...), named as the mount names them after an import, mtime = arrival
"""
import argparse
import base64
import os
import random
import sys
import time

WORDS = ("the a of to and in is it for on that with as was at by be this have from or one had "
         "not but what all were when we there can an your which their said if do will each about "
         "how up out them then she many some so these would other into has more her two like him "
         "see time could no make than first been its who now people my made over did down only way "
         "find use may water long little very after words called just where most know meeting "
         "budget quarterly report invoice project deadline review draft release server backup "
         "mailbox filesystem schedule lunch travel contract proposal kernel patch build").split()
NAMES = ["Alice Martin", "Bob Chen", "Carla Rossi", "Dmitri Ivanov", "Eve Dupont", "Farah Khan",
         "Gustav Berg", "Hana Sato", "Ivan Petrov", "Julia Souza", "Kofi Mensah", "Lena Vogel"]
FOLDERS = ["INBOX", "Sent", "Archive", "Drafts", "Trash", "Junk"] + \
    [f"Work/P{i:02d}" for i in range(1, 100)]


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def paragraph_text(rng, size):
    lines, total = [], 0
    while total < size:
        line = words(rng, rng.randint(6, 13)).capitalize() + "."
        lines.append(line)
        total += len(line) + 1
        if rng.random() < 0.15:
            lines.append("")
    return "\n".join(lines) + "\n"


def address(rng):
    name = rng.choice(NAMES)
    user = name.split()[0].lower()
    return name, f"{user}@{rng.choice(['example.com', 'example.org', 'mail.example.net'])}"


def header_block(rng, i, date, subject, extra):
    fname, faddr = address(rng)
    tname, taddr = address(rng)
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(date))
    h = [f"Return-Path: <{faddr}>",
         f"Received: from mx{rng.randint(1, 9)}.example.net (mx.example.net "
         f"[192.0.2.{rng.randint(1, 254)}])\n\tby mail.example.com with ESMTPS id "
         f"{rng.getrandbits(40):x}\n\tfor <{taddr}>; {stamp}",
         f"From: {fname} <{faddr}>",
         f"To: {tname} <{taddr}>"]
    if rng.random() < 0.3:
        cname, caddr = address(rng)
        h.append(f"Cc: {cname} <{caddr}>")
    h += [f"Subject: {subject}", f"Date: {stamp}",
          f"Message-ID: <{i}.{rng.getrandbits(32):x}@example.com>", "MIME-Version: 1.0"]
    return h + extra


def message(rng, i, date, refs, word, every):
    subject = words(rng, rng.randint(2, 7)).capitalize()
    if rng.random() < 0.05:
        subject = "=?UTF-8?B?" + base64.b64encode(("Grüße: " + subject).encode()).decode() + "?="
    extra = []
    if refs and rng.random() < 0.3:
        parent = rng.choice(refs)
        subject = "Re: " + subject
        extra += [f"In-Reply-To: {parent}", f"References: {parent}"]
    if rng.random() < 0.1:
        extra += ["List-Id: <dev.lists.example.org>", "Precedence: list"]
    text = paragraph_text(rng, int(rng.lognormvariate(7.6, 0.8)))  # median ~2 KB
    if i % every == 7:
        text += f"The code word is {word}.\n"
    kind = rng.random()
    if kind < 0.68:
        head = header_block(rng, i, date, subject, extra + [
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"])
        body = text
    elif kind < 0.90:
        b = f"=_alt_{rng.getrandbits(48):x}"
        html = "<html><body>" + "".join(f"<p>{p}</p>" for p in text.split("\n") if p) + \
            "</body></html>\n"
        head = header_block(rng, i, date, subject, extra + [
            f'Content-Type: multipart/alternative; boundary="{b}"'])
        body = (f"--{b}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                f"--{b}\nContent-Type: text/html; charset=utf-8\n\n{html}\n--{b}--\n")
    else:
        b = f"=_mix_{rng.getrandbits(48):x}"
        size = min(int(rng.lognormvariate(10.3, 1.0)), 4 << 20)  # median ~30 KB
        enc = base64.encodebytes(rng.randbytes(size)).decode()
        fname = rng.choice(["report.pdf", "photo.jpg", "notes.docx", "data.csv", "slides.pptx"])
        head = header_block(rng, i, date, subject, extra + [
            f'Content-Type: multipart/mixed; boundary="{b}"'])
        body = (f"This is a multi-part message in MIME format.\n\n--{b}\n"
                f"Content-Type: text/plain; charset=utf-8\n\n{text}\n--{b}\n"
                f"Content-Type: application/octet-stream; name=\"{fname}\"\n"
                f"Content-Disposition: attachment; filename=\"{fname}\"\n"
                f"Content-Transfer-Encoding: base64\n\n{enc}\n--{b}--\n")
    mid = [h for h in head if h.startswith("Message-ID:")][0].split(" ", 1)[1]
    return ("\n".join(head) + "\n\n" + body).encode(), mid


def generate(count, seed, word, every):
    rng = random.Random(seed)
    date = 1_700_000_000
    refs = []
    for i in range(count):
        date += rng.randint(30, 3600)
        data, mid = message(rng, i, date, refs, word, every)
        refs.append(mid)
        if len(refs) > 50:
            refs.pop(0)
        flags = "".join(f for f, p in (("F", 0.05), ("R", 0.2), ("S", 0.7)) if rng.random() < p)
        yield i, date, data, flags


def write_file(path, data, date):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (date, date))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["mbox", "maildir", "tree"], default="mbox")
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--word", default="xylophonequartz")
    ap.add_argument("--word-every", type=int, default=1000)
    a = ap.parse_args()
    if a.count < 1 or not 1 <= a.folders <= len(FOLDERS) or a.word_every < 1:
        sys.exit(f"gen_mail.py: --count and --word-every must be >= 1, --folders 1..{len(FOLDERS)}")
    total = 0
    uids = {}
    mbox = open(a.out, "wb") if a.format == "mbox" else None
    for i, date, data, flags in generate(a.count, a.seed, a.word, a.word_every):
        total += len(data)
        if mbox:
            stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(date)).encode()
            mbox.write(b"From gen@example.com " + stamp + b"\n")
            mbox.write(b"\n".join(b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln
                                  for ln in data.split(b"\n")))
            mbox.write(b"\n")
        elif a.format == "maildir":
            write_file(os.path.join(a.out, "cur", f"{date}.M{i}P1.gen:2,{flags}"), data, date)
        else:
            folder = FOLDERS[i % a.folders]
            uids[folder] = uids.get(folder, 0) + 1
            write_file(os.path.join(a.out, folder, f"{uids[folder]:010d}.eml"), data, date)
    if mbox:
        mbox.close()
    if a.format == "maildir":
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    print(f"generated {a.count} messages, {total / 1e6:.1f} MB of message bytes, in {a.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
