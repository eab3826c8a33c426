#!/usr/bin/env bash
# obsd exporter vs Debian's node_exporter 1.5, side by side in one run: scrape latency p50/p99
# over N scrapes (default 200), CPU time per scrape and RSS, printed with obsd/node_exporter ratios.
# Usage: benches/exporter_vs_node_exporter.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
cargo build --release --quiet
OBSD="$CARGO_TARGET_DIR/release/obsd"
NE=/usr/bin/prometheus-node-exporter
[ -x "$NE" ] || { echo "apt-get install prometheus-node-exporter" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_NE=$(port); P_OBSD=$(port)
mkdir -p "$work/textfile"
exclude='^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)'
"$NE" --web.listen-address="127.0.0.1:$P_NE" --collector.textfile.directory="$work/textfile" \
  "--collector.filesystem.mount-points-exclude=$exclude" --collector.netdev.device-exclude= 2>/dev/null &
NE_PID=$!
printf '[exporter]\ntextfile_directory = "%s"\n[exporter.listen]\naddress = "127.0.0.1:%s"\n' "$work/textfile" "$P_OBSD" > "$work/obsd.toml"
"$OBSD" --role exporter --config "$work/obsd.toml" 2>/dev/null &
OBSD_PID=$!
sleep 1
python3 - "$N" "$NE_PID" "$P_NE" "$OBSD_PID" "$P_OBSD" <<'PY'
import sys, time, urllib.request, os
n = int(sys.argv[1])
procs = {"node_exporter": (int(sys.argv[2]), int(sys.argv[3])), "obsd": (int(sys.argv[4]), int(sys.argv[5]))}
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def scrape(port):
    t = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)
for name, (pid, port) in procs.items():
    for _ in range(5):
        scrape(port)  # warm up
res = {name: {"lat": [], "cpu0": cpu(pid)} for name, (pid, _) in procs.items()}
for i in range(n):  # interleaved so both see the same machine state
    for name, (pid, port) in procs.items():
        d, size = scrape(port)
        res[name]["lat"].append(d)
        res[name]["bytes"] = size
for name, (pid, _) in procs.items():
    r = res[name]
    r["lat"].sort()
    r["p50"] = r["lat"][len(r["lat"]) // 2] * 1000
    r["p99"] = r["lat"][min(len(r["lat"]) - 1, int(len(r["lat"]) * 0.99))] * 1000
    r["cpu"] = (cpu(pid) - r["cpu0"]) / n * 1000
    r["rss"] = rss(pid) / 2**20
o, p = res["obsd"], res["node_exporter"]
print(f"{n} scrapes each, interleaved; response sizes: obsd {o['bytes']} B, node_exporter {p['bytes']} B")
print(f"{'metric':<22}{'obsd':>12}{'node_exporter':>16}{'ratio':>9}")
for key, label in [("p50", "latency p50 ms"), ("p99", "latency p99 ms"), ("cpu", "CPU ms / scrape"), ("rss", "RSS MiB")]:
    ratio = o[key] / p[key] if p[key] else float("nan")
    print(f"{label:<22}{o[key]:>12.3f}{p[key]:>16.3f}{ratio:>9.2f}")
PY
