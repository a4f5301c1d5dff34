#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets (build-fuzz) and runs each for a while
#
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  how long each target fuzzes (default 20); 0 only replays the seeds
#   TARGET              imap_parser, imap_misc, imap_proxy, imap_sort, mime, mbox, sasl,
#                       fs_names, imap_session
#                       (default: all)
# Every file in tests/fuzz/seeds/<target>/ is replayed first (the regression inputs), then the
# target fuzzes from those seeds, plus ../shared/corpus for mime and mbox and the command lines
# of the IMAP protocol tests for the parser. Crashing inputs are kept in a temporary directory
# and printed; the script exits non-zero if any target crashed.
# Environment: MAILFS_FUZZ_BUILD (default build-fuzz), MAILFS_CORPUS (default ../shared/corpus),
# MAILFS_FUZZ_KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(imap_parser imap_misc imap_proxy imap_sort mime mbox sasl fs_names imap_session)
build=${MAILFS_FUZZ_BUILD:-$root/build-fuzz}
corpus=${MAILFS_CORPUS:-$root/../shared/corpus}
seeds=$root/tests/fuzz/seeds

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# clang and its fuzzer runtime (libclang-rt-*-dev), from Debian
if ! command -v clang >/dev/null ||
    ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
    clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    echo "run.sh: installing clang and its fuzzer runtime"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
    # the runtime is a separate package from Debian 12 (bookworm) on
    rt=$(apt-cache search --names-only '^libclang-rt-[0-9]+-dev$' | awk '{print $1}' | sort -V |
        tail -n 1)
    if [ -n "$rt" ]; then
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$rt" >/dev/null
    fi
fi

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        >/dev/null
fi
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz_$t"); done
ninja -C "$build" -j2 "${exes[@]}" >/dev/null || ninja -C "$build" -j1 "${exes[@]}"

tmp=$(mktemp -d /tmp/mailfs-fuzz.XXXXXX)
[ "${MAILFS_FUZZ_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT

# the command lines of the protocol tests, as parser inputs (2 option bytes, then the line)
mkdir -p "$tmp/imap_lines"
/usr/bin/python3 - "$tmp/imap_lines" "$root/tests/imapfix.py" "$root"/tests/imap/*.py \
    "$root"/tests/tools/*.py <<'PY' || true
import pathlib, re, sys
out, srcs = pathlib.Path(sys.argv[1]), sorted(set(pathlib.Path(a) for a in sys.argv[2:]))
lines = set()
for f in srcs:
    for m in re.finditer(r'''b?["']((?:[A-Za-z0-9.]{1,8}) [A-Za-z]+(?: [^"'\n]*)?)["']''',
                         f.read_text(errors="replace")):
        s = m.group(1)
        if re.match(r"[A-Za-z0-9.]+ (UID |)[A-Z]{2,}", s):
            lines.add(s.replace("\\r\\n", "\r\n").replace("\\n", "\n"))
for i, s in enumerate(sorted(lines)[:400]):
    if not s.endswith("\n"):
        s += "\r\n"
    (out / f"line{i:03d}").write_bytes(bytes([i % 251, i * 7 % 256]) + s.encode())
PY

# UBSan reports must stop the run; leaks are errors too
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

status=0
for t in "${targets[@]}"; do
    exe=$build/tests/fuzz/fuzz_$t
    work=$tmp/corpus/$t crashes=$tmp/crashes/$t
    mkdir -p "$work" "$crashes"
    extra=() dirs=("$work")
    [ -d "$seeds/$t" ] && dirs+=("$seeds/$t")
    case $t in
        imap_parser) maxlen=4096 extra+=(-dict="$root/tests/fuzz/imap.dict" -malloc_limit_mb=256)
            dirs+=("$tmp/imap_lines") ;;
        imap_misc) maxlen=2048 ;;
        imap_proxy) maxlen=1100 ;;
        imap_sort) maxlen=4096 ;;
        mime|mbox) maxlen=65536
            [ -d "$corpus" ] && dirs+=("$corpus") ;;
        sasl) maxlen=4096 ;;
        fs_names) maxlen=1024 ;;
        imap_session) maxlen=4096 extra+=(-dict="$root/tests/fuzz/imap.dict") ;;
        *) echo "run.sh: unknown target '$t'"; exit 2 ;;
    esac
    log=$tmp/$t.log

    # 1. the regression inputs, each on its own, whole (no length limit)
    shopt -s nullglob
    files=("$seeds/$t"/*)
    shopt -u nullglob
    if [ ${#files[@]} -gt 0 ] && ! "$exe" -rss_limit_mb=2048 -timeout=20 "${files[@]}" >"$log" 2>&1; then
        echo "fuzz_$t: a seed in tests/fuzz/seeds/$t crashed:"
        grep -E 'Running:|ERROR|SUMMARY|check failed|runtime error' "$log" | tail -n 8
        status=1
        continue
    fi
    if [ "$secs" = 0 ]; then
        echo "fuzz_$t: ${#files[@]} seeds replayed, no crash"
        continue
    fi

    # 2. fuzzing
    if "$exe" -max_total_time="$secs" -max_len=$maxlen -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$crashes/" ${extra[@]+"${extra[@]}"} \
        "${dirs[@]}" >"$log" 2>&1; then
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "fuzz_$t: ${n:-?} executions, no crash"
    else
        status=1
        echo "fuzz_$t: CRASH"
        grep -E 'ERROR|SUMMARY|check failed|runtime error|^    #[0-9] ' "$log" | head -n 20
        for c in "$crashes"/*; do
            [ -e "$c" ] || continue
            echo "  input: $c ($(stat -c %s "$c") bytes)"
            head -c 512 "$c" | od -A d -c | head -n 12
        done
        echo "  replay: $exe <input>; keep it as tests/fuzz/seeds/$t/<name> once fixed"
        [ "${MAILFS_FUZZ_KEEP:-0}" = 1 ] || { mkdir -p /tmp/mailfs-fuzz-crashes;
            cp "$crashes"/* /tmp/mailfs-fuzz-crashes/ 2>/dev/null || true;
            echo "  (copied to /tmp/mailfs-fuzz-crashes/)"; }
    fi
done
exit $status
