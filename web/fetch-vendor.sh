#!/usr/bin/env bash
# Refreshes web/vendor/ from the versions pinned in package-lock.json. Run by hand after
# changing package.json (`npm install --package-lock-only`); cargo build never runs npm.
# The registry tarball is kept beside the extracted files so a unit test
# (webui::vendor tests) can check it against the lock's integrity and the files against it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
cd "$work"
npm ci --ignore-scripts --no-audit --no-fund
version="$(node -p "require('./package-lock.json').packages['node_modules/uplot'].version")"
integrity="$(node -p "require('./package-lock.json').packages['node_modules/uplot'].integrity")"
npm pack --silent "uplot@$version" >/dev/null
tarball="uplot-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "integrity mismatch for $tarball: lock has $integrity, tarball is $got" >&2
  exit 1
fi
rm -rf "$here/vendor"
mkdir -p "$here/vendor"
cp "$tarball" "$here/vendor/"
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE "$here/vendor/"
echo "web/vendor: uplot $version"
ls -l "$here/vendor"
