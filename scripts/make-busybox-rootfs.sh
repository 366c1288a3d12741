#!/usr/bin/env bash
# Build a minimal busybox root filesystem from Debian's busybox-static and pack it as a tar:
# the static binary, a link per applet, /etc/passwd, /etc/group, and the usual empty directories.
# Tests, examples and the README import it with `berth image import` (or push it to a local registry).
#
# usage: scripts/make-busybox-rootfs.sh OUT.tar [EXTRA_DIR]
#   EXTRA_DIR, when given, is copied over the rootfs (for test images that need a few more files).
set -euo pipefail

out=${1:?usage: $0 OUT.tar [EXTRA_DIR]}
extra=${2:-}
busybox=/bin/busybox

if ! file_out=$(LC_ALL=C readelf -l "$busybox" 2>/dev/null) || grep -q "Requesting program interpreter" <<<"$file_out"; then
    echo "error: $busybox is missing or not statically linked; install Debian's busybox-static (.ci/run does)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,proc,sys,dev,run,var/tmp,var/log,www}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
# One hard link per applet, where busybox installs it (bin, sbin, usr/bin, usr/sbin).
"$busybox" --list-full | while read -r applet; do
    [ "$applet" = "bin/busybox" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -f "$root/bin/busybox" "$root/$applet"
done
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
www-data:x:33:
nogroup:x:65534:
GROUP
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
if [ -n "$extra" ]; then
    cp -a "$extra"/. "$root"/
fi
mkdir -p "$(dirname "$out")"
# Fixed owner and mtime, sorted names: the same input gives the same tar, so the image digest is stable.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$out" .
echo "$out"
