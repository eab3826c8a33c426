#!/usr/bin/env bash
# Unpacks a minimal Debian 12 root (with systemd) into DEST for the packaging tests. The root
# is made once with debootstrap and cached as a tarball under /var/tmp; the include list is
# part of the cache name, so changing it makes a new root. A lock keeps two tests that start
# together from downloading it twice.
#   packaging/debian-root.sh DEST      # DEBIAN_MIRROR=http://... to use another mirror,
#                                      # OBSD_CACHE_DIR=dir to keep the tarball elsewhere
set -euo pipefail
dest=$1
includes=adduser,procps,python3,python3-apt,systemd
cache=${OBSD_CACHE_DIR:-/var/tmp}/obsd-debroot-bookworm-$(echo "$includes" | md5sum | cut -c1-8).tar.gz
exec 9>"$cache.lock"
flock 9
if [ ! -f "$cache" ]; then
  build=$(mktemp -d /var/tmp/obsd-debootstrap.XXXXXX)
  trap 'rm -rf "$build"' EXIT
  debootstrap --variant=minbase --include="$includes" bookworm "$build/root" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$build/debootstrap.log" 2>&1 \
    || { tail -20 "$build/debootstrap.log" >&2; echo "debootstrap failed" >&2; exit 1; }
  rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*
  tar -C "$build/root" -czf "$cache.tmp" . && mv "$cache.tmp" "$cache"
fi
flock -u 9
mkdir -p "$dest"
tar -C "$dest" -xzf "$cache"
