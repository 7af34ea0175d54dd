#!/usr/bin/env bash
# Regenerate .cargo/hot-functions.txt: every function of cella and cella-runc that a container's
# life runs (run, create/start/state/delete, exec, kill, list, ps, pause/resume, the friendly
# `cella run`), in the order they first run. `cargo build-static` hands the list to rust-lld
# (--symbol-ordering-file), which lays those functions out together at the front of .text; a
# start then maps a few hundred KiB of the binary instead of nearly all of it (the kernel maps
# 64 KiB around every page fault, so scattered hot code pulls in the whole text).
#
# How: build with `cargo build-static` (the very build the list is for: symbol names carry a
# hash of the build's profile and flags), put a uprobe on every function of both binaries
# through tracefs, run the workload, read which probes fired. Exact, unlike sampling: a
# function that runs once for a microsecond is listed too.
#
# Usage (as root, needs tracefs and uprobes): bench/hot-functions.sh
# Then rebuild: cargo build-static. Re-run after changing code or the toolchain; a stale list
# costs only speed and memory (names it no longer finds are ignored), never correctness.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "hot-functions: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (uprobes and containers need it)"

tracefs=/sys/kernel/tracing
[ -w "$tracefs/uprobe_events" ] || mount -t tracefs nodev "$tracefs" 2>/dev/null || true
[ -w "$tracefs/uprobe_events" ] || die "$tracefs/uprobe_events not writable (tracefs, CONFIG_UPROBE_EVENTS)"

(cd "$repo" && cargo build-static) || die "cargo build-static failed"
bin=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release
for b in cella cella-runc; do
    [ -x "$bin/$b" ] || die "$bin/$b missing after the build"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cella-hot.XXXXXX")
group=cellahot$$
old_buf=$(cat "$tracefs/buffer_size_kb")
cleanup() {
    set +e
    echo 0 >"$tracefs/events/$group/enable" 2>/dev/null
    for r in "$bin/cella-runc" "$bin/cella"; do
        "$r" --root "$work/state" delete --force hot-sleep >/dev/null 2>&1
    done
    # Remove our probe group in one go (one by one, each removal waits for an RCU grace
    # period); other users' uprobes on this machine stay.
    [ -d "$tracefs/events/$group" ] && echo "-:$group/" >>"$tracefs/uprobe_events"
    echo "$old_buf" >"$tracefs/buffer_size_kb"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One uprobe per function (by file offset), both binaries; probe name -> symbol in $work/names.
python3 - "$group" "$work" "$bin/cella-runc" "$bin/cella" <<'EOF'
import os, subprocess, sys
group, work, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
probes, names, n = [], [], 0
for b in bins:
    segs = []
    for l in subprocess.run(["readelf", "-lW", b], capture_output=True, text=True, check=True).stdout.splitlines():
        p = l.split()
        if p and p[0] == "LOAD":
            off, va, _, _, memsz = (int(x, 16) for x in p[1:6])
            segs.append((va, memsz, off))
    seen = set()
    for l in subprocess.run(["nm", "-S", b], capture_output=True, text=True, check=True).stdout.splitlines():
        p = l.split()
        if len(p) != 4 or p[2] not in "tT" or int(p[1], 16) == 0:
            continue
        va = int(p[0], 16)
        for sva, memsz, off in segs:
            if sva <= va < sva + memsz:
                fo = va - sva + off
                break
        else:
            continue
        if fo in seen:
            continue
        seen.add(fo)
        probes.append(f"p:{group}/f{n} {b}:0x{fo:x}")
        names.append(f"f{n} {p[3]}")
        n += 1
open(f"{work}/probes", "w").write("\n".join(probes) + "\n")
open(f"{work}/names", "w").write("\n".join(names) + "\n")
if not probes:
    sys.exit("hot-functions: no function symbols (stripped? the release profile must keep .symtab)")
# One write(2): tracefs parses it line by line, fast; a line split across writes is refused.
fd = os.open("/sys/kernel/tracing/uprobe_events", os.O_WRONLY | os.O_APPEND)
os.write(fd, ("\n".join(probes) + "\n").encode())
os.close(fd)
EOF
echo "hot-functions: $(wc -l <"$work/probes") uprobes on $bin/{cella,cella-runc}" >&2

# The workload: the benchmark's busybox bundle.
rootfs=$work/rootfs
bash "$repo/tests/make-rootfs.sh" "$rootfs" >/dev/null
# shellcheck source=bundle.sh
. "$here/bundle.sh"
write_bundle "$work/true" '["/bin/true"]'
write_bundle "$work/sleep" '["/bin/sleep", "100000"]'
R="$bin/cella-runc --root $work/state"

echo 200000 >"$tracefs/buffer_size_kb"
echo >"$tracefs/trace"
echo 1 >"$tracefs/events/$group/enable"
for i in 1 2; do
    $R run --bundle "$work/true" "hot-run$i"
    $R create --bundle "$work/true" "hot-c$i" </dev/null >/dev/null
    $R state "hot-c$i" >/dev/null
    $R start "hot-c$i"
    $R delete --force "hot-c$i"
done
$R create --bundle "$work/sleep" hot-sleep </dev/null >/dev/null
$R start hot-sleep
$R exec hot-sleep /bin/true
$R list >/dev/null
$R ps hot-sleep >/dev/null
$R pause hot-sleep
$R resume hot-sleep
$R kill hot-sleep KILL
$R delete --force hot-sleep
"$bin/cella" --root "$work/state" run --rootfs "$rootfs" -- /bin/true
"$bin/cella" --root "$work/state" run --rootfs "$rootfs" --memory 64M -- /bin/true
echo 0 >"$tracefs/events/$group/enable"
grep -q "overrun: 0" "$tracefs/per_cpu/cpu0/stats" || echo "hot-functions: warning: the trace buffer overran; raise buffer_size_kb" >&2

# Probe names in the order they first fired -> symbols, each once.
out=$repo/.cargo/hot-functions.txt
awk -v names="$work/names" '
    BEGIN { while ((getline l < names) > 0) { split(l, a, " "); sym[a[1]] = a[2] } }
    { for (i = 1; i <= NF; i++) if ($i ~ /^f[0-9]+:$/) { p = substr($i, 1, length($i) - 1); if (!(sym[p] in done)) { done[sym[p]] = 1; print sym[p] } } }
' "$tracefs/trace" >"$out.new"
[ -s "$out.new" ] || die "no probe fired: is uprobe tracing working here?"
mv "$out.new" "$out"
echo "hot-functions: wrote $(wc -l <"$out") functions to .cargo/hot-functions.txt; now: cargo build-static" >&2
