#!/usr/bin/env bash
# tools/bench_import.sh: import speed, store size and peak memory for generated corpora.
# Usage: tools/bench_import.sh [COUNT...]   (default: 10000 100000)
# For each COUNT it generates an mbox and a Maildir of COUNT realistic messages
# (tools/gen_mail.py), imports each into a fresh store and prints messages/s, MB/s,
# store size / raw bytes (as written, and compacted with mdb_copy -c) and peak RSS. Each
# import runs twice: with the input cold (page cache dropped: bounded by the disk, so the same
# run also times `tar cf - INPUT | cat` from cold as the disk's own figure) and warm (the input
# already in the page cache: the importer's own speed).
# Goals (issue 2): >= 20,000 messages/s durable per batch, store <= 1.15x raw, flat RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mailfs=${MAILFS_BIN:-$root/build/tools/mailfs}
[ -x "$mailfs" ] || { echo "bench_import: build first (tools/test --quick or ninja -C build)"; exit 1; }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
command -v mdb_copy >/dev/null || apt-get install -y -qq lmdb-utils >/dev/null
work=${BENCH_DIR:-/tmp/mailfs-bench-import}
mkdir -p "$work"
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10000 100000)
printf '%-8s %-5s %-8s %10s %8s %8s %10s %12s %9s %9s\n' format input count msgs/s MB/s seconds store/raw compacted/raw peakRSS peakAnon
for n in "${counts[@]}"; do
    for fmt in mbox maildir; do
        src=$work/gen-$n.$fmt
        [ -e "$src" ] || /usr/bin/python3 tools/gen_mail.py --count "$n" --format "$fmt" --out "$src" 2>/dev/null
        raw=$(/usr/bin/python3 - "$src" <<'PY'
import os, sys
p = sys.argv[1]
if os.path.isdir(p):
    print(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs))
else:  # the message bytes: the file minus From_ lines and quoting is close enough; count exactly
    total = 0
    with open(p, "rb") as f:
        for line in f:
            if line.startswith(b"From "):
                continue
            total += len(line) - (1 if line.startswith(b">") and line.lstrip(b">").startswith(b"From ") else 0)
    print(total)
PY
)
        sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
        t0=$(date +%s.%N); tar cf - -C "$(dirname "$src")" "$(basename "$src")" | cat >/dev/null
        t1=$(date +%s.%N)
        /usr/bin/python3 -c "print('%-8s %-5s %-8d %10.0f %8.1f %8.2f   (tar cf - | cat: reading the input alone)' % ('$fmt', 'cold', $n, $n/($t1-$t0), $raw/1e6/($t1-$t0), $t1-$t0))"
        for cache in cold warm; do
        store=$work/store-$n-$fmt
        rm -rf "$store" "$store.compact"
        export MAILFS_STORE=$store
        "$mailfs" init >/dev/null
        echo pw | "$mailfs" user add bench
        if [ $cache = cold ]; then
            sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
        else
            tar cf - -C "$(dirname "$src")" "$(basename "$src")" | cat >/dev/null
        fi
        # peak RSS, and peak private (anonymous) memory sampled every 20 ms: the rest of RSS is
        # the store's file mapping, which the kernel can drop at any time
        read -r secs rss anon < <(/usr/bin/python3 - "$mailfs" "$src" <<'PY'
import subprocess, sys, time, resource
t0 = time.time()
p = subprocess.Popen([sys.argv[1], "import", "bench", sys.argv[2]], stdout=subprocess.DEVNULL)
anon = 0
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("RssAnon:"):
                anon = max(anon, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.02)
secs = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{secs:.2f} {rss} {anon}")
PY
)
        size=$(stat -c %s "$store/data.mdb")
        mkdir -p "$store.compact"; mdb_copy -c "$store" "$store.compact"
        csize=$(stat -c %s "$store.compact/data.mdb")
        /usr/bin/python3 -c "
n,raw,secs,size,csize,rss,anon=$n,$raw,$secs,$size,$csize,$rss,$anon
print(f'%-8s %-5s %-8d %10.0f %8.1f %8.2f %10.3f %12.3f %7.0fMB %7.0fMB' % ('$fmt', '$cache', n, n/secs, raw/1e6/secs, secs, size/raw, csize/raw, rss/1024, anon/1024))"
        rm -rf "$store" "$store.compact"
        done
    done
done
