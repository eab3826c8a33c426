#!/usr/bin/env bash
# Creates the Python virtualenvs the collector tests use as real OpenTelemetry peers.
# Idempotent: a venv is rebuilt only when its requirements file changed.
# Usage: tests/peers/setup_python.sh   (venvs under $OBSD_VENV_DIR, default /var/tmp/obsd-venvs)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${OBSD_VENV_DIR:-/var/tmp/obsd-venvs}"
mkdir -p "$root"

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

make_venv() {
  local name="$1" req="$here/$2"
  local dir="$root/$name" stamp="$root/$name/.requirements"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    echo "venv $dir up to date"
    return
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
  echo "venv $dir created"
}

make_venv otlp requirements-otlp.txt
make_venv jaeger requirements-jaeger.txt
make_venv metrics requirements-metrics.txt
make_venv webui requirements-webui.txt
