#!/usr/bin/env bash
# Exporter plugins, measured in one run:
#  1. criterion (benches/plugins.rs): one collect = instantiate + run + check, per plugin, with
#     wasmtime's on-demand vs pooling allocator, and the compile-once cost;
#  2. exporter scrape latency p50/p99 with both example plugins on vs off (same machine, scrapes
#     interleaved), printed as a ratio;
#  3. the process plugin alone (every collector off) vs Debian's prometheus-process-exporter
#     watching the same process names, when that package is installed.
# The systemd-units plugin reads a generated cgroup v2 tree of 150 service units.
# Usage: benches/plugins.sh [N]    (N scrapes per exporter, default 200)
#        PROFILE=dev benches/plugins.sh   (debug build: quicker to build, slower host code)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then build=(--release); bench=(); bin=release; else build=(); bench=(--profile dev); bin=debug; fi
echo "obsd built with the $PROFILE profile"
WASM_TARGET="$CARGO_TARGET_DIR/wasm-plugins"
cargo build --release --quiet --target wasm32-wasip1 --manifest-path plugins/Cargo.toml --target-dir "$WASM_TARGET"
WASM="$WASM_TARGET/wasm32-wasip1/release"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cg="$work/cgroup"
mkdir -p "$cg"
echo "cpu io memory pids" > "$cg/cgroup.controllers"
for i in $(seq 1 150); do
  u="$cg/system.slice/unit-$i.service"
  mkdir -p "$u"
  echo "populated 1" > "$u/cgroup.events"
  echo $((i * 4096)) > "$u/memory.current"
  echo $((i * 8192)) > "$u/memory.peak"
  echo 0 > "$u/memory.swap.current"
  echo $((i % 7 + 1)) > "$u/pids.current"
  printf 'usage_usec %d\nuser_usec %d\nsystem_usec %d\n' $((i * 3000)) $((i * 2000)) $((i * 1000)) > "$u/cpu.stat"
  printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n' > "$u/memory.events"
  printf '8:0 rbytes=%d wbytes=%d rios=1 wios=1\n' $((i * 512)) $((i * 256)) > "$u/io.stat"
  for r in cpu memory io; do
    printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' "$i" > "$u/$r.pressure"
  done
done
NAMES="obsd,bash,sshd,cargo,rustc,sleep"

echo "== criterion: per-collect overhead (instantiate + run + check)"
if ! OBSD_PLUGIN_WASM_DIR="$WASM" OBSD_BENCH_CGROUP="$cg" cargo bench "${bench[@]}" --quiet --bench plugins -- --noplot >"$work/criterion.log" 2>&1; then
  tail -20 "$work/criterion.log"; exit 1
fi
grep -E '^plugin_[a-z_]+/|time:' "$work/criterion.log" | sed 's/^ *//' | paste -d' ' - - \
  | awk '{ printf "%-36s %s %s %s %s %s %s %s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'

cargo build "${build[@]}" --quiet
OBSD="$CARGO_TARGET_DIR/$bin/obsd"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_OFF=$(port); P_ON=$(port); P_ALONE=$(port); P_PE=$(port)
args=$(echo "$NAMES" | sed 's/[^,]*/"&"/g')
plugins="[exporter.plugins]
directory = \"$WASM\"
[[exporter.plugin]]
name = \"process\"
file = \"process_exporter.wasm\"
args = [$args]
read_only_dirs = [\"/proc\"]
"
units="[[exporter.plugin]]
name = \"units\"
file = \"systemd_units.wasm\"
args = [\"ssh.service\"]
read_only_dirs = [\"$cg:/sys/fs/cgroup\"]
"
printf '[exporter.listen]\naddress = "127.0.0.1:%s"\n' "$P_OFF" > "$work/off.toml"
printf '[exporter.listen]\naddress = "127.0.0.1:%s"\n%s%s' "$P_ON" "$plugins" "$units" > "$work/on.toml"
collectors=$("$OBSD" check-config "$work/off.toml" | sed -n 's/.*collectors on: \([^;]*\);.*/\1/p' | tr -d ' ' | tr ',' '\n' | sed 's/$/ = false/')
printf '[exporter.listen]\naddress = "127.0.0.1:%s"\n%s[exporter.collectors]\n%s\n' "$P_ALONE" "$plugins" "$collectors" > "$work/alone.toml"
for c in off on alone; do
  "$OBSD" --role exporter --config "$work/$c.toml" --log-level warn 2>"$work/$c.log" &
  echo $! > "$work/$c.pid"
done
PE=/usr/bin/prometheus-process-exporter
if [ -x "$PE" ]; then
  "$PE" -web.listen-address "127.0.0.1:$P_PE" -procnames "$NAMES" 2>/dev/null &
  echo $! > "$work/pe.pid"
else
  echo "(prometheus-process-exporter not installed: apt-get install prometheus-process-exporter for the peer comparison)"
fi
sleep 2
python3 - "$N" "$work" "$P_OFF" "$P_ON" "$P_ALONE" "$P_PE" <<'PY'
import sys, time, urllib.request, os
n, work = int(sys.argv[1]), sys.argv[2]
ports = dict(zip(["off", "on", "alone", "pe"], map(int, sys.argv[3:7])))
pids = {k: int(open(f"{work}/{k}.pid").read()) for k in ports if os.path.exists(f"{work}/{k}.pid")}
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
    return time.perf_counter() - t, body
for k in pids:
    for _ in range(5):
        _, body = scrape(ports[k])
    if k in ("on", "alone"):
        ups = [l for l in body.decode().splitlines() if l.startswith("obsd_plugin_up")]
        assert ups and all(l.endswith(" 1") for l in ups), f"{k}: {ups}"
res = {k: {"lat": [], "cpu0": cpu(pids[k])} for k in pids}
for _ in range(n):
    for k in pids:
        d, body = scrape(ports[k])
        res[k]["lat"].append(d)
        res[k]["bytes"] = len(body)
for k, r in res.items():
    r["lat"].sort()
    r["p50"] = r["lat"][len(r["lat"]) // 2] * 1000
    r["p99"] = r["lat"][min(n - 1, int(n * 0.99))] * 1000
    r["cpu"] = (cpu(pids[k]) - r["cpu0"]) / n * 1000
    r["rss"] = rss(pids[k]) / 2**20
names = {"off": "exporter, plugins off", "on": "exporter, both plugins on", "alone": "process plugin alone (collectors off)", "pe": "prometheus-process-exporter"}
print(f"\n== scrape latency, {n} scrapes each, interleaved")
print(f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/scrape':>14} {'RSS MiB':>8} {'bytes':>8}")
for k, r in res.items():
    print(f"{names[k]:40} {r['p50']:8.2f} {r['p99']:8.2f} {r['cpu']:14.2f} {r['rss']:8.1f} {r['bytes']:8}")
on, off = res["on"], res["off"]
print(f"\nplugins on / off: p50 x{on['p50'] / off['p50']:.2f} (+{on['p50'] - off['p50']:.2f} ms), CPU x{on['cpu'] / max(off['cpu'], 1e-9):.2f}")
if "pe" in res:
    a, p = res["alone"], res["pe"]
    print(f"process plugin alone / prometheus-process-exporter: p50 x{a['p50'] / p['p50']:.2f}, CPU x{a['cpu'] / max(p['cpu'], 1e-9):.2f}, RSS x{a['rss'] / p['rss']:.2f}")
PY
