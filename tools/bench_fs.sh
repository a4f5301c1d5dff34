#!/usr/bin/env bash
# tools/bench_fs.sh: the mount against the native filesystem, cold and warm cache.
# Usage: tools/bench_fs.sh [COUNT [FOLDERS]]      (default: 50000 messages in 20 folders)
# Environment: BENCH_DIR (default /tmp/mailfs-bench-fs), MAILFS (the binary, default
# build/tools/mailfs), REPEAT (warm runs, median; default 3), MOUNTS ("rw ro"), COPY_DIR (where
# cp -a and rsync write, default BENCH_DIR/copy; a tmpfs such as /dev/shm/x takes the target
# disk's write-back out of the comparison, which otherwise dominates both sides).
# Generates the messages once (tools/gen_mail.py --format tree), keeps the same files on the native
# filesystem, imports them into a store, mounts it read-write and read-only, and times
# grep -rl, find -type f, tar cf - | cat, cp -a, rsync -a (first and second pass) and du -s.
# Cold runs drop the page cache first (needs root). Goals (issue 3): warm <= 1.2x native,
# cold <= 1.3x native, second rsync transfers 0 files. A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=${1:-50000}
folders=${2:-20}
mailfs=${MAILFS:-$root/build/tools/mailfs}
work=${BENCH_DIR:-/tmp/mailfs-bench-fs}
repeat=${REPEAT:-3}
copy=${COPY_DIR:-$work/copy}
mounts=${MOUNTS:-rw ro}
word=zanzibar
[ -x "$mailfs" ] || { echo "bench_fs: build first (ninja -C build) or set MAILFS"; exit 1; }
command -v rsync >/dev/null || { echo "bench_fs: needs rsync"; exit 1; }

native=$work/native-$count-$folders
store=$work/store-$count-$folders
mkdir -p "$work"
if [ ! -f "$native/.done" ]; then
    rm -rf "$native"
    /usr/bin/python3 tools/gen_mail.py --format tree --out "$native" --count "$count" \
        --folders "$folders" --word "$word" --word-every 100
    touch "$native/.done"
fi
if [ ! -f "$store/.done" ]; then
    rm -rf "$store"
    export MAILFS_STORE=$store
    "$mailfs" init >/dev/null
    echo pw | "$mailfs" user add bench >/dev/null
    (cd "$native" && find . -name '*.eml' -printf '%h\n' | sort -u) | while read -r d; do
        d=${d#./}
        "$mailfs" import bench "$native/$d" --mailbox "$d" >/dev/null
    done
    touch "$store/.done"
fi
export MAILFS_STORE=$store

cleanup() {
    for m in "$work"/mnt-*; do
        [ -d "$m" ] && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; }
    done
}
trap cleanup EXIT

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# one timed run of a named command in directory $1; prints seconds
run() {
    local dir=$1 what=$2 t0 t1
    case $what in
        rsync1|cp) rm -rf "$copy" ;;
    esac
    [ "$what" = rsync2 ] && [ ! -d "$copy" ] && rsync -a "$dir/" "$copy/"
    [ "${cold:-0}" = 1 ] && drop
    t0=$EPOCHREALTIME
    case $what in
        grep) (cd "$dir" && grep -rl "$word" . >/dev/null || true) ;;
        find) (cd "$dir" && find . -type f >/dev/null) ;;
        tar) (cd "$dir" && tar cf - . | cat >/dev/null) ;;
        cp) cp -a "$dir" "$copy" ;;
        rsync1) rsync -a "$dir/" "$copy/" ;;
        rsync2) rsync -a --stats "$dir/" "$copy/" > "$work/rsync2.out" ;;
        du) (cd "$dir" && du -s . >/dev/null) ;;
    esac
    t1=$EPOCHREALTIME
    /usr/bin/python3 -c "print(f'{$t1 - $t0:.3f}')"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # dir what -> "cold warm"
    local dir=$1 what=$2 c w=() i
    cold=1 c=$(run "$dir" "$what")
    cold=0 run "$dir" "$what" >/dev/null
    for ((i = 0; i < repeat; i++)); do w+=("$(cold=0 run "$dir" "$what")"); done
    echo "$c $(median "${w[@]}")"
}

cmds=(grep find tar cp rsync1 rsync2 du)
declare -A res
for what in "${cmds[@]}"; do res[native,$what]=$(measure "$native" "$what"); done
for mode in $mounts; do
    mnt=$work/mnt-$mode
    mkdir -p "$mnt"
    fusermount3 -u "$mnt" 2>/dev/null || true
    if [ "$mode" = ro ]; then "$mailfs" mount -o ro bench "$mnt"; else "$mailfs" mount bench "$mnt"; fi
    for what in "${cmds[@]}"; do
        res[$mode,$what]=$(measure "$mnt" "$what")
        if [ "$what" = rsync2 ]; then
            res[$mode,sent]=$(grep -o 'files transferred: [0-9,]*' "$work/rsync2.out" | grep -o '[0-9,]*$')
        fi
    done
    fusermount3 -u "$mnt"
done
rm -rf "$copy"

bytes=$(du -sb --exclude=.done "$native" | cut -f1)
printf '\n%d messages, %.0f MB, %d folders; warm = median of %d; seconds\n' \
    "$count" "$(echo "$bytes / 1000000" | bc -l)" "$folders" "$repeat"
printf '%-8s %9s %9s' command "native-c" "native-w"
for mode in $mounts; do printf ' %9s %7s %9s %7s' "$mode-c" ratio "$mode-w" ratio; done
printf '\n'
for what in "${cmds[@]}"; do
    read -r nc nw <<< "${res[native,$what]}"
    printf '%-8s %9s %9s' "$what" "$nc" "$nw"
    for mode in $mounts; do
        read -r mc mw <<< "${res[$mode,$what]}"
        printf ' %9s %7s %9s %7s' "$mc" "$(/usr/bin/python3 -c "print(f'{$mc/max($nc,1e-3):.2f}x')")" \
            "$mw" "$(/usr/bin/python3 -c "print(f'{$mw/max($nw,1e-3):.2f}x')")"
    done
    printf '\n'
done
for mode in $mounts; do
    echo "second rsync from the $mode mount: ${res[$mode,sent]:-?} files transferred"
done
