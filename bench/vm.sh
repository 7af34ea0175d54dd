#!/usr/bin/env bash
# Run bench/run.sh in a throw-away QEMU VM with pure cgroup v2 (all controllers enabled),
# where crun works without any wrapper. Uses the project's cgroup2-vm.sh
# (see /work/shared/tools/cgroup2-vm.md); under TCG emulation every figure is several
# times slower than on the host, so compare the ratios, not the milliseconds.
#
# Usage (as root): bench/vm.sh        Environment: as for run.sh (ROUNDS, SEQ_ROUNDS, ...),
#                                     CG2VM=path/to/cgroup2-vm.sh, CELLA_BIN=DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
CG2VM=${CG2VM:-/work/shared/tools/cgroup2-vm.sh}
if [ -z "${CELLA_BIN:-}" ]; then
    # The static release build (`cargo build-static`) when there is one, else target/release.
    CELLA_BIN=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release
    [ -x "$CELLA_BIN/cella-runc" ] || CELLA_BIN=${CARGO_TARGET_DIR:-$repo/target}/release
fi
die() { echo "bench/vm.sh: $*" >&2; exit 1; }
[ -f "$CG2VM" ] || die "$CG2VM not found (set CG2VM)"
[ -x "$CELLA_BIN/cella-runc" ] || die "$CELLA_BIN/cella-runc not found: cargo build-static"

payload=$(mktemp -d "${TMPDIR:-/tmp}/cella-bench-vm.XXXXXX")
trap 'rm -rf "$payload"' EXIT
cp "$here/run.sh" "$here/bundle.sh" "$payload/"
# The guest has no compiler: a static benchrun, and a prebuilt rootfs.
cc -O2 -Wall -static -o "$payload/benchrun" "$here/benchrun.c" ||
    cc -O2 -Wall -o "$payload/benchrun" "$here/benchrun.c"
mk=$repo/tests/make-rootfs.sh
[ -f "$mk" ] || mk=/work/wt-tests/tests/make-rootfs.sh
bash "$mk" "$payload/rootfs" >/dev/null
mkdir -p "$payload/cella"
cp "$CELLA_BIN/cella-runc" "$CELLA_BIN/cella" "$payload/cella/"

envs=()
for v in ROUNDS SEQ_ROUNDS SEQ_N PAR_N PAR_J; do
    [ -z "${!v:-}" ] || envs+=(-e "$v=${!v}")
done
bash "$CG2VM" -m 2048 -c 2 -t "${VM_TIMEOUT:-1800}" -b /bin/bash -b /usr/sbin/runc -b /usr/bin/crun \
    "${envs[@]}" -e CELLA_BIN=/payload/cella -e BENCHRUN=/payload/benchrun -e ROOTFS=/payload/rootfs \
    -e TMPDIR=/tmp "$payload" -- /bin/bash /payload/run.sh
