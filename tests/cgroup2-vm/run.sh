#!/usr/bin/env bash
# Run cella's integration test binaries inside a throw-away QEMU guest whose only cgroup
# hierarchy is cgroup v2 (all controllers enabled), the layout most users have.
#
# Usage: tests/cgroup2-vm/run.sh [-t SECONDS] [-m MiB] [-e K=V]... TEST_BINARY [ARGS...] [--- TEST_BINARY [ARGS...]]...
#
#   TEST_BINARY  a libtest binary built on the host (e.g. target/debug/deps/resources-<hash>,
#                as printed by `cargo test --no-run`). Several binaries are separated by
#                "---"; each runs with its ARGS (default: --test-threads=1).
#   -t           whole-guest timeout (default 1200 s)     -m  guest memory (default 2048)
#   -e K=V       environment for the tests (repeatable)
#
# The binaries cella-runc and cella next to the test binaries' target dir are copied into the
# guest at the same absolute paths (the tests have them compiled in), with the busybox test
# rootfs (CELLA_TEST_ROOTFS, default tests/fixtures/rootfs, built when missing).
# Prints each binary's libtest output and a final "cgroup2-vm: N passed, N failed" line; exits
# 0 when every binary passed, 1 when one failed, 124 on guest timeout, 125 when the guest
# could not run.
#
# Needs root and Debian 12 (apt). Installs qemu-system-x86 and xz-utils when missing, and
# fetches Debian's kernel (linux-image-amd64) with `apt-get download` into
# /var/cache/cella-cgroup2-vm. KVM is used when the CPU has vmx/svm and /dev/kvm works;
# otherwise QEMU emulates (TCG, ~5 s boot). The approach follows the project's shared tool
# ../shared/tools/cgroup2-vm.sh (vmlinux booted through PVH, a tmpfs root so pivot_root works,
# busybox init reaping orphans, the command's output on a second serial port).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CELLA_VM_CACHE:-/var/cache/cella-cgroup2-vm}
TMO=1200 MEM=2048 CPUS=2 ENVS=()

say() { echo "cgroup2-vm: $*" >&2; }
die() { say "error: $*"; exit 125; }

while getopts "t:m:e:h" o; do
  case $o in
    t) TMO=$OPTARG ;; m) MEM=$OPTARG ;; e) ENVS+=("$OPTARG") ;;
    h) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 125 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || die "no test binary given (see -h)"
[ "$(id -u)" = 0 ] || die "must run as root"
export PATH="$PATH:/usr/sbin:/sbin"

# ---------------------------------------------------------------- host packages
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v xz >/dev/null || need+=(xz-utils)
command -v cpio >/dev/null || need+=(cpio)
if ! LC_ALL=C file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then need+=(busybox-static file); fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null >/dev/null 2>&1 ||
    { apt-get update -q </dev/null >/dev/null 2>&1; apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null >/dev/null; } ||
    die "apt-get install ${need[*]} failed"
fi
BB=/bin/busybox

# ---------------------------------------------------------------- kernel (cached)
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9
KPKG=${CELLA_VM_KERNEL_PKG:-}
if [ -z "$KPKG" ]; then
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$KPKG" ]; then apt-get update -q </dev/null >/dev/null 2>&1 || true
    KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
  [ -n "$KPKG" ] || die "cannot resolve the kernel package linux-image-amd64"
fi
KDIR=$CACHE/$KPKG
if [ ! -f "$KDIR/.done" ]; then
  say "fetching $KPKG"
  rm -rf "$KDIR"; mkdir -p "$KDIR/deb"; chown _apt "$KDIR/deb" 2>/dev/null || true
  (cd "$KDIR/deb" && apt-get download "$KPKG" >/dev/null 2>&1) ||
    { apt-get update -q </dev/null >/dev/null 2>&1; (cd "$KDIR/deb" && apt-get download "$KPKG" >/dev/null); } || die "apt-get download $KPKG failed"
  dpkg -x "$KDIR"/deb/*.deb "$KDIR/x"
  kver=$(ls "$KDIR/x/lib/modules" | head -n1)
  # An uncompressed vmlinux boots through PVH and skips the slow in-guest decompressor.
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KDIR/x/boot/vmlinuz-$kver" | head -n1 | cut -d: -f1 || true)
  if [ -n "$off" ] && tail -c +$((off + 1)) "$KDIR/x/boot/vmlinuz-$kver" | xz -dc >"$KDIR/vmlinux" 2>/dev/null; head -c4 "$KDIR/vmlinux" | grep -q ELF; then :
  else cp "$KDIR/x/boot/vmlinuz-$kver" "$KDIR/vmlinux"; fi
  mkdir -p "$KDIR/lib/modules"; mv "$KDIR/x/lib/modules/$kver" "$KDIR/lib/modules/"
  "$BB" depmod -b "$KDIR" "$kver"   # the package leaves modules.dep to its postinst
  echo "$kver" >"$KDIR/kver"
  rm -rf "$KDIR/x" "$KDIR/deb"
  touch "$KDIR/.done"
fi
flock -u 9
KVER=$(cat "$KDIR/kver")
MODDIR=$KDIR/lib/modules/$KVER

# ---------------------------------------------------------------- guest file tree
TMP=$(mktemp -d /tmp/cella-cgroup2-vm.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ST=$TMP/root
mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,newroot,cg2}
cp "$BB" "$ST/bin/busybox"
for a in $("$BB" --list-full); do [ -e "$ST/$a" ] || ln -s /bin/busybox "$ST/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ST/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ST/etc/group"
printf '::sysinit:/cg2/stage2\n' >"$ST/etc/inittab"

put() {  # copy host file $1 to the same path in the guest (stripped if an ELF with debug info)
  mkdir -p "$ST$(dirname "$1")"
  cp -L "$1" "$ST$1"
  if command -v strip >/dev/null && head -c4 "$1" | grep -q ELF; then strip --strip-debug "$ST$1" 2>/dev/null || true; fi
}
put_libs() {  # the shared libraries of a dynamic executable
  ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r l; do [ -e "$ST$l" ] || put "$l"; done
}
# Modules: overlay (the friendly `cella run` writes to an overlay), with dependencies.
for m in overlay; do
  for f in $(awk -v m="$m" -F: '{n=$1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n)} n==m {print $1; print $2}' "$MODDIR/modules.dep"); do
    mkdir -p "$ST/lib/modules/$KVER/$(dirname "$f")"; cp "$MODDIR/$f" "$ST/lib/modules/$KVER/$f"
  done
done
cp "$MODDIR"/modules.{dep,alias,builtin,order} "$ST/lib/modules/$KVER/" 2>/dev/null || true

# The test binaries, each with its arguments; cella-runc and cella from the same target dir.
RUNS=$ST/cg2/tests
: >"$RUNS"
bins=() cur=()
flush() { [ ${#cur[@]} -gt 0 ] && bins+=("$(printf '%q ' "${cur[@]}")"); cur=(); }
for a in "$@"; do if [ "$a" = "---" ]; then flush; else cur+=("$a"); fi; done
flush
for line in "${bins[@]}"; do
  eval "set -- $line"
  b=$(readlink -f "$1"); shift
  [ -x "$b" ] || die "test binary $b is not an executable"
  put "$b"; put_libs "$b"
  tdir=$(dirname "$(dirname "$b")")   # target/debug/deps/x -> target/debug
  for exe in cella-runc cella; do
    [ -x "$tdir/$exe" ] && [ ! -e "$ST$tdir/$exe" ] && { put "$tdir/$exe"; put_libs "$tdir/$exe"; }
  done
  [ $# -eq 0 ] && set -- --test-threads=1
  printf '%q ' "$b" "$@" >>"$RUNS"; echo >>"$RUNS"
done
ROOTFS=${CELLA_TEST_ROOTFS:-$repo/tests/fixtures/rootfs}
[ -x "$ROOTFS/bin/busybox" ] || bash "$repo/tests/make-rootfs.sh" "$ROOTFS" >&2
mkdir -p "$ST$(dirname "$ROOTFS")"; cp -a "$ROOTFS" "$ST$ROOTFS"

NONCE=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
{
  echo "export CELLA_TEST_ROOTFS=$(printf %q "$ROOTFS") RUST_BACKTRACE=1"
  for e in "${ENVS[@]:-}"; do [ -n "$e" ] && echo "export $(printf %q "$e")"; done
} >"$ST/cg2/env"

# Stage 1: the initramfs cannot be pivot_root'ed away from; copy it into a tmpfs and
# switch_root there, with busybox init as PID 1 (it reaps orphaned container processes).
cat >"$ST/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t tmpfs -o mode=0755,size=90% root /newroot
for f in /*; do case $f in /newroot|/init) ;; *) /bin/busybox cp -a "$f" /newroot/ ;; esac; done
exec /bin/busybox switch_root /newroot /sbin/init
EOF
# Stage 2: mounts, pure cgroup v2 with every controller, the tests, the exit marker.
cat >"$ST/cg2/stage2" <<EOF
#!/bin/sh
NONCE=$NONCE
EOF
cat >>"$ST/cg2/stage2" <<'EOF'
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts -o ptmxmode=0666,mode=0620 devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
# The root is already a tmpfs; /tmp may hold the repository (CI clones can live there).
mkdir -p /tmp /run; chmod 1777 /tmp
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ln -sf /proc/self/fd /dev/fd
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control; done
modprobe overlay 2>/dev/null || echo "cgroup2-vm: modprobe overlay failed"
ip link set lo up 2>/dev/null
. /cg2/env
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{
  echo "cgroup2-vm: guest kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), v1 mounts: $(grep -c ' cgroup ' /proc/mounts)"
  rc=0
  while read -r line; do
    [ -n "$line" ] || continue
    echo "cgroup2-vm: running $line"
    cd /tmp && eval "$line" || rc=1
  done </cg2/tests
  echo "cgroup2-vm: tests done rc=$rc"
  echo "$rc" >/tmp/rc
} </dev/null >/dev/ttyS1 2>&1
stty -F /dev/ttyS1 raw -echo 2>/dev/null   # drains the output
echo "CELLA_VM_EXIT_${NONCE}=$(cat /tmp/rc 2>/dev/null || echo 125)" >/dev/ttyS0
sync; poweroff -f
EOF
chmod +x "$ST/init" "$ST/cg2/stage2"
(cd "$ST" && find . | cpio -o -H newc --quiet) >"$TMP/initrd"

# ---------------------------------------------------------------- boot
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then ACCEL=kvm CPU=host; else ACCEL=tcg CPU=max,-erms,-fsrm; fi
say "booting $KPKG ($ACCEL, $CPUS cpus, ${MEM}M, initrd $(du -h "$TMP/initrd" | cut -f1))"
t0=$(date +%s)
set +e
timeout -k 5 "$TMO" qemu-system-x86_64 -M pc -accel "$ACCEL" -cpu "$CPU" -m "$MEM" -smp "$CPUS" \
  -nodefaults -no-user-config -display none -no-reboot \
  -chardev "file,id=con,path=$TMP/console" -serial chardev:con \
  -chardev "stdio,id=out,signal=off" -serial chardev:out \
  -kernel "$KDIR/vmlinux" -initrd "$TMP/initrd" \
  -append "console=ttyS0 quiet panic=-1 oops=panic cgroup_no_v1=all random.trust_cpu=on 8250.nr_uarts=2 tsc=reliable" \
  </dev/null | tee "$TMP/out"
qrc=${PIPESTATUS[0]}
set -e
mark=$(grep -a "CELLA_VM_EXIT_${NONCE}=" "$TMP/console" | tail -n1 || true)
passed=$(grep -a '^test result:' "$TMP/out" | sed -n 's/.* \([0-9]*\) passed.*/\1/p' | awk '{s+=$1} END {print s+0}')
failed=$(grep -a '^test result:' "$TMP/out" | sed -n 's/.* \([0-9]*\) failed.*/\1/p' | awk '{s+=$1} END {print s+0}')
say "$passed passed, $failed failed ($(( $(date +%s) - t0 )) s in the guest)"
if [ -z "$mark" ]; then
  say "the guest gave no exit status (qemu rc=$qrc); its console:"; tail -n 40 "$TMP/console" >&2
  [ "$qrc" = 124 ] && exit 124 || exit 125
fi
rc=${mark#*=}; rc=${rc%%[!0-9]*}
exit "${rc:-125}"
