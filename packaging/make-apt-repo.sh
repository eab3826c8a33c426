#!/usr/bin/env bash
# Adds .deb files to a flat apt repository and re-indexes it (apt-ftparchive, from apt-utils).
#   packaging/make-apt-repo.sh REPO_DIR [DEB...]     # no DEB: build one with build-deb.sh
# Then on a host:  deb [trusted=yes] file:/path/to/REPO_DIR ./   (or serve REPO_DIR over HTTP)
# Packages already in REPO_DIR stay, so `apt install obsd=<older version>` can roll back.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
repo=$1
shift
command -v apt-ftparchive >/dev/null || { echo "make-apt-repo: apt-ftparchive missing (apt-get install apt-utils)" >&2; exit 1; }
debs=("$@")
if [ ${#debs[@]} -eq 0 ]; then
  debs=("$("$(dirname "$0")/build-deb.sh" | tail -1)")
fi
mkdir -p "$repo"
for deb in "${debs[@]}"; do
  cp -f "$deb" "$repo/"
done
cd "$repo"
apt-ftparchive packages . > Packages
gzip -9nc Packages > Packages.gz
# Release must not list itself: write it outside the directory, then move it in.
release=$(mktemp)
rm -f Release
apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=obsd \
  -o APT::FTPArchive::Release::Label=obsd \
  -o APT::FTPArchive::Release::Suite=stable \
  -o APT::FTPArchive::Release::Codename=obsd \
  -o APT::FTPArchive::Release::Description="obsd packages" \
  release . > "$release"
mv "$release" Release
chmod 0644 Release
echo "$(pwd)"
