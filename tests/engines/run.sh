#!/usr/bin/env bash
# tests/engines/run.sh — cella-runc as the OCI runtime of real container engines.
#
# Drives Debian's podman, docker engine (dockerd), containerd (ctr) and buildah with
# cella-runc as their runtime, then compares a podman container run by cella with the
# same container run by Debian's runc, then checkpoints a container through CRIU.
#
# Usage (as root, from anywhere):   tests/engines/run.sh
#
# Environment:
#   CELLA_RUNC    cella-runc binary to test (default: <target>/debug/cella-runc, built
#                 with `cargo build -p cella-cli --bin cella-runc` when missing)
#   ENGINES       default "podman docker containerd buildah"
#   PARITY        1 = compare with runc under podman (default 1)
#   CHECKPOINT    1 = podman container checkpoint/restore through CRIU (default 1)
#   INSTALL       1 = apt-get install missing engines (default 1)
#   STEP_TIMEOUT  seconds per step (default 120)
#   KEEP          1 = keep the scratch directory (logs, argv log)
#
# Every daemon runs on a private socket and root under the scratch directory and is
# stopped by its pid; nothing listens on the default sockets. Containers have no network.
# The image is Debian's static busybox packed locally as an OCI archive (no registry).
# Prints PASS/FAIL per step, ends with "N passed, N failed", exits 1 on any failure.

set -u
export LC_ALL=C
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENGINES=${ENGINES:-podman docker containerd buildah}
PARITY=${PARITY:-1}
CHECKPOINT=${CHECKPOINT:-1}
INSTALL=${INSTALL:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
KEEP=${KEEP:-0}
T0=$SECONDS

PASSED=0
FAILED=0
DAEMONS=()

pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
fail() {
    FAILED=$((FAILED + 1)); echo "FAIL: $1${2:+ ($2)}"
    [ -n "${3:-}" ] && printf '%s\n' "$3" | tail -n 12 | sed 's/^/    | /'
    return 0
}

# step NAME CHECK CMD...  run CMD (or a shell function) under a time limit with no stdin;
# CHECK is a bash condition over $rc, $out (stdout+stderr) and $secs (elapsed seconds).
# Shell functions run in a subshell, so they can use the arrays (P, D, C) set below.
rc=0; out=""; secs=0
ok() { [ "$rc" -eq 0 ]; }
has() { printf '%s' "$out" | grep -qF -- "$1"; }
lacks() { ! has "$1"; }
step() {
    local name=$1 check=$2 t=$SECONDS; shift 2
    if [ "$(type -t "$1")" = function ]; then
        # a subshell sees this script's functions and arrays; a watchdog bounds it
        ("$@") >"$W/step.out" 2>&1 </dev/null &
        local job=$! dog
        (sleep "$STEP_TIMEOUT"; kill -KILL "$job") >/dev/null 2>&1 &
        dog=$!
        wait "$job"; rc=$?
        kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
        [ $((SECONDS - t)) -ge "$STEP_TIMEOUT" ] && rc=124
    else
        timeout -k 10 "$STEP_TIMEOUT" "$@" >"$W/step.out" 2>&1 </dev/null
        rc=$?
    fi
    secs=$((SECONDS - t)); out=$(cat "$W/step.out")
    if [ "$rc" -eq 124 ]; then fail "$name" "timed out after ${STEP_TIMEOUT}s" "$out"; return 1; fi
    if eval "$check"; then pass "$name"; return 0; fi
    fail "$name" "rc=$rc, ${secs}s" "$out"; return 1
}

poll() { # poll SECONDS CMD...: until CMD succeeds
    local end=$((SECONDS + $1)); shift
    while [ $SECONDS -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.3; done
    return 1
}

stop_daemon() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null
}

have() { command -v "$1" >/dev/null 2>&1; }

# ------------------------------------------------------------------ cleanup
# What the engines leave outside their private roots (see docs/engines.md, "snags"):
# parent cgroups, /run/containerd and /run/docker, shim sockets; removed if we made them.
SIDE_DIRS="/run/containerd /run/docker /opt/containerd /var/lib/cni"
SIDE_NEW=""
for d in $SIDE_DIRS; do [ -e "$d" ] || SIDE_NEW="$SIDE_NEW $d"; done
CG_NAMES="libpod_parent docker cella-engines"
cg_dirs() { local n; for n in $CG_NAMES; do ls -d /sys/fs/cgroup/"$n" /sys/fs/cgroup/*/"$n" 2>/dev/null; done; }
CG_BEFORE=$(cg_dirs)

cleanup() {
    set +e
    local pid d m
    for pid in "${DAEMONS[@]}"; do stop_daemon "$pid"; done
    [ -n "${W:-}" ] && [ -d "$W" ] || return 0
    # conmon, shims and containers whose command line names the scratch dir are ours
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = $$ ] && continue
        { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "$W/" && kill -KILL "$pid" 2>/dev/null
    done
    # podman and buildah keep runtime state in cella's default root: forget their ids
    if [ -s "$W/argv.log" ] && [ -x "${RT:-}" ]; then
        for d in $(sed -n "s/^\(podman\|buildah\|parity\):.* create .* \([^ ]*\)\$/\2/p" "$W/argv.log" | sort -u); do
            timeout 10 "$RT" delete --force "$d" >/dev/null 2>&1
        done
    fi
    if [ -d /run/containerd/s ]; then
        for m in $(find /run/containerd/s -type s -newer "$W/.start" 2>/dev/null); do
            ss -xl 2>/dev/null | grep -qF -- "$m" || rm -f "$m"
        done
    fi
    for d in $(cg_dirs); do
        printf '%s\n' "$CG_BEFORE" | grep -qxF -- "$d" && continue
        for pid in $(cat $(find "$d" -name cgroup.procs) 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    sleep 0.3
    for d in $(cg_dirs); do
        printf '%s\n' "$CG_BEFORE" | grep -qxF -- "$d" || find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    for d in $SIDE_NEW; do [ -d "$d" ] && find "$d" -depth -type d -empty -delete 2>/dev/null; done
    for m in $(awk -v w="$W/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    if [ "$KEEP" = 1 ]; then echo "NOTE: kept $W"; else rm -rf --one-file-system "$W"; fi
}

finish() {
    cleanup
    trap - EXIT
    echo "engine tests: $((SECONDS - T0))s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# ------------------------------------------------------------------ preflight
if [ "$(id -u)" != 0 ]; then echo "FAIL: tests/engines/run.sh must run as root"; echo "0 passed, 1 failed"; exit 1; fi
W=$(mktemp -d /tmp/cella-engines.XXXXXX)
touch "$W/.start"
trap finish EXIT
trap 'exit 130' INT TERM
echo "scratch: $W   engines: $ENGINES"

# ------------------------------------------------------------------ install
want_packages() {
    local e p=(busybox-static runc util-linux iproute2)
    for e in $ENGINES; do
        case $e in
        podman) p+=(podman conmon golang-github-containers-common uidmap) ;;
        docker) p+=("docker.""io" containerd) ;; # Debian's docker engine package
        containerd) p+=(containerd) ;;
        buildah) p+=(buildah golang-github-containers-common uidmap) ;;
        esac
    done
    [ "$CHECKPOINT" = 1 ] && p+=(criu)
    printf '%s\n' "${p[@]}" | sort -u
}
if [ "$INSTALL" = 1 ]; then
    missing=()
    for p in $(want_packages); do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        # no daemon may start on the default sockets while the packages install
        policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
        fi
        STEP_TIMEOUT_WAS=$STEP_TIMEOUT; STEP_TIMEOUT=1500
        step "install: apt-get update" ok apt-get -o DPkg::Lock::Timeout=600 update
        step "install: ${missing[*]}" ok env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
        STEP_TIMEOUT=$STEP_TIMEOUT_WAS
        [ "$policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
fi

# ------------------------------------------------------------------ the runtime
if [ -z "${CELLA_RUNC:-}" ]; then
    CELLA_RUNC=${CARGO_TARGET_DIR:-$REPO/target}/debug/cella-runc
    if [ ! -x "$CELLA_RUNC" ]; then
        [ -f "$HOME/.cargo/env" ] && ! have cargo && . "$HOME/.cargo/env"
        step "build: cargo build -p cella-cli --bin cella-runc" ok \
            bash -c "cd '$REPO' && cargo build -p cella-cli --bin cella-runc"
    fi
fi
[ -x "$CELLA_RUNC" ] || { fail "runtime: $CELLA_RUNC is not an executable"; exit 1; }
# A copy outside target/ (daemons keep using it even if cargo rebuilds), named cella-runc:
# podman passes --log-format=json --log FILE only to runtimes named in
# runtime_supports_json, which the containers.conf below extends with "cella-runc".
mkdir -p "$W/bin"
cp "$CELLA_RUNC" "$W/bin/cella-runc.real"
RT=$W/bin/cella-runc.real
# The engines run this small wrapper (same basename as the runtime: podman decides by
# name), which records each argv in $W/argv.log — the json check below reads it — and
# execs the binary.
mk_wrapper() { # mk_wrapper TAG REAL -> $W/wrap-TAG/<basename of the name>
    local tag=$1 real=$2 name=${3:-cella-runc} f
    f=$W/wrap-$tag/$name
    mkdir -p "$W/wrap-$tag"
    printf '#!/bin/sh\nprintf "%%s:" %s >>%s; printf " %%s" "$@" >>%s; echo >>%s\nexec %s "$@"\n' \
        "$tag" "$W/argv.log" "$W/argv.log" "$W/argv.log" "$real" >"$f"
    chmod 755 "$f"
    echo "$f"
}
step "runtime: cella-runc --version (runc's shape)" 'ok && has "version" && has "spec: "' "$RT" --version

# ------------------------------------------------------------------ test image
build_image() {
    local r=$W/rootfs d=$W/oci a l lsz c csz m msz
    mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root,run} "$d/blobs/sha256"
    cp /bin/busybox "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    chmod 1777 "$r/tmp"
    tar --numeric-owner -C "$r" -cf "$W/layer.tar" . || return 1
    # one archive for every engine: an OCI layout plus docker's manifest.json
    l=$(sha256sum "$W/layer.tar" | cut -d' ' -f1); lsz=$(stat -c %s "$W/layer.tar")
    mv "$W/layer.tar" "$d/blobs/sha256/$l"
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$l" >"$d/c"
    c=$(sha256sum "$d/c" | cut -d' ' -f1); csz=$(stat -c %s "$d/c"); mv "$d/c" "$d/blobs/sha256/$c"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$c" "$csz" "$l" "$lsz" >"$d/m"
    m=$(sha256sum "$d/m" | cut -d' ' -f1); msz=$(stat -c %s "$d/m"); mv "$d/m" "$d/blobs/sha256/$m"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"localhost/cella-bb:latest","org.opencontainers.image.ref.name":"latest"}}]}' "$m" "$msz" >"$d/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    printf '[{"Config":"blobs/sha256/%s","RepoTags":["localhost/cella-bb:latest"],"Layers":["blobs/sha256/%s"]}]' "$c" "$l" >"$d/manifest.json"
    tar -C "$d" -cf "$W/image.tar" oci-layout index.json manifest.json blobs
}
[ -x /bin/busybox ] || { fail "image: /bin/busybox missing (install busybox-static)"; exit 1; }
step "image: busybox OCI archive" ok build_image || exit 1
IMAGE=$W/image.tar
I=localhost/cella-bb:latest

# shell snippets run inside busybox
MEM_LIMIT='cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
# the shell itself (pid 1) grows past 64 MiB: the OOM killer picks it, the exit is 137
HOG='echo started; x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived ${#x}'
TRAPS_TERM='trap "echo got-TERM; exit 0" TERM; echo ready; while :; do sleep 0.2; done'
IGNORES_TERM='trap "" TERM; echo ready; while :; do sleep 0.2; done'
COUNTER='i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.2; done'

# ------------------------------------------------------------------ podman
podman_conf() { # podman_conf DIR: containers.conf for this machine
    local nofile nproc
    # no CAP_SYS_RESOURCE here: podman's default rlimits (nofile 1048576) would fail
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=1048576
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    cat >"$1/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "cella-runc"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "cella-runc"]
[engine.runtimes]
cella-runc = ["$2"]
runc = ["/usr/sbin/runc"]
EOF
}
podman_cmd() { # podman_cmd DIR -> P array (the runtime is chosen with --runtime)
    P=(env CONTAINERS_CONF="$1/containers.conf" podman --root "$1/root" --runroot "$1/run"
        --tmpdir "$1/tmp" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
}
pstatus() { "${P[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1"; }

test_podman() {
    local PD=$W/podman N=(--network none) x
    have podman || { fail "podman: not installed"; return; }
    mkdir -p "$PD"
    podman_conf "$PD" "$(mk_wrapper podman "$RT")"
    podman_cmd "$PD"
    P+=(--runtime cella-runc)
    step "podman: load image" ok "${P[@]}" load -i "$IMAGE" || return
    step "podman: run: output and exit code" '[ $rc = 3 ] && has hello-podman' \
        "${P[@]}" run --rm "${N[@]}" $I sh -c 'echo hello-podman; exit 3'
    x=$(grep -c '^podman:.*--log-format=json --log .* create ' "$W/argv.log")
    if [ "$x" -gt 0 ]; then pass "podman: passes --log-format=json --log to cella-runc (runtime_supports_json)"
    else fail "podman: passes --log-format=json --log to cella-runc" "argv:" "$(grep '^podman:' "$W/argv.log")"; fi
    step "podman: runtime error surfaces from the json log" '[ $rc -ne 0 ] && has "no-such-binary"' \
        "${P[@]}" run --rm "${N[@]}" $I /no-such-binary
    step "podman: --memory 64m visible in the cgroup" 'ok && has 67108864' \
        "${P[@]}" run --rm "${N[@]}" --memory 64m $I sh -c "$MEM_LIMIT"
    step "podman: --memory 64m enforced (OOM kill, exit 137)" '[ $rc = 137 ] && has started && lacks survived' \
        "${P[@]}" run --rm "${N[@]}" --memory 64m --memory-swap 64m $I sh -c "$HOG"
    step "podman: run -d" ok "${P[@]}" run -d --name c1 "${N[@]}" --memory 64m $I sh -c "$TRAPS_TERM" || return
    step "podman: logs" 'ok && has ready' "${P[@]}" logs c1
    step "podman: exec: output and exit code" '[ $rc = 5 ] && has in-c1' "${P[@]}" exec c1 sh -c 'echo in-c1; exit 5'
    step "podman: exec -t" 'ok && has /dev/pts/' "${P[@]}" exec -t c1 tty
    step "podman: exec -u -w -e" 'ok && has uid=65534 && has /tmp && has FOO=bar' \
        "${P[@]}" exec -u 65534:65534 -w /tmp -e FOO=bar c1 sh -c 'id; pwd; env'
    step "podman: pause" ok "${P[@]}" pause c1
    step "podman: paused" 'ok && has paused' pstatus c1
    step "podman: exec refused while paused" '[ $rc -ne 0 ]' "${P[@]}" exec c1 true
    step "podman: unpause" ok "${P[@]}" unpause c1
    step "podman: update --memory 128m (live)" ok "${P[@]}" update --memory 128m c1
    step "podman: updated limit visible" 'ok && has 134217728' "${P[@]}" exec c1 sh -c "$MEM_LIMIT"
    step "podman: stop (TERM handled, exit 0)" 'ok && [ $secs -lt 8 ]' "${P[@]}" stop -t 10 c1
    step "podman: exited 0, handler ran" 'ok && has "exited 0"' pstatus c1
    step "podman: logs after stop" 'ok && has got-TERM' "${P[@]}" logs c1
    step "podman: rm" ok "${P[@]}" rm c1
    step "podman: run -d (ignores TERM)" ok "${P[@]}" run -d --name c2 "${N[@]}" $I sh -c "$IGNORES_TERM"
    step "podman: stop -t 2 (KILL after the timeout)" 'ok && [ $secs -ge 2 ]' "${P[@]}" stop -t 2 c2
    step "podman: exited 137" 'ok && has "exited 137"' pstatus c2
    step "podman: start again, kill -s KILL" ok sh -c "${P[*]} start c2 && ${P[*]} kill -s KILL c2"
    step "podman: rm -f" ok "${P[@]}" rm -f -t 0 c2
    step "podman: containers gone" 'ok && lacks c1 && lacks c2' "${P[@]}" ps -a --format '{{.Names}}'
    step "podman: run -t" 'ok && has /dev/pts/' "${P[@]}" run --rm -t "${N[@]}" $I tty
    [ "$CHECKPOINT" = 1 ] && test_checkpoint
    [ "$PARITY" = 1 ] && test_parity
    timeout 60 "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1
    timeout 60 "${P[@]}" rmi -a -f >/dev/null 2>&1
}

# ------------------------------------------------------------------ podman checkpoint
# A counter loop is checkpointed and restored: the restored container must go on counting
# from where it was (memory and processes survived). When CRIU itself cannot work on this
# kernel, cella must say so, naming CRIU's own error.
test_checkpoint() {
    local N=(--network none) before after
    have criu || { fail "checkpoint: criu not installed"; return; }
    criu check >"$W/criu-check.out" 2>&1
    local criu_rc=$?
    step "checkpoint: run -d counter" ok "${P[@]}" run -d --name ck "${N[@]}" $I sh -c "$COUNTER" || return
    sleep 1
    if [ "$criu_rc" -ne 0 ]; then
        echo "NOTE: 'criu check' fails here (criu $(criu --version | sed -n 's/^Version: //p'), kernel $(uname -r)):"
        sed 's/^/    | /' "$W/criu-check.out"
        CRIU_ERR=$(sed -n 's/^Error ([^)]*): //p' "$W/criu-check.out" | head -n 1)
        step "checkpoint: refused, naming CRIU's error ($CRIU_ERR)" '[ $rc -ne 0 ] && has "$CRIU_ERR"' \
            "${P[@]}" container checkpoint ck
        step "checkpoint: container still running after the refusal" 'ok && has "running"' pstatus ck
    else
        before=$("${P[@]}" exec ck cat /tmp/count)
        step "checkpoint: podman container checkpoint" ok "${P[@]}" container checkpoint ck
        step "checkpoint: exited after the dump" 'ok && has exited' pstatus ck
        step "checkpoint: podman container restore" ok "${P[@]}" container restore ck
        sleep 1
        after=$("${P[@]}" exec ck cat /tmp/count 2>/dev/null)
        out="before $before, after $after"
        if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ] && [ "$after" -lt $((before + 40)) ]; then
            pass "checkpoint: the counter goes on ($out)"
        else fail "checkpoint: the counter goes on" "$out"; fi
    fi
    timeout 60 "${P[@]}" rm -f -t 0 ck >/dev/null 2>&1
}

# ------------------------------------------------------------------ parity with runc
# The same podman command with runc and with cella: what the container sees must match.
PROBE='grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status
echo "--- mounts"
sed "s/ - / -- /" /proc/self/mountinfo | awk "{ sep = 0; for (i = 7; i <= NF; i++) if (\$i == \"--\") sep = i;
  fs = \$(sep + 1); so = \$(sep + 3); if (fs == \"overlay\") so = \"(overlay)\"; sub(/^r[ow],?/, \"\", so);
  gsub(/(^|,)(size=[0-9]+k|nr_inodes=[0-9]+|inode64)/, \"\", so); sub(/^,/, \"\", so);
  print \$5, \$6, fs, so }" | sort
echo "--- cgroup"
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes memory/memory.swappiness \
  memory/memory.oom_control pids/pids.max cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares \
  cpuset/cpuset.cpus blkio/blkio.weight memory.max memory.swap.max pids.max cpu.max cpu.weight; do
  [ -e /sys/fs/cgroup/$f ] && echo "$f: $(cat /sys/fs/cgroup/$f | tr "\n" " ")"; done
echo "--- devices"; sort /sys/fs/cgroup/devices/devices.list 2>/dev/null
echo "--- writes"; for f in /sys/x /sys/firmware/x /proc/acpi/x /sys/fs/cgroup/x /proc/sys/kernel/domainname /x/y; do
  echo "$f: $( (echo 1 >$f) 2>&1 | sed "s/.*: //")"; done
echo "--- misc"; id; umask; ulimit -n; ulimit -u; hostname | wc -c; ls /dev | tr "\n" " "; echo
grep -c . /proc/self/mountinfo >/dev/null; cat /proc/self/oom_score_adj; cat /proc/self/attr/current 2>/dev/null; echo'

# Differences examined and kept (docs/engines.md, "Parity with runc"), folded on both sides:
# - masked files (/proc/keys...) are binds of /dev/null: runc binds the container's
#   (a tmpfs file node), cella the host's, opened and checked (char 1:3) before pivot_root;
# - a read-only `type: cgroup` mount: cella makes the holding tmpfs read-only as well,
#   runc 1.1 leaves it writable (the spec asks for "ro"; the write probe shows EROFS);
# - the hybrid host's cgroup2 hierarchy: cella also mounts /sys/fs/cgroup/unified (the
#   container's own cgroup in it), runc 1.1 leaves it out.
accepted() {
    sed -E -e 's#^(/proc/[a-z_]+) .*(tmpfs|devtmpfs) mode=755$#\1 (bind of /dev/null)#' \
        -e 's#^/sys/fs/cgroup r[ow],#/sys/fs/cgroup #' \
        -e '\#^/sys/fs/cgroup/unified #d' \
        -e 's#^/sys/fs/cgroup/x: .*#/sys/fs/cgroup/x: (writable in runc 1.1 only)#'
}

parity_case() { # parity_case NAME PODMAN-RUN-ARGS...
    local name=$1 r; shift
    for r in runc cella-runc; do
        timeout "$STEP_TIMEOUT" "${PP[@]}" --runtime "$r" run --rm --network none "$@" $I sh -c "$PROBE" \
            >"$W/parity-$name.$r" 2>&1 </dev/null
        echo "exit $?" >>"$W/parity-$name.$r"
    done
    if diff -u <(accepted <"$W/parity-$name.runc") <(accepted <"$W/parity-$name.cella-runc") >"$W/parity-$name.diff"; then
        pass "parity: $name: status, mounts, cgroup files, exit code identical to runc"
    else
        fail "parity: $name: differs from runc (- runc, + cella)" "" "$(cat "$W/parity-$name.diff")"
    fi
}

test_parity() {
    local PD=$W/parity
    [ -x /usr/sbin/runc ] || { fail "parity: /usr/sbin/runc missing (apt-get install runc)"; return; }
    mkdir -p "$PD"
    podman_conf "$PD" "$(mk_wrapper parity "$RT")"
    podman_cmd "$PD"
    PP=("${P[@]}")
    timeout 120 "${PP[@]}" load -i "$IMAGE" >/dev/null 2>&1
    parity_case default
    parity_case limits --memory 64m --memory-swap 96m --pids-limit 50 --cpus 0.5 --cpu-shares 512
    parity_case locked-down --read-only --cap-drop all --cap-add NET_BIND_SERVICE \
        --security-opt no-new-privileges --user 65534:65534 --tmpfs /scratch
    parity_case privileged --privileged
    local r e
    for r in runc cella-runc; do
        for e in 0 1 42; do
            timeout 60 "${PP[@]}" --runtime "$r" run --rm --network none $I sh -c "exit $e" >/dev/null 2>&1 </dev/null
            printf '%s ' $?
        done
        timeout 60 "${PP[@]}" --runtime "$r" run --rm --network none $I sh -c 'sleep 100 & kill -TERM $!; wait $!' >/dev/null 2>&1 </dev/null
        printf '%s ' $?
        timeout 60 "${PP[@]}" --runtime "$r" run --rm --network none $I /not-there >/dev/null 2>&1 </dev/null
        printf '%s\n' $?
    done >"$W/parity-exit"
    if [ "$(sed -n 1p "$W/parity-exit")" = "$(sed -n 2p "$W/parity-exit")" ]; then
        pass "parity: exit codes (0 1 42, a child killed by TERM, missing binary) equal: $(sed -n 1p "$W/parity-exit")"
    else fail "parity: exit codes" "runc: $(sed -n 1p "$W/parity-exit") cella: $(sed -n 2p "$W/parity-exit")"; fi
    timeout 60 "${PP[@]}" rm -a -f -t 0 >/dev/null 2>&1
    timeout 60 "${PP[@]}" rmi -a -f >/dev/null 2>&1
}

# ------------------------------------------------------------------ docker
dstatus() { "${D[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1"; }
test_docker() {
    local DD=$W/docker pid R
    have dockerd || { fail "docker: dockerd not installed"; return; }
    mkdir -p "$DD"
    # private data-root, exec-root and socket; no bridge and no iptables changes
    dockerd --data-root "$DD/data" --exec-root "$DD/exec" --pidfile "$DD/docker.pid" \
        -H "unix://$DD/docker.sock" --iptables=false --ip-forward=false --ip-masq=false \
        --bridge=none --storage-driver overlay2 --add-runtime "cella=$(mk_wrapper docker "$RT")" \
        >"$DD/dockerd.log" 2>&1 </dev/null &
    pid=$!; DAEMONS+=("$pid")
    D=(/usr/bin/docker -H "unix://$DD/docker.sock") # Debian's client, not another on PATH
    if poll 60 "${D[@]}" version; then pass "docker: dockerd up"; else
        fail "docker: dockerd up" "" "$(tail -n 20 "$DD/dockerd.log")"; return; fi
    R=(--runtime cella --network none)
    docker_steps
    timeout 60 "${D[@]}" rm -f $(timeout 30 "${D[@]}" ps -aq) >/dev/null 2>&1
    stop_daemon "$pid"
}
docker_steps() {
    step "docker: load image" ok "${D[@]}" load -i "$IMAGE" || return
    step "docker: run: output and exit code" '[ $rc = 3 ] && has hello-docker' \
        "${D[@]}" run --rm "${R[@]}" $I sh -c 'echo hello-docker; exit 3'
    step "docker: runtime error surfaces from the json log" '[ $rc -ne 0 ] && has "no-such-binary"' \
        "${D[@]}" run --rm "${R[@]}" $I /no-such-binary
    step "docker: --memory 64m visible in the cgroup" 'ok && has 67108864' \
        "${D[@]}" run --rm "${R[@]}" --memory 64m $I sh -c "$MEM_LIMIT"
    step "docker: --memory 64m enforced (OOM kill, exit 137)" '[ $rc = 137 ] && has started && lacks survived' \
        "${D[@]}" run --rm "${R[@]}" --memory 64m --memory-swap 64m $I sh -c "$HOG"
    step "docker: run -d" ok "${D[@]}" run -d --name c1 "${R[@]}" --memory 64m $I sh -c "$TRAPS_TERM" || return
    poll 10 sh -c "${D[*]} logs c1 | grep -q ready"
    step "docker: logs" 'ok && has ready' "${D[@]}" logs c1
    step "docker: exec: output and exit code" '[ $rc = 5 ] && has in-c1' "${D[@]}" exec c1 sh -c 'echo in-c1; exit 5'
    step "docker: exec -t" 'ok && has /dev/pts/' "${D[@]}" exec -t c1 tty
    step "docker: exec -u -w -e" 'ok && has uid=65534 && has /tmp && has FOO=bar' \
        "${D[@]}" exec -u 65534:65534 -w /tmp -e FOO=bar c1 sh -c 'id; pwd; env'
    step "docker: top (runtime ps)" 'ok && has "sleep"' "${D[@]}" top c1
    step "docker: pause" ok "${D[@]}" pause c1
    step "docker: paused" 'ok && has paused' dstatus c1
    step "docker: unpause" ok "${D[@]}" unpause c1
    step "docker: update --memory 128m (live)" ok "${D[@]}" update --memory 128m --memory-swap 256m c1
    step "docker: updated limit visible" 'ok && has 134217728' "${D[@]}" exec c1 sh -c "$MEM_LIMIT"
    step "docker: stop (TERM handled, exit 0)" 'ok && [ $secs -lt 8 ]' "${D[@]}" stop -t 10 c1
    step "docker: exited 0, handler ran" 'ok && has "exited 0"' dstatus c1
    step "docker: logs after stop" 'ok && has got-TERM' "${D[@]}" logs c1
    step "docker: rm" ok "${D[@]}" rm c1
    step "docker: run -d (ignores TERM)" ok "${D[@]}" run -d --name c2 "${R[@]}" $I sh -c "$IGNORES_TERM"
    step "docker: stop -t 2 (KILL after the timeout)" 'ok && [ $secs -ge 2 ]' "${D[@]}" stop -t 2 c2
    step "docker: exited 137" 'ok && has "exited 137"' dstatus c2
    step "docker: start again, kill" ok sh -c "${D[*]} start c2 && ${D[*]} kill c2"
    step "docker: rm -f" ok "${D[@]}" rm -f c2
    step "docker: containers gone" 'ok && lacks c1 && lacks c2' "${D[@]}" ps -a --format '{{.Names}}'
    step "docker: run -t" 'ok && has /dev/pts/' "${D[@]}" run --rm -t "${R[@]}" $I tty
}

# ------------------------------------------------------------------ containerd + ctr
# `ctr run --runc-binary` is the io.containerd.runc.v2 shim with BinaryName set: the path a
# Kubernetes RuntimeClass takes. The helpers also run in `bash -c` strings, hence the exports.
task_field() { ctr --address "$CTR_ADDR" -n cella-engines task ls 2>/dev/null | awk -v id="$1" -v f="$2" '$1 == id {print $f}'; }
task_limit() {
    local pid cg
    pid=$(task_field "$1" 2) && [ -n "$pid" ] || return 1
    cg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$pid/cgroup")
    if [ -n "$cg" ]; then cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes"
    else cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup"); cat "/sys/fs/cgroup$cg/memory.max"; fi
}
export -f task_field task_limit
test_containerd() {
    local CD=$W/containerd pid
    have containerd && have ctr || { fail "containerd: not installed"; return; }
    mkdir -p "$CD"
    cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[debug]
  address = "$CD/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"
EOF
    containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 </dev/null &
    pid=$!; DAEMONS+=("$pid")
    export CTR_ADDR=$CD/containerd.sock
    C=(ctr --address "$CTR_ADDR" -n cella-engines)
    if poll 60 "${C[@]}" version; then pass "containerd: up"; else
        fail "containerd: up" "" "$(tail -n 20 "$CD/containerd.log")"; return; fi
    R=(--runc-binary "$(mk_wrapper containerd "$RT")" --runc-root "$CD/runc-root" --fifo-dir "$CD/fifo")
    containerd_steps
    local t
    for t in $("${C[@]}" task ls -q 2>/dev/null); do
        timeout 30 "${C[@]}" task kill -a -s SIGKILL "$t" >/dev/null 2>&1; sleep 0.5
        timeout 30 "${C[@]}" task rm -f "$t" >/dev/null 2>&1
    done
    for t in $("${C[@]}" container ls -q 2>/dev/null); do timeout 30 "${C[@]}" container rm "$t" >/dev/null 2>&1; done
    stop_daemon "$pid"
}
containerd_steps() {
    local i E=(--fifo-dir "$W/containerd/fifo")
    step "containerd: ctr images import" ok "${C[@]}" images import "$IMAGE" || return
    step "containerd: ctr run --runc-binary: output and exit code" '[ $rc = 3 ] && has hello-ctr' \
        "${C[@]}" run --rm "${R[@]}" $I k1 sh -c 'echo hello-ctr; exit 3'
    step "containerd: --memory-limit 64m enforced (OOM kill, exit 137)" '[ $rc = 137 ] && has started && lacks survived' \
        "${C[@]}" run --rm "${R[@]}" --memory-limit 67108864 $I k2 sh -c "$HOG"
    step "containerd: run -d (log to a file)" ok "${C[@]}" run -d "${R[@]}" --log-uri "file://$W/containerd/k3.log" \
        --memory-limit 67108864 $I k3 sh -c "$TRAPS_TERM" || return
    for i in $(seq 40); do [ -n "$(task_field k3 2)" ] && break; sleep 0.25; done
    step "containerd: memory limit on the task's cgroup" 'ok && has 67108864' task_limit k3
    poll 10 grep -q ready "$W/containerd/k3.log"
    step "containerd: logs" 'ok && has ready' cat "$W/containerd/k3.log"
    step "containerd: task exec: output and exit code" '[ $rc = 5 ] && has in-k3' \
        "${C[@]}" task exec "${E[@]}" --exec-id e1 k3 sh -c 'echo in-k3; exit 5'
    # ctr needs a real terminal for -t: script(1) gives it one
    step "containerd: task exec -t" 'ok && has /dev/pts/' \
        script -qec "${C[*]} task exec ${E[*]} -t --exec-id e2 k3 tty" /dev/null
    step "containerd: task exec --user --cwd" 'ok && has uid=65534 && has /tmp' \
        "${C[@]}" task exec "${E[@]}" --user 65534 --cwd /tmp --exec-id e3 k3 sh -c 'id; pwd'
    step "containerd: task ps (runtime ps)" 'ok && has "$(task_field k3 2)"' "${C[@]}" task ps k3
    step "containerd: task pause" ok "${C[@]}" task pause k3
    step "containerd: PAUSED" '[ "$out" = PAUSED ]' task_field k3 3
    step "containerd: task resume" ok "${C[@]}" task resume k3
    step "containerd: RUNNING" '[ "$out" = RUNNING ]' task_field k3 3
    # ctr 1.6 has no update command: docker's update above goes through the same shim
    step "containerd: task kill (TERM handled)" ok "${C[@]}" task kill k3
    for i in $(seq 40); do [ "$(task_field k3 3)" = STOPPED ] && break; sleep 0.25; done
    step "containerd: STOPPED after TERM" '[ "$out" = STOPPED ]' task_field k3 3
    step "containerd: logs after stop" 'ok && has got-TERM' cat "$W/containerd/k3.log"
    step "containerd: task rm, container rm" ok sh -c "${C[*]} task rm k3 && ${C[*]} container rm k3"
    step "containerd: run -d (ignores TERM)" ok "${C[@]}" run -d "${R[@]}" $I k4 sh -c "$IGNORES_TERM"
    step "containerd: stop with a timeout: TERM ignored for 2s, then KILL" \
        'ok && [ "$out" = "RUNNING STOPPED" ]' bash -c "${C[*]} task kill k4 && sleep 2 && s1=\$(task_field k4 3) &&
        ${C[*]} task kill -s SIGKILL k4 && for i in \$(seq 40); do [ \"\$(task_field k4 3)\" = STOPPED ] && break; sleep 0.25; done;
        echo \$s1 \$(task_field k4 3)"
    step "containerd: task rm, container rm" ok sh -c "${C[*]} task rm k4 && ${C[*]} container rm k4"
    step "containerd: kill --all, rm -f" ok sh -c "${C[*]} run -d ${R[*]} $I k5 sleep 1000 &&
        ${C[*]} task kill -a -s SIGKILL k5 && sleep 0.5 && ${C[*]} task rm -f k5 && ${C[*]} container rm k5"
    step "containerd: run -t" 'ok && has /dev/pts/' script -qec "${C[*]} run --rm -t ${R[*]} $I k6 tty" /dev/null
    step "containerd: containers gone" 'ok && lacks k3 && lacks k4 && lacks k5' "${C[@]}" container ls -q
}

# ------------------------------------------------------------------ buildah
# buildah runs the runtime directly (no conmon) for `run` and for RUN steps; it has no
# detached containers, so exec/pause/update/logs/stop do not apply to it.
test_buildah() {
    local BD=$W/buildah X
    have buildah || { fail "buildah: not installed"; return; }
    mkdir -p "$BD/tmp" "$BD/ctx"
    X=$(mk_wrapper buildah "$RT")
    B=(env TMPDIR="$BD/tmp" buildah --root "$BD/root" --runroot "$BD/run" --storage-driver overlay)
    step "buildah: from oci-archive" ok "${B[@]}" from --name b1 "oci-archive:$IMAGE" || return
    step "buildah: run: output and exit code" '[ $rc = 3 ] && has hello-buildah' \
        "${B[@]}" run --network none --runtime "$X" b1 sh -c 'echo hello-buildah; exit 3'
    step "buildah: run -t" 'ok && has /dev/pts/' "${B[@]}" run --network none --runtime "$X" -t b1 tty
    step "buildah: from --memory 64m" ok "${B[@]}" from --name b2 --memory 64m --memory-swap 64m "oci-archive:$IMAGE"
    step "buildah: --memory 64m enforced (OOM kill)" '[ $rc -ne 0 ] && has started && lacks survived && has killed' \
        "${B[@]}" run --network none --runtime "$X" b2 sh -c "$HOG"
    printf 'FROM oci-archive:%s\nRUN echo built-by-cella >/built.txt\n' "$IMAGE" >"$BD/ctx/Containerfile"
    step "buildah: bud with a RUN step" ok "${B[@]}" bud --network none --runtime "$X" -t localhost/cella-built "$BD/ctx"
    step "buildah: the RUN step's file is in the image" 'ok && has built-by-cella' \
        sh -c "c=\$(${B[*]} from localhost/cella-built) && ${B[*]} run --network none --runtime '$X' \$c cat /built.txt"
    step "buildah: rm" ok "${B[@]}" rm -a
    timeout 60 "${B[@]}" rmi -a -f >/dev/null 2>&1
}

for e in $ENGINES; do
    case $e in
    podman) test_podman ;;
    docker) test_docker ;;
    containerd) test_containerd ;;
    buildah) test_buildah ;;
    *) fail "unknown engine $e" ;;
    esac
done
exit
