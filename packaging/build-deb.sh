#!/usr/bin/env bash
# Builds obsd_<version>_<arch>.deb with dpkg-deb from a staged tree: one command, nothing to
# install beyond dpkg-dev and binutils (both in every Rust build machine's Debian).
#
# Why not cargo-deb: it is ~150 crates to compile before the first package (minutes on the
# 2 shared cores CI has, on every fresh machine), and the tree below is all it would write.
#
#   packaging/build-deb.sh                   # cargo build --release, then package
#   OBSD_BINARY=path/to/obsd packaging/build-deb.sh   # package an existing binary (tests)
#   DEB_REVISION=2 packaging/build-deb.sh    # obsd_<cargo version>-2 (an upgrade for tests)
#   OUT_DIR=dir packaging/build-deb.sh       # where the .deb goes (default target/debian)
#   DEB_MAINTAINER="Name <mail>" packaging/build-deb.sh   # Maintainer and changelog signer
#   DEB_COMPRESSION=gzip packaging/build-deb.sh   # faster than xz, for throwaway test packages
# Prints the path of the .deb on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
out_dir=${OUT_DIR:-$target_dir/debian}

upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
version="$upstream-${DEB_REVISION:-1}"
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-obsd maintainers <obsd-maintainers@example.org>}
# The project's own home (Cargo.toml `homepage`, or DEB_HOMEPAGE); without one the field is left
# out rather than pointing at another project.
homepage=${DEB_HOMEPAGE:-$(sed -n 's/^homepage = "\(.*\)"$/\1/p' Cargo.toml | head -1)}

binary=${OBSD_BINARY:-}
if [ -z "$binary" ]; then
  cargo build --release --locked --bin obsd >&2
  binary=$target_dir/release/obsd
fi
[ -x "$binary" ] || { echo "build-deb: no executable at $binary" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/obsd
doc=$pkg/usr/share/doc/obsd

install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/obsd" \
  "$doc/examples/seed" "$doc/grafana" "$pkg/usr/share/man/man1" "$pkg/usr/share/lintian/overrides"
install -m 0755 "$binary" "$pkg/usr/bin/obsd"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/obsd"
install -m 0644 packaging/systemd/obsd@.service "$pkg/lib/systemd/system/obsd@.service"
for role in exporter all; do
  install -D -m 0644 packaging/systemd/exporter-clock.conf "$pkg/lib/systemd/system/obsd@$role.service.d/clock.conf"
done
install -m 0644 packaging/debian/obsd.toml "$pkg/etc/obsd/obsd.toml"
install -m 0644 packaging/debian/copyright "$doc/copyright"
install -m 0644 README.md "$doc/README.md"
install -m 0644 config/*.toml "$doc/examples/"
install -m 0644 config/seed/*.toml "$doc/examples/seed/"
install -m 0644 packaging/grafana/*.yaml packaging/grafana/*.json "$doc/grafana/"
gzip -9n -c packaging/debian/obsd.1 > "$pkg/usr/share/man/man1/obsd.1.gz"
# A page per subcommand and the shell completions, from the binary's own CLI definition.
generated=$stage/generated
"$binary" generate man "$generated/man" 2>/dev/null
for page in "$generated"/man/*.1; do
  gzip -9n -c "$page" > "$pkg/usr/share/man/man1/$(basename "$page").gz"
done
"$binary" generate completions "$generated/completions" >/dev/null 2>&1
install -D -m 0644 "$generated/completions/obsd.bash" "$pkg/usr/share/bash-completion/completions/obsd"
install -D -m 0644 "$generated/completions/_obsd" "$pkg/usr/share/zsh/vendor-completions/_obsd"
install -D -m 0644 "$generated/completions/obsd.fish" "$pkg/usr/share/fish/vendor_completions.d/obsd.fish"
install -m 0644 packaging/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/obsd"

# The changelog date comes from the last commit, so the same commit gives the same package.
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
{
  echo "obsd ($version) unstable; urgency=medium"
  echo
  echo "  * Package of obsd $upstream built from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo " -- $maintainer  $date"
} | gzip -9n > "$doc/changelog.Debian.gz"

for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$pkg/DEBIAN/$script"
done
echo /etc/obsd/obsd.toml > "$pkg/DEBIAN/conffiles"

# dpkg-shlibdeps wants a debian/control to sit beside; a throwaway one is enough.
shlib=$stage/shlib
mkdir -p "$shlib/debian"
printf 'Source: obsd\n\nPackage: obsd\nArchitecture: any\n' > "$shlib/debian/control"
shlibs=$(cd "$shlib" && dpkg-shlibdeps -O "$pkg/usr/bin/obsd" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }

# procps: the unit reloads with /bin/kill.
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: obsd
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: adduser, procps, $shlibs
Section: net
Priority: optional
${homepage:+Homepage: $homepage
}Description: single daemon for a high-availability observability stack
 obsd replaces node_exporter, Prometheus replicas and a federation node,
 HAProxy with haproxy_exporter, and Jaeger with one binary that runs in role
 modes, one systemd unit per role (obsd@exporter, obsd@replica,
 obsd@federation, obsd@balancer, obsd@collector).
 .
 It keeps the interfaces those programs have: node_exporter's metric names,
 Prometheus scrape configuration, PromQL and HTTP API, /federate, HAProxy's
 health-check vocabulary and stats, OTLP, Jaeger thrift and the Jaeger query
 API that Grafana speaks.
CONTROL

(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"
find "$pkg" -type d -exec chmod 0755 {} +

mkdir -p "$out_dir"
deb=$out_dir/obsd_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
  dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$pkg" "$deb" >&2
echo "$deb"
