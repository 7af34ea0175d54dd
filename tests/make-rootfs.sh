#!/usr/bin/env bash
# Build a minimal busybox root filesystem for cella's integration tests.
#
# Usage: tests/make-rootfs.sh [DEST]     (default: tests/fixtures/rootfs, gitignored)
#
# The rootfs holds Debian's statically linked busybox (package busybox-static) with one
# symlink per applet, plus the few files a container expects: /etc/passwd, /etc/group, and
# empty mount points. Running it again on an existing DEST brings it back to the same state.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${1:-$here/fixtures/rootfs}
busybox=${BUSYBOX:-/bin/busybox}

die() { echo "make-rootfs: $*" >&2; exit 1; }

[ -x "$busybox" ] || die "$busybox not found: install Debian's busybox-static (apt-get install busybox-static)"
# A dynamically linked busybox would need its loader and libc inside the rootfs.
if ! LC_ALL=C file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    if command -v file >/dev/null; then
        die "$busybox is not statically linked: install busybox-static instead of busybox"
    fi
    # Without file(1): a static executable has no PT_INTERP program header.
    if LC_ALL=C readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
        die "$busybox is not statically linked: install busybox-static instead of busybox"
    fi
    command -v readelf >/dev/null || die "need file(1) or readelf(1) to check that $busybox is static"
fi

mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev root tmp var/tmp home
chmod 1777 tmp var/tmp
chmod 0700 root

install -m 0755 "$busybox" bin/busybox
applets=$(bin/busybox --list) || die "$busybox --list failed"
[ -n "$applets" ] || die "$busybox --list printed no applets"
for applet in $applets; do
    [ "$applet" = busybox ] && continue
    ln -sfn busybox "bin/$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo 'cella-test' > etc/hostname
: > etc/hosts
: > etc/resolv.conf
chmod 0644 etc/passwd etc/group etc/hostname etc/hosts etc/resolv.conf

count=$(find bin -maxdepth 1 -type l | wc -l)
echo "make-rootfs: $dest ready ($count applets)"
