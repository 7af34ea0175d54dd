#!/usr/bin/env bash
# cella vs runc vs crun: start-up latency and memory, measured side by side, interleaved, in
# one run. See docs/performance.md for what each figure means and the numbers we got.
#
# Usage (as root): bench/run.sh
# Environment:
#   ROUNDS=25        samples per single-container figure (run, create+start+delete, exec, ...)
#   SEQ_ROUNDS=3     samples of the batch figures (100 one after another, 50 two at a time)
#   SEQ_N=100 PAR_N=50 PAR_J=2
#   CELLA_BIN=DIR    where cella and cella-runc are (default: the `cargo build-static` output,
#                    target/x86_64-unknown-linux-gnu/release, else target/release)
#   RUNC=/usr/sbin/runc CRUN=/usr/bin/crun   (set one to "" to leave it out)
#   BENCHRUN=FILE    a prebuilt bench/benchrun.c (default: compiled here with cc)
#   ROOTFS=DIR       a prebuilt busybox rootfs (default: built with tests/make-rootfs.sh)
#   HIDE_UNIFIED=auto|0|1   run crun in a private mount namespace where /sys/fs/cgroup/unified
#                    is covered by an empty tmpfs (crun 1.8 refuses hybrid cgroups). auto: only
#                    when the cgroup2 mount at /sys/fs/cgroup/unified has controllers.
#   KEEP_SAMPLES=FILE  also write every raw sample there.
#   STATE_DIR=DIR    where the runtimes' --root directories go (default: /run when it is
#                    tmpfs, else a tmpfs the script mounts for the run)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

ROUNDS=${ROUNDS:-25}
SEQ_ROUNDS=${SEQ_ROUNDS:-3}
SEQ_N=${SEQ_N:-100}
PAR_N=${PAR_N:-50}
PAR_J=${PAR_J:-2}
RUNC=${RUNC-/usr/sbin/runc}
CRUN=${CRUN-/usr/bin/crun}
HIDE_UNIFIED=${HIDE_UNIFIED:-auto}
if [ -z "${CELLA_BIN:-}" ]; then
    # The static release build (`cargo build-static`) when there is one, else `cargo build --release`.
    CELLA_BIN=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release
    [ -x "$CELLA_BIN/cella-runc" ] || CELLA_BIN=${CARGO_TARGET_DIR:-$repo/target}/release
fi

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (containers need it)"
[ -x "$CELLA_BIN/cella-runc" ] || die "$CELLA_BIN/cella-runc not found: cargo build-static (or set CELLA_BIN)"
[ -x "$CELLA_BIN/cella" ] || die "$CELLA_BIN/cella not found: cargo build-static (or set CELLA_BIN)"
[ -z "$RUNC" ] || [ -x "$RUNC" ] || die "$RUNC not found (apt-get install runc, or RUNC= to skip it)"
[ -z "$CRUN" ] || [ -x "$CRUN" ] || die "$CRUN not found (apt-get install crun, or CRUN= to skip it)"

# Container inits outlive `create` and `start`; run under a subreaper that reaps them (PID 1
# does not reap orphans on every host, e.g. this project's VM).
if [ -z "${BENCH_REAPED:-}" ]; then
    brdir=$(mktemp -d "${TMPDIR:-/tmp}/cella-benchrun.XXXXXX")
    if [ -n "${BENCHRUN:-}" ]; then
        cp "$BENCHRUN" "$brdir/benchrun"
    else
        cc -O2 -Wall -o "$brdir/benchrun" "$here/benchrun.c" || { rm -rf "$brdir"; die "compiling bench/benchrun.c failed (apt-get install gcc)"; }
    fi
    rc=0
    BENCH_REAPED=1 BENCHRUN=$brdir/benchrun "$brdir/benchrun" reaper -- bash "${BASH_SOURCE[0]}" "$@" || rc=$?
    rm -rf "$brdir"
    exit $rc
fi
br=$BENCHRUN

tag="cb$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/cella-bench.XXXXXX")
states=""
states_mount=""
holder_pid=""
declare -A RT ROOT NS EXEC_ID

cleanup() {
    set +e
    for name in "${!RT[@]}"; do
        local root=${ROOT[$name]}
        [ -d "$root" ] || continue
        for d in "$root"/*/; do
            [ -d "$d" ] || continue
            local id
            id=$(basename "$d")
            run_rt "$name" delete --force "$id" >/dev/null 2>&1
        done
    done
    if [ -n "$holder_pid" ]; then
        kill "$holder_pid" 2>/dev/null
        wait "$holder_pid" 2>/dev/null
    fi
    # Anything a runtime left behind is a bug worth seeing: report it, then remove it.
    local left
    left=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d -name "*$tag*" 2>/dev/null | sort -r)
    if [ -n "$left" ]; then
        note "cgroups left behind (removing):"
        echo "$left" | sed 's/^/  /' >&2
        echo "$left" | while read -r d; do rmdir "$d" 2>/dev/null; done
    fi
    [ -z "$states_mount" ] || umount "$states_mount"
    if grep -q "$work" /proc/self/mountinfo; then
        note "mounts left under $work:"
        grep "$work" /proc/self/mountinfo | awk '{print "  " $5}' >&2
    fi
    rm -rf "$work"
    [ -z "$states" ] || rm -rf "$states"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each runtime's --root (state directory) lives on tmpfs, as their defaults do (/run/runc,
# /run/crun; engines use /run too, which is tmpfs on systemd hosts): state files on a disk
# filesystem cost every runtime a journal commit or two per container. Where /run is not
# tmpfs (this project's VM), the script mounts a small tmpfs of its own for them (made before
# crun's mount namespace below, so crun sees it too; unmounted at the end).
# STATE_DIR=DIR puts them in DIR instead.
if [ -n "${STATE_DIR:-}" ]; then
    states=$(mktemp -d "$STATE_DIR/cella-bench-state.XXXXXX")
elif [ "$(stat -f -c %T /run 2>/dev/null)" = tmpfs ]; then
    states=$(mktemp -d /run/cella-bench-state.XXXXXX)
else
    states=$work/state
    mkdir -p "$states"
    mount -t tmpfs -o size=64m,mode=700 cella-bench-state "$states"
    states_mount=$states
fi

# ---------------------------------------------------------------- tools and the bundle
if [ -n "${ROOTFS:-}" ]; then
    rootfs=$ROOTFS
else
    rootfs=$work/rootfs
    mk=$repo/tests/make-rootfs.sh
    [ -f "$mk" ] || mk=/work/wt-tests/tests/make-rootfs.sh
    [ -f "$mk" ] || die "tests/make-rootfs.sh not found: set ROOTFS=DIR to a busybox rootfs"
    bash "$mk" "$rootfs" >/dev/null
fi
[ -x "$rootfs/bin/true" ] || die "$rootfs/bin/true missing: not a busybox rootfs?"

# write_bundle DIR ARGS_JSON: the bench bundle (bench/bundle.sh).
# shellcheck source=bundle.sh
. "$here/bundle.sh"
write_bundle "$work/true" '["/bin/true"]'
write_bundle "$work/sleep" '["/bin/sleep", "100000"]'

# ---------------------------------------------------------------- runtimes
hybrid=0
if grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/self/mounts 2>/dev/null &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    hybrid=1
fi
if grep -q ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts; then
    cgmode="cgroup v2 (unified)"
elif [ $hybrid = 1 ]; then
    cgmode="hybrid: cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified with $(cat /sys/fs/cgroup/unified/cgroup.controllers)"
else
    cgmode="cgroup v1"
fi

RT[cella]=$CELLA_BIN/cella-runc
[ -z "$RUNC" ] || RT[runc]=$RUNC
[ -z "$CRUN" ] || RT[crun]=$CRUN
names=()
for n in cella runc crun; do [ -n "${RT[$n]:-}" ] && names+=("$n"); done
for n in "${names[@]}"; do
    ROOT[$n]=$states/state-$n
    mkdir -p "${ROOT[$n]}"
    NS[$n]=""
done

if [ -n "${RT[crun]:-}" ] && { [ "$HIDE_UNIFIED" = 1 ] || { [ "$HIDE_UNIFIED" = auto ] && [ $hybrid = 1 ]; }; }; then
    # One long-lived private mount namespace with unified hidden; benchrun setns()es crun into
    # it, so crun pays no extra process or mount per command. crun then treats the tmpfs as
    # the unified hierarchy: it makes a directory and a plain cgroup.procs file there per
    # container and never removes them (a page each), hence the size.
    unshare -m --propagation private sh -c \
        'mount -t tmpfs -o size=256m,mode=755 none /sys/fs/cgroup/unified && exec sleep 1000000' &
    holder_pid=$!
    for _ in $(seq 100); do
        grep -q ' /sys/fs/cgroup/unified tmpfs ' "/proc/$holder_pid/mounts" 2>/dev/null && break
        sleep 0.05
    done
    grep -q ' /sys/fs/cgroup/unified tmpfs ' "/proc/$holder_pid/mounts" || die "could not hide /sys/fs/cgroup/unified for crun"
    NS[crun]=/proc/$holder_pid/ns/mnt
fi

# run_rt NAME ARGS... : the runtime with its private --root, in its mount namespace.
run_rt() {
    local n=$1
    shift
    if [ -n "${NS[$n]}" ]; then
        "$br" --mntns "${NS[$n]}" once -- "${RT[$n]}" --root "${ROOT[$n]}" "$@" >/dev/null
    else
        "${RT[$n]}" --root "${ROOT[$n]}" "$@"
    fi
}

# timed NAME ARGS... : prints "<us> <maxrss KiB>" for one runtime command; fails if it failed.
timed() {
    local n=$1
    shift
    local mnt=()
    [ -n "${NS[$n]}" ] && mnt=(--mntns "${NS[$n]}")
    local out us rss rc
    out=$("$br" "${mnt[@]}" once -- "${RT[$n]}" --root "${ROOT[$n]}" "$@")
    read -r us rss rc <<<"$out"
    if [ "$rc" != 0 ]; then
        note "$n $* failed (exit $rc)"
        return 1
    fi
    echo "$us $rss"
}

have_exec=()
for n in "${names[@]}"; do
    if "${RT[$n]}" exec --help >/dev/null 2>&1; then
        have_exec+=("$n")
    fi
done
has_exec() { local x; for x in "${have_exec[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

# Failed attempts are retried (up to 5 times per sample) and counted: the report shows them,
# so a flaky runtime is visible instead of silently slower or faster.
declare -A FAILS
for n in "${names[@]}"; do FAILS[$n]=0; done
failed_attempt() { # NAME ID WHAT
    FAILS[$1]=$((FAILS[$1] + 1))
    [ "${FAILS[$1]}" -le 50 ] || die "$1: more than 50 failed attempts, giving up"
    note "$1: $3 of $2 failed; retrying"
    run_rt "$1" delete --force "$2" >/dev/null 2>&1 || true
}

# A long-running container per runtime for the exec figure.
for n in "${have_exec[@]}"; do
    for try in 1 2 3 4 5; do
        id=$tag-sleep-$n-$try
        if run_rt "$n" create --bundle "$work/sleep" "$id" </dev/null >/dev/null 2>"$work/err" &&
            run_rt "$n" start "$id" 2>>"$work/err"; then
            EXEC_ID[$n]=$id
            break
        fi
        cat "$work/err" >&2
        failed_attempt "$n" "$id" "create+start of the exec target"
    done
    [ -n "${EXEC_ID[$n]:-}" ] || die "$n: could not start the exec target"
done

samples=$work/samples
: >"$samples"
add() { echo "$1 $2 $3" >>"$samples"; } # METRIC RUNTIME VALUE

floor_flags=mnt,pid,net,ipc,uts

# ---------------------------------------------------------------- single containers, interleaved
note "$ROUNDS rounds of run / create+start+delete / exec / cella run --rootfs / kernel floor ($cgmode)"
for ((r = 0; r < ROUNDS; r++)); do
    # Rotate the order every round so no runtime always goes first (or right after another).
    order=()
    k=${#names[@]}
    for ((i = 0; i < k; i++)); do order+=("${names[$(((i + r) % k))]}"); done
    for n in "${order[@]}"; do
        for try in 1 2 3 4 5 6; do
            [ "$try" -lt 6 ] || die "$n run failed 5 times in a row"
            id=$tag-$n-$r-$try
            if read -r us rss < <(timed "$n" run --bundle "$work/true" "$id-run"); then
                add run "$n" "$us"
                add rss_run "$n" "$rss"
                break
            fi
            failed_attempt "$n" "$id-run" run
        done

        for try in 1 2 3 4 5 6; do
            [ "$try" -lt 6 ] || die "$n create+start+delete failed 5 times in a row"
            id=$tag-$n-$r-$try
            read -r c_us c_rss < <(timed "$n" create --bundle "$work/true" "$id") || { failed_attempt "$n" "$id" create; continue; }
            read -r s_us _ < <(timed "$n" start "$id") || { failed_attempt "$n" "$id" start; continue; }
            read -r d_us _ < <(timed "$n" delete --force "$id") || { failed_attempt "$n" "$id" delete; continue; }
            add csd "$n" $((c_us + s_us + d_us))
            add create "$n" "$c_us"
            add start "$n" "$s_us"
            add delete "$n" "$d_us"
            add rss_create "$n" "$c_rss"
            break
        done

        if has_exec "$n"; then
            read -r e_us e_rss < <(timed "$n" exec "${EXEC_ID[$n]}" /bin/true) || die "$n exec failed"
            add exec "$n" "$e_us"
            add rss_exec "$n" "$e_rss"
        fi
    done
    read -r us _ rc < <("$br" once -- "$CELLA_BIN/cella" --root "${ROOT[cella]}" run --rootfs "$rootfs" --name "$tag-f$r" -- /bin/true)
    [ "$rc" = 0 ] || die "cella run --rootfs failed (exit $rc)"
    add friendly cella "$us"
    read -r us _ rc < <("$br" once -- "$br" floor "$floor_flags" "$rootfs/bin/true")
    [ "$rc" = 0 ] || die "kernel floor program failed (exit $rc)"
    add floor floor "$us"
    printf '.' >&2
done
echo >&2

# ---------------------------------------------------------------- batches
note "$SEQ_ROUNDS rounds of $SEQ_N containers one after another and $PAR_N with $PAR_J at a time"
for ((r = 0; r < SEQ_ROUNDS; r++)); do
    order=()
    k=${#names[@]}
    for ((i = 0; i < k; i++)); do order+=("${names[$(((i + r) % k))]}"); done
    for n in "${order[@]}"; do
        mnt=()
        [ -n "${NS[$n]}" ] && mnt=(--mntns "${NS[$n]}")
        read -r us _ failed < <("$br" "${mnt[@]}" many "$SEQ_N" 1 -- "${RT[$n]}" --root "${ROOT[$n]}" run --bundle "$work/true" "$tag-s$r-$n-{}")
        [ "$failed" = 0 ] || die "$n: $failed of $SEQ_N sequential runs failed"
        add seq "$n" "$us"
        read -r us _ failed < <("$br" "${mnt[@]}" many "$PAR_N" "$PAR_J" -- "${RT[$n]}" --root "${ROOT[$n]}" run --bundle "$work/true" "$tag-p$r-$n-{}")
        [ "$failed" = 0 ] || die "$n: $failed of $PAR_N parallel runs failed"
        add par "$n" "$us"
    done
    read -r us _ failed < <("$br" many "$SEQ_N" 1 -- "$br" floor "$floor_flags" "$rootfs/bin/true")
    add seq floor "$us"
    read -r us _ failed < <("$br" many "$PAR_N" "$PAR_J" -- "$br" floor "$floor_flags" "$rootfs/bin/true")
    add par floor "$us"
    printf '.' >&2
done
echo >&2
[ -z "${KEEP_SAMPLES:-}" ] || cp "$samples" "$KEEP_SAMPLES"

# ---------------------------------------------------------------- report
median() { # METRIC RUNTIME -> median value, or nothing
    awk -v m="$1" -v r="$2" '$1 == m && $2 == r { print $3 }' "$samples" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
fmt() { # VALUE SCALE DECIMALS
    [ -n "$1" ] && awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN { printf("%." d "f", v / s) }' || printf 'n/a'
}
ratio() {
    if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
    else
        printf 'n/a'
    fi
}

echo
echo "cella start-up benchmark: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "host: $(uname -r), $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cgroups: $cgmode"
echo "cella: $("${RT[cella]}" --version 2>/dev/null | head -1)"
[ -z "${RT[runc]:-}" ] || echo "runc:  $("${RT[runc]}" --version | head -1)"
[ -z "${RT[crun]:-}" ] || echo "crun:  $("${RT[crun]}" --version | head -1)$([ -n "${NS[crun]}" ] && echo ' (in a mount namespace with /sys/fs/cgroup/unified hidden)')"
echo "samples: $ROUNDS per single-container figure, $SEQ_ROUNDS per batch figure; medians"
echo "floor: clone($floor_flags namespaces) + exec /bin/true (bench/benchrun.c)"
echo

row() { # LABEL METRIC SCALE DECIMALS [FLOOR_METRIC]
    local label=$1 m=$2 scale=$3 dec=$4 fm=${5:-}
    local c r k f=""
    c=$(median "$m" cella)
    r=$(median "$m" runc)
    k=$(median "$m" crun)
    [ -z "$fm" ] || f=$(median "$fm" floor)
    if [ "$m" = exec ]; then
        has_exec cella || c=""
    fi
    printf '%-30s %10s %10s %10s %10s %11s %11s %12s\n' "$label" \
        "$(fmt "$c" "$scale" "$dec")" "$(fmt "$r" "$scale" "$dec")" "$(fmt "$k" "$scale" "$dec")" \
        "$( [ -n "$fm" ] && fmt "$f" "$scale" "$dec" || echo -)" \
        "$(ratio "$c" "$k")" "$(ratio "$c" "$r")" "$( [ -n "$fm" ] && ratio "$c" "$f" || echo -)"
}
printf '%-30s %10s %10s %10s %10s %11s %11s %12s\n' figure cella runc crun floor cella/crun cella/runc cella/floor
row "run /bin/true (ms)" run 1000 1 floor
row "create+start+delete (ms)" csd 1000 1
row "  create (ms)" create 1000 1
row "  start (ms)" start 1000 1
row "  delete --force (ms)" delete 1000 1
row "exec /bin/true (ms)" exec 1000 1
row "$SEQ_N one after another (s)" seq 1000000 2 seq
row "$PAR_N, $PAR_J at a time (s)" par 1000000 2 par
row "peak RSS, run (KiB)" rss_run 1 0
row "peak RSS, create (KiB)" rss_create 1 0
fr=$(median friendly cella)
printf '%-30s %10s %10s %10s %10s %11s %11s %12s\n' "cella run --rootfs (ms)" "$(fmt "$fr" 1000 1)" - - \
    "$(fmt "$(median floor floor)" 1000 1)" "$(ratio "$fr" "$(median run crun)")" "$(ratio "$fr" "$(median run runc)")" \
    "$(ratio "$fr" "$(median floor floor)")"
for n in "${names[@]}"; do
    [ "${FAILS[$n]}" = 0 ] || echo "$n: ${FAILS[$n]} failed attempts (retried; see the bench: lines above)"
done
if ! has_exec cella; then
    echo
    echo "exec: cella-runc has no exec command yet (n/a)"
fi
echo
echo "ratios below 1.00x mean cella is faster / smaller. 'cella run --rootfs' ratios compare it with"
echo "the other runtimes' 'run' of the same bundle."
