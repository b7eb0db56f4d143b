#!/bin/bash
# Runs COMMAND (default: the README's two commands) on Debian 13 (trixie) in a chroot:
# created the first time at ${INPAINT_CHROOT:-/var/tmp/inpaint-debian13} (debootstrap,
# minbase), reused after. This checkout is copied to /src/main inside (its own build/
# there: the host's stays the host's) and ../shared bound read-only at /src/shared.
# /proc, /sys, /dev and /dev/pts are mounted for the run and always unmounted.
# Usage: tests/debian13/run.sh [COMMAND...]   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
root=${INPAINT_CHROOT:-/var/tmp/inpaint-debian13}
shared=${INPAINT_SHARED:-$here/../shared}
if [ "$(id -u)" != 0 ]; then echo "debian13/run.sh: run as root (chroot, mounts)" >&2; exit 1; fi

if [ ! -f "$root/.inpaint-ready" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  echo "==> Debian 13 chroot in $root (first time: about a minute)"
  rm -rf "$root"
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >/dev/null
  touch "$root/.inpaint-ready"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_in() {  # mount_in TARGET ARGS...
  mkdir -p "$1"
  mount "${@:2}" "$1"
  mounted+=("$1")
}
mount_in "$root/proc" -t proc proc
mount_in "$root/sys" -t sysfs sys
mount_in "$root/dev" --bind /dev
mount_in "$root/dev/pts" --bind /dev/pts
if [ -d "$shared" ]; then
  mount_in "$root/src/shared" --bind "$shared"
  mount -o remount,bind,ro "$root/src/shared"
fi

# The checkout, without the host's build folders, over the last run's sources (its
# build/ is kept, so a second run only rebuilds what changed).
mkdir -p "$root/src/main"
tar -C "$here" --exclude=./build --exclude='./build-*' --exclude=./.git -cf - . | tar -C "$root/src/main" -xf -

if [ $# -eq 0 ]; then set -- bash -c 'bash install/setup.sh && meson test -C build --print-errorlogs'; fi
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  CI="${CI:-}" LANG=C.UTF-8 /bin/bash -c 'cd /src/main && exec "$@"' run "$@"
